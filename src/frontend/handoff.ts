// The handoff state machine (DESIGN.md, "The handoff, step by step"), apart from sockets and
// kernels: it reaches them only through ports, so its failure table is tested without root.
//
//   pick -> hold -> capture -> prepare (HANDOFF, await ACK) -> forward -> COMMIT -> close silently
//
// or, when the back-end guards our VIPs against early packets (its channel's `forwardFirst`):
//
//   pick -> forward -> capture -> HANDOFF_FWD (the back-end delivers at once) -> await ACK -> close silently
//
// The failure table below holds for both; a forwarded handoff that is refused is held here and goes on as the
// first kind, to the next back-end.
//
//   no back-end at all              -> 503 (nothing held)
//   hold fails                      -> 503
//   capture fails, client still on  -> give back: repair off, unhold, 503
//   client gone before the capture  -> unhold, free the descriptor; no answer, no error log,
//   (socket closed, or reset found)    no counter but `vanished`
//   ACK refused / timeout / channel lost before the ACK
//                                   -> next back-end with the same blob (up to maxAttempts);
//                                      none left -> give back, 503
//   forward fails                   -> ABORT to that back-end, give back, 503
//   COMMIT cannot be written (channel lost after the ACK: the agent drops its copy)
//                                   -> release the forward, give back, 503 (best effort)
// Before forward the client is never lost: it stays here in repair mode and is answered.
import { channel } from 'node:diagnostics_channel';
import type { PickResult, RequestInfo } from '../policy/index.ts';
import { FLOW_ID_MAX, type FlowKey, type Steering } from '../steer/types.ts';
import { LatencyRecorder, type LatencySummary } from '../util/histogram.ts';
import type { Endpoint } from '../wire/tcp-state.ts';
import type { HandoffAck, HandoffChannel } from './channel.ts';
import { FRONTEND_ERR } from './errors.ts';
import { CONTROL_ERR } from '../control/errors.ts';

const chHandoff = channel('baton:handoff:done');
const chFailed = channel('baton:handoff:failed');

/** Time, injected: wall milliseconds for policies, a monotonic nanosecond count for latencies. */
export interface Clock {
  now(): number;
  hrtime(): bigint;
}

export const systemClock: Clock = { now: Date.now, hrtime: () => process.hrtime.bigint() };

export interface CaptureInput {
  readonly fd: number;
  readonly flow: FlowKey;
  readonly vip: Endpoint;
  readonly consumed: Uint8Array;
  readonly handoffId: bigint;
  readonly flowId: number;
  /** The front-end address to name in the blob when the target back-end is reached by flow-id encapsulation. */
  readonly encap?: { readonly frontend: string };
}

/** The encoded blob, or why not; `gone` when the client already reset or closed the connection. */
export type CaptureResult =
  | {
      readonly ok: true;
      readonly blob: Uint8Array;
      /** The same state encoded for another target's forwarding (a retry to a back-end of another mode). */
      readonly reencode?: (encap: { readonly frontend: string } | undefined) => Uint8Array;
    }
  | { readonly ok: false; readonly gone: boolean; readonly error: Error };

/** The accepted client connection as the machine sees it; everything read at accept time. */
export interface ClientConnection {
  readonly fd: number;
  readonly flow: FlowKey;
  readonly vip: Endpoint;
  /** Bytes already read from the socket (the request head and more). */
  readonly consumed: Uint8Array;
  /** hrtime (ns) when the request head was complete. */
  readonly headAt: bigint;
  /**
   * False once the socket was closed under us (Node saw the client's reset): its descriptor
   * number may already belong to another socket, so it must not be captured.
   */
  isOpen(): boolean;
  /** Leave repair mode so the socket can answer here. Throws on failure. */
  repairOff(): void;
  /** Handed off: close while still in repair mode, sending neither FIN nor RST. */
  closeSilently(): void;
  /** Answer here with this status and close. */
  answer(status: number): void;
  /** The client is gone: free the descriptor, send nothing. */
  discard(): void;
}

