// The pure arithmetic of a run: bucket quantiles and deltas, per-cell summaries of the new counters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketDelta, bucketQuantile, cellHandoff, summarize, type Sample } from './results.ts';
import { markdownAcceptance } from './report.ts';

test('bucketQuantile returns the bound of the bucket holding the quantile', () => {
  const b = { '64': 10, '128': 80, '1024': 9, '4096': 1 };
  assert.equal(bucketQuantile(b, 0.5), 128);
  assert.equal(bucketQuantile(b, 0.99), 1024);
  assert.equal(bucketQuantile(b, 1), 4096);
  assert.equal(bucketQuantile({}, 0.5), null);
});

test('bucketQuantile sorts bounds numerically, not as strings', () => {
  assert.equal(bucketQuantile({ '1024': 1, '256': 3 }, 0.5), 256);
});

test("bucketDelta keeps only a cell's own samples", () => {
  assert.deepEqual(bucketDelta({ '64': 5, '128': 2 }, { '64': 5, '128': 7, '256': 1 }), { '128': 5, '256': 1 });
});

const sample = (o: Partial<Sample>): Sample => ({
  requests: 1000, durationS: 1, errors: 0, errorKinds: {}, p50Us: 1000, p99Us: 5000, feCpuMs: 100, beCpuMs: 50,
  machineCpuMs: 400, labCpuMs: 300, feBytes: 1e6, fePackets: 1e3, tcp: { 'Tcp.RetransSegs': 4 }, ...o,
});

test('summarize: retransmissions per 1000 requests, pool shares summed over repeats, per-cell handoffs', () => {
  const r = summarize('baton', '2-3KB', 'alternate', [
    sample({ pool: { right: 60, wrong: 40, unknown: 1 }, handoff: { count: 10, p50Le: 128, p99Le: 512, phases: { hold: { p50: 10, p99: 20 } }, phaseShare: 0.5 } }),
    sample({ requests: 2000, tcp: { 'Tcp.RetransSegs': 2 }, pool: { right: 40, wrong: 60, unknown: 0 }, handoff: { count: 30, p50Le: 256, p99Le: 512, phaseShare: 1 } }),
  ]);
  assert.equal(r.retransPer1k, 2.5); // median of 4 and 1
  assert.equal(r.labCpuMsPer1k, 225); // median of 300 and 150
  assert.deepEqual(r.pool, { right: 100, wrong: 100, unknown: 1 });
  assert.equal(r.rightPoolPct, 50);
  assert.equal(r.handoffs, 40);
  assert.equal(r.handoffP50LeUs, 192);
  assert.deepEqual(r.phasesUs, { hold: { p50: 10, p99: 20 } });
});

test('summarize: direct has no right-pool share (no balancer routes its requests)', () => {
  const r = summarize('direct', '2-3KB', 'alternate', [sample({ pool: { right: 50, wrong: 50, unknown: 0 } })]);
  assert.equal(r.rightPoolPct, null);
  assert.equal(r.handoffs, undefined);
});

test("cellHandoff: without per-phase histograms the phases are the window's, with the cell's share of it", () => {
  const before = { p50: 0, p99: 0, count: 5000, histogram: { '128': 5000 } };
  const after = { p50: 0, p99: 0, count: 6024, histogram: { '128': 5000, '512': 1000, '2048': 24 }, phases: { hold: { p50: 30, p99: 90 } } };
  const h = cellHandoff(before, after);
  assert.equal(h.count, 1024);
  assert.equal(h.p50Le, 512);
  assert.equal(h.p99Le, 2048);
  assert.deepEqual(h.phases, { hold: { p50: 30, p99: 90 } });
  assert.equal(h.phaseShare, 0.25);
  assert.equal(h.phasesFromBuckets, undefined);
});

test("cellHandoff: with per-phase histograms the phases are the cell's own", () => {
  const before = { p50: 0, p99: 0, count: 10, histogram: { '64': 10 }, phaseBuckets: { hold: { '32': 10 }, prepare: { '1024': 10 } } };
  const after = {
    p50: 0, p99: 0, count: 20, histogram: { '64': 10, '128': 10 },
    phaseBuckets: { hold: { '32': 10, '16': 10 }, prepare: { '1024': 10, '64': 9, '256': 1 } },
  };
  const h = cellHandoff(before, after);
  assert.equal(h.phasesFromBuckets, true);
  assert.equal(h.phaseShare, 1);
  assert.deepEqual(h.phases, { hold: { p50: 16, p99: 16 }, prepare: { p50: 64, p99: 256 } });
});

test('acceptance: the 1 KB close checks against HAProxy come with the bound direct sets, and the handoff cost over direct', () => {
  const row = (path: 'baton' | 'direct' | 'haproxy', rps: number, machine: number) =>
    ({ ...summarize(path, '1KB', 'close', [sample({})]), rps, machineCpuMsPer1k: machine });
  const md = markdownAcceptance([row('baton', 1600, 1180), row('direct', 4300, 356), row('haproxy', 5200, 356)], [], undefined);
  assert.match(md, /req\/s baton ÷ HAProxy \| 0\.31× \| ≥ 1\.00× \| \*\*no\*\*/);
  assert.match(md, /req\/s direct ÷ HAProxy \(no balancer at all\) \| 0\.83× \| — \| — \|/);
  assert.match(md, /req\/s baton ÷ direct \| 0\.37× \|/);
  assert.match(md, /machine CPU per request baton − direct \(the handoff's own cost\) \| 824 µs \|/);
});
