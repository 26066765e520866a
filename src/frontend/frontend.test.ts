// The Frontend over real loopback sockets with fake steering and channels (no root): clients that
// vanish mid-handoff, FLOW_END naming its handoff, a lost channel releasing its back-end, drains.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Router } from '../policy/index.ts';
import { parseConfig } from '../util/config-file.ts';
import { frontendConfigSchema } from './config.ts';
import { decodeBlob } from '../wire/blob.ts';
import { Frontend, type FrontendDeps } from './frontend.ts';
import { FakeChannel, FakeSteering, MemoryLog } from './testing.ts';

const HEAD = 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n';

async function start(t: TestContext, patch: Partial<FrontendDeps> = {}, limits: Record<string, number> = {}) {
  const cfg = {
    ...parseConfig(frontendConfigSchema, {
      vip: '127.0.0.1', port: 1, interface: 'lo', secret: 'env:S',
      backends: ['b1', 'b2'].map((id, i) => ({ id, address: `127.0.0.${i + 2}`, control: { host: '127.0.0.1', port: 7700 } })),
      pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2'] }], rules: [], defaultPool: 'all', limits,
    }),
    port: 0,
  };
  const steering = new FakeSteering();
  const channels = new Map([['b1', new FakeChannel()], ['b2', new FakeChannel()]]);
  const log = new MemoryLog();
  const router = new Router({ pools: cfg.pools, rules: cfg.rules, defaultPool: cfg.defaultPool });
  const fe = new Frontend({ config: cfg, router, steering, channels, log, ...patch });
  const addr = await fe.listen();
  t.after(() => fe.close());
  return { fe, steering, channels, log, port: addr.port };
}

const connect = async (port: number): Promise<net.Socket> => {
  const c = net.connect({ host: '127.0.0.1', port });
  c.on('error', () => undefined);
  await once(c, 'connect');
  return c;
};

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 400 && !cond(); i++) await sleep(5);
  assert.ok(cond(), `timed out waiting for ${what}`);
};

test('a client that resets while its flow is being held: no log, no answer, nothing held, no count but vanished', async (t) => {
  const { fe, steering, log, port } = await start(t);
  const client = await connect(port);
  steering.duringHold = async () => {
    client.resetAndDestroy();
    await sleep(50); // the RST reaches the front-end's socket
  };
  client.write(HEAD);
  await until(() => fe.stats().vanished === 1 || log.lines.length > 0 || Object.keys(fe.stats().answeredLocally).length > 0, 'the handoff to end');
  const s = fe.stats();
  assert.deepEqual(log.lines, []);
  assert.deepEqual(s.answeredLocally, {});
  assert.equal(s.handedOff, 0);
  assert.equal(s.retries, 0);
  assert.equal(s.pending, 0);
  for (const b of Object.values(s.perBackend)) assert.deepEqual([b.handoffs, b.failures, b.active], [0, 0, 0]);
  assert.equal(steering.held.size, 0);
  assert.deepEqual(steering.calls.map((c) => c.split(' ')[0]), ['hold', 'unhold']);
});

test('a client that resets before its head is complete costs nothing', async (t) => {
  const { fe, steering, log, port } = await start(t);
  const client = await connect(port);
  client.write('GET /x HTTP/1.1\r\n');
  await until(() => fe.stats().accepted === 1, 'accept');
  client.resetAndDestroy();
  await until(() => fe.stats().pending === 0, 'the pending count to drop');
  assert.deepEqual(log.lines, []);
  assert.deepEqual(steering.calls, []);
  assert.deepEqual(fe.stats().answeredLocally, {});
});

