// A latency recorder: keeps the last `capacity` samples for exact percentiles, plus log2
// bucket counts over all samples for a histogram that never grows.

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Upper bound of each log2 bucket (in the recorder's unit) -> samples in it, over all samples. */
  readonly buckets: Record<string, number>;
}

export class LatencyRecorder {
  readonly #ring: Float64Array;
  #n = 0;
  #count = 0;
  #max = 0;
  readonly #buckets = new Map<number, number>();

  constructor(capacity = 65536) {
    this.#ring = new Float64Array(capacity);
  }

  record(value: number): void {
    this.#ring[this.#n % this.#ring.length] = value;
    this.#n++;
    this.#count++;
    if (value > this.#max) this.#max = value;
    const b = value <= 1 ? 1 : 2 ** Math.ceil(Math.log2(value));
    this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + 1);
  }

  summary(): LatencySummary {
    const len = Math.min(this.#n, this.#ring.length);
    const sorted = this.#ring.slice(0, len).sort();
    const q = (p: number): number => (len === 0 ? 0 : sorted[Math.min(len - 1, Math.floor(p * len))]!);
    const buckets: Record<string, number> = {};
    for (const k of [...this.#buckets.keys()].sort((a, b) => a - b)) buckets[String(k)] = this.#buckets.get(k)!;
    return { count: this.#count, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: this.#max, buckets };
  }
}
