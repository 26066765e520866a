import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Lard } from './lard.ts';
import { lardAdmissionLimit } from './lard-common.ts';
import { createPolicy } from './registry.ts';
import { be, pickedId, req, type FakeBackend } from './testing.ts';

const pick = (p: Lard, target: string, bs: FakeBackend[]) => pickedId(p.pick(req(target), bs));

/** Assigns /t to `first` (the only back-end with zero load), then sets the loads given. */
const assigned = (first: string, loads: Record<string, number>): { p: Lard; bs: FakeBackend[] } => {
  const p = new Lard();
  const bs = Object.keys(loads).map((id) => be(id, { active: id === first ? 0 : 1 }));
  assert.equal(pick(p, '/t', bs), first);
  for (const b of bs) b.active = loads[b.id]!;
  return { p, bs };
};

describe('LARD', () => {
  const cases: { name: string; loads: Record<string, number>; want: string }[] = [
    { name: 'stays while not overloaded, even if another node is idle', loads: { a: 65, b: 0 }, want: 'a' },
    { name: 'moves when load > T_high and some node < T_low', loads: { a: 66, b: 24, c: 70 }, want: 'b' },
    { name: 'stays when load > T_high but no node is below T_low', loads: { a: 120, b: 25, c: 30 }, want: 'a' },
    { name: 'moves when load >= 2·T_high whatever the others', loads: { a: 130, b: 100, c: 129 }, want: 'b' },
    { name: 'stays just under 2·T_high', loads: { a: 129, b: 100 }, want: 'a' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { p, bs } = assigned('a', c.loads);
      assert.equal(pick(p, '/t', bs), c.want);
      assert.equal(p.assignment('/t'), c.want);
    });
  }

  it('sends a new target to the least-loaded back-end', () => {
    const bs = [be('a', { active: 5 }), be('b', { active: 2 }), be('c', { active: 9 })];
    assert.equal(pick(new Lard(), '/new', bs), 'b');
  });

  it('keyed on path by default: the query string does not split a target', () => {
    const p = new Lard();
    const bs = [be('a'), be('b', { active: 1 })];
    assert.equal(pick(p, '/x?1', bs), 'a');
    bs[0]!.active = 10;
    assert.equal(pick(p, '/x?2', bs), 'a');
  });

  it('reassigns when the assigned back-end goes down or leaves', () => {
    const { p, bs } = assigned('a', { a: 0, b: 3, c: 1 });
    bs[0]!.up = false;
    assert.equal(pick(p, '/t', bs), 'c');
    assert.equal(pick(p, '/t', [be('b', { active: 3 }), be('d', { active: 4 })]), 'b');
  });

  it('honours configured thresholds', () => {
    const p = createPolicy({ name: 'lard', options: { tLow: 2, tHigh: 4 } });
    const bs = [be('a'), be('b', { active: 1 })];
    assert.equal(pickedId(p.pick(req('/t'), bs, 0)), 'a');
    bs[0]!.active = 5;
    assert.equal(pickedId(p.pick(req('/t'), bs, 0)), 'b');
  });

  it('admission bound is S = (n-1)·T_high + T_low - 1', () => {
    assert.equal(new Lard().maxOutstanding(8), 7 * 65 + 25 - 1);
    assert.equal(new Lard({ tLow: 10, tHigh: 20 }).maxOutstanding(3), 49);
    assert.equal(lardAdmissionLimit(0, 25, 65), 0);
  });

  it('forgets the least recently requested targets beyond maxTargets', () => {
    const p = new Lard({ maxTargets: 2 });
    const bs = [be('a')];
    for (const t of ['/1', '/2', '/1', '/3']) pick(p, t, bs);
    assert.equal(p.assignment('/2'), undefined);
    assert.equal(p.assignment('/1'), 'a');
    assert.equal(p.assignment('/3'), 'a');
  });

  it('rejects tLow >= tHigh', () => {
    assert.throws(() => new Lard({ tLow: 65, tHigh: 65 }), /tLow must be less than tHigh/);
  });

  it('property: every decision follows the rule in the paper', () => {
    const T_LOW = 25;
    const T_HIGH = 65;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            target: fc.integer({ min: 0, max: 5 }),
            loads: fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 4, maxLength: 4 }),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        (steps) => {
          const p = new Lard();
          const bs = [be('a'), be('b'), be('c'), be('d')];
          const model = new Map<number, string>();
          for (const s of steps) {
            s.loads.forEach((l, i) => (bs[i]!.active = l));
            const chosen = pick(p, `/${s.target}`, bs);
            const min = Math.min(...s.loads);
            const load = (id: string) => bs.find((b) => b.id === id)!.active;
            const prev = model.get(s.target);
            const over = prev !== undefined && ((load(prev) > T_HIGH && min < T_LOW) || load(prev) >= 2 * T_HIGH);
            if (prev === undefined || over) assert.equal(load(chosen), min, 'moved/new target must go to a least-loaded node');
            else assert.equal(chosen, prev, 'target must stay');
            model.set(s.target, chosen);
          }
        },
      ),
    );
  });
});
