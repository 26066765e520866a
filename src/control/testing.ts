// Test helpers for the control channel: servers and clients that close themselves after the
// test, and a raw peer that speaks frames by hand (to play impostors and broken peers).

import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { FrameDecoder, decodeMessage, encodeMessage, type Message } from '../wire/frame.ts';
import { PROTO_VERSION, Secret, newNonce } from './auth.ts';
import { ControlClient, type ControlClientOptions } from './client.ts';
import { ControlServer, type ControlServerOptions } from './server.ts';

export const SECRET = 'test-secret-0123456789abcdef';
export const HOST = '127.0.0.1';

export async function startServer(
  t: TestContext,
  o: Partial<ControlServerOptions> = {},
  port = 0,
): Promise<{ server: ControlServer; port: number }> {
  const server = new ControlServer({ secret: SECRET, name: 'agent', onHandoff: async () => ({ ok: true }), ...o });
  t.after(() => server.close());
  const addr = await server.listen(port, HOST);
  return { server, port: addr.port };
}

export function startClient(t: TestContext, port: number, o: Partial<ControlClientOptions> = {}): ControlClient {
  const client = new ControlClient({
    secret: SECRET,
    address: { host: HOST, port },
    name: 'fe',
    backoff: { initialMs: 5, maxMs: 20 },
    ...o,
  });
  t.after(() => client.close());
  client.start();
  return client;
}

export async function startUpClient(t: TestContext, port: number, o: Partial<ControlClientOptions> = {}): Promise<ControlClient> {
  const client = startClient(t, port, o);
  await once(client, 'up');
  return client;
}

/** A peer that reads and writes frames by hand. */
export class RawPeer {
  readonly socket: Socket;
  readonly #decoder = new FrameDecoder(1 << 30);
  readonly #queue: Message[] = [];
  readonly #waiters: Array<{ resolve: (m: Message) => void; reject: (e: Error) => void }> = [];
  #ended = false;
  /** Resolves when the socket closes. */
  readonly closed: Promise<void>;

  constructor(socket: Socket) {
    this.socket = socket;
    this.closed = once(socket, 'close').then(() => undefined);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.#decoder.push(chunk);
      for (let f = this.#decoder.next(); f !== undefined; f = this.#decoder.next()) {
        const m = decodeMessage(f);
        const w = this.#waiters.shift();
        if (w === undefined) this.#queue.push(m);
        else w.resolve(m);
      }
    });
    socket.on('close', () => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w.reject(new Error('closed'));
    });
  }

  static async connect(t: TestContext, port: number): Promise<RawPeer> {
    const s = connect({ host: HOST, port });
    t.after(() => s.destroy());
    await once(s, 'connect');
    return new RawPeer(s);
  }

  /** The next message; rejects if the connection closes first. */
  next(): Promise<Message> {
    const m = this.#queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    if (this.#ended) return Promise.reject(new Error('closed'));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  send(m: Message): void {
    this.write(encodeMessage(m));
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Runs the client side of the handshake; returns the server's reply to AUTH. */
  async authenticate(secret = SECRET, name = 'raw'): Promise<Message> {
    const s = new Secret(secret);
    const nonceC = newNonce();
    this.send({ kind: 'hello', protoVersion: PROTO_VERSION, nonce: nonceC, name });
    const ch = await this.next();
    if (ch.kind !== 'challenge') throw new Error(`expected challenge, got ${ch.kind}`);
    this.send({ kind: 'auth', proof: s.clientProof(ch.nonce, nonceC) });
    return this.next();
  }
}

/** A hand-written agent: authenticates each client correctly, then lets the test drive. */
export async function rawServer(
  t: TestContext,
  onPeer: (peer: RawPeer) => void,
  secret = SECRET,
): Promise<{ server: Server; port: number }> {
  const s = new Secret(secret);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    const peer = new RawPeer(socket);
    void (async () => {
      const hello = await peer.next();
      if (hello.kind !== 'hello') return socket.destroy();
      const nonceS = newNonce();
      peer.send({ kind: 'challenge', nonce: nonceS, proof: s.serverProof(hello.nonce, nonceS) });
      const auth = await peer.next();
      if (auth.kind !== 'auth') return socket.destroy();
      peer.send({ kind: 'auth-ok' });
      onPeer(peer);
    })().catch(() => socket.destroy());
  });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const so of sockets) so.destroy();
        server.close(() => resolve());
      }),
  );
  server.listen(0, HOST);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** A promise and its resolver. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
