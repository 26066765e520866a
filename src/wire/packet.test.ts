// The frame builder and its checksum reference: golden frames (checksums cross-checked with an independent
// implementation), parse of what was emitted, and detection of a corrupted byte.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { throwsWire } from './testing.ts';
import { emitTcpFrame, parseTcpFrame } from './packet.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('golden IPv4 and IPv6 frames', () => {
  const v4 = emitTcpFrame({ family: 4, src: '192.0.2.1', dst: '198.51.100.2', sport: 1234, dport: 80, seq: 1, ackNum: 2, flags: { ack: true, psh: true }, payload: new TextEncoder().encode('abc') });
  assert.equal(hex(v4), '02000000000202000000000108004500002b1234400040063c62c0000201c633640204d2005000000001000000025018fffffa0a0000616263');
  const v6 = emitTcpFrame({ family: 6, src: '2001:db8::1', dst: '2001:db8::2', sport: 1234, dport: 80, seq: 1, ackNum: 2, flags: { syn: true } });
  assert.equal(hex(v6), '02000000000202000000000186dd600000000014064020010db800000000000000000000000120010db800000000000000000000000204d2005000000001000000025002ffff4f490000');
});

test('parse verifies what emit built, and catches a flipped byte', () => {
  for (const family of [4, 6] as const) {
    const f = emitTcpFrame({ family, src: family === 4 ? '10.0.0.1' : 'fe80::1', dst: family === 4 ? '10.0.0.2' : 'fe80::2', sport: 1, dport: 2, flags: { ack: true }, payload: new Uint8Array([9, 8, 7]) });
    const p = parseTcpFrame(f);
    assert.deepEqual([p.family, p.sport, p.dport, p.ipChecksumOk, p.tcpChecksumOk], [family, 1, 2, true, true]);
    const bad = f.slice();
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0x40;
    assert.equal(parseTcpFrame(bad).tcpChecksumOk, false);
    if (family === 4) {
      const badIp = f.slice();
      badIp[14 + 8] = (badIp[14 + 8] ?? 0) ^ 1; // TTL
      assert.equal(parseTcpFrame(badIp).ipChecksumOk, false);
    }
  }
});

test('parse refuses truncated and non-TCP frames', () => {
  const f = emitTcpFrame({ family: 4, src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: {} });
  throwsWire(() => parseTcpFrame(f.subarray(0, 30)), 'BATON_ERR_PACKET', 'ip');
  throwsWire(() => parseTcpFrame(f.subarray(0, f.length - 1)), 'BATON_ERR_PACKET', 'ip.length');
  const udp = f.slice();
  udp[14 + 9] = 17;
  throwsWire(() => parseTcpFrame(udp), 'BATON_ERR_PACKET', 'ip.protocol');
});
