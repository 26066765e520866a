// The ways a client can reach the back-ends, each started once per run in the lab:
//   direct    - the client talks to back-end b1's application port; no balancer at all (the floor).
//   baton     - baton's front-end owns the VIP and hands connections off to the back-end agents; eBPF steering
//               unless the run says --steering nft.
//   baton-nft - the same with nftables steering (the fallback), to compare both data planes in one run.
//   baton-classic - baton with `limits.forwardFirst: false` (hold, HANDOFF, ACK, forward, COMMIT: docs/handoff.md),
//                   to compare both handoff orders in one run.
//   haproxy   - HAProxy in HTTP mode, round robin, bound to VIP:80 in the front-end namespace.
//   nginx     - NGINX proxy_pass to an upstream group, bound to VIP:80 in the front-end namespace.
// Proxy configs are what a careful user would write: default worker/thread counts (one per CPU), keep-alive to
// the back-ends, no logging, no disk buffering. Every balancer routes the same two path rules (ALTERNATE in
// wrk.ts: one pool per back-end) before its default pool of both back-ends; only the `alternate` mode's paths match
// them.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { batonArgv, batonCliPresent, batonEnv, type BenchEnv } from './env.ts';
import { captureOutput, pidOf, stopChild, waitHttp200 } from './procs.ts';
import { frontendConfig as labFrontendConfig } from '../src/lab/cluster.ts';
import { ensureBpffs } from '../src/steer/bpf-loader.ts';
import { ALTERNATE } from './wrk.ts';

export const PATH_NAMES = ['direct', 'baton', 'baton-nft', 'baton-classic', 'haproxy', 'nginx'] as const;
export type PathName = (typeof PATH_NAMES)[number];
/** The paths served by baton's front-end (they report handoffs). */
export const isBaton = (p: PathName): boolean => p === 'baton' || p === 'baton-nft' || p === 'baton-classic';
export type SteeringKind = 'bpf' | 'nft';

/** Where a bpf front-end pins its maps: a bpffs mounted in the host's mount namespace, outside /sys, because
 * `ip netns exec` remounts /sys and a bpffs mounted there would die with the front-end. */
export const BPFFS_ROOT = '/run/baton/bpffs';

export interface HandoffStats {
  readonly p50: number;
  readonly p99: number;
  readonly count: number;
  /** As the front-end reports it: log2 bucket upper bound in µs -> handoffs. */
  readonly histogram?: unknown;
  /** Where the time goes, per handoff phase (hold, capture, prepare, forward), if the front-end reports it. */
  readonly phases?: Record<string, { p50: number; p99: number }>;
  /** Per-phase log2 histograms (bound µs -> count, over all handoffs), when the front-end reports them. */
  readonly phaseBuckets?: Record<string, Record<string, number>>;
}

