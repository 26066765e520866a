// The handoff blob: the versioned binary record a front-end sends to a back-end agent so the
// agent can re-create a client's TCP connection (DESIGN.md, "The blob").
//
// Layout, version 1. All integers are unsigned, network byte order (big-endian).
//
//   off  size  field
//     0     3  magic "BTN"
//     3     1  version (1)
//     4     1  flags: incompatible-feature bits; v1 defines none, a v1 reader refuses any set bit
//     5     1  family (4 | 6)
//     6     1  options: bit 0 SACK permitted, bit 1 timestamps, bit 2 FIN received (the client half-closed;
//              recvSeq counts the FIN); other bits must be 0. A reader that ignored bit 2 would restore an
//              open connection one sequence number short, so readers refuse option bits they do not know.
//     7     1  reserved, must be 0
//     8     4  totalLength: whole blob in bytes, checksum included
//    12     8  handoffId
//    20     4  flowId
//    24    16  client address (IPv6; family 4 stores IPv4-mapped ::ffff:a.b.c.d)
//    40    16  vip address (same rule)
//    56     2  client port
//    58     2  vip port
//    60     2  mss (1..65535)
//    62     1  sndWscale (0..14)
//    63     1  rcvWscale (0..14)
//    64     4  sendSeq
//    68     4  recvSeq
//    72    20  window: sndWl1, sndWnd, maxWindow, rcvWnd, rcvWup (4 each)
//    92     4  tsVal
//    96     4  recvQueue length (R)
//   100     4  sendQueue length (S)
//   104     R  recvQueue bytes
//   104+R   S  sendQueue bytes
//   ...        extensions (TLVs), up to totalLength - 4
//   end-4   4  CRC-32C (Castagnoli) of every byte before it
//
// Extension rule. Fields that old readers may ignore go in the TLV tail, never in a new
// version: each TLV is type (u8), tlvFlags (u8), length (u16), value. tlvFlags bit 0 is
// SKIPPABLE; the other bits are reserved (writers set 0, readers ignore them). A v1 reader
// skips a TLV marked SKIPPABLE and refuses any other (v1 knows no TLV types), so a writer
// marks a TLV non-skippable exactly when a reader that ignores it would restore the
// connection wrongly. Changes old readers must not ignore set a `flags` bit or bump the
// version. Skipped TLVs are not kept: decode then encode drops them.
//
// Known TLVs:
//   type 1 ENCAP (non-skippable, 16 bytes): the front-end's address (IPv4-mapped for family 4) that
//     flow-id encapsulated packets of this connection come from. The back-end keys its decap mapping by
//     (this address, flowId) before it injects the socket (the seed's "flow identifier mapping bundled in
//     the blob"). Non-skippable: a reader that ignored it would inject a connection whose packets it drops.
//
// Untrusted input: decodeBlob (and BlobView.check) checks framing, bounds and the checksum
// before reading any field, and every refusal is a WireError with its own code and field.

import { WireError } from './errors.ts';
import { crc32c, formatIPv4, formatIPv6, isIPv4Mapped, parseIPv4, parseIPv6 } from './bytes.ts';
import type { AddressFamily, Endpoint, TcpState } from './tcp-state.ts';

export interface HandoffBlob {
  /** u64, chosen by the front-end; names this handoff on the control channel. */
  readonly handoffId: bigint;
  /** u32, the flow identifier the front-end maps to this connection (for later flow-id encapsulation). */
  readonly flowId: number;
  readonly state: TcpState;
  /** Present when the front-end forwards this connection by flow-id encapsulation (TLV ENCAP). */
  readonly encap?: { readonly frontend: string };
}

export interface BlobLimits {
  /** Largest whole blob accepted, in bytes. Default 64 MiB. */
  readonly maxBytes?: number;
  /** Largest recvQueue or sendQueue accepted, each, in bytes. Default 32 MiB. */
  readonly maxQueueBytes?: number;
}

export const BLOB_MAGIC = Uint8Array.of(0x42, 0x54, 0x4e); // "BTN"
export const BLOB_VERSION = 1;
export const BLOB_SUPPORTED_VERSIONS: readonly number[] = [BLOB_VERSION];
export const BLOB_DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const BLOB_DEFAULT_MAX_QUEUE_BYTES = 32 * 1024 * 1024;

