// Traces the simulator replays: a list of targets with a size each, and the order in which
// they are requested. Synthetic traces follow the usual shape of web workloads: Zipf
// popularity and heavy-tailed sizes (lognormal body, Pareto tail, as in SURGE), both drawn
// from a seeded PRNG so the same seed gives the same trace.

import { mulberry32, normal, type Rng } from './prng.ts';

export interface Trace {
  readonly name: string;
  /** Request-target per target index (origin-form, e.g. "/doc/17.html"). */
  readonly targets: readonly string[];
  /** Bytes per target index. */
  readonly sizes: Float64Array;
  /** Target index per request, in arrival order. */
  readonly requests: Uint32Array;
}

export interface SyntheticTraceOptions {
  readonly seed: number;
  readonly requests: number;
  /** Distinct targets in the catalogue. */
  readonly targets: number;
  /** Zipf exponent of popularity (web traces: 0.6–1.0). */
  readonly zipf: number;
  /** Median size of the lognormal body, bytes. */
  readonly medianBytes: number;
  /** Shape of the lognormal body. */
  readonly sigma: number;
  /** Fraction of targets whose size comes from the Pareto tail. */
  readonly tailFraction: number;
  /** Pareto tail: minimum bytes and exponent. */
  readonly tailMinBytes: number;
  readonly tailAlpha: number;
  /** Sizes are clipped to this. */
  readonly maxBytes: number;
}

export const SYNTHETIC_DEFAULTS: SyntheticTraceOptions = {
  seed: 1,
  requests: 300_000,
  targets: 6_000,
  zipf: 0.8,
  medianBytes: 8 * 1024,
  sigma: 1.0,
  tailFraction: 0.05,
  tailMinBytes: 64 * 1024,
  tailAlpha: 1.2,
  maxBytes: 2 * 1024 * 1024,
};

const drawSize = (rng: Rng, o: SyntheticTraceOptions): number => {
  const raw =
    rng.next() < o.tailFraction
      ? o.tailMinBytes / Math.pow(1 - rng.next(), 1 / o.tailAlpha)
      : o.medianBytes * Math.exp(o.sigma * normal(rng));
  return Math.max(1, Math.min(o.maxBytes, Math.round(raw)));
};

/** Cumulative Zipf distribution over ranks 1..n: cdf[i] = P(rank <= i + 1). */
export const zipfCdf = (n: number, s: number): Float64Array => {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s);
  for (let i = 0; i < n; i++) cdf[i]! /= sum;
  return cdf;
};

/** Smallest index whose cdf value is > u. */
const search = (cdf: Float64Array, u: number): number => {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
};

export const syntheticTrace = (options: Partial<SyntheticTraceOptions> = {}): Trace => {
  const o = { ...SYNTHETIC_DEFAULTS, ...options };
  if (!(o.requests > 0 && o.targets > 0)) throw new RangeError('synthetic trace: requests and targets must be positive');
  const rng = mulberry32(o.seed);
  const targets = Array.from({ length: o.targets }, (_, i) => `/doc/${i}.html`);
  const sizes = new Float64Array(o.targets);
  for (let i = 0; i < o.targets; i++) sizes[i] = drawSize(rng, o);
  // Popularity rank is independent of size: rank r maps to target index perm[r].
  const perm = Uint32Array.from({ length: o.targets }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  const cdf = zipfCdf(o.targets, o.zipf);
  const requests = new Uint32Array(o.requests);
  for (let i = 0; i < o.requests; i++) requests[i] = perm[search(cdf, rng.next())]!;
  return { name: `synthetic(seed=${o.seed}, zipf=${o.zipf}, ${o.targets} targets, ${o.requests} requests)`, targets, sizes, requests };
};

export interface TraceStats {
  readonly requests: number;
  readonly distinctTargets: number;
  /** Bytes of all distinct targets requested: what a cache would need to hold everything. */
  readonly workingSetBytes: number;
  readonly meanRequestBytes: number;
}

export const traceStats = (t: Trace): TraceStats => {
  const seen = new Uint8Array(t.targets.length);
  let distinct = 0;
  let ws = 0;
  let bytes = 0;
  for (const r of t.requests) {
    bytes += t.sizes[r]!;
    if (seen[r] === 0) {
      seen[r] = 1;
      distinct++;
      ws += t.sizes[r]!;
    }
  }
  return {
    requests: t.requests.length,
    distinctTargets: distinct,
    workingSetBytes: ws,
    meanRequestBytes: t.requests.length === 0 ? 0 : bytes / t.requests.length,
  };
};
