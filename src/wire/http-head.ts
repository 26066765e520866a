// HTTP/1.x request-head parser for the front-end: it must see the whole head to route, answer
// malformed heads with 400 and oversized ones with 431 (a slow head, 408, is the caller's
// timer), and hand every byte on unchanged. Strict per RFC 9112; one pass, no allocation
// until the head is complete, callable again on the grown buffer after each read.
//
// Decisions a caller relies on:
// - Lines end in CRLF only. A bare LF or bare CR is 400 (RFC 9112 §2.2 allows accepting a
//   bare LF; we do not, so the back-end cannot frame the head differently from us).
// - Empty lines before the request-line are skipped (RFC 9112 §2.2) and count in headBytes.
// - Size limits all answer 431: the whole head (request-line, fields, final CRLF) must fit in
//   maxHeadBytes, the request-line in 8 KiB (REQUEST_LINE_MAX; 414 is not used), and at most
//   maxHeaders field lines are allowed.
// - Errors are found as early as the bytes allow (a TLS ClientHello is refused at its first
//   byte), and an error found on a prefix is the same error on any longer input.
// - Only HTTP/1.0 and HTTP/1.1 are accepted; any other well-formed version (HTTP/2.0, the
//   h2c prior-knowledge preface "PRI * HTTP/2.0", HTTP/1.2) is 505; a malformed one is 400.
// - Field values are the bytes between optional whitespace, as latin1 text (one char per byte).
// - headerMap joins repeated fields in order with ", " (RFC 9110 §5.3), except cookie, joined
//   with "; " (RFC 9113 §8.2.3). headers keeps every line, names lower-cased.
// - host: from the Host field, lower-cased, port removed, IPv6 literals keep their brackets
//   (like WHATWG URL.hostname, "[::1]"); "" when absent (HTTP/1.0) or empty. For absolute-form
//   and CONNECT targets it is the target's authority (RFC 9112 §3.2.2). HTTP/1.1 needs
//   exactly one Host field (400 if missing or repeated), as do all requests that send one.
// - Framing (request smuggling): Content-Length must be digits, repeated values must be
//   identical; Content-Length with Transfer-Encoding, Transfer-Encoding on HTTP/1.0, chunked
//   not last or repeated are 400; an unknown transfer coding is 501.
// - path is the target up to "?", not percent-decoded; "/" for an absolute-form target with
//   an empty path, "*" for OPTIONS *, "" for CONNECT.

import { BatonError } from './errors.ts';
import { parseIPv4, parseIPv6 } from './bytes.ts';

export interface HeadLimits {
  /** Largest head accepted, request-line to final CRLF included. */
  readonly maxHeadBytes: number;
  /** Most field lines accepted. */
  readonly maxHeaders: number;
}

export interface RequestHead {
  readonly method: string;
  /** The request-target as sent. */
  readonly target: string;
  /** target without the query; see the module comment for the other forms. */
  readonly path: string;
  readonly version: '1.0' | '1.1';
  /** Every field line in order: [lower-case name, value]. */
  readonly headers: readonly (readonly [string, string])[];
  /** Fields by lower-case name; repeats joined with ", " (cookie: "; "). */
  readonly headerMap: ReadonlyMap<string, string>;
  /** Lower-case host without port; "" when absent or empty. */
  readonly host: string;
  readonly contentLength: number | undefined;
  /** Transfer-Encoding ends in chunked. */
  readonly chunked: boolean;
  /** Whether the client expects the connection to stay open (version default, Connection field). */
  readonly keepAlive: boolean;
}

export type HeadErrorStatus = 400 | 431 | 501 | 505;

export type HeadResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly status: HeadErrorStatus; readonly reason: string }
  | { readonly kind: 'ok'; readonly head: RequestHead; readonly headBytes: number };

/** Longest request-line accepted (without its CRLF). */
export const REQUEST_LINE_MAX = 8192;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const INCOMPLETE: HeadResult = { kind: 'incomplete' };