test('FLOW_END releases exactly the connection it names; a late report for an older one on the same port does nothing', async (t) => {
  // Capture needs root; this test is about what is released, so the blob is fake.
  const { fe, steering, channels, port } = await start(t, { capture: (i) => ({ ok: true, blob: new Uint8Array([Number(i.handoffId)]) }) });
  const ends: Array<{ flow: { family: 4 | 6; clientAddress: string; clientPort: number }; id: bigint }> = [];
  for (let i = 0; i < 3; i++) {
    const client = await connect(port);
    client.write(HEAD);
    await until(() => fe.stats().handedOff === i + 1, `handoff ${i}`);
    const fwd = [...steering.forwarded.entries()].at(-1)!;
    const [addr, p] = [fwd[0].slice(0, fwd[0].lastIndexOf(':')), Number(fwd[0].slice(fwd[0].lastIndexOf(':') + 1))];
    ends.push({ flow: { family: 4, clientAddress: addr, clientPort: p }, id: fwd[1].handoffId });
    client.destroy();
  }
  const committed = [...channels.values()].flatMap((c) => c.commits).sort();
  assert.deepEqual(committed, ends.map((e) => e.id).sort());
  // Pretend the third connection reused the first one's tuple: the first's late report must not
  // release it, the third's own report must.
  steering.forwarded.set('127.0.0.1:1', { backend: 'b1', handoffId: ends[2]!.id });
  const tuple = { family: 4 as const, clientAddress: '127.0.0.1', clientPort: 1 };
  fe.onFlowEnd(tuple, ends[0]!.id);
  await sleep(1);
  assert.ok(steering.forwarded.has('127.0.0.1:1'));
  fe.onFlowEnd(tuple, ends[2]!.id);
  await sleep(1);
  assert.ok(!steering.forwarded.has('127.0.0.1:1'));
});

test('a lost channel releases every flow steered to its back-end and restarts its load count', async (t) => {
  const { fe, steering } = await start(t);
  steering.forwarded.set('10.0.0.1:1', { backend: 'b1', handoffId: 1n });
  steering.forwarded.set('10.0.0.1:2', { backend: 'b2', handoffId: 2n });
  steering.forwarded.set('10.0.0.1:3', { backend: 'b1', handoffId: 3n });
  fe.onLoad('b1', 7, 0);
  assert.equal(fe.backends().find((b) => b.id === 'b1')!.active, 7);
  assert.equal(await fe.onChannelDown('b1'), 2);
  assert.deepEqual([...steering.forwarded.keys()], ['10.0.0.1:2']);
  assert.equal(fe.backends().find((b) => b.id === 'b1')!.active, 0);
});

test('a drained back-end gets no new handoffs and shows as drained; undrain restores it', async (t) => {
  const { fe, channels, port } = await start(t, { capture: () => ({ ok: true, blob: new Uint8Array([1]) }) });
  assert.equal(fe.drain('b1'), true);
  assert.equal(fe.drain('nope'), false);
  for (let i = 0; i < 4; i++) {
    const c = await connect(port);
    c.write(HEAD);
    await until(() => fe.stats().handedOff === i + 1, `handoff ${i}`);
    c.destroy();
  }
  assert.equal(channels.get('b1')!.sent.length, 0);
  assert.equal(channels.get('b2')!.sent.length, 4);
  const b1 = fe.backends().find((b) => b.id === 'b1')!;
  assert.deepEqual([b1.state, b1.drained], ['up', true]);
  assert.equal(fe.stats().perBackend['b1']!.drained, true);
  fe.undrain('b1');
  const c = await connect(port);
  c.write(HEAD);
  await until(() => fe.stats().handedOff === 5, 'handoff after undrain');
  c.destroy();
  assert.equal(channels.get('b1')!.sent.length, 1);
});

