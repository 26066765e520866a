// Data-plane micro-benchmark (root): ns per packet of each BPF program through BPF_PROG_TEST_RUN `repeat`, with
// 100k flows in the map and 64 back-ends, and µs per map operation from TypeScript (one bpf() call each).
//   npm run bench:bpf [-- --flows 100000 --repeat 200000 --json]
//
// BPF_PROG_TEST_RUN runs the program `repeat` times on the same skb, so a rewrite persists into the next run. To
// time a full encapsulation (or decapsulation) on every run, the map also holds the mirror entry that rewrites the
// encapsulated packet back into the original: each run is a hit that rewrites four fields and two checksums.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type DetachedDataplane, loadBackendDetached, loadFrontendDetached } from '../src/steer/bpf-loader.ts';
import type { BackendMaps, FlowState, FrontendMaps } from '../src/steer/bpf-maps.ts';
import type { FlowKey } from '../src/steer/types.ts';
import { mapLookup, mapUpdate, progTestRun } from '../src/sys/libbpf.ts';
import { emitTcpFrame } from '../src/wire/packet.ts';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '100000' },
    repeat: { type: 'string', default: '200000' },
    json: { type: 'boolean', default: false },
  },
});
const FLOWS = Number(args.flows);
const REPEAT = Number(args.repeat);
const BACKENDS = 64;

const CLIENT = '198.51.100.7';
const VIP = '203.0.113.10';
const LOCAL = '192.0.2.1';
const BACKEND = '192.0.2.20';
const CPORT = 20000; // below 32768, so the mirror decap entry's flow id is a valid one
const VPORT = 80;
const FLOW_ID = 0x1234abcd;

interface Row {
  readonly what: string;
  readonly value: number;
  readonly unit: string;
}

/** Spreads the synthetic flows over 10.x.y.z clients, all to the VIP. */
function syntheticFlow(i: number): FlowKey {
  return { family: 4, clientAddress: `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`, clientPort: 1024 + (i % 60000) };
}

function timeOps(n: number, op: (i: number) => void): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) op(i);
  return ((performance.now() - t0) * 1000) / n;
}

function fillFrontend(m: FrontendMaps, rows: Row[]): void {
  for (let b = 0; b < BACKENDS; b++) {
    m.setBackend(b, b % 2 ? { mode: 'l2', family: 4, ifindex: 1, address: `192.0.2.${100 + b}` } : { mode: 'encap', family: 4, ifindex: 1, address: `192.0.2.${100 + b}`, local: LOCAL });
  }
  const vip = { address: VIP, port: VPORT };
  const state = (i: number) => ({ verdict: 'forward', backend: i % BACKENDS, flowId: i + 1, handoffId: BigInt(i), lastSeenNs: 0n, deadlineNs: 0n }) as const;
  // keys and values built before timing: the rows measure codec + syscall, not the bench's string building
  const flows = Array.from({ length: FLOWS }, (_, i) => syntheticFlow(i));
  const states = Array.from({ length: FLOWS }, (_, i) => state(i));
  rows.push({ what: `putFlow (encode + update), ${FLOWS} flows`, value: timeOps(FLOWS, (i) => m.putFlow(flows[i] as FlowKey, vip, states[i] as FlowState)), unit: 'µs/op' });
  rows.push({ what: 'getFlow (encode + lookup + decode)', value: timeOps(FLOWS, (i) => m.getFlow(flows[i] as FlowKey, vip)), unit: 'µs/op' });
  const keys = Array.from({ length: 10000 }, (_, i) => m.codecs.encodeFlowKey(syntheticFlow(i), vip));
  const value = m.codecs.encodeFlowState(state(0));
  const out = Buffer.alloc(m.codecs.flowStateSize);
  const fd = m.fds.flows;
  rows.push({ what: 'bpf_map_update_elem only (pre-encoded)', value: timeOps(keys.length, (i) => mapUpdate(fd, keys[i] as Buffer, value)), unit: 'µs/op' });
  rows.push({ what: 'bpf_map_lookup_elem only (pre-encoded)', value: timeOps(keys.length, (i) => mapLookup(fd, keys[i] as Buffer, out)), unit: 'µs/op' });
}

function frame(src: string, dst: string, sport: number, dport: number): Buffer {
  return Buffer.from(emitTcpFrame({ family: 4, src, dst, sport, dport, seq: 1, ackNum: 1, flags: { ack: true }, payload: new Uint8Array(100) }));
}

function runNs(programFd: number, pkt: Buffer): number {
  progTestRun(programFd, pkt, { repeat: 1000 }); // warm
  return progTestRun(programFd, pkt, { repeat: REPEAT }).durationNs;
}

