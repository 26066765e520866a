// Codes the front-end itself gives a failed handoff attempt (the channel gives the others:
// control/errors.ts CONTROL_ERR). Failures of an attempt are values, never thrown.
export const FRONTEND_ERR = {
  /** The router picked a back-end that has no control channel (e.g. mid-reload). Nothing was sent. */
  NO_CHANNEL: 'BATON_ERR_NO_CHANNEL',
  /** sendHandoff threw instead of answering (misuse); treated as a refusal. */
  CHANNEL: 'BATON_ERR_CHANNEL',
} as const;
