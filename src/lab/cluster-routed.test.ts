// End to end in the routed lab: the front-end hands connections off to back-ends in another subnet and forwards
// later client packets by flow-id encapsulation through the router; back-ends answer the client directly (DSR).
// Root only (loads the eBPF data plane).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { patternSha256 } from '../wire/pattern.ts';
import { startCluster } from './cluster.ts';
import { labUp } from './lab.ts';
import { runDriver } from './run-driver.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces, eBPF)' : false;

for (const family of [4, 6] as const) {
  test(`routed lab, IPv${family}: encap back-ends serve byte-exact bodies; responses bypass the front-end`, { skip }, async (t) => {
    const lab = await labUp({ backends: 2, routed: true, ipv6: family === 6 });
    t.after(() => lab.down());
    const cluster = await startCluster(lab, { family });
    t.after(() => cluster.stop());
    const fe = cluster.frontendConfig as { backends: { mode?: string }[]; steering: { kind?: string } };
    assert.deepEqual(fe.backends.map((b) => b.mode), ['encap', 'encap']);
    assert.equal(fe.steering.kind, 'bpf');

    const host = family === 6 ? `[${lab.vip6}]` : lab.vip;
    const r = await lab.exec(lab.client, ['sh', '-c', `curl -sS -g --max-time 30 'http://${host}/bytes/3000000' | sha256sum | cut -d' ' -f1`], {
      timeoutMs: 60_000,
    });
    assert.equal(r.stdout.trim(), patternSha256(3_000_000), `${r.stderr}\n${cluster.logs().slice(-2000)}`);

    const before = await lab.ifaceBytes(lab.frontend);
    const s = await runDriver(lab, {
      host: family === 6 ? lab.vip6! : lab.vip, port: 80, concurrency: 2, keepAlive: false, timeoutMs: 30_000,
      requests: Array.from({ length: 6 }, () => ({ method: 'GET', path: '/bytes/2000000', size: 2_000_000 })),
    });
    const after = await lab.ifaceBytes(lab.frontend);
    assert.equal(s.errors, 0, `${s.firstErrors.join('\n')}\n${cluster.logs().slice(-2000)}`);
    assert.deepEqual(Object.keys(s.perBackend).sort(), ['b1', 'b2']);
    // 12 MB served; the front-end's interface carries requests, handshakes and forwarded ACKs only.
    const feBytes = Number(after.rxBytes - before.rxBytes + after.txBytes - before.txBytes);
    assert.ok(feBytes < 0.05 * s.bytesServed, `front-end interface ${feBytes} bytes for ${s.bytesServed} served`);
  });
}
