// Deterministic response bodies: byte i of every body is a fixed function of i, so a client can
// check a body of any length without the server sending a checksum. Used by the sample app,
// the tests, the demo and the benchmarks.
import { createHash } from 'node:crypto';

const BLOCK = 64 * 1024;
const block = new Uint8Array(BLOCK);
for (let i = 0; i < BLOCK; i++) block[i] = (i * 131 + (i >>> 8) * 7 + 0x5a) & 0xff;
// 64 KiB repeats; a prime stride inside the block keeps short shifts visible to checksums.

/** Calls `sink` with consecutive slices that make up the first `length` pattern bytes. */
export function forEachPatternChunk(length: number, sink: (chunk: Uint8Array) => void): void {
  for (let off = 0; off < length; off += BLOCK) sink(block.subarray(0, Math.min(BLOCK, length - off)));
}

/** sha256 (hex) of the first `length` pattern bytes. */
export function patternSha256(length: number): string {
  const h = createHash('sha256');
  forEachPatternChunk(length, (c) => h.update(c));
  return h.digest('hex');
}

export function patternBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let off = 0;
  forEachPatternChunk(length, (c) => {
    out.set(c, off);
    off += c.length;
  });
  return out;
}
