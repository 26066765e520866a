// The authenticated channel over real sockets: handoffs and their ACKs, failures, reconnects,
// heartbeats, backpressure, load and flow-end reports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { FlowInfo } from '../wire/frame.ts';
import { ControlClient } from './client.ts';
import { CONTROL_ERR } from './errors.ts';
import type { HandoffContext } from './server.ts';
import { HOST, RawPeer, SECRET, deferred, rawServer, startClient, startServer, startUpClient } from './testing.ts';

const blobOf = (id: bigint): Uint8Array => new TextEncoder().encode(`blob-${id}`);

test('100 handoffs in flight are each acked with their own id', async (t) => {
  const release = deferred<void>();
  let arrived = 0;
  const { port } = await startServer(t, {
    onHandoff: async (id, blob) => {
      assert.equal(new TextDecoder().decode(blob), `blob-${id}`);
      if (++arrived === 100) release.resolve();
      await release.promise; // all 100 are in flight at once
      await new Promise((r) => setImmediate(r, Number(id % 7n)));
      return id % 2n === 0n ? { ok: true } : { ok: false, code: 'ODD', reason: `refused ${id}` };
    },
  });
  const client = await startUpClient(t, port);
  const ids = Array.from({ length: 100 }, (_, i) => BigInt(i) + 1000n);
  const acks = await Promise.all(ids.map((id) => client.sendHandoff(id, blobOf(id))));
  acks.forEach((ack, i) => {
    const id = ids[i]!;
    if (id % 2n === 0n) assert.deepEqual(ack, { ok: true });
    else assert.deepEqual(ack, { ok: false, code: 'ODD', reason: `refused ${id}` });
  });
  assert.equal(client.inFlight, 0);
});

test('a refused handoff returns the agent’s code and reason', async (t) => {
  const { port } = await startServer(t, { onHandoff: async () => ({ ok: false, code: 'BATON_ERR_NO_VIP', reason: 'vip not on lo' }) });
  const client = await startUpClient(t, port);
  assert.deepEqual(await client.sendHandoff(1n, blobOf(1n)), { ok: false, code: 'BATON_ERR_NO_VIP', reason: 'vip not on lo' });
});

test('a throwing onHandoff is answered BATON_ERR_INJECT with its message', async (t) => {
  const { port } = await startServer(t, {
    onHandoff: async () => {
      throw new Error('inject: restore window: EINVAL');
    },
  });
  const client = await startUpClient(t, port);
  assert.deepEqual(await client.sendHandoff(1n, blobOf(1n)), {
    ok: false,
    code: CONTROL_ERR.INJECT,
    reason: 'inject: restore window: EINVAL',
  });
});

test('no ack in time resolves HANDOFF_TIMEOUT; the late ack is ignored and the channel stays usable', async (t) => {
  const late = deferred<void>();
  const lateAckSent = deferred<void>();
  const { port } = await startServer(t, {
    onHandoff: async (id) => {
      if (id === 1n) {
        await late.promise;
        setImmediate(() => lateAckSent.resolve());
      }
      return { ok: true };
    },
  });
  const client = await startUpClient(t, port, { handoffTimeoutMs: 20 });
  const ack = await client.sendHandoff(1n, blobOf(1n));
  assert.equal(ack.ok, false);
  assert.equal(!ack.ok && ack.code, CONTROL_ERR.HANDOFF_TIMEOUT);
  late.resolve();
  await lateAckSent.promise;
  assert.equal(client.state, 'up');
  assert.deepEqual(await client.sendHandoff(2n, blobOf(2n)), { ok: true });
});

test('handoffs pending when the channel drops resolve CHANNEL_LOST, and the agent sees the abort', async (t) => {
  const started = deferred<void>();
  const signals: AbortSignal[] = [];
  const { server, port } = await startServer(t, {
    onHandoff: (_id, _blob, ctx: HandoffContext) => {
      signals.push(ctx.signal);
      if (signals.length === 3) started.resolve();
      return new Promise(() => undefined); // never answers
    },
  });
  const client = await startUpClient(t, port, { handoffTimeoutMs: 60_000 });
  const pending = [1n, 2n, 3n].map((id) => client.sendHandoff(id, blobOf(id)));
  await started.promise;
  const down = once(client, 'down');
  await server.close();
  const acks = await Promise.all(pending);
  for (const ack of acks) assert.equal(!ack.ok && ack.code, CONTROL_ERR.CHANNEL_LOST);
  await down;
  assert.ok(signals.every((s) => s.aborted));
});

