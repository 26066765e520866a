#!/usr/bin/env node
// baton's command line: thin wiring of the subcommands.
import { Command } from 'commander';
import { registerLab } from '../lab/cli.ts';
import { BatonError } from '../wire/errors.ts';
import { registerAdmin } from './admin.ts';
import { registerDaemons } from './daemons.ts';
import { registerDemo } from './demo.ts';
import { registerSimulate } from './simulate.ts';

const program = new Command()
  .name('baton')
  .description('content-aware load balancer that hands live TCP connections to back-ends')
  .showHelpAfterError();
registerDaemons(program);
registerLab(program);
registerDemo(program);
registerSimulate(program);
registerAdmin(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = e instanceof BatonError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  process.stderr.write(`baton: ${msg}\n`);
  process.exit(1);
});
