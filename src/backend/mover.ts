// The agent's half of moving connections at request boundaries (docs/moves.md §2-4).
//   decide: every later request head on a handed-off connection is routed against the routing
//           snapshot the front-end pushed (ROUTES), locally: a stay costs no round trip.
//   move:   at an idle boundary, MOVE (flow, head) to the front-end that handed the connection;
//           on 'go' (the front-end now holds the flow) capture the socket with TCP_REPAIR, the held
//           request bytes prepended to the receive queue, close it silently and send MOVE_BLOB.
//           The front-end hands the blob on as a first handoff; if no other back-end takes it, it
//           hands it back here (an ordinary HANDOFF), so the connection is never reset.
//   drain:  DRAIN from the front-end (or stop()) moves every idle connection at once; the others
//           move at their next request head, since the snapshot then marks this back-end down.
// Decisions a caller relies on:
// - Nothing is read from the socket between the boundary layer's `held` list and the capture:
//   the hook stops the handle's reader before it first awaits; if the move does not happen,
//   reading resumes and the request goes to the application here.
// - A moved connection's close is not a flow end (the flow lives on elsewhere): `isMoved(key)`.
import { RoutingTable, routingSnapshotSchema, type MoveReason } from '../policy/snapshot.ts';
import type { RequestInfo } from '../policy/types.ts';
import { captureState, repairOff } from '../tcp/capture.ts';
import { ReusableReads, type OwnedFd } from '../tcp/fd.ts';
import { fdOf, peekQueued, resumeReading, stopReading } from '../tcp/node-socket.ts';
import { encodeBlob } from '../wire/blob.ts';
import type { FlowInfo, Message, MoveVerdict, StaysCounts } from '../wire/frame.ts';
import { parseRequestHead, type HeadLimits, type RequestHead } from '../wire/http-head.ts';
import { newBoundaryStats, wrapConnection, type BoundarySocket, type BoundaryStats, type MoveContext, type MoveOutcome } from './boundary.ts';
import type net from 'node:net';

/** MOVE reason codes (docs/moves.md, MOVE frame). */
const REASON: Record<MoveReason | 'drain-idle' | 'leaving', number> = {
  unavailable: 1, 'not-in-pool': 2, 'hash-elsewhere': 3, 'assigned-elsewhere': 4, unassigned: 5, 'drain-idle': 6, leaving: 7,
};

export interface MoverOptions {
  /** This back-end's id, as the front-end's configuration names it. */
  readonly self: string;
  readonly limits: HeadLimits;
  /** Sends to one authenticated front-end; false when it is gone. */
  readonly send: (peerId: number, m: Message) => boolean;
  /** How long to wait for MOVE_REPLY before the request is served here. Default 500 ms. */
  readonly replyTimeoutMs?: number;
  readonly log?: (level: 'info' | 'warn', obj: object, msg: string) => void;
  /**
   * A connection was captured and closed here (moved away). The agent tells its park gate to drop what still
   * arrives for the tuple: the gate remembers it as released since its inject, and would let a late packet into
   * a stack that has no socket for it any more, which answers RST (docs/moves.md, "Lossless moves").
   */
  readonly onMovedAway?: (flow: FlowInfo) => void;
  /**
   * Open the connections the boundary layer wraps with a reusable read buffer (boundary.ts `reads`): only when
   * the application copies what it keeps of each chunk during its 'data' event (deliver.ts takesChunksAtOnce).
   */
  readonly reusableReads?: boolean;
}

/** One handed-off connection as the move protocol names it. */
export interface ConnIdentity {
  /** The control-channel peer (front-end) that handed it. */
  readonly peerId: number;
  readonly handoffId: bigint;
  readonly flowId: number;
  readonly flow: FlowInfo;
  /** The receiver's key (`peer:handoffId`). */
  readonly key: string;
}

export interface MoverStats extends BoundaryStats {
  /** MOVE sent / answered stay / go / refuse or no answer; captures that failed. */
  asked: number;
  answeredStay: number;
  go: number;
  refused: number;
  captureFailed: number;
  decideNs: bigint;
  captureNs: bigint;
  /** Connections given to the application without the layer: their first request closed them. */
  unwrapped: number;
}

interface Pending {
  readonly resolve: (v: MoveVerdict | 'timeout') => void;
  readonly timer: NodeJS.Timeout;
}

const EMPTY = new Uint8Array(0);
/** Idle connections a drain moves at once (below the front-end's 64 moves in flight per back-end). */
const DRAIN_CONCURRENCY = 16;
/** Tries per idle connection while draining (the front-end may refuse when busy). */
const DRAIN_ATTEMPTS = 5;

export class Mover {
  readonly #o: MoverOptions;
  readonly #table: RoutingTable;
  readonly stats: MoverStats;
  readonly #pending = new Map<bigint, Pending>();
  readonly #conns = new Set<BoundarySocket>();
  readonly #moved = new Set<string>();
  #nextId = 1n;
  #draining = false;
  /** Scratch for peeking at a connection's first request head (wrap), reused: one wrap runs at a time. */
  readonly #peekBuf: Buffer;
  /** open()'s decision for a socket, until wrap() takes it: the layer with this read buffer, or none ('as-is'). */
  readonly #opened = new WeakMap<net.Socket, ReusableReads | 'as-is'>();

