// Kernel tests for the routed and IPv6 labs: subnets joined by a router, direct server return past the front-end,
// IPv6 reachability with curl and Node, and the IPv6 VIP advertised by the front-end alone. Root only.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labUp, type Lab, type LabHost } from './lab.ts';
import { echoServer, tcpAsk, tcpTry } from './lab.fixture.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

/** Receives one UDP datagram and prints "<source address> <payload>". */
const UDP_RECEIVE = `
const s = require('node:dgram').createSocket(process.argv[1].includes(':') ? 'udp6' : 'udp4');
s.on('message', (m, r) => { console.log(r.address + ' ' + m); process.exit(0); });
s.bind(Number(process.argv[2]), process.argv[1], () => console.log('ready'));
setTimeout(() => { console.error('no datagram'); process.exit(2); }, 5000);
`;

/** Sends a datagram from a given source address (the VIP: what a back-end's DSR reply carries) a few times. */
const UDP_SEND = `
const [from, to, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket(from.includes(':') ? 'udp6' : 'udp4');
s.bind(0, from, () => {
  let n = 0;
  const t = setInterval(() => { s.send('dsr', Number(port), to); if (++n === 5) { clearInterval(t); setTimeout(() => s.close(), 200); } }, 100);
});
`;

/** Counts UDP datagrams to port 5000 at netdev ingress of eth0 (before any routing decision). */
const COUNT_UDP_5000 = `table netdev dsrcount {
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    udp dport 5000 counter name hits
  }
  counter hits {
  }
}
`;

async function udpCount(lab: Lab, h: LabHost): Promise<number> {
  const r = await lab.exec(h, ['nft', '-j', 'list', 'counter', 'netdev', 'dsrcount', 'hits']);
  assert.equal(r.code, 0, r.stderr);
  const m = /"packets":\s*(\d+)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return Number(m[1]);
}

const HTTP_SERVER = `
require('node:http').createServer((q, r) => r.end('hello from ' + process.argv[1] + ' to ' + q.socket.remoteAddress))
  .listen(8080, '::', () => console.log('ready'));
`;

/** Sends datagrams from `src` on `from` to `to`:port and returns what the receiver on `at` saw. */
async function udpVia(lab: Lab, from: LabHost, src: string, at: LabHost, to: string, port: number): Promise<string> {
  const rx = lab.spawn(at, [process.execPath, '-e', UDP_RECEIVE, to, String(port)]);
  let out = '';
  let err = '';
  rx.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<number | null>((resolve) => rx.once('exit', resolve));
  await new Promise<void>((resolve) => rx.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.includes('ready')) resolve();
  }));
  const tx = await lab.exec(from, [process.execPath, '-e', UDP_SEND, src, to, String(port)], { timeoutMs: 10_000 });
  assert.equal(tx.code, 0, tx.stderr);
  const code = await done;
  assert.equal(code, 0, `receiver on ${at.name}: ${err}`);
  return out.replace('ready', '').trim();
}

async function startHttp(lab: Lab, host: LabHost): Promise<void> {
  const c = lab.spawn(host, [process.execPath, '-e', HTTP_SERVER, host.name]);
  await new Promise<void>((resolve, reject) => {
    c.stdout?.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    c.once('exit', (code) => reject(new Error(`http server exited ${code}`)));
  });
}

