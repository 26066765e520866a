// Issue 7's restart acceptance: handed-off downloads survive a front-end crash. The eBPF data plane is pinned,
// so while the front-end process is dead the kernel keeps steering the clients' ACKs to the back-ends; the
// restarted process adopts the maps and serves new connections; once the downloads end, their entries go.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { clusterDown, clusterUp, type Cluster } from '../src/lab/cluster.ts';
import type { Lab } from '../src/lab/lab.ts';
import { pinnedFlows } from '../src/steer/bpf-loader.ts';
import { patternSha256 } from '../src/wire/pattern.ts';

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (network namespaces, TCP_REPAIR, eBPF)';

const SIZE = 50 << 20;
const DOWNLOADS = 10;

for (const forwarding of ['l2', 'encap'] as const) {
  describe(`front-end killed mid-download (bpf steering, ${forwarding})`, { skip }, () => {
    let lab: Lab;
    let cluster: Cluster;
    const pinDir = (): string => (cluster.frontendConfig.steering as { pinDir: string }).pinDir;

    before(async () => {
      ({ lab, cluster } = await clusterUp({ backends: 2, routed: forwarding === 'encap' }, { steering: 'bpf', forwarding }));
    });
    after(() => clusterDown(cluster, lab));

    test(`${DOWNLOADS} downloads of 50 MB complete byte-exact across a SIGKILL and restart; new connections served; no entry left`, async () => {
      // Rate-limited so every download is still running when the front-end dies (50 MB at 10 MB/s: ~5 s).
      const script = [
        `for i in $(seq ${DOWNLOADS}); do`,
        `  (curl -sS --max-time 120 --limit-rate 10M http://${lab.vip}/bytes/${SIZE} | sha256sum | cut -d' ' -f1 > /tmp/$$.$i) &`,
        'done; wait',
        `for i in $(seq ${DOWNLOADS}); do cat /tmp/$$.$i; rm -f /tmp/$$.$i; done`,
      ].join('\n');
      const downloads = lab.exec(lab.client, ['sh', '-c', script], { timeoutMs: 150_000 });

      // Wait until all of them are handed off (the agents answered: with forward-first handoffs a forward entry
      // exists before the blob has reached the agent), then crash the front-end.
      const handedOff = async (): Promise<number> => (await cluster.stats()).handedOff;
      for (let i = 0; i < 100 && (await handedOff()) < DOWNLOADS; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(pinnedFlows(pinDir()).filter((e) => e.state.verdict === 'forward').length, DOWNLOADS, cluster.logs().slice(-2000));
      await cluster.restartFrontend({ signal: 'SIGKILL', downMs: 1500 });

      // The restarted front-end serves a new connection while the old ones are still streaming.
      const fresh = await lab.exec(lab.client, ['curl', '-sS', '--max-time', '10', `http://${lab.vip}/bytes/1000`], { timeoutMs: 20_000 });
      assert.equal(fresh.code, 0, `${fresh.stderr}\n${cluster.logs().slice(-2000)}`);
      assert.equal(fresh.stdout.length, 1000);

      const r = await downloads;
      assert.equal(r.code, 0, r.stderr);
      const sums = r.stdout.trim().split('\n');
      assert.deepEqual(sums, Array.from({ length: DOWNLOADS }, () => patternSha256(SIZE)), `${r.stderr}\n${cluster.logs().slice(-3000)}`);

      // Every flow ends: the agents report it to the restarted front-end, which releases it; after the linger
      // (1 s in the lab) the sweep deletes it.
      let left = pinnedFlows(pinDir());
      for (let i = 0; i < 60 && left.length > 0; i++) {
        await new Promise((res) => setTimeout(res, 250));
        left = pinnedFlows(pinDir());
      }
      assert.deepEqual(left.map((e) => `${e.state.verdict} ${e.flow.clientAddress}:${e.flow.clientPort}`), [], 'entries left behind');
    });
  });
}