export interface RunningPath {
  readonly name: PathName;
  /** Where the client sends requests, without the path: http://host:port */
  readonly baseUrl: string;
  /** Root pids of the front-end processes; their descendants count too. Empty for direct. */
  readonly frontendPids: readonly number[];
  /** baton only: the front-end's handoff latency figures. */
  handoffStats?(): Promise<HandoffStats>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

export async function startPath(env: BenchEnv, name: PathName): Promise<RunningPath> {
  switch (name) {
    case 'direct':
      return { name, baseUrl: backendUrl(env, 0), frontendPids: [], stop: async () => undefined };
    case 'haproxy':
      return startDaemon(env, name, ['haproxy', '-db', '-f', writeHaproxyConfig(env)]);
    case 'nginx': {
      const conf = writeNginxConfig(env);
      return startDaemon(env, name, ['nginx', '-e', join(env.workDir, 'nginx', 'error.log'), '-c', conf]);
    }
    case 'baton':
      return startBaton(env, name, env.steering);
    case 'baton-nft':
      return startBaton(env, name, 'nft');
    case 'baton-classic':
      return startBaton(env, name, env.steering, { forwardFirst: false });
  }
}

function backendUrl(env: BenchEnv, i: number): string {
  const b = env.lab.backends[i];
  if (b === undefined) throw new Error(`no back-end ${i}`);
  return `http://${b.address}:${env.appPort}`;
}

function vipUrl(env: BenchEnv): string {
  return `http://${env.lab.vip}:${env.vipPort}`;
}

async function startDaemon(env: BenchEnv, name: PathName, argv: string[]): Promise<RunningPath> {
  const { lab } = env;
  const child = lab.spawn(lab.frontend, argv);
  const out = captureOutput(child);
  const baseUrl = vipUrl(env);
  try {
    await waitHttp200(lab, lab.client, `${baseUrl}/bytes/1`, READY_TIMEOUT_MS, child, out);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return { name, baseUrl, frontendPids: [pidOf(child)], stop: () => stopChild(child) };
}

function writeHaproxyConfig(env: BenchEnv): string {
  const servers = env.lab.backends.map((b) => `  server ${b.name} ${b.address}:${env.appPort}`).join('\n');
  const text = `# generated by bench/paths.ts
global
  # Explicit so HAProxy does not try to raise the fd limit beyond what this machine allows.
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend vip
  bind ${env.lab.vip}:${env.vipPort}
${ALTERNATE.map((a, i) => `  acl pool${i} path_beg ${a.prefix}\n  use_backend pool${i} if pool${i}`).join('\n')}
  default_backend app
backend app
  balance roundrobin
${servers}
${ALTERNATE.map((a, i) => `backend pool${i}\n  server ${backendOf(env, a.backendIndex).name} ${backendOf(env, a.backendIndex).address}:${env.appPort}`).join('\n')}
`;
  const file = join(env.workDir, 'haproxy.cfg');
  writeFileSync(file, text);
  return file;
}

function writeNginxConfig(env: BenchEnv): string {
  const dir = join(env.workDir, 'nginx');
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const servers = env.lab.backends.map((b) => `    server ${b.address}:${env.appPort};`).join('\n');
  const text = `# generated by bench/paths.ts
user root;
worker_processes auto;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  keepalive_requests 1000000;
  upstream app {
${servers}
    keepalive 64;
  }
${ALTERNATE.map((a, i) => `  upstream pool${i} {\n    server ${backendOf(env, a.backendIndex).address}:${env.appPort};\n    keepalive 64;\n  }`).join('\n')}
  # Uploads: accept large bodies and stream them to the back-end as they arrive, never to a temp file.
  client_max_body_size 1g;
  proxy_request_buffering off;
  server {
    listen ${env.lab.vip}:${env.vipPort};
${ALTERNATE.map((a, i) => `    location ${a.prefix} {\n      proxy_pass http://pool${i};\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_max_temp_file_size 0;\n    }`).join('\n')}
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Stream large bodies through memory buffers instead of spilling them to temp files.
      proxy_max_temp_file_size 0;
    }
  }
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, text);
  return file;
}

function backendOf(env: BenchEnv, i: number): { name: string; address: string } {
  const b = env.lab.backends[i];
  if (b === undefined) throw new Error(`no back-end ${i}`);
  return b;
}

/** The lab's front-end config plus the two path rules and the steering of this path. */
export function frontendConfig(env: BenchEnv, steering: Record<string, unknown>): Record<string, unknown> {
  const base = labFrontendConfig(env.lab, {
    secret: env.secret, port: env.vipPort, controlPort: env.controlPort, statsPort: env.statsPort,
  });
  return {
    ...base,
    pools: [
      ...(base['pools'] as object[]),
      ...ALTERNATE.map((a, i) => ({ name: `pool${i}`, policy: { name: 'wrr' }, members: [backendOf(env, a.backendIndex).name] })),
    ],
    rules: ALTERNATE.map((a, i) => ({ match: { pathPrefix: a.prefix }, pool: `pool${i}` })),
    steering,
  };
}

