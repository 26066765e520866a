// The back-end guard (bpf/backend.c step 2) through BPF_PROG_TEST_RUN, as root: one test per verdict. The socket
// cases use real sockets on loopback in this process's namespace (the program's bpf_skc_lookup_tcp looks there):
// an established connection and a time-wait one pass; a listener alone, or nothing, parks; a tuple in `parking`
// parks even with its socket there. Parking marks (queue on) or drops (queue off); the counters say which.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { progTestRun } from '../sys/libbpf.ts';
import { decapsulatePacket } from '../wire/decap-packet.ts';
import { emitTcpFrame, type TcpFlags } from '../wire/packet.ts';
import { type DetachedDataplane, loadBackendDetached } from './bpf-loader.ts';
import type { GuardCounters, GuardMaps, GuardTuple } from './bpf-guard-maps.ts';
import type { BackendMaps } from './bpf-maps.ts';

const root = process.getuid?.() === 0;
const haveLibbpf = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libbpf.so.1 "']).status === 0;
const skip = !root ? 'needs root (BPF_PROG_LOAD)' : !haveLibbpf ? 'needs libbpf1' : false;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const SK_BUFF_SIZE = 192; // struct __sk_buff (6.x); mark at offset 8
const OTHER_MARK = 0x1234; // low bits someone else uses: the program must keep them

type Dp = DetachedDataplane<BackendMaps> & { readonly guard: GuardMaps };

function run(dp: Dp, frame: Uint8Array): { verdict: number; mark: number; data: Buffer } {
  const ctx = Buffer.alloc(SK_BUFF_SIZE);
  ctx.writeUInt32LE(OTHER_MARK, 8);
  const r = progTestRun(dp.programFd, Buffer.from(frame), { ctx });
  assert.ok(r.ctx, 'context out');
  return { verdict: r.retval, mark: r.ctx.readUInt32LE(8), data: r.data };
}

function delta(a: GuardCounters, b: GuardCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a) as (keyof GuardCounters)[]) if (b[k] !== a[k]) out[k] = Number(b[k] - a[k]);
  return out;
}

interface Pair {
  readonly server: net.Server;
  readonly client: net.Socket;
  readonly accepted: net.Socket;
  readonly port: number;
}

async function connectedPair(host: string): Promise<Pair> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect(port, host);
  await once(client, 'connect');
  const [accepted] = await acceptedP;
  return { server, client, accepted, port };
}

