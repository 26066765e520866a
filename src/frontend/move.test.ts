// The front-end's move coordinator with fake steering and channels: stay / refuse / go, the hand-on
// to the pick, the fall-back to the next pick and to the owner, and forwarding back on a failed capture;
// lossless moves (the pick guards the VIP: forwarded at go) and each of their ways back, in order.
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
  name = '';
  /** Steering changes and channel messages, in the order they happened (shared by one setup's channels). */
  timeline: string[] = [];
  readonly sent: Message[] = [];
  readonly handoffs: Uint8Array[] = [];
  readonly commits: bigint[] = [];
  readonly forwarded: boolean[] = [];
  forwardFirst = false;
  constructor(readonly answer: (blob: Uint8Array) => HandoffAck = () => ({ ok: true })) {}
  async sendHandoff(_id: bigint, blob: Uint8Array, forwarded = false): Promise<HandoffAck> {
    this.timeline.push(`${this.name} ${forwarded ? 'handoff-fwd' : 'handoff'}`);
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
    if (this.state !== 'up') return false;
    this.timeline.push(`${this.name} ${m.kind === 'park' ? `park ${m.action}` : m.kind === 'move-reply' ? m.verdict : m.kind}`);
    this.sent.push(m);
    return true;
  }
}

function setup(o: { picks: (req: RequestInfo, exclude: ReadonlySet<string>) => PickResult; channels: Record<string, FakeChannel>; failForward?: (b: string) => boolean; blobTimeoutMs?: number }) {
  const steer: string[] = [];
  let next = 100n;
  const timeline: string[] = [];
  for (const [name, ch] of Object.entries(o.channels)) {
    ch.name = name;
    ch.timeline = timeline;
  }
  const c = new MoveCoordinator({
    steering: {
      hold: async (f: FlowKey) => {
        steer.push(`hold ${f.clientPort}`);
        timeline.push('hold');
      },
      forward: async (f: FlowKey, b: string, ids: FlowIds) => {
        if (o.failForward?.(b) === true) throw new Error('forward failed');
        steer.push(`forward ${f.clientPort} ${b} ${ids.handoffId}`);
        timeline.push(`forward ${b} ${ids.handoffId}`);
      },
    },
    channel: (id) => o.channels[id],
    pick: (req, exclude) => o.picks(req, exclude),
    book: { handoffSent: () => undefined, handoffAnswered: () => undefined, committed: () => undefined, failed: () => undefined },
    allocate: () => ({ handoffId: next++, flowId: 7 }),
    encapSource: () => undefined,
    limits: () => ({ maxHeadBytes: 8192, maxHeaders: 100, maxAttempts: 3 }),
    log: { warn: () => undefined, error: () => undefined },
    blobTimeoutMs: o.blobTimeoutMs ?? 2000,
  });
  return { c, steer, timeline };
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
  // b2 first (forwarded at go: a lossless move; refused, held again), then back to its owner b1, forwarded first
  // as well.
  assert.deepEqual(steer, ['forward 51234 b2 100', 'hold 51234', 'forward 51234 b1 101']);
  assert.deepEqual([b2.forwarded, b1.forwarded], [[true], [true]]);
  assert.deepEqual([b1.commits, b2.commits], [[], []]);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 8n, outcome: 'returned' });
});

// Lossless moves: the pick (b2) guards the VIP, so the flow goes to it at `go` and its packets park there.
const TUPLE = { family: 4 as const, client: { address: '192.0.2.10', port: 51234 }, vip: { address: '198.51.100.1', port: 80 } };
const blobOk = (id: bigint): Message => ({ kind: 'move-blob', id, ok: true, blob: encodeBlob({ handoffId: 5n, flowId: 3, state: STATE }) });
const parks = (ch: FakeChannel): string[] => ch.sent.flatMap((m) => (m.kind === 'park' ? [m.action] : []));

function lossless(answer?: (blob: Uint8Array) => HandoffAck) {
  const b1 = new FakeChannel();
  const b2 = new FakeChannel(answer);
  b2.forwardFirst = true;
  return { b1, b2 };
}

test('lossless: PARK expect, forward to the pick, then go; the blob goes as HANDOFF_FWD under the same ids, no second forward, no hold', async () => {
  const { b1, b2 } = lossless();
  const { c, steer, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(10n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  assert.deepEqual(timeline, ['b2 park expect', 'forward b2 100', 'b1 go']);
  assert.deepEqual(b2.sent[0], { kind: 'park', action: 'expect', ...TUPLE });
  c.onMessage('b1', blobOk(10n));
  await tick();
  assert.deepEqual(timeline.slice(3), ['b2 handoff-fwd', 'b1 move-done']);
  assert.equal(decodeBlob(b2.handoffs[0]!).handoffId, 100n);
  assert.equal(decodeBlob(b2.handoffs[0]!).flowId, 7);
  assert.deepEqual(b2.forwarded, [true]);
  assert.deepEqual(steer, ['forward 51234 b2 100']);
  assert.deepEqual(b2.commits, []);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 10n, outcome: 'moved' });
  assert.deepEqual(parks(b2), ['expect']);
  const st = c.stats();
  assert.deepEqual([st.moved, st.forwardFirst, st.forwardFirstFailed, st.go], [1, 1, 0, 1]);
});

