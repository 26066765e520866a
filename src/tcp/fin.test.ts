// The re-created FIN: golden bytes for IPv4, checksums verified independently for both families,
// the sequence/ack/window arithmetic (wrap-around, window scaling). Pure; no root needed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TcpState } from '../wire/tcp-state.ts';
import { finSegment } from './fin.ts';

const STATE: TcpState = {
  family: 4,
  client: { address: '10.77.0.2', port: 40000 },
  vip: { address: '10.77.0.100', port: 80 },
  sendSeq: 0x11223344,
  recvSeq: 0x55667789,
  window: { sndWl1: 0x55667700, sndWnd: 64512, maxWindow: 64512, rcvWnd: 65536, rcvWup: 0x55667789 },
  mss: 1460,
  sndWscale: 10,
  rcvWscale: 7,
  sackPermitted: true,
  timestamps: true,
  finReceived: true,
  tsVal: 1,
  recvQueue: new Uint8Array(18),
  sendQueue: new Uint8Array(4),
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** RFC 1071 sum over the words; a correct checksum makes the folded sum 0xffff. */
function onesSum(parts: readonly Uint8Array[]): number {
  let s = 0;
  for (const b of parts) for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudo(src: Uint8Array, dst: Uint8Array, tcpLen: number): Uint8Array {
  const p = new Uint8Array(src.length + dst.length + 4);
  p.set(src, 0);
  p.set(dst, src.length);
  new DataView(p.buffer).setUint16(p.length - 2, tcpLen);
  p[p.length - 3] = 6;
  return p;
}

describe('finSegment', () => {
  it('builds the IPv4 FIN|ACK the client would have sent (golden bytes)', () => {
    const p = finSegment(STATE);
    assert.equal(
      hex(p),
      [
        '4500 0028 1234 4000 4006 139d 0a4d0002 0a4d0064', // IPv4: len 40, id, DF, TTL 64, TCP, checksum
        '9c40 0050', // ports 40000 -> 80
        '55667788', // seq: recvSeq - 1 (the FIN's own number)
        '11223340', // ack: sendSeq - sendQueue.length (what the client had acknowledged)
        '5011 003f', // 5-word header, FIN|ACK, window 64512 >> 10 = 63
        'ecb3 0000', // checksum (checked with Python's RFC 1071 sum), urgent pointer
      ].join('').replace(/\s+/g, ''),
    );
    assert.equal(onesSum([p.subarray(0, 20)]), 0xffff, 'IPv4 header checksum');
    assert.equal(onesSum([pseudo(p.subarray(12, 16), p.subarray(16, 20), 20), p.subarray(20)]), 0xffff, 'TCP checksum');
  });

  it('wraps sequence numbers and caps the window field', () => {
    const p = finSegment({ ...STATE, recvSeq: 0, sendSeq: 2, sendQueue: new Uint8Array(5), sndWscale: 0, window: { ...STATE.window, sndWnd: 1 << 20 } });
    const dv = new DataView(p.buffer);
    assert.equal(dv.getUint32(24), 0xffffffff);
    assert.equal(dv.getUint32(28), 0xfffffffd);
    assert.equal(dv.getUint16(34), 0xffff);
  });

  it('builds an IPv6 FIN with a valid checksum over the IPv6 pseudo-header', () => {
    const p = finSegment({ ...STATE, family: 6, client: { address: '2001:db8::2', port: 40000 }, vip: { address: '2001:db8::64', port: 443 } });
    assert.equal(p.length, 60);
    assert.equal(hex(p.subarray(0, 8)), '6000000000140640'); // version 6, payload 20, next header TCP, hop limit 64
    assert.equal(onesSum([pseudo(p.subarray(8, 24), p.subarray(24, 40), 20), p.subarray(40)]), 0xffff);
    assert.equal(new DataView(p.buffer).getUint16(42), 443);
  });

  it('refuses an address of the wrong family', () => {
    assert.throws(() => finSegment({ ...STATE, client: { address: '::1', port: 1 } }), /src "::1" is not IPv4/);
  });
});
