// Long-lived downloads for the scale-out tests (issue 11), run in the lab's client namespace: N concurrent
// GET /bytes/<size>, each read at a bounded rate (the client pauses reading, so TCP flow control slows the
// back-end: the lab has no netem), every body checked byte for byte against the pattern. JSON lines on stdout:
// {"type":"inflight"} once every download has received its first bytes, then {"type":"summary", results}.
// Usage: node --import tsx slow-downloads.ts '<json: {host, port, count, size, bytesPerS, timeoutMs}>'
import { createHash } from 'node:crypto';
import http from 'node:http';
import { patternSha256 } from '../wire/pattern.ts';

export interface SlowJob {
  readonly host: string;
  readonly port: number;
  readonly count: number;
  readonly size: number;
  readonly bytesPerS: number;
  readonly timeoutMs: number;
}

export interface SlowResult {
  readonly ok: boolean;
  readonly bytes: number;
  readonly backend: string;
  readonly localPort: number;
  readonly ms: number;
  readonly error?: string;
}

function one(job: SlowJob, expected: string, started: () => void): Promise<SlowResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let bytes = 0;
    let backend = '?';
    let localPort = 0;
    let first = true;
    const h = createHash('sha256');
    const done = (ok: boolean, error?: string): void => {
      clearTimeout(timer);
      resolve({ ok, bytes, backend, localPort, ms: Math.round(performance.now() - t0), ...(error ? { error } : {}) });
    };
    const req = http.get({ host: job.host, port: job.port, path: `/bytes/${job.size}`, agent: false }, (res) => {
      backend = String(res.headers['x-baton-backend'] ?? '?');
      localPort = res.socket.localPort ?? 0;
      const t1 = performance.now();
      res.on('data', (d: Buffer) => {
        if (first) {
          first = false;
          started();
        }
        h.update(d);
        bytes += d.length;
        const ahead = bytes / job.bytesPerS - (performance.now() - t1) / 1000;
        if (ahead > 0) {
          res.pause();
          setTimeout(() => res.resume(), Math.ceil(ahead * 1000));
        }
      });
      res.on('end', () => {
        const sha = h.digest('hex');
        if (res.statusCode !== 200) return done(false, `status ${res.statusCode}`);
        if (bytes !== job.size) return done(false, `got ${bytes} of ${job.size} bytes`);
        done(sha === expected, sha === expected ? undefined : 'body differs from the pattern');
      });
      res.on('error', (e) => done(false, e.message));
    });
    req.on('error', (e) => done(false, e.message));
    const timer = setTimeout(() => {
      req.destroy();
      done(false, `timeout after ${job.timeoutMs} ms at ${bytes} bytes`);
    }, job.timeoutMs);
  });
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as SlowJob;
  const expected = patternSha256(job.size);
  let started = 0;
  const onStart = (): void => {
    if (++started === job.count) process.stdout.write(`${JSON.stringify({ type: 'inflight' })}\n`);
  };
  const results = await Promise.all(Array.from({ length: job.count }, () => one(job, expected, onStart)));
  process.stdout.write(`${JSON.stringify({ type: 'summary', results })}\n`);
}

if (process.argv[1]?.endsWith('slow-downloads.ts')) void main();
