// The front-end's composition root (as backend/agent.ts BackendAgent.start): from a validated
// configuration, assemble router, steering, one control channel per back-end, the Frontend and
// its stats endpoint, and wire the channels' events into it. cli/ only loads the file and calls
// FrontendDaemon.start; tests and the admin interface hold the daemon and its `frontend`.
import type http from 'node:http';
import { isIPv6, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ControlClient } from '../control/client.ts';
import { Router } from '../policy/index.ts';
import { sourceAddressFor } from '../steer/bpf-table.ts';
import { createSteering } from '../steer/create.ts';
import type { Steering } from '../steer/types.ts';
import { resolveSecret } from '../util/config-file.ts';
import type { FrontendConfig } from './config.ts';
import { Frontend } from './frontend.ts';
import { startStatsServer } from './stats-server.ts';

/** How long a back-end's channel may stay down before its flows are released. */
const CHANNEL_LOST_GRACE_MS = 3000;

export interface StartOptions {
  /** bpf steering: discard kernel state left by an earlier process instead of adopting it. */
  readonly fresh?: boolean;
}

export interface StopOptions {
  /** Leave steering's kernel state in place so handed-off connections keep flowing (bpf). */
  readonly keepSteering?: boolean;
}

export class FrontendDaemon {
  readonly frontend: Frontend;
  readonly address: AddressInfo;
  readonly #steering: Steering;
  readonly #channels: Map<string, ControlClient>;
  readonly #stats: http.Server | undefined;
  readonly #life: { stopping: boolean };
  #stopped: Promise<void> | undefined;

  private constructor(
    fe: Frontend,
    address: AddressInfo,
    steering: Steering,
    channels: Map<string, ControlClient>,
    stats: http.Server | undefined,
    life: { stopping: boolean },
  ) {
    this.#life = life;
    this.frontend = fe;
    this.address = address;
    this.#steering = steering;
    this.#channels = channels;
    this.#stats = stats;
  }

  static async start(cfg: FrontendConfig, log: Logger, o: StartOptions = {}): Promise<FrontendDaemon> {
    const secret = await resolveSecret(cfg.secret);
    const router = new Router({ pools: cfg.pools, rules: cfg.rules, defaultPool: cfg.defaultPool });
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
    });
    // Connections handed off by an earlier process and still steered: their flow ids stay theirs.
    const adopted = await steering.list();
    const flowIdsInUse = new Set(adopted.flatMap((e) => (e.flowId === undefined ? [] : [e.flowId])));
    if (adopted.length > 0) log.info({ flows: adopted.length }, 'adopted steering state from an earlier process');
    const channels = new Map<string, ControlClient>();
    // Channels closing because we stop are not back-ends lost: their flows must not be released
    // (with keepSteering they must survive this process).
    const life = { stopping: false };
    try {
      for (const b of cfg.backends) {
        channels.set(
          b.id,
          new ControlClient({ secret, address: b.control, name: `frontend ${cfg.vip}:${cfg.port}`, handoffTimeoutMs: cfg.limits.handoffTimeoutMs }),
        );
      }
      const fe = new Frontend({ config: cfg, router, steering, channels, log, flowIdsInUse, encapSources });
      for (const [id, ch] of channels) {
        ch.on('up', () => {
          fe.onChannelUp(id);
          log.info({ backend: id }, 'control channel up');
        });
        ch.on('down', (reason: string) => {
          if (life.stopping) return;
          log.warn({ backend: id, reason }, 'control channel down');
          // A channel that comes back at once (the agent lives, only the connection broke) keeps its flows;
          // one still down after the grace belongs to a dead agent, whose connections are gone.
          setTimeout(() => {
            if (life.stopping || ch.state === 'up') return;
            void fe.onChannelDown(id).then((n) => {
              if (n > 0) log.warn({ backend: id, flows: n }, 'released the flows of a lost back-end');
            });
          }, CHANNEL_LOST_GRACE_MS).unref();
        });
        ch.on('load', (active, _capacity, commits) => fe.onLoad(id, active, commits));
        ch.on('flowEnd', (f, handoffId) => fe.onFlowEnd({ family: f.family, clientAddress: f.client.address, clientPort: f.client.port }, handoffId));
      }
      const address = await fe.listen();
      for (const ch of channels.values()) ch.start();
      const stats = cfg.stats ? await startStatsServer(fe, cfg.stats.host, cfg.stats.port) : undefined;
      log.info({ vip: address.address, port: address.port, backends: cfg.backends.length }, 'front-end listening');
      return new FrontendDaemon(fe, address, steering, channels, stats, life);
    } catch (e) {
      life.stopping = true;
      await Promise.all([...channels.values()].map((c) => c.close()));
      await steering.close();
      throw e;
    }
  }

  /** Stops accepting, closes the channels and the stats endpoint, then steering. Idempotent. */
  stop(o: StopOptions = {}): Promise<void> {
    this.#stopped ??= (async () => {
      this.#life.stopping = true;
      await this.frontend.close();
      this.#stats?.close();
      await Promise.all([...this.#channels.values()].map((c) => c.close()));
      await this.#steering.close({ keep: o.keepSteering === true });
    })();
    return this.#stopped;
  }
}
