// PARK (0x1A, front-end -> agent): the tuple a lossless move steers to an agent before its blob (expect), or
// that will not come after all (discard). Round trips, golden bytes, and refusals naming the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeMessage, encodeMessage, FrameError, FrameType, type Message } from './frame.ts';
import { roundTripFrame, throwsFrame } from './testing.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

test('PARK round-trips both actions, IPv4 and IPv6', () => {
  const msgs: Message[] = [
    { kind: 'park', action: 'expect', family: 4, client: { address: '192.0.2.10', port: 51234 }, vip: { address: '198.51.100.1', port: 80 } },
    { kind: 'park', action: 'discard', family: 4, client: { address: '192.0.2.10', port: 1 }, vip: { address: '198.51.100.1', port: 65535 } },
    { kind: 'park', action: 'discard', family: 6, client: { address: '2001:db8::9', port: 40000 }, vip: { address: '2001:db8::100', port: 443 } },
  ];
  for (const m of msgs) assert.deepEqual(roundTripFrame(m), m);
});

test('PARK golden bytes', () => {
  const b = encodeMessage({ kind: 'park', action: 'discard', family: 4, client: { address: '192.0.2.10', port: 0xc822 }, vip: { address: '198.51.100.1', port: 80 } });
  assert.deepEqual(Buffer.from(b).toString('hex'), '0000000f' + '1a' + '01' + '04' + 'c000020a' + 'c822' + 'c6336401' + '0050');
  assert.equal(FrameType.park, 0x1a);
});

test('PARK: unknown action, bad family, truncated, trailing and mis-sized payloads are refused', () => {
  const f = (payload: string) => ({ type: FrameType.park, payload: hex(payload) });
  throwsFrame(() => decodeMessage(f('02 04 c000020a c822 c6336401 0050')), /^park\.action$/);
  throwsFrame(() => decodeMessage(f('ff 04 c000020a c822 c6336401 0050')), /^park\.action$/);
  throwsFrame(() => decodeMessage(f('00 05 c000020a c822 c6336401 0050')), /^park\.family$/);
  throwsFrame(() => decodeMessage(f('')), /^park\.action$/);
  throwsFrame(() => decodeMessage(f('00 04 c000020a c822 c6336401')), /^park\.vip\.port$/);
  throwsFrame(() => decodeMessage(f('00 04 c000020a c822 c6336401 0050 00')), /^park$/);
  // A v4 tuple with v6-sized addresses: the family fixes the length exactly.
  throwsFrame(() => decodeMessage(f('01 04' + '00'.repeat(36))), /^park$/);
  throwsFrame(() => encodeMessage({ kind: 'park', action: 'expect', family: 4, client: { address: '2001:db8::1', port: 1 }, vip: { address: '198.51.100.1', port: 80 } }), /^park\.client\.address$/);
  throwsFrame(() => encodeMessage({ kind: 'park', action: 'expect', family: 4, client: { address: '192.0.2.1', port: 70000 }, vip: { address: '198.51.100.1', port: 80 } }), /^park\.client\.port$/);
  throwsFrame(() => encodeMessage({ kind: 'park', action: 'nope' as 'expect', family: 4, client: { address: '192.0.2.1', port: 1 }, vip: { address: '198.51.100.1', port: 80 } }), /^park\.action$/);
});

test('PARK: any payload decodes or throws a FrameError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 48 }), (payload) => {
      try {
        const m = decodeMessage({ type: FrameType.park, payload });
        assert.equal(m.kind, 'park');
      } catch (e) {
        assert.ok(e instanceof FrameError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});
