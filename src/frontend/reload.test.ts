import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../util/config-file.ts';
import { frontendConfigSchema, type FrontendConfig } from './config.ts';
import { applyReload, planReload, refusalText, RELOAD_ERR, sameValue, type ReloadPlan, type ReloadPorts } from './reload.ts';

const b = (id: string, n: number, extra: Record<string, unknown> = {}) => ({
  id, address: `10.77.0.${n}`, control: { host: `10.77.0.${n}`, port: 7700 }, ...extra,
});
const raw = {
  vip: '10.77.0.100', interface: 'eth0', secret: 'env:S',
  backends: [b('b1', 11), b('b2', 12)],
  pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2'] }], rules: [], defaultPool: 'all',
};
const cfg = (patch: Record<string, unknown> = {}): FrontendConfig => parseConfig(frontendConfigSchema, { ...raw, ...patch });

const applied = (next: FrontendConfig, cur = cfg()): ReloadPlan => {
  const d = planReload(cur, next);
  assert.equal(d.kind, 'apply', d.kind === 'refused' ? refusalText(d.refusals) : '');
  return (d as { plan: ReloadPlan }).plan;
};
const refusedFields = (next: FrontendConfig, cur = cfg()): string[] => {
  const d = planReload(cur, next);
  assert.equal(d.kind, 'refused');
  return d.kind === 'refused' ? d.refusals.map((r) => r.field) : [];
};

test('the same file is an empty plan', () => {
  const p = applied(cfg());
  assert.deepEqual(p, { added: [], removed: [], updated: [], routerChanged: false, limitsChanged: false, summary: [] });
});

test('key order and explicit defaults do not count as changes', () => {
  const reordered = { defaultPool: 'all', rules: [], pools: raw.pools, backends: [b('b1', 11, { weight: 1 }), b('b2', 12)], secret: 'env:S', interface: 'eth0', vip: '10.77.0.100', port: 80 };
  assert.deepEqual(applied(parseConfig(frontendConfigSchema, reordered)).summary, []);
});

test('a back-end added to a pool and a rule changed', () => {
  const next = cfg({
    backends: [...raw.backends, b('b3', 13)],
    pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2'] }, { name: 'api', policy: { name: 'lc' }, members: ['b3'] }],
    rules: [{ match: { pathPrefix: '/api/' }, pool: 'api' }],
  });
  const p = applied(next);
  assert.deepEqual(p.added.map((x) => x.id), ['b3']);
  assert.deepEqual(p.removed, []);
  assert.equal(p.routerChanged, true);
  assert.deepEqual(p.summary, ['back-end b3 added (10.77.0.13, weight 1)', 'pools/rules changed (router rebuilt)']);
});

test('a back-end removed, another re-weighted and given a health check', () => {
  const next = cfg({
    backends: [b('b2', 12, { weight: 3, healthCheck: { path: '/health' } })],
    pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b2'] }],
  });
  const p = applied(next);
  assert.deepEqual(p.removed, ['b1']);
  assert.equal(p.updated.length, 1);
  assert.deepEqual([...p.updated[0]!.fields].sort(), ['healthCheck', 'weight']);
  assert.ok(p.summary.includes('back-end b2: weight 1 -> 3, healthCheck changed'), p.summary.join('|'));
  assert.ok(p.summary.includes('back-end b1 removed (no new handoffs; its connections finish)'));
});

test('limits apply live except the handoff timeout', () => {
  assert.equal(applied(cfg({ limits: { maxPending: 10 } })).limitsChanged, true);
  assert.deepEqual(refusedFields(cfg({ limits: { handoffTimeoutMs: 500 } })), ['limits.handoffTimeoutMs']);
});

test('listener, steering, secret, admin and stats changes are refused, each field named', () => {
  assert.deepEqual(refusedFields(cfg({ vip: '10.77.0.101' })), ['vip']);
  assert.deepEqual(refusedFields(cfg({ port: 8080 })), ['port']);
  assert.deepEqual(refusedFields(cfg({ tls: true })), ['tls']);
  assert.deepEqual(refusedFields(cfg({ tls: true }), cfg({ tls: false })), ['tls']);
  assert.deepEqual(refusedFields(cfg({ interface: 'eth1' })), ['interface']);
  assert.deepEqual(refusedFields(cfg({ steering: { table: 'other' } })), ['steering']);
  assert.deepEqual(refusedFields(cfg({ secret: 'env:T' })), ['secret']);
  assert.deepEqual(refusedFields(cfg({ stats: { host: '127.0.0.1', port: 9900 } })), ['stats']);
  assert.deepEqual(refusedFields(cfg({ admin: { socket: '/tmp/a.sock' } })), ['admin']);
  assert.deepEqual(refusedFields(cfg({ vip: '10.77.0.101', port: 81 })), ['vip', 'port']);
});

