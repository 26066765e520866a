// `npm run bench:profile`: where a handoff's CPU goes, on both sides. One lab (client, front-end, two back-end
// agents; eBPF steering, L2 forwarding), 1 KB responses with a new connection per request (one handoff each):
//   1. wrk load for --duration seconds with `--cpu-prof` on the front-end and both agents: machine CPU per request
//      (/proc/stat), each process's CPU per request, the front-end's handoff phases, and the top self-time
//      functions of each process over that window only (start-up and tsx compilation left out);
//   2. then `strace -c -f` on every thread of each process during a shorter wrk run: syscalls per request.
// Progress on stderr, a markdown report on stdout. Root only; about a minute.
//
//   npm run bench:profile -- [--duration 10] [--strace 4] [--connections 16] [--top 12] [--keep <dir>] [--classic]

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { labUp, stopChild, type Lab, type LabHost } from '../src/lab/lab.ts';
import { backendConfig } from './backends.ts';
import { cpuSection, straceSection, type ProcProfile, type ProcSyscalls } from './profile-report.ts';
import { declarationLines, isCpuProfile, mergeSyscalls, parseStraceSummary, selfTime } from './cpuprofile.ts';
import { BATON_MAIN, batonEnv, REPO_ROOT, TSX_IMPORT, type BenchEnv } from './env.ts';
import { frontendConfig, parseHandoff, type HandoffStats } from './paths.ts';
import { machineBusyMs, treeCpuMs } from './proc.ts';
import { captureOutput, pidOf, waitHttp200 } from './procs.ts';
import { runWrk, wrkErrors, type WrkResult } from './wrk.ts';

const log = (msg: string): void => {
  process.stderr.write(`profile: ${msg}\n`);
};

interface Opts {
  readonly durationS: number;
  readonly straceS: number;
  readonly connections: number;
  readonly top: number;
  /** Directory to copy the raw .cpuprofile files into (open them in Chrome DevTools), if given. */
  readonly keep: string | undefined;
  /** Classic handoffs (`limits.forwardFirst: false`) instead of forward first. */
  readonly classic: boolean;
}

function options(argv: string[]): Opts {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '10' },
      strace: { type: 'string', default: '4' },
      connections: { type: 'string', default: '16' },
      top: { type: 'string', default: '12' },
      keep: { type: 'string' },
      classic: { type: 'boolean', default: false },
    },
  });
  const int = (s: string, name: string, min: number): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}`);
    return n;
  };
  return {
    durationS: int(values.duration, 'duration', 1),
    straceS: int(values.strace, 'strace', 0),
    connections: int(values.connections, 'connections', 1),
    top: int(values.top, 'top', 1),
    keep: values.keep,
    classic: values.classic,
  };
}

const HOOK = fileURLToPath(new URL('./cpu-prof-hook.ts', import.meta.url));

/** baton's CLI with the profiler hook preloaded (SIGUSR2 starts and stops it; see cpu-prof-hook.ts). */
function profiledArgv(args: readonly string[]): string[] {
  return [process.execPath, '--import', TSX_IMPORT, '--import', HOOK, BATON_MAIN, ...args];
}

function profiledEnv(dir: string): NodeJS.ProcessEnv {
  return { ...batonEnv(), BATON_PROF_DIR: dir };
}

/** The profile a daemon writes on its second SIGUSR2, once it is there. */
async function collectProfile(p: Proc, timeoutMs = 20_000): Promise<unknown> {
  const file = join(p.profDir, `${pidOf(p.child)}.cpuprofile`);
  for (const deadline = Date.now() + timeoutMs; !existsSync(file); ) {
    if (Date.now() > deadline) throw new Error(`${p.name}: no profile after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return JSON.parse(readFileSync(file, 'utf8')) as unknown;
}

interface Proc {
  readonly name: string;
  readonly host: LabHost;
  readonly child: ChildProcess;
  readonly profDir: string;
}

async function startAgents(env: BenchEnv, profRoot: string, procs: Proc[]): Promise<void> {
  for (const b of env.lab.backends) {
    const file = join(env.workDir, `backend-${b.name}.json`);
    writeFileSync(file, JSON.stringify(backendConfig(env, b), null, 2));
    const profDir = join(profRoot, b.name);
    mkdirSync(profDir, { recursive: true });
    const child = env.lab.spawn(b, profiledArgv(['backend', '--config', file]), { env: profiledEnv(profDir) });
    procs.push({ name: `agent ${b.name}`, host: b, child, profDir });
    await waitHttp200(env.lab, env.lab.client, `http://${b.address}:${env.appPort}/bytes/1`, 20_000, child, captureOutput(child));
  }
}

