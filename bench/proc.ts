// CPU accounting from /proc: a process tree's user+sys time (so nginx/haproxy workers and any helper children count
// towards their front-end) and the machine's busy time. Values are in milliseconds.

import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** USER_HZ; 100 on every Linux ABI Node supports. Its 10 ms tick is why cells run for seconds, not milliseconds. */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  readonly ppid: number;
  /** utime + stime + cutime + cstime in ticks: own time plus that of reaped children. */
  readonly ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses; fields after the last ')' are fixed: state ppid ... utime(14) stime(15)
  // cutime(16) cstime(17), i.e. indices 11..14 after the state field.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const num = (i: number): number => Number(f[i] ?? 0);
  return { ppid: num(1), ticks: num(11) + num(12) + num(13) + num(14) };
}

/** CPU milliseconds used so far by the given processes and all their live descendants. */
export function treeCpuMs(roots: readonly number[]): number {
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st !== undefined) stats.set(Number(name), st);
  }
  const children = new Map<number, number[]>();
  for (const [pid, st] of stats) {
    const list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, [pid]);
    else list.push(pid);
  }
  let ticks = 0;
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    ticks += stats.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** Busy CPU milliseconds of the whole machine (all CPUs, everything but idle and iowait). */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already inside user.
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return ((total - idle) * 1000) / TICKS_PER_SECOND;
}

/** Inode numbers of network namespaces named under /run/netns (what /proc/<pid>/ns/net links to). */
export function netnsInodes(names: readonly string[]): Set<number> {
  const out = new Set<number>();
  for (const n of names) {
    try {
      out.add(statSync(`/run/netns/${n}`).ino);
    } catch {
      // a namespace that is gone has no processes to count
    }
  }
  return out;
}

/**
 * CPU milliseconds of the lab, for a machine shared with unrelated work: every live process whose network namespace
 * is one of the lab's (own time and reaped children's), plus this process's reaped children (wrk and curl, which run
 * in the client namespace and have exited by the time a cell is read), plus the machine's irq and softirq time (packet
 * work is charged to whatever runs; on a shared machine that softirq share also carries other users' packets).
 */
export function labCpuMs(nsInodes: ReadonlySet<number>): number {
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let link: string;
    try {
      link = readlinkSync(`/proc/${name}/ns/net`);
    } catch {
      continue;
    }
    const ino = Number(/\[(\d+)\]/.exec(link)?.[1] ?? NaN);
    if (!nsInodes.has(ino)) continue;
    ticks += readStat(Number(name))?.ticks ?? 0;
  }
  const self = readFileSync('/proc/self/stat', 'utf8');
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ');
  ticks += Number(f[13] ?? 0) + Number(f[14] ?? 0);
  const v = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  ticks += (v[5] ?? 0) + (v[6] ?? 0);
  return (ticks * 1000) / TICKS_PER_SECOND;
}
