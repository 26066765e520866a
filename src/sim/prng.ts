// A small seeded PRNG (mulberry32) so that traces, and therefore simulation results, are
// a pure function of the seed. Not for anything that needs unpredictability.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
}

export const mulberry32 = (seed: number): Rng => {
  let a = seed >>> 0;
  return {
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
};

/** Standard normal deviate (Box-Muller; one of the pair is discarded for simplicity). */
export const normal = (rng: Rng): number => {
  const u = 1 - rng.next(); // (0, 1]: log(0) is not finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
};