test('routed lab: three subnets, the VIP routed to the front-end, back-ends reached only through the router', { skip }, async (t) => {
  const lab = await labUp({ backends: 2, routed: true });
  t.after(() => lab.down());
  const [b1, b2] = lab.backends as [LabHost, LabHost];
  const rt = lab.router;
  assert.ok(rt);
  assert.equal(lab.routed, true);
  assert.equal(lab.switchNetns, `${lab.id}-rt`);
  assert.deepEqual(
    [lab.client, lab.frontend, b1, b2].map((h) => [h.address, h.gateway]),
    [['10.77.1.2', '10.77.1.1'], ['10.77.2.10', '10.77.2.1'], ['10.77.3.11', '10.77.3.1'], ['10.77.3.12', '10.77.3.1']],
  );

  // The router forwards, routes the VIP to the front-end, and does not filter by reverse path.
  const sc = await lab.exec(rt, ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.br3.rp_filter']);
  assert.deepEqual(sc.stdout.trim().split('\n'), ['1', '0', '0']);
  const vipRoute = await lab.exec(rt, ['ip', 'route', 'get', lab.vip]);
  assert.match(vipRoute.stdout, /via 10\.77\.2\.10 dev br2/);

  // Client -> VIP lands on the front-end.
  await echoServer(lab, lab.frontend, lab.vip, 8000, 'fe');
  assert.equal(await tcpAsk(lab, lab.client, lab.vip, 8000), 'fe:ping');

  // Front-end -> back-end goes through the router; the back-end sees the front-end's own address (encap source).
  const feRoute = await lab.exec(lab.frontend, ['ip', 'route', 'get', b2.address]);
  assert.match(feRoute.stdout, /via 10\.77\.2\.1 dev eth0/);
  await echoServer(lab, b2, b2.address, 8080, '@peer');
  assert.equal(await tcpAsk(lab, lab.frontend, b2.address, 8080), `${lab.frontend.address}:ping`);
  assert.equal(await tcpAsk(lab, lab.client, b2.address, 8080), `${lab.client.address}:ping`);

  // Direct server return: a datagram from the VIP on a back-end reaches the client through the router and never
  // touches the front-end (a counter at the front-end's ingress stays at 0; it counts a datagram sent to the
  // front-end itself afterwards, so it can count). rp_filter on the router would drop it.
  await lab.exec(lab.frontend, ['nft', '-f', '-'], { input: COUNT_UDP_5000 });
  assert.equal(await udpVia(lab, b1, lab.vip, lab.client, lab.client.address, 5000), `${lab.vip} dsr`);
  assert.equal(await udpCount(lab, lab.frontend), 0);
  await lab.exec(b1, [process.execPath, '-e', UDP_SEND, b1.address, lab.frontend.address, '5000'], { timeoutMs: 10_000 });
  assert.equal(await udpCount(lab, lab.frontend), 5);

  // ... and with strict reverse-path filtering on the router's back-end side, the same reply is dropped: this is
  // why the lab turns it off.
  await lab.exec(rt, ['sysctl', '-q', '-w', 'net.ipv4.conf.br3.rp_filter=1']);
  const strictRx = lab.spawn(lab.client, [process.execPath, '-e', UDP_RECEIVE.replace('5000', '1500'), lab.client.address, '5002']);
  const strictDone = new Promise<number | null>((resolve) => strictRx.once('exit', resolve));
  await new Promise<void>((resolve) => strictRx.stdout?.on('data', (b: Buffer) => b.toString().includes('ready') && resolve()));
  await lab.exec(b1, [process.execPath, '-e', UDP_SEND, lab.vip, lab.client.address, '5002'], { timeoutMs: 10_000 });
  assert.equal(await strictDone, 2, 'strict rp_filter on the router should drop VIP-sourced replies');
});

test('IPv6 L2 lab: curl and Node reach a back-end over IPv6; only the front-end advertises the IPv6 VIP', { skip }, async (t) => {
  const lab = await labUp({ backends: 2, ipv6: true });
  t.after(() => lab.down());
  const b1 = lab.backends[0]!;
  assert.equal(lab.vip6, 'fd77::100');
  assert.equal(b1.address6, 'fd77::11');

  // No address anywhere is tentative (DAD off), so everything is usable at once.
  for (const h of [lab.client, lab.frontend, ...lab.backends]) {
    const tent = await lab.exec(h, ['ip', '-6', 'addr', 'show', 'tentative']);
    assert.equal(tent.stdout.trim(), '', `${h.name} has tentative addresses`);
  }

  await startHttp(lab, b1);
  const curl = await lab.exec(lab.client, ['curl', '-sS', '-g', '--max-time', '5', `http://[${b1.address6}]:8080/`]);
  assert.equal(curl.code, 0, curl.stderr);
  assert.equal(curl.stdout, `hello from b1 to ${lab.client.address6}`);
  await echoServer(lab, b1, b1.address6!, 8081, '@peer');
  assert.equal(await tcpAsk(lab, lab.client, b1.address6!, 8081), `${lab.client.address6}:ping`);

  // Client -> IPv6 VIP lands on the front-end, whose MAC the client learnt for it.
  await echoServer(lab, lab.frontend, lab.vip6!, 8000, 'fe6');
  assert.equal(await tcpAsk(lab, lab.client, lab.vip6!, 8000), 'fe6:ping');
  const neigh = await lab.exec(lab.client, ['ip', '-6', 'neigh', 'show', lab.vip6!]);
  assert.match(neigh.stdout, new RegExp(`lladdr ${lab.frontend.mac}`));
  const lo = await lab.exec(b1, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'lo']);
  assert.match(lo.stdout, /inet6 fd77::100\/128/);

  // Take the VIP off the front-end: the back-ends, which hold it on lo, must not answer neighbour solicitations
  // for it, so the client cannot reach it at all (with an answering back-end this connect would succeed).
  await echoServer(lab, b1, lab.vip6!, 8000, 'b1-wrong');
  await lab.exec(lab.client, ['ip', '-6', 'neigh', 'flush', 'all']);
  await lab.exec(lab.frontend, ['ip', '-6', 'addr', 'del', `${lab.vip6}/128`, 'dev', 'eth0']);
  const r = await tcpTry(lab, lab.client, lab.vip6!, 8000, 3000);
  assert.notEqual(r.code, 0, `reached ${r.out}`);
  const after = await lab.exec(lab.client, ['ip', '-6', 'neigh', 'show', lab.vip6!]);
  for (const b of lab.backends) assert.doesNotMatch(after.stdout, new RegExp(b.mac));
});

test('IPv6 routed lab: the IPv6 VIP is routed to the front-end and back-ends are reached through the router', { skip }, async (t) => {
  const lab = await labUp({ backends: 1, routed: true, ipv6: true });
  t.after(() => lab.down());
  const b1 = lab.backends[0]!;
  assert.equal(b1.address6, 'fd77:3::11');
  await echoServer(lab, lab.frontend, lab.vip6!, 8000, 'fe6');
  assert.equal(await tcpAsk(lab, lab.client, lab.vip6!, 8000), 'fe6:ping');
  await echoServer(lab, b1, b1.address6!, 8080, '@peer');
  assert.equal(await tcpAsk(lab, lab.frontend, b1.address6!, 8080), `${lab.frontend.address6}:ping`);
  // DSR over IPv6: a datagram from the IPv6 VIP on the back-end reaches the client.
  assert.equal(await udpVia(lab, b1, lab.vip6!, lab.client, lab.client.address6!, 5000), `${lab.vip6} dsr`);
});
