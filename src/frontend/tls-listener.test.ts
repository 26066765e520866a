// The tls listener's read/refuse path on loopback, with the handoff machine replaced by a recorder:
// what reaches the machine (the request and every byte read), what a refused client receives, and
// that the pending count always comes back to zero. The kernel handoff is covered by test/tls-e2e.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { RequestInfo } from '../policy/index.ts';
import { TLS_ALERT, buildAlert, buildClientHello } from '../wire/tls-hello.ts';
import { endpointsOf } from './client-conn.ts';
import type { ClientConnection } from './handoff.ts';
import { TlsAcceptor, type TlsLimits } from './tls-listener.ts';
import { WaitingClients } from './waiting.ts';

interface Bench {
  readonly acceptor: TlsAcceptor;
  readonly port: number;
  readonly runs: { conn: ClientConnection; req: RequestInfo }[];
  readonly waiting: WaitingClients;
  /** What the recorder does with each connection given to the machine. */
  onRun: (conn: ClientConnection) => void;
  close(): Promise<void>;
}

async function bench(limits: Partial<TlsLimits> = {}): Promise<Bench> {
  const socks = new Set<net.Socket>();
  const b: Omit<Bench, 'acceptor' | 'port' | 'close'> = { runs: [], waiting: new WaitingClients(), onRun: (c) => c.closeSilently() };
  const acceptor = new TlsAcceptor({
    limits: () => ({ maxHelloBytes: 2048, maxHelloRecords: 4, helloTimeoutMs: 300, maxPending: 100, ...limits }),
    waiting: b.waiting,
    run: async (conn, req) => {
      b.runs.push({ conn, req });
      b.onRun(conn);
    },
    hrtime: () => process.hrtime.bigint(),
    log: { warn: () => undefined, error: () => undefined },
  });
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => undefined);
    const ends = endpointsOf(s);
    assert.ok(ends);
    acceptor.accept(s, ends);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return Object.assign(b, {
    acceptor, port,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

/** Sends the parts (a pause between them) and returns everything received until the server closes. */
function exchange(port: number, parts: Uint8Array[], gapMs = 20): Promise<{ got: Buffer; reset: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let reset = false;
    const c = net.connect(port, '127.0.0.1', async () => {
      for (const [i, p] of parts.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (!c.destroyed) c.write(p);
      }
    });
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', () => (reset = true));
    c.on('close', () => resolve({ got: Buffer.concat(chunks), reset }));
  });
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition never held');
};

test('a hello in three reads reaches the machine with its SNI and ALPN, and every byte read so far', async (t) => {
  const b = await bench();
  t.after(() => b.close());
  const hello = buildClientHello({ sni: 'Api.Example.com', alpn: ['h2', 'http/1.1'], recordSize: 100 });
  const early = Buffer.from('early data after the hello');
  const all = Buffer.concat([hello, early]);
  await exchange(b.port, [all.subarray(0, 3), all.subarray(3, 150), all.subarray(150)]);
  assert.equal(b.runs.length, 1);
  const { conn, req } = b.runs[0]!;
  assert.equal(req.sni, 'api.example.com'); // routing lower-cases; the back-end still gets the bytes as sent
  assert.deepEqual(req.alpn, ['h2', 'http/1.1']);
  assert.equal(req.method, '');
  // Whatever arrived with the hello's last read is handed off too (it is in `consumed` or still
  // in the kernel queue); what was read must be exactly a prefix of what was sent, hello included.
  assert.ok(conn.consumed.length >= hello.length);
  assert.deepEqual(Buffer.from(conn.consumed), all.subarray(0, conn.consumed.length));
  assert.equal(b.waiting.count, 0);
  assert.deepEqual(b.acceptor.refused(), {});
});

test('the machine answering (no back-end) sends internal_error and closes', async (t) => {
  const b = await bench();
  t.after(() => b.close());
  b.onRun = (c) => c.answer(503);
  const r = await exchange(b.port, [buildClientHello({ sni: 'a.example' })]);
  assert.deepEqual(r.got, Buffer.from(buildAlert(TLS_ALERT.internalError)));
  assert.deepEqual(b.acceptor.refused(), { unavailable: 1 });
  assert.equal(b.waiting.count, 0);
});

test('refusals: malformed -> its alert, oversized -> decode_error at its length, plain HTTP -> closed silently', async (t) => {
  const b = await bench();
  t.after(() => b.close());
  const dup = buildClientHello({ sni: 'a.example', extra: [[0xff01, Uint8Array.of(0)], [0xff01, Uint8Array.of(0)]] });
  assert.deepEqual((await exchange(b.port, [dup])).got, Buffer.from(buildAlert(TLS_ALERT.illegalParameter)));
  // 3000 bytes of hello against a 2048-byte limit; only its first 200 bytes are sent, then more keeps coming.
  const big = buildClientHello({ sni: 'a.example', extra: [[0xff02, new Uint8Array(3000)]] });
  assert.deepEqual((await exchange(b.port, [big.subarray(0, 200), big.subarray(200)])).got, Buffer.from(buildAlert(TLS_ALERT.decodeError)));
  const http = await exchange(b.port, [Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n')]);
  assert.equal(http.got.length, 0);
  assert.deepEqual(b.acceptor.refused(), { BATON_ERR_TLS_DUPLICATE_EXTENSION: 1, BATON_ERR_TLS_TOO_LARGE: 1, BATON_ERR_TLS_CONTENT_TYPE: 1 });
  assert.equal(b.runs.length, 0);
  await until(() => b.waiting.count === 0);
});

test('too many records for one hello is refused (the read stays bounded)', async (t) => {
  const b = await bench();
  t.after(() => b.close());
  // 4 records allowed; this hello is cut into 64-byte records.
  const hello = buildClientHello({ sni: 'a.example', recordSize: 64, extra: [[0xff03, new Uint8Array(400)]] });
  assert.deepEqual((await exchange(b.port, [hello])).got, Buffer.from(buildAlert(TLS_ALERT.decodeError)));
  assert.deepEqual(b.acceptor.refused(), { BATON_ERR_TLS_TOO_LARGE: 1 });
});

test('a hello that stalls is closed at helloTimeoutMs with no alert', async (t) => {
  const b = await bench();
  t.after(() => b.close());
  const hello = buildClientHello({ sni: 'a.example' });
  const stalled = exchange(b.port, [hello.subarray(0, 30)]);
  await until(() => b.waiting.count === 1);
  assert.equal((await stalled).got.length, 0);
  assert.deepEqual(b.acceptor.refused(), { 'hello-timeout': 1 });
  assert.equal(b.waiting.count, 0);
  assert.equal(b.runs.length, 0);
});

test('at maxPending the hello waiting longest is closed to make room: a stalled client cannot lock new ones out', async (t) => {
  const b = await bench({ maxPending: 1, helloTimeoutMs: 60_000 });
  t.after(() => b.close());
  const hello = buildClientHello({ sni: 'a.example' });
  const stalled = exchange(b.port, [hello.subarray(0, 30)]);
  await until(() => b.waiting.count === 1);
  const fresh = exchange(b.port, [hello]);
  assert.equal((await stalled).got.length, 0, 'the stalled one is closed, with no alert');
  await until(() => b.runs.length === 1);
  await fresh;
  assert.equal(b.runs[0]!.req.host, 'a.example');
  assert.deepEqual(b.acceptor.refused(), { shed: 1 });
  assert.equal(b.waiting.shed, 1);
  assert.equal(b.waiting.count, 0);
});
