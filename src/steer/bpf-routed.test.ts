// The data plane with real traffic across L3, IPv4 and IPv6 (as root): client, router, front-end and back-end in four network
// namespaces, the front-end reaching the back-end only through the router. A TCP connection is set up to the
// back-end directly (the front-end's stack forwards the handshake), then the front-end program takes the flow over:
// the client's 1 MiB upload is encapsulated at the front-end (flow id in the ports, FIB-chosen egress), routed,
// decapsulated at the back-end and delivered to the socket bound to the VIP, which answers with its SHA-256. veth
// hands the programs CHECKSUM_PARTIAL packets, so this checks the checksum handling BPF_PROG_TEST_RUN cannot. The
// programs are loaded by processes that exit, so it also checks that the pinned links keep them attached.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureBpffs } from './bpf-loader.ts';

const root = process.getuid?.() === 0;
const haveIp = spawnSync('ip', ['-V']).status === 0;
const haveLibbpf = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libbpf.so.1 "']).status === 0;
const skip = !root ? 'needs root (netns, bpf)' : !haveIp ? 'needs ip' : !haveLibbpf ? 'needs libbpf1' : false;
const fixture = fileURLToPath(new URL('./bpf-loader.fixture.ts', import.meta.url));

const FLOW_ID = 0x00420007;
const SIZE = 1 << 20;

interface Plan {
  readonly family: 4 | 6;
  readonly vip: string;
  readonly client: string;
  readonly frontend: string;
  readonly backend: string;
  /** The router's address on each link (client, front-end, back-end). */
  readonly gw: readonly [string, string, string];
  readonly len: number;
  /** encap: to the back-end's address; l2: MAC-redirected to the router (next hop), which routes the VIP on. */
  readonly mode: 'encap' | 'l2';
}
const PLANS: readonly Plan[] = [
  { family: 4, vip: '10.213.9.9', client: '10.213.1.2', frontend: '10.213.2.2', backend: '10.213.3.2', gw: ['10.213.1.1', '10.213.2.1', '10.213.3.1'], len: 24, mode: 'encap' },
  { family: 4, vip: '10.213.9.9', client: '10.213.1.2', frontend: '10.213.2.2', backend: '10.213.3.2', gw: ['10.213.1.1', '10.213.2.1', '10.213.3.1'], len: 24, mode: 'l2' },
  { family: 6, vip: 'fd00:213:9::9', client: 'fd00:213:1::2', frontend: 'fd00:213:2::2', backend: 'fd00:213:3::2', gw: ['fd00:213:1::1', 'fd00:213:2::1', 'fd00:213:3::1'], len: 64, mode: 'encap' },
];

const serverJs = (VIP: string) => `
const net = require('net'), crypto = require('crypto');
net.createServer((s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => s.end(h.digest('hex') + ' ' + n));
}).listen(80, '${VIP}', () => console.log('listening'));
`;
const clientJs = (VIP: string) => `
const net = require('net');
const s = net.connect({ host: '${VIP}', port: 80 }, () => console.log(s.localPort));
let got = '';
s.on('data', (d) => { got += d; });
s.on('end', () => { console.log(got); process.exit(0); });
s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
process.stdin.once('data', () => { const b = Buffer.alloc(${SIZE}); for (let i = 0; i < b.length; i++) b[i] = (i * 7) & 255; s.end(b); });
`;

