// The front-end: accepts on VIP:port, reads the request head with limits, and gives each complete
// head to the handoff machine (handoff.ts), which picks a back-end and hands the live connection
// over. This file owns the listening socket, the head reader, the local answers and the back-end
// table; it reaches sockets and kernels only through client-conn.ts and the Steering port.
//
// Operator surface (the admin interface codes against it; all synchronous unless noted):
//   backends()          each back-end: id, state (channel), drained, weight, active, handoffs, failures
//   drain(id)           no new handoffs to it (existing connections stay); false if unknown
//   undrain(id)         takes new handoffs again; false if unknown
//   stats()             the /stats document (stats-server.ts renders it as JSON and Prometheus)
//   config              the configuration in force
//   reconfigure(c, r)   swap in a new validated configuration and its router: limits apply to the
//                       next connection, back-ends keep their counters by id. Channels and steering
//                       for added or removed back-ends are the daemon's job (daemon.ts).
// Events from the channels (the daemon wires them): onLoad, onFlowEnd, onChannelUp, onChannelDown.
import { randomInt } from 'node:crypto';
import net from 'node:net';
import type { RequestInfo, Router } from '../policy/index.ts';
import type { FlowKey, Steering } from '../steer/types.ts';
import { buildResponse, parseRequestHead, type RequestHead } from '../wire/http-head.ts';
import { BackendTable, type BackendInfo, type ChannelState } from './backends.ts';
import type { HandoffChannel } from './channel.ts';
import { endpointsOf, FdConnection, kernelCapture, socketConnection, stopReading } from './client-conn.ts';
import { type AcceptedConnection, Listener } from '../tcp/listener.ts';
import { deferAccept } from '../tcp/node-socket.ts';
import type { FrontendConfig } from './config.ts';
import { HandoffMachine, systemClock, type CaptureInput, type ClientConnection, type CaptureResult, type Clock, type HandoffLog, type HandoffStats } from './handoff.ts';
import { MoveCoordinator, type MoveStats } from './move.ts';
import { TlsAcceptor } from './tls-listener.ts';
import { WaitingClients } from './waiting.ts';
import type { Message } from '../wire/frame.ts';

/** A socket error is handled where the socket is used (a closed socket fails the handoff); this only keeps it from throwing. */
const ignore = (): void => undefined;

export interface FrontendDeps {
  readonly config: FrontendConfig;
  readonly router: Router;
  readonly steering: Steering;
  readonly channels: ReadonlyMap<string, HandoffChannel>;
  /** pino in the daemon; anything with warn/error in tests. */
  readonly log: HandoffLog;
  readonly clock?: Clock;
  /** Active health checks' verdict per back-end (health.ts); a failing back-end gets no new handoffs. */
  readonly healthy?: (id: string) => boolean;
  /** Replaces the kernel capture (tests). */
  readonly capture?: (input: CaptureInput) => CaptureResult;
  /** The first handoff id; default random high bits (see randomFirstId). */
  readonly firstHandoffId?: bigint;
  /** The front-end's source address per `encap` back-end (what the decap program keys by). */
  readonly encapSources?: ReadonlyMap<string, string>;
  /** Flow ids of adopted connections (see HandoffPorts.flowIdsInUse). */
  readonly flowIdsInUse?: ReadonlySet<number>;
}

/**
 * Handoff ids name connections in steering and in FLOW_END. Starting each process at random high
 * bits keeps a restarted front-end (whose predecessor's flows may still be steered, bpf adoption)
 * and peer front-ends sharing an agent from reusing each other's ids on one tuple.
 */
function randomFirstId(): bigint {
  return (BigInt(randomInt(1, 2 ** 31)) << 32n) | 1n;
}

