import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FrameDecoder,
  FRAME_ERR,
  FrameError,
  FrameType,
  MAX_REASON_BYTES,
  PRE_AUTH_MAX_FRAME_BYTES,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  flowKey,
  truncateUtf8,
  type Frame,
  type Message,
} from './frame.ts';
import { throwsFrame } from './testing.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const seq = (n: number, from = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

function decodeAll(bytes: Uint8Array, max = DEFAULT_MAX_FRAME_BYTES): Message[] {
  const d = new FrameDecoder(max);
  d.push(bytes);
  const out: Message[] = [];
  for (let f = d.next(); f !== undefined; f = d.next()) out.push(decodeMessage(f));
  assert.equal(d.bufferedBytes, 0);
  return out;
}

// --- golden bytes ---------------------------------------------------------------------------

const golden: Array<{ name: string; message: Message; bytes: string }> = [
  { name: 'auth-ok', message: { kind: 'auth-ok' }, bytes: '00000001 04' },
  { name: 'ping', message: { kind: 'ping', token: 0x0102030405060708n }, bytes: '00000009 20 0102030405060708' },
  { name: 'pong', message: { kind: 'pong', token: 1n }, bytes: '00000009 21 0000000000000001' },
  { name: 'commit', message: { kind: 'commit', id: 258n }, bytes: '00000009 14 0000000000000102' },
  { name: 'abort', message: { kind: 'abort', id: 258n }, bytes: '00000009 15 0000000000000102' },
  {
    name: 'handoff',
    message: { kind: 'handoff', id: 0xffff_ffff_ffff_ffffn, blob: hex('aabbcc') },
    bytes: '0000000c 10 ffffffffffffffff aabbcc',
  },
  {
    name: 'ack refused',
    message: { kind: 'ack', id: 7n, ok: false, code: 'E', reason: 'no' },
    bytes: '00000010 11 0000000000000007 00 01 45 0002 6e6f',
  },
  { name: 'handoff-fwd', message: { kind: 'handoff-fwd', id: 2n, blob: hex('aa') }, bytes: '0000000a 17 0000000000000002 aa' },
  {
    name: 'vips',
    message: { kind: 'vips', vips: [{ family: 4, address: '192.0.2.1', port: 80 }, { family: 6, address: '2001:db8::1', port: 443 }] },
    bytes: '0000001c 18 02 04 c0000201 0050 06 20010db8000000000000000000000001 01bb',
  },
  { name: 'vips, none', message: { kind: 'vips', vips: [] }, bytes: '00000002 18 00' },
  { name: 'guard, early and lossless', message: { kind: 'guard', early: true, lossless: true }, bytes: '00000002 19 03' },
  { name: 'guard, nothing', message: { kind: 'guard', early: false, lossless: false }, bytes: '00000002 19 00' },
  { name: 'ack ok', message: { kind: 'ack', id: 7n, ok: true, code: '', reason: '' }, bytes: '0000000d 11 0000000000000007 01 00 0000' },
  { name: 'load without capacity', message: { kind: 'load', active: 3, seq: 9, commits: 5 }, bytes: '0000000e 12 00000003 00000009 00000005 00' },
  {
    name: 'load with capacity',
    message: { kind: 'load', active: 3, capacity: 100, seq: 9, commits: 0xfffffffe },
    bytes: '00000012 12 00000003 00000009 fffffffe 01 00000064',
  },
  {
    name: 'flow-end v4',
    message: {
      kind: 'flow-end',
      id: 0x0102n,
      family: 4,
      client: { address: '10.0.0.1', port: 40000 },
      vip: { address: '192.0.2.10', port: 80 },
    },
    bytes: '00000016 13 0000000000000102 04 0a000001 9c40 c000020a 0050',
  },
  {
    name: 'flow-end v6',
    message: { kind: 'flow-end', id: 0xffff_ffff_ffff_ffffn, family: 6, client: { address: '2001:db8::1', port: 1 }, vip: { address: '::ffff:127.0.0.1', port: 2 } },
    bytes: '0000002e 13 ffffffffffffffff 06 20010db8000000000000000000000001 0001 00000000000000000000ffff7f000001 0002',
  },
];