/** Per back-end accounting (frontend/backends.ts BackendTable). */
export interface HandoffBook {
  handoffSent(id: string): void;
  handoffAnswered(id: string): void;
  committed(id: string): void;
  failed(id: string): void;
}

export interface HandoffLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HandoffPorts {
  readonly steering: Pick<Steering, 'hold' | 'unhold' | 'forward' | 'release'>;
  readonly channel: (backend: string) => HandoffChannel | undefined;
  readonly capture: (input: CaptureInput) => CaptureResult;
  readonly pick: (req: RequestInfo, exclude: ReadonlySet<string>, nowMs: number) => PickResult;
  readonly book: HandoffBook;
  readonly clock: Clock;
  readonly log: HandoffLog;
  /** Back-ends tried for one connection before answering 503 (read per connection: reloadable). */
  readonly maxAttempts: () => number;
  /** The first handoff id (default 1). */
  readonly firstHandoffId?: bigint;
  /**
   * Flow ids still used by connections this process did not hand off (adopted from an earlier process's
   * steering state): never given to a new connection, or its back-end's decap mapping would replace theirs.
   */
  readonly flowIdsInUse?: ReadonlySet<number>;
  /** The front-end's address for back-ends forwarded by flow-id encapsulation; undefined for `l2` ones. */
  readonly encapSource?: (backendId: string) => string | undefined;
}

export type HandoffOutcome =
  | { readonly kind: 'handed-off'; readonly backend: string; readonly handoffId: bigint }
  | { readonly kind: 'answered'; readonly status: number; readonly why: string }
  | { readonly kind: 'gone' };

export interface HandoffStats {
  readonly handedOff: number;
  readonly retries: number;
  /** Clients that went away between the request head and the capture. */
  readonly vanished: number;
  /** Head complete -> handed off (the back-end's answer came; for classic handoffs, COMMIT written). */
  readonly handoffUs: LatencySummary;
  /** Forwarded handoffs: head complete -> the client steered to the back-end and its blob written. */
  readonly placedUs: LatencySummary;
  readonly unconfirmed: number;
  /** Per phase: p50/p99 over the last 4096, and log2 buckets (upper bound µs -> count) over all. */
  readonly phasesUs: Record<string, { p50: number; p99: number; buckets?: Record<string, number> }>;
}

const NONE: ReadonlySet<string> = new Set();

/** A captured connection on its way to a back-end. */
interface Captured {
  readonly cap: Extract<CaptureResult, { ok: true }>;
  readonly handoffId: bigint;
  readonly flowId: number;
  readonly encap: { readonly frontend: string } | undefined;
}

type Phase = 'hold' | 'capture' | 'prepare' | 'forward' | 'confirm';

