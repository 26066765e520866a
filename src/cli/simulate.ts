// `baton simulate`: replay a trace through the policies on a model cluster and report
// throughput, cache hit rate and load imbalance per policy and node count (table, --json, --plot).

import { writeFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { POLICY_NAMES, type PolicyName } from '../policy/spec.ts';
import { readClfFile } from '../sim/clf.ts';
import { EXPERIMENT_DEFAULTS, runExperiment, type ExperimentOptions } from '../sim/experiment.ts';
import { throughputSvg } from '../sim/plot.ts';
import { resultsJson, resultsTable } from '../sim/report.ts';
import { SYNTHETIC_DEFAULTS, syntheticTrace, traceStats, type Trace } from '../sim/trace.ts';

export interface SimulateOptions {
  nodes: number[];
  policies: PolicyName[];
  seed: number;
  requests: number;
  targets: number;
  zipf: number;
  cacheMb: number;
  trace?: string | undefined;
  tLow: number;
  tHigh: number;
  k: number;
  warmup: number;
  outstanding?: number | undefined;
  json: boolean;
  plot?: string | undefined;
}

export interface SimulateIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Show a progress bar on stderr. */
  readonly progress: boolean;
}

const intIn = (name: string, min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
  return n;
};

const numIn = (name: string, min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}]`);
  return n;
};

const nodeList = (v: string): number[] => {
  const parse = intIn('each node count', 1, 16);
  const list = [...new Set(v.split(',').map((s) => parse(s.trim())))].sort((a, b) => a - b);
  if (list.length === 0) throw new InvalidArgumentError('at least one node count');
  return list;
};

const policyList = (v: string): PolicyName[] => {
  const list = v.split(',').map((s) => s.trim());
  for (const p of list) {
    if (!(POLICY_NAMES as readonly string[]).includes(p)) {
      throw new InvalidArgumentError(`unknown policy "${p}" (expected ${POLICY_NAMES.join(', ')})`);
    }
  }
  return [...new Set(list)] as PolicyName[];
};

const MB = 1024 * 1024;

export const runSimulate = async (o: SimulateOptions, io: SimulateIo): Promise<void> => {
  if (o.tLow >= o.tHigh) throw new InvalidArgumentError('--t-low must be less than --t-high');
  let trace: Trace;
  if (o.trace !== undefined) {
    const clf = await readClfFile(o.trace);
    if (clf.badLines > 0) io.err(`${o.trace}: skipped ${clf.badLines} malformed line(s)`);
    if (clf.requests.length === 0) throw new Error(`${o.trace}: no requests`);
    trace = clf;
  } else {
    trace = syntheticTrace({ seed: o.seed, requests: o.requests, targets: o.targets, zipf: o.zipf });
  }
  const stats = traceStats(trace);
  const cacheBytes = o.cacheMb * MB;
  const summary =
    `trace: ${trace.name}; ${stats.distinctTargets} targets, working set ${(stats.workingSetBytes / MB).toFixed(1)} MB ` +
    `(${(stats.workingSetBytes / cacheBytes).toFixed(1)}x one node's ${o.cacheMb} MB cache), ` +
    `mean response ${(stats.meanRequestBytes / 1024).toFixed(1)} KB`;

  const exp: ExperimentOptions = {
    ...EXPERIMENT_DEFAULTS,
    policies: o.policies,
    nodes: o.nodes,
    cacheBytes,
    tLow: o.tLow,
    tHigh: o.tHigh,
    k: o.k,
    warmup: o.warmup,
    outstanding: o.outstanding,
  };
  const bar = io.progress
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: 'simulate [{bar}] {value}/{total} {run}', clearOnComplete: true, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(o.policies.length * o.nodes.length, 0, { run: '' });
  let done = 0;
  const results = runExperiment(trace, exp, (r) => bar?.update(++done, { run: `${r.policy} x${r.nodes}` }));
  bar?.stop();

  if (o.plot !== undefined) {
    await writeFile(o.plot, throughputSvg(results, { subtitle: `${trace.name}, ${o.cacheMb} MB cache per node` }));
  }
  if (o.json) {
    io.err(summary);
    io.out(resultsJson(results));
  } else {
    io.out(summary);
    io.out('');
    io.out(resultsTable(results));
  }
  if (o.plot !== undefined) io.err(`plot written to ${o.plot}`);
};

export const registerSimulate = (program: Command): Command =>
  program
    .command('simulate')
    .description('replay a trace through the request-distribution policies on a simulated cluster')
    .option('--nodes <list>', 'back-end counts to simulate, each 1..16', nodeList, [...EXPERIMENT_DEFAULTS.nodes])
    .option('--policies <list>', `policies to compare (${POLICY_NAMES.join(',')})`, policyList, [...EXPERIMENT_DEFAULTS.policies])
    .option('--seed <n>', 'seed of the synthetic trace', intIn('--seed', 0, 2 ** 32 - 1), SYNTHETIC_DEFAULTS.seed)
    .option('--requests <n>', 'requests in the synthetic trace', intIn('--requests', 1, 50_000_000), SYNTHETIC_DEFAULTS.requests)
    .option('--targets <n>', 'distinct targets in the synthetic trace', intIn('--targets', 1, 10_000_000), SYNTHETIC_DEFAULTS.targets)
    .option('--zipf <s>', 'Zipf exponent of target popularity', numIn('--zipf', 0, 3), SYNTHETIC_DEFAULTS.zipf)
    .option('--cache-mb <mb>', 'cache per back-end, MB', numIn('--cache-mb', 0, 1_000_000), EXPERIMENT_DEFAULTS.cacheBytes / MB)
    .option('--trace <file>', 'replay a Common Log Format file instead of a synthetic trace')
    .option('--t-low <n>', 'LARD T_low (active connections)', intIn('--t-low', 1, 100_000), EXPERIMENT_DEFAULTS.tLow)
    .option('--t-high <n>', 'LARD T_high (active connections)', intIn('--t-high', 1, 100_000), EXPERIMENT_DEFAULTS.tHigh)
    .option('--k <seconds>', 'LARD/R: seconds before an unchanged server set shrinks', numIn('--k', 0.001, 1e9), EXPERIMENT_DEFAULTS.k)
    .option('--warmup <fraction>', 'leading fraction of the trace not measured', numIn('--warmup', 0, 0.99), EXPERIMENT_DEFAULTS.warmup)
    .option('--outstanding <n>', 'front-end bound on outstanding requests (default: (n-1)*T_high + T_low - 1)', intIn('--outstanding', 1, 1_000_000))
    .option('--json', 'print one JSON object as the last line of stdout', false)
    .option('--plot <file>', 'write an SVG plot of throughput vs nodes')
    .action(async (opts: SimulateOptions) => {
      await runSimulate(opts, {
        out: (l) => process.stdout.write(`${l}\n`),
        err: (l) => process.stderr.write(`${l}\n`),
        progress: process.stderr.isTTY === true,
      });
    });
