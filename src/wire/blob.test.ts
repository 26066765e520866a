import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BLOB_ERR,
  BLOB_FIELD,
  BLOB_FIXED_LENGTH,
  BLOB_MIN_LENGTH,
  BlobView,
  blobByteLength,
  decodeBlob,
  encodeBlob,
  type HandoffBlob,
} from './blob.ts';
import { concatBytes, crc32c, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './bytes.ts';
import { WireError } from './errors.ts';
import type { TcpState } from './tcp-state.ts';
import { throwsWire } from './testing.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const FIXED: HandoffBlob = {
  handoffId: 0x0102030405060708n,
  flowId: 0xdeadbeef,
  state: {
    family: 4,
    client: { address: '192.0.2.10', port: 51234 },
    vip: { address: '198.51.100.1', port: 80 },
    sendSeq: 0x11223344,
    recvSeq: 0x55667788,
    window: { sndWl1: 0x55667700, sndWnd: 65535, maxWindow: 65535, rcvWnd: 64240, rcvWup: 0x55667788 },
    mss: 1460,
    sndWscale: 7,
    rcvWscale: 9,
    sackPermitted: true,
    timestamps: true,
    finReceived: false,
    tsVal: 0x0a0b0c0d,
    recvQueue: enc('GET'),
    sendQueue: enc('ok'),
  },
};

// One fixed blob, field by field.
const GOLDEN = hex(
  [
    '42544e 01 00 04 03 00', // magic "BTN", version 1, flags 0, family 4, options SACK|TS, reserved
    '00000071', // totalLength 113
    '0102030405060708', // handoffId
    'deadbeef', // flowId
    '00000000000000000000ffff c000020a', // client ::ffff:192.0.2.10
    '00000000000000000000ffff c6336401', // vip ::ffff:198.51.100.1
    'c822 0050', // ports 51234, 80
    '05b4 07 09', // mss 1460, sndWscale 7, rcvWscale 9
    '11223344 55667788', // sendSeq, recvSeq
    '55667700 0000ffff 0000ffff 0000faf0 55667788', // window: sndWl1 sndWnd maxWindow rcvWnd rcvWup
    '0a0b0c0d', // tsVal
    '00000003 00000002', // queue lengths
    '474554 6f6b', // "GET", "ok"
    '23af458f', // CRC-32C
  ].join(''),
);

/** Rewrites bytes with `edit`, then fixes the checksum so the edit reaches the field checks. */
function patched(edit: (b: Uint8Array, dv: DataView) => void, base: Uint8Array = GOLDEN): Uint8Array {
  const b = base.slice();
  const dv = new DataView(b.buffer);
  edit(b, dv);
  dv.setUint32(b.length - 4, crc32c(b, 0, b.length - 4));
  return b;
}

/** Inserts `tail` before the checksum, updating totalLength and checksum. */
function withExtension(tail: Uint8Array, base: Uint8Array = GOLDEN): Uint8Array {
  const b = new Uint8Array(base.length + tail.length);
  b.set(base.subarray(0, base.length - 4));
  b.set(tail, base.length - 4);
  const dv = new DataView(b.buffer);
  dv.setUint32(BLOB_FIELD.totalLength.at, b.length);
  dv.setUint32(b.length - 4, crc32c(b, 0, b.length - 4));
  return b;
}

function withState(patch: Partial<TcpState>): HandoffBlob {
  return { ...FIXED, state: { ...FIXED.state, ...patch } };
}

