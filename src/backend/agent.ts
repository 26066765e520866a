// The back-end agent: accepts authenticated control channels from front-ends, injects the
// connections they hand off, and delivers each one, once committed, to the application.
// Also a library: `BackendAgent.start({ ..., deliver: deliverToServer(myHttpServer) })`.
import { ControlServer, type PeerInfo } from '../control/server.ts';
import type { Liveness } from '../tcp/liveness.ts';
import type { OwnedFd } from '../tcp/fd.ts';
import type { DecapGate } from './decap.ts';
import type { Deliver } from './deliver.ts';
import { isIP } from 'node:net';
import { formatIPv6, parseIPv6 } from '../wire/bytes.ts';
import type { EncapSource, ParkGate } from './park.ts';
import { Mover } from './mover.ts';
import { HandoffReceiver } from './receiver.ts';
import type { FlowInfo, VipAddress } from '../wire/frame.ts';
import type { HeadLimits } from '../wire/http-head.ts';

export interface AgentOptions {
  readonly name: string;
  readonly secret: string | Uint8Array;
  readonly control: { readonly host: string; readonly port: number };
  readonly deliver: Deliver;
  readonly freebind?: boolean;
  readonly commitTimeoutMs?: number;
  readonly maxConnections?: number;
  readonly maxBlobBytes?: number;
  readonly liveness?: Liveness;
  /** Flow-id decapsulation (front-ends in `encap` mode); the agent closes it on close, keeping its pins. */
  readonly decap?: DecapGate;
  /**
   * The guard against packets that reach this host before their connection is injected (backend/park.ts). With
   * it, front-ends may steer a client here before sending its blob (forwarded handoffs: one round trip less). The
   * agent closes it on close, keeping the guard.
   */
  readonly park?: ParkGate;
  /** VIPs guarded from the start (the config's); front-ends' VIPS add to them, never replace them. */
  readonly guardedVips?: readonly VipAddress[];
  /**
   * Source addresses of front-ends that encapsulate to this back-end (flow-id encapsulation), besides the ones the
   * agent learns by itself: each control channel's peer address while it is up (a front-end's default encapsulation
   * source toward this host), and each blob's ENCAP front-end. Needed only when a front-end encapsulates from an
   * address other than the one it connects from (its `steering.source`). With `park`, their encapsulated packets
   * that overtake their blob are parked instead of lost (docs/handoff.md).
   */
  readonly encapSources?: readonly string[];
  readonly onEvent?: (event: 'peerUp' | 'peerDown' | 'authFailed', detail: string) => void;
  /**
   * Holds each forwarded handoff's blob this long (ms) before preparing it: for tests of client packets that reach
   * this host before their blob (and, encapsulated, before their decap mapping). Default 0.
   */
  readonly prepareDelayMs?: number;
  /** Holds each FLOW_END back this long (ms): for tests of reports that arrive late. Default 0. */
  readonly flowEndDelayMs?: number;
  /**
   * Route every later request on a handed-off connection (docs/moves.md): the boundary layer decides each
   * against the front-end's routing snapshot and moves the connection when it belongs elsewhere. Default on
   * (head limits 16 KiB / 100 fields); `false` delivers sockets untouched, as before.
   */
  readonly requestRouting?: false | { readonly limits: HeadLimits };
  /** Where per-request routing reports what went wrong (refused snapshots, failed captures). */
  readonly log?: (level: 'info' | 'warn', obj: object, msg: string) => void;
}

const DEFAULT_ROUTING_LIMITS: HeadLimits = { maxHeadBytes: 16 * 1024, maxHeaders: 100 };
/** How often the agent's request counters (STAYS) go to the front-ends, when they changed. */
const STAYS_INTERVAL_MS = 500;

// The receiver keys prepared handoffs by channel and front-end handoff id, so two front-ends'
// ids never collide; FLOW_END names the front-end's id again (its part after the colon).
const key = (peer: PeerInfo, id: bigint): string => `${peer.id}:${id}`;
const handoffIdOf = (k: string): bigint => BigInt(k.slice(k.indexOf(':') + 1));

