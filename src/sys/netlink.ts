// A raw netlink socket (AF_NETLINK) and the message encoding it speaks: nlmsghdr, netfilter's
// nfgenmsg and nlattr TLVs. Synchronous by design: the kernel handles a request inside send(),
// so its acks are queued by the time send() returns and the caller collects them at once.
import * as C from './constants.ts';
import { SysError } from './errors.ts';
import { lastErrno, raw } from './libc.ts';
import { nlRaw, POLLIN } from './netlink-libc.ts';

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const NETLINK_NETFILTER = 12;
export const SOL_NETLINK = 270;
/** Acks carry only the original header, not the whole request. */
export const NETLINK_CAP_ACK = 10;

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
export const NLA_F_NESTED = 0x8000;

/** nfgenmsg version. */
export const NFNETLINK_V0 = 0;


export const nlAlign = (n: number): number => (n + 3) & ~3;

/**
 * Builds netlink messages into one reusable buffer. Lengths of messages and nested attributes
 * are patched when they end; every attribute is padded to 4 bytes (padding zeroed).
 */
export class NlWriter {
  #buf: Buffer;
  #len = 0;

  constructor(capacity = 4096) {
    this.#buf = Buffer.alloc(capacity);
  }

  get length(): number {
    return this.#len;
  }

  /** The bytes written so far (a view, valid until the next write or reset). */
  get bytes(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }

  /** The whole backing buffer (for passing to send with `length`). */
  get buffer(): Buffer {
    return this.#buf;
  }

  reset(): void {
    this.#len = 0;
  }

  #reserve(n: number): number {
    const need = this.#len + nlAlign(n);
    if (need > this.#buf.length) {
      const next = Buffer.alloc(Math.max(need, this.#buf.length * 2));
      this.#buf.copy(next, 0, 0, this.#len);
      this.#buf = next;
    }
    const at = this.#len;
    this.#buf.fill(0, at, need);
    this.#len = need;
    return at;
  }

  /** nlmsghdr + nfgenmsg; returns the message's offset for `end`. */
  beginNfMsg(type: number, flags: number, seq: number, family: number, resId: number): number {
    const at = this.#reserve(NLMSG_HDRLEN + 4);
    const b = this.#buf;
    b.writeUInt16LE(type, at + 4);
    b.writeUInt16LE(flags, at + 6);
    b.writeUInt32LE(seq >>> 0, at + 8);
    b.writeUInt32LE(0, at + 12);
    b.writeUInt8(family, at + 16);
    b.writeUInt8(NFNETLINK_V0, at + 17);
    b.writeUInt16BE(resId, at + 18);
    return at;
  }

  /** Patches the length of the message (or nested attribute) begun at `at`. */
  endMsg(at: number): void {
    this.#buf.writeUInt32LE(this.#len - at, at);
  }

  attrBytes(type: number, data: Uint8Array): void {
    const at = this.#reserve(4 + data.length);
    this.#buf.writeUInt16LE(4 + data.length, at);
    this.#buf.writeUInt16LE(type, at + 2);
    this.#buf.set(data, at + 4);
  }

  /** A NUL-terminated string attribute. */
  attrString(type: number, s: string): void {
    const n = Buffer.byteLength(s, 'utf8') + 1;
    const at = this.#reserve(4 + n);
    this.#buf.writeUInt16LE(4 + n, at);
    this.#buf.writeUInt16LE(type, at + 2);
    this.#buf.write(s, at + 4, 'utf8');
  }

  /** An unsigned 64-bit big-endian attribute (`value` a safe non-negative integer). */
  attrU64BE(type: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`netlink: bad u64 ${value}`);
    const at = this.#reserve(12);
    this.#buf.writeUInt16LE(12, at);
    this.#buf.writeUInt16LE(type, at + 2);
    this.#buf.writeUInt32BE(Math.floor(value / 2 ** 32), at + 4);
    this.#buf.writeUInt32BE(value >>> 0, at + 8);
  }

  beginNest(type: number): number {
    const at = this.#reserve(4);
    this.#buf.writeUInt16LE(type | NLA_F_NESTED, at + 2);
    return at;
  }

