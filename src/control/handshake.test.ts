// The handshake over real sockets: who gets in, and that nobody else ever reaches onHandoff.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { encodeMessage, type Message } from '../wire/frame.ts';
import { PROTO_VERSION, newNonce } from './auth.ts';
import { CHANNEL_AUTH_FAILED, CHANNEL_UP } from './diagnostics.ts';
import type { ControlServer } from './server.ts';
import { HOST, RawPeer, SECRET, rawServer, startClient, startServer, startUpClient } from './testing.ts';

/** A server whose onHandoff fails the test if it is ever called. */
async function guardedServer(t: TestContext, authTimeoutMs = 5000): Promise<{ server: ControlServer; port: number; failures: string[] }> {
  const failures: string[] = [];
  const { server, port } = await startServer(t, {
    authTimeoutMs,
    onHandoff: async () => {
      throw new Error('onHandoff called for an unauthenticated peer');
    },
  });
  server.on('authFailed', (_remote, reason) => failures.push(reason));
  server.on('peerUp', () => failures.push('peer-up'));
  return { server, port, failures };
}

function collect(t: TestContext, name: string): unknown[] {
  const seen: unknown[] = [];
  const fn = (m: unknown): void => {
    seen.push(m);
  };
  subscribe(name, fn);
  t.after(() => unsubscribe(name, fn));
  return seen;
}

test('handshake succeeds between client and server with the same secret', async (t) => {
  const ups = collect(t, CHANNEL_UP);
  const { server, port } = await startServer(t);
  const peerUp = once(server, 'peerUp');
  const client = await startUpClient(t, port, { name: 'fe-1' });
  assert.equal(client.state, 'up');
  const [peer] = (await peerUp) as [{ name: string }];
  assert.equal(peer.name, 'fe-1');
  assert.deepEqual(server.peers.map((p) => p.name), ['fe-1']);
  assert.ok(ups.some((m) => (m as { side: string }).side === 'client'));
});

test('a client with the wrong secret refuses the server and is never admitted', async (t) => {
  const fails = collect(t, CHANNEL_AUTH_FAILED);
  const { port, failures } = await guardedServer(t);
  const client = startClient(t, port, { secret: 'another-secret-0123456789' });
  client.on('up', () => assert.fail('client came up'));
  const [reason] = await once(client, 'authFailed');
  // The client checks the server's proof first, so it hangs up before sending AUTH.
  assert.equal(reason, 'bad-proof');
  assert.notEqual(client.state, 'up');
  await client.close();
  assert.ok(!failures.includes('peer-up'));
  const text = JSON.stringify(fails);
  assert.ok(!text.includes(SECRET) && !text.includes('another-secret'));
});

test('a client proof made with the wrong secret is refused by the server', async (t) => {
  const { server, port, failures } = await guardedServer(t);
  const authFailed = once(server, 'authFailed');
  const raw = await RawPeer.connect(t, port);
  await assert.rejects(raw.authenticate('another-secret-0123456789'), /closed/);
  assert.equal((await authFailed)[1], 'bad-proof');
  assert.deepEqual(failures, ['bad-proof']);
});

test('an impostor agent (wrong secret) is refused by the client', async (t) => {
  let admitted = false;
  const { port } = await rawServer(t, () => (admitted = true), 'impostor-secret-0123456789');
  const client = startClient(t, port);
  const [reason] = await once(client, 'authFailed');
  assert.equal(reason, 'bad-proof');
  assert.equal(admitted, false, 'the client must not send AUTH to an impostor');
});