export const BLOB_ERR = {
  TRUNCATED: 'BATON_ERR_BLOB_TRUNCATED',
  MAGIC: 'BATON_ERR_BLOB_MAGIC',
  VERSION: 'BATON_ERR_BLOB_VERSION',
  LENGTH: 'BATON_ERR_BLOB_LENGTH',
  TOO_LARGE: 'BATON_ERR_BLOB_TOO_LARGE',
  CHECKSUM: 'BATON_ERR_BLOB_CHECKSUM',
  FLAGS: 'BATON_ERR_BLOB_FLAGS',
  EXTENSION: 'BATON_ERR_BLOB_EXTENSION',
  RESERVED: 'BATON_ERR_BLOB_RESERVED',
  OPTIONS: 'BATON_ERR_BLOB_OPTIONS',
  FAMILY: 'BATON_ERR_BLOB_FAMILY',
  ADDRESS: 'BATON_ERR_BLOB_ADDRESS',
  PORT: 'BATON_ERR_BLOB_PORT',
  WSCALE: 'BATON_ERR_BLOB_WSCALE',
  MSS: 'BATON_ERR_BLOB_MSS',
  RANGE: 'BATON_ERR_BLOB_RANGE',
} as const;

/** v1 fixed part: offset and size of each field. Encoder, decoder and view all read this table. */
export const BLOB_FIELD = {
  magic: { at: 0, size: 3 },
  version: { at: 3, size: 1 },
  flags: { at: 4, size: 1 },
  family: { at: 5, size: 1 },
  options: { at: 6, size: 1 },
  reserved: { at: 7, size: 1 },
  totalLength: { at: 8, size: 4 },
  handoffId: { at: 12, size: 8 },
  flowId: { at: 20, size: 4 },
  clientAddress: { at: 24, size: 16 },
  vipAddress: { at: 40, size: 16 },
  clientPort: { at: 56, size: 2 },
  vipPort: { at: 58, size: 2 },
  mss: { at: 60, size: 2 },
  sndWscale: { at: 62, size: 1 },
  rcvWscale: { at: 63, size: 1 },
  sendSeq: { at: 64, size: 4 },
  recvSeq: { at: 68, size: 4 },
  sndWl1: { at: 72, size: 4 },
  sndWnd: { at: 76, size: 4 },
  maxWindow: { at: 80, size: 4 },
  rcvWnd: { at: 84, size: 4 },
  rcvWup: { at: 88, size: 4 },
  tsVal: { at: 92, size: 4 },
  recvQueueLength: { at: 96, size: 4 },
  sendQueueLength: { at: 100, size: 4 },
} as const;

type FieldName = keyof typeof BLOB_FIELD;
type U8Field = { [K in FieldName]: (typeof BLOB_FIELD)[K]['size'] extends 1 ? K : never }[FieldName];
type U16Field = { [K in FieldName]: (typeof BLOB_FIELD)[K]['size'] extends 2 ? K : never }[FieldName];
type U32Field = { [K in FieldName]: (typeof BLOB_FIELD)[K]['size'] extends 4 ? K : never }[FieldName];

/** Size of the fixed part; the queues start here. */
export const BLOB_FIXED_LENGTH = 104;
const CRC_LENGTH = 4;
/** Smallest valid blob: fixed part, empty queues, checksum. */
export const BLOB_MIN_LENGTH = BLOB_FIXED_LENGTH + CRC_LENGTH;
const HEADER_LENGTH = BLOB_FIELD.totalLength.at + BLOB_FIELD.totalLength.size;
const TLV_HEADER_LENGTH = 4;
const TLV_SKIPPABLE = 0x01;
const TLV_ENCAP = 1;
const TLV_ENCAP_LENGTH = 16;
const OPT_SACK = 0x01;
const OPT_TIMESTAMPS = 0x02;
const OPT_FIN_RECEIVED = 0x04;
const KNOWN_OPTIONS = OPT_SACK | OPT_TIMESTAMPS | OPT_FIN_RECEIVED;
const MAX_WSCALE = 14;
const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;

/**
 * Zero-copy view over an encoded blob whose framing has been checked: length, magic,
 * version, flags, checksum, queue bounds and extension TLVs. Field accessors return raw
 * values; `decodeBlob` validates their meaning.
 */
