// Rendering a run: markdown tables (results, ratios, client TCP counters, per-cell handoffs, two-pool routing,
// uploads, segments after a handoff, issue 9's acceptance figures, handoff latency, the data-plane micro-benchmark)
// and a hand-written SVG plot.

import type { SegmentProbe } from './measure.ts';
import type { PathName } from './paths.ts';
import type { RatioRow, ResultRow } from './results.ts';
import { TCP_COUNTERS } from './tcpstat.ts';
import { isUpload } from './wrk.ts';

/** bench/bpf.ts's JSON: ns per packet of each program, µs per map operation. */
export interface BpfBench {
  readonly flows: number;
  readonly backends: number;
  readonly repeat: number;
  readonly rows: readonly { what: string; value: number; unit: string }[];
  readonly error?: string;
}

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
    '| path | size | mode | req/s | p50 ms | p99 ms | FE CPU ms/1k req | machine CPU ms/1k req | lab CPU ms/1k req | BE CPU ms/1k req | FE bytes/req | FE pkts/req | client retrans/1k req | errors |\n' +
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n';
  const body = rows
    .map((r) => {
      if (r.error !== undefined && r.rps === null) {
        return `| ${r.path} | ${r.size} | ${r.mode} | error: ${r.error.replace(/[|\n]/g, ' ').slice(0, 200)} |||||||||||`;
      }
      return `| ${r.path} | ${r.size} | ${r.mode} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(
        r.feCpuMsPer1k,
        1,
      )} | ${fmt(r.machineCpuMsPer1k, 1)} | ${fmt(r.labCpuMsPer1k, 1)} | ${fmt(r.beCpuMsPer1k, 1)} | ${fmt(r.feBytesPerReq, 0)} | ${fmt(
        r.fePacketsPerReq,
        1,
      )} | ${fmt(r.retransPer1k, 2)} | ${r.errors}${kinds(r)} |`;
    })
    .join('\n');
  return head + body + '\n';
}

const ok = (r: ResultRow): boolean => r.rps !== null;
const find = (rows: readonly ResultRow[], path: PathName, size: string, mode: string): ResultRow | undefined =>
  rows.find((r) => r.path === path && r.size === size && r.mode === mode && ok(r));
const short = (k: string): string => k.replace(/^(Tcp|TcpExt)\./, '');

/** Every client TCP counter per 1000 requests, cell by cell. */
export function markdownTcp(rows: readonly ResultRow[]): string {
  const head = `| path | size | mode | ${TCP_COUNTERS.map(short).join(' | ')} |\n|---|---|---|${TCP_COUNTERS.map(() => '--:|').join('')}\n`;
  return head + rows.filter(ok).map((r) =>
    `| ${r.path} | ${r.size} | ${r.mode} | ${TCP_COUNTERS.map((k) => fmt(r.tcpPer1k?.[k] ?? null, 2)).join(' | ')} |`).join('\n') + '\n';
}

/** baton paths: each cell's own handoffs, and the phase split read right after it. */
export function markdownCellHandoffs(rows: readonly ResultRow[]): string {
  const bat = rows.filter((r) => ok(r) && r.handoffs !== undefined);
  if (bat.length === 0) return 'no baton cell measured\n';
  const phases = [...new Set(bat.flatMap((r) => Object.keys(r.phasesUs ?? {})))];
  const le = (v: number | null | undefined): string => (v === null || v === undefined ? dash : `≤ ${v}`);
  const head =
    `| path | size | mode | handoffs | p50 µs | p99 µs | ${phases.map((p) => `${p} p50/p99 µs`).join(' | ')} | phase window from this cell |\n` +
    `|---|---|---|--:|--:|--:|${phases.map(() => '--:|').join('')}--:|\n`;
  return head + bat.map((r) =>
    `| ${r.path} | ${r.size} | ${r.mode} | ${r.handoffs} | ${le(r.handoffP50LeUs)} | ${le(r.handoffP99LeUs)} | ` +
    `${phases.map((p) => {
      const v = r.phasesUs?.[p];
      if (v === undefined) return dash;
      return r.phasesFromBuckets === true ? `≤ ${v.p50} / ≤ ${v.p99}` : `${fmt(v.p50, 0)} / ${fmt(v.p99, 0)}`;
    }).join(' | ')} | ` +
    `${r.phasesFromBuckets === true ? 'all (own buckets)' : r.phaseShare === undefined ? dash : `${Math.round(r.phaseShare * 100)} %`} |`).join('\n') + '\n';
}

