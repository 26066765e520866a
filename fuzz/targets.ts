// The fuzz targets: one per decoder of untrusted bytes. Each target's `check` is a pure function
// of the input bytes: it runs the decoder, asserts the properties below, and returns a short
// outcome signature (the result kind or error code and field, digits folded) that the fuzzer
// uses as cheap feedback. A property violation or any exception other than the decoder's own
// typed refusal is thrown as a Crash.
//
// Properties, per decoder:
// - only the decoder's typed refusal escapes (WireError / FrameError), or none for the
//   result-returning parsers (parseRequestHead, parseClientHello);
// - outputs are bounded by the input (no result larger than the bytes it came from);
// - decode -> encode -> bytes round trips where an encoder exists (blob, frames, PROXY v2,
//   and ClientHello via its builder);
// - incremental parsers give, on any prefix that is not 'incomplete', the result of the whole.

import { isDeepStrictEqual } from 'node:util';
import { WireError } from '../src/wire/errors.ts';
import { BLOB_FIXED_LENGTH, decodeBlob, encodeBlob, type BlobLimits } from '../src/wire/blob.ts';
import { crc32c } from '../src/wire/bytes.ts';
import { FrameDecoder, FrameError, decodeMessage, encodeMessage, type Frame } from '../src/wire/frame.ts';
import { parseRequestHead, type HeadLimits } from '../src/wire/http-head.ts';
import { DecapPacketError, decapsulatePacket } from '../src/wire/decap-packet.ts';
import { encodeQueuedPacket, NFQA_SKB_CSUMNOTREADY, packetTuple, parseDatagram } from '../src/wire/nfqueue.ts';
import { decodeProxyV2, encodeProxyV2 } from '../src/wire/proxy-v2.ts';
import { buildClientHello, parseClientHello, type HelloLimits } from '../src/wire/tls-hello.ts';

/** A property violation or an unexpected exception. `signature` groups equal crashes. */
export class Crash extends Error {
  readonly signature: string;
  constructor(signature: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Crash';
    this.signature = signature;
  }
}

export interface Target {
  readonly name: DecoderName;
  /** Largest input the mutator builds for this target. */
  readonly maxInput: number;
  /** Runs the decoder and its properties; returns an outcome signature; throws Crash. */
  check(input: Uint8Array): string;
  /**
   * Optionally repairs a mutated input so it passes outer integrity checks (the blob's length
   * and CRC) and reaches the deeper fields; applied to a share of inputs only.
   */
  fixup?(input: Uint8Array): Uint8Array;
}

export const DECODERS = ['blob', 'frame', 'http-head', 'proxy-v2', 'tls-hello', 'nfqueue'] as const;
export type DecoderName = (typeof DECODERS)[number];

const fold = (field: string): string => field.replace(/\d+/g, '#');

function expect(cond: boolean, signature: string, message: string): asserts cond {
  if (!cond) throw new Crash(signature, message);
}

/** Runs fn; an allowed WireError becomes its signature, anything else a Crash. */
export function typed(name: string, fn: () => string, allowed: (e: unknown) => boolean = (e) => e instanceof WireError): string {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Crash) throw e;
    if (allowed(e) && e instanceof WireError) return `err:${e.code}:${fold(e.field)}`;
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new Crash(`${name}:throw:${e instanceof Error ? e.name : typeof e}`, `${name}: unexpected exception ${what}`, { cause: e });
  }
}

const eqBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

// ---------------------------------------------------------------------------------------------

const BLOB_LIMITS: BlobLimits = { maxBytes: 1 << 20, maxQueueBytes: 1 << 19 };
const TLV_START = BLOB_FIXED_LENGTH;

