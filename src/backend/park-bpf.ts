// The parking model (park.ts) projected onto the kernel: the guard's bpf maps (guarded VIPs, tuples being injected,
// the program's queue/drop switch), an nfqueue the parked packets wait in, and the nftables rule between the two
// (steer/nft-queue-rule.ts: prerouting, priority raw, so before conntrack; no bypass: with nobody reading, the kernel
// drops rather than let a packet reach a stack that would reset the client). The mark and mask come from the
// program's BTF (enum park_mark). The caller runs in the agent's network namespace.
import type { BackendDataplane } from '../steer/bpf-loader.ts';
import type { GuardMaps } from '../steer/bpf-guard-maps.ts';
import { removeQueueRule } from '../steer/nft-queue-rule.ts';
import { openParkQueue, type ParkQueue } from '../steer/park-queue.ts';
import { sendReset } from '../tcp/fin.ts';
import { BatonError } from '../wire/errors.ts';
import { type GuardPort, type ParkLimits, ParkModel, type QueuePort } from './park.ts';

/** Queue number when none is given ("ba7"). */
export const DEFAULT_PARK_QUEUE = 0xba7;

export interface ParkGateOptions {
  /** The loaded back-end program whose guard this gate drives (the gate does not close it). */
  readonly dataplane: Pick<BackendDataplane, 'guard'>;
  /** true: park in an nfqueue and let packets through on release; false: the guard drops them. */
  readonly lossless: boolean;
  readonly queue?: number;
  /** nftables tables (ip and ip6 families) holding the queue rule; default baton_park_<queue>. */
  readonly table?: string;
  readonly limits?: ParkLimits;
  /** How often waiting packets are checked for expiry (ms; default 250). */
  readonly sweepMs?: number;
}

export class ParkRuleError extends BatonError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BATON_ERR_PARK_RULE', message, options);
  }
}

function guardPort(g: GuardMaps, table: string | undefined): GuardPort {
  return {
    setVips: (vips) => g.setVips(vips),
    setEncapSources: (sources) => g.setEncapSources(sources),
    begin: (f) => g.beginParking(f, process.hrtime.bigint()), // CLOCK_MONOTONIC, bpf_ktime_get_ns's clock
    end: (f) => void g.endParking(f),
    settle: (f, verdicted) => g.settle(f, verdicted),
    marked: (f) => g.marked(f),
    endSettling: (f) => g.endSettling(f),
    close: ({ keep }) => {
      // First the guard drops instead of marking (no packet meets the rule's absence), then the rule goes.
      g.setConfig({ parkQueue: false });
      if (table !== undefined) removeQueueRule(table);
      if (keep) return; // guarded VIPs stay: a restarted agent's clients are dropped (and retransmit), not reset
      g.setVips([]);
      g.setEncapSources([]);
      for (const t of [...g.parkingTuples()]) g.endParking(t);
      g.clearSettling();
    },
  };
}

/** Opens the gate: binds the queue, installs the rule, switches the guard to parking. */
export function openParkGate(o: ParkGateOptions): ParkModel {
  const g = o.dataplane.guard;
  g.clearSettling(); // an earlier agent's: its counts mean nothing to this one's model
  if (!o.lossless) {
    g.setConfig({ parkQueue: false });
    return new ParkModel({ guard: guardPort(g, undefined), now: () => performance.now(), ...(o.limits && { limits: o.limits }) });
  }
  const queueNum = o.queue ?? DEFAULT_PARK_QUEUE;
  const table = o.table ?? `baton_park_${queueNum}`;
  let model: ParkModel | undefined;
  let pq: ParkQueue;
  try {
    pq = openParkQueue({ queue: queueNum, table, mark: g.codecs.mark, mask: g.codecs.markMask }, (packets) => model?.onPackets(packets));
  } catch (err) {
    throw new ParkRuleError(`park: queue ${queueNum}, nft table ${table}`, { cause: err });
  }
  let timer: NodeJS.Timeout | undefined;
  const queue: QueuePort = {
    drain: () => pq.drain(),
    verdict: (vs) => pq.verdict(vs),
    close: () => {
      clearInterval(timer);
      pq.close();
    },
  };
  model = new ParkModel({
    guard: guardPort(g, table), queue, now: () => performance.now(), ...(o.limits && { limits: o.limits }),
    reset: (f, seq) => sendReset(f.family, f.vip, f.client, seq),
  });
  g.setConfig({ parkQueue: true });
  const m = model;
  timer = setInterval(() => m.sweep(), o.sweepMs ?? 250);
  timer.unref();
  return model;
}
