// Liveness bounds for injected connections. A handed-off connection whose client is gone (its RSTs
// went to a front-end that no longer steers them, a client that vanished) would otherwise live on
// at the back-end indefinitely: idle forever, or probing a zero window forever. TCP_USER_TIMEOUT
// bounds how long sent data may stay unacknowledged (including zero-window probing); keepalive
// finds an idle peer that is gone. Either ends the socket with ETIMEDOUT, and the normal close
// path reports the flow end.
import * as C from '../sys/constants.ts';
import { setsockoptInt } from '../sys/socket.ts';

export interface Liveness {
  /** TCP_USER_TIMEOUT: longest time sent data may stay unacknowledged, ms (0 = kernel default). */
  readonly userTimeoutMs: number;
  /** TCP_KEEPIDLE: idle time before the first keepalive probe, s. */
  readonly keepaliveIdleS: number;
  /** TCP_KEEPINTVL: time between keepalive probes, s. */
  readonly keepaliveIntervalS: number;
  /** TCP_KEEPCNT: unanswered probes before the connection is dropped. */
  readonly keepaliveCount: number;
}

export const DEFAULT_LIVENESS: Liveness = {
  userTimeoutMs: 30_000,
  keepaliveIdleS: 60,
  keepaliveIntervalS: 10,
  keepaliveCount: 3,
};

/** Sets the bounds on a connected TCP socket (5 setsockopt calls). */
export function setLiveness(fd: number, l: Liveness): void {
  const T = C.IPPROTO_TCP;
  setsockoptInt(fd, T, C.TCP_USER_TIMEOUT, 'TCP_USER_TIMEOUT', l.userTimeoutMs);
  setsockoptInt(fd, T, C.TCP_KEEPIDLE, 'TCP_KEEPIDLE', l.keepaliveIdleS);
  setsockoptInt(fd, T, C.TCP_KEEPINTVL, 'TCP_KEEPINTVL', l.keepaliveIntervalS);
  setsockoptInt(fd, T, C.TCP_KEEPCNT, 'TCP_KEEPCNT', l.keepaliveCount);
  setsockoptInt(fd, C.SOL_SOCKET, C.SO_KEEPALIVE, 'SO_KEEPALIVE', 1);
}