test('handoffs are refused locally when the channel is not up, too large, duplicated or closed', async (t) => {
  const idle = new ControlClient({ secret: SECRET, address: { host: HOST, port: 9 }, name: 'fe' });
  const down = await idle.sendHandoff(1n, blobOf(1n));
  assert.equal(!down.ok && down.code, CONTROL_ERR.CHANNEL_DOWN);
  assert.equal(idle.state, 'down');

  const hold = deferred<void>();
  const { port } = await startServer(t, {
    onHandoff: async () => {
      await hold.promise;
      return { ok: true };
    },
  });
  const client = await startUpClient(t, port, { maxFrameBytes: 1000 });
  const big = await client.sendHandoff(1n, new Uint8Array(1000));
  assert.equal(!big.ok && big.code, CONTROL_ERR.HANDOFF_TOO_LARGE);
  const first = client.sendHandoff(2n, blobOf(2n));
  const dup = await client.sendHandoff(2n, blobOf(2n));
  assert.equal(!dup.ok && dup.code, CONTROL_ERR.DUPLICATE_ID);
  await assert.rejects(client.sendHandoff(-1n, blobOf(1n)), { code: CONTROL_ERR.INVALID_ARGUMENT });
  await client.close();
  const lost = await first;
  assert.equal(!lost.ok && lost.code, CONTROL_ERR.CHANNEL_LOST);
  const after = await client.sendHandoff(3n, blobOf(3n));
  assert.equal(!after.ok && after.code, CONTROL_ERR.CHANNEL_DOWN);
  assert.equal(client.state, 'down');
  hold.resolve();
});

test('the client reconnects to a restarted agent on the same port', async (t) => {
  const first = await startServer(t);
  const client = await startUpClient(t, first.port);
  const down = once(client, 'down');
  await first.server.close();
  await down;
  assert.notEqual(client.state, 'up');
  const second = await startServer(t, { onHandoff: async () => ({ ok: false, code: 'SECOND', reason: 'b' }) }, first.port);
  assert.equal(second.port, first.port);
  await once(client, 'up');
  assert.deepEqual(await client.sendHandoff(1n, blobOf(1n)), { ok: false, code: 'SECOND', reason: 'b' });
});

test('a silent agent is detected by the heartbeat and the client reconnects', async (t) => {
  let connections = 0;
  const { port } = await rawServer(t, () => {
    connections++; // authenticates, then never answers PING
  });
  const client = await startUpClient(t, port, { heartbeatMs: 10 });
  const [reason] = await once(client, 'down');
  assert.equal(reason, 'heartbeat timeout');
  await once(client, 'up');
  assert.ok(connections >= 2);
});

test('an authenticated peer that stops sending is dropped by the agent’s idle timeout', async (t) => {
  const { server, port } = await startServer(t, { idleTimeoutMs: 20 });
  const peerDown = once(server, 'peerDown');
  const raw = await RawPeer.connect(t, port);
  assert.equal((await raw.authenticate()).kind, 'auth-ok');
  assert.equal((await peerDown)[1], 'idle timeout');
  await raw.closed;
});

test('an agent that stops reading makes the client refuse with CHANNEL_BUSY', async (t) => {
  const { port } = await rawServer(t, (peer) => peer.socket.pause());
  const client = await startUpClient(t, port, { maxQueuedBytes: 1 << 20, handoffTimeoutMs: 50 });
  const blob = new Uint8Array(256 * 1024);
  const sent: Array<Promise<unknown>> = [];
  let busy: { ok: boolean; code?: string } | undefined;
  // The kernel's buffers absorb some megabytes first; then the socket queues and the limit applies.
  for (let id = 1n; id <= 400n && busy === undefined; id++) {
    const p = client.sendHandoff(id, blob);
    sent.push(p);
    const settled = await Promise.race([p, Promise.resolve(undefined)]);
    if (settled !== undefined && !settled.ok && settled.code === CONTROL_ERR.CHANNEL_BUSY) busy = settled;
  }
  assert.ok(busy !== undefined, 'expected CHANNEL_BUSY');
  await client.close();
  await Promise.all(sent);
});

test('load reports are coalesced to the latest value and sent to new peers on connect', async (t) => {
  const { server, port } = await startServer(t, { loadIntervalMs: 60_000, capacity: 500 });
  const client = await startUpClient(t, port);
  const loads: Array<[number, number | undefined]> = [];
  client.on('load', (active, capacity) => loads.push([active, capacity]));
  const first = once(client, 'load');
  for (let i = 1; i <= 50; i++) server.reportLoad(i); // one tick: the first goes now, the rest wait
  await first;
  assert.deepEqual(loads, [[1, 500]]);

  // A peer that connects later gets the current value right after AUTH_OK.
  const late = startClient(t, port, { name: 'fe-late' });
  const [active, capacity] = await once(late, 'load');
  assert.deepEqual([active, capacity], [50, 500]);
});

test('the latest load reaches the peer after the throttle interval', async (t) => {
  const { server, port } = await startServer(t, { loadIntervalMs: 5 });
  const client = await startUpClient(t, port);
  const loads: number[] = [];
  const done = deferred<void>();
  client.on('load', (active) => {
    loads.push(active);
    if (active === 50) done.resolve();
  });
  for (let i = 1; i <= 50; i++) server.reportLoad(i);
  await done.promise;
  assert.deepEqual(loads, [1, 50]);
});

