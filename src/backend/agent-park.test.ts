// The agent's dispatch of PARK (docs/moves.md, "Lossless moves"): expect begins the tuple at its park gate,
// discard discards it; an agent without a gate ignores both and keeps the channel up. Real control channel on
// loopback, a fake gate: no root needed.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test, type TestContext } from 'node:test';
import { ControlClient } from '../control/client.ts';
import type { Message } from '../wire/frame.ts';
import { BackendAgent } from './agent.ts';
import type { ParkedFlow, ParkGate } from './park.ts';

const SECRET = 'agent-park-test-secret-0123456789';
const TUPLE = { family: 4 as const, client: { address: '192.0.2.10', port: 51234 }, vip: { address: '198.51.100.1', port: 80 } };

class FakeGate implements ParkGate {
  readonly lossless = true;
  readonly calls: string[] = [];
  guardVips(): void {}
  begin(f: ParkedFlow): void {
    this.calls.push(`begin ${f.client.address}:${f.client.port} ${f.vip.address}:${f.vip.port}`);
  }
  release(): number {
    return 0;
  }
  discard(f: ParkedFlow): void {
    this.calls.push(`discard ${f.client.address}:${f.client.port} ${f.vip.address}:${f.vip.port}`);
  }
  ended(f: ParkedFlow): void {
    this.calls.push(`ended ${f.client.address}:${f.client.port} ${f.vip.address}:${f.vip.port}`);
  }
  stats() {
    return { parked: 0, released: 0, dropped: 0, expired: 0, pending: 0, resets: 0, restored: 0 };
  }
  addEncapSource(): void {}
  removeEncapSource(): void {}
  close(): void {}
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

async function agentAndClient(t: TestContext, park: ParkGate | undefined): Promise<ControlClient> {
  const port = await freePort();
  const agent = await BackendAgent.start({
    name: 'b1', secret: SECRET, control: { host: '127.0.0.1', port }, deliver: () => undefined, requestRouting: false,
    ...(park !== undefined && { park }),
  });
  t.after(() => agent.close());
  const client = new ControlClient({
    secret: SECRET, address: { host: '127.0.0.1', port }, name: 'fe', backoff: { initialMs: 5, maxMs: 20 }, vips: () => [{ family: 4, ...TUPLE.vip }],
  });
  t.after(() => client.close());
  client.start();
  for (let i = 0; i < 200 && client.state !== 'up'; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(client.state, 'up');
  return client;
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond());
};

test('PARK expect begins the tuple at the gate, PARK discard discards it, in order', async (t) => {
  const gate = new FakeGate();
  const client = await agentAndClient(t, gate);
  const park = (action: 'expect' | 'discard'): Message => ({ kind: 'park', action, ...TUPLE });
  assert.equal(client.send(park('expect')), true);
  assert.equal(client.send(park('discard')), true);
  await until(() => gate.calls.length === 2);
  assert.deepEqual(gate.calls, ['begin 192.0.2.10:51234 198.51.100.1:80', 'discard 192.0.2.10:51234 198.51.100.1:80']);
});

test('an agent without a guard ignores PARK and keeps the channel up', async (t) => {
  const client = await agentAndClient(t, undefined);
  assert.equal(client.send({ kind: 'park', action: 'discard', ...TUPLE }), true);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(client.state, 'up');
  assert.equal(client.forwardFirst, false);
});
