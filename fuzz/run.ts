// `npm run fuzz`: a seeded, coverage-guided mutation fuzzer over every decoder of untrusted bytes
// (see fuzz/README.md). Each campaign starts from fuzz/corpus/<decoder>/ plus generated seeds,
// mutates inputs from a pool, and keeps a mutant in the pool when it runs a block of src/wire/
// for the first time (V8 block coverage, fuzz/coverage.ts) or produces an outcome signature not
// seen before (result kind, error code and field).
// Crashes (property violations, unexpected exceptions) are minimized and saved under
// fuzz/crashes/<decoder>/. The heap is sampled after forced GCs to catch unbounded growth.
//
//   npm run fuzz -- [--decoder NAME[,NAME]] [--runs N] [--seed S] [--no-coverage] [--show-uncovered] [--quiet] [--json FILE]
//   npm run fuzz -- --write-seeds

import { writeFileSync } from 'node:fs';
import { CRASH_DIR, readCorpus, writeEntry } from './corpus.ts';
import { Coverage } from './coverage.ts';
import { Rand, mutate } from './mutate.ts';
import { allSeeds } from './seeds.ts';
import { Crash, DECODERS, TARGETS, type DecoderName, type Target } from './targets.ts';

interface Options {
  decoders: DecoderName[];
  runs: number;
  seed: number;
  quiet: boolean;
  json: string | undefined;
  writeSeeds: boolean;
  coverage: boolean;
  showUncovered: boolean;
}

interface Summary {
  decoder: DecoderName;
  inputs: number;
  seconds: number;
  perSecond: number;
  signatures: number;
  blocks: number;
  /** Blocks in functions that ran which no input ever reached. */
  blocksNeverRun: number;
  pool: number;
  crashes: number;
  uniqueCrashes: string[];
  heapWarmMB: number;
  heapEndMB: number;
  maxInput: number;
}

/** Heap growth over a campaign (after warm-up, after GC) that counts as unbounded. */
const HEAP_GROWTH_LIMIT_MB = 64;
const POOL_MAX = 4096;
/** Inputs run between coverage takes; a batch with new blocks is replayed one input at a time. */
const BATCH = 1024;

const DICTIONARY: Partial<Record<DecoderName, Uint8Array[]>> = {
  'http-head': ['\r\n', '\r\n\r\n', ' ', ':', 'Host: ', 'Content-Length: ', 'Transfer-Encoding: chunked', 'HTTP/1.1', 'HTTP/1.0', '[::1]', ',', '\t', 'CONNECT', 'OPTIONS', '*', 'http://'].map((s) =>
    Uint8Array.from(Buffer.from(s, 'latin1')),
  ),
  'tls-hello': [
    ...[[0x16, 0x03, 0x01], [0x00, 0x00], [0x00, 0x10], [0x00, 0x2b], [0x02, 0x68, 0x32]].map((b) => Uint8Array.from(b)),
    ...['.', '-', '_', '1', '.1', 'A', '..'].map((t) => Uint8Array.from(Buffer.from(t, 'latin1'))),
  ],
};

