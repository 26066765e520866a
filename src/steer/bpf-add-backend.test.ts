// A back-end added to the eBPF steering while running (configuration reload), against the in-memory
// data path: the next slot, existing flows untouched, ids and slots never reused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BpfSteering } from './bpf.ts';
import { MemoryFlowTable } from './testing.ts';
import type { FlowKey } from './types.ts';

const flow = (port: number): FlowKey => ({ family: 4, clientAddress: '10.0.0.2', clientPort: port });

test('an added back-end takes the next slot and new flows; existing flows keep theirs', async () => {
  const t = new MemoryFlowTable();
  const sources = new Map<string, string>();
  const s = new BpfSteering(t, { backends: [{ id: 'b1', address: '10.0.0.11' }], localFor: (id) => sources.get(id), sweepMs: 3_600_000 });
  try {
    await s.hold(flow(1));
    await s.forward(flow(1), 'b1', { handoffId: 1n, flowId: 1 });
    await s.addBackend({ id: 'b2', address: '10.0.0.12' });
    assert.deepEqual(t.slots[1], { mode: 'l2', address: '10.0.0.12', local: undefined });
    await s.hold(flow(2));
    await s.forward(flow(2), 'b2', { handoffId: 2n, flowId: 2 });
    assert.deepEqual((await s.list()).map((e) => [e.flow.clientPort, e.verdict, e.backend]).sort(), [[1, 'forward', 'b1'], [2, 'forward', 'b2']]);
    await assert.rejects(s.addBackend({ id: 'b2', address: '10.0.0.12' }), /add back-end b2: back-end b2 is already known/);
    await assert.rejects(s.addBackend({ id: 'b3', address: '10.0.1.13', mode: 'encap' }), /encap but no source address/);
    sources.set('b3', '10.0.0.10');
    await s.addBackend({ id: 'b3', address: '10.0.1.13', mode: 'encap' });
    assert.deepEqual(t.slots[2], { mode: 'encap', address: '10.0.1.13', local: '10.0.0.10' });
  } finally {
    await s.close();
  }
});

test('slots run out at 64 per process', async () => {
  const s = new BpfSteering(new MemoryFlowTable(), { backends: [], sweepMs: 3_600_000 });
  try {
    for (let i = 0; i < 64; i++) await s.addBackend({ id: `b${i}`, address: `10.0.0.${i + 1}` });
    await assert.rejects(s.addBackend({ id: 'one-more', address: '10.0.1.1' }), /at most 64/);
  } finally {
    await s.close();
  }
});
