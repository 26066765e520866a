// The routing side of a router lab: BIRD daemons in the router and the front-ends (configs from bird.ts), what the
// router's kernel made of their announcements (the VIP's next hops), withdrawals, and the ECMP hash seed.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { frontendBirdConfig, routerBirdConfig } from './bird.ts';
import { killChild, sleep, stopChild } from './proc.ts';
import { labWorkDir } from './reaper.ts';
import { LabError, run, runOk } from './run.ts';
import type { LabHost, LabRouter } from './topology.ts';

const BGP_READY_TIMEOUT_MS = 20_000;

export interface LabRoutingOptions {
  readonly id: string;
  readonly vip: string;
  readonly vip6: string | undefined;
  readonly router: LabRouter;
  /** Starts a daemon in a namespace (tracked by the lab, killed by its down()). */
  readonly spawn: (node: { readonly netns: string }, argv: string[]) => ChildProcess;
}

/** Next-hop addresses from `ip -j route show exact <dst>`: one `gateway`, or a `nexthops` list (multipath). */
export function parseNextHops(json: string): string[] {
  const routes: unknown = JSON.parse(json.trim() === '' ? '[]' : json);
  if (!Array.isArray(routes)) return [];
  const hops: string[] = [];
  for (const r of routes as Record<string, unknown>[]) {
    if (typeof r['gateway'] === 'string') hops.push(r['gateway']);
    const nh = r['nexthops'];
    if (Array.isArray(nh)) {
      for (const h of nh as Record<string, unknown>[]) if (typeof h['gateway'] === 'string') hops.push(h['gateway']);
    }
  }
  return hops.sort();
}

export class LabRouting {
  readonly #o: LabRoutingOptions;
  /** Running BIRDs by node name ('rt', 'fe', 'fe2', ...). */
  readonly #birds = new Map<string, ChildProcess>();

  constructor(o: LabRoutingOptions) {
    this.#o = o;
  }

  /** Starts the router's and every front-end's BIRD; resolves once the VIP has one next hop per front-end. */
  async startAll(fes: readonly LabHost[]): Promise<void> {
    const rt = this.#o.router;
    const v6 = this.#o.vip6 !== undefined;
    this.#startBird(rt, 'rt', routerBirdConfig({
      routerId: rt.addresses['frontend']!,
      local4: rt.addresses['frontend']!,
      ...(v6 ? { local6: rt.addresses6['frontend']! } : {}),
      peers: fes.map((f) => ({ name: f.name, address4: f.address, ...(f.address6 ? { address6: f.address6 } : {}) })),
      logFile: this.#file('rt', 'log'),
    }));
    for (const f of fes) {
      this.#startBird(f, f.name, frontendBirdConfig({
        routerId: f.address,
        local4: f.address,
        router4: f.gateway!,
        vip4: this.#o.vip,
        ...(v6 ? { local6: f.address6!, router6: f.gateway6!, vip6: this.#o.vip6! } : {}),
        logFile: this.#file(f.name, 'log'),
      }));
    }
    await this.waitForNextHops(fes.length);
    if (v6) await this.waitForNextHops(fes.length, { family: 6 });
  }

  /** Starts a front-end's BIRD again (its config from startAll is still on disk). */
  start(node: { readonly netns: string }, name: string): void {
    if (this.#birds.has(name)) throw new LabError(`startBgp: BIRD already runs for ${name}`);
    this.#startBird(node, name);
  }

  /** SIGTERM: BIRD sends a Cease, routes go at once. SIGKILL: the kernel closes the session, same effect. */
  async stop(name: string, signal: NodeJS.Signals): Promise<void> {
    const bird = this.#birds.get(name);
    if (bird === undefined) throw new LabError(`stopBgp: no BIRD running for ${name}`);
    this.#birds.delete(name);
    await (signal === 'SIGTERM' ? stopChild(bird) : killChild(bird, signal));
  }

  async vipNextHops(family: 4 | 6): Promise<string[]> {
    let dst = `${this.#o.vip}/32`;
    if (family === 6) {
      if (this.#o.vip6 === undefined) throw new LabError(`lab ${this.#o.id} has no IPv6`);
      dst = `${this.#o.vip6}/128`;
    }
    const r = await runOk(['ip', '-n', this.#o.router.netns, `-${family}`, '-j', 'route', 'show', 'exact', dst]);
    return parseNextHops(r);
  }

  async waitForNextHops(n: number, o: { family?: 4 | 6; timeoutMs?: number } = {}): Promise<string[]> {
    const deadline = Date.now() + (o.timeoutMs ?? BGP_READY_TIMEOUT_MS);
    for (;;) {
      const hops = await this.vipNextHops(o.family ?? 4);
      if (hops.length === n) return hops;
      if (Date.now() > deadline) {
        const proto = await run(['ip', 'netns', 'exec', this.#o.router.netns, 'birdc', '-s', this.#file('rt', 'ctl'), 'show', 'protocols']);
        throw new LabError(
          `lab ${this.#o.id}: router has ${hops.length} next hops for the VIP (${hops.join(' ')}), want ${n}\n${proto.stdout}`,
        );
      }
      await sleep(100);
    }
  }

  async setEcmpSeed(seed: number): Promise<void> {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new LabError(`setEcmpSeed: bad seed ${seed}`);
    await runOk(['ip', 'netns', 'exec', this.#o.router.netns, 'sysctl', '-q', '-w', `net.ipv4.fib_multipath_hash_seed=${seed}`]);
  }

  /** The node's BIRD file of a kind (conf, log, ctl socket, pid) in the lab's work directory. */
  #file(name: string, kind: 'conf' | 'log' | 'ctl' | 'pid'): string {
    return join(labWorkDir(this.#o.id), `bird-${name}.${kind}`);
  }

  /** Writes the config (when given) and runs `bird -f` (foreground, so it is the lab's child). */
  #startBird(node: { readonly netns: string }, name: string, config?: string): void {
    const conf = this.#file(name, 'conf');
    if (config !== undefined) {
      mkdirSync(labWorkDir(this.#o.id), { recursive: true });
      writeFileSync(conf, config);
    }
    // BIRD logs to a file (see the configs), so it needs no pipe to a process that may exit before it does.
    const child = this.#o.spawn(node, ['bird', '-f', '-c', conf, '-s', this.#file(name, 'ctl'), '-P', this.#file(name, 'pid')]);
    this.#birds.set(name, child);
    child.once('exit', () => {
      if (this.#birds.get(name) === child) this.#birds.delete(name);
    });
  }
}
