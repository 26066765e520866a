// The front-end end of the control channel: one persistent, authenticated TCP connection to a
// back-end agent, reused for every handoff. Dials, authenticates (and checks that the agent
// knows the secret too), multiplexes many handoffs by id, reconnects with backoff forever
// until close(), and detects a dead peer with PING.
//
// Two phases: sendHandoff resolves { ok: true } once the agent has prepared the connection;
// the caller then switches steering and calls commit(id), or abort(id) if it cannot. The agent
// drops a prepared connection that is aborted, whose channel drops before COMMIT, or (its own
// timer) that is never committed. A handoff that times out here is aborted automatically.
//
// sendHandoff never throws for expected failures: it resolves a HandoffAck. After
// BATON_ERR_CHANNEL_LOST or BATON_ERR_HANDOFF_TIMEOUT the agent will not deliver the connection
// (it aborts it), so the caller may hand the blob elsewhere; other failure codes mean nothing
// was sent.

import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_HEADER_BYTES,
  FrameError,
  MAX_NAME_BYTES,
  NONCE_BYTES,
  PRE_AUTH_MAX_FRAME_BYTES,
  encodeMessage,
  encodeMessageParts,
  type FlowInfo,
  type Message,
  type VipAddress,
} from '../wire/frame.ts';
import { PROTO_VERSION, Secret, newNonce, proofMatches, type SecretInput } from './auth.ts';
import { backoffDelay, resolveBackoff, type BackoffOptions } from './backoff.ts';
import { publishAuthFailed, publishDown, publishUp } from './diagnostics.ts';
import { CONTROL_ERR, ControlError, invalidArgument } from './errors.ts';
import { Link } from './link.ts';

/** An OWNER_QUERY's answer; not found also when the channel is down, lost or slow (the caller asks elsewhere). */
export type OwnerReply = { readonly found: false } | { readonly found: true; readonly handoffId: bigint };

export type HandoffAck = { readonly ok: true } | { readonly ok: false; readonly code: string; readonly reason: string };

export type ClientState = 'connecting' | 'authenticating' | 'up' | 'down';

export interface ControlClientOptions {
  /** Shared secret, >= 16 bytes. Never logged. */
  readonly secret: SecretInput;
  /** The agent's control address. */
  readonly address: { readonly host: string; readonly port: number };
  /** Our name, sent in HELLO (<= 64 bytes); the agent routes FLOW_END by it. */
  readonly name: string;
  /** Time from dialling to AUTH_OK, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Time to wait for a handoff's ACK, ms. Default 2000. */
  readonly handoffTimeoutMs?: number;
  /** PING interval while up, ms; the peer is dead after 3 intervals without a byte. Default 5000. */
  readonly heartbeatMs?: number;
  /** Reconnect delays. Defaults: 100 ms doubling to 5 s, 20 % jitter. */
  readonly backoff?: Partial<BackoffOptions>;
  /** Randomness for jitter, in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** Largest HANDOFF frame sent (length field); must not exceed the agent's limit. Default 72 MiB. */
  readonly maxFrameBytes?: number;
  /** Bytes allowed to queue behind a slow socket before handoffs get CHANNEL_BUSY. Default 256 MiB. */
  readonly maxQueuedBytes?: number;
  /**
   * The VIPs this front-end accepts clients on, sent (VIPS) each time the channel comes up; the agent's GUARD
   * answer tells whether it takes forwarded handoffs (`forwardFirst`). Without it, the channel never offers them.
   */
  readonly vips?: () => readonly VipAddress[];
}

export interface ControlClientEvents {
  /** Authenticated; handoffs can be sent. */
  up: [];
  /** Left 'up' (only after an 'up'); reconnection is already scheduled unless closed. */
  down: [reason: string];
  /**
   * The agent's load report: its active connections, and how many of this session's COMMIT
   * frames it had received when it counted them (mod 2^32; the count restarts with each 'up').
   */
  load: [active: number, capacity: number | undefined, commits: number];
  /** The connection placed by handoff `id` ended at the agent; remove its steering. */
  flowEnd: [info: FlowInfo, id: bigint];
  /** A connection attempt failed authentication (e.g. the agent could not prove the secret). */
  authFailed: [reason: string];
  /** A move-protocol message from the agent (MOVE, MOVE_BLOB, STAYS; docs/moves.md). */
  message: [message: Message];
}

/** Largest frame an agent sends us after AUTH_OK: a MOVE_BLOB carries a connection's queues, as a HANDOFF does. */
const CLIENT_RX_MAX_FRAME_BYTES = DEFAULT_MAX_FRAME_BYTES;
const HANDOFF_OVERHEAD = 1 + 8; // type + id

