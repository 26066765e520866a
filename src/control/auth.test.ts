import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { Secret, MIN_SECRET_BYTES, proofMatches } from './auth.ts';
import { ControlError, CONTROL_ERR } from './errors.ts';

const nonceA = new Uint8Array(32).fill(1);
const nonceB = new Uint8Array(32).fill(2);

test('a secret shorter than 16 bytes is refused without echoing it', () => {
  const short = 'fifteen-bytes!!';
  assert.equal(Buffer.byteLength(short), MIN_SECRET_BYTES - 1);
  assert.throws(
    () => new Secret(short),
    (e: unknown) => e instanceof ControlError && e.code === CONTROL_ERR.INVALID_ARGUMENT && /at least 16 bytes/.test(e.message) && !e.message.includes(short),
  );
  new Secret('sixteen-bytes!!!');
  new Secret(new Uint8Array(16));
});

test('a secret prints and serialises as redacted', () => {
  const s = new Secret('a-very-secret-value-123');
  assert.doesNotMatch(inspect(s), /very-secret/);
  assert.doesNotMatch(JSON.stringify({ s }), /very-secret/);
});

test('server and client proofs differ (no reflection) and depend on both nonces and the secret', () => {
  const s = new Secret('0123456789abcdef');
  const other = new Secret('0123456789abcdeX');
  const ps = s.serverProof(nonceA, nonceB);
  assert.equal(ps.length, 32);
  assert.ok(!proofMatches(ps, s.clientProof(nonceB, nonceA)));
  assert.ok(!proofMatches(ps, s.serverProof(nonceB, nonceA)));
  assert.ok(!proofMatches(ps, other.serverProof(nonceA, nonceB)));
  assert.ok(proofMatches(ps, s.serverProof(nonceA, nonceB)));
  assert.ok(!proofMatches(ps, ps.subarray(0, 31)));
});