const blob: Target = {
  name: 'blob',
  maxInput: 4096,
  check(input) {
    return typed('blob', () => {
      const b = decodeBlob(input, BLOB_LIMITS);
      const s = b.state;
      expect(s.recvQueue.length + s.sendQueue.length <= input.length, 'blob:bound', 'blob: queues larger than the input');
      const again = encodeBlob(b, BLOB_LIMITS);
      // Skipped extensions are dropped by design, so bytes match exactly only when the tail holds
      // nothing or just the ENCAP extension (whose reserved flag bits a reader ignores).
      const tlvAt = TLV_START + s.recvQueue.length + s.sendQueue.length;
      const tail = input.length - 4 - tlvAt;
      const onlyEncap = b.encap !== undefined && tail === 20 && input[tlvAt + 1] === again[tlvAt + 1];
      if (tail === 0 || onlyEncap) expect(eqBytes(again, input), 'blob:roundtrip', 'blob: encode(decode(x)) != x');
      expect(isDeepStrictEqual(decodeBlob(again, BLOB_LIMITS), b), 'blob:redecode', 'blob: decode(encode(decode(x))) != decode(x)');
      return `ok:${s.family}:${tail === 0 ? 'plain' : onlyEncap ? 'encap' : 'tlv'}:${s.finReceived ? 'fin' : ''}`;
    });
  },
  fixup(input) {
    if (input.length < 12 + 4) return input;
    const out = input.slice();
    new DataView(out.buffer).setUint32(8, out.length);
    new DataView(out.buffer).setUint32(out.length - 4, crc32c(out, 0, out.length - 4));
    return out;
  },
};

// ---------------------------------------------------------------------------------------------

const FRAME_LIMIT = 2048;

/** Frames and the terminal outcome from pushing `input` in chunks of `chunk` bytes. */
function cut(input: Uint8Array, chunk: number): { frames: Frame[]; end: string } {
  const d = new FrameDecoder(FRAME_LIMIT);
  const frames: Frame[] = [];
  try {
    for (let at = 0; at < input.length; at += chunk) {
      d.push(input.subarray(at, Math.min(input.length, at + chunk)));
      for (let f = d.next(); f !== undefined; f = d.next()) frames.push(f);
    }
    return { frames, end: d.bufferedBytes === 0 ? 'clean' : `partial` };
  } catch (e) {
    if (e instanceof FrameError) return { frames, end: `err:${e.code}:${fold(e.field)}` };
    throw e;
  }
}

const frame: Target = {
  name: 'frame',
  maxInput: 4096,
  check(input) {
    return typed('frame', () => {
      const whole = cut(input, input.length || 1);
      const pieces = cut(input, (input.length % 13) + 1);
      expect(whole.end === pieces.end && whole.frames.length === pieces.frames.length, 'frame:chunking', 'frame: result depends on how the stream is cut');
      let total = 0;
      const kinds: string[] = [];
      for (const [i, f] of whole.frames.entries()) {
        const p = pieces.frames[i]!;
        expect(f.type === p.type && eqBytes(f.payload, p.payload), 'frame:chunking', `frame: frame ${i} differs with chunking`);
        total += 5 + f.payload.length;
        let m;
        try {
          m = decodeMessage(f);
        } catch (e) {
          if (e instanceof FrameError) {
            kinds.push(`err:${e.code}:${fold(e.field)}`);
            continue;
          }
          throw e;
        }
        kinds.push(m.kind);
        const bytes = encodeMessage(m);
        const original = input.subarray(total - 5 - f.payload.length, total);
        expect(eqBytes(bytes, original), `frame:roundtrip:${m.kind}`, `frame: encode(decode(${m.kind})) != frame bytes`);
      }
      expect(total <= input.length, 'frame:bound', 'frame: frames larger than the input');
      // Bounded feedback: how the stream ended, how many frames, the first refusal, the last kind.
      const bucket = kinds.length === 0 ? '0' : kinds.length === 1 ? '1' : kinds.length < 4 ? '2-3' : '4+';
      return `${whole.end}:${bucket}:${kinds.find((k) => k.startsWith('err:')) ?? 'ok'}:${kinds.at(-1) ?? '-'}`;
    }, (e) => e instanceof FrameError);
  },
};

// ---------------------------------------------------------------------------------------------

const HEAD_LIMITS: HeadLimits = { maxHeadBytes: 4096, maxHeaders: 32 };

