// Smooth weighted round robin, as in nginx (ngx_http_upstream_get_peer): every pick adds
// each eligible back-end's weight to its running score, takes the highest score and
// subtracts the total weight from it. Over any window of sum(weights) picks with a fixed
// set, each back-end is chosen exactly weight times, interleaved rather than in bursts.

import { NO_ELIGIBLE, isEligible, picked } from './eligible.ts';
import type { BackendId, BackendView, PickResult, Policy } from './types.ts';

export class WeightedRoundRobin implements Policy {
  readonly name = 'wrr';
  /** Running score per back-end. Entries for back-ends that left are pruned lazily. */
  readonly #current = new Map<BackendId, number>();

  pick(_req: unknown, backends: readonly BackendView[]): PickResult {
    let total = 0;
    let best: BackendView | undefined;
    let bestScore = -Infinity;
    for (const b of backends) {
      if (!isEligible(b)) continue;
      const score = (this.#current.get(b.id) ?? 0) + b.weight;
      this.#current.set(b.id, score);
      total += b.weight;
      if (score > bestScore) {
        best = b;
        bestScore = score;
      }
    }
    if (best === undefined) return NO_ELIGIBLE;
    this.#current.set(best.id, bestScore - total);
    if (this.#current.size > 2 * backends.length + 16) this.#prune(backends);
    return picked(best);
  }

  #prune(backends: readonly BackendView[]): void {
    const present = new Set(backends.map((b) => b.id));
    for (const id of this.#current.keys()) if (!present.has(id)) this.#current.delete(id);
  }
}