test('lossless, capture failed (MOVE_BLOB ok=0): back to the owner under its old ids first, then PARK discard to the pick', async () => {
  const { b1, b2 } = lossless();
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(11n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', { kind: 'move-blob', id: 11n, ok: false, code: 'BATON_ERR_MOVE_CAPTURE', reason: 'x' });
  await tick();
  assert.deepEqual(timeline, ['b2 park expect', 'forward b2 100', 'b1 go', 'forward b1 5', 'b2 park discard']);
  assert.deepEqual(b2.sent.at(-1), { kind: 'park', action: 'discard', ...TUPLE });
  assert.equal(b2.handoffs.length, 0);
  assert.deepEqual([c.stats().kept, c.stats().forwardFirstFailed, c.stats().forwardFirst], [1, 1, 0]);
});

test('lossless, no blob in time (the owner or its channel died): back to the owner, then PARK discard', async () => {
  const { b1, b2 } = lossless();
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 }, blobTimeoutMs: 20 });
  c.onMessage('b1', move(12n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  b1.state = 'down';
  await new Promise((r) => setTimeout(r, 60)); // the coordinator's blob timeout is 20 ms here
  assert.deepEqual(timeline, ['b2 park expect', 'forward b2 100', 'b1 go', 'forward b1 5', 'b2 park discard']);
  assert.equal(c.stats().kept, 1);
  // A blob that comes after all is ignored: the flow is the owner's again.
  b1.state = 'up';
  c.onMessage('b1', blobOk(12n));
  await tick();
  assert.equal(b2.handoffs.length, 0);
});

test('lossless, go cannot be sent (the owner\'s channel is down): back to the owner, then PARK discard', async () => {
  const { b1, b2 } = lossless();
  b1.state = 'down';
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(13n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  assert.deepEqual(timeline, ['b2 park expect', 'forward b2 100', 'forward b1 5', 'b2 park discard']);
});

test('lossless, the pick refuses: held here, then PARK discard, then the next pick (the owner, classic)', async () => {
  const { b1, b2 } = lossless(() => ({ ok: false, code: 'BATON_ERR_FULL', reason: 'full' }));
  const { c, steer, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(14n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', blobOk(14n));
  await tick();
  assert.deepEqual(timeline, ['b2 park expect', 'forward b2 100', 'b1 go', 'b2 handoff-fwd', 'hold', 'b2 park discard', 'b1 handoff', 'forward b1 101', 'b1 move-done']);
  assert.deepEqual(steer, ['forward 51234 b2 100', 'hold 51234', 'forward 51234 b1 101']);
  assert.deepEqual(b1.commits, [101n]);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 14n, outcome: 'returned' });
  assert.deepEqual([c.stats().returned, c.stats().forwardFirst, c.stats().forwardFirstFailed], [1, 0, 1]);
});

test('lossless, the pick times out: held here, then PARK discard (its channel is still up)', async () => {
  const { b1, b2 } = lossless(() => ({ ok: false, code: 'BATON_ERR_HANDOFF_TIMEOUT', reason: 'no ack' }));
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(15n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', blobOk(15n));
  await tick();
  assert.deepEqual(timeline.slice(3, 6), ['b2 handoff-fwd', 'hold', 'b2 park discard']);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 15n, outcome: 'returned' });
});

test('lossless, the pick\'s channel drops before the blob: held here, no discard possible (its tuple was begun: no reset), the owner gets it', async () => {
  const { b1, b2 } = lossless();
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(16n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  b2.state = 'down';
  c.onMessage('b1', blobOk(16n));
  await tick();
  assert.deepEqual(timeline, ['b2 park expect', 'forward b2 100', 'b1 go', 'hold', 'b1 handoff', 'forward b1 101', 'b1 move-done']);
  assert.equal(b2.handoffs.length, 0);
  assert.deepEqual(b1.sent.at(-1), { kind: 'move-done', id: 16n, outcome: 'returned' });
});

test('lossless, the forward at go fails: PARK discard, then the hold path as before', async () => {
  const { b1, b2 } = lossless();
  let failed = false;
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 }, failForward: () => !failed && (failed = true) });
  c.onMessage('b1', move(17n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  assert.deepEqual(timeline, ['b2 park expect', 'b2 park discard', 'hold', 'b1 go']);
  c.onMessage('b1', blobOk(17n));
  await tick();
  // b2 still guards: placed forward first (expect, forward, HANDOFF_FWD) as any retry to a guarding agent.
  assert.deepEqual(timeline.slice(4), ['b2 park expect', 'forward b2 101', 'b2 handoff-fwd', 'b1 move-done']);
  assert.deepEqual([c.stats().moved, c.stats().forwardFirst], [1, 0]);
});

test('lossless, an undecodable blob: held here, PARK discard, lost', async () => {
  const { b1, b2 } = lossless();
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(18n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', { kind: 'move-blob', id: 18n, ok: true, blob: Uint8Array.of(1, 2, 3) });
  await tick();
  assert.deepEqual(timeline.slice(3), ['hold', 'b2 park discard', 'b1 move-done']);
  assert.equal(c.stats().lost, 1);
});

test('a pick that does not guard the VIP gets the hold path: no PARK frame anywhere', async () => {
  const b1 = new FakeChannel();
  const b2 = new FakeChannel();
  const { c, timeline } = setup({ picks: byPath, channels: { b1, b2 } });
  c.onMessage('b1', move(19n, 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
  await tick();
  c.onMessage('b1', blobOk(19n));
  await tick();
  assert.deepEqual(timeline, ['hold', 'b1 go', 'b2 handoff', 'forward b2 100', 'b1 move-done']);
  assert.deepEqual([parks(b1), parks(b2)], [[], []]);
  assert.deepEqual([c.stats().moved, c.stats().forwardFirst], [1, 0]);
});
