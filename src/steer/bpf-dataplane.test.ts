// Data-plane fixtures run through BPF_PROG_TEST_RUN (as root): for each table row, the map state is written, the
// input frame fed to the program, and the verdict, the output bytes and the state afterwards checked. IPv4 and
// IPv6. Encapsulated frames must equal, byte for byte, a frame built from scratch with checksums computed in full
// by the reference in wire/packet.ts, so the programs' incremental checksum updates are checked exactly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { progTestRun } from '../sys/libbpf.ts';
import { emitTcpFrame, parseTcpFrame, type TcpFrame } from '../wire/packet.ts';
import { type DetachedDataplane, loadBackendDetached, loadFrontendDetached } from './bpf-loader.ts';
import type { BackendMaps, BackendSlot, DecapEntry, FlowState, FrontendMaps, Vip } from './bpf-maps.ts';
import type { FlowKey } from './types.ts';

const root = process.getuid?.() === 0;
const haveLibbpf = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libbpf.so.1 "']).status === 0;
const skip = !root ? 'needs root (BPF_PROG_LOAD)' : !haveLibbpf ? 'needs libbpf1' : false;

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const PAST = 1n; // a deadline long gone (bpf_ktime_get_ns counts from boot)
const FUTURE = 1n << 62n;
const FLOW_ID = 0x1234abcd; // encapsulated as source port 0x1234, destination port 0xabcd

interface Net {
  readonly family: 4 | 6;
  readonly client: string;
  readonly vip: string;
  readonly backend: string;
  readonly local: string;
  readonly other: string;
}
const NETS: readonly Net[] = [
  { family: 4, client: '198.51.100.7', vip: '203.0.113.10', backend: '192.0.2.20', local: '192.0.2.1', other: '198.51.100.8' },
  { family: 6, client: '2001:db8:1::7', vip: '2001:db8:2::10', backend: '2001:db8:3::20', local: '2001:db8:3::1', other: '2001:db8:1::8' },
];

interface Fixture {
  readonly description: string;
  readonly program: 'frontend' | 'backend';
  readonly flows?: readonly { flow: FlowKey; vip: Vip; state: FlowState }[];
  readonly backends?: readonly [number, BackendSlot][];
  readonly decap?: readonly DecapEntry[];
  readonly input: Uint8Array;
  readonly verdict: number;
  /** Expected output frame; 'unchanged' for the input itself. */
  readonly output: Uint8Array | 'unchanged';
  /** The first flow's entry is still there afterwards (frontend) or not. */
  readonly flowRemains?: boolean;
  /** Packets counted for back-end slot 0 afterwards. */
  readonly counted?: number;
}

const payload = new TextEncoder().encode('GET /x HTTP/1.1\r\nHost: a\r\n\r\n!'); // odd length on purpose

