// The boundary layer on real loopback TCP sockets, in front of a real Node http.Server (and an
// upstream relay): what decide() sees, what the application sees, and what the client gets.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import { newBoundaryStats, wrapConnection, type BoundaryOptions, type BoundarySocket, type MoveContext } from './boundary.ts';
import { deliverToUpstream } from './deliver.ts';
import type { RequestHead } from '../wire/http-head.ts';
import { connect, socket as rawSocket } from '../sys/socket.ts';
import { OwnedFd, ReusableReads } from '../tcp/fd.ts';

const LIMITS = { maxHeadBytes: 16384, maxHeaders: 100 };

interface Rig {
  readonly port: number;
  /** Paths the application saw, in order. */
  readonly seen: string[];
  /** Heads decide() saw. */
  readonly decided: string[];
  readonly stats: ReturnType<typeof newBoundaryStats>;
  readonly wrapped: BoundarySocket[];
  readonly reals: net.Socket[];
}

type RigOptions = Partial<BoundaryOptions> & {
  decideAs?: (head: RequestHead) => 'stay' | 'move';
  /**
   * The layer's real socket reads into a reusable buffer (as the agent's do): each accepted client connection is
   * relayed, unchanged, to a socket opened from a descriptor with ReusableReads, and that one is wrapped.
   */
  reusable?: boolean;
};

/**
 * The real socket for one accepted client connection with `reusable`: a descriptor connected to a relay
 * listener, opened with a ReusableReads; the relay pipes the client's connection to it both ways.
 */
async function reusableReal(client: net.Socket, relay: net.Server, port: number): Promise<{ real: net.Socket; reads: ReusableReads }> {
  const accepted = once(relay, 'connection') as Promise<[net.Socket]>;
  const fd = new OwnedFd(rawSocket(4));
  connect(fd.fd, { family: 4, address: '127.0.0.1', port });
  const reads = new ReusableReads();
  const real = fd.toSocket({ allowHalfOpen: true, reads });
  const [far] = await accepted;
  client.pipe(far);
  far.pipe(client);
  client.on('error', () => far.destroy());
  far.on('error', () => client.destroy());
  client.on('close', () => far.destroy());
  far.on('close', () => client.destroy());
  return { real, reads };
}

/** A TCP listener whose accepted sockets go through the boundary layer into `app`. */
async function baseRig(t: TestContext, app: http.RequestListener, o: RigOptions = {}, setup?: (server: http.Server) => void): Promise<Rig> {
  const seen: string[] = [];
  const decided: string[] = [];
  const stats = newBoundaryStats();
  const wrapped: BoundarySocket[] = [];
  const reals: net.Socket[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    app(req, res);
  });
  setup?.(server);
  const relay = net.createServer({ allowHalfOpen: true });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const relayPort = (relay.address() as net.AddressInfo).port;
  const deliver = (socket: net.Socket, reads: ReusableReads | undefined): void => {
    reals.push(socket);
    const w = wrapConnection(socket, {
      limits: LIMITS,
      stats,
      decide: (head) => {
        decided.push(head.path);
        return o.decideAs?.(head) ?? 'stay';
      },
      ...(o.move !== undefined && { move: o.move }),
      ...(reads !== undefined && { reads }),
    });
    wrapped.push(w);
    server.emit('connection', w);
  };
  const listener = net.createServer({ allowHalfOpen: o.reusable === true }, (socket) => {
    if (o.reusable !== true) return deliver(socket, undefined);
    reusableReal(socket, relay, relayPort).then(({ real, reads }) => deliver(real, reads), () => socket.destroy());
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.after(() => {
    for (const s of reals) s.destroy();
    listener.close();
    relay.close();
    server.close();
  });
  return { port: (listener.address() as net.AddressInfo).port, seen, decided, stats, wrapped, reals };
}

const hello: http.RequestListener = (req, res) => {
  const body = `hello ${req.url}`;
  res.writeHead(200, { 'content-length': body.length });
  res.end(body);
};

/** Sends raw bytes and reads until `n` responses (Content-Length framed) have arrived. */
async function exchange(port: number, writes: readonly string[], n: number): Promise<{ bodies: string[]; socket: net.Socket }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let buf = '';
  const bodies: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const h = buf.indexOf('\r\n\r\n');
        if (h === -1) break;
        const m = /content-length: (\d+)/i.exec(buf.slice(0, h));
        const len = Number(m?.[1] ?? 0);
        if (buf.length < h + 4 + len) break;
        bodies.push(buf.slice(h + 4, h + 4 + len));
        buf = buf.slice(h + 4 + len);
      }
      if (bodies.length >= n) resolve();
    });
    socket.on('error', reject);
    socket.on('close', () => (bodies.length >= n ? resolve() : reject(new Error(`closed after ${bodies.length} responses`))));
  });
  for (const w of writes) {
    socket.write(w);
    // The next write waits for an answer, so requests are not pipelined unless given together.
    if (writes.length > 1) await new Promise<void>((r) => socket.once('data', () => r()));
  }
  await done;
  return { bodies, socket };
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

