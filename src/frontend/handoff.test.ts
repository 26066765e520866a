// The handoff machine's failure table, without root: fake steering, scripted channels, a fake
// capture and a fake client connection (frontend/testing.ts). Each row says what the back-ends
// answer and what must follow: who got the blob, what the client got, what steering holds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isEligible, type BackendId, type PickResult, type RequestInfo } from '../policy/index.ts';
import { BackendTable } from './backends.ts';
import type { HandoffAck } from './channel.ts';
import { HandoffMachine, type CaptureInput, type CaptureResult } from './handoff.ts';
import { FakeChannel, FakeConnection, FakeSteering, MemoryLog, type Script } from './testing.ts';

const IDS = ['b1', 'b2', 'b3'] as const;
const req: RequestInfo = { method: 'GET', target: '/', path: '/', host: 'x', headers: new Map() };
const ok: Script = () => ({ ok: true });
const refuse: Script = () => ({ ok: false, code: 'BATON_ERR_FULL', reason: 'at capacity' });
const timeout: Script = () => ({ ok: false, code: 'BATON_ERR_HANDOFF_TIMEOUT', reason: 'no ack within 2000 ms' });
const lost: Script = () => ({ ok: false, code: 'BATON_ERR_CHANNEL_LOST', reason: 'channel lost: peer closed' });

interface Rig {
  readonly machine: HandoffMachine;
  readonly steering: FakeSteering;
  readonly channels: Map<string, FakeChannel>;
  readonly table: BackendTable;
  readonly log: MemoryLog;
  readonly captured: CaptureInput[];
}

function rig(o: { scripts?: Partial<Record<(typeof IDS)[number], Script>>; maxAttempts?: number; capture?: (i: CaptureInput) => CaptureResult; flowIdsInUse?: ReadonlySet<number> } = {}): Rig {
  const steering = new FakeSteering();
  const channels = new Map(IDS.map((id) => [id as string, new FakeChannel(o.scripts?.[id] ?? ok)]));
  const table = new BackendTable(IDS.map((id) => ({ id, weight: 1 })), (id) => channels.get(id)?.state ?? 'down');
  const log = new MemoryLog();
  const captured: CaptureInput[] = [];
  let t = 0n;
  // First eligible back-end in order: deterministic, and honours up/drained/excluded like every policy.
  const pick = (_r: RequestInfo, exclude: ReadonlySet<string>): PickResult => {
    const b = table.views(exclude).find(isEligible);
    return b === undefined ? { kind: 'none', reason: 'no eligible back-end' } : { kind: 'backend', id: b.id as BackendId };
  };
  const machine = new HandoffMachine({
    steering,
    channel: (id) => channels.get(id),
    capture: (i) => {
      captured.push(i);
      return o.capture?.(i) ?? { ok: true, blob: new Uint8Array([Number(i.handoffId & 0xffn)]) };
    },
    pick,
    book: table,
    clock: { now: () => 0, hrtime: () => (t += 1000n) },
    log,
    maxAttempts: () => o.maxAttempts ?? 3,
    flowIdsInUse: o.flowIdsInUse,
  });
  return { machine, steering, channels, table, log, captured };
}

const sentTo = (r: Rig): string[] => [...r.channels].flatMap(([id, ch]) => ch.sent.map(() => id));
const counts = (r: Rig) => Object.fromEntries(r.table.list().map((b) => [b.id, { handoffs: b.handoffs, failures: b.failures, active: b.active }]));

interface Row {
  readonly name: string;
  readonly scripts: Partial<Record<(typeof IDS)[number], Script>>;
  readonly maxAttempts?: number;
  readonly down?: readonly string[];
  readonly drained?: readonly string[];
  /** Back-ends the blob went to, in order. */
  readonly tried: readonly string[];
  /** What the client connection saw. */
  readonly client: readonly string[];
  readonly outcome: string;
  readonly retries: number;
}

const table: Row[] = [
  { name: 'first back-end accepts', scripts: {}, tried: ['b1'], client: ['closeSilently'], outcome: 'handed-off b1', retries: 0 },
  { name: 'refused -> next back-end', scripts: { b1: refuse }, tried: ['b1', 'b2'], client: ['closeSilently'], outcome: 'handed-off b2', retries: 1 },
  { name: 'timeout -> next back-end', scripts: { b1: timeout }, tried: ['b1', 'b2'], client: ['closeSilently'], outcome: 'handed-off b2', retries: 1 },
  { name: 'channel lost before the ACK -> next back-end', scripts: { b1: lost, b2: refuse }, tried: ['b1', 'b2', 'b3'], client: ['closeSilently'], outcome: 'handed-off b3', retries: 2 },
  { name: 'all refuse -> 503', scripts: { b1: refuse, b2: refuse, b3: refuse }, tried: ['b1', 'b2', 'b3'], client: ['repairOff', 'answer 503'], outcome: 'answered 503', retries: 3 },
  { name: 'all time out -> 503', scripts: { b1: timeout, b2: timeout, b3: timeout }, tried: ['b1', 'b2', 'b3'], client: ['repairOff', 'answer 503'], outcome: 'answered 503', retries: 3 },
  { name: 'attempts are bounded by maxAttempts', scripts: { b1: refuse, b2: refuse }, maxAttempts: 2, tried: ['b1', 'b2'], client: ['repairOff', 'answer 503'], outcome: 'answered 503', retries: 2 },
  { name: 'a down back-end is never tried', scripts: {}, down: ['b1'], tried: ['b2'], client: ['closeSilently'], outcome: 'handed-off b2', retries: 0 },
  { name: 'a drained back-end is never tried', scripts: {}, drained: ['b1', 'b2'], tried: ['b3'], client: ['closeSilently'], outcome: 'handed-off b3', retries: 0 },
  { name: 'no back-end up -> 503, nothing held', scripts: {}, down: ['b1', 'b2', 'b3'], tried: [], client: ['answer 503'], outcome: 'answered 503', retries: 0 },
];

