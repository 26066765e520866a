// The control channel between a front-end (ControlClient) and a back-end agent (ControlServer).
// See client.ts and server.ts for the contracts; frames are in wire/frame.ts.

export { ControlClient, type ClientState, type ControlClientEvents, type ControlClientOptions, type HandoffAck } from './client.ts';
export {
  ControlServer,
  type ControlServerEvents,
  type ControlServerOptions,
  type HandoffContext,
  type HandoffResult,
  type PeerInfo,
} from './server.ts';
export { CONTROL_ERR, ControlError } from './errors.ts';
export { MIN_SECRET_BYTES, PROTO_VERSION, type SecretInput } from './auth.ts';
export { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
export {
  CHANNEL_AUTH_FAILED,
  CHANNEL_DOWN,
  CHANNEL_UP,
  type AuthFailedMessage,
  type DownMessage,
  type UpMessage,
} from './diagnostics.ts';
export type { FlowInfo } from '../wire/frame.ts';
