// Test helpers shared by the wire codec tests.
import assert from 'node:assert/strict';
import { WireError } from './errors.ts';

/** Asserts that fn throws a WireError with this code (and field, when given). */
export function throwsWire(fn: () => unknown, code: string, field?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WireError, `expected WireError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  });
}