function fixtures(n: Net): Fixture[] {
  const flow: FlowKey = { family: n.family, clientAddress: n.client, clientPort: 40000 };
  const vip: Vip = { address: n.vip, port: 80 };
  const base: TcpFrame = { family: n.family, src: n.client, dst: n.vip, sport: 40000, dport: 80, seq: 0xfffffff0, ackNum: 7, flags: { ack: true, psh: true }, payload };
  const pkt = emitTcpFrame(base);
  const syn = emitTcpFrame({ ...base, flags: { syn: true }, payload: new Uint8Array(0) });
  const encapsulated = emitTcpFrame({ ...base, src: n.local, dst: n.backend, sport: FLOW_ID >>> 16, dport: FLOW_ID & 0xffff });
  const st = (verdict: FlowState['verdict'], deadlineNs = 0n): FlowState => ({ verdict, backend: 0, flowId: FLOW_ID, handoffId: 9n, lastSeenNs: 0n, deadlineNs });
  const l2: [number, BackendSlot] = [0, { mode: 'l2', family: n.family, ifindex: 1, address: n.backend }];
  const encap: [number, BackendSlot] = [0, { mode: 'encap', family: n.family, ifindex: 1, address: n.backend, local: n.local }];
  const decap: DecapEntry = { family: n.family, frontend: n.local, flowId: FLOW_ID, client: n.client, clientPort: 40000, vip: n.vip, vipPort: 80 };
  const v = `IPv${n.family}`;
  return [
    { description: `${v} unknown tuple passes untouched`, program: 'frontend', flows: [{ flow: { ...flow, clientAddress: n.other }, vip, state: st('hold') }], input: pkt, verdict: TC_ACT_OK, output: 'unchanged' },
    { description: `${v} hold drops`, program: 'frontend', flows: [{ flow, vip, state: st('hold') }], input: pkt, verdict: TC_ACT_SHOT, output: 'unchanged', flowRemains: true },
    { description: `${v} hold before its deadline drops`, program: 'frontend', flows: [{ flow, vip, state: st('hold', FUTURE) }], input: pkt, verdict: TC_ACT_SHOT, output: 'unchanged', flowRemains: true },
    { description: `${v} hold past its deadline is deleted and passes`, program: 'frontend', flows: [{ flow, vip, state: st('hold', PAST) }], input: pkt, verdict: TC_ACT_OK, output: 'unchanged', flowRemains: false },
    { description: `${v} forward l2 redirects with the bytes untouched and counts`, program: 'frontend', flows: [{ flow, vip, state: st('forward') }], backends: [l2], input: pkt, verdict: TC_ACT_REDIRECT, output: 'unchanged', flowRemains: true, counted: 1 },
    { description: `${v} forward encap rewrites addresses and ports, checksums exact`, program: 'frontend', flows: [{ flow, vip, state: st('forward') }], backends: [encap], input: pkt, verdict: TC_ACT_REDIRECT, output: encapsulated, flowRemains: true, counted: 1 },
    { description: `${v} forward to an unused slot drops`, program: 'frontend', flows: [{ flow, vip, state: st('forward') }], input: pkt, verdict: TC_ACT_SHOT, output: 'unchanged', counted: 0 },
    { description: `${v} bare SYN on a known tuple clears it and passes`, program: 'frontend', flows: [{ flow, vip, state: st('forward') }], backends: [l2], input: syn, verdict: TC_ACT_OK, output: 'unchanged', flowRemains: false, counted: 0 },
    { description: `${v} closing before its deadline still forwards`, program: 'frontend', flows: [{ flow, vip, state: st('closing', FUTURE) }], backends: [encap], input: pkt, verdict: TC_ACT_REDIRECT, output: encapsulated, flowRemains: true, counted: 1 },
    { description: `${v} closing past its deadline is deleted and passes`, program: 'frontend', flows: [{ flow, vip, state: st('closing', PAST) }], backends: [encap], input: pkt, verdict: TC_ACT_OK, output: 'unchanged', flowRemains: false, counted: 0 },
    { description: `${v} decap restores the client's packet exactly`, program: 'backend', decap: [decap], input: encapsulated, verdict: TC_ACT_OK, output: pkt },
    { description: `${v} decap leaves an unknown flow id untouched`, program: 'backend', decap: [{ ...decap, flowId: FLOW_ID + 1 }], input: encapsulated, verdict: TC_ACT_OK, output: 'unchanged' },
    { description: `${v} decap leaves a packet from another source untouched`, program: 'backend', decap: [{ ...decap, frontend: n.other }], input: encapsulated, verdict: TC_ACT_OK, output: 'unchanged' },
    { description: `${v} decap ignores ephemeral source ports (never a flow id)`, program: 'backend', decap: [decap], input: emitTcpFrame({ ...base, src: n.local, dst: n.backend, sport: 0x9234, dport: 0xabcd }), verdict: TC_ACT_OK, output: 'unchanged' },
  ];
}

function clearFrontend(m: FrontendMaps): void {
  for (const e of [...m.iterateFlows()]) m.deleteFlow(e.flow, e.vip);
  for (let i = 0; i < 4; i++) {
    m.clearBackend(i);
    m.resetCounters(i);
  }
}

function clearBackend(m: BackendMaps): void {
  for (const e of [...m.iterateDecap()]) m.deleteDecap(e);
}

