// Reading V8 `.cpuprofile` files (what `node --cpu-prof` writes) and `strace -c` summaries into the short tables
// bench/profile.ts prints: self time per function over a time window, and syscalls by name.

/** The parts of a V8 CPU profile this reader uses. Times are µs on the monotonic clock (as process.hrtime). */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTimeRow {
  /** Function name, or V8's pseudo-frames: (garbage collector), (program), (idle). */
  readonly fn: string;
  /**
   * file:line (1-based), relative to the repository or node_modules when possible; '' for pseudo-frames. A native
   * function (a C++ binding: a socket write, a koffi call, whose names V8 often reports wrongly) is charged to the
   * nearest caller in the repository's own code: `← caller file:line`.
   */
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

/** Maps a profile position to a line in the source a reader has (tsx compiles each module onto one line). */
export type LineOf = (url: string, functionName: string, line: number) => number;

/**
 * A LineOf for tsx-run TypeScript: the line where `functionName` is declared in the file on disk (a method, a
 * function, a `name =`/`name:` property), else the profile's own line. A heuristic, good enough to find the function.
 */
export function declarationLines(read: (path: string) => string | undefined): LineOf {
  const cache = new Map<string, string[] | undefined>();
  return (url, fn, line) => {
    if (!url.startsWith('file://') || fn === '' || url.includes('/node_modules/')) return line;
    const path = decodeURIComponent(url.slice('file://'.length));
    if (!cache.has(path)) cache.set(path, read(path)?.split('\n'));
    const lines = cache.get(path);
    if (lines === undefined) return line;
    const name = fn.replace(/^(get|set) /, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const decl = new RegExp(`(function\\s*\\*?\\s*${name}\\b|(^|\\s)(async\\s+|static\\s+|get\\s+|set\\s+|private\\s+|readonly\\s+)*${name}\\s*(<[^>]*>)?\\(|\\b${name}\\s*[=:]\\s*(async\\s*)?(\\(|function)|class\\s+${name}\\b)`);
    const i = lines.findIndex((l) => decl.test(l));
    return i >= 0 ? i + 1 : line;
  };
}

/**
 * Self time per function (samples whose top frame is it), counting only samples taken in [fromUs, toUs] (monotonic
 * µs; pass -Infinity/Infinity for all). Functions are merged by name and location, so a function V8 compiled twice
 * counts once. `top` rows, busiest first.
 */
export function selfTime(
  p: CpuProfile,
  o: { fromUs: number; toUs: number; root: string; top: number; lineOf?: LineOf },
): SelfTime {
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const lineOf = o.lineOf ?? ((_f: string, _fn: string, line: number) => line);
  const locate = (cf: CpuProfile['nodes'][number]['callFrame']): string => {
    const file = shortUrl(cf.url, o.root);
    return `${file}:${lineOf(cf.url, cf.functionName, cf.lineNumber + 1)}`;
  };
  const ownCaller = (id: number): string => {
    for (let q = parent.get(id); q !== undefined; q = parent.get(q)) {
      const cf = byId.get(q)?.callFrame;
      if (cf !== undefined && cf.url.startsWith('file://') && !cf.url.includes('/node_modules/')) {
        return `← ${cf.functionName === '' ? '(anonymous)' : cf.functionName} ${locate(cf)}`;
      }
    }
    return '';
  };
  const keyOf = new Map<number, { fn: string; where: string }>();
  for (const n of p.nodes) {
    const cf = n.callFrame;
    const pseudo = cf.functionName.startsWith('(');
    const where = cf.url !== '' ? locate(cf) : pseudo ? '' : ownCaller(n.id);
    const fn = cf.functionName === '' ? '(anonymous)' : cf.url === '' && !pseudo ? '(native)' : cf.functionName;
    keyOf.set(n.id, { fn, where });
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
