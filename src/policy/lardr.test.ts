import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LardReplicated } from './lardr.ts';
import { be, pickedId, req, type FakeBackend } from './testing.ts';

const pick = (p: LardReplicated, bs: FakeBackend[], now: number, target = '/t') => pickedId(p.pick(req(target), bs, now));
const setOf = (p: LardReplicated, target = '/t') => [...(p.serverSet(target) ?? [])].sort();
const load = (bs: FakeBackend[], loads: number[]) => loads.forEach((l, i) => (bs[i]!.active = l));

describe('LARD/R', () => {
  it('starts a new target on the least-loaded back-end', () => {
    const p = new LardReplicated();
    const bs = [be('a', { active: 4 }), be('b', { active: 1 }), be('c', { active: 3 })];
    assert.equal(pick(p, bs, 0), 'b');
    assert.deepEqual(setOf(p), ['b']);
  });

  it('grows the set with the least-loaded node when the best member is overloaded, then sends there', () => {
    const p = new LardReplicated();
    const bs = [be('a'), be('b', { active: 1 }), be('c', { active: 2 })];
    pick(p, bs, 0);
    load(bs, [66, 30, 10]);
    assert.equal(pick(p, bs, 1000), 'c');
    assert.deepEqual(setOf(p), ['a', 'c']);
    load(bs, [66, 30, 40]);
    assert.equal(pick(p, bs, 2000), 'c', 'least-loaded member');
    load(bs, [10, 30, 40]);
    assert.equal(pick(p, bs, 3000), 'a', 'least-loaded member');
  });

  it('grows at 2·T_high even when no node is below T_low', () => {
    const p = new LardReplicated();
    const bs = [be('a'), be('b', { active: 1 })];
    pick(p, bs, 0);
    load(bs, [130, 100]);
    assert.equal(pick(p, bs, 1), 'b');
    assert.deepEqual(setOf(p), ['a', 'b']);
  });

  it('does not grow while above T_high if nobody is below T_low', () => {
    const p = new LardReplicated();
    const bs = [be('a'), be('b', { active: 1 })];
    pick(p, bs, 0);
    load(bs, [100, 25]);
    assert.equal(pick(p, bs, 1), 'a');
    assert.deepEqual(setOf(p), ['a']);
  });

  it('a set unchanged for more than K seconds loses its most-loaded member', () => {
    const p = new LardReplicated({ k: 20 });
    const bs = [be('a'), be('b', { active: 1 })];
    pick(p, bs, 0);
    load(bs, [66, 10]);
    pick(p, bs, 1_000); // grows to {a, b} at t = 1 s
    load(bs, [50, 10]);
    assert.equal(pick(p, bs, 21_000), 'b'); // exactly K: no shrink yet
    assert.deepEqual(setOf(p), ['a', 'b']);
    assert.equal(pick(p, bs, 21_001), 'b');
    assert.deepEqual(setOf(p), ['b'], 'a, the most loaded, leaves');
    assert.equal(pick(p, bs, 100_000), 'b', 'a single member is never shed');
    assert.deepEqual(setOf(p), ['b']);
  });

  it('drops members that went down or left', () => {
    const p = new LardReplicated();
    const bs = [be('a'), be('b', { active: 1 }), be('c', { active: 5 })];
    pick(p, bs, 0);
    load(bs, [70, 0, 5]);
    pick(p, bs, 1);
    assert.deepEqual(setOf(p), ['a', 'b']);
    bs[1]!.up = false;
    bs[0]!.active = 10;
    assert.equal(pick(p, bs, 2), 'a');
    assert.deepEqual(setOf(p), ['a']);
    assert.equal(pick(p, [be('z', { active: 3 })], 3), 'z');
    assert.deepEqual(setOf(p), ['z']);
  });

  it('admission bound matches LARD', () => {
    assert.equal(new LardReplicated().maxOutstanding(16), 15 * 65 + 24);
  });

  it('property: picks come from the target set, sets are non-empty and only hold eligible nodes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            target: fc.integer({ min: 0, max: 3 }),
            loads: fc.array(fc.integer({ min: 0, max: 160 }), { minLength: 5, maxLength: 5 }),
            up: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
            dt: fc.integer({ min: 0, max: 15_000 }),
          }),
          { minLength: 1, maxLength: 80 },
        ),
        (steps) => {
          const p = new LardReplicated();
          const bs = ['a', 'b', 'c', 'd', 'e'].map((id) => be(id));
          let now = 0;
          for (const s of steps) {
            now += s.dt;
            s.loads.forEach((l, i) => (bs[i]!.active = l));
            s.up.forEach((u, i) => (bs[i]!.up = u));
            const before = p.serverSet(`/${s.target}`);
            const chosen = pick(p, bs, now, `/${s.target}`);
            const set = p.serverSet(`/${s.target}`);
            if (!s.up.some(Boolean)) {
              assert.equal(chosen, 'none');
              assert.equal(set, before);
              continue;
            }
            assert.ok(set !== undefined && set.length > 0);
            assert.ok(set.includes(chosen as never), `${chosen} not in {${set.join(',')}}`);
            for (const id of set) assert.ok(bs.find((b) => b.id === id)!.up, `down member ${id}`);
            assert.equal(new Set(set).size, set.length, 'no duplicates');
          }
        },
      ),
    );
  });
});
