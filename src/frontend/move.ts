// The front-end's half of moving connections at request boundaries (docs/moves.md §3), and the
// routing snapshot it pushes to agents (ROUTES) so that most later requests are decided there.
//
//   MOVE (A: flow, head)  -> router.pick(head) (counts the request as a first one would)
//       pick = A          -> MOVE_REPLY stay (A serves it)
//       none / busy       -> MOVE_REPLY refuse (A serves it)
//       pick = B, B guards the VIP (forwardFirst): lossless
//                         -> PARK expect to B, forward the flow to B under new ids, MOVE_REPLY go: the
//                            client's packets park at B from now on instead of being dropped here
//       pick = B, otherwise
//                         -> hold the flow, MOVE_REPLY go
//   MOVE_BLOB ok (A captured and closed silently)
//                         -> lossless: HANDOFF_FWD to B under the ids of the forward (no second forward);
//                            B injects and lets the parked packets in, in order
//                         -> else, or when B fails: hand the blob on exactly as a first handoff (new handoff id
//                            and flow id): B, then the pool's next picks, and last A itself, which re-injects it
//                            and serves the request: the client is never reset. MOVE_DONE to A.
//   MOVE_BLOB failed      -> forward the flow back to A under its old ids (A kept the socket)
//   no MOVE_BLOB in time  -> the same: A's channel or A is in trouble; its socket is still there
//                            unless it captured (then the connection is lost: logged).
// Whenever a flow steered to a guarding agent does not end there, it is steered away first (back to A, or held
// here) and then that agent is sent PARK discard: what it parked is dropped (the client retransmits to the
// owner), never left to expire into a reset for a connection another back-end serves.
import type { PickResult, RequestInfo } from '../policy/index.ts';
import type { FlowKey, Steering } from '../steer/types.ts';
import { LatencyRecorder, type LatencySummary } from '../util/histogram.ts';
import { decodeBlob, encodeBlob, type HandoffBlob } from '../wire/blob.ts';
import type { FlowInfo, Message, StaysCounts } from '../wire/frame.ts';
import { parseRequestHead, type HeadLimits } from '../wire/http-head.ts';
import type { HandoffAck, HandoffChannel } from './channel.ts';
import type { HandoffBook, HandoffLog } from './handoff.ts';

/** At most this many moves in flight per back-end; more are refused (served where they are). */
const MAX_MOVES_IN_FLIGHT = 64;
/** How long the front-end holds a flow waiting for the owner's MOVE_BLOB. */
const BLOB_TIMEOUT_MS = 2000;

export interface MovePorts {
  readonly steering: Pick<Steering, 'hold' | 'forward'>;
  readonly channel: (backend: string) => HandoffChannel | undefined;
  readonly pick: (req: RequestInfo, exclude: ReadonlySet<string>, nowMs: number) => PickResult;
  readonly book: HandoffBook;
  readonly allocate: () => { handoffId: bigint; flowId: number };
  readonly encapSource: (backend: string) => string | undefined;
  readonly limits: () => HeadLimits & { readonly maxAttempts: number };
  readonly log: HandoffLog;
  /** How long to wait for the owner's MOVE_BLOB (ms; default 2000, under the guard's 3 s for unclaimed tuples). */
  readonly blobTimeoutMs?: number;
}

/** Per back-end request accounting (issue 8 item 5). */
export interface MoveCounters {
  /** MOVE requests this back-end asked about (each a request routed here). */
  asked: number;
  /** Of those, answered stay. */
  stays: number;
  movesOut: number;
  movesIn: number;
  /** The agent's own counters (STAYS): requests after the first on its connections, decided locally. */
  agent: StaysCounts | undefined;
}

export interface MoveStats {
  readonly asked: number;
  readonly go: number;
  readonly stays: number;
  readonly refused: number;
  readonly moved: number;
  /** Of `moved`, lossless ones: the new owner guards the VIP, so the flow was forwarded to it at `go` (no hold). */
  readonly forwardFirst: number;
  /** Moves that began forwarded to a guarding new owner that did not take them (the retry path held the flow). */
  readonly forwardFirstFailed: number;
  /** Handed back to the owner: no other back-end took it. */
  readonly returned: number;
  /** The owner kept it (its capture failed, or no blob in time). */
  readonly kept: number;
  readonly lost: number;
  /** MOVE received -> new owner committed, µs. */
  readonly moveUs: LatencySummary;
  readonly phasesUs: Record<string, { p50: number; p99: number }>;
}

