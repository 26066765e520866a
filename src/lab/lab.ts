// Network-namespace labs for the demo, kernel tests and benchmarks. The parts: topology.ts plans a lab (an L2
// segment by default; a router with per-role subnets, several front-ends and BGP on request), build.ts creates it,
// bgp.ts runs its BIRD daemons, faults.ts describes loss and blackholes, reaper.ts tears labs down (also those of
// crashed processes), proc.ts stops processes. This file is the Lab a caller holds: running processes and commands
// in it, faults, and its lifecycle. Every lab uses the same addresses because nothing of it is visible outside its
// own namespaces; names are unique per lab id, so labs run side by side (several engineers, parallel tests).
// Nothing is created in the root network namespace.
//
// Offloads (TSO/GSO, checksum) stay on: packets between namespaces never reach a wire, so partial checksums are
// valid throughout, and turning them off would make benchmark numbers unlike a real host. Turn them off per test if a
// capture needs wire-exact segments.

import type { ChildProcess } from 'node:child_process';
import { spawn as spawnChild } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LabRouting } from './bgp.ts';
import { buildHub, ip, plugHost } from './build.ts';
import {
  FAULT_TABLE,
  faultScript,
  NO_FAULT,
  parseFaultDrops,
  validLossPercent,
  type FaultDirection,
  type FaultDrops,
  type FaultState,
} from './faults.ts';
import { killChild, killPid, killQuietly, stopChild } from './proc.ts';
import {
  labWorkDir,
  mountsUnder,
  removeNamespaceSync,
  removeNamespaces,
  trackLab,
  untrackLab,
  type Reapable,
} from './reaper.ts';
import { LabError, run, runOk, type RunOptions, type RunResult } from './run.ts';
import {
  LAB_DEFAULT_VIP,
  LAB_PREFIX_LEN,
  LAB_PREFIX_LEN6,
  planLab,
  planNamespaces,
  type LabHost,
  type LabPlan,
  type LabRouter,
  type LabSegment,
} from './topology.ts';

export { LabError } from './run.ts';
export { parseNextHops } from './bgp.ts';
export { isAlive, stopChild } from './proc.ts';
export { LAB_NETNS_PATTERN, LAB_STATE_DIR, labDownAll, listNamespaces } from './reaper.ts';
export { LAB_DEFAULT_VIP, LAB_DEFAULT_VIP6, LAB_PREFIX_LEN, LAB_PREFIX_LEN6 } from './topology.ts';
export type { LabHost, LabRole, LabRouter, LabSegment } from './topology.ts';
export type { FaultDirection, FaultDrops } from './faults.ts';

/** The L2 lab's subnet (first three octets). */
export const LAB_SUBNET = '10.77.0';