export interface FrontendStats {
  readonly accepted: number;
  /** Connections whose whole request head was queued at accept: handed off without Node reading it. */
  readonly headAtAccept: number;
  readonly handedOff: number;
  readonly answeredLocally: Record<string, number>;
  /** tls listener: connections refused before the handshake, by BATON_ERR_TLS_* code or reason. */
  readonly tlsRefused: Record<string, number>;
  readonly retries: number;
  readonly pending: number;
  /** Connections still sending their head or hello, expired early to make room for new ones at limits.maxPending. */
  readonly shed: number;
  /** Clients that went away between their request head and the capture. */
  readonly vanished: number;
  readonly handoffUs: HandoffStats['handoffUs'];
  /** Forwarded handoffs (docs/handoff.md): head complete -> client steered to the back-end and blob written. */
  readonly placedUs: HandoffStats['placedUs'];
  /** Forwarded handoffs whose channel dropped before the back-end's answer (handed to the next back-end). */
  readonly unconfirmed: number;
  readonly phasesUs: HandoffStats['phasesUs'];
  /** Connections moved between back-ends at request boundaries (docs/moves.md). */
  readonly moves: MoveStats;
  /**
   * `up`: control channel up; `healthy`: passing its active health check (true without one).
   * requests: requests served there (handoffs, moves in included, + later requests that stayed); stays: later
   * requests that stayed (decided locally or after asking); movesOut/In: connections moved;
   * decideUs: mean time of the agent's local routing decision.
   */
  readonly perBackend: Record<string, {
    handoffs: number; failures: number; active: number; up: boolean; drained: boolean; healthy: boolean;
    requests: number; stays: number; movesOut: number; movesIn: number; decideUs: number | undefined;
    /** Mean time the agent took to capture a connection that moved away (stop, TCP_REPAIR capture, encode, close). */
    captureUs: number | undefined;
  }>;
}

/** A connection's endpoints as the kernel reports them (client-conn.ts). */
type Ends = NonNullable<ReturnType<typeof endpointsOf>>;
const NOOP = (): void => undefined;

export class Frontend {
  readonly #d: FrontendDeps;
  /** TLS: Node's server (the TLS acceptor needs a socket at once). */
  readonly #server: net.Server | undefined;
  /** Plain HTTP: connections accepted as descriptors (tcp/listener.ts), a socket made only when one is needed. */
  #listener: Listener | undefined;
  readonly #table: BackendTable;
  readonly #machine: HandoffMachine;
  readonly #local = new Map<number, number>();
  readonly #tls: TlsAcceptor;
  /** #answer as a function value, made once (each connection's port holds it). */
  readonly #answerFn = (sock: net.Socket, status: number): void => this.#answer(sock, status);
  #config: FrontendConfig;
  #router: Router;
  readonly #moves: MoveCoordinator;
  #routesVersion = 0;
  #accepted = 0;
  readonly #waiting = new WaitingClients();
  /** Scratch for peeking at a new connection's queued head (one connection at a time), limits.maxHeadBytes long. */
  #peekBuf: Buffer = Buffer.alloc(0);
  /** Connections whose whole head was queued at accept, handed off before Node read a byte of them. */
  #headAtAccept = 0;
  /** Plain-HTTP connections accepted and not yet done with (handed off, answered, or gone); close() waits for them. */
  #live = 0;
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  /** #done as a function value, made once. */
  readonly #doneFn = (): void => this.#done();

