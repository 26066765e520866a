// Inject: re-create a captured connection in this host's kernel (DESIGN.md step 7), in the
// order verified in KERNEL-NOTES.md. The result is a connected, established descriptor that
// sent nothing on the wire except, at repair off, one window probe.
import * as C from '../sys/constants.ts';
import { SysError } from '../sys/errors.ts';
import { bind, close, connect, send, setsockoptInt, socket } from '../sys/socket.ts';
import type { TcpState } from '../wire/tcp-state.ts';
import { TcpStateError } from './errors.ts';
import { selectQueue, setOptions, setQueueSeq, setRepair, setTimestamp, setWindow, type RepairOption } from './repair.ts';

export interface InjectOptions {
  /** Set IP_FREEBIND so the VIP need not be a local address (default false: VIP on lo). */
  readonly freebind?: boolean;
}

/** Largest chunk handed to one send() while refilling a queue; halved on ENOMEM. */
const REFILL_CHUNK = 256 * 1024;

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

/** Returns a connected descriptor owned by the caller. Closes it on any failure. */
export function injectState(s: TcpState, opts: InjectOptions = {}): number {
  const fd = socket(s.family);
  let step = 'repair on';
  try {
    setRepair(fd, C.TCP_REPAIR_ON);
    if (opts.freebind) {
      step = 'freebind';
      setsockoptInt(fd, C.SOL_IP, C.IP_FREEBIND, 'IP_FREEBIND', 1);
    }
    // The receive queue may hold a whole request body; make room before refilling it.
    if (s.recvQueue.length > 64 * 1024) {
      step = 'rcvbuf';
      setsockoptInt(fd, C.SOL_SOCKET, C.SO_RCVBUFFORCE, 'SO_RCVBUFFORCE', Math.min(s.recvQueue.length * 2, 64 << 20));
    }
    step = 'bind';
    bind(fd, { family: s.family, address: s.vip.address, port: s.vip.port });
    step = 'queue seq';
    selectQueue(fd, C.TCP_SEND_QUEUE);
    setQueueSeq(fd, s.sendSeq - s.sendQueue.length);
    selectQueue(fd, C.TCP_RECV_QUEUE);
    setQueueSeq(fd, s.recvSeq - s.recvQueue.length);
    step = 'connect';
    connect(fd, { family: s.family, address: s.client.address, port: s.client.port });
    step = 'options';
    setOptions(fd, repairOptions(s));
    if (s.timestamps) {
      step = 'timestamp';
      setTimestamp(fd, s.tsVal);
    }
    step = 'refill';
    if (s.recvQueue.length > 0) {
      selectQueue(fd, C.TCP_RECV_QUEUE);
      refill(fd, s.recvQueue, 'receive queue');
    }
    if (s.sendQueue.length > 0) {
      selectQueue(fd, C.TCP_SEND_QUEUE);
      refill(fd, s.sendQueue, 'send queue');
    }
    step = 'window';
    setWindow(fd, s.window);
    step = 'repair off';
    setRepair(fd, C.TCP_REPAIR_OFF);
    return fd;
  } catch (err) {
    close(fd);
    const detail = err instanceof Error ? err.message : String(err);
    throw new TcpStateError('BATON_ERR_INJECT', `inject: ${step}: ${detail}`, { cause: err });
  }
}

/** Closes an injected descriptor without a FIN or RST reaching the client. */
export function dropSilently(fd: number): void {
  try {
    setRepair(fd, C.TCP_REPAIR_ON);
  } finally {
    close(fd);
  }
}