// tchar (RFC 9110 §5.6.2): ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = TCHAR[c + 0x20] = 1;
// request-target: visible ASCII except "#" (a fragment is never sent).
const isTargetChar = (c: number): boolean => c > SP && c < 0x7f && c !== 0x23;
// field-value bytes: HTAB, SP, VCHAR, obs-text.
const isValueChar = (c: number): boolean => c === HT || (c >= SP && c !== 0x7f);
const VERSION_SHAPE = 'HTTP/#.#';

const bad = (reason: string): HeadResult => ({ kind: 'error', status: 400, reason });
const tooLarge = (reason: string): HeadResult => ({ kind: 'error', status: 431, reason });

/** Parses the request head at the start of `buf`. Never throws on any bytes. */
export function parseRequestHead(buf: Uint8Array, limits: HeadLimits): HeadResult {
  const { maxHeadBytes, maxHeaders } = limits;
  if (!Number.isInteger(maxHeadBytes) || maxHeadBytes < 1) throw invalidArgument('maxHeadBytes', maxHeadBytes);
  if (!Number.isInteger(maxHeaders) || maxHeaders < 0) throw invalidArgument('maxHeaders', maxHeaders);
  const end = Math.min(buf.length, maxHeadBytes);

  let i = 0;
  while (i < end && buf[i] === CR) {
    if (i + 1 >= end) return outOfData(buf, maxHeadBytes);
    if (buf[i + 1] !== LF) return bad('bare CR');
    i += 2;
  }
  const lines: [number, number][] = []; // [start, end) of each complete line, request-line first
  let lineStart = i;
  // request-line: 0 method, 1 target, 2 version (vk chars of VERSION_SHAPE seen)
  let rlPart = 0;
  let partStart = i;
  let vk = 0;
  // field line: false in name, true in value
  let inValue = false;

  for (; i < end; i++) {
    const c = buf[i] ?? 0;
    if (c === CR) {
      if (i + 1 >= end) break;
      if (buf[i + 1] !== LF) return bad('bare CR');
      if (lines.length === 0) {
        if (rlPart !== 2 || vk !== VERSION_SHAPE.length) return bad('malformed request-line');
        const major = buf[i - 3];
        const minor = buf[i - 1];
        if (major !== 0x31 || (minor !== 0x30 && minor !== 0x31)) {
          return { kind: 'error', status: 505, reason: `unsupported HTTP version ${latin1(buf, i - 3, i)}` };
        }
      } else if (i === lineStart) {
        return finish(buf, lines, i + 2);
      } else {
        if (!inValue) return bad('field line without colon');
        if (lines.length > maxHeaders) return tooLarge(`more than ${maxHeaders} header fields`);
      }
      lines.push([lineStart, i]);
      i++;
      lineStart = i + 1;
      inValue = false;
      continue;
    }
    if (c === LF) return bad('bare LF');
    if (lines.length === 0) {
      if (i - lineStart >= REQUEST_LINE_MAX) return tooLarge(`request-line longer than ${REQUEST_LINE_MAX} bytes`);
      if (rlPart === 0) {
        if (c === SP && i > partStart) (rlPart = 1), (partStart = i + 1);
        else if (TCHAR[c] !== 1) return bad('invalid method');
      } else if (rlPart === 1) {
        if (c === SP && i > partStart) (rlPart = 2), (vk = 0);
        else if (!isTargetChar(c)) return bad('invalid request-target');
      } else {
        const want = VERSION_SHAPE[vk];
        const ok = want === '#' ? c >= 0x30 && c <= 0x39 : want !== undefined && c === want.charCodeAt(0);
        if (!ok) return bad('malformed HTTP version');
        vk++;
      }
    } else if (inValue) {
      if (!isValueChar(c)) return bad('invalid character in field value');
    } else if (c === COLON && i > lineStart) {
      inValue = true;
    } else if (TCHAR[c] !== 1) {
      if (i === lineStart && (c === SP || c === HT)) return bad('obs-fold or whitespace before field name');
      if (c === SP || c === HT) return bad('whitespace before colon');
      return bad(c === COLON ? 'empty field name' : 'invalid character in field name');
    }
  }
  return outOfData(buf, maxHeadBytes);
}

