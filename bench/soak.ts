// The soak (issue 10.8; `npm run bench -- --soak [--handoffs N]`): sustained close-mode 1 KB GETs through baton with
// eBPF steering, in a lab cluster (one front-end, two agents with the sample app), until the front-end has handed off
// N connections. wrk runs in rounds of a few seconds; after each round the harness samples the front-end's and the
// agents' RSS (/proc/<pid>/status) and prints a progress line. Then traffic stops and it checks what must be back to
// zero: steering entries left in the pinned flows map (after the linger), the front-end's count of active
// connections per back-end, and the connections each back-end really holds (its sockets on VIP:80, the agent's
// `active`). Memory is "flat" when no process's RSS at the end is more than 10% above its RSS after warm-up (a fall
// is the garbage collector returning memory, not a defect; the table shows the signed change and the peak).
//
// Not a test (its figures depend on the machine); the verdicts are printed, and the exit code is 1 when one fails.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, type Cluster } from '../src/lab/cluster.ts';
import { labUp, type Lab } from '../src/lab/lab.ts';
import { pinnedFlows } from '../src/steer/bpf-loader.ts';
import { runWrk, wrkErrorKinds, wrkErrors } from './wrk.ts';

export interface SoakOptions {
  /** Handoffs to reach (the front-end's `handedOff`). */
  readonly handoffs: number;
  /** Fraction of the handoffs counted as warm-up (RSS baseline taken when it is reached). Default 0.1. */
  readonly warmupFraction?: number;
  readonly connections?: number;
  /** Seconds per wrk round (one RSS sample per round). Default 10. */
  readonly roundS?: number;
  readonly log?: (line: string) => void;
}

export interface RssSample {
  readonly handoffs: number;
  readonly elapsedS: number;
  /** kB, by process name (fe, b1, b2). */
  readonly rssKb: Record<string, number>;
}

export interface SoakResult {
  readonly handoffs: number;
  readonly requests: number;
  readonly errors: number;
  readonly errorKinds: Record<string, number>;
  readonly elapsedS: number;
  readonly samples: readonly RssSample[];
  readonly warm: RssSample;
  readonly end: RssSample;
  /** (end - warm) / warm per process. */
  readonly rssGrowth: Record<string, number>;
  /** Highest RSS sampled after warm-up, kB, per process. */
  readonly peakKb: Record<string, number>;
  /** Pinned flow entries left once the linger is over (and how long it took to get there). */
  readonly leakedEntries: number;
  readonly entriesAtStop: number;
  /** The front-end's active count per back-end after traffic stopped. */
  readonly frontendActive: Record<string, number>;
  /** Connections each back-end still holds (sockets on VIP:80 not in TIME-WAIT). */
  readonly backendHeld: Record<string, number>;
  readonly pass: { readonly memory: boolean; readonly entries: boolean; readonly drift: boolean };
}

const rssKb = (pid: number | undefined): number => {
  if (pid === undefined) return -1;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
};