export class BlobView {
  readonly #bytes: Uint8Array;
  readonly #dv: DataView;
  #encapAt: number | undefined;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Checks the framing of untrusted bytes; throws WireError. */
  static check(bytes: Uint8Array, limits?: BlobLimits): BlobView {
    const maxBytes = limits?.maxBytes ?? BLOB_DEFAULT_MAX_BYTES;
    const maxQueue = limits?.maxQueueBytes ?? BLOB_DEFAULT_MAX_QUEUE_BYTES;
    for (let i = 0; i < BLOB_MAGIC.length && i < bytes.length; i++) {
      if (bytes[i] !== BLOB_MAGIC[i]) throw new WireError(BLOB_ERR.MAGIC, 'magic', 'blob: bad magic (want "BTN")');
    }
    if (bytes.length < HEADER_LENGTH) {
      throw new WireError(BLOB_ERR.TRUNCATED, 'header', `blob: truncated header: ${bytes.length} of ${HEADER_LENGTH} bytes`);
    }
    const v = new BlobView(bytes);
    const version = v.u8('version');
    if (!BLOB_SUPPORTED_VERSIONS.includes(version)) {
      throw new WireError(
        BLOB_ERR.VERSION,
        'version',
        `blob: unsupported version ${version} (supported: ${BLOB_SUPPORTED_VERSIONS.join(', ')})`,
      );
    }
    const total = v.u32('totalLength');
    if (total > maxBytes) {
      throw new WireError(BLOB_ERR.TOO_LARGE, 'totalLength', `blob: ${total} bytes exceeds limit ${maxBytes}`);
    }
    if (total < BLOB_MIN_LENGTH) {
      throw new WireError(BLOB_ERR.LENGTH, 'totalLength', `blob: length ${total} below minimum ${BLOB_MIN_LENGTH}`);
    }
    if (bytes.length < total) {
      throw new WireError(BLOB_ERR.TRUNCATED, 'totalLength', `blob: truncated: ${bytes.length} of ${total} bytes`);
    }
    if (bytes.length > total) {
      throw new WireError(BLOB_ERR.LENGTH, 'totalLength', `blob: ${bytes.length - total} trailing bytes after ${total}`);
    }
    const end = total - CRC_LENGTH;
    const want = v.#dv.getUint32(end);
    const got = crc32c(bytes, 0, end);
    if (want !== got) {
      throw new WireError(BLOB_ERR.CHECKSUM, 'checksum', `blob: checksum mismatch: stored ${hex32(want)}, computed ${hex32(got)}`);
    }
    const flags = v.u8('flags');
    if (flags !== 0) throw new WireError(BLOB_ERR.FLAGS, 'flags', `blob: unknown flags 0x${flags.toString(16)}`);
    const recvLen = v.u32('recvQueueLength');
    const sendLen = v.u32('sendQueueLength');
    if (recvLen > maxQueue) {
      throw new WireError(BLOB_ERR.TOO_LARGE, 'recvQueue.length', `blob: recvQueue ${recvLen} bytes exceeds limit ${maxQueue}`);
    }
    if (sendLen > maxQueue) {
      throw new WireError(BLOB_ERR.TOO_LARGE, 'sendQueue.length', `blob: sendQueue ${sendLen} bytes exceeds limit ${maxQueue}`);
    }
    if (BLOB_FIXED_LENGTH + recvLen > end) {
      throw new WireError(BLOB_ERR.LENGTH, 'recvQueue.length', `blob: recvQueue length ${recvLen} overruns the blob`);
    }
    if (BLOB_FIXED_LENGTH + recvLen + sendLen > end) {
      throw new WireError(BLOB_ERR.LENGTH, 'sendQueue.length', `blob: sendQueue length ${sendLen} overruns the blob`);
    }
    v.#checkExtensions(BLOB_FIXED_LENGTH + recvLen + sendLen, end);
    return v;
  }

