// Stand-in back-end for the benchmark while baton's own back-end agent is not available: a plain Node HTTP server
// with the sample app's behaviour (`GET /bytes/<N>` answers N deterministic bytes). Used by every path alike, so the
// comparison between paths stays fair. Usage: node --import tsx bench/stub-backend.ts <host> <port>

import { createServer } from 'node:http';

const MAX_BYTES = 64 * 1024 * 1024;
const cache = new Map<number, Buffer>();

/** Byte i of every body is (i * 31 + 7) mod 256: cheap, deterministic, not all-zero. */
function body(n: number): Buffer {
  let b = cache.get(n);
  if (b === undefined) {
    b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
    if (cache.size < 64) cache.set(n, b);
  }
  return b;
}

const [host = '127.0.0.1', portArg = '8080'] = process.argv.slice(2);
const server = createServer((req, res) => {
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  const n = m?.[1] === undefined ? NaN : Number(m[1]);
  if (req.method !== 'GET' || !Number.isInteger(n) || n > MAX_BYTES) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  res.end(body(n));
});
server.keepAliveTimeout = 30_000;
server.listen(Number(portArg), host, () => process.stdout.write(`ready ${host}:${portArg}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