describe('bytes', () => {
  it('crc32c matches the standard check value and a bitwise reference', () => {
    assert.equal(crc32c(enc('123456789')), 0xe3069283);
    const bitwise = (b: Uint8Array): number => {
      let c = 0xffffffff;
      for (const x of b) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => crc32c(b) === bitwise(b)));
    // Any range of a longer array: the offsets are passed through to the native code as a subarray.
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.nat(), fc.nat(), (b, x, y) => {
      const [start, end] = [x % (b.length + 1), y % (b.length + 1)].sort((p, q) => p - q) as [number, number];
      return crc32c(b, start, end) === bitwise(b.subarray(start, end));
    }));
  });

  it('concatBytes joins the parts in order, with or without their total', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (parts) => {
      const want = Buffer.concat(parts);
      const total = parts.reduce((n, p) => n + p.length, 0);
      return Buffer.from(concatBytes(parts)).equals(want) && Buffer.from(concatBytes(parts, total)).equals(want);
    }));
  });

  it('formats IPv6 exactly as Node prints it', () => {
    const cases: [string, string][] = [
      ['::2', '::2'],
      ['::', '::'],
      ['::102:304', '::1.2.3.4'],
      ['::ffff:102:304', '::ffff:1.2.3.4'],
      ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
      ['1:0:0:1:0:0:1:1', '1::1:0:0:1:1'],
      ['0:0:1::', '0:0:1::'],
      ['0:0:0:0:0:0:1:0', '::0.1.0.0'],
      ['::fffe:102:304', '::fffe:102:304'],
      ['0:0:0:0:0:1:102:304', '::1:102:304'],
      ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
      ['FE80:0000::0001', 'fe80::1'],
      ['::ffff:0.0.0.0', '::ffff:0.0.0.0'],
    ];
    for (const [input, want] of cases) {
      const b = parseIPv6(input);
      assert.ok(b, input);
      assert.equal(formatIPv6(b), want, input);
    }
  });

  it('refuses malformed address text', () => {
    for (const s of ['', ':', ':1', '1:', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::', '::1%eth0', '[::1]', '1:2:3:4:5:6:7::8:9', '::1.2.3', '1.2.3.4::']) {
      assert.equal(parseIPv6(s), undefined, s);
    }
    for (const s of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4 ']) {
      assert.equal(parseIPv4(s), undefined, s);
    }
    assert.equal(formatIPv4(parseIPv4('0.255.10.100') ?? new Uint8Array(4)), '0.255.10.100');
  });
});

describe('blob layout', () => {
  it('declares contiguous, non-overlapping fixed fields ending at BLOB_FIXED_LENGTH', () => {
    let at = 0;
    for (const [name, f] of Object.entries(BLOB_FIELD)) {
      assert.equal(f.at, at, name);
      at += f.size;
    }
    assert.equal(at, BLOB_FIXED_LENGTH);
  });

  it('emits the golden bytes', () => {
    assert.equal(toHex(encodeBlob(FIXED)), toHex(GOLDEN));
    assert.equal(blobByteLength(FIXED), GOLDEN.length);
  });

  it('parses the golden bytes', () => {
    assert.deepEqual(decodeBlob(GOLDEN), FIXED);
  });

  it('view exposes raw fields without copying', () => {
    const v = BlobView.check(GOLDEN);
    assert.equal(v.handoffId, FIXED.handoffId);
    assert.equal(v.u32('flowId'), FIXED.flowId);
    assert.equal(v.recvQueue.buffer, GOLDEN.buffer);
    assert.equal(toHex(v.sendQueue), toHex(enc('ok')));
  });

  it('round-trips an IPv6 state with empty queues and u32 extremes', () => {
    const b = withState({
      family: 6,
      client: { address: '2001:db8::1', port: 0 },
      vip: { address: '::ffff:10.0.0.1', port: 65535 },
      sendSeq: 0,
      recvSeq: 0xffffffff,
      tsVal: 0xffffffff,
      mss: 65535,
      sndWscale: 14,
      rcvWscale: 0,
      sackPermitted: false,
      timestamps: false,
      recvQueue: new Uint8Array(0),
      sendQueue: new Uint8Array(0),
    });
    const bytes = encodeBlob({ ...b, handoffId: (1n << 64n) - 1n, flowId: 0 });
    assert.equal(bytes.length, BLOB_MIN_LENGTH);
    assert.deepEqual(decodeBlob(bytes), { ...b, handoffId: (1n << 64n) - 1n, flowId: 0 });
  });

  it('carries a received FIN as options bit 2 and nothing else', () => {
    const half = withState({ finReceived: true });
    const bytes = encodeBlob(half);
    // The golden blob with options SACK|TS|FIN (0x07): only byte 6 and the checksum differ.
    const want = patched((b) => (b[6] = 0x07));
    assert.equal(toHex(bytes), toHex(want));
    assert.deepEqual(decodeBlob(bytes), half);
    assert.equal(decodeBlob(GOLDEN).state.finReceived, false);
  });

  it('decodes the queues as views of the input, not copies', () => {
    const input = GOLDEN.slice();
    const d = decodeBlob(input);
    assert.equal(toHex(d.state.recvQueue), toHex(enc('GET')));
    assert.equal(d.state.recvQueue.buffer, input.buffer);
    assert.equal(d.state.sendQueue.buffer, input.buffer);
    input.fill(0);
    assert.equal(toHex(d.state.recvQueue), '000000');
  });

  it('skips a skippable extension and refuses a non-skippable one', () => {
    assert.deepEqual(decodeBlob(withExtension(hex('07 01 0003 aabbcc  09 ff 0000'))), FIXED);
    throwsWire(() => decodeBlob(withExtension(hex('07 01 0001 aa  08 00 0000'))), BLOB_ERR.EXTENSION, 'extensions[1].type');
    throwsWire(() => decodeBlob(withExtension(hex('07 01 0004 aabbcc'))), BLOB_ERR.TRUNCATED, 'extensions[0].length');
    throwsWire(() => decodeBlob(withExtension(hex('07 01 00'))), BLOB_ERR.TRUNCATED, 'extensions[0]');
  });
});

