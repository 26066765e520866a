// The figures of one benchmark run and how they are derived: per-cell samples, medians over repeats, and ratios
// against the proxies. Pure: no I/O here.

import type { HandoffStats, PathName } from './paths.ts';
import type { Mode } from './wrk.ts';

export const SIZES: Readonly<Record<string, number>> = {
  '1KB': 1024, '10KB': 10_240, '64KB': 65_536, '100KB': 102_400, '1MB': 1_048_576, '4MB': 4_194_304, '8MB': 8_388_608,
};

/** Handoffs a baton front-end made during one cell, from its /stats read before and after. */
export interface CellHandoff {
  readonly count: number;
  /** Upper bound (µs) of the log2 bucket holding the cell's median / 99th percentile handoff (exact counts). */
  readonly p50Le: number | null;
  readonly p99Le: number | null;
  /**
   * Per-phase p50/p99 (µs): the cell's own, as log2 bucket bounds, when the front-end reports per-phase histograms
   * (`phasesFromBuckets`); otherwise over the front-end's last 4096 handoffs, read right after the cell.
   */
  readonly phases?: Readonly<Record<string, { p50: number; p99: number }>>;
  readonly phasesFromBuckets?: boolean;
  /** Share of the phase figures' handoffs that this cell made (1 = the phase figures are this cell's alone). */
  readonly phaseShare: number;
}

/** The window of the front-end's per-phase recorders (src/frontend/handoff.ts). */
const PHASE_WINDOW = 4096;

/** A cell's own handoffs out of the front-end's cumulative figures read before and after it. */
export function cellHandoff(before: HandoffStats, after: HandoffStats): CellHandoff {
  const buckets = (h: HandoffStats): Record<string, number> => (h.histogram ?? {}) as Record<string, number>;
  const d = bucketDelta(buckets(before), buckets(after));
  const count = after.count - before.count;
  const head = { count, p50Le: bucketQuantile(d, 0.5), p99Le: bucketQuantile(d, 0.99) };
  const names = Object.keys(after.phaseBuckets ?? {});
  if (names.length > 0 && before.phaseBuckets !== undefined) {
    const phases: Record<string, { p50: number; p99: number }> = {};
    for (const k of names) {
      const pd = bucketDelta(before.phaseBuckets[k] ?? {}, after.phaseBuckets![k]!);
      const p50 = bucketQuantile(pd, 0.5);
      const p99 = bucketQuantile(pd, 0.99);
      if (p50 !== null && p99 !== null) phases[k] = { p50, p99 };
    }
    return { ...head, phases, phasesFromBuckets: true, phaseShare: 1 };
  }
  const window = Math.min(after.count, PHASE_WINDOW);
  return {
    ...head,
    ...(after.phases === undefined ? {} : { phases: after.phases }),
    phaseShare: window === 0 ? 0 : round(Math.min(count, window) / window, 2),
  };
}

/** alternate mode: responses from the pool their path asks for, from the other pool, or not attributable. */
export interface PoolCount {
  readonly right: number;
  readonly wrong: number;
  readonly unknown: number;
}

/** One wrk run of one path at one size and mode, with the counters read around it. */
export interface Sample {
  readonly requests: number;
  readonly durationS: number;
  readonly errors: number;
  /** Failed requests by kind as wrk counts them (connect, read, write, status, timeout); zeros left out. */
  readonly errorKinds: Readonly<Record<string, number>>;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly feCpuMs: number;
  readonly beCpuMs: number;
  readonly machineCpuMs: number;
  /** proc.ts labCpuMs: the lab's processes, wrk, and the machine's irq + softirq time. */
  readonly labCpuMs: number;
  readonly feBytes: number;
  readonly fePackets: number;
  /** Deltas of the client namespace's TCP counters (tcpstat.ts TCP_COUNTERS) over the cell. */
  readonly tcp: Readonly<Record<string, number>>;
  readonly handoff?: CellHandoff;
  readonly pool?: PoolCount;
}

