import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { BatonError } from './errors.ts';
import {
  TLS_ALERT,
  TLS_ERR,
  alertFor,
  buildAlert,
  buildClientHello,
  isGrease,
  parseClientHello,
  wrapRecords,
  type ClientHelloSpec,
  type HelloLimits,
  type HelloResult,
} from './tls-hello.ts';

const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const u16 = (v: number): Uint8Array => Uint8Array.of(v >>> 8, v & 0xff);

/** The handshake message inside single-record hello bytes. */
const message = (records: Uint8Array): Uint8Array => records.subarray(5);

function errorOf(r: HelloResult): { code: string; field: string } {
  assert.equal(r.kind, 'error', `expected an error, got ${JSON.stringify(r)}`);
  return r.kind === 'error' ? { code: r.code, field: r.field } : { code: '', field: '' };
}

function helloOf(r: HelloResult) {
  assert.equal(r.kind, 'hello', `expected a hello, got ${JSON.stringify(r)}`);
  if (r.kind !== 'hello') throw new Error('unreachable');
  return r;
}

/** The first bytes a Node TLS client sends, read until the parser stops saying incomplete. */
async function capture(options: tls.ConnectionOptions): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      let got = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (parseClientHello(got).kind !== 'incomplete') {
          s.destroy();
          server.close();
          resolve(Uint8Array.from(got));
        }
      });
      s.on('error', reject);
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const client = tls.connect({ host: '127.0.0.1', port, ...options });
      client.on('error', () => {}); // the server hangs up mid-handshake on purpose
    });
  });
}

describe('tls ClientHello from real clients (Node tls.connect)', () => {
  const cases: { name: string; options: tls.ConnectionOptions; sni: string | undefined; alpn: string[]; version: number }[] = [
    { name: 'SNI and h2, http/1.1', options: { servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] }, sni: 'api.example.com', alpn: ['h2', 'http/1.1'], version: 0x0304 },
    { name: 'mixed-case SNI is lower-cased', options: { servername: 'WWW.Example.ORG', ALPNProtocols: ['http/1.1'] }, sni: 'www.example.org', alpn: ['http/1.1'], version: 0x0304 },
    { name: 'deep SNI, no ALPN', options: { servername: 'a-b.c_d.x1.example.net' }, sni: 'a-b.c_d.x1.example.net', alpn: [], version: 0x0304 },
    { name: 'no SNI (connecting to an IP)', options: { ALPNProtocols: ['h2'] }, sni: undefined, alpn: ['h2'], version: 0x0304 },
    { name: 'TLS 1.2 only', options: { servername: 'old.example.com', maxVersion: 'TLSv1.2' }, sni: 'old.example.com', alpn: [], version: 0x0303 },
  ];
  const captured = new Map<string, Uint8Array>();
  before(async () => {
    for (const c of cases) captured.set(c.name, await capture(c.options));
  });

  for (const c of cases) {
    it(`parses: ${c.name}`, () => {
      const bytes = captured.get(c.name)!;
      const r = helloOf(parseClientHello(bytes));
      assert.equal(r.hello.sni, c.sni);
      assert.deepEqual(r.hello.alpn, c.alpn);
      assert.equal(r.hello.version, c.version);
      assert.equal(r.hello.legacyVersion, 0x0303);
      assert.equal(r.byteLength, bytes.length);
      assert.equal(r.records, 1);
      assert.equal(r.hello.extensions.includes(0), c.sni !== undefined);
    });
  }

  it('is incomplete on every proper prefix, and unchanged by bytes that follow', () => {
    for (const [name, bytes] of captured) {
      for (let n = 0; n < bytes.length; n++) {
        assert.deepEqual(parseClientHello(bytes.subarray(0, n)), { kind: 'incomplete' }, `${name}: prefix ${n}`);
      }
      const whole = parseClientHello(bytes);
      // An application-data record or garbage after the hello is not looked at.
      assert.deepEqual(parseClientHello(cat(bytes, hex('170303000501020304 05'))), whole, name);
    }
  });

  it('reads the same hello when the handshake is split over many small records', () => {
    for (const [name, bytes] of captured) {
      const whole = helloOf(parseClientHello(bytes));
      for (const size of [1, 3, 4, 5, 64, 200]) {
        const split = wrapRecords(message(bytes), size);
        const r = helloOf(parseClientHello(split, { maxRecords: 1000 }));
        assert.deepEqual(r.hello, whole.hello, `${name}, records of ${size}`);
        assert.equal(r.byteLength, split.length);
        assert.equal(r.records, Math.ceil((bytes.length - 5) / size));
      }
    }
  });
});

