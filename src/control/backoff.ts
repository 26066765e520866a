// Reconnect delays: exponential, capped, with jitter so that front-ends that lost the same agent
// do not all come back in the same millisecond. Pure; randomness is passed in.

export interface BackoffOptions {
  /** First delay, ms. Default 100. */
  readonly initialMs: number;
  /** Largest delay, ms. Default 5000. */
  readonly maxMs: number;
  /** Growth per failed attempt. Default 2. */
  readonly factor: number;
  /** Fraction of the delay that is random, 0..1: the delay is in [d * (1 - jitter), d]. Default 0.2. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.2 };

/** Validates and fills in defaults; returns an error message instead of throwing. */
export function resolveBackoff(o: Partial<BackoffOptions> | undefined): BackoffOptions | string {
  const b = { ...DEFAULT_BACKOFF, ...o };
  if (!(Number.isFinite(b.initialMs) && b.initialMs >= 0)) return 'backoff.initialMs must be >= 0';
  if (!(Number.isFinite(b.maxMs) && b.maxMs >= b.initialMs)) return 'backoff.maxMs must be >= backoff.initialMs';
  if (!(Number.isFinite(b.factor) && b.factor >= 1)) return 'backoff.factor must be >= 1';
  if (!(Number.isFinite(b.jitter) && b.jitter >= 0 && b.jitter <= 1)) return 'backoff.jitter must be in [0, 1]';
  return b;
}

/** Delay before reconnect attempt number `attempt` (0 for the first); random() is in [0, 1). */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number): number {
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** Math.min(attempt, 64));
  return Math.round(base * (1 - o.jitter * random()));
}
