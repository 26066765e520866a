// Experiment results as text: an aligned table for people, one JSON line for programs.

import type { SimResult } from './experiment.ts';

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** The `--json` line: {"results":[{"policy","nodes","throughput","hitRate","imbalance"}, ...]}. */
export const resultsJson = (results: readonly SimResult[]): string =>
  JSON.stringify({
    results: results.map((r) => ({
      policy: r.policy,
      nodes: r.nodes,
      throughput: round(r.throughput, 1),
      hitRate: round(r.hitRate, 4),
      imbalance: round(r.imbalance, 3),
    })),
  });

/** One row per (nodes, policy), plus throughput relative to wrr at the same node count when wrr ran. */
export const resultsTable = (results: readonly SimResult[]): string => {
  const wrr = new Map(results.filter((r) => r.policy === 'wrr').map((r) => [r.nodes, r.throughput]));
  const header = ['nodes', 'policy', 'throughput/s', 'vs wrr', 'hit rate', 'imbalance'];
  const rows = results.map((r) => {
    const base = wrr.get(r.nodes);
    return [
      String(r.nodes),
      r.policy,
      round(r.throughput, 1).toFixed(1),
      base === undefined || base === 0 ? '-' : `${(r.throughput / base).toFixed(2)}x`,
      `${(r.hitRate * 100).toFixed(1)}%`,
      r.imbalance.toFixed(2),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i <= 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
};