function outOfData(buf: Uint8Array, maxHeadBytes: number): HeadResult {
  return buf.length >= maxHeadBytes ? tooLarge(`request head larger than ${maxHeadBytes} bytes`) : INCOMPLETE;
}

/** The values of every field named `name`, in order. (A loop, not filter/map: this runs for every request head.) */
function allOf(headers: readonly (readonly [string, string])[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i++) if (headers[i]![0] === name) out.push(headers[i]![1]);
  return out;
}

/** Connection field options: close wins; otherwise keep-alive, or the version's default. */
function keepAliveOf(values: readonly string[], version: '1.0' | '1.1'): boolean {
  let keep = version === '1.1';
  for (const v of values) {
    for (const t of v.split(',')) {
      const o = t.trim().toLowerCase();
      if (o === 'close') return false;
      if (o === 'keep-alive') keep = true;
    }
  }
  return keep;
}

/** Builds the head from complete, syntactically valid lines and checks its semantics. */
function finish(buf: Uint8Array, lines: readonly [number, number][], headBytes: number): HeadResult {
  // Index access, not destructuring: array destructuring runs the iterator protocol, per head and per field.
  const rl = latin1(buf, lines[0]![0], lines[0]![1]).split(' ');
  const method = rl[0] ?? '';
  const target = rl[1] ?? '';
  const versionText = rl[2] ?? '';
  const version = versionText === 'HTTP/1.0' ? '1.0' : '1.1';

  const headers: [string, string][] = [];
  const map = new Map<string, string>();
  for (let n = 1; n < lines.length; n++) {
    const s = lines[n]![0];
    const e = lines[n]![1];
    let colon = s;
    while (buf[colon] !== COLON) colon++;
    let vs = colon + 1;
    let ve = e;
    while (vs < ve && (buf[vs] === SP || buf[vs] === HT)) vs++;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    const name = latin1(buf, s, colon).toLowerCase();
    const value = latin1(buf, vs, ve);
    headers.push([name, value]);
    const prev = map.get(name);
    map.set(name, prev === undefined ? value : `${prev}${name === 'cookie' ? '; ' : ', '}${value}`);
  }

  // Host and target form.
  const hosts = allOf(headers, 'host');
  if (hosts.length > 1) return bad('more than one Host field');
  if (hosts.length === 0 && version === '1.1') return bad('missing Host field');
  let host = '';
  if (hosts[0] !== undefined) {
    const h = hostOf(hosts[0], false);
    if (h === undefined) return bad('invalid Host field');
    host = h;
  }
  let path: string;
  if (target.startsWith('/')) {
    if (method === 'CONNECT') return bad('CONNECT needs an authority-form target');
    path = pathOf(target);
  } else if (target === '*') {
    if (method !== 'OPTIONS') return bad('asterisk-form target is only for OPTIONS');
    path = '*';
  } else {
    const abs = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?]*)(.*)$/.exec(target);
    if (abs !== null) {
      if (method === 'CONNECT') return bad('CONNECT needs an authority-form target');
      const h = hostOf(abs[1] ?? '', false);
      if (h === undefined || h === '') return bad('invalid authority in request-target');
      host = h;
      const rest = abs[2] ?? '';
      path = rest === '' || rest.startsWith('?') ? '/' : pathOf(rest);
    } else {
      if (method !== 'CONNECT') return bad('authority-form target is only for CONNECT');
      const h = hostOf(target, true);
      if (h === undefined || h === '') return bad('invalid authority-form target');
      host = h;
      path = '';
    }
  }

  // Framing.
  let contentLength: number | undefined;
  for (const v of allOf(headers, 'content-length')) {
    for (const part of v.split(',')) {
      const t = part.trim();
      if (!/^[0-9]+$/.test(t)) return bad('invalid Content-Length');
      const n = Number(t);
      if (!Number.isSafeInteger(n)) return bad('Content-Length too large');
      if (contentLength !== undefined && contentLength !== n) return bad('conflicting Content-Length values');
      contentLength = n;
    }
  }
  const te = allOf(headers, 'transfer-encoding');
  let chunked = false;
  if (te.length > 0) {
    if (version === '1.0') return bad('Transfer-Encoding on HTTP/1.0');
    if (contentLength !== undefined) return bad('both Content-Length and Transfer-Encoding');
    const codings = te
      .join(',')
      .split(',')
      .map((c) => (c.split(';')[0] ?? '').trim().toLowerCase())
      .filter((c) => c !== '');
    if (codings.length === 0) return bad('empty Transfer-Encoding');
    for (const c of codings) {
      if (!KNOWN_CODINGS.has(c)) return { kind: 'error', status: 501, reason: `unsupported transfer coding ${c}` };
    }
    if (codings[codings.length - 1] !== 'chunked') return bad('chunked is not the last transfer coding');
    if (codings.filter((c) => c === 'chunked').length > 1) return bad('chunked applied more than once');
    chunked = true;
  }

  const keepAlive = keepAliveOf(allOf(headers, 'connection'), version);

  const head: RequestHead = { method, target, path, version, headers, headerMap: map, host, contentLength, chunked, keepAlive };
  return { kind: 'ok', head, headBytes };
}

