// Block coverage of the code under test from V8 itself, through the in-process inspector
// (Profiler.startPreciseCoverage, binary block counts). No instrumentation and no dependency:
// each take returns, per executed function, the ranges of blocks that did NOT run since the
// previous take, and resets. Start it before the code under test first runs: functions compiled
// earlier are not reported. A block counts as covered once it has run outside every
// not-run range of some take; the fuzzer keeps an input when it covers a block for the first time.

import { Session } from 'node:inspector';

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface ScriptCoverage {
  readonly url: string;
  readonly functions: readonly { readonly ranges: readonly Range[] }[];
}

export class Coverage {
  readonly #session = new Session();
  readonly #include: (url: string) => boolean;
  /** Per function ("url@start"), every not-run block range ever reported ("start:end"). */
  readonly #blocks = new Map<string, Set<string>>();
  /** Function keys and "function|block" keys that have run. */
  readonly #covered = new Set<string>();

  constructor(include: (url: string) => boolean) {
    this.#include = include;
    this.#session.connect();
    this.#post('Profiler.enable');
    this.#post('Profiler.startPreciseCoverage', { callCount: false, detailed: true });
  }

  /** Blocks covered so far. */
  get size(): number {
    return this.#covered.size;
  }

  /**
   * Coverage since the previous call: the number of blocks run for the first time. With
   * `commit` false they are not recorded, so a replay of the same inputs finds them again.
   */
  collect(commit: boolean): number {
    const res = this.#post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    let fresh = 0;
    const seenNow = new Set<string>();
    for (const script of res.result) {
      if (!this.#include(script.url)) continue;
      for (const fn of script.functions) {
        const [whole, ...inner] = fn.ranges;
        if (whole === undefined || whole.count === 0) continue;
        const key = `${script.url}@${whole.startOffset}`;
        const notRun = inner.filter((r) => r.count === 0);
        let blocks = this.#blocks.get(key);
        if (blocks === undefined) this.#blocks.set(key, (blocks = new Set()));
        for (const r of notRun) blocks.add(`${r.startOffset}:${r.endOffset}`);
        const ran = (b: string): boolean => {
          const [s, e] = b.split(':').map(Number) as [number, number];
          return !notRun.some((r) => r.startOffset <= s && e <= r.endOffset);
        };
        for (const k of [key, ...[...blocks].filter(ran).map((b) => `${key}|${b}`)]) {
          if (this.#covered.has(k) || seenNow.has(k)) continue;
          seenNow.add(k);
          fresh++;
        }
      }
    }
    if (commit) for (const k of seenNow) this.#covered.add(k);
    return fresh;
  }

  /** Forgets what was covered (a new campaign), and discards counts since the last take. */
  forget(): void {
    this.#post('Profiler.takePreciseCoverage');
    this.#blocks.clear();
    this.#covered.clear();
  }

  stop(): void {
    this.#post('Profiler.stopPreciseCoverage');
    this.#session.disconnect();
  }

  /** Same-thread inspector sessions answer synchronously. */
  #post(method: string, params?: object): unknown {
    let out: unknown;
    let error: Error | null = null;
    this.#session.post(method, params ?? {}, (err, r) => {
      error = err;
      out = r;
    });
    if (error !== null) throw error;
    return out;
  }
}
