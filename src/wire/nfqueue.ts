// The netfilter queue's netlink messages (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_QUEUE) and the IP/TCP tuple of a
// queued packet: pure encoders for the requests baton sends (bind a queue, set its parameters, verdicts) and a
// bounded, checked decoder for what the kernel sends back (queued packets, acks). Layouts from
// <linux/netfilter/nfnetlink_queue.h>; netlink headers are host order (little-endian here), nfqueue's own fields
// network order. Decoding untrusted bytes never reads past a length it has checked and refuses with a WireError.
import { formatIPv4, formatIPv6 } from './bytes.ts';
import { WireError } from './errors.ts';

const NLMSG_HDRLEN = 16;
const NFGENMSG_LEN = 4;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NFNL_SUBSYS_QUEUE = 3;
const AF_UNSPEC = 0;

/** nfqnl_msg_types */
export const NFQNL_MSG_PACKET = 0;
export const NFQNL_MSG_VERDICT = 1;
export const NFQNL_MSG_CONFIG = 2;
/** nfqueue attribute types (NFQA_*) baton reads or writes. */
export const NFQA = { PACKET_HDR: 1, VERDICT_HDR: 2, MARK: 3, IFINDEX_INDEV: 5, PAYLOAD: 10, CAP_LEN: 13, SKB_INFO: 14 } as const;
/** Config attributes (NFQA_CFG_*). */
const CFG = { CMD: 1, PARAMS: 2, QUEUE_MAXLEN: 3, MASK: 4, FLAGS: 5 } as const;
const CFG_CMD_BIND = 1;
const CFG_CMD_UNBIND = 2;
const COPY_PACKET = 2;
/** NFQA_CFG_F_*: GSO lets big GRO packets through unsegmented; FAIL_OPEN (1) is what baton never sets. */
export const NFQA_CFG_F_FAIL_OPEN = 1;
export const NFQA_CFG_F_GSO = 4;
/** NFQA_SKB_INFO bits: the packet's checksum is not computed yet (CHECKSUM_PARTIAL: only the pseudo-header sum is
 * in the field), it is a GSO packet, its checksum was not verified. */
export const NFQA_SKB_CSUMNOTREADY = 1;
export const NFQA_SKB_GSO = 2;
export const NFQA_SKB_CSUM_NOTVERIFIED = 4;
/** Largest packet a verdict can carry back (NFQA_PAYLOAD's 16-bit attribute length, less its header). */
export const MAX_VERDICT_PAYLOAD = 0xffff - 4;
/** Netfilter verdicts. */
export const NF_DROP = 0;
export const NF_ACCEPT = 1;

export const nlAlign = (n: number): number => (n + 3) & ~3;

export class NfqueueWireError extends WireError {
  constructor(field: string, message: string) {
    super('BATON_ERR_NFQUEUE', field, message);
  }
}

// --- encoding ---

interface Attr {
  readonly type: number;
  readonly data: Uint8Array;
}

function message(type: number, flags: number, seq: number, queue: number, attrs: readonly Attr[]): Buffer {
  const len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.reduce((n, a) => n + nlAlign(4 + a.data.length), 0);
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE((NFNL_SUBSYS_QUEUE << 8) | type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq >>> 0, 8);
  b.writeUInt8(AF_UNSPEC, 16);
  b.writeUInt16BE(queue, 18);
  let off = NLMSG_HDRLEN + NFGENMSG_LEN;
  for (const a of attrs) {
    b.writeUInt16LE(4 + a.data.length, off);
    b.writeUInt16LE(a.type, off + 2);
    b.set(a.data, off + 4);
    off += nlAlign(4 + a.data.length);
  }
  return b;
}

const be32 = (v: number): Uint8Array => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

function checkQueue(queue: number): number {
  if (!Number.isInteger(queue) || queue < 0 || queue > 0xffff) throw new NfqueueWireError('queue', `nfqueue: queue number ${queue} is not 0..65535`);
  return queue;
}

/** Binds this socket to `queue` (acked). */
export function encodeBind(queue: number, seq: number): Buffer {
  const cmd = Buffer.from([CFG_CMD_BIND, 0, 0, 0]);
  return message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, checkQueue(queue), [{ type: CFG.CMD, data: cmd }]);
}

