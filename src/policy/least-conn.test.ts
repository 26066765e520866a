import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LeastConnections } from './least-conn.ts';
import { be, pickedId, req } from './testing.ts';

describe('weighted least connections', () => {
  it('picks the fewest active connections', () => {
    const bs = [be('a', { active: 5 }), be('b', { active: 2 }), be('c', { active: 9 })];
    assert.equal(pickedId(new LeastConnections().pick(req('/'), bs)), 'b');
  });

  it('divides by weight: 10 on weight 4 beats 3 on weight 1', () => {
    const bs = [be('a', { active: 3 }), be('b', { active: 10, weight: 4 })];
    assert.equal(pickedId(new LeastConnections().pick(req('/'), bs)), 'b');
  });

  it('rotates among ties so an idle pool fills evenly', () => {
    const p = new LeastConnections();
    const bs = [be('a'), be('b'), be('c')];
    const picks = Array.from({ length: 3 }, () => pickedId(p.pick(req('/'), bs)));
    assert.deepEqual([...picks].sort(), ['a', 'b', 'c']);
  });

  it('tracks load as the front-end updates it', () => {
    const p = new LeastConnections();
    const bs = [be('a'), be('b'), be('c')];
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const id = pickedId(p.pick(req('/'), bs));
      const b = bs.find((x) => x.id === id)!;
      b.active++;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.deepEqual([...counts.values()], [10, 10, 10]);
  });

  it('property: the pick has minimal active/weight among eligible back-ends', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ active: fc.nat(100), weight: fc.integer({ min: 0, max: 5 }), up: fc.boolean() }), { maxLength: 8 }),
        fc.nat(10),
        (specs, calls) => {
          const bs = specs.map((s, i) => be(`b${i}`, s));
          const p = new LeastConnections();
          for (let c = 0; c <= calls; c++) {
            const r = p.pick(req('/'), bs);
            const eligible = bs.filter((b) => b.up && b.weight > 0);
            if (r.kind === 'none') {
              assert.equal(eligible.length, 0);
              continue;
            }
            const chosen = bs.find((b) => b.id === r.id)!;
            for (const b of eligible) assert.ok(chosen.active / chosen.weight <= b.active / b.weight);
          }
        },
      ),
    );
  });
});
