// The `FlowTable` port over the loaded front-end data plane: what BpfSteering writes becomes one bpf() map
// operation each. The VIP and port are fixed per table (one steered service per front-end process).
import { execFileSync } from 'node:child_process';
import { isIPv6 } from 'node:net';
import type { FlowTable, SlotSpec } from './bpf.ts';
import type { FlowState, Vip } from './bpf-maps.ts';
import { loadFrontendDataplane, type FrontendDataplane } from './bpf-loader.ts';
import type { FlowKey, OrphanFlow, OrphanSource, SteerCounters } from './types.ts';

export interface KernelFlowTableOptions {
  readonly ifname: string;
  readonly pinDir: string;
  readonly vip: Vip;
  readonly adopt: boolean;
  readonly maxFlows?: number;
  readonly idleTimeoutS: number;
  /** How long a closing flow stays steered after its last packet. */
  readonly lingerMs: number;
  /** Record and drop packets of flows with no entry and no local connection (several front-ends). */
  readonly orphans?: boolean;
}

export class KernelFlowTable implements FlowTable {
  readonly #dp: FrontendDataplane;
  readonly #vip: Vip;
  readonly orphans: OrphanSource | undefined;

  private constructor(dp: FrontendDataplane, vip: Vip, orphans: boolean) {
    this.#dp = dp;
    this.#vip = vip;
    this.orphans = orphans ? this.#orphanSource() : undefined;
  }

  static open(o: KernelFlowTableOptions): KernelFlowTable {
    const dp = loadFrontendDataplane({ ifname: o.ifname, pinDir: o.pinDir, adopt: o.adopt, maxFlows: o.maxFlows });
    const family = isIPv6(o.vip.address) ? 6 : 4;
    dp.maps.setConfig({
      refreshNs: 1_000_000_000n,
      idleTimeoutNs: BigInt(o.idleTimeoutS) * 1_000_000_000n,
      lingerNs: BigInt(o.lingerMs) * 1_000_000n,
      ...(o.orphans === true ? { orphans: { family, vip: o.vip } } : {}),
    });
    return new KernelFlowTable(dp, o.vip, o.orphans === true);
  }

  #orphanSource(): OrphanSource {
    const maps = this.#dp.maps;
    const vip = this.#vip;
    const mine = (e: { vip: Vip }): boolean => e.vip.address === vip.address && e.vip.port === vip.port;
    const view = (e: { flow: FlowKey; firstSeenNs: bigint; packets: number; pass?: boolean }): OrphanFlow => ({
      flow: e.flow, firstSeenNs: e.firstSeenNs, packets: e.packets, pass: e.pass === true,
    });
    return {
      list: () => [...maps.iterateOrphans()].filter(mine).map(view),
      get: (flow) => {
        const e = maps.getOrphan(flow, vip);
        return e === undefined ? undefined : view(e);
      },
      forget: (flow) => void maps.deleteOrphan(flow, vip),
      pass: (flow) => {
        const e = maps.getOrphan(flow, vip);
        if (e !== undefined) maps.putOrphan({ ...e, pass: true });
      },
      nowNs: () => this.nowNs(),
    };
  }

  /** True when the maps of an earlier process were adopted (its handed-off flows keep flowing). */
  get adopted(): boolean {
    return this.#dp.adopted;
  }

  get(flow: FlowKey): FlowState | undefined {
    return this.#dp.maps.getFlow(flow, this.#vip);
  }

  put(flow: FlowKey, v: FlowState): void {
    this.#dp.maps.putFlow(flow, this.#vip, v);
  }

  delete(flow: FlowKey): boolean {
    return this.#dp.maps.deleteFlow(flow, this.#vip);
  }

  *entries(): Iterable<readonly [FlowKey, FlowState]> {
    for (const e of this.#dp.maps.iterateFlows()) {
      if (e.vip.address === this.#vip.address && e.vip.port === this.#vip.port) yield [e.flow, e.state];
    }
  }

  setBackend(index: number, slot: SlotSpec | undefined): void {
    if (slot === undefined) return this.#dp.maps.clearBackend(index);
    const family = isIPv6(slot.address) ? 6 : 4;
    const prev = this.#dp.maps.getBackend(index);
    // A slot given to a different back-end starts its counters from zero.
    if (prev.mode === 'unused' || prev.address !== slot.address) this.#dp.maps.resetCounters(index);
    this.#dp.maps.setBackend(index, { mode: slot.mode, family, ifindex: 0, address: slot.address, local: slot.local });
  }

  counters(index: number): SteerCounters {
    return this.#dp.maps.readCounters(index);
  }

  nowNs(): bigint {
    // bpf_ktime_get_ns and libuv's hrtime both read CLOCK_MONOTONIC.
    return process.hrtime.bigint();
  }

  close(keep: boolean): Promise<void> {
    this.#dp.close({ keep });
    return Promise.resolve();
  }
}

/** The source address this host uses to reach `address` (the encapsulated packets' source). */
export function sourceAddressFor(address: string): string {
  const out = execFileSync('ip', ['-j', 'route', 'get', address], { encoding: 'utf8', timeout: 5000 });
  const routes = JSON.parse(out) as { prefsrc?: string }[];
  const src = routes[0]?.prefsrc;
  if (src === undefined) throw new Error(`steering: no source address for ${address} (ip route get)`);
  return src;
}