for (const g of golden) {
  test(`golden bytes: ${g.name}`, () => {
    assert.deepEqual(encodeMessage(g.message), hex(g.bytes));
    assert.deepEqual(decodeAll(hex(g.bytes)), [g.message]);
  });
}

test('golden bytes: hello, challenge, auth', () => {
  const hello: Message = { kind: 'hello', protoVersion: 1, nonce: seq(32), name: 'fe1' };
  assert.deepEqual(encodeMessage(hello), hex(`00000027 01 0001 ${Buffer.from(seq(32)).toString('hex')} 03 666531`));
  const challenge: Message = { kind: 'challenge', nonce: seq(32), proof: seq(32, 100) };
  const cb = encodeMessage(challenge);
  assert.deepEqual(cb.subarray(0, 5), hex('00000041 02'));
  const auth: Message = { kind: 'auth', proof: seq(32, 7) };
  assert.deepEqual(encodeMessage(auth).subarray(0, 5), hex('00000021 03'));
  assert.deepEqual(decodeAll(new Uint8Array([...encodeMessage(hello), ...cb, ...encodeMessage(auth)])), [hello, challenge, auth]);
});

// --- refusals -------------------------------------------------------------------------------


test('unknown frame type is refused naming the type', () => {
  assert.throws(() => decodeMessage({ type: 0x7f, payload: new Uint8Array() }), (e: unknown) => {
    return e instanceof FrameError && e.field === 'type' && e.code === FRAME_ERR.TYPE && /0x7f/.test(e.message);
  });
});

test('oversized length is refused as soon as the length field arrives', () => {
  const d = new FrameDecoder(PRE_AUTH_MAX_FRAME_BYTES);
  d.push(hex('00000101')); // 257, no type byte yet
  assert.throws(() => d.next(), (e: unknown) => e instanceof FrameError && e.field === 'length' && e.code === FRAME_ERR.TOO_LARGE);
  // the decoder stays failed
  d.push(encodeMessage({ kind: 'auth-ok' }));
  throwsFrame(() => d.next(), /^length$/);
});

test('a frame of exactly the limit is accepted', () => {
  const blob = new Uint8Array(PRE_AUTH_MAX_FRAME_BYTES - 9);
  const bytes = encodeMessage({ kind: 'handoff', id: 1n, blob });
  assert.equal(decodeAll(bytes, PRE_AUTH_MAX_FRAME_BYTES).length, 1);
});

test('zero length is refused', () => {
  const d = new FrameDecoder();
  d.push(hex('00000000'));
  throwsFrame(() => d.next(), /^length$/);
});

test('the limit can be raised between frames of one chunk', () => {
  const big = encodeMessage({ kind: 'handoff', id: 2n, blob: new Uint8Array(1000) });
  const d = new FrameDecoder(PRE_AUTH_MAX_FRAME_BYTES);
  d.push(new Uint8Array([...encodeMessage({ kind: 'auth-ok' }), ...big]));
  assert.equal(d.next()?.type, FrameType.authOk);
  d.maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  assert.equal(d.next()?.type, FrameType.handoff);
});

test('truncated, trailing and malformed payloads are refused naming the field', () => {
  const f = (type: number, payload: string): Frame => ({ type, payload: hex(payload) });
  throwsFrame(() => decodeMessage(f(FrameType.ping, '01')), /^ping\.token$/);
  throwsFrame(() => decodeMessage(f(FrameType.authOk, '00')), /^auth-ok$/);
  throwsFrame(() => decodeMessage(f(FrameType.ack, '0000000000000001 02 00 0000')), /^ack\.ok$/);
  throwsFrame(() => decodeMessage(f(FrameType.ack, '0000000000000001 00 41' + '41'.repeat(65) + '0000')), /^ack\.code$/);
  throwsFrame(() => decodeMessage(f(FrameType.ack, '0000000000000001 00 01 ff 0000')), /^ack\.code$/); // invalid UTF-8
  throwsFrame(() => decodeMessage(f(FrameType.load, '00000001 00000001 00000000 02')), /^load\.flags$/);
  throwsFrame(() => decodeMessage(f(FrameType.load, '00000001 00000001 00')), /^load\.commits$/);
  throwsFrame(() => decodeMessage(f(FrameType.flowEnd, '0000000000000001 05')), /^flow-end\.family$/);
  throwsFrame(() => decodeMessage(f(FrameType.flowEnd, '00000001')), /^flow-end\.id$/);
  // A v4 FLOW_END with v6-sized addresses is refused: the family fixes the length exactly.
  throwsFrame(() => decodeMessage(f(FrameType.flowEnd, '0000000000000001 04' + '00'.repeat(36))), /^flow-end$/);
  throwsFrame(() => decodeMessage(f(FrameType.hello, '0001' + '00'.repeat(31))), /^hello\.nonce$/);
  throwsFrame(() => decodeMessage(f(FrameType.vips, '41')), /^vips\.count$/); // 65 > MAX_VIPS
  throwsFrame(() => decodeMessage(f(FrameType.vips, '01 05')), /^vips\.family$/);
  throwsFrame(() => decodeMessage(f(FrameType.vips, '01 04 c0000201')), /^vips\.port$/);
  throwsFrame(() => decodeMessage(f(FrameType.vips, '00 00')), /^vips$/);
  throwsFrame(() => decodeMessage(f(FrameType.guard, '04')), /^guard\.flags$/);
  throwsFrame(() => decodeMessage(f(FrameType.handoffFwd, '0000')), /^handoff-fwd\.id$/);
});

