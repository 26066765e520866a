// The back-end half of a lossless handoff, without a front-end (as root, in two network namespaces joined by a veth
// pair): the server's connection is captured and closed silently, so no socket exists when the client sends; the
// guard parks what arrives, and (lossless) the gate lets it through, in order, into the socket injected from the
// captured state. The client must never see a RST and, when lossless, never retransmit. Also: nobody begins ->
// the parked packets expire and are dropped; parking off -> the guard drops; the client lives in both.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = process.getuid?.() === 0;
const haveTools = ['ip', 'nft'].every((t) => spawnSync(t, ['--version']).error === undefined);
const haveLibbpf = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libbpf.so.1 "']).status === 0;
const skip = !root ? 'needs root (namespaces, bpf, nfqueue)' : !haveTools ? 'needs ip and nft' : !haveLibbpf ? 'needs libbpf1' : false;
const fixture = fileURLToPath(new URL('./park.fixture.ts', import.meta.url));

interface Result {
  readonly mode: string;
  readonly released?: number;
  readonly injectMs?: number;
  readonly releaseMs?: number;
  readonly bytesReceived?: number;
  readonly inOrder?: boolean;
  readonly gate: { parked: number; released: number; dropped: number; expired: number; pending: number; resets: number };
  readonly guard: { syn: number; socket: number; noSocket: number; begun: number; dropped: number };
  readonly clientErrors: string[];
  readonly client: Record<string, number>;
  readonly server: Record<string, number>;
}

function scenario(t: { after(fn: () => void): void }, mode: 'lossless' | 'expire' | 'drop', bytes: number): Result {
  const id = randomBytes(3).toString('hex');
  const cns = `bpk-c-${id}`;
  const sns = `bpk-s-${id}`;
  const pinRoot = `/run/baton-park-test-${id}`;
  const octet = 16 + (parseInt(id.slice(0, 2), 16) % 200);
  const [caddr, saddr] = [`10.${octet}.77.1`, `10.${octet}.77.2`];
  t.after(() => {
    spawnSync('ip', ['netns', 'del', cns]);
    spawnSync('ip', ['netns', 'del', sns]);
    rmSync(pinRoot, { recursive: true, force: true });
  });
  const sh = (...cmd: string[]): void => void execFileSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
  sh('ip', 'netns', 'add', cns);
  sh('ip', 'netns', 'add', sns);
  sh('ip', 'link', 'add', `bpkc${id}`, 'netns', cns, 'type', 'veth', 'peer', 'name', `bpks${id}`, 'netns', sns);
  sh('ip', '-n', cns, 'addr', 'add', `${caddr}/24`, 'dev', `bpkc${id}`);
  sh('ip', '-n', sns, 'addr', 'add', `${saddr}/24`, 'dev', `bpks${id}`);
  for (const [ns, dev] of [[cns, `bpkc${id}`], [sns, `bpks${id}`]] as const) {
    sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  }
  const out = execFileSync(
    'ip',
    ['netns', 'exec', sns, process.execPath, '--import', 'tsx', fixture, mode, `bpks${id}`, `${pinRoot}/be`, cns, saddr, '8080', '2983', String(bytes)],
    { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const r = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Result;
  console.log(`park ${mode}: ${JSON.stringify(r)}`);
  return r;
}

test('lossless: packets sent while no socket exists are parked, then delivered in order to the injected socket; no RST, no retransmission', { skip, timeout: 90_000 }, (t) => {
  const bytes = 256 * 1024;
  const r = scenario(t, 'lossless', bytes);
  assert.deepEqual(r.clientErrors, [], 'the client saw no error (no RST)');
  assert.equal(r.bytesReceived, bytes, 'every byte arrived');
  assert.equal(r.inOrder, true, 'in order');
  assert.ok(r.gate.parked > 0 && (r.released ?? 0) > 0, 'packets were parked and released');
  assert.ok(r.guard.noSocket > 0, 'the guard parked packets that had no socket');
  assert.equal(r.gate.dropped + r.gate.expired, 0, 'nothing dropped');
  assert.equal(r.server.OutRsts, 0, 'the server sent no RST');
  assert.equal(r.client.RetransSegs, 0, 'the client retransmitted nothing');
});

test('no begin: parked packets expire, and the client gets the reset a stray draws (not a silence until its own timeout)', { skip, timeout: 90_000 }, (t) => {
  const r = scenario(t, 'expire', 64 * 1024);
  assert.ok(r.gate.expired > 0, 'expired');
  assert.equal(r.gate.released, 0);
  assert.equal(r.gate.resets, 1, 'one reset for the unclaimed tuple');
  assert.ok(r.clientErrors.includes('error ECONNRESET'), `the client was reset: ${JSON.stringify(r.clientErrors)}`);
  assert.equal(r.server.OutRsts, 0, 'not by its stack: the guard kept every packet from it');
});

test('park: false: the guard drops; the client is not reset and retransmits', { skip, timeout: 90_000 }, (t) => {
  const r = scenario(t, 'drop', 64 * 1024);
  assert.ok(r.guard.dropped > 0 && r.guard.noSocket > 0, 'dropped by the guard');
  assert.equal(r.gate.parked, 0, 'nothing reached a queue');
  assert.ok((r.client['RetransSegs'] ?? 0) > 0, 'the client retransmits what was dropped');
  assert.deepEqual(r.clientErrors, [], 'the client saw no error (no RST)');
  assert.equal(r.server.OutRsts, 0, 'the server sent no RST');
});
