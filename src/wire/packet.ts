// Ethernet/IPv4|IPv6/TCP frames as bytes, for the data-plane fixtures and benchmarks: emit a frame with correct
// checksums, parse one back (bounded, refusing what it does not understand), and verify checksums by a full
// recompute (RFC 1071 sum over the IPv4 header; over the TCP pseudo-header and segment). A reference to check
// the kernel programs' incremental checksum updates against, not a general packet library.
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './bytes.ts';
import { WireError } from './errors.ts';

const ETH_LEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const PROTO_TCP = 6;

export interface TcpFlags {
  readonly fin?: boolean;
  readonly syn?: boolean;
  readonly rst?: boolean;
  readonly psh?: boolean;
  readonly ack?: boolean;
}

export interface TcpFrame {
  readonly family: 4 | 6;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly seq?: number;
  readonly ackNum?: number;
  readonly flags: TcpFlags;
  readonly window?: number;
  readonly payload?: Uint8Array;
  /** 6 bytes each; default 02:00:00:00:00:01 -> 02:00:00:00:00:02. */
  readonly srcMac?: Uint8Array;
  readonly dstMac?: Uint8Array;
  readonly ttl?: number;
}

function addr(family: 4 | 6, text: string, field: string): Uint8Array {
  const b = family === 4 ? parseIPv4(text) : parseIPv6(text);
  if (!b) throw new WireError('BATON_ERR_PACKET_ADDRESS', field, `packet: ${field} ${JSON.stringify(text)} is not IPv${family}`);
  return b;
}

/** One's-complement sum of 16-bit big-endian words (odd tail padded with zero), not folded. */
function sum16(bytes: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i + 1 < end; i += 2) acc += ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
  if ((end - start) % 2 === 1) acc += (bytes[end - 1] ?? 0) << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/** Pseudo-header sum: addresses, protocol and segment length. The IPv4 and IPv6 forms sum to the same value
 * (IPv6's 32-bit length and next header are the same words when the length is below 2^16). */
function pseudoSum(src: Uint8Array, dst: Uint8Array, segLen: number): number {
  return sum16(src, 0, src.length) + sum16(dst, 0, dst.length) + PROTO_TCP + segLen;
}

/** The TCP checksum field value for a segment (its checksum field taken as zero). */
function tcpChecksum(src: Uint8Array, dst: Uint8Array, seg: Uint8Array): number {
  return ~fold(sum16(seg, 18, seg.length, sum16(seg, 0, 16, pseudoSum(src, dst, seg.length)))) & 0xffff;
}

/** A segment verifies when the sum over pseudo-header and segment, checksum included, is all ones (this accepts
 * both one's-complement zeros, 0x0000 and 0xffff, that incremental updates may leave). */
function tcpChecksumOk(src: Uint8Array, dst: Uint8Array, seg: Uint8Array): boolean {
  return fold(sum16(seg, 0, seg.length, pseudoSum(src, dst, seg.length))) === 0xffff;
}

