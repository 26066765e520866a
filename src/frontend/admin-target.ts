// The running front-end seen through the admin API's AdminTarget (admin.ts): back-end rows merged
// from the back-end table, the channels, the health checker and the retired back-ends; flows from
// steering's own listing (what the kernel holds); drain, undrain and reload passed through.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { FlowKey, Steering } from '../steer/types.ts';
import { flowKeyString } from '../steer/types.ts';
import { ADMIN_ERR, AdminError, type AdminBackend, type AdminFlow, type AdminStatus, type AdminTarget, type DrainReport, type ReloadReport } from './admin.ts';
import type { FrontendConfig } from './config.ts';
import type { Frontend } from './frontend.ts';
import type { HealthChecker } from './health.ts';

/**
 * When each steered tuple was handed off, from the `baton:handoff:done` diagnostics channel, so
 * `flows` can show connection ages (steering keeps no such time). Bounded: past `max` tuples the
 * oldest are forgotten (their age shows as unknown).
 */
export class FlowAges {
  readonly #at = new Map<string, { readonly backend: string; readonly at: number }>();
  readonly #max: number;
  readonly #now: () => number;
  readonly #onDone = (m: unknown): void => {
    const { backend, flow } = m as { backend: string; flow: FlowKey };
    const k = flowKeyString(flow);
    this.#at.delete(k); // re-insert: the Map's order stays oldest first
    this.#at.set(k, { backend, at: this.#now() });
    if (this.#at.size > this.#max) this.#at.delete(this.#at.keys().next().value!);
  };

  constructor(o: { max?: number; now?: () => number } = {}) {
    this.#max = o.max ?? 1 << 20;
    this.#now = o.now ?? Date.now;
    subscribe('baton:handoff:done', this.#onDone);
  }

  /** Milliseconds since the tuple was handed off to `backend`, if known. */
  ageMs(client: string, backend: string | undefined): number | undefined {
    const e = this.#at.get(client);
    return e !== undefined && e.backend === backend ? this.#now() - e.at : undefined;
  }

  /** Forget tuples steering no longer holds. */
  keepOnly(clients: ReadonlySet<string>): void {
    for (const k of this.#at.keys()) if (!clients.has(k)) this.#at.delete(k);
  }

  close(): void {
    unsubscribe('baton:handoff:done', this.#onDone);
  }
}

/** A back-end removed by a reload whose channel stays open until its connections end. */
export interface RetiredBackend {
  readonly address: string;
  readonly weight: number;
  readonly channel: string;
  /** Its last LOAD report. */
  readonly active: number;
}

export interface AdminTargetParts {
  readonly frontend: Frontend;
  /** Drain and undrain through the daemon (which records them); false for an unknown id. */
  readonly drain: (id: string) => boolean;
  readonly undrain: (id: string) => boolean;
  readonly steering: Steering;
  readonly health: HealthChecker;
  readonly ages?: FlowAges;
  readonly channelState: (id: string) => string;
  readonly retired: () => ReadonlyMap<string, RetiredBackend>;
  readonly reload: () => Promise<ReloadReport>;
  readonly info: () => { readonly startedAt: number; readonly configFile?: string; readonly loadedAt: number; readonly reloads: number };
  readonly now?: () => number;
}

export function adminTargetOf(p: AdminTargetParts): AdminTarget {
  const now = p.now ?? Date.now;
  const config = (): FrontendConfig => p.frontend.config;

  const backends = (): AdminBackend[] => {
    const addr = new Map(config().backends.map((b) => [b.id, b.address]));
    const per = p.frontend.stats().perBackend;
    const rows: AdminBackend[] = p.frontend.backends().map((b) => {
      const h = p.health.state(b.id);
      const health = h === undefined ? 'none' : h.healthy ? 'up' : 'down';
      return {
        id: b.id, address: addr.get(b.id) ?? '', weight: b.weight, channel: b.state, health,
        ...(h?.lastError !== undefined && !h.healthy ? { healthError: h.lastError } : {}),
        drained: b.drained, removed: false,
        eligible: b.state === 'up' && health !== 'down' && !b.drained && b.weight > 0,
        active: b.active, handoffs: b.handoffs, failures: b.failures, movesOut: per[b.id]?.movesOut ?? 0,
        movesInFlight: p.frontend.movesInFlightFrom(b.id),
      };
    });
    for (const [id, r] of p.retired()) {
      rows.push({
        id, address: r.address, weight: r.weight, channel: r.channel, health: 'none', drained: false, removed: true,
        eligible: false, active: r.active, handoffs: 0, failures: 0,
      });
    }
    return rows;
  };

  const report = (id: string, drained: boolean): DrainReport => {
    const b = backends().find((x) => x.id === id);
    return { id, drained, active: b?.active ?? 0, moved: 0, movesOut: b?.movesOut ?? 0 };
  };

  return {
    status(): AdminStatus {
      const s = p.frontend.stats();
      const i = p.info();
      const bs = backends();
      return {
        pid: process.pid, vip: config().vip, port: config().port,
        uptimeS: Math.round((now() - i.startedAt) / 1000),
        ...(i.configFile !== undefined ? { configFile: i.configFile } : {}),
        configLoadedAt: new Date(i.loadedAt).toISOString(), reloads: i.reloads,
        accepted: s.accepted, handedOff: s.handedOff, pending: s.pending,
        backends: bs.filter((b) => !b.removed).length, eligible: bs.filter((b) => b.eligible).length,
      };
    },
    backends,
    async flows(filter): Promise<AdminFlow[]> {
      const entries = await p.steering.list();
      if (filter.backend === undefined) p.ages?.keepOnly(new Set(entries.map((e) => flowKeyString(e.flow))));
      return entries
        .filter((e) => filter.backend === undefined || e.backend === filter.backend)
        .map((e) => {
          const client = flowKeyString(e.flow);
          const ageMs = e.verdict === 'hold' ? undefined : p.ages?.ageMs(client, e.backend);
          return {
            client, state: e.verdict,
            ...(e.backend !== undefined ? { backend: e.backend } : {}),
            ...(e.idleMs !== undefined ? { idleMs: e.idleMs } : {}),
            ...(ageMs !== undefined ? { ageMs } : {}),
            ...(e.handoffId !== undefined ? { handoffId: e.handoffId.toString() } : {}),
          };
        });
    },
    drain(id): DrainReport {
      if (!p.drain(id)) throw new AdminError(ADMIN_ERR.UNKNOWN_BACKEND, `no back-end "${id}"`);
      return report(id, true);
    },
    undrain(id): DrainReport {
      if (!p.undrain(id)) throw new AdminError(ADMIN_ERR.UNKNOWN_BACKEND, `no back-end "${id}"`);
      return report(id, false);
    },
    reload: () => p.reload(),
  };
}
