// Consistent hashing with Maglev's lookup table (Eisenbud et al., NSDI 2016).
// Each back-end walks its own permutation of the M table slots (offset and skip derived from
// its id) and the back-ends take turns claiming their next free slot until the table is full.
// Result: every back-end owns M/N slots give or take one, and removing one back-end mostly
// reassigns only the slots it owned. A request key hashes to a slot; the slot names the back-end.
// Weights: a back-end takes turns in proportion to weight / max weight.

import { hash32 } from './hash.ts';
import { keyExtractor, type RequestKey } from './key.ts';
import { NO_ELIGIBLE, isEligible } from './eligible.ts';
import type { BackendId, BackendView, PickResult, Policy, RequestInfo } from './types.ts';

/** Prime table size used by the policy; the paper suggests M prime and >> N (here 100 x 16 and more). */
export const MAGLEV_TABLE_SIZE = 65537;

const OFFSET_SEED = 0x9e3779b9;
const SKIP_SEED = 0x7f4a7c15;

export interface MaglevMember {
  readonly id: BackendId;
  readonly weight: number;
}

/**
 * Builds the lookup table: slot -> index into `members`. Members must have distinct ids and
 * positive weights; their order matters, so callers sort them (the policy sorts by id).
 * `size` must be prime for every skip to visit every slot.
 */
export const buildMaglevTable = (
  members: readonly MaglevMember[],
  size: number = MAGLEV_TABLE_SIZE,
): Int32Array => {
  const n = members.length;
  const table = new Int32Array(size).fill(-1);
  if (n === 0) return table;
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  const share = new Float64Array(n);
  const credit = new Float64Array(n);
  let wmax = 0;
  for (const m of members) wmax = Math.max(wmax, m.weight);
  members.forEach((m, i) => {
    pos[i] = hash32(m.id, OFFSET_SEED) % size;
    skip[i] = (hash32(m.id, SKIP_SEED) % (size - 1)) + 1;
    share[i] = m.weight / wmax;
  });
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      credit[i]! += share[i]!;
      // 1e-9 absorbs rounding so equal weights take exactly one turn per round.
      while (credit[i]! >= 1 - 1e-9) {
        credit[i]! -= 1;
        let c = pos[i]!;
        while (table[c]! >= 0) c = (c + skip[i]!) % size;
        table[c] = i;
        pos[i] = (c + skip[i]!) % size;
        if (++filled === size) return table;
      }
    }
  }
};

export interface MaglevOptions {
  readonly key?: RequestKey;
}

export class MaglevHash implements Policy {
  readonly name = 'maglev';
  readonly #key: (req: RequestInfo) => string;
  /** Eligible (id, weight) pairs in the order last seen, to detect changes without allocating. */
  #seenIds: BackendId[] = [];
  #seenWeights: number[] = [];
  #members: MaglevMember[] = [];
  #table: Int32Array = new Int32Array(0);

  constructor(options: MaglevOptions = {}) {
    this.#key = keyExtractor(options.key);
  }

  pick(req: RequestInfo, backends: readonly BackendView[]): PickResult {
    if (this.#changed(backends)) this.#rebuild(backends);
    if (this.#members.length === 0) return NO_ELIGIBLE;
    const slot = hash32(this.#key(req)) % this.#table.length;
    const member = this.#members[this.#table[slot]!];
    return member === undefined ? NO_ELIGIBLE : { kind: 'backend', id: member.id };
  }

  #changed(backends: readonly BackendView[]): boolean {
    let j = 0;
    for (const b of backends) {
      if (!isEligible(b)) continue;
      if (this.#seenIds[j] !== b.id || this.#seenWeights[j] !== b.weight) return true;
      j++;
    }
    return j !== this.#seenIds.length;
  }

  #rebuild(backends: readonly BackendView[]): void {
    const eligible = backends.filter(isEligible);
    this.#seenIds = eligible.map((b) => b.id);
    this.#seenWeights = eligible.map((b) => b.weight);
    // Duplicate ids would own two turns each; keep the first.
    const byId = new Map<BackendId, MaglevMember>();
    for (const b of eligible) if (!byId.has(b.id)) byId.set(b.id, { id: b.id, weight: b.weight });
    this.#members = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.#table = buildMaglevTable(this.#members);
  }
}
