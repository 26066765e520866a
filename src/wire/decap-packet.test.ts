// Userspace flow-id decapsulation: the restored packet equals the one the client sent (the reference frame builder's
// bytes, which the BPF program's rewrite also matches in steer/bpf-guard.test.ts), its checksums verify for any
// addresses, ports and payload (property), a corrupt segment stays corrupt, a partial checksum becomes a full one,
// and anything that is not a whole TCP packet is refused with a typed error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatIPv4, formatIPv6 } from './bytes.ts';
import { DecapPacketError, decapsulatePacket, type DecapTarget } from './decap-packet.ts';
import { emitTcpFrame, parseTcpFrame } from './packet.ts';

const ETH = 14;
const ip = (frame: Uint8Array): Uint8Array => frame.subarray(ETH);
const withEth = (packet: Uint8Array, family: 4 | 6): Uint8Array => {
  const f = new Uint8Array(ETH + packet.length);
  f[12] = family === 4 ? 0x08 : 0x86;
  f[13] = family === 4 ? 0x00 : 0xdd;
  f.set(packet, ETH);
  return f;
};

const addrs = {
  4: { fe: '192.0.2.1', be: '192.0.2.20', client: '198.51.100.7', vip: '203.0.113.80' },
  6: { fe: '2001:db8::1', be: '2001:db8::20', client: '2001:db8:c::7', vip: '2001:db8:f::80' },
} as const;

for (const family of [4, 6] as const) {
  const a = addrs[family];
  const to: DecapTarget = { family, client: { address: a.client, port: 40000 }, vip: { address: a.vip, port: 80 } };
  const payload = new Uint8Array([1, 2, 3, 4, 5]);
  const sent = emitTcpFrame({ family, src: a.client, dst: a.vip, sport: 40000, dport: 80, seq: 7, ackNum: 9, flags: { ack: true, psh: true }, payload });
  const encapsulated = emitTcpFrame({ family, src: a.fe, dst: a.be, sport: 0x1234, dport: 0x5678, seq: 7, ackNum: 9, flags: { ack: true, psh: true }, payload });

  test(`IPv${family}: restores the client's packet byte for byte (incremental checksum)`, () => {
    const out = decapsulatePacket(ip(encapsulated), to, { checksumPartial: false });
    assert.equal(Buffer.from(out).toString('hex'), Buffer.from(ip(sent)).toString('hex'));
    assert.notEqual(out.buffer, ip(encapsulated).buffer, 'a copy, the input untouched');
  });

  test(`IPv${family}: a partial checksum (pseudo-header only) becomes a full one`, () => {
    const partial = Uint8Array.from(ip(encapsulated));
    const l4 = family === 4 ? 20 : 40;
    partial[l4 + 16] = 0x12; // whatever the sender left there: it is not a checksum yet
    partial[l4 + 17] = 0x34;
    const out = decapsulatePacket(partial, to, { checksumPartial: true });
    assert.equal(Buffer.from(out).toString('hex'), Buffer.from(ip(sent)).toString('hex'));
  });

  test(`IPv${family}: a corrupt segment stays corrupt (incremental update)`, () => {
    const bad = Uint8Array.from(ip(encapsulated));
    bad[bad.length - 1]! ^= 0x40;
    const out = decapsulatePacket(bad, to, { checksumPartial: false });
    assert.equal(parseTcpFrame(withEth(out, family)).tcpChecksumOk, false);
  });

  test(`IPv${family}: property: any tuple, flow id and payload restores to verifying checksums`, () => {
    const addr = family === 4
      ? fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIPv4(b))
      : fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIPv6(b));
    fc.assert(fc.property(
      addr, addr, addr, addr, fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 1, max: 0x7fffffff }),
      fc.uint8Array({ maxLength: 300 }), fc.boolean(),
      (fe, be, client, vip, cport, vport, flowId, data, partial) => {
        const enc = ip(emitTcpFrame({ family, src: fe, dst: be, sport: flowId >>> 16, dport: flowId & 0xffff, flags: { ack: true }, payload: data }));
        const out = decapsulatePacket(enc, { family, client: { address: client, port: cport }, vip: { address: vip, port: vport } }, { checksumPartial: partial });
        const p = parseTcpFrame(withEth(out, family));
        assert.equal(p.ipChecksumOk, true);
        assert.equal(p.tcpChecksumOk, true);
        assert.deepEqual([p.src, p.sport, p.dst, p.dport], [client, cport, vip, vport]);
        const want = ip(emitTcpFrame({ family, src: client, dst: vip, sport: cport, dport: vport, flags: { ack: true }, payload: data }));
        // equal but for the checksum's two one's-complement zeros an incremental update may choose between
        const l4 = family === 4 ? 20 : 40;
        const strip = (b: Uint8Array): string => Buffer.from(b.slice(0, l4 + 16)).toString('hex') + Buffer.from(b.slice(l4 + 18)).toString('hex');
        assert.equal(strip(out), strip(want));
      },
    ), { numRuns: 300 });
  });

  test(`IPv${family}: refusals name the field`, () => {
    const p = ip(encapsulated);
    const cases: [Uint8Array, DecapTarget, string][] = [
      [p.subarray(0, p.length - 1), to, 'ip.length'], // cut short (nfqueue copy range)
      [new Uint8Array(0), to, 'ip.version'],
      [p, { family: family === 4 ? 6 : 4, client: { address: addrs[family === 4 ? 6 : 4].client, port: 1 }, vip: { address: addrs[family === 4 ? 6 : 4].vip, port: 2 } }, 'ip.version'],
      [p, { ...to, client: { address: 'nope', port: 1 } }, 'client address'],
      [p, { ...to, vip: { address: a.vip, port: 70000 } }, 'vip port'],
    ];
    const udp = Uint8Array.from(p);
    if (family === 4) udp[9] = 17;
    else udp[6] = 17;
    cases.push([udp, to, family === 4 ? 'ip.protocol' : 'ip.nextHeader']);
    const offset = Uint8Array.from(p);
    offset[(family === 4 ? 20 : 40) + 12] = 0x40; // data offset 16 bytes
    cases.push([offset, to, 'tcp.offset']);
    for (const [input, target, field] of cases) {
      assert.throws(() => decapsulatePacket(input, target, { checksumPartial: false }), (e: unknown) => e instanceof DecapPacketError && e.field === field, field);
    }
  });

  test(`IPv${family}: property: arbitrary bytes never throw anything but DecapPacketError`, () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (b, partial) => {
      try {
        decapsulatePacket(b, to, { checksumPartial: partial });
      } catch (e) {
        assert.ok(e instanceof DecapPacketError, String(e));
      }
    }), { numRuns: 500 });
  });
}

test('IPv4: a fragment is refused', () => {
  const p = Uint8Array.from(emitTcpFrame({ family: 4, src: '192.0.2.1', dst: '192.0.2.2', sport: 1, dport: 2, flags: { ack: true } }).subarray(ETH));
  p[6] = 0x20; // more fragments
  assert.throws(() => decapsulatePacket(p, { family: 4, client: { address: '10.0.0.1', port: 1 }, vip: { address: '10.0.0.2', port: 2 } }, { checksumPartial: false }), /fragment/);
});