test('at maxPending the connection waiting longest for its head is answered 408 to make room (slowloris cannot starve new clients)', async (t) => {
  const { fe, port } = await start(t, {}, { maxPending: 2 });
  const read = (c: net.Socket): Promise<string> => new Promise((resolve) => {
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.on('close', () => resolve(got));
  });
  const slow1 = await connect(port);
  const answer1 = read(slow1);
  slow1.write('GET /x HTTP/1.1\r\n');
  await until(() => fe.stats().pending === 1, 'the first slow head');
  const slow2 = await connect(port);
  slow2.write('GET /y HTTP/1.1\r\n');
  await until(() => fe.stats().pending === 2, 'the second slow head');
  const fresh = await connect(port);
  fresh.write('GET /z HTTP/1.1\r\n'); // accept() waits for a client's first bytes (TCP_DEFER_ACCEPT)
  assert.match(await answer1, /^HTTP\/1\.1 408 /, 'the oldest slow client is answered 408');
  await until(() => fe.stats().pending === 2, 'the new connection to wait for its head');
  const s = fe.stats();
  assert.equal(s.shed, 1);
  assert.equal(s.answeredLocally['408'], 1);
  assert.equal(s.answeredLocally['503'], undefined, 'nobody is refused');
  assert.equal(slow2.destroyed, false);
  slow2.destroy();
  fresh.destroy();
});

test('accept() waits for the client to speak (TCP_DEFER_ACCEPT): a silent connection costs the front-end nothing', async (t) => {
  const { fe, port } = await start(t);
  const silent = await connect(port); // the handshake completes in the kernel
  await sleep(300);
  assert.equal(fe.stats().accepted, 0, 'not accepted while it says nothing');
  silent.write('GET /x HTTP/1.1\r\n');
  await until(() => fe.stats().accepted === 1 && fe.stats().pending === 1, 'accept once bytes arrive');
  silent.destroy();
});

test('a head queued whole at accept is handed off before Node reads it; the received bytes travel intact either way', async (t) => {
  const { fe, channels, port } = await start(t);
  const body = 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello';
  const recvQueues = (): string[] =>
    [...channels.values()].flatMap((c) => c.sent.map((s) => Buffer.from(decodeBlob(s.blob).state.recvQueue).toString('latin1')));
  // All at once: TCP_DEFER_ACCEPT accepts with the head queued, and it goes from the kernel queue to the blob.
  const whole = await connect(port);
  whole.write(body);
  await until(() => fe.stats().handedOff === 1, 'the first handoff');
  assert.equal(fe.stats().headAtAccept, 1);
  // Cut inside the head: accepted on the first bytes, read by Node until the head is complete (the usual path).
  const cut = await connect(port);
  cut.write(body.slice(0, 20));
  await until(() => fe.stats().accepted === 2, 'the second accept');
  await sleep(20);
  cut.write(body.slice(20));
  await until(() => fe.stats().handedOff === 2, 'the second handoff');
  assert.equal(fe.stats().headAtAccept, 1, 'the cut head was read, not found queued');
  assert.deepEqual(recvQueues(), [body, body]);
  whole.destroy();
  cut.destroy();
});

test('close stops accepting but waits for a handoff in flight, which still hears its answer', { timeout: 20_000 }, async (t) => {
  const { fe, channels, port } = await start(t);
  let answer: ((a: { ok: true }) => void) | undefined;
  for (const ch of channels.values()) ch.script = () => new Promise((r) => (answer = r));
  const client = await connect(port);
  t.after(() => client.destroy());
  client.write(HEAD);
  await until(() => answer !== undefined, 'the blob');
  let closed = 0;
  const closing = Promise.all([fe.close(), fe.close()]).then(() => {
    closed = 2;
  });
  const late = net.connect({ host: '127.0.0.1', port });
  const refused = await new Promise<string | undefined>((r) => {
    late.once('error', (e: NodeJS.ErrnoException) => r(e.code));
    late.once('connect', () => r(undefined));
  });
  late.destroy();
  assert.equal(refused, 'ECONNREFUSED', 'no new connection is accepted');
  await sleep(50);
  assert.equal(closed, 0, 'close waits for the handoff in flight');
  answer!({ ok: true });
  await closing;
  assert.equal(fe.stats().handedOff, 1);
});
