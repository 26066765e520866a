// The operator's admin API: HTTP/JSON on a Unix socket (mode 0600) and, optionally, on a loopback
// TCP port; never on an address clients reach. It reads and changes the front-end through the small
// AdminTarget interface below, so the server and the CLI are tested against a fake.
//
//   GET  /status                    the daemon: listener, uptime, counters, config file and reloads
//   GET  /backends                  per back-end: channel, health, drain, weight, active, handoffs
//   GET  /flows?backend=ID&limit=N  steered connections (like `ipvsadm -L -n -c`), newest state first
//   POST /backends/ID/drain         no new handoffs to ID; answers its active count
//   POST /backends/ID/undrain
//   POST /reload                    re-read the config file; refused with the field's path if invalid
//
// Answers are JSON; errors are `{ "error": { "code", "message", "field"? } }` with a 4xx/5xx status.
// Requests carry no body (a body over 1 KiB is refused), headers are bounded, slow clients time out.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { dirname } from 'node:path';
import type { FlowVerdict } from '../steer/types.ts';
import { ConfigError } from '../util/config-file.ts';
import { BatonError } from '../wire/errors.ts';
import { isLoopback } from './config.ts';

export const ADMIN_ERR = {
  /** No back-end with that id. */
  UNKNOWN_BACKEND: 'BATON_ERR_ADMIN_UNKNOWN_BACKEND',
  /** Another process answers on the admin socket. */
  IN_USE: 'BATON_ERR_ADMIN_IN_USE',
  /** The admin TCP listener was asked to bind a non-loopback address. */
  NOT_LOOPBACK: 'BATON_ERR_ADMIN_NOT_LOOPBACK',
  /** Unknown path, wrong method, a body, a bad query. */
  BAD_REQUEST: 'BATON_ERR_ADMIN_BAD_REQUEST',
  /** The admin API could not be reached (the CLI's side). */
  UNREACHABLE: 'BATON_ERR_ADMIN_UNREACHABLE',
} as const;

export class AdminError extends BatonError {}

/** One back-end as the operator sees it. */
export interface AdminBackend {
  readonly id: string;
  readonly address: string;
  readonly weight: number;
  /** The control channel's state ('up' when the agent is reachable and authenticated). */
  readonly channel: string;
  /** Active health check: 'up', 'down', or 'none' when the back-end has no check. */
  readonly health: 'up' | 'down' | 'none';
  /** Why the last health probe failed. */
  readonly healthError?: string;
  readonly drained: boolean;
  /** Removed from the config by a reload; kept until its connections end. */
  readonly removed: boolean;
  /** Gets new handoffs now: channel up, healthy, not drained, not removed, weight > 0. */
  readonly eligible: boolean;
  /** Connections it holds as the front-end counts them (its last report plus handoffs since, in flight). */
  readonly active: number;
  readonly handoffs: number;
  readonly failures: number;
  /** Connections moved away from it at request boundaries (or by a drain) since the front-end started. */
  readonly movesOut?: number;
  /** Connections being moved away from it now (captured or asked, not yet placed elsewhere). */
  readonly movesInFlight?: number;
}

export interface AdminStatus {
  readonly pid: number;
  readonly vip: string;
  readonly port: number;
  readonly uptimeS: number;
  readonly configFile?: string;
  /** ISO time of the config now in force. */
  readonly configLoadedAt: string;
  readonly reloads: number;
  readonly accepted: number;
  readonly handedOff: number;
  readonly pending: number;
  readonly backends: number;
  readonly eligible: number;
  /** Steered flows, when known. */
  readonly flows?: number;
}

/** One steered connection (times in milliseconds). */
export interface AdminFlow {
  /** "addr:port" or "[addr]:port". */
  readonly client: string;
  readonly backend?: string;
  readonly state: FlowVerdict;
  readonly idleMs?: number;
  readonly ageMs?: number;
  readonly handoffId?: string;
}

export interface FlowList {
  readonly total: number;
  /** Flows per back-end ('' for held flows), over all flows, not only those shown. */
  readonly byBackend: Record<string, number>;
  readonly flows: readonly AdminFlow[];
}

export interface DrainReport {
  readonly id: string;
  readonly drained: boolean;
  /** Connections the back-end holds now. */
  readonly active: number;
  /** Connections moved away to other back-ends by this command so far (they move after it answers). */
  readonly moved: number;
  /** Connections moved away from this back-end since the front-end started (a drain's baseline). */
  readonly movesOut?: number;
}

export type ReloadReport =
  | { readonly ok: true; readonly changes: readonly string[] }
  | { readonly ok: false; readonly code: string; readonly field: string; readonly message: string };

/** What the admin API needs from the front-end. */
export interface AdminTarget {
  status(): AdminStatus;
  backends(): readonly AdminBackend[];
  flows(filter: { readonly backend?: string }): Promise<readonly AdminFlow[]>;
  /** Throws AdminError UNKNOWN_BACKEND for an id it does not know. */
  drain(id: string): DrainReport;
  undrain(id: string): DrainReport;
  /** Re-read and apply the config file; expected refusals are values, not exceptions. */
  reload(): Promise<ReloadReport>;
}

export interface AdminServerOptions {
  readonly target: AdminTarget;
  /** Unix socket path. */
  readonly socket?: string;
  /** Loopback TCP listener. */
  readonly tcp?: { readonly host: string; readonly port: number };
  readonly onError?: (err: Error) => void;
}

const MAX_BODY = 1024;
const MAX_HEADER_BYTES = 8192;
const DEFAULT_FLOW_LIMIT = 10_000;
const MAX_FLOW_LIMIT = 1_000_000;

class HttpError extends AdminError {
  constructor(readonly status: number, code: string, message: string) {
    super(code, message);
  }
}

