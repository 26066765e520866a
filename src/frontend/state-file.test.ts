import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadState, saveState, StateWriter } from './state-file.ts';

async function dir(t: TestContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'baton-state-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('saved state reads back; the file is private and its directory created', async (t) => {
  const path = join(await dir(t), 'run', 'fe.state.json');
  await saveState(path, { b1: { drained: true }, b2: { healthy: false } });
  assert.deepEqual(await loadState(path), { state: { b1: { drained: true }, b2: { healthy: false } } });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  await saveState(path, {});
  await assert.rejects(stat(path), /ENOENT/, 'nothing to keep: no file');
  await saveState(path, {});
});

test('a missing file is an empty state; a foreign or broken one is an empty state with a reason', async (t) => {
  const d = await dir(t);
  assert.deepEqual(await loadState(join(d, 'none.json')), { state: {} });
  await writeFile(join(d, 'bad.json'), '{ nope');
  assert.deepEqual(await loadState(join(d, 'bad.json')), { state: {}, problem: `${join(d, 'bad.json')}: invalid JSON` });
  await writeFile(join(d, 'other.json'), JSON.stringify({ version: 2, backends: {} }));
  assert.match((await loadState(join(d, 'other.json'))).problem ?? '', /not a baton state file/);
});

test('the writer keeps the latest of a burst of changes', async (t) => {
  const path = join(await dir(t), 's.json');
  const errors: Error[] = [];
  const w = new StateWriter(path, (e) => errors.push(e));
  for (let i = 0; i < 20; i++) w.save({ b1: { drained: i % 2 === 0 } });
  await w.flush();
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { version: 1, backends: { b1: { drained: false } } });
  assert.deepEqual(errors, []);
});