interface Pending {
  readonly resolve: (ack: HandoffAck) => void;
  readonly timer: NodeJS.Timeout;
}

type Phase = 'challenge' | 'auth-ok' | 'up';

export class ControlClient extends EventEmitter<ControlClientEvents> {
  readonly name: string;
  readonly #secret: Secret;
  readonly #host: string;
  readonly #port: number;
  readonly #remote: string;
  readonly #connectTimeoutMs: number;
  readonly #handoffTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #backoff: BackoffOptions;
  readonly #random: () => number;
  readonly #maxFrameBytes: number;
  readonly #maxQueuedBytes: number;
  readonly #vips: (() => readonly VipAddress[]) | undefined;
  /** The agent's answer to our VIPS on this connection (reset when it drops). */
  #guard: { readonly early: boolean; readonly lossless: boolean } = { early: false, lossless: false };

  #state: ClientState = 'down';
  #started = false;
  #closed = false;
  #link: Link | undefined;
  #phase: Phase = 'challenge';
  #nonceC: Uint8Array = new Uint8Array(0);
  #attempt = 0;
  #connectTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #lastRx = 0;
  #pingToken = 0n;
  #authFailure: string | undefined;
  readonly #pending = new Map<bigint, Pending>();
  readonly #queries = new Map<number, { readonly resolve: (r: OwnerReply) => void; readonly timer: NodeJS.Timeout }>();
  #nextQuery = 1;
  #closedPromise: Promise<void> = Promise.resolve();

  constructor(o: ControlClientOptions) {
    super();
    this.#secret = new Secret(o.secret);
    if (!validName(o.name)) throw invalidArgument(`name must be well-formed text of at most ${MAX_NAME_BYTES} bytes`);
    const { host, port } = o.address;
    if (typeof host !== 'string' || host === '') throw invalidArgument('address.host must be a non-empty string');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument('address.port must be 1..65535');
    this.name = o.name;
    this.#host = host;
    this.#port = port;
    this.#remote = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.#connectTimeoutMs = positive(o.connectTimeoutMs ?? 5000, 'connectTimeoutMs');
    this.#handoffTimeoutMs = positive(o.handoffTimeoutMs ?? 2000, 'handoffTimeoutMs');
    this.#heartbeatMs = positive(o.heartbeatMs ?? 5000, 'heartbeatMs');
    const b = resolveBackoff(o.backoff);
    if (typeof b === 'string') throw invalidArgument(b);
    this.#backoff = b;
    this.#random = o.random ?? Math.random;
    this.#maxFrameBytes = positive(o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    this.#maxQueuedBytes = positive(o.maxQueuedBytes ?? 256 * 1024 * 1024, 'maxQueuedBytes');
    this.#vips = o.vips;
  }

  /**
   * The agent guards our VIPs against packets that arrive before their socket exists: a handoff may steer the
   * client there first and send the blob after (sendHandoff(..., true)). `lossless`: those packets are kept.
   */
  get forwardFirst(): boolean {
    return this.#state === 'up' && this.#guard.early;
  }

  get lossless(): boolean {
    return this.#state === 'up' && this.#guard.lossless;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Handoffs sent and not yet acknowledged, timed out or lost. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Starts dialling; reconnects forever until close(). Idempotent. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#dial();
  }

