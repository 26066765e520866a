import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Http1Stream, MAX_PIPELINED, type StreamEvent } from './http1-stream.ts';
import { BodyReader, parseResponseHead } from './http1-framing.ts';
import type { HeadLimits } from './http-head.ts';

const LIMITS: HeadLimits = { maxHeadBytes: 4096, maxHeaders: 64 };
const b = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Events without the parsed head (compared elsewhere), as short strings for table tests. */
function brief(evs: readonly StreamEvent[]): string[] {
  return evs.map((e) => {
    switch (e.kind) {
      case 'requestHead':
        return `req${e.index} ${e.head.method} ${e.head.target} [${e.start},${e.end})`;
      case 'requestComplete':
        return `req${e.index} done @${e.end}`;
      case 'responseHead':
        return `res${e.index} ${e.status}${e.interim ? ' interim' : ''} @${e.end}`;
      case 'responseComplete':
        return `res${e.index} done @${e.end}`;
      case 'idle':
        return `idle ${e.clientOffset}/${e.serverOffset}`;
      case 'closing':
        return `closing ${e.side}: ${e.reason}`;
      case 'pinned':
        return `pinned ${e.reason}`;
    }
  });
}

type Step = readonly ['c' | 's', string] | readonly ['end'];

function run(steps: readonly Step[]): { events: string[]; t: Http1Stream } {
  const t = new Http1Stream(LIMITS);
  const events: string[] = [];
  for (const s of steps) {
    if (s[0] === 'end') events.push(...brief(t.serverEnd()));
    else events.push(...brief(s[0] === 'c' ? t.fromClient(b(s[1])) : t.fromServer(b(s[1]))));
  }
  return { events, t };
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;
const OK = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

interface Row {
  readonly name: string;
  readonly steps: readonly Step[];
  readonly events: readonly string[];
  readonly idle?: boolean;
}

const g1 = GET('/1');
const g2 = GET('/2');
const rows: Row[] = [
  {
    name: 'one GET answered with Content-Length, then idle',
    steps: [['c', g1], ['s', OK('hello')]],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @38', 'res0 done @43', 'idle 28/43'],
    idle: true,
  },
  {
    name: 'not idle while the response body is unfinished, nor once a further request byte arrives',
    steps: [['c', g1], ['s', OK('hello').slice(0, -1)], ['s', 'o'], ['c', 'G']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @38', 'res0 done @43', 'idle 28/43'],
    idle: false,
  },
  {
    name: 'two pipelined requests in one segment; responses in order; idle after the second',
    steps: [['c', g1 + g2], ['s', OK('a')], ['s', OK('bb')]],
    events: [
      'req0 GET /1 [0,28)', 'req0 done @28', 'req1 GET /2 [28,56)', 'req1 done @56',
      'res0 200 @38', 'res0 done @39', 'res1 200 @77', 'res1 done @79', 'idle 56/79',
    ],
    idle: true,
  },
  {
    name: 'POST with a Content-Length body split over segments',
    steps: [['c', 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab'], ['c', 'cde'], ['s', OK('')]],
    events: ['req0 POST /p [0,48)', 'req0 done @53', 'res0 200 @38', 'res0 done @38', 'idle 53/38'],
  },
  {
    name: 'chunked request body with an extension and a trailer',
    steps: [['c', 'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n'], ['s', OK('')]],
    events: ['req0 POST /c [0,57)', 'req0 done @80', 'res0 200 @38', 'res0 done @38', 'idle 80/38'],
  },
  {
    name: 'chunked response, size in hex upper and lower case, with trailers',
    steps: [['c', g1], ['s', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\nf\r\n0123456789abcde\r\n0\r\nX: y\r\n\r\n']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @47', 'res0 done @93', 'idle 28/93'],
  },
  {
    name: 'a response to HEAD has no body whatever its Content-Length',
    steps: [['c', 'HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n'], ['s', 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n']],
    events: ['req0 HEAD /h [0,29)', 'req0 done @29', 'res0 200 @41', 'res0 done @41', 'idle 29/41'],
  },
  {
    name: '204 and 304 have no body',
    steps: [['c', g1 + g2], ['s', 'HTTP/1.1 204 No Content\r\n\r\n'], ['s', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n']],
    events: [
      'req0 GET /1 [0,28)', 'req0 done @28', 'req1 GET /2 [28,56)', 'req1 done @56',
      'res0 204 @27', 'res0 done @27', 'res1 304 @75', 'res1 done @75', 'idle 56/75',
    ],
  },
  {
    name: '100 Continue before the body, then the final response',
    steps: [
      ['c', 'PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n'],
      ['s', 'HTTP/1.1 100 Continue\r\n\r\n'],
      ['c', 'hi'],
      ['s', OK('k')],
    ],
    events: ['req0 PUT /u [0,69)', 'res0 100 interim @25', 'req0 done @71', 'res0 200 @63', 'res0 done @64', 'idle 71/64'],
  },
  {
    name: '103 Early Hints then 200',
    steps: [['c', g1], ['s', 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n' + OK('x')]],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 103 interim @57', 'res0 200 @95', 'res0 done @96', 'idle 28/96'],
  },
  {
    name: 'a response that ends before its request body: idle once the body is in',
    steps: [['c', 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n'], ['s', OK('')], ['c', 'abc']],
    events: ['req0 POST /p [0,48)', 'res0 200 @38', 'res0 done @38', 'req0 done @51', 'idle 51/38'],
  },
  {
    name: 'leading empty lines before a later request belong to it',
    steps: [['c', g1], ['s', OK('')], ['c', '\r\n' + g2], ['s', OK('')]],
    events: [
      'req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @38', 'res0 done @38', 'idle 28/38',
      'req1 GET /2 [28,58)', 'req1 done @58', 'res1 200 @76', 'res1 done @76', 'idle 58/76',
    ],
  },
  {
    name: 'Upgrade answered with 101 pins the connection; nothing is tracked after',
    steps: [['c', GET('/ws', 'Upgrade: websocket\r\nConnection: Upgrade\r\n')], ['s', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00'], ['c', g2]],
    events: ['req0 GET /ws [0,70)', 'req0 done @70', 'res0 101 interim @56', 'pinned upgrade'],
    idle: false,
  },
  {
    name: 'Upgrade declined with 200: tracking goes on',
    steps: [['c', GET('/', 'Upgrade: h2c\r\nConnection: Upgrade\r\n')], ['s', OK('')]],
    events: ['req0 GET / [0,62)', 'req0 done @62', 'res0 200 @38', 'res0 done @38', 'idle 62/38'],
  },
  {
    name: 'CONNECT pins at its head',
    steps: [['c', 'CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n'], ['s', 'HTTP/1.1 200 OK\r\n\r\n']],
    events: ['req0 CONNECT h:443 [0,39)', 'pinned connect'],
    idle: false,
  },
  {
    name: 'a response without a length is close-delimited: closing, complete at the end of the stream',
    steps: [['c', g1], ['s', 'HTTP/1.1 200 OK\r\n\r\nabc'], ['end']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @19', 'closing server: close-delimited response', 'res0 done @22'],
    idle: false,
  },
  {
    name: 'a Transfer-Encoding other than chunked is close-delimited',
    steps: [['c', g1], ['s', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc'], ['end']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @44', 'closing server: close-delimited response', 'res0 done @47'],
    idle: false,
  },
  {
    name: 'Connection: close from the client',
    steps: [['c', GET('/1', 'Connection: close\r\n')], ['s', OK('')]],
    events: ['req0 GET /1 [0,47)', 'closing client: Connection: close', 'req0 done @47', 'res0 200 @38', 'res0 done @38'],
    idle: false,
  },
  {
    name: 'Connection: close from the server',
    steps: [['c', g1], ['s', OK('', 'Connection: close\r\n')]],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @57', 'closing server: Connection: close', 'res0 done @57'],
    idle: false,
  },
  {
    name: 'HTTP/1.0 without keep-alive closes; with keep-alive it does not',
    steps: [['c', 'GET / HTTP/1.0\r\n\r\n'], ['s', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']],
    events: ['req0 GET / [0,18)', 'closing client: HTTP/1.0 request without keep-alive', 'req0 done @18', 'res0 200 @38', 'res0 done @38'],
    idle: false,
  },
  {
    name: 'HTTP/1.0 keep-alive exchange stays open',
    steps: [['c', 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], ['s', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n']],
    events: ['req0 GET / [0,42)', 'req0 done @42', 'res0 200 @62', 'res0 done @62', 'idle 42/62'],
    idle: true,
  },
  // Malformed input pins with 'error' and never throws.
  {
    name: 'a malformed request head',
    steps: [['c', 'GET / HTTP/1.1\nHost: a\r\n\r\n'], ['c', g2]],
    events: ['pinned error'],
    idle: false,
  },
  {
    name: 'a request head over the limit',
    steps: [['c', `GET /${'a'.repeat(5000)}`]],
    events: ['pinned error'],
  },
  {
    name: 'a response with no request',
    steps: [['s', OK('')]],
    events: ['pinned error'],
  },
  {
    name: 'an invalid chunk size',
    steps: [['c', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n']],
    events: ['req0 POST / [0,56)', 'pinned error'],
  },
  {
    name: 'chunk data not followed by CRLF',
    steps: [['c', g1], ['s', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @47', 'pinned error'],
  },
  {
    name: 'a response with both Content-Length and Transfer-Encoding',
    steps: [['c', g1], ['s', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'pinned error'],
  },
  {
    name: 'a bare LF in a response head',
    steps: [['c', g1], ['s', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'pinned error'],
  },
  {
    name: 'an HTTP/2 status line',
    steps: [['c', g1], ['s', 'HTTP/2 200\r\n\r\n']],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'pinned error'],
  },
  {
    name: 'a trailer section over the limit',
    steps: [['c', g1], ['s', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ${'y'.repeat(5000)}`]],
    events: ['req0 GET /1 [0,28)', 'req0 done @28', 'res0 200 @47', 'pinned error'],
  },
];

describe('Http1Stream: table', () => {
  for (const row of rows) {
    it(row.name, () => {
      const { events, t } = run(row.steps);
      assert.deepEqual(events, row.events);
      if (row.idle !== undefined) assert.equal(t.idle, row.idle);
    });
  }

  it('gives the parsed head and its boundaries to requestHead', () => {
    const t = new Http1Stream(LIMITS);
    const [ev] = t.fromClient(b('GET /x?y=1 HTTP/1.1\r\nHost: Example.com\r\nX-A: 1\r\n\r\n'));
    assert.ok(ev?.kind === 'requestHead');
    assert.equal(ev.head.path, '/x');
    assert.equal(ev.head.host, 'example.com');
    assert.equal(ev.head.headerMap.get('x-a'), '1');
  });

  it('counts offsets after pinning and returns no events', () => {
    const t = new Http1Stream(LIMITS);
    t.fromClient(b('CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\nxyz'));
    assert.deepEqual(t.fromClient(b('more')), []);
    assert.deepEqual(t.fromServer(b('HTTP/1.1 200 OK\r\n\r\n')), []);
    assert.equal(t.clientOffset, 35 + 3 + 4);
    assert.equal(t.serverOffset, 19);
    assert.equal(t.pinned, 'connect');
  });

  it('pins when more than MAX_PIPELINED requests are in flight', () => {
    const t = new Http1Stream(LIMITS);
    const evs = t.fromClient(b(g1.repeat(MAX_PIPELINED)));
    assert.equal(evs.filter((e) => e.kind === 'pinned').length, 0);
    assert.deepEqual(brief(t.fromClient(b(g1))).slice(-1), ['pinned error']);
  });

  it('says inRequestBody exactly while body bytes of a request without Upgrade are due', () => {
    const t = new Http1Stream(LIMITS);
    assert.equal(t.inRequestBody, false);
    t.fromClient(b('POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab'));
    assert.equal(t.inRequestBody, true);
    t.fromClient(b('cde'));
    assert.equal(t.inRequestBody, false, 'body complete');
    t.fromClient(b('POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab'));
    assert.equal(t.inRequestBody, true, 'inside a chunked body');
    t.fromClient(b('c\r\n0\r\n\r\n'));
    assert.equal(t.inRequestBody, false);
    t.fromClient(b('POST /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 9\r\n\r\n'));
    assert.equal(t.inRequestBody, false, 'an Upgrade request: its bytes may go to something else than a parser');
    const p = new Http1Stream(LIMITS);
    p.fromClient(b('POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nab'));
    assert.equal(p.pinned, 'error');
    assert.equal(p.inRequestBody, false, 'pinned');
  });

  it('keeps no view of a chunk: a head cut in two parses even when the caller reuses its buffer', () => {
    const t = new Http1Stream(LIMITS);
    const buf = Buffer.alloc(64);
    const feed = (s: string): StreamEvent[] => {
      buf.write(s, 'latin1');
      const evs = t.fromClient(buf.subarray(0, s.length));
      buf.fill(0x7e);
      return evs;
    };
    assert.deepEqual(feed('GET /a HTTP/1.1\r\nHo'), []);
    assert.deepEqual(brief(feed('st: x\r\n\r\n')), ['req0 GET /a [0,28)', 'req0 done @28']);
  });

  it('accepts a request head byte by byte', () => {
    const t = new Http1Stream(LIMITS);
    const evs: StreamEvent[] = [];
    for (const c of g1 + g2) evs.push(...t.fromClient(b(c)));
    assert.deepEqual(brief(evs), ['req0 GET /1 [0,28)', 'req0 done @28', 'req1 GET /2 [28,56)', 'req1 done @56']);
  });
});

describe('parseResponseHead and BodyReader', () => {
  it('reads status, version and framing fields', () => {
    const r = parseResponseHead(b('HTTP/1.0 404 Not Found\r\ncontent-length: 3, 3\r\nConnection: Keep-Alive\r\n\r\nabc'), 4096);
    assert.ok(r.kind === 'ok');
    assert.deepEqual(r.head, { status: 404, version: '1.0', contentLength: 3, transferEncoding: false, chunked: false, keepAlive: true });
    assert.equal(r.headBytes, 72);
  });

  it('accepts a status line without a reason phrase', () => {
    assert.equal(parseResponseHead(b('HTTP/1.1 200\r\n\r\n'), 4096).kind, 'ok');
  });

  for (const [name, s] of [
    ['conflicting Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'],
    ['signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n'],
    ['chunked not last', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n'],
    ['field without colon', 'HTTP/1.1 200 OK\r\nBad\r\n\r\n'],
    ['space before colon', 'HTTP/1.1 200 OK\r\nA : b\r\n\r\n'],
    ['bare CR', 'HTTP/1.1 200 OK\rX\r\n\r\n'],
  ] as const) {
    it(`refuses ${name}`, () => assert.equal(parseResponseHead(b(s), 4096).kind, 'error'));
  }

  it('refuses a chunk size of more than 13 hex digits', () => {
    const r = new BodyReader({ kind: 'chunked' }, 100).feed(b('10000000000000\r\n'), 0);
    assert.equal(r.kind, 'error');
  });

  it('refuses a chunk line over CHUNK_LINE_MAX', () => {
    const r = new BodyReader({ kind: 'chunked' }, 100).feed(b(`1;${'x'.repeat(5000)}`), 0);
    assert.equal(r.kind, 'error');
  });
});

// ---- properties ----

interface Exchange {
  readonly method: 'GET' | 'POST' | 'HEAD';
  readonly reqBody: Body;
  readonly interim: readonly (100 | 103)[];
  readonly status: 200 | 204 | 304 | 404;
  readonly resBody: Body;
}
type Body = { readonly kind: 'length'; readonly data: string } | { readonly kind: 'chunked'; readonly chunks: readonly string[]; readonly trailer: boolean };

const data = fc.string({ unit: fc.constantFrom('a', 'b', '\r', '\n', '0'), maxLength: 40 });
const body: fc.Arbitrary<Body> = fc.oneof(
  data.map((d) => ({ kind: 'length' as const, data: d })),
  fc.record({ kind: fc.constant('chunked' as const), chunks: fc.array(data.filter((d) => d.length > 0), { maxLength: 4 }), trailer: fc.boolean() }),
);
const exchange: fc.Arbitrary<Exchange> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'HEAD'),
  reqBody: body,
  interim: fc.array(fc.constantFrom(100 as const, 103 as const), { maxLength: 2 }),
  status: fc.constantFrom(200 as const, 204 as const, 304 as const, 404 as const),
  resBody: body,
});

function framing(bd: Body): [string, string] {
  if (bd.kind === 'length') return [`Content-Length: ${bd.data.length}\r\n`, bd.data];
  const chunks = bd.chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('');
  return ['Transfer-Encoding: chunked\r\n', `${chunks}0\r\n${bd.trailer ? 'T: x\r\n' : ''}\r\n`];
}

interface Serialised {
  readonly client: string;
  readonly server: string;
  /** Expected boundary events (heads without their parsed value). */
  readonly expected: string[];
  /** For each response, the client offset its request head ends at (causality). */
  readonly resStartsAfter: readonly { readonly server: number; readonly client: number }[];
}

function serialise(xs: readonly Exchange[]): Serialised {
  let client = '';
  let server = '';
  const req: string[] = [];
  const res: string[] = [];
  const resStartsAfter: { server: number; client: number }[] = [];
  xs.forEach((x, i) => {
    const [rf, rb] = x.method === 'POST' ? framing(x.reqBody) : ['', ''];
    const start = client.length;
    client += `${x.method} /${i} HTTP/1.1\r\nHost: h\r\n${rf}\r\n`;
    req.push(`req${i} ${x.method} /${i} [${start},${client.length})`);
    const headEnd = client.length;
    client += rb;
    req.push(`req${i} done @${client.length}`);
    resStartsAfter.push({ server: server.length, client: headEnd });
    for (const s of x.interim) server += `HTTP/1.1 ${s} X\r\n\r\n`;
    const noBody = x.method === 'HEAD' || x.status === 204 || x.status === 304;
    const [sf, sb] = framing(x.resBody);
    server += `HTTP/1.1 ${x.status} X\r\n${x.status === 204 ? '' : sf}\r\n`;
    if (!noBody) server += sb;
    res.push(`res${i} done @${server.length}`);
  });
  return { client, server, expected: [...req, ...res], resStartsAfter };
}

const boundaries = (evs: readonly StreamEvent[]): string[] =>
  brief(evs.filter((e) => e.kind === 'requestHead' || e.kind === 'requestComplete' || e.kind === 'responseComplete'));

/** Cuts `s` at the given positions (taken modulo its length). */
function cut(s: string, at: readonly number[]): string[] {
  const pos = [...new Set(at.map((p) => (s.length === 0 ? 0 : p % s.length)))].sort((x, y) => x - y);
  const out: string[] = [];
  let prev = 0;
  for (const p of pos) {
    if (p > prev) out.push(s.slice(prev, p));
    prev = Math.max(prev, p);
  }
  out.push(s.slice(prev));
  return out.filter((c) => c.length > 0);
}

describe('Http1Stream: properties', () => {
  it('finds the same boundaries whatever the split into segments and the interleaving of the two directions', () => {
    fc.assert(
      fc.property(
        fc.array(exchange, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.array(fc.boolean(), { maxLength: 60 }),
        (xs, cutC, cutS, order) => {
          const s = serialise(xs);
          const cs = cut(s.client, cutC);
          const ss = cut(s.server, cutS);
          const t = new Http1Stream(LIMITS);
          const req: StreamEvent[] = [];
          const res: StreamEvent[] = [];
          let ci = 0;
          let si = 0;
          let cOff = 0;
          let sOff = 0;
          let k = 0;
          // A server segment may go only once the head of the request it answers is in.
          const serverMayGo = (): boolean => {
            const seg = ss[si];
            if (seg === undefined) return false;
            let need = 0;
            for (const r of s.resStartsAfter) if (r.server < sOff + seg.length) need = Math.max(need, r.client);
            return cOff >= need;
          };
          while (ci < cs.length || si < ss.length) {
            const wantServer = order[k++ % Math.max(order.length, 1)] ?? false;
            if ((wantServer || ci >= cs.length) && serverMayGo()) {
              const seg = ss[si++]!;
              res.push(...t.fromServer(b(seg)));
              sOff += seg.length;
            } else if (ci < cs.length) {
              const seg = cs[ci++]!;
              req.push(...t.fromClient(b(seg)));
              cOff += seg.length;
            } else {
              assert.fail('schedule stuck');
            }
          }
          assert.deepEqual([...boundaries(req), ...boundaries(res)], s.expected);
          assert.equal(t.pinned, undefined);
          assert.equal(t.idle, true);
          assert.equal(t.answered, xs.length);
          assert.equal(t.clientOffset, s.client.length);
          assert.equal(t.serverOffset, s.server.length);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('reports idle once per quiet point: after the whole exchange fed request then response, every time', () => {
    fc.assert(
      fc.property(fc.array(exchange, { minLength: 1, maxLength: 5 }), (xs) => {
        const t = new Http1Stream(LIMITS);
        let idles = 0;
        xs.forEach((x, i) => {
          const one = serialise([x]);
          // Renumber the path so the stream stays valid; boundaries are per exchange here.
          for (const e of [...t.fromClient(b(one.client.replace('/0', `/${i}`))), ...t.fromServer(b(one.server))]) {
            if (e.kind === 'idle') idles++;
          }
        });
        assert.equal(idles, xs.length);
      }),
      { numRuns: 200 },
    );
  });

  it('never throws on arbitrary bytes in either direction, and counts every byte', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 200 })), { maxLength: 20 }),
        fc.boolean(),
        (segs, prefix) => {
          const t = new Http1Stream(LIMITS);
          let c = 0;
          let s = 0;
          if (prefix) c += b(g1).length, t.fromClient(b(g1));
          for (const [toServer, bytes] of segs) {
            if (toServer) (t.fromClient(bytes), (c += bytes.length));
            else (t.fromServer(bytes), (s += bytes.length));
          }
          t.serverEnd();
          assert.equal(t.clientOffset, c);
          assert.equal(t.serverOffset, s);
        },
      ),
      { numRuns: 300 },
    );
  });
});
