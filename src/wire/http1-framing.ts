// The framing half of HTTP/1.x that a connection tracker needs besides the request head: the
// response head (status line and the three fields that decide framing), and an incremental
// message-body reader (Content-Length, chunked with trailers, close-delimited). Pure; bodies
// are counted, never buffered. Strict where Node's llhttp is strict (CRLF only, hex chunk
// sizes), so that a tracker never finds a boundary the server does not: on anything doubtful
// the caller stops tracking rather than guess.

/** Longest chunk-size line accepted (size, extensions, without CRLF). */
export const CHUNK_LINE_MAX = 4096;
/** Hex digits of a chunk size: 13 keep every size a safe integer (< 2^52). */
const CHUNK_SIZE_DIGITS_MAX = 13;

const CR = 0x0d;
const LF = 0x0a;

export interface ResponseHead {
  readonly status: number;
  readonly version: '1.0' | '1.1';
  readonly contentLength: number | undefined;
  /** Transfer-Encoding present; `chunked` says whether it ends in chunked. */
  readonly transferEncoding: boolean;
  readonly chunked: boolean;
  /** Whether the server keeps the connection open after this response (version default, Connection). */
  readonly keepAlive: boolean;
}

export type ResponseHeadResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly reason: string }
  | { readonly kind: 'ok'; readonly head: ResponseHead; readonly headBytes: number };

const INCOMPLETE: ResponseHeadResult = { kind: 'incomplete' };

// tchar (RFC 9110 §5.6.2), for field names.
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = TCHAR[c + 0x20] = 1;
const STATUS_PREFIX = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e]; // "HTTP/1."
const isDigit = (c: number | undefined): c is number => c !== undefined && c >= 0x30 && c <= 0x39;

