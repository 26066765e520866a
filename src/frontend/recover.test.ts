// Orphan recovery against fakes: the owner found among several back-ends gets the forward entry with the handoff id
// it named and a flow id from the top of the range (mapped only where encapsulation needs it); the orphan record is
// forgotten with its drop count reported; an unclaimed flow is not asked about again until its negative TTL passes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OwnerReply } from '../control/client.ts';
import type { FlowIds, FlowKey, OrphanFlow, OrphanSource } from '../steer/types.ts';
import { FLOW_ID_MAX, flowKeyString } from '../steer/types.ts';
import { OrphanRecovery, type RecoveryBackend } from './recover.ts';

class FakeOrphans implements OrphanSource {
  readonly m = new Map<string, OrphanFlow>();
  now = 5_000_000n;
  add(flow: FlowKey, packets: number): void {
    this.m.set(flowKeyString(flow), { flow, firstSeenNs: 1_000_000n, packets });
  }
  list(): OrphanFlow[] {
    return [...this.m.values()];
  }
  get(flow: FlowKey): OrphanFlow | undefined {
    return this.m.get(flowKeyString(flow));
  }
  forget(flow: FlowKey): void {
    this.m.delete(flowKeyString(flow));
  }
  pass(flow: FlowKey): void {
    const o = this.m.get(flowKeyString(flow));
    if (o) this.m.set(flowKeyString(flow), { ...o, pass: true });
  }
  nowNs(): bigint {
    return this.now;
  }
}

const quiet = { warn: () => undefined, info: () => undefined };
const flow: FlowKey = { family: 4, clientAddress: '10.0.0.1', clientPort: 40000 };

function backend(id: string, owns: (port: number) => bigint | undefined, encapSource?: string) {
  const asked: { flowId: number; frontend: string }[] = [];
  const b: RecoveryBackend = {
    id,
    ...(encapSource !== undefined ? { encapSource } : {}),
    ask: async (q): Promise<OwnerReply> => {
      asked.push({ flowId: q.flowId, frontend: q.frontend });
      const h = owns(q.flow.client.port);
      return h === undefined ? { found: false } : { found: true, handoffId: h };
    },
  };
  return { b, asked };
}

test('the owner among three back-ends gets the forward entry; the record is forgotten with its drops', async () => {
  const orphans = new FakeOrphans();
  orphans.add(flow, 3);
  const forwards: [FlowKey, string, FlowIds][] = [];
  const a = backend('b1', () => undefined, '192.0.2.1');
  const o = backend('b2', (p) => (p === 40000 ? 0xabcn : undefined), '192.0.2.1');
  const l2 = backend('b3', () => undefined);
  const inUse = new Set<number>();
  const r = new OrphanRecovery({
    orphans, vip: { address: '203.0.113.10', port: 80 }, flowIdsInUse: inUse, log: quiet,
    backends: () => [a.b, o.b, l2.b],
    backendCount: () => 3,
    forward: async (f, id, ids) => void forwards.push([f, id, ids]),
  });
  await r.poll();
  assert.deepEqual(forwards, [[flow, 'b2', { handoffId: 0xabcn, flowId: FLOW_ID_MAX }]]);
  assert.deepEqual(o.asked, [{ flowId: FLOW_ID_MAX, frontend: '192.0.2.1' }]);
  assert.deepEqual(l2.asked, [{ flowId: 0, frontend: '0.0.0.0' }], 'an l2 back-end needs no mapping');
  assert.ok(inUse.has(FLOW_ID_MAX));
  assert.equal(orphans.m.size, 0);
  const s = r.stats();
  assert.equal(s.recovered, 1);
  assert.deepEqual(s.flows.map(({ at: _at, ...f }) => f), [{ flow: '10.0.0.1:40000', backend: 'b2', ms: 4, dropped: 3 }]);
});

test('an unclaimed flow stays dropped and is not asked about again before its TTL; its flow id is freed', async () => {
  const orphans = new FakeOrphans();
  orphans.add(flow, 1);
  const nobody = backend('b1', () => undefined, '192.0.2.1');
  const inUse = new Set<number>();
  const r = new OrphanRecovery({
    orphans, vip: { address: '203.0.113.10', port: 80 }, flowIdsInUse: inUse, log: quiet, negativeTtlMs: 60_000,
    backends: () => [nobody.b],
    backendCount: () => 1,
    forward: async () => assert.fail('nothing to forward'),
  });
  await r.poll();
  await r.poll();
  assert.equal(nobody.asked.length, 1);
  assert.equal(r.stats().unclaimed, 1);
  assert.equal(inUse.size, 0);
  assert.equal(orphans.m.size, 1, 'the record stays: its packets keep being dropped, not reset');
});

test('flow ids skip those in use', async () => {
  const orphans = new FakeOrphans();
  orphans.add(flow, 1);
  const o = backend('b1', () => 1n, '192.0.2.1');
  const inUse = new Set<number>([FLOW_ID_MAX]);
  const forwards: FlowIds[] = [];
  const r = new OrphanRecovery({
    orphans, vip: { address: '203.0.113.10', port: 80 }, flowIdsInUse: inUse, log: quiet,
    backends: () => [o.b],
    backendCount: () => 1,
    forward: async (_f, _id, ids) => void forwards.push(ids),
  });
  await r.poll();
  assert.deepEqual(forwards, [{ handoffId: 1n, flowId: FLOW_ID_MAX - 1 }]);
});

test('refused twice by every back-end: the flow is passed up (the stack resets it), then forgotten', async () => {
  const orphans = new FakeOrphans();
  orphans.add(flow, 1);
  const nobody = backend('b1', () => undefined, '192.0.2.1');
  const r = new OrphanRecovery({
    orphans, vip: { address: '203.0.113.10', port: 80 }, flowIdsInUse: new Set(), log: quiet, negativeTtlMs: 0,
    backends: () => [nobody.b],
    backendCount: () => 1,
    forward: async () => assert.fail('nothing to forward'),
  });
  await r.poll();
  assert.notEqual(orphans.get(flow)?.pass, true, 'one refusal is not enough: a handoff may still be in progress');
  await r.poll();
  assert.equal(orphans.get(flow)?.pass, true);
  assert.equal(r.stats().reset, 1);
  await r.poll();
  assert.equal(orphans.m.size, 0, 'forgotten after its TTL');
});

test('while a back-end cannot be asked, a flow is never passed up', async () => {
  const orphans = new FakeOrphans();
  orphans.add(flow, 1);
  const nobody = backend('b1', () => undefined, '192.0.2.1');
  const r = new OrphanRecovery({
    orphans, vip: { address: '203.0.113.10', port: 80 }, flowIdsInUse: new Set(), log: quiet, negativeTtlMs: 0,
    backends: () => [nobody.b],
    backendCount: () => 2,
    forward: async () => assert.fail('nothing to forward'),
  });
  for (let i = 0; i < 4; i++) await r.poll();
  assert.equal(nobody.asked.length, 4);
  assert.notEqual(orphans.get(flow)?.pass, true);
  assert.equal(r.stats().reset, 0);
});
