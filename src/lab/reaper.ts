// Cleaning labs up, in layers, because labs outlive crashed processes: a lab's own down() for the normal path, exit
// and signal handlers for a dying process, and labDownAll() with state files in /run/baton-lab plus a namespace-name
// scan for the rest. Everything a lab creates lives inside its namespaces (processes, nftables tables, routes, BIRD)
// or under its work directory (configs, sockets, a bpffs whose unmount frees every pin in it), so removing those
// removes everything.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, killQuietly, parsePids, sleep } from './proc.ts';
import { LabError, run, runOk, runSync } from './run.ts';

export const LAB_STATE_DIR = '/run/baton-lab';
/** Namespaces of labs with generated ids; labDownAll() finds them even without a state file. */
export const LAB_NETNS_PATTERN = /^bt[0-9a-f]{4}-/;

/** What the reaper needs of a live lab of this process. */
export interface Reapable {
  readonly id: string;
  readonly vip: string;
  readonly keepOnExit: boolean;
  /** Hosts first, the hub (switch or router) last. */
  namespaces(): string[];
  down(): Promise<void>;
  /** For exit handlers: synchronous and best effort. */
  downSync(): void;
}

interface LabStateFile {
  readonly id: string;
  readonly vip: string;
  readonly namespaces: readonly string[];
  readonly pid: number;
  readonly createdAt: string;
}

/** Labs of this process that are up, for the exit handlers. */
const live = new Map<string, Reapable>();

/** Tracks a lab that is coming up: state file written, exit handlers installed. */
export function trackLab(lab: Reapable): void {
  live.set(lab.id, lab);
  installExitHandlers();
  const s: LabStateFile = {
    id: lab.id,
    vip: lab.vip,
    namespaces: lab.namespaces(),
    pid: process.pid,
    createdAt: new Date().toISOString(),
  };
  mkdirSync(LAB_STATE_DIR, { recursive: true });
  writeFileSync(stateFile(lab.id), `${JSON.stringify(s, null, 2)}\n`);
}

/** Forgets a lab that is down: its mounts (bpffs) undone, state file and work directory removed. */
export function untrackLab(id: string): void {
  // Unmount first: removing the tree would otherwise unlink pins one by one and then fail on the mount point.
  for (const m of mountsUnder(labWorkDir(id))) runSync(['umount', '-l', m]);
  rmSync(stateFile(id), { force: true });
  rmSync(labWorkDir(id), { recursive: true, force: true });
  live.delete(id);
}

/** A directory for the lab's files (daemon configs, control sockets, the bpffs for pins); removed with the lab. */
export function labWorkDir(id: string): string {
  return join(LAB_STATE_DIR, id);
}

/** Mount points at or below dir in this mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export function stateFile(id: string): string {
  return join(LAB_STATE_DIR, `${id}.json`);
}

/** Hubs (switch `-sw`, router `-rt`) sort last, so veth pairs disappear with their host end first. */
function isHub(ns: string): boolean {
  return ns.endsWith('-sw') || ns.endsWith('-rt');
}

/**
 * Removes baton lab namespaces left by this or any other (crashed) process: those named in state files and those
 * matching LAB_NETNS_PATTERN. With a prefix (usually a lab id) only namespaces whose name starts with it.
 * Returns the namespaces removed. Without a prefix this also removes labs other people are using.
 */
export async function labDownAll(prefix = ''): Promise<string[]> {
  const matches = (ns: string): boolean => ns.startsWith(prefix);
  for (const lab of [...live.values()]) {
    if (lab.namespaces().some(matches)) await lab.down();
  }
  const existing = new Set(await listNamespaces());
  const targets = new Set<string>();
  const ids: string[] = [];
  for (const f of stateFiles()) {
    const s = readState(f);
    if (s === undefined) continue;
    if (!s.namespaces.some(matches)) continue;
    ids.push(s.id);
    for (const ns of s.namespaces) if (existing.has(ns)) targets.add(ns);
  }
  for (const ns of existing) {
    if (LAB_NETNS_PATTERN.test(ns) && matches(ns)) {
      targets.add(ns);
      ids.push(ns.slice(0, ns.indexOf('-')));
    }
  }
  const ordered = [...targets].sort((a, b) => Number(isHub(a)) - Number(isHub(b)));
  await removeNamespaces(ordered);
  for (const id of new Set(ids)) untrackLab(id);
  return ordered;
}

/** Names from `ip netns list` ("bt1a2b-sw (id: 3)" lines). */
export async function listNamespaces(): Promise<string[]> {
  const out = await runOk(['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((s) => s !== '');
}

/** Kills every process inside the namespaces, then deletes them (with their interfaces, routes and nft tables). */
export async function removeNamespaces(namespaces: readonly string[]): Promise<void> {
  const existing = new Set(await listNamespaces());
  const present = namespaces.filter((ns) => existing.has(ns));
  await Promise.all(present.map((ns) => killNamespacePids(ns)));
  for (const ns of present) {
    const r = await run(['ip', 'netns', 'del', ns]);
    if (r.code !== 0 && (await listNamespaces()).includes(ns)) {
      throw new LabError(`remove namespace ${ns}: ${r.stderr.trim()}`, [], r.stderr);
    }
  }
}

export function removeNamespaceSync(ns: string): void {
  for (const pid of parsePids(runSync(['ip', 'netns', 'pids', ns]))) killQuietly(pid);
  runSync(['ip', 'netns', 'del', ns]);
}

async function killNamespacePids(ns: string): Promise<void> {
  const out = (await run(['ip', 'netns', 'pids', ns])).stdout;
  const pids = parsePids(out);
  for (const pid of pids) killQuietly(pid);
  // Wait briefly so sockets are gone before the namespace is deleted (they would keep it alive unnamed).
  for (let i = 0; i < 20 && pids.some(isAlive); i++) await sleep(50);
}

function stateFiles(): string[] {
  try {
    return readdirSync(LAB_STATE_DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(LAB_STATE_DIR, f));
  } catch {
    return [];
  }
}

function readState(file: string): LabStateFile | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof v !== 'object' || v === null) return undefined;
    const o = v as Record<string, unknown>;
    const ns = o['namespaces'];
    if (typeof o['id'] !== 'string' || !Array.isArray(ns) || !ns.every((x) => typeof x === 'string')) return undefined;
    return {
      id: o['id'],
      vip: typeof o['vip'] === 'string' ? o['vip'] : '',
      namespaces: ns as string[],
      pid: typeof o['pid'] === 'number' ? o['pid'] : 0,
      createdAt: typeof o['createdAt'] === 'string' ? o['createdAt'] : '',
    };
  } catch {
    return undefined;
  }
}

let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', downAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      downAllSync();
      process.off(sig, onSignal);
      // Keep the default meaning of the signal unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function downAllSync(): void {
  for (const lab of [...live.values()]) if (!lab.keepOnExit) lab.downSync();
}
