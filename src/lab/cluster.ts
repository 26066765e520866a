// A running baton cluster inside a lab: one back-end agent (with the sample app) per back-end
// namespace and one front-end per front-end namespace, each a process started once through
// the CLI. Used by the demo, the integration tests and the benchmarks.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUp, stopChild, type Lab, type LabHost, type LabOptions } from './lab.ts';
import { labWorkDir } from './reaper.ts';

/** How a front-end forwards a handed-off flow to its back-end (steer/'s ForwardMode; lab/ may not import steer/). */
export type ForwardMode = 'l2' | 'encap';

export const CONTROL_PORT = 7700;
export const APP_PORT = 8080;
export const STATS_PORT = 9900;
const HERE = fileURLToPath(import.meta.url);

export interface ClusterOptions {
  /** Serve the IPv6 VIP (the lab must have IPv6): back-ends are addressed by their IPv6 addresses; default 4. */
  readonly family?: 4 | 6;
  /**
   * How the front-end forwards to back-ends: `l2` (MAC rewrite, one segment: today's default) or `encap` (the
   * flow-id encapsulation, routed; needs bpf steering). Default: `encap` in a routed lab, else `l2`.
   */
  readonly forwarding?: ForwardMode;
  /**
   * The front-end's steering: `nft` or `bpf` (maps pinned in the lab's bpffs, so they survive a front-end restart).
   * Default: `bpf` with encap forwarding, else the front-end's own default.
   */
  readonly steering?: 'nft' | 'bpf';
  /** Port served on the VIP. */
  readonly port?: number;
  /** steering.lingerMs (default 1000 in labs, shorter than the product's 2000, so tests see entries go sooner). */
  readonly lingerMs?: number;
  /** Front-end config fields merged over the defaults (pools, rules, limits, ...). */
  readonly frontend?: Record<string, unknown>;
  /** Back-end config fields merged over the defaults, per back-end name. */
  readonly backend?: (name: string) => Record<string, unknown>;
  /** Back-ends whose agent is not started (to test failures). */
  readonly skipAgents?: readonly string[];
  readonly logLevel?: string;
  readonly readyTimeoutMs?: number;
  /**
   * Several front-ends (issue 11): each front-end drives its host's BIRD (announce the VIP only while ready) and
   * recovers flows another front-end handed off (bpf steering with orphan capture). BGP labs only.
   */
  readonly scaleOut?: boolean;
}

