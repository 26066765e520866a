// /metrics and /stats over a real Frontend on loopback (fake steering and channels, no root): the series operators
// and the Grafana dashboard rely on are there, with their labels.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Router } from '../policy/index.ts';
import { parseConfig } from '../util/config-file.ts';
import { frontendConfigSchema } from './config.ts';
import { Frontend } from './frontend.ts';
import { startStatsServer } from './stats-server.ts';
import { FakeChannel, FakeSteering, MemoryLog } from './testing.ts';

test('/metrics exports pending, shed and the move outcomes; /stats carries the same numbers', async (t) => {
  const cfg = {
    ...parseConfig(frontendConfigSchema, {
      vip: '127.0.0.1', port: 1, interface: 'lo', secret: 'env:S',
      backends: [{ id: 'b1', address: '127.0.0.2', control: { host: '127.0.0.1', port: 7700 } }],
      pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1'] }], rules: [], defaultPool: 'all',
    }),
    port: 0,
  };
  const router = new Router({ pools: cfg.pools, rules: cfg.rules, defaultPool: cfg.defaultPool });
  const fe = new Frontend({ config: cfg, router, steering: new FakeSteering(), channels: new Map([['b1', new FakeChannel()]]), log: new MemoryLog() });
  await fe.listen();
  t.after(() => fe.close());
  const server = await startStatsServer(fe, '127.0.0.1', 0);
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const metrics = await (await fetch(`${base}/metrics`)).text();
  for (const line of [
    'baton_frontend_pending 0',
    'baton_frontend_shed_total 0',
    'baton_frontend_moves_total{outcome="moved"} 0',
    'baton_frontend_moves_total{outcome="forwardFirst"} 0',
    'baton_frontend_moves_total{outcome="lost"} 0',
  ]) assert.ok(metrics.split('\n').includes(line), `missing ${line}`);
  const stats = (await (await fetch(`${base}/stats`)).json()) as { pending: number; shed: number; moves: { moved: number } };
  assert.deepEqual([stats.pending, stats.shed, stats.moves.moved], [0, 0, 0]);
});
