// Delivery of committed connections to the application.
//   in-process: any net.Server / http.Server receives the socket as a 'connection' event;
//   upstream:   for unmodified servers, connect to a local address and pipe both ways,
//               optionally prefixed by a PROXY protocol v2 header carrying the client address.
import net from 'node:net';
import { encodeProxyV2 } from '../wire/proxy-v2.ts';
import type { FlowInfo } from './receiver.ts';

export type Deliver = (socket: net.Socket, flow: FlowInfo) => void;

export function deliverToServer(server: net.Server): Deliver {
  return (socket) => {
    server.emit('connection', socket);
  };
}

export interface UpstreamOptions {
  readonly host: string;
  readonly port: number;
  readonly proxyProtocol?: boolean;
  readonly connectTimeoutMs?: number;
  readonly onError?: (err: Error, flow: FlowInfo) => void;
}

export function deliverToUpstream(o: UpstreamOptions): Deliver {
  return (client, flow) => {
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
