// Test helpers shared by the wire codec tests.
import assert from 'node:assert/strict';
import { WireError } from './errors.ts';
import { decodeMessage, encodeMessage, FrameDecoder, FrameError, type Message } from './frame.ts';

/** Asserts that fn throws a WireError with this code (and field, when given). */
export function throwsWire(fn: () => unknown, code: string, field?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WireError, `expected WireError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  });
}

/** Encodes a control message, frames it through a FrameDecoder and decodes it again. */
export function roundTripFrame(m: Message): Message {
  const d = new FrameDecoder();
  d.push(encodeMessage(m));
  const f = d.next();
  assert.ok(f);
  return decodeMessage(f);
}

/** Asserts that fn throws a FrameError (a WireError with a BATON_ERR_FRAME_* code) whose field matches. */
export function throwsFrame(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof FrameError && e instanceof WireError && field.test(e.field) && e.code.startsWith('BATON_ERR_FRAME_'));
}
