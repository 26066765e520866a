// One long-lived `nft -i` process, fed through a pipe (~150 us per command instead of ~2 ms for
// a process per command; KERNEL-NOTES.md). Requests are pipelined: each is a few command lines
// followed by a sentinel (`list set ... ack`) whose output marks the request as applied; any
// other output before the sentinel is that request's error text.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { BatonError } from '../wire/errors.ts';

export class NftError extends BatonError {
  constructor(message: string) {
    super('BATON_ERR_NFT', message);
  }
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly what: string;
}

export class NftSession {
  readonly #table: string;
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #pending: Pending[] = [];
  readonly #sentinel: RegExp;
  #buf = '';
  #dead: Error | undefined;

  constructor(table: string, netnsExec: readonly string[] = []) {
    this.#table = table;
    // stderr is merged into stdout so that errors and sentinels arrive in order.
    const argv = [...netnsExec, 'sh', '-c', 'exec nft -i 2>&1'];
    this.#proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#sentinel = new RegExp(`table netdev ${table} \\{\\n\\tset ack \\{\\n(?:\\t\\t[^\\n]*\\n)*\\t\\}\\n\\}\\n`);
    this.#proc.stdout.setEncoding('utf8');
    this.#proc.stdout.on('data', (d: string) => this.#onData(d));
    this.#proc.on('error', (e) => this.#fail(new NftError(`nft: ${e.message}`)));
    this.#proc.on('exit', (code, sig) => this.#fail(new NftError(`nft exited (${sig ?? code})`)));
    this.#proc.stdin.on('error', (e) => this.#fail(new NftError(`nft stdin: ${e.message}`)));
  }

  /** Applies command lines in order; resolves when nft has processed them, rejects with their error text. */
  run(lines: readonly string[], what: string): Promise<void> {
    if (this.#dead) return Promise.reject(this.#dead);
    for (const l of lines) if (l.includes('\n')) throw new TypeError('nft command lines must not contain newlines');
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ resolve, reject, what });
      this.#proc.stdin.write(`${lines.join('\n')}\nlist set netdev ${this.#table} ack\n`);
    });
  }

  #onData(d: string): void {
    this.#buf += d;
    for (;;) {
      const m = this.#sentinel.exec(this.#buf);
      if (!m) break;
      const before = this.#buf.slice(0, m.index).trim();
      this.#buf = this.#buf.slice(m.index + m[0].length);
      const p = this.#pending.shift();
      if (!p) continue;
      if (before === '') p.resolve();
      else p.reject(new NftError(`${p.what}: ${firstErrorLine(before)}`));
    }
    // A failed sentinel means the table is gone: nothing can be confirmed any more.
    if (/Error: .*\n.*list set netdev \S+ ack/.test(this.#buf)) this.#fail(new NftError(`nft: table ${this.#table} is gone`));
  }

  #fail(e: Error): void {
    if (this.#dead) return;
    this.#dead = e;
    for (const p of this.#pending.splice(0)) p.reject(e);
  }

  async close(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.#proc.once('exit', () => r()));
    this.#proc.stdin.end();
    const t = setTimeout(() => this.#proc.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  }
}

function firstErrorLine(text: string): string {
  return text.split('\n').find((l) => l.startsWith('Error:')) ?? text.split('\n')[0] ?? text;
}
