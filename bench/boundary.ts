// What the request-boundary layer (src/backend/boundary.ts) costs per request: a Node http.Server
// on loopback fed either the accepted socket directly (today's in-process delivery) or through the
// layer (with a constant decide, and with a RoutingTable decide from a snapshot), loaded by wrk
// with keep-alive connections. Reports requests/s and the server's CPU per request for each.
//
//   node --import tsx bench/boundary.ts [--duration 5] [--repeats 3] [--connections 16] [--size 1024]
//
// Needs `wrk`. Each server runs in its own process; modes alternate within each repeat so drift on
// a shared machine hits them alike; medians are reported.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { wrapConnection, newBoundaryStats } from '../src/backend/boundary.ts';
import { RoutingTable } from '../src/policy/snapshot.ts';
import type { RequestHead } from '../src/wire/http-head.ts';

type Mode = 'direct' | 'relay' | 'layer' | 'layer+snapshot';
const MODES: readonly Mode[] = ['direct', 'relay', 'layer', 'layer+snapshot'];

/**
 * 'relay': the smallest Duplex that can stand in for the socket (no tracking), to split the
 * layer's cost into "any JavaScript stream in between" and "finding boundaries and deciding".
 */
class Relay extends Duplex {
  constructor(readonly real: net.Socket) {
    super({ allowHalfOpen: true });
    real.on('data', (d: Buffer) => {
      if (!this.push(d)) real.pause();
    });
    real.on('end', () => this.push(null));
    real.on('close', () => this.destroy());
    real.on('error', (e) => this.destroy(e));
    real.on('timeout', () => this.emit('timeout'));
  }
  get remoteAddress(): string | undefined {
    return this.real.remoteAddress;
  }
  setTimeout(ms: number): this {
    this.real.setTimeout(ms);
    return this;
  }
  override _read(): void {
    this.real.resume();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    if (this.real.write(chunk)) cb();
    else this.real.once('drain', cb);
  }
  override _writev(chunks: { chunk: Buffer }[], cb: () => void): void {
    this.real.cork();
    let ok = true;
    for (const { chunk } of chunks) ok = this.real.write(chunk);
    this.real.uncork();
    if (ok) cb();
    else this.real.once('drain', cb);
  }
  override _final(cb: () => void): void {
    this.real.end(cb);
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.real.destroy();
    cb(err);
  }
}
const LIMITS = { maxHeadBytes: 16384, maxHeaders: 100 };

/** Child: serve until stdin closes; answer "stats" with {requests, cpuUs}. */
async function serve(mode: Mode, size: number): Promise<void> {
  const body = Buffer.alloc(size, 'x');
  let requests = 0;
  const server = http.createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    res.end(body);
  });
  const table = new RoutingTable('b1');
  table.load({
    version: 1,
    router: {
      pools: [
        { name: 'api', policy: { name: 'lc' }, members: ['b2'] },
        { name: 'web', policy: { name: 'wrr' }, members: ['b1', 'b2'] },
      ],
      rules: [
        { match: { pathPrefix: '/api/' }, pool: 'api' },
        { match: { pathRegex: '\\.(png|css)$' }, pool: 'web' },
      ],
      defaultPool: 'web',
    },
    backends: [
      { id: 'b1', weight: 1, up: true },
      { id: 'b2', weight: 1, up: true },
    ],
    assignments: [],
  });
  const stats = newBoundaryStats();
  const decideFromTable = (h: RequestHead): 'stay' | 'move' =>
    table.decide({ method: h.method, target: h.target, path: h.path, host: h.host, headers: h.headerMap }).kind;
  const listener = net.createServer((socket) => {
    if (mode === 'direct') server.emit('connection', socket);
    else if (mode === 'relay') server.emit('connection', new Relay(socket));
    else {
      server.emit(
        'connection',
        wrapConnection(socket, { limits: LIMITS, stats, decide: mode === 'layer' ? () => 'stay' : decideFromTable }),
      );
    }
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  process.stdout.write(`${(listener.address() as net.AddressInfo).port}\n`);
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line === 'stats') {
      const u = process.cpuUsage();
      process.stdout.write(`${JSON.stringify({ requests, cpuUs: u.user + u.system, stays: stats.stays })}\n`);
    }
  }
  process.exit(0);
}

interface Sample {
  readonly rps: number;
  readonly cpuUsPerReq: number;
}

async function measure(mode: Mode, o: { duration: number; connections: number; size: number }): Promise<Sample> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', mode, '--size', String(o.size)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const port = Number((await lines.next()).value);
  const stats = async (): Promise<{ requests: number; cpuUs: number }> => {
    child.stdin!.write('stats\n');
    return JSON.parse(String((await lines.next()).value)) as { requests: number; cpuUs: number };
  };
  const url = `http://127.0.0.1:${port}/index.html`;
  // Warm-up: JIT and connection setup out of the measured window.
  await wrk(url, 1, o.connections);
  const before = await stats();
  const out = await wrk(url, o.duration, o.connections);
  const after = await stats();
  child.stdin!.end();
  await once(child, 'exit');
  const m = /Requests\/sec:\s+([0-9.]+)/.exec(out);
  if (m === null) throw new Error(`wrk: ${out}`);
  const n = after.requests - before.requests;
  return { rps: Number(m[1]), cpuUsPerReq: (after.cpuUs - before.cpuUs) / n };
}

async function wrk(url: string, seconds: number, connections: number): Promise<string> {
  const p = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(p, 'exit')) as [number];
  if (code !== 0) throw new Error(`wrk exit ${code}`);
  return out;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      size: { type: 'string', default: '1024' },
      duration: { type: 'string', default: '5' },
      repeats: { type: 'string', default: '3' },
      connections: { type: 'string', default: '16' },
    },
  });
  const size = Number(values.size);
  if (values.serve !== undefined) return serve(values.serve as Mode, size);
  const o = { duration: Number(values.duration), connections: Number(values.connections), size };
  const samples = new Map<Mode, Sample[]>(MODES.map((m) => [m, []]));
  for (let r = 0; r < Number(values.repeats); r++) {
    for (const mode of MODES) {
      const s = await measure(mode, o);
      samples.get(mode)!.push(s);
      process.stderr.write(`repeat ${r + 1} ${mode}: ${s.rps.toFixed(0)} req/s, ${s.cpuUsPerReq.toFixed(1)} µs CPU/req\n`);
    }
  }
  const base = samples.get('direct')!;
  const baseRps = median(base.map((s) => s.rps));
  const baseCpu = median(base.map((s) => s.cpuUsPerReq));
  console.log(`keep-alive, ${o.connections} connections, ${size} B responses, ${o.duration} s x ${values.repeats} (medians)`);
  console.log('| mode | req/s | vs direct | server CPU µs/req | extra µs/req |');
  console.log('|---|---|---|---|---|');
  for (const mode of MODES) {
    const ss = samples.get(mode)!;
    const rps = median(ss.map((s) => s.rps));
    const cpu = median(ss.map((s) => s.cpuUsPerReq));
    console.log(`| ${mode} | ${rps.toFixed(0)} | ${((rps / baseRps - 1) * 100).toFixed(1)}% | ${cpu.toFixed(1)} | ${(cpu - baseCpu).toFixed(1)} |`);
  }
}

await main();
