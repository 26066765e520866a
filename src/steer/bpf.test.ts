// The eBPF steering policy against the in-memory data path: what each operation writes, and what a
// client packet then meets. No root needed; the kernel projection is tested in bpf-dataplane tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BpfSteering, EXPIRE_BATCH } from './bpf.ts';
import { MemoryFlowTable } from './testing.ts';
import type { FlowKey } from './types.ts';

const flow = (port: number): FlowKey => ({ family: 4, clientAddress: '10.0.0.2', clientPort: port });
const MS = 1_000_000n;

function setup(o: { idleTimeoutS?: number; lingerMs?: number } = {}) {
  const t = new MemoryFlowTable();
  const s = new BpfSteering(t, {
    backends: [{ id: 'b1', address: '10.0.0.11' }, { id: 'b2', address: '10.0.1.12', mode: 'encap' }],
    localFor: () => '10.0.0.10',
    sweepMs: 3_600_000,
    ...o,
  });
  return { t, s };
}

test('back-end slots carry mode, address and the encap source; unused slots are cleared', async () => {
  const { t, s } = setup();
  assert.deepEqual(t.slots[0], { mode: 'l2', address: '10.0.0.11', local: undefined });
  assert.deepEqual(t.slots[1], { mode: 'encap', address: '10.0.1.12', local: '10.0.0.10' });
  assert.equal(t.slots.length, 64);
  assert.equal(t.slots[2], undefined);
  await s.close();
});

test('an encap back-end without a known source address is refused', () => {
  assert.throws(
    () => new BpfSteering(new MemoryFlowTable(), { backends: [{ id: 'b', address: '10.0.1.1', mode: 'encap' }] }),
    /encap but no source address/,
  );
});

test('hold drops, forward replaces the hold in one write, release lingers then passes', async () => {
  const { t, s } = setup({ lingerMs: 100 });
  const f = flow(40000);
  await s.hold(f);
  assert.equal(t.packet(f), 'drop');
  await s.forward(f, 'b2', { handoffId: 7n, flowId: 99 });
  assert.equal(t.get(f)?.verdict, 'forward');
  assert.equal(t.get(f)?.flowId, 99);
  assert.equal(t.packet(f), 1);
  await s.release(f, 7n);
  assert.equal(t.packet(f), 1, 'still forwarded during the linger');
  t.now += 101n * MS;
  assert.equal(t.packet(f), 'pass', 'past the linger the data path forgets it');
  assert.equal(t.get(f), undefined);
  await s.close();
});

test('a release naming an older handoff never touches the newer connection on the tuple', async () => {
  const { t, s } = setup();
  const f = flow(40001);
  await s.forward(f, 'b1', { handoffId: 1n, flowId: 1 });
  assert.equal(t.packet(f, true), 'pass', 'the client reuses its port: a bare SYN clears the old entry');
  await s.hold(f);
  await s.forward(f, 'b2', { handoffId: 2n, flowId: 2 });
  await s.release(f, 1n); // the old connection's late end-of-flow report
  assert.equal(t.get(f)?.verdict, 'forward');
  assert.equal(t.get(f)?.handoffId, 2n);
  await s.close();
});

test('unhold removes a hold but never a forwarded flow', async () => {
  const { t, s } = setup();
  const a = flow(40002);
  const b = flow(40003);
  await s.hold(a);
  await s.unhold(a);
  assert.equal(t.get(a), undefined);
  await s.forward(b, 'b1', { handoffId: 3n, flowId: 3 });
  await s.unhold(b);
  assert.equal(t.get(b)?.verdict, 'forward');
  await s.close();
});

test('releaseBackend moves only that back-end\'s forwarded flows to closing', async () => {
  const { t, s } = setup();
  await s.forward(flow(1), 'b1', { handoffId: 1n, flowId: 1 });
  await s.forward(flow(2), 'b1', { handoffId: 2n, flowId: 2 });
  await s.forward(flow(3), 'b2', { handoffId: 3n, flowId: 3 });
  await s.hold(flow(4));
  assert.equal(await s.releaseBackend('b1'), 2);
  assert.equal(t.get(flow(1))?.verdict, 'closing');
  assert.equal(t.get(flow(3))?.verdict, 'forward');
  assert.equal(t.get(flow(4))?.verdict, 'hold');
  assert.equal(await s.releaseBackend('nope'), 0);
  await s.close();
});

