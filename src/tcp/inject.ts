// Inject: re-create a captured connection in this host's kernel (DESIGN.md step 7), in the
// order verified in KERNEL-NOTES.md. The result is a connected descriptor (ESTABLISHED, or
// CLOSE_WAIT for a client that had half-closed) that sent nothing on the wire (except, for a
// half-closed client, the ACK of the re-created FIN).
import * as C from '../sys/constants.ts';
import { SysError } from '../sys/errors.ts';
import { bind, connect, send, setsockoptInt, socket } from '../sys/socket.ts';
import type { TcpRepairWindow, TcpState } from '../wire/tcp-state.ts';
import { TCP_ERR, TcpStateError } from './errors.ts';
import { OwnedFd } from './fd.ts';
import { sendFin } from './fin.ts';
import {
  getTcpInfo,
  selectQueue,
  setMss,
  setOptions,
  setQueueSeq,
  setRepair,
  setTimestamp,
  setWindow,
  type RepairOption,
} from './repair.ts';

export interface InjectOptions {
  /** Set IP_FREEBIND so the VIP need not be a local address (default false: VIP on lo). */
  readonly freebind?: boolean;
}

/** Receive buffer of an injected connection that arrives with a large window (an upload): 4 MiB, as net.core.rmem_max's usual value. */
const UPLOAD_RCVBUF = 4 << 20;
/** Largest chunk handed to one send() while refilling a queue; halved on ENOMEM. */
const REFILL_CHUNK = 256 * 1024;
/** How many times inject looks for the re-created FIN to have been taken (it loops back in softirq). */
const FIN_POLLS = 50;

function refill(fd: number, data: Uint8Array, label: string): void {
  let off = 0;
  let chunk = REFILL_CHUNK;
  while (off < data.length) {
    const part = Buffer.from(data.buffer, data.byteOffset + off, Math.min(chunk, data.length - off));
    try {
      off += send(fd, part, 0, `send(${label})`);
    } catch (err) {
      if (err instanceof SysError && err.errnoName === 'ENOMEM' && chunk > 4096) {
        chunk >>= 1;
        continue;
      }
      throw err;
    }
  }
}

function repairOptions(s: TcpState): RepairOption[] {
  const opts: RepairOption[] = [{ code: C.TCPOPT_MSS, val: s.mss }];
  if (s.sndWscale !== 0 || s.rcvWscale !== 0) {
    opts.push({ code: C.TCPOPT_WINDOW, val: s.sndWscale | (s.rcvWscale << 16) });
  }
  if (s.sackPermitted) opts.push({ code: C.TCPOPT_SACK_PERM, val: 0 });
  if (s.timestamps) opts.push({ code: C.TCPOPT_TIMESTAMP, val: 0 });
  return opts;
}

/** Sequence number of the first byte of recvQueue: the client's FIN, when received, is one more. */
export function recvQueueStart(s: TcpState): number {
  return (s.recvSeq - s.recvQueue.length - (s.finReceived ? 1 : 0)) >>> 0;
}

/**
 * The window to restore. Before the FIN is re-created the socket's rcv_nxt is recvSeq - 1, and
 * TCP_REPAIR_WINDOW refuses an rcv_wup after rcv_nxt; the front-end acknowledged the FIN, so its
 * rcv_wup is usually recvSeq. Move it back by one and widen rcv_wnd by one, so the window's right
 * edge stays where it was (CRIU does the same).
 */