/** Anything a command can run in: a host, or the router. */
export interface LabNode {
  readonly netns: string;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Default 'pipe' (stdout and stderr readable). */
  readonly stdio?: 'pipe' | 'ignore';
  readonly unref?: boolean;
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
  /** The IPv6 VIP, when the lab has IPv6. */
  readonly vip6: string | undefined;
  readonly prefixLen: number;
  readonly prefixLen6: number;
  readonly client: LabHost;
  /** The first front-end (the only one unless `frontends` was given). */
  readonly frontend: LabHost;
  readonly frontends: readonly LabHost[];
  readonly backends: readonly LabHost[];
  /** The namespace holding the bridges: the switch (L2 lab) or the router. */
  readonly switchNetns: string;
  /** The router, in a routed or several-front-end lab. */
  readonly router: LabRouter | undefined;
  /** Back-ends sit in another subnet than the front-ends: steering must encapsulate (no L2 direct routing). */
  readonly routed: boolean;
  /** The router learns the VIP from the front-ends' BGP daemons (ECMP). */
  readonly bgp: boolean;
  readonly segments: readonly LabSegment[];
  /** Runs `ip netns exec <ns> argv...`; never throws for a non-zero exit. */
  exec(node: LabNode, argv: string[], opts?: RunOptions): Promise<RunResult>;
  /**
   * Starts a long-running process in the node's namespace; down() kills it. `stdio: 'ignore'` for daemons that log
   * elsewhere; `unref` lets this process exit while the child runs on (labs kept on exit).
   */
  spawn(node: LabNode, argv: string[], opts?: SpawnOptions): ChildProcess;
  ifaceBytes(host: LabHost): Promise<IfaceCounters>;
  /** Drops `percent` (0..100) of the packets on the host's link, in one or both directions; 0 clears the loss. */
  setLoss(host: LabHost, percent: number, direction?: FaultDirection): Promise<void>;
  clearLoss(host: LabHost): Promise<void>;
  /** Drops every packet on the host's link, both directions, until unblackhole() (loss settings are kept). */
  blackhole(host: LabHost): Promise<void>;
  unblackhole(host: LabHost): Promise<void>;
  /** Packets the host's fault rules have dropped since its fault was last changed, per direction. */
  faultDrops(host: LabHost): Promise<FaultDrops>;
  /** Sends a signal (default SIGKILL: a crash) to a process of this lab or a pid, and waits until it is gone. */
  killProcess(target: ChildProcess | number, signal?: NodeJS.Signals): Promise<void>;
  /** BGP labs: the next hops the router's kernel has for the VIP (IPv4, or IPv6 with family 6). */
  vipNextHops(family?: 4 | 6): Promise<string[]>;
  /** BGP labs: waits until the router has exactly `n` next hops for the VIP; throws after timeoutMs. */
  waitForNextHops(n: number, opts?: { family?: 4 | 6; timeoutMs?: number }): Promise<string[]>;
  /** BGP labs: stops (SIGTERM: a clean withdrawal) or kills (SIGKILL: the router notices at hold-timer expiry) a
   * front-end's BIRD. */
  stopBgp(fe: LabHost, signal?: NodeJS.Signals): Promise<void>;
  /** BGP labs: starts a front-end's BIRD again after stopBgp. */
  startBgp(fe: LabHost): Promise<void>;
  /**
   * Router labs: sets the router's ECMP hash seed (IPv4, `net.ipv4.fib_multipath_hash_seed`, Linux 6.11+). A new
   * seed moves flows between next hops with no change in membership: the way to make a front-end receive packets
   * of flows it never saw.
   */
  setEcmpSeed(seed: number): Promise<void>;
  /**
   * A bpffs for the lab's daemons to pin eBPF maps and links in (`/run/baton-lab/<id>/bpf`), mounted on first call in
   * this process's mount namespace. `ip netns exec` gives each daemon a private /sys, so pins under its own
   * /sys/fs/bpf die with it; pins here survive a daemon's restart. down() unmounts it, freeing every pin.
   */
  pinRoot(): Promise<string>;
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
  /** Client, front-end and back-ends in three subnets joined by a router; default false (one L2 segment). */
  readonly routed?: boolean;
  /** Dual stack: IPv6 addresses everywhere and an IPv6 VIP; default false (IPv6 disabled in every namespace). */
  readonly ipv6?: boolean;
  /** The IPv6 VIP (implies ipv6); default fd77::100. */
  readonly vip6?: string;
  /** N front-ends behind a router that learns the VIP from each over BGP (BIRD 2) and spreads flows by ECMP. */
  readonly frontends?: number;
  /** Leave the lab up when this process exits (the `lab up` command); default false. */
  readonly keepOnExit?: boolean;
}

class LabImpl implements Lab, Reapable {
  readonly prefixLen = LAB_PREFIX_LEN;
  readonly prefixLen6 = LAB_PREFIX_LEN6;
  readonly #children = new Set<ChildProcess>();
  readonly #faults = new Map<string, FaultState>();
  #downing: Promise<void> | undefined;
  #pinRoot: Promise<string> | undefined;
  #routing: LabRouting | undefined;

  constructor(
    readonly plan: LabPlan,
    readonly keepOnExit: boolean,
  ) {}