export function encodeUnbind(queue: number, seq: number): Buffer {
  const cmd = Buffer.from([CFG_CMD_UNBIND, 0, 0, 0]);
  return message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, checkQueue(queue), [{ type: CFG.CMD, data: cmd }]);
}

export interface QueueParams {
  /** Bytes of each packet copied to us (from the IP header). */
  readonly copyRange: number;
  /** Packets the kernel keeps queued before it drops (or, fail-open, accepts) new ones. */
  readonly maxLen: number;
  /** NFQA_CFG_F_* bits to set; every other bit of NFQA_CFG_MASK is cleared. */
  readonly flags: number;
}

/** Copy mode, copy range, queue length and flags (acked). */
export function encodeParams(queue: number, p: QueueParams, seq: number): Buffer {
  if (!Number.isInteger(p.copyRange) || p.copyRange < 0 || p.copyRange > 0xffff) throw new NfqueueWireError('copyRange', `nfqueue: copy range ${p.copyRange}`);
  if (!Number.isInteger(p.maxLen) || p.maxLen < 1 || p.maxLen > 0xffffffff) throw new NfqueueWireError('maxLen', `nfqueue: queue length ${p.maxLen}`);
  const params = Buffer.alloc(5); // struct nfqnl_msg_config_params is packed: __be32 copy_range, __u8 copy_mode
  params.writeUInt32BE(p.copyRange, 0);
  params.writeUInt8(COPY_PACKET, 4);
  const mask = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO | 0x2 | 0x8 | 0x10;
  return message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, checkQueue(queue), [
    { type: CFG.PARAMS, data: params },
    { type: CFG.QUEUE_MAXLEN, data: be32(p.maxLen) },
    { type: CFG.MASK, data: be32(mask) },
    { type: CFG.FLAGS, data: be32(p.flags & mask) },
  ]);
}

export interface Verdict {
  readonly id: number;
  readonly verdict: typeof NF_ACCEPT | typeof NF_DROP;
  /**
   * With NF_ACCEPT: the packet's new bytes from its IP header (NFQA_PAYLOAD), the whole packet (a shorter one is
   * trimmed by the kernel, a longer one extended). The kernel takes it as CHECKSUM_NONE: its checksums must be whole.
   */
  readonly payload?: Uint8Array;
}

/** One datagram carrying a verdict message per packet, in the order given (the kernel applies them in order). Not
 * acked: a verdict for an id the kernel no longer holds is refused with an error message we do not wait for. */
