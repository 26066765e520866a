// The sample application the demo, tests and benchmarks run on every back-end:
//   GET  /bytes/<n>  n deterministic bytes (wire/pattern.ts), n <= 1 GiB
//   POST /sha256     the sha256 and length of the request body
//   GET  /whoami     the back-end's name
//   GET  /page?n=<k> an HTML page whose script fetches k assets, /a/0, /b/1, /a/2, ... in order (with
//                    `&parallel`: all at once), and writes who served each (their x-baton-backend) into the
//                    DOM: a browser's view of routing by path
//   GET  /a/*, /b/*  a small asset naming the back-end (the page's assets; rules split them over pools)
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
    const page = /^\/page\?n=(\d{1,3})(&parallel)?$/.exec(url);
    if (req.method === 'GET' && page) return void res.writeHead(200, { 'content-type': 'text/html' }).end(assetPage(Number(page[1]), page[2] !== undefined));
    if (req.method === 'GET' && /^\/[ab]\//.test(url)) return void res.writeHead(200, { 'content-type': 'text/plain' }).end(`${name}\n`);
    res.writeHead(404).end('not found\n');
  };
  const server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 30_000;
  return server;
}

/**
 * The page of GET /page: fetches its assets one after another, so a browser reuses one connection for them,
 * or all at once, so it spreads them over its several connections to the host (and reuses those).
 */
function assetPage(n: number, parallel: boolean): string {
  const paths = Array.from({ length: n }, (_, i) => `/${i % 2 === 0 ? 'a' : 'b'}/${i}`);
  return `<!doctype html><html><head><title>baton assets</title></head><body>
<h1 id="marker">baton page</h1><pre id="assets"></pre>
<script>
(async () => {
  const one = async (p) => {
    try {
      const r = await fetch(p, { cache: 'no-store' });
      return p + ' ' + r.status + ' ' + r.headers.get('x-baton-backend') + ' ' + (await r.text()).trim();
    } catch (e) { return p + ' error ' + e; }
  };
  const paths = ${JSON.stringify(paths)};
  const out = [];
  if (${String(parallel)}) out.push(...await Promise.all(paths.map(one)));
  else for (const p of paths) out.push(await one(p));
  document.getElementById('assets').textContent = out.join('\\n');
  document.body.dataset.done = String(out.length);
})();
</script></body></html>
`;
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
