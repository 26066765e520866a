// The front-end's table of back-ends: what the policies see of each one (BackendView) and what
// operators see (BackendInfo). It owns per back-end counters, the drained flag and the load
// ledger (load.ts); channel state is read through a function so the table stays pure.
//
// Draining is expressed in the views alone (a drained back-end is shown `up: false`), so every
// policy skips it through the one eligibility rule (policy/eligible.ts) without knowing drains.
import type { BackendId, BackendView } from '../policy/index.ts';
import { LoadLedger } from './load.ts';

export type ChannelState = 'connecting' | 'authenticating' | 'up' | 'down';

export interface BackendSpec {
  readonly id: string;
  readonly weight: number;
}

/** One back-end as an operator sees it. */
export interface BackendInfo {
  readonly id: string;
  /** The control channel's state; only `up` back-ends take handoffs. */
  readonly state: ChannelState;
  /** Drained by an operator: takes no new handoffs, keeps what it has. */
  readonly drained: boolean;
  readonly weight: number;
  /** Estimated active connections (the back-end's report plus commits it has not counted yet). */
  readonly active: number;
  /** Handoffs committed to it since start. */
  readonly handoffs: number;
  /** Handoffs it refused, timed out or lost, and forwards that failed, since start. */
  readonly failures: number;
}

interface Entry {
  spec: BackendSpec;
  drained: boolean;
  readonly load: LoadLedger;
  handoffs: number;
  failures: number;
}

export class BackendTable {
  #entries = new Map<string, Entry>();
  readonly #stateOf: (id: string) => ChannelState;
  readonly #healthy: (id: string) => boolean;

  /** `healthy`: the active health check's verdict (health.ts); always true without checks. */
  constructor(specs: readonly BackendSpec[], stateOf: (id: string) => ChannelState, healthy: (id: string) => boolean = () => true) {
    this.#stateOf = stateOf;
    this.#healthy = healthy;
    this.replace(specs);
  }

  /**
   * Takes a new list of back-ends (configuration reload): entries for ids that remain keep their
   * counters, load and drained flag; others are dropped or start fresh.
   */
  replace(specs: readonly BackendSpec[]): void {
    const next = new Map<string, Entry>();
    for (const spec of specs) {
      const old = this.#entries.get(spec.id);
      if (old !== undefined) {
        old.spec = spec;
        next.set(spec.id, old);
      } else next.set(spec.id, { spec, drained: false, load: new LoadLedger(), handoffs: 0, failures: 0 });
    }
    this.#entries = next;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** What the policies choose from; `exclude` hides back-ends already tried for this connection. */
  views(exclude?: ReadonlySet<string>): BackendView[] {
    const out: BackendView[] = [];
    for (const [id, e] of this.#entries) {
      out.push({
        id: id as BackendId,
        up: this.#stateOf(id) === 'up' && !e.drained && this.#healthy(id) && exclude?.has(id) !== true,
        weight: e.spec.weight,
        active: e.load.active,
      });
    }
    return out;
  }

  list(): BackendInfo[] {
    return [...this.#entries].map(([id, e]) => ({
      id,
      state: this.#stateOf(id),
      drained: e.drained,
      weight: e.spec.weight,
      active: e.load.active,
      handoffs: e.handoffs,
      failures: e.failures,
    }));
  }

  /** False when the id is unknown. */
  setDrained(id: string, drained: boolean): boolean {
    const e = this.#entries.get(id);
    if (e === undefined) return false;
    e.drained = drained;
    return true;
  }

  // --- accounting, called by the handoff machine and the channels -----------------------------

  handoffSent(id: string): void {
    this.#entries.get(id)?.load.handoffSent();
  }

  handoffAnswered(id: string): void {
    this.#entries.get(id)?.load.handoffAnswered();
  }

  /** A COMMIT was written to the back-end's channel. */
  committed(id: string): void {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    e.handoffs++;
    e.load.commitSent();
  }

  failed(id: string): void {
    const e = this.#entries.get(id);
    if (e !== undefined) e.failures++;
  }

  /** The back-end's LOAD report. */
  onLoad(id: string, active: number, commits: number): void {
    this.#entries.get(id)?.load.report(active, commits);
  }

  /** The back-end's channel came up or went down: its load counts restart. */
  onSession(id: string): void {
    this.#entries.get(id)?.load.newSession();
  }
}