/** True when buf[s..s+name.length) equals `name` (lower-case ASCII) ignoring case. */
function nameIs(buf: Uint8Array, s: number, e: number, name: string): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (((buf[s + i] ?? 0) | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * Parses the response head at the start of `buf` (at most `maxHeadBytes`, CRLF line ends only).
 * Never throws. Only the fields that frame the message are interpreted, and only their values
 * become strings: this runs once per response on the agent's data path.
 */
export function parseResponseHead(buf: Uint8Array, maxHeadBytes: number): ResponseHeadResult {
  const end = Math.min(buf.length, maxHeadBytes);
  let headEnd = -1;
  for (let i = 0; i < end; i++) {
    const c = buf[i];
    if (c === LF) {
      if (i === 0 || buf[i - 1] !== CR) return { kind: 'error', reason: 'bare LF in response head' };
      if (i >= 3 && buf[i - 2] === LF && buf[i - 3] === CR) {
        headEnd = i + 1;
        break;
      }
    } else if (c === CR && i + 1 < buf.length && buf[i + 1] !== LF) {
      return { kind: 'error', reason: 'bare CR in response head' };
    }
  }
  if (headEnd === -1) {
    return buf.length >= maxHeadBytes ? { kind: 'error', reason: `response head larger than ${maxHeadBytes} bytes` } : INCOMPLETE;
  }
  // status-line = "HTTP/1." DIGIT SP 3DIGIT [ SP reason ] CRLF
  for (let i = 0; i < STATUS_PREFIX.length; i++) if (buf[i] !== STATUS_PREFIX[i]) return { kind: 'error', reason: 'malformed status line' };
  const minor = buf[7];
  if ((minor !== 0x30 && minor !== 0x31) || buf[8] !== 0x20 || !isDigit(buf[9]) || !isDigit(buf[10]) || !isDigit(buf[11])) {
    return { kind: 'error', reason: 'malformed status line' };
  }
  if (buf[12] !== CR && buf[12] !== 0x20) return { kind: 'error', reason: 'malformed status line' };
  const version = minor === 0x30 ? '1.0' : '1.1';
  const status = (buf[9]! - 0x30) * 100 + (buf[10]! - 0x30) * 10 + (buf[11]! - 0x30);
  let i = 12;
  while (buf[i] !== CR) {
    const c = buf[i]!;
    if (c === 0x7f || (c < 0x20 && c !== 0x09)) return { kind: 'error', reason: 'malformed status line' };
    i++;
  }
  i += 2;

  let contentLength: number | undefined;
  let transferEncoding = false;
  let chunkedLast = false;
  let close = false;
  let keepAliveToken = false;
  while (i < headEnd - 2) {
    const s = i;
    while (TCHAR[buf[i] ?? 0] === 1) i++;
    if (i === s || buf[i] !== 0x3a) return { kind: 'error', reason: 'malformed field line' };
    const nameEnd = i;
    i++;
    let lineEnd = i;
    while (buf[lineEnd] !== CR) lineEnd++;
    const first = (buf[s] ?? 0) | 0x20;
    if (first === 0x63 /* c */ && nameIs(buf, s, nameEnd, 'content-length')) {
      const v = contentLengthOf(buf, i, lineEnd);
      if (v === undefined) return { kind: 'error', reason: 'invalid Content-Length' };
      if (contentLength !== undefined && contentLength !== v) return { kind: 'error', reason: 'conflicting Content-Length' };
      contentLength = v;
    } else if (first === 0x74 /* t */ && nameIs(buf, s, nameEnd, 'transfer-encoding')) {
      transferEncoding = true;
      for (const c of latin1(buf, i, lineEnd).split(',')) {
        const t = (c.split(';')[0] ?? '').trim().toLowerCase();
        if (t === '') continue;
        // chunked must be last: anything after it (in this or a later field) is an error.
        if (chunkedLast) return { kind: 'error', reason: 'chunked is not the last transfer coding' };
        chunkedLast = t === 'chunked';
      }
    } else if (first === 0x63 /* c */ && nameIs(buf, s, nameEnd, 'connection')) {
      for (const t of latin1(buf, i, lineEnd).split(',')) {
        const tok = t.trim().toLowerCase();
        if (tok === 'close') close = true;
        else if (tok === 'keep-alive') keepAliveToken = true;
      }
    }
    i = lineEnd + 2;
  }
  // RFC 9112 §6.3 lets Transfer-Encoding override Content-Length; a server that sends both is
  // confused or hostile, so the tracker gives up instead of choosing.
  if (transferEncoding && contentLength !== undefined) return { kind: 'error', reason: 'both Content-Length and Transfer-Encoding' };
  const keepAlive = close ? false : version === '1.1' || keepAliveToken;
  return {
    kind: 'ok',
    head: { status, version, contentLength, transferEncoding, chunked: chunkedLast, keepAlive },
    headBytes: headEnd,
  };
}

/** How a message body ends. */
export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'close' };

export type BodyStep =
  | { readonly kind: 'more'; readonly consumed: number }
  | { readonly kind: 'done'; readonly consumed: number }
  | { readonly kind: 'error'; readonly consumed: number; readonly reason: string };

// States of the chunked reader.
const Chunk = {
  Size: 0,
  Ext: 1,
  SizeLf: 2,
  Data: 3,
  DataCr: 4,
  DataLf: 5,
  TrailerStart: 6,
  Trailer: 7,
  TrailerLf: 8,
  EndLf: 9,
} as const;
type ChunkState = (typeof Chunk)[keyof typeof Chunk];

/**
 * Reads one message body incrementally: feed() consumes the body's bytes from the front of a
 * buffer and says whether the body ended there. Bodies are counted, never copied; chunk lines
 * and trailers are bounded (CHUNK_LINE_MAX, `maxTrailerBytes`).
 */
export class BodyReader {
  readonly #framing: BodyFraming;
  readonly #maxTrailerBytes: number;
  #remaining: number;
  #state: ChunkState = Chunk.Size;
  #digits = 0;
  #lineBytes = 0;
  #trailerBytes = 0;

  constructor(framing: BodyFraming, maxTrailerBytes: number) {
    this.#framing = framing;
    this.#maxTrailerBytes = maxTrailerBytes;
    this.#remaining = framing.kind === 'length' ? framing.length : 0;
  }

  /** True when the body is empty: no bytes need to be fed. */
  get empty(): boolean {
    return this.#framing.kind === 'none' || (this.#framing.kind === 'length' && this.#framing.length === 0);
  }

  /** Consumes body bytes from buf[from..]; returns how many and whether the body is complete. */
  feed(buf: Uint8Array, from: number): BodyStep {
    const avail = buf.length - from;
    switch (this.#framing.kind) {
      case 'none':
        return { kind: 'done', consumed: 0 };
      case 'close':
        return { kind: 'more', consumed: avail };
      case 'length': {
        const n = Math.min(avail, this.#remaining);
        this.#remaining -= n;
        return this.#remaining === 0 ? { kind: 'done', consumed: n } : { kind: 'more', consumed: n };
      }
      case 'chunked':
        return this.#chunked(buf, from);
    }
  }

  #chunked(buf: Uint8Array, from: number): BodyStep {
    let i = from;
    const fail = (reason: string): BodyStep => ({ kind: 'error', consumed: i - from, reason });
    while (i < buf.length) {
      const c = buf[i] ?? 0;
      switch (this.#state) {
        case Chunk.Size: {
          const d = hexValue(c);
          if (d >= 0) {
            if (++this.#digits > CHUNK_SIZE_DIGITS_MAX) return fail('chunk size too large');
            this.#remaining = this.#remaining * 16 + d;
          } else if (this.#digits === 0) {
            return fail('invalid chunk size');
          } else if (c === CR) {
            this.#state = Chunk.SizeLf;
          } else if (c === 0x3b /* ; */) {
            this.#state = Chunk.Ext;
          } else {
            return fail('invalid chunk size');
          }
          this.#lineBytes++;
          i++;
          break;
        }
        case Chunk.Ext:
          if (c === CR) this.#state = Chunk.SizeLf;
          else if (c === LF || c === 0x7f || (c < 0x20 && c !== 0x09)) return fail('invalid chunk extension');
          if (++this.#lineBytes > CHUNK_LINE_MAX) return fail('chunk line too long');
          i++;
          break;
        case Chunk.SizeLf:
          if (c !== LF) return fail('bare CR in chunk line');
          i++;
          this.#digits = 0;
          this.#lineBytes = 0;
          this.#state = this.#remaining === 0 ? Chunk.TrailerStart : Chunk.Data;
          break;
        case Chunk.Data: {
          const n = Math.min(buf.length - i, this.#remaining);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
          if (c !== CR) return fail('chunk data not followed by CRLF');
          this.#state = Chunk.DataLf;
          i++;
          break;
        case Chunk.DataLf:
          if (c !== LF) return fail('chunk data not followed by CRLF');
          this.#state = Chunk.Size;
          i++;
          break;
        case Chunk.TrailerStart:
        case Chunk.Trailer:
          if (++this.#trailerBytes > this.#maxTrailerBytes) return fail('trailer section too large');
          if (c === CR) this.#state = this.#state === Chunk.TrailerStart ? Chunk.EndLf : Chunk.TrailerLf;
          else if (c === LF) return fail('bare LF in trailer');
          else this.#state = Chunk.Trailer;
          i++;
          break;
        case Chunk.TrailerLf:
          if (c !== LF) return fail('bare CR in trailer');
          this.#state = Chunk.TrailerStart;
          i++;
          break;
        case Chunk.EndLf:
          if (c !== LF) return fail('bare CR after trailer');
          return { kind: 'done', consumed: i + 1 - from };
      }
    }
    return { kind: 'more', consumed: i - from };
  }
}

/**
 * A Content-Length value: one or more comma-separated copies of the same decimal number
 * (RFC 9110 §8.6), optional whitespace around each; undefined when anything else.
 */
function contentLengthOf(buf: Uint8Array, s: number, e: number): number | undefined {
  let value: number | undefined;
  let i = s;
  for (;;) {
    while (i < e && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
    let n = 0;
    let digits = 0;
    while (i < e && isDigit(buf[i])) {
      n = n * 10 + (buf[i]! - 0x30);
      if (++digits > 15) return undefined;
      i++;
    }
    if (digits === 0 || (value !== undefined && value !== n)) return undefined;
    value = n;
    while (i < e && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
    if (i === e) return value;
    if (buf[i] !== 0x2c /* , */) return undefined;
    i++;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Field values here are short: a plain loop beats spreading a subarray. */
function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i] ?? 0);
  return s;
}
