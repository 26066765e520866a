// The fault suite (issue 10.6), end to end in one lab with bpf steering: the control channel fed hostile input
// while real handoffs go on, an agent SIGKILLed while handoffs are in flight (every client answered or cleanly
// failed, none left hanging), and that agent restarted (its channel comes back, handoffs to it resume). The tests
// share the cluster and run in order. Needs root; CI is root. Bounded: each driver request times out at 10 s.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterDown, clusterUp, CONTROL_PORT, type Cluster } from '../src/lab/cluster.ts';
import type { DriverJob, DriverSummary } from '../src/lab/driver.ts';
import type { Lab } from '../src/lab/lab.ts';
import { runDriver } from '../src/lab/run-driver.ts';
import type { ProbeResult } from './control-probe.ts';

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (network namespaces, TCP_REPAIR, eBPF)';
const PROBE = join(resolve(fileURLToPath(import.meta.url), '..'), 'control-probe.ts');

const job = (lab: Lab, n: number, concurrency: number): DriverJob => ({
  host: lab.vip, port: 80, concurrency, keepAlive: false, timeoutMs: 10_000,
  requests: Array.from({ length: n }, () => ({ method: 'GET' as const, path: '/bytes/1024', size: 1024 })),
});

/** A failure the client sees at once and can retry: the front-end's 503, or the connection refused/reset/closed. */
const clean = (kind: string): boolean => kind === 'status 503' || /ECONNRESET|ECONNREFUSED|EPIPE|socket hang up/.test(kind);

