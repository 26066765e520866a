// The figures of one benchmark run and how they are derived: per-cell samples, medians over repeats, and ratios
// against the proxies. Pure: no I/O here.

import type { PathName } from './paths.ts';
import type { Mode } from './wrk.ts';

export const SIZES: Readonly<Record<string, number>> = { '1KB': 1024, '10KB': 10_240, '100KB': 102_400, '1MB': 1_048_576 };

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
  readonly feBytes: number;
  readonly fePackets: number;
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
    requests,
    errors,
    ...(errors === 0 ? {} : { errorKinds: sumKinds(samples) }),
    repeats: samples.length,
  };
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
        feBytes: ratio(r.feBytesPerReq, b.feBytesPerReq),
      });
    }
  }
  return out;
}
