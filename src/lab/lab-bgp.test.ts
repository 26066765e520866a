// Kernel tests for the several-front-end lab: each front-end's BIRD announces the VIP, the router's BIRD installs
// one ECMP route with a next hop per front-end, connections spread over them, and a front-end is withdrawn when its
// BIRD stops or is killed (the session closes) or when its link goes dark (hold-timer expiry). Root and BIRD 2 only.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { labDownAll, labUp, listNamespaces } from './lab.ts';
import { run } from './run.ts';
import { bgpSkip, echoServer, tcpAsk } from './lab.fixture.ts';

const skip = bgpSkip('network namespaces');

test('3 front-ends: the router has an ECMP route with 3 next hops; stopping a BIRD withdraws its front-end', { skip }, async (t) => {
  const lab = await labUp({ backends: 1, frontends: 3 });
  t.after(() => lab.down());
  const [fe1, fe2, fe3] = lab.frontends;
  assert.ok(fe1 && fe2 && fe3);
  assert.equal(lab.frontend, fe1);
  assert.equal(lab.bgp, true);
  const all = ['10.77.2.10', '10.77.2.11', '10.77.2.12'];
  assert.deepEqual(await lab.vipNextHops(), all);

  const route = await lab.exec(lab.router!, ['ip', 'route', 'show', `${lab.vip}/32`]);
  assert.match(route.stdout, /proto bird/);
  assert.equal(route.stdout.match(/nexthop via/g)?.length, 3, route.stdout);
  const hash = await lab.exec(lab.router!, ['sysctl', '-n', 'net.ipv4.fib_multipath_hash_policy']);
  assert.equal(hash.stdout.trim(), '1');

  // Connections from one client spread over the front-ends (L4 hash on the source port): with 30 connections,
  // all on one front-end has probability 3 * 3^-30.
  for (const fe of lab.frontends) await echoServer(lab, fe, lab.vip, 8000, fe.name);
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) seen.add(await tcpAsk(lab, lab.client, lab.vip, 8000));
  assert.ok(seen.size >= 2, `answers only from ${[...seen].join(' ')}`);

  // A clean stop (SIGTERM: BIRD sends a Cease) withdraws fe2 from the route; starting it again brings it back.
  await lab.stopBgp(fe2);
  assert.deepEqual(await lab.waitForNextHops(2), ['10.77.2.10', '10.77.2.12']);
  await lab.startBgp(fe2);
  assert.deepEqual(await lab.waitForNextHops(3), all);

  // A crash (SIGKILL): the kernel closes BIRD's TCP session, so the router withdraws fe3 at once.
  await lab.stopBgp(fe3, 'SIGKILL');
  assert.deepEqual(await lab.waitForNextHops(2), ['10.77.2.10', '10.77.2.11']);
  // A front-end whose link goes dark says nothing: the router withdraws it when the 3 s hold timer expires.
  await lab.startBgp(fe3);
  assert.deepEqual(await lab.waitForNextHops(3), all);
  await lab.blackhole(fe3);
  assert.deepEqual(await lab.waitForNextHops(2, { timeoutMs: 15_000 }), ['10.77.2.10', '10.77.2.11']);
  // With one front-end left, the route is a plain one (no multipath), which vipNextHops reads too.
  await lab.stopBgp(fe1);
  assert.deepEqual(await lab.waitForNextHops(1), ['10.77.2.11']);
  assert.equal(await tcpAsk(lab, lab.client, lab.vip, 8000), 'fe2:ping');
});

/** UDP echo: answers every datagram with the host's name. */
const UDP_NAME = `
const [host, port, name] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(name, r.port, r.address));
s.bind(Number(port), host, () => console.log('ready'));
`;

/** From each source port in [from, from + n): one datagram to host:port; prints {port: answer}. */
const UDP_MAP = `
const dgram = require('node:dgram');
const [host, port, from, n] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
const out = {};
const one = (p) => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  const t = setTimeout(() => { out[p] = 'timeout'; s.close(); resolve(); }, 2000);
  s.on('message', (m) => { clearTimeout(t); out[p] = String(m); s.close(); resolve(); });
  s.bind(p, () => s.send('who', port, host));
});
(async () => { for (let p = from; p < from + n; p++) await one(p); console.log(JSON.stringify(out)); })();
`;