for (const row of table) {
  test(`handoff table: ${row.name}`, async () => {
    const r = rig({ scripts: row.scripts, ...(row.maxAttempts !== undefined && { maxAttempts: row.maxAttempts }) });
    for (const id of row.down ?? []) r.channels.get(id)!.state = 'down';
    for (const id of row.drained ?? []) r.table.setDrained(id, true);
    const conn = new FakeConnection();
    const out = await r.machine.run(conn, req);
    const label = out.kind === 'handed-off' ? `handed-off ${out.backend}` : out.kind === 'answered' ? `answered ${out.status}` : out.kind;
    assert.equal(label, row.outcome);
    assert.deepEqual(sentTo(r), row.tried);
    assert.deepEqual(conn.did, row.client);
    assert.equal(r.machine.stats().retries, row.retries);
    // The same blob went to every back-end tried: captured once.
    assert.equal(r.captured.length, row.tried.length > 0 ? 1 : 0);
    const blobs = [...r.channels.values()].flatMap((c) => c.sent.map((s) => Buffer.from(s.blob).toString('hex')));
    assert.equal(new Set(blobs).size, Math.min(1, blobs.length));
    // Nothing left held, ever; a forward only when handed off, to that back-end, under its handoff id.
    assert.equal(r.steering.held.size, 0, r.steering.calls.join('\n'));
    if (out.kind === 'handed-off') {
      assert.deepEqual([...r.steering.forwarded.values()], [{ backend: out.backend, handoffId: out.handoffId }]);
      assert.deepEqual(r.channels.get(out.backend)!.commits, [out.handoffId]);
      const c = counts(r)[out.backend]!;
      assert.equal(c.handoffs, 1);
      assert.equal(c.active, 1, 'a commit counts until a report includes it');
    } else assert.equal(r.steering.forwarded.size, 0);
    // Every back-end that did not take it counted one failure.
    for (const id of row.tried) if (label !== `handed-off ${id}`) assert.equal(counts(r)[id]!.failures, 1, id);
    assert.equal(r.log.lines.filter((l) => l.level === 'error').length, 0);
  });
}

test('forward fails -> ABORT to that back-end, the client is given back and answered 503', async () => {
  const r = rig();
  r.steering.failForward = true;
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.deepEqual(out, { kind: 'answered', status: 503, why: 'forward failed' });
  const b1 = r.channels.get('b1')!;
  assert.deepEqual(b1.aborts, [b1.sent[0]!.id]);
  assert.deepEqual(b1.commits, []);
  assert.deepEqual(conn.did, ['repairOff', 'answer 503']);
  assert.equal(r.steering.held.size, 0);
  assert.equal(r.steering.forwarded.size, 0);
  assert.equal(counts(r)['b1']!.failures, 1);
  assert.equal(counts(r)['b1']!.handoffs, 0);
  assert.equal(counts(r)['b1']!.active, 0);
});

test('channel lost between ACK and COMMIT -> the forward is taken back and the client answered 503', async () => {
  const r = rig();
  r.channels.get('b1')!.commitOk = false;
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.equal(out.kind, 'answered');
  assert.deepEqual(conn.did, ['repairOff', 'answer 503']);
  assert.equal(r.steering.forwarded.size, 0);
  assert.equal(r.steering.held.size, 0);
  assert.equal(counts(r)['b1']!.active, 0);
});

test('hold fails -> 503 and an error log; no capture, nothing sent', async () => {
  const r = rig();
  r.steering.failHold = true;
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.equal(out.kind, 'answered');
  assert.deepEqual(conn.did, ['answer 503']);
  assert.equal(r.captured.length, 0);
  assert.deepEqual(sentTo(r), []);
  assert.deepEqual(r.log.lines.map((l) => l.msg), ['hold failed']);
});

test('capture fails with the client still there -> given back, 503, a warning', async () => {
  const r = rig({ capture: () => ({ ok: false, gone: false, error: new Error('capture: EPERM') }) });
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.equal(out.kind, 'answered');
  assert.deepEqual(conn.did, ['repairOff', 'answer 503']);
  assert.equal(r.steering.held.size, 0);
  assert.deepEqual(r.log.lines.map((l) => l.level), ['warn']);
});

