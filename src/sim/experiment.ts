// One experiment = every (policy, node count) pair run over the same trace, each with fresh
// policy state and cold caches. The front-end bound S is LARD's, (n-1)·T_high + T_low - 1, for
// every policy, so all of them are offered the same concurrency.

import { createPolicy } from '../policy/registry.ts';
import { lardAdmissionLimit, LARD_DEFAULTS } from '../policy/lard-common.ts';
import type { PolicyName, PolicySpec } from '../policy/spec.ts';
import { PAI_COSTS, simulateCluster, type CostModel } from './cluster.ts';
import type { Trace } from './trace.ts';

export interface ExperimentOptions {
  readonly policies: readonly PolicyName[];
  /** Node counts, each in 1..16. */
  readonly nodes: readonly number[];
  /** Cache per back-end, bytes. */
  readonly cacheBytes: number;
  readonly costs: CostModel;
  readonly tLow: number;
  readonly tHigh: number;
  /** LARD/R's K, seconds. */
  readonly k: number;
  /** Unmeasured leading fraction of the trace. */
  readonly warmup: number;
  /** Fixed S for every run instead of LARD's bound. */
  readonly outstanding?: number | undefined;
}

export const EXPERIMENT_DEFAULTS: ExperimentOptions = {
  policies: ['wrr', 'lc', 'maglev', 'lard', 'lardr'],
  nodes: [1, 2, 4, 8, 16],
  cacheBytes: 32 * 1024 * 1024,
  costs: PAI_COSTS,
  tLow: LARD_DEFAULTS.tLow,
  tHigh: LARD_DEFAULTS.tHigh,
  k: LARD_DEFAULTS.k,
  warmup: 0.25,
};

export interface SimResult {
  readonly policy: PolicyName;
  readonly nodes: number;
  /** Requests per simulated second. */
  readonly throughput: number;
  readonly hitRate: number;
  /** max / mean back-end busy time. */
  readonly imbalance: number;
}

export const policySpecFor = (name: PolicyName, o: Pick<ExperimentOptions, 'tLow' | 'tHigh' | 'k'>): PolicySpec => {
  switch (name) {
    case 'lard':
      return { name, options: { tLow: o.tLow, tHigh: o.tHigh } };
    case 'lardr':
      return { name, options: { tLow: o.tLow, tHigh: o.tHigh, k: o.k } };
    default:
      return { name };
  }
};

export const runOne = (trace: Trace, policy: PolicyName, nodes: number, o: ExperimentOptions): SimResult => {
  if (!(Number.isInteger(nodes) && nodes >= 1 && nodes <= 16)) throw new RangeError(`nodes must be in 1..16, got ${nodes}`);
  const r = simulateCluster(trace, createPolicy(policySpecFor(policy, o)), {
    nodes,
    cacheBytes: o.cacheBytes,
    costs: o.costs,
    maxOutstanding: o.outstanding ?? lardAdmissionLimit(nodes, o.tLow, o.tHigh),
    warmup: o.warmup,
  });
  return { policy, nodes, throughput: r.throughput, hitRate: r.hitRate, imbalance: r.imbalance };
};

/** Runs every pair, nodes-major; onResult sees each result as it is produced (for progress). */
export const runExperiment = (
  trace: Trace,
  o: ExperimentOptions,
  onResult: (r: SimResult) => void = () => {},
): SimResult[] => {
  const out: SimResult[] = [];
  for (const nodes of o.nodes) {
    for (const policy of o.policies) {
      const r = runOne(trace, policy, nodes, o);
      out.push(r);
      onResult(r);
    }
  }
  return out;
};
