import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { BackendTable } from './backends.ts';
import { HealthChecker, httpProbe, type HealthState, type HealthTarget, type ProbeRequest, type ProbeResult, type Timers } from './health.ts';

const target = (id: string, check: Partial<HealthTarget['check']> = {}, port = 80): HealthTarget => ({
  id, address: '127.0.0.1', defaultPort: port,
  check: { path: '/', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3, ...check },
});

/** Timers that only fire when the test says so. */
class FakeTimers implements Timers {
  pending = new Map<number, { fn: () => void; ms: number }>();
  #next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const h = this.#next++;
    this.pending.set(h, { fn, ms });
    return h;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  delays(): number[] {
    return [...this.pending.values()].map((p) => p.ms);
  }
  /** Fire every pending timer once. */
  fire(): void {
    const now = [...this.pending];
    this.pending.clear();
    for (const [, p] of now) p.fn();
  }
}

/** A probe answering from a script, recording what it was asked. */
const scripted = (results: ProbeResult[]) => {
  const asked: ProbeRequest[] = [];
  const probe = async (r: ProbeRequest): Promise<ProbeResult> => {
    asked.push(r);
    return results.shift() ?? { ok: false, reason: 'script ended' };
  };
  return { probe, asked };
};
const ok: ProbeResult = { ok: true, status: 200 };
const bad: ProbeResult = { ok: false, reason: 'status 503' };

test('fall consecutive failures take a back-end out, rise consecutive successes bring it back', async () => {
  const { probe } = scripted([bad, bad, ok, bad, bad, bad, ok, bad, ok, ok]);
  const changes: HealthState[] = [];
  const hc = new HealthChecker({ probe, timers: new FakeTimers(), onChange: (s) => changes.push(s) });
  hc.configure([target('b1')]);
  const seq: boolean[] = [];
  for (let i = 0; i < 10; i++) seq.push((await hc.checkNow('b1'))!.healthy);
  //                   bad   bad   ok    bad   bad   bad    ok     bad    ok     ok
  assert.deepEqual(seq, [true, true, true, true, true, false, false, false, false, true]);
  assert.deepEqual(changes.map((c) => c.healthy), [false, true]);
  assert.equal(hc.state('b1')!.checks, 10);
  assert.equal(hc.state('b1')!.lastStatus, 200);
});

test('a back-end saved as failing starts failing and needs rise successes', async () => {
  const { probe } = scripted([ok, ok]);
  const hc = new HealthChecker({ probe, timers: new FakeTimers() });
  hc.configure([target('b1'), target('b2')], new Map([['b1', false]]));
  assert.equal(hc.healthy('b1'), false);
  assert.equal(hc.healthy('b2'), true);
  await hc.checkNow('b1');
  assert.equal(hc.healthy('b1'), false);
  await hc.checkNow('b1');
  assert.equal(hc.healthy('b1'), true);
});

test('a back-end without a check is healthy and has no state', () => {
  const hc = new HealthChecker({ probe: scripted([]).probe, timers: new FakeTimers() });
  assert.equal(hc.healthy('nobody'), true);
  assert.equal(hc.state('nobody'), undefined);
});

test('probes run on the interval; the request uses the check fields', async () => {
  const timers = new FakeTimers();
  const { probe, asked } = scripted([ok, ok]);
  const hc = new HealthChecker({ probe, timers });
  hc.configure([target('b1', { path: '/health', port: 8080, host: 'svc.example', intervalMs: 5000 })]);
  assert.deepEqual(timers.delays(), [0], 'first probe at once');
  timers.fire();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(asked, [{ address: '127.0.0.1', port: 8080, path: '/health', host: 'svc.example', timeoutMs: 500 }]);
  assert.deepEqual(timers.delays(), [5000], 'next probe an interval later');
  hc.close();
  assert.deepEqual(timers.delays(), []);
});

test('state survives reconfiguration; removed back-ends are forgotten and a stale answer is ignored', async () => {
  const timers = new FakeTimers();
  const { probe } = scripted([bad, bad, bad]);
  const hc = new HealthChecker({ probe, timers });
  hc.configure([target('b1'), target('b2')]);
  for (let i = 0; i < 3; i++) await hc.checkNow('b1');
  assert.equal(hc.healthy('b1'), false);
  hc.configure([target('b1', { intervalMs: 2000 })]);
  assert.equal(hc.healthy('b1'), false, 'a reload keeps health');
  assert.equal(hc.state('b2'), undefined);

  let release!: (r: ProbeResult) => void;
  const slow = new HealthChecker({ probe: () => new Promise((r) => (release = r)), timers: new FakeTimers() });
  slow.configure([target('b1', { fall: 1 })]);
  const pending = slow.checkNow('b1');
  slow.configure([]);
  release(bad);
  await pending;
  assert.equal(slow.healthy('b1'), true);
});

test('httpProbe against a local server: status, path and Host header, refusal, timeout', async (t) => {
  let status = 200;
  const seen: { url?: string; host?: string }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url, host: req.headers.host });
    if (req.url === '/hang') return; // never answers
    res.writeHead(status).end('x');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const req = (path: string, timeoutMs = 2000): ProbeRequest => ({ address: '127.0.0.1', port, path, host: 'h.example', timeoutMs });

  assert.deepEqual(await httpProbe(req('/health')), { ok: true, status: 200 });
  assert.deepEqual(seen[0], { url: '/health', host: 'h.example' });
  status = 302;
  assert.deepEqual(await httpProbe(req('/')), { ok: true, status: 302 });
  status = 503;
  assert.deepEqual(await httpProbe(req('/')), { ok: false, reason: 'status 503' });
  assert.deepEqual(await httpProbe(req('/hang', 50)), { ok: false, reason: 'timeout after 50 ms' });

  // The checker with the real probe: the server starts failing, then recovers.
  const hc = new HealthChecker({ timers: new FakeTimers() });
  hc.configure([target('b1', { fall: 2, rise: 1, path: '/h' }, port)]);
  status = 500;
  await hc.checkNow('b1');
  await hc.checkNow('b1');
  assert.equal(hc.healthy('b1'), false);
  assert.equal(hc.state('b1')!.lastError, 'status 500');
  status = 204;
  await hc.checkNow('b1');
  assert.equal(hc.healthy('b1'), true);

  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const refused = await httpProbe({ ...req('/'), port: deadPort });
  assert.equal(refused.ok, false);
  assert.match(refused.ok ? '' : refused.reason, /ECONNREFUSED/);
});

test('a back-end failing its health check is not offered to the policies; the others are', async () => {
  const { probe } = scripted([bad, bad, bad]);
  const hc = new HealthChecker({ probe, timers: new FakeTimers() });
  hc.configure([target('b1')]);
  const table = new BackendTable([{ id: 'b1', weight: 1 }, { id: 'b2', weight: 1 }], () => 'up', (id) => hc.healthy(id));
  const up = () => table.views().map((v) => [v.id, v.up]);
  assert.deepEqual(up(), [['b1', true], ['b2', true]]);
  for (let i = 0; i < 3; i++) await hc.checkNow('b1');
  assert.deepEqual(up(), [['b1', false], ['b2', true]]);
  assert.equal(table.list()[0]!.state, 'up', 'the channel state itself is unchanged');
});
