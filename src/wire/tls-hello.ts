// TLS ClientHello reader for routing by SNI without terminating TLS: the front-end reads the
// first flight of a `tls` listener until the ClientHello is complete, routes on server_name
// and ALPN, then hands the connection off with every byte still unread by the back-end.
// Strict per RFC 8446 §4.1.2/§5.1, RFC 6066 §3, RFC 7301 §3.1; one pass over the bytes read so
// far, callable again on the grown buffer after each read (like parseRequestHead).
//
// Decisions a caller relies on:
// - Never throws on any bytes; refusals are values `{ kind: 'error', code, field, reason }`
//   with a stable BATON_ERR_TLS_* code. Only invalid limits throw (BatonError).
// - Errors are found as early as the bytes allow (an HTTP request or an SSLv2-style hello is
//   refused at its first byte), and an error or hello found on a prefix is the same on any
//   longer input: the parser never looks past the ClientHello's last record.
// - Record layer: content type 22 only, version 3.0..3.3 (0x0300..0x0303), fragment length
//   1..2^14. The ClientHello may span records (at most maxRecords); no other record type and
//   no other handshake message may come before it ends, and its last record must end with it.
// - The handshake message must be ClientHello (type 1) of at most maxHelloBytes (4-byte
//   handshake header included); longer is refused as soon as its length field is read.
// - Extensions are parsed with bounds; a repeated extension type is refused (RFC 8446 §4.2).
// - server_name: exactly one entry, of type host_name; the name is a DNS name (labels of
//   letters, digits, "-" and "_", 1..63 bytes, no "-" at either end, at most 253 bytes, no
//   trailing dot, not an IPv4 literal), returned lower-cased. No extension: sni undefined.
// - ALPN: a non-empty list of non-empty protocol names, returned as latin1 text in order.
// - version: the highest supported_versions entry that is not GREASE (RFC 8701) when that
//   extension is present, else legacy_version.

import { BatonError } from './errors.ts';
import { concatBytes, parseIPv4 } from './bytes.ts';

export interface HelloLimits {
  /** Largest ClientHello handshake message accepted, its 4-byte header included. Default 16384. */
  readonly maxHelloBytes?: number;
  /** Most TLS records the ClientHello may span. Default 16. */
  readonly maxRecords?: number;
}

export interface ClientHello {
  /** server_name host_name, lower-case; undefined when the client sent no server_name. */
  readonly sni: string | undefined;
  /** ALPN protocol names in the client's order; [] when the client sent no ALPN. */
  readonly alpn: readonly string[];
  /** ClientHello.legacy_version, e.g. 0x0303. */
  readonly legacyVersion: number;
  /** supported_versions without GREASE values, in order; [] when absent. */
  readonly supportedVersions: readonly number[];
  /** Highest version offered: max of supportedVersions, or legacyVersion. 0x0304 is TLS 1.3. */
  readonly version: number;
  /** Extension types in the order sent (GREASE included). */
  readonly extensions: readonly number[];
}

export type HelloResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly code: TlsErrorCode; readonly field: string; readonly reason: string }
  | {
      readonly kind: 'hello';
      readonly hello: ClientHello;
      /** Bytes of the records that carry the ClientHello; whatever follows is not looked at. */
      readonly byteLength: number;
      readonly records: number;
    };

