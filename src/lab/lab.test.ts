// Kernel tests for the lab topology: addressing, ARP ownership of the VIP, parallel labs, crash cleanup.
// Needs root (namespaces); skipped with a reason otherwise.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { test } from 'node:test';
import { isAlive, LAB_STATE_DIR, labDownAll, labUp, listNamespaces, type Lab } from './lab.ts';
import { echoServer, tcpAsk } from './lab.fixture.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

test('a 2-back-end lab has the LVS-DR addressing and the front-end alone owns the VIP', { skip }, async (t) => {
  const lab = await labUp({ backends: 2 });
  t.after(() => lab.down());

  assert.match(lab.id, /^bt[0-9a-f]{4}$/);
  assert.equal(lab.vip, '10.77.0.100');
  assert.deepEqual(
    [lab.client, lab.frontend, ...lab.backends].map((h) => [h.netns, h.address]),
    [
      [`${lab.id}-c`, '10.77.0.2'],
      [`${lab.id}-fe`, '10.77.0.10'],
      [`${lab.id}-b1`, '10.77.0.11'],
      [`${lab.id}-b2`, '10.77.0.12'],
    ],
  );
  assert.ok(existsSync(`${LAB_STATE_DIR}/${lab.id}.json`));

  // Client -> VIP lands on the front-end (a server bound to the VIP there answers).
  await echoServer(lab, lab.frontend, lab.vip, 8000, 'fe');
  assert.equal(await tcpAsk(lab, lab.client, lab.vip, 8000), 'fe:ping');
  // ... and the client learned the VIP at the front-end's MAC, not a back-end's.
  const neigh = await lab.exec(lab.client, ['ip', 'neigh', 'show', lab.vip]);
  assert.match(neigh.stdout, new RegExp(`lladdr ${lab.frontend.mac}`));

  // Back-ends are reachable on their own addresses.
  for (const b of lab.backends) {
    await echoServer(lab, b, b.address, 8080, b.name);
    assert.equal(await tcpAsk(lab, lab.client, b.address, 8080), `${b.name}:ping`);
  }

  // Real-server setup: VIP on lo, ARP restrictions, no reverse-path filter.
  const b1 = lab.backends[0]!;
  const lo = await lab.exec(b1, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'lo']);
  assert.match(lo.stdout, /inet 10\.77\.0\.100\/32/);
  const sc = await lab.exec(b1, [
    'sysctl', '-n', 'net.ipv4.conf.all.arp_ignore', 'net.ipv4.conf.all.arp_announce',
    'net.ipv4.conf.all.rp_filter', 'net.ipv4.tcp_timestamps',
  ]);
  assert.deepEqual(sc.stdout.trim().split('\n'), ['1', '2', '0', '1']);

  const c = await lab.ifaceBytes(lab.frontend);
  assert.ok(c.rxPackets > 0n && c.txBytes > 0n);

  await lab.down();
  await lab.down(); // idempotent
  const left = await listNamespaces();
  assert.deepEqual(left.filter((ns) => ns.startsWith(`${lab.id}-`)), []);
  assert.ok(!existsSync(`${LAB_STATE_DIR}/${lab.id}.json`));
});

test('two labs up at once do not collide', { skip }, async (t) => {
  const labs = await Promise.all([labUp({ backends: 1 }), labUp({ backends: 2 })]);
  t.after(() => Promise.all(labs.map((l) => l.down())));
  const [a, b] = labs as [Lab, Lab];
  assert.notEqual(a.id, b.id);
  await Promise.all(labs.map((l) => echoServer(l, l.backends[0]!, '10.77.0.11', 9000, l.id)));
  const answers = await Promise.all(labs.map((l) => tcpAsk(l, l.client, '10.77.0.11', 9000)));
  assert.deepEqual(answers, [`${a.id}:ping`, `${b.id}:ping`]);
  await Promise.all(labs.map((l) => l.down()));
  const left = await listNamespaces();
  assert.deepEqual(left.filter((ns) => ns.startsWith(`${a.id}-`) || ns.startsWith(`${b.id}-`)), []);
});

test('labDownAll removes a lab whose process was killed, and the processes inside it', { skip }, async (t) => {
  const labUrl = new URL('./lab.ts', import.meta.url).href;
  // A child process brings a lab up, starts a process in it, then dies without any chance to clean up.
  const script = `
    import(${JSON.stringify(labUrl)}).then(async ({ labUp }) => {
      const lab = await labUp({ backends: 1 });
      const sleeper = lab.spawn(lab.backends[0], ['sleep', '300']);
      await new Promise((r) => setTimeout(r, 100));
      console.log(JSON.stringify({ id: lab.id, pid: sleeper.pid }));
      process.kill(process.pid, 'SIGKILL');
    });
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await once(child, 'close');
  const { id, pid } = JSON.parse(out.trim()) as { id: string; pid: number };
  t.after(() => labDownAll(id));

  const before = (await listNamespaces()).filter((ns) => ns.startsWith(`${id}-`));
  assert.equal(before.length, 4, `namespaces left by the crash: ${before.join(' ')}`);
  assert.ok(existsSync(`${LAB_STATE_DIR}/${id}.json`));
  assert.ok(isAlive(pid), 'the orphaned process is still running');

  const removed = await labDownAll(id);
  assert.deepEqual([...removed].sort(), [...before].sort());
  assert.deepEqual((await listNamespaces()).filter((ns) => ns.startsWith(`${id}-`)), []);
  assert.ok(!existsSync(`${LAB_STATE_DIR}/${id}.json`));
  assert.ok(!isAlive(pid), 'the orphaned process was killed');
});
