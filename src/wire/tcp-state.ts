// The TCP protocol state that travels in a handoff blob: everything the back-end needs to
// re-create the connection with TCP_REPAIR. Plain data; captured by tcp/capture.ts,
// encoded by wire/blob.ts, restored by tcp/inject.ts. All 32-bit fields are unsigned.

export type AddressFamily = 4 | 6;

export interface Endpoint {
  /** Textual IPv4 (dotted) or IPv6 address, as Node's net module prints it. */
  readonly address: string;
  readonly port: number;
}

/** struct tcp_repair_window, all u32. */
export interface TcpRepairWindow {
  readonly sndWl1: number;
  readonly sndWnd: number;
  readonly maxWindow: number;
  readonly rcvWnd: number;
  readonly rcvWup: number;
}

export interface TcpState {
  readonly family: AddressFamily;
  /** The client (the socket's remote end). */
  readonly client: Endpoint;
  /** The virtual IP and port (the socket's local end). */
  readonly vip: Endpoint;
  /** TCP_QUEUE_SEQ of the send queue (write_seq): sequence number after the last byte queued to send. u32. */
  readonly sendSeq: number;
  /**
   * TCP_QUEUE_SEQ of the receive queue (rcv_nxt): next sequence number expected from the client. u32.
   * When finReceived, it counts the client's FIN (one sequence number after the last data byte).
   */
  readonly recvSeq: number;
  readonly window: TcpRepairWindow;
  /** Maximum segment size we send with (mss_clamp). */
  readonly mss: number;
  /** Our send window scale (the shift the peer asked for). 0..14. */
  readonly sndWscale: number;
  /** Our receive window scale (the shift we announced). 0..14. */
  readonly rcvWscale: number;
  readonly sackPermitted: boolean;
  /**
   * The client has sent its FIN (half-closed: the socket was in CLOSE_WAIT). The back-end's socket
   * must be restored in CLOSE_WAIT too, its application reading end-of-input after recvQueue.
   */
  readonly finReceived: boolean;
  readonly timestamps: boolean;
  /** TCP_TIMESTAMP: the socket's current timestamp clock value. u32. */
  readonly tsVal: number;
  /**
   * Every byte the client has sent that the application has not answered yet, in order:
   * the bytes the front-end already consumed (the request head it parsed) followed by the
   * unread bytes peeked from the kernel receive queue. Restore sets the receive sequence to
   * recvSeq - recvQueue.length (minus one more for a received FIN) and refills it.
   */
  readonly recvQueue: Uint8Array;
  /** Bytes written by the front-end and not yet acknowledged by the client (normally empty). */
  readonly sendQueue: Uint8Array;
}
