// nfqueue netlink codec: golden bytes for the requests, a kernel-shaped packet message decoded, refusals of
// impossible lengths, and a property test that no byte string makes the decoder throw anything but its own error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { emitTcpFrame } from './packet.ts';
import {
  encodeBind, encodeParams, encodeVerdicts, MAX_VERDICT_PAYLOAD, NF_ACCEPT, NF_DROP, NFQA_CFG_F_GSO, NFQA_SKB_CSUMNOTREADY, NfqueueWireError, packetTuple, parseDatagram,
} from './nfqueue.ts';

test('bind: golden bytes (nlmsghdr, nfgenmsg with the queue big-endian, NFQA_CFG_CMD)', () => {
  assert.equal(
    encodeBind(7, 42).toString('hex'),
    '1c000000' + '0203' + '0500' + '2a000000' + '00000000' + '00' + '00' + '0007' + '0800' + '0100' + '01000000',
  );
});

test('params: packet copy mode, range, queue length, GSO without fail-open', () => {
  const b = encodeParams(7, { copyRange: 128, maxLen: 8192, flags: NFQA_CFG_F_GSO }, 1);
  assert.equal(b.readUInt32LE(0), b.length);
  // attributes after the 20-byte header: PARAMS (5 bytes, padded), QUEUE_MAXLEN, MASK, FLAGS
  assert.equal(b.subarray(20).toString('hex'), '0900' + '0200' + '00000080' + '02' + '000000' + '0800030000002000' + '080004000000001f' + '0800050000000004');
});

test('verdicts: one message per packet, in order, queue and ids big-endian', () => {
  const b = encodeVerdicts(3, [{ id: 1, verdict: NF_ACCEPT }, { id: 0xfffffffe, verdict: NF_DROP }], 100);
  assert.equal(b.length, 64);
  assert.equal(b.subarray(0, 32).toString('hex'), '20000000' + '0103' + '0100' + '64000000' + '00000000' + '0000' + '0003' + '0c00' + '0200' + '00000001' + '00000001');
  assert.equal(b.subarray(32).toString('hex'), '20000000' + '0103' + '0100' + '65000000' + '00000000' + '0000' + '0003' + '0c00' + '0200' + '00000000' + 'fffffffe');
});

test('a verdict with a new payload carries it as NFQA_PAYLOAD, padded; the next message follows it', () => {
  const payload = new Uint8Array([0x45, 1, 2, 3, 4]); // 5 bytes: the attribute is 9, padded to 12
  const b = encodeVerdicts(3, [{ id: 7, verdict: NF_ACCEPT, payload }, { id: 8, verdict: NF_DROP }], 1);
  assert.equal(b.length, 32 + 12 + 32);
  assert.equal(b.readUInt32LE(0), 44);
  assert.equal(b.subarray(20).toString('hex'), '0c000200' + '00000001' + '00000007' + '0900' + '0a00' + '4501020304' + '000000' + '20000000' + '0103' + '0100' + '02000000' + '00000000' + '0000' + '0003' + '0c00' + '0200' + '00000000' + '00000008');
  assert.throws(() => encodeVerdicts(3, [{ id: 1, verdict: NF_ACCEPT, payload: new Uint8Array(MAX_VERDICT_PAYLOAD + 1) }], 1), (e: unknown) => e instanceof NfqueueWireError && e.field === 'verdict.payload');
  assert.equal(encodeVerdicts(3, [{ id: 1, verdict: NF_ACCEPT, payload: new Uint8Array(MAX_VERDICT_PAYLOAD) }], 1).readUInt32LE(0), 32 + 0xffff + 1);
});

function packetMessage(o: { queue: number; id: number; payload: Uint8Array; mark?: number; capLen?: number; seq?: number; skbInfo?: number }): Buffer {
  const attrs: Buffer[] = [];
  const attr = (type: number, data: Buffer): void => {
    const a = Buffer.alloc((4 + data.length + 3) & ~3);
    a.writeUInt16LE(4 + data.length, 0);
    a.writeUInt16LE(type, 2);
    data.copy(a, 4);
    attrs.push(a);
  };
  const hdr = Buffer.alloc(7);
  hdr.writeUInt32BE(o.id, 0);
  hdr.writeUInt16BE(0x0800, 4);
  hdr.writeUInt8(0, 6); // NF_INET_PRE_ROUTING
  attr(1, hdr);
  if (o.mark !== undefined) attr(3, Buffer.from([o.mark >>> 24, (o.mark >>> 16) & 255, (o.mark >>> 8) & 255, o.mark & 255]));
  attr(5, Buffer.from([0, 0, 0, 2]));
  attr(0x8000 | 14, Buffer.from([0, 0, 0, o.skbInfo ?? 0])); // skb info, with a flag bit set in its type
  attr(10, Buffer.from(o.payload));
  if (o.capLen !== undefined) attr(13, Buffer.from([0, 0, o.capLen >> 8, o.capLen & 255]));
  const body = Buffer.concat(attrs);
  const m = Buffer.alloc(20 + body.length);
  m.writeUInt32LE(m.length, 0);
  m.writeUInt16LE(0x0300, 4);
  m.writeUInt32LE(o.seq ?? 0, 8);
  m.writeUInt16BE(o.queue, 18);
  body.copy(m, 20);
  return m;
}

