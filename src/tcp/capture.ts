// Capture: read a live, held TCP connection's full state out of the kernel (DESIGN.md step 4)
// and close it silently (step 5). The caller must have stopped Node's reader and held the flow
// at ingress first: in repair mode the kernel still queues and ACKs arriving segments.
import * as C from '../sys/constants.ts';
import { ioctlInt, recv } from '../sys/socket.ts';
import type { Endpoint, TcpState } from '../wire/tcp-state.ts';
import { getInfoOptions, getMss, getQueueSeq, getTimestamp, getWindow, selectQueue, setRepair } from './repair.ts';
import { TcpStateError } from './errors.ts';

export interface CaptureInput {
  readonly fd: number;
  readonly family: 4 | 6;
  readonly client: Endpoint;
  readonly vip: Endpoint;
  /** Bytes the application already read from the socket (the parsed request head and more). */
  readonly consumed: Uint8Array;
}

function peekQueue(fd: number, queue: typeof C.TCP_RECV_QUEUE | typeof C.TCP_SEND_QUEUE, len: number, label: string): Buffer {
  if (len === 0) return Buffer.alloc(0);
  selectQueue(fd, queue);
  const data = recv(fd, len, C.MSG_PEEK | C.MSG_DONTWAIT, `recv(${label}, MSG_PEEK)`);
  if (data.length !== len) throw new TcpStateError('BATON_ERR_CAPTURE_SHORT', `capture: ${label} peeked ${data.length} of ${len} bytes`);
  return data;
}

/**
 * Puts the socket in repair mode and reads its state. Leaves it in repair mode, so closing the
 * descriptor afterwards sends neither FIN nor RST. On error the socket is left in repair
 * mode as well; the caller decides whether to restore it (repairOff) or drop it.
 */
export function captureState(input: CaptureInput): TcpState {
  const { fd } = input;
  const info = getInfoOptions(fd);
  // CLOSE_WAIT is refused too: the client's FIN is already consumed and cannot be re-queued.
  if (info.state !== C.TCP_ESTABLISHED) {
    throw new TcpStateError('BATON_ERR_CAPTURE_STATE', `capture: socket is in TCP state ${info.state}, not established`);
  }
  setRepair(fd, C.TCP_REPAIR_ON);
  // Queue lengths are read in repair mode so that nothing can change between length and peek.
  const inq = ioctlInt(fd, C.SIOCINQ, 'SIOCINQ');
  const outq = ioctlInt(fd, C.SIOCOUTQ, 'SIOCOUTQ');
  selectQueue(fd, C.TCP_RECV_QUEUE);
  const recvSeq = getQueueSeq(fd);
  const unread = peekQueue(fd, C.TCP_RECV_QUEUE, inq, 'receive queue');
  selectQueue(fd, C.TCP_SEND_QUEUE);
  const sendSeq = getQueueSeq(fd);
  const sendQueue = peekQueue(fd, C.TCP_SEND_QUEUE, outq, 'send queue');
  const window = getWindow(fd);
  const mss = getMss(fd);
  const tsVal = getTimestamp(fd);
  const recvQueue = new Uint8Array(input.consumed.length + unread.length);
  recvQueue.set(input.consumed, 0);
  recvQueue.set(unread, input.consumed.length);
  return {
    family: input.family,
    client: input.client,
    vip: input.vip,
    sendSeq,
    recvSeq,
    window,
    mss,
    sndWscale: info.wscale ? info.sndWscale : 0,
    rcvWscale: info.wscale ? info.rcvWscale : 0,
    sackPermitted: info.sack,
    timestamps: info.timestamps,
    tsVal,
    recvQueue,
    sendQueue: new Uint8Array(sendQueue),
  };
}

/** Leaves repair mode without a window probe (used to give a socket back to its owner). */
export function repairOff(fd: number): void {
  setRepair(fd, C.TCP_REPAIR_OFF_NO_WP);
}
