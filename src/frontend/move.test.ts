// The front-end's move coordinator with fake steering and channels: stay / refuse / go, the hand-on
// to the pick, the fall-back to the next pick and to the owner, and forwarding back on a failed capture.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backendId, type PickResult, type RequestInfo } from '../policy/types.ts';
import type { FlowIds, FlowKey } from '../steer/types.ts';
import { decodeBlob, encodeBlob } from '../wire/blob.ts';
import type { Message } from '../wire/frame.ts';
import type { HandoffAck, HandoffChannel } from './channel.ts';
import { MoveCoordinator } from './move.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const STATE = {
  family: 4 as const, client: { address: '192.0.2.10', port: 51234 }, vip: { address: '198.51.100.1', port: 80 },
  sendSeq: 1, recvSeq: 2, window: { sndWl1: 2, sndWnd: 65535, maxWindow: 65535, rcvWnd: 64240, rcvWup: 2 },
  mss: 1460, sndWscale: 7, rcvWscale: 7, sackPermitted: true, timestamps: true, finReceived: false, tsVal: 9,
  recvQueue: enc('GET /b HTTP/1.1\r\nHost: x\r\n\r\n'), sendQueue: new Uint8Array(0),
};

class FakeChannel implements HandoffChannel {
  state: HandoffChannel['state'] = 'up';
  readonly sent: Message[] = [];
  readonly handoffs: Uint8Array[] = [];
  readonly commits: bigint[] = [];
  readonly forwarded: boolean[] = [];
  forwardFirst = false;
  constructor(readonly answer: (blob: Uint8Array) => HandoffAck = () => ({ ok: true })) {}
  async sendHandoff(_id: bigint, blob: Uint8Array, forwarded = false): Promise<HandoffAck> {
    this.handoffs.push(blob);
    this.forwarded.push(forwarded);
    return this.answer(blob);
  }
  commit(id: bigint): boolean {
    this.commits.push(id);
    return true;
  }
  abort(): boolean {
    return true;
  }
  send(m: Message): boolean {
    this.sent.push(m);
    return true;
  }
}

function setup(o: { picks: (req: RequestInfo, exclude: ReadonlySet<string>) => PickResult; channels: Record<string, FakeChannel> }) {
  const steer: string[] = [];
  let next = 100n;
  const c = new MoveCoordinator({
    steering: {
      hold: async (f: FlowKey) => void steer.push(`hold ${f.clientPort}`),
      forward: async (f: FlowKey, b: string, ids: FlowIds) => void steer.push(`forward ${f.clientPort} ${b} ${ids.handoffId}`),
    },
    channel: (id) => o.channels[id],
    pick: (req, exclude) => o.picks(req, exclude),
    book: { handoffSent: () => undefined, handoffAnswered: () => undefined, committed: () => undefined, failed: () => undefined },
    allocate: () => ({ handoffId: next++, flowId: 7 }),
    encapSource: () => undefined,
    limits: () => ({ maxHeadBytes: 8192, maxHeaders: 100, maxAttempts: 3 }),
    log: { warn: () => undefined, error: () => undefined },
  });
  return { c, steer };
}

const move = (id: bigint, head: string): Message => ({
  kind: 'move', id, handoffId: 5n, flowId: 3, reason: 2, family: 4,
  client: { address: '192.0.2.10', port: 51234 }, vip: { address: '198.51.100.1', port: 80 }, head: enc(head),
});
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));
const byPath = (req: RequestInfo, exclude: ReadonlySet<string>): PickResult => {
  const want = req.path.startsWith('/b') ? 'b2' : 'b1';
  return exclude.has(want) ? { kind: 'none', reason: 'excluded' } : { kind: 'backend', id: backendId(want) };
};

