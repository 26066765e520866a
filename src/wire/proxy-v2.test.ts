import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PROXY_ERR, decodeProxyV2, encodeProxyV2, type ProxyV2Addresses } from './proxy-v2.ts';
import { formatIPv4, formatIPv6 } from './bytes.ts';
import { WireError } from './errors.ts';
import { throwsWire } from './testing.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const SIG = '0d0a0d0a000d0a515549540a';

const V4: ProxyV2Addresses = {
  family: 4,
  source: { address: '192.0.2.10', port: 51234 },
  destination: { address: '198.51.100.1', port: 80 },
};
const V4_BYTES = hex(`${SIG} 21 11 000c  c000020a c6336401  c822 0050`);

const V6: ProxyV2Addresses = {
  family: 6,
  source: { address: '2001:db8::1', port: 51234 },
  destination: { address: '2001:db8::80', port: 443 },
};
const V6_BYTES = hex(`${SIG} 21 21 0024
  20010db8000000000000000000000001
  20010db8000000000000000000000080
  c822 01bb`);

describe('proxy v2', () => {
  it('emits the golden bytes for IPv4 and IPv6', () => {
    assert.equal(toHex(encodeProxyV2(V4)), toHex(V4_BYTES));
    assert.equal(toHex(encodeProxyV2(V6)), toHex(V6_BYTES));
  });

  it('parses the golden bytes and reports where the stream starts', () => {
    const withPayload = new Uint8Array(V4_BYTES.length + 3);
    withPayload.set(V4_BYTES);
    assert.deepEqual(decodeProxyV2(withPayload), {
      kind: 'ok',
      header: { command: 'proxy', addresses: V4, tlvs: [] },
      byteLength: 28,
    });
    assert.deepEqual(decodeProxyV2(V6_BYTES), {
      kind: 'ok',
      header: { command: 'proxy', addresses: V6, tlvs: [] },
      byteLength: 52,
    });
  });

  it('is incomplete on every proper prefix', () => {
    for (const bytes of [V4_BYTES, V6_BYTES]) {
      for (let n = 0; n < bytes.length; n++) assert.deepEqual(decodeProxyV2(bytes.subarray(0, n)), { kind: 'incomplete' }, `prefix ${n}`);
    }
  });

  it('returns TLVs raw and accepts LOCAL and UNSPEC without addresses', () => {
    const r = decodeProxyV2(hex(`${SIG} 21 11 0014 c000020a c6336401 c822 0050  04 0000  01 0002 6832`));
    assert.equal(r.kind, 'ok');
    assert.deepEqual(r.kind === 'ok' && r.header.tlvs, [
      { type: 4, value: new Uint8Array(0) },
      { type: 1, value: hex('6832') },
    ]);
    assert.deepEqual(decodeProxyV2(hex(`${SIG} 20 00 0000`)), {
      kind: 'ok',
      header: { command: 'local', addresses: undefined, tlvs: [] },
      byteLength: 16,
    });
    const local = decodeProxyV2(hex(`${SIG} 20 11 000c c000020a c6336401 c822 0050`));
    assert.equal(local.kind === 'ok' && local.header.addresses, undefined);
    const unspec = decodeProxyV2(hex(`${SIG} 21 00 0003 aabbcc`));
    assert.deepEqual(unspec, { kind: 'ok', header: { command: 'proxy', addresses: undefined, tlvs: [] }, byteLength: 19 });
  });

  it('refuses malformed headers', () => {
    throwsWire(() => decodeProxyV2(hex('16 03 01')), PROXY_ERR.SIGNATURE, 'signature');
    throwsWire(() => decodeProxyV2(new TextEncoder().encode('PROXY TCP4 ')), PROXY_ERR.SIGNATURE, 'signature');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 11`)), PROXY_ERR.VERSION, 'version');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 22`)), PROXY_ERR.COMMAND, 'command');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 12`)), PROXY_ERR.FAMILY, 'family');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 31`)), PROXY_ERR.FAMILY, 'family');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 41`)), PROXY_ERR.FAMILY, 'family');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 13`)), PROXY_ERR.FAMILY, 'family');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 11 000b`)), PROXY_ERR.LENGTH, 'length');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 21 0023`)), PROXY_ERR.LENGTH, 'length');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 11 000e c000020a c6336401 c822 0050 01 00`)), PROXY_ERR.TLV, 'tlvs[0]');
    throwsWire(() => decodeProxyV2(hex(`${SIG} 21 11 000f c000020a c6336401 c822 0050 01 0001`)), PROXY_ERR.TLV, 'tlvs[0].length');
  });

  it('refuses to encode invalid addresses and ports', () => {
    throwsWire(() => encodeProxyV2({ ...V4, source: { address: '::1', port: 1 } }), PROXY_ERR.ADDRESS, 'source.address');
    throwsWire(() => encodeProxyV2({ ...V4, destination: { address: '::ffff:1.2.3.4', port: 1 } }), PROXY_ERR.ADDRESS, 'destination.address');
    throwsWire(() => encodeProxyV2({ ...V6, source: { address: '1.2.3.4', port: 1 } }), PROXY_ERR.ADDRESS, 'source.address');
    throwsWire(() => encodeProxyV2({ ...V4, destination: { address: '1.2.3.4', port: 65536 } }), PROXY_ERR.PORT, 'destination.port');
    throwsWire(() => encodeProxyV2({ ...V4, family: 5 as 4 }), PROXY_ERR.FAMILY, 'family');
  });
});

const REC = { noNullPrototype: true } as const;
const port = fc.integer({ min: 0, max: 65535 });
const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIPv4(b));
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIPv6(b));
const arbAddresses: fc.Arbitrary<ProxyV2Addresses> = fc.constantFrom<4 | 6>(4, 6).chain((family) => {
  const addr = family === 4 ? ipv4 : ipv6;
  return fc.record(
    { family: fc.constant(family), source: fc.record({ address: addr, port }, REC), destination: fc.record({ address: addr, port }, REC) },
    REC,
  );
});

describe('proxy v2 properties', () => {
  it('decode(encode(x)) gives back x', () => {
    fc.assert(
      fc.property(arbAddresses, (a) => {
        const bytes = encodeProxyV2(a);
        assert.deepEqual(decodeProxyV2(bytes), {
          kind: 'ok',
          header: { command: 'proxy', addresses: a, tlvs: [] },
          byteLength: bytes.length,
        });
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes, bare or after a signature, never throw anything but WireError', () => {
    const sig = hex(SIG);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (tail, signed) => {
        const b = signed ? Uint8Array.from([...sig, ...tail]) : tail;
        try {
          decodeProxyV2(b);
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
