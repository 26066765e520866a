// diagnostics_channel names published by the control channel. Free when nobody subscribes.
// Messages never contain the secret, nonces or proofs.

import { channel } from 'node:diagnostics_channel';

export type Side = 'client' | 'server';

/** A connection finished authentication. */
export interface UpMessage {
  readonly side: Side;
  /** Our name. */
  readonly name: string;
  /** The peer's name (server side: from HELLO; client side: the configured address). */
  readonly peer: string;
  /** Remote address as "host:port". */
  readonly remote: string;
}

/** An authenticated connection ended. */
export interface DownMessage extends UpMessage {
  readonly reason: string;
}

/** A connection was refused or abandoned before authentication completed. */
export interface AuthFailedMessage {
  readonly side: Side;
  readonly name: string;
  readonly remote: string;
  /** 'bad-proof', 'timeout', 'unexpected-frame', 'frame-error', 'version', 'closed'. */
  readonly reason: string;
}

export const CHANNEL_UP = 'baton:control:up';
export const CHANNEL_DOWN = 'baton:control:down';
export const CHANNEL_AUTH_FAILED = 'baton:control:auth-failed';

const up = channel(CHANNEL_UP);
const down = channel(CHANNEL_DOWN);
const authFailed = channel(CHANNEL_AUTH_FAILED);

export function publishUp(m: UpMessage): void {
  if (up.hasSubscribers) up.publish(m);
}

export function publishDown(m: DownMessage): void {
  if (down.hasSubscribers) down.publish(m);
}

export function publishAuthFailed(m: AuthFailedMessage): void {
  if (authFailed.hasSubscribers) authFailed.publish(m);
}
