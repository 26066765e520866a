// The front-end's composition root (as backend/agent.ts BackendAgent.start): from a validated
// configuration, assemble router, steering, one control channel per back-end, the Frontend, its
// stats endpoint, the active health checks and the admin API, and wire the channels' events into
// it. It keeps drain and health state in a file across restarts, and applies configuration
// reloads (reload.ts decides what changes; this file owns the channels and steering that added
// and removed back-ends need). cli/ only loads the file and calls FrontendDaemon.start; tests and
// the admin interface hold the daemon and its `frontend`.
import type http from 'node:http';
import { isIP, isIPv6, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ControlClient } from '../control/client.ts';
import type { VipAddress } from '../wire/frame.ts';
import { Router } from '../policy/index.ts';
import { sourceAddressFor } from '../steer/bpf-table.ts';
import { createSteering } from '../steer/create.ts';
import type { Steering } from '../steer/types.ts';
import { ConfigError, loadConfigFile, resolveSecret } from '../util/config-file.ts';
import { AdminServer, type ReloadReport } from './admin.ts';
import { Announcer } from './announce.ts';
import { adminTargetOf, FlowAges, type RetiredBackend } from './admin-target.ts';
import { adminSocketPath, adminStatePath, frontendConfigSchema, type FrontendConfig } from './config.ts';
import { Frontend } from './frontend.ts';
import { HealthChecker, type HealthTarget } from './health.ts';
import { OrphanRecovery } from './recover.ts';
import { applyReload, RELOAD_ERR, sameValue, type BackendConfig } from './reload.ts';
import { loadState, StateWriter, type BackendsState } from './state-file.ts';
import { startStatsServer } from './stats-server.ts';

export interface StopOptions {
  /** Leave steering's kernel state in place so handed-off connections keep flowing (bpf). */
  readonly keepSteering?: boolean;
}

/** How long a back-end's channel may stay down before its flows are released. */
const CHANNEL_LOST_GRACE_MS = 3000;

export interface DaemonOptions {
  /** bpf steering: discard kernel state left by an earlier process instead of adopting it. */
  readonly fresh?: boolean;
  /** The file the configuration came from: `reload()` (SIGHUP, `baton reload`) re-reads it. */
  readonly configFile?: string;
  /** Start the admin API (default true). */
  readonly admin?: boolean;
}

const healthTargets = (cfg: FrontendConfig): HealthTarget[] =>
  cfg.backends.flatMap((b) => (b.healthCheck ? [{ id: b.id, address: b.address, check: b.healthCheck, defaultPort: cfg.port }] : []));

/** What steering was told about a back-end: an id keeps it for the life of the process. */
const steeredAs = (b: BackendConfig): string => `${b.address} ${b.mode}`;

/** A removed back-end's channel is closed once it reports no connection, checked this long after removal too. */
const RETIRE_CHECK_MS = 3000;

export class FrontendDaemon {
  readonly frontend: Frontend;
  readonly #log: Logger;
  readonly #secret: string;
  readonly #steering: Steering;
  readonly #channels = new Map<string, ControlClient>();
  readonly #health: HealthChecker;
  readonly #configFile: string | undefined;
  /** Last LOAD report per channel (active connections). */
  readonly #reported = new Map<string, number>();
  /** Back-ends removed by a reload whose channel stays open for their connections' ends. */
  readonly #retired = new Map<string, BackendConfig>();
  /** Channels closed on purpose: their going down is no lost back-end. */
  readonly #closing = new WeakSet<ControlClient>();
  readonly #steered = new Map<string, string>();
  /** encap back-end id -> this host's source address toward it (shared with steering and the Frontend). */
  readonly #encapSources: Map<string, string>;
  /** Drain and health state, kept across restarts (state-file.ts). */
  readonly #state: StateWriter;
  /** Issue 11: the VIP announced through BIRD only while ready (announce.ts). */
  readonly #announcer: Announcer | undefined;
  /** Issue 11: flows other front-ends handed off, recovered by asking the back-ends (recover.ts). */
  readonly #recovery: OrphanRecovery | undefined;
  #address: AddressInfo | undefined;
  #stats: http.Server | undefined;
  #admin: AdminServer | undefined;
  #ages: FlowAges | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #reloading: Promise<unknown> = Promise.resolve();
  readonly #startedAt = Date.now();
  #loadedAt = Date.now();
  #reloads = 0;

