// Run inside a network namespace by bpf-loader.test.ts (as root): loads the data plane on a device and prints one
// JSON line. `fresh` leaves without closing anything (as a killed process would); `adopt` comes back, reads the
// state the first process left, then closes for good.
//   node --import tsx src/steer/bpf-loader.fixture.ts fresh|adopt <device> <pinDir>
import { existsSync, readdirSync } from 'node:fs';
import { loadBackendDataplane, loadFrontendDataplane } from './bpf-loader.ts';
import type { FlowKey } from './types.ts';

const [mode, device = 'bt0', pinDir = '/sys/fs/bpf/baton-test'] = process.argv.slice(2);
const flow: FlowKey = { family: 4, clientAddress: '10.1.2.3', clientPort: 40000 };
const flow6: FlowKey = { family: 6, clientAddress: '2001:db8::7', clientPort: 40001 };
const vip = { address: '10.0.0.100', port: 80 };
const vip6 = { address: '2001:db8::100', port: 80 };
const out: Record<string, unknown> = {};

if (mode === 'fresh') {
  const dp = loadFrontendDataplane({ ifname: device, pinDir: `${pinDir}/fe`, maxFlows: 1024, adopt: false });
  out.attach = dp.attach;
  out.adopted = dp.adopted;
  dp.maps.setBackend(3, { mode: 'l2', family: 4, ifindex: 0, address: '10.0.0.3' });
  dp.maps.putFlow(flow, vip, { verdict: 'forward', backend: 3, flowId: 77, handoffId: 5n, lastSeenNs: 0n, deadlineNs: 0n });
  dp.maps.putFlow(flow6, vip6, { verdict: 'hold', backend: 0, flowId: 0, handoffId: 6n, lastSeenNs: 0n, deadlineNs: 0n });
  out.flow = dp.maps.getFlow(flow, vip);
  const be = loadBackendDataplane({ ifname: device, pinDir: `${pinDir}/be`, adopt: false });
  be.maps.putDecap({ family: 4, frontend: '10.0.0.1', flowId: 77, client: '10.1.2.3', clientPort: 40000, vip: '10.0.0.100', vipPort: 80 });
  out.backendAttach = be.attach;
  out.pins = readdirSync(`${pinDir}/fe`).sort();
} else if (mode === 'adopt') {
  const dp = loadFrontendDataplane({ ifname: device, pinDir: `${pinDir}/fe`, maxFlows: 4096, adopt: true });
  out.attach = dp.attach;
  out.adopted = dp.adopted;
  out.flow = dp.maps.getFlow(flow, vip);
  out.flows = [...dp.maps.iterateFlows()].map((e) => `${e.state.verdict} ${e.flow.clientAddress}:${e.flow.clientPort} -> ${e.vip.address}:${e.vip.port}`).sort();
  out.backend3 = dp.maps.getBackend(3);
  out.deleted = dp.maps.deleteFlow(flow, vip);
  out.deletedAgain = dp.maps.deleteFlow(flow, vip);
  const be = loadBackendDataplane({ ifname: device, pinDir: `${pinDir}/be`, adopt: true });
  out.backendAdopted = be.adopted;
  out.decap = [...be.maps.iterateDecap()].map((e) => `${e.frontend}#${e.flowId} -> ${e.client}:${e.clientPort}`);
  dp.close();
  be.close();
  out.pinsAfterClose = existsSync(`${pinDir}/fe`) || existsSync(`${pinDir}/be`);
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.stdout.write(`${JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
