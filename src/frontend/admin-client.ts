// The client side of the admin API (used by `baton status|backends|flows|drain|undrain|reload`):
// one request, a JSON answer, and errors that say what to do when the front-end is not there.
import http from 'node:http';
import { ADMIN_ERR, AdminError } from './admin.ts';

export type AdminEndpoint = { readonly socket: string } | { readonly host: string; readonly port: number };

export interface AdminAnswer {
  readonly status: number;
  readonly body: unknown;
}

const MAX_ANSWER = 64 << 20;

export const endpointText = (e: AdminEndpoint): string => ('socket' in e ? e.socket : `${e.host}:${e.port}`);

function unreachable(e: AdminEndpoint, err: NodeJS.ErrnoException): AdminError {
  const where = endpointText(e);
  const why =
    err.code === 'ENOENT' ? `no admin socket at ${where}: is the front-end running? (--socket or --config names another)`
    : err.code === 'ECONNREFUSED' ? `nothing answers on ${where}: the front-end is not running (stale socket or wrong port)`
    : err.code === 'EACCES' || err.code === 'EPERM' ? `permission denied on ${where}: run as the front-end's user (root)`
    : `cannot reach the admin API at ${where}: ${err.message}`;
  return new AdminError(ADMIN_ERR.UNREACHABLE, why, { cause: err });
}

export function adminRequest(e: AdminEndpoint, method: 'GET' | 'POST', path: string, timeoutMs = 10_000): Promise<AdminAnswer> {
  return new Promise((resolve, reject) => {
    const target = 'socket' in e ? { socketPath: e.socket } : { host: e.host, port: e.port };
    const req = http.request({ ...target, method, path, agent: false, headers: { host: 'baton-admin' } });
    const timer = setTimeout(() => req.destroy(new AdminError(ADMIN_ERR.UNREACHABLE, `admin API at ${endpointText(e)}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err instanceof AdminError ? err : unreachable(e, err));
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      let n = 0;
      res.on('data', (d: Buffer) => {
        n += d.length;
        if (n > MAX_ANSWER) req.destroy(new AdminError(ADMIN_ERR.BAD_REQUEST, `admin answer larger than ${MAX_ANSWER} bytes`));
        else parts.push(d);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(parts).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          reject(new AdminError(ADMIN_ERR.BAD_REQUEST, `admin API at ${endpointText(e)} answered ${res.statusCode} with non-JSON`));
        }
      });
    });
    req.end();
  });
}

/** The request's answer body on 2xx; otherwise the server's error as an AdminError with its code. */
export async function adminCall(e: AdminEndpoint, method: 'GET' | 'POST', path: string, timeoutMs?: number): Promise<unknown> {
  const a = await adminRequest(e, method, path, timeoutMs);
  if (a.status >= 200 && a.status < 300) return a.body;
  const err = (a.body as { error?: { code?: string; message?: string } }).error;
  throw new AdminError(err?.code ?? ADMIN_ERR.BAD_REQUEST, err?.message ?? `admin API answered ${a.status}`);
}
