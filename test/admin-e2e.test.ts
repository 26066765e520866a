// The operator's commands against a real front-end in a lab (root, network namespaces): the admin
// socket, `baton backends|flows|status`, a reload that adds a back-end and a rule while downloads
// run (none may fail), an invalid reload that changes nothing, and drain/undrain.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { adminCall } from '../src/frontend/admin-client.ts';
import { AdminServer, type AdminBackend, type FlowList, type ReloadReport } from '../src/frontend/admin.ts';
import { FakeAdminTarget } from '../src/frontend/admin-testing.ts';
import { agentConfig, startCluster, type Cluster } from '../src/lab/cluster.ts';
import { labUp, stopChild, type Lab } from '../src/lab/lab.ts';
import { pinnedFlows } from '../src/steer/bpf-loader.ts';
import { parseSetElements } from '../src/steer/nft-script.ts';
import { patternSha256 } from '../src/wire/pattern.ts';

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (network namespaces, TCP_REPAIR, nftables)';
const run = promisify(execFile);
const CLI = ['--import', 'tsx', join(import.meta.dirname, '..', 'src/cli/main.ts')];

for (const kind of ['bpf', 'nft'] as const) describe(`operating a running front-end (${kind} steering)`, { skip }, () => {
  let lab: Lab;
  let cluster: Cluster;
  let socket: string;
  let configFile: string;
  let b3Agent: ReturnType<Lab['spawn']> | undefined;
  const ep = () => ({ socket });
  const steering = () => cluster.frontendConfig.steering as { table: string; pinDir?: string };
  const table = () => steering().table;
  /** Client tuples the data plane forwards now. */
  const forwarded = async (): Promise<string[]> => {
    if (kind === 'bpf') return pinnedFlows(steering().pinDir!).filter((e) => e.state.verdict === 'forward').map((e) => `${e.flow.clientAddress}:${e.flow.clientPort}`).sort();
    const nft = await lab.exec(lab.frontend, ['nft', '-j', 'list', 'table', 'netdev', table()]);
    return [...parseSetElements(nft.stdout)].filter(([n]) => n.startsWith('live')).flatMap(([, ks]) => ks.map((k) => `${k.clientAddress}:${k.clientPort}`)).sort();
  };

  before(async () => {
    lab = await labUp({ backends: 3 });
    try {
      const [b1, b2] = lab.backends;
      const be = (b: NonNullable<typeof b1>) => ({ id: b.name, address: b.address, control: { host: b.address, port: 7700 } });
      // The front-end starts with b1 and b2 only; b3's agent runs but is not configured yet.
      cluster = await startCluster(lab, {
        skipAgents: ['b3'],
        steering: kind,
        frontend: {
          backends: [be(b1!), be(b2!)],
          pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2'] }],
        },
      });
      const b3 = lab.backends[2]!;
      const file = join(tmpdir(), `baton-${lab.id}-b3.json`);
      await writeFile(file, JSON.stringify({ ...agentConfig(lab, b3, { secret: 'env:BATON_SECRET' }), setupRealServer: true }));
      b3Agent = lab.spawn(b3, ['node', ...CLI, 'backend', '--config', file], { env: { ...process.env, BATON_SECRET: cluster.secret, BATON_LOG: 'warn' } });
      socket = (cluster.frontendConfig.admin as { socket: string }).socket;
      configFile = ((await adminCall(ep(), 'GET', '/status')) as { configFile: string }).configFile;
      await stat(configFile);
    } catch (e) {
      await cluster?.stop();
      await lab.down();
      throw e;
    }
  });
  after(async () => {
    if (b3Agent) await stopChild(b3Agent, 3000);
    if (lab) await rm(join(tmpdir(), `baton-${lab.id}-b3.json`), { force: true });
    await cluster?.stop();
    await lab?.down();
  });

  const download = async (path: string, rate?: string): Promise<{ sum: string; backend: string }> => {
    const limit = rate ? `--limit-rate ${rate}` : '';
    const script = `h=$(mktemp); curl -sS --max-time 60 ${limit} -D "$h" 'http://${lab.vip}${path}' | sha256sum | cut -d' ' -f1; tr -d '\\r' < "$h" | grep -i '^x-baton-backend' | cut -d' ' -f2; rm -f "$h"`;
    const r = await lab.exec(lab.client, ['sh', '-c', script], { timeoutMs: 90_000 });
    const [sum, backend] = r.stdout.trim().split('\n');
    return { sum: sum ?? '', backend: backend ?? '' };
  };

  test('the admin socket is private and the CLI lists back-ends', async () => {
    assert.equal((await stat(socket)).mode & 0o777, 0o600);
    const { stdout } = await run(process.execPath, [...CLI, 'backends', '--socket', socket]);
    assert.match(stdout, /^ID +ADDRESS +WEIGHT +STATE/);
    assert.match(stdout, /\nb1 +10\.77\.0\.\d+ +1 +ready +up +none/);
    assert.match(stdout, /\nb2 +10\.77\.0\.\d+ +1 +ready +up +none/);
    const { stdout: st } = await run(process.execPath, [...CLI, 'status', '--config', configFile]);
    assert.match(st, /back-ends 2 \(2 taking new connections\)/);
  });

  test('flows lists the live handed-off connections, as the data plane holds them', async () => {
    const size = 20 << 20;
    const downloads = [0, 1, 2, 3].map(() => download(`/bytes/${size}`, '4M'));
    await new Promise((r) => setTimeout(r, 1500));
    const l = (await adminCall(ep(), 'GET', '/flows')) as FlowList;
    const live = await forwarded();
    const listed = l.flows.filter((f) => f.state === 'forward').map((f) => f.client).sort();
    assert.ok(listed.length >= 4, `expected the 4 downloads in flight, got ${JSON.stringify(l)}`);
    assert.deepEqual(listed, live);
    for (const f of l.flows.filter((x) => x.state === 'forward')) assert.ok(f.ageMs !== undefined && f.ageMs >= 0, `age of ${f.client}`);
    for (const d of await Promise.all(downloads)) assert.equal(d.sum, patternSha256(size));
  });

  test('reload adds a back-end and a rule while 20 downloads run: all complete, the rule applies', async () => {
    const size = 8 << 20;
    const before = await cluster.stats();
    const downloads = Array.from({ length: 20 }, () => download(`/bytes/${size}`, '4M'));
    await new Promise((r) => setTimeout(r, 500));
    const cfg = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown> & { backends: unknown[] };
    const b3 = lab.backends[2]!;
    const next = {
      ...cfg,
      backends: [...cfg.backends, { id: 'b3', address: b3.address, control: { host: b3.address, port: 7700 } }],
      pools: [{ name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2'] }, { name: 'three', policy: { name: 'wrr' }, members: ['b3'] }],
      rules: [{ match: { pathPrefix: '/bytes/3' }, pool: 'three' }],
    };
    await writeFile(configFile, JSON.stringify(next, null, 2));
    const r = (await adminCall(ep(), 'POST', '/reload')) as ReloadReport;
    assert.deepEqual(r, { ok: true, changes: [`back-end b3 added (${b3.address}, weight 1)`, 'pools/rules changed (router rebuilt)'] });
    const results = await Promise.all(downloads);
    assert.deepEqual(results.filter((d) => d.sum !== patternSha256(size)), [], cluster.logs().slice(-3000));
    const after = await cluster.stats();
    assert.deepEqual(after.answeredLocally, before.answeredLocally, 'no connection answered locally (503) across the reload');
    assert.equal(after.handedOff - before.handedOff, 20);
    // b3's channel comes up, then the new rule sends /bytes/3... to it.
    for (let i = 0; i < 50; i++) {
      const bs = (await adminCall(ep(), 'GET', '/backends')) as AdminBackend[];
      if (bs.find((b) => b.id === 'b3')?.channel === 'up') break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const d = await download('/bytes/3000');
    assert.deepEqual(d, { sum: patternSha256(3000), backend: 'b3' });
    assert.notEqual((await download('/bytes/1000')).backend, 'b3');
  });

  test('SIGHUP reloads the file', async () => {
    const good = await readFile(configFile, 'utf8');
    const cfg = JSON.parse(good) as { backends: { id: string; weight?: number }[] };
    const st = (await adminCall(ep(), 'GET', '/status')) as { pid: number; reloads: number };
    await writeFile(configFile, JSON.stringify({ ...cfg, backends: cfg.backends.map((b) => (b.id === 'b2' ? { ...b, weight: 2 } : b)) }));
    process.kill(st.pid, 'SIGHUP');
    let weight = 0;
    for (let i = 0; i < 50 && weight !== 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      weight = ((await adminCall(ep(), 'GET', '/backends')) as AdminBackend[]).find((b) => b.id === 'b2')!.weight;
    }
    assert.equal(weight, 2);
    assert.equal(((await adminCall(ep(), 'GET', '/status')) as { reloads: number }).reloads, st.reloads + 1);
    await writeFile(configFile, good);
    assert.equal(((await adminCall(ep(), 'POST', '/reload')) as ReloadReport).ok, true);
  });

  test('an invalid file is refused with the field path and nothing changes', async () => {
    const before = (await adminCall(ep(), 'GET', '/backends')) as AdminBackend[];
    const good = await readFile(configFile, 'utf8');
    const bad = JSON.parse(good) as { backends: { weight?: number }[] };
    bad.backends[0]!.weight = -5;
    await writeFile(configFile, JSON.stringify(bad));
    const { stdout, stderr, code } = await run(process.execPath, [...CLI, 'reload', '--socket', socket]).then(
      (x) => ({ ...x, code: 0 }), (e: { stdout: string; stderr: string; code: number }) => e);
    assert.equal(code, 1, stdout);
    assert.match(stderr, /reload refused, the running config stays: config: backends\.0\.weight:/);
    const after = (await adminCall(ep(), 'GET', '/backends')) as AdminBackend[];
    assert.deepEqual(after.map((b) => [b.id, b.weight]), before.map((b) => [b.id, b.weight]));
    await writeFile(configFile, good);
  });

  test('drain: no new handoffs, the command waits until the back-end holds nothing, kept across a reload and in the state file; undrain', async () => {
    const { stdout } = await run(process.execPath, [...CLI, 'drain', 'b1', '--socket', socket, '--timeout', '30'], { timeout: 60_000 });
    assert.match(stdout, /^b1: drained, no new handoffs/);
    assert.match(stdout, /b1: holds no connection \(finished \d+, moved 0\)\n$/);
    for (let i = 0; i < 6; i++) assert.notEqual((await download('/bytes/1000')).backend, 'b1');
    const stateFile = (cluster.frontendConfig.admin as { stateFile: string }).stateFile;
    assert.deepEqual(JSON.parse(await readFile(stateFile, 'utf8')), { version: 1, backends: { b1: { drained: true } } });
    assert.equal(((await adminCall(ep(), 'POST', '/reload')) as ReloadReport).ok, true);
    const bs = (await adminCall(ep(), 'GET', '/backends')) as AdminBackend[];
    assert.equal(bs.find((b) => b.id === 'b1')?.drained, true, 'a reload keeps the drain');
    await run(process.execPath, [...CLI, 'undrain', 'b1', '--socket', socket]);
    // The state is written in the background: give it a moment.
    let gone = false;
    for (let i = 0; i < 20 && !gone; i++) {
      gone = await stat(stateFile).then(() => false, () => true);
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(gone, 'nothing drained: no state file');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await download('/bytes/1000')).backend);
    assert.ok(seen.has('b1'), [...seen].join(','));
  });
  test('health checks: a back-end failing them gets no new handoffs; a reload that fixes the check brings it back', async () => {
    const good = await readFile(configFile, 'utf8');
    const cfg = JSON.parse(good) as { backends: { id: string; healthCheck?: unknown }[] };
    const check = (port: number) => ({ port, path: '/bytes/1', intervalMs: 200, timeoutMs: 150, rise: 1, fall: 2 });
    const withChecks = (b2Port: number) => ({ ...cfg, backends: cfg.backends.map((b) => ({ ...b, healthCheck: check(b.id === 'b2' ? b2Port : 8080) })) });
    const healthOf = async (id: string) => ((await adminCall(ep(), 'GET', '/backends')) as AdminBackend[]).find((b) => b.id === id)!;
    const waitHealth = async (id: string, want: string) => {
      for (let i = 0; i < 50 && (await healthOf(id)).health !== want; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await healthOf(id)).health, want, `${id} health`);
    };
    // b2's check probes a port nothing listens on.
    await writeFile(configFile, JSON.stringify(withChecks(8081)));
    const r = (await adminCall(ep(), 'POST', '/reload')) as ReloadReport;
    assert.equal(r.ok, true);
    await waitHealth('b2', 'down');
    await waitHealth('b1', 'up');
    const b2 = await healthOf('b2');
    assert.equal(b2.channel, 'up');
    assert.equal(b2.eligible, false);
    assert.match(b2.healthError ?? '', /ECONNREFUSED/);
    for (let i = 0; i < 6; i++) assert.equal((await download('/bytes/1000')).backend, 'b1');
    // Fixed: b2 passes again and takes connections.
    await writeFile(configFile, JSON.stringify(withChecks(8080)));
    assert.equal(((await adminCall(ep(), 'POST', '/reload')) as ReloadReport).ok, true);
    await waitHealth('b2', 'up');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await download('/bytes/1000')).backend);
    assert.ok(seen.has('b2'), [...seen].join(','));
    await writeFile(configFile, good);
    assert.equal(((await adminCall(ep(), 'POST', '/reload')) as ReloadReport).ok, true);
    assert.equal((await healthOf('b2')).health, 'none');
  });
});

describe('a front-end whose admin socket is taken', { skip }, () => {
  test('serves clients without the admin API and says why', async (t) => {
    const socket = join(tmpdir(), `baton-admin-taken-${process.pid}.sock`);
    const other = await AdminServer.start({ target: new FakeAdminTarget(), socket });
    t.after(() => other.close());
    const lab = await labUp({ backends: 1 });
    t.after(() => lab.down());
    const cluster = await startCluster(lab, { frontend: { admin: { socket } }, logLevel: 'info' });
    t.after(() => cluster.stop());
    const r = await lab.exec(lab.client, ['curl', '-sS', '--max-time', '10', `http://${lab.vip}/bytes/100`]);
    assert.equal(r.stdout.length, 100, r.stderr);
    assert.match(cluster.logs(), /admin API not started \(set admin\.socket to a free path\)/);
    assert.equal(((await adminCall({ socket }, 'GET', '/status')) as { vip: string }).vip, '10.77.0.100', 'the other server still answers');
  });
});