function benchFrontend(fe: DetachedDataplane<FrontendMaps>, rows: Row[]): void {
  const m = fe.maps;
  const vip = { address: VIP, port: VPORT };
  const flow: FlowKey = { family: 4, clientAddress: CLIENT, clientPort: CPORT };
  const pkt = frame(CLIENT, VIP, CPORT, VPORT);
  rows.push({ what: 'frontend: unknown tuple (pass)', value: runNs(fe.programFd, pkt), unit: 'ns/pkt' });
  m.putFlow(flow, vip, { verdict: 'hold', backend: 0, flowId: FLOW_ID, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n });
  rows.push({ what: 'frontend: hold (drop)', value: runNs(fe.programFd, pkt), unit: 'ns/pkt' });
  m.putFlow(flow, vip, { verdict: 'forward', backend: 1, flowId: FLOW_ID, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n });
  rows.push({ what: 'frontend: forward l2 (redirect_neigh)', value: runNs(fe.programFd, pkt), unit: 'ns/pkt' });
  // encap: slot 0 sends client->vip to LOCAL->BACKEND; the mirror entry (slot 62, also encap) turns it back
  m.setBackend(0, { mode: 'encap', family: 4, ifindex: 1, address: BACKEND, local: LOCAL });
  m.setBackend(62, { mode: 'encap', family: 4, ifindex: 1, address: VIP, local: CLIENT });
  m.putFlow(flow, vip, { verdict: 'forward', backend: 0, flowId: FLOW_ID, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n });
  m.putFlow({ family: 4, clientAddress: LOCAL, clientPort: FLOW_ID >>> 16 }, { address: BACKEND, port: FLOW_ID & 0xffff }, {
    verdict: 'forward', backend: 62, flowId: ((CPORT << 16) | VPORT) >>> 0, handoffId: 2n, lastSeenNs: 0n, deadlineNs: 0n,
  });
  rows.push({ what: 'frontend: forward encap (rewrite + csum + redirect_neigh)', value: runNs(fe.programFd, pkt), unit: 'ns/pkt' });
}

function benchBackend(be: DetachedDataplane<BackendMaps>, rows: Row[]): void {
  const m = be.maps;
  for (let i = 0; i < FLOWS; i++) {
    m.putDecap({ family: 4, frontend: LOCAL, flowId: 1_000_000 + i, client: syntheticFlow(i).clientAddress, clientPort: syntheticFlow(i).clientPort, vip: VIP, vipPort: VPORT });
  }
  const encapsulated = frame(LOCAL, BACKEND, FLOW_ID >>> 16, FLOW_ID & 0xffff);
  rows.push({ what: 'backend: not encapsulated (pass)', value: runNs(be.programFd, frame(CLIENT, BACKEND, 40000, 80)), unit: 'ns/pkt' });
  rows.push({ what: 'backend: unknown flow id (pass)', value: runNs(be.programFd, encapsulated), unit: 'ns/pkt' });
  m.putDecap({ family: 4, frontend: LOCAL, flowId: FLOW_ID, client: CLIENT, clientPort: CPORT, vip: VIP, vipPort: VPORT });
  // mirror: the decapsulated packet (client -> vip, ports CPORT/VPORT) is turned back into the encapsulated one
  m.putDecap({ family: 4, frontend: CLIENT, flowId: ((CPORT << 16) | VPORT) >>> 0, client: LOCAL, clientPort: FLOW_ID >>> 16, vip: BACKEND, vipPort: FLOW_ID & 0xffff });
  rows.push({ what: 'backend: decap (rewrite + csum)', value: runNs(be.programFd, encapsulated), unit: 'ns/pkt' });
  const keys = Array.from({ length: FLOWS }, (_, i) => ({ family: 4 as const, frontend: LOCAL, flowId: 1_000_000 + i }));
  rows.push({ what: `deleteDecap (encode + delete), ${FLOWS} entries`, value: timeOps(FLOWS, (i) => m.deleteDecap(keys[i] as (typeof keys)[number])), unit: 'µs/op' });
}

function main(): void {
  if (process.getuid?.() !== 0) throw new Error('bench/bpf: needs root (BPF_PROG_LOAD)');
  const rows: Row[] = [];
  const fe = loadFrontendDetached({ maxFlows: Math.max(262144, FLOWS * 2) });
  const be = loadBackendDetached({ maxFlows: Math.max(262144, FLOWS * 2) });
  try {
    fillFrontend(fe.maps, rows);
    benchFrontend(fe, rows);
    const vip = { address: VIP, port: VPORT };
    const flows = Array.from({ length: FLOWS }, (_, i) => syntheticFlow(i));
    rows.push({ what: `deleteFlow (encode + delete), ${FLOWS} flows`, value: timeOps(FLOWS, (i) => fe.maps.deleteFlow(flows[i] as FlowKey, vip)), unit: 'µs/op' });
    benchBackend(be, rows);
  } finally {
    fe.close();
    be.close();
  }
  const width = Math.max(...rows.map((r) => r.what.length));
  process.stdout.write(`| ${'what'.padEnd(width)} | value |\n|${'-'.repeat(width + 2)}|-------|\n`);
  for (const r of rows) process.stdout.write(`| ${r.what.padEnd(width)} | ${r.value.toFixed(r.unit === 'ns/pkt' ? 0 : 2)} ${r.unit} |\n`);
  if (args.json) process.stdout.write(`${JSON.stringify({ flows: FLOWS, backends: BACKENDS, repeat: REPEAT, rows })}\n`);
}

main();
