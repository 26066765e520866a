// Errors of the capture/inject layer: a stable code (from TCP_ERR) and a lowercase context.
import { BatonError } from '../wire/errors.ts';

export const TCP_ERR = {
  /** The socket is in a TCP state that cannot be handed off (not ESTABLISHED or CLOSE_WAIT). */
  CAPTURE_STATE: 'BATON_ERR_CAPTURE_STATE',
  /** A peeked queue was shorter than the kernel said. */
  CAPTURE_SHORT: 'BATON_ERR_CAPTURE_SHORT',
  /** A step of inject failed; the message names the step, `cause` the system error. */
  INJECT: 'BATON_ERR_INJECT',
  /** The client's FIN could not be re-created (raw send, or the socket did not take it). */
  INJECT_FIN: 'BATON_ERR_INJECT_FIN',
  /** An OwnedFd was used after it was closed or given up. */
  FD_CLOSED: 'BATON_ERR_FD_CLOSED',
  /** The kernel's struct tcp_info is shorter than expected. */
  TCP_INFO: 'BATON_ERR_TCP_INFO',
} as const;

export class TcpStateError extends BatonError {}
