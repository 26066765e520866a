// Capture: read a live, held TCP connection's full state out of the kernel (DESIGN.md step 4)
// and close it silently (step 5). The caller must have stopped Node's reader and held the flow
// at ingress first: in repair mode the kernel still queues and ACKs arriving segments.
import * as C from '../sys/constants.ts';
import { ioctlInt, recv, recvInto } from '../sys/socket.ts';
import { concatBytes } from '../wire/bytes.ts';
import type { Endpoint, TcpState } from '../wire/tcp-state.ts';
import { getInfoOptions, getMss, getQueueSeq, getTimestamp, getWindow, selectQueue, setRepair } from './repair.ts';
import { TCP_ERR, TcpStateError } from './errors.ts';

const STATE_NAMES: Record<number, string> = {
  [C.TCP_ESTABLISHED]: 'ESTABLISHED', [C.TCP_SYN_SENT]: 'SYN_SENT', [C.TCP_SYN_RECV]: 'SYN_RECV',
  [C.TCP_FIN_WAIT1]: 'FIN_WAIT1', [C.TCP_FIN_WAIT2]: 'FIN_WAIT2', [C.TCP_TIME_WAIT]: 'TIME_WAIT',
  [C.TCP_CLOSE]: 'CLOSE', [C.TCP_CLOSE_WAIT]: 'CLOSE_WAIT', [C.TCP_LAST_ACK]: 'LAST_ACK',
  [C.TCP_LISTEN]: 'LISTEN', [C.TCP_CLOSING]: 'CLOSING',
};

export interface CaptureInput {
  readonly fd: number;
  readonly family: 4 | 6;
  readonly client: Endpoint;
  readonly vip: Endpoint;
  /** Bytes the application already read from the socket (the parsed request head and more). */
  readonly consumed: Uint8Array;
  /**
   * `consumed` is every byte ever read from this socket (a front-end's connection, read by nobody else): tcp_info's
   * count of bytes received then sizes the receive queue, and capture asks no SIOCINQ.
   */
  readonly consumedIsAll?: boolean;
}

/** Peeks the queue the caller selected last (TCP_REPAIR_QUEUE); one recv. */
function peekQueue(fd: number, len: number, label: string): Buffer {
  if (len === 0) return Buffer.alloc(0);
  const data = recv(fd, len, C.MSG_PEEK | C.MSG_DONTWAIT, `recv(${label}, MSG_PEEK)`);
  if (data.length !== len) throw new TcpStateError(TCP_ERR.CAPTURE_SHORT, `capture: ${label} peeked ${data.length} of ${len} bytes`);
  return data;
}

/**
 * Peeks the whole receive queue (selected). Its length is what was received less what was read (`consumed`) and a
 * received FIN (tcpi_bytes_received counts it; the queue holds no byte for it), confirmed by a peek one byte
 * longer: SIOCINQ is asked only when tcp_info could not tell or the queue is not that long (a peek stops at urgent
 * data, for one). `bytesReceived` only when `consumed` is all that was read (CaptureInput.consumedIsAll). With
 * SIOCOUTQ skipped too, a front-end's capture makes two system calls fewer.
 */
export function peekReceiveQueue(fd: number, consumed: number, finReceived: boolean, bytesReceived: number | undefined): Buffer {
  if (bytesReceived !== undefined) {
    const expected = bytesReceived - consumed - (finReceived ? 1 : 0);
    if (expected >= 0) {
      const into = Buffer.alloc(expected + 1);
      const n = recvInto(fd, into, C.MSG_PEEK | C.MSG_DONTWAIT, 'recv(receive queue, MSG_PEEK)');
      if (n === expected || (n === -1 && expected === 0)) return into.subarray(0, expected);
    }
  }
  // SIOCINQ excludes a received FIN; TCP_QUEUE_SEQ (rcv_nxt) includes it.
  return peekQueue(fd, ioctlInt(fd, C.SIOCINQ, 'SIOCINQ'), 'receive queue');
}

/** The same bytes as a plain Uint8Array view (a blob's queues are compared as such). */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

/**
 * Puts the socket in repair mode and reads its state. Leaves it in repair mode, so closing the
 * descriptor afterwards sends neither FIN nor RST. On error the socket is left in repair
 * mode as well; the caller decides whether to restore it (repairOff) or drop it.
 */
export function captureState(input: CaptureInput): TcpState {
  const { fd } = input;
  // Repair mode first, then the state: a FIN that arrived just before is seen (the flow is held, so
  // nothing arrives after).
  setRepair(fd, C.TCP_REPAIR_ON);
  const info = getInfoOptions(fd);
  // CLOSE_WAIT: the client sent its request and half-closed (its FIN is counted in rcv_nxt; inject
  // re-creates it). Any state where this side has closed (FIN_WAIT*, LAST_ACK, CLOSING, ...) or the
  // connection is gone cannot be handed off: the front-end never closes a socket it may hand off.
  if (info.state !== C.TCP_ESTABLISHED && info.state !== C.TCP_CLOSE_WAIT) {
    const name = STATE_NAMES[info.state] ?? String(info.state);
    throw new TcpStateError(TCP_ERR.CAPTURE_STATE, `capture: socket is in TCP state ${name}, not ESTABLISHED or CLOSE_WAIT`);
  }
  const finReceived = info.state === C.TCP_CLOSE_WAIT;
  // Queue lengths are read in repair mode so that nothing can change between length and peek. Nothing was sent
  // (no segment unacknowledged, nothing unsent: a front-end that never answered) is an empty send queue; otherwise
  // SIOCOUTQ.
  const q = info.queues;
  const outq = q !== undefined && q.unacked === 0 && q.notsentBytes === 0 ? 0 : ioctlInt(fd, C.SIOCOUTQ, 'SIOCOUTQ');
  selectQueue(fd, C.TCP_RECV_QUEUE);
  const recvSeq = getQueueSeq(fd);
  const unread = peekReceiveQueue(fd, input.consumed.length, finReceived, input.consumedIsAll === true ? q?.bytesReceived : undefined);
  selectQueue(fd, C.TCP_SEND_QUEUE);
  const sendSeq = getQueueSeq(fd);
  const sendQueue = peekQueue(fd, outq, 'send queue');
  const window = getWindow(fd);
  const mss = getMss(fd);
  const tsVal = getTimestamp(fd);
  // Most handoffs read nothing before the capture (the head was peeked at accept): the peeked bytes are the queue.
  const recvQueue = input.consumed.length === 0 ? plain(unread) : concatBytes([input.consumed, unread]);
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
    finReceived,
    tsVal,
    recvQueue,
    sendQueue: plain(sendQueue),
  };
}

/** Leaves repair mode without a window probe (used to give a socket back to its owner). */
export function repairOff(fd: number): void {
  setRepair(fd, C.TCP_REPAIR_OFF_NO_WP);
}


