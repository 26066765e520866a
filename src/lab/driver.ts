// An HTTP load driver run inside the lab's client namespace (a process started once per run):
// issues the requests of a job with bounded concurrency, checks every body byte-for-byte
// against the deterministic pattern (or the POST echo's sha256), and reports JSON lines on
// stdout: {"type":"progress",...} while running, then one {"type":"summary",...}.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { forEachPatternChunk, patternSha256 } from '../wire/pattern.ts';

export interface DriverRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** GET /bytes/<n>: expected body length; POST: bytes of pattern body to send. */
  readonly size: number;
}

export interface DriverJob {
  readonly host: string;
  readonly port: number;
  readonly concurrency: number;
  readonly keepAlive: boolean;
  readonly timeoutMs: number;
  readonly requests: readonly DriverRequest[];
}

export interface DriverSummary {
  readonly type: 'summary';
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  readonly bytesServed: number;
  readonly perBackend: Record<string, number>;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  readonly elapsedMs: number;
  readonly firstErrors: readonly string[];
  /** Failed requests by error (`status 503`, `timeout`, `socket hang up`, ...): tells clean failures from hangs. */
  readonly errorKinds: Record<string, number>;
}

interface Outcome {
  readonly ok: boolean;
  readonly backend: string;
  readonly bytes: number;
  readonly ms: number;
  readonly error?: string;
}

const shaCache = new Map<number, string>();
const expectedSha = (n: number): string => {
  let s = shaCache.get(n);
  if (!s) shaCache.set(n, (s = patternSha256(n)));
  return s;
};

function one(job: DriverJob, agent: http.Agent | false, r: DriverRequest): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const done = (o: Omit<Outcome, 'ms'>): void => resolve({ ...o, ms: performance.now() - t0 });
    const req = http.request(
      {
        host: job.host, port: job.port, method: r.method, path: r.path, agent,
        headers: r.method === 'POST' ? { 'content-length': r.size } : {},
        timeout: job.timeoutMs,
      },
      (res) => {
        const h = createHash('sha256');
        let n = 0;
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => {
          n += d.length;
          if (r.method === 'GET') h.update(d);
          else chunks.push(d);
        });
        res.on('error', (e) => done({ ok: false, backend: '', bytes: n, error: e.message }));
        res.on('end', () => {
          const backend = String(res.headers['x-baton-backend'] ?? '?');
          if (res.statusCode !== 200) return done({ ok: false, backend, bytes: n, error: `status ${res.statusCode}` });
          if (r.method === 'GET') {
            const ok = n === r.size && h.digest('hex') === expectedSha(r.size);
            return done({ ok, backend, bytes: n, ...(ok ? {} : { error: `body mismatch: ${n} of ${r.size} bytes` }) });
          }
          const echo = JSON.parse(Buffer.concat(chunks).toString()) as { sha256: string; length: number };
          const ok = echo.length === r.size && echo.sha256 === expectedSha(r.size);
          done({ ok, backend, bytes: n, ...(ok ? {} : { error: `upload mismatch: server saw ${echo.length} of ${r.size}` }) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => done({ ok: false, backend: '', bytes: 0, error: e.message }));
    if (r.method === 'POST') {
      // Stream the body in pieces so that part of it is still in flight at handoff time.
      const parts: Uint8Array[] = [];
      forEachPatternChunk(r.size, (c) => parts.push(c));
      let i = 0;
      const pump = (): void => {
        while (i < parts.length) if (!req.write(parts[i++]!)) return void req.once('drain', pump);
        req.end();
      };
      pump();
    } else req.end();
  });
}

export async function runJob(job: DriverJob, progress: (done: number) => void): Promise<DriverSummary> {
  const agent = job.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: job.concurrency }) : false;
  const outcomes: Outcome[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < job.requests.length) {
      const r = job.requests[next++]!;
      outcomes.push(await one(job, agent, r));
      progress(outcomes.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.requests.length) }, worker));
  if (agent) agent.destroy();
  const perBackend: Record<string, number> = {};
  for (const o of outcomes) if (o.ok) perBackend[o.backend] = (perBackend[o.backend] ?? 0) + 1;
  const ms = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  const q = (p: number): number => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0;
  const ok = outcomes.filter((o) => o.ok);
  const errorKinds: Record<string, number> = {};
  for (const o of outcomes) if (!o.ok) errorKinds[o.error ?? '?'] = (errorKinds[o.error ?? '?'] ?? 0) + 1;
  return {
    type: 'summary',
    requests: outcomes.length,
    ok: ok.length,
    errors: outcomes.length - ok.length,
    bytesServed: ok.reduce((s, o) => s + o.bytes, 0),
    perBackend,
    latencyMs: { p50: q(0.5), p99: q(0.99) },
    elapsedMs: performance.now() - t0,
    firstErrors: outcomes.filter((o) => !o.ok).slice(0, 5).map((o) => o.error ?? '?'),
    errorKinds,
  };
}

// As a program: `driver.ts JOB.json`.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as DriverJob;
  let last = 0;
  void runJob(job, (done) => {
    const now = performance.now();
    if (now - last > 100 || done === job.requests.length) {
      last = now;
      process.stdout.write(`${JSON.stringify({ type: 'progress', done, total: job.requests.length })}\n`);
    }
  }).then((s) => process.stdout.write(`${JSON.stringify(s)}\n`));
}