export function windowToRestore(s: TcpState): TcpRepairWindow {
  if (!s.finReceived) return s.window;
  const dataEnd = (s.recvSeq - 1) >>> 0;
  const ahead = (s.window.rcvWup - dataEnd) | 0;
  if (ahead <= 0) return s.window;
  return { ...s.window, rcvWup: dataEnd, rcvWnd: (s.window.rcvWnd + ahead) >>> 0 };
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Re-creates the client's FIN and waits (briefly, synchronously) until the socket has taken it. */
function restoreFin(fd: number, s: TcpState): void {
  sendFin(s);
  for (let i = 0; i < FIN_POLLS; i++) {
    if (getTcpInfo(fd).state === C.TCP_CLOSE_WAIT) return;
    // The looped-back packet is normally processed before send() returns; under load softirq work
    // may be deferred to ksoftirqd.
    sleepMs(i < 10 ? 0 : 1);
  }
  throw new TcpStateError(TCP_ERR.INJECT_FIN, `inject: re-created FIN not taken (state ${getTcpInfo(fd).state})`);
}

/** Returns the connected descriptor; on any failure it is closed (silently) and an error thrown. */
export function injectState(s: TcpState, opts: InjectOptions = {}): OwnedFd {
  const owned = new OwnedFd(socket(s.family));
  const fd = owned.fd;
  let step = 'repair on';
  try {
    setRepair(fd, C.TCP_REPAIR_ON);
    if (opts.freebind) {
      step = 'freebind';
      setsockoptInt(fd, C.SOL_IP, C.IP_FREEBIND, 'IP_FREEBIND', 1);
    }
    // The receive queue may hold a whole request body, and the client may send up to the window's
    // right edge: make room for both, or segments the window allows are dropped for memory. Setting the
    // buffer turns its autotuning off for good, so it is set no smaller than UPLOAD_RCVBUF: an upload still
    // streaming would otherwise stay at the window it had at the front-end for the rest of its body.
    const room = Math.max(s.recvQueue.length, s.window.rcvWnd);
    if (room > 64 * 1024) {
      step = 'rcvbuf';
      setsockoptInt(fd, C.SOL_SOCKET, C.SO_RCVBUFFORCE, 'SO_RCVBUFFORCE', Math.min(Math.max(room * 2, UPLOAD_RCVBUF), 64 << 20));
    }
    step = 'bind';
    bind(fd, { family: s.family, address: s.vip.address, port: s.vip.port });
    step = 'queue seq';
    selectQueue(fd, C.TCP_SEND_QUEUE);
    setQueueSeq(fd, s.sendSeq - s.sendQueue.length);
    selectQueue(fd, C.TCP_RECV_QUEUE);
    setQueueSeq(fd, recvQueueStart(s));
    // The send MSS in use (mss_cache) is computed once, by connect (tcp_connect_init -> tcp_sync_mss),
    // from the route's MTU and mss_clamp; TCP_REPAIR_OPTIONS' MSS later sets mss_clamp only, and
    // mss_cache is recomputed only when the path MTU changes. Without this, connect clamps to the
    // default 536 (524 with timestamps) and the first responses go out in tiny segments.
    // tcp_connect_init takes user_mss as mss_clamp, so connect computes the right size.
    step = 'mss';
    setMss(fd, s.mss);
    step = 'connect';
    connect(fd, { family: s.family, address: s.client.address, port: s.client.port });
    step = 'options';
    setOptions(fd, repairOptions(s));
    if (s.timestamps) {
      step = 'timestamp';
      setTimestamp(fd, s.tsVal);
    }
    step = 'refill';
    // The receive queue is still the selected one (queue seq above): no select before its refill.
    if (s.recvQueue.length > 0) refill(fd, s.recvQueue, 'receive queue');
    if (s.sendQueue.length > 0) {
      selectQueue(fd, C.TCP_SEND_QUEUE);
      refill(fd, s.sendQueue, 'send queue');
    }
    step = 'window';
    setWindow(fd, windowToRestore(s));
    if (s.finReceived) {
      step = 'fin';
      restoreFin(fd, s);
    }
    // Without the window probe: the probe carries seq snd_una - 1, which the client discards as an
    // old segment (it answers with a duplicate ACK and ignores the window in it), and it goes out
    // before the front-end forwards, so the client's answer is dropped anyway. A client whose window
    // had closed (an upload streaming into the front-end's full buffer) then waited for its own
    // zero-window probe, ~200 ms. Without it, the restored window stays as small as the front-end
    // last advertised, so the application's first read after commit sends a real window update
    // (tcp_cleanup_rbuf), with seq snd_nxt, which the client takes.
    step = 'repair off';
    setRepair(fd, C.TCP_REPAIR_OFF_NO_WP);
    return owned;
  } catch (err) {
    owned.dropSilently();
    const detail = err instanceof Error ? err.message : String(err);
    throw new TcpStateError(TCP_ERR.INJECT, `inject: ${step}: ${detail}`, { cause: err });
  }
}
