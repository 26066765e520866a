// Trace-driven model of a LARD-style cluster (after Pai et al., ASPLOS 1998, section 4):
// a front-end that keeps at most S requests outstanding (closed loop: a new request enters as
// soon as one completes) and N back-ends, each a FIFO CPU and a FIFO disk in front of an LRU
// file cache. The policy under test is the same code the front-end runs; it sees each
// back-end's active connections = requests outstanding there.
//
// Per request on a back-end:
//   hit:  one CPU job (connection setup and teardown + transmit per KB);
//   miss: CPU setup job and a disk read (seek/rotation + per KB, another seek every 44 KB
//         beyond the first 44 KB) start together; when the read ends, a CPU job transmits;
//   request for a file whose read is in progress: waits for that read, counts as a hit.
// Because every job is enqueued at the current simulated time, a FIFO server is a single
// "free at" time and only completions need events.

import { backendId, type BackendId, type BackendView, type Policy, type RequestInfo } from '../policy/types.ts';
import { ByteLru } from './cache.ts';
import { EventHeap } from './heap.ts';
import type { Trace } from './trace.ts';

/** Costs in microseconds; defaults are the paper's measurements (300 MHz Pentium II, FreeBSD). */
export interface CostModel {
  /** CPU per request: connection setup and teardown (145 µs each). */
  readonly cpuPerRequestUs: number;
  /** CPU per KB transmitted (40 µs per 512 bytes). */
  readonly cpuPerKbUs: number;
  /** Disk per miss: seeks and rotation (28 ms). */
  readonly diskPerMissUs: number;
  /** Disk per KB read (410 µs per 4 KB). */
  readonly diskPerKbUs: number;
  /** Disk per further 44 KB beyond the first 44 KB (14 ms). */
  readonly diskPer44KbUs: number;
}

export const PAI_COSTS: CostModel = {
  cpuPerRequestUs: 290,
  cpuPerKbUs: 80,
  diskPerMissUs: 28_000,
  diskPerKbUs: 102.5,
  diskPer44KbUs: 14_000,
};

export interface ClusterConfig {
  readonly nodes: number;
  /** Cache per back-end, bytes. */
  readonly cacheBytes: number;
  readonly costs: CostModel;
  /** Front-end bound on outstanding requests (S). */
  readonly maxOutstanding: number;
  /** Leading fraction of the trace that warms caches and is not measured, in [0, 1). */
  readonly warmup: number;
}

export interface ClusterResult {
  /** Completed requests per simulated second, over the measured part of the trace. */
  readonly throughput: number;
  /** Fraction of measured requests served without a disk read. */
  readonly hitRate: number;
  /** max / mean over back-ends of busy time (CPU + disk); 1 is perfectly even. */
  readonly imbalance: number;
  readonly simulatedSeconds: number;
  readonly measuredRequests: number;
}

interface SimBackend extends BackendView {
  active: number;
}

const KB = 1024;
// Stages of an in-flight request, i.e. what its next event means.
const READ_DONE = 0;
const COMPLETE = 1;

export const diskCostUs = (bytes: number, c: CostModel): number => {
  const kb = bytes / KB;
  return c.diskPerMissUs + kb * c.diskPerKbUs + Math.max(0, Math.ceil((kb - 44) / 44)) * c.diskPer44KbUs;
};

export const cpuCostUs = (bytes: number, c: CostModel): number => c.cpuPerRequestUs + (bytes / KB) * c.cpuPerKbUs;

const requestInfos = (trace: Trace): RequestInfo[] => {
  const headers: ReadonlyMap<string, string> = new Map();
  return trace.targets.map((target) => {
    const q = target.indexOf('?');
    return { method: 'GET', target, path: q < 0 ? target : target.slice(0, q), host: '', headers };
  });
};

