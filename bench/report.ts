// Rendering a run: markdown tables (results, ratios, handoff latency) and a hand-written SVG plot.

import type { PathName } from './paths.ts';
import type { RatioRow, ResultRow } from './results.ts';

export interface RunMeta {
  readonly date: string;
  readonly machine: string;
  /** git describe of the tree measured ("-dirty" when it had uncommitted changes). */
  readonly revision: string;
  readonly settings: string;
  readonly backendKind: string;
  readonly notes: readonly string[];
}

export interface HandoffSummary {
  readonly p50: number | null;
  readonly p99: number | null;
  readonly count?: number;
  readonly histogram?: unknown;
  readonly phases?: Record<string, { p50: number; p99: number }>;
  readonly error?: string;
}

function handoffSection(h: HandoffSummary): string {
  if (h.p50 === null) return `not available (${h.error ?? 'unknown'})\n`;
  const lines = [`p50 ${h.p50} µs, p99 ${h.p99} µs over ${h.count ?? '?'} handoffs (request head complete → back-end commit).`, ''];
  if (h.phases !== undefined) {
    lines.push('| phase | p50 µs | p99 µs |', '|---|--:|--:|');
    for (const [k, v] of Object.entries(h.phases)) lines.push(`| ${k} | ${v.p50} | ${v.p99} |`);
    lines.push('');
  }
  if (typeof h.histogram === 'object' && h.histogram !== null) {
    const entries = Object.entries(h.histogram as Record<string, unknown>).filter(
      (e): e is [string, number] => typeof e[1] === 'number',
    );
    const total = entries.reduce((a, [, n]) => a + n, 0);
    if (total > 0) {
      lines.push('| handoff latency ≤ µs | handoffs | share |', '|--:|--:|--:|');
      for (const [ub, n] of entries) lines.push(`| ${ub} | ${n} | ${((100 * n) / total).toFixed(1)} % |`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

const dash = '—';
const fmt = (v: number | null, digits = 1): string => {
  if (v === null) return dash;
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
};
const fmtRatio = (v: number | null): string => (v === null ? dash : `${v.toFixed(2)}×`);

const kinds = (r: ResultRow): string =>
  r.errorKinds === undefined ? '' : ` (${Object.entries(r.errorKinds).map(([k, n]) => `${k} ${n}`).join(', ')})`;

export function markdownResults(rows: readonly ResultRow[]): string {
  const head =
    '| path | size | mode | req/s | p50 ms | p99 ms | FE CPU ms/1k req | FE bytes/req | FE pkts/req | BE CPU ms/1k req | machine CPU ms/1k req | errors |\n' +
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n';
  const body = rows
    .map((r) => {
      if (r.error !== undefined && r.rps === null) {
        return `| ${r.path} | ${r.size} | ${r.mode} | error: ${r.error.replace(/[|\n]/g, ' ').slice(0, 200)} |||||||||`;
      }
      return `| ${r.path} | ${r.size} | ${r.mode} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(
        r.feCpuMsPer1k,
        1,
      )} | ${fmt(r.feBytesPerReq, 0)} | ${fmt(r.fePacketsPerReq, 1)} | ${fmt(r.beCpuMsPer1k, 1)} | ${fmt(
        r.machineCpuMsPer1k,
        1,
      )} | ${r.errors}${kinds(r)} |`;
    })
    .join('\n');
  return head + body + '\n';
}

export function markdownRatios(ratios: readonly RatioRow[]): string {
  const head =
    '| path | vs | size | mode | req/s (↑) | p99 (↓) | FE CPU/req (↓) | FE bytes/req (↓) |\n|---|---|---|---|--:|--:|--:|--:|\n';
  return (
    head +
    ratios
      .map(
        (r) =>
          `| ${r.path} | ${r.vs} | ${r.size} | ${r.mode} | ${fmtRatio(r.rps)} | ${fmtRatio(r.p99)} | ${fmtRatio(
            r.feCpu,
          )} | ${fmtRatio(r.feBytes)} |`,
      )
      .join('\n') +
    '\n'
  );
}

export function markdownReport(
  meta: RunMeta,
  rows: readonly ResultRow[],
  ratioRows: readonly RatioRow[],
  handoff: HandoffSummary,
): string {
  return [
    `# baton benchmark — ${meta.date}`,
    '',
    `- machine: ${meta.machine}`,
    `- revision: ${meta.revision}`,
    `- settings: ${meta.settings}`,
    `- back-end servers: ${meta.backendKind}`,
    ...meta.notes.map((n) => `- ${n}`),
    '',
    '## Results',
    '',
    markdownResults(rows),
    '## Ratios (path ÷ proxy, same run)',
    '',
    markdownRatios(ratioRows),
    '## baton handoff latency',
    '',
    handoffSection(handoff),
  ].join('\n');
}

const COLORS: Record<PathName, string> = { direct: '#888888', baton: '#d9480f', haproxy: '#1c7ed6', nginx: '#2f9e44' };

interface Panel {
  readonly title: string;
  readonly value: (r: ResultRow, base: ResultRow | undefined) => number | null;
  readonly log: boolean;
  readonly unit: string;
}

/** Grouped bar chart, one panel per figure, one group per (size, mode), one bar per path. No dependencies. */
export function svgPlot(rows: readonly ResultRow[], title: string): string {
  const paths = [...new Set(rows.map((r) => r.path))];
  const groups = [...new Set(rows.map((r) => `${r.size} ${r.mode}`))];
  const cell = (p: PathName, g: string): ResultRow | undefined => rows.find((r) => r.path === p && `${r.size} ${r.mode}` === g);
  const rel = (v: number | null, b: number | null | undefined): number | null =>
    v === null || b === null || b === undefined || b === 0 ? null : v / b;
  const panels: Panel[] = [
    { title: 'Requests/s relative to HAProxy (higher is better)', value: (r, b) => rel(r.rps, b?.rps), log: false, unit: '×' },
    {
      title: 'Front-end CPU per request relative to HAProxy (lower is better)',
      value: (r, b) => rel(r.feCpuMsPer1k, b?.feCpuMsPer1k),
      log: false,
      unit: '×',
    },
    { title: 'Bytes through the front-end interface per request (log scale)', value: (r) => r.feBytesPerReq, log: true, unit: 'B' },
  ];
  const W = 960;
  const panelH = 230;
  const left = 60;
  const top = 50;
  const plotW = W - left - 20;
  const plotH = panelH - 70;
  const groupW = plotW / Math.max(1, groups.length);
  const barW = Math.min(28, (groupW - 12) / Math.max(1, paths.length));
  const H = top + panels.length * panelH + 10;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  paths.forEach((p, i) => {
    const x = left + i * 110;
    out.push(`<rect x="${x}" y="30" width="12" height="12" fill="${COLORS[p]}"/>`, `<text x="${x + 16}" y="40">${p}</text>`);
  });
  panels.forEach((panel, pi) => {
    const y0 = top + pi * panelH + 20;
    const values = groups.flatMap((g) => paths.map((p) => {
      const r = cell(p, g);
      return r === undefined ? null : panel.value(r, cell('haproxy', g));
    }));
    const finite = values.filter((v): v is number => v !== null && Number.isFinite(v) && (!panel.log || v > 0));
    const max = Math.max(panel.log ? 10 : 1, ...finite);
    const lmax = Math.ceil(Math.log10(max));
    const scale = (v: number): number =>
      panel.log ? (Math.max(0, Math.log10(Math.max(v, 1))) / Math.max(1, lmax)) * plotH : (v / (max * 1.1)) * plotH;
    const base = y0 + plotH;
    out.push(`<text x="${left}" y="${y0 - 6}" font-size="12" font-weight="bold">${esc(panel.title)}</text>`);
    const ticks = panel.log
      ? Array.from({ length: lmax + 1 }, (_, i) => 10 ** i)
      : linearTicks(max * 1.1);
    for (const t of ticks) {
      const y = base - scale(t);
      out.push(
        `<line x1="${left}" y1="${y.toFixed(1)}" x2="${left + plotW}" y2="${y.toFixed(1)}" stroke="${t === 1 && !panel.log ? '#999' : '#e5e5e5'}"/>`,
        `<text x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${panel.log ? compact(t) : t}${panel.unit === '×' ? '×' : ''}</text>`,
      );
    }
    groups.forEach((g, gi) => {
      const gx = left + gi * groupW + (groupW - barW * paths.length) / 2;
      paths.forEach((p, i) => {
        const r = cell(p, g);
        const v = r === undefined ? null : panel.value(r, cell('haproxy', g));
        const x = gx + i * barW;
        if (v === null || !Number.isFinite(v)) {
          out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${base - 4}" text-anchor="middle" font-size="9" fill="${COLORS[p]}">n/a</text>`);
          return;
        }
        const h = Math.max(1, scale(v));
        out.push(
          `<rect x="${x.toFixed(1)}" y="${(base - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[p]}"><title>${p} ${g}: ${v.toPrecision(3)}${panel.unit}</title></rect>`,
          `<text x="${(x + barW / 2).toFixed(1)}" y="${(base - h - 3).toFixed(1)}" text-anchor="middle" font-size="8">${panel.log ? compact(v) : v.toFixed(2)}</text>`,
        );
      });
      out.push(`<text x="${(left + gi * groupW + groupW / 2).toFixed(1)}" y="${base + 14}" text-anchor="middle">${esc(g)}</text>`);
    });
    out.push(`<line x1="${left}" y1="${base}" x2="${left + plotW}" y2="${base}" stroke="#333"/>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function compact(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return v.toFixed(0);
}

/** At most about six evenly spaced ticks from 0 to top, on a 1-2-5 step. */
function linearTicks(top: number): number[] {
  const raw = top / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  return Array.from({ length: Math.floor(top / step) + 1 }, (_, i) => +(i * step).toPrecision(6));
}
