// Kernel tests for the lab's faults: loss (100 % blocks, 0 restores, a partial rate drops about that share, one
// direction only), blackhole, killProcess, and that down() and labDownAll() undo everything. Root only.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FAULT_TABLE } from './faults.ts';
import { isAlive, LAB_STATE_DIR, labDownAll, labUp, listNamespaces, type Lab, type LabHost } from './lab.ts';
import { echoServer, tcpAsk, tcpTry } from './lab.fixture.ts';
import { labWorkDir, mountsUnder } from './reaper.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

/** Counts datagrams on a port until `quiet` ms pass without one; prints the count. */
const UDP_COUNT = `
const s = require('node:dgram').createSocket('udp4');
let n = 0, t;
const arm = () => { clearTimeout(t); t = setTimeout(() => { console.log(n); process.exit(0); }, 1500); };
s.on('message', () => { n++; arm(); });
s.bind(Number(process.argv[2]), process.argv[1], () => { console.log('ready'); arm(); });
`;

/** Sends n datagrams, paced so that no socket buffer overflows (drops must be the fault's alone). */
const UDP_BURST = `
const [to, port, n] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
let i = 0;
const next = () => { if (i++ < Number(n)) s.send('x', Number(port), to, () => setImmediate(next)); else setTimeout(() => s.close(), 200); };
next();
`;

async function udpDelivered(lab: Lab, from: LabHost, to: LabHost, n: number): Promise<number> {
  const rx = lab.spawn(to, [process.execPath, '-e', UDP_COUNT, to.address, '6000']);
  let out = '';
  rx.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise<void>((resolve) => rx.stdout?.on('data', () => out.includes('ready') && resolve()));
  const done = once(rx, 'exit');
  const tx = await lab.exec(from, [process.execPath, '-e', UDP_BURST, to.address, '6000', String(n)], { timeoutMs: 30_000 });
  assert.equal(tx.code, 0, tx.stderr);
  await done;
  return Number(out.replace('ready', '').trim());
}

test('loss: 100 % blocks the host, 0 restores it; a partial rate drops about that share; direction is honoured', { skip }, async (t) => {
  const lab = await labUp({ backends: 1 });
  t.after(() => lab.down());
  const b1 = lab.backends[0]!;
  await echoServer(lab, b1, b1.address, 8080, 'b1');
  assert.equal(await tcpAsk(lab, lab.client, b1.address, 8080), 'b1:ping');

  await lab.setLoss(lab.client, 100);
  const blocked = await tcpTry(lab, lab.client, b1.address, 8080, 1500);
  assert.equal(blocked.code, 2, `with 100 % loss: ${blocked.out}`);
  const table = await lab.exec(lab.client, ['nft', 'list', 'table', 'netdev', FAULT_TABLE]);
  assert.match(table.stdout, /hook ingress[^\n]*\n\s*counter packets \d+ bytes \d+ drop\n/);

  await lab.setLoss(lab.client, 0);
  assert.equal(await tcpAsk(lab, lab.client, b1.address, 8080), 'b1:ping');
  const gone = await lab.exec(lab.client, ['nft', 'list', 'table', 'netdev', FAULT_TABLE]);
  assert.notEqual(gone.code, 0, 'no fault table once loss is 0');

  // 30 % of 400 datagrams: 120 expected, sd ~9; 60..180 fails only for a broken rule (or 0 % / 100 %).
  assert.equal(await udpDelivered(lab, lab.client, b1, 400), 400, 'no loss without a fault');
  await lab.setLoss(lab.client, 30);
  const delivered = await udpDelivered(lab, lab.client, b1, 400);
  assert.ok(delivered >= 220 && delivered <= 340, `delivered ${delivered}/400 at 30 % loss`);
  // The counters account for every missing datagram (on the way out of the client; ARP may add a few).
  const drops = await lab.faultDrops(lab.client);
  assert.ok(drops.out >= 400 - delivered, `counted ${drops.out} drops for ${400 - delivered} missing`);

  // Loss only on the way in to b1: the client's datagrams are all dropped, b1 can still send out.
  await lab.clearLoss(lab.client);
  await lab.setLoss(b1, 100, 'in');
  assert.equal(await udpDelivered(lab, lab.client, b1, 20), 0);
  assert.equal(await udpDelivered(lab, b1, lab.client, 20), 20);
  await lab.setLoss(b1, 100, 'out');
  assert.equal(await udpDelivered(lab, lab.client, b1, 20), 20);
  assert.equal(await udpDelivered(lab, b1, lab.client, 20), 0);
  await lab.clearLoss(b1);
  assert.equal(await tcpAsk(lab, lab.client, b1.address, 8080), 'b1:ping');
  assert.throws(() => lab.setLoss(b1, 101), /0\.\.100/);
});