/** The alternate mode: keep-alive requests picking one of two pools by path; who served them. */
export function markdownAlternate(rows: readonly ResultRow[]): string {
  const alt = rows.filter((r) => r.mode === 'alternate');
  if (alt.length === 0) return 'not run\n';
  const head = '| path | req/s | p50 ms | p99 ms | FE CPU ms/1k req | machine CPU ms/1k req | lab CPU ms/1k req | served by the right pool | right / wrong / unattributed | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n';
  return head + alt.map((r) => {
    if (!ok(r)) return `| ${r.path} | error: ${(r.error ?? '').replace(/[|\n]/g, ' ').slice(0, 200)} |||||||||`;
    const pct = r.path === 'direct' ? 'n/a (no balancer: b1 only)' : r.rightPoolPct === null || r.rightPoolPct === undefined ? dash : `${r.rightPoolPct} %`;
    const p = r.pool;
    return `| ${r.path} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.feCpuMsPer1k, 1)} | ${fmt(r.machineCpuMsPer1k, 1)} | ${fmt(r.labCpuMsPer1k, 1)} | ` +
      `${pct} | ${p === undefined ? dash : `${p.right} / ${p.wrong} / ${p.unknown}`} | ${r.errors}${kinds(r)} |`;
  }).join('\n') + '\n';
}

/** Uploads: many 4 MB bodies at once (streaming at handoff) and 8 MB one at a time, against direct. */
export function markdownUploads(rows: readonly ResultRow[]): string {
  const up = rows.filter((r) => isUpload(r.mode));
  if (up.length === 0) return 'not run\n';
  const head = '| path | body | mode | req/s | p50 ms | p99 ms | p99 ÷ direct | retrans/1k req | WinProbe/1k req | machine CPU ms/1k req | errors |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n';
  return head + up.map((r) => {
    if (!ok(r)) return `| ${r.path} | ${r.size} | ${r.mode} | error: ${(r.error ?? '').replace(/[|\n]/g, ' ').slice(0, 200)} ||||||||`;
    const d = find(rows, 'direct', r.size, r.mode);
    const rel = d?.p99Ms && r.p99Ms !== null ? fmtRatio(r.p99Ms / d.p99Ms) : dash;
    return `| ${r.path} | ${r.size} | ${r.mode} | ${fmt(r.rps, 1)} | ${fmt(r.p50Ms, 1)} | ${fmt(r.p99Ms, 1)} | ${rel} | ${fmt(r.retransPer1k, 1)} | ` +
      `${fmt(r.tcpPer1k?.['TcpExt.TCPWinProbe'] ?? null, 1)} | ${fmt(r.machineCpuMsPer1k, 1)} | ${r.errors}${kinds(r)} |`;
  }).join('\n') + '\n';
}

/** Segments of a 64 KB response on a new connection (right after a handoff for baton), against direct. */
export function markdownSegments(probes: readonly SegmentProbe[]): string {
  if (probes.length === 0) return 'not run\n';
  const direct = probes.find((p) => p.path === 'direct' && p.segmentsPerReq !== null);
  const head = '| path | requests | segments/response | ÷ direct | rx packets/response | retrans/1k req | request sent → first byte p50 / p99 µs | handoff p50 / p99 µs (sequential) |\n|---|--:|--:|--:|--:|--:|--:|--:|\n';
  return head + probes.map((p) => {
    if (p.error !== undefined) return `| ${p.path} | ${p.requests} | error: ${p.error.replace(/[|\n]/g, ' ').slice(0, 200)} ||||||`;
    const rel = direct?.segmentsPerReq && p.segmentsPerReq !== null ? fmtRatio(p.segmentsPerReq / direct.segmentsPerReq) : dash;
    const h = p.handoffP50LeUs === undefined ? dash : `≤ ${p.handoffP50LeUs ?? dash} / ≤ ${p.handoffP99LeUs ?? dash}`;
    const fb = p.firstByteP50Us === undefined ? dash : `${p.firstByteP50Us} / ${p.firstByteP99Us}`;
    return `| ${p.path} | ${p.requests} | ${fmt(p.segmentsPerReq, 1)} | ${rel} | ${fmt(p.rxPacketsPerReq, 1)} | ${fmt(p.retransPer1k, 1)} | ${fb} | ${h} |`;
  }).join('\n') + '\n';
}

