// `baton status | backends | flows | reload | drain | undrain`: the operator's commands, talking to
// a running front-end's admin API (frontend/admin.ts). Tables for people, `--json` for scripts.
// The socket comes from `--socket`, `--tcp HOST:PORT`, or the front-end's `--config` file.
import type { Command } from 'commander';
import { adminCall, type AdminEndpoint } from '../frontend/admin-client.ts';
import type { AdminBackend, AdminStatus, DrainReport, FlowList, ReloadReport } from '../frontend/admin.ts';
import { adminSocketPath, frontendConfigSchema, tableSocketPath } from '../frontend/config.ts';
import { loadConfigFile } from '../util/config-file.ts';
import { BatonError } from '../wire/errors.ts';

export interface EndpointOptions {
  readonly socket?: string;
  readonly tcp?: string;
  readonly config?: string;
}

export interface Out {
  write(text: string): void;
}

/** The admin endpoint named by the options; the default table's socket when none is given. */
export async function resolveEndpoint(o: EndpointOptions): Promise<AdminEndpoint> {
  if (o.socket !== undefined) return { socket: o.socket };
  if (o.tcp !== undefined) {
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(o.tcp);
    if (!m) throw new BatonError('BATON_ERR_INVALID_ARGUMENT', `--tcp: expected HOST:PORT, got "${o.tcp}"`);
    return { host: m[1]!, port: Number(m[2]) };
  }
  if (o.config !== undefined) return { socket: adminSocketPath(await loadConfigFile(frontendConfigSchema, o.config)) };
  return { socket: tableSocketPath() };
}

/** Left-aligned columns, two spaces apart. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

const dur = (ms: number | undefined): string => {
  if (ms === undefined) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

export async function status(ep: AdminEndpoint, o: { json?: boolean }, out: Out): Promise<AdminStatus> {
  const s = (await adminCall(ep, 'GET', '/status')) as AdminStatus;
  if (o.json) out.write(json(s));
  else {
    out.write(
      `front-end ${s.vip}:${s.port}  pid ${s.pid}  up ${dur(s.uptimeS * 1000)}\n` +
        `config    ${s.configFile ?? '-'} (loaded ${s.configLoadedAt}, ${s.reloads} reload${s.reloads === 1 ? '' : 's'})\n` +
        `traffic   accepted ${s.accepted}  handed off ${s.handedOff}  pending ${s.pending}\n` +
        `back-ends ${s.backends} (${s.eligible} taking new connections)${s.flows === undefined ? '' : `  flows ${s.flows}`}\n`,
    );
  }
  return s;
}

const backendState = (b: AdminBackend): string => {
  const why = [b.removed && 'removed', b.drained && 'drained', b.channel !== 'up' && `channel ${b.channel}`, b.health === 'down' && 'unhealthy', b.weight === 0 && 'weight 0'].filter(Boolean);
  return b.eligible ? 'ready' : why.join(',') || 'not eligible';
};

export async function backends(ep: AdminEndpoint, o: { json?: boolean }, out: Out): Promise<readonly AdminBackend[]> {
  const bs = (await adminCall(ep, 'GET', '/backends')) as AdminBackend[];
  if (o.json) out.write(json(bs));
  else {
    out.write(table(
      ['ID', 'ADDRESS', 'WEIGHT', 'STATE', 'CHANNEL', 'HEALTH', 'ACTIVE', 'HANDOFFS', 'FAILURES'],
      bs.map((b) => [b.id, b.address, String(b.weight), backendState(b), b.channel,
        b.health === 'down' && b.healthError ? `down (${b.healthError})` : b.health,
        String(b.active), String(b.handoffs), String(b.failures)]),
    ));
  }
  return bs;
}

export async function flows(ep: AdminEndpoint, o: { json?: boolean; backend?: string; limit?: number }, out: Out): Promise<FlowList> {
  const q = new URLSearchParams();
  if (o.backend !== undefined) q.set('backend', o.backend);
  if (o.limit !== undefined) q.set('limit', String(o.limit));
  const l = (await adminCall(ep, 'GET', `/flows${q.size ? `?${q}` : ''}`)) as FlowList;
  if (o.json) out.write(json(l));
  else {
    out.write(table(
      ['CLIENT', 'BACKEND', 'STATE', 'IDLE', 'AGE', 'HANDOFF'],
      l.flows.map((f) => [f.client, f.backend ?? '-', f.state, dur(f.idleMs), dur(f.ageMs), f.handoffId ?? '-']),
    ));
    const per = Object.entries(l.byBackend).map(([b, n]) => `${b || 'held'} ${n}`).join(', ');
    const shown = l.flows.length < l.total ? ` (showing ${l.flows.length}; --limit for more)` : '';
    out.write(`${l.total} flow${l.total === 1 ? '' : 's'}${per ? ` (${per})` : ''}${shown}\n`);
  }
  return l;
}

export class ReloadRefused extends BatonError {}

export async function reload(ep: AdminEndpoint, o: { json?: boolean }, out: Out): Promise<ReloadReport> {
  const r = (await adminCall(ep, 'POST', '/reload', 60_000)) as ReloadReport;
  if (o.json) out.write(json(r));
  else if (r.ok) out.write(r.changes.length === 0 ? 'reloaded: no changes\n' : `reloaded:\n${r.changes.map((c) => `  ${c}\n`).join('')}`);
  if (!r.ok) throw new ReloadRefused(r.code, `reload refused, the running config stays: ${r.message}`);
  return r;
}

export async function undrain(ep: AdminEndpoint, id: string, o: { json?: boolean }, out: Out): Promise<DrainReport> {
  const r = (await adminCall(ep, 'POST', `/backends/${encodeURIComponent(id)}/undrain`)) as DrainReport;
  out.write(o.json ? json(r) : `${id}: takes new connections again (${r.active} active)\n`);
  return r;
}

export interface DrainOutcome {
  readonly id: string;
  /** Connections when the drain began. */
  readonly initial: number;
  readonly finished: number;
  readonly moved: number;
  readonly remaining: number;
  readonly timedOut: boolean;
}

