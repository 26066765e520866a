import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAGLEV_TABLE_SIZE, MaglevHash, buildMaglevTable } from './maglev.ts';
import { be, cluster, pickedId, req } from './testing.ts';
import { backendId } from './types.ts';

const members = (n: number, w = (_i: number) => 1) =>
  Array.from({ length: n }, (_, i) => ({ id: backendId(`b${i}`), weight: w(i) }));

const ownerCounts = (table: Int32Array, n: number): number[] => {
  const counts = new Array<number>(n).fill(0);
  for (const i of table) counts[i]!++;
  return counts;
};

describe('maglev table', () => {
  it('has 65537 entries, all filled', () => {
    const t = buildMaglevTable(members(5));
    assert.equal(t.length, MAGLEV_TABLE_SIZE);
    assert.ok(t.every((i) => i >= 0 && i < 5));
  });

  it('is balanced: owners differ by at most one slot (N = 1..16)', () => {
    for (let n = 1; n <= 16; n++) {
      const counts = ownerCounts(buildMaglevTable(members(n)), n);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `n=${n}: ${counts.join(',')}`);
    }
  });

  it('gives slots in proportion to weight', () => {
    const counts = ownerCounts(buildMaglevTable(members(3, (i) => [1, 2, 4][i]!)), 3);
    const share = counts.map((c) => c / MAGLEV_TABLE_SIZE);
    [1 / 7, 2 / 7, 4 / 7].forEach((want, i) => assert.ok(Math.abs(share[i]! - want) < 0.001, `${share[i]} vs ${want}`));
  });

  it('removing one of N back-ends moves about 1/N of the keys (N = 2..16)', () => {
    for (let n = 2; n <= 16; n++) {
      const before = buildMaglevTable(members(n));
      const removed = Math.floor(n / 2); // not always the last one
      const rest = members(n).filter((_, i) => i !== removed);
      const after = buildMaglevTable(rest);
      let moved = 0;
      for (let s = 0; s < before.length; s++) {
        if (members(n)[before[s]!]!.id !== rest[after[s]!]!.id) moved++;
      }
      const frac = moved / before.length;
      // The removed back-end's 1/N must move; Maglev moves a little more, not much.
      assert.ok(frac >= 1 / n - 0.001 && frac <= (1 / n) * 1.1, `n=${n}: moved ${frac.toFixed(4)}`);

    }
  });
});

describe('maglev policy', () => {
  it('sends the same key to the same back-end, whatever the order of the list', () => {
    const p = new MaglevHash();
    const bs = cluster(8);
    const first = pickedId(p.pick(req('/img/a.png'), bs));
    assert.equal(pickedId(p.pick(req('/img/a.png?v=2'), [...bs].reverse())), first);
    assert.equal(pickedId(new MaglevHash().pick(req('/img/a.png'), bs)), first);
  });

  it('hashes on the configured key', () => {
    const bs = cluster(16);
    const byHost = new MaglevHash({ key: 'host' });
    const hosts = new Set(['/a', '/b', '/c', '/d', '/e'].map((t) => pickedId(byHost.pick(req(t, { host: 'x.com' }), bs))));
    assert.equal(hosts.size, 1);
    const byHeader = new MaglevHash({ key: { header: 'X-User' } });
    const u = (t: string) => pickedId(byHeader.pick(req(t, { headers: { 'x-user': 'alice' } }), bs));
    assert.equal(u('/a'), u('/zzz'));
    const byTarget = new MaglevHash({ key: 'target' });
    const spread = new Set(Array.from({ length: 50 }, (_, i) => pickedId(byTarget.pick(req(`/a?i=${i}`), bs))));
    assert.ok(spread.size > 1);
  });

  it('property: the mapping depends only on the eligible set, not on order or history', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 16 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 16 }),
        fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 20 }),
        (set, other, keys) => {
          const fresh = new MaglevHash();
          const used = new MaglevHash();
          const bs = set.map((i) => be(`b${i}`));
          const shuffled = [...bs].reverse().concat([be('down', { up: false }), be('zero', { weight: 0 })]);
          for (const k of keys) {
            used.pick(req(`/${k}`), other.map((i) => be(`b${i}`)));
            assert.equal(pickedId(used.pick(req(`/${k}`), shuffled)), pickedId(fresh.pick(req(`/${k}`), bs)));
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
