// Throughput vs number of back-ends, one line per policy, as a self-contained SVG (no
// dependency, no script, no external fonts): axes, gridlines, a polyline per policy, a legend.

import type { SimResult } from './experiment.ts';

const COLORS: Record<string, string> = {
  wrr: '#d62728',
  lc: '#ff7f0e',
  maglev: '#9467bd',
  lard: '#1f77b4',
  lardr: '#2ca02c',
};
const LABELS: Record<string, string> = {
  wrr: 'weighted round robin',
  lc: 'least connections',
  maglev: 'Maglev hashing',
  lard: 'LARD',
  lardr: 'LARD/R',
};

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 1, 2 or 5 times a power of ten, so that about `ticks` steps cover max. */
export const niceStep = (max: number, ticks: number): number => {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
};

export interface PlotOptions {
  readonly title?: string;
  readonly subtitle?: string;
}

export const throughputSvg = (results: readonly SimResult[], o: PlotOptions = {}): string => {
  const W = 760;
  const H = 440;
  const m = { left: 72, right: 200, top: 56, bottom: 52 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const nodes = [...new Set(results.map((r) => r.nodes))].sort((a, b) => a - b);
  const xMax = Math.max(1, ...nodes);
  const yStep = niceStep(Math.max(0, ...results.map((r) => r.throughput)), 5);
  const yMax = Math.max(yStep, Math.ceil(Math.max(0, ...results.map((r) => r.throughput)) / yStep) * yStep);
  const x = (n: number) => m.left + (n / xMax) * pw;
  const y = (t: number) => m.top + ph - (t / yMax) * ph;
  const f = (v: number) => v.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${m.left}" y="22" font-size="16" font-weight="bold">${esc(o.title ?? 'Simulated throughput vs back-ends')}</text>`,
  );
  if (o.subtitle !== undefined) out.push(`<text x="${m.left}" y="40" fill="#555555">${esc(o.subtitle)}</text>`);

  // Gridlines and tick labels.
  for (let t = 0; t <= yMax + yStep / 2; t += yStep) {
    out.push(
      `<line x1="${m.left}" y1="${f(y(t))}" x2="${m.left + pw}" y2="${f(y(t))}" stroke="#e0e0e0"/>`,
      `<text x="${m.left - 8}" y="${f(y(t) + 4)}" text-anchor="end">${Math.round(t)}</text>`,
    );
  }
  for (const n of nodes) {
    out.push(
      `<line x1="${f(x(n))}" y1="${m.top}" x2="${f(x(n))}" y2="${m.top + ph}" stroke="#f0f0f0"/>`,
      `<text x="${f(x(n))}" y="${m.top + ph + 18}" text-anchor="middle">${n}</text>`,
    );
  }
  out.push(
    `<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#333333"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#333333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle">back-ends (nodes)</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">throughput (requests / s)</text>`,
  );

  // One line per policy, in first-seen order; legend on the right.
  const policies = [...new Set(results.map((r) => r.policy))];
  policies.forEach((p, i) => {
    const color = COLORS[p] ?? '#333333';
    const pts = results
      .filter((r) => r.policy === p)
      .sort((a, b) => a.nodes - b.nodes)
      .map((r) => `${f(x(r.nodes))},${f(y(r.throughput))}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const pt of pts) {
      const [cx, cy] = pt.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
    }
    const ly = m.top + 10 + i * 22;
    const lx = m.left + pw + 20;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<circle cx="${lx + 12}" cy="${ly}" r="3" fill="${color}"/>`,
      `<text x="${lx + 32}" y="${ly + 4}">${esc(LABELS[p] ?? p)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
};