for (const family of [4, 6] as const) {
  const lo = family === 4 ? '127.0.0.1' : '::1';
  describe(`back-end guard, IPv${family} (BPF_PROG_TEST_RUN)`, { skip }, () => {
    let dp: Dp;
    let pair: Pair;
    let listener: net.Server;
    let listenPort: number;
    before(async () => {
      dp = loadBackendDetached({ maxFlows: 1024 });
      pair = await connectedPair(lo);
      listener = net.createServer().listen(0, lo);
      await once(listener, 'listening');
      listenPort = (listener.address() as net.AddressInfo).port;
    });
    after(() => {
      dp?.close();
      pair?.client.destroy();
      pair?.accepted.destroy();
      pair?.server.close();
      listener?.close();
    });

    const frame = (sport: number, dport: number, flags: TcpFlags = { ack: true, psh: true }, src = lo, dst = lo): Uint8Array =>
      emitTcpFrame({ family, src, dst, sport, dport, seq: 100, ackNum: 200, flags, payload: new Uint8Array([1, 2, 3]) });
    const established = (): Uint8Array => frame(pair.client.localPort ?? 0, pair.port);
    const tuple = (sport: number, dport: number): GuardTuple => ({ family, client: { address: lo, port: sport }, vip: { address: lo, port: dport } });
    const guardAll = (): void => dp.guard.setVips([
      { family, address: lo, port: pair.port },
      { family, address: lo, port: listenPort },
      { family, address: lo, port: 9 },
    ]);
    const check = (input: Uint8Array, want: { verdict: number; parked: boolean; counted: Record<string, number> }): void => {
      const before = dp.guard.counters();
      const r = run(dp, input);
      assert.equal(r.verdict, want.verdict, 'verdict');
      assert.equal(r.mark, want.parked && want.verdict === TC_ACT_OK ? (dp.guard.codecs.mark | OTHER_MARK) >>> 0 : OTHER_MARK, 'mark');
      assert.deepEqual(delta(before, dp.guard.counters()), want.counted, 'counters');
    };

    test('config and guarded set round-trip; the mark comes from BTF', () => {
      assert.equal(dp.guard.codecs.mark, 0x0ba70000);
      assert.equal(dp.guard.codecs.markMask, 0xffff0000);
      dp.guard.setConfig({ parkQueue: true });
      assert.deepEqual(dp.guard.getConfig(), { parkQueue: true });
      guardAll();
      dp.guard.setVips([{ family, address: lo, port: 9 }]);
      assert.deepEqual(dp.guard.vips(), [{ family, address: lo, port: 9 }]);
    });

    test('a VIP that is not guarded passes untouched, uncounted', () => {
      dp.guard.setVips([]);
      check(frame(40000, 9), { verdict: TC_ACT_OK, parked: false, counted: {} });
    });

    test('a SYN to a guarded VIP passes (a new connection)', () => {
      guardAll();
      check(frame(40000, 9, { syn: true }), { verdict: TC_ACT_OK, parked: false, counted: { syn: 1 } });
    });

    test('no socket: parked (marked, passed to netfilter) with the queue on', () => {
      guardAll();
      dp.guard.setConfig({ parkQueue: true });
      check(frame(40000, 9), { verdict: TC_ACT_OK, parked: true, counted: { noSocket: 1 } });
      // a SYN-ACK is not a new connection either
      check(frame(40000, 9, { syn: true, ack: true }), { verdict: TC_ACT_OK, parked: true, counted: { noSocket: 1 } });
    });

    test('no socket: dropped with the queue off (never up to the stack, never a RST)', () => {
      guardAll();
      dp.guard.setConfig({ parkQueue: false });
      check(frame(40000, 9), { verdict: TC_ACT_SHOT, parked: true, counted: { noSocket: 1, dropped: 1 } });
    });

    test('only a listener: parked', () => {
      guardAll();
      dp.guard.setConfig({ parkQueue: true });
      check(frame(40001, listenPort), { verdict: TC_ACT_OK, parked: true, counted: { noSocket: 1 } });
    });

    test('an established socket takes it: passes', () => {
      guardAll();
      dp.guard.setConfig({ parkQueue: true });
      check(established(), { verdict: TC_ACT_OK, parked: false, counted: { socket: 1 } });
    });

    test('a tuple in parking is parked even with its socket there, and passes once it ends', () => {
      guardAll();
      dp.guard.setConfig({ parkQueue: true });
      const t = tuple(pair.client.localPort ?? 0, pair.port);
      dp.guard.beginParking(t, 1n);
      assert.ok(dp.guard.isParking(t));
      assert.deepEqual([...dp.guard.parkingTuples()], [t]);
      check(established(), { verdict: TC_ACT_OK, parked: true, counted: { begun: 1 } });
      dp.guard.setConfig({ parkQueue: false });
      check(established(), { verdict: TC_ACT_SHOT, parked: true, counted: { begun: 1, dropped: 1 } });
      assert.equal(dp.guard.endParking(t), true);
      assert.equal(dp.guard.endParking(t), false);
      check(established(), { verdict: TC_ACT_OK, parked: false, counted: { socket: 1 } });
    });

    test('settling: a released tuple with queued packets not yet given a verdict queues later ones behind them', () => {
      guardAll();
      dp.guard.setConfig({ parkQueue: true });
      const t = tuple(pair.client.localPort ?? 0, pair.port);
      dp.guard.clearSettling();
      dp.guard.beginParking(t, 1n);
      check(established(), { verdict: TC_ACT_OK, parked: true, counted: { begun: 1 } });
      check(established(), { verdict: TC_ACT_OK, parked: true, counted: { begun: 1 } });
      assert.equal(dp.guard.marked(t), 2, 'the program counts what it queued');
      // released after one verdict: one packet is still in the queue, so the next is queued too (and counted)
      dp.guard.settle(t, 1);
      dp.guard.endParking(t);
      check(established(), { verdict: TC_ACT_OK, parked: true, counted: { begun: 1 } });
      assert.equal(dp.guard.marked(t), 3);
      // the agent caught up: the socket takes the next one, uncounted by park_marked
      dp.guard.settle(t, 3);
      check(established(), { verdict: TC_ACT_OK, parked: false, counted: { socket: 1 } });
      assert.equal(dp.guard.marked(t), 3);
      // queue off: nothing is counted (no verdict will come for a dropped packet)
      dp.guard.settle(t, 2);
      dp.guard.setConfig({ parkQueue: false });
      check(established(), { verdict: TC_ACT_SHOT, parked: true, counted: { begun: 1, dropped: 1 } });
      assert.equal(dp.guard.marked(t), 3);
      dp.guard.setConfig({ parkQueue: true });
      dp.guard.endSettling(t);
      assert.equal(dp.guard.marked(t), undefined);
      check(established(), { verdict: TC_ACT_OK, parked: false, counted: { socket: 1 } });
      // a stray with no socket makes its own count (an LRU: strays cannot fill it for good)
      check(frame(40007, 9), { verdict: TC_ACT_OK, parked: true, counted: { noSocket: 1 } });
      assert.equal(dp.guard.marked(tuple(40007, 9)), 1);
      dp.guard.clearSettling();
      assert.equal(dp.guard.marked(tuple(40007, 9)), undefined);
    });

    test('a time-wait socket takes it: passes (the stack answers as it should)', async () => {
      const p = await connectedPair(lo);
      try {
        const sport = p.client.localPort ?? 0;
        // the server closes first, so ITS side (local = the VIP port) is the one left in TIME_WAIT
        p.accepted.end();
        await once(p.client, 'end');
        p.client.end();
        await Promise.all([once(p.accepted, 'close'), once(p.client, 'close')]);
        dp.guard.setVips([{ family, address: lo, port: p.port }]);
        dp.guard.setConfig({ parkQueue: true });
        check(frame(sport, p.port), { verdict: TC_ACT_OK, parked: false, counted: { socket: 1 } });
      } finally {
        p.server.close();
      }
    });

    test('a decapsulated packet is guarded on its restored tuple', () => {
      const fe = family === 4 ? '192.0.2.1' : '2001:db8::1';
      const be = family === 4 ? '192.0.2.20' : '2001:db8::20';
      dp.guard.setVips([{ family, address: lo, port: 9 }]);
      dp.guard.setConfig({ parkQueue: true });
      dp.maps.putDecap({ family, frontend: fe, flowId: 0x12349999, client: lo, clientPort: 40000, vip: lo, vipPort: 9 });
      try {
        const before = dp.guard.counters();
        const r = run(dp, frame(0x1234, 0x9999, { ack: true, psh: true }, fe, be));
        assert.equal(r.verdict, TC_ACT_OK);
        assert.equal(r.mark, (dp.guard.codecs.mark | OTHER_MARK) >>> 0);
        assert.equal(r.data.toString('hex'), Buffer.from(frame(40000, 9)).toString('hex'), 'restored bytes');
        assert.deepEqual(delta(before, dp.guard.counters()), { noSocket: 1 });
        // the agent's userspace restore of a packet parked before its mapping gives the program's bytes
        const user = decapsulatePacket(frame(0x1234, 0x9999, { ack: true, psh: true }, fe, be).subarray(14), { family, client: { address: lo, port: 40000 }, vip: { address: lo, port: 9 } }, { checksumPartial: false });
        assert.equal(Buffer.from(user).toString('hex'), r.data.subarray(14).toString('hex'), 'userspace restore = program restore');
      } finally {
        dp.maps.deleteDecap({ family, frontend: fe, flowId: 0x12349999 });
      }
    });

    test('encapsulated before its mapping, from a known front-end: parked still encapsulated (encapEarly); anything else passes', async () => {
      const fe = family === 4 ? '192.0.2.1' : '2001:db8::1';
      const be = family === 4 ? '192.0.2.20' : '2001:db8::20';
      dp.guard.setVips([{ family, address: lo, port: 9 }]);
      dp.guard.setConfig({ parkQueue: true });
      dp.guard.setEncapSources([{ family, address: fe }, { family, address: lo }]);
      assert.deepEqual(dp.guard.encapSources().map((x) => x.address).sort(), [fe, lo].sort());
      const enc = (sport: number, flags: TcpFlags = { ack: true, psh: true }, src = fe): Uint8Array => frame(sport, 0x7777, flags, src, be);
      // no decap entry for flow id 0x1234_7777: parked with the mark, bytes untouched (the agent restores them)
      const before = dp.guard.counters();
      const r = run(dp, enc(0x1234));
      assert.equal(r.verdict, TC_ACT_OK);
      assert.equal(r.mark, (dp.guard.codecs.mark | OTHER_MARK) >>> 0);
      assert.equal(r.data.toString('hex'), Buffer.from(enc(0x1234)).toString('hex'), 'still encapsulated');
      assert.deepEqual(delta(before, dp.guard.counters()), { encapEarly: 1 });
      // a SYN-ACK is no new connection: parked as well
      check(enc(0x1234, { syn: true, ack: true }), { verdict: TC_ACT_OK, parked: true, counted: { encapEarly: 1 } });
      // parking off: dropped, never passed up
      dp.guard.setConfig({ parkQueue: false });
      check(enc(0x1234), { verdict: TC_ACT_SHOT, parked: true, counted: { encapEarly: 1, dropped: 1 } });
      dp.guard.setConfig({ parkQueue: true });
      // passes: another source, a source port of 32768 or more (never a flow id), a bare SYN
      check(enc(0x1234, { ack: true }, family === 4 ? '192.0.2.99' : '2001:db8::99'), { verdict: TC_ACT_OK, parked: false, counted: {} });
      check(enc(0x8001), { verdict: TC_ACT_OK, parked: false, counted: {} });
      check(enc(0x1234, { syn: true }), { verdict: TC_ACT_OK, parked: false, counted: {} });
      // from a known source to a guarded VIP: the guard's business (its own tuple), not an encapsulated packet
      check(frame(0x1234, 9, { ack: true }, lo, lo), { verdict: TC_ACT_OK, parked: true, counted: { noSocket: 1 } });
      // this host's own connection with that front-end (here: a server on a port below 32768 answering from lo):
      // a socket takes it, it passes
      const server = net.createServer();
      let port = 0;
      for (let p = 20000 + Math.floor(Math.random() * 10000); port === 0; p++) {
        try {
          server.listen(p, lo);
          await once(server, 'listening');
          port = p;
        } catch {
          // taken: the next one
        }
      }
      const c = net.connect(port, lo);
      await once(c, 'connect');
      try {
        check(frame(port, c.localPort ?? 0, { ack: true, psh: true }, lo, lo), { verdict: TC_ACT_OK, parked: false, counted: {} });
      } finally {
        c.destroy();
        server.close();
        dp.guard.setEncapSources([]);
      }
      assert.deepEqual(dp.guard.encapSources(), []);
    });

    test('cost per verdict (BPF_PROG_TEST_RUN, mean of 100k runs; machine shared)', () => {
      guardAll();
      dp.guard.setConfig({ parkQueue: true });
      const costs: Record<string, number> = {};
      const cases: [string, Uint8Array][] = [['unguarded', frame(40000, 7)], ['syn', frame(40000, 9, { syn: true })], ['no socket', frame(40000, 9)], ['established', established()]];
      for (const [name, f] of cases) costs[name] = progTestRun(dp.programFd, Buffer.from(f), { repeat: 100_000 }).durationNs;
      console.log(`guard ns/packet IPv${family}: ${JSON.stringify(costs)}`);
      for (const v of Object.values(costs)) assert.ok(v > 0 && v < 100_000);
    });
  });
}
