// The parking policy without root: fake guard maps and a fake queue (whose drain delivers what "the kernel" queued
// meanwhile), a clock in the test's hands. Checks arrival order on release, the drain before release, late packets
// of a released tuple, expiry, discard, the bounds, and close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emitTcpFrame, parseTcpFrame } from '../wire/packet.ts';
import { NF_ACCEPT, NF_DROP, NFQA_SKB_CSUMNOTREADY, type QueuedPacket, type Verdict } from '../wire/nfqueue.ts';
import { type EncapFlow, type GuardPort, type ParkedFlow, type ParkLimits, ParkModel, type QueuePort } from './park.ts';

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
    setEncapSources: (srcs) => calls.push(`sources ${srcs.map((x) => x.address).sort().join(',')}`),
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
  assert.deepEqual(s.model.stats(), { parked: 4, released: 3, dropped: 0, expired: 0, pending: 1, resets: 0, restored: 0 });
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

test('once its connection ended, a released tuple\'s packets wait as unclaimed: a new connection on a reused port, not let into a stack without its socket', () => {
  const s = setup();
  s.model.begin(flowA);
  s.model.release(flowA);
  s.model.ended(flowA);
  const early = pkt(flowA, 7); // the next connection on the same client port, forwarded before its blob
  s.model.onPackets([early]);
  assert.deepEqual(s.verdicts, [], 'held, not accepted');
  s.model.begin(flowA); // its blob arrives
  assert.equal(s.model.release(flowA), 1);
  assert.deepEqual(accepted(s.verdicts), [early.id]);
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
  assert.deepEqual(s.model.stats(), { parked: 2, released: 0, dropped: 0, expired: 2, pending: 0, resets: 1, restored: 0 });
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
  assert.deepEqual(s.model.stats(), { parked: 1, released: 0, dropped: 0, expired: 1, pending: 0, resets: 0, restored: 0 });
  assert.deepEqual(s.calls, ['begin 40000', 'end 40000'], 'the kernel stops parking it too');
});

test('discard drops what was parked (the client retransmits to the next owner)', () => {
  const s = setup();
  const p = pkt(flowA);
  s.model.onPackets([p]);
  s.model.begin(flowA);
  s.model.discard(flowA);
  assert.deepEqual(dropped(s.verdicts), [p.id]);
  assert.deepEqual(s.model.stats(), { parked: 1, released: 0, dropped: 1, expired: 0, pending: 0, resets: 0, restored: 0 });
});

