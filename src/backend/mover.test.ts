import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { BoundarySocket } from './boundary.ts';
import { Mover } from './mover.ts';
import { connect, socket as rawSocket } from '../sys/socket.ts';
import { OwnedFd } from '../tcp/fd.ts';

const ID = { peerId: 1, handoffId: 1n, flowId: 1, key: '1:1', flow: { family: 4 as const, client: { address: '127.0.0.1', port: 1 }, vip: { address: '127.0.0.1', port: 2 } } };

/** A server-side socket whose client already sent `request`, unread by Node (as inject leaves it). */
async function acceptedWith(request: string): Promise<{ socket: net.Socket; done: () => void }> {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  client.write(request);
  const [socket] = await accepted;
  await new Promise((r) => setTimeout(r, 20)); // loopback delivery
  return { socket, done: () => { client.destroy(); socket.destroy(); server.close(); } };
}

const mover = (): Mover => new Mover({ self: 'b1', limits: { maxHeadBytes: 16 * 1024, maxHeaders: 100 }, send: () => false });

test('a connection whose first request closes it is delivered without the boundary layer', async (t) => {
  const c = await acceptedWith('GET /bytes/1024 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.after(c.done);
  const m = mover();
  assert.equal(m.wrap(c.socket, ID), c.socket);
  assert.equal(m.stats.unwrapped, 1);
  // Nothing was taken from the socket: the application still reads the whole request.
  c.socket.resume();
  const [data] = (await once(c.socket, 'data')) as [Buffer];
  assert.match(data.toString(), /^GET \/bytes\/1024 HTTP\/1\.1\r\n/);
});

test('HTTP/1.0 without keep-alive is a single request too; with keep-alive it is not', async (t) => {
  const a = await acceptedWith('GET / HTTP/1.0\r\n\r\n');
  const b = await acceptedWith('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  t.after(() => { a.done(); b.done(); });
  const m = mover();
  assert.equal(m.wrap(a.socket, ID), a.socket);
  assert.ok(m.wrap(b.socket, ID) instanceof BoundarySocket);
});

test('keep-alive, an incomplete head, or nothing queued keeps the layer', async (t) => {
  const ka = await acceptedWith('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const part = await acceptedWith('GET / HTTP/1.1\r\nConnection: close\r\n');
  const none = await acceptedWith('');
  t.after(() => { ka.done(); part.done(); none.done(); });
  const m = mover();
  for (const c of [ka, part, none]) assert.ok(m.wrap(c.socket, ID) instanceof BoundarySocket);
  assert.equal(m.stats.unwrapped, 0);
});

/** A descriptor connected to a local server that has already sent `request` (what inject leaves queued). */
async function fdWith(request: string): Promise<{ fd: OwnedFd; done: () => void }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const fd = new OwnedFd(rawSocket(4));
  connect(fd.fd, { family: 4, address: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  const [peer] = await accepted;
  peer.write(request);
  await new Promise((r) => setTimeout(r, 20)); // loopback delivery
  return { fd, done: () => { peer.destroy(); server.close(); fd.close(); } };
}

test('open() decides once: a reusable read buffer for a connection the layer takes, an ordinary socket for a last request', async (t) => {
  const m = new Mover({ self: 'b1', limits: { maxHeadBytes: 16 * 1024, maxHeaders: 100 }, send: () => false, reusableReads: true });
  const ka = await fdWith('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc');
  const last = await fdWith('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const kaSocket = m.open(ka.fd, { allowHalfOpen: true });
  const lastSocket = m.open(last.fd, { allowHalfOpen: true });
  t.after(() => { kaSocket.destroy(); lastSocket.destroy(); ka.done(); last.done(); });
  const wrapped = m.wrap(kaSocket, ID);
  assert.ok(wrapped instanceof BoundarySocket);
  assert.equal(m.wrap(lastSocket, ID), lastSocket);
  assert.equal(m.stats.unwrapped, 1);
  // The wrapped one reads through its reusable buffer: the layer gets the request (no 'data' on the real socket).
  const want = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc';
  const got: Buffer[] = [];
  wrapped.on('data', (d: Buffer) => got.push(Buffer.from(d)));
  for (let i = 0; i < 500 && Buffer.concat(got).length < want.length; i++) await new Promise((r) => setTimeout(r, 2));
  assert.equal(Buffer.concat(got).toString(), want);
  assert.equal(wrapped.tracker.requests, 1);
});
