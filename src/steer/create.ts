// The one place that chooses a Steering implementation from configuration, so daemons and tests
// ask for "steering for this VIP on this interface" and never name an implementation.
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
}

export async function createSteering(o: SteeringOptions): Promise<Steering> {
  switch (o.kind) {
    case 'nft':
      return NftSteering.create(o);
    case 'bpf':
      throw new Error('steering: bpf steering is not built yet; use steering.kind "nft"');
  }
}
