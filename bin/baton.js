#!/usr/bin/env node
// The `baton` command. The installed package runs the compiled CLI (dist/, built by `npm run build`
// on `npm pack`) with no TypeScript loader; a source checkout (src/ present) runs the TypeScript
// directly through tsx, a devDependency, so edits need no build step.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/cli/main.js');
}
