import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { syntheticTrace, traceStats, zipfCdf, SYNTHETIC_DEFAULTS } from './trace.ts';

describe('synthetic trace', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = syntheticTrace({ seed: 5, requests: 2000, targets: 300 });
    const b = syntheticTrace({ seed: 5, requests: 2000, targets: 300 });
    const c = syntheticTrace({ seed: 6, requests: 2000, targets: 300 });
    assert.deepEqual(a.requests, b.requests);
    assert.deepEqual(a.sizes, b.sizes);
    assert.notDeepEqual(a.requests, c.requests);
  });

  it('keeps sizes within [1, maxBytes] and has a heavy tail', () => {
    const t = syntheticTrace({ seed: 1, requests: 10, targets: 20_000 });
    let big = 0;
    for (const s of t.sizes) {
      assert.ok(s >= 1 && s <= SYNTHETIC_DEFAULTS.maxBytes);
      if (s >= SYNTHETIC_DEFAULTS.tailMinBytes) big++;
    }
    // Tail fraction plus the lognormal body's own upper end.
    assert.ok(big / t.sizes.length > SYNTHETIC_DEFAULTS.tailFraction, `${big}`);
    const sorted = [...t.sizes].sort((x, y) => x - y);
    const median = sorted[sorted.length >> 1]!;
    assert.ok(Math.abs(median / SYNTHETIC_DEFAULTS.medianBytes - 1) < 0.15, `median ${median}`);
  });

  it('follows Zipf: the most popular target gets about 1/H(n, s) of requests', () => {
    const n = 1000;
    const s = 0.8;
    const t = syntheticTrace({ seed: 3, requests: 200_000, targets: n, zipf: s });
    const counts = new Map<number, number>();
    for (const r of t.requests) counts.set(r, (counts.get(r) ?? 0) + 1);
    const top = Math.max(...counts.values()) / t.requests.length;
    assert.ok(Math.abs(top / zipfCdf(n, s)[0]! - 1) < 0.05, `top share ${top}`);
  });

  it('zipfCdf is increasing and ends at 1', () => {
    const cdf = zipfCdf(500, 1);
    for (let i = 1; i < cdf.length; i++) assert.ok(cdf[i]! > cdf[i - 1]!);
    assert.ok(Math.abs(cdf[cdf.length - 1]! - 1) < 1e-12);
  });

  it('the default working set is at least 4x the default 32 MB cache', () => {
    const st = traceStats(syntheticTrace());
    assert.ok(st.workingSetBytes >= 4 * 32 * 1024 * 1024, `${st.workingSetBytes}`);
  });

  it('traceStats counts each target once in the working set', () => {
    const st = traceStats({ name: 't', targets: ['/a', '/b', '/c'], sizes: Float64Array.of(10, 20, 40), requests: Uint32Array.of(0, 0, 1, 0) });
    assert.deepEqual(st, { requests: 4, distinctTargets: 2, workingSetBytes: 30, meanRequestBytes: 12.5 });
  });
});