test('a new ECMP hash seed moves flows between front-ends; the same seed maps them back', { skip }, async (t) => {
  const lab = await labUp({ backends: 1, frontends: 3 });
  t.after(() => lab.down());
  for (const fe of lab.frontends) {
    const c = lab.spawn(fe, [process.execPath, '-e', UDP_NAME, lab.vip, '9000', fe.name]);
    await new Promise<void>((resolve) => c.stdout?.on('data', (b: Buffer) => b.toString().includes('ready') && resolve()));
  }
  const map = async (): Promise<Record<string, string>> => {
    const r = await lab.exec(lab.client, [process.execPath, '-e', UDP_MAP, lab.vip, '9000', '30000', '40'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as Record<string, string>;
    assert.ok(Object.values(m).every((v) => /^fe\d?$/.test(v)), r.stdout);
    return m;
  };
  await lab.setEcmpSeed(1);
  const a = await map();
  assert.deepEqual(await map(), a, 'one seed, one mapping');
  await lab.setEcmpSeed(2);
  const b = await map();
  const moved = Object.keys(a).filter((p) => a[p] !== b[p]);
  // 40 flows over 3 next hops: none moving under a new seed has probability about 3^-40.
  assert.ok(moved.length > 0, 'no flow moved');
  await lab.setEcmpSeed(1);
  assert.deepEqual(await map(), a, 'the first seed maps every flow back');
});

test('2 front-ends, dual stack, routed back-ends: ECMP for the IPv6 VIP as well', { skip }, async (t) => {
  const lab = await labUp({ backends: 1, frontends: 2, routed: true, ipv6: true });
  t.after(() => lab.down());
  assert.deepEqual(await lab.vipNextHops(4), ['10.77.2.10', '10.77.2.11']);
  assert.deepEqual(await lab.vipNextHops(6), ['fd77:2::10', 'fd77:2::11']);
  assert.equal(lab.backends[0]!.address, '10.77.3.11');
  for (const fe of lab.frontends) await echoServer(lab, fe, lab.vip6!, 8000, fe.name);
  assert.match(await tcpAsk(lab, lab.client, lab.vip6!, 8000), /^fe2?:ping$/);
  await lab.stopBgp(lab.frontends[1]!);
  assert.deepEqual(await lab.waitForNextHops(1, { family: 6 }), ['fd77:2::10']);
});

test('`baton lab up --frontends 2` returns and leaves BGP announcing; `lab down` removes it all', { skip, timeout: 60_000 }, async (t) => {
  const id = `zb${randomBytes(3).toString('hex')}`;
  t.after(() => labDownAll(`${id}-`));
  const main = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
  const cli = (args: string[]) => {
    const c = spawn(process.execPath, ['--import', 'tsx', main, 'lab', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    // A BIRD left holding the command's stdout would keep 'close' from ever firing: 'close' is the test.
    return once(c, 'close').then(([code]) => ({ code: code as number, out }));
  };
  const up = await cli(['up', '--backends', '1', '--frontends', '2', '--id', id]);
  assert.equal(up.code, 0);
  assert.equal((JSON.parse(up.out) as { frontends: unknown[] }).frontends.length, 2);
  const route = await run(['ip', '-n', `${id}-rt`, 'route', 'show', '10.77.0.100/32']);
  assert.equal(route.stdout.match(/nexthop via/g)?.length, 2, route.stdout);
  const birds = (await run(['pgrep', '-f', `/run/baton-lab/${id}/bird-`])).stdout.trim().split('\n').filter(Boolean);
  assert.equal(birds.length, 3);

  const down = await cli(['down', id]);
  assert.equal(down.code, 0);
  assert.deepEqual((await listNamespaces()).filter((ns) => ns.startsWith(`${id}-`)), []);
  assert.equal((await run(['pgrep', '-f', `/run/baton-lab/${id}/bird-`])).stdout.trim(), '');
});