/** Issue 9's acceptance figures, as measured here: the figure, the target and whether this run meets it. */
export function markdownAcceptance(rows: readonly ResultRow[], probes: readonly SegmentProbe[], handoff: HandoffSummary | undefined): string {
  const lines: string[] = ['| check (issue 9) | measured | target | met |', '|---|---|---|---|'];
  const add = (what: string, measured: string, target: string, met: boolean | null): void => {
    lines.push(`| ${what} | ${measured} | ${target} | ${met === null ? dash : met ? 'yes' : '**no**'} |`);
  };
  // A log2 bucket bound b holds (b/2, b]: within a target t when b <= t, beyond it when b/2 >= t, else undecided.
  const bucketMeets = (b: number | null | undefined, t: number): boolean | null =>
    b === null || b === undefined ? null : b <= t ? true : b / 2 >= t ? false : null;
  const both = (x: boolean | null, y: boolean | null): boolean | null => (x === false || y === false ? false : x === true && y === true ? true : null);
  const b1k = find(rows, 'baton', '1KB', 'close');
  const h1k = find(rows, 'haproxy', '1KB', 'close');
  if (b1k?.handoffP50LeUs !== undefined) {
    add('handoff p50 under the 1 KB close load (head → the agent\'s answer)', `≤ ${b1k.handoffP50LeUs} µs (log2 bucket)`, '≤ 1000 µs', bucketMeets(b1k.handoffP50LeUs, 1000));
  }
  const placedLoad = b1k?.phasesUs?.['placed'];
  if (placedLoad !== undefined) {
    // Forwarded handoffs: the agent's answer is off the client's path; this is the front-end's part of its wait.
    add('forwarded handoff p50 under the 1 KB close load (head → client steered + blob sent)', `≤ ${placedLoad.p50} µs (log2 bucket)`, '≤ 1000 µs', bucketMeets(placedLoad.p50, 1000));
  }
  const probe = probes.find((p) => p.path === 'baton');
  if (probe?.handoffP50LeUs !== undefined) {
    add('idle handoff p50 / p99 (sequential 64 KB probe)', `≤ ${probe.handoffP50LeUs} / ≤ ${probe.handoffP99LeUs} µs (log2 buckets)`, '≤ 100 / ≤ 500 µs',
      both(bucketMeets(probe.handoffP50LeUs, 100), bucketMeets(probe.handoffP99LeUs, 500)));
  }
  const direct = probes.find((p) => p.path === 'direct');
  if (probe?.firstByteP50Us !== undefined && direct?.firstByteP50Us !== undefined) {
    // What the handoff adds to the client's wait, end to end: the front-end's part, the trip to the agent, its inject.
    const d50 = probe.firstByteP50Us - direct.firstByteP50Us;
    const d99 = probe.firstByteP99Us! - direct.firstByteP99Us!;
    add('idle handoff as the client sees it: first byte baton − direct, p50 / p99 (probe)', `${d50} / ${d99} µs`, '≤ 100 / ≤ 500 µs', d50 <= 100 && d99 <= 500);
  }
  const placed = probe?.phasesUs?.['placed'];
  if (placed !== undefined) {
    // Forwarded handoffs: the front-end's part of the client's wait; the back-end's inject follows one way later.
    add('idle forwarded handoff, head → client steered + blob sent, p50 / p99 (probe)', `≤ ${placed.p50} / ≤ ${placed.p99} µs (log2 buckets)`, '≤ 100 / ≤ 500 µs',
      both(bucketMeets(placed.p50, 100), bucketMeets(placed.p99, 500)));
  }
  if (b1k && h1k) {
    add('1 KB close: req/s baton ÷ HAProxy', fmtRatio(b1k.rps! / h1k.rps!), '≥ 1.00×', b1k.rps! >= h1k.rps!);
    if (b1k.machineCpuMsPer1k !== null && h1k.machineCpuMsPer1k !== null) {
      add('1 KB close: machine CPU per request baton ÷ HAProxy', fmtRatio(b1k.machineCpuMsPer1k / h1k.machineCpuMsPer1k), '≤ 1.00×', b1k.machineCpuMsPer1k <= h1k.machineCpuMsPer1k);
    }
    if (b1k.labCpuMsPer1k !== null && h1k.labCpuMsPer1k !== null) {
      add('1 KB close: lab CPU per request baton ÷ HAProxy (shared machine)', fmtRatio(b1k.labCpuMsPer1k / h1k.labCpuMsPer1k), '≤ 1.00×', b1k.labCpuMsPer1k <= h1k.labCpuMsPer1k);
    }
    // The bound of any design that hands each client connection to a server: it cannot beat the client connecting
    // to that server itself (direct), while HAProxy reuses its server connections. Context for the two checks above.
    const d1k = find(rows, 'direct', '1KB', 'close');
    if (d1k?.rps) {
      add('1 KB close bound: req/s direct ÷ HAProxy (no balancer at all)', fmtRatio(d1k.rps / h1k.rps!), '—', null);
      add('1 KB close: req/s baton ÷ direct', fmtRatio(b1k.rps! / d1k.rps), '—', null);
      if (b1k.machineCpuMsPer1k !== null && d1k.machineCpuMsPer1k !== null && h1k.machineCpuMsPer1k !== null) {
        add('1 KB close bound: machine CPU per request direct ÷ HAProxy', fmtRatio(d1k.machineCpuMsPer1k / h1k.machineCpuMsPer1k), '—', null);
        add('1 KB close: machine CPU per request baton − direct (the handoff\'s own cost)', `${fmt(b1k.machineCpuMsPer1k - d1k.machineCpuMsPer1k, 0)} µs`, '—', null);
      }
    }
  }
  for (const r of rows.filter((x) => x.path === 'baton' && ok(x))) {
    const d = find(rows, 'direct', r.size, r.mode);
    if (d === undefined || r.retransPer1k === null || d.retransPer1k === null) continue;
    // How many of them the receiver D-SACKed (spurious: reordering, not loss), so that a row swung by one reordered
    // TSO block reads as such.
    const spurious = (x: typeof r): string => fmt(x.tcpPer1k?.['TcpExt.TCPDSACKRecvSegs'] ?? null, 2);
    const dsack = r.retransPer1k > 0 || d.retransPer1k > 0 ? ` (D-SACKed, spurious: ${spurious(r)} vs ${spurious(d)})` : '';
    add(`client retrans/1k req, ${r.size} ${r.mode}`, `${fmt(r.retransPer1k, 2)} vs direct ${fmt(d.retransPer1k, 2)}${dsack}`, '≤ direct', r.retransPer1k <= d.retransPer1k);
  }
  for (const [mode, label] of [['post-seq', '8 MB POST p99 baton ÷ direct'], ['post-ka', '8 MB POST on a keep-alive connection, p99 baton ÷ direct']] as const) {
    const bp = find(rows, 'baton', '8MB', mode);
    const dp = find(rows, 'direct', '8MB', mode);
    if (bp && dp && bp.p99Ms !== null && dp.p99Ms) {
      add(label, `${fmt(bp.p99Ms, 1)} ms ÷ ${fmt(dp.p99Ms, 1)} ms = ${fmtRatio(bp.p99Ms / dp.p99Ms)}`, '≤ 1.20×', bp.p99Ms / dp.p99Ms <= 1.2);
    }
  }
  const ds = probes.find((p) => p.path === 'direct');
  if (probe?.segmentsPerReq && ds?.segmentsPerReq) {
    const q = probe.segmentsPerReq / ds.segmentsPerReq;
    add('64 KB response after a handoff: segments baton ÷ direct', `${fmt(probe.segmentsPerReq, 1)} ÷ ${fmt(ds.segmentsPerReq, 1)} = ${fmtRatio(q)}`, '0.90–1.10×', q >= 0.9 && q <= 1.1);
  }
  if (handoff?.phases !== undefined) {
    add('phase split over the whole baton path (p50 µs)', Object.entries(handoff.phases).map(([k, v]) => `${k} ${v.p50}`).join(', '), '—', null);
  }
  return lines.length === 2 ? 'baton or direct not measured\n' : `${lines.join('\n')}\n`;
}

