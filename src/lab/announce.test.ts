// Health <-> announcement in a BGP lab (issue 11.2), as root with BIRD 2: each front-end drives its host's BIRD
// (cluster option scaleOut). A front-end that cannot reach any back-end withdraws the VIP although its BIRD runs;
// one that stops (SIGTERM) withdraws it before exiting, while the other keeps announcing and serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCluster } from './cluster.ts';
import { labUp } from './lab.ts';
import { runDriver } from './run-driver.ts';
import { bgpSkip } from './lab.fixture.ts';

const skip = bgpSkip('network namespaces, eBPF');

test('front-ends with no back-end reachable withdraw the VIP; their BIRDs keep running', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labUp({ backends: 1, frontends: 2 });
  t.after(() => lab.down());
  assert.equal((await lab.waitForNextHops(2)).length, 2, 'BIRD alone announces');
  const cluster = await startCluster(lab, { scaleOut: true, skipAgents: ['b1'] });
  t.after(() => cluster.stop());
  assert.deepEqual(await lab.waitForNextHops(0, { timeoutMs: 10_000 }), []);
  const s = (await cluster.statsOf(lab.frontend)) as unknown as { announced?: boolean };
  assert.equal(s.announced, false);
});

test('a front-end stopped with SIGTERM withdraws the VIP first; the other keeps serving', { skip, timeout: 120_000 }, async (t) => {
  const lab = await labUp({ backends: 1, frontends: 2 });
  t.after(() => lab.down());
  const cluster = await startCluster(lab, { scaleOut: true });
  t.after(() => cluster.stop());
  const hops = await lab.waitForNextHops(2);
  const s = (await cluster.statsOf(lab.frontend)) as unknown as { announced?: boolean };
  assert.equal(s.announced, true);
  const fe2 = lab.frontends[1]!;
  await lab.killProcess(cluster.processes.get(fe2.name)!, 'SIGTERM');
  assert.deepEqual(await lab.waitForNextHops(1, { timeoutMs: 10_000 }), hops.filter((h) => h !== fe2.address));
  const r = await runDriver(lab, {
    host: lab.vip, port: 80, concurrency: 4, keepAlive: false, timeoutMs: 20_000,
    requests: Array.from({ length: 20 }, () => ({ method: 'GET', path: '/bytes/50000', size: 50_000 })),
  });
  assert.equal(r.errors, 0, r.firstErrors.join('\n'));
});
