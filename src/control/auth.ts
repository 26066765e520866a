// Mutual authentication of a control connection with a shared secret.
//
//   client -> HELLO(nonceC)
//   server -> CHALLENGE(nonceS, proofS = HMAC(secret, "baton/1 server" | nonceC | nonceS))
//   client    verifies proofS (else the server is an impostor and the client hangs up)
//   client -> AUTH(proofC = HMAC(secret, "baton/1 client" | nonceS | nonceC))
//   server    verifies proofC, then -> AUTH_OK
//
// Both nonces are fresh per connection, so a recorded transcript does not verify again, and the
// labels differ, so one side's proof can never be reflected as the other's. This authenticates
// the start of the connection only: frames after it carry no MAC, so the channel belongs on a
// trusted network (or inside TLS/WireGuard) like any LVS control plane.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { NONCE_BYTES, PROOF_BYTES } from '../wire/frame.ts';
import { invalidArgument } from './errors.ts';

// 2: FLOW_END names its handoff id; LOAD carries the commits it includes.
export const PROTO_VERSION = 2;
export const MIN_SECRET_BYTES = 16;

const SERVER_LABEL = Buffer.from('baton/1 server', 'ascii');
const CLIENT_LABEL = Buffer.from('baton/1 client', 'ascii');

export type SecretInput = string | Uint8Array;

/** The shared secret. Its bytes stay private: printing or serialising it shows "[redacted]". */
export class Secret {
  readonly #key: Buffer;

  constructor(input: SecretInput) {
    if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
      throw invalidArgument('secret must be a string or bytes');
    }
    const key = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
    if (key.length < MIN_SECRET_BYTES) throw invalidArgument(`secret must be at least ${MIN_SECRET_BYTES} bytes`);
    this.#key = key;
  }

  serverProof(nonceC: Uint8Array, nonceS: Uint8Array): Uint8Array {
    return this.#mac(SERVER_LABEL, nonceC, nonceS);
  }

  clientProof(nonceS: Uint8Array, nonceC: Uint8Array): Uint8Array {
    return this.#mac(CLIENT_LABEL, nonceS, nonceC);
  }

  #mac(label: Uint8Array, a: Uint8Array, b: Uint8Array): Uint8Array {
    return createHmac('sha256', this.#key).update(label).update(a).update(b).digest();
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'Secret [redacted]';
  }
}

export function newNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES);
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(expected: Uint8Array, received: Uint8Array): boolean {
  return received.length === PROOF_BYTES && expected.length === PROOF_BYTES && timingSafeEqual(expected, received);
}