test("a back-end's address or control endpoint cannot change under the same id", () => {
  const moved = cfg({ backends: [b('b1', 11), { ...b('b2', 12), address: '10.77.0.22' }] });
  assert.deepEqual(refusedFields(moved), ['backends.1.address']);
  const d = planReload(cfg(), moved);
  assert.match(d.kind === 'refused' ? refusalText(d.refusals) : '', /^config: backends\.1\.address: cannot change without a restart \(.*new id/);
  const ctl = cfg({ backends: [b('b1', 11), { ...b('b2', 12), control: { host: '10.77.0.12', port: 7701 } }] });
  assert.deepEqual(refusedFields(ctl), ['backends.1.control']);
  const encap = cfg({ steering: { kind: 'bpf' } });
  assert.deepEqual(refusedFields(cfg({ steering: { kind: 'bpf' }, backends: [b('b1', 11), b('b2', 12, { mode: 'encap' })] }), encap), ['backends.1.mode']);
});

test('sameValue', () => {
  assert.equal(sameValue({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }), true);
  assert.equal(sameValue({ a: 1, x: undefined }, { a: 1 }), true);
  assert.equal(sameValue([1, 2], [2, 1]), false);
  assert.equal(sameValue({ a: 1 }, { a: '1' }), false);
  assert.equal(sameValue([], {}), false);
  assert.equal(sameValue(null, {}), false);
});

/** Ports that record what is done, in order. */
const recorder = (o: { failAdd?: string; failRouter?: boolean } = {}) => {
  const log: string[] = [];
  const ports: ReloadPorts<string> = {
    router: (n) => {
      if (o.failRouter) throw new Error('bad regex');
      log.push(`router ${n.pools.map((p) => p.name).join(',')}`);
      return 'R';
    },
    add: async (b) => {
      if (b.id === o.failAdd) throw new Error('steering refused');
      log.push(`add ${b.id}`);
    },
    undoAdd: (id) => void log.push(`undo ${id}`),
    swap: (n, r) => void log.push(`swap ${n.backends.map((b) => b.id).join(',')} ${r}`),
    retire: (id) => void log.push(`retire ${id}`),
    health: (n) => void log.push(`health ${n.backends.filter((b) => b.healthCheck).map((b) => b.id).join(',')}`),
  };
  return { ports, log };
};

test('apply: added back-ends are reachable before the swap; removed ones retire after it', async () => {
  const next = cfg({
    backends: [b('b2', 12, { healthCheck: {} }), b('b3', 13), b('b4', 14)],
    pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b2', 'b3', 'b4'] }],
  });
  const { ports, log } = recorder();
  const r = await applyReload(cfg(), next, ports);
  assert.equal(r.ok, true);
  assert.deepEqual(log, ['router all', 'add b3', 'add b4', 'swap b2,b3,b4 R', 'retire b1', 'health b2']);
});

test('apply: a failed addition undoes the earlier ones and changes nothing', async () => {
  const next = cfg({ backends: [...raw.backends, b('b3', 13), b('b4', 14)] });
  const { ports, log } = recorder({ failAdd: 'b4' });
  const r = await applyReload(cfg(), next, ports);
  assert.deepEqual(r, { ok: false, code: RELOAD_ERR.APPLY, field: 'backends.3', message: 'config: backends.3: cannot add b4: steering refused' });
  assert.deepEqual(log, ['router all', 'add b3', 'undo b3']);
});

test('apply: a refused plan or a router that cannot be built touches nothing', async () => {
  const a = recorder();
  const r = await applyReload(cfg(), cfg({ port: 81 }), a.ports);
  assert.equal(r.ok, false);
  assert.equal(r.ok ? '' : r.code, RELOAD_ERR.RESTART_NEEDED);
  assert.equal(r.ok ? '' : r.field, 'port');
  assert.deepEqual(a.log, []);
  const c = recorder({ failRouter: true });
  const r2 = await applyReload(cfg(), cfg({ backends: [...raw.backends, b('b3', 13)] }), c.ports);
  assert.equal(r2.ok ? '' : r2.code, RELOAD_ERR.APPLY);
  assert.deepEqual(c.log, []);
});
