// `baton lab up|down`: bring a namespace lab up for manual work (it stays up after the command exits) and remove it.

import { InvalidArgumentError, type Command } from 'commander';
import { labDownAll, labUp, type Lab } from './lab.ts';

/** The lab as plain data (what `lab up` prints). */
export function labToJson(lab: Lab): object {
  const { id, vip, vip6, prefixLen, prefixLen6, switchNetns, client, frontend, frontends, backends, router, routed, bgp } = lab;
  return {
    id, vip, prefixLen, switchNetns, client, frontend, backends,
    ...(vip6 !== undefined ? { vip6, prefixLen6 } : {}),
    ...(frontends.length > 1 ? { frontends } : {}),
    ...(router !== undefined ? { router, routed, bgp } : {}),
  };
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function registerLab(program: Command): Command {
  const lab = program.command('lab').description('network-namespace test topologies (root)');
  lab
    .command('up')
    .description('bring a lab up, print it as JSON and leave it up')
    .option('--backends <n>', 'number of back-ends', positiveInt, 2)
    .option('--id <id>', "lab id (default 'bt' + 4 random hex digits)")
    .option('--vip <address>', 'virtual IP owned by the front-end', undefined)
    .option('--routed', 'client, front-end and back-ends in three subnets joined by a router namespace')
    .option('--ipv6', 'dual stack: IPv6 addresses everywhere and an IPv6 VIP (fd77::100)')
    .option('--vip6 <address>', 'the IPv6 VIP (implies --ipv6)')
    .option('--frontends <n>', 'N front-ends behind a router that learns the VIP over BGP (BIRD 2) and spreads flows by ECMP', positiveInt)
    .action(async (o: { backends: number; id?: string; vip?: string; routed?: boolean; ipv6?: boolean; vip6?: string; frontends?: number }) => {
      const up = await labUp({
        backends: o.backends, id: o.id, vip: o.vip, keepOnExit: true,
        routed: o.routed ?? false, ipv6: o.ipv6 ?? false,
        ...(o.vip6 !== undefined ? { vip6: o.vip6 } : {}),
        ...(o.frontends !== undefined ? { frontends: o.frontends } : {}),
      });
      process.stdout.write(`${JSON.stringify(labToJson(up), null, 2)}\n`);
    });
  lab
    .command('down')
    .description('remove a lab by id, or every baton lab with --all (also other users\' labs)')
    .argument('[id]', 'lab id')
    .option('--all', 'remove every baton lab namespace, including ones left by crashed processes')
    .action(async (id: string | undefined, o: { all?: boolean }) => {
      if ((id === undefined) === (o.all !== true)) {
        program.error('lab down: give a lab id or --all (not both)');
      }
      const removed = await labDownAll(id === undefined ? '' : `${id}-`);
      process.stdout.write(`${JSON.stringify({ removed })}\n`);
    });
  return lab;
}
