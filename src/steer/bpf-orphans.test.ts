// Orphan capture in the front-end program (BPF_PROG_TEST_RUN, as root): with config.orphans on, a non-SYN packet to
// the VIP with no `flows` entry and no local connection is recorded in `orphans` and dropped (never passed up, where
// the stack would reset a client whose flow another front-end handed off); a SYN, another VIP or port, or capture
// off pass untouched; a second packet counts on the same record. IPv4 and IPv6.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { progTestRun } from '../sys/libbpf.ts';
import { emitTcpFrame } from '../wire/packet.ts';
import { type DetachedDataplane, loadFrontendDetached } from './bpf-loader.ts';
import type { FrontendMaps } from './bpf-maps.ts';

const root = process.getuid?.() === 0;
const haveLibbpf = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libbpf.so.1 "']).status === 0;
const skip = !root ? 'needs root (BPF_PROG_LOAD)' : !haveLibbpf ? 'needs libbpf1' : false;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

const NETS = [
  { family: 4 as const, client: '198.51.100.7', vip: '203.0.113.10', other: '203.0.113.11' },
  { family: 6 as const, client: '2001:db8:1::7', vip: '2001:db8:2::10', other: '2001:db8:2::11' },
];

describe('front-end orphan capture (BPF_PROG_TEST_RUN)', { skip }, () => {
  let fe: DetachedDataplane<FrontendMaps>;
  before(() => {
    fe = loadFrontendDetached({ maxFlows: 1024 });
  });
  after(() => fe?.close());

  for (const n of NETS) {
    const v = `IPv${n.family}`;
    const frame = (o: { dst?: string; dport?: number; syn?: boolean; sport?: number }): Buffer =>
      Buffer.from(
        emitTcpFrame({
          family: n.family, src: n.client, dst: o.dst ?? n.vip, sport: o.sport ?? 41000, dport: o.dport ?? 80,
          seq: 1000, ackNum: 5000, flags: o.syn ? { syn: true } : { ack: true }, payload: new Uint8Array(0),
        }),
      );
    const on = (): void => fe.maps.setConfig({ refreshNs: 0n, idleTimeoutNs: 0n, orphans: { family: n.family, vip: { address: n.vip, port: 80 } } });

    test(`${v}: capture off passes an unknown flow`, () => {
      fe.maps.setConfig({ refreshNs: 0n, idleTimeoutNs: 0n });
      assert.equal(progTestRun(fe.programFd, frame({})).retval, TC_ACT_OK);
      assert.equal([...fe.maps.iterateOrphans()].length, 0);
    });

    test(`${v}: an unknown non-SYN packet to the VIP is recorded and dropped; the next one counts`, () => {
      on();
      assert.deepEqual(fe.maps.getConfig().orphans, { family: n.family, vip: { address: n.vip, port: 80 } });
      assert.equal(progTestRun(fe.programFd, frame({})).retval, TC_ACT_SHOT);
      assert.equal(progTestRun(fe.programFd, frame({})).retval, TC_ACT_SHOT);
      const all = [...fe.maps.iterateOrphans()];
      assert.equal(all.length, 1);
      const o = all[0]!;
      assert.deepEqual(o.flow, { family: n.family, clientAddress: n.client, clientPort: 41000 });
      assert.deepEqual(o.vip, { address: n.vip, port: 80 });
      assert.equal(o.packets, 2);
      assert.ok(o.lastSeenNs >= o.firstSeenNs && o.firstSeenNs > 0n);
      fe.maps.putOrphan({ ...o, pass: true });
      assert.equal(progTestRun(fe.programFd, frame({})).retval, TC_ACT_OK, 'passed up once nobody holds it');
      assert.equal(fe.maps.getOrphan(o.flow, o.vip)?.packets, 2);
      assert.equal(fe.maps.deleteOrphan(o.flow, o.vip), true);
      assert.equal([...fe.maps.iterateOrphans()].length, 0);
    });

    test(`${v}: SYN, another VIP, another port pass`, () => {
      on();
      assert.equal(progTestRun(fe.programFd, frame({ syn: true })).retval, TC_ACT_OK);
      assert.equal(progTestRun(fe.programFd, frame({ dst: n.other })).retval, TC_ACT_OK);
      assert.equal(progTestRun(fe.programFd, frame({ dport: 81 })).retval, TC_ACT_OK);
      assert.equal([...fe.maps.iterateOrphans()].length, 0);
    });

    test(`${v}: a closing entry past its linger becomes an orphan (dropped, not passed up to be reset)`, () => {
      on();
      const flow = { family: n.family, clientAddress: n.client, clientPort: 41002 };
      fe.maps.putFlow(flow, { address: n.vip, port: 80 }, { verdict: 'closing', backend: 0, flowId: 5, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 1n });
      assert.equal(progTestRun(fe.programFd, frame({ sport: 41002 })).retval, TC_ACT_SHOT);
      assert.equal(fe.maps.getFlow(flow, { address: n.vip, port: 80 }), undefined);
      const all = [...fe.maps.iterateOrphans()];
      assert.deepEqual(all.map((o) => o.flow), [flow]);
      fe.maps.deleteOrphan(flow, { address: n.vip, port: 80 });
    });

    test(`${v}: a flow with an entry is not an orphan`, () => {
      on();
      const flow = { family: n.family, clientAddress: n.client, clientPort: 41001 };
      fe.maps.putFlow(flow, { address: n.vip, port: 80 }, { verdict: 'hold', backend: 0, flowId: 0, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n });
      assert.equal(progTestRun(fe.programFd, frame({ sport: 41001 })).retval, TC_ACT_SHOT);
      assert.equal([...fe.maps.iterateOrphans()].length, 0);
      fe.maps.deleteFlow(flow, { address: n.vip, port: 80 });
    });
  }
});