const bad = (message: string, status = 400): HttpError => new HttpError(status, ADMIN_ERR.BAD_REQUEST, message);

async function route(t: AdminTarget, method: string, url: URL): Promise<unknown> {
  const p = url.pathname;
  const expect = (m: 'GET' | 'POST'): void => {
    if (method !== m) throw bad(`${p}: use ${m}`, 405);
  };
  switch (p) {
    case '/status':
      expect('GET');
      return t.status();
    case '/backends':
      expect('GET');
      return t.backends();
    case '/flows':
      expect('GET');
      return flows(t, url);
    case '/reload':
      expect('POST');
      return t.reload();
  }
  const m = /^\/backends\/([^/]+)\/(drain|undrain)$/.exec(p);
  if (m) {
    expect('POST');
    const id = decodeURIComponent(m[1]!);
    return m[2] === 'drain' ? t.drain(id) : t.undrain(id);
  }
  throw new HttpError(404, ADMIN_ERR.BAD_REQUEST, `no such endpoint: ${method} ${p}`);
}

async function flows(t: AdminTarget, url: URL): Promise<FlowList> {
  const backend = url.searchParams.get('backend') ?? undefined;
  const limitText = url.searchParams.get('limit');
  const limit = limitText === null ? DEFAULT_FLOW_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_FLOW_LIMIT) throw bad(`limit: expected an integer 0..${MAX_FLOW_LIMIT}`);
  if (backend !== undefined && !t.backends().some((b) => b.id === backend)) {
    throw new HttpError(404, ADMIN_ERR.UNKNOWN_BACKEND, `no back-end "${backend}"`);
  }
  const all = await t.flows(backend === undefined ? {} : { backend });
  const byBackend: Record<string, number> = {};
  for (const f of all) byBackend[f.backend ?? ''] = (byBackend[f.backend ?? ''] ?? 0) + 1;
  return { total: all.length, byBackend, flows: all.slice(0, limit) };
}

function errorBody(e: unknown): { status: number; body: unknown } {
  if (e instanceof HttpError) return { status: e.status, body: { error: { code: e.code, message: e.message } } };
  if (e instanceof ConfigError) return { status: 400, body: { error: { code: e.code, message: e.message, field: e.field } } };
  if (e instanceof BatonError) {
    const status = e.code === ADMIN_ERR.UNKNOWN_BACKEND ? 404 : 500;
    return { status, body: { error: { code: e.code, message: e.message } } };
  }
  return { status: 500, body: { error: { code: 'BATON_ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) } } };
}

function handler(o: AdminServerOptions): http.RequestListener {
  return (req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${text}\n`);
    };
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > MAX_BODY || req.headers['transfer-encoding'] !== undefined) {
      res.setHeader('connection', 'close');
      send(413, { error: { code: ADMIN_ERR.BAD_REQUEST, message: 'request bodies are not accepted' } });
      req.destroy();
      return;
    }
    req.resume();
    const url = new URL(req.url ?? '/', 'http://admin');
    route(o.target, req.method ?? 'GET', url).then(
      (body) => send(200, body),
      (e: unknown) => {
        const { status, body } = errorBody(e);
        if (status >= 500) o.onError?.(e as Error);
        send(status, body);
      },
    );
  };
}

function newServer(o: AdminServerOptions): http.Server {
  const s = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 10_000, headersTimeout: 5_000 }, handler(o));
  s.keepAliveTimeout = 5_000;
  s.maxConnections = 64;
  return s;
}

/** Whether something answers on a Unix socket path. */
const answers = (path: string): Promise<boolean> =>
  new Promise((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

async function listenUnix(s: http.Server, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const st = await lstat(path).catch(() => undefined);
  if (st) {
    if (!st.isSocket()) throw new AdminError(ADMIN_ERR.IN_USE, `admin: ${path} exists and is not a socket`);
    if (await answers(path)) throw new AdminError(ADMIN_ERR.IN_USE, `admin: another process answers on ${path}`);
    await unlink(path); // left behind by a process that died
  }
  // Bind under a umask so the socket is never reachable by others, not even for an instant.
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(path, () => {
        s.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  await chmod(path, 0o600);
}

async function listenTcp(s: http.Server, host: string, port: number): Promise<net.AddressInfo> {
  if (!isLoopback(host)) throw new AdminError(ADMIN_ERR.NOT_LOOPBACK, `admin: ${host} is not a loopback address`);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => {
      s.off('error', reject);
      resolve();
    });
  });
  return s.address() as net.AddressInfo;
}

export class AdminServer {
  readonly #servers: http.Server[];
  readonly #socket: string | undefined;
  /** The TCP address actually bound (port 0 in the options picks one). */
  readonly tcp: net.AddressInfo | undefined;

  private constructor(servers: http.Server[], socket: string | undefined, tcp: net.AddressInfo | undefined) {
    this.#servers = servers;
    this.#socket = socket;
    this.tcp = tcp;
  }

  static async start(o: AdminServerOptions): Promise<AdminServer> {
    const servers: http.Server[] = [];
    try {
      if (o.socket !== undefined) {
        const s = newServer(o);
        servers.push(s);
        await listenUnix(s, o.socket);
      }
      let tcp: net.AddressInfo | undefined;
      if (o.tcp) {
        const s = newServer(o);
        servers.push(s);
        tcp = await listenTcp(s, o.tcp.host, o.tcp.port);
      }
      return new AdminServer(servers, o.socket, tcp);
    } catch (e) {
      for (const s of servers) s.close();
      throw e;
    }
  }

  get socket(): string | undefined {
    return this.#socket;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map((s) => new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      })),
    );
    // Node removes the socket file on close; nothing else to clean.
  }
}