test('client vanished before capture -> no log, no answer, nothing held, counters unchanged', async () => {
  const r = rig({ capture: () => ({ ok: false, gone: true, error: new Error('capture: socket is in TCP state 7') }) });
  const before = { counts: counts(r), stats: r.machine.stats() };
  const conn = new FakeConnection();
  const out = await r.machine.run(conn, req);
  assert.deepEqual(out, { kind: 'gone' });
  assert.deepEqual(conn.did, ['discard']);
  assert.deepEqual(r.log.lines, []);
  assert.equal(r.steering.held.size, 0);
  assert.equal(r.steering.forwarded.size, 0);
  assert.deepEqual(sentTo(r), []);
  assert.deepEqual(counts(r), before.counts);
  const after = r.machine.stats();
  assert.equal(after.handedOff, before.stats.handedOff);
  assert.equal(after.retries, before.stats.retries);
  assert.equal(after.vanished, 1);
});

test('one client port, many sequential connections, end reports delayed: an old report never releases a newer connection', async () => {
  const r = rig();
  // Round robin by hand: each connection's first choice is another back-end.
  const order = ['b1', 'b2', 'b3'];
  const ends: Array<{ flow: FakeConnection['flow']; handoffId: bigint }> = [];
  for (let i = 0; i < 30; i++) {
    for (const id of order) r.table.setDrained(id, id !== order[i % 3]);
    const conn = new FakeConnection(47001);
    const out = await r.machine.run(conn, req);
    assert.equal(out.kind, 'handed-off');
    if (out.kind !== 'handed-off') return;
    // The report of the previous connection on this port lands only now, after the new forward.
    const late = ends.shift();
    if (late !== undefined) await r.steering.release(late.flow, late.handoffId);
    assert.deepEqual(r.steering.forwarded.get('198.51.100.7:47001'), { backend: out.backend, handoffId: out.handoffId }, `connection ${i}`);
    ends.push({ flow: conn.flow, handoffId: out.handoffId });
  }
  // Handoff ids are distinct per connection, so every report names exactly one connection.
  const ids = r.steering.calls.filter((c) => c.startsWith('forward')).map((c) => c.split('#')[1]);
  assert.equal(new Set(ids).size, 30);
  // The last connection's own report does release it.
  const last = ends.shift()!;
  await r.steering.release(last.flow, last.handoffId);
  assert.equal(r.steering.forwarded.size, 0);
});

test('handoff ids and flow ids are unique per connection and flow ids stay in range', async () => {
  const r = rig();
  for (let i = 0; i < 5; i++) await r.machine.run(new FakeConnection(40000 + i), req);
  assert.deepEqual(r.captured.map((c) => c.handoffId), [1n, 2n, 3n, 4n, 5n]);
  assert.deepEqual(r.captured.map((c) => c.flowId), [1, 2, 3, 4, 5]);
});

test('flow ids of adopted connections are never given to new ones', async () => {
  const r = rig({ flowIdsInUse: new Set([2, 3, 5]) });
  for (let i = 0; i < 4; i++) await r.machine.run(new FakeConnection(40000 + i), req);
  assert.deepEqual(r.captured.map((c) => c.flowId), [1, 4, 6, 7]);
});

test('a sendHandoff that rejects counts as a refusal and the in-flight count returns to 0', async () => {
  const r = rig({ scripts: { b1: () => Promise.reject(new Error('invalid argument')) as Promise<HandoffAck> } });
  const out = await r.machine.run(new FakeConnection(), req);
  assert.equal(out.kind, 'handed-off');
  assert.equal(counts(r)['b1']!.active, 0);
  assert.equal(counts(r)['b1']!.failures, 1);
});

test('phases and latency are recorded for every handoff', async () => {
  const r = rig();
  await r.machine.run(new FakeConnection(), req);
  const s = r.machine.stats();
  assert.deepEqual(Object.keys(s.phasesUs).sort(), ['capture', 'confirm', 'forward', 'hold', 'prepare']);
  assert.equal(s.handoffUs.count, 1);
  assert.ok(s.phasesUs['hold']!.p50 > 0);
});

test('client socket closed under us before capture -> not captured (its descriptor may be reused), vanished quietly', async () => {
  const r = rig();
  const conn = new FakeConnection();
  r.steering.duringHold = async () => {
    conn.open = false;
  };
  const out = await r.machine.run(conn, req);
  assert.deepEqual(out, { kind: 'gone' });
  assert.equal(r.captured.length, 0);
  assert.deepEqual(conn.did, ['discard']);
  assert.deepEqual(r.log.lines, []);
  assert.equal(r.steering.held.size, 0);
  assert.equal(r.machine.stats().vanished, 1);
});

test('client socket already closed when the head completes -> nothing held at all, vanished quietly', async () => {
  const r = rig();
  const conn = new FakeConnection();
  conn.open = false;
  const out = await r.machine.run(conn, req);
  assert.deepEqual(out, { kind: 'gone' });
  assert.deepEqual(r.steering.calls, []);
  assert.deepEqual(conn.did, ['discard']);
  assert.deepEqual(r.log.lines, []);
  assert.equal(r.machine.stats().vanished, 1);
});
