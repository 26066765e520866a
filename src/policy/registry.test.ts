import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPolicy } from './registry.ts';
import { POLICY_NAMES, policySpecSchema, type PolicySpec } from './spec.ts';
import { hasAdmissionControl } from './types.ts';

describe('createPolicy', () => {
  it('builds every registered policy under its own name', () => {
    for (const name of POLICY_NAMES) assert.equal(createPolicy({ name }).name, name);
  });

  it('returns a fresh instance per call (pools never share state)', () => {
    assert.notEqual(createPolicy({ name: 'lard' }), createPolicy({ name: 'lard' }));
  });

  it('only LARD and LARD/R bound outstanding requests', () => {
    assert.deepEqual(
      POLICY_NAMES.filter((name) => hasAdmissionControl(createPolicy({ name }))),
      ['lard', 'lardr'],
    );
  });

  const bad: { spec: unknown; error: RegExp }[] = [
    { spec: { name: 'random' }, error: /^name: unknown policy "random" \(expected one of wrr, lc, maglev, lard, lardr\)$/ },
    { spec: {}, error: /^name: unknown policy/ },
    { spec: { name: 'wrr', options: { weight: 2 } }, error: /^options: Unrecognized key/ },
    { spec: { name: 'maglev', options: { key: 'cookie' } }, error: /^options\.key/ },
    { spec: { name: 'maglev', options: { key: { header: '' } } }, error: /^options\.key/ },
    { spec: { name: 'lard', options: { tLow: 70 } }, error: /^options\.tLow: tLow must be less than tHigh/ },
    { spec: { name: 'lardr', options: { k: 0 } }, error: /^options\.k/ },
    { spec: { name: 'lard', options: { tHigh: 1.5 } }, error: /^options\.tHigh/ },
  ];
  for (const c of bad) {
    it(`rejects ${JSON.stringify(c.spec)}`, () => {
      assert.throws(() => createPolicy(c.spec as PolicySpec), { code: 'BATON_ERR_POLICY_CONFIG', message: c.error });
    });
  }

  it('accepts every documented option', () => {
    const ok: PolicySpec[] = [
      { name: 'maglev', options: { key: 'host' } },
      { name: 'maglev', options: { key: { header: 'x-user' } } },
      { name: 'lard', options: { tLow: 10, tHigh: 40, key: 'target', maxTargets: 10 } },
      { name: 'lardr', options: { tLow: 10, tHigh: 40, k: 5 } },
    ];
    for (const s of ok) {
      assert.ok(policySpecSchema.safeParse(s).success);
      createPolicy(s);
    }
  });
});
