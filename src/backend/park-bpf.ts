// The parking model (park.ts) projected onto the kernel: the guard's bpf maps (guarded VIPs, tuples being injected,
// the program's queue/drop switch), an nfqueue the parked packets wait in, and the nftables rule between the two
// (prerouting, priority raw, so before conntrack: `meta mark & MASK == MARK queue num N`, no bypass: with nobody
// reading, the kernel drops rather than let a packet reach a stack that would reset the client). The mark and mask
// come from the program's BTF (enum park_mark). The caller runs in the agent's network namespace.
import { execFileSync, spawnSync } from 'node:child_process';
import { NfQueue } from '../sys/nfqueue.ts';
import type { BackendDataplane } from '../steer/bpf-loader.ts';
import type { GuardMaps } from '../steer/bpf-guard-maps.ts';
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
  /** nftables table (inet family) holding the queue rule; default baton_park_<queue>. */
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

/** The nftables script that queues marked packets (pure: tested without root). */
export function parkRuleScript(table: string, queue: number, mark: number, mask: number): string {
  const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
  return [
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain prerouting {',
    '    type filter hook prerouting priority raw; policy accept;',
    `    meta mark & ${hex(mask)} == ${hex(mark)} queue num ${queue}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

function guardPort(g: GuardMaps, table: string | undefined): GuardPort {
  return {
    setVips: (vips) => g.setVips(vips),
    begin: (f) => g.beginParking(f, process.hrtime.bigint()), // CLOCK_MONOTONIC, bpf_ktime_get_ns's clock
    end: (f) => void g.endParking(f),
    close: ({ keep }) => {
      // First the guard drops instead of marking (no packet meets the rule's absence), then the rule goes.
      g.setConfig({ parkQueue: false });
      if (table !== undefined) spawnSync('nft', ['delete', 'table', 'inet', table], { stdio: 'ignore' });
      if (keep) return; // guarded VIPs stay: a restarted agent's clients are dropped (and retransmit), not reset
      g.setVips([]);
      for (const t of [...g.parkingTuples()]) g.endParking(t);
    },
  };
}

/** Opens the gate: binds the queue, installs the rule, switches the guard to parking. */
export function openParkGate(o: ParkGateOptions): ParkModel {
  const g = o.dataplane.guard;
  if (!o.lossless) {
    g.setConfig({ parkQueue: false });
    return new ParkModel({ guard: guardPort(g, undefined), now: () => performance.now(), ...(o.limits && { limits: o.limits }) });
  }
  const queueNum = o.queue ?? DEFAULT_PARK_QUEUE;
  const table = o.table ?? `baton_park_${queueNum}`;
  let model: ParkModel | undefined;
  const nfq = NfQueue.open({ queue: queueNum }, (packets) => model?.onPackets(packets));
  try {
    execFileSync('nft', ['-f', '-'], { input: parkRuleScript(table, queueNum, g.codecs.mark, g.codecs.markMask), stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (err) {
    nfq.close();
    throw new ParkRuleError(`park: install nft table ${table}`, { cause: err });
  }
  let timer: NodeJS.Timeout | undefined;
  const queue: QueuePort = {
    drain: () => void nfq.drain(),
    verdict: (vs) => nfq.verdict(vs),
    close: () => {
      clearInterval(timer);
      nfq.close();
    },
  };
  model = new ParkModel({ guard: guardPort(g, table), queue, now: () => performance.now(), ...(o.limits && { limits: o.limits }) });
  g.setConfig({ parkQueue: true });
  const m = model;
  timer = setInterval(() => m.sweep(), o.sweepMs ?? 250);
  timer.unref();
  return model;
}
