// Steering through the eBPF data plane (bpf/frontend.c at tc ingress on the client-facing interface).
//
// The kernel's `flows` map IS the state: one entry per client tuple, {hold | forward | closing, back-end
// index, flow id, handoff id, last seen, deadline}. This class decides what to write; the program does
// the per-packet work (drop, L2 redirect or flow-id encapsulation, bare-SYN clearing, refreshing last
// seen, expiring a closing entry at its deadline). Because the maps are pinned, a restarted front-end
// adopts them: the entries ARE the handed-off connections, nothing else needs rebuilding.
//
// Each operation is one map update (a bpf() call, ~2 us), so hold -> forward is atomic: there is no
// moment where a packet of a held flow could reach the front-end's stack.
//
// The kernel side is reached only through `FlowTable` (a projection port), so this policy is
// unit-tested without root against an in-memory table (bpf.test.ts).
import type { FlowState } from './bpf-maps.ts';
import type {
  FlowIds, FlowKey, ForwardMode, OrphanSource, SteerBackend, SteerCounters, SteerEntry, Steering,
} from './types.ts';
import { flowKeyString } from './types.ts';

/** What this class writes into a `backends` slot; the adapter adds what the kernel needs (family, egress). */
export interface SlotSpec {
  readonly mode: ForwardMode;
  readonly address: string;
  /** encap only: the front-end's address, written as the packets' source. */
  readonly local?: string;
}

/** The kernel maps, as this class needs them. Implemented over libbpf (bpf-dataplane.ts) and in memory (tests). */
export interface FlowTable {
  get(flow: FlowKey): FlowState | undefined;
  put(flow: FlowKey, v: FlowState): void;
  /** Returns false when the entry was absent. */
  delete(flow: FlowKey): boolean;
  entries(): Iterable<readonly [FlowKey, FlowState]>;
  setBackend(index: number, slot: SlotSpec | undefined): void;
  /** Packets and bytes steered to each back-end index, summed over CPUs. */
  counters(index: number): SteerCounters;
  /** The clock the data plane stamps `lastSeenNs` with. */
  nowNs(): bigint;
  /** Detach and remove everything, or (keep) leave the program attached and the maps pinned. */
  close(keep: boolean): Promise<void>;
  /** Orphan capture, when on. */
  readonly orphans?: OrphanSource;
}

export interface BpfSteeringOptions {
  readonly backends: readonly SteerBackend[];
  /** encap source address per back-end id (the front-end's address on the route to it). */
  readonly localFor?: (backendId: string) => string | undefined;
  /** A held flow is dropped at most this long if the front-end never decides (safety net). */
  readonly holdTimeoutS?: number;
  /** Forget a forwarded flow after this long without a client packet. */
  readonly idleTimeoutS?: number;
  /** How long a released flow keeps being forwarded, for the last FIN/ACK packets. */
  readonly lingerMs?: number;
  /**
   * How often the whole table is walked for idle forwards and forgotten holds (ms): a walk costs two bpf()
   * calls per entry, so it is rare. Default: a quarter of the idle timeout, 1 s to 60 s. Released flows are
   * expired on their own timer, from a list, without a walk.
   */
  readonly sweepMs?: number;
}

const NS_PER_MS = 1_000_000n;
/**
 * Most released flows one turn of the expiry deletes (a lookup and a delete each, ~6 µs) before it lets the event
 * loop run: at 3,500 handoffs/s a once-a-second pass over 3,500 entries held the front-end for tens of ms (strace
 * showed gaps between epoll waits recurring each second), and every handoff behind it waited.
 */
export const EXPIRE_BATCH = 256;
/** How often the expiry runs at most (and at least every linger): small passes instead of one large. */
const EXPIRE_EVERY_MS = 100;
/** What every successful operation returns: one settled promise, shared (a settled promise never changes). */
const DONE: Promise<void> = Promise.resolve();
const CLOSED = Symbol('closed');

export class BpfSteering implements Steering {
  readonly #t: FlowTable;
  readonly #index = new Map<string, number>();
  readonly #ids: string[] = [];
  readonly #holdNs: bigint;
  readonly #idleNs: bigint;
  readonly #lingerNs: bigint;
  readonly #sweep: NodeJS.Timeout;
  readonly #expire: NodeJS.Timeout;
  /** Flows released by this process, in deadline order (each linger is the same): tuple -> its closing entry. */
  readonly #closing = new Map<string, { readonly flow: FlowKey; readonly handoffId: bigint; readonly deadlineNs: bigint }>();
  readonly #localFor: ((backendId: string) => string | undefined) | undefined;
  #closed = false;
  /** An expiry turn is scheduled (setImmediate): the timer does not start another. */
  #expiring = false;

