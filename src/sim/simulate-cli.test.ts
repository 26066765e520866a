// The `baton simulate` command (src/cli/simulate.ts), end to end on small traces.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerSimulate, runSimulate, type SimulateOptions } from '../cli/simulate.ts';

const base: SimulateOptions = {
  nodes: [1, 4],
  policies: ['wrr', 'lc', 'maglev', 'lard', 'lardr'],
  seed: 3,
  requests: 3000,
  targets: 300,
  zipf: 0.8,
  cacheMb: 1,
  tLow: 25,
  tHigh: 65,
  k: 20,
  warmup: 0.25,
  json: false,
};

const capture = async (o: SimulateOptions) => {
  const out: string[] = [];
  const err: string[] = [];
  await runSimulate(o, { out: (l) => out.push(l), err: (l) => err.push(l), progress: false });
  return { out, err };
};

describe('baton simulate', () => {
  it('--json prints one {"results":[...]} object as the last stdout line, same for the same seed', async () => {
    const a = await capture({ ...base, json: true });
    const b = await capture({ ...base, json: true });
    assert.equal(a.out.length, 1);
    const parsed = JSON.parse(a.out.at(-1)!) as { results: { policy: string; nodes: number }[] };
    assert.deepEqual(Object.keys(parsed), ['results']);
    assert.equal(parsed.results.length, 10);
    assert.deepEqual([...new Set(parsed.results.map((r) => r.policy))], ['wrr', 'lc', 'maglev', 'lard', 'lardr']);
    for (const r of parsed.results) assert.deepEqual(Object.keys(r), ['policy', 'nodes', 'throughput', 'hitRate', 'imbalance']);
    assert.deepEqual(a.out, b.out);
  });

  it('prints a table, replays a CLF file and writes the plot', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-sim-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const clf = join(dir, 'access.log');
    const plot = join(dir, 'plot.svg');
    const lines = Array.from({ length: 400 }, (_, i) => `h - - [10/Oct/2000:13:55:36 -0700] "GET /f${i % 37} HTTP/1.0" 200 ${1000 + (i % 37) * 900}`);
    await writeFile(clf, [...lines, 'not a log line'].join('\n'));
    const { out, err } = await capture({ ...base, trace: clf, plot, policies: ['wrr', 'lard'] });
    assert.match(out[0]!, /^trace: .*access\.log; 37 targets/);
    assert.match(out.join('\n'), /^4\s+lard\s/m);
    assert.ok(err.includes(`${clf}: skipped 1 malformed line(s)`), err.join('\n'));
    assert.match(await readFile(plot, 'utf8'), /^<svg /);
  });

  it('rejects bad flags', async () => {
    const parse = (...args: string[]) => {
      const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
      registerSimulate(program);
      const sub = program.commands[0]!;
      sub.exitOverride().configureOutput({ writeErr: () => {} });
      return program.parseAsync(['node', 'baton', 'simulate', ...args]);
    };
    await assert.rejects(parse('--nodes', '0,8'), /node count must be an integer in 1\.\.16/);
    await assert.rejects(parse('--nodes', '17'), /1\.\.16/);
    await assert.rejects(parse('--policies', 'wrr,rr'), /unknown policy "rr"/);
    await assert.rejects(parse('--cache-mb', 'x'), /--cache-mb must be a number/);
    await assert.rejects(capture({ ...base, tLow: 70 }), /--t-low must be less than --t-high/);
  });
});