export interface ResultRow {
  readonly path: PathName;
  readonly size: string;
  readonly mode: Mode;
  /** Completed requests per second (median over repeats); null when the path could not run. */
  readonly rps: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Front-end process tree user+sys CPU per 1000 requests. */
  readonly feCpuMsPer1k: number | null;
  /** Bytes received + sent on the front-end's interface per request. */
  readonly feBytesPerReq: number | null;
  readonly fePacketsPerReq: number | null;
  /** All back-end process trees' user+sys CPU per 1000 requests. */
  readonly beCpuMsPer1k: number | null;
  /** Whole-machine busy CPU per 1000 requests (includes the load generator and softirq work). */
  readonly machineCpuMsPer1k: number | null;
  /** The lab's own CPU per 1000 requests (proc.ts labCpuMs): the machine figure without other users' processes. */
  readonly labCpuMsPer1k: number | null;
  /** The client's TCP retransmitted segments (Tcp RetransSegs) per 1000 requests. */
  readonly retransPer1k: number | null;
  /** Every counter of tcpstat.ts TCP_COUNTERS per 1000 requests (client namespace). */
  readonly tcpPer1k?: Readonly<Record<string, number>>;
  /** baton paths: handoffs made in the cell (summed over repeats), their p50/p99 log2 bucket bounds (median). */
  readonly handoffs?: number;
  readonly handoffP50LeUs?: number | null;
  readonly handoffP99LeUs?: number | null;
  /** baton paths: per-phase p50/p99 µs (median over repeats) and the share of the phase window this cell made. */
  readonly phasesUs?: Readonly<Record<string, { p50: number; p99: number }>>;
  readonly phaseShare?: number;
  /** phasesUs are the cell's own log2 bucket bounds (the front-end reports per-phase histograms). */
  readonly phasesFromBuckets?: boolean;
  /** alternate mode: % of attributable responses served by the pool their path asks for; null for direct. */
  readonly rightPoolPct?: number | null;
  readonly pool?: PoolCount;
  /** Requests and failed requests summed over repeats. */
  readonly requests: number;
  readonly errors: number;
  /** errors by kind (connect, read, write, status, timeout), summed over repeats; absent when there were none. */
  readonly errorKinds?: Readonly<Record<string, number>>;
  readonly repeats: number;
  readonly error?: string;
}

