import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createPolicy } from '../policy/registry.ts';
import { lardAdmissionLimit } from '../policy/lard-common.ts';
import { POLICY_NAMES } from '../policy/spec.ts';
import type { Policy } from '../policy/types.ts';
import { PAI_COSTS, cpuCostUs, diskCostUs, simulateCluster, type ClusterConfig } from './cluster.ts';
import { syntheticTrace, traceStats, type Trace } from './trace.ts';

const MB = 1024 * 1024;
const oneTarget = (requests: number, bytes = 1024): Trace => ({
  name: 'one',
  targets: ['/a'],
  sizes: Float64Array.of(bytes),
  requests: new Uint32Array(requests),
});
const cfg = (o: Partial<ClusterConfig>): ClusterConfig => ({
  nodes: 1,
  cacheBytes: MB,
  costs: PAI_COSTS,
  maxOutstanding: 1,
  warmup: 0,
  ...o,
});

describe('cost model', () => {
  it("charges the paper's disk costs: 28 ms, 410 µs per 4 KB, 14 ms per 44 KB beyond 44 KB", () => {
    assert.equal(diskCostUs(44 * 1024, PAI_COSTS), 28_000 + 44 * 102.5);
    assert.equal(diskCostUs(45 * 1024, PAI_COSTS), 28_000 + 45 * 102.5 + 14_000);
    assert.equal(diskCostUs(89 * 1024, PAI_COSTS), 28_000 + 89 * 102.5 + 2 * 14_000);
    assert.equal(cpuCostUs(512, PAI_COSTS), 290 + 40);
  });
});

describe('cluster simulation', () => {
  it('one node serving hits from cache is CPU-bound: 1 / (setup + teardown + transmit)', () => {
    const r = simulateCluster(oneTarget(1000), createPolicy({ name: 'wrr' }), cfg({ warmup: 0.5 }));
    assert.equal(r.hitRate, 1);
    assert.ok(Math.abs(r.throughput - 1e6 / cpuCostUs(1024, PAI_COSTS)) < 1e-6, `${r.throughput}`);
    assert.equal(r.imbalance, 1);
  });

  it('without a cache, each node is disk-bound and nodes add up', () => {
    const r = simulateCluster(oneTarget(4000), createPolicy({ name: 'wrr' }), cfg({ nodes: 2, cacheBytes: 0, maxOutstanding: 50, warmup: 0.5 }));
    assert.equal(r.hitRate, 0);
    const want = 2 * (1e6 / diskCostUs(1024, PAI_COSTS));
    assert.ok(Math.abs(r.throughput / want - 1) < 0.01, `${r.throughput} vs ${want}`);
  });

  it('a request for a file being read waits for that read instead of reading again', () => {
    const r = simulateCluster(oneTarget(2), createPolicy({ name: 'wrr' }), cfg({ maxOutstanding: 2 }));
    assert.equal(r.hitRate, 0.5);
  });

  it('property: the front-end never has more than S outstanding, and active counts balance', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...POLICY_NAMES),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 1000 }),
        (name, nodes, S, seed) => {
          const inner = createPolicy({ name });
          let maxSeen = 0;
          const spy: Policy = {
            name,
            pick(req, backends, now) {
              const total = backends.reduce((a, b) => a + b.active, 0);
              maxSeen = Math.max(maxSeen, total);
              assert.ok(backends.every((b) => b.active >= 0));
              return inner.pick(req, backends, now);
            },
          };
          const trace = syntheticTrace({ seed, requests: 500, targets: 50 });
          simulateCluster(trace, spy, cfg({ nodes, cacheBytes: 256 * 1024, maxOutstanding: S }));
          assert.ok(maxSeen <= S - 1, `saw ${maxSeen} outstanding at pick time with S = ${S}`);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('is deterministic for a seed', () => {
    const trace = () => syntheticTrace({ seed: 9, requests: 5000, targets: 400 });
    for (const name of POLICY_NAMES) {
      const c = cfg({ nodes: 4, cacheBytes: 2 * MB, maxOutstanding: lardAdmissionLimit(4, 25, 65), warmup: 0.2 });
      assert.deepEqual(
        simulateCluster(trace(), createPolicy({ name }), c),
        simulateCluster(trace(), createPolicy({ name }), c),
      );
    }
  });

  it('reproduces LARD: working set >= 4x a node cache, 8 nodes, LARD and LARD/R >= 2x WRR with more hits', () => {
    const trace = syntheticTrace({ seed: 1, requests: 40_000, targets: 1500 });
    const cacheBytes = 8 * MB;
    assert.ok(traceStats(trace).workingSetBytes >= 4 * cacheBytes);
    const run = (name: 'wrr' | 'lard' | 'lardr') =>
      simulateCluster(trace, createPolicy({ name }), cfg({ nodes: 8, cacheBytes, maxOutstanding: lardAdmissionLimit(8, 25, 65), warmup: 0.25 }));
    const wrr = run('wrr');
    for (const name of ['lard', 'lardr'] as const) {
      const r = run(name);
      assert.ok(r.throughput >= 2 * wrr.throughput, `${name} ${r.throughput.toFixed(0)} vs wrr ${wrr.throughput.toFixed(0)}`);
      assert.ok(r.hitRate > wrr.hitRate, `${name} hit rate ${r.hitRate} vs wrr ${wrr.hitRate}`);
    }
  });

  it('rejects bad configurations', () => {
    assert.throws(() => simulateCluster(oneTarget(1), createPolicy({ name: 'wrr' }), cfg({ nodes: 0 })), RangeError);
    assert.throws(() => simulateCluster(oneTarget(1), createPolicy({ name: 'wrr' }), cfg({ warmup: 1 })), RangeError);
  });
});