export function markdownBpf(b: BpfBench | undefined): string {
  if (b === undefined) return 'not run (--no-bpf)\n';
  if (b.error !== undefined) return `not available (${b.error.replace(/\n/g, ' ')})\n`;
  const head = `${b.flows} flows in the map, ${b.backends} back-ends, BPF_PROG_TEST_RUN repeat ${b.repeat} (programs loaded, not attached).\n\n| what | value |\n|---|--:|\n`;
  return head + b.rows.map((r) => `| ${r.what} | ${r.value.toFixed(r.unit === 'ns/pkt' ? 0 : 2)} ${r.unit} |`).join('\n') + '\n';
}

export function markdownRatios(ratios: readonly RatioRow[]): string {
  const head =
    '| path | vs | size | mode | req/s (↑) | p99 (↓) | FE CPU/req (↓) | machine CPU/req (↓) | lab CPU/req (↓) | FE bytes/req (↓) |\n|---|---|---|---|--:|--:|--:|--:|--:|--:|\n';
  return (
    head +
    ratios
      .map(
        (r) =>
          `| ${r.path} | ${r.vs} | ${r.size} | ${r.mode} | ${fmtRatio(r.rps)} | ${fmtRatio(r.p99)} | ${fmtRatio(
            r.feCpu,
          )} | ${fmtRatio(r.machineCpu)} | ${fmtRatio(r.labCpu)} | ${fmtRatio(r.feBytes)} |`,
      )
      .join('\n') +
    '\n'
  );
}

