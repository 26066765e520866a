// The LVS direct-routing "real server" setup a back-end needs to accept packets addressed to
// the VIP and answer from it, without ever answering ARP for it (the front-end owns the VIP):
//   ip addr add VIP/32 dev lo
//   sysctl net.ipv4.conf.all.arp_ignore=1    reply to ARP only for addresses on the asking interface
//   sysctl net.ipv4.conf.all.arp_announce=2  never use the VIP as the source of our ARP requests
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function setupRealServer(vip: string): Promise<void> {
  const v6 = isIPv6(vip);
  const prefix = v6 ? 128 : 32;
  const { stdout } = await run('ip', ['-o', 'addr', 'show', 'dev', 'lo']);
  if (!stdout.includes(` ${vip}/${prefix} `)) await run('ip', ['addr', 'add', `${vip}/${prefix}`, 'dev', 'lo']);
  if (v6) return; // IPv6 has no ARP; neighbour discovery only answers for non-lo addresses.
  await writeFile('/proc/sys/net/ipv4/conf/all/arp_ignore', '1\n');
  await writeFile('/proc/sys/net/ipv4/conf/all/arp_announce', '2\n');
}
