import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WaitingClients } from './waiting.ts';

/** A waiting connection whose expiry forgets it, as the listeners' do. */
function client(w: WaitingClients, log: string[], name: string): () => void {
  const expire = (): void => {
    log.push(name);
    w.done(expire);
  };
  w.add(expire);
  return expire;
}

test('below the limit every connection is admitted and nothing is shed', () => {
  const w = new WaitingClients();
  const log: string[] = [];
  assert.equal(w.admit(2), true);
  client(w, log, 'a');
  assert.equal(w.admit(2), true);
  client(w, log, 'b');
  assert.deepEqual([w.count, w.shed, log], [2, 0, []]);
});

test('at the limit the oldest waiting connection is expired to make room, in arrival order', () => {
  const w = new WaitingClients();
  const log: string[] = [];
  for (const n of ['a', 'b']) {
    assert.equal(w.admit(2), true);
    client(w, log, n);
  }
  assert.equal(w.admit(2), true);
  client(w, log, 'c');
  assert.equal(w.admit(2), true);
  assert.deepEqual(log, ['a', 'b']);
  assert.equal(w.shed, 2);
});

test('a connection done before the limit is never shed', () => {
  const w = new WaitingClients();
  const log: string[] = [];
  const a = client(w, log, 'a');
  client(w, log, 'b');
  w.done(a);
  assert.equal(w.admit(2), true);
  assert.deepEqual(log, []);
});

test('nothing to shed (limit 0, or lowered below the count by a reload): sheds one and still refuses', () => {
  const w = new WaitingClients();
  const log: string[] = [];
  assert.equal(w.admit(0), false);
  client(w, log, 'a');
  client(w, log, 'b');
  assert.equal(w.admit(1), false, 'two waiting, limit 1: one shed, still full');
  assert.deepEqual(log, ['a']);
  assert.equal(w.admit(1), true, 'the next one finds room');
});
