import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF, backoffDelay, resolveBackoff } from './backoff.ts';

test('delays double from initialMs up to maxMs; jitter only shortens', () => {
  const table: Array<[attempt: number, random: number, expected: number]> = [
    [0, 0, 100],
    [1, 0, 200],
    [5, 0, 3200],
    [6, 0, 5000],
    [1000, 0, 5000],
    [0, 0.5, 90],
    [6, 0.999999, 4000],
  ];
  for (const [attempt, r, expected] of table) {
    assert.equal(backoffDelay(attempt, DEFAULT_BACKOFF, () => r), expected, `attempt ${attempt}, random ${r}`);
  }
});

test('backoff options are validated and defaulted', () => {
  assert.deepEqual(resolveBackoff(undefined), DEFAULT_BACKOFF);
  assert.deepEqual(resolveBackoff({ initialMs: 1 }), { ...DEFAULT_BACKOFF, initialMs: 1 });
  assert.equal(typeof resolveBackoff({ jitter: 2 }), 'string');
  assert.equal(typeof resolveBackoff({ factor: 0.5 }), 'string');
  assert.equal(typeof resolveBackoff({ initialMs: 10, maxMs: 5 }), 'string');
});
