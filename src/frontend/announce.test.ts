// Health <-> announcement, without BIRD: the birdc commands, the reply parsing (outputs copied from BIRD 2.0.12),
// and the Announcer's state machine over a fake runner (only changes reach BIRD, failures are retried, shutdown
// withdraws).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Announcer, birdCommands, parseBirdReply, type Runner } from './announce.ts';

const bgp = { birdSocket: '/run/bird/fe.ctl', protocols: ['vip4', 'vip6'] };
const quiet = { info: () => undefined, warn: () => undefined };

test('birdCommands enables to announce and disables to withdraw, one command per protocol', () => {
  assert.deepEqual(birdCommands(bgp, true), [
    ['-s', '/run/bird/fe.ctl', 'enable', 'vip4'],
    ['-s', '/run/bird/fe.ctl', 'enable', 'vip6'],
  ]);
  assert.deepEqual(birdCommands(bgp, false), [
    ['-s', '/run/bird/fe.ctl', 'disable', 'vip4'],
    ['-s', '/run/bird/fe.ctl', 'disable', 'vip6'],
  ]);
});

test('parseBirdReply accepts BIRD success lines only', () => {
  assert.equal(parseBirdReply('vip4', true, 'BIRD 2.0.12 ready.\nvip4: enabled\n'), true);
  assert.equal(parseBirdReply('vip4', true, 'BIRD 2.0.12 ready.\nvip4: already enabled\n'), true);
  assert.equal(parseBirdReply('vip4', false, 'BIRD 2.0.12 ready.\nvip4: disabled\n'), true);
  assert.equal(parseBirdReply('vip4', false, 'BIRD 2.0.12 ready.\nvip4: enabled\n'), false);
  assert.equal(parseBirdReply('vip4', true, 'BIRD 2.0.12 ready.\nvip6: enabled\n'), false);
  assert.equal(parseBirdReply('vip4', true, 'BIRD 2.0.12 ready.\nsyntax error, unexpected CF_SYM_UNDEFINED\n'), false);
});

function fakeBird(failFirst = 0): { run: Runner; calls: string[]; fail: { n: number } } {
  const calls: string[] = [];
  const fail = { n: failFirst };
  const run: Runner = async (_bin, args) => {
    calls.push(`${args[2]} ${args[3]}`);
    if (fail.n > 0) {
      fail.n--;
      throw new Error('Unable to connect to server control socket');
    }
    return `BIRD 2.0.12 ready.\n${args[3]}: ${args[2] === 'enable' ? 'enabled' : 'disabled'}\n`;
  };
  return { run, calls, fail };
}

test('Announcer tells BIRD only about changes, and withdraws on close', async () => {
  const f = fakeBird();
  const a = new Announcer({ bgp, log: quiet, run: f.run });
  await a.set(false);
  assert.equal(a.announced, false);
  await a.set(true);
  await a.set(true);
  assert.equal(a.announced, true);
  await a.set(false);
  await a.close();
  assert.deepEqual(f.calls, ['disable vip4', 'disable vip6', 'enable vip4', 'enable vip6', 'disable vip4', 'disable vip6']);
  assert.equal(a.announced, false);
});

test('Announcer retries a failed change until BIRD answers', async () => {
  const f = fakeBird(1);
  const a = new Announcer({ bgp, log: quiet, run: f.run, retryMs: 10 });
  await a.set(true);
  assert.equal(a.announced, false);
  for (let i = 0; i < 100 && !a.announced; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(a.announced, true);
  await a.close();
});