export function encodeVerdicts(queue: number, verdicts: readonly Verdict[], seq: number): Buffer {
  const base = NLMSG_HDRLEN + NFGENMSG_LEN + 4 + 8;
  checkQueue(queue);
  let total = 0;
  for (const v of verdicts) {
    if (v.payload !== undefined && v.payload.length > MAX_VERDICT_PAYLOAD) {
      throw new NfqueueWireError('verdict.payload', `nfqueue: verdict payload of ${v.payload.length} bytes exceeds ${MAX_VERDICT_PAYLOAD}`);
    }
    total += base + (v.payload === undefined ? 0 : nlAlign(4 + v.payload.length));
  }
  const out = Buffer.alloc(total);
  let at = 0;
  verdicts.forEach((v, i) => {
    const one = base + (v.payload === undefined ? 0 : nlAlign(4 + v.payload.length));
    out.writeUInt32LE(one, at);
    out.writeUInt16LE((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT, at + 4);
    out.writeUInt16LE(NLM_F_REQUEST, at + 6);
    out.writeUInt32LE((seq + i) >>> 0, at + 8);
    out.writeUInt8(AF_UNSPEC, at + 16);
    out.writeUInt16BE(queue, at + 18);
    out.writeUInt16LE(12, at + 20);
    out.writeUInt16LE(NFQA.VERDICT_HDR, at + 22);
    out.writeUInt32BE(v.verdict, at + 24);
    out.writeUInt32BE(v.id >>> 0, at + 28);
    if (v.payload !== undefined) {
      out.writeUInt16LE(4 + v.payload.length, at + 32);
      out.writeUInt16LE(NFQA.PAYLOAD, at + 34);
      out.set(v.payload, at + 36);
    }
    at += one;
  });
  return out;
}

// --- decoding ---

/** A packet the kernel queued to us. `payload` is a view into the receive buffer (from the IP header, up to the copy
 * range): copy it to keep it past the next receive. */
export interface QueuedPacket {
  readonly kind: 'packet';
  readonly queue: number;
  readonly id: number;
  /** Ethertype, network order value (0x0800 IPv4, 0x86dd IPv6). */
  readonly hwProtocol: number;
  readonly hook: number;
  readonly mark: number;
  readonly indev: number;
  /** The packet's full length when the copy was cut short (NFQA_CAP_LEN), else the payload's. */
  readonly length: number;
  /** NFQA_SKB_INFO bits (NFQA_SKB_CSUMNOTREADY, ...); 0 when absent. */
  readonly skbInfo?: number;
  readonly payload: Uint8Array;
}

export interface NlAckMessage {
  readonly kind: 'ack';
  readonly seq: number;
  /** 0: success; else a positive errno. */
  readonly errno: number;
}

export type NfqMessage = QueuedPacket | NlAckMessage | { readonly kind: 'other'; readonly type: number };

/** Most messages one datagram may hold (a 64 KiB receive buffer of 20-byte messages holds ~3300). */
export const MAX_MESSAGES = 4096;

/** Decodes every message of one datagram (`n` bytes of `b`). Malformed lengths refuse the datagram. */
export function parseDatagram(b: Uint8Array, n: number = b.length): NfqMessage[] {
  if (n > b.length) throw new NfqueueWireError('length', `nfqueue: datagram length ${n} beyond buffer ${b.length}`);
  const dv = new DataView(b.buffer, b.byteOffset, n);
  const out: NfqMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= n) {
    if (out.length >= MAX_MESSAGES) throw new NfqueueWireError('messages', `nfqueue: more than ${MAX_MESSAGES} messages in a datagram`);
    const len = dv.getUint32(off, true);
    if (len < NLMSG_HDRLEN || off + len > n) throw new NfqueueWireError('nlmsg.len', `nfqueue: message length ${len} at ${off} of ${n}`);
    const type = dv.getUint16(off + 4, true);
    if (type === NLMSG_ERROR) {
      if (len < NLMSG_HDRLEN + 4) throw new NfqueueWireError('nlmsgerr', 'nfqueue: error message too short');
      out.push({ kind: 'ack', seq: dv.getUint32(off + 8, true), errno: -dv.getInt32(off + NLMSG_HDRLEN, true) });
    } else if (type === ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) {
      out.push(parsePacket(b, dv, off, len));
    } else if (type !== NLMSG_DONE) {
      out.push({ kind: 'other', type });
    }
    off += nlAlign(len);
  }
  return out;
}

function parsePacket(b: Uint8Array, dv: DataView, at: number, len: number): QueuedPacket {
  if (len < NLMSG_HDRLEN + NFGENMSG_LEN) throw new NfqueueWireError('nfgenmsg', 'nfqueue: packet message too short');
  const queue = dv.getUint16(at + 18, false);
  let id = -1;
  let hwProtocol = 0;
  let hook = 0;
  let mark = 0;
  let indev = 0;
  let capLen = -1;
  let skbInfo = 0;
  let payload: Uint8Array | undefined;
  const end = at + len;
  let off = at + NLMSG_HDRLEN + NFGENMSG_LEN;
  while (off + 4 <= end) {
    const alen = dv.getUint16(off, true);
    const type = dv.getUint16(off + 2, true) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (alen < 4 || off + alen > end) throw new NfqueueWireError('nla.len', `nfqueue: attribute ${type} length ${alen}`);
    const data = off + 4;
    const dlen = alen - 4;
    const need = (want: number, field: string): void => {
      if (dlen < want) throw new NfqueueWireError(field, `nfqueue: ${field} is ${dlen} bytes, expected ${want}`);
    };
    switch (type) {
      case NFQA.PACKET_HDR:
        need(7, 'packet_hdr');
        id = dv.getUint32(data, false);
        hwProtocol = dv.getUint16(data + 4, false);
        hook = dv.getUint8(data + 6);
        break;
      case NFQA.MARK:
        need(4, 'mark');
        mark = dv.getUint32(data, false);
        break;
      case NFQA.IFINDEX_INDEV:
        need(4, 'indev');
        indev = dv.getUint32(data, false);
        break;
      case NFQA.CAP_LEN:
        need(4, 'cap_len');
        capLen = dv.getUint32(data, false);
        break;
      case NFQA.PAYLOAD:
        payload = b.subarray(data, data + dlen);
        break;
      case NFQA.SKB_INFO:
        need(4, 'skb_info');
        skbInfo = dv.getUint32(data, false);
        break;
      default:
        break; // attributes baton does not ask for (timestamps, hwaddr, skb info)
    }
    off += nlAlign(alen);
  }
  if (id < 0) throw new NfqueueWireError('packet_hdr', 'nfqueue: packet without NFQA_PACKET_HDR');
  const p = payload ?? new Uint8Array(0);
  return { kind: 'packet', queue, id, hwProtocol, hook, mark, indev, length: capLen >= 0 ? capLen : p.length, payload: p, skbInfo };
}

