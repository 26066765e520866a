// Network faults for a lab host, as nftables rules in the host's own namespace: random loss and a blackhole on the
// host's link. The kernel here has no netem (KERNEL-NOTES), so loss is `numgen random mod 10000 < N drop`, which
// allows hundredths of a percent. Rules sit in a netdev table at ingress and egress of the host's interface, so they
// see every packet on the link whatever its protocol; traffic on lo (stats, local control) is untouched. A tc/BPF
// program on the same interface runs before netdev ingress, so on a steering front-end the loss applies to what the
// program passes up, not to what it redirects. Offloads stay on in a lab, so a "packet" is often a GSO/GRO
// super-packet of up to 64 KB: a drop loses what would be dozens of wire segments. For per-segment loss turn
// offloads off on the senders (`ethtool -K eth0 tso off gso off`) in the test that needs it.
//
// The script is pure (unit-tested); applying it is one `nft -f -` in the namespace. Deleting the namespace deletes
// the table, so a lab's down() and labDownAll() undo every fault.

export const FAULT_TABLE = 'baton_lab_fault';

export type FaultDirection = 'in' | 'out' | 'both';

export interface FaultState {
  /** Percent of packets dropped, 0..100 (two decimals are kept). */
  readonly lossPercent: number;
  readonly lossDirection: FaultDirection;
  /** Drop every packet in both directions (overrides loss). */
  readonly blackhole: boolean;
}

export const NO_FAULT: FaultState = { lossPercent: 0, lossDirection: 'both', blackhole: false };

export function isFaultFree(f: FaultState): boolean {
  return !f.blackhole && f.lossPercent === 0;
}

/** Checks a loss percentage (0..100, finite). */
export function validLossPercent(p: number): boolean {
  return Number.isFinite(p) && p >= 0 && p <= 100;
}

/** Packets dropped so far by the fault rules (since the fault was last set), per direction. */
export interface FaultDrops {
  readonly in: number;
  readonly out: number;
}

/** Reads the drop counters from `nft -j list table netdev baton_lab_fault` (no table: nothing dropped). */
export function parseFaultDrops(json: string): FaultDrops {
  const drops = { in: 0, out: 0 };
  if (json.trim() === '') return drops;
  const doc = JSON.parse(json) as { nftables?: { rule?: { chain?: string; expr?: Record<string, unknown>[] } }[] };
  for (const item of doc.nftables ?? []) {
    const rule = item.rule;
    if (rule === undefined) continue;
    const counter = rule.expr?.find((e) => 'counter' in e)?.['counter'] as { packets?: number } | undefined;
    const n = counter?.packets ?? 0;
    if (rule.chain === 'fault_in') drops.in += n;
    if (rule.chain === 'fault_out') drops.out += n;
  }
  return drops;
}

/**
 * The nft script that puts the device's fault table in state f: it always deletes the old table first (declaring it
 * empty before deleting, so the delete cannot fail), and recreates it only if there is a fault.
 */
export function faultScript(device: string, f: FaultState): string {
  const lines = [`table netdev ${FAULT_TABLE}`, `delete table netdev ${FAULT_TABLE}`];
  if (!isFaultFree(f)) {
    const threshold = Math.round(f.lossPercent * 100);
    // nft refuses `< 10000` against `mod 10000` (the value must be in range): 100 % is a plain drop.
    const rule = f.blackhole || threshold >= 10000 ? 'counter drop' : `numgen random mod 10000 < ${threshold} counter drop`;
    const chain = (name: string, hook: 'ingress' | 'egress', active: boolean): string[] => [
      `  chain ${name} {`,
      // Lowest priority number: before any other netdev chain (steering) on the device.
      `    type filter hook ${hook} device "${device}" priority -500; policy accept;`,
      ...(active ? [`    ${rule}`] : []),
      '  }',
    ];
    const dir = f.blackhole ? 'both' : f.lossDirection;
    lines.push(
      `table netdev ${FAULT_TABLE} {`,
      ...chain('fault_in', 'ingress', dir !== 'out'),
      ...chain('fault_out', 'egress', dir !== 'in'),
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}
