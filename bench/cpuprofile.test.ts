import assert from 'node:assert/strict';
import { test } from 'node:test';
import { declarationLines, mergeSyscalls, parseStraceSummary, selfTime, shortUrl, type CpuProfile } from './cpuprofile.ts';

const ROOT = '/repo';
// root -> run (src) -> writeBuffer (native), and root -> (idle), (garbage collector)
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 4, 5] },
    { id: 2, callFrame: { functionName: 'run', url: 'file:///repo/src/a.ts', lineNumber: 0 }, children: [3] },
    { id: 3, callFrame: { functionName: 'stats', url: '', lineNumber: -1 } },
    { id: 4, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
    { id: 5, callFrame: { functionName: '(garbage collector)', url: '', lineNumber: -1 } },
  ],
  startTime: 1000,
  endTime: 2000,
  samples: [3, 3, 3, 2, 4, 4, 5, 3],
  timeDeltas: [100, 100, 100, 100, 100, 100, 100, 100],
};

test('self time charges native frames to the nearest own caller and leaves idle out of the busy share', () => {
  const s = selfTime(profile, { fromUs: -Infinity, toUs: Infinity, root: ROOT, top: 10, lineOf: (_u, fn, l) => (fn === 'run' ? 7 : l) });
  assert.equal(s.total, 8);
  assert.equal(s.idle, 2);
  assert.deepEqual(s.rows.map((r) => [r.fn, r.where, r.samples, Math.round(r.pct)]), [
    ['(native)', '← run src/a.ts:7', 4, 67],
    ['run', 'src/a.ts:7', 1, 17],
    ['(garbage collector)', '', 1, 17],
  ]);
});

test('self time counts only samples inside the window', () => {
  // sample times: 1100, 1200, ... 1800
  const s = selfTime(profile, { fromUs: 1350, toUs: 1650, root: ROOT, top: 10 });
  assert.equal(s.total, 3);
  assert.equal(s.idle, 2);
  assert.deepEqual(s.rows.map((r) => r.fn), ['run']);
});

test('declaration lines find methods, private methods, functions and arrow properties', () => {
  const src = ['// x', 'export function alpha() {}', 'class K {', '  #beta(x: number): void {}', '  async gamma() {}', '}', 'const delta = (a) => a;'].join('\n');
  const lineOf = declarationLines(() => src);
  const u = 'file:///repo/src/k.ts';
  assert.deepEqual(['alpha', '#beta', 'gamma', 'delta', 'K', 'missing'].map((f) => lineOf(u, f, 1)), [2, 4, 5, 7, 3, 1]);
  assert.equal(lineOf('node:net', 'Socket', 359), 359);
});

test('shortUrl keeps the repository path or the package path', () => {
  assert.equal(shortUrl('file:///repo/src/a.ts', ROOT), 'src/a.ts');
  assert.equal(shortUrl('file:///repo/node_modules/koffi/index.js', ROOT), 'node_modules/koffi/index.js');
  assert.equal(shortUrl('node:net', ROOT), 'node:net');
});

test('strace -c summaries parse, with or without the errors column, and merge by name', () => {
  const text = [
    '% time     seconds  usecs/call     calls    errors syscall',
    '------ ----------- ----------- --------- --------- ----------------',
    ' 40.00    0.004000           2      2000           setsockopt',
    ' 30.00    0.003000           3      1000       500 ioctl',
    '------ ----------- ----------- --------- --------- ----------------',
    '100.00    0.010000           3      3000       500 total',
  ].join('\n');
  const rows = parseStraceSummary(text);
  assert.deepEqual(rows.map((r) => [r.name, r.calls, r.errors]), [['setsockopt', 2000, 0], ['ioctl', 1000, 500]]);
  const m = mergeSyscalls([rows, [{ name: 'ioctl', calls: 10, errors: 1, seconds: 0 }]]);
  assert.deepEqual(m.map((r) => [r.name, r.calls, r.errors]), [['setsockopt', 2000, 0], ['ioctl', 1010, 501]]);
});
