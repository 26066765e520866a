// Network-namespace topologies for the demo, kernel tests and benchmarks.
//
// One lab is one L2 segment: a private "switch" namespace holds a Linux bridge, and the client, the front-end and N
// back-ends each live in their own namespace, joined to the bridge by a veth pair. Every lab uses the same subnet
// (10.77.0.0/24) because nothing of it is visible outside its own switch namespace; names are unique per lab id, so
// labs can run side by side (several engineers, parallel tests). Nothing is created in the root namespace.
//
//   client 10.77.0.2 ─┐
//   frontend 10.77.0.10 + VIP (answers ARP for it) ─┤ br0 in `${id}-sw`
//   backend i 10.77.0.(10+i), VIP on lo (LVS-DR real server) ─┘
//
// Offloads (TSO/GSO, checksum) stay on: packets between namespaces never reach a wire, so partial checksums are
// valid throughout, and turning them off would make benchmark numbers unlike a real host. Turn them off per test if a
// capture needs wire-exact segments.
//
// Cleanup is layered because labs outlive crashed processes: down() for the normal path, exit/signal handlers for a
// dying process, and labDownAll() with state files in /run/baton-lab plus a namespace-name scan for the rest.

import type { ChildProcess } from 'node:child_process';
import { spawn as spawnChild } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError, run, runOk, runSync, type RunOptions, type RunResult } from './run.ts';

export { LabError } from './run.ts';

export type LabRole = 'client' | 'frontend' | 'backend';

export interface LabHost {
  readonly role: LabRole;
  /** Short name: 'c', 'fe', 'b1', 'b2', ... */
  readonly name: string;
  readonly netns: string;
  /** The interface inside the namespace that is plugged into the bridge. */
  readonly ifname: string;
  /** IPv4 address on ifname (prefix length: Lab.prefixLen). */
  readonly address: string;
  readonly mac: string;
}

export interface IfaceCounters {
  readonly rxBytes: bigint;
  readonly txBytes: bigint;
  readonly rxPackets: bigint;
  readonly txPackets: bigint;
}

