import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { adminCall, adminRequest } from './admin-client.ts';
import { FakeAdminTarget } from './admin-testing.ts';
import { ADMIN_ERR, AdminServer, type DrainReport, type FlowList } from './admin.ts';

async function tmp(t: TestContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'baton-admin-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function started(t: TestContext, target = new FakeAdminTarget()) {
  const socket = join(await tmp(t), 'run', 'fe.sock');
  const server = await AdminServer.start({ target, socket });
  t.after(() => server.close());
  return { socket, server, target, ep: { socket } };
}

const rejectsWith = async (p: Promise<unknown>, code: string, re?: RegExp): Promise<void> => {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as { code?: string }).code, code);
    if (re) assert.match((e as Error).message, re);
    return true;
  });
};

test('the socket is created mode 0600 in a new directory', async (t) => {
  const { socket } = await started(t);
  const st = await stat(socket);
  assert.equal(st.isSocket(), true);
  assert.equal(st.mode & 0o777, 0o600);
});

test('status, backends, drain and undrain', async (t) => {
  const { ep, target } = await started(t);
  target.backendList[0]!.active = 7;
  const status = (await adminCall(ep, 'GET', '/status')) as { vip: string; backends: number };
  assert.equal(status.vip, '10.77.0.100');
  assert.equal(status.backends, 2);
  const d = (await adminCall(ep, 'POST', '/backends/b1/drain')) as DrainReport;
  assert.deepEqual(d, { id: 'b1', drained: true, active: 7, moved: 0 });
  const bs = (await adminCall(ep, 'GET', '/backends')) as { id: string; drained: boolean; eligible: boolean }[];
  assert.deepEqual(bs.map((b) => [b.id, b.drained, b.eligible]), [['b1', true, false], ['b2', false, true]]);
  await adminCall(ep, 'POST', '/backends/b1/undrain');
  assert.equal(target.backendList[0]!.drained, false);
  await rejectsWith(adminCall(ep, 'POST', '/backends/nope/drain'), ADMIN_ERR.UNKNOWN_BACKEND, /no back-end "nope"/);
});

test('flows: filter by back-end, counts over all, limit', async (t) => {
  const flows = [
    { client: '10.0.0.1:1000', backend: 'b1', state: 'forward' as const, idleMs: 5 },
    { client: '10.0.0.1:1001', backend: 'b2', state: 'forward' as const },
    { client: '10.0.0.2:1002', backend: 'b1', state: 'closing' as const },
    { client: '10.0.0.3:1003', state: 'hold' as const },
  ];
  const { ep } = await started(t, new FakeAdminTarget(['b1', 'b2'], flows));
  const all = (await adminCall(ep, 'GET', '/flows')) as FlowList;
  assert.equal(all.total, 4);
  assert.deepEqual(all.byBackend, { b1: 2, b2: 1, '': 1 });
  const b1 = (await adminCall(ep, 'GET', '/flows?backend=b1&limit=1')) as FlowList;
  assert.equal(b1.total, 2);
  assert.deepEqual(b1.flows, [flows[0]]);
  await rejectsWith(adminCall(ep, 'GET', '/flows?backend=b9'), ADMIN_ERR.UNKNOWN_BACKEND);
  await rejectsWith(adminCall(ep, 'GET', '/flows?limit=-1'), ADMIN_ERR.BAD_REQUEST, /limit/);
});

test('reload: applied changes and a refusal naming the field are both answered 200 as values', async (t) => {
  const { ep, target } = await started(t);
  target.reloadAnswer = { ok: true, changes: ['back-end b3 added'] };
  assert.deepEqual(await adminCall(ep, 'POST', '/reload'), { ok: true, changes: ['back-end b3 added'] });
  target.reloadAnswer = { ok: false, code: 'BATON_ERR_CONFIG', field: 'backends.1.weight', message: 'config: backends.1.weight: too big' };
  assert.deepEqual(await adminCall(ep, 'POST', '/reload'), target.reloadAnswer);
  assert.equal(target.reloads, 1);
});

test('wrong methods, unknown paths and request bodies are refused', async (t) => {
  const { ep, socket } = await started(t);
  assert.equal((await adminRequest(ep, 'GET', '/reload')).status, 405);
  assert.equal((await adminRequest(ep, 'POST', '/status')).status, 405);
  assert.equal((await adminRequest(ep, 'GET', '/nope')).status, 404);
  // A request with a body too large: refused with 413 before it is read.
  const answer = await new Promise<string>((resolve) => {
    const c = net.connect(socket);
    let text = '';
    c.on('data', (d) => (text += d.toString()));
    c.on('close', () => resolve(text));
    c.on('error', () => resolve(text));
    c.write(`POST /reload HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(2000)}`);
  });
  assert.match(answer, /^HTTP\/1\.1 413 /);
});

test('a stale socket file is replaced; a live one or a regular file is refused', async (t) => {
  const dir = await tmp(t);
  const path = join(dir, 'fe.sock');
  // Stale: a socket left by a process killed before it could remove it.
  const script = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  await stat(path);
  const s1 = await AdminServer.start({ target: new FakeAdminTarget(), socket: path });
  t.after(() => s1.close());
  assert.equal(((await adminCall({ socket: path }, 'GET', '/status')) as { port: number }).port, 80);
  await rejectsWith(AdminServer.start({ target: new FakeAdminTarget(), socket: path }), ADMIN_ERR.IN_USE, /another process/);
  const file = join(dir, 'file');
  await writeFile(file, 'x');
  await rejectsWith(AdminServer.start({ target: new FakeAdminTarget(), socket: file }), ADMIN_ERR.IN_USE, /not a socket/);
});

test('TCP only on loopback', async (t) => {
  await rejectsWith(AdminServer.start({ target: new FakeAdminTarget(), tcp: { host: '0.0.0.0', port: 0 } }), ADMIN_ERR.NOT_LOOPBACK);
  const s = await AdminServer.start({ target: new FakeAdminTarget(), tcp: { host: '127.0.0.1', port: 0 } });
  t.after(() => s.close());
  const ep = { host: '127.0.0.1', port: s.tcp!.port };
  assert.equal(((await adminCall(ep, 'GET', '/backends')) as unknown[]).length, 2);
});

test('the client says what is wrong when no front-end answers', async (t) => {
  const dir = await tmp(t);
  await rejectsWith(adminCall({ socket: join(dir, 'missing.sock') }, 'GET', '/status'), ADMIN_ERR.UNREACHABLE, /no admin socket at .*is the front-end running/);
  const free = net.createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const port = (free.address() as net.AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  await rejectsWith(adminCall({ host: '127.0.0.1', port }, 'GET', '/status'), ADMIN_ERR.UNREACHABLE, /not running/);
});