  constructor(table: FlowTable, o: BpfSteeringOptions) {
    this.#t = table;
    this.#localFor = o.localFor;
    if (o.backends.length > 64) throw new RangeError(`steering: at most 64 back-ends (got ${o.backends.length})`);
    o.backends.forEach((b, i) => {
      this.#index.set(b.id, i);
      this.#ids[i] = b.id;
      const mode = b.mode ?? 'l2';
      const local = mode === 'encap' ? o.localFor?.(b.id) : undefined;
      if (mode === 'encap' && local === undefined) throw new TypeError(`steering: back-end ${b.id} is encap but no source address is known`);
      table.setBackend(i, { mode, address: b.address, local });
    });
    for (let i = o.backends.length; i < 64; i++) table.setBackend(i, undefined);
    this.#holdNs = BigInt(o.holdTimeoutS ?? 30) * 1000n * NS_PER_MS;
    this.#idleNs = BigInt(o.idleTimeoutS ?? 300) * 1000n * NS_PER_MS;
    const lingerMs = o.lingerMs ?? 2000;
    this.#lingerNs = BigInt(lingerMs) * NS_PER_MS;
    const idleMs = (o.idleTimeoutS ?? 300) * 1000;
    this.#sweep = setInterval(() => this.sweep(), o.sweepMs ?? Math.min(60_000, Math.max(1000, idleMs / 4)));
    this.#sweep.unref();
    this.#expire = setInterval(this.#expireInTurns, Math.max(10, Math.min(EXPIRE_EVERY_MS, lingerMs)));
    this.#expire.unref();
  }

