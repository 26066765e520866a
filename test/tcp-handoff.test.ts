// Kernel tests of the TCP state handoff itself (capture -> blob -> inject), with real clients in
// network namespaces: segment size from the first byte (issue 9.4), half-closed clients (10.1, IPv4
// and IPv6), bounded zombies (10.4); then the same through the real daemons of a lab cluster.
// Each role runs test/tcp-peer.ts in its namespace of a one-back-end lab. In the first two suites
// capture and inject both run in the front-end's namespace, which the client's packets reach without
// steering: capture closes the original silently, inject re-creates it on the same tuple.
// Needs root; skipped with a reason otherwise.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { APP_PORT, startCluster, type Cluster } from '../src/lab/cluster.ts';
import { labUp, type Lab, type LabHost } from '../src/lab/lab.ts';
import { tcpCounters } from '../src/lab/tcpstat.ts';
import * as C from '../src/sys/constants.ts';
import { patternSha256 } from '../src/wire/pattern.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces, TCP_REPAIR, raw sockets)' : false;
const PEER = join(import.meta.dirname, 'tcp-peer.ts');

interface TcpInfo {
  readonly state: number;
  readonly sndMss: number;
  readonly rcvMss: number;
  readonly advmss: number;
  readonly pmtu: number;
  readonly dataSegsIn: number;
  readonly dataSegsOut: number;
}
type Reply = Record<string, unknown>;

/** A tcp-peer.ts process in one namespace. */
class Peer {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (r: Reply) => void>();
  #seq = 0;
  #stderr = '';

  constructor(host: LabHost) {
    this.#child = spawn('ip', ['netns', 'exec', host.netns, process.execPath, '--import', 'tsx', PEER], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr!.on('data', (b: Buffer) => (this.#stderr += b.toString()));
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as Reply & { seq: number };
      this.#pending.get(r.seq)?.(r);
      this.#pending.delete(r.seq);
    });
  }

  /** Runs a command; throws with the peer's error unless `mayFail`. */
  async call(cmd: string, args: Reply = {}, mayFail = false): Promise<Reply> {
    const seq = ++this.#seq;
    const reply = new Promise<Reply>((resolve, reject) => {
      this.#pending.set(seq, resolve);
      this.#child.once('exit', (code) => reject(new Error(`peer exited ${code}: ${this.#stderr}`)));
    });
    this.#child.stdin!.write(`${JSON.stringify({ seq, cmd, ...args })}\n`);
    const r = await reply;
    if (!r.ok && !mayFail) throw new Error(`${cmd}: ${String(r.error)}\n${this.#stderr}`);
    return r;
  }

  stop(): void {
    this.#child.stdin!.end();
    this.#child.kill();
  }
}

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

const PORT = 8080;

