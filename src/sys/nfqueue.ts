// A netfilter queue (NETLINK_NETFILTER, nfqueue) bound in the calling process's network namespace: packets an
// nftables `queue num N` rule diverts arrive here, and stay in the kernel until we give each a verdict by id.
// Receiving never blocks the event loop: the socket is non-blocking and libuv watches it (koffi.node.poll, an
// epoll registration, no thread); when it is readable every queued datagram is read at once. The codec is the pure
// wire/nfqueue.ts; this file only moves bytes. Not fail-open: when the queue is full the kernel drops, it never
// lets a packet reach a stack that would answer it with a RST.
import koffi from 'koffi';
import * as C from './constants.ts';
import { SysError } from './errors.ts';
import { lastErrno, raw } from './libc.ts';
import { nlRaw, POLLIN } from './netlink-libc.ts';
import { AF_NETLINK, NETLINK_NETFILTER, SOL_NETLINK } from './netlink.ts';
import {
  encodeBind, encodeParams, encodeUnbind, encodeVerdicts, NFQA_CFG_F_GSO, parseDatagram, type QueuedPacket, type Verdict,
} from '../wire/nfqueue.ts';

const NETLINK_NO_ENOBUFS = 5;

export interface NfQueueOptions {
  /** Queue number (the nftables rule's `queue num`). */
  readonly queue: number;
  /** Bytes copied per packet from the IP header (default 128: IPv6 + the longest TCP header; at most 65531). A
   * verdict that carries a new payload must carry the whole packet, so the copy must have been whole. */
  readonly copyRange?: number;
  /** Packets the kernel holds for us before it drops new ones (default 8192). */
  readonly maxLen?: number;
  /** Socket receive buffer (default 16 MiB: a full queue of copies fits). */
  readonly rcvbuf?: number;
}

export interface NfQueueStats {
  /** Packets read from the queue. */
  readonly received: number;
  /** Times the socket overflowed (the kernel dropped packets it could not deliver to us). */
  readonly overflows: number;
  /** Error messages the kernel sent back (e.g. a verdict for an id it no longer holds). */
  readonly errors: number;
}

/** `onPackets` gets every packet of one read burst, in queue order; payloads are views valid only during the call. */
export type OnPackets = (packets: readonly QueuedPacket[]) => void;

export class NfQueue {
  readonly queue: number;
  readonly #fd: number;
  readonly #rbuf = Buffer.alloc(256 * 1024);
  readonly #onPackets: OnPackets;
  #poll: ReturnType<typeof koffi.node.poll> | undefined;
  #seq = 1;
  #closed = false;
  #received = 0;
  #overflows = 0;
  #errors = 0;

  private constructor(fd: number, queue: number, onPackets: OnPackets) {
    this.#fd = fd;
    this.queue = queue;
    this.#onPackets = onPackets;
  }