  #checkExtensions(start: number, end: number): void {
    let at = start;
    for (let i = 0; at < end; i++) {
      if (end - at < TLV_HEADER_LENGTH) {
        throw new WireError(BLOB_ERR.TRUNCATED, `extensions[${i}]`, `blob: truncated extension header at ${at}`);
      }
      const type = this.#dv.getUint8(at);
      const tlvFlags = this.#dv.getUint8(at + 1);
      const len = this.#dv.getUint16(at + 2);
      if (end - at - TLV_HEADER_LENGTH < len) {
        throw new WireError(BLOB_ERR.TRUNCATED, `extensions[${i}].length`, `blob: extension ${type} length ${len} overruns the blob`);
      }
      if (type === TLV_ENCAP) {
        if (len !== TLV_ENCAP_LENGTH) {
          throw new WireError(BLOB_ERR.EXTENSION, `extensions[${i}].length`, `blob: encap extension length ${len} (want ${TLV_ENCAP_LENGTH})`);
        }
        if (this.#encapAt !== undefined) throw new WireError(BLOB_ERR.EXTENSION, `extensions[${i}].type`, 'blob: duplicate encap extension');
        this.#encapAt = at + TLV_HEADER_LENGTH;
      } else if ((tlvFlags & TLV_SKIPPABLE) === 0) {
        throw new WireError(BLOB_ERR.EXTENSION, `extensions[${i}].type`, `blob: unknown non-skippable extension type ${type}`);
      }
      at += TLV_HEADER_LENGTH + len;
    }
  }

  /** The ENCAP extension's 16 address bytes, if the blob has one. */
  get encapAddress(): Uint8Array | undefined {
    return this.#encapAt === undefined ? undefined : this.#bytes.subarray(this.#encapAt, this.#encapAt + TLV_ENCAP_LENGTH);
  }

  u8(f: U8Field): number {
    return this.#dv.getUint8(BLOB_FIELD[f].at);
  }
  u16(f: U16Field): number {
    return this.#dv.getUint16(BLOB_FIELD[f].at);
  }
  u32(f: U32Field): number {
    return this.#dv.getUint32(BLOB_FIELD[f].at);
  }
  get handoffId(): bigint {
    return this.#dv.getBigUint64(BLOB_FIELD.handoffId.at);
  }
  /** 16 address bytes (a view, not a copy). */
  address(f: 'clientAddress' | 'vipAddress'): Uint8Array {
    return this.#bytes.subarray(BLOB_FIELD[f].at, BLOB_FIELD[f].at + BLOB_FIELD[f].size);
  }
  /** Receive-queue bytes (a view into the input, not a copy). */
  get recvQueue(): Uint8Array {
    return this.#bytes.subarray(BLOB_FIXED_LENGTH, BLOB_FIXED_LENGTH + this.u32('recvQueueLength'));
  }
  /** Send-queue bytes (a view into the input, not a copy). */
  get sendQueue(): Uint8Array {
    const start = BLOB_FIXED_LENGTH + this.u32('recvQueueLength');
    return this.#bytes.subarray(start, start + this.u32('sendQueueLength'));
  }
}

/**
 * Decodes and validates a blob from untrusted bytes. Throws WireError, never anything else.
 * The returned queues are views of `bytes`, not copies (an upload's blob carries ~100-200 KiB, checked and injected
 * while the client waits): copy them to keep them past a reuse of the input.
 */