const httpHead: Target = {
  name: 'http-head',
  maxInput: 6000,
  check(input) {
    return typed('http-head', () => {
      const r = parseRequestHead(input, HEAD_LIMITS);
      const p = parseRequestHead(input.subarray(0, Math.max(0, input.length - (input.length % 5) - 1)), HEAD_LIMITS);
      if (p.kind !== 'incomplete') expect(isDeepStrictEqual(p, r), `http-head:prefix:${p.kind}`, 'http-head: a prefix decided differently from the whole');
      if (r.kind === 'ok') {
        expect(r.headBytes <= Math.min(input.length, HEAD_LIMITS.maxHeadBytes), 'http-head:bound', 'http-head: headBytes beyond the input or limit');
        expect(r.head.headers.length <= HEAD_LIMITS.maxHeaders, 'http-head:bound', 'http-head: more headers than the limit');
        const again = parseRequestHead(input.subarray(0, r.headBytes), HEAD_LIMITS);
        expect(isDeepStrictEqual(again, r), 'http-head:reparse', 'http-head: parse of the head alone differs');
        return `ok:${r.head.version}:${r.head.chunked ? 'chunked' : r.head.contentLength === undefined ? 'none' : 'cl'}`;
      }
      // The reason's first words name the check; the rest quotes the input.
      return r.kind === 'error' ? `err:${r.status}:${r.reason.split(' ').slice(0, 3).join(' ').replace(/\d+/g, '#')}` : 'incomplete';
    }, () => false);
  },
};

// ---------------------------------------------------------------------------------------------

const proxyV2: Target = {
  name: 'proxy-v2',
  maxInput: 1024,
  check(input) {
    return typed('proxy-v2', () => {
      const r = decodeProxyV2(input);
      if (r.kind === 'incomplete') return 'incomplete';
      expect(r.byteLength <= input.length, 'proxy-v2:bound', 'proxy-v2: byteLength beyond the input');
      const h = r.header;
      let tlvBytes = 0;
      for (const t of h.tlvs) tlvBytes += 3 + t.value.length;
      expect(tlvBytes <= r.byteLength, 'proxy-v2:bound', 'proxy-v2: TLVs larger than the header');
      const again = decodeProxyV2(input.subarray(0, r.byteLength));
      expect(isDeepStrictEqual(again, r), 'proxy-v2:reparse', 'proxy-v2: decode of the header alone differs');
      if (h.addresses !== undefined) {
        const enc = encodeProxyV2(h.addresses);
        const plain = input[12] === 0x21 && h.tlvs.length === 0 && r.byteLength === enc.length;
        if (plain) expect(eqBytes(enc, input.subarray(0, r.byteLength)), 'proxy-v2:roundtrip', 'proxy-v2: encode(decode(x)) != x');
        const d = decodeProxyV2(enc);
        expect(d.kind === 'ok' && isDeepStrictEqual(d.header.addresses, h.addresses), 'proxy-v2:redecode', 'proxy-v2: addresses do not round-trip');
      }
      return `ok:${h.command}:${h.addresses?.family ?? 'none'}:${h.tlvs.length > 0 ? 'tlv' : ''}`;
    });
  },
};

// ---------------------------------------------------------------------------------------------

const HELLO_LIMITS: HelloLimits = { maxHelloBytes: 16384, maxRecords: 64 };