test('encode refuses values that do not fit', () => {
  throwsFrame(() => encodeMessage({ kind: 'hello', protoVersion: 1, nonce: seq(31), name: 'x' }), /^hello\.nonce$/);
  throwsFrame(() => encodeMessage({ kind: 'hello', protoVersion: 1, nonce: seq(32), name: 'x'.repeat(65) }), /^hello\.name$/);
  throwsFrame(() => encodeMessage({ kind: 'ping', token: -1n }), /^ping\.token$/);
  throwsFrame(() => encodeMessage({ kind: 'load', active: 2 ** 32, seq: 0, commits: 0 }), /^load\.active$/);
  throwsFrame(() => encodeMessage({ kind: 'load', active: 0, seq: 0, commits: -1 }), /^load\.commits$/);
  throwsFrame(
    () => encodeMessage({ kind: 'flow-end', id: 2n ** 64n, family: 4, client: { address: '1.2.3.4', port: 1 }, vip: { address: '1.2.3.4', port: 1 } }),
    /^flow-end\.id$/,
  );
  throwsFrame(() => encodeMessage({ kind: 'ack', id: 1n, ok: false, code: '\ud800', reason: '' }), /^ack\.code$/);
  throwsFrame(
    () => encodeMessage({ kind: 'flow-end', id: 1n, family: 4, client: { address: '::1', port: 1 }, vip: { address: '1.2.3.4', port: 1 } }),
    /^flow-end\.client\.address$/,
  );
});

test('truncateUtf8 keeps whole characters and always encodes', () => {
  assert.equal(truncateUtf8('héllo', 2), 'h');
  assert.equal(truncateUtf8('ab\ud800c', 10), 'ab\ufffdc');
  const long = 'é'.repeat(1000);
  const cut = truncateUtf8(long, MAX_REASON_BYTES);
  assert.equal(Buffer.byteLength(cut), MAX_REASON_BYTES);
  encodeMessage({ kind: 'ack', id: 1n, ok: false, code: '', reason: cut });
});

test('flowKey is the same for equivalent address spellings', () => {
  const a = flowKey({ family: 6, client: { address: '2001:DB8:0::1', port: 5 }, vip: { address: '0:0:0:0:0:ffff:7f00:1', port: 80 } });
  const b = flowKey({ family: 6, client: { address: '2001:db8::1', port: 5 }, vip: { address: '::ffff:127.0.0.1', port: 80 } });
  assert.equal(a, b);
});

// --- properties -----------------------------------------------------------------------------

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
// Valid Unicode strings bounded in UTF-8 bytes (4 bytes per code point at most).
const text = (maxBytes: number): fc.Arbitrary<string> => fc.string({ unit: 'binary', maxLength: Math.floor(maxBytes / 4) });

/** Textual IPs as Node prints them, so the canonical form round-trips. */
const v4 = bytes(4).map((b) => b.join('.'));
const v6 = bytes(16).map((b) => {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
});
const v6Sparse = fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff, 0x7f00), { minLength: 8, maxLength: 8 }).map((w) =>
  new SocketAddress({ address: w.map((x) => x.toString(16)).join(':'), family: 'ipv6' }).address,
);
const port = u16;
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true });

