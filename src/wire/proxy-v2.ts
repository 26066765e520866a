// PROXY protocol version 2 (HAProxy, proxy-protocol.txt §2.2): the binary header an upstream
// splice writes first so an unmodified server learns the real client address.
//
//   off  size  field
//     0    12  signature \r\n\r\n\0\r\nQUIT\n
//    12     1  version (high nibble, 2) | command (low nibble: 0 LOCAL, 1 PROXY)
//    13     1  address family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
//              | transport (low nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM)
//    14     2  length of what follows (addresses + TLVs), big-endian
//    16        INET: src addr 4, dst addr 4, src port 2, dst port 2   (12 bytes)
//              INET6: src addr 16, dst addr 16, src port 2, dst port 2 (36 bytes)
//              then TLVs: type u8, length u16, value
//
// baton emits only PROXY over TCP/IPv4 and TCP/IPv6. The decoder accepts LOCAL and
// UNSPEC (addresses absent: use the connection's real endpoints), refuses UDP and UNIX
// (unsupported) and undefined values, and returns TLVs raw.

import { WireError } from './errors.ts';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './bytes.ts';
import type { AddressFamily, Endpoint } from './tcp-state.ts';

export interface ProxyV2Addresses {
  readonly family: AddressFamily;
  readonly source: Endpoint;
  readonly destination: Endpoint;
}

export interface ProxyV2Tlv {
  readonly type: number;
  readonly value: Uint8Array;
}

export interface ProxyV2Header {
  readonly command: 'local' | 'proxy';
  /** For PROXY over TCP/IPv4 or TCP/IPv6; undefined for LOCAL and UNSPEC (use the real endpoints). */
  readonly addresses: ProxyV2Addresses | undefined;
  /** TLVs after the addresses, in order, uninterpreted (values are copies). */
  readonly tlvs: readonly ProxyV2Tlv[];
}

export type ProxyV2Result =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'ok'; readonly header: ProxyV2Header; readonly byteLength: number };

export const PROXY_V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);

export const PROXY_ERR = {
  SIGNATURE: 'BATON_ERR_PROXY_SIGNATURE',
  VERSION: 'BATON_ERR_PROXY_VERSION',
  COMMAND: 'BATON_ERR_PROXY_COMMAND',
  FAMILY: 'BATON_ERR_PROXY_FAMILY',
  LENGTH: 'BATON_ERR_PROXY_LENGTH',
  TLV: 'BATON_ERR_PROXY_TLV',
  ADDRESS: 'BATON_ERR_PROXY_ADDRESS',
  PORT: 'BATON_ERR_PROXY_PORT',
} as const;

const FIELD = {
  signature: { at: 0, size: 12 },
  verCmd: { at: 12, size: 1 },
  famProto: { at: 13, size: 1 },
  length: { at: 14, size: 2 },
} as const;
const HEADER_LENGTH = 16;
const VERSION_2 = 0x20;
const CMD_LOCAL = 0x0;
const CMD_PROXY = 0x1;
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;
const UNSPEC = 0x00;
/** Defined values of byte 13 that baton does not handle: UDP over IPv4/IPv6, UNIX stream/datagram. */
const UNSUPPORTED = new Set([0x12, 0x22, 0x31, 0x32]);
const ADDR_BLOCK = { 4: { addr: 4, total: 12 }, 6: { addr: 16, total: 36 } } as const;

/** A PROXY (command 1), STREAM over INET/INET6 header without TLVs. Throws WireError on bad input. */
export function encodeProxyV2(a: ProxyV2Addresses): Uint8Array {
  if (a.family !== 4 && a.family !== 6) {
    throw new WireError(PROXY_ERR.FAMILY, 'family', `proxy v2: invalid family ${String(a.family)} (want 4 or 6)`);
  }
  const block = ADDR_BLOCK[a.family];
  const out = new Uint8Array(HEADER_LENGTH + block.total);
  const dv = new DataView(out.buffer);
  out.set(PROXY_V2_SIGNATURE, FIELD.signature.at);
  dv.setUint8(FIELD.verCmd.at, VERSION_2 | CMD_PROXY);
  dv.setUint8(FIELD.famProto.at, a.family === 4 ? TCP_OVER_IPV4 : TCP_OVER_IPV6);
  dv.setUint16(FIELD.length.at, block.total);
  out.set(addressBytes(a.family, a.source.address, 'source.address'), HEADER_LENGTH);
  out.set(addressBytes(a.family, a.destination.address, 'destination.address'), HEADER_LENGTH + block.addr);
  dv.setUint16(HEADER_LENGTH + 2 * block.addr, checkPort(a.source.port, 'source.port'));
  dv.setUint16(HEADER_LENGTH + 2 * block.addr + 2, checkPort(a.destination.port, 'destination.port'));
  return out;
}

