import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../util/config-file.ts';
import { frontendConfigSchema } from './config.ts';

const base = {
  vip: '10.77.0.100', interface: 'eth0', secret: 'env:S',
  backends: [{ id: 'b1', address: '10.77.0.11', control: { host: '10.77.0.11', port: 7700 } }],
  pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1'] }], rules: [], defaultPool: 'all',
};

test('a minimal config gets its defaults', () => {
  const c = parseConfig(frontendConfigSchema, base);
  assert.equal(c.port, 80);
  assert.equal(c.limits.maxHeadBytes, 16384);
  assert.equal(c.steering.lingerMs, 2000);
  assert.equal(c.backends[0]!.weight, 1);
});

const refused = (patch: Record<string, unknown>, field: string): void => {
  assert.throws(
    () => parseConfig(frontendConfigSchema, { ...base, ...patch }),
    (e: unknown) => e instanceof ConfigError && e.code === 'BATON_ERR_CONFIG' && e.field === field,
    `expected an error naming ${field}`,
  );
};

test('errors name the field', () => {
  refused({ vip: 'nope' }, 'vip');
  refused({ backends: [{ ...base.backends[0], control: { host: '10.77.0.11', port: '7700' } }] }, 'backends.0.control.port');
  refused({ pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b9'] }] }, 'pools.0.members.0');
  refused({ defaultPool: 'nope' }, 'defaultPool');
  refused({ backends: [base.backends[0], base.backends[0]] }, 'backends.1.id');
  refused({ limits: { headTimeoutMs: -1 } }, 'limits.headTimeoutMs');
  refused({ unknownField: 1 }, '');
  refused({ backends: [{ ...base.backends[0], address: '2001:db8::1' }] }, 'backends.0.address');
});

test('tls: off by default; hello limits have defaults; rules that can never match on the listener are refused', () => {
  const c = parseConfig(frontendConfigSchema, base);
  assert.equal(c.tls, false);
  assert.deepEqual([c.limits.maxHelloBytes, c.limits.maxHelloRecords, c.limits.helloTimeoutMs], [16384, 16, 10_000]);
  const t = parseConfig(frontendConfigSchema, { ...base, tls: true, rules: [{ match: { sni: '*.example.com', alpn: 'h2' }, pool: 'all' }, { match: { host: 'a.example' }, pool: 'all' }] });
  assert.equal(t.tls, true);
  refused({ tls: true, rules: [{ match: { pathPrefix: '/api' }, pool: 'all' }] }, 'rules.0.match.pathPrefix');
  refused({ tls: true, rules: [{ match: { sni: 'a.example', header: { name: 'x' } }, pool: 'all' }] }, 'rules.0.match.header');
  refused({ rules: [{ match: { sni: 'a.example' }, pool: 'all' }] }, 'rules.0.match.sni');
  refused({ limits: { maxHelloBytes: 100 } }, 'limits.maxHelloBytes');
});
