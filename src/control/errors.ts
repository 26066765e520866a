// Error codes of the control channel. Expected failures of a handoff are values (HandoffAck
// with one of these codes); only misuse (bad options or arguments) throws ControlError.

import { BatonError } from '../wire/errors.ts';

export const CONTROL_ERR = {
  /** sendHandoff while the channel is not up. Nothing was sent. */
  CHANNEL_DOWN: 'BATON_ERR_CHANNEL_DOWN',
  /** The connection dropped (or the client was closed) before the ACK. The agent will not deliver it. */
  CHANNEL_LOST: 'BATON_ERR_CHANNEL_LOST',
  /** Too many bytes queued behind a slow socket. Nothing was sent. */
  CHANNEL_BUSY: 'BATON_ERR_CHANNEL_BUSY',
  /** No ACK within handoffTimeoutMs. ABORT was sent; a late ACK is ignored. The agent will not deliver it. */
  HANDOFF_TIMEOUT: 'BATON_ERR_HANDOFF_TIMEOUT',
  /** The HANDOFF frame would exceed maxFrameBytes. Nothing was sent. */
  HANDOFF_TOO_LARGE: 'BATON_ERR_HANDOFF_TOO_LARGE',
  /** A handoff with the same id is already in flight on this channel (checked on both ends). */
  DUPLICATE_ID: 'BATON_ERR_DUPLICATE_ID',
  /** The agent's onHandoff threw; the reason is the error's message. */
  INJECT: 'BATON_ERR_INJECT',
  /** Invalid option or argument (thrown). */
  INVALID_ARGUMENT: 'BATON_ERR_INVALID_ARGUMENT',
} as const;

export class ControlError extends BatonError {}

export function invalidArgument(message: string): ControlError {
  return new ControlError(CONTROL_ERR.INVALID_ARGUMENT, `control: ${message}`);
}
