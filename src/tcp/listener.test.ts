// The plain listener (tcp/listener.ts over sys/listener.ts): accepted descriptors with their endpoints, deferred
// accept, bursts, close, and bind errors. Loopback only; needs no root.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'node:test';
import { SysError } from '../sys/errors.ts';
import { BATCH } from '../sys/listener.ts';
import { type AcceptedConnection, Listener } from './listener.ts';

function open(t: test.TestContext, deferAcceptS?: number): { l: Listener; accepted: AcceptedConnection[] } {
  const l = Listener.open({ family: 4, address: '127.0.0.1', port: 0, backlog: 128, ...(deferAcceptS !== undefined && { deferAcceptS }) });
  const accepted: AcceptedConnection[] = [];
  l.start((c) => accepted.push(c), (e) => assert.fail(e));
  t.after(() => {
    l.close();
    for (const c of accepted) c.fd.close();
  });
  return { l, accepted };
}

async function connect(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 5000; !cond(); await sleep(5)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
}

test('an accepted connection is an owned descriptor with both endpoints; its queued bytes peek; it can become a socket', async (t) => {
  const { l, accepted } = open(t);
  assert.equal(l.address.address, '127.0.0.1');
  assert.ok(l.address.port > 0);
  const client = await connect(l.address.port);
  t.after(() => client.destroy());
  client.write('hello');
  await until(() => accepted.length === 1, 'the accept');
  const c = accepted[0]!;
  assert.equal(c.family, 4);
  assert.deepEqual(c.client, { address: '127.0.0.1', port: client.localPort });
  assert.deepEqual(c.local, { address: '127.0.0.1', port: l.address.port });
  await until(() => c.fd.peek(Buffer.alloc(16))?.toString() === 'hello', 'the bytes');
  const s = c.fd.toSocket();
  assert.equal(c.fd.owned, false, 'the socket owns the descriptor now');
  const got = new Promise<string>((r) => client.once('data', (d) => r(d.toString())));
  s.end('bye');
  assert.equal(await got, 'bye');
});

test('with TCP_DEFER_ACCEPT a silent client is not accepted, one that speaks is', async (t) => {
  const { l, accepted } = open(t, 2);
  assert.equal(l.deferAcceptError, undefined);
  const silent = await connect(l.address.port);
  const speaker = await connect(l.address.port);
  t.after(() => {
    silent.destroy();
    speaker.destroy();
  });
  speaker.write('GET / HTTP/1.1\r\n\r\n');
  await until(() => accepted.length === 1, 'the speaker');
  assert.equal(accepted[0]!.client.port, speaker.localPort);
  await sleep(200);
  assert.equal(accepted.length, 1, 'the silent client waits in the kernel');
});

test('a burst of connections is accepted in full', async (t) => {
  const { l, accepted } = open(t);
  const clients = await Promise.all(Array.from({ length: 60 }, () => connect(l.address.port)));
  t.after(() => clients.forEach((c) => c.destroy()));
  await until(() => accepted.length === 60, 'sixty accepts');
  assert.equal(new Set(accepted.map((c) => c.fd.fd)).size, 60);
  assert.deepEqual(new Set(accepted.map((c) => c.client.port)), new Set(clients.map((c) => c.localPort)));
});

test('close stops accepting: new clients are refused; closing twice is harmless', async (t) => {
  const { l } = open(t);
  const { port } = l.address;
  l.close();
  l.close();
  const s = net.connect(port, '127.0.0.1');
  const err = await new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
  assert.equal(err.code, 'ECONNREFUSED');
});

test('a port in use is a SysError naming bind and EADDRINUSE', (t) => {
  const { l } = open(t);
  assert.throws(
    () => Listener.open({ family: 4, address: '127.0.0.1', port: l.address.port, backlog: 1 }),
    (e: unknown) => e instanceof SysError && e.errnoName === 'EADDRINUSE' && /bind 127\.0\.0\.1:\d+/.test(e.message),
  );
});

