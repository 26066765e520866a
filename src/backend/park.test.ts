// The parking policy without root: fake guard maps and a fake queue (whose drain delivers what "the kernel" queued
// meanwhile), a clock in the test's hands. Checks arrival order on release, the drain before release, late packets
// of a released tuple, expiry, discard, the bounds, and close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emitTcpFrame } from '../wire/packet.ts';
import { NF_ACCEPT, NF_DROP, type QueuedPacket, type Verdict } from '../wire/nfqueue.ts';
import { type GuardPort, type ParkedFlow, type ParkLimits, ParkModel, type QueuePort } from './park.ts';

const flowA: ParkedFlow = { family: 4, client: { address: '198.51.100.7', port: 40000 }, vip: { address: '203.0.113.10', port: 80 } };
const flowB: ParkedFlow = { family: 6, client: { address: '2001:db8::7', port: 40001 }, vip: { address: '2001:db8::10', port: 80 } };

let nextId = 1;
function pkt(f: ParkedFlow, ackNum = 0): QueuedPacket {
  const payload = emitTcpFrame({ family: f.family, src: f.client.address, dst: f.vip.address, sport: f.client.port, dport: f.vip.port, ackNum, flags: { ack: true } }).subarray(14);
  return { kind: 'packet', queue: 1, id: nextId++, hwProtocol: f.family === 4 ? 0x800 : 0x86dd, hook: 0, mark: 0x0ba70000, indev: 2, length: payload.length, payload };
}

function setup(limits?: ParkLimits, lossless = true) {
  let now = 0;
  const calls: string[] = [];
  const verdicts: Verdict[] = [];
  const kernel: QueuedPacket[] = []; // queued in the kernel, not read yet
  const guard: GuardPort = {
    setVips: (v) => calls.push(`vips ${v.length}`),
    begin: (f) => calls.push(`begin ${f.client.port}`),
    end: (f) => calls.push(`end ${f.client.port}`),
    close: ({ keep }) => calls.push(`close keep=${keep}`),
  };
  let model: ParkModel | undefined;
  const queue: QueuePort = {
    drain: () => {
      const batch = kernel.splice(0);
      if (batch.length) model?.onPackets(batch);
    },
    verdict: (vs) => verdicts.push(...vs),
    close: () => calls.push('queue close'),
  };
  const resets: string[] = [];
  model = new ParkModel({
    guard, ...(lossless && { queue }), now: () => now, ...(limits && { limits }),
    reset: (f, seq) => resets.push(`${f.client.address}:${f.client.port} seq ${seq}`),
  });
  return { model, calls, verdicts, kernel, resets, tick: (ms: number) => (now += ms) };
}

const accepted = (vs: Verdict[]): number[] => vs.filter((v) => v.verdict === NF_ACCEPT).map((v) => v.id);
const dropped = (vs: Verdict[]): number[] => vs.filter((v) => v.verdict === NF_DROP).map((v) => v.id);

test('packets before the socket wait; release lets them through in arrival order, then un-parks the tuple', () => {
  const s = setup();
  const early = [pkt(flowA), pkt(flowB), pkt(flowA)];
  s.model.onPackets(early);
  assert.deepEqual(s.verdicts, [], 'nothing decided before release');
  s.model.begin(flowA);
  const late = pkt(flowA);
  s.kernel.push(late); // queued in the kernel, not yet read when release starts
  assert.equal(s.model.release(flowA), 3);
  assert.deepEqual(accepted(s.verdicts), [early[0]!.id, early[2]!.id, late.id]);
  assert.deepEqual(s.calls, ['begin 40000', 'end 40000']);
  assert.deepEqual(s.model.stats(), { parked: 4, released: 3, dropped: 0, expired: 0, pending: 1, resets: 0 });
});

test('a packet of a released tuple that was still in flight is accepted at once', () => {
  const s = setup();
  s.model.begin(flowA);
  assert.equal(s.model.release(flowA), 0);
  const p = pkt(flowA);
  s.model.onPackets([p]);
  assert.deepEqual(accepted(s.verdicts), [p.id]);
  assert.equal(s.model.stats().released, 1);
});

test('a tuple nobody begins expires: its packets are dropped and counted', () => {
  const s = setup({ unclaimedMs: 3000 });
  const ps = [pkt(flowB), pkt(flowB)];
  s.model.onPackets(ps);
  s.tick(2999);
  s.model.sweep();
  assert.deepEqual(s.verdicts, []);
  s.tick(1);
  s.model.sweep();
  assert.deepEqual(dropped(s.verdicts), ps.map((p) => p.id));
  assert.deepEqual(s.model.stats(), { parked: 2, released: 0, dropped: 0, expired: 2, pending: 0, resets: 1 });
});