test('bounds: beyond maxPackets or maxTuples, new packets are dropped and counted', () => {
  const s = setup({ maxPackets: 2, maxTuples: 1 });
  const ps = [pkt(flowA), pkt(flowA), pkt(flowA), pkt(flowB)];
  s.model.onPackets(ps);
  assert.deepEqual(dropped(s.verdicts), [ps[2]!.id, ps[3]!.id]);
  assert.deepEqual(s.model.stats(), { parked: 2, released: 0, dropped: 2, expired: 0, pending: 2, resets: 0, restored: 0 });
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

// --- encapsulated packets that overtook their blob (flow-id encapsulation, GUARD_ENCAP_EARLY) ---

const FE = '192.0.2.1';
const BE = '192.0.2.20';
const encA: EncapFlow = { frontend: FE, flowId: 0x00051234 };

/** flowA's packet as the front-end encapsulated it: FE -> back-end, ports = the flow id. */
function encPkt(seq: number, o: { flowId?: number; cut?: boolean; partial?: boolean } = {}): QueuedPacket {
  const id = o.flowId ?? encA.flowId;
  const payload = emitTcpFrame({ family: 4, src: FE, dst: BE, sport: id >>> 16, dport: id & 0xffff, seq, ackNum: 5, flags: { ack: true }, payload: new Uint8Array([seq & 255]) }).subarray(14);
  return {
    kind: 'packet', queue: 1, id: nextId++, hwProtocol: 0x800, hook: 0, mark: 0x0ba70000, indev: 2,
    length: payload.length + (o.cut ? 100 : 0), payload, skbInfo: o.partial ? NFQA_SKB_CSUMNOTREADY : 0,
  };
}
/** What the client sent: flowA's tuple. */
const plain = (seq: number): string => Buffer.from(emitTcpFrame({
  family: 4, src: flowA.client.address, dst: flowA.vip.address, sport: flowA.client.port, dport: flowA.vip.port, seq, ackNum: 5, flags: { ack: true }, payload: new Uint8Array([seq & 255]),
}).subarray(14)).toString('hex');

function encapSetup(limits?: ParkLimits) {
  const s = setup(limits);
  s.model.guardVips([{ family: 4, address: flowA.vip.address, port: 80 }]);
  s.model.addEncapSource({ family: 4, address: FE });
  return s;
}

test('encap: packets before the mapping wait under (front-end, flow id); begin joins them to the tuple in arrival order; release restores them', () => {
  const s = encapSetup();
  const e1 = encPkt(1);
  const e2 = encPkt(2);
  s.model.onPackets([e1, e2]);
  assert.equal(s.verdicts.length, 0);
  assert.equal(s.model.stats().pending, 2);
  // the mapping is in: the guard parks the next ones decapsulated, under the tuple
  const t3 = pkt(flowA);
  s.model.onPackets([t3]);
  s.model.begin(flowA, encA);
  const e4 = encPkt(4); // read late, from before the mapping: it still arrived after t3
  s.kernel.push(e4);
  assert.equal(s.model.release(flowA), 4);
  assert.deepEqual(s.verdicts.map((v) => v.id), [e1.id, e2.id, t3.id, e4.id]);
  assert.ok(s.verdicts.every((v) => v.verdict === NF_ACCEPT));
  assert.equal(s.verdicts[2]!.payload, undefined, 'a plain parked packet goes back as it is');
  assert.deepEqual([s.verdicts[0], s.verdicts[1], s.verdicts[3]].map((v) => Buffer.from(v!.payload!).toString('hex')), [plain(1), plain(2), plain(4)]);
  assert.equal(s.model.stats().restored, 3);
  // one still in flight after the release: restored at once
  const e5 = encPkt(5, { partial: true });
  s.model.onPackets([e5]);
  const last = s.verdicts.at(-1)!;
  assert.equal(last.id, e5.id);
  assert.equal(Buffer.from(last.payload!).toString('hex'), plain(5), 'a partial checksum becomes the full one');
  assert.deepEqual(s.model.stats(), { parked: 4, released: 5, dropped: 0, expired: 0, pending: 0, resets: 0, restored: 4 });
});

test('encap: only packets from a known front-end with a flow id, not to a guarded VIP, are taken as encapsulated', () => {
  const s = encapSetup();
  const other = { ...encPkt(1) };
  const fromElsewhere: QueuedPacket = { ...other, id: nextId++, payload: emitTcpFrame({ family: 4, src: '192.0.2.99', dst: BE, sport: 5, dport: 0x1234, flags: { ack: true } }).subarray(14) };
  const highPort: QueuedPacket = { ...other, id: nextId++, payload: emitTcpFrame({ family: 4, src: FE, dst: BE, sport: 0x8005, dport: 0x1234, flags: { ack: true } }).subarray(14) };
  const toVip: QueuedPacket = { ...other, id: nextId++, payload: emitTcpFrame({ family: 4, src: FE, dst: flowA.vip.address, sport: 5, dport: 80, flags: { ack: true } }).subarray(14) };
  s.model.onPackets([fromElsewhere, highPort, toVip]);
  s.model.begin(flowA, encA);
  s.model.release(flowA);
  assert.equal(s.verdicts.length, 0, 'none of them joined flowA: each waits under its own tuple');
  s.tick(3000);
  s.model.sweep();
  assert.equal(s.model.stats().expired, 3);
  assert.equal(s.model.stats().restored, 0);
});

test('encap: a key nobody claims expires silently (no reset: its client is unknown)', () => {
  const s = encapSetup({ unclaimedMs: 3000 });
  s.model.onPackets([encPkt(1), encPkt(2)]);
  s.tick(3000);
  s.model.sweep();
  assert.deepEqual(dropped(s.verdicts).length, 2);
  assert.deepEqual(s.resets, []);
  assert.deepEqual(s.model.stats(), { parked: 2, released: 0, dropped: 0, expired: 2, pending: 0, resets: 0, restored: 0 });
});

test('encap: discard drops the encapsulated key\'s packets with the tuple\'s, and those still on their way', () => {
  const s = encapSetup();
  const e1 = encPkt(1);
  const t2 = pkt(flowA);
  s.model.onPackets([e1, t2]);
  s.model.discard(flowA, encA);
  assert.deepEqual(dropped(s.verdicts), [e1.id, t2.id]);
  const e3 = encPkt(3);
  s.model.onPackets([e3]);
  assert.deepEqual(dropped(s.verdicts), [e1.id, t2.id, e3.id]);
  s.tick(60_000);
  s.model.sweep();
  assert.deepEqual(s.resets, []);
});

test('encap: a begun-then-discarded tuple (refused after begin) drops what joined it', () => {
  const s = encapSetup();
  const e1 = encPkt(1);
  s.model.onPackets([e1]);
  s.model.begin(flowA, encA);
  s.model.discard(flowA);
  assert.deepEqual(dropped(s.verdicts), [e1.id]);
  const e2 = encPkt(2);
  s.model.onPackets([e2]);
  assert.deepEqual(dropped(s.verdicts), [e1.id, e2.id], 'the link outlives the discard for encapLinkMs');
});

test('encap: a flow id claimed long ago is not an old tuple\'s any more (a restarted front-end reuses ids)', () => {
  const s = encapSetup({ encapLinkMs: 1000 });
  s.model.begin(flowA, encA);
  s.model.release(flowA);
  s.tick(500);
  const late = encPkt(1);
  s.model.onPackets([late]);
  assert.equal(Buffer.from(s.verdicts.at(-1)!.payload!).toString('hex'), plain(1), 'read late, still restored to its tuple');
  s.tick(600);
  const reused = encPkt(2); // same front-end and flow id, 1.1 s after the release: a new flow's
  s.model.onPackets([reused]);
  assert.equal(s.verdicts.at(-1)!.id, late.id, 'waits, unclaimed');
  const flowC: ParkedFlow = { family: 4, client: { address: '198.51.100.9', port: 41000 }, vip: flowA.vip };
  s.model.begin(flowC, encA);
  s.model.release(flowC);
  const v = s.verdicts.at(-1)!;
  assert.equal(v.id, reused.id);
  const p = parseTcpFrame(Uint8Array.from([...new Uint8Array(12), 0x08, 0x00, ...v.payload!]));
  assert.deepEqual([p.src, p.sport, p.tcpChecksumOk], ['198.51.100.9', 41000, true], 'restored to the new claimant');
});

test('encap: a packet cut short by the copy range, or beyond the byte bound, is dropped at once', () => {
  const s = encapSetup({ maxEncapBytes: 100 });
  const cut = encPkt(1, { cut: true });
  const a = encPkt(2);
  const b = encPkt(3); // 41 + 41 bytes fit in 100; the third does not
  const c = encPkt(4);
  s.model.onPackets([cut, a, b, c]);
  assert.deepEqual(dropped(s.verdicts), [cut.id, c.id]);
  s.model.begin(flowA, encA);
  assert.equal(s.model.release(flowA), 2);
});

test('encap sources: counted (channels, config), learned from blobs (bounded), written to the guard when they change', () => {
  const s = setup(undefined);
  const model = new ParkModel({ guard: { setVips: () => undefined, begin: () => undefined, end: () => undefined, close: () => undefined, setEncapSources: (x) => s.calls.push(`sources ${x.map((y) => y.address).sort().join(',')}`) }, now: () => 0, limits: { maxLearnedSources: 1 } });
  model.addEncapSource({ family: 4, address: FE });
  model.addEncapSource({ family: 4, address: FE });
  model.removeEncapSource({ family: 4, address: FE });
  model.begin(flowA, { frontend: '192.0.2.2', flowId: 1 });
  model.begin(flowB, { frontend: '2001:db8::2', flowId: 2 });
  model.removeEncapSource({ family: 4, address: FE });
  assert.deepEqual(s.calls, [`sources ${FE}`, `sources ${FE},192.0.2.2`, `sources ${FE},2001:db8::2`, 'sources 2001:db8::2']);
  assert.deepEqual(model.encapSources(), [{ family: 6, address: '2001:db8::2' }]);
});

test('encap: the restored packet verifies (checksums) for IPv6 as well', () => {
  const s = setup();
  const fe6 = '2001:db8::1';
  s.model.addEncapSource({ family: 6, address: fe6 });
  const payload = emitTcpFrame({ family: 6, src: fe6, dst: '2001:db8::20', sport: 3, dport: 4, flags: { ack: true }, payload: new Uint8Array(700).fill(7) }).subarray(14);
  s.model.onPackets([{ kind: 'packet', queue: 1, id: nextId++, hwProtocol: 0x86dd, hook: 0, mark: 0, indev: 2, length: payload.length, payload }]);
  s.model.begin(flowB, { frontend: fe6, flowId: (3 << 16) | 4 });
  s.model.release(flowB);
  const out = s.verdicts[0]!.payload!;
  const frame = new Uint8Array(14 + out.length);
  frame[12] = 0x86;
  frame[13] = 0xdd;
  frame.set(out, 14);
  const p = parseTcpFrame(frame);
  assert.deepEqual([p.src, p.sport, p.dst, p.dport, p.tcpChecksumOk], [flowB.client.address, flowB.client.port, flowB.vip.address, flowB.vip.port, true]);
});

test('settling: a release that let packets through leaves the tuple settling (written before the un-park); a quiet one does not', () => {
  let now = 0;
  const calls: string[] = [];
  const verdicts: Verdict[] = [];
  const kernel: QueuedPacket[] = [];
  const queued = new Map<number, number>();
  let model: ParkModel | undefined;
  const guard: GuardPort = {
    setVips: () => undefined,
    begin: (f) => calls.push(`begin ${f.client.port}`),
    end: (f) => calls.push(`end ${f.client.port}`),
    settle: (f, n) => calls.push(`settle ${f.client.port} ${n}`),
    marked: (f) => queued.get(f.client.port),
    endSettling: (f) => calls.push(`endSettling ${f.client.port}`),
    close: () => calls.push('close'),
  };
  const queue: QueuePort = {
    drain: () => {
      const batch = kernel.splice(0);
      if (batch.length) model?.onPackets(batch);
    },
    verdict: (vs) => verdicts.push(...vs),
    close: () => undefined,
  };
  model = new ParkModel({ guard, queue, now: () => now, limits: { settleMaxMs: 10_000 } });
  const m = model;
  const flowC: ParkedFlow = { ...flowA, client: { address: flowA.client.address, port: 41000 } };
  // A quiet handoff (a GET): nothing parked, no settling, no extra map writes.
  m.begin(flowC);
  m.release(flowC);
  assert.deepEqual(calls.splice(0), ['begin 41000', 'end 41000']);
  // An upload: two packets parked (the program queued 2), released; settling is written before the un-park.
  queued.set(40000, 2);
  m.onPackets([pkt(flowA), pkt(flowA)]);
  m.begin(flowA);
  assert.equal(m.release(flowA), 2);
  assert.deepEqual(calls.splice(0), ['begin 40000', 'settle 40000 2', 'end 40000']);
  // One more the program queued while settling: accepted, then the count catches up (after the verdict).
  queued.set(40000, 3);
  const late = pkt(flowA);
  m.onPackets([late]);
  assert.equal(verdicts.at(-1)?.id, late.id);
  assert.deepEqual(calls.splice(0), ['settle 40000 3']);
  // Quiet at two sweeps in a row: the settling entry goes.
  m.sweep(now += 250);
  assert.deepEqual(calls.splice(0), []);
  m.sweep(now += 250);
  assert.deepEqual(calls.splice(0), ['endSettling 40000']);
});

/**
 * A model whose guard records the settling calls (`settle <port> <count>`, `endSettling <port>`, `close`) and
 * reports `marked(port)` as the program's queued count; the queue takes verdicts and has nothing more to drain.
 */
function settlingRig(marked: (port: number) => number | undefined, limits?: ParkLimits) {
  const clock = { now: 0 };
  const calls: string[] = [];
  const guard: GuardPort = {
    setVips: () => undefined, begin: () => undefined, end: () => undefined, close: () => calls.push('close'),
    settle: (f, n) => calls.push(`settle ${f.client.port} ${n}`),
    marked: (f) => marked(f.client.port),
    endSettling: (f) => calls.push(`endSettling ${f.client.port}`),
  };
  const queue: QueuePort = { drain: () => undefined, verdict: () => undefined, close: () => undefined };
  const m = new ParkModel({ guard, queue, now: () => clock.now, ...(limits && { limits }) });
  return { m, calls, clock };
}

test('settling: a count the program keeps ahead (a packet the queue lost) is caught up at the second unchanged sweep', () => {
  const { m, calls, clock } = settlingRig(() => 5, { settleMaxMs: 10_000 });
  m.onPackets([pkt(flowA), pkt(flowA), pkt(flowA), pkt(flowA)]); // 4 of the program's 5 reached us
  m.begin(flowA);
  m.release(flowA);
  assert.deepEqual(calls.splice(0), ['settle 40000 4']);
  m.sweep(clock.now += 250);
  m.sweep(clock.now += 250);
  assert.deepEqual(calls.splice(0), ['settle 40000 5'], 'raised to the program\'s count: the tuple stops going through the queue');
  m.sweep(clock.now += 250);
  assert.deepEqual(calls.splice(0), ['endSettling 40000']);
});

test('settling: discard and close end it (with nobody reading the queue its packets would be dropped for good)', () => {
  const { m, calls } = settlingRig(() => 1);
  for (const f of [flowA, flowB]) {
    m.onPackets([pkt(f)]);
    m.begin(f);
    m.release(f);
  }
  m.discard(flowA);
  m.close();
  assert.deepEqual(calls, ['settle 40000 1', 'settle 40001 1', 'endSettling 40000', 'endSettling 40001', 'close']);
});

test('settling: a client that never lets the queue empty still un-parks after settleMaxMs', () => {
  let queued = 1;
  const { m, calls, clock } = settlingRig(() => queued, { settleMaxMs: 1000 });
  m.onPackets([pkt(flowA)]);
  m.begin(flowA);
  m.release(flowA);
  calls.length = 0;
  for (let t = 250; t < 1000; t += 250) {
    queued += 2; // the program keeps queueing: the counts differ at every sweep
    m.onPackets([pkt(flowA)]);
    m.sweep((clock.now = t));
  }
  assert.ok(!calls.includes('endSettling 40000'), 'still settling before settleMaxMs');
  m.sweep((clock.now = 1000));
  assert.equal(calls.at(-1), 'endSettling 40000');
  // its late packets are still accepted (the tuple is released), never held as unclaimed
  m.onPackets([pkt(flowA)]);
  assert.equal(m.stats().pending, 0);
});

test('settling: past settleMaxMs the next batch of the tuple ends it instead of catching up (default 100 ms)', () => {
  const { m, calls, clock } = settlingRig(() => 99);
  m.onPackets([pkt(flowA)]);
  m.begin(flowA);
  m.release(flowA);
  clock.now = 50;
  m.onPackets([pkt(flowA)]);
  clock.now = 100;
  m.onPackets([pkt(flowA)]);
  assert.deepEqual(calls, ['settle 40000 1', 'settle 40000 2', 'endSettling 40000']);
});
