// The back-end servers, started once per run and shared by every path: baton's back-end agent with its sample app
// when it is available (it serves the app on a normal port too, for the direct and proxy paths), otherwise the
// stand-in server in stub-backend.ts.

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentConfig } from '../src/lab/cluster.ts';
import type { LabHost } from '../src/lab/lab.ts';
import { batonArgv, batonCliPresent, batonEnv, TSX_IMPORT, type BenchEnv } from './env.ts';
import { captureOutput, pidOf, stopChild, waitHttp200 } from './procs.ts';

export type BackendKind = 'agent' | 'stub';

export interface Backends {
  readonly kind: BackendKind;
  /** Root pids of the back-end processes, for CPU accounting. */
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

const STUB = fileURLToPath(new URL('./stub-backend.ts', import.meta.url));

/** Whether baton's CLI has a working `backend` command (the agent has landed). */
export async function agentAvailable(env: BenchEnv): Promise<boolean> {
  if (!batonCliPresent()) return false;
  const r = await env.lab.exec(env.lab.client, batonArgv(['backend', '--help']), { timeoutMs: 20_000 });
  return r.code === 0;
}

export function backendConfig(env: BenchEnv, b: LabHost): object {
  return agentConfig(env.lab, b, { secret: env.secret, controlPort: env.controlPort, appPort: env.appPort });
}

export async function startBackends(env: BenchEnv, kind: BackendKind): Promise<Backends> {
  const { lab } = env;
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => stopChild(c)));
  };
  try {
    for (const b of lab.backends) {
      let argv: string[];
      if (kind === 'agent') {
        const file = join(env.workDir, `backend-${b.name}.json`);
        writeFileSync(file, JSON.stringify(backendConfig(env, b), null, 2));
        argv = batonArgv(['backend', '--config', file]);
      } else {
        argv = [process.execPath, '--import', TSX_IMPORT, STUB, b.address, String(env.appPort)];
      }
      const child = lab.spawn(b, argv, { env: batonEnv() });
      children.push(child);
      const out = captureOutput(child);
      await waitHttp200(lab, lab.client, `http://${b.address}:${env.appPort}/bytes/1`, 20_000, child, out);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { kind, pids: children.map(pidOf), stop };
}
