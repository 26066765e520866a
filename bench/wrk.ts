// Load generation: wrk (closed loop, fixed connection count) in the client namespace, summary read back as JSON
// through wrk-report.lua.

import { fileURLToPath } from 'node:url';
import type { Lab } from '../src/lab/lab.ts';

export type Mode = 'close' | 'keepalive';

export interface WrkOptions {
  readonly url: string;
  readonly mode: Mode;
  readonly connections: number;
  readonly threads: number;
  readonly durationS: number;
}

export interface WrkResult {
  readonly requests: number;
  readonly durationUs: number;
  readonly bytes: number;
  readonly connectErrors: number;
  readonly readErrors: number;
  readonly writeErrors: number;
  readonly statusErrors: number;
  readonly timeouts: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly maxUs: number;
}

const REPORT_SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));

export async function runWrk(lab: Lab, o: WrkOptions): Promise<WrkResult> {
  const argv = [
    'wrk',
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.durationS}s`,
    '--timeout', '5s',
    '-s', REPORT_SCRIPT,
    // wrk opens a new connection whenever the response says "Connection: close"; keep-alive is its default.
    ...(o.mode === 'close' ? ['-H', 'Connection: close'] : []),
    o.url,
  ];
  const r = await lab.exec(lab.client, argv, { timeoutMs: (o.durationS + 20) * 1000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (r.code !== 0 || line === undefined) {
    throw new Error(`wrk ${o.url}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  }
  return JSON.parse(line.slice('WRKJSON '.length)) as WrkResult;
}

/** Socket errors and HTTP errors together; wrk counts a request that failed in any of these ways once. */
export function wrkErrors(w: WrkResult): number {
  return w.connectErrors + w.readErrors + w.writeErrors + w.statusErrors + w.timeouts;
}

/** The non-zero error counters by kind. */
export function wrkErrorKinds(w: WrkResult): Record<string, number> {
  const all: Record<string, number> = {
    connect: w.connectErrors,
    read: w.readErrors,
    write: w.writeErrors,
    status: w.statusErrors,
    timeout: w.timeouts,
  };
  return Object.fromEntries(Object.entries(all).filter(([, n]) => n > 0));
}
