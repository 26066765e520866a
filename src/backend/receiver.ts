// The back-end half of a handoff, independent of the channel it arrives on:
//   prepare(blob) decodes and injects the connection into this kernel and keeps it aside;
//   commit(id)    (the front-end now forwards the client's packets here) delivers it;
//   abort(id)     or no commit in time: drops it silently (repair mode, no FIN, no RST).
// Delivering only after commit matters: a socket that answered earlier would send before the
// client's ACKs can reach it, and stall on a retransmission timeout.
// Forwarded handoffs (HANDOFF_FWD) skip the second phase: the front-end steered the client here before it sent
// the blob, so prepare() delivers at once. Packets that came first were held by the guard (`park`) and go in,
// in order, right after the inject; an ABORT that follows (the front-end gave up waiting) still drops the
// connection for a while after its delivery.
// Every injected connection gets liveness bounds (TCP_USER_TIMEOUT, keepalive): one whose client
// is gone ends with ETIMEDOUT and is reported as a flow end like any other close.
import type net from 'node:net';
import type { OwnedFd } from '../tcp/fd.ts';
import { injectState } from '../tcp/inject.ts';
import { DEFAULT_LIVENESS, setLiveness, type Liveness } from '../tcp/liveness.ts';
import { destroySilently } from '../tcp/node-socket.ts';
import { decodeBlob, type HandoffBlob } from '../wire/blob.ts';
import type { DecapGate } from './decap.ts';
import { BatonError } from '../wire/errors.ts';
import type { Endpoint, TcpState } from '../wire/tcp-state.ts';

export type HandoffReply =
  | { readonly ok: true; readonly flow: FlowInfo }
  | { readonly ok: false; readonly code: string; readonly reason: string };

export interface FlowInfo {
  readonly family: 4 | 6;
  readonly client: Endpoint;
  readonly vip: Endpoint;
}

export interface ReceiverOptions {
  /** Called with each committed connection, as a net.Socket; `meta` names it (id as prepared, the blob's flow id). */
  readonly deliver: (socket: net.Socket, flow: FlowInfo, meta: { readonly id: string; readonly flowId: number }) => void;
  /** A delivered connection ended (its socket closed); `id` is the one it was prepared under. */
  readonly onFlowEnd?: (flow: FlowInfo, id: string) => void;
  /** The number of delivered, open connections changed. */
  readonly onActive?: (active: number) => void;
  /** How long an injected connection waits for commit before it is dropped. */
  readonly commitTimeoutMs?: number;
  /** Largest blob accepted (bytes). */
  readonly maxBlobBytes?: number;
  readonly freebind?: boolean;
  /** Connections delivered and still open, above which new handoffs are refused. */
  readonly maxConnections?: number;
  /** Bounds on how long an injected connection outlives a vanished client (default DEFAULT_LIVENESS). */
  readonly liveness?: Liveness;
  /** Where flow-id encapsulation mappings go; without it, blobs that need one are refused. */
  readonly decap?: DecapGate;
  /** Holds a forwarded connection's packets that arrive before (and during) its inject (backend/park.ts). */
  readonly park?: EarlyPacketGate;
  /** Opens a committed connection's descriptor as a socket (mover.ts open); default OwnedFd.toSocket. */
  readonly open?: (fd: OwnedFd, opts: { readonly allowHalfOpen: boolean }) => net.Socket;
}

/** An encapsulated flow's front-end (its packets' source) and flow id (their ports). */
export interface EncapFlow {
  readonly frontend: string;
  readonly flowId: number;
}

/** What the receiver needs of the guard that parks early packets (backend/park.ts ParkGate). */
export interface EarlyPacketGate {
  /**
   * Keep parking this tuple's packets even once its socket exists (it is in repair mode). `encap`: packets parked
   * still encapsulated (they came before the decap mapping) belong to this tuple.
   */
  begin(flow: FlowInfo, encap?: EncapFlow): void;
  /** Stop parking; let the parked packets through in arrival order. Returns how many. */
  release(flow: FlowInfo): number;
  /** Stop parking; drop what was parked, under the tuple and under `encap` (the client retransmits to the next owner). */
  discard(flow: FlowInfo, encap?: EncapFlow): void;
  /** The delivered connection closed: the tuple's later packets are no longer let in as released. */
  ended?(flow: FlowInfo): void;
}

/** A forwarded connection delivered lately, abortable by a late ABORT. */
interface Young {
  readonly socket: net.Socket;
  readonly flow: FlowInfo;
}

/** How long a forwarded connection stays abortable after its delivery (two generations of this). */
const YOUNG_MS = 5000;

interface Prepared {
  readonly fd: OwnedFd;
  readonly state: TcpState;
  readonly flowId: number;
  readonly timer: NodeJS.Timeout;
  /** Removes the connection's decap mapping (no-op when it has none). */
  readonly unmap: () => void;
}

const NOTHING = (): void => undefined;

