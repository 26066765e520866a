import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WeightedRoundRobin } from './wrr.ts';
import { be, pickedId, req } from './testing.ts';

const run = (p: WeightedRoundRobin, bs: Parameters<WeightedRoundRobin['pick']>[1], n: number): string[] =>
  Array.from({ length: n }, () => pickedId(p.pick(req('/'), bs)));

describe('smooth weighted round robin', () => {
  it('interleaves like nginx: weights 5,1,1 give a a b a c a a', () => {
    const bs = [be('a', { weight: 5 }), be('b'), be('c')];
    assert.deepEqual(run(new WeightedRoundRobin(), bs, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  it('equal weights rotate in order', () => {
    const bs = [be('a'), be('b'), be('c')];
    assert.deepEqual(run(new WeightedRoundRobin(), bs, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('ignores load: active connections do not change the order', () => {
    const bs = [be('a', { active: 1000 }), be('b')];
    assert.deepEqual(run(new WeightedRoundRobin(), bs, 4), ['a', 'b', 'a', 'b']);
  });

  it('a back-end that leaves stops being picked; one that joins enters the rotation', () => {
    const p = new WeightedRoundRobin();
    assert.deepEqual(run(p, [be('a'), be('b')], 2), ['a', 'b']);
    assert.deepEqual(run(p, [be('b')], 2), ['b', 'b']);
    const picks = run(p, [be('b'), be('c')], 4);
    assert.equal(picks.filter((x) => x === 'c').length, 2);
  });

  it('property: over sum(weights) picks each back-end is picked exactly weight times', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 8 }), fc.nat(20), (ws, warm) => {
        const bs = ws.map((w, i) => be(`b${i}`, { weight: w }));
        const total = ws.reduce((a, b) => a + b, 0);
        const p = new WeightedRoundRobin();
        run(p, bs, warm);
        const picks = run(p, bs, total);
        ws.forEach((w, i) => assert.equal(picks.filter((x) => x === `b${i}`).length, w));
        if (total === 0) assert.deepEqual(run(p, bs, 1), ['none']);
      }),
    );
  });
});