/** A lossless move's new owner, steered at `go`, and the ids it was steered under (reused for its HANDOFF_FWD). */
interface Early {
  readonly to: string;
  readonly ids: { readonly handoffId: bigint; readonly flowId: number };
  /** Steered at `go` (a lossless move), not only before a retry's blob. */
  readonly atGo: boolean;
}

interface InFlight {
  readonly from: string;
  readonly flow: FlowKey;
  /** The connection's tuple, as PARK names it. */
  readonly tuple: FlowInfo;
  /** Set when the flow was forwarded to the pick at `go`; cleared once that pick is given up. */
  early: Early | undefined;
  readonly req: RequestInfo;
  readonly first: string;
  readonly oldIds: { handoffId: bigint; flowId: number };
  readonly t0: bigint;
  readonly timer: NodeJS.Timeout;
}

type Phase = 'route' | 'hold' | 'capture' | 'prepare' | 'forward';

const NONE: ReadonlySet<string> = new Set();
const EMPTY_HEAD: RequestInfo = { method: 'GET', target: '/', path: '/', host: '', headers: new Map() };

export class MoveCoordinator {
  readonly #p: MovePorts;
  readonly #inFlight = new Map<string, InFlight>();
  /** Captured connections being placed (blob received, not yet committed elsewhere), per back-end they leave. */
  readonly #placing = new Map<string, number>();
  readonly #perBackend = new Map<string, MoveCounters>();
  readonly #latency = new LatencyRecorder(4096);
  readonly #phases: Record<Phase, LatencyRecorder> = {
    route: new LatencyRecorder(4096),
    hold: new LatencyRecorder(4096),
    capture: new LatencyRecorder(4096),
    prepare: new LatencyRecorder(4096),
    forward: new LatencyRecorder(4096),
  };
  #asked = 0;
  #go = 0;
  #stays = 0;
  #refused = 0;
  #moved = 0;
  #forwardFirst = 0;
  #forwardFirstFailed = 0;
  #returned = 0;
  #kept = 0;
  #lost = 0;

  constructor(p: MovePorts) {
    this.#p = p;
  }

  counters(id: string): MoveCounters {
    let c = this.#perBackend.get(id);
    if (c === undefined) {
      c = { asked: 0, stays: 0, movesOut: 0, movesIn: 0, agent: undefined };
      this.#perBackend.set(id, c);
    }
    return c;
  }

  /** Moves in flight from one back-end (a drain waits for them). */
  inFlightFrom(id: string): number {
    let n = this.#placing.get(id) ?? 0;
    for (const m of this.#inFlight.values()) if (m.from === id) n++;
    return n;
  }

  stats(): MoveStats {
    return {
      asked: this.#asked, go: this.#go, stays: this.#stays, refused: this.#refused, moved: this.#moved,
      forwardFirst: this.#forwardFirst, forwardFirstFailed: this.#forwardFirstFailed, returned: this.#returned, kept: this.#kept, lost: this.#lost, moveUs: this.#latency.summary(),
      phasesUs: Object.fromEntries(Object.entries(this.#phases).map(([k, r]) => {
        const { p50, p99 } = r.summary();
        return [k, { p50, p99 }];
      })),
    };
  }

  /** A move-protocol message from back-end `from`'s agent. */
  onMessage(from: string, m: Message): void {
    switch (m.kind) {
      case 'move':
        void this.#onMove(from, m).catch((e: unknown) => this.#p.log.error({ err: e, backend: from }, 'move crashed'));
        return;
      case 'move-blob':
        void this.#onBlob(from, m).catch((e: unknown) => this.#p.log.error({ err: e, backend: from }, 'move crashed'));
        return;
      case 'stays':
        this.counters(from).agent = m.counts;
        return;
      default:
        return;
    }
  }

  async #onMove(from: string, m: Extract<Message, { kind: 'move' }>): Promise<void> {
    const p = this.#p;
    const t0 = process.hrtime.bigint();
    const ch = p.channel(from);
    const reply = (verdict: 'stay' | 'go' | 'refuse', code = ''): void => void ch?.send?.({ kind: 'move-reply', id: m.id, verdict, code });
    this.#asked++;
    const c = this.counters(from);
    c.asked++;
    let req = EMPTY_HEAD;
    if (m.head.length > 0) {
      const r = parseRequestHead(m.head, p.limits());
      if (r.kind !== 'ok') {
        this.#refused++;
        return reply('refuse', 'BATON_ERR_MOVE_HEAD');
      }
      const h = r.head;
      req = { method: h.method, target: h.target, path: h.path, host: h.host, headers: h.headerMap };
    }
    // 6 drain-idle, 7 leaving: the owner is draining, so it is no candidate even if the front-end's view lags.
    const leaving = m.reason === 6 || m.reason === 7;
    const pick = p.pick(req, leaving ? new Set([from]) : NONE, Date.now());
    if (pick.kind === 'backend' && pick.id === from) {
      this.#stays++;
      c.stays++;
      return reply('stay');
    }
    if (pick.kind !== 'backend') {
      this.#refused++;
      return reply('refuse', 'BATON_ERR_NO_BACKEND');
    }
    if (this.inFlightFrom(from) >= MAX_MOVES_IN_FLIGHT) {
      this.#refused++;
      return reply('refuse', 'BATON_ERR_MOVE_BUSY');
    }
    const flow: FlowKey = { family: m.family, clientAddress: m.client.address, clientPort: m.client.port };
    const tuple: FlowInfo = { family: m.family, client: m.client, vip: m.vip };
    const route = process.hrtime.bigint();
    this.#phases.route.record(Number(route - t0) / 1000);
    // Lossless when the pick guards the VIP: from here on the client's packets go to it and wait there (parked),
    // so A's capture is final and nothing is dropped. Otherwise they are dropped here until the pick has the blob.
    const early = await this.#steerEarly(pick.id, flow, tuple);
    if (early === undefined) {
      try {
        await p.steering.hold(flow);
      } catch (e) {
        p.log.warn({ err: e, backend: from }, 'move: hold failed; the connection stays');
        this.#refused++;
        return reply('refuse', 'BATON_ERR_HOLD');
      }
      this.#phases.hold.record(Number(process.hrtime.bigint() - route) / 1000);
    }
    const key = `${from}:${m.id}`;
    const oldIds = { handoffId: m.handoffId, flowId: m.flowId };
    const f: InFlight = { from, flow, tuple, early, req, first: pick.id, oldIds, t0, timer: setTimeout(() => {
      if (this.#inFlight.delete(key)) {
        p.log.warn({ backend: from, client: flow }, 'move: no blob in time; forwarding back to the owner');
        this.#kept++;
        void this.#backTo(f);
      }
    }, p.blobTimeoutMs ?? BLOB_TIMEOUT_MS) };
    f.timer.unref();
    this.#inFlight.set(key, f);
    this.#go++;
    if (!(ch?.send?.({ kind: 'move-reply', id: m.id, verdict: 'go', code: '' }) ?? false)) {
      clearTimeout(f.timer);
      this.#inFlight.delete(key);
      this.#kept++;
      await this.#backTo(f);
    }
  }

  /**
   * A lossless move's first step: when the pick guards the VIP, tell it the tuple is coming (PARK expect: parked
   * as a handoff in progress, so never answered with a reset, even if it had served this tuple lately), then
   * forward the flow to it under fresh ids. Undefined when the pick does not guard, or the forward fails (the
   * caller holds instead).
   */
  async #steerEarly(to: string, flow: FlowKey, tuple: FlowInfo): Promise<Early | undefined> {
    const p = this.#p;
    const ch = p.channel(to);
    if (ch === undefined || ch.state !== 'up' || ch.forwardFirst !== true) return undefined;
    if (!(ch.send?.({ kind: 'park', action: 'expect', ...tuple }) ?? false)) return undefined;
    const ids = p.allocate();
    const t = process.hrtime.bigint();
    try {
      await p.steering.forward(flow, to, ids);
    } catch (e) {
      p.log.warn({ err: e, backend: to }, 'move: forward to the new owner failed; holding instead');
      ch.send?.({ kind: 'park', action: 'discard', ...tuple });
      return undefined;
    }
    this.#phases.forward.record(Number(process.hrtime.bigint() - t) / 1000);
    return { to, ids, atGo: true };
  }

  /** The owner keeps the connection: steer it back under its old ids, then release a lossless pick's parking. */
  async #backTo(f: InFlight): Promise<void> {
    const owner = f.from;
    await this.#p.steering.forward(f.flow, owner, f.oldIds).catch((e: unknown) => this.#p.log.error({ err: e, backend: owner }, 'move: forward back to the owner failed'));
    this.#dropEarly(f);
  }

  /**
   * A lossless move's pick will not get the connection: once the flow no longer goes there (the caller steered it
   * away first, so nothing new arrives after the discard), it drops what it parked. With its channel down the
   * message cannot go; the tuple was begun there (PARK expect), so its packets are dropped when the begin
   * expires, never answered with a reset.
   */
  #dropEarly(f: InFlight): void {
    const e = f.early;
    if (e === undefined) return;
    f.early = undefined;
    if (e.atGo) this.#forwardFirstFailed++;
    this.#discardAt(e.to, f.tuple);
  }

  #discardAt(id: string, tuple: FlowInfo): void {
    this.#p.channel(id)?.send?.({ kind: 'park', action: 'discard', ...tuple });
  }

  async #onBlob(from: string, m: Extract<Message, { kind: 'move-blob' }>): Promise<void> {
    const p = this.#p;
    const key = `${from}:${m.id}`;
    const f = this.#inFlight.get(key);
    if (f === undefined) return;
    this.#inFlight.delete(key);
    clearTimeout(f.timer);
    // Still in flight until it is placed: the owner has closed it, so its count drops before movesOut rises.
    this.#placing.set(from, (this.#placing.get(from) ?? 0) + 1);
    try {
      await this.#place(from, m, f);
    } finally {
      const n = (this.#placing.get(from) ?? 1) - 1;
      if (n > 0) this.#placing.set(from, n);
      else this.#placing.delete(from);
    }
  }

  async #place(from: string, m: Extract<Message, { kind: 'move-blob' }>, f: InFlight): Promise<void> {
    const p = this.#p;
    const owner = p.channel(from);
    if (!m.ok) {
      this.#kept++;
      p.log.warn({ backend: from, code: m.code, reason: m.reason }, 'move: the owner could not capture; it keeps the connection');
      return this.#backTo(f);
    }
    const tBlob = process.hrtime.bigint();
    this.#phases.capture.record(Number(tBlob - f.t0) / 1000);
    let decoded: HandoffBlob;
    try {
      decoded = decodeBlob(m.blob);
    } catch (e) {
      this.#lost++;
      p.log.error({ err: e, backend: from }, 'move: undecodable blob; connection lost');
      await this.#holdAfterEarly(f);
      owner?.send?.({ kind: 'move-done', id: m.id, outcome: 'lost' });
      return;
    }
    const tried = new Set<string>([from]);
    let target: string | undefined = f.first;
    const attempts = p.limits().maxAttempts;
    for (let i = 0; i < attempts && target !== undefined; i++) {
      if (await this.#placeAt(target, f, decoded)) {
        this.#done(from, target, f, m.id, 'moved');
        return;
      }
      tried.add(target);
      const next = p.pick(f.req, tried, Date.now());
      target = next.kind === 'backend' ? next.id : undefined;
    }
    // Nobody else took it: its owner does, as a fresh handoff (it re-injects and serves the request).
    if (await this.#placeAt(from, f, decoded)) {
      this.#done(from, from, f, m.id, 'returned');
      return;
    }
    this.#lost++;
    p.log.error({ backend: from, client: f.flow }, 'move: no back-end took the connection, not even its owner; lost');
    owner?.send?.({ kind: 'move-done', id: m.id, outcome: 'lost' });
  }

  #done(from: string, to: string, f: InFlight, id: bigint, outcome: 'moved' | 'returned'): void {
    if (outcome === 'moved') {
      this.#moved++;
      if (f.early?.atGo === true && f.early.to === to) this.#forwardFirst++;
      this.counters(from).movesOut++;
      this.counters(to).movesIn++;
    } else this.#returned++;
    this.#latency.record(Number(process.hrtime.bigint() - f.t0) / 1000);
    this.#p.channel(from)?.send?.({ kind: 'move-done', id, outcome });
  }

  /** The flow was forwarded to a lossless pick that will not get it: hold it here, then release that pick's parking. */
  async #holdAfterEarly(f: InFlight): Promise<void> {
    if (f.early === undefined) return;
    await this.#p.steering.hold(f.flow).catch((e: unknown) => this.#p.log.error({ err: e }, 'move: hold failed'));
    this.#dropEarly(f);
  }

  /**
   * One handoff of the captured state to `id`: HANDOFF -> ACK -> forward -> COMMIT; or, to an agent that guards
   * the VIP (forwardFirst), PARK expect -> forward -> HANDOFF_FWD -> ACK, which ends the hold before the round
   * trip. A lossless move's pick was forwarded at `go` already: HANDOFF_FWD under the ids of that forward.
   */
  async #placeAt(id: string, f: InFlight, decoded: HandoffBlob): Promise<boolean> {
    const p = this.#p;
    const ch = p.channel(id);
    const steered = f.early?.to === id;
    if (ch === undefined || ch.state !== 'up' || (steered && ch.forwardFirst !== true)) {
      await this.#holdAfterEarly(f);
      return false;
    }
    const ids = steered ? f.early!.ids : p.allocate();
    const frontend = p.encapSource(id);
    const blob = encodeBlob({ handoffId: ids.handoffId, flowId: ids.flowId, state: decoded.state, ...(frontend !== undefined && { encap: { frontend } }) });
    const early = ch.forwardFirst === true;
    if (early && !steered) {
      // Parked as a handoff in progress from the first packet on (see #steerEarly), then steered there.
      if (!(ch.send?.({ kind: 'park', action: 'expect', ...f.tuple }) ?? false)) return false;
      if (!(await this.#forward(ch, id, f, ids))) {
        this.#discardAt(id, f.tuple);
        return false;
      }
      f.early = { to: id, ids, atGo: false };
    }
    const t = process.hrtime.bigint();
    p.book.handoffSent(id);
    let ack: HandoffAck;
    try {
      ack = await ch.sendHandoff(ids.handoffId, blob, early);
      if (!ack.ok) p.log.warn({ backend: id, code: ack.code, reason: ack.reason }, 'move: handoff refused');
    } catch (e) {
      ack = { ok: false, code: 'BATON_ERR_CHANNEL', reason: e instanceof Error ? e.message : String(e) };
    } finally {
      p.book.handoffAnswered(id);
    }
    this.#phases.prepare.record(Number(process.hrtime.bigint() - t) / 1000);
    if (early) {
      if (ack.ok) {
        p.book.committed(id);
        return true;
      }
      p.book.failed(id);
      // Back to held here for the next target, then the agent drops what it parked: a refusal did that already,
      // a timeout or a lost channel may not have (the discard goes only while the channel is up).
      await this.#holdAfterEarly(f);
      return false;
    }
    if (!ack.ok) {
      p.book.failed(id);
      return false;
    }
    if (!(await this.#forward(ch, id, f, ids))) return false;
    if (!ch.commit(ids.handoffId)) {
      p.book.failed(id);
      return false;
    }
    p.book.committed(id);
    return true;
  }

  async #forward(ch: HandoffChannel, id: string, f: InFlight, ids: { handoffId: bigint; flowId: number }): Promise<boolean> {
    const t = process.hrtime.bigint();
    try {
      await this.#p.steering.forward(f.flow, id, ids);
    } catch (e) {
      ch.abort(ids.handoffId);
      this.#p.book.failed(id);
      this.#p.log.error({ err: e, backend: id }, 'move: forward failed');
      return false;
    }
    this.#phases.forward.record(Number(process.hrtime.bigint() - t) / 1000);
    return true;
  }
}
