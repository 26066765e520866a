// Which back-ends a policy may choose, and the shared answer when there are none.
// Every policy goes through here so "down" and "weight 0" mean the same thing everywhere.

import type { BackendId, BackendView, PickResult } from './types.ts';

/** A back-end takes new requests only when it is up and has a positive, finite weight. */
export const isEligible = (b: BackendView): boolean =>
  b.up && Number.isFinite(b.weight) && b.weight > 0;

export const eligibleBackends = (backends: readonly BackendView[]): BackendView[] =>
  backends.filter(isEligible);

/** The back-end with this id if it is present and eligible. */
export const findEligible = (backends: readonly BackendView[], id: BackendId): BackendView | undefined => {
  for (const b of backends) if (b.id === id) return isEligible(b) ? b : undefined;
  return undefined;
};

export const NO_ELIGIBLE = { kind: 'none', reason: 'no eligible back-end' } as const satisfies PickResult;

export const picked = (b: BackendView): PickResult => ({ kind: 'backend', id: b.id });

/**
 * The eligible back-end with the fewest active connections per unit of weight, or undefined.
 * Ties go to the first in array order, so callers that want rotation pass a rotated start.
 * Compares a.active/a.weight < b.active/b.weight by cross-multiplication (weights are > 0).
 */
export const leastLoaded = (
  backends: readonly BackendView[],
  start = 0,
): BackendView | undefined => {
  const n = backends.length;
  let best: BackendView | undefined;
  for (let i = 0; i < n; i++) {
    const b = backends[(start + i) % n];
    if (b === undefined || !isEligible(b)) continue;
    if (best === undefined || b.active * best.weight < best.active * b.weight) best = b;
  }
  return best;
};