describe('blob decode refuses', () => {
  it('short and truncated input', () => {
    throwsWire(() => decodeBlob(new Uint8Array(0)), BLOB_ERR.TRUNCATED, 'header');
    throwsWire(() => decodeBlob(GOLDEN.subarray(0, 11)), BLOB_ERR.TRUNCATED, 'header');
    throwsWire(() => decodeBlob(GOLDEN.subarray(0, GOLDEN.length - 1)), BLOB_ERR.TRUNCATED, 'totalLength');
  });

  it('bad magic', () => {
    throwsWire(() => decodeBlob(patched((b) => (b[0] = 0x43))), BLOB_ERR.MAGIC, 'magic');
    throwsWire(() => decodeBlob(hex('4254')), BLOB_ERR.TRUNCATED, 'header');
    throwsWire(() => decodeBlob(hex('16')), BLOB_ERR.MAGIC, 'magic');
  });

  it('unknown version, naming it and the supported ones', () => {
    assert.throws(
      () => decodeBlob(patched((b) => (b[3] = 2))),
      (e: unknown) => e instanceof WireError && e.code === BLOB_ERR.VERSION && /version 2 .*supported: 1/.test(e.message),
    );
  });

  it('length field disagreeing with the input', () => {
    const trailing = new Uint8Array(GOLDEN.length + 1);
    trailing.set(GOLDEN);
    throwsWire(() => decodeBlob(trailing), BLOB_ERR.LENGTH, 'totalLength');
    throwsWire(() => decodeBlob(patched((_, dv) => dv.setUint32(8, 50))), BLOB_ERR.LENGTH, 'totalLength');
  });

  it('oversized blobs and queues', () => {
    throwsWire(() => decodeBlob(patched((_, dv) => dv.setUint32(8, 0xffffffff))), BLOB_ERR.TOO_LARGE, 'totalLength');
    throwsWire(() => decodeBlob(GOLDEN, { maxBytes: GOLDEN.length - 1 }), BLOB_ERR.TOO_LARGE, 'totalLength');
    throwsWire(() => decodeBlob(GOLDEN, { maxQueueBytes: 2 }), BLOB_ERR.TOO_LARGE, 'recvQueue.length');
    const sendHeavy = encodeBlob(withState({ recvQueue: new Uint8Array(0), sendQueue: new Uint8Array(5) }));
    throwsWire(() => decodeBlob(sendHeavy, { maxQueueBytes: 4 }), BLOB_ERR.TOO_LARGE, 'sendQueue.length');
  });

  it('queue lengths overrunning the blob', () => {
    throwsWire(() => decodeBlob(patched((_, dv) => dv.setUint32(96, 6))), BLOB_ERR.LENGTH, 'recvQueue.length');
    throwsWire(() => decodeBlob(patched((_, dv) => dv.setUint32(100, 3))), BLOB_ERR.LENGTH, 'sendQueue.length');
  });

  it('checksum mismatch', () => {
    const b = GOLDEN.slice();
    b[30] = (b[30] ?? 0) ^ 1;
    throwsWire(() => decodeBlob(b), BLOB_ERR.CHECKSUM, 'checksum');
  });

  it('unknown flags, option bits, reserved byte', () => {
    throwsWire(() => decodeBlob(patched((b) => (b[4] = 0x80))), BLOB_ERR.FLAGS, 'flags');
    throwsWire(() => decodeBlob(patched((b) => (b[6] = 0x0f))), BLOB_ERR.OPTIONS, 'options');
    throwsWire(() => decodeBlob(patched((b) => (b[6] = 0x80))), BLOB_ERR.OPTIONS, 'options');
    throwsWire(() => decodeBlob(patched((b) => (b[7] = 1))), BLOB_ERR.RESERVED, 'reserved');
  });

  it('invalid family', () => {
    throwsWire(() => decodeBlob(patched((b) => (b[5] = 2))), BLOB_ERR.FAMILY, 'family');
  });

  it('family 4 with an address that is not IPv4-mapped', () => {
    throwsWire(() => decodeBlob(patched((b) => (b[24] = 0x20))), BLOB_ERR.ADDRESS, 'client.address');
    throwsWire(() => decodeBlob(patched((b) => (b[50] = 0))), BLOB_ERR.ADDRESS, 'vip.address');
  });

  it('mss 0 and window scales above 14', () => {
    throwsWire(() => decodeBlob(patched((_, dv) => dv.setUint16(60, 0))), BLOB_ERR.MSS, 'mss');
    throwsWire(() => decodeBlob(patched((b) => (b[62] = 15))), BLOB_ERR.WSCALE, 'sndWscale');
    throwsWire(() => decodeBlob(patched((b) => (b[63] = 255))), BLOB_ERR.WSCALE, 'rcvWscale');
  });
});