function parseArgs(argv: string[]): Options {
  const o: Options = { decoders: [...DECODERS], runs: 1_000_000, seed: 1, quiet: false, json: undefined, writeSeeds: false, coverage: true, showUncovered: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--decoder') {
      const names = value().split(',');
      for (const n of names) if (!(DECODERS as readonly string[]).includes(n)) throw new Error(`unknown decoder ${n} (known: ${DECODERS.join(', ')})`);
      o.decoders = names as DecoderName[];
    } else if (a === '--runs') o.runs = positive(a, value());
    else if (a === '--seed') o.seed = positive(a, value());
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--json') o.json = value();
    else if (a === '--write-seeds') o.writeSeeds = true;
    else if (a === '--no-coverage') o.coverage = false;
    else if (a === '--show-uncovered') o.showUncovered = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: npm run fuzz -- [--decoder blob,frame,http-head,proxy-v2,tls-hello] [--runs N] [--seed S] [--no-coverage] [--show-uncovered] [--quiet] [--json FILE] | --write-seeds');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

function positive(name: string, v: string): number {
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}: want a positive integer, got ${v}`);
  return n;
}

const gc = (globalThis as { gc?: () => void }).gc;
const heapMB = (): number => {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** Crash signature of an input, or undefined if it passes. */
function crashOf(t: Target, input: Uint8Array): Crash | undefined {
  try {
    t.check(input);
    return undefined;
  } catch (e) {
    return e instanceof Crash ? e : new Crash(`${t.name}:harness`, String(e));
  }
}

/** Shrinks a crasher by deleting ranges while it still crashes the same way. */
function minimize(t: Target, input: Uint8Array, signature: string): Uint8Array {
  let best = input;
  let budget = 4000;
  for (let chunk = best.length >>> 1; chunk >= 1 && budget > 0; chunk >>>= 1) {
    for (let at = 0; at + chunk <= best.length && budget > 0; budget--) {
      const cand = new Uint8Array(best.length - chunk);
      cand.set(best.subarray(0, at));
      cand.set(best.subarray(at + chunk), at);
      if (crashOf(t, cand)?.signature === signature) best = cand;
      else at += chunk;
    }
  }
  return best;
}

function campaign(t: Target, seeds: Uint8Array[], o: Options, cov: Coverage | undefined): Summary {
  const r = new Rand(o.seed * 0x9e3779b1 + DECODERS.indexOf(t.name));
  const pool: Uint8Array[] = [...seeds];
  if (pool.length === 0) pool.push(new Uint8Array(0));
  const signatures = new Set<string>();
  const crashes = new Map<string, number>();
  const mutOptions = { maxLength: t.maxInput, pool, dictionary: DICTIONARY[t.name] };
  cov?.forget();
  for (const s of seeds) {
    const c = crashOf(t, s);
    if (c !== undefined) record(c, s);
    else signatures.add(t.check(s));
  }
  let heapWarm = 0;
  let maxInput = 0;
  const start = performance.now();
  let lastReport = start;
  let reported = false;
  const warmAt = Math.min(o.runs, 50_000);

  function record(c: Crash, input: Uint8Array): void {
    const seen = crashes.get(c.signature) ?? 0;
    crashes.set(c.signature, seen + 1);
    if (seen > 0) return;
    const small = minimize(t, input, c.signature);
    const path = writeEntry(t.name, c.signature.replace(/[^a-z0-9-]+/gi, '_'), small, CRASH_DIR);
    console.log(`\n${t.name}: CRASH ${c.signature}: ${c.message}\n  ${small.length} bytes (from ${input.length}) -> ${path}`);
    if (c.cause instanceof Error && c.cause.stack !== undefined) console.log(c.cause.stack.split('\n').slice(0, 6).join('\n'));
  }

  cov?.collect(true);
  const batch: Uint8Array[] = [];
  const keep = (input: Uint8Array): void => {
    if (pool.length < POOL_MAX) pool.push(input);
    else pool[r.int(POOL_MAX)] = input;
  };
  /** Runs one input: its outcome signature, or undefined if it crashed (recorded). */
  const run = (input: Uint8Array): string | undefined => {
    try {
      return t.check(input);
    } catch (e) {
      record(e instanceof Crash ? e : new Crash(`${t.name}:harness`, String(e)), input);
      return undefined;
    }
  };

  /** Inputs among `inputs` (already run, their blocks not yet committed) that cover new blocks. */
  const explore = (inputs: Uint8Array[]): void => {
    if (inputs.length === 1) {
      run(inputs[0]!);
      if (cov!.collect(true) > 0) keep(inputs[0]!);
      return;
    }
    const mid = inputs.length >>> 1;
    for (const half of [inputs.slice(0, mid), inputs.slice(mid)]) {
      for (const x of half) run(x);
      if (cov!.collect(false) > 0) explore(half);
    }
  };

  for (let i = 1; i <= o.runs; i++) {
    let input: Uint8Array;
    if (r.chance(0.01)) {
      input = Uint8Array.from({ length: r.int(64) }, () => r.int(256));
    } else {
      input = mutate(pool[r.int(pool.length)]!, r, mutOptions);
      if (t.fixup !== undefined && r.chance(0.5)) input = t.fixup(input);
    }
    if (input.length > maxInput) maxInput = input.length;
    const sig = run(input);
    if (sig !== undefined && !signatures.has(sig)) {
      signatures.add(sig);
      keep(input);
    } else if (cov !== undefined) {
      batch.push(input);
    }
    if (cov !== undefined && (batch.length === BATCH || i === o.runs)) {
      // New blocks somewhere in the batch: bisect it to keep just the inputs that cover them.
      if (cov.collect(false) > 0) explore(batch);
      batch.length = 0;
    }
    if (i === warmAt) heapWarm = heapMB();
    if (!o.quiet && (i & 0x3ff) === 0) {
      const now = performance.now();
      if (now - lastReport > 2000) {
        lastReport = now;
        reported = true;
        const rate = Math.round(i / ((now - start) / 1000));
        process.stderr.write(`\r${t.name.padEnd(10)} ${String(i).padStart(9)}/${o.runs}  ${String(rate).padStart(7)}/s  signatures ${signatures.size}  blocks ${cov?.size ?? '-'}  pool ${pool.length}  crashes ${sum(crashes)}   `);
      }
    }
  }
  const blocks = cov?.size ?? 0;
  const blocksNeverRun = cov?.uncovered().length ?? 0;
  if (cov !== undefined && o.showUncovered) console.log(`${t.name}: blocks never run:\n  ${cov.describeUncovered().join('\n  ')}`);
  const seconds = (performance.now() - start) / 1000;
  if (reported) process.stderr.write('\n');
  return {
    decoder: t.name,
    inputs: o.runs,
    seconds,
    perSecond: Math.round(o.runs / seconds),
    signatures: signatures.size,
    blocks,
    blocksNeverRun,
    pool: pool.length,
    crashes: sum(crashes),
    uniqueCrashes: [...crashes.keys()],
    heapWarmMB: heapWarm,
    heapEndMB: heapMB(),
    maxInput,
  };
}

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

function table(rows: Summary[]): string {
  const head = ['decoder', 'inputs', 'seconds', 'inputs/s', 'signatures', 'blocks run', 'never run', 'pool', 'crashes', 'unique', 'heap warm->end MB', 'max input'];
  const body = rows.map((s) => [
    s.decoder,
    String(s.inputs),
    s.seconds.toFixed(1),
    String(s.perSecond),
    String(s.signatures),
    String(s.blocks),
    String(s.blocksNeverRun),
    String(s.pool),
    String(s.crashes),
    String(s.uniqueCrashes.length),
    `${s.heapWarmMB.toFixed(1)} -> ${s.heapEndMB.toFixed(1)}`,
    String(s.maxInput),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  // Coverage of src/wire only (the code under test, not the harness), started before any of it runs.
  const cov = o.coverage && !o.writeSeeds ? new Coverage((url) => url.includes('/src/wire/')) : undefined;
  const seeds = await allSeeds();
  if (o.writeSeeds) {
    // Captured hellos differ on every capture (random, key shares): keep a label's first file.
    for (const d of DECODERS) {
      const have = readCorpus(d).map((e) => e.name);
      for (const [label, bytes] of seeds[d]) {
        if (have.some((n) => n.startsWith(`seed-${label}-`))) continue;
        console.log(writeEntry(d, `seed-${label}`, bytes));
      }
    }
    return 0;
  }
  if (gc === undefined) console.warn('fuzz: run node with --expose-gc for heap figures after GC (npm run fuzz does)');
  console.log(`fuzz: ${o.decoders.join(', ')}; ${o.runs} inputs each; seed ${o.seed}`);
  const rows: Summary[] = [];
  for (const d of o.decoders) {
    const corpus = readCorpus(d).map((e) => e.bytes);
    rows.push(campaign(TARGETS[d], [...corpus, ...seeds[d].map(([, b]) => b)], o, cov));
  }
  cov?.stop();
  console.log(`\n${table(rows)}`);
  let bad = false;
  for (const s of rows) {
    if (s.uniqueCrashes.length > 0) {
      bad = true;
      console.log(`${s.decoder}: crashes: ${s.uniqueCrashes.join(', ')} (inputs in ${CRASH_DIR}/${s.decoder}/)`);
    }
    if (gc !== undefined && s.heapEndMB - s.heapWarmMB > HEAP_GROWTH_LIMIT_MB) {
      bad = true;
      console.log(`${s.decoder}: heap grew ${(s.heapEndMB - s.heapWarmMB).toFixed(1)} MB after warm-up (limit ${HEAP_GROWTH_LIMIT_MB})`);
    }
  }
  if (o.json !== undefined) writeFileSync(o.json, `${JSON.stringify({ seed: o.seed, runs: o.runs, node: process.version, rows }, null, 2)}\n`);
  return bad ? 1 : 0;
}

process.exitCode = await main();
