// Measuring one path: correctness check, warm-up, then every (size, mode) cell `repeats` times with the front-end,
// back-end and machine counters read around each wrk run.

import type { Lab } from '../src/lab/lab.ts';
import type { Backends } from './backends.ts';
import type { BenchEnv } from './env.ts';
import { startPath, type PathName, type RunningPath } from './paths.ts';
import { machineBusyMs, treeCpuMs } from './proc.ts';
import type { HandoffSummary } from './report.ts';
import { errorRow, SIZES, summarize, type ResultRow, type Sample } from './results.ts';
import { runWrk, wrkErrorKinds, wrkErrors, type Mode } from './wrk.ts';

export interface Plan {
  readonly paths: readonly PathName[];
  readonly sizes: readonly string[];
  readonly modes: readonly Mode[];
  readonly durationS: number;
  readonly warmupS: number;
  readonly repeats: number;
  readonly connections: number;
  readonly threads: number;
  readonly quick: boolean;
}

export interface Cell {
  readonly size: string;
  readonly mode: Mode;
}

export interface PathOutcome {
  readonly rows: ResultRow[];
  /** Only for paths that report handoffs (baton). */
  readonly handoff?: HandoffSummary;
}

/** Progress reporting, so a long run says where it is. */
export interface Progress {
  cellDone(path: PathName, cell: Cell, s: Sample | Error): void;
  skip(cells: number): void;
  note(msg: string): void;
}

export const cellsOf = (p: Plan): Cell[] => p.sizes.flatMap((size) => p.modes.map((mode) => ({ size, mode })));

/** sha256 of GET url as the client receives it. */
export async function fetchDigest(lab: Lab, url: string): Promise<string> {
  const r = await lab.exec(lab.client, ['sh', '-c', `curl -sf --max-time 10 '${url}' | sha256sum`], { timeoutMs: 15_000 });
  const digest = r.stdout.split(' ')[0] ?? '';
  // sha256sum exits 0 even when curl failed; the digest of nothing is the tell.
  if (r.code !== 0 || digest === 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855') {
    throw new Error(`fetch ${url} failed ${r.stderr.trim()}`);
  }
  return digest;
}

async function measureCell(env: BenchEnv, path: RunningPath, be: Backends, cell: Cell, p: Plan): Promise<Sample> {
  const { lab } = env;
  const fe0 = treeCpuMs(path.frontendPids);
  const be0 = treeCpuMs(be.pids);
  const m0 = machineBusyMs();
  const i0 = await lab.ifaceBytes(lab.frontend);
  const w = await runWrk(lab, {
    url: `${path.baseUrl}/bytes/${SIZES[cell.size]}`,
    mode: cell.mode,
    connections: p.connections,
    threads: p.threads,
    durationS: p.durationS,
  });
  const i1 = await lab.ifaceBytes(lab.frontend);
  return {
    requests: w.requests,
    durationS: w.durationUs / 1e6,
    errors: wrkErrors(w),
    errorKinds: wrkErrorKinds(w),
    p50Us: w.p50Us,
    p99Us: w.p99Us,
    feCpuMs: treeCpuMs(path.frontendPids) - fe0,
    beCpuMs: treeCpuMs(be.pids) - be0,
    machineCpuMs: machineBusyMs() - m0,
    feBytes: Number(i1.rxBytes - i0.rxBytes + (i1.txBytes - i0.txBytes)),
    fePackets: Number(i1.rxPackets - i0.rxPackets + (i1.txPackets - i0.txPackets)),
  };
}

/**
 * Starts the path's front-end once, checks it returns the back-end's bytes, warms it up and measures every cell.
 * Never throws: a path that cannot run yields error rows, so the other paths still get measured.
 */
export async function runPath(
  env: BenchEnv,
  name: PathName,
  be: Backends,
  reference: string,
  plan: Plan,
  progress: Progress,
): Promise<PathOutcome> {
  const cells = cellsOf(plan);
  const failed = (msg: string): PathOutcome => {
    progress.note(`${name}: ERROR ${msg}`);
    progress.skip(cells.length * plan.repeats);
    return {
      rows: cells.map((c) => errorRow(name, c.size, c.mode, msg)),
      ...(name === 'baton' ? { handoff: { p50: null, p99: null, error: msg } } : {}),
    };
  };
  if (name === 'baton' && be.kind !== 'agent') {
    return failed('baton needs its back-end agent (`baton backend`), which is not available; stand-in back-ends in use');
  }
  progress.note(`${name}: starting`);
  let path: RunningPath;
  try {
    path = await startPath(env, name);
  } catch (e) {
    return failed(`start: ${(e as Error).message}`);
  }
  try {
    // The same bytes as straight from the back-end, twice so both back-ends answer, before timing anything.
    for (let i = 0; i < 2; i++) {
      const d = await fetchDigest(env.lab, `${path.baseUrl}/bytes/${SIZES['1MB']}`);
      if (d !== reference) return failed(`1MB response differs from the back-end's own (sha256 ${d})`);
    }
    if (plan.warmupS > 0) {
      await runWrk(env.lab, {
        url: `${path.baseUrl}/bytes/${SIZES['100KB']}`,
        mode: 'keepalive',
        connections: plan.connections,
        threads: plan.threads,
        durationS: plan.warmupS,
      });
    }
    const samples = new Map<Cell, Sample[]>(cells.map((c) => [c, []]));
    const errors = new Map<Cell, string>();
    for (let rep = 0; rep < plan.repeats; rep++) {
      for (const c of cells) {
        try {
          const s = await measureCell(env, path, be, c, plan);
          samples.get(c)!.push(s);
          progress.cellDone(name, c, s);
        } catch (e) {
          errors.set(c, (e as Error).message);
          progress.cellDone(name, c, e as Error);
        }
      }
    }
    const rows = cells.map((c) => {
      const s = samples.get(c)!;
      return s.length === 0 ? errorRow(name, c.size, c.mode, errors.get(c) ?? 'no samples') : summarize(name, c.size, c.mode, s);
    });
    if (path.handoffStats === undefined) return { rows };
    try {
      const h = await path.handoffStats();
      progress.note(`${name}: handoff p50 ${h.p50} µs, p99 ${h.p99} µs over ${h.count} handoffs`);
      return { rows, handoff: h };
    } catch (e) {
      return { rows, handoff: { p50: null, p99: null, error: (e as Error).message } };
    }
  } catch (e) {
    return failed((e as Error).message);
  } finally {
    await path.stop();
  }
}
