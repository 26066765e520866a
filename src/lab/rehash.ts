// Makes the lab router's ECMP hash seed apply to established TCP flows (issue 11 tests). A TCP packet from a socket
// in the client namespace carries that socket's L4 hash across the veth, and the router's fib_multipath_hash uses
// it as is (the skb->l4_hash short-circuit), so `setEcmpSeed` would only move flows without one (UDP). A real router
// hashes headers. bpf/lab-rehash.o, attached with `tc` at the router's client-facing ingress, clears the hash so the
// router computes it from the headers with its seed. Removed with the lab's namespaces.
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from './lab.ts';
import { LabError, runOk } from './run.ts';

const OBJECT = join(resolve(fileURLToPath(import.meta.url), '../../..'), 'bpf/build/lab-rehash.o');

/** The router's interface on a segment: the one holding the router's address there. */
async function routerIface(netns: string, address: string): Promise<string> {
  const out = await runOk(['ip', '-n', netns, '-j', '-4', 'addr', 'show']);
  const links = JSON.parse(out) as { ifname: string; addr_info?: { local?: string }[] }[];
  const l = links.find((x) => x.addr_info?.some((a) => a.local === address));
  if (l === undefined) throw new LabError(`lab router: no interface has ${address}`);
  return l.ifname;
}

/** Attaches the rehash program at the router's client-facing ingress. Router labs only. */
export async function rehashAtRouter(lab: Lab): Promise<string> {
  const rt = lab.router;
  const client = rt?.addresses['client'];
  if (rt === undefined || client === undefined) throw new LabError(`rehashAtRouter: lab ${lab.id} has no router`);
  const dev = await routerIface(rt.netns, client);
  await runOk(['ip', 'netns', 'exec', rt.netns, 'tc', 'qdisc', 'replace', 'dev', dev, 'clsact']);
  await runOk(['ip', 'netns', 'exec', rt.netns, 'tc', 'filter', 'replace', 'dev', dev, 'ingress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', OBJECT, 'sec', 'tc']);
  return dev;
}