/** Builds an Ethernet frame with an IP (no options / no extension headers) and TCP (no options) header. */
export function emitTcpFrame(f: TcpFrame): Uint8Array {
  const src = addr(f.family, f.src, 'src');
  const dst = addr(f.family, f.dst, 'dst');
  const payload = f.payload ?? new Uint8Array(0);
  const ipLen = f.family === 4 ? 20 : 40;
  const segLen = 20 + payload.length;
  const out = new Uint8Array(ETH_LEN + ipLen + segLen);
  const v = new DataView(out.buffer);
  out.set(f.dstMac ?? [2, 0, 0, 0, 0, 2], 0);
  out.set(f.srcMac ?? [2, 0, 0, 0, 0, 1], 6);
  v.setUint16(12, f.family === 4 ? ETH_P_IP : ETH_P_IPV6);
  const ip = ETH_LEN;
  if (f.family === 4) {
    out[ip] = 0x45;
    v.setUint16(ip + 2, ipLen + segLen);
    v.setUint16(ip + 4, 0x1234); // id
    v.setUint16(ip + 6, 0x4000); // DF
    out[ip + 8] = f.ttl ?? 64;
    out[ip + 9] = PROTO_TCP;
    out.set(src, ip + 12);
    out.set(dst, ip + 16);
    v.setUint16(ip + 10, ~fold(sum16(out, ip, ip + 20)) & 0xffff);
  } else {
    v.setUint32(ip, 0x60000000);
    v.setUint16(ip + 4, segLen);
    out[ip + 6] = PROTO_TCP;
    out[ip + 7] = f.ttl ?? 64;
    out.set(src, ip + 8);
    out.set(dst, ip + 24);
  }
  const t = ip + ipLen;
  v.setUint16(t, f.sport);
  v.setUint16(t + 2, f.dport);
  v.setUint32(t + 4, (f.seq ?? 1000) >>> 0);
  v.setUint32(t + 8, (f.ackNum ?? 0) >>> 0);
  out[t + 12] = 5 << 4;
  const fl = f.flags;
  out[t + 13] = (fl.fin ? 1 : 0) | (fl.syn ? 2 : 0) | (fl.rst ? 4 : 0) | (fl.psh ? 8 : 0) | (fl.ack ? 16 : 0);
  v.setUint16(t + 14, f.window ?? 65535);
  out.set(payload, t + 20);
  v.setUint16(t + 16, tcpChecksum(src, dst, out.subarray(t)));
  return out;
}

export interface ParsedTcpFrame {
  readonly family: 4 | 6;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /** The IPv4 header checksum verifies (always true for IPv6, which has none). */
  readonly ipChecksumOk: boolean;
  /** The TCP checksum verifies over the pseudo-header and the segment. */
  readonly tcpChecksumOk: boolean;
}

const bad = (field: string, msg: string) => new WireError('BATON_ERR_PACKET', field, `packet: ${msg}`);

/** Parses an Ethernet/IP/TCP frame and checks its checksums by a full recompute. */
export function parseTcpFrame(b: Uint8Array): ParsedTcpFrame {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < ETH_LEN) throw bad('eth', 'short frame');
  const proto = v.getUint16(12);
  const ip = ETH_LEN;
  let family: 4 | 6;
  let src: Uint8Array;
  let dst: Uint8Array;
  let l4: number;
  let end: number;
  let ipChecksumOk = true;
  if (proto === ETH_P_IP) {
    if (b.length < ip + 20) throw bad('ip', 'short IPv4 header');
    const ihl = ((b[ip] ?? 0) & 0xf) * 4;
    if (ihl < 20 || b.length < ip + ihl) throw bad('ip.ihl', 'bad IPv4 header length');
    if (b[ip + 9] !== PROTO_TCP) throw bad('ip.protocol', 'not TCP');
    family = 4;
    src = b.subarray(ip + 12, ip + 16);
    dst = b.subarray(ip + 16, ip + 20);
    l4 = ip + ihl;
    end = ip + v.getUint16(ip + 2);
    ipChecksumOk = fold(sum16(b, ip, ip + ihl)) === 0xffff;
  } else if (proto === ETH_P_IPV6) {
    if (b.length < ip + 40) throw bad('ip', 'short IPv6 header');
    if (b[ip + 6] !== PROTO_TCP) throw bad('ip.nextHeader', 'not TCP');
    family = 6;
    src = b.subarray(ip + 8, ip + 24);
    dst = b.subarray(ip + 24, ip + 40);
    l4 = ip + 40;
    end = l4 + v.getUint16(ip + 4);
  } else {
    throw bad('eth.type', `ethertype ${proto.toString(16)}`);
  }
  if (end > b.length || end < l4 + 20) throw bad('ip.length', 'length beyond frame');
  const seg = b.subarray(l4, end);
  return {
    family,
    src: family === 4 ? formatIPv4(src) : formatIPv6(src),
    dst: family === 4 ? formatIPv4(dst) : formatIPv6(dst),
    sport: v.getUint16(l4),
    dport: v.getUint16(l4 + 2),
    ipChecksumOk,
    tcpChecksumOk: tcpChecksumOk(src, dst, seg),
  };
}
