// The fault tooling against a running cluster: random loss on the client's link (1 % and 5 %, both directions)
// and every body still arrives byte-exact through the VIP. Root only; bounded by the driver's timeouts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCluster } from './cluster.ts';
import { labUp } from './lab.ts';
import { runDriver } from './run-driver.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

test('bodies are byte-exact through the VIP with 1 % and 5 % loss on the client link', { skip }, async (t) => {
  const lab = await labUp({ backends: 2 });
  t.after(() => lab.down());
  // The product's linger (2 s), not the lab's 1 s: a closing flow is forgotten once its client was quiet that long,
  // and at 5 % loss the back-end's retransmission backoff can keep a client quiet past 1 s while the tail of a
  // response is still on its way (its late ACK then meets the front-end's stack). Suspected cause of one
  // "aborted" response in CI; not reproduced in 6 local runs.
  const cluster = await startCluster(lab, { lingerMs: 2000 });
  t.after(() => cluster.stop());
  for (const percent of [1, 5]) {
    await lab.setLoss(lab.client, percent);
    const s = await runDriver(lab, {
      host: lab.vip, port: 80, concurrency: 3, keepAlive: false, timeoutMs: 60_000,
      requests: Array.from({ length: 9 }, (_, i) => ({ method: 'GET', path: `/bytes/${(i + 1) * 100_000}`, size: (i + 1) * 100_000 })),
    });
    assert.equal(s.errors, 0, `${percent} %: ${s.firstErrors.join('\n')}\n${cluster.logs().slice(-2000)}`);
    assert.equal(s.requests, 9);
    // The loss really happened, both ways. Packets here are GSO super-packets (offloads stay on), so 9 requests are
    // only some hundreds of them each way: at 1 % none dropped is plausible, at 5 % it would be a bug.
    const drops = await lab.faultDrops(lab.client);
    if (percent === 5) assert.ok(drops.in > 0 && drops.out > 0, `${percent} %: dropped ${JSON.stringify(drops)}`);
  }
  await lab.clearLoss(lab.client);
});
