// The agent end of the control channel (a TCP server; front-ends dial in). It authenticates
// each front-end, runs every HANDOFF it receives through onHandoff concurrently and answers
// each with exactly one ACK, and pushes LOAD and FLOW_END reports to authenticated peers.
// Nothing from a peer reaches onHandoff before that peer has proved the secret.
//
// Load reports converge (issue 10.3): each LOAD carries, besides the active count, how many
// COMMIT frames this peer's channel has delivered (`commits`, counted before `active` is read).
// The front-end adds to the report only its commits the report does not include yet, so its
// estimate equals our count as soon as one report follows the last commit or close. A LOAD is
// sent whenever either number changed since the last one to that peer, never skipped because
// `active` alone is unchanged (that skip is what let the front-end's count drift).
//
// Two phases: a handoff that onHandoff accepted ({ ok: true }) is "prepared"; it then ends in
// exactly one onCommit (the front-end now forwards the client's packets here) or one onAbort
// (the front-end said ABORT, gave up waiting, or its channel dropped before COMMIT).
//
// Forward first (HANDOFF_FWD, docs/handoff.md): the front-end already steers the client here, so onHandoff
// delivers at once and no COMMIT follows; it counts as committed (LOAD). An ABORT for such a handoff (the
// front-end gave up waiting for the ACK) still reaches onAbort, which must then drop the delivered connection.
// A front-end learns whether this agent takes them from GUARD, the answer to its VIPS.

import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_MAX_FRAME_BYTES,
  MAX_CODE_BYTES,
  MAX_NAME_BYTES,
  MAX_REASON_BYTES,
  PRE_AUTH_MAX_FRAME_BYTES,
  flowKey,
  truncateUtf8,
  type FlowInfo,
  type Message,
  type VipAddress,
} from '../wire/frame.ts';
import { PROTO_VERSION, Secret, newNonce, proofMatches, type SecretInput } from './auth.ts';
import { publishAuthFailed, publishDown, publishUp } from './diagnostics.ts';
import { CONTROL_ERR, invalidArgument } from './errors.ts';
import { Link } from './link.ts';

/** What onHandoff answers. `flow`, when given on success, lets flowEnded() find the sender. */
export type HandoffResult =
  | { readonly ok: true; readonly flow?: FlowInfo }
  | { readonly ok: false; readonly code: string; readonly reason: string };

export interface PeerInfo {
  /** Unique per connection within this server. */
  readonly id: number;
  /** The name the front-end gave in HELLO. */
  readonly name: string;
  /** "host:port". */
  readonly remote: string;
}

/** An OWNER_QUERY: does this agent hold the connection of `flow`? With flowId > 0, the asking front-end (at
 * address `frontend`) will encapsulate its packets with that flow id: the owner maps it before answering. */
export interface OwnerQuery {
  readonly flow: FlowInfo;
  readonly flowId: number;
  readonly frontend: string;
}

/** The answer: found, and the handoff (this peer's or another's) that placed the connection. */
export type OwnerAnswer = { readonly found: false } | { readonly found: true; readonly handoffId: bigint };

export interface HandoffContext {
  readonly peer: PeerInfo;
  /** Aborted if the peer's connection ends before the ACK can be sent (it will think the handoff failed). */
  readonly signal: AbortSignal;
}