describe('data plane fixtures (BPF_PROG_TEST_RUN)', { skip }, () => {
  let fe: DetachedDataplane<FrontendMaps>;
  let be: DetachedDataplane<BackendMaps>;
  before(() => {
    fe = loadFrontendDetached({ maxFlows: 1024 });
    be = loadBackendDetached({ maxFlows: 1024 });
  });
  after(() => {
    fe?.close();
    be?.close();
  });

  for (const n of NETS) {
    for (const f of fixtures(n)) {
      test(f.description, () => {
        clearFrontend(fe.maps);
        clearBackend(be.maps);
        for (const e of f.flows ?? []) fe.maps.putFlow(e.flow, e.vip, e.state);
        for (const [i, s] of f.backends ?? []) fe.maps.setBackend(i, s);
        for (const d of f.decap ?? []) be.maps.putDecap(d);
        const input = Buffer.from(f.input);
        const r = progTestRun(f.program === 'frontend' ? fe.programFd : be.programFd, input);
        assert.equal(r.retval, f.verdict, 'verdict');
        const want = Buffer.from(f.output === 'unchanged' ? f.input : f.output);
        assert.equal(r.data.toString('hex'), want.toString('hex'), 'output bytes');
        const parsed = parseTcpFrame(r.data);
        assert.ok(parsed.ipChecksumOk, 'IPv4 header checksum');
        assert.ok(parsed.tcpChecksumOk, 'TCP checksum');
        const first = f.flows?.[0];
        if (f.flowRemains !== undefined && first) {
          const now = fe.maps.getFlow(first.flow, first.vip);
          assert.equal(now !== undefined, f.flowRemains, 'entry remains');
          if (now && now.verdict === 'forward') assert.ok(now.lastSeenNs > 0n, 'last_seen refreshed');
        }
        if (f.counted !== undefined) {
          const c = fe.maps.readCounters(0);
          assert.equal(c.packets, BigInt(f.counted), 'packets counted');
          assert.equal(c.bytes, BigInt(f.counted * f.input.length), 'bytes counted');
        }
      });
    }

    test(`IPv${n.family} encap then decap gives back the original frame`, () => {
      clearFrontend(fe.maps);
      clearBackend(be.maps);
      const flow: FlowKey = { family: n.family, clientAddress: n.client, clientPort: 51000 };
      fe.maps.putFlow(flow, { address: n.vip, port: 443 }, { verdict: 'forward', backend: 2, flowId: 77, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n });
      fe.maps.setBackend(2, { mode: 'encap', family: n.family, ifindex: 1, address: n.backend, local: n.local });
      be.maps.putDecap({ family: n.family, frontend: n.local, flowId: 77, client: n.client, clientPort: 51000, vip: n.vip, vipPort: 443 });
      for (const flags of [{ ack: true }, { ack: true, fin: true }, { rst: true }]) {
        const orig = Buffer.from(emitTcpFrame({ family: n.family, src: n.client, dst: n.vip, sport: 51000, dport: 443, seq: 5, ackNum: 0xffffffff, flags, payload: new Uint8Array([1, 2, 3]) }));
        const there = progTestRun(fe.programFd, orig);
        assert.equal(there.retval, TC_ACT_REDIRECT);
        const p = parseTcpFrame(there.data);
        assert.deepEqual([p.src, p.dst, p.sport, p.dport, p.tcpChecksumOk], [n.local, n.backend, 0, 77, true]);
        const back = progTestRun(be.programFd, there.data);
        assert.equal(back.data.toString('hex'), orig.toString('hex'));
      }
    });
  }

  test('an encap back-end of the other family drops the packet', () => {
    clearFrontend(fe.maps);
    const flow: FlowKey = { family: 4, clientAddress: '198.51.100.7', clientPort: 1000 };
    fe.maps.putFlow(flow, { address: '203.0.113.10', port: 80 }, { verdict: 'forward', backend: 0, flowId: 5, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n });
    fe.maps.setBackend(0, { mode: 'encap', family: 6, ifindex: 1, address: '2001:db8::2', local: '2001:db8::1' });
    const r = progTestRun(fe.programFd, Buffer.from(emitTcpFrame({ family: 4, src: '198.51.100.7', dst: '203.0.113.10', sport: 1000, dport: 80, flags: { ack: true } })));
    assert.equal(r.retval, TC_ACT_SHOT);
  });

  test('non-TCP traffic passes untouched', () => {
    const udp = Buffer.from(emitTcpFrame({ family: 4, src: '198.51.100.7', dst: '203.0.113.10', sport: 1000, dport: 80, flags: { ack: true } }));
    udp[14 + 9] = 17; // protocol UDP (checksum now wrong: the program must not care)
    const r = progTestRun(fe.programFd, udp);
    assert.equal(r.retval, TC_ACT_OK);
    assert.equal(r.data.toString('hex'), udp.toString('hex'));
  });
});