async function startBaton(env: BenchEnv, name: PathName, kind: SteeringKind, limits: Record<string, unknown> = {}): Promise<RunningPath> {
  const { lab } = env;
  if (!batonCliPresent()) throw new Error('baton front-end not available yet (src/cli/main.ts is missing)');
  // A table name of its own per run and path, so nothing another lab or an earlier run left can be adopted.
  const table = `bench_${lab.id}_${name.replace(/[^A-Za-z0-9]/g, '')}_${kind}`;
  const pinDir = kind === 'bpf' ? `${BPFFS_ROOT}/${table}` : undefined;
  if (pinDir !== undefined) ensureBpffs(`${BPFFS_ROOT}/x`);
  const steering = { kind, table, ...(pinDir === undefined ? {} : { pinDir }) };
  const file = join(env.workDir, `frontend-${name}.json`);
  const cfg = frontendConfig(env, steering);
  cfg['limits'] = { ...(cfg['limits'] as Record<string, unknown> | undefined), ...limits };
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  const child: ChildProcess = lab.spawn(lab.frontend, batonArgv(['frontend', '--config', file]), { env: batonEnv() });
  // The front-end keeps its bpf state on SIGTERM (restart survival): the bench removes it after stopping it.
  const stop = async (): Promise<void> => {
    await stopChild(child);
    if (pinDir !== undefined) rmSync(pinDir, { recursive: true, force: true });
  };
  const out = captureOutput(child);
  const baseUrl = vipUrl(env);
  const statsUrl = `http://127.0.0.1:${env.statsPort}/stats`;
  try {
    await waitHttp200(lab, lab.frontend, statsUrl, READY_TIMEOUT_MS, child, out);
    await waitHttp200(lab, lab.client, `${baseUrl}/bytes/1`, READY_TIMEOUT_MS, child, out);
  } catch (e) {
    await stop();
    throw e;
  }
  const handoffStats = async (): Promise<HandoffStats> => {
    const r = await lab.exec(lab.frontend, ['curl', '-s', '--max-time', '3', statsUrl], { timeoutMs: 5000 });
    if (r.code !== 0) throw new Error(`baton stats: curl exit ${r.code}`);
    return parseHandoff(JSON.parse(r.stdout) as unknown);
  };
  return { name, baseUrl, frontendPids: [pidOf(child)], handoffStats, stop };
}

/** Picks handoffUs {p50, p99, count, histogram?} out of the front-end's /stats document. */
export function parseHandoff(doc: unknown): HandoffStats {
  const h = isRecord(doc) ? doc['handoffUs'] : undefined;
  if (!isRecord(h) || typeof h['p50'] !== 'number' || typeof h['p99'] !== 'number') {
    throw new Error('baton stats: no handoffUs {p50, p99} in /stats');
  }
  const count = typeof h['count'] === 'number' ? h['count'] : 0;
  // The front-end's LatencyRecorder reports log2 buckets as `buckets`: upper bound (µs) -> count.
  const histogram = h['buckets'] ?? h['histogram'];
  const phases: Record<string, { p50: number; p99: number }> = {};
  const phaseBuckets: Record<string, Record<string, number>> = {};
  const ph = isRecord(doc) ? doc['phasesUs'] : undefined;
  if (isRecord(ph)) {
    for (const [k, v] of Object.entries(ph)) {
      if (isRecord(v) && typeof v['p50'] === 'number' && typeof v['p99'] === 'number') {
        phases[k] = { p50: round1(v['p50']), p99: round1(v['p99']) };
      }
      const b = isRecord(v) ? v['buckets'] : undefined;
      if (isRecord(b) && Object.values(b).every((n) => typeof n === 'number')) phaseBuckets[k] = b as Record<string, number>;
    }
  }
  // Forwarded handoffs' own figure (head -> client steered and blob written) goes with the phases as `placed`.
  const placed = isRecord(doc) ? doc['placedUs'] : undefined;
  if (isRecord(placed) && typeof placed['count'] === 'number' && placed['count'] > 0 && typeof placed['p50'] === 'number' && typeof placed['p99'] === 'number') {
    phases['placed'] = { p50: round1(placed['p50']), p99: round1(placed['p99']) };
    const b = placed['buckets'];
    if (isRecord(b) && Object.values(b).every((n) => typeof n === 'number')) phaseBuckets['placed'] = b as Record<string, number>;
  }
  return {
    p50: round1(h['p50']),
    p99: round1(h['p99']),
    count,
    ...(histogram === undefined ? {} : { histogram }),
    ...(Object.keys(phases).length === 0 ? {} : { phases }),
    ...(Object.keys(phaseBuckets).length === 0 ? {} : { phaseBuckets }),
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