const KNOWN_CODINGS = new Set(['chunked', 'gzip', 'x-gzip', 'deflate', 'compress', 'x-compress']);

function pathOf(t: string): string {
  const q = t.indexOf('?');
  return q === -1 ? t : t.slice(0, q);
}

const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;

/** uri-host [":" port] (port required if `needPort`) to lower-case host; undefined if invalid. */
function hostOf(v: string, needPort: boolean): string | undefined {
  let name: string;
  let rest: string;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close === -1 || parseIPv6(v.slice(1, close)) === undefined) return undefined;
    name = v.slice(0, close + 1);
    rest = v.slice(close + 1);
  } else {
    const colon = v.indexOf(':');
    name = colon === -1 ? v : v.slice(0, colon);
    rest = colon === -1 ? '' : v.slice(colon);
    if (!REG_NAME.test(name)) return undefined;
    // Something dotted and all digits must be a real IPv4 address.
    if (/^[0-9.]+$/.test(name) && name.includes('.') && parseIPv4(name) === undefined) return undefined;
  }
  if (rest !== '' && !/^:[0-9]*$/.test(rest)) return undefined;
  if (needPort && !/^:[0-9]+$/.test(rest)) return undefined;
  return name.toLowerCase();
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  // Header names and values are short: appending characters beats building a view for apply.
  if (end - start <= 64) {
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
    return s;
  }
  // apply, not spread: spreading a typed array runs its iterator (about 5x slower per head here).
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return s;
}

function invalidArgument(name: string, value: number): BatonError {
  return new BatonError('BATON_ERR_INVALID_ARGUMENT', `parseRequestHead: invalid ${name} ${value}`);
}

const REASON_PHRASES: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/**
 * A minimal complete HTTP/1.1 response with Connection: close and a one-line text body:
 * "<status> <phrase>[: <reason>]\n". `reason` is sent to the client (printable ASCII only,
 * at most 200 characters; anything else becomes "?"), so pass only what may be disclosed.
 * For final statuses that carry a body: 200..599 except 204 and 304.
 */
export function buildResponse(status: number, reason?: string): Uint8Array {
  if (!Number.isInteger(status) || status < 200 || status > 599 || status === 204 || status === 304) {
    throw new BatonError('BATON_ERR_INVALID_ARGUMENT', `buildResponse: invalid status ${status}`);
  }
  const phrase = REASON_PHRASES[status] ?? '';
  const detail = reason === undefined || reason === '' ? '' : `: ${reason.slice(0, 200).replace(/[^\x20-\x7e]/g, '?')}`;
  const body = `${status} ${phrase}${detail}\n`;
  const head =
    `HTTP/1.1 ${status} ${phrase}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    'Connection: close\r\n\r\n';
  return new TextEncoder().encode(head + body);
}