/**
 * A forwarded client may already have packets parked here: a refusal drops them, and those still on their way
 * (never a reset: the front-end steers the client to another back-end).
 */
function refuseParked(park: EarlyPacketGate | undefined, flow: FlowInfo, reply: HandoffReply, encap?: EncapFlow): HandoffReply {
  park?.discard(flow, encap);
  return reply;
}
/** How long a closed connection's decap mapping is kept, for its last FIN/ACK packets. */
const DECAP_LINGER_MS = 5000;

/** A delivered connection, found by its tuple (OWNER_QUERY). */
interface Delivered {
  readonly id: string;
  /** Removers of decap mappings added for front-ends that recovered the flow, run when the connection ends. */
  readonly unmaps: (() => void)[];
}

const tupleKey = (f: FlowInfo): string => `${f.client.address}|${f.client.port}|${f.vip.address}|${f.vip.port}`;

export class HandoffReceiver {
  readonly #o: ReceiverOptions;
  readonly #prepared = new Map<string, Prepared>();
  readonly #delivered = new Map<string, Delivered>();
  /** Forwarded connections delivered lately, by id, for a late ABORT: two generations, swapped every YOUNG_MS. */
  #young = new Map<string, Young>();
  #older = new Map<string, Young>();
  #youngTimer: NodeJS.Timeout | undefined;
  #active = 0;

  constructor(o: ReceiverOptions) {
    this.#o = o;
  }

  get active(): number {
    return this.#active;
  }

