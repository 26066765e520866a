// Holds the architecture: each layer imports only the layers below it (ARCHITECTURE.md), the pure
// layers do no I/O, and only sys/ touches koffi.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const SRC = join(import.meta.dirname, '..', 'src');

/** Layer -> the layers it may import (itself always allowed). */
const ALLOWED: Record<string, readonly string[]> = {
  wire: [],
  policy: ['wire'],
  sys: ['wire'],
  tcp: ['sys', 'wire'],
  steer: ['sys', 'wire'],
  control: ['wire'],
  util: ['wire'],
  sim: ['policy', 'wire'],
  frontend: ['policy', 'steer', 'tcp', 'control', 'util', 'wire'],
  backend: ['policy', 'steer', 'tcp', 'control', 'util', 'wire'],
  lab: ['wire'],
  cli: ['frontend', 'backend', 'lab', 'sim', 'policy', 'steer', 'control', 'util', 'wire'],
};
const PURE = new Set(['wire', 'policy']);
const IO_MODULES = /^node:(fs|net|http|https|dgram|child_process|dns|tls|worker_threads)(\/|$)/;

function* tsFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) yield p;
  }
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);
}

test('every layer imports only downward, pure layers do no I/O, only sys/ imports koffi', () => {
  const problems: string[] = [];
  for (const file of tsFiles(SRC)) {
    const rel = relative(SRC, file);
    const layer = rel.split('/')[0]!;
    const allowed = ALLOWED[layer];
    if (!allowed) {
      problems.push(`${rel}: layer "${layer}" is not in the table`);
      continue;
    }
    for (const spec of imports(file)) {
      if (spec === 'koffi' && layer !== 'sys') problems.push(`${rel}: imports koffi outside sys/`);
      if (PURE.has(layer) && IO_MODULES.test(spec)) problems.push(`${rel}: pure layer imports ${spec}`);
      if (!spec.startsWith('.')) continue;
      const target = relative(SRC, join(file, '..', spec)).split('/')[0]!;
      if (target !== layer && !allowed.includes(target)) problems.push(`${rel}: ${layer} imports ${target} (${spec})`);
    }
  }
  assert.deepEqual(problems, []);
});
