// What LARD and LARD/R share (Pai et al., "Locality-Aware Request Distribution in
// Cluster-based Network Servers", ASPLOS 1998): options, the overload test, the front-end's
// admission bound, and a bounded map from targets to their assignment.

import { z } from 'zod';
import { PolicyConfigError, fieldPath } from './errors.ts';
import { isEligible } from './eligible.ts';
import { requestKeySchema } from './key.ts';
import type { BackendView } from './types.ts';

export const LARD_DEFAULTS = {
  tLow: 25,
  tHigh: 65,
  /** LARD/R: seconds a server set must stay unchanged before it sheds its most-loaded member. */
  k: 20,
  /** Targets remembered; the least recently requested assignment is forgotten beyond this. */
  maxTargets: 100_000,
} as const;

export const lardOptionsSchema = z
  .strictObject({
    /** Load (active connections) below which a back-end counts as underused. */
    tLow: z.number().int().positive().optional(),
    /** Load above which a back-end counts as overloaded when another one is underused. */
    tHigh: z.number().int().positive().optional(),
    /** LARD/R only (ignored by LARD): seconds, > 0. */
    k: z.number().positive().finite().optional(),
    /** What names a target; default 'path'. */
    key: requestKeySchema.optional(),
    maxTargets: z.number().int().positive().optional(),
  })
  .refine((o) => (o.tLow ?? LARD_DEFAULTS.tLow) < (o.tHigh ?? LARD_DEFAULTS.tHigh), {
    message: 'tLow must be less than tHigh',
    path: ['tLow'],
  });

export type LardOptions = z.infer<typeof lardOptionsSchema>;

export interface LardConfig {
  readonly tLow: number;
  readonly tHigh: number;
  readonly kMs: number;
  readonly maxTargets: number;
}

export const lardConfig = (options: LardOptions): LardConfig => {
  const r = lardOptionsSchema.safeParse(options);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new PolicyConfigError(
      `lard options: ${issue === undefined ? 'invalid' : `${fieldPath(issue.path)}: ${issue.message}`}`,
    );
  }
  return {
    tLow: options.tLow ?? LARD_DEFAULTS.tLow,
    tHigh: options.tHigh ?? LARD_DEFAULTS.tHigh,
    kMs: (options.k ?? LARD_DEFAULTS.k) * 1000,
    maxTargets: options.maxTargets ?? LARD_DEFAULTS.maxTargets,
  };
};

/**
 * The front-end's bound on outstanding requests, S = (n-1)·T_high + T_low - 1. It keeps the
 * cluster from ever having every node above T_high at once (when all are loaded, at least one
 * is below T_low), so a node's load above 2·T_high can only come from a burst of one target.
 */
export const lardAdmissionLimit = (n: number, tLow: number, tHigh: number): number =>
  n <= 0 ? 0 : (n - 1) * tHigh + tLow - 1;

/** Move (LARD) or grow (LARD/R) when the chosen node is overloaded and there is somewhere better. */
export const overloaded = (load: number, minLoad: number, c: LardConfig): boolean =>
  (load > c.tHigh && minLoad < c.tLow) || load >= 2 * c.tHigh;

/**
 * The eligible back-end with the fewest active connections (LARD's load ignores weights; weight
 * only gates eligibility). Ties go to the first found from `start`, which callers rotate.
 */
export const leastActive = (backends: readonly BackendView[], start: number): BackendView | undefined => {
  const n = backends.length;
  let best: BackendView | undefined;
  for (let i = 0; i < n; i++) {
    const b = backends[(start + i) % n];
    if (b !== undefined && isEligible(b) && (best === undefined || b.active < best.active)) best = b;
  }
  return best;
};

/** Map with least-recently-used eviction: get() refreshes, set() evicts the oldest beyond the cap. */
export class BoundedLru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.capacity) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
  }

  peek(key: K): V | undefined {
    return this.#map.get(key);
  }
}