  get id(): string { return this.plan.id; }
  get vip(): string { return this.plan.vip; }
  get vip6(): string | undefined { return this.plan.vip6; }
  get client(): LabHost { return this.plan.client; }
  get frontend(): LabHost { return this.plan.frontends[0]!; }
  get frontends(): readonly LabHost[] { return this.plan.frontends; }
  get backends(): readonly LabHost[] { return this.plan.backends; }
  get switchNetns(): string { return this.plan.hubNetns; }
  get router(): LabRouter | undefined { return this.plan.router; }
  get routed(): boolean { return this.plan.routed; }
  get bgp(): boolean { return this.plan.bgp; }
  get segments(): readonly LabSegment[] { return this.plan.segments; }

  namespaces(): string[] {
    return planNamespaces(this.plan);
  }

  exec(node: LabNode, argv: string[], opts?: RunOptions): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', node.netns, ...argv], opts);
  }

  spawn(node: LabNode, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.#downing !== undefined) throw new LabError(`lab ${this.id}: spawn after down`);
    // `ip netns exec` execs the command in place, so the child's pid is the command's pid.
    const out = opts.stdio ?? 'pipe';
    const child = spawnChild('ip', ['netns', 'exec', node.netns, ...argv], {
      env: opts.env ?? process.env,
      stdio: ['ignore', out, out],
      // Its own process group, so a Ctrl-C at the terminal does not reach a daemon meant to outlive us.
      detached: opts.unref === true,
    });
    if (opts.unref === true) child.unref();
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

  setLoss(host: LabHost, percent: number, direction: FaultDirection = 'both'): Promise<void> {
    if (!validLossPercent(percent)) throw new LabError(`setLoss ${host.name}: percent must be in 0..100, got ${percent}`);
    return this.#setFault(host, { lossPercent: percent, lossDirection: direction });
  }

  clearLoss(host: LabHost): Promise<void> {
    return this.#setFault(host, { lossPercent: 0, lossDirection: 'both' });
  }

  blackhole(host: LabHost): Promise<void> {
    return this.#setFault(host, { blackhole: true });
  }

  unblackhole(host: LabHost): Promise<void> {
    return this.#setFault(host, { blackhole: false });
  }

  async faultDrops(host: LabHost): Promise<FaultDrops> {
    const r = await this.exec(host, ['nft', '-j', 'list', 'table', 'netdev', FAULT_TABLE]);
    return parseFaultDrops(r.code === 0 ? r.stdout : '');
  }

  async #setFault(host: LabHost, change: Partial<FaultState>): Promise<void> {
    const next: FaultState = { ...(this.#faults.get(host.netns) ?? NO_FAULT), ...change };
    await runOk(['ip', 'netns', 'exec', host.netns, 'nft', '-f', '-'], { input: faultScript(host.ifname, next) });
    this.#faults.set(host.netns, next);
  }

  async killProcess(target: ChildProcess | number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (typeof target === 'number') {
      if (!(await killPid(target, signal))) throw new LabError(`killProcess: pid ${target} still alive after ${signal}`);
      return;
    }
    await killChild(target, signal);
  }

  vipNextHops(family: 4 | 6 = 4): Promise<string[]> {
    return this.#bgpOrThrow('vipNextHops').vipNextHops(family);
  }

  waitForNextHops(n: number, o: { family?: 4 | 6; timeoutMs?: number } = {}): Promise<string[]> {
    return this.#bgpOrThrow('waitForNextHops').waitForNextHops(n, o);
  }

  stopBgp(fe: LabHost, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.#bgpOrThrow('stopBgp').stop(fe.name, signal);
  }

  async startBgp(fe: LabHost): Promise<void> {
    if (!this.bgp) throw new LabError(`startBgp: lab ${this.id} has no BGP`);
    this.#bgpOrThrow('startBgp').start(fe, fe.name);
  }

  async setEcmpSeed(seed: number): Promise<void> {
    await this.#bgpOrThrow('setEcmpSeed').setEcmpSeed(seed);
  }

  /** Starts the router's and every front-end's BIRD and waits for the VIP to have one next hop per front-end. */
  async startBgpAll(): Promise<void> {
    await this.#bgpOrThrow('bgp').startAll(this.frontends);
  }

  #bgpOrThrow(what: string): LabRouting {
    if (this.router === undefined) throw new LabError(`${what}: lab ${this.id} has no router`);
    this.#routing ??= new LabRouting({
      id: this.id, vip: this.vip, vip6: this.vip6, router: this.router,
      spawn: (node, argv) => this.spawn(node, argv, { stdio: 'ignore', unref: this.keepOnExit }),
    });
    return this.#routing;
  }

  pinRoot(): Promise<string> {
    this.#pinRoot ??= (async () => {
      const dir = join(labWorkDir(this.id), 'bpf');
      mkdirSync(dir, { recursive: true });
      if (mountsUnder(dir).length === 0) await runOk(['mount', '-t', 'bpf', 'bpf', dir]);
      return dir;
    })();
    return this.#pinRoot;
  }

  down(): Promise<void> {
    this.#downing ??= this.#down();
    return this.#downing;
  }

  async #down(): Promise<void> {
    await Promise.all([...this.#children].map((c) => stopChild(c)));
    // Faults (nft tables), routes and BIRD's sockets live in the namespaces or the work dir, the pin bpffs under the
    // work dir: all go here.
    await removeNamespaces(this.namespaces());
    untrackLab(this.id);
  }

  downSync(): void {
    for (const c of this.#children) {
      if (c.pid !== undefined && c.exitCode === null) killQuietly(c.pid);
    }
    for (const ns of this.namespaces()) removeNamespaceSync(ns);
    untrackLab(this.id);
  }
}

