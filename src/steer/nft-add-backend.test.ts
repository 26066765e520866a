// A back-end added to a running nftables table (configuration reload), against the kernel in a
// network namespace. The same file is the scenario run inside the namespace (BATON_NFT_SCENARIO).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { NftSteering } from './nft.ts';
import type { FlowKey } from './types.ts';

async function scenario(device: string): Promise<Record<string, unknown>> {
  const flow = (p: number): FlowKey => ({ family: 4, clientAddress: '10.1.2.3', clientPort: p });
  const show = async (): Promise<string[]> =>
    (await s.list()).map((e) => `${e.verdict}:${e.backend ?? '-'} ${e.flow.clientPort}`).sort();
  const s = await NftSteering.create({
    table: 'btadd', device, vip: '10.9.0.1', port: 80, family: 4, lingerMs: 1000,
    backends: [{ id: 'b0', address: '10.9.0.2' }],
  });
  const out: Record<string, unknown> = {};
  try {
    await s.hold(flow(1));
    await s.forward(flow(1), 'b0', { handoffId: 1n, flowId: 1 });
    await s.addBackend({ id: 'b1', address: '10.9.0.3' });
    await s.hold(flow(2));
    await s.forward(flow(2), 'b1', { handoffId: 2n, flowId: 2 });
    out.after = await show();
    const chain = execFileSync('nft', ['list', 'chain', 'netdev', 'btadd', 'ingress'], { encoding: 'utf8' });
    out.rules = chain.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('ip daddr'));
    out.duplicate = await s.addBackend({ id: 'b1', address: '10.9.0.3' }).then(() => 'accepted', (e: Error) => e.message);
    await s.release(flow(2), 2n);
    out.released = await show();
  } finally {
    await s.close();
  }
  return out;
}

if (process.env.BATON_NFT_SCENARIO) {
  process.stdout.write(`${JSON.stringify(await scenario(process.env.BATON_NFT_SCENARIO))}\n`);
} else {
  const root = process.getuid?.() === 0;
  const tools = ['ip', 'nft'].every((t) => spawnSync(t, ['-V'], { stdio: 'ignore' }).error === undefined);
  const skip = !root ? 'needs root (netns, nftables)' : !tools ? 'needs ip and nft' : false;

  test('a back-end added to a running table takes new flows; existing ones are untouched', { skip }, (t) => {
    const ns = `bt-add-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    t.after(() => spawnSync('ip', ['netns', 'del', ns]));
    execFileSync('ip', ['-n', ns, 'link', 'add', 'bt0', 'type', 'veth', 'peer', 'name', 'bt1']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'bt0', 'up']);
    const self = fileURLToPath(import.meta.url);
    const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', self], {
      encoding: 'utf8', timeout: 60_000, env: { ...process.env, BATON_NFT_SCENARIO: 'bt0' },
    });
    const r = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { after: string[]; rules: string[]; duplicate: string; released: string[] };
    assert.deepEqual(r.after, ['forward:b0 1', 'forward:b1 2']);
    // The new back-end's SYN rule sits before the table's own (which accepts), its forwarding rules at the end.
    assert.match(r.rules[0]!, /syn .*delete @live4_1 .*delete @closing4_1/);
    assert.doesNotMatch(r.rules[0]!, /accept/);
    assert.match(r.rules[1]!, /@live4_0 .*@closing4_0 .*accept$/);
    assert.match(r.rules.at(-2)!, /@closing4_1 update .*fwd ip to 10\.9\.0\.3/);
    assert.match(r.rules.at(-1)!, /@live4_1 update .*fwd ip to 10\.9\.0\.3/);
    assert.match(r.duplicate, /already known/);
    assert.deepEqual(r.released, ['closing:b1 2', 'forward:b0 1']);
  });
}