test('the sweep deletes idle forwards, closings past linger and forgotten holds, and nothing else', async () => {
  const { t, s } = setup({ idleTimeoutS: 10, lingerMs: 100 });
  await s.forward(flow(1), 'b1', { handoffId: 1n, flowId: 1 }); // will idle out
  await s.forward(flow(2), 'b1', { handoffId: 2n, flowId: 2 }); // refreshed by packets
  await s.forward(flow(3), 'b1', { handoffId: 3n, flowId: 3 });
  await s.release(flow(3), 3n); // closing
  await s.hold(flow(4)); // held, within its 30 s
  t.now += 9_000n * MS;
  t.packet(flow(2));
  t.now += 2_000n * MS;
  assert.equal(s.sweep(), 2);
  assert.equal(t.get(flow(1)), undefined);
  assert.equal(t.get(flow(2))?.verdict, 'forward');
  assert.equal(t.get(flow(3)), undefined);
  assert.equal(t.get(flow(4))?.verdict, 'hold');
  t.now += 30_000n * MS;
  assert.equal(s.sweep(), 2, 'the hold and the now-idle forward');
  assert.equal([...t.entries()].length, 0);
  await s.close();
});

test('list names back-ends, handoff and flow ids, and idle time', async () => {
  const { t, s } = setup();
  await s.hold(flow(1));
  await s.forward(flow(2), 'b2', { handoffId: 5n, flowId: 6 });
  t.now += 1500n * MS;
  const l = await s.list();
  assert.deepEqual(
    l.map((e) => [e.flow.clientPort, e.verdict, e.backend, e.handoffId, e.flowId, e.idleMs]),
    [
      [1, 'hold', undefined, undefined, undefined, 1500],
      [2, 'forward', 'b2', 5n, 6, 1500],
    ],
  );
  await s.close();
});

test('close keeps or clears the kernel state as asked, and refuses later operations', async () => {
  const a = setup();
  await a.s.close({ keep: true });
  assert.equal(a.t.closedWith, true);
  await assert.rejects(a.s.hold(flow(1)), /steering is closed/);
  const b = setup();
  await b.s.close();
  assert.equal(b.t.closedWith, false);
});

test('an unknown back-end is refused with its name', async () => {
  const { s } = setup();
  await assert.rejects(s.forward(flow(1), 'b9', { handoffId: 1n, flowId: 1 }), /forward 10.0.0.2:1 to b9: steering: unknown back-end b9/);
  await s.close();
});

test('released flows expire from their own list, without a walk, and never take a newer connection with them', async () => {
  const { t, s } = setup({ lingerMs: 100 });
  await s.forward(flow(1), 'b1', { handoffId: 1n, flowId: 1 });
  await s.forward(flow(2), 'b1', { handoffId: 2n, flowId: 2 });
  await s.release(flow(1), 1n);
  await s.release(flow(2), 2n);
  t.packet(flow(2), true); // the client reuses port 2 at once: a bare SYN clears it...
  await s.forward(flow(2), 'b2', { handoffId: 3n, flowId: 3 }); // ...and a new connection takes the tuple
  assert.equal(s.expireReleased(), 0, 'still lingering');
  t.now += 101n * MS;
  assert.equal(s.expireReleased(), 1);
  assert.equal(t.get(flow(1)), undefined);
  assert.equal(t.get(flow(2))?.handoffId, 3n, 'the newer connection stays');
  assert.equal(s.expireReleased(), 0, 'each release is expired once');
  await s.close();
});

test('a released flow whose client keeps sending (a slow reader draining the back-end) stays until it is quiet for a linger', async () => {
  const { t, s } = setup({ lingerMs: 100 });
  t.lingerNs = 100n * MS;
  await s.forward(flow(1), 'b1', { handoffId: 1n, flowId: 1 });
  await s.release(flow(1), 1n);
  for (let i = 0; i < 10; i++) {
    t.now += 60n * MS; // an ACK every 60 ms, well past the first 100 ms deadline
    assert.equal(t.packet(flow(1)), 0, `still forwarded after ${(i + 1) * 60} ms`);
    s.expireReleased();
  }
  assert.equal(t.get(flow(1))?.verdict, 'closing');
  t.now += 101n * MS; // quiet for a whole linger
  assert.equal(s.expireReleased(), 1);
  assert.equal(t.get(flow(1)), undefined);
  await s.close();
});

test('expiry takes at most a batch of released flows at a time, oldest first; the timer gets through all of them in turns', async () => {
  const { t, s } = setup({ lingerMs: 10 });
  const n = EXPIRE_BATCH * 2 + 88;
  for (let i = 1; i <= n; i++) {
    await s.forward(flow(i), 'b1', { handoffId: BigInt(i), flowId: i });
    await s.release(flow(i), BigInt(i));
  }
  t.now += 11n * MS;
  assert.equal(s.expireReleased(EXPIRE_BATCH), EXPIRE_BATCH);
  assert.equal(t.get(flow(1)), undefined, 'the oldest went first');
  assert.equal(t.get(flow(EXPIRE_BATCH + 1))?.verdict, 'closing');
  // The rest goes through the timer (every 10 ms here), a batch per turn of the event loop.
  for (const end = Date.now() + 2000; t.get(flow(n)) !== undefined; await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > end) assert.fail('the timer did not expire the rest');
  }
  assert.equal(t.get(flow(EXPIRE_BATCH + 1)), undefined);
  await s.close();
});
