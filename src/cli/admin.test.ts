import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { FakeAdminTarget } from '../frontend/admin-testing.ts';
import { AdminServer } from '../frontend/admin.ts';
import { backends, drain, flows, reload, resolveEndpoint, status, table, undrain } from './admin.ts';

async function fixture(t: TestContext, target = new FakeAdminTarget()) {
  const dir = await mkdtemp(join(tmpdir(), 'baton-cli-admin-'));
  const socket = join(dir, 'fe.sock');
  const server = await AdminServer.start({ target, socket });
  t.after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  let text = '';
  return { dir, target, ep: { socket }, out: { write: (s: string) => void (text += s) }, text: () => text };
}

test('table aligns columns', () => {
  assert.equal(table(['A', 'BB'], [['xxx', 'y'], ['z', '']]), 'A    BB\nxxx  y\nz\n');
});

test('the endpoint comes from --socket, --tcp or the config file', async (t) => {
  assert.deepEqual(await resolveEndpoint({ socket: '/x.sock' }), { socket: '/x.sock' });
  assert.deepEqual(await resolveEndpoint({ tcp: '127.0.0.1:9901' }), { host: '127.0.0.1', port: 9901 });
  assert.deepEqual(await resolveEndpoint({ tcp: '[::1]:9901' }), { host: '::1', port: 9901 });
  await assert.rejects(resolveEndpoint({ tcp: 'nope' }), /expected HOST:PORT/);
  assert.deepEqual(await resolveEndpoint({}), { socket: '/run/baton/baton.sock' });
  const dir = await mkdtemp(join(tmpdir(), 'baton-cli-cfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'fe.json');
  await writeFile(file, JSON.stringify({
    vip: '10.77.0.100', interface: 'eth0', secret: 'env:S', steering: { table: 'edge' },
    backends: [{ id: 'b1', address: '10.77.0.11', control: { host: '10.77.0.11', port: 7700 } }],
    pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1'] }], rules: [], defaultPool: 'all',
  }));
  assert.deepEqual(await resolveEndpoint({ config: file }), { socket: '/run/baton/edge.sock' });
});

test('status and backends print tables, or JSON', async (t) => {
  const f = await fixture(t);
  f.target.backendList[1]!.health = 'down';
  f.target.backendList[1]!.healthError = 'status 503';
  f.target.backendList[1]!.eligible = false;
  await status(f.ep, {}, f.out);
  assert.match(f.text(), /^front-end 10\.77\.0\.100:80 {2}pid \d+ {2}up 12s\n/);
  assert.match(f.text(), /back-ends 2 \(1 taking new connections\)/);
  await backends(f.ep, {}, f.out);
  const lines = f.text().split('\n');
  const head = lines.findIndex((l) => l.startsWith('ID'));
  assert.match(lines[head]!, /^ID +ADDRESS +WEIGHT +STATE +CHANNEL +HEALTH +ACTIVE +HANDOFFS +FAILURES$/);
  assert.match(lines[head + 1]!, /^b1 +10\.77\.0\.11 +1 +ready +up +none +0 +0 +0$/);
  assert.match(lines[head + 2]!, /^b2 +10\.77\.0\.12 +1 +unhealthy +up +down \(status 503\) +0/);
  const g = await fixture(t);
  const bs = await backends(g.ep, { json: true }, g.out);
  assert.deepEqual(JSON.parse(g.text()), bs);
});

test('flows are listed like ipvsadm -L -n -c, filtered by back-end', async (t) => {
  const f = await fixture(t, new FakeAdminTarget(['b1', 'b2'], [
    { client: '10.0.0.1:40000', backend: 'b1', state: 'forward', idleMs: 1500, ageMs: 125_000, handoffId: '7' },
    { client: '[2001:db8::1]:40001', backend: 'b2', state: 'closing', idleMs: 200 },
  ]));
  await flows(f.ep, {}, f.out);
  assert.equal(f.text(), [
    'CLIENT               BACKEND  STATE    IDLE  AGE    HANDOFF',
    '10.0.0.1:40000       b1       forward  1.5s  2m05s  7',
    '[2001:db8::1]:40001  b2       closing  0.2s  -      -',
    '2 flows (b1 1, b2 1)',
    '',
  ].join('\n'));
  const g = await fixture(t, f.target);
  const l = await flows(g.ep, { backend: 'b2', json: true }, g.out);
  assert.equal(l.total, 1);
  assert.equal(l.flows[0]!.backend, 'b2');
});

test('reload prints what changed; a refusal is an error naming the field', async (t) => {
  const f = await fixture(t);
  f.target.reloadAnswer = { ok: true, changes: ['back-end b3 added (10.77.0.13, weight 1)'] };
  await reload(f.ep, {}, f.out);
  assert.equal(f.text(), 'reloaded:\n  back-end b3 added (10.77.0.13, weight 1)\n');
  f.target.reloadAnswer = { ok: false, code: 'BATON_ERR_CONFIG', field: 'vip', message: 'config: vip: cannot change without a restart' };
  await assert.rejects(reload(f.ep, {}, f.out), (e: unknown) => {
    assert.equal((e as { code: string }).code, 'BATON_ERR_CONFIG');
    assert.match((e as Error).message, /refused, the running config stays: config: vip:/);
    return true;
  });
});

test('drain waits while connections finish and reports them; undrain', async (t) => {
  const f = await fixture(t);
  const b1 = f.target.backendList[0]!;
  b1.active = 3;
  // Connections end one per poll.
  const orig = f.target.backends.bind(f.target);
  f.target.backends = () => {
    if (b1.drained && b1.active > 0) b1.active--;
    return orig();
  };
  const r = await drain(f.ep, 'b1', { timeoutS: 60, pollMs: 1 }, f.out);
  assert.deepEqual(r, { id: 'b1', initial: 3, finished: 3, moved: 0, remaining: 0, timedOut: false });
  assert.equal(f.text(), [
    'b1: drained, no new handoffs; 3 connections at start',
    'b1: 2 remaining (finished 1, moved 0)',
    'b1: 1 remaining (finished 2, moved 0)',
    'b1: 0 remaining (finished 3, moved 0)',
    'b1: holds no connection (finished 3, moved 0)',
    '',
  ].join('\n'));
  assert.equal(b1.drained, true);
  await undrain(f.ep, 'b1', {}, f.out);
  assert.equal(b1.drained, false);
});

test('drain gives up at the timeout with what remains', async (t) => {
  const f = await fixture(t);
  f.target.backendList[1]!.active = 2;
  let clock = 0;
  const r = await drain(f.ep, 'b2', { timeoutS: 5, pollMs: 1, now: () => (clock += 1000) }, f.out);
  assert.deepEqual(r, { id: 'b2', initial: 2, finished: 0, moved: 0, remaining: 2, timedOut: true });
  assert.match(f.text(), /b2: timeout after 5s with 2 remaining \(finished 0, moved 0\)\n$/);
  await assert.rejects(drain(f.ep, 'b9', { timeoutS: 1 }, f.out), /no back-end "b9"/);
});
