// Flow-identifier decapsulation of one IP packet, in userspace: what bpf/backend.c step 1 does in the kernel, for
// packets that reached a back-end encapsulated before their mapping existed and were parked still encapsulated
// (docs/handoff.md, "Across L3"). The source address and port become the client's, the destination the VIP's; the
// IPv4 header checksum is recomputed (the kernel verified it on input) and the TCP checksum is updated
// incrementally (RFC 1624), so a segment that arrived corrupt stays corrupt and the stack still drops it. A packet
// whose checksum was never computed (CHECKSUM_PARTIAL: sent from this machine through a veth; nfqueue says
// NFQA_SKB_CSUMNOTREADY) gets a full checksum instead, since it goes back into the stack as CHECKSUM_NONE.
// Input: the whole packet from its IP header, as nfqueue copies it; a packet cut short cannot be restored.
import { parseIPv4, parseIPv6 } from './bytes.ts';
import { WireError } from './errors.ts';

const PROTO_TCP = 6;

export class DecapPacketError extends WireError {
  constructor(field: string, message: string) {
    super('BATON_ERR_DECAP_PACKET', field, `decap: ${message}`);
  }
}

/** The connection an encapsulated packet belongs to (its decap mapping's value). */
export interface DecapTarget {
  readonly family: 4 | 6;
  readonly client: { readonly address: string; readonly port: number };
  readonly vip: { readonly address: string; readonly port: number };
}

/** One's-complement sum of 16-bit big-endian words (odd tail padded with zero), not folded. */
function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) acc += (b[i]! << 8) | b[i + 1]!;
  if (i < end) acc += b[i]! << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

function address(family: 4 | 6, text: string, field: string): Uint8Array {
  const b = family === 4 ? parseIPv4(text) : parseIPv6(text);
  if (b === undefined) throw new DecapPacketError(field, `${field} ${JSON.stringify(text).slice(0, 64)} is not IPv${family}`);
  return b;
}

function port(p: number, field: string): number {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new DecapPacketError(field, `${field} ${p} is not 0..65535`);
  return p;
}

/**
 * A copy of `packet` restored to `to`'s tuple (client -> VIP), checksums fixed. `checksumPartial`: the TCP checksum
 * field holds only the pseudo-header sum (NFQA_SKB_CSUMNOTREADY); a full checksum is computed. Throws a
 * DecapPacketError naming the field when the packet is not a whole, unfragmented TCP packet of `to`'s family.
 */
export function decapsulatePacket(packet: Uint8Array, to: DecapTarget, o: { readonly checksumPartial: boolean }): Uint8Array {
  const client = address(to.family, to.client.address, 'client address');
  const vip = address(to.family, to.vip.address, 'vip address');
  const cport = port(to.client.port, 'client port');
  const vport = port(to.vip.port, 'vip port');
  if (packet.length < 1) throw new DecapPacketError('ip.version', 'empty packet');
  const version = packet[0]! >> 4;
  if (version !== to.family) throw new DecapPacketError('ip.version', `IP version ${version}, mapping is IPv${to.family}`);
  let l4: number;
  let end: number;
  let saddrAt: number;
  let daddrAt: number;
  if (to.family === 4) {
    if (packet.length < 20) throw new DecapPacketError('ip.length', `${packet.length} bytes, shorter than an IPv4 header`);
    l4 = (packet[0]! & 0x0f) * 4;
    end = (packet[2]! << 8) | packet[3]!;
    if (l4 < 20) throw new DecapPacketError('ip.ihl', `IPv4 header length ${l4}`);
    if (packet[9] !== PROTO_TCP) throw new DecapPacketError('ip.protocol', `protocol ${packet[9]}, not TCP`);
    if ((((packet[6]! << 8) | packet[7]!) & 0x3fff) !== 0) throw new DecapPacketError('ip.frag', 'an IPv4 fragment');
    saddrAt = 12;
    daddrAt = 16;
  } else {
    if (packet.length < 40) throw new DecapPacketError('ip.length', `${packet.length} bytes, shorter than an IPv6 header`);
    if (packet[6] !== PROTO_TCP) throw new DecapPacketError('ip.nextHeader', `next header ${packet[6]}, not TCP`);
    l4 = 40;
    end = 40 + ((packet[4]! << 8) | packet[5]!);
    saddrAt = 8;
    daddrAt = 24;
  }
  if (end > packet.length) throw new DecapPacketError('ip.length', `packet of ${end} bytes, ${packet.length} copied (cut short)`);
  if (end < l4 + 20) throw new DecapPacketError('ip.length', `packet of ${end} bytes has no whole TCP header`);
  const dataOffset = (packet[l4 + 12]! >> 4) * 4;
  if (dataOffset < 20 || l4 + dataOffset > end) throw new DecapPacketError('tcp.offset', `TCP data offset ${dataOffset}`);

  const out = Uint8Array.from(packet);
  const alen = to.family === 4 ? 4 : 16;
  // The words the TCP checksum covers that change: both addresses (pseudo-header) and both ports.
  const oldWords = sum16(packet, saddrAt, saddrAt + alen) + sum16(packet, daddrAt, daddrAt + alen) + sum16(packet, l4, l4 + 4);
  out.set(client, saddrAt);
  out.set(vip, daddrAt);
  out[l4] = cport >> 8;
  out[l4 + 1] = cport & 0xff;
  out[l4 + 2] = vport >> 8;
  out[l4 + 3] = vport & 0xff;
  const newWords = sum16(out, saddrAt, saddrAt + alen) + sum16(out, daddrAt, daddrAt + alen) + sum16(out, l4, l4 + 4);
  if (to.family === 4) {
    out[10] = 0;
    out[11] = 0;
    const hc = ~fold(sum16(out, 0, l4)) & 0xffff;
    out[10] = hc >> 8;
    out[11] = hc & 0xff;
  }
  let check: number;
  if (o.checksumPartial) {
    const segLen = end - l4;
    out[l4 + 16] = 0;
    out[l4 + 17] = 0;
    const pseudo = sum16(client, 0, alen) + sum16(vip, 0, alen) + PROTO_TCP + (segLen & 0xffff) + Math.floor(segLen / 0x10000);
    check = ~fold(sum16(out, l4, end, pseudo)) & 0xffff;
  } else {
    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), with the sums of old and new words folded to 16 bits first.
    const hc = (packet[l4 + 16]! << 8) | packet[l4 + 17]!;
    check = ~fold((~hc & 0xffff) + (~fold(oldWords) & 0xffff) + fold(newWords)) & 0xffff;
  }
  out[l4 + 16] = check >> 8;
  out[l4 + 17] = check & 0xff;
  return out;
}
