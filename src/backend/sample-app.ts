// The sample application the demo, tests and benchmarks run on every back-end:
//   GET  /bytes/<n>  n deterministic bytes (wire/pattern.ts), n <= 1 GiB
//   POST /sha256     the sha256 and length of the request body
//   GET  /whoami     the back-end's name
// Every response carries `x-baton-backend: <name>` so clients can see who answered.
// With `tls` it serves HTTPS: handed-off connections of a tls listener arrive before the handshake
// (their first bytes are the ClientHello) and the app completes it with this certificate.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { forEachPatternChunk } from '../wire/pattern.ts';

const MAX_BYTES = 1 << 30;

export interface SampleAppOptions {
  /** Serve HTTPS with this PEM certificate (chain) and key. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export function createSampleApp(name: string, o: SampleAppOptions = {}): http.Server | https.Server {
  const handler: http.RequestListener = (req, res) => {
    res.setHeader('x-baton-backend', name);
    const url = req.url ?? '/';
    const bytes = /^\/bytes\/(\d{1,10})(?:\?.*)?$/.exec(url);
    if (req.method === 'GET' && bytes) {
      const n = Number(bytes[1]);
      if (n > MAX_BYTES) return void res.writeHead(413).end('too large\n');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      return void writePattern(res, n);
    }
    if (req.method === 'POST' && url === '/sha256') {
      const h = createHash('sha256');
      let len = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        len += d.length;
      });
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ sha256: h.digest('hex'), length: len }),
      ));
      return;
    }
    if (req.method === 'GET' && url === '/whoami') return void res.writeHead(200).end(`${name}\n`);
    res.writeHead(404).end('not found\n');
  };
  const server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 30_000;
  return server;
}

/** Streams n pattern bytes with backpressure. */
function writePattern(res: http.ServerResponse, n: number): void {
  const chunks: Uint8Array[] = [];
  forEachPatternChunk(n, (c) => chunks.push(c));
  let i = 0;
  const pump = (): void => {
    while (i < chunks.length) {
      if (!res.write(chunks[i++]!)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}