export class HandoffMachine {
  readonly #p: HandoffPorts;
  readonly #latency = new LatencyRecorder();
  /**
   * Where handoff time goes, per phase (us): hold, capture, prepare (send -> ack), forward; forwarded handoffs
   * record forward, capture and confirm (blob sent -> the back-end's answer, off the client's path).
   */
  readonly #phases: Record<Phase, LatencyRecorder> = {
    hold: new LatencyRecorder(4096),
    capture: new LatencyRecorder(4096),
    prepare: new LatencyRecorder(4096),
    forward: new LatencyRecorder(4096),
    confirm: new LatencyRecorder(4096),
  };
  #nextId = 1n;
  #nextFlowId = 1;
  #handedOffCount = 0;
  /** Forwarded handoffs whose channel dropped before the answer (handed to the next back-end). */
  #unconfirmed = 0;
  /** Forwarded handoffs: request head complete -> client steered to the back-end and blob written. */
  readonly #placed = new LatencyRecorder(4096);
  #retries = 0;
  #vanished = 0;

  constructor(ports: HandoffPorts) {
    this.#p = ports;
    this.#nextId = ports.firstHandoffId ?? 1n;
  }

  #allocateFlowId(): number {
    const inUse = this.#p.flowIdsInUse;
    for (;;) {
      const id = this.#nextFlowId;
      this.#nextFlowId = id >= FLOW_ID_MAX ? 1 : id + 1;
      if (inUse === undefined || !inUse.has(id)) return id;
    }
  }

  /** A fresh handoff id and flow id from this machine's sequences (a moved connection's next placement). */
  allocate(): { handoffId: bigint; flowId: number } {
    return { handoffId: this.#nextId++, flowId: this.#allocateFlowId() };
  }

  stats(): HandoffStats {
    return {
      handedOff: this.#handedOffCount,
      unconfirmed: this.#unconfirmed,
      placedUs: this.#placed.summary(),
      retries: this.#retries,
      vanished: this.#vanished,
      handoffUs: this.#latency.summary(),
      phasesUs: Object.fromEntries(
        Object.entries(this.#phases).map(([k, r]) => {
          const { p50, p99, buckets } = r.summary();
          return [k, { p50, p99, buckets }];
        }),
      ),
    };
  }

  /** Runs one connection's handoff to its end. Never rejects for expected failures. */
  async run(conn: ClientConnection, req: RequestInfo): Promise<HandoffOutcome> {
    const p = this.#p;
    const { flow } = conn;
    const first = p.pick(req, NONE, p.clock.now());
    if (first.kind === 'none') return this.#answer(conn, 503, 'no back-end');
    if (!conn.isOpen()) return this.#vanish(conn, false);

    const firstChannel = p.channel(first.id);
    if (firstChannel?.forwardFirst === true) return this.#forwardFirst(conn, req, first.id, firstChannel);
    let t = p.clock.hrtime();
    try {
      await p.steering.hold(flow);
    } catch (e) {
      p.log.error({ err: e, client: flow }, 'hold failed');
      return this.#answer(conn, 503, 'hold failed');
    }
    this.#record('hold', t);

    const handoffId = this.#nextId++;
    const flowId = this.#allocateFlowId();
    t = p.clock.hrtime();
    // Synchronous from this check to the end of the capture: the descriptor cannot change hands.
    if (!conn.isOpen()) return this.#vanish(conn, true);
    const encap = this.#encapOf(first.id);
    const cap = p.capture({ fd: conn.fd, flow, vip: conn.vip, consumed: conn.consumed, handoffId, flowId, encap });
    if (!cap.ok) {
      if (cap.gone) return this.#vanish(conn, true);
      p.log.warn({ err: cap.error, client: flow }, 'capture failed; answering locally');
      return this.#giveBack(conn, 'capture failed');
    }
    this.#record('capture', t);
    return this.#place(conn, req, { cap, handoffId, flowId, encap }, first, new Set<string>());
  }

  /**
   * Forward first (docs/handoff.md): steer the client to the back-end, capture, send the blob, and only then
   * wait. Nothing more reaches this socket once the flow is forwarded, so the capture is final; packets that
   * reach the back-end before its socket exists are held there (its guard), not answered with a reset. The
   * back-end delivers as soon as it has injected: no COMMIT, and the client waits for no round trip.
   *   refused, timed out (ABORT sent), or channel lost after the blob (`unconfirmed`)
   *                                        -> hold here, then the next back-ends as usual
   * A lost channel is most often a dead agent, whose sockets died with it (the client saw them reset, if it had
   * one): the next back-end is safe. An agent alive behind a broken channel may have delivered, and its answer
   * would then race the next back-end's (the same window as a COMMIT lost after its ACK, classic).
   */
  async #forwardFirst(conn: ClientConnection, req: RequestInfo, id: string, ch: HandoffChannel): Promise<HandoffOutcome> {
    const p = this.#p;
    const { flow } = conn;
    const handoffId = this.#nextId++;
    const flowId = this.#allocateFlowId();
    let t = p.clock.hrtime();
    try {
      await p.steering.forward(flow, id, { handoffId, flowId });
    } catch (e) {
      p.log.error({ err: e, backend: id, client: flow }, 'forward failed; answering locally');
      await this.#retract(flow);
      return this.#giveBack(conn, 'forward failed');
    }
    this.#record('forward', t);
    t = p.clock.hrtime();
    const encap = this.#encapOf(id);
    const cap = conn.isOpen()
      ? p.capture({ fd: conn.fd, flow, vip: conn.vip, consumed: conn.consumed, handoffId, flowId, encap })
      : ({ ok: false, gone: true, error: new Error('closed') } as const);
    if (!cap.ok) {
      await this.#retract(flow);
      if (cap.gone) return this.#vanish(conn, true);
      p.log.warn({ err: cap.error, client: flow }, 'capture failed; answering locally');
      return this.#giveBack(conn, 'capture failed');
    }
    this.#record('capture', t);

    t = p.clock.hrtime();
    // #prepare runs synchronously up to its first await: the blob is written when it returns.
    const answer = this.#prepare(id, ch, handoffId, cap.blob, true);
    this.#placed.record(Number(p.clock.hrtime() - conn.headAt) / 1000);
    const ack = await answer;
    this.#record('confirm', t);
    if (ack.ok) return this.#handedOff(conn, id, handoffId);
    if (ack.code === CONTROL_ERR.CHANNEL_LOST) this.#unconfirmed++;
    this.#refused(id, ack);
    try {
      await p.steering.hold(flow);
    } catch (e) {
      p.log.error({ err: e, client: flow }, 'hold failed after a refusal');
      return this.#giveBack(conn, 'hold failed');
    }
    // A new handoff id: a late end report of the refused attempt (e.g. an ABORT after a timeout dropped a
    // connection it had delivered) must not release the next placement. The blob's own copy is not read.
    const tried = new Set<string>([id]);
    const retry = { cap, handoffId: this.#nextId++, flowId, encap };
    return this.#place(conn, req, retry, p.pick(req, tried, p.clock.now()), tried);
  }

  /** The held, captured connection goes to the first back-end that takes it (prepare, forward, commit). */
  async #place(conn: ClientConnection, req: RequestInfo, c: Captured, first: PickResult, tried: Set<string>): Promise<HandoffOutcome> {
    const p = this.#p;
    const { cap, handoffId, flowId } = c;
    let { encap } = c;
    let blob = cap.blob;
    let pick = first;
    const attempts = p.maxAttempts() - tried.size;
    for (let attempt = 0; attempt < attempts && pick.kind === 'backend'; attempt++) {
      const id: string = pick.id;
      const ch = p.channel(id);
      const t = p.clock.hrtime();
      const want = this.#encapOf(id);
      if (want?.frontend !== encap?.frontend && cap.reencode) {
        blob = cap.reencode(want);
        encap = want;
      }
      const ack = ch === undefined ? noChannel(id) : await this.#prepare(id, ch, handoffId, blob);
      if (ack.ok) {
        this.#record('prepare', t);
        return this.#complete(conn, id, ch!, handoffId, flowId);
      }
      this.#refused(id, ack);
      tried.add(id);
      pick = p.pick(req, tried, p.clock.now());
    }
    return this.#giveBack(conn, 'no back-end took it');
  }

  #refused(id: string, ack: Extract<HandoffAck, { ok: false }>): void {
    this.#p.book.failed(id);
    this.#retries++;
    this.#p.log.warn({ backend: id, code: ack.code, reason: ack.reason }, 'handoff refused');
    if (chFailed.hasSubscribers) chFailed.publish({ backend: id, code: ack.code });
  }

  #encapOf(id: string): { frontend: string } | undefined {
    const frontend = this.#p.encapSource?.(id);
    return frontend === undefined ? undefined : { frontend };
  }

  /** Takes a forward back to a hold (packets stop going to the back-end), so unhold can end it. */
  async #retract(flow: FlowKey): Promise<void> {
    await this.#p.steering.hold(flow).catch((e: unknown) => this.#p.log.error({ err: e, client: flow }, 'hold failed'));
  }

  async #prepare(id: string, ch: HandoffChannel, handoffId: bigint, blob: Uint8Array, forwarded = false): Promise<HandoffAck> {
    this.#p.book.handoffSent(id);
    try {
      return await ch.sendHandoff(handoffId, blob, forwarded);
    } catch (e) {
      return { ok: false, code: FRONTEND_ERR.CHANNEL, reason: e instanceof Error ? e.message : String(e) };
    } finally {
      this.#p.book.handoffAnswered(id);
    }
  }

  /** The back-end holds the connection aside: steer the client to it, then let it deliver. */
  async #complete(conn: ClientConnection, id: string, ch: HandoffChannel, handoffId: bigint, flowId: number): Promise<HandoffOutcome> {
    const p = this.#p;
    const { flow } = conn;
    const t = p.clock.hrtime();
    try {
      await p.steering.forward(flow, id, { handoffId, flowId });
    } catch (e) {
      ch.abort(handoffId);
      p.book.failed(id);
      p.log.error({ err: e, backend: id, client: flow }, 'forward failed; answering locally');
      return this.#giveBack(conn, 'forward failed');
    }
    this.#record('forward', t);
    if (!ch.commit(handoffId)) {
      // The channel dropped after the ACK: the agent has dropped its copy, and the client's
      // packets already go there. Take the steering back and answer here; best effort: packets
      // that reach the back-end meanwhile may draw a reset. The window is the forward's await.
      p.book.failed(id);
      p.log.warn({ backend: id, client: flow }, 'channel lost before commit; answering locally');
      await p.steering.release(flow, handoffId).catch((e: unknown) => p.log.error({ err: e }, 'release failed'));
      return this.#giveBack(conn, 'channel lost before commit');
    }
    return this.#handedOff(conn, id, handoffId);
  }

  #handedOff(conn: ClientConnection, id: string, handoffId: bigint): HandoffOutcome {
    const p = this.#p;
    // Still in repair mode: closing sends neither FIN nor RST.
    conn.closeSilently();
    p.book.committed(id);
    this.#handedOffCount++;
    const us = Number(p.clock.hrtime() - conn.headAt) / 1000;
    this.#latency.record(us);
    if (chHandoff.hasSubscribers) chHandoff.publish({ backend: id, us, flow: conn.flow });
    return { kind: 'handed-off', backend: id, handoffId };
  }

  #answer(conn: ClientConnection, status: number, why: string): HandoffOutcome {
    conn.answer(status);
    return { kind: 'answered', status, why };
  }

  /** No back-end took the connection: it stays here and is answered 503. */
  async #giveBack(conn: ClientConnection, why: string): Promise<HandoffOutcome> {
    const p = this.#p;
    try {
      conn.repairOff();
    } catch (e) {
      p.log.error({ err: e, client: conn.flow }, 'repair off failed');
    }
    await p.steering.unhold(conn.flow).catch((e: unknown) => p.log.error({ err: e, client: conn.flow }, 'unhold failed'));
    return this.#answer(conn, 503, why);
  }

  /** The client reset or closed before its state was taken: nothing to answer, nothing to keep. */
  async #vanish(conn: ClientConnection, held: boolean): Promise<HandoffOutcome> {
    this.#vanished++;
    if (held) await this.#p.steering.unhold(conn.flow).catch((e: unknown) => this.#p.log.error({ err: e, client: conn.flow }, 'unhold failed'));
    conn.discard();
    return { kind: 'gone' };
  }

  #record(phase: Phase, since: bigint): void {
    this.#phases[phase].record(Number(this.#p.clock.hrtime() - since) / 1000);
  }
}

function noChannel(id: string): HandoffAck {
  return { ok: false, code: FRONTEND_ERR.NO_CHANNEL, reason: `no control channel for ${id}` };
}