export interface RatioRow {
  readonly path: PathName;
  readonly vs: PathName;
  readonly size: string;
  readonly mode: Mode;
  /** path / vs; for rps higher is better, for the others lower is better. null when either side is missing. */
  readonly rps: number | null;
  readonly p99: number | null;
  readonly feCpu: number | null;
  readonly machineCpu: number | null;
  readonly labCpu: number | null;
  readonly feBytes: number | null;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return NaN;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Medians of per-sample rates, so one disturbed repeat does not drag a figure. */
export function summarize(path: PathName, size: string, mode: Mode, samples: readonly Sample[]): ResultRow {
  const ok = samples.filter((s) => s.requests > 0);
  const requests = samples.reduce((a, s) => a + s.requests, 0);
  const errors = samples.reduce((a, s) => a + s.errors, 0);
  if (ok.length === 0) {
    return errorRow(path, size, mode, 'no request completed', { requests, errors, repeats: samples.length });
  }
  const per = (f: (s: Sample) => number): number => median(ok.map(f));
  const tcpPer1k: Record<string, number> = {};
  for (const k of Object.keys(ok[0]!.tcp)) tcpPer1k[k] = round(per((s) => ((s.tcp[k] ?? 0) * 1000) / s.requests), 2);
  const hs = ok.map((s) => s.handoff).filter((h): h is CellHandoff => h !== undefined);
  const pools = samples.map((s) => s.pool).filter((p): p is PoolCount => p !== undefined);
  const pool = pools.length === 0 ? undefined : pools.reduce((a, p) => ({
    right: a.right + p.right, wrong: a.wrong + p.wrong, unknown: a.unknown + p.unknown,
  }));
  const medOrNull = (xs: readonly (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length === 0 ? null : median(v);
  };
  return {
    path,
    size,
    mode,
    rps: round(per((s) => s.requests / s.durationS), 1),
    p50Ms: round(per((s) => s.p50Us) / 1000, 3),
    p99Ms: round(per((s) => s.p99Us) / 1000, 3),
    feCpuMsPer1k: round(per((s) => (s.feCpuMs * 1000) / s.requests), 2),
    feBytesPerReq: round(per((s) => s.feBytes / s.requests), 0),
    fePacketsPerReq: round(per((s) => s.fePackets / s.requests), 2),
    beCpuMsPer1k: round(per((s) => (s.beCpuMs * 1000) / s.requests), 2),
    machineCpuMsPer1k: round(per((s) => (s.machineCpuMs * 1000) / s.requests), 2),
    labCpuMsPer1k: round(per((s) => (s.labCpuMs * 1000) / s.requests), 2),
    retransPer1k: tcpPer1k['Tcp.RetransSegs'] ?? null,
    tcpPer1k,
    ...(hs.length === 0 ? {} : {
      handoffs: hs.reduce((a, h) => a + h.count, 0),
      handoffP50LeUs: medOrNull(hs.map((h) => h.p50Le)),
      handoffP99LeUs: medOrNull(hs.map((h) => h.p99Le)),
      ...(hs.some((h) => h.phases !== undefined) ? { phasesUs: medianPhases(hs), phaseShare: round(median(hs.map((h) => h.phaseShare)), 2) } : {}),
      ...(hs.every((h) => h.phasesFromBuckets === true) ? { phasesFromBuckets: true } : {}),
    }),
    ...(pool === undefined ? {} : {
      pool,
      rightPoolPct: path === 'direct' || pool.right + pool.wrong === 0 ? null : round((100 * pool.right) / (pool.right + pool.wrong), 1),
    }),
    requests,
    errors,
    ...(errors === 0 ? {} : { errorKinds: sumKinds(samples) }),
    repeats: samples.length,
  };
}

function medianPhases(hs: readonly CellHandoff[]): Record<string, { p50: number; p99: number }> {
  const out: Record<string, { p50: number; p99: number }> = {};
  const names = new Set(hs.flatMap((h) => Object.keys(h.phases ?? {})));
  for (const k of names) {
    const v = hs.map((h) => h.phases?.[k]).filter((x): x is { p50: number; p99: number } => x !== undefined);
    out[k] = { p50: round(median(v.map((x) => x.p50)), 1), p99: round(median(v.map((x) => x.p99)), 1) };
  }
  return out;
}

/** The upper bound of the log2 bucket holding quantile q of a bucket histogram (bound -> count); null if empty. */
export function bucketQuantile(buckets: Readonly<Record<string, number>>, q: number): number | null {
  const entries = Object.entries(buckets).map(([k, n]) => [Number(k), n] as const).filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((a, [, n]) => a + n, 0);
  if (total === 0) return null;
  let seen = 0;
  for (const [bound, n] of entries) {
    seen += n;
    if (seen >= q * total) return bound;
  }
  return entries[entries.length - 1]![0];
}

/** after - before per bucket (a cell's own handoffs out of two cumulative histograms). */
export function bucketDelta(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(after)) {
    const d = n - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

function sumKinds(samples: readonly Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) for (const [k, n] of Object.entries(s.errorKinds)) out[k] = (out[k] ?? 0) + n;
  return out;
}

export function errorRow(
  path: PathName,
  size: string,
  mode: Mode,
  error: string,
  counts: { requests: number; errors: number; repeats: number } = { requests: 0, errors: 0, repeats: 0 },
): ResultRow {
  return {
    path,
    size,
    mode,
    rps: null,
    p50Ms: null,
    p99Ms: null,
    feCpuMsPer1k: null,
    feBytesPerReq: null,
    fePacketsPerReq: null,
    beCpuMsPer1k: null,
    machineCpuMsPer1k: null,
    labCpuMsPer1k: null,
    retransPer1k: null,
    ...counts,
    error,
  };
}

const ratio = (a: number | null, b: number | null): number | null =>
  a === null || b === null || b === 0 ? null : round(a / b, 3);

/** Every non-baseline path against each baseline proxy, cell by cell. */
export function ratios(rows: readonly ResultRow[], baselines: readonly PathName[] = ['haproxy', 'nginx']): RatioRow[] {
  const out: RatioRow[] = [];
  const find = (p: PathName, size: string, mode: Mode): ResultRow | undefined =>
    rows.find((r) => r.path === p && r.size === size && r.mode === mode);
  for (const r of rows) {
    if (baselines.includes(r.path)) continue;
    for (const vs of baselines) {
      const b = find(vs, r.size, r.mode);
      if (b === undefined) continue;
      out.push({
        path: r.path,
        vs,
        size: r.size,
        mode: r.mode,
        rps: ratio(r.rps, b.rps),
        p99: ratio(r.p99Ms, b.p99Ms),
        feCpu: ratio(r.feCpuMsPer1k, b.feCpuMsPer1k),
        machineCpu: ratio(r.machineCpuMsPer1k, b.machineCpuMsPer1k),
        labCpu: ratio(r.labCpuMsPer1k, b.labCpuMsPer1k),
        feBytes: ratio(r.feBytesPerReq, b.feBytesPerReq),
      });
    }
  }
  return out;
}
