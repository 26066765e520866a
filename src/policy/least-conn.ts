// Weighted least connections: the eligible back-end with the fewest active connections per
// unit of weight. Ties rotate, so an idle pool is filled evenly rather than from the front.

import { NO_ELIGIBLE, leastLoaded, picked } from './eligible.ts';
import type { BackendView, PickResult, Policy } from './types.ts';

export class LeastConnections implements Policy {
  readonly name = 'lc';
  #start = 0;

  pick(_req: unknown, backends: readonly BackendView[]): PickResult {
    if (backends.length === 0) return NO_ELIGIBLE;
    const start = this.#start++ % backends.length;
    if (this.#start >= 0x40000000) this.#start = 0;
    const best = leastLoaded(backends, start);
    return best === undefined ? NO_ELIGIBLE : picked(best);
  }
}
