// Two-phase handoffs: every handoff the agent accepted ends in exactly one onCommit or onAbort.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROL_ERR } from './errors.ts';
import type { ControlServerOptions } from './server.ts';
import { RawPeer, deferred, startServer, startUpClient } from './testing.ts';

const blob = new Uint8Array([1, 2, 3]);

/** A server that records onCommit/onAbort calls as "commit 1" / "abort 1" and wakes waiters. */
async function recordingServer(t: TestContext, o: Partial<ControlServerOptions> = {}) {
  const events: string[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const push = (e: string): void => {
    events.push(e);
    for (const w of waiters.splice(0)) if (events.length >= w.n) w.resolve();
    else waiters.push(w);
  };
  const { server, port } = await startServer(t, {
    onCommit: (id, ctx) => push(`commit ${id} ${ctx.peer.name}`),
    onAbort: (id) => push(`abort ${id}`),
    ...o,
  });
  /** Resolves once `n` events have been recorded. */
  const until = (n: number): Promise<void> =>
    events.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }));
  return { server, port, events, until };
}

test('commit and abort reach the agent once, only for handoffs it prepared', async (t) => {
  const { port, events, until } = await recordingServer(t, {
    onHandoff: async (id) => (id === 9n ? { ok: false, code: 'NO', reason: 'refused' } : { ok: true }),
  });
  const client = await startUpClient(t, port, { name: 'fe-a' });
  assert.deepEqual(await client.sendHandoff(1n, blob), { ok: true });
  assert.deepEqual(await client.sendHandoff(2n, blob), { ok: true });
  assert.equal((await client.sendHandoff(9n, blob)).ok, false);
  assert.ok(client.commit(9n)); // refused: ignored by the agent
  assert.ok(client.commit(77n)); // unknown: ignored
  assert.ok(client.commit(1n));
  assert.ok(client.commit(1n)); // second commit: ignored
  assert.ok(client.abort(2n));
  assert.ok(client.commit(2n)); // already aborted: ignored
  await until(2);
  // Frames are handled in order, so everything ignored above was seen before this marker.
  assert.deepEqual(await client.sendHandoff(3n, blob), { ok: true });
  client.abort(3n);
  await until(3);
  assert.deepEqual(events, ['commit 1 fe-a', 'abort 2', 'abort 3']);
});

test('prepared handoffs are aborted when the channel drops before commit', async (t) => {
  const { server, port, events, until } = await recordingServer(t);
  const client = await startUpClient(t, port);
  assert.deepEqual(await client.sendHandoff(1n, blob), { ok: true });
  assert.deepEqual(await client.sendHandoff(2n, blob), { ok: true });
  client.commit(1n);
  await until(1);
  const peerDown = new Promise((r) => server.once('peerDown', r));
  await client.close();
  await peerDown;
  assert.deepEqual(events, ['commit 1 fe', 'abort 2']);
  assert.equal(client.commit(2n), false, 'commit on a closed channel is not sent');
});

test('a handoff that timed out at the front-end is aborted when the agent finishes it', async (t) => {
  const finish = deferred<void>();
  const { port, events, until } = await recordingServer(t, {
    onHandoff: async () => {
      await finish.promise;
      return { ok: true };
    },
  });
  const client = await startUpClient(t, port, { handoffTimeoutMs: 20 });
  const ack = await client.sendHandoff(1n, blob);
  assert.equal(!ack.ok && ack.code, CONTROL_ERR.HANDOFF_TIMEOUT);
  client.commit(1n); // too late: the timeout already sent ABORT
  finish.resolve();
  await until(1);
  assert.deepEqual(events, ['abort 1']);
});

test('the agent refuses a second HANDOFF with an id still in progress', async (t) => {
  const finish = deferred<void>();
  const { port } = await startServer(t, {
    onHandoff: async () => {
      await finish.promise;
      return { ok: true };
    },
  });
  const raw = await RawPeer.connect(t, port);
  assert.equal((await raw.authenticate()).kind, 'auth-ok');
  raw.send({ kind: 'handoff', id: 5n, blob });
  raw.send({ kind: 'handoff', id: 5n, blob });
  assert.deepEqual(await raw.next(), { kind: 'ack', id: 5n, ok: false, code: CONTROL_ERR.DUPLICATE_ID, reason: 'handoff 5 already in progress' });
  finish.resolve();
  assert.deepEqual(await raw.next(), { kind: 'ack', id: 5n, ok: true, code: '', reason: '' });
});

test('an onCommit that throws is reported as callbackError, and the channel stays up', async (t) => {
  const { server, port } = await startServer(t, {
    onCommit: () => {
      throw new Error('deliver failed');
    },
  });
  const client = await startUpClient(t, port);
  const reported = new Promise<unknown[]>((r) => server.once('callbackError', (...a) => r(a)));
  assert.deepEqual(await client.sendHandoff(1n, blob), { ok: true });
  client.commit(1n);
  const [err, id, callback] = await reported;
  assert.equal((err as Error).message, 'deliver failed');
  assert.equal(id, 1n);
  assert.equal(callback, 'onCommit');
  assert.deepEqual(await client.sendHandoff(2n, blob), { ok: true });
});