  constructor(o: MoverOptions) {
    this.#o = o;
    this.#table = new RoutingTable(o.self);
    this.#peekBuf = Buffer.allocUnsafe(o.limits.maxHeadBytes);
    this.stats = { ...newBoundaryStats(), asked: 0, answeredStay: 0, go: 0, refused: 0, captureFailed: 0, decideNs: 0n, captureNs: 0n, unwrapped: 0 };
  }

  get draining(): boolean {
    return this.#draining;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /**
   * Wraps a committed socket in the boundary layer whose decisions and moves this mover makes; a connection
   * whose first request is its last (see onlyRequest) is given back as it is, since there is no later request
   * to decide and the layer costs ~45 µs of CPU per request.
   */
  wrap(socket: net.Socket, id: ConnIdentity): BoundarySocket | net.Socket {
    const opened = this.#opened.get(socket);
    this.#opened.delete(socket);
    const reads = opened === 'as-is' ? undefined : opened;
    if (opened === 'as-is' || (opened === undefined && !this.#draining && this.#onlyRequest(socket))) {
      this.stats.unwrapped++;
      return socket;
    }
    let reason: MoveReason | 'leaving' | undefined;
    const b = wrapConnection(socket, {
      limits: this.#o.limits,
      stats: this.stats,
      ...(reads !== undefined && { reads }),
      decide: (head) => {
        // Draining (DRAIN, or the agent's own shutdown): every request leaves, whatever the snapshot says.
        if (this.#draining) {
          reason = 'leaving';
          return 'move';
        }
        const t = process.hrtime.bigint();
        const d = this.#table.decide(requestInfo(head));
        this.stats.decideNs += process.hrtime.bigint() - t;
        reason = d.kind === 'move' ? d.reason : undefined;
        return d.kind;
      },
      move: (ctx) => this.#move(id, ctx, ctx.head === undefined ? 'drain-idle' : (reason ?? 'unavailable')),
    });
    this.#conns.add(b);
    b.once('close', () => this.#conns.delete(b));
    if (this.#draining) queueMicrotask(() => void b.moveIdle());
    return b;
  }

  /**
   * Opens an injected connection as a socket for wrap(): one that wrap will put in the boundary layer reads into
   * a reusable buffer (with `reusableReads`); one it will give back as it is (its only request closes it) is an
   * ordinary socket, which Node's http.Server reads without any JavaScript per chunk.
   */
  open(fd: OwnedFd, opts: { readonly allowHalfOpen: boolean }): net.Socket {
    let decided: ReusableReads | 'as-is' | undefined;
    if (this.#o.reusableReads === true) {
      try {
        decided = !this.#draining && this.#closesAfter(fd.peek(this.#peekBuf)) ? 'as-is' : new ReusableReads();
      } catch {
        // Unreadable queue: an ordinary socket, and wrap() decides as it always did.
      }
    }
    const reads = decided === 'as-is' ? undefined : decided;
    const socket = fd.toSocket({ allowHalfOpen: opts.allowHalfOpen, ...(reads !== undefined && { reads }) });
    if (decided !== undefined) this.#opened.set(socket, decided);
    return socket;
  }

  /**
   * Whether the connection's first request (queued in the kernel by inject, not read yet) closes it:
   * `Connection: close`, or HTTP/1.0 without keep-alive. A client sends nothing after such a request (RFC 9112
   * §9.6) and the server closes after its response. Anything unsure (head not all there, unparsable, Node
   * already reading) keeps the layer.
   */
  #onlyRequest(socket: net.Socket): boolean {
    let bytes: Buffer | undefined;
    try {
      bytes = peekQueued(socket, this.#peekBuf);
    } catch {
      return false;
    }
    return this.#closesAfter(bytes);
  }

  /** `bytes` (the queue's first bytes, peeked) hold a whole request head that closes the connection. */
  #closesAfter(bytes: Buffer | undefined): boolean {
    if (bytes === undefined) return false;
    const r = parseRequestHead(bytes, this.#o.limits);
    return r.kind === 'ok' && !r.head.keepAlive;
  }

  /** True once for a connection that moved away: its close is no flow end. */
  takeMoved(key: string): boolean {
    return this.#moved.delete(key);
  }

  counts(): StaysCounts {
    const s = this.stats;
    return { requests: s.requests, stays: s.stays, moves: s.moves, kept: s.kept, moved: s.moved, pinned: s.pinned, decideNs: s.decideNs, captureNs: s.captureNs };
  }

  /** ROUTES, MOVE_REPLY, MOVE_DONE, DRAIN from a front-end. */
  onMessage(m: Message): void {
    switch (m.kind) {
      case 'routes': {
        let parsed: unknown;
        try {
          parsed = JSON.parse(m.json);
        } catch (e) {
          this.#o.log?.('warn', { err: (e as Error).message }, 'ROUTES is not JSON; keeping the old snapshot');
          return;
        }
        const r = routingSnapshotSchema.safeParse(parsed);
        if (!r.success) {
          this.#o.log?.('warn', { err: r.error.message.slice(0, 300) }, 'ROUTES refused; keeping the old snapshot');
          return;
        }
        try {
          this.#table.load(r.data);
        } catch (e) {
          this.#o.log?.('warn', { err: (e as Error).message }, 'ROUTES refused; keeping the old snapshot');
        }
        return;
      }
      case 'move-reply': {
        const p = this.#pending.get(m.id);
        if (p === undefined) return;
        this.#pending.delete(m.id);
        clearTimeout(p.timer);
        p.resolve(m.verdict);
        return;
      }
      case 'move-done':
        if (m.outcome === 'lost') this.#o.log?.('warn', { id: String(m.id) }, 'a moved connection found no new owner');
        return;
      case 'drain':
        if (m.draining) void this.drain();
        else this.#draining = false;
        return;
      default:
        return;
    }
  }

  /**
   * Moves every idle connection now, a few at a time (the front-end bounds moves in flight per
   * back-end), retrying those it refused; busy ones move at their next request head (decide says
   * 'move' while draining). Resolves with what moved here and what was busy or stayed.
   */
  async drain(): Promise<{ moved: number; busy: number }> {
    this.#draining = true;
    const queue = [...this.#conns];
    let moved = 0;
    let busy = 0;
    const worker = async (): Promise<void> => {
      for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
        let outcome: MoveOutcome | 'busy' = 'busy';
        for (let attempt = 0; attempt < DRAIN_ATTEMPTS && this.#draining && !b.destroyed; attempt++) {
          outcome = await b.moveIdle();
          if (outcome !== 'kept') break;
          await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
        }
        if (outcome === 'moved') moved++;
        else busy++;
      }
    };
    await Promise.all(Array.from({ length: DRAIN_CONCURRENCY }, worker));
    return { moved, busy };
  }

  /** Not draining any more (undrain). */
  undrain(): void {
    this.#draining = false;
  }

  async #move(id: ConnIdentity, ctx: MoveContext, reason: MoveReason | 'drain-idle' | 'leaving'): Promise<MoveOutcome> {
    const socket = ctx.socket;
    // Before any await: from here the kernel keeps every arriving byte for the capture.
    if (!stopReading(socket)) return 'kept';
    const keep = (): MoveOutcome => {
      resumeReading(socket);
      return 'kept';
    };
    const moveId = this.#nextId++;
    const held = concat(ctx.held);
    const head = ctx.head === undefined ? EMPTY : held.subarray(0, Math.min(held.length, 64 * 1024));
    const sent = this.#o.send(id.peerId, {
      kind: 'move', id: moveId, handoffId: id.handoffId, flowId: id.flowId, reason: REASON[reason],
      family: id.flow.family, client: id.flow.client, vip: id.flow.vip, head,
    });
    if (!sent) return keep();
    this.stats.asked++;
    const verdict = await new Promise<MoveVerdict | 'timeout'>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(moveId);
        resolve('timeout');
      }, this.#o.replyTimeoutMs ?? 500);
      this.#pending.set(moveId, { resolve, timer });
    });
    if (verdict === 'stay') this.stats.answeredStay++;
    if (verdict !== 'go') {
      if (verdict !== 'stay') this.stats.refused++;
      return keep();
    }
    this.stats.go++;
    // The front-end holds the flow now: capture, synchronously to the close.
    const t0 = process.hrtime.bigint();
    const fd = fdOf(socket);
    const fail = (code: string, why: string): MoveOutcome => {
      this.stats.captureFailed++;
      this.#o.send(id.peerId, { kind: 'move-blob', id: moveId, ok: false, code, reason: why.slice(0, 256) });
      return keep();
    };
    if (fd === undefined || socket.destroyed) return fail('BATON_ERR_MOVE_GONE', 'socket closed');
    let blob: Uint8Array;
    try {
      const state = captureState({ fd, family: id.flow.family, client: id.flow.client, vip: id.flow.vip, consumed: held });
      blob = encodeBlob({ handoffId: id.handoffId, flowId: id.flowId, state });
    } catch (e) {
      try {
        repairOff(fd);
      } catch {
        // Still in repair mode: the socket cannot answer; the front-end forwards the flow back here
        // and the client retransmits into a socket that no longer sends. Logged below.
      }
      this.#o.log?.('warn', { err: (e as Error).message, client: id.flow.client }, 'move capture failed; serving here');
      return fail('BATON_ERR_MOVE_CAPTURE', (e as Error).message);
    }
    this.#moved.add(id.key);
    socket.destroy(); // in repair mode: neither FIN nor RST
    this.#o.onMovedAway?.(id.flow);
    this.#o.send(id.peerId, { kind: 'move-blob', id: moveId, ok: true, blob });
    this.stats.captureNs += process.hrtime.bigint() - t0;
    return 'moved';
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts);
}

export function requestInfo(h: RequestHead): RequestInfo {
  return { method: h.method, target: h.target, path: h.path, host: h.host, headers: h.headerMap };
}
