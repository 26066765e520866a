// Link's write coalescing: frames sent in one run of JavaScript reach the kernel in one write,
// at the end of the current microtasks (handoff steps) or of the event-loop turn (reports).

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { Message } from '../wire/frame.ts';
import { Link } from './link.ts';

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r));
const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A Link over a real loopback connection, and the messages its peer decodes, in order. */
async function pair(t: TestContext): Promise<{ link: Link; received: Message[]; writes: () => number }> {
  const received: Message[] = [];
  const server = net.createServer((s) => {
    new Link(s, 1 << 20, { onMessage: (m) => received.push(m), onClose: () => undefined });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  const link = new Link(socket, 1 << 20, { onMessage: () => undefined, onClose: () => undefined });
  // Count the writes the stream hands to the handle (one syscall each): _write for one chunk,
  // _writev for several.
  let writes = 0;
  const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const w = s._write.bind(socket);
  const wv = s._writev.bind(socket);
  s._write = (...a) => { writes++; w(...a); };
  s._writev = (...a) => { writes++; wv(...a); };
  t.after(() => {
    socket.destroy();
    server.close();
  });
  return { link, received, writes: () => writes };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

test('frames sent in one run go out in one write, right after the current microtasks', async (t) => {
  const { link, received, writes } = await pair(t);
  link.send({ kind: 'commit', id: 1n });
  await Promise.resolve();
  link.send({ kind: 'commit', id: 2n }); // from a microtask, as COMMITs after one ACK read are
  link.send({ kind: 'abort', id: 3n });
  assert.equal(writes(), 0, 'nothing written before the microtasks are done');
  assert.equal(link.socket.writableCorked, 1);
  await tick();
  assert.equal(writes(), 1);
  assert.equal(link.socket.writableCorked, 0);
  await until(() => received.length === 3);
  assert.deepEqual(received.map((m) => m.kind === 'commit' || m.kind === 'abort' ? m.id : -1n), [1n, 2n, 3n]);
});

test('a report waits for the end of the turn; a handoff step sent meanwhile takes it along', async (t) => {
  const { link, received, writes } = await pair(t);
  link.send({ kind: 'ping', token: 7n }, true);
  await tick();
  assert.equal(writes(), 0, 'a later frame is not flushed at the tick');
  await immediate();
  assert.equal(writes(), 1);
  link.send({ kind: 'ping', token: 8n }, true);
  link.send({ kind: 'commit', id: 9n });
  await tick();
  assert.equal(writes(), 2, 'the urgent frame flushed both in one write');
  await immediate();
  assert.equal(writes(), 2);
  await until(() => received.length === 3);
  assert.deepEqual(received.map((m) => m.kind), ['ping', 'ping', 'commit']);
});

test('closing the link hands what was sent to the kernel first', async (t) => {
  const { link, writes } = await pair(t);
  link.send({ kind: 'ping', token: 1n }, true);
  link.close('done');
  assert.equal(writes(), 1);
  assert.equal(link.send({ kind: 'ping', token: 2n }), false);
});
