// A byte-level mutator in the style of libFuzzer's: stacked random edits (bit flips, interesting
// integers at random offsets, inserts, deletes, duplicated ranges, splices with other inputs,
// dictionary tokens). Deterministic for a given seed, so a campaign can be replayed.

/** xorshift32: fast, seeded, good enough to pick mutations. Not for anything secret. */
export class Rand {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s % n;
  }
  chance(p: number): boolean {
    return this.int(1 << 20) < p * (1 << 20);
  }
}

const BYTES = [0x00, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0d, 0x10, 0x16, 0x20, 0x3a, 0x40, 0x7f, 0x80, 0xfe, 0xff];
const U16S = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0x4001, 0x7fff, 0x8000, 0xfffe, 0xffff];
const U32S = [0, 1, 4, 0x68, 0x6c, 0x100, 0xffff, 0x10000, 0x100000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export interface MutateOptions {
  readonly maxLength: number;
  /** Other inputs to splice from. */
  readonly pool: readonly Uint8Array[];
  /** Tokens worth inserting (e.g. "\r\n", "Host:"). */
  readonly dictionary?: readonly Uint8Array[];
}

/** A mutated copy of `input` (1 to 8 stacked edits), at most maxLength bytes. */
export function mutate(input: Uint8Array, r: Rand, o: MutateOptions): Uint8Array {
  let b = input;
  const edits = 1 + r.int(r.chance(0.2) ? 8 : 3);
  for (let e = 0; e < edits; e++) b = edit(b, r, o);
  return b.length > o.maxLength ? b.subarray(0, o.maxLength) : b;
}

function edit(b: Uint8Array, r: Rand, o: MutateOptions): Uint8Array {
  const n = b.length;
  const pos = (extra = 0): number => r.int(n + extra);
  switch (r.int(n === 0 ? 2 : 13)) {
    case 0: // insert random bytes
      return splice(b, pos(1), 0, Uint8Array.from({ length: 1 + r.int(8) }, () => r.int(256)));
    case 1: // insert a token, or an interesting byte
      return splice(b, pos(1), 0, token(r, o));
    case 2: {
      const out = b.slice();
      const i = pos();
      out[i] = (out[i] ?? 0) ^ (1 << r.int(8));
      return out;
    }
    case 3: {
      const out = b.slice();
      out[pos()] = r.chance(0.5) ? r.int(256) : BYTES[r.int(BYTES.length)]!;
      return out;
    }
    case 4: {
      const out = b.slice();
      const i = pos();
      out[i] = ((out[i] ?? 0) + (r.chance(0.5) ? 1 : -1) * (1 + r.int(4))) & 0xff;
      return out;
    }
    case 5: // interesting u16, big-endian (every length field here is big-endian)
      return putInt(b, pos(), r.chance(0.7) ? U16S[r.int(U16S.length)]! : (n + r.int(8) - 4) & 0xffff, 2);
    case 6:
      return putInt(b, pos(), r.chance(0.7) ? U32S[r.int(U32S.length)]! : (n + r.int(8) - 4) >>> 0, 4);
    case 7: {
      // small integer at a random offset, 3 bytes (TLS handshake lengths)
      return putInt(b, pos(), r.int(0x4100), 3);
    }
    case 8: {
      const at = pos();
      return splice(b, at, 1 + r.int(Math.min(n - at, r.chance(0.5) ? 4 : 64)), new Uint8Array(0));
    }
    case 9: {
      // duplicate a range
      const at = pos();
      const len = 1 + r.int(Math.min(n - at, 64));
      return splice(b, pos(1), 0, b.slice(at, at + len));
    }
    case 10: // truncate
      return b.subarray(0, pos());
    case 11: {
      // splice with another input: our prefix, its suffix
      const other = o.pool[r.int(o.pool.length || 1)] ?? b;
      const cutA = pos(1);
      const cutB = r.int(other.length + 1);
      return concat(b.subarray(0, cutA), other.subarray(cutB));
    }
    default: {
      // overwrite with a chunk of another input
      const other = o.pool[r.int(o.pool.length || 1)] ?? b;
      if (other.length === 0) return b;
      const from = r.int(other.length);
      const chunk = other.subarray(from, from + 1 + r.int(Math.min(32, other.length - from)));
      const out = b.slice();
      const at = pos();
      out.set(chunk.subarray(0, n - at), at);
      return out;
    }
  }
}

function token(r: Rand, o: MutateOptions): Uint8Array {
  const d = o.dictionary;
  if (d !== undefined && d.length > 0 && r.chance(0.8)) return d[r.int(d.length)]!;
  return Uint8Array.of(BYTES[r.int(BYTES.length)]!);
}

function putInt(b: Uint8Array, at: number, v: number, size: number): Uint8Array {
  const out = b.slice();
  for (let k = 0; k < size && at + k < out.length; k++) out[at + k] = (v >>> (8 * (size - 1 - k))) & 0xff;
  return out;
}

function splice(b: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length - remove + insert.length);
  out.set(b.subarray(0, at));
  out.set(insert, at);
  out.set(b.subarray(at + remove), at + insert.length);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