describe('blob encode refuses what decode would refuse', () => {
  const cases: [string, HandoffBlob, string, string][] = [
    ['port above 65535', withState({ client: { address: '192.0.2.1', port: 65536 } }), BLOB_ERR.PORT, 'client.port'],
    ['negative port', withState({ vip: { address: '192.0.2.1', port: -1 } }), BLOB_ERR.PORT, 'vip.port'],
    ['mss 0', withState({ mss: 0 }), BLOB_ERR.MSS, 'mss'],
    ['mss 65536', withState({ mss: 65536 }), BLOB_ERR.MSS, 'mss'],
    ['wscale 15', withState({ rcvWscale: 15 }), BLOB_ERR.WSCALE, 'rcvWscale'],
    ['seq 2^32', withState({ sendSeq: 2 ** 32 }), BLOB_ERR.RANGE, 'sendSeq'],
    ['fractional tsVal', withState({ tsVal: 1.5 }), BLOB_ERR.RANGE, 'tsVal'],
    ['negative window', withState({ window: { ...FIXED.state.window, rcvWnd: -1 } }), BLOB_ERR.RANGE, 'window.rcvWnd'],
    ['flowId 2^32', { ...FIXED, flowId: 2 ** 32 }, BLOB_ERR.RANGE, 'flowId'],
    ['handoffId 2^64', { ...FIXED, handoffId: 1n << 64n }, BLOB_ERR.RANGE, 'handoffId'],
    ['negative handoffId', { ...FIXED, handoffId: -1n }, BLOB_ERR.RANGE, 'handoffId'],
    ['family 5', withState({ family: 5 as 4 }), BLOB_ERR.FAMILY, 'family'],
    ['IPv6 text on family 4', withState({ client: { address: '::1', port: 1 } }), BLOB_ERR.ADDRESS, 'client.address'],
    ['IPv4 text on family 6', withState({ family: 6, client: { address: '::1', port: 1 } }), BLOB_ERR.ADDRESS, 'vip.address'],
  ];
  for (const [name, blob, code, field] of cases) {
    it(name, () => throwsWire(() => encodeBlob(blob), code, field));
  }
  it('queues and totals above the limits', () => {
    throwsWire(() => encodeBlob(FIXED, { maxQueueBytes: 2 }), BLOB_ERR.TOO_LARGE, 'recvQueue.length');
    throwsWire(() => encodeBlob(FIXED, { maxBytes: 112 }), BLOB_ERR.TOO_LARGE, 'totalLength');
  });
});

