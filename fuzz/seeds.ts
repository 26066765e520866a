// Seed inputs for each decoder: valid encodings of every kind of value plus a few interesting
// edge cases, built with the repo's own encoders (and, for the ClientHello, captured from Node's
// TLS client). `npm run fuzz -- --write-seeds` writes them into fuzz/corpus/.

import net from 'node:net';
import tls from 'node:tls';
import { encodeBlob, type HandoffBlob } from '../src/wire/blob.ts';
import { crc32c } from '../src/wire/bytes.ts';
import { encodeMessage, type Message } from '../src/wire/frame.ts';
import { encodeQueuedPacket } from '../src/wire/nfqueue.ts';
import { emitTcpFrame } from '../src/wire/packet.ts';
import { encodeProxyV2, PROXY_V2_SIGNATURE } from '../src/wire/proxy-v2.ts';
import { buildClientHello, parseClientHello, wrapRecords } from '../src/wire/tls-hello.ts';
import type { DecoderName } from './targets.ts';

export type Seeds = Record<DecoderName, [label: string, bytes: Uint8Array][]>;

const text = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const cat = (...p: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(p));

const BLOB: HandoffBlob = {
  handoffId: 0x0102030405060708n,
  flowId: 7,
  state: {
    family: 4,
    client: { address: '192.0.2.10', port: 51234 },
    vip: { address: '198.51.100.1', port: 80 },
    sendSeq: 0x11223344,
    recvSeq: 0x55667788,
    window: { sndWl1: 1, sndWnd: 65535, maxWindow: 65535, rcvWnd: 64240, rcvWup: 0x55667788 },
    mss: 1460,
    sndWscale: 7,
    rcvWscale: 9,
    sackPermitted: true,
    timestamps: true,
    finReceived: false,
    tsVal: 0x0a0b0c0d,
    recvQueue: text('GET / HTTP/1.1\r\nHost: a\r\n\r\n'),
    sendQueue: text('ok'),
  },
};

/** A blob with a skippable extension TLV appended (checksum recomputed). */
function withTlv(b: Uint8Array, type: number, flags: number, value: Uint8Array): Uint8Array {
  const body = b.subarray(0, b.length - 4);
  const out = cat(body, Uint8Array.of(type, flags, value.length >>> 8, value.length & 0xff), value, new Uint8Array(4));
  const dv = new DataView(out.buffer);
  dv.setUint32(8, out.length);
  dv.setUint32(out.length - 4, crc32c(out, 0, out.length - 4));
  return out;
}

function blobSeeds(): [string, Uint8Array][] {
  const v4 = encodeBlob(BLOB);
  const v6 = encodeBlob({
    ...BLOB,
    state: { ...BLOB.state, family: 6, client: { address: '2001:db8::1', port: 1 }, vip: { address: '::ffff:10.0.0.1', port: 443 }, recvQueue: new Uint8Array(0), sendQueue: new Uint8Array(0), sackPermitted: false, timestamps: false },
  });
  return [
    ['v4', v4],
    ['v6-empty-queues', v6],
    ['v4-skippable-tlv', withTlv(v4, 9, 1, text('hello'))],
    ['v4-nonskippable-tlv', withTlv(v4, 9, 0, new Uint8Array(0))],
    ['v4-encap-fin', encodeBlob({ ...BLOB, encap: { frontend: '10.0.0.1' }, state: { ...BLOB.state, finReceived: true } })],
    ['v6-encap', encodeBlob({ ...BLOB, encap: { frontend: '2001:db8::fe' }, state: { ...BLOB.state, family: 6, client: { address: '2001:db8::1', port: 1 }, vip: { address: '2001:db8::80', port: 443 } } })],
  ];
}

const MESSAGES: Message[] = [
  { kind: 'hello', protoVersion: 1, nonce: new Uint8Array(32).fill(1), name: 'agent-é' },
  { kind: 'challenge', nonce: new Uint8Array(32).fill(2), proof: new Uint8Array(32).fill(3) },
  { kind: 'auth', proof: new Uint8Array(32).fill(4) },
  { kind: 'auth-ok' },
  { kind: 'handoff', id: 42n, blob: encodeBlob(BLOB) },
  { kind: 'ack', id: 42n, ok: false, code: 'BATON_ERR_X', reason: 'inject: restore window: EINVAL' },
  { kind: 'load', active: 3, seq: 9, commits: 4 },
  { kind: 'load', active: 3, seq: 10, commits: 0xffffffff, capacity: 100 },
  { kind: 'flow-end', id: 42n, family: 4, client: { address: '192.0.2.1', port: 4000 }, vip: { address: '10.0.0.1', port: 80 } },
  { kind: 'flow-end', id: 43n, family: 6, client: { address: '::ffff:192.0.2.1', port: 4000 }, vip: { address: '2001:db8::80', port: 443 } },
  { kind: 'commit', id: 1n },
  { kind: 'abort', id: 0xffff_ffff_ffff_ffffn },
  { kind: 'ping', token: 5n },
  { kind: 'pong', token: 5n },
];

function frameSeeds(): [string, Uint8Array][] {
  const all = MESSAGES.map(encodeMessage);
  return [
    ...MESSAGES.map((m, i): [string, Uint8Array] => [m.kind, all[i]!]),
    ['stream-all', cat(...all)],
    ['unknown-type', Uint8Array.of(0, 0, 0, 1, 0x7f)],
  ];
}