const ipPacket = (family: 4 | 6): Uint8Array =>
  emitTcpFrame({
    family, src: family === 4 ? '198.51.100.7' : '2001:db8::7', dst: family === 4 ? '203.0.113.10' : '2001:db8::10',
    sport: 40000, dport: 80, flags: { ack: true }, payload: new Uint8Array([1, 2, 3]),
  }).subarray(14);

test('a queued packet (two in one datagram, then an ack) decodes with its id, mark, length and payload', () => {
  const p4 = ipPacket(4);
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(2, 4);
  ack.writeUInt32LE(9, 8);
  ack.writeInt32LE(-1, 16); // EPERM
  const d = Buffer.concat([packetMessage({ queue: 5, id: 77, payload: p4, mark: 0x0ba70001, capLen: 1500, skbInfo: NFQA_SKB_CSUMNOTREADY }), packetMessage({ queue: 5, id: 78, payload: p4.subarray(0, 30) }), ack]);
  const ms = parseDatagram(d);
  assert.equal(ms.length, 3);
  const [a, b, c] = ms;
  assert.ok(a?.kind === 'packet' && b?.kind === 'packet');
  assert.deepEqual({ ...a, payload: Buffer.from(a.payload).toString('hex') }, {
    kind: 'packet', queue: 5, id: 77, hwProtocol: 0x0800, hook: 0, mark: 0x0ba70001, indev: 2, length: 1500, payload: Buffer.from(p4).toString('hex'), skbInfo: NFQA_SKB_CSUMNOTREADY,
  });
  assert.equal(b.id, 78);
  assert.equal(b.length, 30);
  assert.deepEqual(c, { kind: 'ack', seq: 9, errno: 1 });
});

test('impossible lengths are refused with the field named', () => {
  const m = packetMessage({ queue: 1, id: 1, payload: ipPacket(4) });
  const long = Buffer.from(m);
  long.writeUInt32LE(m.length + 4, 0);
  assert.throws(() => parseDatagram(long), (e: unknown) => e instanceof NfqueueWireError && e.field === 'nlmsg.len');
  const short = Buffer.from(m);
  short.writeUInt32LE(8, 0);
  assert.throws(() => parseDatagram(short), (e: unknown) => e instanceof NfqueueWireError && e.field === 'nlmsg.len');
  const badAttr = Buffer.from(m);
  badAttr.writeUInt16LE(2000, 20);
  assert.throws(() => parseDatagram(badAttr), (e: unknown) => e instanceof NfqueueWireError && e.field === 'nla.len');
  const noHdr = Buffer.from(m);
  noHdr.writeUInt16LE(99, 22); // the packet header attribute becomes an unknown one
  assert.throws(() => parseDatagram(noHdr), (e: unknown) => e instanceof NfqueueWireError && e.field === 'packet_hdr');
  assert.throws(() => parseDatagram(m, m.length + 1), NfqueueWireError);
  assert.throws(() => encodeBind(70000, 1), NfqueueWireError);
});

test('packetTuple: IPv4 and IPv6 TCP; not TCP, fragments and short copies give undefined', () => {
  assert.deepEqual(packetTuple(ipPacket(4)), { family: 4, src: '198.51.100.7', dst: '203.0.113.10', sport: 40000, dport: 80 });
  assert.deepEqual(packetTuple(ipPacket(6)), { family: 6, src: '2001:db8::7', dst: '2001:db8::10', sport: 40000, dport: 80 });
  const udp = Buffer.from(ipPacket(4));
  udp[9] = 17;
  assert.equal(packetTuple(udp), undefined);
  const frag = Buffer.from(ipPacket(4));
  frag[6] = 0x20; // more fragments
  assert.equal(packetTuple(frag), undefined);
  assert.equal(packetTuple(ipPacket(4).subarray(0, 22)), undefined);
  assert.equal(packetTuple(ipPacket(6).subarray(0, 42)), undefined);
  assert.equal(packetTuple(new Uint8Array(0)), undefined);
});

test('property: any bytes decode or are refused with NfqueueWireError, never read out of bounds', () => {
  const seed = packetMessage({ queue: 1, id: 1, payload: ipPacket(6) });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.tuple(fc.nat(seed.length - 1), fc.nat(255)), { maxLength: 8 }), (random, flips) => {
      for (const bytes of [random, (() => { const b = Buffer.from(seed); for (const [i, v] of flips) b[i] = v; return b; })()]) {
        try {
          for (const m of parseDatagram(bytes)) {
            if (m.kind === 'packet') {
              assert.ok(m.payload.byteOffset + m.payload.length <= bytes.byteOffset + bytes.length);
              packetTuple(m.payload);
            }
          }
        } catch (e) {
          if (!(e instanceof NfqueueWireError)) throw e;
        }
      }
    }),
    { numRuns: 2000 },
  );
});