async function startFrontend(env: BenchEnv, profRoot: string, procs: Proc[], classic: boolean): Promise<void> {
  const { lab } = env;
  const table = `prof_${lab.id}`;
  const pinDir = join(await lab.pinRoot(), table);
  const file = join(env.workDir, 'frontend.json');
  const cfg = frontendConfig(env, { kind: 'bpf', table, pinDir });
  if (classic) cfg['limits'] = { ...(cfg['limits'] as Record<string, unknown> | undefined), forwardFirst: false };
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  const profDir = join(profRoot, 'frontend');
  mkdirSync(profDir, { recursive: true });
  const child = lab.spawn(lab.frontend, profiledArgv(['frontend', '--config', file]), { env: profiledEnv(profDir) });
  procs.push({ name: 'front-end', host: lab.frontend, child, profDir });
  const out = captureOutput(child);
  await waitHttp200(lab, lab.frontend, `http://127.0.0.1:${env.statsPort}/stats`, 15_000, child, out);
  await waitHttp200(lab, lab.client, `http://${lab.vip}:${env.vipPort}/bytes/1`, 15_000, child, out);
}

async function handoffStats(env: BenchEnv): Promise<HandoffStats | undefined> {
  const r = await env.lab.exec(env.lab.frontend, ['curl', '-s', '--max-time', '3', `http://127.0.0.1:${env.statsPort}/stats`], { timeoutMs: 5000 });
  if (r.code !== 0) return undefined;
  try {
    return parseHandoff(JSON.parse(r.stdout) as unknown);
  } catch {
    return undefined;
  }
}

function closeLoad(env: BenchEnv, durationS: number, connections: number): Promise<WrkResult> {
  return runWrk(env.lab, {
    url: `http://${env.lab.vip}:${env.vipPort}/bytes/1024`,
    mode: 'close',
    connections,
    threads: 1,
    durationS,
    scriptDir: env.workDir,
  });
}

/** Every thread of a process: `strace -f -p` follows new children but attaches to the named thread only. */
function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((n) => Number.isInteger(n));
  } catch {
    return [pid];
  }
}