export const TLS_ERR = {
  /** Not a TLS handshake record (e.g. plain HTTP, or an alert / application data record). */
  CONTENT_TYPE: 'BATON_ERR_TLS_CONTENT_TYPE',
  /** SSL 2.0-style (or SSL 3.0-compatible v2) ClientHello, which carries no extensions. */
  SSLV2: 'BATON_ERR_TLS_SSLV2',
  /** Record or ClientHello version outside 3.0..3.3. */
  VERSION: 'BATON_ERR_TLS_VERSION',
  /** Record of length 0 or over 2^14. */
  RECORD_LENGTH: 'BATON_ERR_TLS_RECORD_LENGTH',
  /** ClientHello larger than maxHelloBytes, or spread over more than maxRecords records. */
  TOO_LARGE: 'BATON_ERR_TLS_TOO_LARGE',
  /** First handshake message is not a ClientHello. */
  HANDSHAKE_TYPE: 'BATON_ERR_TLS_HANDSHAKE_TYPE',
  /** A length inside the ClientHello disagrees with its container, or bytes are left over. */
  LENGTH: 'BATON_ERR_TLS_LENGTH',
  /** The same extension type twice. */
  DUPLICATE_EXTENSION: 'BATON_ERR_TLS_DUPLICATE_EXTENSION',
  /** server_name malformed: not exactly one host_name, or not a DNS name. */
  SERVER_NAME: 'BATON_ERR_TLS_SERVER_NAME',
  /** ALPN list malformed (empty list or empty name). */
  ALPN: 'BATON_ERR_TLS_ALPN',
  /** supported_versions malformed (odd or empty list). */
  SUPPORTED_VERSIONS: 'BATON_ERR_TLS_SUPPORTED_VERSIONS',
} as const;

export type TlsErrorCode = (typeof TLS_ERR)[keyof typeof TLS_ERR];

export const TLS_DEFAULT_MAX_HELLO_BYTES = 16384;
export const TLS_DEFAULT_MAX_RECORDS = 16;
/** Largest plaintext record fragment (RFC 8446 §5.1). */
export const TLS_MAX_RECORD_FRAGMENT = 16384;

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;
const NAME_TYPE_HOST = 0;
const MAX_HOSTNAME = 253;
const RANDOM_BYTES = 32;
const MAX_SESSION_ID = 32;

const INCOMPLETE: HelloResult = { kind: 'incomplete' };

/** A refusal found while parsing; turned into the error result at the top. */
class Refusal {
  constructor(
    readonly code: TlsErrorCode,
    readonly field: string,
    readonly reason: string,
  ) {}
}

/** True for the RFC 8701 GREASE values 0x0a0a, 0x1a1a, ..., 0xfafa. */
export const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && v >>> 8 === (v & 0xff);

/** Reads the ClientHello at the start of `buf`. Never throws on any bytes. */
export function parseClientHello(buf: Uint8Array, limits: HelloLimits = {}): HelloResult {
  const maxHello = limits.maxHelloBytes ?? TLS_DEFAULT_MAX_HELLO_BYTES;
  const maxRecords = limits.maxRecords ?? TLS_DEFAULT_MAX_RECORDS;
  if (!Number.isInteger(maxHello) || maxHello < HANDSHAKE_HEADER || maxHello > 0xffffff + HANDSHAKE_HEADER) {
    throw invalidArgument('maxHelloBytes', maxHello);
  }
  if (!Number.isInteger(maxRecords) || maxRecords < 1) throw invalidArgument('maxRecords', maxRecords);
  try {
    return readRecords(buf, maxHello, maxRecords);
  } catch (e) {
    if (e instanceof Refusal) return { kind: 'error', code: e.code, field: e.field, reason: e.reason };
    throw e;
  }
}

