import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EXPERIMENT_DEFAULTS, runExperiment, type SimResult } from './experiment.ts';
import { niceStep, throughputSvg } from './plot.ts';
import { resultsJson, resultsTable } from './report.ts';
import { syntheticTrace } from './trace.ts';

const results: SimResult[] = [
  { policy: 'wrr', nodes: 1, throughput: 100.04, hitRate: 0.41234, imbalance: 1.00049 },
  { policy: 'lard', nodes: 1, throughput: 100.04, hitRate: 0.41234, imbalance: 1 },
  { policy: 'wrr', nodes: 8, throughput: 500, hitRate: 0.5, imbalance: 1.02 },
  { policy: 'lard', nodes: 8, throughput: 1250.55, hitRate: 0.95, imbalance: 1.1 },
];

describe('reports', () => {
  it('--json: one line, {"results":[...]} with rounded numbers', () => {
    const line = resultsJson(results);
    assert.ok(!line.includes('\n'));
    assert.deepEqual(JSON.parse(line).results[0], { policy: 'wrr', nodes: 1, throughput: 100, hitRate: 0.4123, imbalance: 1 });
    assert.equal(JSON.parse(line).results[3].throughput, 1250.6);
  });

  it('table: a row per result with speed-up over wrr', () => {
    const lines = resultsTable(results).split('\n');
    assert.equal(lines.length, 2 + results.length);
    assert.match(lines[0]!, /^nodes\s+policy\s+throughput\/s\s+vs wrr\s+hit rate\s+imbalance$/);
    assert.match(lines[5]!, /^8\s+lard\s+1250\.6\s+2\.50x\s+95\.0%\s+1\.10$/);
  });

  it('plot: an SVG with one polyline per policy, a legend and axis labels', () => {
    const svg = throughputSvg(results, { subtitle: 'a < b' });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.equal(svg.match(/<polyline /g)?.length, 2);
    assert.ok(svg.includes('weighted round robin') && svg.includes('>LARD<'));
    assert.ok(svg.includes('a &lt; b'));
    assert.ok(svg.trimEnd().endsWith('</svg>'));
  });

  it('niceStep picks 1, 2 or 5 times a power of ten', () => {
    assert.equal(niceStep(5400, 5), 2000);
    assert.equal(niceStep(1000, 5), 200);
    assert.equal(niceStep(0, 5), 1);
  });

  it('runExperiment covers every (nodes, policy) pair in order', () => {
    const trace = syntheticTrace({ seed: 2, requests: 2000, targets: 200 });
    const seen: string[] = [];
    const out = runExperiment(trace, { ...EXPERIMENT_DEFAULTS, nodes: [1, 3], policies: ['lc', 'lardr'] }, (r) => seen.push(`${r.policy}${r.nodes}`));
    assert.deepEqual(seen, ['lc1', 'lardr1', 'lc3', 'lardr3']);
    assert.deepEqual(out.map((r) => `${r.policy}${r.nodes}`), seen);
  });
});
