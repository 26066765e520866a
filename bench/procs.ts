// Helpers for the long-running processes of a run: waiting for a URL to answer and stopping a child politely.

import type { ChildProcess } from 'node:child_process';
import type { Lab, LabHost } from '../src/lab/lab.ts';

/** Keeps the last few KB of a child's output, for error messages when it dies early. */
export function captureOutput(child: ChildProcess): () => string {
  let buf = '';
  const add = (b: Buffer): void => {
    buf = (buf + b.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => buf.trim();
}

/** Polls `curl` from `from` until `url` answers 200, the child dies, or the timeout passes. */
export async function waitHttp200(
  lab: Lab,
  from: LabHost,
  url: string,
  timeoutMs: number,
  child?: ChildProcess,
  output?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${url} answered: ${lastLines(output?.() ?? '')}`);
    }
    const r = await lab.exec(from, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', url], {
      timeoutMs: 3000,
    });
    last = `${r.stdout}${r.stderr}`.trim();
    if (r.stdout.trim() === '200') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last || 'no answer'}) ${lastLines(output?.() ?? '')}`);
}

/** The last lines of a process's output, on one line: where daemons put the reason they stopped. */
export function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).map((l) => l.trim()).join(' / ');
}

export { stopChild } from '../src/lab/lab.ts';

export function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('child process has no pid (spawn failed)');
  return child.pid;
}