export interface DrainOptions {
  readonly json?: boolean;
  /** Seconds to wait for the back-end to hold no connection; 0 returns at once. */
  readonly timeoutS: number;
  /** Poll period (ms); tests shorten it. */
  readonly pollMs?: number;
  readonly now?: () => number;
}

/**
 * Drain: no new handoffs to the back-end, then wait until it holds no connection or the timeout
 * passes, reporting as connections end or move. The front-end tells the back-end's agent to move its
 * idle connections at once and the others at their next request boundary (docs/moves.md); busy
 * responses finish where they are. `moved` counts moves out of the back-end since the command began.
 */
export async function drain(ep: AdminEndpoint, id: string, o: DrainOptions, out: Out): Promise<DrainOutcome> {
  const now = o.now ?? Date.now;
  const start = now();
  const r = (await adminCall(ep, 'POST', `/backends/${encodeURIComponent(id)}/drain`)) as DrainReport;
  const initial = r.active;
  let remaining = initial;
  let moved = r.moved;
  const baseline = r.movesOut ?? 0;
  const outcome = (timedOut: boolean): DrainOutcome => ({ id, initial, finished: Math.max(0, initial - remaining - moved), moved, remaining, timedOut });
  const progress = (): string => {
    const c = outcome(false);
    return `${remaining} remaining (finished ${c.finished}, moved ${c.moved})`;
  };
  if (!o.json) out.write(`${id}: drained, no new handoffs; ${initial} connection${initial === 1 ? '' : 's'} at start\n`);
  while (remaining > 0 && now() - start < o.timeoutS * 1000) {
    await new Promise((res) => setTimeout(res, o.pollMs ?? 500));
    const bs = (await adminCall(ep, 'GET', '/backends')) as AdminBackend[];
    const b = bs.find((x) => x.id === id);
    // A connection being moved is neither finished nor moved yet: its owner's count drops before the move lands.
    const next = (b?.active ?? 0) + (b?.movesInFlight ?? 0);
    const nowMoved = Math.max(0, (b?.movesOut ?? baseline) - baseline);
    const changed = next !== remaining || nowMoved !== moved;
    remaining = next;
    moved = nowMoved;
    if (changed && !o.json) out.write(`${id}: ${progress()}\n`);
  }
  const res = outcome(remaining > 0);
  if (o.json) out.write(json(res));
  else if (res.timedOut) out.write(`${id}: timeout after ${o.timeoutS}s with ${progress()}\n`);
  else out.write(`${id}: holds no connection (finished ${res.finished}, moved ${res.moved})\n`);
  return res;
}

const stdout: Out = { write: (t) => void process.stdout.write(t) };

export function registerAdmin(program: Command): void {
  const endpoint = (c: Command): Command =>
    c
      .option('--socket <path>', 'admin socket of the front-end (default /run/baton/baton.sock)')
      .option('--tcp <host:port>', "the front-end's loopback admin listener instead of the socket")
      .option('-c, --config <file>', "find the socket from the front-end's config file")
      .option('--json', 'machine-readable output');
  type Opts = EndpointOptions & { json?: boolean };

  endpoint(program.command('status').description("a running front-end's state"))
    .action(async (o: Opts) => void (await status(await resolveEndpoint(o), o, stdout)));
  endpoint(program.command('backends').description('back-ends: state, weight, drain, health, load'))
    .action(async (o: Opts) => void (await backends(await resolveEndpoint(o), o, stdout)));
  endpoint(program.command('flows').description('steered connections (client, back-end, state, idle, age)'))
    .option('-b, --backend <id>', 'only flows of this back-end')
    .option('--limit <n>', 'show at most n flows (default 10000)', (v) => Number.parseInt(v, 10))
    .action(async (o: Opts & { backend?: string; limit?: number }) => void (await flows(await resolveEndpoint(o), o, stdout)));
  endpoint(program.command('reload').description('re-read the config file; an invalid one is refused and nothing changes'))
    .action(async (o: Opts) => void (await reload(await resolveEndpoint(o), o, stdout)));
  endpoint(program.command('drain').argument('<backend>').description('stop new handoffs to a back-end and wait until it holds no connection'))
    .option('--timeout <seconds>', 'give up waiting after this long (exit status 3)', (v) => Number(v), 300)
    .option('--no-wait', 'return at once')
    .action(async (id: string, o: Opts & { timeout: number; wait: boolean }) => {
      const r = await drain(await resolveEndpoint(o), id, { json: o.json, timeoutS: o.wait ? o.timeout : 0 }, stdout);
      if (r.timedOut && o.wait) process.exitCode = 3;
    });
  endpoint(program.command('undrain').argument('<backend>').description('let a drained back-end take new handoffs again'))
    .action(async (id: string, o: Opts) => void (await undrain(await resolveEndpoint(o), id, o, stdout)));
}