// ---- properties -------------------------------------------------------------------------

const u32 = fc.oneof(fc.constantFrom(0, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
const port = fc.oneof(fc.constantFrom(0, 65535), fc.integer({ min: 0, max: 65535 }));
const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIPv4(b));
const word = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
const ipv6 = fc.array(word, { minLength: 8, maxLength: 8 }).map((ws) => {
  const b = new Uint8Array(16);
  ws.forEach((w, i) => ((b[i * 2] = w >>> 8), (b[i * 2 + 1] = w & 0xff)));
  return formatIPv6(b);
});
const queue = fc.uint8Array({ maxLength: 64 });
// Plain prototypes, so deepEqual against decoded objects holds.
const REC = { noNullPrototype: true } as const;

const arbBlob: fc.Arbitrary<HandoffBlob> = fc
  .constantFrom<4 | 6>(4, 6)
  .chain((family) => {
    const addr = family === 4 ? ipv4 : ipv6;
    return fc.record({
      handoffId: fc.oneof(fc.constantFrom(0n, (1n << 64n) - 1n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      flowId: u32,
      state: fc.record({
        family: fc.constant(family),
        client: fc.record({ address: addr, port }, REC),
        vip: fc.record({ address: addr, port }, REC),
        sendSeq: u32,
        recvSeq: u32,
        window: fc.record({ sndWl1: u32, sndWnd: u32, maxWindow: u32, rcvWnd: u32, rcvWup: u32 }, REC),
        mss: fc.integer({ min: 1, max: 65535 }),
        sndWscale: fc.integer({ min: 0, max: 14 }),
        rcvWscale: fc.integer({ min: 0, max: 14 }),
        sackPermitted: fc.boolean(),
        timestamps: fc.boolean(),
        finReceived: fc.boolean(),
        tsVal: u32,
        recvQueue: queue,
        sendQueue: queue,
      }, REC),
    }, REC);
  });

/** decode must either return or throw WireError; anything else fails the property. */
function decodeOrWireError(b: Uint8Array): HandoffBlob | WireError {
  try {
    return decodeBlob(b);
  } catch (e) {
    if (e instanceof WireError) return e;
    throw e;
  }
}

describe('blob properties', () => {
  it('decode(encode(x)) deep-equals x', () => {
    fc.assert(
      fc.property(arbBlob, (x) => {
        const bytes = encodeBlob(x);
        assert.equal(bytes.length, blobByteLength(x));
        assert.deepEqual(decodeBlob(bytes), x);
      }),
      { numRuns: 500 },
    );
  });

  it('any single-byte corruption is refused with a WireError', () => {
    fc.assert(
      fc.property(arbBlob, fc.nat(), fc.integer({ min: 1, max: 255 }), (x, i, flip) => {
        const bytes = encodeBlob(x);
        const at = i % bytes.length;
        bytes[at] = (bytes[at] ?? 0) ^ flip;
        assert.throws(() => decodeBlob(bytes), WireError);
      }),
      { numRuns: 1000 },
    );
  });

  it('any truncation or extension by a byte is refused with a WireError', () => {
    fc.assert(
      fc.property(arbBlob, fc.nat(), fc.integer({ min: 0, max: 255 }), (x, i, extra) => {
        const bytes = encodeBlob(x);
        assert.throws(() => decodeBlob(bytes.subarray(0, i % bytes.length)), WireError);
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        longer[bytes.length] = extra;
        assert.throws(() => decodeBlob(longer), WireError);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes never throw anything but WireError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => void decodeOrWireError(b)), { numRuns: 2000 });
  });

  it('random well-framed bytes decode to something that re-encodes, or throw WireError', () => {
    // Valid magic, version, length and checksum over random content, so the field checks run.
    const framed = fc.uint8Array({ minLength: BLOB_MIN_LENGTH - 12, maxLength: 200 }).map((body) => {
      const b = new Uint8Array(12 + body.length);
      b.set(body, 8);
      b.set(hex('42544e01'));
      const dv = new DataView(b.buffer);
      dv.setUint32(8, b.length);
      dv.setUint32(b.length - 4, crc32c(b, 0, b.length - 4));
      return b;
    });
    fc.assert(
      fc.property(framed, fc.boolean(), (b, plausible) => {
        if (plausible) {
          // Steer towards the deeper checks: sane flags, family, options, queue lengths.
          b[4] = 0;
          b[5] = b[5]! & 1 ? 6 : 4;
          b[6] = b[6]! & 7;
          b[7] = 0;
          const dv = new DataView(b.buffer);
          dv.setUint32(96, dv.getUint32(96) % 8);
          dv.setUint32(100, dv.getUint32(100) % 8);
          dv.setUint32(b.length - 4, crc32c(b, 0, b.length - 4));
        }
        const r = decodeOrWireError(b);
        if (!(r instanceof WireError)) assert.deepEqual(decodeBlob(encodeBlob(r)), r);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ENCAP extension (the flow-id mapping the back-end needs)', () => {
  /** Where the ENCAP TLV starts in FIXED's encoding: after the fixed part and both queues. */
  const TLV_AT = BLOB_FIXED_LENGTH + FIXED.state.recvQueue.length + FIXED.state.sendQueue.length;

  it('round-trips the front-end address for IPv4 and IPv6, and is absent when not given', () => {
    assert.equal(decodeBlob(encodeBlob(FIXED)).encap, undefined);
    const v4 = { ...FIXED, encap: { frontend: '10.77.2.10' } };
    assert.deepEqual(decodeBlob(encodeBlob(v4)).encap, { frontend: '10.77.2.10' });
    const s6 = FIXED.state;
    const v6: HandoffBlob = {
      ...FIXED,
      state: { ...s6, family: 6, client: { address: 'fd77::2', port: 1 }, vip: { address: 'fd77::100', port: 80 } },
      encap: { frontend: 'fd77:2::10' },
    };
    assert.deepEqual(decodeBlob(encodeBlob(v6)).encap, { frontend: 'fd77:2::10' });
  });

  it('is written as TLV type 1, not skippable, 16 bytes, after the queues', () => {
    const bytes = encodeBlob({ ...FIXED, encap: { frontend: '10.77.2.10' } });
    const at = TLV_AT;
    assert.deepEqual([...bytes.subarray(at, at + 4)], [1, 0, 0, 16]);
    assert.deepEqual([...bytes.subarray(at + 4 + 10, at + 4 + 16)], [0xff, 0xff, 10, 77, 2, 10]);
    assert.equal(bytes.length, BLOB_MIN_LENGTH + TLV_AT - BLOB_FIXED_LENGTH + 20);
  });

  it('a wrong length or a second copy is refused naming the extension', () => {
    const good = encodeBlob({ ...FIXED, encap: { frontend: '10.77.2.10' } });
    const at = TLV_AT;
    const reseal = (b: Uint8Array): Uint8Array => {
      new DataView(b.buffer, b.byteOffset).setUint32(b.length - 4, crc32c(b, 0, b.length - 4));
      return b;
    };
    const short = good.slice();
    short[at + 3] = 15;
    short[at + 4 + 15] = 0;
    assert.throws(() => decodeBlob(reseal(short)), (e: unknown) => e instanceof WireError && e.field === 'extensions[0].length');
    const twice = new Uint8Array(good.length + 20);
    twice.set(good.subarray(0, good.length - 4));
    twice.set(good.subarray(at, at + 20), good.length - 4);
    new DataView(twice.buffer).setUint32(BLOB_FIELD.totalLength.at, twice.length);
    assert.throws(() => decodeBlob(reseal(twice)), (e: unknown) => e instanceof WireError && e.field === 'extensions[1].type');
  });

  it('an IPv4 blob whose encap address is not IPv4-mapped is refused', () => {
    const b = encodeBlob({ ...FIXED, encap: { frontend: '10.77.2.10' } });
    const at = TLV_AT + 4;
    b[at + 10] = 0;
    new DataView(b.buffer).setUint32(b.length - 4, crc32c(b, 0, b.length - 4));
    assert.throws(() => decodeBlob(b), (e: unknown) => e instanceof WireError && e.field === 'encap.frontend');
  });
});