/** An app whose /a answers 3 of its 8 bytes and the rest when the test calls `finish` (given to `onHeld`). */
const heldA = (onHeld: (finish: () => void) => void): http.RequestListener => (req, res) => {
  if (req.url !== '/a') return hello(req, res);
  res.writeHead(200, { 'content-length': 8 });
  res.write('hel');
  onHeld(() => res.end('lo /a'));
};

// Every test of the in-process layer runs twice: the real socket as Node reads it ('data' events, a fresh buffer
// per read) and as the agent opens it for an http.Server (ReusableReads: every chunk a view of one buffer, which
// the next read overwrites; a view kept anywhere would show as corrupted bytes).
for (const reusable of [false, true]) {
  const mode = reusable ? ', reusable read buffer' : '';
  const rig = (t: TestContext, app: http.RequestListener, o: RigOptions = {}, setup?: (server: http.Server) => void): Promise<Rig> =>
    baseRig(t, app, { ...o, reusable }, setup);

  describe(`boundary layer, in-process http.Server${mode}`, () => {
    it('decides every later request on a keep-alive connection, not the first; answers unchanged', async (t) => {
      const r = await rig(t, hello);
      const { bodies, socket } = await exchange(r.port, [get('/a'), get('/b'), get('/c?q=1')], 3);
      socket.destroy();
      assert.deepEqual(bodies, ['hello /a', 'hello /b', 'hello /c?q=1']);
      assert.deepEqual(r.seen, ['/a', '/b', '/c?q=1']);
      assert.deepEqual(r.decided, ['/b', '/c']);
      assert.deepEqual({ requests: r.stats.requests, stays: r.stats.stays, moves: r.stats.moves }, { requests: 2, stays: 2, moves: 0 });
    });

    it('pipelined requests in one segment: each later one decided, answers in order', async (t) => {
      const r = await rig(t, hello);
      const { bodies, socket } = await exchange(r.port, [get('/1') + get('/2') + get('/3')], 3);
      socket.destroy();
      assert.deepEqual(bodies, ['hello /1', 'hello /2', 'hello /3']);
      assert.deepEqual(r.decided, ['/2', '/3']);
    });

    it("'move' waits for an idle connection, with the request held from the application", async (t) => {
      const contexts: { index: number; held: string; answered: number; seenBefore: string[]; writable: number }[] = [];
      let rr: Rig | undefined;
      // /a answers in two writes, the second a little later: the first is flushed by then, so only
      // the tracker knows the response is unfinished.
      const slowA: http.RequestListener = (req, res) => {
        if (req.url !== '/a') return hello(req, res);
        res.writeHead(200, { 'content-length': 8 });
        res.write('hel');
        setTimeout(() => res.end('lo /a'), 20);
      };
      const r = await rig(t, slowA, {
        decideAs: (h) => (h.path === '/move' ? 'move' : 'stay'),
        move: async (ctx: MoveContext) => {
          contexts.push({
            index: ctx.index,
            held: Buffer.concat(ctx.held).toString('latin1'),
            answered: rr!.wrapped[0]!.tracker.answered,
            seenBefore: [...rr!.seen],
            writable: ctx.socket.writableLength,
          });
          return 'kept';
        },
      });
      rr = r;
      // /move is pipelined behind /a: the move must wait for /a's response to be written.
      const { bodies, socket } = await exchange(r.port, [get('/a') + get('/move') + get('/z')], 3);
      socket.destroy();
      assert.deepEqual(bodies, ['hello /a', 'hello /move', 'hello /z']);
      assert.deepEqual(contexts, [{ index: 1, held: get('/move') + get('/z'), answered: 1, seenBefore: ['/a'], writable: 0 }]);
      assert.deepEqual(r.seen, ['/a', '/move', '/z']);
      assert.deepEqual({ moves: r.stats.moves, kept: r.stats.kept, stays: r.stats.stays }, { moves: 1, kept: 1, stays: 1 });
    });

    it("the bytes Node read ahead while a move waited are held too, and tracked when the connection stays", async (t) => {
      let finishA: (() => void) | undefined;
      let held = '';
      const r = await rig(
        t,
        heldA((finish) => (finishA = finish)),
        {
          decideAs: (h) => (h.path === '/move' ? 'move' : 'stay'),
          move: async (ctx) => {
            held = Buffer.concat(ctx.held).toString('latin1');
            return 'kept';
          },
        },
      );
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
      socket.write(get('/a') + get('/move'));
      while (finishA === undefined) await new Promise((res) => setImmediate(res));
      socket.write(get('/late'));
      // The layer paused the real socket for the move; Node still reads ahead into its buffer (a socket reading
      // into a reusable buffer reads on into the held queue, up to a high-water mark).
      const sent = (get('/a') + get('/move') + get('/late')).length;
      if (reusable) while (r.wrapped[0]!.tracker.clientOffset < sent) await new Promise((res) => setImmediate(res));
      else while (r.reals[0]!.readableLength === 0) await new Promise((res) => setImmediate(res));
      finishA();
      while (!got.endsWith('hello /late')) await once(socket, 'data');
      socket.destroy();
      assert.equal(held, get('/move') + get('/late'));
      assert.deepEqual(r.seen, ['/a', '/move', '/late']);
      assert.deepEqual(r.decided, ['/move', '/late']);
    });

    it('a client that half-closes while a move waits cancels the move', async (t) => {
      let finishA: (() => void) | undefined;
      let moveCalls = 0;
      const r = await rig(
        t,
        heldA((finish) => (finishA = finish)),
        {
          decideAs: (h) => (h.path === '/move' ? 'move' : 'stay'),
          move: async () => {
            moveCalls++;
            return 'kept';
          },
        },
      );
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.on('data', () => {});
      socket.on('error', () => {});
      socket.end(get('/a') + get('/move'));
      // Bounded wait, so a broken cancel fails instead of hanging (the move would wait for /a forever).
      for (let i = 0; i < 1000 && r.stats.kept === 0; i++) await new Promise((res) => setTimeout(res, 10));
      finishA!();
      socket.destroy();
      assert.equal(moveCalls, 0);
      assert.deepEqual({ moves: r.stats.moves, kept: r.stats.kept }, { moves: 1, kept: 1 });
    });

    it("'moved' takes the connection: the application never sees the request", async (t) => {
      const r = await rig(t, hello, {
        decideAs: (h) => (h.path === '/away' ? 'move' : 'stay'),
        move: async (ctx) => {
          ctx.socket.destroy(); // stands in for capture + silent close
          return 'moved';
        },
      });
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(get('/a'));
      await once(socket, 'data');
      socket.write(get('/away'));
      await once(socket, 'close');
      assert.deepEqual(r.seen, ['/a']);
      assert.equal(r.stats.moved, 1);
      assert.ok(r.wrapped[0]!.destroyed);
    });

    it('moveIdle (drain): an idle connection moves with nothing held; a busy one is left alone', async (t) => {
      const contexts: { head: string | undefined; index: number; held: number }[] = [];
      let finishB: (() => void) | undefined;
      let outcome: 'kept' | 'moved' = 'kept';
      const r = await rig(
        t,
        (req, res) => {
          if (req.url !== '/slow') return hello(req, res);
          res.writeHead(200, { 'content-length': 2 });
          res.write('o');
          finishB = () => res.end('k');
        },
        {
          move: async (ctx) => {
            contexts.push({ head: ctx.head?.path, index: ctx.index, held: ctx.held.length });
            if (outcome === 'moved') ctx.socket.destroy();
            return outcome;
          },
        },
      );
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
      socket.write(get('/a'));
      while (!got.endsWith('hello /a')) await once(socket, 'data');
      const w = r.wrapped[0]!;
      assert.equal(await w.moveIdle(), 'kept');
      assert.deepEqual(contexts, [{ head: undefined, index: 1, held: 0 }]);
      // Still usable after a kept idle move, and later requests are decided as before.
      socket.write(get('/slow'));
      while (finishB === undefined) await new Promise((res) => setImmediate(res));
      assert.equal(await w.moveIdle(), 'busy');
      finishB();
      while (!got.endsWith('ok')) await once(socket, 'data');
      outcome = 'moved';
      const closed = new Promise((res) => socket.once('close', res));
      assert.equal(await w.moveIdle(), 'moved');
      await closed;
      assert.deepEqual(r.seen, ['/a', '/slow']);
      assert.deepEqual(r.decided, ['/slow']);
      assert.equal(contexts.length, 2);
      assert.ok(w.destroyed);
    });

    it("Node's own framings pass the tracker: chunked responses, 100 Continue, HEAD, 204 and 304", async (t) => {
      const r = await rig(t, (req, res) => {
        if (req.url === '/chunked') {
          res.write('part1-');
          setImmediate(() => res.end('part2'));
        } else if (req.url === '/upload') {
          let n = 0;
          req.on('data', (d: Buffer) => (n += d.length));
          req.on('end', () => res.end(`got ${n}`));
        } else if (req.url === '/none') {
          res.writeHead(204);
          res.end();
        } else if (req.url === '/same') {
          res.writeHead(304, { etag: '"x"' });
          res.end();
        } else {
          hello(req, res);
        }
      });
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const until = async (s: string): Promise<void> => {
        while (!got.includes(s)) await once(socket, 'data');
      };
      socket.write(get('/chunked'));
      await until('part2\r\n0\r\n\r\n');
      socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
      await until('100 Continue');
      socket.write('12345');
      await until('got 5');
      socket.write('HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n');
      await until('HTTP/1.1 200 OK');
      socket.write(get('/none'));
      await until('204 No Content');
      socket.write(get('/same'));
      await until('304 Not Modified');
      socket.write(get('/last'));
      await until('hello /last');
      socket.destroy();
      assert.deepEqual(r.decided, ['/upload', '/h', '/none', '/same', '/last']);
      assert.equal(r.stats.pinned, 0);
      assert.equal(r.wrapped[0]!.tracker.answered, 6);
    });

    it('a decide that throws keeps the request here', async (t) => {
      const r = await rig(t, hello, {
        decideAs: () => {
          throw new Error('boom');
        },
      });
      const { bodies, socket } = await exchange(r.port, [get('/a'), get('/b')], 2);
      socket.destroy();
      assert.deepEqual(bodies, ['hello /a', 'hello /b']);
    });

    it('large bodies both ways, byte-exact, then another request on the connection', async (t) => {
      const size = 24 * 1024 * 1024;
      const r = await rig(t, (req, res) => {
        if (req.method === 'POST') {
          const h = createHash('sha256');
          let n = 0;
          req.on('data', (d: Buffer) => (h.update(d), (n += d.length)));
          req.on('end', () => {
            const body = `${n} ${h.digest('hex')}`;
            res.writeHead(200, { 'content-length': body.length });
            res.end(body);
          });
          return;
        }
        if (req.url === '/big') {
          res.writeHead(200, { 'content-length': size });
          const block = Buffer.alloc(65536, 7);
          let left = size;
          const pump = (): void => {
            while (left > 0) {
              left -= block.length;
              if (!res.write(block)) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
          return;
        }
        hello(req, res);
      });
      const body = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4096) body[i] = i & 0xff;
      const want = `${size} ${createHash('sha256').update(body).digest('hex')}`;

      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      // Counted as they come (concatenating on every read is quadratic, and a client that slow on a
      // loaded machine outlives the server's keep-alive timer once the response is in the kernel).
      const chunks: Buffer[] = [];
      let length = 0;
      let failed: Error | undefined;
      let wake = (): void => {};
      socket.on('data', (d: Buffer) => (chunks.push(d), (length += d.length), wake()));
      socket.on('error', (e) => (failed = e));
      socket.on('close', () => ((failed ??= new Error('closed')), wake()));
      const readResponse = async (pred: (all: Buffer) => boolean, minLength = 0): Promise<Buffer> => {
        for (;;) {
          if (length >= minLength && pred(Buffer.concat(chunks))) break;
          if (failed !== undefined) throw failed;
          await new Promise<void>((res) => (wake = res));
        }
        const all = Buffer.concat(chunks);
        chunks.length = 0;
        length = 0;
        return all;
      };
      socket.write(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      socket.write(body);
      const up = (await readResponse((a) => a.toString('latin1').endsWith(want))).toString('latin1');
      assert.ok(up.endsWith(want), up.slice(-100));

      socket.write(get('/big'));
      const big = await readResponse((a) => {
        const h = a.indexOf('\r\n\r\n');
        return h !== -1 && a.length >= h + 4 + size;
      }, size);
      const h = big.indexOf('\r\n\r\n');
      assert.equal(big.length, h + 4 + size);
      assert.ok(big.subarray(h + 4).every((x) => x === 7));

      socket.write(get('/after'));
      const after = await readResponse((a) => a.toString('latin1').endsWith('hello /after'));
      assert.ok(after.toString('latin1').endsWith('hello /after'));
      socket.destroy();
      assert.deepEqual(r.decided, ['/big', '/after']);
    });

    it('backpressure: an application that does not read pauses the real socket', async (t) => {
      let release: (() => void) | undefined;
      const r = await rig(t, (req, res) => {
        req.pause();
        release = () => {
          req.resume();
          req.on('end', () => res.end('ok'));
        };
      });
      const size = 64 * 1024 * 1024;
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      const block = Buffer.alloc(1 << 20);
      let sent = 0;
      const writer = (async () => {
        while (sent < size) {
          sent += block.length;
          if (!socket.write(block)) await once(socket, 'drain');
        }
      })();
      // Wait until the layer paused the real socket, or the whole body got through unpaused.
      const w = await (async () => {
        for (;;) {
          const wr = r.wrapped[0];
          if (wr !== undefined && (r.reals[0]!.isPaused() || wr.tracker.clientOffset >= size)) return wr;
          await new Promise((res) => setImmediate(res));
        }
      })();
      assert.ok(r.reals[0]!.isPaused(), 'real socket paused');
      assert.ok(w.tracker.clientOffset < size, 'the body was not all read into memory');
      assert.ok(w.readableLength <= w.readableHighWaterMark + (1 << 20), `buffered ${w.readableLength}`);
      release!();
      await writer;
      await once(socket, 'data');
      socket.destroy();
    });

    it('backpressure: a client that does not read stops the application writing', async (t) => {
      const total = 256 * 1024 * 1024;
      let sent = 0;
      let blocked = false;
      const r = await rig(t, (req, res) => {
        if (req.url !== '/flood') return hello(req, res);
        res.writeHead(200, { 'content-length': total });
        const block = Buffer.alloc(1 << 20);
        const pump = (): void => {
          while (sent < total) {
            sent += block.length;
            if (!res.write(block)) {
              blocked = true;
              return void res.once('drain', pump);
            }
          }
          res.end();
        };
        pump();
      });
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.pause();
      socket.write(get('/flood'));
      // Wait until the kernel buffers are full and the layer has said "stop" to the application.
      const w = await (async () => {
        for (;;) {
          const wr = r.wrapped[0];
          if (sent >= total || (wr !== undefined && blocked && r.reals[0]!.writableLength > 0)) return wr;
          await new Promise((res) => setImmediate(res));
        }
      })();
      assert.ok(sent < total, 'the application was stopped before writing everything');
      assert.ok(w !== undefined);
      assert.ok(w.writableLength + r.reals[0]!.writableLength <= 4 * (1 << 20), `buffered ${w.writableLength} + ${r.reals[0]!.writableLength}`);
      socket.destroy();
    });

    it('an Upgrade pins the connection: raw bytes flow both ways, nothing more is decided', async (t) => {
      const r = await rig(t, hello, {}, (server) => {
        server.on('upgrade', (_req, sock: net.Socket, head: Buffer) => {
          sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
          if (head.length > 0) sock.write(head);
          sock.on('data', (d: Buffer) => sock.write(d));
        });
      });
      const socket = net.connect(r.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(get('/a'));
      await once(socket, 'data');
      socket.write(get('/ws', 'Upgrade: echo\r\nConnection: Upgrade\r\n'));
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
      while (!got.includes('\r\n\r\n')) await once(socket, 'data');
      socket.write(get('/not-http-any-more'));
      while (!got.endsWith(get('/not-http-any-more'))) await once(socket, 'data');
      socket.destroy();
      assert.deepEqual(r.decided, ['/ws']);
      assert.equal(r.stats.pinned, 1);
    });

    it('the application closing (Connection: close) and the client closing both end the connection', async (t) => {
      const r = await rig(t, hello);
      const a = await exchange(r.port, [get('/a', 'Connection: close\r\n')], 1);
      if (!a.socket.closed) await once(a.socket, 'close');
      assert.deepEqual(a.bodies, ['hello /a']);

      const b = net.connect(r.port, '127.0.0.1');
      await once(b, 'connect');
      b.write(get('/b'));
      await once(b, 'data');
      b.end();
      const real = r.reals[1]!;
      if (!real.destroyed) await once(real, 'close');
      assert.ok(r.wrapped[1]!.destroyed);
      b.destroy();

      const c = net.connect(r.port, '127.0.0.1');
      await once(c, 'connect');
      c.write(get('/c'));
      await once(c, 'data');
      c.resetAndDestroy();
      const real2 = r.reals[2]!;
      // events.once would reject on the ECONNRESET the real socket reports first.
      if (!real2.destroyed) await new Promise((res) => real2.once('close', res));
      assert.ok(r.wrapped[2]!.destroyed);
    });

    it('the client addresses and keep-alive timer reach the application through the layer', async (t) => {
      let addr = '';
      const r = await rig(
        t,
        (req, res) => {
          addr = `${req.socket.remoteAddress} ${req.socket.localPort}`;
          hello(req, res);
        },
        {},
        (server) => {
          server.keepAliveTimeout = 50;
        },
      );
      const { socket } = await exchange(r.port, [get('/a')], 1);
      // (With a reusable read buffer the layer's socket is the rig's relay connection, not the listener's.)
      assert.equal(addr, `127.0.0.1 ${reusable ? r.reals[0]!.localPort : r.port}`);
      // The server's keep-alive timer goes through setTimeout on the layer and closes the connection.
      if (!socket.closed) await once(socket, 'close');
    });
  });

  describe(`boundary layer: property${mode}`, () => {
    it('any pipelined sequence, cut anywhere: the application gets every request byte-exact, every later one decided', async (t) => {
      const r = await rig(t, (req, res) => {
        const h = createHash('sha256');
        let n = 0;
        req.on('data', (d: Buffer) => (h.update(d), (n += d.length)));
        req.on('end', () => {
          const body = `${req.method} ${req.url} ${n} ${h.digest('hex').slice(0, 16)}`;
          res.writeHead(200, { 'content-length': body.length });
          res.end(body);
        });
      });
      const request = fc.record({
        method: fc.constantFrom('GET', 'POST', 'PUT'),
        path: fc.stringMatching(/^\/[a-z0-9]{0,8}$/),
        body: fc.uint8Array({ maxLength: 3000 }),
        chunked: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), async (reqs, cuts) => {
          const parts: Buffer[] = [];
          const want: string[] = [];
          for (const q of reqs) {
            const body = q.method === 'GET' ? new Uint8Array(0) : q.body;
            const framing = q.method === 'GET' ? '' : q.chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${body.length}\r\n`;
            parts.push(Buffer.from(`${q.method} ${q.path} HTTP/1.1\r\nHost: x\r\n${framing}\r\n`));
            if (q.method !== 'GET' && q.chunked) {
              if (body.length > 0) parts.push(Buffer.from(`${body.length.toString(16)}\r\n`), Buffer.from(body), Buffer.from('\r\n'));
              parts.push(Buffer.from('0\r\n\r\n'));
            } else {
              parts.push(Buffer.from(body));
            }
            want.push(`${q.method} ${q.path} ${body.length} ${createHash('sha256').update(body).digest('hex').slice(0, 16)}`);
          }
          const all = Buffer.concat(parts);
          const at = [...new Set(cuts.map((c) => c % all.length))].sort((a, b) => a - b);
          const before = r.decided.length;
          const socket = net.connect(r.port, '127.0.0.1');
          await once(socket, 'connect');
          const responses = readResponses(socket, reqs.length);
          let prev = 0;
          for (const c of [...at, all.length]) {
            if (c > prev) socket.write(all.subarray(prev, c));
            prev = c;
            await new Promise((res) => setImmediate(res));
          }
          const { bodies } = await responses;
          socket.destroy();
          assert.deepEqual(bodies, want);
          assert.deepEqual(r.decided.slice(before), reqs.slice(1).map((q) => q.path));
        }),
        { numRuns: 40, timeout: 5000 },
      );
    });
  });

  /** Reads `n` Content-Length framed responses from a connected socket. */
  async function readResponses(socket: net.Socket, n: number): Promise<{ bodies: string[] }> {
    let buf = '';
    const bodies: string[] = [];
    // One listener for the whole read: between two awaits of once(), 'data' events would be lost.
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        buf += d.toString('latin1');
        for (;;) {
          const h = buf.indexOf('\r\n\r\n');
          if (h === -1) break;
          const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, h))?.[1] ?? 0);
          if (buf.length < h + 4 + len) break;
          bodies.push(buf.slice(h + 4, h + 4 + len));
          buf = buf.slice(h + 4 + len);
        }
        if (bodies.length >= n) {
          socket.off('data', onData);
          resolve();
        }
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error(`closed after ${bodies.length} of ${n} responses`)));
    });
    return { bodies };
  }
}

describe('boundary layer, upstream relay', () => {
  it('decides every later request between the client and an unmodified upstream', async (t) => {
    const upstream = http.createServer(hello);
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const decided: string[] = [];
    const deliver = deliverToUpstream({
      host: '127.0.0.1',
      port: (upstream.address() as net.AddressInfo).port,
      boundary: { limits: LIMITS, decide: (h) => (decided.push(h.path), 'stay') },
    });
    const flow = { family: 4 as const, client: { address: '127.0.0.1', port: 1 }, vip: { address: '127.0.0.1', port: 2 } };
    const listener = net.createServer((s) => deliver(s, flow));
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    t.after(() => {
      listener.close();
      upstream.closeAllConnections();
      upstream.close();
    });
    const { bodies, socket } = await exchange((listener.address() as net.AddressInfo).port, [get('/a'), get('/b') + get('/c')], 3);
    socket.destroy();
    assert.deepEqual(bodies, ['hello /a', 'hello /b', 'hello /c']);
    assert.deepEqual(decided, ['/b', '/c']);
  });
});
