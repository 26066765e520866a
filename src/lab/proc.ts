// Processes in a lab: stopping children gracefully, killing strays by pid, telling a live process from a zombie.

import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const KILL_GRACE_MS = 2000;

/** SIGTERM, then SIGKILL after graceMs; resolves when the child has exited. */
export async function stopChild(c: ChildProcess, graceMs = KILL_GRACE_MS): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Sends `signal` to the child and resolves once it has exited (a fault: no grace period, no escalation). */
export async function killChild(c: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  c.kill(signal);
  await exited;
}

/** Sends `signal` to a pid (not necessarily our child) and waits up to waitMs for it to be gone. */
export async function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL', waitMs = 2000): Promise<boolean> {
  try {
    process.kill(pid, signal);
  } catch {
    return !isAlive(pid);
  }
  for (let waited = 0; waited < waitMs && isAlive(pid); waited += 20) await sleep(20);
  return !isAlive(pid);
}

export function parsePids(out: string): number[] {
  return out
    .split('\n')
    .map((s) => Number.parseInt(s.trim(), 10))
    .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
}

export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** True while the process exists and is not a zombie (a killed orphan may wait a while for its reaper). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
