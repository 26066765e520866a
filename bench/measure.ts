// Measuring one path: correctness check, warm-up, then every (size, mode) cell `repeats` times with the front-end,
// back-end, machine and client-TCP counters (and a baton front-end's handoff figures) read around each wrk run;
// then the segment probe: sequential 64 KB responses on new connections, each right after a handoff for baton.

import type { Lab } from '../src/lab/lab.ts';
import type { Backends } from './backends.ts';
import type { BenchEnv } from './env.ts';
import { isBaton, startPath, type PathName, type RunningPath } from './paths.ts';
import { labCpuMs, machineBusyMs, netnsInodes, treeCpuMs } from './proc.ts';
import type { HandoffSummary } from './report.ts';
import { cellHandoff, errorRow, SIZES, summarize, type ResultRow, type Sample } from './results.ts';
import { clientCounters, diff, ipSegments, TCP_COUNTERS } from './tcpstat.ts';
import { ALTERNATE, isUpload, runWrk, wrkErrorKinds, wrkErrors, type Mode } from './wrk.ts';

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
  /** Sequential 64 KB requests of the segment probe (0: no probe). */
  readonly probeRequests: number;
}

export interface Cell {
  readonly size: string;
  readonly mode: Mode;
}

/** The segment probe of one path: sequential 64 KB GETs with `Connection: close`, client counters around them. */
export interface SegmentProbe {
  readonly path: PathName;
  readonly requests: number;
  /** Packets the client's interface received per request (GSO super-packets count once). */
  readonly rxPacketsPerReq: number | null;
  /** IP segments the client received per request (GSO packets count as the segments their sender cut). */
  readonly segmentsPerReq: number | null;
  readonly retransPer1k: number | null;
  /** baton: the probe's handoffs (sequential, on an otherwise idle lab): log2 bucket bounds of p50/p99 in µs. */
  readonly handoffP50LeUs?: number | null;
  readonly handoffP99LeUs?: number | null;
  /** Request sent -> first response byte (curl starttransfer - pretransfer), µs, over the probe's requests. */
  readonly firstByteP50Us?: number;
  readonly firstByteP99Us?: number;
  /** baton: the probe's per-phase log2 bucket bounds (µs), `placed` included for forwarded handoffs. */
  readonly phasesUs?: Readonly<Record<string, { p50: number; p99: number }>>;
  readonly error?: string;
}

export interface PathOutcome {
  readonly rows: ResultRow[];
  /** Only for paths that report handoffs (baton). */
  readonly handoff?: HandoffSummary;
  readonly probe?: SegmentProbe;
}

/** Progress reporting, so a long run says where it is. */
export interface Progress {
  cellDone(path: PathName, cell: Cell, s: Sample | Error): void;
  skip(cells: number): void;
  note(msg: string): void;
}

/** Body of a `post` (many uploads at once, still streaming at handoff) and a `post-seq`/`post-ka` (one at a time) cell. */
export const POST_SIZE = '4MB';
export const POST_SEQ_SIZE = '8MB';
/** Label of the alternate cell's size (its two paths ask for 3 KB and 2 KB). */
export const ALTERNATE_SIZE = '2-3KB';

/** Every (size, mode) of the plan: the GET sizes in close and keepalive, then one cell per other mode. */
export const cellsOf = (p: Plan): Cell[] => [
  ...p.sizes.flatMap((size) => p.modes.filter((m) => m === 'close' || m === 'keepalive').map((mode) => ({ size, mode }))),
  ...(p.modes.includes('post') ? [{ size: POST_SIZE, mode: 'post' as const }] : []),
  ...(p.modes.includes('post-seq') ? [{ size: POST_SEQ_SIZE, mode: 'post-seq' as const }] : []),
  ...(p.modes.includes('post-ka') ? [{ size: POST_SEQ_SIZE, mode: 'post-ka' as const }] : []),
  ...(p.modes.includes('alternate') ? [{ size: ALTERNATE_SIZE, mode: 'alternate' as const }] : []),
];

function cellUrl(base: string, c: Cell): string {
  if (isUpload(c.mode)) return `${base}/sha256`;
  if (c.mode === 'alternate') return `${base}${ALTERNATE[0].path}`;
  return `${base}/bytes/${SIZES[c.size]}`;
}


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
  const h0 = path.handoffStats === undefined ? undefined : await path.handoffStats();
  const c0 = await clientCounters(lab);
  const i0 = await lab.ifaceBytes(lab.frontend);
  const fe0 = treeCpuMs(path.frontendPids);
  const be0 = treeCpuMs(be.pids);
  const ns = netnsInodes([lab.client, lab.frontend, ...lab.backends].map((h) => h.netns));
  const m0 = machineBusyMs();
  const l0 = labCpuMs(ns);
  const w = await runWrk(lab, {
    url: cellUrl(path.baseUrl, cell),
    mode: cell.mode,
    connections: cell.mode === 'post-seq' || cell.mode === 'post-ka' ? 1 : p.connections,
    threads: p.threads,
    durationS: p.durationS,
    scriptDir: env.workDir,
    ...(isUpload(cell.mode) ? { bodyBytes: SIZES[cell.size] } : {}),
    ...(cell.mode === 'alternate' ? { expectBackends: ALTERNATE.map((a) => lab.backends[a.backendIndex]!.name) } : {}),
  });
  const l1 = labCpuMs(ns);
  const m1 = machineBusyMs();
  const fe1 = treeCpuMs(path.frontendPids);
  const be1 = treeCpuMs(be.pids);
  const i1 = await lab.ifaceBytes(lab.frontend);
  const c1 = await clientCounters(lab);
  const h1 = path.handoffStats === undefined ? undefined : await path.handoffStats();
  const tcpAll = diff(c0, c1);
  return {
    requests: w.requests,
    durationS: w.durationUs / 1e6,
    errors: wrkErrors(w),
    errorKinds: wrkErrorKinds(w),
    p50Us: w.p50Us,
    p99Us: w.p99Us,
    feCpuMs: fe1 - fe0,
    beCpuMs: be1 - be0,
    machineCpuMs: m1 - m0,
    labCpuMs: l1 - l0,
    feBytes: Number(i1.rxBytes - i0.rxBytes + (i1.txBytes - i0.txBytes)),
    fePackets: Number(i1.rxPackets - i0.rxPackets + (i1.txPackets - i0.txPackets)),
    tcp: Object.fromEntries(TCP_COUNTERS.map((k) => [k, tcpAll[k] ?? 0])),
    ...(h0 !== undefined && h1 !== undefined ? { handoff: cellHandoff(h0, h1) } : {}),
    ...(cell.mode === 'alternate' ? { pool: { right: w.poolRight, wrong: w.poolWrong, unknown: w.poolUnknown } } : {}),
  };
}

