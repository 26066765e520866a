// Running the external tools the lab is built from (`ip`, `sysctl`, `cat`), async and sync.
// Commands never go through a shell: argv arrays only, so names and addresses are never re-parsed.

import { execFileSync, spawn } from 'node:child_process';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this long; the result then has code 124 like timeout(1). */
  readonly timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string;
}

/** A lab command failed; `argv` and `stderr` say which and why. */
export class LabError extends Error {
  readonly code = 'BATON_ERR_LAB';
  constructor(
    message: string,
    readonly argv: readonly string[] = [],
    readonly stderr = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LabError';
  }
}

/** Runs argv[0] with the rest as arguments; never throws for a non-zero exit (see runOk). */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new LabError('run: empty argv'));
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // EPIPE when the command ignores its input
    child.stdin.end(opts.input ?? '');
    const finish = (code: number, extraErr = ''): void => {
      if (timer !== undefined) clearTimeout(timer);
      resolve({
        code: timedOut ? 124 : code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + extraErr,
      });
    };
    child.on('error', (e) => finish(127, `${e.message}\n`));
    child.on('close', (code, signal) => finish(code ?? (signal === null ? 1 : 128)));
  });
}

/** Like run, but a non-zero exit becomes a LabError carrying the command and its stderr. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new LabError(`${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`, argv, r.stderr);
  }
  return r.stdout;
}

/** Synchronous best-effort run for process-exit handlers, where no promise will ever settle. */
export function runSync(argv: readonly string[]): string {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return '';
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).toString('utf8');
  } catch {
    return '';
  }
}
