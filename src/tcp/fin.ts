// Re-creating a client's FIN on the back-end (half-closed clients). A socket can be put back into
// CLOSE_WAIT only by receiving a FIN: no repair option queues one. As CRIU does (soccr's send_fin),
// inject writes one bare FIN|ACK segment "from the client" to the VIP through a raw IP socket; the
// VIP is local, so it loops back to the injected socket, which takes it exactly as if the client
// had sent it (rcv_nxt + 1, end-of-input after the queued data, an ACK the client ignores).
// finSegment is pure (golden-tested; bytes from wire/packet.ts); sendFin does the I/O.
// The same path re-creates client data (lossless handoff): the bytes the front-end's socket took
// after the capture are sent as in-order segments, so the socket also merges whatever the client
// sent meanwhile and already sits in its out-of-order queue (a repair-mode queue write would not).
import { connect, rawSocket, send } from '../sys/socket.ts';
import { emitTcpFrame } from '../wire/packet.ts';
import type { TcpState } from '../wire/tcp-state.ts';
import { TCP_ERR, TcpStateError } from './errors.ts';
import { OwnedFd } from './fd.ts';

const ETH_HEADER = 14;

/**
 * The IP packet carrying the client's FIN: from client to VIP, sequence number recvSeq - 1 (the
 * FIN's own; recvSeq counts it), acknowledging what the front-end had sent and the client had
 * acknowledged (sendSeq - sendQueue.length), with the client's last window. No TCP options: a
 * segment without a timestamp skips PAWS and leaves the socket's ts_recent alone.
 */
export function finSegment(s: TcpState): Uint8Array {
  const frame = emitTcpFrame({
    family: s.family,
    src: s.client.address,
    dst: s.vip.address,
    sport: s.client.port,
    dport: s.vip.port,
    seq: (s.recvSeq - 1) >>> 0,
    ackNum: (s.sendSeq - s.sendQueue.length) >>> 0,
    flags: { fin: true, ack: true },
    window: Math.min(0xffff, Math.floor(s.window.sndWnd / 2 ** s.sndWscale)),
  });
  // A raw IP socket takes the packet without the Ethernet header.
  return frame.slice(ETH_HEADER);
}

/** Sends finSegment(s) to the VIP through a raw IP socket (needs CAP_NET_RAW). */
export function sendFin(s: TcpState): void {
  const packet = finSegment(s);
  const fd = new OwnedFd(rawSocket(s.family));
  try {
    // Port 0: a raw socket's destination is an address only (connect lets send() omit it).
    connect(fd.fd, { family: s.family, address: s.vip.address, port: 0 });
    const n = send(fd.fd, Buffer.from(packet.buffer, packet.byteOffset, packet.length), 0, 'send(raw FIN)');
    if (n !== packet.length) throw new TcpStateError(TCP_ERR.INJECT_FIN, `fin: raw send took ${n} of ${packet.length} bytes`);
  } finally {
    fd.close();
  }
}

/** Largest payload per re-created data segment (the VIP is on lo: no fragmentation below 64 KiB). */
const DATA_SEGMENT = 16 * 1024;

/** The IP packets carrying `data` as the client's bytes from sequence number `s.recvSeq` on. */
export function dataSegments(s: TcpState, data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += DATA_SEGMENT) {
    const frame = emitTcpFrame({
      family: s.family,
      src: s.client.address,
      dst: s.vip.address,
      sport: s.client.port,
      dport: s.vip.port,
      seq: (s.recvSeq + off) >>> 0,
      ackNum: (s.sendSeq - s.sendQueue.length) >>> 0,
      flags: { ack: true, psh: true },
      window: Math.min(0xffff, Math.floor(s.window.sndWnd / 2 ** s.sndWscale)),
      payload: data.subarray(off, Math.min(data.length, off + DATA_SEGMENT)),
    });
    out.push(frame.slice(ETH_HEADER));
  }
  return out;
}

/** Sends dataSegments(s, data) to the VIP through a raw IP socket, in order. */
export function sendData(s: TcpState, data: Uint8Array): void {
  const fd = new OwnedFd(rawSocket(s.family));
  try {
    connect(fd.fd, { family: s.family, address: s.vip.address, port: 0 });
    for (const packet of dataSegments(s, data)) {
      const n = send(fd.fd, Buffer.from(packet.buffer, packet.byteOffset, packet.length), 0, 'send(raw data)');
      if (n !== packet.length) throw new TcpStateError(TCP_ERR.INJECT_FIN, `data: raw send took ${n} of ${packet.length} bytes`);
    }
  } finally {
    fd.close();
  }
}

/** One byte the socket already has (sequence recvSeq + taken - 1): it answers with a duplicate ACK. */
export function sendDuplicate(s: TcpState, taken: number): void {
  const seq = (s.recvSeq + taken - 1) >>> 0;
  const fd = new OwnedFd(rawSocket(s.family));
  try {
    connect(fd.fd, { family: s.family, address: s.vip.address, port: 0 });
    const packet = emitTcpFrame({
      family: s.family,
      src: s.client.address,
      dst: s.vip.address,
      sport: s.client.port,
      dport: s.vip.port,
      seq,
      ackNum: (s.sendSeq - s.sendQueue.length) >>> 0,
      flags: { ack: true },
      window: Math.min(0xffff, Math.floor(s.window.sndWnd / 2 ** s.sndWscale)),
      payload: new Uint8Array(1),
    }).slice(ETH_HEADER);
    send(fd.fd, Buffer.from(packet.buffer, packet.byteOffset, packet.length), 0, 'send(raw duplicate)');
  } finally {
    fd.close();
  }
}
