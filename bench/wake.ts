// What a system call costs right after the process wakes up (root): why an idle handoff is slow on a VM.
//   npm run bench:wake [-- --rounds 300 --json]
//
// A daemon waits in epoll between requests, then runs a burst of system calls: the front-end about 20 per handoff
// (accept4, TCP_REPAIR capture, bpf map updates, close), the agent about 25 (inject, liveness, the guard's maps).
// Under load they run back to back and cost ~1-3 µs each; on an idle machine each one runs right after a sleep.
// This times one getsockopt(TCP_INFO) and one bpf map update (pre-encoded, the front-end's flows map) after
// sleeping 0-20 ms (Atomics.wait: the thread blocks in the kernel, as in epoll_wait), pinned to CPU 0, twice: with
// CPU 0 otherwise idle (the vCPU halts while we sleep), and with a SCHED_IDLE spinner on CPU 0 (it never halts, and
// the spinner yields the moment we wake).
import { spawn, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadFrontendDetached } from '../src/steer/bpf-loader.ts';
import { mapUpdate } from '../src/sys/libbpf.ts';
import { close, socket } from '../src/sys/socket.ts';
import { getTcpInfo } from '../src/tcp/repair.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds);
const GAPS_MS = [0, 0.2, 1, 5, 20];

interface Cell {
  readonly gapMs: number;
  readonly syscall: readonly [number, number];
  readonly bpf: readonly [number, number];
}

const pct = (xs: number[], p: number): number => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;

/** The measurement, in a process pinned to CPU 0 by its parent. */
function child(): void {
  const fe = loadFrontendDetached({ maxFlows: 4096 });
  const fd = socket(4);
  try {
    const m = fe.maps;
    const vip = { address: '203.0.113.10', port: 80 };
    const keys = Array.from({ length: 1024 }, (_, i) => m.codecs.encodeFlowKey({ family: 4, clientAddress: `10.0.${i >> 8}.${i & 0xff}`, clientPort: 40000 }, vip));
    const value = m.codecs.encodeFlowState({ verdict: 'forward', backend: 0, flowId: 1, handoffId: 1n, lastSeenNs: 0n, deadlineNs: 0n });
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const cells: Cell[] = [];
    for (const gapMs of GAPS_MS) {
      const sys: number[] = [];
      const bpf: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        if (gapMs > 0) Atomics.wait(sleeper, 0, 0, gapMs);
        let t = process.hrtime.bigint();
        getTcpInfo(fd);
        sys.push(Number(process.hrtime.bigint() - t) / 1000);
        t = process.hrtime.bigint();
        mapUpdate(m.fds.flows, keys[i % keys.length] as Buffer, value);
        bpf.push(Number(process.hrtime.bigint() - t) / 1000);
      }
      cells.push({ gapMs, syscall: [pct(sys, 0.5), pct(sys, 0.9)], bpf: [pct(bpf, 0.5), pct(bpf, 0.9)] });
      process.stderr.write('.');
    }
    process.stdout.write(`${JSON.stringify(cells)}\n`);
  } finally {
    close(fd);
    fe.close();
  }
}

function run(spin: boolean): Cell[] {
  const spinner = spin ? spawn('taskset', ['-c', '0', 'chrt', '-i', '0', process.execPath, '-e', 'for (;;);'], { stdio: 'ignore' }) : undefined;
  try {
    const r = spawnSync('taskset', ['-c', '0', process.execPath, '--import', 'tsx', new URL(import.meta.url).pathname, '--child', '--rounds', String(ROUNDS)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`bench/wake: child exited ${r.status ?? r.signal}`);
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as Cell[];
  } finally {
    spinner?.kill('SIGKILL');
  }
}

function main(): void {
  if (process.getuid?.() !== 0) throw new Error('bench/wake: needs root (bpf maps)');
  process.stderr.write(`bench/wake: ${ROUNDS} rounds per gap, CPU 0 idle then with a SCHED_IDLE spinner `);
  const idle = run(false);
  const spun = run(true);
  process.stderr.write('\n');
  const f = ([p50, p90]: readonly [number, number]): string => `${p50.toFixed(1)} / ${p90.toFixed(1)}`;
  process.stdout.write('| sleep before | getsockopt µs p50 / p90, CPU idle | with spinner | bpf update µs p50 / p90, CPU idle | with spinner |\n');
  process.stdout.write('|--:|--:|--:|--:|--:|\n');
  idle.forEach((c, i) => {
    const s = spun[i];
    if (s === undefined) return;
    process.stdout.write(`| ${c.gapMs} ms | ${f(c.syscall)} | ${f(s.syscall)} | ${f(c.bpf)} | ${f(s.bpf)} |\n`);
  });
  if (args.json) process.stdout.write(`${JSON.stringify({ rounds: ROUNDS, idle, spinner: spun })}\n`);
}

if (args.child) child();
else main();
