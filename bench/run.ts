// `npm run bench`: baton's handoff against the balancers a user would pick instead (HAProxy, NGINX) and against no
// balancer at all, in one lab, in one run. Progress goes to stderr; the markdown report to stdout; with --json one
// JSON object is the last stdout line. See bench/README.md for what each figure means.

import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { labUp } from '../src/lab/lab.ts';
import { agentAvailable, startBackends, type BackendKind } from './backends.ts';
import type { BenchEnv } from './env.ts';
import { cellsOf, fetchDigest, runPath, type Plan, type Progress, type SegmentProbe } from './measure.ts';
import { PATH_NAMES, type PathName, type SteeringKind } from './paths.ts';
import { markdownReport, svgPlot, type BpfBench, type HandoffSummary, type RunMeta } from './report.ts';
import { ratios, SIZES, type ResultRow } from './results.ts';
import { runSoak, soakTable } from './soak.ts';
import type { Mode } from './wrk.ts';

interface Cli {
  quick?: boolean;
  json?: boolean;
  save?: boolean;
  out: string;
  paths?: PathName[];
  sizes?: string[];
  modes?: Mode[];
  duration?: number;
  warmup?: number;
  repeats?: number;
  connections: number;
  threads: number;
  backend: 'auto' | BackendKind;
  steering: SteeringKind;
  probe?: number;
  bpf: boolean;
  soak?: boolean;
  handoffs?: number;
}

const MODES: readonly Mode[] = ['close', 'keepalive', 'post', 'post-seq', 'post-ka', 'alternate'];
/** baton-nft only when asked for (or with --steering nft, where it would duplicate baton): keeps the run short. */
const DEFAULT_PATHS: readonly PathName[] = PATH_NAMES.filter((p) => p !== 'baton-nft' && p !== 'baton-classic');
const DEFAULT_SIZES = ['1KB', '100KB', '1MB'];
const QUICK_SIZES = ['1KB', '1MB'];

const log = (msg: string): void => {
  process.stderr.write(`bench: ${msg}\n`);
};

function intArg(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

function listArg<T extends string>(allowed: readonly T[]) {
  return (v: string): T[] => {
    const xs = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const x of xs) {
      if (!allowed.includes(x as T)) throw new InvalidArgumentError(`unknown value ${x} (allowed: ${allowed.join(', ')})`);
    }
    return xs as T[];
  };
}

function parseCli(argv: readonly string[]): Cli {
  const program = new Command('bench')
    .description('baton handoff vs HAProxy and NGINX proxying, in a namespace lab')
    .option('--quick', 'short run (about a minute): every mode, sizes 1KB and 1MB, 1 s each, one repeat, no warm-up')
    .option('--json', 'print one JSON object as the last stdout line')
    .option('--save', 'write the report with permanent names (default: *.tmp.*, git-ignored)')
    .option('--out <dir>', 'directory for the report files', fileURLToPath(new URL('./results', import.meta.url)))
    .option('--paths <list>', `comma-separated subset of ${PATH_NAMES.join(',')}`, listArg(PATH_NAMES))
    .option('--sizes <list>', `comma-separated response sizes (${Object.keys(SIZES).join(',')})`, listArg(Object.keys(SIZES)))
    .option('--modes <list>', `comma-separated: ${MODES.join(', ')}`, listArg(MODES))
    .option('--duration <s>', 'seconds per measurement (default 5, quick 1)', intArg(1))
    .option('--warmup <s>', 'seconds of warm-up per path (default 2, quick 0)', intArg(0))
    .option('--repeats <n>', 'measurements per cell, median reported (default 3, quick 1)', intArg(1))
    .option('--connections <n>', 'concurrent connections (closed loop)', intArg(1), 16)
    .option('--threads <n>', 'wrk threads', intArg(1), 1)
    .addOption(
      new Option('--backend <kind>', "back-end servers: baton's agent, the stand-in stub, or the agent when available")
        .choices(['auto', 'agent', 'stub'])
        .default('auto'),
    )
    .addOption(new Option('--steering <kind>', "steering of the baton path (baton-nft is always nft)").choices(['bpf', 'nft']).default('bpf'))
    .option('--probe <n>', 'sequential 64 KB requests of the segment probe per path, 0 for none (default 50, quick 20)', intArg(0))
    .option('--no-bpf', 'skip the data-plane micro-benchmark (bench/bpf.ts)')
    .option('--soak', 'instead of the comparison: the soak (bench/soak.ts), close-mode 1 KB requests until --handoffs')
    .option('--handoffs <n>', 'with --soak: handoffs to run (default 1000000)', intArg(1));
  program.parse(argv, { from: 'user' });
  return program.opts<Cli>();
}

