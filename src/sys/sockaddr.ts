// struct sockaddr_in / sockaddr_in6 layouts, declared once. Address text <-> bytes comes from
// wire/bytes.ts, so kernel addresses print exactly as Node's net module prints them.
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../wire/bytes.ts';
import * as C from './constants.ts';

export interface SockAddr {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

// sockaddr_in: u16 family, u16be port, 4 bytes addr, 8 zero. sockaddr_in6: u16 family,
// u16be port, u32 flowinfo, 16 bytes addr, u32 scope id.
const IN_LEN = 16;
const IN6_LEN = 28;

export function encodeSockaddr(a: SockAddr): Buffer {
  const raw = a.family === 4 ? parseIPv4(a.address) : parseIPv6(a.address);
  if (!raw) throw new TypeError(`not an IPv${a.family} address: ${a.address}`);
  const b = Buffer.alloc(a.family === 4 ? IN_LEN : IN6_LEN);
  b.writeUInt16LE(a.family === 4 ? C.AF_INET : C.AF_INET6, 0);
  b.writeUInt16BE(a.port, 2);
  b.set(raw, a.family === 4 ? 4 : 8);
  return b;
}

export function decodeSockaddr(b: Buffer): SockAddr {
  const family = b.readUInt16LE(0);
  const port = b.readUInt16BE(2);
  if (family === C.AF_INET) return { family: 4, port, address: formatIPv4(b, 4) };
  if (family === C.AF_INET6) return { family: 6, port, address: formatIPv6(b, 8) };
  throw new TypeError(`unsupported address family ${family}`);
}