  private constructor(
    cfg: FrontendConfig,
    log: Logger,
    secret: string,
    steering: Steering,
    o: DaemonOptions,
    flowIdsInUse: Set<number>,
    encapSources: Map<string, string>,
  ) {
    this.#encapSources = encapSources;
    this.#log = log;
    this.#secret = secret;
    this.#steering = steering;
    this.#configFile = o.configFile;
    this.#state = new StateWriter(adminStatePath(cfg), (err) => log.warn({ err }, 'cannot save drain/health state'));
    this.#health = new HealthChecker({
      onChange: (s) => {
        if (s.healthy) log.info({ backend: s.id }, 'health check passing: takes new connections');
        else log.warn({ backend: s.id, error: s.lastError }, 'health check failing: no new connections');
        this.#saveState();
        this.frontend?.pushRoutes();
      },
    });
    for (const b of cfg.backends) {
      this.#channels.set(b.id, this.#newChannel(cfg, b));
      this.#steered.set(b.id, steeredAs(b));
    }
    const router = new Router({ pools: cfg.pools, rules: cfg.rules, defaultPool: cfg.defaultPool });
    this.frontend = new Frontend({ config: cfg, router, steering, channels: this.#channels, log, flowIdsInUse, encapSources, healthy: (id) => this.#health.healthy(id) });
    this.#announcer = cfg.bgp ? new Announcer({ bgp: cfg.bgp, log }) : undefined;
    this.#recovery = steering.orphans ? this.#newRecovery(steering, flowIdsInUse) : undefined;
  }

  /** Asks every back-end whose channel is up; back-ends added by a reload count from then on. */
  #newRecovery(steering: Steering, flowIdsInUse: Set<number>): OrphanRecovery | undefined {
    const orphans = steering.orphans;
    if (orphans === undefined) return undefined;
    const cfg = (): FrontendConfig => this.frontend.config;
    return new OrphanRecovery({
      orphans,
      vip: { address: cfg().vip, port: cfg().port },
      forward: (flow, id, ids) => steering.forward(flow, id, ids),
      flowIdsInUse,
      log: this.#log,
      backendCount: () => cfg().backends.length,
      backends: () =>
        cfg().backends.flatMap((b) => {
          const ch = this.#channels.get(b.id);
          if (ch === undefined || ch.state !== 'up') return [];
          const src = this.#encapSources.get(b.id);
          return [{ id: b.id, ...(src !== undefined ? { encapSource: src } : {}), ask: (q: Parameters<ControlClient['queryOwner']>[0]) => ch.queryOwner(q) }];
        }),
    });
  }

  /** Ready (announce the VIP): the data plane is loaded (steering exists) and a back-end's channel is up. */
  #readiness(): void {
    if (this.#stopping) return;
    void this.#announcer?.set([...this.#channels.values()].some((c) => c.state === 'up'));
  }

  static async start(cfg: FrontendConfig, log: Logger, o: DaemonOptions = {}): Promise<FrontendDaemon> {
    const secret = await resolveSecret(cfg.secret);
    // Encapsulated packets leave with this host's source address on the route to each encap back-end; the
    // blob names it so the back-end's decap mapping matches what arrives.
    const encapSources = new Map(
      cfg.backends.filter((b) => b.mode === 'encap').map((b) => [b.id, cfg.steering.source ?? sourceAddressFor(b.address)] as const),
    );
    const steering = await createSteering({
      kind: cfg.steering.kind,
      table: cfg.steering.table,
      device: cfg.interface,
      vip: cfg.vip,
      port: cfg.port,
      family: isIPv6(cfg.vip) ? 6 : 4,
      backends: cfg.backends.map((b) => ({ id: b.id, address: b.address, mode: b.mode })),
      idleTimeoutS: cfg.steering.idleTimeoutS,
      lingerMs: cfg.steering.lingerMs,
      pinDir: cfg.steering.pinDir,
      maxFlows: cfg.steering.maxFlows,
      localFor: (id) => encapSources.get(id),
      adopt: o.fresh !== true,
      orphans: cfg.steering.orphans,
    });
    let d: FrontendDaemon | undefined;
    try {
      // Connections handed off by an earlier process and still steered: their flow ids stay theirs.
      const adopted = await steering.list();
      const flowIdsInUse = new Set(adopted.flatMap((e) => (e.flowId === undefined ? [] : [e.flowId])));
      if (adopted.length > 0) log.info({ flows: adopted.length }, 'adopted steering state from an earlier process');
      d = new FrontendDaemon(cfg, log, secret, steering, o, flowIdsInUse, encapSources);
      await d.#open(cfg, o);
      return d;
    } catch (e) {
      if (d) await d.stop();
      else await steering.close();
      throw e;
    }
  }

  get address(): AddressInfo {
    return this.#address!;
  }

  /** The admin API's Unix socket, when it runs. */
  get adminSocket(): string | undefined {
    return this.#admin?.socket;
  }

  async #open(cfg: FrontendConfig, o: DaemonOptions): Promise<void> {
    const fe = this.frontend;
    // Drains and failed health checks from before a restart hold before the first connection.
    const saved = await loadState(adminStatePath(cfg));
    if (saved.problem !== undefined) this.#log.warn({ problem: saved.problem }, 'ignoring saved drain/health state');
    const unhealthy = new Map<string, boolean>();
    for (const [id, st] of Object.entries(saved.state)) {
      if (st.drained === true && fe.drain(id)) this.#log.info({ backend: id }, 'drained (saved state)');
      if (st.healthy === false) unhealthy.set(id, false);
    }
    this.#health.configure(healthTargets(cfg), unhealthy);
    this.#address = await fe.listen();
    this.#readiness(); // withdraws what an earlier process may have left announced, until a channel is up
    for (const ch of this.#channels.values()) ch.start();
    this.#recovery?.start();
    const extra = (): Record<string, unknown> => ({
      ...(this.#recovery ? { recovery: this.#recovery.stats() } : {}),
      ...(this.#announcer ? { announced: this.#announcer.announced } : {}),
    });
    this.#stats = cfg.stats ? await startStatsServer(fe, cfg.stats.host, cfg.stats.port, extra) : undefined;
    if (o.admin !== false) await this.#startAdmin(cfg);
    this.#log.info(
      { vip: this.#address.address, port: this.#address.port, backends: cfg.backends.length, admin: this.#admin?.socket },
      'front-end listening',
    );
  }

  /**
   * The admin API. Its socket lives in the host's filesystem while the front-end may run in a network
   * namespace (labs, containers), so another front-end can hold the same default path: then this one
   * runs without it, says so, and names the setting to change, rather than refusing to serve clients.
   */
  async #startAdmin(cfg: FrontendConfig): Promise<void> {
    const fe = this.frontend;
    this.#ages = new FlowAges();
    try {
      this.#admin = await AdminServer.start({
        target: adminTargetOf({
          frontend: fe,
          drain: (id) => this.drain(id),
          undrain: (id) => this.undrain(id),
          steering: this.#steering,
          health: this.#health,
          ages: this.#ages,
          channelState: (id) => this.#channels.get(id)?.state ?? 'down',
          retired: () => this.#retiredView(),
          reload: () => this.reload(),
          info: () => ({ startedAt: this.#startedAt, configFile: this.#configFile, loadedAt: this.#loadedAt, reloads: this.#reloads }),
        }),
        socket: adminSocketPath(cfg),
        tcp: cfg.admin.tcp,
        onError: (err) => this.#log.error({ err }, 'admin request failed'),
      });
    } catch (err) {
      this.#ages.close();
      this.#ages = undefined;
      this.#log.error({ err }, 'admin API not started (set admin.socket to a free path); serving without it');
    }
  }

  /** No new handoffs to the back-end (kept across reloads and restarts); false if unknown. */
  drain(id: string): boolean {
    const ok = this.frontend.drain(id);
    if (ok) {
      this.#saveState();
      // Its agents decide 'move' for every later request from now on, and move idle connections at once.
      this.frontend.pushRoutes();
      this.#channels.get(id)?.send({ kind: 'drain', draining: true });
    }
    return ok;
  }

  undrain(id: string): boolean {
    const ok = this.frontend.undrain(id);
    if (ok) {
      this.#saveState();
      this.#channels.get(id)?.send({ kind: 'drain', draining: false });
      this.frontend.pushRoutes();
    }
    return ok;
  }

  #saveState(): void {
    const state: BackendsState = {};
    for (const b of this.frontend.backends()) {
      const healthy = this.#health.state(b.id)?.healthy;
      if (b.drained || healthy === false) state[b.id] = { ...(b.drained ? { drained: true } : {}), ...(healthy === false ? { healthy: false } : {}) };
    }
    this.#state.save(state);
  }

  #newChannel(cfg: FrontendConfig, b: BackendConfig): ControlClient {
    const log = this.#log;
    const id = b.id;
    const vips: readonly VipAddress[] = cfg.limits.forwardFirst ? [{ family: isIP(cfg.vip) === 6 ? 6 : 4, address: cfg.vip, port: cfg.port }] : [];
    const ch = new ControlClient({
      secret: this.#secret, address: b.control, name: helloName(cfg, b.control.host), handoffTimeoutMs: cfg.limits.handoffTimeoutMs,
      vips: () => vips,
    });
    ch.on('up', () => {
      this.frontend.onChannelUp(id);
      log.info({ backend: id }, 'control channel up');
      // Every agent's snapshot names who takes requests: this one now does.
      this.frontend.pushRoutes();
      if (this.frontend.backends().find((b) => b.id === id)?.drained === true) ch.send({ kind: 'drain', draining: true });
      this.#readiness();
    });
    ch.on('message', (m) => this.frontend.onAgentMessage(id, m));
    ch.on('down', (reason: string) => {
      this.#readiness();
      // Channels closing because we stop, or because a retired back-end has no connection left,
      // are not back-ends lost: their flows must not be released.
      if (this.#stopping || this.#closing.has(ch)) return;
      log.warn({ backend: id, reason }, 'control channel down');
      this.frontend.pushRoutes();
      // A channel that comes back at once (the agent lives, only the connection broke) keeps its flows;
      // one still down after the grace belongs to a dead agent, whose connections are gone.
      setTimeout(() => {
        if (this.#stopping || this.#closing.has(ch) || ch.state === 'up') return;
        void this.frontend.onChannelDown(id).then((n) => {
          if (n > 0) log.warn({ backend: id, flows: n }, 'released the flows of a lost back-end');
        });
      }, CHANNEL_LOST_GRACE_MS).unref();
    });
    ch.on('load', (active: number, _capacity: number | undefined, commits: number) => {
      this.#reported.set(id, active);
      this.frontend.onLoad(id, active, commits);
      if (active === 0 && this.#retired.has(id)) this.#closeRetired(id);
    });
    ch.on('flowEnd', (f, handoffId) => this.frontend.onFlowEnd({ family: f.family, clientAddress: f.client.address, clientPort: f.client.port }, handoffId));
    return ch;
  }

  #closeChannel(id: string): void {
    const ch = this.#channels.get(id);
    if (!ch) return;
    this.#closing.add(ch);
    this.#channels.delete(id);
    this.#reported.delete(id);
    void ch.close();
  }

  #closeRetired(id: string): void {
    if (!this.#retired.delete(id)) return;
    this.#closeChannel(id);
    this.#log.info({ backend: id }, 'removed back-end holds no connection: channel closed');
  }

  #retiredView(): Map<string, RetiredBackend> {
    const out = new Map<string, RetiredBackend>();
    for (const [id, b] of this.#retired) {
      out.set(id, { address: b.address, weight: b.weight, channel: this.#channels.get(id)?.state ?? 'down', active: this.#reported.get(id) ?? 0 });
    }
    return out;
  }

  /**
   * Re-read the configuration file and apply it without dropping a connection or a handoff
   * (reload.ts); an invalid or restart-only change is refused and nothing changes. Reloads run
   * one at a time.
   */
  reload(): Promise<ReloadReport> {
    const run = (): Promise<ReloadReport> => this.#reload();
    const p = this.#reloading.then(run, run);
    this.#reloading = p.catch(() => undefined);
    return p;
  }

  async #reload(): Promise<ReloadReport> {
    const file = this.#configFile;
    if (file === undefined) {
      return { ok: false, code: RELOAD_ERR.APPLY, field: '', message: 'started without a configuration file: nothing to re-read' };
    }
    let next: FrontendConfig;
    try {
      next = await loadConfigFile(frontendConfigSchema, file);
    } catch (e) {
      const r: ReloadReport = e instanceof ConfigError
        ? { ok: false, code: e.code, field: e.field, message: e.message }
        : { ok: false, code: 'BATON_ERR_CONFIG', field: '', message: `config: cannot read ${file}: ${(e as Error).message}` };
      this.#log.warn({ field: r.field, reason: r.message }, 'reload refused; the running configuration stays');
      return r;
    }
    const cur = this.frontend.config;
    /** Retired back-ends brought back by this reload (their channel is reused), to undo. */
    const revived = new Map<string, BackendConfig>();
    const r = await applyReload(cur, next, {
      router: (n) => new Router({ pools: n.pools, rules: n.rules, defaultPool: n.defaultPool }),
      add: async (b) => {
        const known = this.#steered.get(b.id);
        if (known === undefined) {
          if (!this.#steering.addBackend) throw new Error('this steering cannot add back-ends while running; restart the front-end');
          if (b.mode === 'encap') this.#encapSources.set(b.id, cur.steering.source ?? sourceAddressFor(b.address));
          await this.#steering.addBackend({ id: b.id, address: b.address, mode: b.mode });
          this.#steered.set(b.id, steeredAs(b));
        } else if (known !== steeredAs(b)) {
          throw new Error(`id ${b.id} was used for ${known} earlier in this process; use a new id`);
        }
        const old = this.#retired.get(b.id);
        if (old && sameValue(old.control, b.control) && this.#channels.has(b.id)) {
          this.#retired.delete(b.id);
          revived.set(b.id, old);
          return;
        }
        if (old) this.#closeRetired(b.id);
        const ch = this.#newChannel(cur, b);
        this.#channels.set(b.id, ch);
        ch.start();
      },
      undoAdd: (id) => {
        const old = revived.get(id);
        if (old) this.#retired.set(id, old);
        else this.#closeChannel(id);
      },
      swap: (n, router) => this.frontend.reconfigure(n, router),
      retire: (id) => {
        const b = cur.backends.find((x) => x.id === id);
        if (!b) return;
        this.#retired.set(id, b);
        // Its last report may predate handoffs it has not counted yet: look again a little later.
        if ((this.#reported.get(id) ?? 0) === 0) {
          setTimeout(() => {
            if ((this.#reported.get(id) ?? 0) === 0) this.#closeRetired(id);
          }, RETIRE_CHECK_MS).unref();
        }
      },
      health: (n) => this.#health.configure(healthTargets(n)),
    });
    if (r.ok) this.#saveState();
    if (r.ok) {
      this.frontend.pushRoutes();
      this.#reloads++;
      this.#loadedAt = Date.now();
      this.#log.info({ changes: r.changes }, 'configuration reloaded');
    } else this.#log.warn({ field: r.field, reason: r.message }, 'reload refused; the running configuration stays');
    return r;
  }

  /** Stops accepting, closes the admin and stats endpoints and the channels, then steering. Idempotent. */
  stop(o: StopOptions = {}): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      // Withdraw first: the router stops sending new flows here while this process still serves.
      await this.#announcer?.close();
      this.#recovery?.stop();
      this.#health.close();
      await this.#admin?.close();
      this.#ages?.close();
      await this.frontend.close();
      this.#stats?.close();
      await Promise.all([...this.#channels.values()].map((c) => c.close()));
      await this.#steering.close({ keep: o.keepSteering === true });
      await this.#state.flush();
    })();
    return this.#stopped;
  }
}

/**
 * HELLO name toward one agent: unique per front-end host and stable across restarts, since the agent routes FLOW_END
 * by it and keeps the reports of a front-end that is away until it is back. Default: this host's address toward the
 * agent (host names repeat in namespaces and containers), else the host name; at most 64 bytes.
 */
function helloName(cfg: FrontendConfig, agentHost: string): string {
  const local = (): string => {
    try {
      return sourceAddressFor(agentHost);
    } catch {
      return hostname();
    }
  };
  let out = cfg.name ?? `frontend ${local()} ${cfg.vip}:${cfg.port}`;
  while (Buffer.byteLength(out) > 64) out = out.slice(0, -1);
  return out;
}