  /** Closes for good. Pending handoffs resolve BATON_ERR_CHANNEL_LOST. Resolves once the socket is closed. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#state = 'down';
      clearTimeout(this.#reconnectTimer);
      this.#link?.close('client closed');
    }
    return this.#closedPromise;
  }

  /**
   * Hands one connection's blob to the agent. Many may be in flight; ids must be unique among
   * those in flight (u64). Resolves with the agent's answer or a local failure code.
   */
  sendHandoff(id: bigint, blob: Uint8Array, forwarded = false): Promise<HandoffAck> {
    if (typeof id !== 'bigint' || id < 0n || id > 0xffff_ffff_ffff_ffffn) {
      return Promise.reject(invalidArgument('handoff id must be a u64 bigint'));
    }
    if (!(blob instanceof Uint8Array)) return Promise.reject(invalidArgument('blob must be a Uint8Array'));
    const link = this.#link;
    if (this.#state !== 'up' || link === undefined || link.closed) {
      return Promise.resolve(fail(CONTROL_ERR.CHANNEL_DOWN, `channel to ${this.#remote} is ${this.#state}`));
    }
    if (this.#pending.has(id)) return Promise.resolve(fail(CONTROL_ERR.DUPLICATE_ID, `handoff ${id} already in flight`));
    if (HANDOFF_OVERHEAD + blob.length > this.#maxFrameBytes) {
      return Promise.resolve(fail(CONTROL_ERR.HANDOFF_TOO_LARGE, `blob of ${blob.length} bytes exceeds the frame limit`));
    }
    if (link.queuedBytes + FRAME_HEADER_BYTES + 8 + blob.length > this.#maxQueuedBytes) {
      return Promise.resolve(fail(CONTROL_ERR.CHANNEL_BUSY, `${link.queuedBytes} bytes already queued`));
    }
    let frame: Uint8Array[];
    try {
      frame = encodeMessageParts({ kind: forwarded ? 'handoff-fwd' : 'handoff', id, blob });
    } catch (e) {
      return Promise.reject(e instanceof FrameError ? new ControlError(CONTROL_ERR.INVALID_ARGUMENT, e.message, { cause: e }) : e);
    }
    return new Promise<HandoffAck>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        link.send({ kind: 'abort', id }); // a late ACK is ignored, so the agent must not keep it
        resolve(fail(CONTROL_ERR.HANDOFF_TIMEOUT, `no ack within ${this.#handoffTimeoutMs} ms`));
      }, this.#handoffTimeoutMs);
      this.#pending.set(id, { resolve, timer });
      link.sendEncoded(frame);
    });
  }

  /**
   * Phase two: the client's packets now go to the agent; it delivers the connection. Fire and
   * forget; false if the channel is down (the agent then drops the connection on its own).
   */
  commit(id: bigint): boolean {
    return this.#sendId('commit', id);
  }

  /** The handoff acked ok will not be used (e.g. steering failed): the agent drops it silently. */
  abort(id: bigint): boolean {
    return this.#sendId('abort', id);
  }

  /** Sends a move-protocol message (ROUTES, MOVE_REPLY, MOVE_DONE, DRAIN); false if the channel is not up. */
  send(m: Message): boolean {
    const link = this.#link;
    if (this.#state !== 'up' || link === undefined) return false;
    return link.send(m);
  }

  /**
   * Asks the agent whether it holds the connection of `flow` (issue 11: a packet of a flow this front-end never
   * saw). With flowId > 0 the agent, if it owns the flow, maps (frontend, flowId) for decapsulation first. Never
   * throws; resolves not-found when the channel is down or no answer comes within timeoutMs.
   */
  queryOwner(q: { readonly flow: FlowInfo; readonly flowId: number; readonly frontend: string }, timeoutMs = 1000): Promise<OwnerReply> {
    const link = this.#link;
    if (this.#state !== 'up' || link === undefined || link.closed) return Promise.resolve({ found: false });
    const id = this.#nextQuery;
    this.#nextQuery = id >= 0xffff_ffff ? 1 : id + 1;
    return new Promise<OwnerReply>((resolve) => {
      const timer = setTimeout(() => {
        this.#queries.delete(id);
        resolve({ found: false });
      }, timeoutMs);
      this.#queries.set(id, { resolve, timer });
      try {
        link.send({ kind: 'owner-query', id, flowId: q.flowId, frontend: q.frontend, family: q.flow.family, client: q.flow.client, vip: q.flow.vip });
      } catch {
        clearTimeout(timer);
        this.#queries.delete(id);
        resolve({ found: false });
      }
    });
  }

  #sendId(kind: 'commit' | 'abort', id: bigint): boolean {
    if (typeof id !== 'bigint' || id < 0n || id > 0xffff_ffff_ffff_ffffn) throw invalidArgument('handoff id must be a u64 bigint');
    const link = this.#link;
    if (this.#state !== 'up' || link === undefined) return false;
    return link.send({ kind, id });
  }

  // --- connection cycle -------------------------------------------------------------------------

  #dial(): void {
    this.#state = 'connecting';
    this.#phase = 'challenge';
    this.#authFailure = undefined;
    const socket: Socket = connect({ host: this.#host, port: this.#port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 10_000 });
    let closed!: () => void;
    this.#closedPromise = new Promise<void>((resolve) => (closed = resolve));
    const link = new Link(socket, PRE_AUTH_MAX_FRAME_BYTES, {
      onMessage: (m) => this.#onMessage(link, m),
      onClose: (reason, frameError) => {
        this.#onClose(link, reason, frameError !== undefined);
        closed();
      },
    });
    this.#link = link;
    this.#connectTimer = setTimeout(() => this.#failAuth(link, 'timeout'), this.#connectTimeoutMs);
    socket.once('connect', () => {
      if (link.closed) return;
      this.#state = 'authenticating';
      this.#nonceC = newNonce();
      link.send({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: this.#nonceC, name: this.name });
    });
  }

  #onMessage(link: Link, m: Message): void {
    this.#lastRx = performance.now();
    switch (this.#phase) {
      case 'challenge': {
        if (m.kind !== 'challenge') return this.#failAuth(link, 'unexpected-frame');
        if (!proofMatches(this.#secret.serverProof(this.#nonceC, m.nonce), m.proof)) return this.#failAuth(link, 'bad-proof');
        this.#phase = 'auth-ok';
        link.send({ kind: 'auth', proof: this.#secret.clientProof(m.nonce, this.#nonceC) });
        return;
      }
      case 'auth-ok':
        if (m.kind !== 'auth-ok') return this.#failAuth(link, 'unexpected-frame');
        this.#up(link);
        return;
      case 'up':
        switch (m.kind) {
          case 'ack': {
            const p = this.#pending.get(m.id);
            if (p === undefined) return; // late (timed out) or unknown: ignore
            this.#pending.delete(m.id);
            clearTimeout(p.timer);
            p.resolve(m.ok ? { ok: true } : { ok: false, code: m.code, reason: m.reason });
            return;
          }
          case 'load':
            this.emit('load', m.active, m.capacity, m.commits);
            return;
          case 'guard':
            this.#guard = { early: m.early, lossless: m.lossless };
            return;
          case 'flow-end':
            this.emit('flowEnd', { family: m.family, client: m.client, vip: m.vip }, m.id);
            return;
          case 'ping':
            link.send({ kind: 'pong', token: m.token });
            return;
          case 'pong':
            return;
          case 'move':
          case 'move-blob':
          case 'stays':
            this.emit('message', m);
            return;
          case 'owner-reply': {
            const q = this.#queries.get(m.id);
            if (q === undefined) return; // late: already answered not-found
            this.#queries.delete(m.id);
            clearTimeout(q.timer);
            q.resolve(m.found ? { found: true, handoffId: m.handoffId } : { found: false });
            return;
          }
          default:
            link.close(`protocol: unexpected ${m.kind} frame`);
        }
    }
  }

  #up(link: Link): void {
    clearTimeout(this.#connectTimer);
    this.#phase = 'up';
    this.#state = 'up';
    this.#attempt = 0;
    link.maxFrameBytes = CLIENT_RX_MAX_FRAME_BYTES;
    this.#heartbeatTimer = setInterval(() => {
      if (performance.now() - this.#lastRx >= 3 * this.#heartbeatMs) return link.close('heartbeat timeout');
      this.#pingToken = (this.#pingToken + 1n) & 0xffff_ffff_ffff_ffffn;
      link.send({ kind: 'ping', token: this.#pingToken });
    }, this.#heartbeatMs);
    this.#guard = { early: false, lossless: false };
    const vips = this.#vips?.() ?? [];
    if (vips.length > 0) link.send({ kind: 'vips', vips });
    publishUp({ side: 'client', name: this.name, peer: this.#remote, remote: this.#remote });
    this.emit('up');
  }

  #failAuth(link: Link, reason: string): void {
    if (this.#phase === 'up') return;
    this.#authFailure = reason;
    link.close(`auth: ${reason}`);
  }

  #onClose(link: Link, reason: string, frameError: boolean): void {
    if (link !== this.#link) return;
    clearTimeout(this.#connectTimer);
    clearInterval(this.#heartbeatTimer);
    const wasUp = this.#phase === 'up';
    this.#state = 'down';
    this.#guard = { early: false, lossless: false };
    this.#link = undefined;
    const lost = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of lost) {
      clearTimeout(p.timer);
      p.resolve(fail(CONTROL_ERR.CHANNEL_LOST, `channel to ${this.#remote} lost: ${reason}`));
    }
    for (const q of this.#queries.values()) {
      clearTimeout(q.timer);
      q.resolve({ found: false });
    }
    this.#queries.clear();
    if (wasUp) {
      publishDown({ side: 'client', name: this.name, peer: this.#remote, remote: this.#remote, reason });
      this.emit('down', reason);
    } else if (this.#authFailure !== undefined || frameError) {
      const why = frameError ? 'frame-error' : (this.#authFailure ?? 'closed');
      publishAuthFailed({ side: 'client', name: this.name, remote: this.#remote, reason: why });
      this.emit('authFailed', why);
    }
    if (this.#closed) return;
    const delay = backoffDelay(this.#attempt++, this.#backoff, this.#random);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.#closed) this.#dial();
    }, delay);
  }
}

function validName(name: unknown): name is string {
  if (typeof name !== 'string') return false;
  try {
    encodeMessage({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: new Uint8Array(NONCE_BYTES), name });
    return true;
  } catch {
    return false;
  }
}

function fail(code: string, reason: string): HandoffAck {
  return { ok: false, code, reason };
}

function positive(n: number, field: string): number {
  if (!(Number.isFinite(n) && n > 0)) throw invalidArgument(`${field} must be > 0`);
  return n;
}