/** Brings up a lab; on any failure it removes whatever it created and rethrows. */
export async function labUp(opts: LabOptions): Promise<Lab> {
  const planFor = (id: string): LabPlan =>
    planLab({
      id,
      backends: opts.backends,
      ...(opts.frontends !== undefined ? { frontends: opts.frontends } : {}),
      routed: opts.routed ?? false,
      ipv6: opts.ipv6 ?? false,
      vip: opts.vip ?? LAB_DEFAULT_VIP,
      ...(opts.vip6 !== undefined ? { vip6: opts.vip6 } : {}),
    });
  planFor(opts.id ?? 'bt0000'); // validates the options before anything is created
  if (opts.frontends !== undefined) await requireBird();

  // Claim an id atomically by creating its hub namespace: `ip netns add` fails if the name exists.
  let plan: LabPlan;
  for (let attempt = 0; ; attempt++) {
    plan = planFor(opts.id ?? `bt${randomBytes(2).toString('hex')}`);
    const r = await run(['ip', 'netns', 'add', plan.hubNetns]);
    if (r.code === 0) break;
    if (opts.id !== undefined || attempt >= 8) {
      throw new LabError(`labUp: cannot create namespace ${plan.hubNetns}: ${r.stderr.trim()}`, [], r.stderr);
    }
  }
  const lab = new LabImpl(plan, opts.keepOnExit ?? false);
  trackLab(lab);

  try {
    await buildHub(plan);
    await Promise.all([plan.client, ...plan.frontends, ...plan.backends].map((h) => plugHost(plan, h)));
    if (plan.router !== undefined && !plan.bgp) {
      // One front-end, no BGP: the router sends the VIP to it by a static route.
      const fe = plan.frontends[0]!;
      await ip(plan.router.netns, ['route', 'add', `${plan.vip}/32`, 'via', fe.address]);
      if (plan.vip6 !== undefined) await ip(plan.router.netns, ['-6', 'route', 'add', `${plan.vip6}/128`, 'via', fe.address6!]);
    }
    if (plan.bgp) await lab.startBgpAll();
  } catch (e) {
    await lab.down().catch(() => undefined);
    throw e;
  }
  return lab;
}

async function requireBird(): Promise<void> {
  const r = await run(['bird', '--version']);
  if (r.code !== 0) {
    throw new LabError('labUp: frontends needs BIRD 2 (`bird`): run `scripts/setup.sh --bgp` or `apt-get install -y bird2`');
  }
}
