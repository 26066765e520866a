// Delivery of committed connections to the application.
//   in-process: any net.Server / http.Server receives the socket as a 'connection' event;
//   upstream:   for unmodified servers, connect to a local address and pipe both ways,
//               optionally prefixed by a PROXY protocol v2 header carrying the client address.
// With `boundary` options, the application gets the socket through the request-boundary layer
// (boundary.ts), which decides every later request on the connection.
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { encodeProxyV2 } from '../wire/proxy-v2.ts';
import { BoundarySocket, wrapConnection, type BoundaryOptions } from './boundary.ts';
import type { FlowInfo } from './receiver.ts';

/**
 * Gives one committed connection to the application: the socket itself, or the boundary layer the
 * agent already wrapped around it (per-request routing, agent.ts).
 */
export type Deliver = ((conn: net.Socket | BoundarySocket, flow: FlowInfo) => void) & {
  /**
   * The application takes each client chunk during its 'data' event and copies whatever it keeps (Node's
   * http.Server: its parser copies bodies and header strings before returning), so the boundary layer may pass
   * it chunks of a reusable read buffer (boundary.ts `reads`).
   */
  readonly takesChunksAtOnce?: boolean;
};

const wrapped = (conn: net.Socket | BoundarySocket, boundary: BoundaryOptions | undefined): Duplex =>
  conn instanceof BoundarySocket || boundary === undefined ? conn : wrapConnection(conn, boundary);

export function deliverToServer(server: net.Server, boundary?: BoundaryOptions): Deliver {
  const deliver = (conn: net.Socket | BoundarySocket): void => {
    server.emit('connection', wrapped(conn, boundary));
  };
  // A plain http.Server only: TLS servers and other net.Servers hand chunks to code that may keep them.
  return server instanceof http.Server ? Object.assign(deliver, { takesChunksAtOnce: true }) : deliver;
}

export interface UpstreamOptions {
  readonly host: string;
  readonly port: number;
  readonly proxyProtocol?: boolean;
  readonly connectTimeoutMs?: number;
  readonly onError?: (err: Error, flow: FlowInfo) => void;
  /** Decide every later request at the relay (boundary.ts). */
  readonly boundary?: BoundaryOptions;
}

export function deliverToUpstream(o: UpstreamOptions): Deliver {
  return (conn, flow) => {
    const client = wrapped(conn, o.boundary);
    const up = net.connect({ host: o.host, port: o.port, noDelay: true });
    const timer = setTimeout(() => up.destroy(new Error(`upstream ${o.host}:${o.port}: connect timeout`)), o.connectTimeoutMs ?? 5000);
    up.once('connect', () => {
      clearTimeout(timer);
      if (o.proxyProtocol) {
        up.write(encodeProxyV2({ family: flow.family, source: flow.client, destination: flow.vip }));
      }
      client.pipe(up);
      up.pipe(client);
    });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      o.onError?.(err, flow);
      client.destroy();
      up.destroy();
    };
    up.once('error', fail);
    client.once('error', () => up.destroy());
    client.once('close', () => up.destroy());
    up.once('close', () => client.destroy());
  };
}
