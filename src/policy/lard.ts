// LARD: each target is served by one back-end, so each back-end's cache holds its share of the
// working set instead of all of it. A new target goes to the least-loaded back-end; a target is
// moved to the least-loaded back-end when its node is overloaded (see overloaded()).
// Load is active connections, which the front-end knows (BackendView.active).

import { NO_ELIGIBLE, findEligible } from './eligible.ts';
import { keyExtractor } from './key.ts';
import {
  BoundedLru,
  lardAdmissionLimit,
  lardConfig,
  leastActive,
  overloaded,
  type LardConfig,
  type LardOptions,
} from './lard-common.ts';
import type { AdmissionControl, BackendId, BackendView, PickResult, Policy, RequestInfo } from './types.ts';

export class Lard implements Policy, AdmissionControl {
  readonly name = 'lard';
  readonly config: LardConfig;
  readonly #key: (req: RequestInfo) => string;
  readonly #assigned: BoundedLru<string, BackendId>;
  #rotate = 0;

  constructor(options: LardOptions = {}) {
    this.config = lardConfig(options);
    this.#key = keyExtractor(options.key);
    this.#assigned = new BoundedLru(this.config.maxTargets);
  }

  pick(req: RequestInfo, backends: readonly BackendView[]): PickResult {
    if (backends.length === 0) return NO_ELIGIBLE;
    this.#rotate = (this.#rotate + 1) % backends.length;
    const least = leastActive(backends, this.#rotate);
    if (least === undefined) return NO_ELIGIBLE;
    const target = this.#key(req);
    const id = this.#assigned.get(target);
    const current = id === undefined ? undefined : findEligible(backends, id);
    if (current !== undefined && !overloaded(current.active, least.active, this.config)) {
      return { kind: 'backend', id: current.id };
    }
    this.#assigned.set(target, least.id);
    return { kind: 'backend', id: least.id };
  }

  maxOutstanding(eligibleBackends: number): number {
    return lardAdmissionLimit(eligibleBackends, this.config.tLow, this.config.tHigh);
  }

  /** The back-end a target is assigned to, if any (for tests and introspection). */
  assignment(target: string): BackendId | undefined {
    return this.#assigned.peek(target);
  }
}
