import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteLru } from './cache.ts';

describe('byte-bounded LRU', () => {
  it('evicts least recently used entries until the bytes fit', () => {
    const sizes = [40, 30, 30, 50];
    const c = new ByteLru(100, (k) => sizes[k]!);
    c.insert(0, 0);
    c.insert(1, 0);
    c.insert(2, 0);
    assert.equal(c.lookup(0), 0); // 0 becomes most recent; 1 is now the oldest
    c.insert(3, 7);
    assert.equal(c.lookup(1), undefined);
    assert.equal(c.lookup(2), undefined);
    assert.equal(c.lookup(0), 0);
    assert.equal(c.lookup(3), 7);
    assert.equal(c.usedBytes, 90);
  });

  it('does not cache objects larger than the cache', () => {
    const c = new ByteLru(10, () => 11);
    c.insert(0, 0);
    assert.equal(c.count, 0);
  });

  it('property: used bytes equal the sum of cached sizes and never exceed capacity', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 20, maxLength: 20 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 19 })), { maxLength: 200 }),
        (sizes, ops) => {
          const c = new ByteLru(100, (k) => sizes[k]!);
          const model: number[] = []; // recency order, oldest first
          for (const [insert, k] of ops) {
            if (insert) {
              const i = model.indexOf(k);
              if (i >= 0) model.splice(i, 1);
              model.push(k);
              let used = model.reduce((a, x) => a + sizes[x]!, 0);
              while (used > 100) used -= sizes[model.shift()!]!;
              c.insert(k, 0);
            } else {
              const i = model.indexOf(k);
              assert.equal(c.lookup(k) !== undefined, i >= 0);
              if (i >= 0) model.push(...model.splice(i, 1));
            }
            assert.equal(c.usedBytes, model.reduce((a, x) => a + sizes[x]!, 0));
            assert.ok(c.usedBytes <= 100);
          }
        },
      ),
    );
  });
});
