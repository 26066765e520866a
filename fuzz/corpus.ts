// The fuzz corpus on disk: fuzz/corpus/<decoder>/<name>.bin, raw input bytes. Seeds are valid
// or interesting inputs written by `npm run fuzz -- --write-seeds`; crashers found by a
// campaign are saved (minimized) under fuzz/crashes/<decoder>/ and, once fixed, copied here so
// `npm test` replays them for ever (test/fuzz-corpus.test.ts).

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DecoderName } from './targets.ts';

export const FUZZ_DIR = import.meta.dirname;
export const CORPUS_DIR = join(FUZZ_DIR, 'corpus');
export const CRASH_DIR = join(FUZZ_DIR, 'crashes');

export interface CorpusEntry {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** Entries of one decoder's corpus directory, sorted by name; [] when it does not exist. */
export function readCorpus(decoder: DecoderName, dir: string = CORPUS_DIR): CorpusEntry[] {
  const d = join(dir, decoder);
  let names: string[];
  try {
    names = readdirSync(d).filter((n) => n.endsWith('.bin')).sort();
  } catch {
    return [];
  }
  return names.map((name) => ({ name, bytes: Uint8Array.from(readFileSync(join(d, name))) }));
}

/** Writes bytes as <dir>/<decoder>/<label>-<sha1 prefix>.bin; returns the path. */
export function writeEntry(decoder: DecoderName, label: string, bytes: Uint8Array, dir: string = CORPUS_DIR): string {
  const d = join(dir, decoder);
  mkdirSync(d, { recursive: true });
  const id = createHash('sha1').update(bytes).digest('hex').slice(0, 12);
  const path = join(d, `${label}-${id}.bin`);
  writeFileSync(path, bytes);
  return path;
}