test('a begun tuple waits longer than an unclaimed one, but not for ever', () => {
  const s = setup({ unclaimedMs: 100, begunMs: 1000 });
  s.model.onPackets([pkt(flowA)]);
  s.model.begin(flowA);
  s.tick(500);
  s.model.sweep();
  assert.equal(s.model.stats().pending, 1);
  s.tick(500);
  s.model.sweep();
  assert.deepEqual(s.model.stats(), { parked: 1, released: 0, dropped: 0, expired: 1, pending: 0, resets: 0 });
  assert.deepEqual(s.calls, ['begin 40000', 'end 40000'], 'the kernel stops parking it too');
});

test('discard drops what was parked (the client retransmits to the next owner)', () => {
  const s = setup();
  const p = pkt(flowA);
  s.model.onPackets([p]);
  s.model.begin(flowA);
  s.model.discard(flowA);
  assert.deepEqual(dropped(s.verdicts), [p.id]);
  assert.deepEqual(s.model.stats(), { parked: 1, released: 0, dropped: 1, expired: 0, pending: 0, resets: 0 });
});

test('bounds: beyond maxPackets or maxTuples, new packets are dropped and counted', () => {
  const s = setup({ maxPackets: 2, maxTuples: 1 });
  const ps = [pkt(flowA), pkt(flowA), pkt(flowA), pkt(flowB)];
  s.model.onPackets(ps);
  assert.deepEqual(dropped(s.verdicts), [ps[2]!.id, ps[3]!.id]);
  assert.deepEqual(s.model.stats(), { parked: 2, released: 0, dropped: 2, expired: 0, pending: 2, resets: 0 });
});

test('a tuple handed here again after a release parks anew', () => {
  const s = setup();
  s.model.begin(flowA);
  s.model.release(flowA);
  s.model.begin(flowA);
  const p = pkt(flowA);
  s.model.onPackets([p]);
  assert.deepEqual(s.verdicts, []);
  assert.equal(s.model.release(flowA), 1);
});

test('not lossless: no queue, release lets nothing through, the guard is still driven', () => {
  const s = setup(undefined, false);
  assert.equal(s.model.lossless, false);
  s.model.guardVips([{ family: 4, address: '203.0.113.10', port: 80 }]);
  s.model.begin(flowA);
  assert.equal(s.model.release(flowA), 0);
  assert.deepEqual(s.calls, ['vips 1', 'begin 40000', 'end 40000']);
});

test('close drops everything still parked, switches the guard to dropping, then closes the queue (and its rule)', () => {
  const s = setup();
  const ps = [pkt(flowA), pkt(flowB)];
  s.model.onPackets(ps);
  s.model.close({ keep: true });
  s.model.close();
  assert.deepEqual(dropped(s.verdicts), ps.map((p) => p.id));
  assert.deepEqual(s.calls, ['close keep=true', 'queue close']);
  assert.equal(s.model.stats().pending, 0);
});

test('an unclaimed tuple is answered with a RST carrying its latest acknowledgment number when it expires; a begun one is not', () => {
  const s = setup({ unclaimedMs: 100, begunMs: 100 });
  s.model.onPackets([pkt(flowB, 7), pkt(flowB, 0xfffffff0)]);
  s.model.onPackets([pkt(flowA, 5)]);
  s.model.begin(flowA);
  s.tick(100);
  s.model.sweep();
  assert.deepEqual(s.resets, ['2001:db8::7:40001 seq 4294967280']);
  assert.equal(s.model.stats().resets, 1);
  assert.equal(s.model.stats().expired, 3);
});

test('a discarded tuple: packets still on their way are dropped, never left to expire into a reset', () => {
  const s = setup({ unclaimedMs: 100, releasedMs: 1000 });
  s.model.onPackets([pkt(flowA, 5)]);
  s.model.discard(flowA);
  const late = pkt(flowA, 6);
  s.model.onPackets([late]);
  assert.ok(dropped(s.verdicts).includes(late.id), 'the late packet is dropped at once');
  s.tick(200);
  s.model.sweep();
  assert.deepEqual(s.resets, [], 'the client is served elsewhere: no reset');
  assert.equal(s.model.stats().pending, 0);
});

test('a discarded tuple handed here again parks anew; the discard is forgotten after releasedMs', () => {
  const s = setup({ releasedMs: 1000 });
  s.model.discard(flowA);
  s.model.begin(flowA);
  const p = pkt(flowA);
  s.model.onPackets([p]);
  assert.deepEqual(s.verdicts, [], 'begun: parked, not dropped');
  assert.equal(s.model.release(flowA), 1);
  s.model.discard(flowB);
  s.tick(1000);
  s.model.sweep();
  const q = pkt(flowB);
  s.model.onPackets([q]);
  assert.ok(!dropped(s.verdicts).includes(q.id), 'forgotten: parked as unclaimed again');
});

test('discard after release: late packets of a released tuple are dropped from then on', () => {
  const s = setup();
  s.model.begin(flowA);
  s.model.release(flowA);
  s.model.discard(flowA);
  const p = pkt(flowA);
  s.model.onPackets([p]);
  assert.deepEqual(dropped(s.verdicts), [p.id]);
});