export interface ControlServerOptions {
  /** Shared secret, >= 16 bytes. Never logged. */
  readonly secret: SecretInput;
  /** Our name, for diagnostics. */
  readonly name: string;
  /** Restores one handed-off connection. Throwing is answered as BATON_ERR_INJECT with the message. */
  readonly onHandoff: (id: bigint, blob: Uint8Array, ctx: HandoffContext, forwarded: boolean) => Promise<HandoffResult> | HandoffResult;
  /** A prepared handoff is committed: deliver it. Called at most once per prepared id. */
  readonly onCommit?: (id: bigint, ctx: HandoffContext) => void;
  /** A prepared handoff will never be committed: drop it silently. Called at most once per prepared id. */
  readonly onAbort?: (id: bigint, ctx: HandoffContext) => void;
  /**
   * Answers OWNER_QUERY (a front-end that received packets of a flow it never saw). Without it every query is
   * answered not-found. A found flow's FLOW_END then also goes to the asking front-end.
   */
  readonly onOwnerQuery?: (q: OwnerQuery, ctx: HandoffContext) => OwnerAnswer;
  /**
   * A front-end named the VIPs it accepts clients on: guard them against packets that arrive before their
   * socket is injected. The answer says whether HANDOFF_FWD is taken (and lossless); without this callback, no.
   */
  readonly onVips?: (vips: readonly VipAddress[], ctx: HandoffContext) => { readonly early: boolean; readonly lossless: boolean };
  /** Time from TCP accept to a verified AUTH, ms. Default 5000. */
  readonly authTimeoutMs?: number;
  /** Largest frame accepted after authentication (length field). Default 72 MiB. */
  readonly maxFrameBytes?: number;
  /** Close an authenticated peer that sent nothing (not even PING) for this long, ms. 0 disables. Default 30000. */
  readonly idleTimeoutMs?: number;
  /** Minimum interval between LOAD frames to one peer, ms. Default 100. */
  readonly loadIntervalMs?: number;
  /** Capacity reported with every LOAD, if set. u32. */
  readonly capacity?: number;
  /** Most flows remembered for routing FLOW_END (oldest forgotten first). Default 1 000 000. */
  readonly maxTrackedFlows?: number;
}

export interface ControlServerEvents {
  /** A front-end authenticated. */
  peerUp: [peer: PeerInfo];
  /** An authenticated front-end's connection ended. */
  peerDown: [peer: PeerInfo, reason: string];
  /** A connection was closed before authenticating. */
  authFailed: [remote: string, reason: string];
  /** The listening socket failed after listen() resolved (e.g. EMFILE on accept). */
  serverError: [error: Error];
  /** A move-protocol message from an authenticated front-end (ROUTES, MOVE_REPLY, MOVE_DONE, DRAIN, PARK; docs/moves.md). */
  peerMessage: [peer: PeerInfo, message: Message];
  /** onCommit or onAbort threw; the error is not sent to the peer. */
  callbackError: [error: unknown, id: bigint, callback: 'onCommit' | 'onAbort' | 'onOwnerQuery' | 'onVips'];
}

type PeerState = 'hello' | 'auth' | 'up';

/** Where a handoff id of one peer is: onHandoff running, running but already aborted, or acked ok. */
type HandoffPhase = 'running' | 'abort-requested' | 'prepared';

interface Peer {
  readonly id: number;
  readonly link: Link;
  readonly remote: string;
  state: PeerState;
  name: string;
  nonceC: Uint8Array;
  nonceS: Uint8Array;
  readonly abort: AbortController;
  readonly handoffs: Map<bigint, HandoffPhase>;
  authTimer: NodeJS.Timeout | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  lastRx: number;
  loadTimer: NodeJS.Timeout | undefined;
  lastLoadAt: number;
  lastLoadSent: number | undefined;
  /** COMMIT frames received from this peer (mod 2^32), whatever their id. */
  commits: number;
  lastCommitsSent: number | undefined;
}

const EMPTY = new Uint8Array(0);

export class ControlServer extends EventEmitter<ControlServerEvents> {
  readonly name: string;
  readonly #secret: Secret;
  readonly #onHandoff: ControlServerOptions['onHandoff'];
  readonly #onCommit: ControlServerOptions['onCommit'];
  readonly #onAbort: ControlServerOptions['onAbort'];
  readonly #onOwnerQuery: ControlServerOptions['onOwnerQuery'];
  readonly #onVips: ControlServerOptions['onVips'];
  /** `flowKey#handoffId` -> names of front-ends that recovered the flow (OWNER_QUERY found it). */
  readonly #adopters = new Map<string, Set<string>>();
  readonly #authTimeoutMs: number;
  readonly #maxFrameBytes: number;
  readonly #idleTimeoutMs: number;
  readonly #loadIntervalMs: number;
  readonly #capacity: number | undefined;
  readonly #maxTrackedFlows: number;
  readonly #server: Server;
  readonly #peers = new Set<Peer>();
  /** `flowKey#handoffId` -> name of the front-end that handed the flow. */
  readonly #flows = new Map<string, string>();
  /** Flow ends that found no front-end to tell, sent to the first matching one that connects. */
  #unsent: UnsentFlowEnd[] = [];
  #nextPeerId = 1;
  #load: number | undefined;
  #loadSeq = 0;
  #closed = false;

