// Capture's receive-queue sizing (capture.ts peekReceiveQueue): the length tcp_info implies, confirmed by one peek,
// and SIOCINQ whenever that length is not the queue's. Loopback, not in repair mode (MSG_PEEK reads the same
// queue); needs no root. The whole capture is tested with real clients in test/tcp-handoff.test.ts.
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'node:test';
import { peekReceiveQueue } from './capture.ts';
import { type AcceptedConnection, Listener } from './listener.ts';
import { getInfoOptions } from './repair.ts';

async function connection(t: test.TestContext, send: string, fin: boolean): Promise<AcceptedConnection> {
  const l = Listener.open({ family: 4, address: '127.0.0.1', port: 0, backlog: 8 });
  const accepted: AcceptedConnection[] = [];
  l.start((c) => accepted.push(c), (e) => assert.fail(e));
  const client = net.connect(l.address.port, '127.0.0.1');
  client.on('error', () => undefined);
  t.after(() => {
    client.destroy();
    l.close();
    for (const c of accepted) c.fd.close();
  });
  if (fin) client.end(send);
  else if (send.length > 0) client.write(send);
  const want = fin ? 8 /* CLOSE_WAIT */ : 1; /* ESTABLISHED */
  for (const end = Date.now() + 5000; ; await sleep(5)) {
    const c = accepted[0];
    if (c !== undefined && getInfoOptions(c.fd.fd).state === want && (getInfoOptions(c.fd.fd).queues?.bytesReceived ?? 0) >= send.length) return c;
    if (Date.now() > end) assert.fail('timed out waiting for the connection and its bytes');
  }
}

test('tcp_info gives the queue length (a FIN counted in bytes_received); a wrong length falls back to SIOCINQ', async (t) => {
  const c = await connection(t, 'GET / HTTP/1.1\r\n\r\n', true);
  const fd = c.fd.fd;
  const q = getInfoOptions(fd).queues;
  assert.ok(q, 'this kernel reports tcpi_bytes_received');
  assert.equal(q.bytesReceived, 19, '18 bytes and the FIN');
  const want = 'GET / HTTP/1.1\r\n\r\n';
  assert.equal(peekReceiveQueue(fd, 0, true, q.bytesReceived).toString(), want);
  // Lengths that are not the queue's, and none at all: SIOCINQ sizes the peek instead.
  for (const received of [q.bytesReceived + 5, q.bytesReceived - 4, 0, undefined]) {
    assert.equal(peekReceiveQueue(fd, 0, true, received).toString(), want, `bytesReceived ${String(received)}`);
  }
  // What the application read is not in the queue: with 4 bytes consumed, the derived length is 14 and the
  // peek finds 18, so SIOCINQ decides (this socket was never read: the 18 bytes are still queued).
  assert.equal(peekReceiveQueue(fd, 4, true, q.bytesReceived).toString(), want);
});

test('without a FIN the queue is bytes_received long; an empty queue is empty (a FIN alone, or nothing yet)', async (t) => {
  const open = await connection(t, 'POST / HTTP/1.1\r\n', false);
  const q = getInfoOptions(open.fd.fd).queues;
  assert.equal(q?.bytesReceived, 17);
  assert.equal(peekReceiveQueue(open.fd.fd, 0, false, q?.bytesReceived).toString(), 'POST / HTTP/1.1\r\n');
  const finOnly = await connection(t, '', true);
  assert.equal(getInfoOptions(finOnly.fd.fd).queues?.bytesReceived, 1);
  assert.equal(peekReceiveQueue(finOnly.fd.fd, 0, true, 1).length, 0);
  const silent = await connection(t, '', false);
  assert.equal(getInfoOptions(silent.fd.fd).queues?.bytesReceived, 0);
  assert.equal(peekReceiveQueue(silent.fd.fd, 0, false, 0).length, 0, 'EAGAIN: nothing queued');
});