function planFrom(o: Cli): Plan {
  const quick = o.quick === true;
  return {
    paths: o.paths ?? DEFAULT_PATHS,
    // Quick drops 100KB (the middle size) and the warm-up to stay near a minute with the upload, alternate and
    // probe cells; the full run has every size.
    sizes: o.sizes ?? (quick ? QUICK_SIZES : DEFAULT_SIZES),
    modes: o.modes ?? MODES,
    // Quick measures each cell for one second, once.
    durationS: o.duration ?? (quick ? 1 : 5),
    warmupS: o.warmup ?? (quick ? 0 : 2),
    repeats: o.repeats ?? (quick ? 1 : 3),
    connections: o.connections,
    threads: o.threads,
    quick,
    probeRequests: o.probe ?? (quick ? 20 : 50),
  };
}

/** bench/bpf.ts as a child (it loads programs with libbpf, unattached): its rows, or why not. */
function runBpfBench(quick: boolean): Promise<BpfBench> {
  const flows = quick ? 20_000 : 100_000;
  const repeat = quick ? 50_000 : 200_000;
  const script = fileURLToPath(new URL('./bpf.ts', import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', script, '--flows', String(flows), '--repeat', String(repeat), '--json'],
      { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        const line = stdout.split('\n').find((l) => l.startsWith('{'));
        if (err !== null || line === undefined) {
          resolve({ flows, backends: 64, repeat, rows: [], error: `${err?.message ?? 'no JSON'} ${stderr.trim().slice(-300)}`.trim() });
          return;
        }
        resolve(JSON.parse(line) as BpfBench);
      });
  });
}

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (network namespaces)');
  const missing = ['wrk', 'haproxy', 'nginx', 'curl', 'ip'].filter((c) => {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run bash scripts/setup.sh --bench`);
}

function machineDescription(): string {
  // Version banners go to stdout (haproxy), stderr (nginx) or come with odd exit codes: read everything.
  const grab = (argv: string[], re: RegExp): string => {
    const [cmd = '', ...args] = argv;
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? '?';
  };
  const hyper = grab(['lscpu'], /Hypervisor vendor:\s*(\S+)/);
  return [
    `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} vCPU${hyper === '?' ? '' : ` (${hyper} guest)`}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB RAM`,
    `Linux ${release()}, Node ${process.version}`,
    `HAProxy ${grab(['haproxy', '-v'], /version (\S+)/)}, nginx ${grab(['nginx', '-v'], /nginx\/(\S+)/)}, ` +
      `wrk ${grab(['wrk', '-v'], /wrk (\S+)/)}`,
  ].join('; ');
}

/** The 1-minute load average, as /proc/loadavg has it. */
function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
}

/** `stem` + suffix, or `stem-2`, `stem-3`, ... when a saved run of the same day already has the name. */
function freeBase(stem: string, suffix: string): string {
  if (suffix !== '') return `${stem}${suffix}`;
  for (let i = 1; ; i++) {
    const b = i === 1 ? stem : `${stem}-${i}`;
    if (!existsSync(`${b}.md`)) return b;
  }
}

/** The commit measured, with a marker when the working tree differs from it. */
function revision(): string {
  const r = spawnSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

function stderrProgress(total: number, started: number): Progress {
  let done = 0;
  const elapsed = (): string => `${Math.round((Date.now() - started) / 1000)}s`;
  return {
    cellDone(path, cell, s) {
      done++;
      const head = `[${done}/${total} ${elapsed()}] ${path} ${cell.size} ${cell.mode}:`;
      if (s instanceof Error) {
        log(`${head} ERROR ${s.message}`);
        return;
      }
      const perK = (ms: number): string => ((ms * 1000) / Math.max(1, s.requests)).toFixed(1);
      log(
        `${head} ${Math.round(s.requests / s.durationS)} req/s, p99 ${(s.p99Us / 1000).toFixed(1)} ms, ` +
          `FE ${perK(s.feCpuMs)} ms/1k, ${Math.round(s.feBytes / Math.max(1, s.requests))} B/req, ` +
          `retrans ${perK(s.tcp['Tcp.RetransSegs'] ?? 0)}/1k` +
          (s.handoff === undefined ? '' : `, ${s.handoff.count} handoffs p50 ≤ ${s.handoff.p50Le ?? '-'} µs`) +
          (s.pool === undefined ? '' : `, right pool ${s.pool.right}/${s.pool.right + s.pool.wrong}`) +
          `, ${s.errors} errors` +
          (s.errors === 0 ? '' : ` (${Object.entries(s.errorKinds).map(([k, n]) => `${k} ${n}`).join(', ')})`),
      );
    },
    skip(cells) {
      done += cells;
    },
    note(msg) {
      log(`[${elapsed()}] ${msg}`);
    },
  };
}

async function soak(o: Cli): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the soak needs root (network namespaces)');
  const r = await runSoak({ handoffs: o.handoffs ?? 1_000_000, connections: o.connections });
  process.stdout.write(soakTable(r));
  if (o.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
  if (!(r.pass.memory && r.pass.entries && r.pass.drift)) process.exitCode = 1;
}

async function main(argv: readonly string[]): Promise<void> {
  const o = parseCli(argv);
  if (o.soak === true) return soak(o);
  const plan = planFrom(o);
  preflight();

  const started = Date.now();
  const loadBefore = loadAverage();
  const cells = cellsOf(plan);
  const total = plan.paths.length * cells.length * plan.repeats;
  const estimate = (o.bpf ? (plan.quick ? 4 : 10) : 0) + 8 +
    plan.paths.length * (plan.warmupS + 3 + plan.probeRequests * 0.05 + cells.length * plan.repeats * (plan.durationS + 0.5));
  log(`${plan.paths.length} paths × ${cells.length} cells × ${plan.repeats} repeat(s) = ${total} measurements, ~${Math.round(estimate)} s`);
  const progress = stderrProgress(total, started);

  const bpf = o.bpf ? await runBpfBench(plan.quick) : undefined;
  if (bpf !== undefined) progress.note(bpf.error === undefined ? `bpf micro-benchmark: ${bpf.rows.length} rows` : `bpf micro-benchmark: ERROR ${bpf.error}`);
  const lab = await labUp({ backends: 2 });
  const workDir = mkdtempSync('/tmp/baton-bench-');
  const env: BenchEnv = {
    lab,
    workDir,
    vipPort: 80,
    appPort: 8080,
    controlPort: 7700,
    statsPort: 9900,
    secret: randomBytes(16).toString('hex'),
    steering: o.steering,
  };
  const rows: ResultRow[] = [];
  const probes: SegmentProbe[] = [];
  const handoffByPath: Partial<Record<PathName, HandoffSummary>> = {};
  let handoff: HandoffSummary = { p50: null, p99: null, error: 'baton path not run' };
  let backendKind: BackendKind = 'stub';
  try {
    progress.note(`lab ${lab.id} up`);
    backendKind = o.backend === 'auto' ? ((await agentAvailable(env)) ? 'agent' : 'stub') : o.backend;
    progress.note(`back-ends: ${backendKind === 'agent' ? "baton's back-end agent (sample app)" : 'stand-in stub'}`);
    const be = await startBackends(env, backendKind);
    try {
      const reference = await fetchDigest(lab, `http://${lab.backends[0]!.address}:${env.appPort}/bytes/${SIZES['1MB']}`);
      for (const name of plan.paths) {
        const out = await runPath(env, name, be, reference, plan, progress);
        rows.push(...out.rows);
        if (out.probe !== undefined) probes.push(out.probe);
        if (out.handoff !== undefined) handoffByPath[name] = out.handoff;
        if (out.handoff !== undefined && name === 'baton') handoff = out.handoff;
      }
    } finally {
      await be.stop();
    }
  } finally {
    await lab.down();
    rmSync(workDir, { recursive: true, force: true });
  }

  const elapsedS = Math.round((Date.now() - started) / 1000);
  const date = new Date().toISOString();
  const kind = plan.quick ? 'quick' : 'full';
  const ratioRows = ratios(rows);
  const meta: RunMeta = {
    date,
    machine: machineDescription(),
    revision: revision(),
    settings:
      `${kind}: ${plan.durationS} s per measurement, ${plan.repeats} repeat(s) (median), ${plan.warmupS} s warm-up ` +
      `per path, ${plan.connections} connections, ${plan.threads} wrk thread(s); baton steering ${o.steering}; ` +
      `segment probe ${plan.probeRequests} requests per path; run took ${elapsedS} s`,
    backendKind:
      backendKind === 'agent'
        ? "baton's back-end agent with its sample app, the same processes for every path"
        : 'stand-in stub server bench/stub-backend.ts for every path (baton agent not available)',
    notes: [
      'direct = client straight to back-end b1, no balancer: its front-end columns are the idle front-end (0 by construction).',
      'One shared 2-core VM: wrk, front-end and both back-ends compete for the same CPUs; compare paths within this run.',
      `Load average (1 min) before the run ${loadBefore}, after it ${loadAverage()} on ${cpus().length} CPUs: ` +
        'anything well above what the run itself adds is other work on the machine, which inflates every figure ' +
        '(machine CPU most; lab CPU leaves other processes out).',
    ],
  };
  const json = {
    results: rows,
    handoffUs: handoff,
    handoffUsByPath: handoffByPath,
    segments64KB: probes,
    ...(bpf === undefined ? {} : { bpf }),
    ratios: ratioRows,
    meta: { date, revision: meta.revision, machine: meta.machine, settings: meta.settings, backends: backendKind, elapsedS },
  };
  const base = freeBase(join(o.out, `${date.slice(0, 10)}-${kind}`), o.save === true ? '' : '.tmp');
  mkdirSync(o.out, { recursive: true });
  const report = markdownReport(meta, rows, ratioRows, handoffByPath, probes, bpf);
  writeFileSync(`${base}.md`, report);
  writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(`${base}.svg`, svgPlot(rows, `baton benchmark ${date.slice(0, 10)} (${kind})`));
  log(`done in ${elapsedS} s; wrote ${base}.{md,json,svg}`);
  process.stdout.write(report);
  if (o.json === true) process.stdout.write(`${JSON.stringify(json)}\n`);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  log(`failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
