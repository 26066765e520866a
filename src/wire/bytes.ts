// Small byte helpers shared by the wire codecs: IP address text <-> bytes, and CRC-32C.
// Address text is what Node's net module prints (libuv's inet_ntop): IPv4 dotted decimal;
// IPv6 lower-case, the longest run (first on ties) of two or more zero groups written as
// "::", and an embedded IPv4 tail for IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible
// (::a.b.c.d) addresses. Parsing accepts any RFC 4291 text form (no zone ids, no brackets),
// so parse -> format canonicalises.

import { crc32c as nativeCrc32c } from '@node-rs/crc32';

const DOT = 0x2e;
const ZERO = 0x30;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Dotted-decimal IPv4 to 4 bytes; undefined if not exactly a.b.c.d with 0..255 and no leading zeros. One pass
 * over the characters, no split or regular expression: it runs for every flow-map key and blob (several times
 * per handoff).
 */
export function parseIPv4(text: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let part = 0;
  let n = 0;
  let digits = 0;
  // One past the end reads as a dot, closing the last octet.
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || part > 3) return undefined;
      out[part++] = n;
      n = 0;
      digits = 0;
    } else {
      if (c < ZERO || c > ZERO + 9 || (digits > 0 && n === 0)) return undefined;
      n = n * 10 + (c - ZERO);
      if (++digits > 3 || n > 255) return undefined;
    }
  }
  return part === 4 ? out : undefined;
}

/** IPv6 text (RFC 4291 forms, optional embedded IPv4 tail) to 16 bytes; undefined if invalid. */
export function parseIPv6(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = groups(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1] ?? '', true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const out = new Uint8Array(16);
  head.forEach((g, i) => writeU16(out, i * 2, g));
  tail.forEach((g, i) => writeU16(out, (8 - tail.length + i) * 2, g));
  return out;
}

/** Hex groups of one side of "::"; the last may be dotted IPv4 if `last` (two groups). */
function groups(side: string, last: boolean): number[] | undefined {
  if (side === '') return [];
  const parts = side.split(':');
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? '';
    if (last && i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIPv4(p);
      if (v4 === undefined) return undefined;
      out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
    } else {
      if (!HEX_GROUP.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
  }
  return out;
}

function writeU16(out: Uint8Array, off: number, v: number): void {
  out[off] = v >>> 8;
  out[off + 1] = v & 0xff;
}

/** 4 bytes at `offset` as dotted decimal. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset] ?? 0}.${bytes[offset + 1] ?? 0}.${bytes[offset + 2] ?? 0}.${bytes[offset + 3] ?? 0}`;
}

/** 16 bytes at `offset` as IPv6 text, exactly as Node's net module prints it. */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(((bytes[offset + i * 2] ?? 0) << 8) | (bytes[offset + i * 2 + 1] ?? 0));
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i !== 0) s += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      return s + formatIPv4(bytes, offset + 12);
    }
    s += (w[i] ?? 0).toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) s += ':';
  return s;
}

/** The parts, one after another, in a new array (`total`: their summed length, when the caller has it). */
export function concatBytes(parts: readonly Uint8Array[], total?: number): Uint8Array {
  let n = total ?? 0;
  if (total === undefined) for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** True if the 16 bytes at `offset` are an IPv4-mapped IPv6 address (::ffff:0:0/96). */
export function isIPv4Mapped(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF. A blob carries the client
// bytes the front-end already received (an upload's first ~100-200 KiB) and is checked on both sides of the handoff
// while the client waits, so this is native code (@node-rs/crc32, napi-rs): 124 KiB takes 26 us against 202 us for
// slicing-by-8 in JavaScript, and 0.21 against 0.29 us for a 200-byte blob (this VM, idle, 1,000 rounds each).
/** CRC-32C of bytes[start, end). crc32c('123456789') === 0xe3069283. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return nativeCrc32c(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end)) >>> 0;
}
