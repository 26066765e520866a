// End to end over IPv6: a cluster serving the lab's IPv6 VIP hands connections off to its back-ends, and curl and
// Node clients in the client namespace get byte-exact bodies through [fd77::100]. Root only.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { patternSha256 } from '../wire/pattern.ts';
import { startCluster } from './cluster.ts';
import { labUp } from './lab.ts';
import { runDriver } from './run-driver.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

test('handoffs over the IPv6 VIP: curl and Node get byte-exact bodies from every back-end', { skip }, async (t) => {
  const lab = await labUp({ backends: 2, ipv6: true });
  t.after(() => lab.down());
  const cluster = await startCluster(lab, { family: 6 });
  t.after(() => cluster.stop());
  assert.equal(cluster.frontendConfig['vip'], 'fd77::100');

  for (const size of [1000, 1 << 20]) {
    const url = `http://[${lab.vip6}]/bytes/${size}`;
    const r = await lab.exec(lab.client, ['sh', '-c', `curl -sS -g --max-time 30 '${url}' | sha256sum | cut -d' ' -f1`], {
      timeoutMs: 60_000,
    });
    assert.equal(r.stdout.trim(), patternSha256(size), `${url}: ${r.stderr}\n${cluster.logs().slice(-2000)}`);
  }

  const s = await runDriver(lab, {
    host: lab.vip6!, port: 80, concurrency: 2, keepAlive: false, timeoutMs: 30_000,
    requests: Array.from({ length: 8 }, (_, i) => ({ method: 'GET', path: `/bytes/${(i + 1) * 50_000}`, size: (i + 1) * 50_000 })),
  });
  assert.equal(s.errors, 0, s.firstErrors.join('\n'));
  assert.equal(s.requests, 8);
  assert.deepEqual(Object.keys(s.perBackend).sort(), ['b1', 'b2']);
  const stats = await cluster.stats();
  assert.ok(stats.handedOff >= 10, `handed off ${stats.handedOff}`);
});
