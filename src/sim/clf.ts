// Common Log Format input: `host ident user [date] "METHOD target PROTO" status bytes`.
// Each distinct request-target becomes one target whose size is the largest byte count
// logged for it (a 304 or a range reply logs fewer bytes than the file holds). Lines that do
// not parse are skipped and counted, never fatal: real logs contain junk.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Trace } from './trace.ts';

const LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+)(?: [^"]*)?" (\d{3}) (\d+|-)/;

export interface ClfTrace extends Trace {
  readonly badLines: number;
}

/** Incremental builder, so a file is read line by line and never held whole in memory. */
export class ClfTraceBuilder {
  readonly #index = new Map<string, number>();
  readonly #targets: string[] = [];
  readonly #sizes: number[] = [];
  #requests = new Uint32Array(1024);
  #count = 0;
  #bad = 0;

  /** Adds one log line; returns false (and counts it) when the line is malformed. */
  add(line: string): boolean {
    if (line.trim() === '') return true;
    const m = LINE.exec(line);
    const target = m?.[2];
    if (m === null || target === undefined || target.length > 8192) {
      this.#bad++;
      return false;
    }
    const bytes = m[4] === '-' ? 0 : Number(m[4]);
    let i = this.#index.get(target);
    if (i === undefined) {
      i = this.#targets.length;
      this.#index.set(target, i);
      this.#targets.push(target);
      this.#sizes.push(bytes);
    } else if (bytes > this.#sizes[i]!) this.#sizes[i] = bytes;
    if (this.#count === this.#requests.length) {
      const grown = new Uint32Array(this.#requests.length * 2);
      grown.set(this.#requests);
      this.#requests = grown;
    }
    this.#requests[this.#count++] = i;
    return true;
  }

  build(name: string): ClfTrace {
    return {
      name,
      targets: this.#targets,
      sizes: Float64Array.from(this.#sizes),
      requests: this.#requests.slice(0, this.#count),
      badLines: this.#bad,
    };
  }
}

export const parseClf = (text: string, name = 'clf'): ClfTrace => {
  const b = new ClfTraceBuilder();
  for (const line of text.split('\n')) b.add(line.replace(/\r$/, ''));
  return b.build(name);
};

export const readClfFile = async (path: string): Promise<ClfTrace> => {
  const b = new ClfTraceBuilder();
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) b.add(line);
  return b.build(path);
};