describe('tcp handoff (capture, blob, inject) with real clients', { skip }, () => {
  let lab: Lab;
  let client: Peer;
  let fe: Peer;

  before(async () => {
    lab = await labUp({ backends: 1 });
    client = new Peer(lab.client);
    fe = new Peer(lab.frontend);
    await fe.call('listen', { host: lab.vip, port: PORT });
  });
  after(async () => {
    client?.stop();
    fe?.stop();
    await lab?.down();
  });

  /** A client connection whose request the front-end has read (and stopped reading after). */
  async function held(request: string, halfClose: boolean): Promise<{ c: number; f: number; consumed: string }> {
    const c = (await client.call('connect', { host: lab.vip, port: PORT })).id as number;
    await client.call('write', { id: c, text: request, end: halfClose });
    const a = await fe.call('accept', { until: '\r\n\r\n' });
    const f = a.id as number;
    if (halfClose) await fe.call('state', { id: f, state: C.TCP_CLOSE_WAIT });
    return { c, f, consumed: a.consumed as string };
  }

  /** Captures f and injects it again; returns the injected connection's id and its TCP_INFO. */
  async function handoff(f: number, consumed: string, extra: Reply = {}): Promise<{ id: number; info: TcpInfo; state: Reply; before: TcpInfo }> {
    const before = (await fe.call('info', { id: f })).info as TcpInfo;
    const cap = await fe.call('capture', { id: f, consumed });
    const inj = await fe.call('inject', { blob: cap.blob, ...extra });
    return { id: inj.id as number, info: inj.info as TcpInfo, state: cap.state as Reply, before };
  }

  test('the injected socket sends full-size segments from the first byte (same MSS, same segment count as direct)', async () => {
    const size = 64 * 1024;
    // Direct: the front-end's own accepted socket answers.
    const d = await held('GET /direct HTTP/1.1\r\n\r\n', false);
    const dBefore = ((await client.call('info', { id: d.c })).info as TcpInfo).dataSegsIn;
    await fe.call('write', { id: d.f, size, end: true });
    const dRead = await client.call('read', { id: d.c });
    assert.equal(dRead.sha256, patternSha256(size));
    const direct = ((await client.call('info', { id: d.c })).info as TcpInfo).dataSegsIn - dBefore;

    // Handed off: capture, inject, then the same response from the injected socket.
    const h = await held('GET /handoff HTTP/1.1\r\n\r\n', false);
    const x = await handoff(h.f, h.consumed);
    assert.equal(x.info.state, C.TCP_ESTABLISHED);
    assert.ok(x.before.sndMss >= 1400, `original send MSS ${x.before.sndMss}: the lab link should carry 1500-byte packets`);
    assert.equal(x.info.sndMss, x.before.sndMss, 'send MSS right after injection (tcpi_snd_mss)');
    assert.equal(x.info.pmtu, x.before.pmtu, 'path MTU');
    // advmss: a repaired connect skips the handshake step that takes the timestamp option's 12 bytes
    // off the announced MSS; it only paces receive-window growth, and no repair option sets it.
    assert.ok([0, 12].includes(x.info.advmss - x.before.advmss), `advmss ${x.before.advmss} -> ${x.info.advmss}`);
    const req = await fe.call('read', { id: x.id, bytes: h.consumed.length === 0 ? 1 : Buffer.from(h.consumed, 'base64').length });
    assert.equal(req.text, 'GET /handoff HTTP/1.1\r\n\r\n');
    const hBefore = ((await client.call('info', { id: h.c })).info as TcpInfo).dataSegsIn;
    await fe.call('write', { id: x.id, size, end: true });
    const hRead = await client.call('read', { id: h.c });
    assert.equal(hRead.sha256, patternSha256(size));
    const handed = ((await client.call('info', { id: h.c })).info as TcpInfo).dataSegsIn - hBefore;
    const sent = ((await fe.call('info', { id: x.id }).catch(() => ({ info: undefined }))).info as TcpInfo | undefined)?.dataSegsOut;
    console.log(`64 KiB response: ${direct} segments direct, ${handed} after handoff (injected socket sent ${sent ?? '?'}); ` +
      `snd_mss ${x.before.sndMss} -> ${x.info.sndMss}, rcv_mss ${x.before.rcvMss} -> ${x.info.rcvMss}, advmss ${x.before.advmss} -> ${x.info.advmss}`);
    assert.ok(Math.abs(handed - direct) <= Math.ceil(direct * 0.1), `${handed} segments after handoff vs ${direct} direct`);
  });

  test('a forwarded handoff is delivered by prepare alone; a late ABORT drops it without a FIN or RST, and the client lives on', async () => {
    const h = await held('GET /late-abort HTTP/1.1\r\n\r\n', false);
    const cap = await fe.call('capture', { id: h.f, consumed: h.consumed });
    const aborted = await fe.call('inject', { blob: cap.blob, forwarded: true, abort: true });
    assert.equal(aborted.destroyed, true, 'the delivered socket is gone');
    // Nothing reached the client: no FIN (end-of-input) and no RST (close with an error).
    await new Promise((r) => setTimeout(r, 300));
    const info = (await client.call('info', { id: h.c })).info as TcpInfo;
    assert.equal(info.state, C.TCP_ESTABLISHED, 'the client saw neither FIN nor RST');
    // The same state injected again (the next back-end, here the same host) serves the request.
    const again = await fe.call('inject', { blob: cap.blob, forwarded: true });
    const x = again.id as number;
    const req = await fe.call('read', { id: x, bytes: Buffer.from(h.consumed, 'base64').length });
    assert.equal(req.text, 'GET /late-abort HTTP/1.1\r\n\r\n');
    await fe.call('write', { id: x, text: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok', end: true });
    const got = await client.call('read', { id: h.c });
    assert.match(String(got.text), /^HTTP\/1\.1 200 OK[\s\S]*ok$/);
  });

  for (const kind of ['GET', 'POST'] as const) {
    test(`a half-closed client's ${kind} is handed off: the injected socket reads the request, then end-of-input, and answers`, async () => {
      // A body the front-end's receive window takes whole (it stops reading at the head), so the FIN
      // arrives before the handoff; a longer body's FIN would arrive at the back-end as usual.
      const body = kind === 'POST' ? Buffer.alloc(60_000, 'b').toString() : '';
      const head = kind === 'GET'
        ? 'GET /whoami HTTP/1.0\r\n\r\n'
        : `POST /sha256 HTTP/1.0\r\nContent-Length: ${body.length}\r\n\r\n`;
      const request = head + body;
      const h = await held(request, true);
      const x = await handoff(h.f, h.consumed);
      assert.equal(x.state.finReceived, true, 'captured state carries the FIN');
      assert.equal(x.state.recvQueue, request.length, 'every request byte travels (the FIN is not a byte)');
      assert.equal(x.info.state, C.TCP_CLOSE_WAIT, 'injected socket is in CLOSE_WAIT');
      assert.equal(x.info.sndMss, x.before.sndMss);
      const got = await fe.call('read', { id: x.id });
      assert.equal(got.length, request.length, 'request bytes read');
      assert.equal(got.eof, true, 'end-of-input after the request');
      assert.equal(got.sha256, sha(request));
      const answer = `HTTP/1.0 200 OK\r\n\r\n${'a'.repeat(100_000)}`;
      await fe.call('write', { id: x.id, text: answer, end: true });
      const r = await client.call('read', { id: h.c });
      assert.equal(r.eof, true);
      assert.equal(r.length, answer.length);
      assert.equal(r.sha256, sha(answer));
      assert.equal((await fe.call('closed', { id: x.id })).error, null, 'the injected socket closed without an error');
    });
  }

  test('capture refuses a socket whose own side has closed (FIN_WAIT), naming the state', async () => {
    const h = await held('GET / HTTP/1.1\r\n\r\n', false);
    await fe.call('end', { id: h.f });
    const cap = await fe.call('capture', { id: h.f, consumed: h.consumed }, true);
    assert.equal(cap.ok, false);
    assert.match(String(cap.error), /FIN_WAIT[12].*not ESTABLISHED or CLOSE_WAIT/);
  });

  test('injected connections whose client vanished are closed within the liveness bound and counted as ended', async (t) => {
    const liveness = { userTimeoutMs: 1500, keepaliveIdleS: 1, keepaliveIntervalS: 1, keepaliveCount: 2 };
    const sending = await held('GET /big HTTP/1.1\r\n\r\n', false);
    const s = await handoff(sending.f, sending.consumed, { liveness });
    const idle = await held('GET /slow HTTP/1.1\r\n\r\n', false);
    const i = await handoff(idle.f, idle.consumed, { liveness });
    const countsBefore = await fe.call('active');
    const activeBefore = countsBefore.active as number;
    assert.ok(activeBefore >= 2, `receiver counts ${activeBefore} open connections`);
    // The client vanishes: everything to and from it is dropped from now on (its RSTs would go nowhere).
    const table = `zombie${process.pid}`;
    const drop = [
      `add table inet ${table}`,
      `add chain inet ${table} in { type filter hook input priority -300; policy drop; }`,
      `add chain inet ${table} out { type filter hook output priority -300; policy drop; }`,
    ].join('\n');
    const r = await lab.exec(lab.client, ['nft', '-f', '-'], { input: `${drop}\n` });
    assert.equal(r.code, 0, r.stderr);
    t.after(() => lab.exec(lab.client, ['nft', 'delete', 'table', 'inet', table]).then(() => undefined));
    // One socket has data in flight (TCP_USER_TIMEOUT), the other is idle (keepalive).
    await fe.call('write', { id: s.id, size: 1 << 20, noWait: true });
    const [a, b] = await Promise.all([
      fe.call('closed', { id: s.id, timeoutMs: 30_000 }),
      fe.call('closed', { id: i.id, timeoutMs: 30_000 }),
    ]);
    assert.equal(a.error, 'ETIMEDOUT', 'sending zombie');
    assert.equal(b.error, 'ETIMEDOUT', 'idle zombie');
    // The receiver saw both closes and reported both flow ends (which release their steering).
    const counts = await fe.call('active');
    assert.equal(counts.active, activeBefore - 2);
    assert.equal(counts.flowEnds, (countsBefore.flowEnds as number) + 2);
  });
});

describe('tcp handoff over IPv6', { skip }, () => {
  let lab: Lab;
  let client: Peer;
  let fe: Peer;
  const VIP6 = 'fd77::100';

  before(async () => {
    lab = await labUp({ backends: 1 });
    // The lab keeps IPv6 off; turn it on in the two namespaces this test uses.
    const v6 = async (h: LabHost, addrs: string[]): Promise<void> => {
      const on = ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0',
        `net.ipv6.conf.${h.ifname}.disable_ipv6=0`, 'net.ipv6.conf.lo.disable_ipv6=0'];
      assert.equal((await lab.exec(h, on)).code, 0);
      for (const a of addrs) {
        const r = await lab.exec(h, ['ip', 'addr', 'add', a, 'dev', h.ifname, 'nodad']);
        assert.equal(r.code, 0, r.stderr);
      }
    };
    await v6(lab.client, ['fd77::2/64']);
    await v6(lab.frontend, ['fd77::10/64', `${VIP6}/128`]);
    client = new Peer(lab.client);
    fe = new Peer(lab.frontend);
    await fe.call('listen', { host: VIP6, port: PORT });
  });
  after(async () => {
    client?.stop();
    fe?.stop();
    await lab?.down();
  });

  test('a half-closed IPv6 client is handed off with its MSS and its FIN', async () => {
    const request = 'GET /v6 HTTP/1.0\r\n\r\n';
    const c = (await client.call('connect', { host: VIP6, port: PORT })).id as number;
    await client.call('write', { id: c, text: request, end: true });
    const a = await fe.call('accept', { until: '\r\n\r\n' });
    await fe.call('state', { id: a.id, state: C.TCP_CLOSE_WAIT });
    const before = (await fe.call('info', { id: a.id })).info as TcpInfo;
    const cap = await fe.call('capture', { id: a.id, consumed: a.consumed });
    assert.equal((cap.state as Reply).family, 6);
    const inj = await fe.call('inject', { blob: cap.blob });
    const info = inj.info as TcpInfo;
    assert.equal(info.state, C.TCP_CLOSE_WAIT);
    assert.ok(before.sndMss >= 1400, `original send MSS ${before.sndMss}`);
    assert.equal(info.sndMss, before.sndMss);
    const got = await fe.call('read', { id: inj.id });
    assert.equal(got.text, request);
    assert.equal(got.eof, true);
    await fe.call('write', { id: inj.id, size: 64 * 1024, end: true });
    const r = await client.call('read', { id: c });
    assert.equal(r.sha256, patternSha256(64 * 1024));
    assert.equal(r.eof, true);
  });
});

describe('through the daemons (front-end, agent, sample app)', { skip }, () => {
  let lab: Lab;
  let cluster: Cluster;
  let client: Peer;

  before(async () => {
    lab = await labUp({ backends: 1 });
    cluster = await startCluster(lab, {});
    client = new Peer(lab.client);
  });
  after(async () => {
    client?.stop();
    await cluster?.stop();
    await lab?.down();
  });

  /** Like `printf REQUEST | nc -N VIP 80`: send, shut down the sending side, read the answer to EOF. */
  async function halfClosed(request: string): Promise<string> {
    const c = (await client.call('connect', { host: lab.vip, port: 80 })).id as number;
    await client.call('write', { id: c, text: request, end: true });
    const r = await client.call('read', { id: c, timeoutMs: 10_000 });
    assert.equal(r.eof, true);
    return String(r.text);
  }

  test('a half-closed GET is handed off and answered by the back-end', async () => {
    const out = await halfClosed('GET /whoami HTTP/1.0\r\nHost: x\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200/, `${out}\n${cluster.logs().slice(-2000)}`);
    assert.match(out, /x-baton-backend: b1/i);
    const stats = await cluster.stats();
    assert.equal(stats.handedOff, 1);
  });

  test('a half-closed POST with its body sent before the FIN is handed off and the body arrives whole', async () => {
    const body = 'p'.repeat(30_000);
    const out = await halfClosed(`POST /sha256 HTTP/1.0\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.match(out, /^HTTP\/1\.1 200/, `${out}\n${cluster.logs().slice(-2000)}`);
    assert.ok(out.includes(sha(body)), out);
  });

  test('a 64 KiB response right after a handoff uses as many segments as straight from the back-end (within 10%)', async () => {
    const size = 64 * 1024;
    const segments = async (host: string, port: number): Promise<number> => {
      const c = (await client.call('connect', { host, port })).id as number;
      await client.call('write', { id: c, text: `GET /bytes/${size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n` });
      const r = await client.call('read', { id: c });
      assert.ok(Number(r.length) > size, `response of ${String(r.length)} bytes`);
      return ((await client.call('info', { id: c })).info as TcpInfo).dataSegsIn;
    };
    const direct = await segments(lab.backends[0]!.address, APP_PORT);
    const handed = await segments(lab.vip, 80);
    console.log(`64 KiB response through the daemons: ${direct} segments direct, ${handed} through the VIP after a handoff`);
    assert.ok(Math.abs(handed - direct) <= Math.ceil(direct * 0.1), `${handed} segments via the VIP vs ${direct} direct`);
  });

  test('an 8 MiB POST still streaming at handoff time: the client never probes a zero window or times out', async (t) => {
    // The front-end stops reading at the head, so its window closes while the body streams. The new
    // owner must open it with an ACK the client accepts: a window probe at repair off carries
    // seq snd_una - 1, which the client discards as old, and it then waits for its own probe (~200 ms).
    const dir = await mkdtemp(join(tmpdir(), 'baton-upload-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'body');
    const body = randomBytes(8 << 20);
    await writeFile(file, body);
    const before = await tcpCounters(lab, lab.client);
    const r = await lab.exec(lab.client, [
      'curl', '-sS', '--max-time', '20', '-H', 'Expect:', '--data-binary', `@${file}`, `http://${lab.vip}/sha256`,
    ]);
    const after = await tcpCounters(lab, lab.client);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(sha(body)), `${r.stdout}\n${cluster.logs().slice(-2000)}`);
    const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
    console.log(`8 MiB POST via the VIP: client WinProbe +${delta('TcpExtTCPWinProbe')}, Timeouts +${delta('TcpExtTCPTimeouts')}, RetransSegs +${delta('TcpRetransSegs')}`);
    assert.equal(delta('TcpExtTCPWinProbe'), 0, 'client sent zero-window probes');
    assert.equal(delta('TcpExtTCPTimeouts'), 0, 'client hit a retransmission timeout');
  });
});

describe('forwarded handoff: the agent guards the VIP and parks what arrives before the socket (docs/handoff.md)', { skip }, () => {
  let lab: Lab;
  let cluster: Cluster;

  before(async () => {
    lab = await labUp({ backends: 1 });
    cluster = await startCluster(lab); // lab agents load the guard: the front-end forwards first
  });
  after(async () => {
    await cluster?.stop();
    await lab?.down();
  });

  test('8 MiB POSTs still streaming at handoff time: byte-exact, no RTO or window probe, every handoff forwarded first', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-forwarded-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'body');
    const body = randomBytes(8 << 20);
    await writeFile(file, body);
    const before = await tcpCounters(lab, lab.client);
    for (let i = 0; i < 3; i++) {
      const r = await lab.exec(lab.client, ['curl', '-sS', '--max-time', '10', '-H', 'Expect:', '--data-binary', `@${file}`, `http://${lab.vip}/sha256`]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(sha(body)), `${r.stdout}\n${cluster.logs().slice(-2000)}`);
    }
    const after = await tcpCounters(lab, lab.client);
    const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
    console.log(`forwarded, 3 x 8 MiB POST: client FastRetrans +${delta('TcpExtTCPFastRetrans')}, Timeouts +${delta('TcpExtTCPTimeouts')}, WinProbe +${delta('TcpExtTCPWinProbe')}, RetransSegs +${delta('TcpRetransSegs')}`);
    assert.equal(delta('TcpExtTCPTimeouts'), 0, 'client hit a retransmission timeout');
    assert.equal(delta('TcpExtTCPWinProbe'), 0, 'client sent zero-window probes');
    const stats = await cluster.stats();
    assert.equal(stats.handedOff, 3);
    assert.equal(stats.placedUs.count, 3, 'every handoff went forward first');
    assert.equal(stats.unconfirmed, 0);
  });

  test('a GET is handed off forward first too', async () => {
    const r = await lab.exec(lab.client, ['curl', '-sS', '--max-time', '10', `http://${lab.vip}/bytes/1024`, '-o', '/dev/null', '-w', '%{http_code}']);
    assert.equal(r.stdout, '200', r.stderr);
  });
});
