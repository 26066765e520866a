// The probe's client-side figure: curl's starttransfer - pretransfer per request, as p50/p99 in µs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstByteUs } from './measure.ts';

test('first-byte times: differences of curl timings, in µs, nearest-rank quantiles; junk lines ignored', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `0.001000 ${(0.001 + (i + 1) * 1e-5).toFixed(6)}`);
  assert.deepEqual(firstByteUs([...lines, 'curl: (7) failed', ''].join('\n')), { firstByteP50Us: 510, firstByteP99Us: 1000 });
  assert.deepEqual(firstByteUs(''), {});
});