/** Walks the records, gathering handshake bytes until the ClientHello is whole. */
function readRecords(buf: Uint8Array, maxHello: number, maxRecords: number): HelloResult {
  // The cheapest refusals (SSLv2-style hello, plain HTTP) come at the first byte.
  if (buf.length > 0 && (buf[0] ?? 0) >= 0x80) {
    throw new Refusal(TLS_ERR.SSLV2, 'records[0].type', 'tls: SSL 2.0-style ClientHello');
  }
  const frags: Uint8Array[] = []; // views of the handshake bytes, record by record
  let have = 0; // handshake bytes in frags
  let want = -1; // whole ClientHello length, header included, once its header is read
  let at = 0;
  let records = 0;
  /** Byte k of the handshake stream (k < have). */
  const hs = (k: number): number => {
    for (const f of frags) {
      if (k < f.length) return f[k] ?? 0;
      k -= f.length;
    }
    return 0;
  };
  for (;;) {
    const field = `records[${records}]`;
    if (buf.length > at && buf[at] !== CONTENT_HANDSHAKE) {
      throw new Refusal(TLS_ERR.CONTENT_TYPE, `${field}.type`, `tls: record type ${buf[at] ?? 0} before the ClientHello ended (want 22)`);
    }
    if (buf.length > at + 1 && buf[at + 1] !== 3) {
      throw new Refusal(TLS_ERR.VERSION, `${field}.version`, `tls: record version major ${buf[at + 1] ?? 0} (want 3)`);
    }
    if (buf.length > at + 2 && (buf[at + 2] ?? 0) > 3) {
      throw new Refusal(TLS_ERR.VERSION, `${field}.version`, `tls: record version 3.${buf[at + 2] ?? 0} (want 3.0..3.3)`);
    }
    if (buf.length < at + RECORD_HEADER) return INCOMPLETE;
    const len = ((buf[at + 3] ?? 0) << 8) | (buf[at + 4] ?? 0);
    if (len === 0 || len > TLS_MAX_RECORD_FRAGMENT) {
      throw new Refusal(TLS_ERR.RECORD_LENGTH, `${field}.length`, `tls: record length ${len} (want 1..${TLS_MAX_RECORD_FRAGMENT})`);
    }
    if (records === maxRecords) throw new Refusal(TLS_ERR.TOO_LARGE, field, `tls: ClientHello spans more than ${maxRecords} records`);
    records++;
    const before = have;
    const fragStart = at + RECORD_HEADER;
    const avail = Math.min(len, buf.length - fragStart);
    frags.push(buf.subarray(fragStart, fragStart + avail));
    have += avail;
    if (want < 0 && have >= 1 && hs(0) !== HANDSHAKE_CLIENT_HELLO) {
      throw new Refusal(TLS_ERR.HANDSHAKE_TYPE, 'handshake.type', `tls: handshake type ${hs(0)} (want ClientHello, 1)`);
    }
    if (want < 0 && have >= HANDSHAKE_HEADER) {
      want = HANDSHAKE_HEADER + ((hs(1) << 16) | (hs(2) << 8) | hs(3));
      if (want > maxHello) {
        throw new Refusal(TLS_ERR.TOO_LARGE, 'handshake.length', `tls: ClientHello of ${want} bytes exceeds limit ${maxHello}`);
      }
    }
    // The ClientHello's last record must end with it: nothing else may share it (RFC 8446 §5.1
    // forbids another handshake message before the server's reply).
    if (want >= 0 && before + len > want) {
      throw new Refusal(TLS_ERR.LENGTH, `${field}.length`, 'tls: bytes after the ClientHello in its last record');
    }
    if (avail < len) return INCOMPLETE;
    at = fragStart + len;
    if (have === want) break;
  }
  const msg = frags.length === 1 ? (frags[0] ?? new Uint8Array(0)) : concatBytes(frags);
  return { kind: 'hello', hello: parseBody(msg, msg.length), byteLength: at, records };
}

/** Bounded cursor over the ClientHello body; every read names its field. */
class Cursor {
  constructor(
    readonly buf: Uint8Array,
    public at: number,
    readonly end: number,
  ) {}

  need(n: number, field: string): number {
    if (this.end - this.at < n) {
      throw new Refusal(TLS_ERR.LENGTH, field, `tls: ${field} needs ${n} bytes, ${this.end - this.at} left`);
    }
    const a = this.at;
    this.at += n;
    return a;
  }
  u8(field: string): number {
    return this.buf[this.need(1, field)] ?? 0;
  }
  u16(field: string): number {
    const a = this.need(2, field);
    return ((this.buf[a] ?? 0) << 8) | (this.buf[a + 1] ?? 0);
  }
  /** A sub-cursor over the next n bytes, consumed from this one. */
  sub(n: number, field: string): Cursor {
    const a = this.need(n, field);
    return new Cursor(this.buf, a, a + n);
  }
  get left(): number {
    return this.end - this.at;
  }
}

