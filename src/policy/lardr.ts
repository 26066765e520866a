// LARD with replication (LARD/R): each target has a server set. Requests go to the set's
// least-loaded member; when that member is overloaded the least-loaded back-end in the cluster
// joins the set; a set that has not changed for K seconds sheds its most-loaded member, so
// replication follows demand down as well as up. Pseudo-code as in Pai et al. 1998, fig. 4.

import { NO_ELIGIBLE, isEligible } from './eligible.ts';
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

interface ServerSet {
  members: BackendId[];
  /** nowMs of the last change. */
  lastMod: number;
}

export class LardReplicated implements Policy, AdmissionControl {
  readonly name = 'lardr';
  readonly config: LardConfig;
  readonly #key: (req: RequestInfo) => string;
  readonly #sets: BoundedLru<string, ServerSet>;
  #rotate = 0;

  constructor(options: LardOptions = {}) {
    this.config = lardConfig(options);
    this.#key = keyExtractor(options.key);
    this.#sets = new BoundedLru(this.config.maxTargets);
  }

  pick(req: RequestInfo, backends: readonly BackendView[], nowMs: number): PickResult {
    if (backends.length === 0) return NO_ELIGIBLE;
    this.#rotate = (this.#rotate + 1) % backends.length;
    const least = leastActive(backends, this.#rotate);
    if (least === undefined) return NO_ELIGIBLE;
    const target = this.#key(req);
    const set = this.#sets.get(target);

    // Members that left or went down are dropped; that counts as a change of the set.
    let live: BackendView[] = [];
    if (set !== undefined) {
      for (const id of set.members) {
        const b = backends.find((x) => x.id === id);
        if (b !== undefined && isEligible(b)) live.push(b);
      }
    }
    if (set === undefined || live.length === 0) {
      this.#sets.set(target, { members: [least.id], lastMod: nowMs });
      return { kind: 'backend', id: least.id };
    }
    let changed = live.length !== set.members.length;

    let chosen = live[0]!;
    let most = live[0]!;
    for (const b of live) {
      if (b.active < chosen.active) chosen = b;
      if (b.active >= most.active) most = b;
    }
    if (overloaded(chosen.active, least.active, this.config) && !live.includes(least)) {
      live.push(least);
      chosen = least;
      changed = true;
    }
    // `most` differs from the least-loaded member whenever the set has two or more.
    if (live.length > 1 && nowMs - set.lastMod > this.config.kMs) {
      live = live.filter((b) => b !== most);
      if (chosen === most) chosen = live[0]!;
      changed = true;
    }
    if (changed) {
      set.members = live.map((b) => b.id);
      set.lastMod = nowMs;
    }
    return { kind: 'backend', id: chosen.id };
  }

  maxOutstanding(eligibleBackends: number): number {
    return lardAdmissionLimit(eligibleBackends, this.config.tLow, this.config.tHigh);
  }

  /** The target's server set, if any (for tests and introspection). */
  serverSet(target: string): readonly BackendId[] | undefined {
    return this.#sets.peek(target)?.members;
  }
}