function httpSeeds(): [string, Uint8Array][] {
  return [
    ['get', text('GET /a/b?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n')],
    ['post-cl', text('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')],
    ['post-chunked', text('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')],
    ['http10-absolute', text('\r\nGET http://h.example/p HTTP/1.0\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n')],
    ['connect', text('CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n')],
    ['options-star', text('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n')],
    ['smuggle', text('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n')],
    ['h2-preface', text('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
    // Near the fuzz limits (4096 bytes, 32 fields), which mutation alone rarely reaches.
    ['many-fields', text(`GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 32 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}\r\n`)],
    ['big-cookie', text(`GET / HTTP/1.1\r\nHost: a\r\nCookie: ${'c'.repeat(4040)}\r\n\r\n`)],
    ['chunked-not-last', text('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n')],
    ['content-length-huge', text('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n')],
    ['connect-origin-form', text('CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n')],
  ];
}

function proxySeeds(): [string, Uint8Array][] {
  const v4 = encodeProxyV2({ family: 4, source: { address: '192.0.2.10', port: 51234 }, destination: { address: '198.51.100.1', port: 80 } });
  const v6 = encodeProxyV2({ family: 6, source: { address: '2001:db8::1', port: 1 }, destination: { address: '::ffff:1.2.3.4', port: 443 } });
  const withTlvs = v4.slice();
  const tlvs = Uint8Array.of(0x01, 0, 2, 0x68, 0x32, 0x04, 0, 0);
  const longer = cat(withTlvs, tlvs);
  new DataView(longer.buffer).setUint16(14, 12 + tlvs.length);
  return [
    ['v4', cat(v4, text('GET / HTTP/1.1\r\n'))],
    ['v6', v6],
    ['v4-tlvs', longer],
    ['local', cat(PROXY_V2_SIGNATURE, Uint8Array.of(0x20, 0x00, 0, 0))],
  ];
}

/** The first flight of Node's TLS client with these options, cut at the end of its ClientHello. */
export async function captureClientHello(options: tls.ConnectionOptions): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      let got = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const r = parseClientHello(got);
        if (r.kind === 'incomplete') return;
        s.destroy();
        server.close();
        if (r.kind === 'error') reject(new Error(`captured hello refused: ${r.reason}`));
        else resolve(Uint8Array.from(got.subarray(0, r.byteLength)));
      });
      s.on('error', reject);
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      tls.connect({ host: '127.0.0.1', port, ...options }).on('error', () => {});
    });
  });
}

async function tlsSeeds(): Promise<[string, Uint8Array][]> {
  const node13 = await captureClientHello({ servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] });
  const node12 = await captureClientHello({ servername: 'old.example.com', maxVersion: 'TLSv1.2' });
  return [
    ['node-tls13-sni-alpn', node13],
    ['node-tls12-sni', node12],
    ['node-tls13-split-records', wrapRecords(node13.subarray(5), 100)],
    ['built-no-sni', buildClientHello({ alpn: ['http/1.1'], supportedVersions: [0x0a0a, 0x0304] })],
    ['built-grease-ext', buildClientHello({ sni: 'x.y', extra: [[0x1a1a, new Uint8Array(0)], [0xff01, Uint8Array.of(0)]] })],
    // Handshake header split over records, and more records than the fuzz limit (64).
    ['built-records-of-3', buildClientHello({ sni: 'a.example.com', alpn: ['h2'], recordSize: 3 })],
    ['built-records-of-9', buildClientHello({ sni: 'a.example.com', recordSize: 9 })],
    ['built-records-of-1', buildClientHello({ sni: 'a.example.com', recordSize: 1 })],
    // Refusals deep in the extensions, for the mutator to start from.
    ['built-sni-ipv4', buildClientHello({ sni: '192.0.2.1' })],
    ['built-sni-hyphen', buildClientHello({ sni: 'a-.example.com' })],
    ['built-alpn-empty', buildClientHello({ extra: [[16, Uint8Array.of(0, 0)]] })],
  ];
}

export function nfqueueSeeds(): [string, Uint8Array][] {
  const ip = (family: 4 | 6): Uint8Array =>
    emitTcpFrame({
      family, src: family === 4 ? '192.0.2.10' : '2001:db8::10', dst: family === 4 ? '198.51.100.1' : '2001:db8::1',
      sport: 51234, dport: 80, flags: { ack: true, psh: true }, payload: text('GET / HTTP/1.1\r\n'),
    }).subarray(14);
  const pkt = (id: number, family: 4 | 6, cut?: number): Uint8Array => {
    const full = ip(family);
    const payload = cut === undefined ? full : full.subarray(0, cut);
    return encodeQueuedPacket({ queue: 2983, id, hwProtocol: family === 4 ? 0x0800 : 0x86dd, hook: 0, mark: 0x0ba70000, indev: 2, length: full.length, payload });
  };
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(2, 4);
  ack.writeUInt32LE(9, 8);
  ack.writeInt32LE(-2, 16);
  return [
    ['packet-v4', pkt(1, 4)],
    ['packet-v6', pkt(2, 6)],
    ['packet-v4-cut', pkt(3, 4, 24)],
    ['two-packets-and-an-error', cat(pkt(4, 4), pkt(5, 6), ack)],
  ];
}

export async function allSeeds(): Promise<Seeds> {
  return {
    blob: blobSeeds(),
    frame: frameSeeds(),
    'http-head': httpSeeds(),
    'proxy-v2': proxySeeds(),
    'tls-hello': await tlsSeeds(),
    nfqueue: nfqueueSeeds(),
  };
}