export const simulateCluster = (trace: Trace, policy: Policy, cfg: ClusterConfig): ClusterResult => {
  const n = cfg.nodes;
  const total = trace.requests.length;
  const S = Math.max(1, Math.floor(cfg.maxOutstanding));
  if (!(n >= 1 && Number.isInteger(n))) throw new RangeError(`simulate: nodes must be a positive integer, got ${n}`);
  if (!(cfg.warmup >= 0 && cfg.warmup < 1)) throw new RangeError(`simulate: warmup must be in [0, 1), got ${cfg.warmup}`);
  const c = cfg.costs;
  const infos = requestInfos(trace);
  const sizeOf = (t: number): number => trace.sizes[t]!;
  const views: SimBackend[] = Array.from({ length: n }, (_, i) => ({ id: backendId(`node${i}`), up: true, weight: 1, active: 0 }));
  const indexOf = new Map<BackendId, number>(views.map((v, i) => [v.id, i]));
  const caches = views.map(() => new ByteLru(cfg.cacheBytes, sizeOf));
  const cpuFree = new Float64Array(n);
  const diskFree = new Float64Array(n);
  const busy = new Float64Array(n);

  // In-flight requests live in slots 0..S-1.
  const slotTarget = new Int32Array(S);
  const slotNode = new Int32Array(S);
  const slotStage = new Uint8Array(S);
  const slotMeasured = new Uint8Array(S);
  const freeSlots = Array.from({ length: S }, (_, i) => S - 1 - i);
  const heap = new EventHeap(S + 1);

  const warmupEnd = Math.min(total - 1, Math.floor(total * cfg.warmup));
  let now = 0;
  let next = 0;
  let outstanding = 0;
  let completed = 0;
  let windowStart = 0;
  let completedAtStart = 0;
  let windowEnd = 0;
  let completedAtEnd = 0;
  let hits = 0;
  let measured = 0;

  const cpu = (node: number, cost: number, count: boolean): number => {
    const done = Math.max(now, cpuFree[node]!) + cost;
    cpuFree[node] = done;
    if (count) busy[node]! += cost;
    return done;
  };

  const issue = (): void => {
    const r = next++;
    if (r === warmupEnd) {
      windowStart = now;
      completedAtStart = completed;
    }
    const target = trace.requests[r]!;
    const pick = policy.pick(infos[target]!, views, now / 1000);
    if (pick.kind === 'none') throw new Error(`simulate: ${policy.name} picked nothing: ${pick.reason}`);
    const node = indexOf.get(pick.id);
    if (node === undefined) throw new Error(`simulate: ${policy.name} picked unknown back-end ${pick.id}`);
    views[node]!.active++;
    outstanding++;
    const slot = freeSlots.pop()!;
    const count = r >= warmupEnd;
    slotTarget[slot] = target;
    slotNode[slot] = node;
    slotMeasured[slot] = count ? 1 : 0;
    const size = sizeOf(target);
    const readyAt = caches[node]!.lookup(target);
    if (count) measured++;
    if (readyAt === undefined) {
      cpu(node, c.cpuPerRequestUs / 2, count);
      const cost = diskCostUs(size, c);
      const done = Math.max(now, diskFree[node]!) + cost;
      diskFree[node] = done;
      if (count) busy[node]! += cost;
      caches[node]!.insert(target, done);
      slotStage[slot] = READ_DONE;
      heap.push(done, slot);
      return;
    }
    if (count) hits++;
    if (readyAt > now) {
      cpu(node, c.cpuPerRequestUs / 2, count);
      slotStage[slot] = READ_DONE;
      heap.push(readyAt, slot);
      return;
    }
    slotStage[slot] = COMPLETE;
    heap.push(cpu(node, cpuCostUs(size, c), count), slot);
  };

  for (;;) {
    while (outstanding < S && next < total) {
      issue();
      if (next === total) {
        windowEnd = now;
        completedAtEnd = completed;
      }
    }
    if (heap.size === 0) break;
    now = heap.peekTime();
    const slot = heap.pop();
    const node = slotNode[slot]!;
    if (slotStage[slot] === READ_DONE) {
      const cost = cpuCostUs(sizeOf(slotTarget[slot]!), c) - c.cpuPerRequestUs / 2;
      slotStage[slot] = COMPLETE;
      heap.push(cpu(node, cost, slotMeasured[slot] === 1), slot);
      continue;
    }
    views[node]!.active--;
    outstanding--;
    completed++;
    freeSlots.push(slot);
  }

  const seconds = (windowEnd - windowStart) / 1e6;
  let max = 0;
  let sum = 0;
  for (const b of busy) {
    max = Math.max(max, b);
    sum += b;
  }
  return {
    throughput: seconds > 0 ? (completedAtEnd - completedAtStart) / seconds : 0,
    hitRate: measured > 0 ? hits / measured : 0,
    imbalance: sum > 0 ? max / (sum / n) : 1,
    simulatedSeconds: now / 1e6,
    measuredRequests: measured,
  };
};
