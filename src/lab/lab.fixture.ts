// Helpers for the lab's kernel tests: a TCP echo server in a lab host and a one-shot client.

import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import type { Lab, LabHost } from './lab.ts';

/** Answers `${tag}:${request}`, or `${peer address}:${request}` when tag is '@peer'. */
const ECHO_SERVER = `
const net = require('node:net');
const [host, port, tag] = process.argv.slice(1);
net.createServer((s) => {
  s.on('data', (b) => s.end((tag === '@peer' ? s.remoteAddress : tag) + ':' + b));
  s.on('error', () => {});
}).listen(Number(port), host, () => console.log('ready'));
`;

const CONNECT = `
const net = require('node:net');
const [host, port, timeout] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), timeout: Number(timeout) });
let d = '';
s.on('connect', () => s.write('ping'));
s.on('data', (b) => { d += b; });
s.on('end', () => { console.log(d); process.exit(0); });
s.on('timeout', () => { console.error('timeout'); process.exit(2); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/** Starts a TCP echo server in the host's namespace; resolves once it listens. */
export async function echoServer(lab: Lab, host: LabHost, addr: string, port: number, tag: string): Promise<ChildProcess> {
  const child = lab.spawn(host, [process.execPath, '-e', ECHO_SERVER, addr, String(port), tag]);
  const stdout = child.stdout;
  assert.ok(stdout);
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  await new Promise<void>((resolve, reject) => {
    stdout.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`echo server exited ${code}: ${err}`)));
  });
  return child;
}

/** One TCP exchange from a lab host: exit code 0 and the answer, 2 on timeout, 1 on error. */
export async function tcpTry(lab: Lab, from: LabHost, addr: string, port: number, timeoutMs = 3000): Promise<{ code: number; out: string }> {
  const r = await lab.exec(from, [process.execPath, '-e', CONNECT, addr, String(port), String(timeoutMs)], {
    timeoutMs: timeoutMs + 10_000,
  });
  return { code: r.code, out: r.code === 0 ? r.stdout.trim() : r.stderr.trim() };
}

/** One TCP exchange that must succeed; returns the answer. */
export async function tcpAsk(lab: Lab, from: LabHost, addr: string, port: number): Promise<string> {
  const r = await tcpTry(lab, from, addr, port);
  assert.equal(r.code, 0, `connect ${from.name} -> ${addr}:${port}: ${r.out}`);
  return r.out;
}

/** Whether BIRD 2 is installed (`scripts/setup.sh --bgp` installs it). */
export const haveBird: boolean = (() => {
  try {
    execFileSync('bird', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The skip reason of a BGP lab test: it needs root (for `needs`) and BIRD 2; false when it can run. */
export function bgpSkip(needs: string): string | false {
  if (process.getuid?.() !== 0) return `needs root (${needs})`;
  return haveBird ? false : 'needs BIRD 2 (scripts/setup.sh --bgp)';
}
