// Steering through nftables (netdev ingress on the front-end's client-facing interface).
// The model (which flow is where) lives here; the kernel sets are its projection.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NftNetlink, type ElementOp } from './nft-netlink.ts';
import { NftSession } from './nft-session.ts';
import {
  addBackendScript, addElement, closingSet, deleteElement, holdSet, liveSet, parseSetElements, tableScript, type NftConfig,
} from './nft-script.ts';
import {
  flowKeyString, type FlowIds, type FlowKey, type SteerBackend, type SteerCounters, type SteerEntry, type Steering,
} from './types.ts';

const run = promisify(execFile);

export interface NftSteeringOptions {
  readonly table: string;
  readonly device: string;
  readonly vip: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly backends: readonly SteerBackend[];
  /** Seconds a held flow stays held if the front-end never decides (safety net). */
  readonly holdTimeoutS?: number;
  /** Seconds without a client packet after which a forwarded flow is forgotten. */
  readonly idleTimeoutS?: number;
  /** How long a released flow keeps being forwarded, for the last FIN/ACK packets. */
  readonly lingerMs?: number;
  /**
   * How elements are added and deleted: 'netlink' (default) talks NETLINK_NETFILTER directly,
   * tens of microseconds per operation; 'nft' feeds a long-lived `nft -i` (milliseconds).
   */
  readonly transport?: 'netlink' | 'nft';
}

/** One element change, before a transport turns it into a netlink message or an nft line. */
interface Op {
  readonly kind: 'add' | 'delete';
  readonly set: string;
  readonly flow: FlowKey;
  readonly timeoutMs?: number;
  /** A delete that is only a precaution: the element is usually absent. */
  readonly cleanup?: boolean;
}

