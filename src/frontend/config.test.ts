import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../util/config-file.ts';
import { adminSocketPath, adminStatePath, frontendConfigSchema, isLoopback } from './config.ts';

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
  assert.equal(c.steering.kind, 'bpf');
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

test('admin: default socket from the steering table; TCP only on loopback', () => {
  const c = parseConfig(frontendConfigSchema, { ...base, steering: { table: 'fe1' } });
  assert.equal(adminSocketPath(c), '/run/baton/fe1.sock');
  assert.equal(adminStatePath(c), '/run/baton/fe1.state.json');
  const d = parseConfig(frontendConfigSchema, { ...base, admin: { socket: '/tmp/x.sock', tcp: { host: '::1', port: 9901 } } });
  assert.equal(adminSocketPath(d), '/tmp/x.sock');
  refused({ admin: { tcp: { host: '10.77.0.1', port: 9901 } } }, 'admin.tcp.host');
  refused({ admin: { tcp: { host: '0.0.0.0', port: 9901 } } }, 'admin.tcp.host');
  refused({ admin: { socket: 'relative.sock' } }, 'admin.socket');
});

test('isLoopback', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '0.0.0.0', '::', '::2', '2001:db8::1', '::ffff:10.0.0.1', 'localhost']) assert.equal(isLoopback(a), false, a);
});

test('healthCheck: defaults, and timeout within interval', () => {
  const c = parseConfig(frontendConfigSchema, { ...base, backends: [{ ...base.backends[0], healthCheck: {} }] });
  assert.deepEqual(c.backends[0]!.healthCheck, { path: '/', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 });
  const hc = (h: Record<string, unknown>) => ({ backends: [{ ...base.backends[0], healthCheck: h }] });
  refused(hc({ timeoutMs: 5000, intervalMs: 1000 }), 'backends.0.healthCheck.timeoutMs');
  refused(hc({ path: 'health' }), 'backends.0.healthCheck.path');
  refused(hc({ host: 'a b' }), 'backends.0.healthCheck.host');
  refused(hc({ rise: 0 }), 'backends.0.healthCheck.rise');
});
