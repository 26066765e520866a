// The one place that chooses a Steering implementation from configuration, so daemons and tests
// ask for "steering for this VIP on this interface" and never name an implementation.
import { BpfSteering } from './bpf.ts';
import { KernelFlowTable, sourceAddressFor } from './bpf-table.ts';
import { NftSteering } from './nft.ts';
import type { SteerBackend, Steering } from './types.ts';

export type SteeringKind = 'bpf' | 'nft';

export interface SteeringOptions {
  readonly kind: SteeringKind;
  /** Names the kernel state (nftables table, or bpffs pin directory /sys/fs/bpf/baton/<table>). */
  readonly table: string;
  /** The client-facing interface whose ingress is steered. */
  readonly device: string;
  readonly vip: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly backends: readonly SteerBackend[];
  /** Seconds without a client packet after which a forwarded flow is forgotten. */
  readonly idleTimeoutS?: number;
  /** How long a released flow keeps being forwarded, for its last FIN/ACK packets. */
  readonly lingerMs?: number;
  /** bpf only: adopt kernel state left by an earlier process (default true); false starts fresh. */
  readonly adopt?: boolean;
  /** bpf only: bpffs directory for the pins (default /sys/fs/bpf/baton/<table>). */
  readonly pinDir?: string;
  /** bpf only: capacity of the flows map. */
  readonly maxFlows?: number;
  /** bpf only: record and drop packets of flows this front-end does not know (several front-ends, issue 11). */
  readonly orphans?: boolean;
  /** bpf only: the encapsulation source address per encap back-end id. */
  readonly localFor?: (backendId: string) => string | undefined;
}

/** The bpffs directory holding a table's pinned maps and link. */
export const defaultPinDir = (table: string): string => `/sys/fs/bpf/baton/${table}`;

export async function createSteering(o: SteeringOptions): Promise<Steering> {
  switch (o.kind) {
    case 'nft':
      return NftSteering.create(o);
    case 'bpf': {
      const table = KernelFlowTable.open({
        ifname: o.device,
        pinDir: o.pinDir ?? defaultPinDir(o.table),
        vip: { address: o.vip, port: o.port },
        adopt: o.adopt ?? true,
        maxFlows: o.maxFlows,
        idleTimeoutS: o.idleTimeoutS ?? 300,
        lingerMs: o.lingerMs ?? 2000,
        orphans: o.orphans ?? false,
      });
      try {
        const backends = new Map(o.backends.map((b) => [b.id, b]));
        return new BpfSteering(table, {
          backends: o.backends,
          localFor: (id) => o.localFor?.(id) ?? sourceAddressFor(backends.get(id)!.address),
          idleTimeoutS: o.idleTimeoutS,
          lingerMs: o.lingerMs,
        });
      } catch (e) {
        await table.close(table.adopted);
        throw e;
      }
    }
  }
}