  /**
   * `id` must be unique among pending handoffs: qualify a front-end's handoff id by its peer. `forwarded`: the
   * client is already steered here; the connection is delivered before this returns (no commit follows).
   */
  prepare(id: string, blob: Uint8Array, opts: { readonly forwarded?: boolean } = {}): HandoffReply {
    if (this.#prepared.has(id)) return { ok: false, code: 'BATON_ERR_DUPLICATE', reason: `handoff ${id} already prepared` };
    let decoded: HandoffBlob;
    try {
      decoded = decodeBlob(blob, { maxBytes: this.#o.maxBlobBytes ?? 64 << 20 });
    } catch (e) {
      return refusal(e, 'BATON_ERR_BLOB');
    }
    const { state } = decoded;
    const flow: FlowInfo = { family: state.family, client: state.client, vip: state.vip };
    const park = opts.forwarded === true ? this.#o.park : undefined;
    // Packets of an encapsulated flow that came before its mapping were parked under (front-end, flow id).
    const encap: EncapFlow | undefined = decoded.encap && { frontend: decoded.encap.frontend, flowId: decoded.flowId };
    if (this.#o.maxConnections !== undefined && this.#active + this.#prepared.size >= this.#o.maxConnections) {
      return refuseParked(park, flow, { ok: false, code: 'BATON_ERR_FULL', reason: `at capacity (${this.#o.maxConnections} connections)` }, encap);
    }
    // The decap mapping goes in before the socket exists, so the first encapsulated packet finds it.
    let unmap = NOTHING;
    if (decoded.encap) {
      if (!this.#o.decap) return refuseParked(park, flow, { ok: false, code: 'BATON_ERR_NO_DATAPLANE', reason: 'blob needs flow-id decapsulation; this agent has no dataplane' }, encap);
      try {
        unmap = this.#o.decap.admit({ frontend: decoded.encap.frontend, flowId: decoded.flowId, family: state.family, client: state.client, vip: state.vip });
      } catch (e) {
        return refuseParked(park, flow, refusal(e, 'BATON_ERR_DECAP'), encap);
      }
    }
    park?.begin(flow, encap);
    let fd: OwnedFd;
    try {
      fd = injectState(state, { freebind: this.#o.freebind ?? false });
      // Here rather than at commit: a failure can still be a refusal (the front-end tries elsewhere).
      try {
        setLiveness(fd.fd, this.#o.liveness ?? DEFAULT_LIVENESS);
      } catch (e) {
        fd.dropSilently();
        throw e;
      }
    } catch (e) {
      unmap();
      return refuseParked(park, flow, refusal(e, 'BATON_ERR_INJECT'), encap);
    }
    if (opts.forwarded === true) {
      park?.release(flow);
      const socket = this.#deliver(id, { fd, state, flowId: decoded.flowId, unmap });
      if (socket === undefined) return { ok: false, code: 'BATON_ERR_INJECT', reason: 'injected socket could not be opened' };
      this.#remember(id, { socket, flow });
      return { ok: true, flow };
    }
    const timer = setTimeout(() => this.abort(id), this.#o.commitTimeoutMs ?? 5000);
    timer.unref();
    this.#prepared.set(id, { fd, state, flowId: decoded.flowId, timer, unmap });
    return { ok: true, flow };
  }

  #remember(id: string, y: Young): void {
    const { socket } = y;
    this.#young.set(id, y);
    // A closed socket needs no ABORT; forgetting it at once keeps the generations from holding thousands of them.
    socket.once('close', () => {
      if (this.#young.get(id) === y) this.#young.delete(id);
      else if (this.#older.get(id) === y) this.#older.delete(id);
    });
    if (this.#youngTimer !== undefined) return;
    this.#youngTimer = setInterval(() => {
      this.#older = this.#young;
      this.#young = new Map();
      if (this.#older.size === 0) {
        clearInterval(this.#youngTimer);
        this.#youngTimer = undefined;
      }
    }, YOUNG_MS);
    this.#youngTimer.unref();
  }

  /** Returns false when the id is unknown (already aborted or timed out). */
  commit(id: string): boolean {
    const p = this.#prepared.get(id);
    if (!p) return false;
    this.#prepared.delete(id);
    clearTimeout(p.timer);
    return this.#deliver(id, p) !== undefined;
  }

  /** Gives an injected connection to the application; undefined (and the connection dropped) if it cannot. */
  #deliver(id: string, p: Pick<Prepared, 'fd' | 'state' | 'flowId' | 'unmap'>): net.Socket | undefined {
    const flow: FlowInfo = { family: p.state.family, client: p.state.client, vip: p.state.vip };
    // Half-open allowed, as http.Server's own sockets: a half-closed client's request is followed by
    // end-of-input, and the answer must still be writable after it.
    let socket: net.Socket;
    try {
      socket = this.#o.open !== undefined ? this.#o.open(p.fd, { allowHalfOpen: true }) : p.fd.toSocket({ allowHalfOpen: true });
    } catch {
      p.fd.dropSilently();
      p.unmap();
      return undefined;
    }
    // A liveness timeout (ETIMEDOUT) must end in 'close' even if the application set no error
    // listener, instead of crashing the agent.
    socket.on('error', () => undefined);
    this.#active++;
    this.#o.onActive?.(this.#active);
    const tk = tupleKey(flow);
    const rec: Delivered = { id, unmaps: [] };
    this.#delivered.set(tk, rec);
    socket.once('close', () => {
      // The kernel's connection outlives the descriptor (FIN_WAIT, LAST_ACK, or a send queue a slow client still
      // drains): its last packets still arrive encapsulated, so the mapping stays a little longer, and so does the
      // answer to OWNER_QUERY (a front-end whose entry already expired recovers the flow instead of dropping it).
      setTimeout(() => {
        if (this.#delivered.get(tk) === rec) this.#delivered.delete(tk);
        p.unmap();
        for (const u of rec.unmaps) u();
      }, DECAP_LINGER_MS).unref();
      this.#active--;
      this.#o.park?.ended?.(flow);
      this.#o.onActive?.(this.#active);
      this.#o.onFlowEnd?.(flow, id);
    });
    this.#o.deliver(socket, flow, { id, flowId: p.flowId });
    return socket;
  }

  /**
   * The id of the delivered, open connection of `flow`, if this agent holds it (a front-end that never saw the
   * flow asks: issue 11). With `recover` (flow id > 0), first maps the asking front-end's (address, flow id) for
   * decapsulation, removed with the connection's own mapping. Undefined when not held, or when the mapping fails.
   */
  ownerOf(flow: FlowInfo, recover?: { readonly frontend: string; readonly flowId: number }): string | undefined {
    const rec = this.#delivered.get(tupleKey(flow));
    if (rec === undefined) return undefined;
    if (recover !== undefined && recover.flowId > 0) {
      if (!this.#o.decap) return undefined;
      try {
        rec.unmaps.push(this.#o.decap.admit({ frontend: recover.frontend, flowId: recover.flowId, family: flow.family, client: flow.client, vip: flow.vip }));
      } catch {
        return undefined;
      }
    }
    return rec.id;
  }

  abort(id: string): void {
    const p = this.#prepared.get(id);
    if (!p) return this.#abortDelivered(id);
    this.#prepared.delete(id);
    clearTimeout(p.timer);
    p.fd.dropSilently();
    p.unmap();
  }

  /** A forwarded connection the front-end gave up on after all (its ACK came too late): close it silently. */
  #abortDelivered(id: string): void {
    const y = this.#young.get(id) ?? this.#older.get(id);
    if (y === undefined) return;
    this.#young.delete(id);
    this.#older.delete(id);
    destroySilently(y.socket);
    // Its client is steered elsewhere now: what still arrives here is dropped, not left to expire into a reset.
    this.#o.park?.discard(y.flow);
  }

  /** Drops every prepared connection whose id starts with `prefix` (the channel that sent them is gone). */
  abortAll(prefix = ''): void {
    for (const id of [...this.#prepared.keys()]) if (id.startsWith(prefix)) this.abort(id);
  }
}

function refusal(e: unknown, fallback: string): HandoffReply {
  const code = e instanceof BatonError ? e.code : fallback;
  const reason = e instanceof Error ? e.message : String(e);
  return { ok: false, code, reason: reason.slice(0, 256) };
}