function parseBody(msg: Uint8Array, end: number): ClientHello {
  const c = new Cursor(msg, HANDSHAKE_HEADER, end);
  const legacyVersion = c.u16('legacy_version');
  if (legacyVersion >>> 8 !== 3 || (legacyVersion & 0xff) > 3) {
    throw new Refusal(TLS_ERR.VERSION, 'legacy_version', `tls: ClientHello version 0x${legacyVersion.toString(16)} (want 0x0300..0x0303)`);
  }
  c.need(RANDOM_BYTES, 'random');
  const sid = c.u8('legacy_session_id.length');
  if (sid > MAX_SESSION_ID) throw new Refusal(TLS_ERR.LENGTH, 'legacy_session_id.length', `tls: session id of ${sid} bytes (max 32)`);
  c.need(sid, 'legacy_session_id');
  const suites = c.u16('cipher_suites.length');
  if (suites < 2 || suites % 2 !== 0) throw new Refusal(TLS_ERR.LENGTH, 'cipher_suites.length', `tls: cipher_suites length ${suites}`);
  c.need(suites, 'cipher_suites');
  const comp = c.u8('compression_methods.length');
  if (comp < 1) throw new Refusal(TLS_ERR.LENGTH, 'compression_methods.length', 'tls: no compression methods');
  c.need(comp, 'compression_methods');

  let sni: string | undefined;
  let alpn: string[] = [];
  let supportedVersions: number[] = [];
  const extensions: number[] = [];
  if (c.left > 0) {
    const exts = c.sub(c.u16('extensions.length'), 'extensions');
    if (c.left !== 0) throw new Refusal(TLS_ERR.LENGTH, 'extensions.length', `tls: ${c.left} bytes after the extensions`);
    const seen = new Set<number>();
    while (exts.left > 0) {
      const i = extensions.length;
      const type = exts.u16(`extensions[${i}].type`);
      const body = exts.sub(exts.u16(`extensions[${i}].length`), `extensions[${i}]`);
      if (seen.has(type)) throw new Refusal(TLS_ERR.DUPLICATE_EXTENSION, `extensions[${i}].type`, `tls: extension ${type} sent twice`);
      seen.add(type);
      extensions.push(type);
      if (type === EXT_SERVER_NAME) sni = serverName(body);
      else if (type === EXT_ALPN) alpn = alpnList(body);
      else if (type === EXT_SUPPORTED_VERSIONS) supportedVersions = versionList(body);
    }
  }
  const version = supportedVersions.length > 0 ? Math.max(...supportedVersions) : legacyVersion;
  return { sni, alpn, legacyVersion, supportedVersions, version, extensions };
}

function serverName(c: Cursor): string {
  const list = c.sub(c.u16('server_name.list.length'), 'server_name.list');
  if (c.left !== 0) throw new Refusal(TLS_ERR.SERVER_NAME, 'server_name.list.length', 'tls: bytes after the server name list');
  const type = list.u8('server_name.list[0].type');
  if (type !== NAME_TYPE_HOST) throw new Refusal(TLS_ERR.SERVER_NAME, 'server_name.list[0].type', `tls: server name type ${type} (want host_name, 0)`);
  const name = list.sub(list.u16('server_name.list[0].length'), 'server_name.list[0]');
  // RFC 6066 allows one name per type and defines only host_name, so a second entry is refused.
  if (list.left !== 0) throw new Refusal(TLS_ERR.SERVER_NAME, 'server_name.list', 'tls: more than one server name');
  const host = hostName(name.buf, name.at, name.end);
  if (host === undefined) throw new Refusal(TLS_ERR.SERVER_NAME, 'server_name.list[0]', 'tls: server name is not a DNS host name');
  return host;
}

