// `baton demo`: the whole product in one command. Builds a lab (client, front-end, 3 back-ends; --routed puts them
// in three subnets behind a router with encap back-ends, --ipv6 serves the IPv6 VIP),
// starts the agents and the front-end, drives mixed requests (1 KB to 5 MB) through the VIP from
// the client namespace, prints what happened, tears everything down, and exits non-zero if any
// request failed.
import { SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import { labVip, startCluster } from '../lab/cluster.ts';
import type { DriverRequest } from '../lab/driver.ts';
import { labUp } from '../lab/lab.ts';
import { runDriver } from '../lab/run-driver.ts';

// Size mix: mostly small objects, a tail of large downloads (weights sum to 100).
const MIX: readonly (readonly [size: number, weight: number])[] = [
  [1024, 35], [10 * 1024, 20], [100 * 1024, 20], [1 << 20, 15], [5 << 20, 10],
];

/** A deterministic request list (mulberry32 PRNG seeded by `seed`). */
export function demoRequests(n: number, seed: number): DriverRequest[] {
  let a = seed >>> 0;
  const rnd = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, () => {
    let x = rnd() * 100;
    const [size] = MIX.find(([, w]) => (x -= w) < 0) ?? MIX[0]!;
    return { method: 'GET', path: `/bytes/${size}`, size };
  });
}

interface DemoOptions {
  requests: string;
  concurrency: string;
  backends: string;
  json?: boolean;
  routed?: boolean;
  ipv6?: boolean;
  steering?: 'nft' | 'bpf';
  frontends?: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('build a lab, hand off a few hundred requests through the VIP, print the results, tear down')
    .option('-n, --requests <n>', 'number of requests', '300')
    .option('--concurrency <n>', 'requests in flight', '8')
    .option('--backends <n>', 'number of back-ends', '3')
    .option('--json', 'print one JSON object as the last line')
    .option('--routed', 'client, front-end and back-ends in separate subnets behind a router; back-ends in encap mode')
    .option('--ipv6', 'serve the IPv6 VIP (dual-stack lab)')
    .option('--frontends <n>', 'N front-ends behind a router that spreads flows over them by ECMP (BGP, BIRD 2)')
    .addOption(new Option('--steering <kind>', 'front-end steering (default: bpf)').choices(['nft', 'bpf']))
    .action(async (o: DemoOptions) => {
      const n = Number(o.requests);
      const family = o.ipv6 === true ? 6 : 4;
      const log = (s: string): boolean => process.stderr.write(`${s}\n`);
      const shape = [
        o.routed === true ? 'routed' : '',
        o.ipv6 === true ? 'IPv6' : '',
        o.frontends !== undefined ? `${o.frontends}-front-end` : '',
      ].filter(Boolean).join(', ');
      log(`demo: building a ${shape === '' ? 'lab' : `${shape} lab`} with ${o.backends} back-ends`);
      const lab = await labUp({
        backends: Number(o.backends), routed: o.routed === true, ipv6: o.ipv6 === true,
        ...(o.frontends !== undefined ? { frontends: Number(o.frontends) } : {}),
      });
      let failed = true;
      try {
        log(`demo: lab ${lab.id} up; starting agents and front-end`);
        const cluster = await startCluster(lab, { family, ...(o.steering !== undefined ? { steering: o.steering } : {}) });
        try {
          // Every front-end's interface counts (several behind ECMP).
          const feIfaceBytes = async (): Promise<bigint> => {
            const all = await Promise.all(lab.frontends.map((h) => lab.ifaceBytes(h)));
            return all.reduce((sum, c) => sum + c.rxBytes + c.txBytes, 0n);
          };
          const before = await feIfaceBytes();
          const bar = new SingleBar({ format: 'demo: requests [{bar}] {value}/{total} {duration}s', stream: process.stderr });
          bar.start(n, 0);
          const summary = await runDriver(
            lab,
            { host: labVip(lab, family), port: 80, concurrency: Number(o.concurrency), keepAlive: false, timeoutMs: 30_000, requests: demoRequests(n, 42) },
            (done) => bar.update(done),
          );
          bar.stop();
          const after = await feIfaceBytes();
          const stats = await cluster.stats();
          const feBytes = Number(after - before);
          const perFrontend = lab.frontends.length > 1
            ? Object.fromEntries(await Promise.all(lab.frontends.map(async (h) => [h.name, (await cluster.statsOf(h)).handedOff] as const)))
            : undefined;
          const result = {
            requests: summary.requests,
            errors: summary.errors,
            bytesServed: summary.bytesServed,
            frontendIfaceBytes: feBytes,
            frontendByteRatio: summary.bytesServed ? feBytes / summary.bytesServed : 0,
            handoffUs: { p50: round(stats.handoffUs.p50), p99: round(stats.handoffUs.p99) },
            // Forwarded handoffs: the front-end's part of the client's wait (head -> steered + blob sent).
            placedUs: { count: stats.placedUs.count, p50: round(stats.placedUs.p50), p99: round(stats.placedUs.p99) },
            phasesUs: stats.phasesUs,
            latencyMs: { p50: round(summary.latencyMs.p50), p99: round(summary.latencyMs.p99) },
            perBackend: summary.perBackend,
            ...(perFrontend !== undefined ? { handedOffPerFrontend: perFrontend } : {}),
            retries: stats.retries,
            answeredLocally: stats.answeredLocally,
          };
          printTable(result, summary.firstErrors);
          if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
          failed = summary.errors > 0 || summary.requests !== n;
        } catch (e) {
          log(cluster.logs());
          throw e;
        } finally {
          await cluster.stop();
        }
      } finally {
        await lab.down();
        log(`demo: lab ${lab.id} removed`);
      }
      process.exitCode = failed ? 1 : 0;
    });
}

const round = (x: number): number => Math.round(x * 10) / 10;

function printTable(r: {
  requests: number; errors: number; bytesServed: number; frontendIfaceBytes: number; frontendByteRatio: number;
  handoffUs: { p50: number; p99: number }; placedUs: { count: number; p50: number; p99: number };
  latencyMs: { p50: number; p99: number }; perBackend: Record<string, number>; handedOffPerFrontend?: Record<string, number>;
}, errors: readonly string[]): void {
  const mb = (b: number): string => `${(b / 1e6).toFixed(2)} MB`;
  const rows: [string, string][] = [
    ['requests', String(r.requests)],
    ['errors', String(r.errors)],
    ...Object.entries(r.perBackend).sort().map(([b, c]) => [`  served by ${b}`, String(c)] as [string, string]),
    ...Object.entries(r.handedOffPerFrontend ?? {}).map(([f, c]) => [`  handed off by ${f}`, String(c)] as [string, string]),
    ['bytes served (bodies)', mb(r.bytesServed)],
    ['bytes on front-end interface (rx+tx)', `${mb(r.frontendIfaceBytes)} (${(r.frontendByteRatio * 100).toFixed(2)}% of served)`],
    [r.handedOffPerFrontend ? 'handoff latency p50 / p99 (fe)' : 'handoff latency p50 / p99', `${r.handoffUs.p50} / ${r.handoffUs.p99} us (head -> agent's answer)`],
    ...(r.placedUs.count > 0
      ? [['  forwarded: head -> client steered + blob sent', `${r.placedUs.p50} / ${r.placedUs.p99} us (${r.placedUs.count} handoffs)`] as [string, string]]
      : []),
    ['request latency p50 / p99', `${r.latencyMs.p50} / ${r.latencyMs.p99} ms`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stderr.write(`\n${rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n')}\n`);
  for (const e of errors) process.stderr.write(`  error: ${e}\n`);
}
