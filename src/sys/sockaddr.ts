// struct sockaddr_in / sockaddr_in6 layouts, declared once.
import { isIPv4, isIPv6 } from 'node:net';
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

export function ipv4Bytes(address: string): Buffer {
  if (!isIPv4(address)) throw new TypeError(`not an IPv4 address: ${address}`);
  return Buffer.from(address.split('.').map(Number));
}

export function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address)) throw new TypeError(`not an IPv6 address: ${address}`);
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4?.[1]) {
    const b = ipv4Bytes(v4[1]);
    tail = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    text = text.slice(0, -v4[1].length).replace(/:$/, '') || ':';
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head = '', rest] = text.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const hi = parse(head);
  const lo = rest === undefined ? [] : parse(rest);
  const words = [...hi, ...new Array<number>(8 - hi.length - lo.length - tail.length).fill(0), ...lo, ...tail];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

export function ipv6Text(b: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // Compress the longest run of zero words (RFC 5952), as Node prints addresses.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

export function encodeSockaddr(a: SockAddr): Buffer {
  if (a.family === 4) {
    const b = Buffer.alloc(IN_LEN);
    b.writeUInt16LE(C.AF_INET, 0);
    b.writeUInt16BE(a.port, 2);
    ipv4Bytes(a.address).copy(b, 4);
    return b;
  }
  const b = Buffer.alloc(IN6_LEN);
  b.writeUInt16LE(C.AF_INET6, 0);
  b.writeUInt16BE(a.port, 2);
  ipv6Bytes(a.address).copy(b, 8);
  return b;
}

export function decodeSockaddr(b: Buffer): SockAddr {
  const family = b.readUInt16LE(0);
  const port = b.readUInt16BE(2);
  if (family === C.AF_INET) return { family: 4, port, address: [...b.subarray(4, 8)].join('.') };
  if (family === C.AF_INET6) return { family: 6, port, address: ipv6Text(b.subarray(8, 24)) };
  throw new TypeError(`unsupported address family ${family}`);
}