/** Lower-cased DNS name from bytes [start, end), or undefined; see the module comment. */
function hostName(b: Uint8Array, start: number, end: number): string | undefined {
  const n = end - start;
  if (n < 1 || n > MAX_HOSTNAME) return undefined;
  let s = '';
  let labelStart = start;
  for (let i = start; i <= end; i++) {
    const ch = i < end ? (b[i] ?? 0) : 0x2e;
    if (ch === 0x2e) {
      const len = i - labelStart;
      if (len < 1 || len > 63) return undefined;
      if (b[labelStart] === 0x2d || b[i - 1] === 0x2d) return undefined;
      labelStart = i + 1;
      if (i < end) s += '.';
      continue;
    }
    const lower = ch >= 0x41 && ch <= 0x5a ? ch + 0x20 : ch;
    const ok = (lower >= 0x61 && lower <= 0x7a) || (lower >= 0x30 && lower <= 0x39) || lower === 0x2d || lower === 0x5f;
    if (!ok) return undefined;
    s += String.fromCharCode(lower);
  }
  // RFC 6066 §3: literal IPv4 and IPv6 addresses are not permitted (IPv6 fails the charset).
  if (parseIPv4(s) !== undefined) return undefined;
  return s;
}

function alpnList(c: Cursor): string[] {
  const list = c.sub(c.u16('alpn.list.length'), 'alpn.list');
  if (c.left !== 0) throw new Refusal(TLS_ERR.ALPN, 'alpn.list.length', 'tls: bytes after the ALPN list');
  if (list.left === 0) throw new Refusal(TLS_ERR.ALPN, 'alpn.list', 'tls: empty ALPN list');
  const out: string[] = [];
  while (list.left > 0) {
    const field = `alpn.list[${out.length}]`;
    const len = list.u8(`${field}.length`);
    if (len === 0) throw new Refusal(TLS_ERR.ALPN, `${field}.length`, 'tls: empty ALPN protocol name');
    const at = list.need(len, field);
    out.push(String.fromCharCode(...list.buf.subarray(at, at + len)));
  }
  return out;
}

function versionList(c: Cursor): number[] {
  const len = c.u8('supported_versions.length');
  if (len < 2 || len % 2 !== 0) throw new Refusal(TLS_ERR.SUPPORTED_VERSIONS, 'supported_versions.length', `tls: supported_versions length ${len}`);
  const list = c.sub(len, 'supported_versions');
  if (c.left !== 0) throw new Refusal(TLS_ERR.SUPPORTED_VERSIONS, 'supported_versions.length', 'tls: bytes after supported_versions');
  const out: number[] = [];
  while (list.left > 0) {
    const v = list.u16('supported_versions');
    if (!isGrease(v)) out.push(v);
  }
  return out;
}

function invalidArgument(name: string, value: number): BatonError {
  return new BatonError('BATON_ERR_INVALID_ARGUMENT', `parseClientHello: invalid ${name} ${value}`);
}

// ---------------------------------------------------------------------------------------------
// Refusing: before the handshake no HTTP status can be sent, but a plaintext fatal alert can
// (RFC 8446 §6), so a client reports "decode error" rather than "connection reset".

/** Alert descriptions a front-end sends when it refuses a connection before the handshake. */
export const TLS_ALERT = {
  handshakeFailure: 40,
  illegalParameter: 47,
  decodeError: 50,
  protocolVersion: 70,
  internalError: 80,
  unrecognizedName: 112,
} as const;

