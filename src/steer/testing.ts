// Test doubles for steering: an in-memory `FlowTable` that behaves like the data path, so the
// steering policy is tested without root (as control/testing.ts does for the channel).
import type { SlotSpec, FlowTable } from './bpf.ts';
import type { FlowState } from './bpf-maps.ts';
import { flowKeyString, type FlowKey, type SteerCounters } from './types.ts';

/** The `FlowTable` port in memory: the model the unit tests drive, and a reference for the kernel projection. */
export class MemoryFlowTable implements FlowTable {
  readonly #m = new Map<string, readonly [FlowKey, FlowState]>();
  readonly slots: (SlotSpec | undefined)[] = [];
  now = 1_000_000_000n;
  closedWith: boolean | undefined;
  /** As the program's config linger_ns: a closing flow's packets push its deadline (0n: fixed deadline). */
  lingerNs = 0n;

  get(flow: FlowKey): FlowState | undefined {
    return this.#m.get(flowKeyString(flow))?.[1];
  }
  put(flow: FlowKey, v: FlowState): void {
    this.#m.set(flowKeyString(flow), [flow, v]);
  }
  delete(flow: FlowKey): boolean {
    return this.#m.delete(flowKeyString(flow));
  }
  entries(): Iterable<readonly [FlowKey, FlowState]> {
    return this.#m.values();
  }
  setBackend(index: number, slot: SlotSpec | undefined): void {
    this.slots[index] = slot;
  }
  counters(): SteerCounters {
    return { packets: 0n, bytes: 0n };
  }
  nowNs(): bigint {
    return this.now;
  }
  close(keep: boolean): Promise<void> {
    this.closedWith = keep;
    return Promise.resolve();
  }
  /** What the data path does on a client packet: refresh a forward, expire a closing or a hold past its deadline. */
  packet(flow: FlowKey, syn = false): 'pass' | 'drop' | number {
    const v = this.get(flow);
    if (v === undefined) return 'pass';
    if (syn) {
      this.delete(flow);
      return 'pass';
    }
    if (v.deadlineNs !== 0n && this.now > v.deadlineNs) {
      this.delete(flow);
      return 'pass';
    }
    if (v.verdict === 'hold') return 'drop';
    if (v.verdict === 'forward') this.put(flow, { ...v, lastSeenNs: this.now });
    if (v.verdict === 'closing' && this.lingerNs > 0n && v.deadlineNs - this.now < this.lingerNs / 2n) {
      this.put(flow, { ...v, deadlineNs: this.now + this.lingerNs });
    }
    return v.backend;
  }
}