/**
 * Sequential 64 KB GETs on new connections (curl, one at a time): with baton each response is the first data the
 * injected socket sends, so its segment count shows the MSS the handoff left it with.
 */
async function probeSegments(env: BenchEnv, path: RunningPath, n: number): Promise<SegmentProbe> {
  const { lab } = env;
  const url = `${path.baseUrl}/bytes/${SIZES['64KB']}`;
  const h0 = path.handoffStats === undefined ? undefined : await path.handoffStats();
  const c0 = await clientCounters(lab);
  // Each request prints curl's pretransfer and starttransfer times: their difference is the wait for the first
  // response byte once the request is sent, which with baton includes the whole handoff as the client sees it.
  const r = await lab.exec(
    lab.client,
    ['sh', '-c', `i=0; while [ $i -lt ${n} ]; do curl -sf -o /dev/null -H 'Connection: close' --max-time 5 -w '%{time_pretransfer} %{time_starttransfer}\\n' '${url}' || exit 1; i=$((i+1)); done`],
    { timeoutMs: 10_000 + n * 5000 },
  );
  const c1 = await clientCounters(lab);
  const h1 = path.handoffStats === undefined ? undefined : await path.handoffStats();
  if (r.code !== 0) {
    return { path: path.name, requests: n, rxPacketsPerReq: null, segmentsPerReq: null, retransPer1k: null, error: `curl failed (exit ${r.code})` };
  }
  const d = diff(c0, c1);
  const ch = h0 !== undefined && h1 !== undefined ? cellHandoff(h0, h1) : undefined;
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return {
    path: path.name,
    requests: n,
    rxPacketsPerReq: r2((d['If.rx_packets'] ?? 0) / n),
    segmentsPerReq: r2(ipSegments(d) / n),
    retransPer1k: r2(((d['Tcp.RetransSegs'] ?? 0) * 1000) / n),
    ...firstByteUs(r.stdout),
    ...(ch === undefined ? {} : { handoffP50LeUs: ch.p50Le, handoffP99LeUs: ch.p99Le }),
    ...(ch?.phasesFromBuckets === true && ch.phases !== undefined ? { phasesUs: ch.phases } : {}),
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
      ...(isBaton(name) ? { handoff: { p50: null, p99: null, error: msg } } : {}),
    };
  };
  if (isBaton(name) && be.kind !== 'agent') {
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
        scriptDir: env.workDir,
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
    let probe: SegmentProbe | undefined;
    if (plan.probeRequests > 0) {
      try {
        probe = await probeSegments(env, path, plan.probeRequests);
        progress.note(`${name}: 64KB after handoff: ${probe.segmentsPerReq} segments, ${probe.rxPacketsPerReq} rx packets per response` +
          (probe.error === undefined ? '' : ` (${probe.error})`));
      } catch (e) {
        probe = { path: name, requests: 0, rxPacketsPerReq: null, segmentsPerReq: null, retransPer1k: null, error: (e as Error).message };
      }
    }
    const withProbe = probe === undefined ? {} : { probe };
    if (path.handoffStats === undefined) return { rows, ...withProbe };
    try {
      const h = await path.handoffStats();
      progress.note(`${name}: handoff p50 ${h.p50} µs, p99 ${h.p99} µs over ${h.count} handoffs`);
      return { rows, handoff: h, ...withProbe };
    } catch (e) {
      return { rows, handoff: { p50: null, p99: null, error: (e as Error).message }, ...withProbe };
    }
  } catch (e) {
    return failed((e as Error).message);
  } finally {
    await path.stop();
  }
}

/** p50/p99 of curl's starttransfer - pretransfer over lines of "pretransfer starttransfer" (seconds). */
export function firstByteUs(out: string): { firstByteP50Us?: number; firstByteP99Us?: number } {
  const us = out
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((v) => v.length === 2 && v.every(Number.isFinite))
    .map(([pre, start]) => Math.max(0, (start! - pre!) * 1e6))
    .sort((a, b) => a - b);
  if (us.length === 0) return {};
  const q = (p: number): number => Math.round(us[Math.min(us.length - 1, Math.floor(p * us.length))]!);
  return { firstByteP50Us: q(0.5), firstByteP99Us: q(0.99) };
}