/** The alert to send for a refused ClientHello; undefined when the peer does not speak TLS. */
export function alertFor(code: TlsErrorCode): number | undefined {
  switch (code) {
    case TLS_ERR.CONTENT_TYPE:
    case TLS_ERR.SSLV2:
      return undefined;
    case TLS_ERR.VERSION:
      return TLS_ALERT.protocolVersion;
    case TLS_ERR.DUPLICATE_EXTENSION:
    case TLS_ERR.SERVER_NAME:
    case TLS_ERR.ALPN:
    case TLS_ERR.SUPPORTED_VERSIONS:
      return TLS_ALERT.illegalParameter;
    default:
      return TLS_ALERT.decodeError;
  }
}

/** A fatal alert record (level 2) with this description, record version 3.3. */
export function buildAlert(description: number): Uint8Array {
  return Uint8Array.of(21, 3, 3, 0, 2, 2, description & 0xff);
}

// ---------------------------------------------------------------------------------------------
// Emitting, for tests, the fuzzer's seeds and clients that want a ClientHello without TLS.

export interface ClientHelloSpec {
  readonly sni?: string;
  readonly alpn?: readonly string[];
  /** Default 0x0303. */
  readonly legacyVersion?: number;
  /** supported_versions entries; omitted when empty. Default [0x0304, 0x0303]. */
  readonly supportedVersions?: readonly number[];
  /** Extra extensions (type, body) appended after the ones above. */
  readonly extra?: readonly (readonly [number, Uint8Array])[];
  /** Largest record fragment to cut the handshake message into. Default 16384. */
  readonly recordSize?: number;
}

/**
 * Builds the records of a ClientHello (fixed random and session id, one cipher suite). Does not
 * validate: tests use it to build malformed hellos too.
 */
export function buildClientHello(spec: ClientHelloSpec): Uint8Array {
  const exts: Uint8Array[] = [];
  const ext = (type: number, body: Uint8Array): void => {
    exts.push(Uint8Array.of(type >>> 8, type & 0xff, body.length >>> 8, body.length & 0xff), body);
  };
  if (spec.sni !== undefined) {
    const name = latin1Bytes(spec.sni);
    ext(EXT_SERVER_NAME, concatBytes([u16(name.length + 3), Uint8Array.of(NAME_TYPE_HOST), u16(name.length), name]));
  }
  if (spec.alpn !== undefined && spec.alpn.length > 0) {
    const names = concatBytes(spec.alpn.map((p) => concatBytes([Uint8Array.of(p.length), latin1Bytes(p)])));
    ext(EXT_ALPN, concatBytes([u16(names.length), names]));
  }
  const versions = spec.supportedVersions ?? [0x0304, 0x0303];
  if (versions.length > 0) ext(EXT_SUPPORTED_VERSIONS, concatBytes([Uint8Array.of(versions.length * 2), ...versions.map(u16)]));
  for (const [type, body] of spec.extra ?? []) ext(type, body);
  const extBytes = concatBytes(exts);
  const body = concatBytes([
    u16(spec.legacyVersion ?? 0x0303),
    new Uint8Array(RANDOM_BYTES).fill(0x5a),
    Uint8Array.of(0),
    u16(2),
    u16(0x1301),
    Uint8Array.of(1, 0),
    u16(extBytes.length),
    extBytes,
  ]);
  const msg = concatBytes([Uint8Array.of(HANDSHAKE_CLIENT_HELLO, body.length >>> 16, (body.length >>> 8) & 0xff, body.length & 0xff), body]);
  return wrapRecords(msg, spec.recordSize ?? TLS_MAX_RECORD_FRAGMENT);
}

/** Cuts handshake bytes into handshake records of at most `size` bytes each. */
export function wrapRecords(msg: Uint8Array, size: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < msg.length; i += size) {
    const frag = msg.subarray(i, Math.min(msg.length, i + size));
    parts.push(Uint8Array.of(CONTENT_HANDSHAKE, 3, 1, frag.length >>> 8, frag.length & 0xff), frag);
  }
  return concatBytes(parts);
}

const u16 = (v: number): Uint8Array => Uint8Array.of((v >>> 8) & 0xff, v & 0xff);
const latin1Bytes = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0) & 0xff);