test('a backlog is accepted in batches; what onAccept starts (nextTicks, promise continuations) runs after its batch, before the next', async (t) => {
  // BATCH + 8 clients wait in the backlog before accepting starts: one readiness, two batches.
  const total = BATCH + 8;
  const l = Listener.open({ family: 4, address: '127.0.0.1', port: 0, backlog: 128 });
  const fds: AcceptedConnection[] = [];
  t.after(() => {
    l.close();
    for (const c of fds) c.fd.close();
  });
  const clients = await Promise.all(Array.from({ length: total }, () => connect(l.address.port)));
  t.after(() => clients.forEach((c) => c.destroy()));
  const events: string[] = [];
  l.start((c) => {
    const i = fds.push(c) - 1;
    events.push(`accept ${i}`);
    process.nextTick(() => events.push(`tick ${i}`));
    void Promise.resolve().then(() => events.push(`then ${i}`));
  }, (e) => assert.fail(e));
  await until(() => events.length === 3 * total, 'every accept and its follow-ups');
  const at = (e: string): number => events.indexOf(e);
  // The first batch: every accept, then every follow-up, all before the second batch's first accept.
  for (let i = 0; i < BATCH; i++) {
    assert.ok(at(`accept ${i}`) < at('tick 0'), `accept ${i} is in the first batch`);
    assert.ok(at(`then ${i}`) < at(`accept ${BATCH}`), `then ${i} runs before the second batch`);
  }
  for (let i = BATCH; i < total; i++) assert.ok(at(`accept ${i}`) > at(`then ${BATCH - 1}`), `accept ${i} is in the second batch`);
});

test('out of descriptors (EMFILE), accepting pauses and reports instead of spinning, and resumes once there are some', async (t) => {
  // A child with a 40-descriptor limit that keeps every connection it accepts, until told to let 10 go.
  const listener = new URL('./listener.ts', import.meta.url).href;
  const script = `
    import { Listener } from ${JSON.stringify(listener)};
    const l = Listener.open({ family: 4, address: '127.0.0.1', port: 0, backlog: 128 });
    const kept = [];
    let errors = 0;
    l.start((c) => kept.push(c), (e) => { errors++; if (errors === 1) console.log(JSON.stringify({ error: e.errnoName })); });
    console.log(JSON.stringify({ port: l.address.port }));
    process.stdin.on('data', (d) => {
      if (String(d).includes('free')) for (const c of kept.splice(0, 10)) c.fd.close();
      console.log(JSON.stringify({ accepted: kept.length, errors }));
    });
  `;
  const child = spawn('bash', ['-c', `ulimit -n 40 && exec "${process.execPath}" --import tsx --input-type=module -e '${script.replaceAll("'", "'\\''")}'`], {
    cwd: new URL('../..', import.meta.url).pathname, stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => child.kill());
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  const ask = async (what: string): Promise<{ accepted: number; errors: number }> => {
    const n = lines.length;
    child.stdin.write(`${what}\n`);
    await until(() => lines.slice(n).some((l) => 'accepted' in l), `an answer to ${what}`);
    return lines.slice(n).find((l) => 'accepted' in l) as { accepted: number; errors: number };
  };
  await until(() => lines.some((l) => 'port' in l), 'the child listening');
  const port = (lines.find((l) => 'port' in l) as { port: number }).port;
  const clients = await Promise.all(Array.from({ length: 50 }, () => connect(port)));
  t.after(() => clients.forEach((c) => c.destroy()));
  await until(() => lines.some((l) => l['error'] === 'EMFILE'), 'EMFILE reported');
  await sleep(500);
  const full = await ask('count');
  assert.ok(full.accepted > 0 && full.accepted < 50, `accepted ${full.accepted} of 50 with 40 descriptors`);
  // Spinning on a readable listener would report thousands of times in half a second; pausing 100 ms, a handful.
  assert.ok(full.errors <= 12, `${full.errors} EMFILE reports in about 0.5 s`);
  await ask('free');
  await until(() => lines.filter((l) => 'accepted' in l).length >= 2, 'the answer');
  await sleep(400);
  const after = await ask('count');
  assert.equal(after.accepted, Math.min(full.accepted, 50 - 10), 'ten more accepted once ten descriptors were free');
});