test('a replayed client transcript is refused', async (t) => {
  const { server, port } = await startServer(t, {
    onHandoff: async () => {
      throw new Error('never');
    },
  });
  // A recording man-in-the-middle between a legitimate client and the server.
  const recorded: Buffer[] = [];
  const proxy = createServer((down: Socket) => {
    const up = connect({ host: HOST, port });
    down.on('data', (c: Buffer) => {
      recorded.push(Buffer.from(c));
      up.write(c);
    });
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  t.after(() => new Promise<void>((r) => proxy.close(() => r())));
  proxy.listen(0, HOST);
  await once(proxy, 'listening');
  const client = await startUpClient(t, (proxy.address() as AddressInfo).port);
  await client.close();

  const transcript = Buffer.concat(recorded);
  assert.equal(transcript.length, 5 + 2 + 32 + 1 + 2 + (5 + 32)); // HELLO("fe") then AUTH
  const hello = transcript.subarray(0, 42);
  const auth = transcript.subarray(42);

  const authFailed = once(server, 'authFailed');
  const raw = await RawPeer.connect(t, port);
  raw.write(hello);
  const challenge = await raw.next();
  assert.equal(challenge.kind, 'challenge');
  raw.write(auth);
  await assert.rejects(raw.next(), /closed/, 'no AUTH_OK for a replayed proof');
  assert.equal((await authFailed)[1], 'bad-proof');
});

test('frames before authentication are refused and close the connection', async (t) => {
  const cases: Array<{ name: string; send: (raw: RawPeer) => Promise<void> | void; reason: string }> = [
    { name: 'handoff first', send: (raw) => raw.send({ kind: 'handoff', id: 1n, blob: new Uint8Array(8) }), reason: 'unexpected-frame' },
    { name: 'ping first', send: (raw) => raw.send({ kind: 'ping', token: 1n }), reason: 'unexpected-frame' },
    {
      name: 'hello then handoff (no secret exchange)',
      send: async (raw) => {
        raw.send({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: newNonce(), name: 'x' });
        assert.equal((await raw.next()).kind, 'challenge');
        raw.send({ kind: 'handoff', id: 1n, blob: new Uint8Array(8) });
      },
      reason: 'unexpected-frame',
    },
    {
      name: 'wrong protocol version',
      send: (raw) => raw.send({ kind: 'hello', protoVersion: 99, nonce: newNonce(), name: 'x' }),
      reason: 'version',
    },
    { name: 'garbage', send: (raw) => raw.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), reason: 'frame-error' },
    { name: 'unknown type', send: (raw) => raw.write(Buffer.from([0, 0, 0, 1, 0x7e])), reason: 'frame-error' },
    {
      name: 'oversized frame (1 MiB handoff)',
      send: (raw) => raw.write(encodeMessage({ kind: 'handoff', id: 1n, blob: new Uint8Array(1 << 20) }).subarray(0, 64)),
      reason: 'frame-error',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const { server, port, failures } = await guardedServer(t);
      const authFailed = once(server, 'authFailed');
      const raw = await RawPeer.connect(t, port);
      await c.send(raw);
      await raw.closed;
      assert.equal((await authFailed)[1], c.reason);
      assert.deepEqual(failures, [c.reason]);
    });
  }
});

test('a partial HELLO (slowloris) is closed by the auth timeout', async (t) => {
  const { server, port, failures } = await guardedServer(t, 30);
  const authFailed = once(server, 'authFailed');
  const raw = await RawPeer.connect(t, port);
  const hello: Message = { kind: 'hello', protoVersion: PROTO_VERSION, nonce: newNonce(), name: 'slow' };
  raw.write(encodeMessage(hello).subarray(0, 10));
  await raw.closed;
  assert.equal((await authFailed)[1], 'timeout');
  assert.deepEqual(failures, ['timeout']);
});

test('a HELLO without AUTH is closed by the auth timeout', async (t) => {
  const { server, port } = await guardedServer(t, 30);
  const authFailed = once(server, 'authFailed');
  const raw = await RawPeer.connect(t, port);
  raw.send({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: newNonce(), name: 'x' });
  await raw.closed; // after a CHALLENGE, unless the timeout beat the HELLO: either way it is the timeout

  assert.equal((await authFailed)[1], 'timeout');
});

test('the client gives up on an agent that never answers HELLO, and keeps retrying', async (t) => {
  const sockets: Socket[] = [];
  const silent = createServer((s) => sockets.push(s));
  t.after(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), silent.close(() => r()))));
  silent.listen(0, HOST);
  await once(silent, 'listening');
  const client = startClient(t, (silent.address() as AddressInfo).port, { connectTimeoutMs: 20 });
  assert.equal((await once(client, 'authFailed'))[0], 'timeout');
  assert.equal((await once(client, 'authFailed'))[0], 'timeout');
  assert.ok(sockets.length >= 2);
});
