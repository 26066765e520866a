// The loader against the kernel (as root, in a throw-away network namespace): the front-end and back-end programs
// load, attach at tc ingress and take map updates; a process that leaves without closing (as a SIGKILL would)
// leaves them attached and pinned, and the next process adopts the state, then removes everything.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureBpffs } from './bpf-loader.ts';

const root = process.getuid?.() === 0;
const haveIp = spawnSync('ip', ['-V']).status === 0;
const haveLibbpf = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libbpf.so.1 "']).status === 0;
const skip = !root ? 'needs root (netns, bpf)' : !haveIp ? 'needs ip' : !haveLibbpf ? 'needs libbpf1' : false;

const fixture = fileURLToPath(new URL('./bpf-loader.fixture.ts', import.meta.url));

for (const mode of ['tcx', 'tc'] as const) {
  test(`${mode}: load, attach, map updates, survive the process, adopt, clean up`, { skip }, (t) => {
    const id = `${process.pid}-${Date.now() % 100000}`;
    const ns = `btbpf-${id}`;
    const mnt = `/run/baton-test-${id}`;
    const pinDir = `${mnt}/pins`;
    execFileSync('ip', ['netns', 'add', ns]);
    t.after(() => spawnSync('ip', ['netns', 'del', ns]));
    // the bpffs lives in this (host) mount namespace, so pins outlive each `ip netns exec` child
    mkdirSync(mnt, { recursive: true });
    t.after(() => {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    });
    assert.equal(ensureBpffs(`${mnt}/x`), mnt);
    mkdirSync(pinDir);
    const inNs = (...cmd: string[]) =>
      execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', env: { ...process.env, BATON_ATTACH: mode === 'tc' ? 'tc' : 'auto' } });
    inNs('ip', 'link', 'add', 'bt0', 'type', 'veth', 'peer', 'name', 'bt1');
    inNs('ip', 'link', 'set', 'bt0', 'up');
    inNs('ip', 'link', 'set', 'bt1', 'up');
    const run = (step: string) => JSON.parse(inNs(process.execPath, '--import', 'tsx', fixture, step, 'bt0', pinDir, 'bt1')) as Record<string, unknown>;

    const first = run('fresh');
    assert.equal(first.attach, mode);
    assert.equal(first.adopted, false);
    assert.equal(first.mountedBpffs, null, 'the host bpffs was used');
    const mapPins = ['backends', 'config', 'counters', 'flows', 'orphans'];
    assert.deepEqual(first.pins, mode === 'tcx' ? ['backends', 'config', 'counters', 'flows', 'link', 'orphans'] : mapPins);
    assert.equal(typeof first.tcProg, mode === 'tc' ? 'number' : 'object');
    assert.deepEqual(first.flow, { verdict: 'forward', backend: 3, flowId: 77, handoffId: '5', lastSeenNs: '0', deadlineNs: '0' });
    // the first process is gone; its maps (and links) are still pinned in the host's bpffs
    assert.deepEqual(readdirSync(`${pinDir}/fe`).sort(), first.pins);
    const bePins = ['backend_config', 'decap', 'encap_sources', 'guard_counters', 'guard_vips', 'park_marked', 'park_settling', 'parking'];
    assert.deepEqual(readdirSync(`${pinDir}/be`).sort(), mode === 'tcx' ? [...bePins, 'link'].sort() : bePins);

    const second = run('adopt');
    assert.equal(second.adopted, true);
    assert.equal(second.attach, mode);
    if (mode === 'tc') {
      assert.equal(typeof second.tcProg, 'number');
      assert.notEqual(second.tcProg, first.tcProg, 'the filter now runs the new program');
    }
    assert.deepEqual(second.flow, first.flow);
    assert.deepEqual(second.flows, ['forward 10.1.2.3:40000 -> 10.0.0.100:80', 'hold 2001:db8::7:40001 -> 2001:db8::100:80']);
    assert.deepEqual(second.backend3, { mode: 'l2', family: 4, ifindex: 0, address: '10.0.0.3' });
    assert.equal(second.deleted, true);
    assert.equal(second.deletedAgain, false);
    assert.equal(second.backendAdopted, true);
    assert.deepEqual(second.decap, ['10.0.0.1#77 -> 10.1.2.3:40000']);
    assert.equal(second.pinsAfterClose, false);
    assert.equal(second.tcProgAfterClose, null);
  });
}

test('a bpffs mounted inside `ip netns exec` (under its fresh /sys) dies with the process: nothing to adopt', { skip }, (t) => {
  const ns = `btbpfp-${process.pid}-${Date.now() % 100000}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.after(() => spawnSync('ip', ['netns', 'del', ns]));
  const inNs = (...cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
  inNs('ip', 'link', 'add', 'bt0', 'type', 'veth', 'peer', 'name', 'bt1');
  const pinDir = `/sys/fs/bpf/baton-test-${process.pid}`;
  const run = (step: string) => JSON.parse(inNs(process.execPath, '--import', 'tsx', fixture, step, 'bt0', pinDir, 'bt1')) as Record<string, unknown>;
  assert.equal(run('fresh').mountedBpffs, '/sys/fs/bpf');
  const second = run('adopt');
  assert.equal(second.adopted, false);
  assert.deepEqual(second.flows, []);
});
