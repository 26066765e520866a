// Re-creating a client's FIN on the back-end (half-closed clients). A socket can be put back into
// CLOSE_WAIT only by receiving a FIN: no repair option queues one. As CRIU does (soccr's send_fin),
// inject writes one bare FIN|ACK segment "from the client" to the VIP through a raw IP socket; the
// VIP is local, so it loops back to the injected socket, which takes it exactly as if the client
// had sent it (rcv_nxt + 1, end-of-input after the queued data, an ACK the client ignores).
// finSegment is pure (golden-tested); sendFin does the I/O.
import * as C from '../sys/constants.ts';
import { connect, rawSocket, send } from '../sys/socket.ts';
import { parseIPv4, parseIPv6 } from '../wire/bytes.ts';
import type { TcpState } from '../wire/tcp-state.ts';
import { TcpStateError } from './errors.ts';
import { OwnedFd } from './fd.ts';

const TCP_HEADER = 20;
const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
const FIN = 0x01;
const ACK = 0x10;
const TTL = 64;

function addr(family: 4 | 6, text: string, name: string): Uint8Array {
  const a = family === 4 ? parseIPv4(text) : parseIPv6(text);
  if (a === undefined) throw new TcpStateError('BATON_ERR_INJECT_FIN', `fin: ${name} ${JSON.stringify(text)} is not IPv${family}`);
  return a;
}

/** Ones'-complement sum of 16-bit big-endian words (RFC 1071), not yet folded or inverted. */
function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  let s = acc;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  return s;
}

function fold(s: number): number {
  let x = s;
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000);
  return ~x & 0xffff;
}

/**
 * The IP packet carrying the client's FIN: from client to VIP, sequence number recvSeq - 1 (the
 * FIN's own; recvSeq counts it), acknowledging what the front-end had sent and the client had
 * acknowledged (sendSeq - sendQueue.length), with the client's last window. No TCP options: a
 * segment without a timestamp skips PAWS and leaves the socket's ts_recent alone.
 */
export function finSegment(s: TcpState): Uint8Array {
  const ipLen = s.family === 4 ? IPV4_HEADER : IPV6_HEADER;
  const out = new Uint8Array(ipLen + TCP_HEADER);
  const dv = new DataView(out.buffer);
  const src = addr(s.family, s.client.address, 'client');
  const dst = addr(s.family, s.vip.address, 'vip');
  if (s.family === 4) {
    dv.setUint8(0, 0x45); // version 4, 5-word header
    dv.setUint16(2, out.length);
    dv.setUint16(6, 0x4000); // don't fragment
    dv.setUint8(8, TTL);
    dv.setUint8(9, C.IPPROTO_TCP);
    out.set(src, 12);
    out.set(dst, 16);
    dv.setUint16(10, fold(sum16(out, 0, IPV4_HEADER)));
  } else {
    dv.setUint32(0, 0x60000000); // version 6, no traffic class, no flow label
    dv.setUint16(4, TCP_HEADER);
    dv.setUint8(6, C.IPPROTO_TCP);
    dv.setUint8(7, TTL);
    out.set(src, 8);
    out.set(dst, 24);
  }
  const t = ipLen;
  dv.setUint16(t, s.client.port);
  dv.setUint16(t + 2, s.vip.port);
  dv.setUint32(t + 4, (s.recvSeq - 1) >>> 0);
  dv.setUint32(t + 8, (s.sendSeq - s.sendQueue.length) >>> 0);
  dv.setUint8(t + 12, (TCP_HEADER / 4) << 4);
  dv.setUint8(t + 13, FIN | ACK);
  dv.setUint16(t + 14, Math.min(0xffff, Math.floor(s.window.sndWnd / 2 ** s.sndWscale)));
  // Pseudo-header: addresses, protocol, TCP length (RFC 793 / RFC 8200 8.1), then the segment.
  let ps = sum16(src, 0, src.length, sum16(dst, 0, dst.length));
  ps += C.IPPROTO_TCP + TCP_HEADER;
  dv.setUint16(t + 16, fold(sum16(out, t, out.length, ps)));
  return out;
}

/** Sends finSegment(s) to the VIP through a raw IP socket (needs CAP_NET_RAW). */
export function sendFin(s: TcpState): void {
  const packet = finSegment(s);
  const fd = new OwnedFd(rawSocket(s.family));
  try {
    // Port 0: a raw socket's destination is an address only (connect lets send() omit it).
    connect(fd.fd, { family: s.family, address: s.vip.address, port: 0 });
    const n = send(fd.fd, Buffer.from(packet.buffer, packet.byteOffset, packet.length), 0, 'send(raw FIN)');
    if (n !== packet.length) throw new TcpStateError('BATON_ERR_INJECT_FIN', `fin: raw send took ${n} of ${packet.length} bytes`);
  } finally {
    fd.close();
  }
}
