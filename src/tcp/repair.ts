// TCP_REPAIR primitives over sys/: the socket options CRIU uses to read and write a TCP
// connection's hidden state. capture.ts and inject.ts compose them in the required order.
import * as C from '../sys/constants.ts';
import { getsockoptBuf, getsockoptInto, getsockoptU32, setsockoptBuf, setsockoptInt } from '../sys/socket.ts';
import type { TcpRepairWindow } from '../wire/tcp-state.ts';
import { TCP_ERR, TcpStateError } from './errors.ts';

const T = C.IPPROTO_TCP;

export function setRepair(fd: number, mode: typeof C.TCP_REPAIR_ON | typeof C.TCP_REPAIR_OFF | typeof C.TCP_REPAIR_OFF_NO_WP): void {
  setsockoptInt(fd, T, C.TCP_REPAIR, 'TCP_REPAIR', mode);
}

export function selectQueue(fd: number, queue: typeof C.TCP_RECV_QUEUE | typeof C.TCP_SEND_QUEUE): void {
  setsockoptInt(fd, T, C.TCP_REPAIR_QUEUE, 'TCP_REPAIR_QUEUE', queue);
}

export function getQueueSeq(fd: number): number {
  return getsockoptU32(fd, T, C.TCP_QUEUE_SEQ, 'TCP_QUEUE_SEQ');
}

export function setQueueSeq(fd: number, seq: number): void {
  setsockoptInt(fd, T, C.TCP_QUEUE_SEQ, 'TCP_QUEUE_SEQ', seq >>> 0);
}

// Scratch for the fixed-size structs below: every call is synchronous and reads or fills its struct at once,
// so a capture or an inject allocates none.
// struct tcp_repair_window { u32 snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup } (host order).
const WINDOW = Buffer.alloc(20);
/** tcp_info up to and including tcpi_notsent_bytes. */
const TCP_INFO_QUEUES_END = 148;
const INFO_OPTIONS = Buffer.alloc(TCP_INFO_QUEUES_END);
/** Room for TCP_REPAIR_OPTIONS' struct tcp_repair_opt array: inject sets at most four (MSS, wscale, SACK, TS). */
const REPAIR_OPTS = Buffer.alloc(8 * 8);

export function getWindow(fd: number): TcpRepairWindow {
  const n = getsockoptInto(fd, T, C.TCP_REPAIR_WINDOW, 'TCP_REPAIR_WINDOW', WINDOW);
  if (n < 20) throw new TcpStateError(TCP_ERR.TCP_INFO, `tcp_repair_window: kernel returned ${n} bytes, need 20`);
  const b = WINDOW;
  return { sndWl1: b.readUInt32LE(0), sndWnd: b.readUInt32LE(4), maxWindow: b.readUInt32LE(8), rcvWnd: b.readUInt32LE(12), rcvWup: b.readUInt32LE(16) };
}

export function setWindow(fd: number, w: TcpRepairWindow): void {
  const b = WINDOW;
  b.writeUInt32LE(w.sndWl1 >>> 0, 0);
  b.writeUInt32LE(w.sndWnd >>> 0, 4);
  b.writeUInt32LE(w.maxWindow >>> 0, 8);
  b.writeUInt32LE(w.rcvWnd >>> 0, 12);
  b.writeUInt32LE(w.rcvWup >>> 0, 16);
  setsockoptBuf(fd, T, C.TCP_REPAIR_WINDOW, 'TCP_REPAIR_WINDOW', b);
}

export interface TcpInfoOptions {
  readonly state: number;
  readonly timestamps: boolean;
  readonly sack: boolean;
  readonly wscale: boolean;
  readonly sndWscale: number;
  readonly rcvWscale: number;
  /**
   * What capture needs to size its queues without SIOCINQ and SIOCOUTQ, when the kernel's tcp_info is long enough
   * (Linux 4.6 on): tcpi_bytes_received (rcv_nxt - IRS - 1: every in-order byte received, a FIN counted as one),
   * tcpi_unacked (segments sent and not acknowledged) and tcpi_notsent_bytes (written, not sent yet).
   */
  readonly queues?: { readonly bytesReceived: number; readonly unacked: number; readonly notsentBytes: number };
}