const message: fc.Arbitrary<Message> = fc.oneof(
  rec({ kind: fc.constant('hello' as const), protoVersion: u16, nonce: bytes(32), name: text(64) }),
  rec({ kind: fc.constant('challenge' as const), nonce: bytes(32), proof: bytes(32) }),
  rec({ kind: fc.constant('auth' as const), proof: bytes(32) }),
  fc.constant({ kind: 'auth-ok' as const }),
  rec({ kind: fc.constant('handoff' as const), id: u64, blob: fc.uint8Array({ maxLength: 300 }) }),
  rec({ kind: fc.constant('ack' as const), id: u64, ok: fc.boolean(), code: text(64), reason: text(256) }),
  fc.record(
    { kind: fc.constant('load' as const), active: u32, capacity: u32, seq: u32, commits: u32 },
    { requiredKeys: ['kind', 'active', 'seq', 'commits'], noNullPrototype: true },
  ),
  rec({
    kind: fc.constant('flow-end' as const),
    id: u64,
    family: fc.constant(4 as const),
    client: rec({ address: v4, port }),
    vip: rec({ address: v4, port }),
  }),
  rec({
    kind: fc.constant('flow-end' as const),
    id: u64,
    family: fc.constant(6 as const),
    client: rec({ address: fc.oneof(v6, v6Sparse), port }),
    vip: rec({ address: fc.oneof(v6, v6Sparse), port }),
  }),
  rec({ kind: fc.constantFrom('ping' as const, 'pong' as const), token: u64 }),
  rec({ kind: fc.constantFrom('commit' as const, 'abort' as const), id: u64 }),
  rec({
    kind: fc.constant('owner-query' as const),
    id: u32,
    flowId: fc.integer({ min: 0, max: 0x7fffffff }),
    family: fc.constant(4 as const),
    client: rec({ address: v4, port }),
    vip: rec({ address: v4, port }),
    frontend: v4,
  }),
  rec({
    kind: fc.constant('owner-query' as const),
    id: u32,
    flowId: fc.integer({ min: 0, max: 0x7fffffff }),
    family: fc.constant(6 as const),
    client: rec({ address: fc.oneof(v6, v6Sparse), port }),
    vip: rec({ address: fc.oneof(v6, v6Sparse), port }),
    frontend: fc.oneof(v6, v6Sparse),
  }),
  rec({ kind: fc.constant('owner-reply' as const), id: u32, found: fc.boolean(), handoffId: u64 }),
  rec({ kind: fc.constant('park' as const), action: fc.constantFrom('expect' as const, 'discard' as const), family: fc.constant(4 as const), client: rec({ address: v4, port }), vip: rec({ address: v4, port }) }),
  rec({
    kind: fc.constant('park' as const),
    action: fc.constantFrom('expect' as const, 'discard' as const),
    family: fc.constant(6 as const),
    client: rec({ address: fc.oneof(v6, v6Sparse), port }),
    vip: rec({ address: fc.oneof(v6, v6Sparse), port }),
  }),
);

test('property: decode(encode(m)) == m, whatever the chunking', () => {
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 20 }), (ms, cuts) => {
      const stream = Buffer.concat(ms.map((m) => encodeMessage(m)));
      const d = new FrameDecoder();
      const out: Message[] = [];
      let off = 0;
      for (const c of [...cuts, stream.length]) {
        d.push(stream.subarray(off, off + c));
        off += c;
        for (let f = d.next(); f !== undefined; f = d.next()) out.push(decodeMessage(f));
        if (off >= stream.length) break;
      }
      assert.deepEqual(out, ms);
    }),
    { numRuns: 500 },
  );
});

test('property: random bytes only ever produce FrameError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: 512 }), (input, max) => {
      const d = new FrameDecoder(max);
      d.push(input);
      try {
        for (let f = d.next(); f !== undefined; f = d.next()) decodeMessage(f);
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: random payloads for every known type only ever produce FrameError', () => {
  const types = Object.values(FrameType);
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 80 }), (type, payload) => {
      try {
        const m = decodeMessage({ type, payload });
        // whatever decodes must re-encode to the same bytes (strict, canonical format)
        assert.deepEqual(encodeMessage(m).subarray(5), payload);
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
      }
    }),
    { numRuns: 3000 },
  );
});