  /**
   * A back-end added while running (configuration reload): it takes the next unused slot, so flows
   * already steered (to back-ends since removed, too) keep theirs. Slots are not reused in a process.
   */
  addBackend(b: SteerBackend): Promise<void> {
    return this.#apply(() => `add back-end ${b.id}`, () => {
      if (this.#index.has(b.id)) throw new TypeError(`back-end ${b.id} is already known`);
      const i = this.#ids.length;
      if (i >= 64) throw new RangeError('at most 64 back-ends per process (slots are not reused)');
      const mode = b.mode ?? 'l2';
      const local = mode === 'encap' ? this.#localFor?.(b.id) : undefined;
      if (mode === 'encap' && local === undefined) throw new TypeError(`back-end ${b.id} is encap but no source address is known`);
      this.#t.setBackend(i, { mode, address: b.address, local });
      this.#index.set(b.id, i);
      this.#ids[i] = b.id;
    });
  }

  get orphans(): OrphanSource | undefined {
    return this.#t.orphans;
  }

  #backendIndex(id: string): number {
    const i = this.#index.get(id);
    if (i === undefined) throw new TypeError(`steering: unknown back-end ${id}`);
    return i;
  }

  // The per-handoff operations below are written out (no closures per call): each is one or two map
  // operations, and the error names the operation only when there is one.
  hold(flow: FlowKey): Promise<void> {
    if (this.#closed) return this.#failed('hold', flow, CLOSED);
    try {
      const now = this.#t.nowNs();
      this.#t.put(flow, { verdict: 'hold', backend: 0, flowId: 0, handoffId: 0n, lastSeenNs: now, deadlineNs: now + this.#holdNs });
    } catch (e) {
      return this.#failed('hold', flow, e);
    }
    return DONE;
  }

  forward(flow: FlowKey, backendId: string, ids: FlowIds): Promise<void> {
    if (this.#closed) return this.#failed('forward', flow, CLOSED, backendId);
    try {
      const backend = this.#backendIndex(backendId);
      // One update replaces the hold (or a stale entry of an earlier connection on this tuple).
      this.#t.put(flow, { verdict: 'forward', backend, flowId: ids.flowId, handoffId: ids.handoffId, lastSeenNs: this.#t.nowNs(), deadlineNs: 0n });
    } catch (e) {
      return this.#failed('forward', flow, e, backendId);
    }
    return DONE;
  }

  unhold(flow: FlowKey): Promise<void> {
    if (this.#closed) return this.#failed('unhold', flow, CLOSED);
    try {
      const v = this.#t.get(flow);
      if (v?.verdict === 'hold') this.#t.delete(flow);
    } catch (e) {
      return this.#failed('unhold', flow, e);
    }
    return DONE;
  }

  release(flow: FlowKey, handoffId: bigint): Promise<void> {
    if (this.#closed) return this.#failed('release', flow, CLOSED);
    try {
      const v = this.#t.get(flow);
      // An older connection's end never touches a newer one on the same tuple.
      if (v !== undefined && v.verdict === 'forward' && v.handoffId === handoffId) this.#close(flow, v, this.#t.nowNs() + this.#lingerNs);
    } catch (e) {
      return this.#failed('release', flow, e);
    }
    return DONE;
  }

  /** A rejected promise naming the operation (CLOSED: steering is closed). */
  #failed(op: string, flow: FlowKey, e: unknown, backendId?: string): Promise<void> {
    const what = `${op} ${flowKeyString(flow)}${backendId === undefined ? '' : ` to ${backendId}`}`;
    if (e === CLOSED) return Promise.reject(new Error(`${what}: steering is closed`));
    if (e instanceof Error) return Promise.reject(new Error(`${what}: ${e.message}`, { cause: e }));
    return Promise.reject(e);
  }

  #close(flow: FlowKey, v: FlowState, deadlineNs: bigint): void {
    this.#t.put(flow, { ...v, verdict: 'closing', deadlineNs });
    const k = flowKeyString(flow);
    this.#closing.delete(k); // keep the map in deadline order
    this.#closing.set(k, { flow, handoffId: v.handoffId, deadlineNs });
  }

  /**
   * Deletes the flows this process released whose linger is over, at most `max` of them (the oldest first);
   * returns how many it deleted.
   */
  expireReleased(max = Number.POSITIVE_INFINITY): number {
    if (this.#closed) return 0;
    const now = this.#t.nowNs();
    let n = 0;
    let seen = 0;
    const later: [string, { readonly flow: FlowKey; readonly handoffId: bigint; readonly deadlineNs: bigint }][] = [];
    for (const [k, c] of this.#closing) {
      if (c.deadlineNs >= now || seen++ >= max) break;
      this.#closing.delete(k);
      const cur = this.#t.get(c.flow);
      // Only if it is still that closing entry (a new connection may have taken the tuple since).
      if (cur?.verdict !== 'closing' || cur.handoffId !== c.handoffId) continue;
      // The client's packets pushed its deadline (a slow reader still draining the back-end): look again then.
      if (cur.deadlineNs > now) later.push([k, { ...c, deadlineNs: cur.deadlineNs }]);
      else if (this.#t.delete(c.flow)) n++;
    }
    for (const [k, c] of later) this.#closing.set(k, c);
    return n;
  }

  /** Whether the oldest released flow's linger is over. */
  #expiryDue(): boolean {
    const first = this.#closing.values().next();
    return first.done !== true && first.value.deadlineNs < this.#t.nowNs();
  }

  /** The timer's expiry: EXPIRE_BATCH entries a turn, the rest in later turns (setImmediate), handoffs in between. */
  readonly #expireInTurns = (): void => {
    if (this.#expiring) return;
    const turn = (): void => {
      this.#expiring = false;
      this.expireReleased(EXPIRE_BATCH);
      if (this.#closed || !this.#expiryDue()) return;
      this.#expiring = true;
      setImmediate(turn);
    };
    turn();
  };

  releaseBackend(backendId: string): Promise<number> {
    const b = this.#index.get(backendId);
    if (b === undefined) return Promise.resolve(0);
    let n = 0;
    const deadlineNs = this.#t.nowNs() + this.#lingerNs;
    for (const [flow, v] of [...this.#t.entries()]) {
      if (v.verdict !== 'forward' || v.backend !== b) continue;
      this.#close(flow, v, deadlineNs);
      n++;
    }
    return Promise.resolve(n);
  }

  /** Walks the table and deletes entries past their time: idle forwards, closings past their linger, forgotten holds. */
  sweep(): number {
    if (this.#closed) return 0;
    const now = this.#t.nowNs();
    let n = this.expireReleased();
    for (const [flow, v] of [...this.#t.entries()]) {
      const expired =
        v.verdict === 'forward' ? now - v.lastSeenNs > this.#idleNs : v.deadlineNs !== 0n && now > v.deadlineNs;
      if (!expired) continue;
      // Re-read: the data path may have refreshed it, or a new connection replaced it, since the walk began.
      const cur = this.#t.get(flow);
      if (cur === undefined || cur.handoffId !== v.handoffId || cur.verdict !== v.verdict || cur.lastSeenNs !== v.lastSeenNs) continue;
      if (this.#t.delete(flow)) n++;
    }
    return n;
  }

  list(): Promise<SteerEntry[]> {
    const now = this.#t.nowNs();
    const out: SteerEntry[] = [];
    for (const [flow, v] of this.#t.entries()) {
      const verdict = v.verdict;
      const idleMs = Number((now > v.lastSeenNs ? now - v.lastSeenNs : 0n) / NS_PER_MS);
      out.push(
        verdict === 'hold'
          ? { flow, verdict, idleMs }
          : { flow, verdict, backend: this.#ids[v.backend] ?? `#${v.backend}`, handoffId: v.handoffId, flowId: v.flowId, idleMs },
      );
    }
    return Promise.resolve(out);
  }

  counters(): Promise<ReadonlyMap<string, SteerCounters>> {
    const m = new Map<string, SteerCounters>();
    this.#index.forEach((i, id) => m.set(id, this.#t.counters(i)));
    return Promise.resolve(m);
  }

  async close(opts?: { readonly keep?: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    clearInterval(this.#expire);
    await this.#t.close(opts?.keep ?? false);
  }

  /** `what` names the operation in an error; built only when there is one (this is the per-handoff path). */
  #apply(what: () => string, f: () => void): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`${what()}: steering is closed`));
    try {
      f();
      return Promise.resolve();
    } catch (e) {
      if (e instanceof Error) return Promise.reject(new Error(`${what()}: ${e.message}`, { cause: e }));
      return Promise.reject(e);
    }
  }
}
