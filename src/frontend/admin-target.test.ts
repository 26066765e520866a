import assert from 'node:assert/strict';
import { channel } from 'node:diagnostics_channel';
import { test } from 'node:test';
import { Router } from '../policy/index.ts';
import type { FlowKey, SteerEntry, Steering } from '../steer/types.ts';
import { parseConfig } from '../util/config-file.ts';
import { ADMIN_ERR } from './admin.ts';
import { adminTargetOf, FlowAges, type RetiredBackend } from './admin-target.ts';
import { frontendConfigSchema } from './config.ts';
import { Frontend } from './frontend.ts';
import { HealthChecker } from './health.ts';
import { FakeChannel, FakeSteering, MemoryLog } from './testing.ts';

const flow = (port: number): FlowKey => ({ family: 4, clientAddress: '10.0.0.9', clientPort: port });

test('FlowAges: the time since each tuple was handed off, bounded, pruned to what steering holds', () => {
  let now = 1000;
  const ages = new FlowAges({ max: 2, now: () => now });
  const done = channel('baton:handoff:done');
  try {
    done.publish({ backend: 'b1', us: 5, flow: flow(1) });
    now = 1500;
    done.publish({ backend: 'b2', us: 5, flow: flow(2) });
    now = 4000;
    assert.equal(ages.ageMs('10.0.0.9:1', 'b1'), 3000);
    assert.equal(ages.ageMs('10.0.0.9:2', 'b2'), 2500);
    assert.equal(ages.ageMs('10.0.0.9:1', 'b2'), undefined, 'another back-end: not this connection');
    done.publish({ backend: 'b1', us: 5, flow: flow(3) });
    assert.equal(ages.ageMs('10.0.0.9:1', 'b1'), undefined, 'the oldest is forgotten past max');
    ages.keepOnly(new Set(['10.0.0.9:3']));
    assert.equal(ages.ageMs('10.0.0.9:2', 'b2'), undefined);
    assert.equal(ages.ageMs('10.0.0.9:3', 'b1'), 0);
  } finally {
    ages.close();
  }
  done.publish({ backend: 'b1', us: 5, flow: flow(4) });
  assert.equal(ages.ageMs('10.0.0.9:4', 'b1'), undefined, 'closed: no longer listening');
});

test('adminTargetOf merges the back-end table, health, drain and retired back-ends; flows come from steering', async () => {
  const cfg = parseConfig(frontendConfigSchema, {
    vip: '10.0.0.1', interface: 'eth0', secret: 'env:S',
    backends: ['b1', 'b2'].map((id, i) => ({ id, address: `10.0.0.${i + 2}`, control: { host: '10.0.0.2', port: 7700 }, ...(id === 'b2' ? { healthCheck: { fall: 1 } } : {}) })),
    pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2'] }], rules: [], defaultPool: 'all',
  });
  const entries: SteerEntry[] = [
    { flow: flow(1), verdict: 'forward', backend: 'b1', handoffId: 7n, idleMs: 20 },
    { flow: flow(2), verdict: 'closing', backend: 'b3' },
    { flow: flow(3), verdict: 'hold' },
  ];
  const steering: Steering = Object.assign(new FakeSteering(), { list: async () => entries });
  const channels = new Map([['b1', new FakeChannel()], ['b2', new FakeChannel()]]);
  const health = new HealthChecker({ probe: async () => ({ ok: false, reason: 'status 500' }), timers: { setTimeout: () => 0, clearTimeout: () => undefined } });
  health.configure([{ id: 'b2', address: '10.0.0.3', check: cfg.backends[1]!.healthCheck!, defaultPort: 80 }]);
  await health.checkNow('b2');
  const fe = new Frontend({ config: cfg, router: new Router({ pools: cfg.pools, rules: cfg.rules, defaultPool: cfg.defaultPool }), steering, channels, log: new MemoryLog(), healthy: (id) => health.healthy(id) });
  const retired = new Map<string, RetiredBackend>([['b3', { address: '10.0.0.4', weight: 1, channel: 'up', active: 2 }]]);
  let now = 10_000;
  const ages = new FlowAges({ now: () => now });
  channel('baton:handoff:done').publish({ backend: 'b1', us: 1, flow: flow(1) });
  now = 12_500;
  const t = adminTargetOf({
    frontend: fe, steering, health, ages, channelState: () => 'up', retired: () => retired,
    drain: (id) => fe.drain(id), undrain: (id) => fe.undrain(id),
    reload: async () => ({ ok: true, changes: [] }),
    info: () => ({ startedAt: 0, loadedAt: 0, reloads: 0 }), now: () => now,
  });
  try {
    const rows = () => t.backends().map((b) => [b.id, b.channel, b.health, b.drained, b.removed, b.eligible, b.healthError]);
    // FakeChannel's state is 'up'.
    assert.deepEqual(rows(), [
      ['b1', 'up', 'none', false, false, true, undefined],
      ['b2', 'up', 'down', false, false, false, 'status 500'],
      ['b3', 'up', 'none', false, true, false, undefined],
    ]);
    assert.deepEqual(t.drain('b1'), { id: 'b1', drained: true, active: 0, moved: 0, movesOut: 0 });
    assert.equal(t.backends()[0]!.eligible, false);
    assert.throws(() => t.drain('nope'), (e: unknown) => (e as { code: string }).code === ADMIN_ERR.UNKNOWN_BACKEND);
    t.undrain('b1');
    assert.equal(t.backends()[0]!.eligible, true);
    assert.deepEqual(await t.flows({}), [
      { client: '10.0.0.9:1', state: 'forward', backend: 'b1', idleMs: 20, ageMs: 2500, handoffId: '7' },
      { client: '10.0.0.9:2', state: 'closing', backend: 'b3' },
      { client: '10.0.0.9:3', state: 'hold' },
    ]);
    assert.deepEqual((await t.flows({ backend: 'b3' })).map((f) => f.client), ['10.0.0.9:2']);
    const s = t.status();
    assert.equal(s.backends, 2);
    assert.equal(s.eligible, 1);
    assert.equal(s.uptimeS, 13);
  } finally {
    ages.close();
    health.close();
  }
});