export function decodeBlob(bytes: Uint8Array, limits?: BlobLimits): HandoffBlob {
  const v = BlobView.check(bytes, limits);
  const family = v.u8('family');
  if (family !== 4 && family !== 6) {
    throw new WireError(BLOB_ERR.FAMILY, 'family', `blob: invalid address family ${family} (want 4 or 6)`);
  }
  const options = v.u8('options');
  if ((options & ~KNOWN_OPTIONS) !== 0) {
    throw new WireError(BLOB_ERR.OPTIONS, 'options', `blob: unknown option bits 0x${options.toString(16)}`);
  }
  if (v.u8('reserved') !== 0) throw new WireError(BLOB_ERR.RESERVED, 'reserved', 'blob: reserved byte is not zero');
  const mss = v.u16('mss');
  if (mss === 0) throw new WireError(BLOB_ERR.MSS, 'mss', 'blob: mss 0 (want 1..65535)');
  const sndWscale = v.u8('sndWscale');
  const rcvWscale = v.u8('rcvWscale');
  if (sndWscale > MAX_WSCALE) throw new WireError(BLOB_ERR.WSCALE, 'sndWscale', `blob: sndWscale ${sndWscale} (want 0..14)`);
  if (rcvWscale > MAX_WSCALE) throw new WireError(BLOB_ERR.WSCALE, 'rcvWscale', `blob: rcvWscale ${rcvWscale} (want 0..14)`);
  const state: TcpState = {
    family,
    client: { address: readAddress(v, family, 'clientAddress', 'client.address'), port: v.u16('clientPort') },
    vip: { address: readAddress(v, family, 'vipAddress', 'vip.address'), port: v.u16('vipPort') },
    sendSeq: v.u32('sendSeq'),
    recvSeq: v.u32('recvSeq'),
    window: {
      sndWl1: v.u32('sndWl1'),
      sndWnd: v.u32('sndWnd'),
      maxWindow: v.u32('maxWindow'),
      rcvWnd: v.u32('rcvWnd'),
      rcvWup: v.u32('rcvWup'),
    },
    mss,
    sndWscale,
    rcvWscale,
    sackPermitted: (options & OPT_SACK) !== 0,
    timestamps: (options & OPT_TIMESTAMPS) !== 0,
    finReceived: (options & OPT_FIN_RECEIVED) !== 0,
    tsVal: v.u32('tsVal'),
    recvQueue: v.recvQueue,
    sendQueue: v.sendQueue,
  };
  const ea = v.encapAddress;
  if (ea === undefined) return { handoffId: v.handoffId, flowId: v.u32('flowId'), state };
  if (family === 4 && !isIPv4Mapped(ea)) throw new WireError(BLOB_ERR.ADDRESS, 'encap.frontend', 'blob: family 4 but encap.frontend is not IPv4-mapped');
  const frontend = family === 6 ? formatIPv6(ea) : formatIPv4(ea, 12);
  return { handoffId: v.handoffId, flowId: v.u32('flowId'), state, encap: { frontend } };
}

function readAddress(v: BlobView, family: AddressFamily, f: 'clientAddress' | 'vipAddress', name: string): string {
  const a = v.address(f);
  if (family === 6) return formatIPv6(a);
  if (!isIPv4Mapped(a)) throw new WireError(BLOB_ERR.ADDRESS, name, `blob: family 4 but ${name} is not IPv4-mapped`);
  return formatIPv4(a, 12);
}

/** Encoded size of `b` in bytes. */
export function blobByteLength(b: HandoffBlob): number {
  return BLOB_MIN_LENGTH + b.state.recvQueue.length + b.state.sendQueue.length + (b.encap ? TLV_HEADER_LENGTH + TLV_ENCAP_LENGTH : 0);
}

/**
 * Encodes a blob. Refuses (WireError, same codes as the decoder) any value the decoder
 * would refuse, so a bad state fails at the front-end, not at the back-end.
 */