export interface Cluster {
  readonly lab: Lab;
  readonly secret: string;
  readonly frontendConfig: Record<string, unknown>;
  /** GET /stats on the (first) front-end. */
  stats(): Promise<FrontendStatsJson>;
  /** GET /stats on a given front-end (a lab with several). */
  statsOf(fe: LabHost): Promise<FrontendStatsJson>;
  /** The baton processes by host name ('fe', 'fe2', 'b1', ...), e.g. for lab.killProcess. */
  readonly processes: ReadonlyMap<string, ChildProcess>;
  /** The last lines each process printed (for failure reports). */
  logs(): string;
  /**
   * Kills a front-end process (SIGKILL by default: a crash), waits for it to exit, starts it again with the
   * same configuration and waits until its channels are up. With bpf steering it adopts the pinned state.
   */
  restartFrontend(o?: { readonly host?: LabHost; readonly signal?: NodeJS.Signals; readonly downMs?: number }): Promise<void>;
  /**
   * Kills a back-end's agent (SIGKILL by default) if it still runs, starts it again with the same configuration
   * and waits until every front-end sees its channel up again.
   */
  restartAgent(name: string, o?: { readonly signal?: NodeJS.Signals; readonly downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export interface FrontendStatsJson {
  accepted: number;
  handedOff: number;
  retries: number;
  answeredLocally: Record<string, number>;
  handoffUs: { count: number; p50: number; p90: number; p99: number; max: number; buckets: Record<string, number> };
  /** Forwarded handoffs (docs/handoff.md): head -> client steered and blob sent. */
  placedUs: { count: number; p50: number; p99: number };
  unconfirmed: number;
  phasesUs: Record<string, { p50: number; p99: number }>;
  perBackend: Record<string, { handoffs: number; failures: number; active: number; up: boolean }>;
  /** Data-path counters per back-end (bpf steering; empty with nft). */
  steering?: { perBackend: Record<string, { packets: number; bytes: number }> };
}

// Run the CLI the way this module runs: compiled (the installed package, dist/) needs no TypeScript loader.
const cli = (): string[] =>
  HERE.endsWith('.js')
    ? [process.execPath, join(dirname(HERE), '../cli/main.js')]
    : [process.execPath, '--import', 'tsx', join(dirname(HERE), '../cli/main.ts')];

function capture(name: string, child: ChildProcess, ring: string[]): void {
  const push = (d: Buffer): void => {
    for (const line of d.toString().split('\n')) if (line) ring.push(`[${name}] ${line}`);
    if (ring.length > 400) ring.splice(0, ring.length - 400);
  };
  child.stdout?.on('data', push);
  child.stderr?.on('data', push);
}

/** Ports and secret a lab's baton processes use (defaults: the constants above). */
export interface LabConfigOptions {
  /** Which VIP to serve (6: the lab's IPv6 VIP, back-ends by IPv6 address); default 4. */
  readonly family?: 4 | 6;
  /** Forwarding mode written for every back-end; default `l2`, which writes no field (today's configs). */
  readonly forwarding?: ForwardMode;
  /** With encap forwarding: the bpffs directory under which each agent pins its decapsulation maps. */
  readonly pinRoot?: string;
  /** A secret as the configs take it: inline, `env:NAME` or `file:PATH`. */
  readonly secret: string;
  readonly port?: number;
  readonly controlPort?: number;
  readonly appPort?: number;
  readonly statsPort?: number;
}

/** The VIP a config for this family serves. */
export function labVip(lab: Lab, family: 4 | 6 = 4): string {
  if (family === 4) return lab.vip;
  if (lab.vip6 === undefined) throw new Error(`lab ${lab.id} has no IPv6 (labUp({ ipv6: true }))`);
  return lab.vip6;
}

/** The address a back-end is steered to for this family. */
function dataAddress(b: LabHost, family: 4 | 6): string {
  if (family === 4) return b.address;
  if (b.address6 === undefined) throw new Error(`back-end ${b.name} has no IPv6 address`);
  return b.address6;
}

/**
 * The agent config for back-end host b: the sample app, also served on b's app port, and the agent's data plane
 * (decapsulation with `encap` forwarding; the guard that parks early client packets in every mode).
 */
export function agentConfig(lab: Lab, b: LabHost, o: LabConfigOptions): Record<string, unknown> {
  return {
    name: b.name,
    control: { host: b.address, port: o.controlPort ?? CONTROL_PORT },
    secret: o.secret,
    vip: labVip(lab, o.family),
    app: { kind: 'sample', listen: { host: b.address, port: o.appPort ?? APP_PORT } },
    // Every agent loads its data plane: decapsulation for encap, and the guard (lossless parking) in every mode.
    // Encapsulated IPv6 comes from the front-ends' IPv6 addresses while their control channels use IPv4: the
    // agent learns only the IPv4 ones from its peers, so the IPv6 sources are configured (else a first handoff's
    // packets that overtake their blob are lost instead of parked).
    dataplane: {
      kind: 'bpf', interface: b.ifname, vipPorts: [o.port ?? 80], ...(o.pinRoot !== undefined ? { pinDir: join(o.pinRoot, b.name) } : {}),
      ...(o.forwarding === 'encap' && o.family === 6 && { encapSources: lab.frontends.flatMap((f) => (f.address6 === undefined ? [] : [f.address6])) }),
    },
  };
}

/**
 * The front-end config: every back-end in one weighted round-robin pool, stats on loopback. Control channels use
 * IPv4 addresses whatever the VIP's family. With `encap` forwarding each back-end gets `mode: "encap"` and steering
 * `kind: "bpf"` (fields the front-end schema does not have yet).
 */
export function frontendConfig(lab: Lab, o: LabConfigOptions): Record<string, unknown> {
  const controlPort = o.controlPort ?? CONTROL_PORT;
  const family = o.family ?? 4;
  const encap = o.forwarding === 'encap';
  return {
    vip: labVip(lab, family),
    port: o.port ?? 80,
    interface: lab.frontend.ifname,
    secret: o.secret,
    backends: lab.backends.map((b) => ({
      id: b.name,
      address: dataAddress(b, family),
      control: { host: b.address, port: controlPort },
      ...(encap ? { mode: 'encap' } : {}),
    })),
    pools: [{ name: 'all', policy: { name: 'wrr' }, members: lab.backends.map((b) => b.name) }],
    rules: [],
    defaultPool: 'all',
    stats: { host: '127.0.0.1', port: o.statsPort ?? STATS_PORT },
  };
}

/**
 * A lab (made here from `lab`'s options, or one already up) with a running cluster, for a test suite's `before`;
 * the lab goes down again if the cluster cannot start, so a failed `before` leaves nothing behind.
 */
export async function clusterUp(lab: LabOptions | Lab, o: ClusterOptions = {}): Promise<{ lab: Lab; cluster: Cluster }> {
  const up = 'down' in lab ? lab : await labUp(lab);
  try {
    return { lab: up, cluster: await startCluster(up, o) };
  } catch (e) {
    await up.down();
    throw e;
  }
}

/** The suite's `after`: the cluster's processes, then the lab (its namespaces, and its bpffs with every pin). */
export async function clusterDown(cluster: Cluster | undefined, lab: Lab | undefined): Promise<void> {
  try {
    await cluster?.stop();
  } finally {
    await lab?.down();
  }
}

export async function startCluster(lab: Lab, o: ClusterOptions = {}): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), `baton-${lab.id}-`));
  const secret = randomBytes(24).toString('hex');
  const env = { ...process.env, BATON_SECRET: secret, BATON_LOG: o.logLevel ?? 'warn' };
  const ring: string[] = [];
  const agents: ChildProcess[] = [];
  const agentsByName = new Map<string, ChildProcess>();
  const skip = new Set(o.skipAgents ?? []);

  const family = o.family ?? 4;
  const forwarding = o.forwarding ?? (lab.routed ? 'encap' : 'l2');
  // eBPF steering is the front-end's default; its pins go on the lab's bpffs (see lab.pinRoot).
  const steering = o.steering ?? 'bpf';
  const pinRoot = steering === 'bpf' || forwarding === 'encap' ? await lab.pinRoot() : undefined;
  const spawnAgent = (b: LabHost, file: string): ChildProcess => {
    const child = lab.spawn(b, [...cli(), 'backend', '--config', file], { env });
    capture(b.name, child, ring);
    agents.push(child);
    agentsByName.set(b.name, child);
    return child;
  };
  for (const b of lab.backends) {
    if (skip.has(b.name)) continue;
    const cfg = {
      ...agentConfig(lab, b, { secret: 'env:BATON_SECRET', family, forwarding, ...(pinRoot !== undefined ? { pinRoot } : {}) }),
      setupRealServer: true,
      ...o.backend?.(b.name),
    };
    const file = join(dir, `${b.name}.json`);
    await writeFile(file, JSON.stringify(cfg, null, 2));
    spawnAgent(b, file);
  }

  // One front-end process per front-end host (several in a BGP lab), each with its own config file and pins.
  const feConfigFor = (h: LabHost): Record<string, unknown> => ({
    ...frontendConfig(lab, { secret: 'env:BATON_SECRET', port: o.port ?? 80, family, forwarding }),
    interface: h.ifname,
    steering: {
      table: `baton_${lab.id}`,
      lingerMs: o.lingerMs ?? 1000,
      kind: steering,
      ...(steering === 'bpf' && pinRoot !== undefined ? { pinDir: join(pinRoot, h.name) } : {}),
      ...(o.scaleOut === true ? { orphans: true } : {}),
    },
    // Front-ends of one lab share the host's filesystem: each gets its own admin socket and state file.
    admin: { socket: `/run/baton/${lab.id}-${h.name}.sock`, stateFile: `/run/baton/${lab.id}-${h.name}.state.json` },
    ...(o.scaleOut === true && lab.bgp
      ? {
          name: `${h.name} ${lab.id}`,
          bgp: { birdSocket: join(labWorkDir(lab.id), `bird-${h.name}.ctl`), protocols: lab.vip6 !== undefined ? ['vip4', 'vip6'] : ['vip4'] },
        }
      : {}),
    ...o.frontend,
  });
  const fes = new Map<string, ChildProcess>();
  const spawnFrontend = (h: LabHost): ChildProcess => {
    const child = lab.spawn(h, [...cli(), 'frontend', '--config', join(dir, `${h.name}.json`)], { env });
    capture(h.name, child, ring);
    fes.set(h.name, child);
    processes.set(h.name, child);
    return child;
  };
  const processes = new Map<string, ChildProcess>(agentsByName);
  for (const h of lab.frontends) {
    await writeFile(join(dir, `${h.name}.json`), JSON.stringify(feConfigFor(h), null, 2));
    spawnFrontend(h);
  }

  const statsOf = async (h: LabHost): Promise<FrontendStatsJson> => {
    const r = await lab.exec(h, ['curl', '-sS', '--max-time', '5', `http://127.0.0.1:${STATS_PORT}/stats`]);
    if (r.code !== 0) throw new Error(`stats ${h.name}: curl exit ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as FrontendStatsJson;
  };
  const stop = async (): Promise<void> => {
    await Promise.all([...fes.values(), ...agents].map((c) => stopChild(c, 5000)));
    await rm(dir, { recursive: true, force: true });
    // Drain/health state the front-ends kept for a restart that will not come.
    // A front-end killed by a test (SIGKILL) leaves its admin socket file behind; a stopped one its state file.
    await Promise.all(
      lab.frontends.flatMap((h) => [`state.json`, `sock`].map((ext) => rm(`/run/baton/${lab.id}-${h.name}.${ext}`, { force: true }))),
    );
  };
  const want = lab.backends.filter((b) => !skip.has(b.name)).map((b) => b.name);
  const ready = async (hosts: readonly LabHost[], deadline: number): Promise<boolean> => {
    for (;;) {
      if (hosts.some((h) => fes.get(h.name)?.exitCode !== null)) return false;
      const all = await Promise.all(hosts.map((h) => statsOf(h).catch(() => undefined)));
      if (all.every((s) => s !== undefined && want.every((n) => s.perBackend[n]?.up))) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const restartFrontend: Cluster['restartFrontend'] = async (r = {}) => {
    const h = r.host ?? lab.frontend;
    const old = fes.get(h.name);
    if (old && old.exitCode === null && old.signalCode === null) {
      const exited = new Promise((res) => old.once('exit', res));
      old.kill(r.signal ?? 'SIGKILL');
      await exited;
    }
    if (r.downMs) await new Promise((res) => setTimeout(res, r.downMs));
    spawnFrontend(h);
    if (!(await ready([h], Date.now() + 30_000))) throw new Error(`front-end ${h.name} did not come back\n${ring.slice(-40).join('\n')}`);
  };
  const restartAgent: Cluster['restartAgent'] = async (name, r = {}) => {
    const b = lab.backends.find((h) => h.name === name);
    if (b === undefined || skip.has(name)) throw new Error(`restartAgent: no agent ${name} in this cluster`);
    const old = agentsByName.get(name);
    if (old && old.exitCode === null && old.signalCode === null) {
      const exited = new Promise((res) => old.once('exit', res));
      old.kill(r.signal ?? 'SIGKILL');
      await exited;
    }
    if (r.downMs) await new Promise((res) => setTimeout(res, r.downMs));
    processes.set(name, spawnAgent(b, join(dir, `${name}.json`)));
    if (!(await ready(lab.frontends, Date.now() + 30_000))) throw new Error(`agent ${name} did not come back\n${ring.slice(-40).join('\n')}`);
  };
  const cluster: Cluster = {
    lab, secret, frontendConfig: feConfigFor(lab.frontend), stop, processes, restartFrontend, restartAgent,
    stats: () => statsOf(lab.frontend),
    statsOf,
    logs: () => ring.join('\n'),
  };

  // Ready when every front-end sees every started agent's channel up.
  if (await ready(lab.frontends, Date.now() + (o.readyTimeoutMs ?? 30_000))) return cluster;
  const logs = cluster.logs();
  await stop();
  throw new Error(`cluster did not become ready\n${logs}`);
}
