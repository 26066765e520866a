// A running baton cluster inside a lab: one back-end agent (with the sample app) per back-end
// namespace and one front-end in the front-end namespace, each a process started once through
// the CLI. Used by the demo, the integration tests and the benchmarks.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabHost } from './lab.ts';

export const CONTROL_PORT = 7700;
export const APP_PORT = 8080;
export const STATS_PORT = 9900;
const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

export interface ClusterOptions {
  /** Port served on the VIP. */
  readonly port?: number;
  /** Front-end config fields merged over the defaults (pools, rules, limits, ...). */
  readonly frontend?: Record<string, unknown>;
  /** Back-end config fields merged over the defaults, per back-end name. */
  readonly backend?: (name: string) => Record<string, unknown>;
  /** Back-ends whose agent is not started (to test failures). */
  readonly skipAgents?: readonly string[];
  readonly logLevel?: string;
  readonly readyTimeoutMs?: number;
}

export interface Cluster {
  readonly lab: Lab;
  readonly secret: string;
  readonly frontendConfig: Record<string, unknown>;
  readonly frontendPid: () => number | undefined;
  readonly agentPids: () => (number | undefined)[];
  /** GET /stats on the front-end. */
  stats(): Promise<FrontendStatsJson>;
  /** The last lines each process printed (for failure reports). */
  logs(): string;
  stop(): Promise<void>;
}

export interface FrontendStatsJson {
  accepted: number;
  handedOff: number;
  retries: number;
  answeredLocally: Record<string, number>;
  handoffUs: { count: number; p50: number; p90: number; p99: number; max: number; buckets: Record<string, number> };
  phasesUs: Record<string, { p50: number; p99: number }>;
  perBackend: Record<string, { handoffs: number; failures: number; active: number; up: boolean }>;
  steering?: { entries: number };
}

const cli = (): string[] => ['node', '--import', 'tsx', join(ROOT, 'src/cli/main.ts')];

function capture(name: string, child: ChildProcess, ring: string[]): void {
  const push = (d: Buffer): void => {
    for (const line of d.toString().split('\n')) if (line) ring.push(`[${name}] ${line}`);
    if (ring.length > 400) ring.splice(0, ring.length - 400);
  };
  child.stdout?.on('data', push);
  child.stderr?.on('data', push);
}

export async function startCluster(lab: Lab, o: ClusterOptions = {}): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), `baton-${lab.id}-`));
  const secret = randomBytes(24).toString('hex');
  const env = { ...process.env, BATON_SECRET: secret, BATON_LOG: o.logLevel ?? 'warn' };
  const ring: string[] = [];
  const agents: ChildProcess[] = [];
  const skip = new Set(o.skipAgents ?? []);
  const port = o.port ?? 80;

  for (const b of lab.backends) {
    if (skip.has(b.name)) continue;
    const cfg = {
      name: b.name,
      control: { host: b.address, port: CONTROL_PORT },
      secret: 'env:BATON_SECRET',
      vip: lab.vip,
      setupRealServer: true,
      app: { kind: 'sample', listen: { host: b.address, port: APP_PORT } },
      ...o.backend?.(b.name),
    };
    const file = join(dir, `${b.name}.json`);
    await writeFile(file, JSON.stringify(cfg, null, 2));
    const child = lab.spawn(b, [...cli(), 'backend', '--config', file], { env });
    capture(b.name, child, ring);
    agents.push(child);
  }

  const frontendConfig: Record<string, unknown> = {
    vip: lab.vip,
    port,
    interface: lab.frontend.ifname,
    secret: 'env:BATON_SECRET',
    backends: lab.backends.map((b) => ({ id: b.name, address: b.address, control: { host: b.address, port: CONTROL_PORT } })),
    pools: [{ name: 'all', policy: { name: 'wrr' }, members: lab.backends.map((b) => b.name) }],
    rules: [],
    defaultPool: 'all',
    stats: { host: '127.0.0.1', port: STATS_PORT },
    steering: { table: `baton_${lab.id}`, lingerMs: 1000 },
    ...o.frontend,
  };
  const feFile = join(dir, 'frontend.json');
  await writeFile(feFile, JSON.stringify(frontendConfig, null, 2));
  const fe = lab.spawn(lab.frontend, [...cli(), 'frontend', '--config', feFile], { env });
  capture('fe', fe, ring);

  const stats = async (): Promise<FrontendStatsJson> => {
    const r = await lab.exec(lab.frontend, ['curl', '-sS', '--max-time', '5', `http://127.0.0.1:${STATS_PORT}/stats`]);
    if (r.code !== 0) throw new Error(`stats: curl exit ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as FrontendStatsJson;
  };
  const stop = async (): Promise<void> => {
    for (const c of [fe, ...agents]) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all([fe, ...agents].map((c) => exited(c, 5000)));
    await rm(dir, { recursive: true, force: true });
  };
  const cluster: Cluster = {
    lab, secret, frontendConfig, stats, stop,
    frontendPid: () => fe.pid,
    agentPids: () => agents.map((a) => a.pid),
    logs: () => ring.join('\n'),
  };

  // Ready when every started agent's channel is up.
  const want = lab.backends.filter((b) => !skip.has(b.name)).map((b) => b.name);
  const deadline = Date.now() + (o.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (fe.exitCode !== null) break;
    const s = await stats().catch(() => undefined);
    if (s && want.every((n) => s.perBackend[n]?.up)) return cluster;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const logs = cluster.logs();
  await stop();
  throw new Error(`cluster did not become ready\n${logs}`);
}

function exited(c: ChildProcess, ms: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const t = setTimeout(() => {
      c.kill('SIGKILL');
      r();
    }, ms);
    c.once('exit', () => {
      clearTimeout(t);
      r();
    });
  });
}

export const hostOf = (lab: Lab, name: string): LabHost => {
  const h = [lab.client, lab.frontend, ...lab.backends].find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name} in lab ${lab.id}`);
  return h;
};