test('a request the owner should serve is answered stay; nothing is held', async () => {
  const b1 = new FakeChannel();
  const { c, steer } = setup({ picks: byPath, channels: { b1, b2: new FakeChannel() } });
  c.onMessage('b1', move(1n, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  assert.deepEqual(b1.sent, [{ kind: 'move-reply', id: 1n, verdict: 'stay', code: '' }]);
  assert.deepEqual(steer, []);
  assert.equal(c.counters('b1').stays, 1);
});

test('go: held, then the blob is handed to the pick with new ids, steered, committed, MOVE_DONE moved', async () => {
  const b1 = new FakeChannel();
  const b2 = new FakeChannel();
  const { c, steer } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(2n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  assert.deepEqual(b1.sent, [{ kind: 'move-reply', id: 2n, verdict: 'go', code: '' }]);
  c.onMessage('b1', { kind: 'move-blob', id: 2n, ok: true, blob: encodeBlob({ handoffId: 5n, flowId: 3, state: STATE }) });
  await tick();
  assert.equal(b2.handoffs.length, 1);
  const d = decodeBlob(b2.handoffs[0]!);
  assert.equal(d.handoffId, 100n);
  assert.deepEqual(d.state.recvQueue, STATE.recvQueue);
  assert.deepEqual(b2.commits, [100n]);
  assert.deepEqual(steer, ['hold 51234', 'forward 51234 b2 100']);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 2n, outcome: 'moved' });
  assert.equal(c.counters('b1').movesOut, 1);
  assert.equal(c.counters('b2').movesIn, 1);
});

test('the new owner refuses and no other is left: the owner gets it back as a fresh handoff', async () => {
  const b1 = new FakeChannel();
  const b2 = new FakeChannel(() => ({ ok: false, code: 'BATON_ERR_FULL', reason: 'full' }));
  const { c, steer } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(3n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', { kind: 'move-blob', id: 3n, ok: true, blob: encodeBlob({ handoffId: 5n, flowId: 3, state: STATE }) });
  await tick();
  assert.equal(b2.handoffs.length, 1);
  assert.equal(b1.handoffs.length, 1);
  assert.deepEqual(steer, ['hold 51234', 'forward 51234 b1 101']);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 3n, outcome: 'returned' });
  assert.equal(c.stats().returned, 1);
});

test('a failed capture forwards the flow back to the owner under its old ids', async () => {
  const b1 = new FakeChannel();
  const { c, steer } = setup({ picks: byPath, channels: { b1, b2: new FakeChannel() } });
  c.onMessage('b1', move(4n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', { kind: 'move-blob', id: 4n, ok: false, code: 'BATON_ERR_MOVE_CAPTURE', reason: 'x' });
  await tick();
  assert.deepEqual(steer, ['hold 51234', 'forward 51234 b1 5']);
  assert.equal(c.stats().kept, 1);
});

test('no back-end and a malformed head are refused', async () => {
  const b1 = new FakeChannel();
  const { c } = setup({ picks: () => ({ kind: 'none', reason: 'none' }), channels: { b1 } });
  c.onMessage('b1', move(5n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  c.onMessage('b1', move(6n, 'NOT HTTP\r\n\r\n'));
  await tick();
  assert.deepEqual(b1.sent.map((m) => (m.kind === 'move-reply' ? m.verdict : m.kind)), ['refuse', 'refuse']);
});

test('a drain move (reason 6) never picks the owner', async () => {
  const b1 = new FakeChannel();
  const seen: string[][] = [];
  const { c } = setup({
    picks: (_r, ex) => {
      seen.push([...ex]);
      return { kind: 'backend', id: backendId('b2') };
    },
    channels: { b1, b2: new FakeChannel() },
  });
  c.onMessage('b1', { ...(move(7n, '') as Extract<Message, { kind: 'move' }>), reason: 6 });
  await tick();
  assert.deepEqual(seen[0], ['b1']);
  assert.equal((b1.sent[0] as Extract<Message, { kind: 'move-reply' }>).verdict, 'go');
});

test('to agents that guard the VIP, a move forwards before the blob: no COMMIT; a refusal holds again for the next', async () => {
  const b1 = new FakeChannel();
  const b2 = new FakeChannel(() => ({ ok: false, code: 'BATON_ERR_FULL', reason: 'full' }));
  b1.forwardFirst = true;
  b2.forwardFirst = true;
  const { c, steer } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(8n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', { kind: 'move-blob', id: 8n, ok: true, blob: encodeBlob({ handoffId: 5n, flowId: 3, state: STATE }) });
  await tick();
  // b2 first (forward, refused, held again), then back to its owner b1, forwarded first as well.
  assert.deepEqual(steer, ['hold 51234', 'forward 51234 b2 100', 'hold 51234', 'forward 51234 b1 101']);
  assert.deepEqual([b2.forwarded, b1.forwarded], [[true], [true]]);
  assert.deepEqual([b1.commits, b2.commits], [[], []]);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 8n, outcome: 'returned' });
});