export function encodeBlob(b: HandoffBlob, limits?: BlobLimits): Uint8Array {
  const s = b.state;
  const maxBytes = limits?.maxBytes ?? BLOB_DEFAULT_MAX_BYTES;
  const maxQueue = limits?.maxQueueBytes ?? BLOB_DEFAULT_MAX_QUEUE_BYTES;
  if (s.family !== 4 && s.family !== 6) {
    throw new WireError(BLOB_ERR.FAMILY, 'family', `blob: invalid address family ${String(s.family)} (want 4 or 6)`);
  }
  if (typeof b.handoffId !== 'bigint' || b.handoffId < 0n || b.handoffId > U64_MAX) {
    throw new WireError(BLOB_ERR.RANGE, 'handoffId', 'blob: handoffId is not a u64');
  }
  const u32s: [U32Field, string, number][] = [
    ['flowId', 'flowId', b.flowId],
    ['sendSeq', 'sendSeq', s.sendSeq],
    ['recvSeq', 'recvSeq', s.recvSeq],
    ['sndWl1', 'window.sndWl1', s.window.sndWl1],
    ['sndWnd', 'window.sndWnd', s.window.sndWnd],
    ['maxWindow', 'window.maxWindow', s.window.maxWindow],
    ['rcvWnd', 'window.rcvWnd', s.window.rcvWnd],
    ['rcvWup', 'window.rcvWup', s.window.rcvWup],
    ['tsVal', 'tsVal', s.tsVal],
  ];
  for (const [, name, value] of u32s) {
    if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
      throw new WireError(BLOB_ERR.RANGE, name, `blob: ${name} ${value} is not a u32`);
    }
  }
  checkPort(s.client.port, 'client.port');
  checkPort(s.vip.port, 'vip.port');
  if (!Number.isInteger(s.mss) || s.mss < 1 || s.mss > 0xffff) {
    throw new WireError(BLOB_ERR.MSS, 'mss', `blob: mss ${s.mss} (want 1..65535)`);
  }
  for (const [name, value] of [['sndWscale', s.sndWscale], ['rcvWscale', s.rcvWscale]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_WSCALE) {
      throw new WireError(BLOB_ERR.WSCALE, name, `blob: ${name} ${value} (want 0..14)`);
    }
  }
  const client = addressBytes(s.family, s.client, 'client.address');
  const encapFrontend = b.encap ? addressBytes(s.family, { address: b.encap.frontend, port: 0 }, 'encap.frontend') : undefined;
  const vip = addressBytes(s.family, s.vip, 'vip.address');
  if (s.recvQueue.length > maxQueue) {
    throw new WireError(BLOB_ERR.TOO_LARGE, 'recvQueue.length', `blob: recvQueue ${s.recvQueue.length} bytes exceeds limit ${maxQueue}`);
  }
  if (s.sendQueue.length > maxQueue) {
    throw new WireError(BLOB_ERR.TOO_LARGE, 'sendQueue.length', `blob: sendQueue ${s.sendQueue.length} bytes exceeds limit ${maxQueue}`);
  }
  const total = blobByteLength(b);
  if (total > maxBytes) throw new WireError(BLOB_ERR.TOO_LARGE, 'totalLength', `blob: ${total} bytes exceeds limit ${maxBytes}`);

  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const u8 = (f: U8Field, x: number): void => dv.setUint8(BLOB_FIELD[f].at, x);
  const u16 = (f: U16Field, x: number): void => dv.setUint16(BLOB_FIELD[f].at, x);
  const u32 = (f: U32Field, x: number): void => dv.setUint32(BLOB_FIELD[f].at, x);
  out.set(BLOB_MAGIC, BLOB_FIELD.magic.at);
  u8('version', BLOB_VERSION);
  u8('flags', 0);
  u8('family', s.family);
  u8('options', (s.sackPermitted ? OPT_SACK : 0) | (s.timestamps ? OPT_TIMESTAMPS : 0) | (s.finReceived ? OPT_FIN_RECEIVED : 0));
  u8('reserved', 0);
  u32('totalLength', total);
  dv.setBigUint64(BLOB_FIELD.handoffId.at, b.handoffId);
  for (const [f, , value] of u32s) u32(f, value);
  out.set(client, BLOB_FIELD.clientAddress.at);
  out.set(vip, BLOB_FIELD.vipAddress.at);
  u16('clientPort', s.client.port);
  u16('vipPort', s.vip.port);
  u16('mss', s.mss);
  u8('sndWscale', s.sndWscale);
  u8('rcvWscale', s.rcvWscale);
  u32('recvQueueLength', s.recvQueue.length);
  u32('sendQueueLength', s.sendQueue.length);
  out.set(s.recvQueue, BLOB_FIXED_LENGTH);
  out.set(s.sendQueue, BLOB_FIXED_LENGTH + s.recvQueue.length);
  if (encapFrontend) {
    const at = BLOB_FIXED_LENGTH + s.recvQueue.length + s.sendQueue.length;
    dv.setUint8(at, TLV_ENCAP);
    dv.setUint8(at + 1, 0); // not skippable
    dv.setUint16(at + 2, TLV_ENCAP_LENGTH);
    out.set(encapFrontend, at + TLV_HEADER_LENGTH);
  }
  dv.setUint32(total - CRC_LENGTH, crc32c(out, 0, total - CRC_LENGTH));
  return out;
}

function checkPort(port: number, name: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new WireError(BLOB_ERR.PORT, name, `blob: ${name} ${port} (want 0..65535)`);
  }
}

function addressBytes(family: AddressFamily, ep: Endpoint, name: string): Uint8Array {
  if (family === 6) {
    const a = parseIPv6(ep.address);
    if (a === undefined) throw new WireError(BLOB_ERR.ADDRESS, name, `blob: ${name} ${JSON.stringify(ep.address)} is not IPv6`);
    return a;
  }
  const a = parseIPv4(ep.address);
  if (a === undefined) throw new WireError(BLOB_ERR.ADDRESS, name, `blob: ${name} ${JSON.stringify(ep.address)} is not IPv4`);
  const mapped = new Uint8Array(16);
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  mapped.set(a, 12);
  return mapped;
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
