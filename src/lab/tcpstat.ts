// A lab host's TCP counters (/proc/net/snmp and /proc/net/netstat, per network namespace): what tests and the bench
// read before and after a run to count retransmissions, timeouts, reordering, PAWS drops.
import type { Lab, LabHost } from './lab.ts';

/**
 * Parses the paired header/value lines of /proc/net/snmp and /proc/net/netstat ("Tcp: RtoAlgorithm ..." followed by
 * "Tcp: 1 ...") into `Group.Name` -> value.
 */
export function parseProcNet(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i]!.trim().split(/\s+/);
    const vals = lines[i + 1]!.trim().split(/\s+/);
    const group = head[0];
    if (group === undefined || !group.endsWith(':') || vals[0] !== group) continue;
    // A header line has names, its value line numbers: skip a value line mistaken for a header.
    if (head.length > 1 && /^-?\d+$/.test(head[1]!)) continue;
    const g = group.slice(0, -1);
    for (let j = 1; j < head.length && j < vals.length; j++) out[`${g}.${head[j]}`] = Number(vals[j]);
    i++;
  }
  return out;
}

/** The host's Tcp and TcpExt counters by nstat name (`TcpRetransSegs`, `TcpExtTCPFastRetrans`, ...). */
export async function tcpCounters(lab: Lab, host: LabHost): Promise<Record<string, number>> {
  const r = await lab.exec(host, ['cat', '/proc/net/snmp', '/proc/net/netstat'], { timeoutMs: 5000 });
  if (r.code !== 0) throw new Error(`tcp counters of ${host.name}: exit ${r.code}: ${r.stderr.trim()}`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(parseProcNet(r.stdout))) {
    const [group, name] = k.split('.');
    if (group === 'Tcp' || group === 'TcpExt') out[`${group}${name}`] = v;
  }
  return out;
}
