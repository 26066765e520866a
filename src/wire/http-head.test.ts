import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { REQUEST_LINE_MAX, buildResponse, parseRequestHead, type HeadLimits, type HeadResult, type RequestHead } from './http-head.ts';
import { BatonError } from './errors.ts';

const LIMITS: HeadLimits = { maxHeadBytes: 16384, maxHeaders: 64 };
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const parse = (s: string, limits: HeadLimits = LIMITS): HeadResult => parseRequestHead(latin1(s), limits);

function ok(s: string, limits: HeadLimits = LIMITS): RequestHead {
  const r = parse(s, limits);
  assert.equal(r.kind, 'ok', JSON.stringify(r));
  return (r as Extract<HeadResult, { kind: 'ok' }>).head;
}

function fails(s: string, status: number, reason?: RegExp, limits: HeadLimits = LIMITS): void {
  const r = parse(s, limits);
  assert.equal(r.kind, 'error', `${JSON.stringify(s)} -> ${JSON.stringify(r)}`);
  if (r.kind !== 'error') return;
  assert.equal(r.status, status, `${JSON.stringify(s)}: ${r.reason}`);
  if (reason) assert.match(r.reason, reason);
}

describe('parseRequestHead: accepts', () => {
  it('a plain GET, with the head length and the fields in order', () => {
    const s = 'GET /a/b?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nAccept: */*\r\nX-A:  1 \t\r\n\r\nBODY';
    const r = parse(s);
    assert.ok(r.kind === 'ok');
    assert.equal(r.headBytes, s.length - 4);
    assert.deepEqual(r.head, {
      method: 'GET',
      target: '/a/b?x=1',
      path: '/a/b',
      version: '1.1',
      headers: [
        ['host', 'Example.COM:8080'],
        ['accept', '*/*'],
        ['x-a', '1'],
      ],
      headerMap: new Map([
        ['host', 'Example.COM:8080'],
        ['accept', '*/*'],
        ['x-a', '1'],
      ]),
      host: 'example.com',
      contentLength: undefined,
      chunked: false,
      keepAlive: true,
    });
  });

  it('leading empty lines, counted in headBytes', () => {
    const r = parse('\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.ok(r.kind === 'ok');
    assert.equal(r.headBytes, '\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n'.length);
  });

  it('repeated fields joined with ", ", cookies with "; "', () => {
    const h = ok('GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\ncookie: x=1\r\nACCEPT: b\r\nCookie: y=2\r\n\r\n');
    assert.equal(h.headerMap.get('accept'), 'a, b');
    assert.equal(h.headerMap.get('cookie'), 'x=1; y=2');
    assert.equal(h.headers.length, 5);
  });

  it('empty field values and obs-text as latin1', () => {
    const h = ok('GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n\r\n');
    assert.equal(h.headerMap.get('x-empty'), '');
    assert.equal(h.headerMap.get('x-latin'), 'caf\u00e9');
  });

  it('hosts: port stripped, lower-cased, IPv6 keeps brackets, empty allowed', () => {
    assert.equal(ok('GET / HTTP/1.1\r\nHost: [2001:DB8::1]:443\r\n\r\n').host, '[2001:db8::1]');
    assert.equal(ok('GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n').host, '192.0.2.1');
    assert.equal(ok('GET / HTTP/1.1\r\nHost: \r\n\r\n').host, '');
    assert.equal(ok('GET / HTTP/1.0\r\n\r\n').host, '');
  });

  it('absolute-form: path and host from the target', () => {
    const h = ok('GET http://Other.example:81/p/q?z HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(h.path, '/p/q');
    assert.equal(h.host, 'other.example');
    assert.equal(ok('GET https://x.example?q HTTP/1.1\r\nHost: x.example\r\n\r\n').path, '/');
  });

  it('asterisk-form for OPTIONS and authority-form for CONNECT', () => {
    assert.equal(ok('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n').path, '*');
    const c = ok('CONNECT Proxy.example:443 HTTP/1.1\r\nHost: proxy.example:443\r\n\r\n');
    assert.equal(c.host, 'proxy.example');
    assert.equal(c.path, '');
  });

  it('keep-alive per version and Connection', () => {
    assert.equal(ok('GET / HTTP/1.1\r\nHost: a\r\n\r\n').keepAlive, true);
    assert.equal(ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n').keepAlive, false);
    assert.equal(ok('GET / HTTP/1.0\r\n\r\n').keepAlive, false);
    assert.equal(ok('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true);
  });

  it('body framing: Content-Length (identical repeats) and chunked', () => {
    assert.equal(ok('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n\r\n').contentLength, 42);
    assert.equal(ok('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n').contentLength, 5);
    const c = ok('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n');
    assert.equal(c.chunked, true);
    assert.equal(c.contentLength, undefined);
  });

  it('a head of exactly maxHeadBytes and exactly maxHeaders fields', () => {
    const s = 'GET / HTTP/1.1\r\nHost: a\r\nB: c\r\n\r\n';
    ok(s, { maxHeadBytes: s.length, maxHeaders: 2 });
  });
});

describe('parseRequestHead: incomplete', () => {
  it('until CRLFCRLF arrives', () => {
    for (const s of ['', '\r', '\r\n', 'G', 'GET / HTTP/1.', 'GET / HTTP/1.1\r', 'GET / HTTP/1.1\r\nHost: a\r\n', 'GET / HTTP/1.1\r\nHost: a\r\n\r']) {
      assert.deepEqual(parse(s), { kind: 'incomplete' }, JSON.stringify(s));
    }
  });
});

describe('parseRequestHead: refuses', () => {
  const cases: [string, string, number, RegExp][] = [
    ['bare LF', 'GET / HTTP/1.1\nHost: a\n\n', 400, /bare LF/],
    ['bare LF ending the head', 'GET / HTTP/1.1\r\nHost: a\r\n\n', 400, /bare LF/],
    ['bare CR', 'GET / HTTP/1.1\rHost: a\r\n\r\n', 400, /bare CR/],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n', 400, /obs-fold/],
    ['whitespace before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, /before colon/],
    ['empty field name', 'GET / HTTP/1.1\r\n: a\r\n\r\n', 400, /empty field name/],
    ['field line without colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n', 400, /without colon/],
    ['non-token field name', 'GET / HTTP/1.1\r\nX(y): a\r\n\r\n', 400, /field name/],
    ['control char in value', 'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n', 400, /field value/],
    ['DEL in value', 'GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n', 400, /field value/],
    ['non-token method', 'G(T / HTTP/1.1\r\n\r\n', 400, /method/],
    ['double space', 'GET  / HTTP/1.1\r\n\r\n', 400, /request-target/],
    ['fragment in target', 'GET /#x HTTP/1.1\r\n\r\n', 400, /request-target/],
    ['non-ASCII target', 'GET /\xe9 HTTP/1.1\r\n\r\n', 400, /request-target/],
    ['HTTP/0.9 request-line', 'GET /\r\n\r\n', 400, /request-line/],
    ['lower-case version', 'GET / http/1.1\r\n\r\n', 400, /version/],
    ['trailing space', 'GET / HTTP/1.1 \r\n\r\n', 400, /version/],
    ['missing Host on 1.1', 'GET / HTTP/1.1\r\nX: a\r\n\r\n', 400, /missing Host/],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, /more than one Host/],
    ['invalid Host', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400, /invalid Host/],
    ['invalid Host port', 'GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n', 400, /invalid Host/],
    ['invalid Host IPv6', 'GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n', 400, /invalid Host/],
    ['invalid Host IPv4', 'GET / HTTP/1.1\r\nHost: 300.1.1.1\r\n\r\n', 400, /invalid Host/],
    ['userinfo in absolute-form', 'GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n', 400, /authority/],
    ['asterisk without OPTIONS', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400, /OPTIONS/],
    ['authority-form without CONNECT', 'GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n', 400, /CONNECT/],
    ['CONNECT with a path', 'CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n', 400, /CONNECT/],
    ['CONNECT without port', 'CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n', 400, /authority-form/],
    ['conflicting Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400, /conflicting/],
    ['conflicting Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n', 400, /conflicting/],
    ['negative Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400, /Content-Length/],
    ['empty Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', 400, /Content-Length/],
    ['huge Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n', 400, /too large/],
    ['CL with TE', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /both/],
    ['TE on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /HTTP\/1.0/],
    ['chunked not last', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400, /last/],
    ['chunked twice', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /more than once/],
    ['empty TE', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n', 400, /empty/],
    ['unknown transfer coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br, chunked\r\n\r\n', 501, /br/],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, /2\.0/],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', 505, /1\.2/],
    ['HTTP/0.9 as a version', 'GET / HTTP/0.9\r\n\r\n', 505, /0\.9/],
  ];
  for (const [name, s, status, reason] of cases) {
    it(name, () => fails(s, status, reason));
  }

  it('early, before the head is complete', () => {
    fails('\x16\x03\x01\x02\x00', 400, /method/); // TLS ClientHello
    fails('GET / HTTP/1.1\r\n X', 400, /obs-fold/);
    fails('GET / HTTP/1.1\r\nHost: a\r\nX y', 400, /before colon/);
    fails('PRI * HTTP/2.0\r\n', 505);
  });

  it('431 for every size limit', () => {
    fails('GET / HTTP/1.1\r\nHost: a\r\nB: c\r\n\r\n', 431, /header fields/, { maxHeadBytes: 1000, maxHeaders: 1 });
    const s = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    fails(s, 431, /larger than/, { maxHeadBytes: s.length - 1, maxHeaders: 10 });
    fails('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(100), 431, /larger than/, { maxHeadBytes: 50, maxHeaders: 10 });
    // 19 bytes of prefix: 49 bytes may still end within 50, 50 without a terminator cannot.
    assert.deepEqual(parse('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(30), { maxHeadBytes: 50, maxHeaders: 10 }), { kind: 'incomplete' });
    fails('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(31), 431, /larger than/, { maxHeadBytes: 50, maxHeaders: 10 });
    fails(`GET /${'a'.repeat(REQUEST_LINE_MAX)}`, 431, /request-line/, { maxHeadBytes: 1 << 20, maxHeaders: 10 });
    fails('\r\n'.repeat(10), 431, /larger than/, { maxHeadBytes: 20, maxHeaders: 10 });
  });

  it('invalid limits are a programming error', () => {
    assert.throws(() => parseRequestHead(new Uint8Array(0), { maxHeadBytes: 0, maxHeaders: 1 }), BatonError);
    assert.throws(() => parseRequestHead(new Uint8Array(0), { maxHeadBytes: 10, maxHeaders: -1 }), BatonError);
  });
});

describe('buildResponse', () => {
  it('emits a complete close-delimited response with a text body', () => {
    assert.equal(
      new TextDecoder().decode(buildResponse(400)),
      'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n',
    );
  });

  it('sanitises the reason so it cannot inject lines', () => {
    const text = new TextDecoder().decode(buildResponse(503, 'no back-end\r\nSet-Cookie: x'));
    assert.ok(text.endsWith('\r\n\r\n503 Service Unavailable: no back-end??Set-Cookie: x\n'));
    const [head = '', body = ''] = text.split('\r\n\r\n');
    assert.match(head, new RegExp(`Content-Length: ${body.length}\r\n`));
  });

  it('refuses statuses without a body', () => {
    for (const s of [100, 204, 304, 600, 200.5]) assert.throws(() => buildResponse(s), BatonError);
  });
});

// ---- properties -------------------------------------------------------------------------

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 });
const SPECIAL = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);
const fieldName = token.filter((n) => !SPECIAL.has(n.toLowerCase()));
const vchar = fc.integer({ min: 0x21, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c));
// Values: no leading/trailing whitespace (OWS is trimmed), inner SP and HTAB allowed.
const fieldValue = fc
  .array(fc.oneof(vchar, fc.constantFrom(' ', '\t')), { maxLength: 20 })
  .map((cs) => cs.join('').replace(/^[ \t]+|[ \t]+$/g, ''));
const ows = fc.constantFrom('', ' ', '\t', '  ', ' \t');
const segment = fc.string({ unit: fc.constantFrom(...'abcXYZ019-._~%!$&()*+,;=:@'), maxLength: 8 });
const hostName = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcdefxyzABC0123-.'), minLength: 1, maxLength: 15 }).filter((h) => !/^[0-9.]+$/.test(h)),
  fc.constant('[2001:db8::1]'),
  fc.constant('192.0.2.7'),
);

interface Gen {
  readonly text: string;
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly version: '1.0' | '1.1';
  readonly headers: [string, string][];
  readonly host: string;
  readonly contentLength: number | undefined;
  readonly keepAlive: boolean;
}

const arbRequest: fc.Arbitrary<Gen> = fc
  .record({
    method: token,
    segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
    query: fc.option(fc.string({ unit: fc.constantFrom(...'a=1&b?/'), maxLength: 8 }), { nil: undefined }),
    version: fc.constantFrom<'1.0' | '1.1'>('1.0', '1.1'),
    host: fc.option(fc.tuple(hostName, fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined })), { nil: undefined }),
    fields: fc.array(fc.tuple(fieldName, ows, fieldValue, ows), { maxLength: 8 }),
    hostAt: fc.nat(),
    contentLength: fc.option(fc.nat(), { nil: undefined }),
    connection: fc.constantFrom(undefined, 'close', 'keep-alive', 'Upgrade'),
    leading: fc.constantFrom('', '\r\n'),
  })
  .filter((r) => r.version === '1.0' || r.host !== undefined)
  .map((r) => {
    const path = '/' + r.segments.join('/');
    const target = r.query === undefined ? path : `${path}?${r.query}`;
    const lines: [string, string][] = r.fields.map(([n, a, v, b]) => [n, `${a}${v}${b}`]);
    const headers: [string, string][] = r.fields.map(([n, , v]) => [n.toLowerCase(), v]);
    const insert = (name: string, value: string): void => {
      const at = r.hostAt % (lines.length + 1);
      lines.splice(at, 0, [name, value]);
      headers.splice(at, 0, [name.toLowerCase(), value]);
    };
    if (r.contentLength !== undefined) insert('Content-Length', String(r.contentLength));
    if (r.connection !== undefined) insert('Connection', r.connection);
    if (r.host !== undefined) insert('Host', r.host[1] === undefined ? r.host[0] : `${r.host[0]}:${r.host[1]}`);
    const text = `${r.leading}${r.method} ${target} HTTP/${r.version}\r\n${lines.map(([n, v]) => `${n}:${v}\r\n`).join('')}\r\n`;
    const keepAlive = r.connection === 'close' ? false : r.version === '1.1' || r.connection === 'keep-alive';
    return {
      text,
      method: r.method,
      target,
      path,
      version: r.version,
      headers,
      host: r.host === undefined ? '' : r.host[0].toLowerCase(),
      contentLength: r.contentLength,
      keepAlive,
    };
  });

const BIG: HeadLimits = { maxHeadBytes: 1 << 16, maxHeaders: 100 };

describe('parseRequestHead properties', () => {
  it('random bytes never throw', () => {
    const httpish = fc
      .array(fc.oneof(fc.constantFrom('GET', ' ', '/', 'HTTP/1.1', '\r\n', '\r', '\n', 'Host: a', ':', '\t', 'Content-Length: 1', 'Transfer-Encoding: chunked', 'PRI * HTTP/2.0'), fc.string({ maxLength: 3 })), { maxLength: 20 })
      .map((parts) => latin1(parts.join('').replace(/[^\x00-\xff]/g, '?')));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), httpish), fc.integer({ min: 1, max: 300 }), fc.nat({ max: 5 }), (b, maxHeadBytes, maxHeaders) => {
        const r = parseRequestHead(b, { maxHeadBytes, maxHeaders });
        assert.ok(['incomplete', 'error', 'ok'].includes(r.kind));
      }),
      { numRuns: 3000 },
    );
  });

  it('a generated valid request parses back to what was generated', () => {
    fc.assert(
      fc.property(arbRequest, fc.uint8Array({ maxLength: 16 }), (g, body) => {
        const head = latin1(g.text);
        const bytes = new Uint8Array(head.length + body.length);
        bytes.set(head);
        bytes.set(body, head.length);
        const r = parseRequestHead(bytes, BIG);
        assert.ok(r.kind === 'ok', JSON.stringify(r));
        assert.equal(r.headBytes, head.length);
        const h = r.head;
        assert.deepEqual(
          [h.method, h.target, h.path, h.version, h.headers, h.host, h.contentLength, h.chunked, h.keepAlive],
          [g.method, g.target, g.path, g.version, g.headers, g.host, g.contentLength, false, g.keepAlive],
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('every prefix of a valid head is incomplete', () => {
    fc.assert(
      fc.property(arbRequest, fc.nat(), (g, cut) => {
        const b = latin1(g.text);
        assert.deepEqual(parseRequestHead(b.subarray(0, cut % b.length), BIG), { kind: 'incomplete' });
      }),
      { numRuns: 2000 },
    );
  });

  it('an error on a prefix is the same error on the whole input', () => {
    const httpish = fc
      .array(fc.constantFrom('GET', ' ', '/x', 'HTTP/1.1', 'HTTP/2.0', '\r\n', '\r', 'Host: a', ':', '\t', 'Cl: 1', '\x01', 'é'), { maxLength: 24 })
      .map((parts) => latin1(parts.join('')));
    fc.assert(
      fc.property(httpish, fc.nat(), fc.integer({ min: 1, max: 120 }), fc.nat({ max: 4 }), (b, cut, maxHeadBytes, maxHeaders) => {
        const limits = { maxHeadBytes, maxHeaders };
        const part = parseRequestHead(b.subarray(0, cut % (b.length + 1)), limits);
        if (part.kind !== 'incomplete') assert.deepEqual(parseRequestHead(b, limits), part);
      }),
      { numRuns: 5000 },
    );
  });
});
