// The move-protocol frames (ROUTES, MOVE, MOVE_REPLY, MOVE_BLOB, MOVE_DONE, DRAIN, STAYS): round
// trips, golden bytes for MOVE_REPLY, and refusals of bad values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeMessage, encodeMessage, FrameError, MAX_MOVE_HEAD_BYTES, type Message } from './frame.ts';
import { roundTripFrame, throwsFrame } from './testing.ts';


test('move-protocol messages round-trip', () => {
  const head = new TextEncoder().encode('GET /bytes/2 HTTP/1.1\r\nHost: x\r\n\r\n');
  const msgs: Message[] = [
    { kind: 'routes', version: 7, json: '{"a":"é"}' },
    { kind: 'move', id: 1n, handoffId: 0xffff_ffff_ffff_ffffn, flowId: 42, reason: 2, family: 4, client: { address: '10.0.0.9', port: 40000 }, vip: { address: '10.0.0.100', port: 80 }, head },
    { kind: 'move', id: 2n, handoffId: 5n, flowId: 1, reason: 6, family: 6, client: { address: 'fd00::9', port: 1 }, vip: { address: 'fd00::100', port: 443 }, head: new Uint8Array(0) },
    { kind: 'move-reply', id: 3n, verdict: 'go', code: '' },
    { kind: 'move-reply', id: 4n, verdict: 'refuse', code: 'BATON_ERR_NO_BACKEND' },
    { kind: 'move-blob', id: 5n, ok: true, blob: Uint8Array.of(1, 2, 3) },
    { kind: 'move-blob', id: 6n, ok: false, code: 'BATON_ERR_MOVE_CAPTURE', reason: 'not ESTABLISHED' },
    { kind: 'move-done', id: 7n, outcome: 'returned' },
    { kind: 'drain', draining: true },
    { kind: 'drain', draining: false },
    { kind: 'stays', counts: { requests: 10, stays: 8, moves: 2, kept: 1, moved: 1, pinned: 0, decideNs: 123456789n, captureNs: 5n } },
  ];
  for (const m of msgs) assert.deepEqual(roundTripFrame(m), m);
});

test('MOVE_REPLY golden bytes', () => {
  const b = encodeMessage({ kind: 'move-reply', id: 1n, verdict: 'stay', code: 'X' });
  assert.deepEqual([...b], [0, 0, 0, 12, 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0x58]);
});

test('bad verdicts, outcomes, flags and oversized heads are refused', () => {
  const bad = (type: number, payload: number[]): void =>
    assert.throws(() => decodeMessage({ type, payload: Uint8Array.from(payload) }), FrameError);
  bad(0x41, [0, 0, 0, 0, 0, 0, 0, 1, 3, 0]); // verdict 3
  bad(0x43, [0, 0, 0, 0, 0, 0, 0, 1, 9]); // outcome 9
  bad(0x44, [2]); // unknown drain flag
  bad(0x42, [0, 0, 0, 0, 0, 0, 0, 1, 2]); // ok = 2
  bad(0x40, [0, 0, 0]); // truncated
  assert.throws(
    () => encodeMessage({ kind: 'move', id: 1n, handoffId: 1n, flowId: 1, reason: 1, family: 4, client: { address: '1.2.3.4', port: 1 }, vip: { address: '1.2.3.5', port: 2 }, head: new Uint8Array(MAX_MOVE_HEAD_BYTES + 1) }),
    FrameError,
  );
});
