// Where the back-end's guard parks packets (backend/park-bpf.ts): an nfqueue bound in this network namespace and
// the nftables rule that sends the guard's marked packets to it (nft-queue-rule.ts). Opened and closed together,
// so a rule never outlives its reader (without a reader the kernel drops, never delivers, what the rule queues).
import { NfQueue, type OnPackets } from '../sys/nfqueue.ts';
import { MAX_VERDICT_PAYLOAD, type Verdict } from '../wire/nfqueue.ts';
import { installQueueRule, removeQueueRule } from './nft-queue-rule.ts';

export interface ParkQueue {
  /** Reads what is queued now (delivered through onPackets, synchronously). */
  drain(): void;
  verdict(vs: readonly Verdict[]): void;
  /** Unbinds the queue and removes the rule. */
  close(): void;
}

export interface ParkQueueOptions {
  readonly queue: number;
  /** nftables tables (ip and ip6 families) holding the rule. */
  readonly table: string;
  readonly mark: number;
  readonly mask: number;
}

/**
 * Binds the queue, then installs the rule; on failure nothing is left behind. Whole packets are copied up (not just
 * their headers): one parked still encapsulated goes back restored, as a verdict carrying all its bytes.
 */
export function openParkQueue(o: ParkQueueOptions, onPackets: OnPackets): ParkQueue {
  const nfq = NfQueue.open({ queue: o.queue, copyRange: MAX_VERDICT_PAYLOAD }, onPackets);
  try {
    installQueueRule({ table: o.table, queue: o.queue, mark: o.mark, mask: o.mask });
  } catch (err) {
    nfq.close();
    throw err;
  }
  return {
    drain: () => void nfq.drain(),
    verdict: (vs) => nfq.verdict(vs),
    close: () => {
      removeQueueRule(o.table);
      nfq.close();
    },
  };
}
