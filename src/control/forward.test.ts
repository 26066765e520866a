// Forwarded handoffs over real sockets: the front-end names its VIPs, the agent answers GUARD, and only then
// does the channel offer forwardFirst; a HANDOFF_FWD is delivered at once (onHandoff sees `forwarded`), counts
// as committed in LOAD, and an ABORT that follows it still reaches onAbort.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { VipAddress } from '../wire/frame.ts';
import { deferred, startServer, startUpClient } from './testing.ts';

const VIP: VipAddress = { family: 4, address: '192.0.2.1', port: 80 };
const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond());
};

test('VIPS is answered with GUARD; forwardFirst follows it, and drops with the channel', async (t) => {
  const seen: VipAddress[][] = [];
  const { server, port } = await startServer(t, { onVips: (v) => (seen.push([...v]), { early: true, lossless: true }) });
  const client = await startUpClient(t, port, { vips: () => [VIP] });
  await until(() => client.forwardFirst);
  assert.equal(client.lossless, true);
  assert.deepEqual(seen, [[VIP]]);
  await server.close();
  await once(client, 'down');
  assert.equal(client.forwardFirst, false);
});

test('an agent without a guard answers GUARD none, and a front-end that names no VIPs never forwards first', async (t) => {
  const { port } = await startServer(t, {});
  const named = await startUpClient(t, port, { vips: () => [VIP] });
  const silent = await startUpClient(t, port);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(named.forwardFirst, false);
  assert.equal(silent.forwardFirst, false);
});

test('HANDOFF_FWD reaches onHandoff as forwarded, counts as a commit in LOAD, and a later ABORT reaches onAbort', async (t) => {
  const calls: string[] = [];
  const { server, port } = await startServer(t, {
    onHandoff: async (id, _blob, _ctx, forwarded) => (calls.push(`handoff ${id} ${forwarded}`), { ok: true }),
    onCommit: (id) => calls.push(`commit ${id}`),
    onAbort: (id) => calls.push(`abort ${id}`),
    onVips: () => ({ early: true, lossless: false }),
  });
  server.reportLoad(0);
  const client = await startUpClient(t, port, { vips: () => [VIP] });
  const loads: number[] = [];
  client.on('load', (_a, _c, commits) => loads.push(commits));
  await until(() => client.forwardFirst);
  assert.deepEqual(await client.sendHandoff(5n, new Uint8Array([1]), true), { ok: true });
  assert.deepEqual(await client.sendHandoff(6n, new Uint8Array([1])), { ok: true });
  client.abort(5n);
  client.commit(6n);
  await until(() => calls.length === 4 && loads.at(-1) === 2);
  assert.deepEqual(calls, ['handoff 5 true', 'handoff 6 false', 'abort 5', 'commit 6']);
});

test('an ABORT that overtakes a forwarded handoff still in onHandoff drops it once it is done', async (t) => {
  const gate = deferred<void>();
  const calls: string[] = [];
  const { port } = await startServer(t, {
    onHandoff: async (id) => {
      await gate.promise;
      calls.push(`handoff ${id}`);
      return { ok: true };
    },
    onAbort: (id) => calls.push(`abort ${id}`),
    onVips: () => ({ early: true, lossless: false }),
  });
  const client = await startUpClient(t, port, { vips: () => [VIP] });
  await until(() => client.forwardFirst);
  const ack = client.sendHandoff(9n, new Uint8Array([1]), true);
  await new Promise((r) => setTimeout(r, 20));
  client.abort(9n);
  await new Promise((r) => setTimeout(r, 20));
  gate.resolve();
  assert.deepEqual(await ack, { ok: true });
  await until(() => calls.length === 2);
  assert.deepEqual(calls, ['handoff 9', 'abort 9']);
});
