// The back-end agent: accepts authenticated control channels from front-ends, injects the
// connections they hand off, and delivers each one, once committed, to the application.
// Also a library: `BackendAgent.start({ ..., deliver: deliverToServer(myHttpServer) })`.
import { ControlServer, type PeerInfo } from '../control/server.ts';
import type { Liveness } from '../tcp/liveness.ts';
import type { DecapGate } from './decap.ts';
import type { Deliver } from './deliver.ts';
import { HandoffReceiver } from './receiver.ts';

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
  readonly onEvent?: (event: 'peerUp' | 'peerDown' | 'authFailed', detail: string) => void;
  /** Holds each FLOW_END back this long (ms): for tests of reports that arrive late. Default 0. */
  readonly flowEndDelayMs?: number;
}

// The receiver keys prepared handoffs by channel and front-end handoff id, so two front-ends'
// ids never collide; FLOW_END names the front-end's id again (its part after the colon).
const key = (peer: PeerInfo, id: bigint): string => `${peer.id}:${id}`;
const handoffIdOf = (k: string): bigint => BigInt(k.slice(k.indexOf(':') + 1));

export class BackendAgent {
  readonly #server: ControlServer;
  readonly #receiver: HandoffReceiver;
  readonly #decap: DecapGate | undefined;

  private constructor(server: ControlServer, receiver: HandoffReceiver, decap: DecapGate | undefined) {
    this.#server = server;
    this.#receiver = receiver;
    this.#decap = decap;
  }

  static async start(o: AgentOptions): Promise<BackendAgent> {
    let server: ControlServer | undefined;
    const receiver = new HandoffReceiver({
      deliver: o.deliver,
      freebind: o.freebind ?? false,
      ...(o.commitTimeoutMs !== undefined && { commitTimeoutMs: o.commitTimeoutMs }),
      ...(o.maxConnections !== undefined && { maxConnections: o.maxConnections }),
      ...(o.maxBlobBytes !== undefined && { maxBlobBytes: o.maxBlobBytes }),
      ...(o.liveness !== undefined && { liveness: o.liveness }),
      ...(o.decap !== undefined && { decap: o.decap }),
      onActive: (n) => server?.reportLoad(n),
      onFlowEnd: (flow, k) => {
        const delay = o.flowEndDelayMs ?? 0;
        if (delay <= 0) server?.flowEnded(flow, handoffIdOf(k));
        else setTimeout(() => server?.flowEnded(flow, handoffIdOf(k)), delay).unref();
      },
    });
    server = new ControlServer({
      secret: o.secret,
      name: o.name,
      onHandoff: async (id, blob, ctx) => receiver.prepare(key(ctx.peer, id), blob),
      onCommit: (id, ctx, data) => {
        receiver.commit(key(ctx.peer, id), data);
      },
      onAbort: (id, ctx) => receiver.abort(key(ctx.peer, id)),
    });
    server.on('peerUp', (p) => {
      o.onEvent?.('peerUp', `${p.name} ${p.remote}`);
      server?.reportLoad(receiver.active);
    });
    server.on('peerDown', (p, reason) => {
      receiver.abortAll(`${p.id}:`);
      o.onEvent?.('peerDown', `${p.name} ${p.remote}: ${reason}`);
    });
    server.on('authFailed', (remote, reason) => o.onEvent?.('authFailed', `${remote}: ${reason}`));
    await server.listen(o.control.port, o.control.host);
    return new BackendAgent(server, receiver, o.decap);
  }

  /** Connections delivered and still open. */
  get active(): number {
    return this.#receiver.active;
  }

  /** Stops accepting handoffs. Delivered connections stay; with a dataplane, its mappings stay pinned for them. */
  async close(): Promise<void> {
    this.#receiver.abortAll();
    await this.#server.close();
    this.#decap?.close({ keep: true });
  }
}