interface Transport {
  /** Applies the ops as one request; resolves once the kernel has. */
  apply(ops: readonly Op[], what: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Netlink: one kernel transaction per request, applied synchronously. A delete of an element
 * that is already gone (timed out, never added) is not an error and does not undo the add
 * next to it.
 */
class NetlinkTransport implements Transport {
  readonly #nl: NftNetlink;
  readonly #table: string;

  constructor(table: string) {
    this.#table = table;
    this.#nl = NftNetlink.open();
  }

  apply(ops: readonly Op[], what: string): Promise<void> {
    const els = ops.map(
      (o): ElementOp => ({
        kind: o.kind,
        table: this.#table,
        set: o.set,
        family: o.flow.family,
        address: o.flow.clientAddress,
        port: o.flow.clientPort,
        timeoutMs: o.timeoutMs,
        missingOk: o.kind === 'delete',
      }),
    );
    try {
      this.#nl.apply(els);
      return Promise.resolve();
    } catch (e) {
      if (e instanceof Error) e.message = `${what}: ${e.message}`;
      return Promise.reject(e);
    }
  }

  close(): Promise<void> {
    this.#nl.close();
    return Promise.resolve();
  }
}

/** `nft -i` (fallback): deleting a missing element fails the request. */
class NftTransport implements Transport {
  readonly #session: NftSession;
  readonly #table: string;

  constructor(table: string) {
    this.#table = table;
    this.#session = new NftSession(table);
  }

  apply(ops: readonly Op[], what: string): Promise<void> {
    const t = this.#table;
    // nft 1.0.6 has no "destroy element": a precautionary delete of a missing element would fail
    // the request, so this fallback transport skips them.
    const lines = ops
      .filter((o) => !o.cleanup)
      .map((o) => (o.kind === 'add' ? addElement(t, o.set, o.flow, o.timeoutMs) : deleteElement(t, o.set, o.flow)));
    return this.#session.run(lines, what);
  }

  close(): Promise<void> {
    return this.#session.close();
  }
}

export class NftSteering implements Steering {
  readonly #cfg: NftConfig;
  readonly #index = new Map<string, number>();
  readonly #modes = new Map<string, string>();
  /** Flows forwarded now: tuple -> back-end and the handoff that placed it. */
  readonly #owner = new Map<string, { readonly backend: string; readonly handoffId: bigint; readonly flow: FlowKey }>();
  readonly #tx: Transport;
  #closed = false;

  private constructor(cfg: NftConfig, backends: readonly SteerBackend[], transport: 'netlink' | 'nft') {
    this.#cfg = cfg;
    backends.forEach((b, i) => {
      this.#index.set(b.id, i);
      this.#modes.set(b.id, b.mode ?? 'l2');
    });
    this.#tx = transport === 'nft' ? new NftTransport(cfg.table) : new NetlinkTransport(cfg.table);
  }

  static async create(o: NftSteeringOptions): Promise<NftSteering> {
    const cfg: NftConfig = {
      table: o.table,
      device: o.device,
      family: o.family,
      vip: o.vip,
      port: o.port,
      backends: o.backends.map((b, index) => ({ index, address: b.address })),
      holdTimeoutS: o.holdTimeoutS ?? 30,
      idleTimeoutS: o.idleTimeoutS ?? 300,
      lingerMs: o.lingerMs ?? 2000,
    };
    await applyScript(tableScript(cfg));
    try {
      return new NftSteering(cfg, o.backends, o.transport ?? 'netlink');
    } catch (e) {
      await run('nft', ['delete', 'table', 'netdev', cfg.table]).catch(() => undefined);
      throw e;
    }
  }

  /**
   * A back-end added by a configuration reload: its sets and rules join the running table; flows
   * already steered are untouched. Indexes are never reused, so a removed back-end's lingering
   * flows keep their own sets.
   */
  async addBackend(b: SteerBackend): Promise<void> {
    if (this.#index.has(b.id)) throw new TypeError(`steering: back-end ${b.id} is already known`);
    if ((b.mode ?? 'l2') === 'encap') throw new TypeError(`steering: nftables cannot encapsulate (back-end ${b.id}); use steering.kind "bpf"`);
    const index = Math.max(-1, ...this.#index.values()) + 1;
    await applyScript(addBackendScript(this.#cfg, { index, address: b.address }));
    this.#index.set(b.id, index);
    this.#modes.set(b.id, b.mode ?? 'l2');
  }

  #backendIndex(id: string): number {
    const i = this.#index.get(id);
    if (i === undefined) throw new TypeError(`steering: unknown back-end ${id}`);
    return i;
  }

  /** Holds the flow; a forward in force is taken back (one entry per tuple, as in the eBPF table). */
  async hold(flow: FlowKey): Promise<void> {
    const k = flowKeyString(flow);
    const owner = this.#owner.get(k);
    const ops: Op[] = [{ kind: 'add', set: holdSet(flow.family), flow }];
    if (owner !== undefined) ops.push({ kind: 'delete', set: liveSet(flow.family, this.#backendIndex(owner.backend)), flow });
    await this.#tx.apply(ops, `hold ${k}`);
    this.#owner.delete(k);
  }

  async forward(flow: FlowKey, backendId: string, ids: FlowIds): Promise<void> {
    const mode = this.#modes.get(backendId);
    if (mode === 'encap') throw new TypeError(`steering: nftables cannot encapsulate (back-end ${backendId}); use steering.kind "bpf"`);
    const b = this.#backendIndex(backendId);
    // Live first, then unhold: a packet in between is dropped (the client retransmits), never
    // delivered to the front-end's stack, which no longer has the socket. (Over netlink both
    // are one transaction, so there is no in between.)
    // A lingering entry of an earlier connection on this tuple (its end reported after the new SYN
    // cleared the sets) would shadow the new one: closing rules come first in the chain.
    const stale = [...this.#index.values()].map((i): Op => ({ kind: 'delete', set: closingSet(flow.family, i), flow, cleanup: true }));
    await this.#tx.apply(
      [
        { kind: 'add', set: liveSet(flow.family, b), flow },
        { kind: 'delete', set: holdSet(flow.family), flow },
        ...stale,
      ],
      `forward ${flowKeyString(flow)} to ${backendId}`,
    );
    this.#owner.set(flowKeyString(flow), { backend: backendId, handoffId: ids.handoffId, flow });
  }

  unhold(flow: FlowKey): Promise<void> {
    return this.#tx.apply([{ kind: 'delete', set: holdSet(flow.family), flow }], `unhold ${flowKeyString(flow)}`);
  }

  async release(flow: FlowKey, handoffId: bigint): Promise<void> {
    const k = flowKeyString(flow);
    const owner = this.#owner.get(k);
    // A release of an older connection on this tuple must not touch the newer one.
    if (owner === undefined || owner.handoffId !== handoffId) return;
    this.#owner.delete(k);
    const b = this.#backendIndex(owner.backend);
    await this.#tx.apply(
      [
        { kind: 'add', set: closingSet(flow.family, b), flow, timeoutMs: this.#cfg.lingerMs },
        { kind: 'delete', set: liveSet(flow.family, b), flow },
      ],
      `release ${k}`,
    );
    // A packet of this flow being steered on another CPU at the moment of the delete re-adds the
    // element through the rule's `update` (it adds when absent). Delete it once more after the
    // linger, unless the tuple has been handed off again since.
    setTimeout(() => {
      if (this.#owner.has(k) || this.#closed) return;
      this.#tx
        .apply([{ kind: 'delete', set: liveSet(flow.family, b), flow, cleanup: true }], `release ${k} (again)`)
        .catch(() => undefined);
    }, this.#cfg.lingerMs).unref();
  }

  async releaseBackend(backendId: string): Promise<number> {
    const mine = [...this.#owner.values()].filter((o) => o.backend === backendId);
    for (const o of mine) await this.release(o.flow, o.handoffId);
    return mine.length;
  }

  counters(): Promise<ReadonlyMap<string, SteerCounters>> {
    return Promise.resolve(new Map());
  }

  async list(): Promise<SteerEntry[]> {
    const { stdout } = await run('nft', ['-j', 'list', 'table', 'netdev', this.#cfg.table], { maxBuffer: 64 << 20 });
    const sets = parseSetElements(stdout);
    const out: SteerEntry[] = [];
    for (const f of [4, 6] as const) {
      for (const flow of sets.get(holdSet(f)) ?? []) out.push({ flow, verdict: 'hold' });
      for (const [id, i] of this.#index) {
        for (const flow of sets.get(liveSet(f, i)) ?? []) out.push({ flow, verdict: 'forward', backend: id });
        for (const flow of sets.get(closingSet(f, i)) ?? []) out.push({ flow, verdict: 'closing', backend: id });
      }
    }
    return out;
  }

  /** Flows the model believes are forwarded (the kernel may have idled some out). */
  get forwarded(): number {
    return this.#owner.size;
  }

  /** nftables state is never kept: a new process recreates the table (use bpf steering to survive restarts). */
  async close(_opts?: { readonly keep?: boolean }): Promise<void> {
    this.#closed = true;
    await this.#tx.close();
    await run('nft', ['delete', 'table', 'netdev', this.#cfg.table]).catch(() => undefined);
  }
}

async function applyScript(script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = execFile('nft', ['-f', '-'], (err, _out, stderr) =>
      err ? reject(new Error(`nft -f: ${stderr.trim() || err.message}`)) : resolve(),
    );
    p.stdin?.end(script);
  });
}
