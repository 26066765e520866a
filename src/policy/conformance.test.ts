// What every policy promises the front-end, checked for each registered policy: ineligible
// back-ends are never chosen, 'none' exactly when nothing is eligible, and back-ends may come
// and go between calls.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createPolicy } from './registry.ts';
import { POLICY_NAMES } from './spec.ts';
import { be, cluster, req } from './testing.ts';
import { isEligible } from './eligible.ts';
import type { BackendView } from './types.ts';

const backendArb = fc.record({
  id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
  up: fc.boolean(),
  weight: fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 1, max: 10 }), fc.double({ min: 0, max: 5, noNaN: true })),
  active: fc.integer({ min: 0, max: 200 }),
});

for (const name of POLICY_NAMES) {
  describe(`${name} conformance`, () => {
    it('answers none with a reason when there are no back-ends', () => {
      const r = createPolicy({ name }).pick(req('/x'), [], 0);
      assert.equal(r.kind, 'none');
      assert.ok(r.kind === 'none' && r.reason.length > 0);
    });

    it('answers none when every back-end is down', () => {
      const p = createPolicy({ name });
      const bs = cluster(4).map((b) => ({ ...b, up: false }));
      assert.equal(p.pick(req('/x'), bs, 0).kind, 'none');
    });

    it('answers none when every weight is zero', () => {
      const p = createPolicy({ name });
      const bs = cluster(4).map((b) => ({ ...b, weight: 0 }));
      assert.equal(p.pick(req('/x'), bs, 0).kind, 'none');
    });

    it('never picks a down or zero-weight back-end', () => {
      const p = createPolicy({ name });
      const bs = [be('a', { up: false }), be('b', { weight: 0 }), be('c', { active: 500 })];
      for (let i = 0; i < 50; i++) assert.deepEqual(p.pick(req(`/t${i}`), bs, i), { kind: 'backend', id: 'c' });
    });

    it('serves targets it has never seen and back-ends that join later', () => {
      const p = createPolicy({ name });
      const bs = [be('a')];
      assert.deepEqual(p.pick(req('/never-seen'), bs, 0), { kind: 'backend', id: 'a' });
      const after = [be('x', { up: false }), be('y')];
      assert.deepEqual(p.pick(req('/never-seen'), after, 1), { kind: 'backend', id: 'y' });
    });

    it('property: picks are eligible members of the current list, through arbitrary churn', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              backends: fc.uniqueArray(backendArb, { selector: (b) => b.id, maxLength: 6 }),
              target: fc.constantFrom('/a', '/b', '/c', '/d?q', '/'),
              dt: fc.integer({ min: 0, max: 30_000 }),
            }),
            { maxLength: 40 },
          ),
          (steps) => {
            const p = createPolicy({ name });
            let now = 0;
            for (const s of steps) {
              now += s.dt;
              const views = s.backends as unknown as BackendView[];
              const r = p.pick(req(s.target), views, now);
              const anyEligible = views.some(isEligible);
              if (r.kind === 'none') assert.ok(!anyEligible, 'none while something was eligible');
              else {
                const chosen = views.find((b) => b.id === r.id);
                assert.ok(chosen !== undefined && isEligible(chosen), `picked ineligible ${r.id}`);
              }
            }
          },
        ),
      );
    });
  });
}