// struct tcp_info: u8 state @0, u8 options @5, u8 snd_wscale:4 | rcv_wscale:4 @6, u32 unacked @24,
// u64 bytes_received @128, u32 notsent_bytes @144 (include/uapi/linux/tcp.h). getsockopt copies
// min(len, sizeof) bytes, so a shorter struct simply leaves `queues` out.
export function getInfoOptions(fd: number): TcpInfoOptions {
  const b = INFO_OPTIONS;
  const n = getsockoptInto(fd, T, C.TCP_INFO, 'TCP_INFO', b);
  if (n < 7) throw new TcpStateError(TCP_ERR.TCP_INFO, `tcp_info: kernel returned ${n} bytes, need 7`);
  const opts = b[5]!;
  const base = {
    state: b[0]!,
    timestamps: (opts & C.TCPI_OPT_TIMESTAMPS) !== 0,
    sack: (opts & C.TCPI_OPT_SACK) !== 0,
    wscale: (opts & C.TCPI_OPT_WSCALE) !== 0,
    sndWscale: b[6]! & 0xf,
    rcvWscale: b[6]! >> 4,
  };
  if (n < TCP_INFO_QUEUES_END) return base;
  const received = b.readBigUInt64LE(128);
  if (received > BigInt(Number.MAX_SAFE_INTEGER)) return base;
  return { ...base, queues: { bytesReceived: Number(received), unacked: b.readUInt32LE(24), notsentBytes: b.readUInt32LE(144) } };
}

/** The struct tcp_info fields baton checks (offsets from include/uapi/linux/tcp.h; all u32). */
export interface TcpInfo {
  readonly state: number;
  /** mss_cache: the segment size the socket sends with now. */
  readonly sndMss: number;
  /** The receiver's estimate of the peer's segment size. */
  readonly rcvMss: number;
  readonly pmtu: number;
  /** The MSS this socket announces. */
  readonly advmss: number;
  readonly segsOut: number;
  readonly segsIn: number;
  /** Data-carrying segments received / sent, counting each segment of a GRO/TSO packet. */
  readonly dataSegsIn: number;
  readonly dataSegsOut: number;
}

const TCP_INFO_FIELDS = {
  sndMss: 16, rcvMss: 20, pmtu: 60, advmss: 84, segsOut: 136, segsIn: 140, dataSegsIn: 152, dataSegsOut: 156,
} as const;
const TCP_INFO_MIN = 160;

export function getTcpInfo(fd: number): TcpInfo {
  const b = getsockoptBuf(fd, T, C.TCP_INFO, 'TCP_INFO', 232);
  if (b.length < TCP_INFO_MIN) throw new TcpStateError(TCP_ERR.TCP_INFO, `tcp_info: kernel returned ${b.length} bytes, need ${TCP_INFO_MIN}`);
  const u32 = (k: keyof typeof TCP_INFO_FIELDS): number => b.readUInt32LE(TCP_INFO_FIELDS[k]);
  return {
    state: b[0]!,
    sndMss: u32('sndMss'),
    rcvMss: u32('rcvMss'),
    pmtu: u32('pmtu'),
    advmss: u32('advmss'),
    segsOut: u32('segsOut'),
    segsIn: u32('segsIn'),
    dataSegsIn: u32('dataSegsIn'),
    dataSegsOut: u32('dataSegsOut'),
  };
}

/** In repair mode TCP_MAXSEG reports mss_clamp, the value to restore. */
export function getMss(fd: number): number {
  return getsockoptU32(fd, T, C.TCP_MAXSEG, 'TCP_MAXSEG');
}

/**
 * TCP_MAXSEG (user_mss). Set before connect in repair mode, connect's tcp_connect_init takes it as
 * mss_clamp and computes the send MSS (mss_cache) from it; see inject.ts.
 */
export function setMss(fd: number, mss: number): void {
  setsockoptInt(fd, T, C.TCP_MAXSEG, 'TCP_MAXSEG', mss);
}

export function getTimestamp(fd: number): number {
  return getsockoptU32(fd, T, C.TCP_TIMESTAMP, 'TCP_TIMESTAMP');
}

export function setTimestamp(fd: number, ts: number): void {
  setsockoptInt(fd, T, C.TCP_TIMESTAMP, 'TCP_TIMESTAMP', ts >>> 0);
}

export interface RepairOption {
  readonly code: number;
  readonly val: number;
}

/** TCP_REPAIR_OPTIONS takes an array of struct tcp_repair_opt { u32 code, val }. */
export function setOptions(fd: number, opts: readonly RepairOption[]): void {
  if (opts.length === 0) return;
  const b = opts.length * 8 <= REPAIR_OPTS.length ? REPAIR_OPTS.subarray(0, opts.length * 8) : Buffer.alloc(opts.length * 8);
  for (let i = 0; i < opts.length; i++) {
    b.writeUInt32LE(opts[i]!.code >>> 0, i * 8);
    b.writeUInt32LE(opts[i]!.val >>> 0, i * 8 + 4);
  }
  setsockoptBuf(fd, T, C.TCP_REPAIR_OPTIONS, 'TCP_REPAIR_OPTIONS', b);
}
