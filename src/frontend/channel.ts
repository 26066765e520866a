// What the front-end needs from a control channel to one back-end (control/ControlClient
// provides it; tests can fake it).
import type { Message } from '../wire/frame.ts';

export type HandoffAck = { readonly ok: true } | { readonly ok: false; readonly code: string; readonly reason: string };

export interface HandoffChannel {
  readonly state: 'connecting' | 'authenticating' | 'up' | 'down';
  /**
   * Phase one: the back-end injects the connection and keeps it aside. `forwarded`: the client is already
   * steered there (only when `forwardFirst`): it delivers at once and no commit follows.
   */
  sendHandoff(id: bigint, blob: Uint8Array, forwarded?: boolean): Promise<HandoffAck>;
  /** The back-end takes forwarded handoffs: packets that reach it before the blob are guarded (GUARD). */
  readonly forwardFirst?: boolean;
  /**
   * Phase two: the client's packets now reach the back-end; deliver the connection. False when the
   * channel is down, so the COMMIT was not sent (the agent then drops the connection on its own).
   */
  commit(id: bigint): boolean;
  /** The front-end will not forward: drop the injected connection silently. */
  abort(id: bigint): boolean;
  /** A move-protocol message (ROUTES, MOVE_REPLY, MOVE_DONE, DRAIN); absent on channels that cannot move. */
  send?(m: Message): boolean;
}