/** A queued-packet message as the kernel sends it (header, mark, input interface, payload, and the packet's length
 * when the copy is shorter): for tests and fuzz seeds; decodes back to `p`. */
export function encodeQueuedPacket(p: Omit<QueuedPacket, 'kind'>, seq = 0): Buffer {
  const hdr = Buffer.alloc(7);
  hdr.writeUInt32BE(p.id >>> 0, 0);
  hdr.writeUInt16BE(p.hwProtocol, 4);
  hdr.writeUInt8(p.hook, 6);
  const attrs: Attr[] = [{ type: NFQA.PACKET_HDR, data: hdr }, { type: NFQA.MARK, data: be32(p.mark) }, { type: NFQA.IFINDEX_INDEV, data: be32(p.indev) }];
  attrs.push({ type: NFQA.PAYLOAD, data: p.payload });
  if (p.length !== p.payload.length) attrs.push({ type: NFQA.CAP_LEN, data: be32(p.length) });
  if (p.skbInfo !== undefined && p.skbInfo !== 0) attrs.push({ type: NFQA.SKB_INFO, data: be32(p.skbInfo) });
  const b = message(NFQNL_MSG_PACKET, 0, seq, checkQueue(p.queue), attrs);
  return b;
}

// --- the queued packet's tuple ---

/** A TCP packet's connection as it travels (source = client, destination = VIP for packets the guard parks). */
export interface PacketTuple {
  readonly family: 4 | 6;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

/** The TCP tuple of an IP packet (from the IP header, as nfqueue copies it), or undefined when it is not one
 * (another protocol, an IPv4 fragment, IPv6 extension headers, or cut too short). */
export function packetTuple(p: Uint8Array): PacketTuple | undefined {
  if (p.length < 1) return undefined;
  const version = p[0]! >> 4;
  let l4: number;
  let family: 4 | 6;
  if (version === 4) {
    if (p.length < 20) return undefined;
    const ihl = (p[0]! & 0x0f) * 4;
    const frag = ((p[6]! << 8) | p[7]!) & 0x3fff;
    if (ihl < 20 || p[9] !== 6 || frag !== 0) return undefined;
    l4 = ihl;
    family = 4;
  } else if (version === 6) {
    if (p.length < 40 || p[6] !== 6) return undefined;
    l4 = 40;
    family = 6;
  } else {
    return undefined;
  }
  if (p.length < l4 + 4) return undefined;
  const src = family === 4 ? formatIPv4(p, 12) : formatIPv6(p, 8);
  const dst = family === 4 ? formatIPv4(p, 16) : formatIPv6(p, 24);
  return { family, src, dst, sport: (p[l4]! << 8) | p[l4 + 1]!, dport: (p[l4 + 2]! << 8) | p[l4 + 3]! };
}

/**
 * The acknowledgment number of a TCP packet with ACK set (what its sender expects next from its peer), or undefined
 * (no ACK flag, or too short). A reset sent back must carry it as its sequence number to be taken.
 */
export function packetAck(p: Uint8Array): number | undefined {
  if (p.length < 1) return undefined;
  const version = p[0]! >> 4;
  const l4 = version === 4 ? (p[0]! & 0x0f) * 4 : version === 6 ? 40 : -1;
  if (l4 < 20 || p.length < l4 + 14) return undefined;
  if ((p[l4 + 13]! & 0x10) === 0) return undefined;
  return ((p[l4 + 8]! << 24) | (p[l4 + 9]! << 16) | (p[l4 + 10]! << 8) | p[l4 + 11]!) >>> 0;
}
