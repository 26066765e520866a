// OWNER_QUERY over a real channel (issue 11): a front-end that never saw a flow asks the agents who holds it. The
// agent answers from onOwnerQuery; a found flow's FLOW_END then reaches the asking front-end as well as the one
// that handed it off; no handler, a throwing one, or a channel that is down all answer not-found.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { FlowInfo } from '../wire/frame.ts';
import type { OwnerQuery } from './server.ts';
import { startClient, startServer, startUpClient } from './testing.ts';

const flow: FlowInfo = { family: 4, client: { address: '10.0.0.1', port: 40000 }, vip: { address: '192.0.2.10', port: 80 } };

test('an owner query is answered with the handoff that placed the flow; FLOW_END then reaches the asker too', async (t) => {
  const seen: OwnerQuery[] = [];
  const { server, port } = await startServer(t, {
    onHandoff: async () => ({ ok: true, flow }),
    onOwnerQuery: (q) => {
      seen.push(q);
      return q.flow.client.port === 40000 ? { found: true, handoffId: 77n } : { found: false };
    },
  });
  const first = await startUpClient(t, port, { name: 'fe-a' });
  const second = await startUpClient(t, port, { name: 'fe-b' });
  assert.deepEqual(await first.sendHandoff(77n, new Uint8Array([1])), { ok: true });
  first.commit(77n);
  assert.deepEqual(await second.queryOwner({ flow, flowId: 9, frontend: '192.0.2.2' }), { found: true, handoffId: 77n });
  assert.deepEqual(seen[0], { flow, flowId: 9, frontend: '192.0.2.2' });
  const other = { ...flow, client: { address: '10.0.0.1', port: 40001 } };
  assert.deepEqual(await second.queryOwner({ flow: other, flowId: 0, frontend: '0.0.0.0' }), { found: false });
  const ends = [once(first, 'flowEnd'), once(second, 'flowEnd')];
  assert.equal(server.flowEnded(flow, 77n), 2);
  const [a, b] = await Promise.all(ends);
  assert.equal(a?.[1], 77n);
  assert.equal(b?.[1], 77n);
});

test('no handler or a throwing one answers not-found; a channel that is down answers not-found at once', async (t) => {
  const { port } = await startServer(t);
  const c = await startUpClient(t, port);
  assert.deepEqual(await c.queryOwner({ flow, flowId: 0, frontend: '0.0.0.0' }), { found: false });
  const { port: port2 } = await startServer(t, {
    onOwnerQuery: () => {
      throw new Error('boom');
    },
  });
  const c2 = await startUpClient(t, port2);
  assert.deepEqual(await c2.queryOwner({ flow, flowId: 0, frontend: '0.0.0.0' }), { found: false });
  const down = startClient(t, 1); // nothing listens on port 1
  assert.deepEqual(await down.queryOwner({ flow, flowId: 0, frontend: '0.0.0.0' }), { found: false });
});
