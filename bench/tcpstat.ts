// The client namespace's TCP and IP counters (/proc/net/snmp, /proc/net/netstat) and its interface's packet
// counters, read in one `ip netns exec` so they belong to the same instant. /proc/net is per network namespace,
// so these count only the load generator's traffic: retransmissions, zero-window probes and received segments.

import type { Lab } from '../src/lab/lab.ts';
import { parseProcNet } from '../src/lab/tcpstat.ts';

export { parseProcNet };

/** Counters shown per 1000 requests; the rest of the parsed set stays available to callers. */
export const TCP_COUNTERS = [
  'Tcp.RetransSegs',
  'TcpExt.TCPLostRetransmit',
  'TcpExt.TCPWinProbe',
  'TcpExt.TCPTimeouts',
  'TcpExt.TCPSynRetrans',
  'TcpExt.TCPLossProbes',
  // Retransmitted segments the receiver reported as duplicates (D-SACK): spurious, the original had arrived. On the
  // lab's veths whole TSO packets get reordered, and the sender's fast retransmit of such a block (45 segments of a
  // 64 KB packet) shows here as well as in RetransSegs.
  'TcpExt.TCPDSACKRecvSegs',
] as const;

export type Counters = Readonly<Record<string, number>>;

/**
 * Segments the namespace's IP layer received: IpExt In{NoECT,ECT0,ECT1,CE}Pkts, which the kernel bumps by an skb's
 * GSO segment count (ip_rcv), so a GSO super-packet crossing the veth counts as the segments its sender cut.
 */
export function ipSegments(c: Counters): number {
  return ['InNoECTPkts', 'InECT0Pkts', 'InECT1Pkts', 'InCEPkts'].reduce((a, k) => a + (c[`IpExt.${k}`] ?? 0), 0);
}

/** The client's counters plus its interface's rx/tx packets (`If.rx_packets`, `If.tx_packets`). */
export async function clientCounters(lab: Lab): Promise<Counters> {
  const dir = `/sys/class/net/${lab.client.ifname}/statistics`;
  const r = await lab.exec(
    lab.client,
    ['sh', '-c', `echo "If: rx_packets tx_packets"; echo "If: $(cat ${dir}/rx_packets) $(cat ${dir}/tx_packets)"; cat /proc/net/snmp /proc/net/netstat`],
    { timeoutMs: 5000 },
  );
  if (r.code !== 0) throw new Error(`client counters: exit ${r.code}: ${r.stderr.trim()}`);
  const c = parseProcNet(r.stdout);
  if (c['Tcp.RetransSegs'] === undefined || c['If.rx_packets'] === undefined) {
    throw new Error('client counters: no Tcp RetransSegs or interface counters');
  }
  return c;
}

/** after - before for every counter present in both. */
export function diff(before: Counters, after: Counters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const b = before[k];
    if (b !== undefined) out[k] = v - b;
  }
  return out;
}