export function markdownReport(
  meta: RunMeta,
  rows: readonly ResultRow[],
  ratioRows: readonly RatioRow[],
  handoffByPath: Partial<Record<PathName, HandoffSummary>>,
  probes: readonly SegmentProbe[],
  bpf: BpfBench | undefined,
): string {
  const handoffs = Object.entries(handoffByPath) as [PathName, HandoffSummary][];
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
    '## Issue 9 acceptance figures (this run)',
    '',
    markdownAcceptance(rows, probes, handoffByPath.baton),
    '## Client TCP counters per 1000 requests (client namespace)',
    '',
    markdownTcp(rows),
    '## baton handoffs per cell',
    '',
    'p50/p99: upper bounds of the log2 buckets holding the cell\'s own handoffs (exact counts, 2× resolution). Phases: ' +
      'the cell\'s own bucket bounds (≤) when the front-end reports per-phase histograms; otherwise p50/p99 over the ' +
      'front-end\'s last 4096 handoffs, read right after the cell, and the last column says how much of that window ' +
      'the cell made (keep-alive cells make few handoffs, so their phase figures are mostly earlier cells\').',
    '',
    markdownCellHandoffs(rows),
    '## Keep-alive requests alternating between two pools by path',
    '',
    'Every balancer routes `/bytes/3…` to a pool of b1 only and `/bytes/2…` to a pool of b2 only; each request picks ' +
      'one at random, so about half the requests on a connection change pool. The response length says which was ' +
      'asked, its `x-baton-backend` header who answered.',
    '',
    markdownAlternate(rows),
    '## Uploads',
    '',
    `\`post\`: POST of the body with \`Connection: close\` on every connection at once, so the body is still streaming when baton hands off; \`post-seq\`: one at a time (latency without queueing); \`post-ka\`: one at a time on one keep-alive connection (baton: one handoff, then every upload through the back-end's request-boundary layer).`,
    '',
    markdownUploads(rows),
    '## A 64 KB response on a new connection (right after a handoff for baton)',
    '',
    'Segments: the client\'s IpExt In*Pkts, which count a GSO packet as the segments its sender cut (the MSS shows); ' +
      'rx packets: the client interface\'s counter (GSO packets count once). Both include the handshake and teardown.',
    '',
    markdownSegments(probes),
    ...handoffs.flatMap(([p, h]) => [`## ${p} handoff latency (whole run)`, '', handoffSection(h)]),
    ...(handoffs.length === 0 ? ['## baton handoff latency', '', 'baton path not run\n'] : []),
    '## Data plane micro-benchmark (bench/bpf.ts)',
    '',
    markdownBpf(bpf),
  ].join('\n');
}

const COLORS: Record<PathName, string> = {
  direct: '#888888', baton: '#d9480f', 'baton-nft': '#f59f00', 'baton-classic': '#ae3ec9', haproxy: '#1c7ed6', nginx: '#2f9e44',
};

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
