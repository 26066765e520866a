// The markdown tables of bench/profile.ts: top self-time functions per process, syscalls per request per side.

import type { SelfTime, SyscallRow } from './cpuprofile.ts';
import type { WrkResult } from './wrk.ts';

export interface ProcProfile {
  readonly name: string;
  readonly cpuUsPerReq: number;
  readonly self?: SelfTime;
  readonly error?: string;
}

export interface ProcSyscalls {
  readonly name: string;
  readonly rows: readonly SyscallRow[];
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

export function cpuSection(profiles: readonly ProcProfile[]): string {
  const out: string[] = ['## Self time (top functions, % of the busy samples in the profiled window)', ''];
  for (const p of profiles) {
    if (p.self === undefined) {
      out.push(`### ${p.name}: ${p.error ?? 'no profile'}`, '');
      continue;
    }
    const s = p.self;
    const idlePct = s.total === 0 ? 0 : (100 * s.idle) / s.total;
    out.push(
      `### ${p.name} — ${p.cpuUsPerReq.toFixed(0)} µs CPU per request; ${s.total} samples, ${idlePct.toFixed(0)}% idle`,
      '',
      '| # | function | where | % busy |',
      '|--:|---|---|--:|',
      ...s.rows.map((r, i) => `| ${i + 1} | ${cell(r.fn)} | ${cell(r.where)} | ${r.pct.toFixed(1)} |`),
      '',
    );
  }
  return out.join('\n');
}

/** Syscalls per request for each side: the front-end's, and the agents' together (each handles half the requests). */
export function straceSection(w: WrkResult, tables: readonly ProcSyscalls[], top: number): string {
  const n = Math.max(1, w.requests);
  const out: string[] = [
    `## Syscalls per request (strace -c -f, ${w.requests} requests at ${Math.round(w.requests / (w.durationUs / 1e6))} req/s under tracing)`,
    '',
  ];
  for (const t of tables) {
    const total = t.rows.reduce((a, r) => a + r.calls, 0);
    out.push(
      `### ${t.name}: ${(total / n).toFixed(1)} syscalls per request`,
      '',
      '| syscall | per request | errors per request |',
      '|---|--:|--:|',
      ...t.rows.slice(0, top).map((r) => `| ${r.name} | ${(r.calls / n).toFixed(2)} | ${(r.errors / n).toFixed(2)} |`),
      '',
    );
  }
  return out.join('\n');
}