  constructor(d: FrontendDeps) {
    this.#d = d;
    this.#config = d.config;
    this.#router = d.router;
    const stateOf = (id: string): ChannelState => d.channels.get(id)?.state ?? 'down';
    this.#table = new BackendTable(d.config.backends, stateOf, d.healthy);
    this.#machine = new HandoffMachine({
      steering: d.steering,
      channel: (id) => d.channels.get(id),
      capture: d.capture ?? kernelCapture,
      pick: (req, exclude, now) => this.#router.pick(req, this.#table.views(exclude), now),
      book: this.#table,
      clock: d.clock ?? systemClock,
      log: d.log,
      maxAttempts: () => this.#config.limits.maxAttempts,
      firstHandoffId: d.firstHandoffId ?? randomFirstId(),
      flowIdsInUse: d.flowIdsInUse,
      encapSource: (id) => d.encapSources?.get(id),
    });
    this.#moves = new MoveCoordinator({
      steering: d.steering,
      channel: (id) => d.channels.get(id),
      pick: (req, exclude, now) => this.#router.pick(req, this.#table.views(exclude), now),
      book: this.#table,
      allocate: () => this.#machine.allocate(),
      encapSource: (id) => d.encapSources?.get(id),
      limits: () => this.#config.limits,
      log: d.log,
    });
    this.#tls = new TlsAcceptor({
      limits: () => this.#config.limits,
      waiting: this.#waiting,
      run: (conn, req) => this.#machine.run(conn, req),
      hrtime: () => (d.clock ?? systemClock).hrtime(),
      log: d.log,
    });
    this.#server = d.config.tls ? net.createServer({ noDelay: true }, (s) => this.#onConnection(s)) : undefined;
  }

  /** Clients speak first (head or hello): accept() waits for their bytes, within the time the head may take. */
  #deferAcceptS(): number {
    return Math.max(1, Math.ceil(this.#config.limits.headTimeoutMs / 1000));
  }

  listen(): Promise<net.AddressInfo> {
    const server = this.#server;
    if (server === undefined) return Promise.resolve(this.#listenPlain());
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#config.vip, port: this.#config.port, backlog: 4096 }, () => {
        server.off('error', reject);
        try {
          deferAccept(server, this.#deferAcceptS());
        } catch (e) {
          this.#d.log.warn({ err: e }, 'TCP_DEFER_ACCEPT not set; accepting at the handshake');
        }
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  #listenPlain(): net.AddressInfo {
    const family = net.isIPv6(this.#config.vip) ? 6 : 4;
    const l = Listener.open({ family, address: this.#config.vip, port: this.#config.port, backlog: 4096, deferAcceptS: this.#deferAcceptS() });
    if (l.deferAcceptError) this.#d.log.warn({ err: l.deferAcceptError }, 'TCP_DEFER_ACCEPT not set; accepting at the handshake');
    this.#listener = l;
    l.start(
      (c) => this.#onAccept(c),
      (e) => this.#d.log.error({ err: e }, 'accept failed; accepting again in 100 ms'),
    );
    return { address: l.address.address, family: family === 6 ? 'IPv6' : 'IPv4', port: l.address.port };
  }

  /**
   * Stops accepting and resolves once every accepted connection is done with, as net.Server's close does: a handoff
   * in flight still hears its agent's answer over a channel that is still open.
   */
  close(): Promise<void> {
    this.#listener?.close();
    this.#listener = undefined;
    // One promise for every caller: a second close() must not replace the first one's resolver.
    const drained = (this.#closing ??= this.#live === 0 ? Promise.resolve() : new Promise<void>((r) => (this.#drained = r)));
    const server = this.#server;
    if (server === undefined || !server.listening) return drained;
    return Promise.all([drained, new Promise<void>((r) => server.close(() => r()))]).then(() => undefined);
  }

  #done(): void {
    if (--this.#live === 0) this.#drained?.();
  }

  // --- operator surface ---------------------------------------------------------------------------

  get config(): FrontendConfig {
    return this.#config;
  }

  reconfigure(config: FrontendConfig, router: Router): void {
    this.#config = config;
    this.#router = router;
    this.#table.replace(config.backends);
  }

  backends(): BackendInfo[] {
    return this.#table.list();
  }

  drain(id: string): boolean {
    return this.#table.setDrained(id, true);
  }

  undrain(id: string): boolean {
    return this.#table.setDrained(id, false);
  }

  /** Packets and bytes the data plane steered to each back-end (empty with nftables steering). */
  async dataPathCounters(): Promise<Record<string, { packets: number; bytes: number }>> {
    const out: Record<string, { packets: number; bytes: number }> = {};
    for (const [id, c] of await this.#d.steering.counters()) out[id] = { packets: Number(c.packets), bytes: Number(c.bytes) };
    return out;
  }

  stats(): FrontendStats {
    const m = this.#machine.stats();
    const perBackend: FrontendStats['perBackend'] = {};
    for (const b of this.#table.list()) {
      const mc = this.#moves.counters(b.id);
      const a = mc.agent;
      perBackend[b.id] = {
        handoffs: b.handoffs, failures: b.failures, active: b.active, up: b.state === 'up', drained: b.drained,
        healthy: this.#d.healthy?.(b.id) ?? true,
        // Each request counts where it is served: first requests and moved-in ones come with a handoff
        // (moves are handoffs too), later ones that stayed are stays (decided locally or after asking).
        requests: b.handoffs + mc.stays + (a === undefined ? 0 : a.stays),
        stays: mc.stays + (a === undefined ? 0 : a.stays),
        movesOut: mc.movesOut,
        movesIn: mc.movesIn,
        decideUs: a === undefined || a.requests === 0 ? undefined : Number(a.decideNs / BigInt(a.requests)) / 1000,
        captureUs: a === undefined || a.moved === 0 ? undefined : Number(a.captureNs / BigInt(a.moved)) / 1000,
      };
    }
    return {
      accepted: this.#accepted,
      headAtAccept: this.#headAtAccept,
      handedOff: m.handedOff,
      answeredLocally: Object.fromEntries([...this.#local].map(([k, v]) => [String(k), v])),
      tlsRefused: this.#tls.refused(),
      retries: m.retries,
      pending: this.#waiting.count,
      shed: this.#waiting.shed,
      vanished: m.vanished,
      handoffUs: m.handoffUs,
      placedUs: m.placedUs,
      unconfirmed: m.unconfirmed,
      phasesUs: m.phasesUs,
      moves: this.#moves.stats(),
      perBackend,
    };
  }

  /** Moves in flight away from a back-end. */
  movesInFlightFrom(id: string): number {
    return this.#moves.inFlightFrom(id);
  }

  /**
   * The routing snapshot agents decide later requests with (policy/snapshot.ts): the rules and pools in
   * force, and which back-ends take requests now (channel up, healthy, not drained, weight > 0). LARD
   * assignments are not pushed: a LARD target then asks the front-end (correct, one round trip).
   */
  routes(): Message {
    const c = this.#config;
    const backends = this.#table.list().map((b) => ({
      id: b.id, weight: b.weight, up: b.state === 'up' && !b.drained && b.weight > 0 && (this.#d.healthy?.(b.id) ?? true),
    }));
    const snapshot = { version: ++this.#routesVersion, router: { pools: c.pools, rules: c.rules, defaultPool: c.defaultPool }, backends, assignments: [] };
    return { kind: 'routes', version: snapshot.version, json: JSON.stringify(snapshot) };
  }

  /** Sends the routing snapshot to every channel that is up (after a drain, reload, channel change). */
  pushRoutes(): void {
    const m = this.routes();
    for (const ch of this.#d.channels.values()) if (ch.state === 'up') ch.send?.(m);
  }

  /** MOVE, MOVE_BLOB, STAYS from a back-end's agent. */
  onAgentMessage(backend: string, m: Message): void {
    this.#moves.onMessage(backend, m);
  }

  // --- channel events -----------------------------------------------------------------------------

  /** A back-end's LOAD: its active connections and the commits of this session it has counted. */
  onLoad(backend: string, active: number, commits: number): void {
    this.#table.onLoad(backend, active, commits);
  }

  /**
   * The connection placed by `handoffId` ended at its back-end. Steering ignores a release that
   * names an older handoff than the tuple's current one, so a late report of a previous connection
   * on a reused client port never touches the newer connection.
   */
  onFlowEnd(flow: FlowKey, handoffId: bigint): void {
    this.#d.steering.release(flow, handoffId).catch((e: unknown) => this.#d.log.warn({ err: e }, 'release failed'));
  }

  onChannelUp(backend: string): void {
    this.#table.onSession(backend);
  }

  /**
   * The channel to a back-end was declared lost: the agent dropped what it had prepared and its
   * delivered connections are gone with it if it died, so its flows stop being steered now rather
   * than at the idle timeout. If only the channel broke, the connections' packets then reach the
   * front-end, which resets them: steering to a back-end we cannot hear from is not kept.
   */
  async onChannelDown(backend: string): Promise<number> {
    this.#table.onSession(backend);
    try {
      return await this.#d.steering.releaseBackend(backend);
    } catch (e) {
      this.#d.log.error({ err: e, backend }, 'release of a lost back-end failed');
      return 0;
    }
  }

  // --- connections --------------------------------------------------------------------------------

  #answer(sock: net.Socket, status: number): void {
    this.#local.set(status, (this.#local.get(status) ?? 0) + 1);
    sock.end(buildResponse(status));
    // Drain what the client still sends: closing with unread bytes would reset the connection
    // and could destroy the answer before the client reads it.
    sock.resume();
    // The client may never read; do not keep the socket forever.
    setTimeout(() => sock.destroy(), 5000).unref();
  }

  /**
   * A plain-HTTP connection, accepted as a descriptor. Its whole head is usually queued already (TCP_DEFER_ACCEPT
   * accepts once the client's first bytes are in, and a head mostly comes in one segment): then the handoff starts
   * now, with no socket, no read and no event-loop turn, and the head travels in the captured receive queue.
   * Otherwise (a head still coming, or one that does not parse) it becomes a socket and is read as usual.
   */
  #onAccept(c: AcceptedConnection): void {
    this.#accepted++;
    this.#live++;
    const owned = c.fd;
    const ends: Ends = { flow: { family: c.family, clientAddress: c.client.address, clientPort: c.client.port }, vip: c.local };
    let bytes: Buffer | undefined;
    try {
      bytes = owned.peek(this.#peekScratch());
    } catch {
      owned.close(); // reset already (ECONNRESET): nobody to answer
      this.#done();
      return;
    }
    const limits = this.#config.limits;
    const r = bytes === undefined ? undefined : parseRequestHead(bytes, { maxHeadBytes: limits.maxHeadBytes, maxHeaders: limits.maxHeaders });
    if (r?.kind === 'ok') {
      this.#headAtAccept++;
      const headAt = (this.#d.clock ?? systemClock).hrtime();
      void this.#run(new FdConnection({ owned, flow: ends.flow, vip: ends.vip, headAt, answer: this.#answerFn }), r.head).finally(this.#doneFn);
      return;
    }
    let sock: net.Socket;
    try {
      sock = owned.toSocket();
    } catch {
      owned.close();
      this.#done();
      return;
    }
    sock.once('close', this.#doneFn);
    sock.on('error', ignore);
    sock.setNoDelay(true);
    this.#readHead(sock, ends);
  }

  /** TLS (the only front-end with a net.Server; `tls` needs a restart): Node's server accepted the socket. */
  #onConnection(sock: net.Socket): void {
    this.#accepted++;
    sock.on('error', ignore);
    // Read the endpoints now: once the client resets, Node can no longer tell them.
    const ends = endpointsOf(sock);
    if (ends === undefined) {
      sock.destroy();
      return;
    }
    this.#tls.accept(sock, ends);
  }

  #peekScratch(): Buffer {
    const n = this.#config.limits.maxHeadBytes;
    if (this.#peekBuf.length !== n) this.#peekBuf = Buffer.allocUnsafe(n);
    return this.#peekBuf;
  }

  /** Reads a head that was not all queued at accept, within the head timeout, then hands off or answers. */
  #readHead(sock: net.Socket, ends: Ends): void {
    const limits = this.#config.limits;
    if (!this.#waiting.admit(limits.maxPending)) return this.#answer(sock, 503);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#waiting.done(expire);
      clearTimeout(timer);
      sock.off('data', onData);
    };
    const expire = (): void => {
      finish();
      this.#answer(sock, 408);
    };
    const timer = setTimeout(expire, limits.headTimeoutMs);
    this.#waiting.add(expire);
    sock.once('close', finish);
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const r = parseRequestHead(buf, { maxHeadBytes: limits.maxHeadBytes, maxHeaders: limits.maxHeaders });
      if (r.kind === 'incomplete') return;
      const reading = stopReading(sock);
      finish();
      if (!reading) return void sock.destroy();
      if (r.kind === 'error') return this.#answer(sock, r.status);
      this.#handOff(sock, ends, buf, r.head);
    };
    sock.on('data', onData);
  }

  /** A complete head: the handoff runs to its end; `consumed` is what Node read of the connection (the head on). */
  #handOff(sock: net.Socket, ends: Ends, consumed: Buffer, h: RequestHead): void {
    const headAt = (this.#d.clock ?? systemClock).hrtime();
    const conn = socketConnection({ socket: sock, flow: ends.flow, vip: ends.vip, consumed, headAt, answer: this.#answerFn });
    if (conn === undefined) return void sock.destroy();
    void this.#run(conn, h);
  }

  /** Runs the handoff to its end; the promise settles then, and never rejects. */
  #run(conn: ClientConnection, h: RequestHead): Promise<void> {
    const req: RequestInfo = { method: h.method, target: h.target, path: h.path, host: h.host, headers: h.headerMap };
    return this.#machine.run(conn, req).then(NOOP, (e: unknown) => {
      this.#d.log.error({ err: e }, 'handoff crashed');
      conn.discard();
    });
  }
}
