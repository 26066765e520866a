// The back-end half of park.netns.test.ts, run in the server's namespace (as root): loads the back-end program on
// the interface, opens the park gate and guards addr:port, accepts the client's connection, captures it (repair,
// silent close: no socket is left), tells the client to send, and then:
//   lossless: as soon as packets are parked, begin, inject the captured state, release; reads every byte in order;
//   expire:   never begins; waits until the parked packets expired;
//   drop:     the gate is not lossless (the guard drops).
// Prints one JSON line: what the gate and the guard counted, whether the client saw an error (a RST), the client's
// and the server's TCP counters before and after, and the bytes received.
//   node --import tsx src/backend/park.fixture.ts <mode> <ifname> <pinDir> <clientNs> <addr> <port> <queue> <bytes>
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadBackendDataplane } from '../steer/bpf-loader.ts';
import { captureState } from '../tcp/capture.ts';
import { injectState } from '../tcp/inject.ts';
import { fdOf, stopReading } from '../tcp/node-socket.ts';
import { openParkGate } from './park-bpf.ts';
import type { ParkedFlow } from './park.ts';

const [mode = '', ifname = '', pinDir = '', clientNs = '', addr = '', portS = '', queueS = '', bytesS = ''] = process.argv.slice(2);
const port = Number(portS);
const bytes = Number(bytesS);
const clientScript = fileURLToPath(new URL('./park-client.fixture.ts', import.meta.url));
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Tcp RetransSegs/OutRsts (/proc/net/snmp) and a few TcpExt counters (/proc/net/netstat) of a namespace's text. */
function tcpCounters(snmp: string, netstat: string): Record<string, number> {
  const pick = (text: string, prefix: string, names: string[]): Record<string, number> => {
    const lines = text.split('\n').filter((l) => l.startsWith(`${prefix}:`));
    const head = (lines[0] ?? '').split(/\s+/).slice(1);
    const vals = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
    return Object.fromEntries(names.map((n) => [n, vals[head.indexOf(n)] ?? -1]));
  };
  return {
    ...pick(snmp, 'Tcp', ['RetransSegs', 'OutRsts', 'EstabResets']),
    ...pick(netstat, 'TcpExt', (process.env['PARK_EXT'] ?? 'TCPLossProbes,TCPTimeouts,TCPAbortOnData').split(',')),
  };
}
const inClient = (file: string): string => execFileSync('ip', ['netns', 'exec', clientNs, 'cat', file], { encoding: 'utf8' });
const clientCounters = (): Record<string, number> => tcpCounters(inClient('/proc/net/snmp'), inClient('/proc/net/netstat'));
const serverCounters = (): Record<string, number> => tcpCounters(readFileSync('/proc/net/snmp', 'utf8'), readFileSync('/proc/net/netstat', 'utf8'));
const delta = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.keys(a).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

const dp = loadBackendDataplane({ ifname, pinDir, adopt: false });
const gate = openParkGate({ dataplane: dp, lossless: mode !== 'drop', queue: Number(queueS), limits: { unclaimedMs: mode === 'expire' ? 300 : 3000 } });
const server = net.createServer({ pauseOnConnect: true });
const client = spawn('ip', ['netns', 'exec', clientNs, process.execPath, '--import', 'tsx', clientScript, addr, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
const result: Record<string, unknown> = { mode };
class Done extends Error {}
const clientLines: string[] = [];
try {
  gate.guardVips([{ family: 4, address: addr, port }]);
  server.listen(port, addr);
  await once(server, 'listening');
  const lines = createInterface({ input: client.stdout! });
  lines.on('line', (l) => clientLines.push(l));
  const [sock] = (await once(server, 'connection')) as [net.Socket];
  while (!clientLines.some((l) => l.startsWith('connected '))) await tick();
  if (mode === 'direct') {
    // the control: the same transfer into the original socket, no capture, no parking
    const c0 = clientCounters();
    const s0 = serverCounters();
    let got = 0;
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes) sock.write('ok\n');
    });
    sock.resume();
    client.stdin!.write(`send ${bytes}\n`);
    const until = Date.now() + 10_000;
    while (!clientLines.some((l) => l === 'reply ok' || l.startsWith('error')) && Date.now() < until) await sleep(5);
    result.bytesReceived = got;
    result.client = delta(c0, clientCounters());
    result.server = delta(s0, serverCounters());
    throw new Done();
  }
  stopReading(sock);
  const flow: ParkedFlow = { family: 4, client: { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 }, vip: { address: addr, port } };
  const state = captureState({ fd: fdOf(sock) ?? -1, family: 4, client: flow.client, vip: flow.vip, consumed: new Uint8Array(0) });
  sock.destroy(); // in repair mode: neither FIN nor RST; from here no socket exists for the tuple (a listener does)
  const c0 = clientCounters();
  const s0 = serverCounters();
  client.stdin!.write(mode === 'measure' ? `small ${bytes}\n` : `send ${bytes}\n`);

  if (mode === 'measure') {
    // per-packet costs, not asserted: `bytes` is the number of 100-byte segments parked before one release
    const deadline = Date.now() + 5000;
    while (!clientLines.includes('sent small') && Date.now() < deadline) await sleep(5);
    await sleep(50);
    result.pendingBeforeRelease = gate.stats().pending;
    gate.begin(flow);
    const owned = injectState(state);
    const t1 = performance.now();
    result.released = gate.release(flow);
    result.releaseMs = performance.now() - t1;
    result.usPerReleasedPacket = (Number(result.releaseMs) * 1000) / Number(result.released);
    owned.close();
  } else if (mode === 'lossless') {
    const deadline = Date.now() + 2000;
    while (gate.stats().pending === 0 && Date.now() < deadline) await tick();
    const t0 = performance.now();
    gate.begin(flow);
    const owned = injectState(state);
    const t1 = performance.now();
    const released = gate.release(flow);
    const t2 = performance.now();
    result.injectMs = t1 - t0;
    result.releaseMs = t2 - t1;
    result.released = released;
    const s = owned.toSocket();
    const chunks: Buffer[] = [];
    let got = 0;
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= bytes) s.write('ok\n');
    });
    const until = Date.now() + 10_000;
    while (!clientLines.some((l) => l === 'reply ok' || l.startsWith('error')) && Date.now() < until) await sleep(5);
    result.bytesReceived = got;
    result.inOrder = Buffer.concat(chunks).equals(pattern(bytes));
    s.destroy();
  } else if (mode === 'expire') {
    const deadline = Date.now() + 3000;
    while (gate.stats().expired === 0 && Date.now() < deadline) await sleep(10);
    await sleep(300);
  } else {
    await sleep(500);
  }
  result.gate = gate.stats();
  result.guard = Object.fromEntries(Object.entries(dp.guard.counters()).map(([k, v]) => [k, Number(v)]));
  result.clientErrors = clientLines.filter((l) => l.startsWith('error') || l === 'closed');
  result.client = delta(c0, clientCounters());
  result.server = delta(s0, serverCounters());
} catch (e) {
  if (!(e instanceof Done)) throw e;
} finally {
  client.stdin!.write('end\n');
  client.kill();
  server.close();
  gate.close();
  dp.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