// --- owner query / reply (several front-ends, issue 11) ---------------------------------------

test('golden bytes: owner-query v4 and owner-reply', () => {
  const q: Message = {
    kind: 'owner-query', id: 1, flowId: 0x1234abcd, family: 4,
    client: { address: '10.0.0.1', port: 40000 }, vip: { address: '192.0.2.10', port: 80 }, frontend: '192.0.2.1',
  };
  const qb = '0000001a 50 00000001 1234abcd 04 0a000001 9c40 c000020a 0050 c0000201';
  assert.deepEqual(encodeMessage(q), hex(qb));
  assert.deepEqual(decodeAll(hex(qb)), [q]);
  const r: Message = { kind: 'owner-reply', id: 1, found: true, handoffId: 0x0102n };
  const rb = '0000000e 51 00000001 01 0000000000000102';
  assert.deepEqual(encodeMessage(r), hex(rb));
  assert.deepEqual(decodeAll(hex(rb)), [r]);
});

test('owner-query and owner-reply refuse bad flow ids, families and booleans', () => {
  const bad = (type: number, payload: string, field: string): void =>
    assert.throws(() => decodeMessage({ type, payload: hex(payload) }), (e: unknown) => e instanceof FrameError && e.message.includes(field));
  bad(FrameType.ownerQuery, '00000001 80000000 04 0a000001 9c40 c000020a 0050 c0000201', 'flowId');
  bad(FrameType.ownerQuery, '00000001 00000001 05 0a000001 9c40 c000020a 0050 c0000201', 'family');
  bad(FrameType.ownerQuery, '00000001 00000001 04 0a000001 9c40 c000020a 0050', 'frontend');
  bad(FrameType.ownerReply, '00000001 02 0000000000000102', 'found');
  assert.throws(() => encodeMessage({ kind: 'owner-query', id: 1, flowId: 0x80000000, family: 4, client: { address: '10.0.0.1', port: 1 }, vip: { address: '10.0.0.2', port: 2 }, frontend: '10.0.0.3' }), FrameError);
});

test('a blob is a view of its frame; other byte fields are copies', () => {
  const blob = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const bytes = encodeMessage({ kind: 'handoff-fwd', id: 3n, blob });
  const d = new FrameDecoder();
  // Split across chunks: the frame is gathered into one buffer, and the blob is a view of it.
  d.push(bytes.slice(0, 100));
  d.push(bytes.slice(100));
  const frame = d.next();
  assert.ok(frame);
  const m = decodeMessage(frame);
  assert.ok(m.kind === 'handoff-fwd');
  assert.deepEqual(m.blob, blob);
  assert.equal(m.blob.buffer, frame.payload.buffer);
  const nonce = new Uint8Array(32).fill(7);
  const helloFrame = new FrameDecoder();
  helloFrame.push(encodeMessage({ kind: 'challenge', nonce, proof: new Uint8Array(32) }));
  const hf = helloFrame.next();
  assert.ok(hf);
  const c = decodeMessage(hf);
  assert.ok(c.kind === 'challenge');
  assert.notEqual(c.nonce.buffer, hf.payload.buffer);
});

test('encodeMessageParts: the same bytes as encodeMessage, a large blob passed by reference', () => {
  const big = Uint8Array.from({ length: 5000 }, (_, i) => (i * 31) & 0xff);
  const parts = encodeMessageParts({ kind: 'handoff-fwd', id: 9n, blob: big });
  assert.equal(parts.length, 2);
  assert.equal(parts[1], big);
  assert.deepEqual(Buffer.concat(parts), Buffer.from(encodeMessage({ kind: 'handoff-fwd', id: 9n, blob: big })));
  const small = encodeMessageParts({ kind: 'handoff', id: 1n, blob: hex('aabbcc') });
  assert.equal(small.length, 1);
  assert.deepEqual(Buffer.from(small[0]!), Buffer.from(encodeMessage({ kind: 'handoff', id: 1n, blob: hex('aabbcc') })));
  fc.assert(
    fc.property(message, (m) => Buffer.concat(encodeMessageParts(m)).equals(Buffer.from(encodeMessage(m)))),
    { numRuns: 300 },
  );
});