describe('tls ClientHello refusals', () => {
  const good = buildClientHello({ sni: 'a.example.com', alpn: ['h2'] });
  const msg = message(good);
  /** The hello with `ext` (type, body) appended after the built extensions. */
  const withExt = (spec: ClientHelloSpec): Uint8Array => buildClientHello({ sni: 'a.example.com', ...spec });
  const sniExt = (body: Uint8Array): Uint8Array => buildClientHello({ extra: [[0, body]] });
  const sniBody = (...names: (readonly [number, Uint8Array])[]): Uint8Array => {
    const list = cat(...names.map(([t, n]) => cat(Uint8Array.of(t), u16(n.length), n)));
    return cat(u16(list.length), list);
  };
  /** Replaces the body bytes of the single-record hello and fixes the two outer lengths. */
  const withBody = (body: Uint8Array): Uint8Array =>
    cat(hex('160301'), u16(body.length + 4), Uint8Array.of(1, 0, body.length >>> 8, body.length & 0xff), body);
  const body = msg.subarray(4);

  const table: { name: string; bytes: Uint8Array; code: string; field?: string; limits?: HelloLimits }[] = [
    { name: 'plain HTTP at the first byte', bytes: ascii('G'), code: TLS_ERR.CONTENT_TYPE, field: 'records[0].type' },
    { name: 'application data record', bytes: hex('1703030001 00'), code: TLS_ERR.CONTENT_TYPE },
    { name: 'alert record', bytes: hex('15030100020228'), code: TLS_ERR.CONTENT_TYPE },
    { name: 'SSLv2-style hello', bytes: hex('802e0100020015'), code: TLS_ERR.SSLV2 },
    { name: 'record version 2.0', bytes: hex('1602'), code: TLS_ERR.VERSION, field: 'records[0].version' },
    { name: 'record version 3.4', bytes: hex('160304'), code: TLS_ERR.VERSION },
    { name: 'record length 0', bytes: hex('1603010000'), code: TLS_ERR.RECORD_LENGTH, field: 'records[0].length' },
    { name: 'record length over 2^14', bytes: hex('1603014001'), code: TLS_ERR.RECORD_LENGTH },
    { name: 'ServerHello instead of ClientHello', bytes: hex('160303000402'), code: TLS_ERR.HANDSHAKE_TYPE, field: 'handshake.type' },
    { name: 'oversize hello refused at its length field', bytes: hex('1603010004 01004001'), code: TLS_ERR.TOO_LARGE, field: 'handshake.length' },
    { name: 'hello over a configured limit', bytes: good, code: TLS_ERR.TOO_LARGE, limits: { maxHelloBytes: 64 } },
    { name: 'too many records', bytes: wrapRecords(msg, 4), code: TLS_ERR.TOO_LARGE, field: 'records[3]', limits: { maxRecords: 3 } },
    { name: 'trailing handshake bytes in the last record', bytes: cat(hex('160301'), u16(msg.length + 4), msg, hex('14000000')), code: TLS_ERR.LENGTH, field: 'records[0].length' },
    { name: 'alert interleaved between fragments', bytes: cat(wrapRecords(msg.subarray(0, 10), 10), hex('15030100020228')), code: TLS_ERR.CONTENT_TYPE, field: 'records[1].type' },
    { name: 'legacy_version 3.4', bytes: withBody(cat(u16(0x0304), body.subarray(2))), code: TLS_ERR.VERSION, field: 'legacy_version' },
    { name: 'truncated body (no random)', bytes: withBody(hex('0303 0000')), code: TLS_ERR.LENGTH, field: 'random' },
    { name: 'session id of 33 bytes', bytes: withBody(cat(u16(0x0303), new Uint8Array(32), Uint8Array.of(33), new Uint8Array(33))), code: TLS_ERR.LENGTH, field: 'legacy_session_id.length' },
    { name: 'odd cipher_suites length', bytes: withBody(cat(u16(0x0303), new Uint8Array(32), Uint8Array.of(0), u16(3), hex('130113'), hex('0100'))), code: TLS_ERR.LENGTH, field: 'cipher_suites.length' },
    { name: 'no compression methods', bytes: withBody(cat(u16(0x0303), new Uint8Array(32), Uint8Array.of(0), u16(2), hex('1301'), hex('00'))), code: TLS_ERR.LENGTH, field: 'compression_methods.length' },
    { name: 'extensions length overruns', bytes: withBody(cat(u16(0x0303), new Uint8Array(32), Uint8Array.of(0), u16(2), hex('1301'), hex('0100'), u16(0xffff), hex('0000'))), code: TLS_ERR.LENGTH, field: 'extensions' },
    { name: 'bytes after the extensions', bytes: withBody(cat(u16(0x0303), new Uint8Array(32), Uint8Array.of(0), u16(2), hex('1301'), hex('0100'), u16(0), hex('00'))), code: TLS_ERR.LENGTH, field: 'extensions.length' },
    { name: 'extension body overruns the block', bytes: withBody(cat(u16(0x0303), new Uint8Array(32), Uint8Array.of(0), u16(2), hex('1301'), hex('0100'), u16(4), hex('00100005'))), code: TLS_ERR.LENGTH, field: 'extensions[0]' },
    { name: 'duplicate extension', bytes: withExt({ extra: [[0x0017, new Uint8Array(0)], [0x0017, new Uint8Array(0)]] }), code: TLS_ERR.DUPLICATE_EXTENSION, field: 'extensions[3].type' },
    { name: 'two server_name extensions', bytes: withExt({ extra: [[0, sniBody([0, ascii('b.example.com')])]] }), code: TLS_ERR.DUPLICATE_EXTENSION },
    { name: 'server_name type 1', bytes: sniExt(sniBody([1, ascii('a.example.com')])), code: TLS_ERR.SERVER_NAME, field: 'server_name.list[0].type' },
    { name: 'two host names', bytes: sniExt(sniBody([0, ascii('a.example.com')], [0, ascii('b.example.com')])), code: TLS_ERR.SERVER_NAME, field: 'server_name.list' },
    { name: 'empty server_name extension', bytes: sniExt(new Uint8Array(0)), code: TLS_ERR.LENGTH, field: 'server_name.list.length' },
    { name: 'empty server name list', bytes: sniExt(u16(0)), code: TLS_ERR.LENGTH, field: 'server_name.list[0].type' },
    { name: 'host name overruns its list', bytes: sniExt(cat(u16(5), hex('00 0009 6162'))), code: TLS_ERR.LENGTH, field: 'server_name.list[0]' },
    { name: 'bytes after the name list', bytes: sniExt(cat(sniBody([0, ascii('a.b')]), hex('00'))), code: TLS_ERR.SERVER_NAME, field: 'server_name.list.length' },
    { name: 'ALPN list empty', bytes: withExt({ extra: [[16, u16(0)]] }), code: TLS_ERR.ALPN, field: 'alpn.list' },
    { name: 'ALPN empty name', bytes: withExt({ extra: [[16, cat(u16(4), hex('02 6832 00'))]] }), code: TLS_ERR.ALPN, field: 'alpn.list[1].length' },
    { name: 'ALPN name overruns', bytes: withExt({ extra: [[16, cat(u16(4), hex('05 6832 00'))]] }), code: TLS_ERR.LENGTH, field: 'alpn.list[0]' },
    { name: 'supported_versions odd', bytes: withExt({ supportedVersions: [], extra: [[43, hex('03 0304 03')]] }), code: TLS_ERR.SUPPORTED_VERSIONS },
  ];

  for (const c of table) {
    it(`refuses: ${c.name}`, () => {
      const e = errorOf(parseClientHello(c.bytes, c.limits));
      assert.equal(e.code, c.code);
      if (c.field !== undefined) assert.equal(e.field, c.field);
    });
  }

  const badNames = ['a.example.com.', '192.0.2.1', 'a..b', '.a', `${'x'.repeat(64)}.com`, `${'a.'.repeat(127)}ab`, '-a.com', 'a-.com', 'a b.com', 'a*.com', 'ä.com', '[::1]', 'a:443'];
  for (const name of badNames) {
    it(`refuses server name ${JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}...` : name)}`, () => {
      assert.deepEqual(errorOf(parseClientHello(buildClientHello({ sni: name }))), { code: TLS_ERR.SERVER_NAME, field: 'server_name.list[0]' });
    });
  }

  it('accepts the longest names and labels and a hello with no extensions block', () => {
    const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.equal(longest.length, 253);
    assert.equal(helloOf(parseClientHello(buildClientHello({ sni: longest.toUpperCase() }))).hello.sni, longest);
    const noExt = withBody(cat(u16(0x0301), new Uint8Array(32), Uint8Array.of(0), u16(2), hex('002f'), hex('0100')));
    assert.deepEqual(helloOf(parseClientHello(noExt)).hello, { sni: undefined, alpn: [], legacyVersion: 0x0301, supportedVersions: [], version: 0x0301, extensions: [] });
  });

  it('ignores GREASE versions when choosing the version', () => {
    const r = helloOf(parseClientHello(buildClientHello({ supportedVersions: [0x7a7a, 0x0303, 0x0304] })));
    assert.deepEqual(r.hello.supportedVersions, [0x0303, 0x0304]);
    assert.equal(r.hello.version, 0x0304);
    assert.ok(isGrease(0x0a0a) && isGrease(0xfafa) && !isGrease(0x0a1a) && !isGrease(0x0304));
  });

  it('maps refusals to the fatal alert to send, none for peers that do not speak TLS', () => {
    assert.equal(alertFor(TLS_ERR.CONTENT_TYPE), undefined);
    assert.equal(alertFor(TLS_ERR.SSLV2), undefined);
    assert.equal(alertFor(TLS_ERR.VERSION), TLS_ALERT.protocolVersion);
    assert.equal(alertFor(TLS_ERR.SERVER_NAME), TLS_ALERT.illegalParameter);
    assert.equal(alertFor(TLS_ERR.TOO_LARGE), TLS_ALERT.decodeError);
    assert.equal(Buffer.from(buildAlert(TLS_ALERT.unrecognizedName)).toString('hex'), '15030300020270');
  });

  it('throws only for invalid limits', () => {
    for (const limits of [{ maxHelloBytes: 3 }, { maxHelloBytes: 1.5 }, { maxRecords: 0 }, { maxHelloBytes: 2 ** 25 }]) {
      assert.throws(() => parseClientHello(good, limits), (e: unknown) => e instanceof BatonError && e.code === 'BATON_ERR_INVALID_ARGUMENT');
    }
  });
});

describe('tls ClientHello properties', () => {
  const label = fc.string({ unit: fc.constantFrom(...'abcxyzABZ019_'), minLength: 1, maxLength: 10 });
  const dnsName = fc
    .array(label, { minLength: 1, maxLength: 5 })
    .map((ls) => ls.join('.'))
    .filter((s) => !/^[0-9.]+$/.test(s));
  const proto = fc.string({ unit: fc.constantFrom(...'h2/.1abcdef-'), minLength: 1, maxLength: 12 });
  const spec = fc.record({
    sni: fc.option(dnsName, { nil: undefined }),
    alpn: fc.array(proto, { maxLength: 4 }),
    supportedVersions: fc.array(fc.constantFrom(0x0301, 0x0302, 0x0303, 0x0304, 0x0a0a, 0xdada), { maxLength: 4 }),
    recordSize: fc.integer({ min: 1, max: 400 }),
  });

  it('round-trips built hellos: sni lower-cased, alpn in order, versions without GREASE', () => {
    fc.assert(
      fc.property(spec, (s) => {
        const bytes = buildClientHello(s);
        const r = parseClientHello(bytes, { maxRecords: 100_000 });
        const nonGrease = s.supportedVersions.filter((v) => !isGrease(v));
        assert.equal(r.kind, 'hello', JSON.stringify(r));
        if (r.kind !== 'hello') return;
        assert.equal(r.hello.sni, s.sni?.toLowerCase());
        assert.deepEqual(r.hello.alpn, s.alpn);
        assert.deepEqual(r.hello.supportedVersions, nonGrease);
        assert.equal(r.hello.version, nonGrease.length > 0 ? Math.max(...nonGrease) : 0x0303);
        assert.equal(r.byteLength, bytes.length);
      }),
    );
  });

  /** Valid hellos with a few bytes overwritten, cut at a random point. */
  const mutated = fc.tuple(spec, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat()).map(([s, edits, cut]) => {
    const b = buildClientHello(s).slice();
    for (const [at, v] of edits) b[at % b.length] = v;
    return { bytes: b, cut: cut % (b.length + 1) };
  });

  it('decides within maxHelloBytes + 5 x maxRecords bytes, so a reader buffers no more', () => {
    const limits = { maxHelloBytes: 64, maxRecords: 4 };
    const bound = limits.maxHelloBytes + 5 * limits.maxRecords;
    const longInput = fc.oneof(
      fc.uint8Array({ minLength: bound + 1, maxLength: bound + 40 }).map((b) => {
        b[0] = 22; // mostly get past the first-byte refusals
        b[1] = 3;
        b[2] = 1;
        return b;
      }),
      fc.tuple(spec, fc.integer({ min: 1, max: 30 })).map(([s, size]) => buildClientHello({ ...s, recordSize: size })).filter((b) => b.length > bound),
    );
    fc.assert(
      fc.property(longInput, (bytes) => {
        assert.notEqual(parseClientHello(bytes, limits).kind, 'incomplete');
      }),
      { numRuns: 500 },
    );
  });

  it('never throws, and a result found on a prefix is the result on the whole input', () => {
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ bytes, cut: bytes.length >>> 1 }))), ({ bytes, cut }) => {
        const whole = parseClientHello(bytes, { maxRecords: 100_000 });
        const prefix = parseClientHello(bytes.subarray(0, cut), { maxRecords: 100_000 });
        if (prefix.kind !== 'incomplete') assert.deepEqual(whole, prefix);
        if (whole.kind === 'hello') assert.ok(whole.byteLength <= bytes.length);
      }),
      { numRuns: 2000 },
    );
  });
});
