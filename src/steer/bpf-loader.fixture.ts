// Run inside a network namespace by bpf-loader.test.ts (as root): loads the data plane on a device and prints one
// JSON line. `fresh` leaves without closing anything (as a killed process would); `adopt` comes back, reads the
// state the first process left, then closes for good.
//   [BATON_ATTACH=tc] node --import tsx src/steer/bpf-loader.fixture.ts fresh|adopt <device> <pinDir> <backendDevice>
// The routed test uses: `frontend-up`/`backend-up` (load fresh, leave attached), `steer` (adopt, add an encap
// back-end and a forwarded flow), `decap` (adopt, add the decap entry), `counters` (adopt, print slot 0's).
//   ... steer <device> <pinDir> <client> <clientPort> <vip> <vipPort> <backend|next hop> <local> <flowId> [encap|l2]
//   ... decap <device> <pinDir> <frontend> <flowId> <client> <clientPort> <vip> <vipPort>
import { existsSync, readdirSync } from 'node:fs';
import { type AttachMode, loadBackendDataplane, loadFrontendDataplane, tcAttachedProgram } from './bpf-loader.ts';
import type { FlowKey } from './types.ts';

const [mode, device = 'bt0', pinDir = '/sys/fs/bpf/baton-test', beDevice = device] = process.argv.slice(2);
const flow: FlowKey = { family: 4, clientAddress: '10.1.2.3', clientPort: 40000 };
const flow6: FlowKey = { family: 6, clientAddress: '2001:db8::7', clientPort: 40001 };
const vip = { address: '10.0.0.100', port: 80 };
const vip6 = { address: '2001:db8::100', port: 80 };
const out: Record<string, unknown> = {};
const attachMode: AttachMode = process.env.BATON_ATTACH === 'tc' ? 'tc' : 'auto';

if (mode === 'fresh') {
  const dp = loadFrontendDataplane({ ifname: device, pinDir: `${pinDir}/fe`, maxFlows: 1024, adopt: false, attachMode });
  out.attach = dp.attach;
  out.adopted = dp.adopted;
  out.mountedBpffs = dp.mountedBpffs ?? null;
  dp.maps.setBackend(3, { mode: 'l2', family: 4, ifindex: 0, address: '10.0.0.3' });
  dp.maps.putFlow(flow, vip, { verdict: 'forward', backend: 3, flowId: 77, handoffId: 5n, lastSeenNs: 0n, deadlineNs: 0n });
  dp.maps.putFlow(flow6, vip6, { verdict: 'hold', backend: 0, flowId: 0, handoffId: 6n, lastSeenNs: 0n, deadlineNs: 0n });
  out.flow = dp.maps.getFlow(flow, vip);
  const be = loadBackendDataplane({ ifname: beDevice, pinDir: `${pinDir}/be`, adopt: false, attachMode });
  be.maps.putDecap({ family: 4, frontend: '10.0.0.1', flowId: 77, client: '10.1.2.3', clientPort: 40000, vip: '10.0.0.100', vipPort: 80 });
  out.backendAttach = be.attach;
  out.pins = readdirSync(`${pinDir}/fe`).sort();
  out.tcProg = tcAttachedProgram(device) ?? null;
} else if (mode === 'adopt') {
  const dp = loadFrontendDataplane({ ifname: device, pinDir: `${pinDir}/fe`, maxFlows: 4096, adopt: true, attachMode });
  out.tcProg = tcAttachedProgram(device) ?? null;
  out.attach = dp.attach;
  out.adopted = dp.adopted;
  out.flow = dp.maps.getFlow(flow, vip);
  out.flows = [...dp.maps.iterateFlows()].map((e) => `${e.state.verdict} ${e.flow.clientAddress}:${e.flow.clientPort} -> ${e.vip.address}:${e.vip.port}`).sort();
  out.backend3 = dp.maps.getBackend(3);
  out.deleted = dp.maps.deleteFlow(flow, vip);
  out.deletedAgain = dp.maps.deleteFlow(flow, vip);
  const be = loadBackendDataplane({ ifname: beDevice, pinDir: `${pinDir}/be`, adopt: true, attachMode });
  out.backendAdopted = be.adopted;
  out.decap = [...be.maps.iterateDecap()].map((e) => `${e.frontend}#${e.flowId} -> ${e.client}:${e.clientPort}`);
  dp.close();
  be.close();
  out.pinsAfterClose = existsSync(`${pinDir}/fe`) || existsSync(`${pinDir}/be`);
  out.tcProgAfterClose = tcAttachedProgram(device) ?? null;
} else if (mode === 'frontend-up') {
  out.attach = loadFrontendDataplane({ ifname: device, pinDir, adopt: false, maxFlows: 1024 }).attach;
} else if (mode === 'backend-up') {
  out.attach = loadBackendDataplane({ ifname: device, pinDir, adopt: false, maxFlows: 1024 }).attach;
} else if (mode === 'steer') {
  const [client = '', cport = '', vipAddr = '', vport = '', backend = '', local = '', flowId = '', fwd = 'encap'] = process.argv.slice(5);
  const dp = loadFrontendDataplane({ ifname: device, pinDir, adopt: true });
  out.adopted = dp.adopted;
  const family = client.includes(':') ? 6 : 4;
  dp.maps.setBackend(0, fwd === 'l2' ? { mode: 'l2', family, ifindex: 0, address: backend } : { mode: 'encap', family, ifindex: 0, address: backend, local });
  dp.maps.putFlow({ family, clientAddress: client, clientPort: Number(cport) }, { address: vipAddr, port: Number(vport) }, {
    verdict: 'forward', backend: 0, flowId: Number(flowId), handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n,
  });
  dp.close({ keep: true });
} else if (mode === 'decap') {
  const [frontend = '', flowId = '', client = '', cport = '', vipAddr = '', vport = ''] = process.argv.slice(5);
  const dp = loadBackendDataplane({ ifname: device, pinDir, adopt: true });
  out.adopted = dp.adopted;
  dp.maps.putDecap({ family: client.includes(':') ? 6 : 4, frontend, flowId: Number(flowId), client, clientPort: Number(cport), vip: vipAddr, vipPort: Number(vport) });
  dp.close({ keep: true });
} else if (mode === 'counters') {
  const dp = loadFrontendDataplane({ ifname: device, pinDir, adopt: true });
  out.counters = dp.maps.readCounters(0);
  out.flows = [...dp.maps.iterateFlows()].map((e) => ({ verdict: e.state.verdict, lastSeenNs: e.state.lastSeenNs > 0n }));
  dp.close({ keep: true });
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.stdout.write(`${JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