  endNest(at: number): void {
    this.#buf.writeUInt16LE(this.#len - at, at);
  }
}

export interface NlAck {
  readonly seq: number;
  /** 0 for success, else a positive errno. */
  readonly errno: number;
}

/** The NLMSG_ERROR messages (acks) in a datagram; other message types are skipped. */
export function parseAcks(b: Buffer, n: number): NlAck[] {
  const out: NlAck[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= n) {
    const len = b.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > n) break;
    const type = b.readUInt16LE(off + 4);
    if (type === NLMSG_ERROR && len >= NLMSG_HDRLEN + 4) {
      out.push({ seq: b.readUInt32LE(off + 8), errno: -b.readInt32LE(off + NLMSG_HDRLEN) });
    }
    off += nlAlign(len);
  }
  return out;
}

function check(call: string, rc: number): number {
  if (rc < 0) throw new SysError(call, lastErrno());
  return rc;
}

/** One AF_NETLINK socket bound in the calling process's network namespace. */
export class NetlinkSocket {
  readonly #fd: number;
  readonly #rbuf = Buffer.alloc(64 * 1024);
  readonly #pfd = Buffer.alloc(8);
  #closed = false;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  static open(protocol: number, rcvbuf = 1 << 20): NetlinkSocket {
    const fd = check('socket(AF_NETLINK)', raw.socket(AF_NETLINK, SOCK_RAW | C.SOCK_CLOEXEC, protocol));
    try {
      const v = Buffer.alloc(4);
      v.writeUInt32LE(rcvbuf);
      // RCVBUFFORCE passes the rmem_max cap (needs CAP_NET_ADMIN, which steering has anyway).
      if (raw.setsockopt(fd, C.SOL_SOCKET, C.SO_RCVBUFFORCE, v, 4) < 0) {
        check('setsockopt(SO_RCVBUF)', raw.setsockopt(fd, C.SOL_SOCKET, C.SO_RCVBUF, v, 4));
      }
      v.writeUInt32LE(1);
      raw.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, v, 4); // best effort: only shrinks acks
      const sa = Buffer.alloc(12); // sockaddr_nl: u16 family, u16 pad, u32 pid (0: kernel picks), u32 groups
      sa.writeUInt16LE(AF_NETLINK, 0);
      check('bind(AF_NETLINK)', raw.bind(fd, sa, sa.length));
    } catch (e) {
      raw.close(fd);
      throw e;
    }
    return new NetlinkSocket(fd);
  }

  /** Sends `len` bytes of `buf` as one datagram. */
  send(buf: Buffer, len: number): void {
    if (this.#closed) throw new SysError('send(AF_NETLINK)', 9);
    for (;;) {
      const n = raw.send(this.#fd, buf, len, 0);
      if (n >= 0) return;
      const e = lastErrno();
      if (e !== C.EINTR) throw new SysError('send(AF_NETLINK)', e);
    }
  }

  /**
   * Reads acks until `done(ack)` says every awaited one is in. Non-blocking reads; if the queue
   * is empty before that (it should not be: acks are queued during send), waits up to
   * `timeoutMs` in poll().
   */
  collectAcks(done: (ack: NlAck) => boolean, timeoutMs = 2000): void {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = raw.recv(this.#fd, this.#rbuf, this.#rbuf.length, C.MSG_DONTWAIT);
      if (n < 0) {
        const e = lastErrno();
        if (e === C.EINTR) continue;
        if (e !== C.EAGAIN) throw new SysError('recv(AF_NETLINK)', e);
        const left = deadline - Date.now();
        if (left <= 0) throw new SysError('recv(AF_NETLINK) (no ack)', 62 /* ETIME */);
        this.#pfd.writeInt32LE(this.#fd, 0);
        this.#pfd.writeInt16LE(POLLIN, 4);
        this.#pfd.writeInt16LE(0, 6);
        nlRaw.poll(this.#pfd, 1, left);
        continue;
      }
      for (const ack of parseAcks(this.#rbuf, n)) if (done(ack)) return;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    raw.close(this.#fd);
  }
}
