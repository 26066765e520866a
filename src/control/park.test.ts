// PARK over real sockets: a front-end's PARK (expect, discard) reaches the agent as a peer message, in order with
// the handoffs around it on the same channel (the agent hands it to its park gate: backend/agent.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message } from '../wire/frame.ts';
import { startServer, startUpClient } from './testing.ts';

const TUPLE = { family: 4 as const, client: { address: '192.0.2.10', port: 51234 }, vip: { address: '198.51.100.1', port: 80 } };
const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond());
};

test('PARK expect and discard reach the agent as peer messages, in channel order with a HANDOFF_FWD between them', async (t) => {
  const seen: string[] = [];
  const { server, port } = await startServer(t, {
    onHandoff: async (id, _blob, _ctx, forwarded) => (seen.push(`handoff ${id} ${forwarded}`), { ok: false, code: 'BATON_ERR_FULL', reason: 'full' }),
    onVips: () => ({ early: true, lossless: true }),
  });
  server.on('peerMessage', (_p, m: Message) => {
    if (m.kind === 'park') seen.push(`park ${m.action} ${m.client.address}:${m.client.port}`);
  });
  const client = await startUpClient(t, port, { vips: () => [{ family: 4, ...TUPLE.vip }] });
  await until(() => client.forwardFirst);
  assert.equal(client.send({ kind: 'park', action: 'expect', ...TUPLE }), true);
  const ack = await client.sendHandoff(9n, new Uint8Array([1]), true);
  assert.equal(ack.ok, false);
  assert.equal(client.send({ kind: 'park', action: 'discard', ...TUPLE }), true);
  await until(() => seen.length === 3);
  assert.deepEqual(seen, ['park expect 192.0.2.10:51234', 'handoff 9 true', 'park discard 192.0.2.10:51234']);
});