test('blackhole drops everything until unblackhole; loss set meanwhile survives it', { skip }, async (t) => {
  const lab = await labUp({ backends: 1 });
  t.after(() => lab.down());
  const b1 = lab.backends[0]!;
  await echoServer(lab, b1, b1.address, 8080, 'b1');
  await lab.blackhole(b1);
  assert.equal((await tcpTry(lab, lab.client, b1.address, 8080, 1500)).code, 2);
  // Its own loopback still works: only the link is cut.
  assert.equal(await tcpAsk(lab, b1, b1.address, 8080), 'b1:ping');
  await lab.setLoss(b1, 100, 'out');
  await lab.unblackhole(b1);
  // The loss outlives the blackhole: nothing leaves b1 (not even its ARP replies), so the client still cannot connect.
  const table = await lab.exec(b1, ['nft', 'list', 'table', 'netdev', FAULT_TABLE]);
  assert.match(table.stdout, /hook egress[^\n]*\n\s*counter packets \d+ bytes \d+ drop\n/);
  assert.doesNotMatch(table.stdout, /hook ingress[^\n]*\n\s*counter packets \d+ bytes \d+ drop\n/);
  // (timeout, or host unreachable once the client's ARP entry for b1 has failed)
  assert.notEqual((await tcpTry(lab, lab.client, b1.address, 8080, 1500)).code, 0);
  await lab.clearLoss(b1);
  assert.equal(await tcpAsk(lab, lab.client, b1.address, 8080), 'b1:ping');
});

test('killProcess kills a lab process or a pid and waits for it', { skip }, async (t) => {
  const lab = await labUp({ backends: 1 });
  t.after(() => lab.down());
  const b1 = lab.backends[0]!;
  const server = await echoServer(lab, b1, b1.address, 8080, 'b1');
  const pid = server.pid!;
  await lab.killProcess(server);
  assert.ok(!isAlive(pid));
  assert.equal(server.signalCode, 'SIGKILL');
  assert.equal((await tcpTry(lab, lab.client, b1.address, 8080, 1500)).code, 1, 'connection refused once killed');

  const other = lab.spawn(b1, ['sleep', '300']);
  await once(other, 'spawn');
  await lab.killProcess(other.pid!, 'SIGTERM');
  assert.ok(!isAlive(other.pid!));
});

test('labDownAll removes a crashed router lab with faults, BIRD daemons and its pin bpffs', { skip }, async (t) => {
  const labUrl = new URL('./lab.ts', import.meta.url).href;
  const script = `
    import(${JSON.stringify(labUrl)}).then(async ({ labUp }) => {
      const lab = await labUp({ backends: 1, frontends: 2 });
      await lab.setLoss(lab.client, 5);
      await lab.blackhole(lab.backends[0]);
      await lab.pinRoot();
      const { execFileSync } = await import('node:child_process');
      const birds = execFileSync('pgrep', ['-x', 'bird']).toString().trim().split('\\n').map(Number);
      console.log(JSON.stringify({ id: lab.id, birds }));
      process.kill(process.pid, 'SIGKILL');
    });
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await once(child, 'close');
  const { id, birds } = JSON.parse(out.trim()) as { id: string; birds: number[] };
  t.after(() => labDownAll(`${id}-`));

  const before = (await listNamespaces()).filter((ns) => ns.startsWith(`${id}-`));
  assert.deepEqual([...before].sort(), ['b1', 'c', 'fe', 'fe2', 'rt'].map((n) => `${id}-${n}`));
  const ours = birds.filter((pid) => runsFromWorkDir(pid, id));
  assert.equal(ours.length, 3, 'a BIRD in the router and in each front-end');
  assert.ok(existsSync(labWorkDir(id)));
  assert.deepEqual(mountsUnder(labWorkDir(id)), [`${labWorkDir(id)}/bpf`]);

  const removed = await labDownAll(`${id}-`);
  assert.deepEqual([...removed].sort(), [...before].sort());
  assert.equal(removed.at(-1), `${id}-rt`, 'the router goes last');
  assert.deepEqual((await listNamespaces()).filter((ns) => ns.startsWith(`${id}-`)), []);
  for (const pid of ours) assert.ok(!isAlive(pid), `bird ${pid} killed`);
  assert.ok(!existsSync(`${LAB_STATE_DIR}/${id}.json`));
  assert.ok(!existsSync(labWorkDir(id)));
  assert.deepEqual(mountsUnder(labWorkDir(id)), []);
});

test('pinRoot is a bpffs that lab processes share and that outlives them; down() unmounts it', { skip }, async (t) => {
  const lab = await labUp({ backends: 1 });
  t.after(() => lab.down());
  const root = await lab.pinRoot();
  assert.equal(await lab.pinRoot(), root, 'mounted once');
  assert.equal(root, `${labWorkDir(lab.id)}/bpf`);
  const fs = (await lab.exec(lab.frontend, ['stat', '-f', '-c', '%T', root])).stdout.trim();
  assert.equal(fs, 'bpf_fs');
  // What a process in the front-end's namespace puts there outlives it (a directory: pins need a BPF object).
  const dir = `${root}/fe`;
  const r = await lab.exec(lab.frontend, ['mkdir', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(dir));
  await lab.down();
  assert.deepEqual(mountsUnder(labWorkDir(lab.id)), []);
  assert.ok(!existsSync(labWorkDir(lab.id)));
});

/** True when the process was started with a file from this lab's work directory (its BIRD config). */
function runsFromWorkDir(pid: number, id: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(labWorkDir(id));
  } catch {
    return false;
  }
}