/** Resolves with the first stdout line matching `re` (or rejects after `ms`). */
function waitLine(p: ReturnType<typeof spawn>, re: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re} (got ${JSON.stringify(buf)})`)), ms);
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}

for (const p of PLANS) {
  test(`IPv${p.family} ${p.mode}: ${p.mode === 'encap' ? 'encap across a router, decap at the back-end' : 'L2 redirect to the next hop'}, 1 MiB byte-exact`, { skip, timeout: 60_000 }, async (t) => {
    const { vip: VIP, client: CLIENT, frontend: FRONTEND, backend: BACKEND, gw, len } = p;
    const ip = p.family === 6 ? 'ip -6' : 'ip';
    const nodad = p.family === 6 ? ' nodad' : '';
    const host = p.family === 6 ? 128 : 32;
    const id = `${p.family}${p.mode[0]}${process.pid % 10000}${Date.now() % 1000}`;
    const ns = { c: `btrc-${id}`, r: `btrr-${id}`, f: `btrf-${id}`, b: `btrb-${id}` };
    for (const n of Object.values(ns)) {
      execFileSync('ip', ['netns', 'add', n]);
      t.after(() => spawnSync('ip', ['netns', 'del', n]));
    }
    const mnt = `/run/baton-test-${id}`;
    mkdirSync(mnt, { recursive: true });
    t.after(() => {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    });
    ensureBpffs(`${mnt}/x`);
    const sh = (n: string, cmd: string) => execFileSync('ip', ['netns', 'exec', n, 'sh', '-ec', cmd], { encoding: 'utf8' });
    execFileSync('ip', ['link', 'add', 'c0', 'netns', ns.c, 'type', 'veth', 'peer', 'name', 'rc', 'netns', ns.r]);
    execFileSync('ip', ['link', 'add', 'f0', 'netns', ns.f, 'type', 'veth', 'peer', 'name', 'rf', 'netns', ns.r]);
    execFileSync('ip', ['link', 'add', 'b0', 'netns', ns.b, 'type', 'veth', 'peer', 'name', 'rb', 'netns', ns.r]);
    const forwarding = p.family === 6 ? 'sysctl -qw net.ipv6.conf.all.forwarding=1' : 'sysctl -qw net.ipv4.ip_forward=1';
    const noRedirects = 'sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0';
    sh(ns.c, `ip link set lo up; ip link set c0 up; ${ip} addr add ${CLIENT}/${len} dev c0${nodad}; ${ip} route add default via ${gw[0]}`);
    sh(ns.r, `ip link set lo up; for i in rc rf rb; do ip link set $i up; done
      ${ip} addr add ${gw[0]}/${len} dev rc${nodad}; ${ip} addr add ${gw[1]}/${len} dev rf${nodad}; ${ip} addr add ${gw[2]}/${len} dev rb${nodad}
      ${forwarding}; ${noRedirects}
      ${ip} route add ${VIP}/${host} via ${FRONTEND}
      ${ip} rule add iif rf lookup 100; ${ip} route add ${VIP}/${host} via ${BACKEND} table 100`);
    sh(ns.f, `ip link set lo up; ip link set f0 up; ${ip} addr add ${FRONTEND}/${len} dev f0${nodad}; ${ip} route add default via ${gw[1]}
      ${forwarding}; ${noRedirects}`);
    sh(ns.b, `ip link set lo up; ip link set b0 up; ${ip} addr add ${BACKEND}/${len} dev b0${nodad}; ${ip} route add default via ${gw[2]}
      ${ip} addr add ${VIP}/${host} dev lo${nodad}`);
    const fx = (n: string, ...a: string[]) =>
      JSON.parse(execFileSync('ip', ['netns', 'exec', n, process.execPath, '--import', 'tsx', fixture, ...a], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.equal(fx(ns.f, 'frontend-up', 'f0', `${mnt}/fe`).attach, 'tcx');
    assert.equal(fx(ns.b, 'backend-up', 'b0', `${mnt}/be`).attach, 'tcx');

    const server = spawn('ip', ['netns', 'exec', ns.b, process.execPath, '-e', serverJs(VIP)], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => server.kill());
    await waitLine(server, /listening/, 15_000);
    const client = spawn('ip', ['netns', 'exec', ns.c, process.execPath, '-e', clientJs(VIP)], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.after(() => client.kill());
    const port = await waitLine(client, /^\d+$/, 15_000);

    // the connection is established (handshake forwarded plainly): now the front-end program takes it over
    assert.equal(fx(ns.b, 'decap', 'b0', `${mnt}/be`, FRONTEND, String(FLOW_ID), CLIENT, port, VIP, '80').adopted, true);
    const to = p.mode === 'encap' ? BACKEND : gw[1];
    assert.equal(fx(ns.f, 'steer', 'f0', `${mnt}/fe`, CLIENT, port, VIP, '80', to, FRONTEND, String(FLOW_ID), p.mode).adopted, true);
    const result = waitLine(client, /^[0-9a-f]{64} \d+$|^error/, 30_000);
    client.stdin?.write('go\n');
    const expected = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i++) expected[i] = (i * 7) & 255;
    assert.equal(await result, `${createHash('sha256').update(expected).digest('hex')} ${SIZE}`);

    const after = fx(ns.f, 'counters', 'f0', `${mnt}/fe`);
    const counters = after.counters as { packets: string; bytes: string };
    assert.ok(Number(counters.packets) > 0, 'packets counted at the front-end');
    assert.ok(Number(counters.bytes) >= SIZE, `bytes counted at the front-end (${counters.bytes})`);
    assert.deepEqual(after.flows, [{ verdict: 'forward', lastSeenNs: true }]);
  });
}
