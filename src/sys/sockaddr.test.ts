import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeSockaddr, encodeSockaddr } from './sockaddr.ts';

test('sockaddr_in golden bytes and round trip', () => {
  const b = encodeSockaddr({ family: 4, address: '10.77.0.100', port: 80 });
  assert.equal(b.toString('hex'), '020000500a4d00640000000000000000');
  assert.deepEqual(decodeSockaddr(b), { family: 4, address: '10.77.0.100', port: 80 });
});

test('sockaddr_in6 round trip prints like Node', () => {
  for (const address of ['::1', '2001:db8::1', 'fe80::1:2:3:4', '::ffff:10.0.0.1']) {
    const b = encodeSockaddr({ family: 6, address, port: 65535 });
    assert.equal(b.length, 28);
    assert.deepEqual(decodeSockaddr(b), { family: 6, address, port: 65535 });
  }
});

test('a malformed address is refused, naming it', () => {
  assert.throws(() => encodeSockaddr({ family: 4, address: '10.0.0.256', port: 1 }), /not an IPv4 address: 10\.0\.0\.256/);
});
