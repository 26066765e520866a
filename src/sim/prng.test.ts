import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mulberry32, normal } from './prng.ts';

describe('mulberry32', () => {
  it('is a pure function of the seed', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    for (let i = 0; i < 100; i++) assert.equal(a.next(), b.next());
    assert.notEqual(mulberry32(1).next(), mulberry32(2).next());
  });

  it('matches the reference mulberry32 for seed 1', () => {
    const r = mulberry32(1);
    assert.deepEqual([r.next(), r.next(), r.next()].map((x) => x.toFixed(8)), ['0.62707394', '0.00273572', '0.52744704']);
  });

  it('property: outputs lie in [0, 1)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        const r = mulberry32(seed);
        for (let i = 0; i < 50; i++) {
          const x = r.next();
          assert.ok(x >= 0 && x < 1);
        }
      }),
    );
  });

  it('is roughly uniform and normal() roughly standard', () => {
    const r = mulberry32(7);
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) bins[Math.floor(r.next() * 10)]!++;
    for (const b of bins) assert.ok(Math.abs(b - 10_000) < 500, `bin ${b}`);
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 50_000; i++) {
      const z = normal(r);
      sum += z;
      sq += z * z;
    }
    assert.ok(Math.abs(sum / 50_000) < 0.03);
    assert.ok(Math.abs(sq / 50_000 - 1) < 0.05);
  });
});