  constructor(o: ControlServerOptions) {
    super();
    this.#secret = new Secret(o.secret);
    if (typeof o.name !== 'string' || Buffer.byteLength(o.name) > MAX_NAME_BYTES) {
      throw invalidArgument(`name must be a string of at most ${MAX_NAME_BYTES} bytes`);
    }
    if (typeof o.onHandoff !== 'function') throw invalidArgument('onHandoff must be a function');
    this.name = o.name;
    this.#onHandoff = o.onHandoff;
    if (o.onCommit !== undefined && typeof o.onCommit !== 'function') throw invalidArgument('onCommit must be a function');
    if (o.onAbort !== undefined && typeof o.onAbort !== 'function') throw invalidArgument('onAbort must be a function');
    this.#onCommit = o.onCommit;
    this.#onAbort = o.onAbort;
    if (o.onOwnerQuery !== undefined && typeof o.onOwnerQuery !== 'function') throw invalidArgument('onOwnerQuery must be a function');
    this.#onOwnerQuery = o.onOwnerQuery;
    this.#onVips = o.onVips;
    this.#authTimeoutMs = positive(o.authTimeoutMs ?? 5000, 'authTimeoutMs');
    this.#maxFrameBytes = positive(o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    if (this.#maxFrameBytes > 0xffff_ffff) throw invalidArgument('maxFrameBytes must fit a u32');
    this.#idleTimeoutMs = nonNegative(o.idleTimeoutMs ?? 30_000, 'idleTimeoutMs');
    this.#loadIntervalMs = nonNegative(o.loadIntervalMs ?? 100, 'loadIntervalMs');
    this.#maxTrackedFlows = positive(o.maxTrackedFlows ?? 1_000_000, 'maxTrackedFlows');
    if (o.capacity !== undefined && !isU32(o.capacity)) throw invalidArgument('capacity must be a u32');
    this.#capacity = o.capacity;
    this.#server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 10_000 }, (s) => this.#accept(s));
  }