export interface Lab {
  readonly id: string;
  readonly vip: string;
  readonly prefixLen: number;
  readonly client: LabHost;
  readonly frontend: LabHost;
  readonly backends: readonly LabHost[];
  readonly switchNetns: string;
  /** Runs `ip netns exec <ns> argv...`; never throws for a non-zero exit. */
  exec(host: LabHost, argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a long-running process in the host's namespace; down() kills it. */
  spawn(host: LabHost, argv: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  ifaceBytes(host: LabHost): Promise<IfaceCounters>;
  /** Kills tracked processes, then anything left in the namespaces, then deletes them. Idempotent. */
  down(): Promise<void>;
}

export interface LabOptions {
  /** Number of back-ends, 1..50. */
  readonly backends: number;
  /** Lab id: lower-case letters and digits, starts with a letter; default 'bt' + 4 random hex digits. */
  readonly id?: string;
  /** The virtual IP the front-end owns; default 10.77.0.100. */
  readonly vip?: string;
  /** Leave the lab up when this process exits (the `lab up` command); default false. */
  readonly keepOnExit?: boolean;
}

export const LAB_SUBNET = '10.77.0';
export const LAB_PREFIX_LEN = 24;
export const LAB_DEFAULT_VIP = `${LAB_SUBNET}.100`;
export const LAB_STATE_DIR = '/run/baton-lab';
/** Namespaces of labs with generated ids; labDownAll() finds them even without a state file. */
export const LAB_NETNS_PATTERN = /^bt[0-9a-f]{4}-/;

const MAX_BACKENDS = 50;
const KILL_GRACE_MS = 2000;

interface LabStateFile {
  readonly id: string;
  readonly vip: string;
  readonly namespaces: readonly string[];
  readonly pid: number;
  readonly createdAt: string;
}

/** Sysctls every host namespace gets. Kernel defaults mostly, but made explicit so TCP options are known. */
const COMMON_SYSCTLS = [
  // TCP options the handoff blob carries; all on so capture/restore exercises them.
  'net.ipv4.tcp_timestamps=1',
  'net.ipv4.tcp_sack=1',
  'net.ipv4.tcp_window_scaling=1',
  // Source validation would drop direct-routing traffic (VIP-sourced replies, MAC-forwarded requests).
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
  // No IPv6: keeps neighbour discovery and MLD chatter out of interface packet counts.
  'net.ipv6.conf.all.disable_ipv6=1',
  'net.ipv6.conf.default.disable_ipv6=1',
];

const ROLE_SYSCTLS: Record<LabRole, readonly string[]> = {
  // Load-generator settings. When the client closes first (wrk often beats a slow server's FIN) it keeps the
  // TIME_WAIT; after ~30k connections connect() then spins searching for a free port (100 % CPU, a few hundred
  // connections/s). A wide range and reuse of TIME_WAIT ports older than a second (timestamps make it safe) avoid it.
  client: ['net.ipv4.ip_local_port_range=10000 65000', 'net.ipv4.tcp_tw_reuse=1'],
  frontend: [],
  // LVS direct-routing real server: accept the VIP (on lo) but never answer ARP for it or use it as ARP source.
  backend: [
    'net.ipv4.conf.all.arp_ignore=1',
    'net.ipv4.conf.all.arp_announce=2',
    'net.ipv4.conf.eth0.arp_ignore=1',
    'net.ipv4.conf.eth0.arp_announce=2',
    'net.ipv4.conf.eth0.rp_filter=0',
    'net.ipv4.conf.lo.rp_filter=0',
  ],
};

/** Labs of this process that are up, for the exit handlers. */
const live = new Map<string, LabImpl>();

class LabImpl implements Lab {
  readonly prefixLen = LAB_PREFIX_LEN;
  readonly #children = new Set<ChildProcess>();
  #downing: Promise<void> | undefined;

  constructor(
    readonly id: string,
    readonly vip: string,
    readonly client: LabHost,
    readonly frontend: LabHost,
    readonly backends: readonly LabHost[],
    readonly switchNetns: string,
    readonly keepOnExit: boolean,
  ) {}

  get hostNamespaces(): string[] {
    return [this.client, this.frontend, ...this.backends].map((h) => h.netns);
  }

  exec(host: LabHost, argv: string[], opts?: RunOptions): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', host.netns, ...argv], opts);
  }

  spawn(host: LabHost, argv: string[], opts: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    if (this.#downing !== undefined) throw new LabError(`lab ${this.id}: spawn after down`);
    // `ip netns exec` execs the command in place, so the child's pid is the command's pid.
    const child = spawnChild('ip', ['netns', 'exec', host.netns, ...argv], {
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  async ifaceBytes(host: LabHost): Promise<IfaceCounters> {
    const dir = `/sys/class/net/${host.ifname}/statistics`;
    const names = ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets'] as const;
    // `ip netns exec` mounts the namespace's own /sys, so these are the namespaced device's counters.
    const out = await runOk(['ip', 'netns', 'exec', host.netns, 'cat', ...names.map((n) => `${dir}/${n}`)]);
    const v = out.trim().split('\n').map((s) => BigInt(s.trim()));
    if (v.length !== 4) throw new LabError(`ifaceBytes ${host.name}: unexpected output ${JSON.stringify(out)}`);
    return { rxBytes: v[0]!, txBytes: v[1]!, rxPackets: v[2]!, txPackets: v[3]! };
  }

  down(): Promise<void> {
    this.#downing ??= this.#down();
    return this.#downing;
  }

  async #down(): Promise<void> {
    await Promise.all([...this.#children].map((c) => stopChild(c)));
    await removeNamespaces([...this.hostNamespaces, this.switchNetns]);
    rmSync(stateFile(this.id), { force: true });
    live.delete(this.id);
  }

  /** For exit handlers: no promises will settle, so everything is synchronous and best effort. */
  downSync(): void {
    for (const c of this.#children) {
      if (c.pid !== undefined && c.exitCode === null) killQuietly(c.pid);
    }
    for (const ns of [...this.hostNamespaces, this.switchNetns]) removeNamespaceSync(ns);
    rmSync(stateFile(this.id), { force: true });
    live.delete(this.id);
  }
}

/** Brings up a lab; on any failure it removes whatever it created and rethrows. */
export async function labUp(opts: LabOptions): Promise<Lab> {
  const n = opts.backends;
  if (!Number.isInteger(n) || n < 1 || n > MAX_BACKENDS) {
    throw new LabError(`labUp: backends must be an integer in 1..${MAX_BACKENDS}, got ${n}`);
  }
  const vip = opts.vip ?? LAB_DEFAULT_VIP;
  if (!isIPv4(vip)) throw new LabError(`labUp: invalid vip ${vip}`);
  if (opts.id !== undefined) validateId(opts.id, n);

  // Claim an id atomically by creating its switch namespace: `ip netns add` fails if the name exists.
  let id = '';
  for (let attempt = 0; ; attempt++) {
    id = opts.id ?? `bt${randomBytes(2).toString('hex')}`;
    const r = await run(['ip', 'netns', 'add', `${id}-sw`]);
    if (r.code === 0) break;
    if (opts.id !== undefined || attempt >= 8) {
      throw new LabError(`labUp: cannot create namespace ${id}-sw: ${r.stderr.trim()}`, [], r.stderr);
    }
  }

  const host = (role: LabRole, name: string, octet: number): LabHost => ({
    role,
    name,
    netns: `${id}-${name}`,
    ifname: 'eth0',
    address: `${LAB_SUBNET}.${octet}`,
    mac: `02:00:0a:4d:00:${octet.toString(16).padStart(2, '0')}`,
  });
  const client = host('client', 'c', 2);
  const frontend = host('frontend', 'fe', 10);
  const backends = Array.from({ length: n }, (_, i) => host('backend', `b${i + 1}`, 11 + i));
  if (backends.some((b) => b.address === vip) || vip === client.address || vip === frontend.address) {
    throw new LabError(`labUp: vip ${vip} collides with a host address`);
  }
  const lab = new LabImpl(id, vip, client, frontend, backends, `${id}-sw`, opts.keepOnExit ?? false);
  live.set(id, lab);
  installExitHandlers();
  writeState(lab);

  try {
    const sw = lab.switchNetns;
    await sysctl(sw, ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await ip(sw, ['link', 'set', 'lo', 'up']);
    // STP is off by default, so ports forward at once; ageing stays default.
    await ip(sw, ['link', 'add', 'br0', 'type', 'bridge']);
    await ip(sw, ['link', 'set', 'br0', 'up']);
    await Promise.all([client, frontend, ...backends].map((h) => plugHost(lab, h)));
  } catch (e) {
    await lab.down().catch(() => undefined);
    throw e;
  }
  return lab;
}

async function plugHost(lab: LabImpl, h: LabHost): Promise<void> {
  const vip = lab.vip;
  await runOk(['ip', 'netns', 'add', h.netns]);
  // Before the veth exists, so 'default' sysctls (rp_filter, IPv6 off) apply to eth0 when it is created.
  await sysctl(h.netns, COMMON_SYSCTLS);
  const port = `${lab.id}${h.name}`;
  await ip(lab.switchNetns, [
    'link', 'add', port, 'type', 'veth',
    'peer', 'name', h.ifname, 'address', h.mac, 'netns', h.netns,
  ]);
  await ip(lab.switchNetns, ['link', 'set', port, 'master', 'br0', 'up']);
  await ip(h.netns, ['link', 'set', 'lo', 'up']);
  await ip(h.netns, ['addr', 'add', `${h.address}/${LAB_PREFIX_LEN}`, 'dev', h.ifname]);
  await ip(h.netns, ['link', 'set', h.ifname, 'up']);
  await sysctl(h.netns, ROLE_SYSCTLS[h.role]);
  const onLink = vip.startsWith(`${LAB_SUBNET}.`);
  switch (h.role) {
    case 'frontend':
      // The front-end owns the VIP: with the default arp_ignore=0 it answers ARP for it on eth0.
      await ip(h.netns, ['addr', 'add', `${vip}/32`, 'dev', h.ifname]);
      break;
    case 'backend':
      await ip(h.netns, ['addr', 'add', `${vip}/32`, 'dev', 'lo']);
      break;
    case 'client':
      // In the /24 the VIP is on-link already; outside it, make it on-link so the client ARPs for it.
      if (!onLink) await ip(h.netns, ['route', 'add', `${vip}/32`, 'dev', h.ifname]);
      break;
  }
}

/**
 * Removes baton lab namespaces left by this or any other (crashed) process: those named in state files and those
 * matching LAB_NETNS_PATTERN. With a prefix (usually a lab id) only namespaces whose name starts with it.
 * Returns the namespaces removed. Without a prefix this also removes labs other people are using.
 */
export async function labDownAll(prefix = ''): Promise<string[]> {
  const matches = (ns: string): boolean => ns.startsWith(prefix);
  for (const lab of [...live.values()]) {
    if (lab.hostNamespaces.some(matches) || matches(lab.switchNetns)) await lab.down();
  }
  const existing = new Set(await listNamespaces());
  const targets = new Set<string>();
  const files: string[] = [];
  for (const f of stateFiles()) {
    const s = readState(f);
    if (s === undefined) continue;
    if (!s.namespaces.some(matches)) continue;
    files.push(f);
    for (const ns of s.namespaces) if (existing.has(ns)) targets.add(ns);
  }
  for (const ns of existing) if (LAB_NETNS_PATTERN.test(ns) && matches(ns)) targets.add(ns);
  // Host namespaces before switches, so veth pairs disappear with their host end.
  const ordered = [...targets].sort((a, b) => Number(a.endsWith('-sw')) - Number(b.endsWith('-sw')));
  await removeNamespaces(ordered);
  for (const f of files) rmSync(f, { force: true });
  return ordered;
}

/** Names from `ip netns list` ("bt1a2b-sw (id: 3)" lines). */
export async function listNamespaces(): Promise<string[]> {
  const out = await runOk(['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((s) => s !== '');
}

async function removeNamespaces(namespaces: readonly string[]): Promise<void> {
  const existing = new Set(await listNamespaces());
  const present = namespaces.filter((ns) => existing.has(ns));
  await Promise.all(present.map((ns) => killNamespacePids(ns)));
  for (const ns of present) {
    const r = await run(['ip', 'netns', 'del', ns]);
    if (r.code !== 0 && (await listNamespaces()).includes(ns)) {
      throw new LabError(`remove namespace ${ns}: ${r.stderr.trim()}`, [], r.stderr);
    }
  }
}

async function killNamespacePids(ns: string): Promise<void> {
  const out = (await run(['ip', 'netns', 'pids', ns])).stdout;
  const pids = parsePids(out);
  for (const pid of pids) killQuietly(pid);
  // Wait briefly so sockets are gone before the namespace is deleted (they would keep it alive unnamed).
  for (let i = 0; i < 20 && pids.some(isAlive); i++) await sleep(50);
}

function removeNamespaceSync(ns: string): void {
  for (const pid of parsePids(runSync(['ip', 'netns', 'pids', ns]))) killQuietly(pid);
  runSync(['ip', 'netns', 'del', ns]);
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the child has exited. */
export async function stopChild(c: ChildProcess, graceMs = KILL_GRACE_MS): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function parsePids(out: string): number[] {
  return out
    .split('\n')
    .map((s) => Number.parseInt(s.trim(), 10))
    .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** True while the process exists and is not a zombie (a killed orphan may wait a while for its reaper). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function ip(ns: string, args: readonly string[]): Promise<string> {
  return runOk(['ip', '-n', ns, ...args]);
}

async function sysctl(ns: string, settings: readonly string[]): Promise<void> {
  if (settings.length === 0) return;
  await runOk(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...settings]);
}

function validateId(id: string, backends: number): void {
  // The longest interface name is the switch-side veth `${id}b${backends}`; Linux allows 15 characters.
  if (!/^[a-z][a-z0-9]*$/.test(id) || `${id}b${backends}`.length > 15) {
    throw new LabError(`labUp: invalid lab id ${JSON.stringify(id)} (lower-case alphanumeric, short)`);
  }
}

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function stateFile(id: string): string {
  return join(LAB_STATE_DIR, `${id}.json`);
}

function writeState(lab: LabImpl): void {
  const s: LabStateFile = {
    id: lab.id,
    vip: lab.vip,
    namespaces: [...lab.hostNamespaces, lab.switchNetns],
    pid: process.pid,
    createdAt: new Date().toISOString(),
  };
  mkdirSync(LAB_STATE_DIR, { recursive: true });
  writeFileSync(stateFile(lab.id), `${JSON.stringify(s, null, 2)}\n`);
}

function stateFiles(): string[] {
  try {
    return readdirSync(LAB_STATE_DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(LAB_STATE_DIR, f));
  } catch {
    return [];
  }
}

function readState(file: string): LabStateFile | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof v !== 'object' || v === null) return undefined;
    const o = v as Record<string, unknown>;
    const ns = o['namespaces'];
    if (typeof o['id'] !== 'string' || !Array.isArray(ns) || !ns.every((x) => typeof x === 'string')) return undefined;
    return {
      id: o['id'],
      vip: typeof o['vip'] === 'string' ? o['vip'] : '',
      namespaces: ns as string[],
      pid: typeof o['pid'] === 'number' ? o['pid'] : 0,
      createdAt: typeof o['createdAt'] === 'string' ? o['createdAt'] : '',
    };
  } catch {
    return undefined;
  }
}

let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', downAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      downAllSync();
      process.off(sig, onSignal);
      // Keep the default meaning of the signal unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function downAllSync(): void {
  for (const lab of [...live.values()]) if (!lab.keepOnExit) lab.downSync();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
