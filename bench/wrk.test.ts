// The generated wrk scripts: their shape, and (when wrk is installed) that wrk accepts them and prints the report.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ALTERNATE, luaScript } from './wrk.ts';

test('post scripts carry the body size; alternate scripts need the expected back-ends', () => {
  assert.match(luaScript({ mode: 'post', bodyBytes: 4096 }), /string\.rep\("b", 4096\)/);
  assert.throws(() => luaScript({ mode: 'post' }));
  assert.throws(() => luaScript({ mode: 'alternate' }));
  const alt = luaScript({ mode: 'alternate', expectBackends: ['b1', 'b2'] });
  for (const a of ALTERNATE) assert.ok(alt.includes(`"${a.path}"`));
  assert.doesNotMatch(luaScript({ mode: 'close' }), /response = function/);
});

test('wrk runs the alternate script and attributes responses to pools', { timeout: 30_000 }, async (t) => {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) return t.skip('wrk not installed');
  // A server that answers /bytes/3072 from "b1" and /bytes/2048 from "b2" except every 4th, which claims "b1".
  let n = 0;
  const server = createServer((req, res) => {
    const size = Number(/\/bytes\/(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    const be = size === 3072 ? 'b1' : ++n % 4 === 0 ? 'b1' : 'b2';
    res.writeHead(200, { 'x-baton-backend': be, 'content-length': size }).end(Buffer.alloc(size));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-test-'));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = (server.address() as { port: number }).port;
  const file = join(dir, 'alt.lua');
  writeFileSync(file, luaScript({ mode: 'alternate', expectBackends: ['b1', 'b2'] }));
  const r = await new Promise<{ stdout: string }>((resolve) => {
    const c = spawn('wrk', ['-t1', '-c2', '-d1s', '-s', file, `http://127.0.0.1:${port}/`]);
    let stdout = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.on('exit', () => resolve({ stdout }));
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  assert.ok(line, r.stdout);
  const j = JSON.parse(line.slice(8)) as { requests: number; poolRight: number; poolWrong: number; poolUnknown: number };
  assert.ok(j.requests > 20);
  assert.equal(j.poolUnknown, 0);
  assert.ok(j.poolWrong > 0, 'every 4th /bytes/2048 answer came from the wrong back-end');
  assert.ok(j.poolRight > j.poolWrong);
});
