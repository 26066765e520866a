// Active health checks: an HTTP GET to each back-end that has a `healthCheck`, every interval, with
// rise/fall hysteresis (HAProxy's semantics: a back-end starts up, goes down after `fall`
// consecutive failures, comes back after `rise` consecutive successes). They add to the control
// channel, which remains the primary liveness signal: a back-end is eligible for new handoffs only
// while both say so. The clock, timers and the probe itself are injected so tests step through
// transitions without waiting; state is kept per id so it survives a reload.
import http from 'node:http';
import type { HealthCheckConfig } from './config.ts';

/** One back-end to check. */
export interface HealthTarget {
  readonly id: string;
  readonly address: string;
  readonly check: HealthCheckConfig;
  /** Port probed when the check names none (the front-end's service port). */
  readonly defaultPort: number;
}

/** What one probe asks for. */
export interface ProbeRequest {
  readonly address: string;
  readonly port: number;
  readonly path: string;
  readonly host: string;
  readonly timeoutMs: number;
}

export type ProbeResult = { readonly ok: true; readonly status: number } | { readonly ok: false; readonly reason: string };

export type Probe = (r: ProbeRequest) => Promise<ProbeResult>;

/** The timer functions the checker schedules with (global ones by default). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface HealthState {
  readonly id: string;
  readonly healthy: boolean;
  /** Consecutive successes / failures of the current streak. */
  readonly successes: number;
  readonly failures: number;
  readonly checks: number;
  /** Status of the last answered probe, or the reason the last probe failed. */
  readonly lastStatus?: number;
  readonly lastError?: string;
  readonly lastCheckAt?: number;
  /** When `healthy` last changed (start counts as a change). */
  readonly changedAt: number;
}

interface Entry {
  target: HealthTarget;
  state: HealthState;
  timer?: unknown;
  /** Bumped on every reconfiguration or removal: a probe answering for an older generation is ignored. */
  gen: number;
  running: boolean;
}

export interface HealthCheckerOptions {
  readonly probe?: Probe;
  readonly timers?: Timers;
  readonly now?: () => number;
  /** Called when a back-end's health flips. */
  readonly onChange?: (s: HealthState) => void;
}

const MAX_REASON = 200;

/** HTTP GET; 2xx and 3xx are healthy. The body is not read; the connection is closed at once. */
export const httpProbe: Probe = (r) =>
  new Promise((resolve) => {
    let settled = false;
    const done = (res: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(res);
    };
    const req = http.request({
      host: r.address, port: r.port, path: r.path, method: 'GET', agent: false,
      headers: { host: r.host, 'user-agent': 'baton-health', connection: 'close' },
    });
    const timer = setTimeout(() => done({ ok: false, reason: `timeout after ${r.timeoutMs} ms` }), r.timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.destroy();
      done(status >= 200 && status < 400 ? { ok: true, status } : { ok: false, reason: `status ${status}` });
    });
    req.on('error', (e: Error) => done({ ok: false, reason: e.message.slice(0, MAX_REASON) }));
    req.end();
  });

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class HealthChecker {
  readonly #entries = new Map<string, Entry>();
  readonly #probe: Probe;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #onChange: ((s: HealthState) => void) | undefined;
  #closed = false;

  constructor(o: HealthCheckerOptions = {}) {
    this.#probe = o.probe ?? httpProbe;
    this.#timers = o.timers ?? realTimers;
    this.#now = o.now ?? Date.now;
    this.#onChange = o.onChange;
  }

  /**
   * Check exactly these targets from now on. Back-ends already known keep their state (a reload
   * does not reset health); new ones start healthy unless `initial` says otherwise (state saved
   * before a restart); ones left out are forgotten.
   */
  configure(targets: readonly HealthTarget[], initial?: ReadonlyMap<string, boolean>): void {
    const keep = new Set(targets.map((t) => t.id));
    for (const [id, e] of this.#entries) {
      if (keep.has(id)) continue;
      this.#stop(e);
      this.#entries.delete(id);
    }
    for (const t of targets) {
      const e = this.#entries.get(t.id);
      if (e) {
        this.#stop(e);
        e.target = t;
        if (!this.#closed) this.#schedule(e, 0);
        continue;
      }
      const fresh: Entry = {
        target: t, gen: 0, running: false,
        state: { id: t.id, healthy: initial?.get(t.id) ?? true, successes: 0, failures: 0, checks: 0, changedAt: this.#now() },
      };
      this.#entries.set(t.id, fresh);
      if (!this.#closed) this.#schedule(fresh, 0);
    }
  }

  /** True unless the back-end has a health check and is failing it. */
  healthy(id: string): boolean {
    return this.#entries.get(id)?.state.healthy ?? true;
  }

  /** The back-end's check state, or undefined when it has no health check. */
  state(id: string): HealthState | undefined {
    return this.#entries.get(id)?.state;
  }

  states(): HealthState[] {
    return [...this.#entries.values()].map((e) => e.state);
  }

  /** Probe one back-end now (outside its schedule) and return its state after the probe. */
  async checkNow(id: string): Promise<HealthState | undefined> {
    const e = this.#entries.get(id);
    if (!e) return undefined;
    await this.#run(e, e.gen, false);
    return e.state;
  }

  close(): void {
    this.#closed = true;
    for (const e of this.#entries.values()) this.#stop(e);
  }

  #stop(e: Entry): void {
    e.gen++;
    if (e.timer !== undefined) this.#timers.clearTimeout(e.timer);
    e.timer = undefined;
  }

  #schedule(e: Entry, ms: number): void {
    const gen = e.gen;
    e.timer = this.#timers.setTimeout(() => {
      e.timer = undefined;
      void this.#run(e, gen, true);
    }, ms);
  }

  async #run(e: Entry, gen: number, scheduled: boolean): Promise<void> {
    if (gen !== e.gen) return;
    if (e.running) {
      // A probe from before a reconfiguration is still out: try again an interval later.
      if (scheduled && !this.#closed) this.#schedule(e, e.target.check.intervalMs);
      return;
    }
    e.running = true;
    const t = e.target;
    const c = t.check;
    let r: ProbeResult;
    try {
      r = await this.#probe({ address: t.address, port: c.port ?? t.defaultPort, path: c.path, host: c.host ?? t.address, timeoutMs: c.timeoutMs });
    } catch (err) {
      r = { ok: false, reason: String((err as Error).message ?? err).slice(0, MAX_REASON) };
    }
    e.running = false;
    // Reconfigured or removed while the probe ran: its answer no longer applies.
    if (gen !== e.gen || this.#entries.get(t.id) !== e) return;
    this.#record(e, r);
    if (scheduled && !this.#closed) this.#schedule(e, c.intervalMs);
  }

  #record(e: Entry, r: ProbeResult): void {
    const s = e.state;
    const successes = r.ok ? s.successes + 1 : 0;
    const failures = r.ok ? 0 : s.failures + 1;
    const c = e.target.check;
    const healthy = s.healthy ? failures < c.fall : successes >= c.rise;
    const now = this.#now();
    e.state = {
      id: s.id, healthy, successes, failures, checks: s.checks + 1, lastCheckAt: now,
      changedAt: healthy === s.healthy ? s.changedAt : now,
      ...(r.ok ? { lastStatus: r.status } : { lastError: r.reason }),
    };
    if (healthy !== s.healthy) this.#onChange?.(e.state);
  }
}