/**
 * Reads a PROXY v2 header from the start of `buf`. 'incomplete' while the bytes so far are a
 * valid prefix; `byteLength` is where the proxied stream starts. Throws WireError otherwise.
 */
export function decodeProxyV2(buf: Uint8Array): ProxyV2Result {
  for (let i = 0; i < PROXY_V2_SIGNATURE.length && i < buf.length; i++) {
    if (buf[i] !== PROXY_V2_SIGNATURE[i]) throw new WireError(PROXY_ERR.SIGNATURE, 'signature', 'proxy v2: bad signature');
  }
  if (buf.length > FIELD.verCmd.at) {
    const verCmd = buf[FIELD.verCmd.at] ?? 0;
    if ((verCmd & 0xf0) !== VERSION_2) {
      throw new WireError(PROXY_ERR.VERSION, 'version', `proxy v2: unsupported version ${verCmd >>> 4} (supported: 2)`);
    }
    const cmd = verCmd & 0x0f;
    if (cmd !== CMD_LOCAL && cmd !== CMD_PROXY) throw new WireError(PROXY_ERR.COMMAND, 'command', `proxy v2: unknown command ${cmd}`);
  }
  if (buf.length > FIELD.famProto.at) {
    const fp = buf[FIELD.famProto.at] ?? 0;
    if (UNSUPPORTED.has(fp)) {
      throw new WireError(PROXY_ERR.FAMILY, 'family', `proxy v2: unsupported family/transport 0x${fp.toString(16)}`);
    }
    if (fp !== UNSPEC && fp !== TCP_OVER_IPV4 && fp !== TCP_OVER_IPV6) {
      throw new WireError(PROXY_ERR.FAMILY, 'family', `proxy v2: invalid family/transport 0x${fp.toString(16)}`);
    }
  }
  if (buf.length < HEADER_LENGTH) return { kind: 'incomplete' };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const command = (dv.getUint8(FIELD.verCmd.at) & 0x0f) === CMD_PROXY ? 'proxy' : 'local';
  const fp = dv.getUint8(FIELD.famProto.at);
  const len = dv.getUint16(FIELD.length.at);
  const family: AddressFamily | undefined = fp === TCP_OVER_IPV4 ? 4 : fp === TCP_OVER_IPV6 ? 6 : undefined;
  const blockLen = family === undefined ? 0 : ADDR_BLOCK[family].total;
  if (len < blockLen) throw new WireError(PROXY_ERR.LENGTH, 'length', `proxy v2: length ${len} shorter than the ${blockLen}-byte address block`);
  const byteLength = HEADER_LENGTH + len;
  if (buf.length < byteLength) return { kind: 'incomplete' };

  let addresses: ProxyV2Addresses | undefined;
  if (family !== undefined && command === 'proxy') {
    const n = ADDR_BLOCK[family].addr;
    const fmt = family === 4 ? formatIPv4 : formatIPv6;
    const at = HEADER_LENGTH;
    addresses = {
      family,
      source: { address: fmt(buf, at), port: dv.getUint16(at + 2 * n) },
      destination: { address: fmt(buf, at + n), port: dv.getUint16(at + 2 * n + 2) },
    };
  }
  // UNSPEC: the address block, if any, has no defined size, so TLVs cannot be located.
  const tlvs = family === undefined ? [] : readTlvs(buf, HEADER_LENGTH + blockLen, byteLength);
  return { kind: 'ok', header: { command, addresses, tlvs }, byteLength };
}

function readTlvs(buf: Uint8Array, start: number, end: number): ProxyV2Tlv[] {
  const out: ProxyV2Tlv[] = [];
  for (let at = start; at < end; ) {
    if (end - at < 3) throw new WireError(PROXY_ERR.TLV, `tlvs[${out.length}]`, 'proxy v2: truncated TLV header');
    const type = buf[at] ?? 0;
    const len = ((buf[at + 1] ?? 0) << 8) | (buf[at + 2] ?? 0);
    if (end - at - 3 < len) throw new WireError(PROXY_ERR.TLV, `tlvs[${out.length}].length`, `proxy v2: TLV 0x${type.toString(16)} overruns the header`);
    out.push({ type, value: buf.slice(at + 3, at + 3 + len) });
    at += 3 + len;
  }
  return out;
}

function addressBytes(family: AddressFamily, text: string, field: string): Uint8Array {
  const b = family === 4 ? parseIPv4(text) : parseIPv6(text);
  if (b === undefined) throw new WireError(PROXY_ERR.ADDRESS, field, `proxy v2: ${field} ${JSON.stringify(text)} is not IPv${family}`);
  return b;
}

function checkPort(port: number, field: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new WireError(PROXY_ERR.PORT, field, `proxy v2: ${field} ${port} (want 0..65535)`);
  }
  return port;
}