const tlsHello: Target = {
  name: 'tls-hello',
  maxInput: 20000,
  check(input) {
    return typed('tls-hello', () => {
      const r = parseClientHello(input, HELLO_LIMITS);
      const cutAt = input.length - (input.length % 7) - 1;
      const p = parseClientHello(input.subarray(0, Math.max(0, cutAt)), HELLO_LIMITS);
      if (p.kind !== 'incomplete') expect(isDeepStrictEqual(p, r), `tls-hello:prefix:${p.kind}`, 'tls-hello: a prefix decided differently from the whole');
      if (r.kind === 'incomplete') return 'incomplete';
      if (r.kind === 'error') return `err:${r.code}:${fold(r.field)}`;
      const h = r.hello;
      expect(r.byteLength <= input.length, 'tls-hello:bound', 'tls-hello: byteLength beyond the input');
      expect(h.alpn.length <= r.byteLength / 2 && h.extensions.length <= r.byteLength / 4, 'tls-hello:bound', 'tls-hello: more items than bytes allow');
      expect(h.sni === undefined || (h.sni.length <= 253 && h.sni === h.sni.toLowerCase()), 'tls-hello:sni', 'tls-hello: sni not a lower-case name');
      const again = parseClientHello(input.subarray(0, r.byteLength), HELLO_LIMITS);
      expect(isDeepStrictEqual(again, r), 'tls-hello:reparse', 'tls-hello: parse of the records alone differs');
      const built = parseClientHello(buildClientHello({ sni: h.sni, alpn: h.alpn, supportedVersions: h.supportedVersions, legacyVersion: h.legacyVersion }));
      expect(
        built.kind === 'hello' && built.hello.sni === h.sni && isDeepStrictEqual(built.hello.alpn, h.alpn) && built.hello.version === h.version,
        'tls-hello:roundtrip',
        'tls-hello: build(parse(x)) does not parse to the same sni/alpn/version',
      );
      const version = h.version >= 0x0300 && h.version <= 0x0304 ? h.version.toString(16) : 'other';
      return `ok:${h.sni === undefined ? 'nosni' : 'sni'}:${Math.min(h.alpn.length, 2)}:${version}:${r.records > 1 ? 'multi' : 'one'}`;
    }, () => false);
  },
};

// ---------------------------------------------------------------------------------------------

const nfqueue: Target = {
  name: 'nfqueue',
  maxInput: 2048,
  check(input) {
    return typed('nfqueue', () => {
      const ms = parseDatagram(input);
      let packets = 0;
      for (const m of ms) {
        if (m.kind !== 'packet') continue;
        packets++;
        const end = m.payload.byteOffset + m.payload.length;
        expect(m.payload.byteOffset >= input.byteOffset && end <= input.byteOffset + input.length, 'nfqueue:bound', 'nfqueue: payload outside the input');
        const { kind: _kind, ...fields } = m;
        const again = parseDatagram(encodeQueuedPacket(fields));
        expect(again.length === 1 && isDeepStrictEqual({ ...again[0], payload: Buffer.from((again[0] as typeof m).payload) }, { ...m, payload: Buffer.from(m.payload) }), 'nfqueue:roundtrip', 'nfqueue: encode(decode(x)) decodes differently');
        const t = packetTuple(m.payload);
        if (t !== undefined) expect(t.sport <= 0xffff && t.dport <= 0xffff, 'nfqueue:tuple', 'nfqueue: tuple ports out of range');
        // a queued packet restored in userspace (encapsulated before its mapping): refused typed, or the same length
        if (t !== undefined) {
          const to = t.family === 4
            ? { family: 4 as const, client: { address: '198.51.100.7', port: 40000 }, vip: { address: '203.0.113.10', port: 80 } }
            : { family: 6 as const, client: { address: '2001:db8::7', port: 40000 }, vip: { address: '2001:db8::10', port: 80 } };
          try {
            const out = decapsulatePacket(m.payload, to, { checksumPartial: ((m.skbInfo ?? 0) & NFQA_SKB_CSUMNOTREADY) !== 0 });
            expect(out.length === m.payload.length, 'nfqueue:decap-length', 'nfqueue: a restored packet changed length');
          } catch (e) {
            if (!(e instanceof DecapPacketError)) throw e;
          }
        }
      }
      return `ok:${Math.min(ms.length, 3)}:${Math.min(packets, 2)}`;
    });
  },
};

export const TARGETS: Readonly<Record<DecoderName, Target>> = {
  blob,
  frame,
  'http-head': httpHead,
  'proxy-v2': proxyV2,
  'tls-hello': tlsHello,
  nfqueue,
};
