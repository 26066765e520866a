// Block coverage of the code under test from V8 itself, through the in-process inspector
// (Profiler.startPreciseCoverage with block counts). No instrumentation and no dependency: each
// take returns, per function, nested ranges with execution counts since the previous take, and
// resets them. Start it before the code under test first runs: functions compiled earlier are
// not reported. The fuzzer keeps an input when it runs a block for the first time.

import { Session } from 'node:inspector';

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface ScriptCoverage {
  readonly scriptId: string;
  readonly url: string;
  readonly functions: readonly { readonly ranges: readonly Range[] }[];
}

export class Coverage {
  readonly #session = new Session();
  readonly #include: (url: string) => boolean;
  /** Per function ("url@start"), the start offset of every block range ever reported. */
  readonly #blocks = new Map<string, Set<number>>();
  /** Function keys and "function|block" keys that have run. */
  readonly #covered = new Set<string>();
  readonly #scriptIds = new Map<string, string>();

  constructor(include: (url: string) => boolean) {
    this.#include = include;
    this.#session.connect();
    this.#post('Profiler.enable');
    // Counts, not binary: in binary mode V8 leaves out a function whose every block ran since
    // the last take, which cannot be told apart from one that did not run.
    this.#post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Blocks (and functions) covered so far. */
  get size(): number {
    return this.#covered.size;
  }

  /** Blocks of functions that ran which never ran themselves (as "url@fn|start"). */
  uncovered(): string[] {
    const out: string[] = [];
    for (const [fn, blocks] of this.#blocks) {
      if (!this.#covered.has(fn)) continue;
      for (const b of blocks) if (!this.#covered.has(`${fn}|${b}`)) out.push(`${fn}|${b}`);
    }
    return out;
  }

  /**
   * Coverage since the previous call: the number of blocks run for the first time. With
   * `commit` false they are not recorded, so a replay of the same inputs finds them again.
   */
  collect(commit: boolean): number {
    const res = this.#post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    let fresh = 0;
    const seenNow = new Set<string>();
    const note = (k: string): void => {
      if (this.#covered.has(k) || seenNow.has(k)) return;
      seenNow.add(k);
      fresh++;
    };
    for (const script of res.result) {
      if (!this.#include(script.url)) continue;
      this.#scriptIds.set(script.url, script.scriptId);
      for (const fn of script.functions) {
        const [whole, ...inner] = fn.ranges;
        if (whole === undefined || whole.count === 0) continue;
        const key = `${script.url}@${whole.startOffset}`;
        note(key);
        let blocks = this.#blocks.get(key);
        if (blocks === undefined) this.#blocks.set(key, (blocks = new Set()));
        for (const r of inner) blocks.add(r.startOffset);
        // A block is known by its start: V8 reports its end differently depending on what ran
        // after it. It ran if the innermost reported range around its start has a count.
        for (const start of blocks) {
          let best: Range = whole;
          for (const r of inner) {
            if (r.startOffset <= start && start < r.endOffset && r.endOffset - r.startOffset <= best.endOffset - best.startOffset) best = r;
          }
          if (best.count > 0) note(`${key}|${start}`);
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

  /** The first line of source (as V8 runs it, after tsx) of each block that never ran. */
  describeUncovered(): string[] {
    this.#post('Debugger.enable');
    const sources = new Map<string, string>();
    const out = this.uncovered().map((k) => {
      const [, url = '', s = '0'] = /^(.*)@\d+\|(\d+)$/.exec(k) ?? [];
      let src = sources.get(url);
      if (src === undefined) {
        const id = this.#scriptIds.get(url);
        src = id === undefined ? '' : (this.#post('Debugger.getScriptSource', { scriptId: id }) as { scriptSource: string }).scriptSource;
        sources.set(url, src);
      }
      const line = src.slice(0, Number(s)).split('\n').length;
      const text = src.slice(Number(s), Number(s) + 100).trim().split('\n')[0]!;
      return `${url.replace(/^.*\/src\//, 'src/')}:${line} (as run): ${text}`;
    });
    this.#post('Debugger.disable');
    return out;
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
