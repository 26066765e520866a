// Forwarded handoffs (docs/handoff.md): to a back-end whose channel says `forwardFirst`, the machine steers the
// client there before it captures and sends the blob, and the back-end delivers at once (no COMMIT). Each case
// says what the kernel's steering, the back-ends and the client saw, with fake ports (frontend/testing.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isEligible, type BackendId, type PickResult, type RequestInfo } from '../policy/index.ts';
import { BackendTable } from './backends.ts';
import { HandoffMachine, type CaptureInput, type CaptureResult } from './handoff.ts';
import { FakeChannel, FakeConnection, FakeSteering, MemoryLog, type Script } from './testing.ts';

const IDS = ['b1', 'b2'] as const;
const req: RequestInfo = { method: 'GET', target: '/', path: '/', host: 'x', headers: new Map() };
const ok: Script = () => ({ ok: true });
const refuse: Script = () => ({ ok: false, code: 'BATON_ERR_FULL', reason: 'at capacity' });
const timeout: Script = () => ({ ok: false, code: 'BATON_ERR_HANDOFF_TIMEOUT', reason: 'no ack within 2000 ms' });
const lost: Script = () => ({ ok: false, code: 'BATON_ERR_CHANNEL_LOST', reason: 'channel lost: peer closed' });

function rig(o: { b1?: Script; b2?: Script; capture?: (i: CaptureInput) => CaptureResult; failForward?: boolean } = {}) {
  const steering = new FakeSteering();
  steering.failForward = o.failForward ?? false;
  const channels = new Map<string, FakeChannel>([
    ['b1', new FakeChannel(o.b1 ?? ok)],
    ['b2', new FakeChannel(o.b2 ?? ok)],
  ]);
  for (const ch of channels.values()) ch.forwardFirst = true;
  const table = new BackendTable(IDS.map((id) => ({ id, weight: 1 })), () => 'up');
  const log = new MemoryLog();
  const order: string[] = [];
  const pick = (_r: RequestInfo, exclude: ReadonlySet<string>): PickResult => {
    const b = table.views(exclude).find(isEligible);
    return b === undefined ? { kind: 'none', reason: 'none' } : { kind: 'backend', id: b.id as BackendId };
  };
  let t = 0n;
  const machine = new HandoffMachine({
    steering: {
      hold: async (f) => (order.push('hold'), steering.hold(f)),
      forward: async (f, id, ids) => (order.push(`forward ${id}`), steering.forward(f, id, ids)),
      unhold: async (f) => (order.push('unhold'), steering.unhold(f)),
      release: async (f, h) => (order.push('release'), steering.release(f, h)),
    },
    channel: (id) => channels.get(id),
    capture: (i) => {
      order.push('capture');
      return o.capture?.(i) ?? { ok: true, blob: new Uint8Array([7]) };
    },
    pick,
    book: table,
    clock: { now: () => 0, hrtime: () => (t += 1000n) },
    log,
    maxAttempts: () => 3,
  });
  return { machine, steering, channels, order, log };
}

const steered = (r: ReturnType<typeof rig>) => [...r.steering.forwarded.values()];

test('forward first: the client is steered before the capture, the blob goes flagged, no hold and no COMMIT', async () => {
  const r = rig();
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.deepEqual(out, { kind: 'handed-off', backend: 'b1', handoffId: 1n });
  assert.deepEqual(r.order, ['forward b1', 'capture']);
  assert.deepEqual(r.channels.get('b1')!.sent.map((s) => [s.id, s.forwarded]), [[1n, true]]);
  assert.deepEqual(r.channels.get('b1')!.commits, []);
  assert.deepEqual(conn.did, ['closeSilently']);
  assert.deepEqual(steered(r), [{ backend: 'b1', handoffId: 1n }]);
  const st = r.machine.stats();
  assert.equal(st.handedOff, 1);
  assert.equal(st.placedUs.count, 1);
});

for (const [name, script] of [['refused', refuse], ['timed out', timeout]] as const) {
  test(`forward first, ${name}: held here, then the next back-end the classic way under a new handoff id`, async () => {
    const r = rig({ b1: script });
    const conn = new FakeConnection();
    const out = await r.machine.run(conn, req);
    assert.deepEqual(out, { kind: 'handed-off', backend: 'b2', handoffId: 2n });
    assert.deepEqual(r.order, ['forward b1', 'capture', 'hold', 'forward b2']);
    assert.deepEqual(r.channels.get('b2')!.sent.map((s) => [s.id, s.forwarded]), [[2n, false]]);
    assert.deepEqual(r.channels.get('b2')!.commits, [2n]);
    assert.deepEqual(steered(r), [{ backend: 'b2', handoffId: 2n }]);
    assert.deepEqual(conn.did, ['closeSilently']);
    assert.equal(r.machine.stats().retries, 1);
  });
}

test('forward first, every back-end refuses: the client is answered here and nothing stays steered', async () => {
  const r = rig({ b1: refuse, b2: refuse });
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.equal(out.kind, 'answered');
  assert.deepEqual(conn.did, ['repairOff', 'answer 503']);
  assert.equal(r.steering.forwarded.size, 0);
  assert.equal(r.steering.held.size, 0);
});

test('forward first, channel lost after the blob (most often a dead agent): held here, then the next back-end', async () => {
  const r = rig({ b1: lost });
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.deepEqual(out, { kind: 'handed-off', backend: 'b2', handoffId: 2n });
  assert.deepEqual(conn.did, ['closeSilently']);
  assert.deepEqual(steered(r), [{ backend: 'b2', handoffId: 2n }]);
  assert.equal(r.machine.stats().unconfirmed, 1);
});

test('forward first, capture fails: steering comes back here (hold, unhold) and the client gets 503; no blob sent', async () => {
  const r = rig({ capture: () => ({ ok: false, gone: false, error: new Error('EPERM') }) });
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.equal(out.kind, 'answered');
  assert.deepEqual(r.order, ['forward b1', 'capture', 'hold', 'unhold']);
  assert.deepEqual(conn.did, ['repairOff', 'answer 503']);
  assert.equal(r.steering.forwarded.size + r.steering.held.size, 0);
  assert.deepEqual(r.channels.get('b1')!.sent, []);
});

test('forward first, client gone at the capture: nothing answered, nothing left steered', async () => {
  const r = rig({ capture: () => ({ ok: false, gone: true, error: new Error('ECONNRESET') }) });
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.deepEqual(out, { kind: 'gone' });
  assert.deepEqual(conn.did, ['discard']);
  assert.equal(r.steering.forwarded.size + r.steering.held.size, 0);
});

test('forward first, the forward itself fails: 503 before any capture', async () => {
  const r = rig({ failForward: true });
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.equal(out.kind, 'answered');
  assert.ok(!r.order.includes('capture'));
  assert.deepEqual(conn.did, ['repairOff', 'answer 503']);
  assert.equal(r.steering.forwarded.size + r.steering.held.size, 0);
});

test('a back-end without the guard gets the classic handoff', async () => {
  const r = rig();
  r.channels.get('b1')!.forwardFirst = false;
  const conn = new FakeConnection();
  await r.machine.run(conn, req);
  assert.deepEqual(r.order, ['hold', 'capture', 'forward b1']);
  assert.deepEqual(r.channels.get('b1')!.commits, [1n]);
});
