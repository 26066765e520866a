// Several front-ends behind the lab's BGP/ECMP router, each handing connections off to the same back-ends (L2
// direct routing on their shared segment): requests spread over the front-ends and every body is byte-exact.
// Root and BIRD 2 only.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCluster } from './cluster.ts';
import { labUp } from './lab.ts';
import { runDriver } from './run-driver.ts';
import { bgpSkip } from './lab.fixture.ts';

const skip = bgpSkip('network namespaces');

test('2 front-ends behind ECMP hand off to shared back-ends; both serve, bodies byte-exact', { skip }, async (t) => {
  const lab = await labUp({ backends: 2, frontends: 2 });
  t.after(() => lab.down());
  const cluster = await startCluster(lab);
  t.after(() => cluster.stop());
  assert.deepEqual([...cluster.processes.keys()].sort(), ['b1', 'b2', 'fe', 'fe2']);

  const s = await runDriver(lab, {
    host: lab.vip, port: 80, concurrency: 4, keepAlive: false, timeoutMs: 30_000,
    requests: Array.from({ length: 40 }, (_, i) => ({ method: 'GET', path: `/bytes/${(i % 4 + 1) * 30_000}`, size: (i % 4 + 1) * 30_000 })),
  });
  assert.equal(s.errors, 0, `${s.firstErrors.join('\n')}\n${cluster.logs().slice(-3000)}`);
  assert.equal(s.requests, 40);
  const [a, b] = await Promise.all(lab.frontends.map((fe) => cluster.statsOf(fe)));
  // 40 connections from random client ports over 2 next hops: one front-end getting all has probability 2 * 2^-40.
  assert.ok(a!.handedOff > 0 && b!.handedOff > 0, `handed off: fe ${a!.handedOff}, fe2 ${b!.handedOff}`);
  assert.equal(a!.handedOff + b!.handedOff, 40);
});
