// What every part of a benchmark run shares: the lab, a scratch directory, ports and how to start baton's CLI.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../src/lab/lab.ts';
import type { SteeringKind } from './paths.ts';

export interface BenchEnv {
  readonly lab: Lab;
  /** Scratch directory for generated configs and logs; removed after the run. */
  readonly workDir: string;
  /** Port every balancer listens on at the VIP. */
  readonly vipPort: number;
  /** Port of the back-end application (direct, haproxy and nginx paths connect here). */
  readonly appPort: number;
  /** Back-end agent control-channel port (baton only). */
  readonly controlPort: number;
  /** baton front-end stats port, on 127.0.0.1 inside the front-end namespace. */
  readonly statsPort: number;
  /** Shared secret of the baton control channel. */
  readonly secret: string;
  /** Steering of the `baton` path (`baton-nft` is always nft). */
  readonly steering: SteeringKind;
}

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BATON_MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
/** Absolute, so children started in a namespace do not depend on their working directory to find tsx. */
export const TSX_IMPORT = import.meta.resolve('tsx');

/** argv that runs baton's CLI with the given arguments. */
export function batonArgv(args: readonly string[]): string[] {
  return [process.execPath, '--import', TSX_IMPORT, BATON_MAIN, ...args];
}

/** Environment for baton daemons: warnings only, like the proxies, which run without access logs. */
export function batonEnv(): NodeJS.ProcessEnv {
  return { ...process.env, BATON_LOG: process.env['BATON_LOG'] ?? 'warn' };
}

export function batonCliPresent(): boolean {
  return existsSync(BATON_MAIN);
}