  /** Binds `queue` (fails with EBUSY-like errors when another process holds it) and starts receiving. */
  static open(o: NfQueueOptions, onPackets: OnPackets): NfQueue {
    const fd = raw.socket(AF_NETLINK, C.SOCK_RAW | C.SOCK_CLOEXEC | C.SOCK_NONBLOCK, NETLINK_NETFILTER);
    if (fd < 0) throw new SysError('socket(AF_NETLINK, NETLINK_NETFILTER)', lastErrno());
    const q = new NfQueue(fd, o.queue, onPackets);
    try {
      const v = Buffer.alloc(4);
      v.writeUInt32LE(o.rcvbuf ?? 16 << 20);
      if (raw.setsockopt(fd, C.SOL_SOCKET, C.SO_RCVBUFFORCE, v, 4) < 0) q.#check('setsockopt(SO_RCVBUF)', raw.setsockopt(fd, C.SOL_SOCKET, C.SO_RCVBUF, v, 4));
      v.writeUInt32LE(1);
      q.#check('setsockopt(NETLINK_NO_ENOBUFS)', raw.setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, v, 4));
      const sa = Buffer.alloc(12);
      sa.writeUInt16LE(AF_NETLINK, 0);
      q.#check('bind(AF_NETLINK)', raw.bind(fd, sa, sa.length));
      q.#request(encodeBind(o.queue, q.#seq), 'nfqueue bind');
      q.#request(encodeParams(o.queue, { copyRange: o.copyRange ?? 128, maxLen: o.maxLen ?? 8192, flags: NFQA_CFG_F_GSO }, q.#seq), 'nfqueue params');
      q.#poll = koffi.node.poll(fd, { readable: true }, () => {
        // Thrown from a libuv callback, an error would end the process: count it, the next readiness retries.
        try {
          q.drain();
        } catch {
          q.#errors++;
        }
      });
    } catch (e) {
      raw.close(fd);
      throw e;
    }
    return q;
  }

  get stats(): NfQueueStats {
    return { received: this.#received, overflows: this.#overflows, errors: this.#errors };
  }

  /** Reads everything the socket holds now, handing packets to `onPackets`; returns how many. Synchronous. */
  drain(): number {
    let total = 0;
    while (!this.#closed) {
      const n = raw.recv(this.#fd, this.#rbuf, this.#rbuf.length, C.MSG_DONTWAIT);
      if (n < 0) {
        const e = lastErrno();
        if (e === C.EINTR) continue;
        if (e === C.EAGAIN) break;
        if (e === C.ENOBUFS) {
          this.#overflows++;
          continue;
        }
        throw new SysError('recv(nfqueue)', e);
      }
      const packets: QueuedPacket[] = [];
      for (const m of parseDatagram(this.#rbuf, n)) {
        if (m.kind === 'packet') packets.push(m);
        else if (m.kind === 'ack' && m.errno !== 0) this.#errors++;
      }
      if (packets.length > 0) {
        this.#received += packets.length;
        total += packets.length;
        this.#onPackets(packets);
      }
    }
    return total;
  }

  /** Sends the verdicts in one datagram; the kernel applies them in order, inside this call. */
  verdict(verdicts: readonly Verdict[]): void {
    if (verdicts.length === 0 || this.#closed) return;
    const b = encodeVerdicts(this.queue, verdicts, this.#seq);
    this.#seq = (this.#seq + verdicts.length) >>> 0;
    for (;;) {
      const n = raw.send(this.#fd, b, b.length, 0);
      if (n >= 0) return;
      const e = lastErrno();
      if (e !== C.EINTR) throw new SysError('send(nfqueue verdict)', e);
    }
  }

  /** Unbinds: the kernel drops the packets still queued (nobody would give them a verdict). */
  close(): void {
    if (this.#closed) return;
    this.#poll?.stop();
    this.#poll?.close();
    this.#poll = undefined;
    try {
      this.#request(encodeUnbind(this.queue, this.#seq), 'nfqueue unbind');
    } catch {
      // closing the socket unbinds it as well
    }
    this.#closed = true;
    raw.close(this.#fd);
  }

  #check(call: string, rc: number): void {
    if (rc < 0) throw new SysError(call, lastErrno());
  }

  /** Sends an acked request and waits (poll, up to 2 s) for its ack; packets read meanwhile are delivered. */
  #request(msg: Buffer, what: string): void {
    const seq = this.#seq;
    this.#seq = (this.#seq + 1) >>> 0;
    this.#check(`send(${what})`, raw.send(this.#fd, msg, msg.length, 0));
    const deadline = Date.now() + 2000;
    const pfd = Buffer.alloc(8);
    for (;;) {
      const n = raw.recv(this.#fd, this.#rbuf, this.#rbuf.length, C.MSG_DONTWAIT);
      if (n < 0) {
        const e = lastErrno();
        if (e === C.EINTR) continue;
        if (e !== C.EAGAIN) throw new SysError(`recv(${what})`, e);
        const left = deadline - Date.now();
        if (left <= 0) throw new SysError(`${what} (no ack)`, 62 /* ETIME */);
        pfd.writeInt32LE(this.#fd, 0);
        pfd.writeInt16LE(POLLIN, 4);
        pfd.writeInt16LE(0, 6);
        nlRaw.poll(pfd, 1, left);
        continue;
      }
      const packets: QueuedPacket[] = [];
      let done = false;
      for (const m of parseDatagram(this.#rbuf, n)) {
        if (m.kind === 'packet') packets.push(m);
        else if (m.kind === 'ack' && m.seq === seq) {
          if (m.errno !== 0) throw new SysError(what, m.errno);
          done = true;
        }
      }
      if (packets.length > 0) {
        this.#received += packets.length;
        this.#onPackets(packets);
      }
      if (done) return;
    }
  }
}