  /** Starts listening; resolves with the bound address (use port 0 for an ephemeral port). */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.emit('serverError', err));
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and drops every connection; in-flight handoffs get their signal aborted. */
  close(): Promise<void> {
    this.#closed = true;
    const done = new Promise<void>((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
    });
    for (const p of this.#peers) p.link.close('server closing');
    return done;
  }

  /** Authenticated peers. */
  get peers(): PeerInfo[] {
    return [...this.#peers].filter((p) => p.state === 'up').map(info);
  }

  /**
   * Reports our active connection count to every authenticated peer: at most one LOAD per
   * peer per loadIntervalMs, always carrying the latest value. New peers get it on AUTH_OK.
   */
  reportLoad(active: number): void {
    if (!isU32(active)) throw invalidArgument('active must be a u32');
    this.#load = active;
    for (const p of this.#peers) if (p.state === 'up') this.#scheduleLoad(p);
  }

  /**
   * Tells front-ends that the connection placed by handoff `id` ended. Sent only to the front-end
   * that handed it if onHandoff returned the flow and that front-end (by name) is connected;
   * otherwise to every authenticated peer. The id lets the front-end tell this connection from a
   * newer one on the same tuple. Returns how many peers it was sent to.
   */
  flowEnded(info: FlowInfo, id: bigint): number {
    const key = trackKey(info, id);
    const owner = key === undefined ? undefined : this.#flows.get(key);
    const adopters = key === undefined ? undefined : this.#adopters.get(key);
    if (key !== undefined) {
      this.#flows.delete(key);
      this.#adopters.delete(key);
    }
    const up = [...this.#peers].filter((p) => p.state === 'up' && !p.link.closed);
    // Known owner: only it and the front-ends that recovered the flow (OWNER_QUERY); if the owner is away, it gets
    // the report when it is back. Unknown: everyone.
    const targets = owner === undefined ? up : up.filter((p) => p.name === owner || adopters?.has(p.name) === true);
    const m: Message = { kind: 'flow-end', id, family: info.family, client: info.client, vip: info.vip };
    if (targets.length === 0 || (owner !== undefined && !targets.some((p) => p.name === owner))) {
      // Its front-end is restarting (it keeps steering the flow from pinned state): tell it when it is back,
      // or the flow would stay steered until its idle timeout.
      this.#unsent.push({ owner, m });
      if (this.#unsent.length > MAX_UNSENT_FLOW_ENDS) this.#unsent.shift();
      if (targets.length === 0) return 0;
    }
    for (const p of targets) p.link.send(m, true);
    return targets.length;
  }

  // --- connections ----------------------------------------------------------------------------

  #accept(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const remote = formatRemote(socket.remoteAddress, socket.remotePort);
    const link = new Link(socket, PRE_AUTH_MAX_FRAME_BYTES, {
      // Handlers run on later socket events, after `peer` is initialised.
      onMessage: (m) => this.#onMessage(peer, m),
      onClose: (reason, frameError) => this.#onClose(peer, reason, frameError !== undefined),
    });
    const peer: Peer = {
      id: this.#nextPeerId++,
      link,
      remote,
      state: 'hello',
      name: '',
      nonceC: EMPTY,
      nonceS: EMPTY,
      abort: new AbortController(),
      handoffs: new Map(),
      authTimer: undefined,
      idleTimer: undefined,
      lastRx: performance.now(),
      loadTimer: undefined,
      lastLoadAt: -Infinity,
      lastLoadSent: undefined,
      commits: 0,
      lastCommitsSent: undefined,
    };
    peer.authTimer = setTimeout(() => this.#refuse(peer, 'timeout'), this.#authTimeoutMs);
    this.#peers.add(peer);
  }

  #onMessage(peer: Peer, m: Message): void {
    peer.lastRx = performance.now();
    switch (peer.state) {
      case 'hello':
        if (m.kind !== 'hello') return this.#refuse(peer, 'unexpected-frame');
        if (m.protoVersion !== PROTO_VERSION) return this.#refuse(peer, 'version');
        peer.name = m.name;
        peer.nonceC = m.nonce;
        peer.nonceS = newNonce();
        peer.state = 'auth';
        peer.link.send({ kind: 'challenge', nonce: peer.nonceS, proof: this.#secret.serverProof(peer.nonceC, peer.nonceS) });
        return;
      case 'auth':
        if (m.kind !== 'auth') return this.#refuse(peer, 'unexpected-frame');
        if (!proofMatches(this.#secret.clientProof(peer.nonceS, peer.nonceC), m.proof)) return this.#refuse(peer, 'bad-proof');
        this.#authenticated(peer);
        return;
      case 'up':
        switch (m.kind) {
          case 'handoff':
          case 'handoff-fwd':
            void this.#handoff(peer, m.id, m.blob, m.kind === 'handoff-fwd');
            return;
          case 'vips':
            this.#vips(peer, m.vips);
            return;
          case 'commit':
            // Counted whatever the id: the front-end counted it too, and the next LOAD settles it.
            peer.commits = (peer.commits + 1) >>> 0;
            if (peer.handoffs.get(m.id) === 'prepared') this.#finish(peer, m.id, 'onCommit');
            if (this.#load !== undefined) this.#scheduleLoad(peer);
            return;
          case 'abort': {
            const phase = peer.handoffs.get(m.id);
            if (phase === 'prepared') this.#finish(peer, m.id, 'onAbort');
            else if (phase === 'running') peer.handoffs.set(m.id, 'abort-requested');
            // A forwarded handoff delivered before this ABORT came: onAbort drops it, if it is still young.
            else if (phase === undefined) this.#finish(peer, m.id, 'onAbort');
            return;
          }
          case 'ping':
            peer.link.send({ kind: 'pong', token: m.token });
            return;
          case 'pong':
            return;
          case 'routes':
          case 'move-reply':
          case 'move-done':
          case 'drain':
          case 'park':
            this.emit('peerMessage', info(peer), m);
            return;
          case 'owner-query':
            this.#ownerQuery(peer, m);
            return;
          default:
            peer.link.close(`protocol: unexpected ${m.kind} frame`);
        }
    }
  }

  /** Sends a move-protocol message (MOVE, MOVE_BLOB, STAYS) to one authenticated peer; false if it is gone. */
  sendTo(peerId: number, m: Message): boolean {
    for (const p of this.#peers) if (p.id === peerId && p.state === 'up' && !p.link.closed) return p.link.send(m);
    return false;
  }

  #ownerQuery(peer: Peer, m: Extract<Message, { kind: 'owner-query' }>): void {
    const flow: FlowInfo = { family: m.family, client: m.client, vip: m.vip };
    let a: OwnerAnswer = { found: false };
    try {
      a = this.#onOwnerQuery?.({ flow, flowId: m.flowId, frontend: m.frontend }, ctx(peer)) ?? a;
    } catch (e) {
      this.emit('callbackError', e, BigInt(m.id), 'onOwnerQuery');
      a = { found: false };
    }
    if (a.found) {
      const key = trackKey(flow, a.handoffId);
      if (key !== undefined && this.#flows.has(key)) {
        const set = this.#adopters.get(key) ?? new Set<string>();
        set.add(peer.name);
        this.#adopters.set(key, set);
      }
    }
    peer.link.send({ kind: 'owner-reply', id: m.id, found: a.found, handoffId: a.found ? a.handoffId : 0n });
  }

  #authenticated(peer: Peer): void {
    clearTimeout(peer.authTimer);
    peer.authTimer = undefined;
    peer.state = 'up';
    peer.link.maxFrameBytes = this.#maxFrameBytes;
    peer.link.send({ kind: 'auth-ok' });
    if (this.#idleTimeoutMs > 0) {
      peer.idleTimer = setInterval(() => {
        if (performance.now() - peer.lastRx >= this.#idleTimeoutMs) peer.link.close('idle timeout');
      }, Math.max(1, Math.ceil(this.#idleTimeoutMs / 2)));
    }
    publishUp({ side: 'server', name: this.name, peer: peer.name, remote: peer.remote });
    this.emit('peerUp', info(peer));
    if (this.#load !== undefined) this.#scheduleLoad(peer);
    if (this.#unsent.length > 0) {
      const rest: UnsentFlowEnd[] = [];
      for (const u of this.#unsent) {
        if (u.owner === undefined || u.owner === peer.name) peer.link.send(u.m);
        else rest.push(u);
      }
      this.#unsent = rest;
    }
  }

  /** Closes a connection that has not authenticated; never echoes anything back. */
  #refuse(peer: Peer, reason: string): void {
    if (peer.state === 'up') return;
    peer.link.close(`auth: ${reason}`);
  }

  #onClose(peer: Peer, reason: string, frameError: boolean): void {
    this.#peers.delete(peer);
    clearTimeout(peer.authTimer);
    clearInterval(peer.idleTimer);
    clearTimeout(peer.loadTimer);
    peer.abort.abort();
    for (const [id, phase] of peer.handoffs) if (phase === 'prepared') this.#finish(peer, id, 'onAbort');
    const remote = peer.remote;
    if (peer.state === 'up') {
      publishDown({ side: 'server', name: this.name, peer: peer.name, remote, reason });
      this.emit('peerDown', info(peer), reason);
      return;
    }
    const why = frameError ? 'frame-error' : reason.startsWith('auth: ') ? reason.slice(6) : 'closed';
    publishAuthFailed({ side: 'server', name: this.name, remote, reason: why });
    this.emit('authFailed', remote, why);
  }

  // --- handoffs, load ---------------------------------------------------------------------------

  #vips(peer: Peer, vips: readonly VipAddress[]): void {
    let g = { early: false, lossless: false };
    try {
      g = this.#onVips?.(vips, ctx(peer)) ?? g;
    } catch (e) {
      this.emit('callbackError', e, 0n, 'onVips');
    }
    peer.link.send({ kind: 'guard', early: g.early, lossless: g.early && g.lossless });
  }

  async #handoff(peer: Peer, id: bigint, blob: Uint8Array, forwarded: boolean): Promise<void> {
    if (peer.handoffs.has(id)) {
      peer.link.send({ kind: 'ack', id, ok: false, code: CONTROL_ERR.DUPLICATE_ID, reason: `handoff ${id} already in progress` });
      return;
    }
    peer.handoffs.set(id, 'running');
    let r: HandoffResult;
    try {
      r = await this.#onHandoff(id, blob, ctx(peer), forwarded);
      if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') throw new Error('onHandoff returned no result');
    } catch (e) {
      r = { ok: false, code: CONTROL_ERR.INJECT, reason: e instanceof Error ? e.message : String(e) };
    }
    const ack: Message = r.ok
      ? { kind: 'ack', id, ok: true, code: '', reason: '' }
      : { kind: 'ack', id, ok: false, code: truncateUtf8(String(r.code), MAX_CODE_BYTES), reason: truncateUtf8(String(r.reason), MAX_REASON_BYTES) };
    if (!r.ok) {
      peer.handoffs.delete(id);
      peer.link.send(ack);
      return;
    }
    if (r.flow !== undefined) this.#track(r.flow, id, peer.name);
    if (forwarded) {
      // Delivered already: it counts as committed, and an ABORT that came meanwhile still drops it.
      const abortRequested = peer.handoffs.get(id) === 'abort-requested';
      peer.handoffs.delete(id);
      peer.commits = (peer.commits + 1) >>> 0;
      peer.link.send(ack);
      if (abortRequested) this.#finish(peer, id, 'onAbort');
      if (this.#load !== undefined) this.#scheduleLoad(peer);
      return;
    }
    const abortRequested = peer.handoffs.get(id) === 'abort-requested';
    peer.handoffs.set(id, 'prepared');
    // If the front-end gave up already, or cannot hear the ACK, it will never commit.
    if (!peer.link.send(ack) || abortRequested) this.#finish(peer, id, 'onAbort');
  }

  #finish(peer: Peer, id: bigint, callback: 'onCommit' | 'onAbort'): void {
    peer.handoffs.delete(id);
    try {
      if (callback === 'onCommit') this.#onCommit?.(id, ctx(peer));
      else this.#onAbort?.(id, ctx(peer));
    } catch (e) {
      this.emit('callbackError', e, id, callback);
    }
  }

  #track(flow: FlowInfo, id: bigint, owner: string): void {
    const key = trackKey(flow, id);
    if (key === undefined) return; // an unparsable flow cannot be routed; FLOW_END for it will be broadcast
    this.#flows.delete(key);
    this.#flows.set(key, owner);
    if (this.#flows.size > this.#maxTrackedFlows) {
      const oldest = this.#flows.keys().next();
      if (oldest.done !== true) {
        this.#flows.delete(oldest.value);
        this.#adopters.delete(oldest.value);
      }
    }
  }

  #scheduleLoad(peer: Peer): void {
    if (peer.loadTimer !== undefined) return; // the pending send will carry the latest value
    const wait = peer.lastLoadAt + this.#loadIntervalMs - performance.now();
    if (wait <= 0) return this.#sendLoad(peer);
    peer.loadTimer = setTimeout(() => {
      peer.loadTimer = undefined;
      this.#sendLoad(peer);
    }, Math.ceil(wait));
  }

  #sendLoad(peer: Peer): void {
    const active = this.#load;
    const commits = peer.commits;
    if (active === undefined || peer.link.closed) return;
    if (active === peer.lastLoadSent && commits === peer.lastCommitsSent) return;
    this.#loadSeq = (this.#loadSeq + 1) >>> 0;
    const m: Message =
      this.#capacity === undefined
        ? { kind: 'load', active, seq: this.#loadSeq, commits }
        : { kind: 'load', active, capacity: this.#capacity, seq: this.#loadSeq, commits };
    peer.link.send(m, true);
    peer.lastLoadAt = performance.now();
    peer.lastLoadSent = active;
    peer.lastCommitsSent = commits;
  }
}

interface UnsentFlowEnd {
  readonly owner: string | undefined;
  readonly m: Message;
}

/** Bound on flow ends kept for a front-end that is away (each ~100 bytes). */
const MAX_UNSENT_FLOW_ENDS = 100_000;

function trackKey(flow: FlowInfo, id: bigint): string | undefined {
  try {
    return `${flowKey(flow)}#${id}`;
  } catch {
    return undefined;
  }
}

function ctx(p: Peer): HandoffContext {
  return { peer: info(p), signal: p.abort.signal };
}

function info(p: Peer): PeerInfo {
  return { id: p.id, name: p.name, remote: p.remote };
}

export function formatRemote(address: string | undefined, port: number | undefined): string {
  const a = address ?? '?';
  return `${a.includes(':') ? `[${a}]` : a}:${port ?? '?'}`;
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

function positive(n: number, field: string): number {
  if (!(Number.isFinite(n) && n > 0)) throw invalidArgument(`${field} must be > 0`);
  return n;
}

function nonNegative(n: number, field: string): number {
  if (!(Number.isFinite(n) && n >= 0)) throw invalidArgument(`${field} must be >= 0`);
  return n;
}