export class BackendAgent {
  readonly #server: ControlServer;
  readonly #receiver: HandoffReceiver;
  readonly #decap: DecapGate | undefined;
  readonly #park: ParkGate | undefined;
  readonly #mover: Mover | undefined;
  readonly #staysTimer: NodeJS.Timeout | undefined;

  private constructor(server: ControlServer, receiver: HandoffReceiver, decap: DecapGate | undefined, park: ParkGate | undefined, mover: Mover | undefined) {
    this.#server = server;
    this.#receiver = receiver;
    this.#decap = decap;
    this.#park = park;
    this.#mover = mover;
    if (mover !== undefined) {
      let last = '';
      this.#staysTimer = setInterval(() => {
        const counts = mover.counts();
        const key = `${counts.requests}/${counts.moves}/${counts.moved}/${counts.pinned}`;
        if (key === last) return;
        last = key;
        for (const p of server.peers) server.sendTo(p.id, { kind: 'stays', counts });
      }, STAYS_INTERVAL_MS);
      this.#staysTimer.unref();
    }
  }

  static async start(o: AgentOptions): Promise<BackendAgent> {
    let server: ControlServer | undefined;
    const routing = o.requestRouting === false ? undefined : (o.requestRouting ?? { limits: DEFAULT_ROUTING_LIMITS });
    const mover = routing === undefined
      ? undefined
      : new Mover({
        self: o.name, limits: routing.limits, send: (peer, m) => server?.sendTo(peer, m) ?? false, ...(o.log && { log: o.log }),
        // Late packets of a connection that left are dropped, not let into a stack without its socket (a reset).
        ...(o.park !== undefined && { onMovedAway: (flow: FlowInfo) => o.park?.discard(flow) }),
        reusableReads: o.deliver.takesChunksAtOnce === true,
      });
    const receiver = new HandoffReceiver({
      deliver: (socket, flow, meta) => {
        if (mover === undefined) return o.deliver(socket, flow);
        const colon = meta.id.indexOf(':');
        const conn = mover.wrap(socket, {
          peerId: Number(meta.id.slice(0, colon)), handoffId: BigInt(meta.id.slice(colon + 1)), flowId: meta.flowId, flow, key: meta.id,
        });
        o.deliver(conn, flow);
      },
      ...(mover !== undefined && { open: (fd: OwnedFd, opts: { readonly allowHalfOpen: boolean }) => mover.open(fd, opts) }),
      freebind: o.freebind ?? false,
      ...(o.commitTimeoutMs !== undefined && { commitTimeoutMs: o.commitTimeoutMs }),
      ...(o.maxConnections !== undefined && { maxConnections: o.maxConnections }),
      ...(o.maxBlobBytes !== undefined && { maxBlobBytes: o.maxBlobBytes }),
      ...(o.liveness !== undefined && { liveness: o.liveness }),
      ...(o.decap !== undefined && { decap: o.decap }),
      ...(o.park !== undefined && { park: o.park }),
      onActive: (n) => server?.reportLoad(n),
      onFlowEnd: (flow, k) => {
        // Moved away: the flow lives on at another back-end, steered under a newer handoff.
        if (mover?.takeMoved(k) === true) return;
        const delay = o.flowEndDelayMs ?? 0;
        if (delay <= 0) server?.flowEnded(flow, handoffIdOf(k));
        else setTimeout(() => server?.flowEnded(flow, handoffIdOf(k)), delay).unref();
      },
    });
    const vipsByPeer = new VipSet();
    vipsByPeer.set(o.guardedVips ?? []);
    server = new ControlServer({
      secret: o.secret,
      name: o.name,
      onHandoff: (id, blob, ctx, forwarded) => {
        const delay = forwarded ? (o.prepareDelayMs ?? 0) : 0;
        if (delay <= 0) return receiver.prepare(key(ctx.peer, id), blob, { forwarded });
        return new Promise((resolve) => setTimeout(() => resolve(receiver.prepare(key(ctx.peer, id), blob, { forwarded })), delay));
      },
      // A front-end's VIPs: guarded from now on, so it may forward before it sends a blob.
      onVips: (vips) => {
        if (o.park === undefined) return { early: false, lossless: false };
        vipsByPeer.set(vips);
        o.park.guardVips(vipsByPeer.all());
        return { early: true, lossless: o.park.lossless };
      },
      onCommit: (id, ctx) => {
        receiver.commit(key(ctx.peer, id));
      },
      onAbort: (id, ctx) => receiver.abort(key(ctx.peer, id)),
      // A front-end that never saw a flow asks who holds it (issue 11): answer with the handoff that placed it.
      onOwnerQuery: (q) => {
        const k = receiver.ownerOf(q.flow, q.flowId > 0 ? { frontend: q.frontend, flowId: q.flowId } : undefined);
        return k === undefined ? { found: false } : { found: true, handoffId: handoffIdOf(k) };
      },
    });
    for (const a of o.encapSources ?? []) {
      const src = encapSourceOf(a);
      if (src) o.park?.addEncapSource(src);
    }
    server.on('peerUp', (p) => {
      const src = encapSourceOf(p.remote);
      if (src) o.park?.addEncapSource(src);
      o.onEvent?.('peerUp', `${p.name} ${p.remote}`);
      server?.reportLoad(receiver.active);
    });
    server.on('peerDown', (p, reason) => {
      const src = encapSourceOf(p.remote);
      if (src) o.park?.removeEncapSource(src);
      receiver.abortAll(`${p.id}:`);
      o.onEvent?.('peerDown', `${p.name} ${p.remote}: ${reason}`);
    });
    server.on('authFailed', (remote, reason) => o.onEvent?.('authFailed', `${remote}: ${reason}`));
    server.on('peerMessage', (_p, m) => {
      if (m.kind !== 'park') return mover?.onMessage(m);
      // A lossless move (docs/moves.md): the front-end steers this tuple here before its blob exists (expect:
      // park it, never answer it with a reset), or gave up on it (discard: drop what is parked; an unknown
      // tuple changes nothing). Without a guard nothing was parked, and nothing is to do.
      const flow = { family: m.family, client: m.client, vip: m.vip };
      if (m.action === 'expect') o.park?.begin(flow);
      else o.park?.discard(flow);
    });
    await server.listen(o.control.port, o.control.host);
    return new BackendAgent(server, receiver, o.decap, o.park, mover);
  }

  /** Per-request routing counters (undefined with requestRouting: false). */
  get routing(): Mover | undefined {
    return this.#mover;
  }

  /**
   * Graceful shutdown's first half: moves idle connections away now; busy ones move at their next
   * request boundary (the front-end marks this back-end down once told). Resolves with what moved.
   */
  drain(): Promise<{ moved: number; busy: number }> {
    return this.#mover?.drain() ?? Promise.resolve({ moved: 0, busy: 0 });
  }

  /** Connections delivered and still open. */
  get active(): number {
    return this.#receiver.active;
  }

  /** Stops accepting handoffs. Delivered connections stay; with a dataplane, its mappings stay pinned for them. */
  async close(): Promise<void> {
    clearInterval(this.#staysTimer);
    this.#receiver.abortAll();
    await this.#server.close();
    this.#park?.close({ keep: true }); // before decap: it closes the data plane the guard's maps belong to
    this.#decap?.close({ keep: true });
  }
}

/**
 * The address of a peer ("host:port", "[v6]:port") or a bare address, as an encapsulating front-end's source; an
 * IPv4-mapped IPv6 address is the IPv4 one (a dual-stack listener reports it so). Undefined when it is none.
 */
export function encapSourceOf(text: string): EncapSource | undefined {
  let a = text;
  if (a.startsWith('[')) a = a.slice(1, a.indexOf(']'));
  else if (isIP(a) === 0 && a.lastIndexOf(':') > 0) a = a.slice(0, a.lastIndexOf(':'));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1]!;
  const v = isIP(a);
  if (v === 4) return { family: 4, address: a };
  const b = v === 6 ? parseIPv6(a) : undefined;
  if (b) return { family: 6, address: formatIPv6(b) }; // the form packets' addresses are compared in
  return undefined;
}

/** The VIPs front-ends named, as one set (front-ends of one cluster usually name the same ones). */
class VipSet {
  readonly #vips = new Map<string, VipAddress>();

  set(vips: readonly VipAddress[]): void {
    for (const v of vips) this.#vips.set(`${v.family}|${v.address}|${v.port}`, v);
  }

  all(): VipAddress[] {
    return [...this.#vips.values()];
  }
}