/** strace -c on each process while `load` runs; the summaries, parsed. */
async function straceDuring(procs: readonly Proc[], dir: string, load: () => Promise<WrkResult>): Promise<{ w: WrkResult; tables: ProcSyscalls[] }> {
  const tracers = procs.map((p) => {
    const out = join(dir, `strace-${p.name.replace(/\W+/g, '_')}.txt`);
    const tids = threadsOf(pidOf(p.child)).flatMap((t) => ['-p', String(t)]);
    const child = spawn('strace', ['-c', '-f', '-o', out, ...tids], { stdio: ['ignore', 'ignore', 'pipe'] });
    const err = captureOutput(child);
    return { p, out, child, err };
  });
  // strace prints "Process N attached" per thread once it holds them; give it that long.
  await new Promise((r) => setTimeout(r, 1000));
  let w: WrkResult;
  try {
    w = await load();
  } finally {
    for (const t of tracers) t.child.kill('SIGINT');
    await Promise.all(tracers.map((t) => new Promise<void>((r) => (t.child.exitCode !== null ? r() : t.child.once('exit', () => r())))));
  }
  const tables = tracers.map((t) => {
    let text = '';
    try {
      text = readFileSync(t.out, 'utf8');
    } catch {
      throw new Error(`strace on ${t.p.name} wrote nothing: ${t.err()}`);
    }
    return { name: t.p.name, rows: parseStraceSummary(text) };
  });
  return { w, tables };
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the profile needs root (network namespaces)');
  const started = Date.now();
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
  const lab: Lab = await labUp({ backends: 2 });
  const workDir = mkdtempSync('/tmp/baton-profile-');
  const profRoot = join(workDir, 'prof');
  const env: BenchEnv = {
    lab, workDir, vipPort: 80, appPort: 8080, controlPort: 7700, statsPort: 9900,
    secret: randomBytes(16).toString('hex'), steering: 'bpf',
  };
  const procs: Proc[] = [];
  const sections: string[] = [];
  try {
    log(`lab ${lab.id} up`);
    await startAgents(env, profRoot, procs);
    await startFrontend(env, profRoot, procs, o.classic);
    log('warm-up, 3 s');
    await closeLoad(env, 3, o.connections);

    log(`profiled load, ${o.durationS} s, ${o.connections} connections, 1 KB, a new connection per request`);
    for (const p of procs) p.child.kill('SIGUSR2');
    const m0 = machineBusyMs();
    const cpu0 = procs.map((p) => treeCpuMs([pidOf(p.child)]));
    const w = await closeLoad(env, o.durationS, o.connections);
    const m1 = machineBusyMs();
    const cpu1 = procs.map((p) => treeCpuMs([pidOf(p.child)]));
    for (const p of procs) p.child.kill('SIGUSR2');
    const docs = await Promise.all(procs.map((p) => collectProfile(p)));
    if (o.keep !== undefined) {
      mkdirSync(o.keep, { recursive: true });
      docs.forEach((d, i) => writeFileSync(join(o.keep!, `${procs[i]!.name.replace(/\W+/g, '-')}.cpuprofile`), JSON.stringify(d)));
    }
    const h = await handoffStats(env);
    const perReqUs = (ms: number): number => (ms * 1000) / Math.max(1, w.requests);

    let traced: { w: WrkResult; tables: ProcSyscalls[] } | undefined;
    if (o.straceS > 0) {
      log(`strace -c -f on ${procs.length} processes, ${o.straceS} s of load`);
      traced = await straceDuring(procs, workDir, () => closeLoad(env, o.straceS, Math.min(4, o.connections)));
    }

    const lineOf = declarationLines((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return undefined;
      }
    });
    const profiles: ProcProfile[] = procs.map((p, i) => {
      const doc = docs[i];
      const cpuUsPerReq = perReqUs(cpu1[i]! - cpu0[i]!);
      if (!isCpuProfile(doc)) return { name: p.name, cpuUsPerReq, error: `not a cpuprofile: ${JSON.stringify(doc).slice(0, 200)}` };
      return { name: p.name, cpuUsPerReq, self: selfTime(doc, { fromUs: -Infinity, toUs: Infinity, root: REPO_ROOT, top: o.top, lineOf }) };
    });

    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
    sections.push(
      `# baton handoff profile — ${new Date().toISOString()}`,
      '',
      `- lab: client, front-end (eBPF steering, l2), 2 back-end agents; wrk 1 thread, ${o.connections} connections, ` +
        `GET /bytes/1024 with Connection: close (one handoff per request, ${o.classic ? 'classic' : 'forward first'}), ${o.durationS} s profiled (V8 sampling every 500 µs) after 3 s warm-up`,
      `- ${cpus().length} CPUs, shared machine: load average (1 min) ${loadBefore} before, ${load} after`,
      '',
      '| figure | value |',
      '|---|--:|',
      `| requests (profiled run) | ${w.requests} (${Math.round(w.requests / (w.durationUs / 1e6))} req/s, ${wrkErrors(w)} errors) |`,
      `| wrk latency p50 / p99 | ${(w.p50Us / 1000).toFixed(2)} / ${(w.p99Us / 1000).toFixed(2)} ms |`,
      `| machine CPU per request | ${perReqUs(m1 - m0).toFixed(0)} µs |`,
      ...procs.map((p, i) => `| ${p.name} CPU per request | ${perReqUs(cpu1[i]! - cpu0[i]!).toFixed(0)} µs |`),
      ...(h === undefined ? [] : [
        `| handoff p50 / p99 (front-end, all handoffs) | ${h.p50} / ${h.p99} µs over ${h.count} |`,
        ...Object.entries(h.phases ?? {}).map(([k, v]) => `| phase ${k} p50 / p99 | ${v.p50} / ${v.p99} µs |`),
      ]),
      '',
      cpuSection(profiles),
    );
    if (traced !== undefined) {
      const be = mergeSyscalls(traced.tables.filter((t) => t.name.startsWith('agent')).map((t) => t.rows));
      const fe = traced.tables.filter((t) => !t.name.startsWith('agent'));
      sections.push(straceSection(traced.w, [...fe, { name: 'agents (both)', rows: be }], o.top));
    }
  } finally {
    await Promise.all(procs.map((p) => stopChild(p.child, 20_000)));
    await lab.down();
    rmSync(workDir, { recursive: true, force: true });
  }
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  process.stdout.write(`${sections.join('\n')}\n`);
}

main().catch((e: unknown) => {
  log(`failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
});
