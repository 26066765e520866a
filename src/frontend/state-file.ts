// Operator state that outlives the process (as HAProxy's server-state-file): which back-ends are
// drained and which failed their health checks, written whenever it changes and read at start,
// so a restart neither sends new connections to a back-end taken out for maintenance nor to one
// known to be failing before its checks run again. Small JSON, written atomically (temp + rename).
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';

const MAX_BYTES = 1 << 20;

const stateSchema = z.object({
  version: z.literal(1),
  backends: z.record(z.string(), z.object({ drained: z.boolean().optional(), healthy: z.boolean().optional() })),
});

export type BackendsState = z.infer<typeof stateSchema>['backends'];

/** The saved state, or an empty one when the file is missing, unreadable or not ours (never throws). */
export async function loadState(path: string): Promise<{ state: BackendsState; problem?: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { state: {} } : { state: {}, problem: `cannot read ${path}: ${(e as Error).message}` };
  }
  if (text.length > MAX_BYTES) return { state: {}, problem: `${path} is larger than ${MAX_BYTES} bytes` };
  try {
    const r = stateSchema.safeParse(JSON.parse(text));
    return r.success ? { state: r.data.backends } : { state: {}, problem: `${path}: not a baton state file` };
  } catch {
    return { state: {}, problem: `${path}: invalid JSON` };
  }
}

/** Writes the state atomically, mode 0600, creating the directory; an empty state removes the file. */
export async function saveState(path: string, state: BackendsState): Promise<void> {
  if (Object.keys(state).length === 0) {
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    return;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ version: 1, backends: state }, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * Serializes saves: the latest state always wins, writes never interleave, and a burst of
 * changes costs at most two writes.
 */
export class StateWriter {
  readonly #path: string;
  readonly #onError: (e: Error) => void;
  #pending: BackendsState | undefined;
  #running: Promise<void> | undefined;

  constructor(path: string, onError: (e: Error) => void) {
    this.#path = path;
    this.#onError = onError;
  }

  save(state: BackendsState): void {
    this.#pending = state;
    this.#running ??= this.#drain();
  }

  /** Resolves once everything asked so far is written. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#pending !== undefined) {
      const s = this.#pending;
      this.#pending = undefined;
      await saveState(this.#path, s).catch((e: Error) => this.#onError(e));
    }
    this.#running = undefined;
  }
}
