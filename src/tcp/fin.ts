// Re-creating a client's FIN on the back-end (half-closed clients). A socket can be put back into
// CLOSE_WAIT only by receiving a FIN: no repair option queues one. As CRIU does (soccr's send_fin),
// inject writes one bare FIN|ACK segment "from the client" to the VIP through a raw IP socket; the
// VIP is local, so it loops back to the injected socket, which takes it exactly as if the client
// had sent it (rcv_nxt + 1, end-of-input after the queued data, an ACK the client ignores).
// finSegment is pure (golden-tested; bytes from wire/packet.ts); sendFin does the I/O.
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
  const n = sendRaw(s.family, s.vip.address, packet, 'send(raw FIN)');
  if (n !== packet.length) throw new TcpStateError(TCP_ERR.INJECT_FIN, `fin: raw send took ${n} of ${packet.length} bytes`);
}

/** Sends one IP packet to `to` through a raw IP socket opened for it (needs CAP_NET_RAW); returns the bytes sent. */
function sendRaw(family: 4 | 6, to: string, packet: Uint8Array, label: string): number {
  const fd = new OwnedFd(rawSocket(family));
  try {
    // Port 0: a raw socket's destination is an address only (connect lets send() omit it).
    connect(fd.fd, { family, address: to, port: 0 });
    return send(fd.fd, Buffer.from(packet.buffer, packet.byteOffset, packet.length), 0, label);
  } finally {
    fd.close();
  }
}

/** A bare RST from `from` to `to` with sequence number `seq`, as an IP packet (no Ethernet header). */
export function resetSegment(family: 4 | 6, from: { readonly address: string; readonly port: number }, to: { readonly address: string; readonly port: number }, seq: number): Uint8Array {
  return emitTcpFrame({ family, src: from.address, dst: to.address, sport: from.port, dport: to.port, seq: seq >>> 0, ackNum: 0, flags: { rst: true }, window: 0 }).slice(ETH_HEADER);
}

/**
 * Resets a client that has no connection here (the guard's unclaimed tuples): a RST from the VIP, through a raw IP
 * socket, routed like the back-end's answers. `seq`: the client's own acknowledgment number, so it takes it.
 */
export function sendReset(family: 4 | 6, vip: { readonly address: string; readonly port: number }, client: { readonly address: string; readonly port: number }, seq: number): void {
  sendRaw(family, client.address, resetSegment(family, vip, client, seq), 'send(raw RST)');
}
