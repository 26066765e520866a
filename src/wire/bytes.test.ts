import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseIPv4 } from './bytes.ts';

/** The definition, written the obvious way: four parts, each 0 or 1-9 then up to two digits, at most 255. */
function reference(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

const view = (b: Uint8Array | undefined): number[] | undefined => (b === undefined ? undefined : [...b]);

test('parseIPv4: golden cases', () => {
  assert.deepEqual(view(parseIPv4('10.77.0.100')), [10, 77, 0, 100]);
  assert.deepEqual(view(parseIPv4('0.0.0.0')), [0, 0, 0, 0]);
  assert.deepEqual(view(parseIPv4('255.255.255.255')), [255, 255, 255, 255]);
  for (const bad of ['', '1.2.3', '1.2.3.4.', '.1.2.3', '1..2.3', '01.2.3.4', '256.1.1.1', '1.2.3.4.5', '1.2.3.a', '1.2.3.1000', ' 1.2.3.4', '1.2.3.-1']) {
    assert.equal(parseIPv4(bad), undefined, bad);
  }
});

test('parseIPv4 agrees with the definition on any text made of digits and dots, and on printed addresses', () => {
  const chars = fc.constantFrom('0', '1', '2', '5', '9', '.', 'x');
  fc.assert(fc.property(fc.array(chars, { maxLength: 20 }).map((a) => a.join('')), (s) => {
    assert.deepEqual(view(parseIPv4(s)), reference(s));
  }), { numRuns: 5000 });
  fc.assert(fc.property(fc.array(fc.nat(300), { minLength: 1, maxLength: 5 }).map((a) => a.join('.')), (s) => {
    assert.deepEqual(view(parseIPv4(s)), reference(s));
  }), { numRuns: 5000 });
});
