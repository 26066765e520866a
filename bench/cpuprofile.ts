// Reading V8 `.cpuprofile` files (what `node --cpu-prof` writes) and `strace -c` summaries into the short tables
// bench/profile.ts prints: self time per function over a time window, and syscalls by name.

/** The parts of a V8 CPU profile this reader uses. Times are µs on the monotonic clock (as process.hrtime). */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTimeRow {
  /** Function name, or V8's pseudo-frames: (garbage collector), (program), (idle). */
  readonly fn: string;
  /** file:line (1-based), relative to the repository or node_modules when possible; '' for pseudo-frames. */
  readonly where: string;
  readonly samples: number;
  /** Share of the busy (non-idle) samples in the window, in percent. */
  readonly pct: number;
}

export interface SelfTime {
  /** Samples in the window, idle ones included. */
  readonly total: number;
  readonly idle: number;
  readonly rows: readonly SelfTimeRow[];
}

export function isCpuProfile(v: unknown): v is CpuProfile {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return Array.isArray(p['nodes']) && Array.isArray(p['samples']) && Array.isArray(p['timeDeltas']) && typeof p['startTime'] === 'number';
}

/** Shortens a script URL to what a reader looks for: the path under the repository, or the package under node_modules. */
export function shortUrl(url: string, root: string): string {
  let u = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + 1);
  if (root !== '' && u.startsWith(root)) u = u.slice(root.endsWith('/') ? root.length : root.length + 1);
  return u;
}

/**
 * Self time per function (samples whose top frame is it), counting only samples taken in [fromUs, toUs] (monotonic
 * µs; pass -Infinity/Infinity for all). Functions are merged by name and location, so a function V8 compiled twice
 * counts once. `top` rows, busiest first.
 */
export function selfTime(p: CpuProfile, o: { fromUs: number; toUs: number; root: string; top: number }): SelfTime {
  const keyOf = new Map<number, { fn: string; where: string }>();
  for (const n of p.nodes) {
    const cf = n.callFrame;
    const where = cf.url === '' ? '' : `${shortUrl(cf.url, o.root)}:${cf.lineNumber + 1}`;
    keyOf.set(n.id, { fn: cf.functionName === '' ? '(anonymous)' : cf.functionName, where });
  }
  const counts = new Map<string, { fn: string; where: string; samples: number }>();
  let t = p.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < o.fromUs || t > o.toUs) continue;
    const k = keyOf.get(p.samples[i] ?? -1);
    if (k === undefined) continue;
    total++;
    if (k.fn === '(idle)') {
      idle++;
      continue;
    }
    const id = `${k.fn}\u0000${k.where}`;
    const c = counts.get(id);
    if (c === undefined) counts.set(id, { ...k, samples: 1 });
    else c.samples++;
  }
  const busy = Math.max(1, total - idle);
  const rows = [...counts.values()]
    .sort((a, b) => b.samples - a.samples)
    .slice(0, o.top)
    .map((c) => ({ ...c, pct: (100 * c.samples) / busy }));
  return { total, idle, rows };
}

export interface SyscallRow {
  readonly name: string;
  readonly calls: number;
  readonly errors: number;
  /** System time strace attributes to the call, in seconds (inflated by tracing; only for ranking). */
  readonly seconds: number;
}

/**
 * Parses the table `strace -c` writes: `% time  seconds  usecs/call  calls  errors syscall`, errors column optional,
 * a dashed line before the total. Rows sorted by calls.
 */
export function parseStraceSummary(text: string): SyscallRow[] {
  const rows: SyscallRow[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^\d+(\.\d+)?$/.test(f[0] ?? '')) continue;
    const name = f[f.length - 1] ?? '';
    if (name === 'total') continue;
    const calls = Number(f[3]);
    const errors = f.length >= 6 ? Number(f[4]) : 0;
    if (!Number.isFinite(calls)) continue;
    rows.push({ name, calls, errors: Number.isFinite(errors) ? errors : 0, seconds: Number(f[1]) });
  }
  return rows.sort((a, b) => b.calls - a.calls);
}

/** Adds syscall tables of several processes (the two agents) into one. */
export function mergeSyscalls(tables: readonly (readonly SyscallRow[])[]): SyscallRow[] {
  const m = new Map<string, { name: string; calls: number; errors: number; seconds: number }>();
  for (const t of tables) {
    for (const r of t) {
      const c = m.get(r.name);
      if (c === undefined) m.set(r.name, { ...r });
      else {
        c.calls += r.calls;
        c.errors += r.errors;
        c.seconds += r.seconds;
      }
    }
  }
  return [...m.values()].sort((a, b) => b.calls - a.calls);
}