async function held(lab: Lab, backend: number): Promise<number> {
  // Every connection a back-end holds for baton is a socket whose local end is VIP:80 (restored there by TCP_REPAIR).
  const r = await lab.exec(lab.backends[backend]!, ['ss', '-Htn', 'state', 'connected', 'exclude', 'time-wait', `( sport = :80 )`]);
  return r.stdout.split('\n').filter((l) => l.includes(`${lab.vip}:80`)).length;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => void process.stderr.write(`soak: ${l}\n`));
  const roundS = o.roundS ?? 10;
  const warmAt = Math.max(1, Math.round(o.handoffs * (o.warmupFraction ?? 0.1)));
  const lab = await labUp({ backends: 2 });
  let cluster: Cluster | undefined;
  const scriptDir = mkdtempSync('/tmp/baton-soak-');
  try {
    cluster = await startCluster(lab, { steering: 'bpf' });
    const { pinDir } = cluster.frontendConfig.steering as { pinDir: string };
    const names = ['fe', ...lab.backends.map((b) => b.name)];
    const sample = (handoffs: number, t0: number): RssSample => ({
      handoffs,
      elapsedS: Math.round((Date.now() - t0) / 1000),
      rssKb: Object.fromEntries(names.map((n) => [n, rssKb(cluster!.processes.get(n)?.pid)])),
    });
    const fmt = (s: RssSample): string => names.map((n) => `${n} ${(s.rssKb[n]! / 1024).toFixed(1)} MB`).join(', ');
    log(`lab ${lab.id}: ${o.handoffs} handoffs, close-mode GET /bytes/1024, ${o.connections ?? 16} connections, rounds of ${roundS} s; warm-up until ${warmAt}`);

    const t0 = Date.now();
    const base = (await cluster.stats()).handedOff;
    const samples: RssSample[] = [sample(0, t0)];
    let warm: RssSample | undefined;
    let requests = 0;
    let errors = 0;
    const errorKinds: Record<string, number> = {};
    let done = 0;
    while (done < o.handoffs) {
      // Shorten the last round to about what is left, from the rate so far.
      const rate = done / Math.max(1, (Date.now() - t0) / 1000);
      const left = o.handoffs - done;
      const secs = rate > 0 ? Math.max(1, Math.min(roundS, Math.ceil(left / rate))) : roundS;
      const w = await runWrk(lab, {
        url: `http://${lab.vip}/bytes/1024`, mode: 'close', connections: o.connections ?? 16, threads: 1,
        durationS: secs, scriptDir,
      });
      requests += w.requests;
      errors += wrkErrors(w);
      for (const [k, n] of Object.entries(wrkErrorKinds(w))) errorKinds[k] = (errorKinds[k] ?? 0) + n;
      done = (await cluster.stats()).handedOff - base;
      const s = sample(done, t0);
      samples.push(s);
      if (warm === undefined && done >= warmAt) warm = s;
      const r = done / Math.max(1, s.elapsedS);
      log(`${done}/${o.handoffs} handoffs (${Math.round(r)}/s, ${s.elapsedS} s, ~${Math.round((o.handoffs - done) / Math.max(1, r))} s left), ` +
        `${errors} errors; RSS ${fmt(s)}`);
    }
    const end = samples[samples.length - 1]!;
    warm ??= end;
    const elapsedS = end.elapsedS;

    // Traffic has stopped: everything must drain to zero.
    const entriesAtStop = pinnedFlows(pinDir).length;
    let leakedEntries = entriesAtStop;
    let frontendActive: Record<string, number> = {};
    let backendHeld: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      await sleep(500);
      leakedEntries = pinnedFlows(pinDir).length;
      const st = await cluster.stats();
      frontendActive = Object.fromEntries(lab.backends.map((b) => [b.name, st.perBackend[b.name]?.active ?? -1]));
      backendHeld = Object.fromEntries(await Promise.all(lab.backends.map(async (b, i) => [b.name, await held(lab, i)] as const)));
      if (leakedEntries === 0 && [...Object.values(frontendActive), ...Object.values(backendHeld)].every((n) => n === 0)) break;
    }
    const after = samples.slice(samples.indexOf(warm));
    const peakKb = Object.fromEntries(names.map((n) => [n, Math.max(...after.map((x) => x.rssKb[n]!))]));
    const rssGrowth = Object.fromEntries(names.map((n) => [n, (end.rssKb[n]! - warm!.rssKb[n]!) / warm!.rssKb[n]!]));
    return {
      handoffs: done, requests, errors, errorKinds, elapsedS, samples, warm, end, rssGrowth, peakKb,
      leakedEntries, entriesAtStop, frontendActive, backendHeld,
      pass: {
        // A leak shows as growth; RSS falling below the warm-up sample (the heap shrinking after a GC) is no defect.
        memory: Object.values(rssGrowth).every((g) => g <= 0.1),
        entries: leakedEntries === 0,
        drift: [...Object.values(frontendActive), ...Object.values(backendHeld)].every((n) => n === 0),
      },
    };
  } finally {
    await cluster?.stop();
    await lab.down();
    rmSync(scriptDir, { recursive: true, force: true });
  }
}

/** The final table, markdown. */
export function soakTable(r: SoakResult): string {
  const mb = (kb: number): string => (kb / 1024).toFixed(1);
  const pct = (g: number): string => `${g >= 0 ? '+' : ''}${(g * 100).toFixed(1)} %`;
  const names = Object.keys(r.end.rssKb);
  const verdict = (ok: boolean): string => (ok ? 'pass' : 'FAIL');
  return [
    `## Soak: ${r.handoffs} handoffs in ${r.elapsedS} s (${Math.round(r.handoffs / Math.max(1, r.elapsedS))}/s), ` +
      `${r.requests} requests, ${r.errors} errors${r.errors ? ` ${JSON.stringify(r.errorKinds)}` : ''}`,
    '',
    '| process | RSS start MB | RSS after warm-up MB (at handoff ' + r.warm.handoffs + ') | peak after warm-up MB | RSS end MB | end vs warm-up |',
    '|---|---|---|---|---|---|',
    ...names.map((n) => `| ${n} | ${mb(r.samples[0]!.rssKb[n]!)} | ${mb(r.warm.rssKb[n]!)} | ${mb(r.peakKb[n]!)} | ${mb(r.end.rssKb[n]!)} | ${pct(r.rssGrowth[n]!)} |`),
    '',
    '| check | value | verdict |',
    '|---|---|---|',
    `| memory flat (no RSS more than 10 % above warm-up at the end) | ${names.map((n) => `${n} ${pct(r.rssGrowth[n]!)}`).join(', ')} | ${verdict(r.pass.memory)} |`,
    `| steering entries left after the linger | ${r.leakedEntries} (${r.entriesAtStop} when traffic stopped) | ${verdict(r.pass.entries)} |`,
    `| front-end active per back-end after traffic | ${JSON.stringify(r.frontendActive)} | ${verdict(Object.values(r.frontendActive).every((n) => n === 0))} |`,
    `| connections held by each back-end after traffic | ${JSON.stringify(r.backendHeld)} | ${verdict(Object.values(r.backendHeld).every((n) => n === 0))} |`,
    '',
  ].join('\n');
}