test('flow-end names its handoff and goes to the front-end that handed it; unknown flows go to everyone', async (t) => {
  const flowA: FlowInfo = { family: 4, client: { address: '198.51.100.7', port: 40001 }, vip: { address: '192.0.2.1', port: 80 } };
  const flowB: FlowInfo = { family: 6, client: { address: '2001:db8::7', port: 40002 }, vip: { address: '2001:db8::80', port: 443 } };
  const { server, port } = await startServer(t, {
    onHandoff: async (id) => ({ ok: true, flow: id === 1n || id === 3n ? flowA : flowB }),
  });
  const a = await startUpClient(t, port, { name: 'fe-a' });
  const b = await startUpClient(t, port, { name: 'fe-b' });
  assert.deepEqual(await a.sendHandoff(1n, blobOf(1n)), { ok: true });
  assert.deepEqual(await b.sendHandoff(2n, blobOf(2n)), { ok: true });
  // A second connection on flowA's tuple (port reuse), handed by fe-a as handoff 3.
  assert.deepEqual(await a.sendHandoff(3n, blobOf(3n)), { ok: true });
  const endsA: Array<[FlowInfo, bigint]> = [];
  const endsB: Array<[FlowInfo, bigint]> = [];
  const done = deferred<void>();
  const record = (into: Array<[FlowInfo, bigint]>) => (f: FlowInfo, id: bigint) => {
    into.push([f, id]);
    if (endsA.length === 3 && endsB.length === 2) done.resolve();
  };
  a.on('flowEnd', record(endsA));
  b.on('flowEnd', record(endsB));

  // Both connections on flowA's tuple end, the newer one first: each report names its own
  // handoff, and both still reach fe-a (tracking is per connection, not per tuple).
  assert.equal(server.flowEnded(flowA, 3n), 1);
  assert.equal(server.flowEnded(flowA, 1n), 1);
  assert.equal(server.flowEnded(flowB, 2n), 1);
  const unknown: FlowInfo = { family: 4, client: { address: '203.0.113.9', port: 1 }, vip: { address: '192.0.2.1', port: 80 } };
  assert.equal(server.flowEnded(unknown, 9n), 2);
  await done.promise; // frames arrive in order, so each peer's last event is the broadcast
  assert.deepEqual(endsA, [[flowA, 3n], [flowA, 1n], [unknown, 9n]]);
  assert.deepEqual(endsB, [[flowB, 2n], [unknown, 9n]]);
});

test('a flow end whose front-end is away (restarting) is delivered when it connects again', async (t) => {
  const flow: FlowInfo = { family: 4, client: { address: '198.51.100.8', port: 40003 }, vip: { address: '192.0.2.1', port: 80 } };
  const { server, port } = await startServer(t, { onHandoff: async () => ({ ok: true, flow }) });
  const first = await startUpClient(t, port, { name: 'fe-a' });
  assert.deepEqual(await first.sendHandoff(5n, blobOf(5n)), { ok: true });
  const other = await startUpClient(t, port, { name: 'fe-b' });
  first.close();
  await new Promise((r) => setTimeout(r, 50));
  const seenByOther: bigint[] = [];
  other.on('flowEnd', (_f: FlowInfo, id: bigint) => seenByOther.push(id));
  assert.equal(server.flowEnded(flow, 5n), 0, 'fe-a is away: nobody is told yet, not even fe-b');
  // Listening before it is up: the kept report follows the handshake at once.
  const back = startClient(t, port, { name: 'fe-a' });
  const got = deferred<bigint>();
  back.on('flowEnd', (_f: FlowInfo, id: bigint) => got.resolve(id));
  assert.equal(await got.promise, 5n);
  assert.deepEqual(seenByOther, []);
});

test('load reports count the commits they include, and a commit alone triggers a report', async (t) => {
  const { server, port } = await startServer(t, { loadIntervalMs: 5, onHandoff: async () => ({ ok: true }) });
  const client = await startUpClient(t, port);
  const loads: Array<[number, number]> = [];
  let want = (_: [number, number]): boolean => false;
  let seen = deferred<void>();
  client.on('load', (active, _capacity, commits) => {
    loads.push([active, commits]);
    if (want([active, commits])) seen.resolve();
  });
  const until = async (pred: (l: [number, number]) => boolean): Promise<void> => {
    if (loads.some(pred)) return;
    seen = deferred<void>();
    want = pred;
    await seen.promise;
  };
  server.reportLoad(0);
  await until(([a, c]) => a === 0 && c === 0);
  // A commit for an id the agent no longer holds changes no count, yet the report must follow:
  // the front-end counted that commit and can only forget it once a report includes it.
  client.commit(77n);
  await until(([a, c]) => a === 0 && c === 1);
  assert.deepEqual(await client.sendHandoff(5n, blobOf(5n)), { ok: true });
  client.commit(5n);
  server.reportLoad(1);
  await until(([a, c]) => a === 1 && c === 2);
  // Same active as an earlier report, yet sent: the commit count differs.
  server.reportLoad(0);
  await until(([a, c]) => a === 0 && c === 2);
  assert.deepEqual(loads.at(-1), [0, 2]);
});
