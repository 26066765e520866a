// Run inside a network namespace by nft-netlink.test.ts (as root): exercises NftSteering over
// netlink against the kernel and prints one JSON line. `bench` mode times the transports.
//   node --import tsx src/steer/nft-netlink.fixture.ts scenario <device>
//   node --import tsx src/steer/nft-netlink.fixture.ts bench <device> <netlink|nft> [ops]
import { execFileSync } from 'node:child_process';
import { NftSteering } from './nft.ts';
import { NftNetlink, NftNetlinkError } from './nft-netlink.ts';
import type { FlowKey, SteerEntry } from './types.ts';

const nft = (...args: string[]): string => execFileSync('nft', args, { encoding: 'utf8' });
const show = (es: SteerEntry[]): string[] =>
  es.map((e) => `${e.verdict}${e.backend ? `:${e.backend}` : ''} ${e.flow.clientAddress} . ${e.flow.clientPort}`).sort();

const flow4 = (a: string, p: number): FlowKey => ({ family: 4, clientAddress: a, clientPort: p });
const flow6 = (a: string, p: number): FlowKey => ({ family: 6, clientAddress: a, clientPort: p });

async function scenario(device: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const s = await NftSteering.create({
    table: 'btnl4', device, vip: '10.9.0.1', port: 80, family: 4, lingerMs: 1500,
    backends: [{ id: 'b0', address: '10.9.0.2' }, { id: 'b1', address: '10.9.0.3' }],
  });
  const a = flow4('10.1.2.3', 4660);
  const b = flow4('192.168.255.1', 65535);
  const c = flow4('172.16.0.9', 1);
  await s.hold(a);
  await s.hold(b);
  await s.hold(a); // re-adding is not an error
  out.held = show(await s.list());
  out.hold4Text = nft('list', 'set', 'netdev', 'btnl4', 'hold4');
  await s.forward(a, 'b1', { handoffId: 1n, flowId: 1 });
  out.forwarded = show(await s.list());
  await s.unhold(b);
  await s.unhold(b); // already gone: fine
  await s.forward(c, 'b0', { handoffId: 2n, flowId: 2 }); // never held: the missing hold element does not undo the forward
  out.unheld = show(await s.list());
  await s.release(a, 1n);
  out.released = show(await s.list());
  out.closingText = nft('list', 'set', 'netdev', 'btnl4', 'closing4_1');

  const nl = NftNetlink.open();
  out.destroySupported = nl.destroySupported;
  // Added by nft, deleted over netlink.
  nft('add', 'element', 'netdev', 'btnl4', 'hold4', '{ 203.0.113.7 . 8080 }');
  nl.apply([{ kind: 'delete', table: 'btnl4', set: 'hold4', family: 4, address: '203.0.113.7', port: 8080 }]);
  out.afterNftAddNlDelete = nft('list', 'set', 'netdev', 'btnl4', 'hold4');
  // A failing op rolls back the whole batch.
  try {
    nl.apply([
      { kind: 'add', table: 'btnl4', set: 'hold4', family: 4, address: '198.51.100.1', port: 1000 },
      { kind: 'add', table: 'btnl4', set: 'nosuchset', family: 4, address: '198.51.100.1', port: 1000 },
    ]);
    out.error = 'none';
  } catch (e) {
    const err = e as NftNetlinkError;
    out.error = { name: err.name, code: err.code, errnoName: err.errnoName, set: err.op?.set, message: err.message };
  }
  // Strict delete of a missing element fails with ENOENT.
  try {
    nl.apply([{ kind: 'delete', table: 'btnl4', set: 'hold4', family: 4, address: '198.51.100.2', port: 2 }]);
    out.strictDelete = 'none';
  } catch (e) {
    out.strictDelete = (e as NftNetlinkError).errnoName;
  }
  out.afterRollback = show(await s.list());
  nl.close();
  // The pre-6.3 path: DELSETELEM, retried without the delete that found nothing.
  const old = NftNetlink.open({ useDestroy: false });
  old.apply([
    { kind: 'add', table: 'btnl4', set: 'live4_0', family: 4, address: '198.51.100.3', port: 3 },
    { kind: 'delete', table: 'btnl4', set: 'hold4', family: 4, address: '198.51.100.3', port: 3, missingOk: true },
  ]);
  old.close();
  out.fallback = show(await s.list());
  await s.close();

  const s6 = await NftSteering.create({
    table: 'btnl6', device, vip: '2001:db8::1', port: 443, family: 6,
    backends: [{ id: 'b0', address: '2001:db8::2' }],
  });
  const d = flow6('2001:db8:0:1::abcd', 50000);
  await s6.hold(d);
  out.held6 = show(await s6.list());
  out.hold6Text = nft('list', 'set', 'netdev', 'btnl6', 'hold6');
  await s6.forward(d, 'b0', { handoffId: 3n, flowId: 3 });
  out.forwarded6 = show(await s6.list());
  await s6.close();
  out.tablesAfterClose = nft('list', 'tables');
  return out;
}

async function bench(device: string, transport: 'netlink' | 'nft', n: number): Promise<Record<string, unknown>> {
  const s = await NftSteering.create({
    table: 'btbench', device, vip: '10.9.0.1', port: 80, family: 4, transport,
    backends: [{ id: 'b0', address: '10.9.0.2' }, { id: 'b1', address: '10.9.0.3' }],
  });
  const flows = Array.from({ length: n }, (_, i) => flow4(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1024 + (i % 60000)));
  const time = async (f: (x: FlowKey, i: number) => Promise<void>): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < flows.length; i++) await f(flows[i]!, i); // one at a time: latency, not pipelining
    return Number(process.hrtime.bigint() - t0) / 1000 / flows.length;
  };
  const holdUs = await time((x) => s.hold(x));
  const forwardUs = await time((x, i) => s.forward(x, i % 2 ? 'b1' : 'b0', { handoffId: BigInt(i + 1), flowId: i + 1 }));
  const releaseUs = await time((x, i) => s.release(x, BigInt(i + 1)));
  const entries = (await s.list()).length;
  await s.close();
  const r = (v: number): number => Math.round(v * 10) / 10;
  return { transport, ops: n, holdUs: r(holdUs), forwardUs: r(forwardUs), releaseUs: r(releaseUs), entries };
}

const [mode, device = 'bt0', transport = 'netlink', ops = '2000'] = process.argv.slice(2);
const result =
  mode === 'bench'
    ? await bench(device, transport === 'nft' ? 'nft' : 'netlink', Number(ops))
    : await scenario(device);
process.stdout.write(`${JSON.stringify(result)}\n`);
