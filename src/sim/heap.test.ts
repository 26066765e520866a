import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EventHeap } from './heap.ts';

describe('event heap', () => {
  it('property: pops in time order, equal times in insertion order, across growth', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 300 }), (times) => {
        const h = new EventHeap(2);
        times.forEach((t, i) => h.push(t, i));
        const want = times.map((t, i) => ({ t, i })).sort((a, b) => a.t - b.t || a.i - b.i);
        for (const w of want) {
          assert.equal(h.peekTime(), w.t);
          assert.equal(h.pop(), w.i);
        }
        assert.equal(h.size, 0);
      }),
    );
  });

  it('property: interleaved pushes and pops behave like a sorted queue', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 50 })), { maxLength: 300 }), (ops) => {
        const h = new EventHeap(1);
        const model: { t: number; i: number }[] = [];
        ops.forEach((op, i) => {
          if (op === null) {
            if (model.length === 0) return;
            model.sort((a, b) => a.t - b.t || a.i - b.i);
            assert.equal(h.pop(), model.shift()!.i);
          } else {
            h.push(op, i);
            model.push({ t: op, i });
          }
        });
        assert.equal(h.size, model.length);
      }),
    );
  });
});