describe('fault suite', { skip }, () => {
  let lab: Lab;
  let cluster: Cluster;

  before(async () => {
    ({ lab, cluster } = await clusterUp({ backends: 3 }, { steering: 'bpf' }));
  });
  after(() => clusterDown(cluster, lab));

  /** Established TCP sockets in a back-end's namespace whose peer port is one of `ports`. */
  const socketsOn = async (backend: number, ports: readonly number[]): Promise<string[]> => {
    const r = await lab.exec(lab.backends[backend]!, ['ss', '-Htn']);
    return r.stdout.split('\n').filter((l) => ports.some((p) => l.includes(`${lab.client.address}:${p} `) || l.endsWith(`${lab.client.address}:${p}`)));
  };

  test('control channel fed garbage, oversized lengths, wrong HMACs and replays: nothing injected, the agent keeps serving', async () => {
    const base = 41000;
    const traffic = runDriver(lab, job(lab, 300, 6));
    const r = await lab.exec(
      lab.frontend,
      ['env', `BATON_SECRET=${cluster.secret}`, 'node', '--import', 'tsx', PROBE, lab.backends[0]!.address, String(CONTROL_PORT), lab.vip, lab.client.address, String(base)],
      { timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as ProbeResult);
    const control = results.find((x) => x.name === 'control');
    // The positive control proves the probe's HANDOFF is one the agent would inject: without it, "no ACK" below
    // could mean a broken probe rather than a refusing agent.
    assert.deepEqual([control?.authOk, control?.acksOk], [true, 1], `positive control: ${JSON.stringify(control)}`);
    console.log(`# probe: ${results.map((x) => `${x.name} auth=${x.authOk} acks=${x.acksOk}/${x.acksFailed} closed=${x.closedByAgent} [${x.frames.join(',')}]`).join('; ')}`);
    const hostile = results.filter((x) => x.name !== 'control');
    assert.equal(hostile.length, 11, r.stdout);
    for (const x of hostile) {
      assert.equal(x.authOk, false, `${x.name} authenticated: ${JSON.stringify(x)}`);
      assert.equal(x.acksOk + x.acksFailed, 0, `${x.name} got an ACK: ${JSON.stringify(x)}`);
      assert.equal(x.closedByAgent, true, `${x.name}: the agent did not hang up: ${JSON.stringify(x)}`);
      assert.ok(x.frames.every((k) => k === 'challenge'), `${x.name}: the agent sent ${x.frames.join(',')}`);
    }
    // No socket was ever restored for the probe's made-up connections (the control's was aborted).
    const ports = Array.from({ length: 12 }, (_, i) => base + i);
    assert.deepEqual(await socketsOn(0, ports), [], 'sockets restored for the probe');

    const s: DriverSummary = await traffic;
    assert.equal(s.errors, 0, `${JSON.stringify(s.errorKinds)}\n${cluster.logs().slice(-2000)}`);
    assert.ok((s.perBackend['b1'] ?? 0) > 0, `b1 served during the probe: ${JSON.stringify(s.perBackend)}`);
    const st = await cluster.stats();
    assert.equal(st.perBackend['b1']?.up, true, 'the front-end channel to b1 stayed up');
    const after = await runDriver(lab, job(lab, 30, 3));
    assert.equal(after.errors, 0, JSON.stringify(after.errorKinds));
    assert.ok((after.perBackend['b1'] ?? 0) > 0, 'b1 serves after the probe');
  });

  test('an agent SIGKILLed while handoffs are in flight: every request answered or cleanly failed, none hangs', async () => {
    const n = 600;
    let killed: Promise<void> | undefined;
    let doneAtKill = 0;
    const s = await runDriver(lab, job(lab, n, 16), (done) => {
      if (killed === undefined && done >= 150) {
        doneAtKill = done;
        killed = lab.killProcess(cluster.processes.get('b2')!, 'SIGKILL');
      }
    });
    await killed;
    assert.ok(killed !== undefined && doneAtKill < n, 'the kill happened during the run');
    const kinds = Object.entries(s.errorKinds);
    const hung = kinds.filter(([k]) => !clean(k));
    const cleanFails = kinds.filter(([k]) => clean(k)).reduce((a, [, v]) => a + v, 0);
    const line = `ok ${s.ok}, clean failures ${cleanFails}, other ${JSON.stringify(Object.fromEntries(hung))}, per back-end ${JSON.stringify(s.perBackend)}`;
    console.log(`# agent kill: ${n} requests, killed b2 after ${doneAtKill}: ${line}`);
    assert.equal(s.requests, n, 'every request finished');
    assert.deepEqual(hung, [], `requests that hung or broke: ${line}\n${cluster.logs().slice(-2000)}`);
    assert.equal(s.ok + cleanFails, n);
    // The others took over: most requests were answered, and b1 and b3 served after the kill.
    assert.ok(s.ok >= n - 100, line);
    assert.ok((s.perBackend['b1'] ?? 0) + (s.perBackend['b3'] ?? 0) >= n - doneAtKill - 100, line);
    const st = await cluster.stats();
    assert.equal(st.perBackend['b2']?.up, false, 'b2 seen down');
    // With b2 down, new requests are all answered by the others.
    const later = await runDriver(lab, job(lab, 60, 4));
    assert.equal(later.errors, 0, JSON.stringify(later.errorKinds));
    assert.equal(later.perBackend['b2'], undefined);
  });

  test('the killed agent restarted: its channel comes back and handoffs to it resume', async () => {
    await cluster.restartAgent('b2');
    assert.equal((await cluster.stats()).perBackend['b2']?.up, true);
    const s = await runDriver(lab, job(lab, 90, 3));
    assert.equal(s.errors, 0, `${JSON.stringify(s.errorKinds)}\n${cluster.logs().slice(-2000)}`);
    assert.ok((s.perBackend['b2'] ?? 0) >= 10, `b2 serves again: ${JSON.stringify(s.perBackend)}`);
    // Load counts converge once traffic stops, restarted agent included.
    let active: number[] = [];
    for (let i = 0; i < 40; i++) {
      const st = await cluster.stats();
      active = ['b1', 'b2', 'b3'].map((b) => st.perBackend[b]?.active ?? -1);
      if (active.every((a) => a === 0)) break;
      await sleep(250);
    }
    assert.deepEqual(active, [0, 0, 0], 'front-end counts after traffic stopped');
  });
});
