// End-to-end faults around the front-end (issue 10.2): a client port reused at once, many times,
// while end-of-connection reports of the previous connection race the next SYN; a killed agent
// whose flows must stop being steered when its channel is declared lost. Needs root; CI is root.
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterDown, clusterUp, type Cluster } from '../src/lab/cluster.ts';
import type { Lab } from '../src/lab/lab.ts';
import { pinnedFlows } from '../src/steer/bpf-loader.ts';
import { liveSet, parseSetElements } from '../src/steer/nft-script.ts';

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (network namespaces, TCP_REPAIR, nftables)';

for (const kind of ['bpf', 'nft'] as const) describe(`front-end faults (${kind} steering)`, { skip }, () => {
  let lab: Lab;
  let cluster: Cluster;
  const table = (): string => (cluster.frontendConfig.steering as { table: string }).table;
  const liveEntries = async (backendIndex: number): Promise<string[]> => {
    if (kind === 'bpf') {
      const { pinDir } = cluster.frontendConfig.steering as { pinDir: string };
      return pinnedFlows(pinDir)
        .filter((e) => e.state.verdict === 'forward' && e.state.backend === backendIndex)
        .map((e) => `${e.flow.clientAddress}:${e.flow.clientPort}`);
    }
    const r = await lab.exec(lab.frontend, ['nft', '-j', 'list', 'table', 'netdev', table()]);
    return (parseSetElements(r.stdout).get(liveSet(4, backendIndex)) ?? []).map((f) => `${f.clientAddress}:${f.clientPort}`);
  };

  before(async () => {
    // Agents hold every FLOW_END back 400 ms: each report lands while later connections on the
    // same client port are already handed off (the agents inherit this process's environment).
    process.env['BATON_TEST_FLOW_END_DELAY_MS'] = '400';
    try {
      ({ lab, cluster } = await clusterUp({ backends: 3 }, {
        steering: kind,
        frontend: {
          pools: [
            { name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2', 'b3'] },
            { name: 'only-b3', policy: { name: 'wrr' }, members: ['b3'] },
          ],
          rules: [{ match: { host: 'b3.example' }, pool: 'only-b3' }],
          defaultPool: 'all',
        },
      }));
    } finally {
      delete process.env['BATON_TEST_FLOW_END_DELAY_MS'];
    }
  });
  after(() => clusterDown(cluster, lab));

  test('80 sequential connections from one client port are each answered at once by a fresh handoff', async () => {
    // No pause between connections, and every FLOW_END is late: it lands after the next
    // connections on this port were handed off. A release by tuple would hit the newer
    // connection (or re-steer it to the old back-end, which stalls it for seconds); a release
    // by handoff id never does. Afterwards nothing stays steered.
    const py = [
      'import socket, sys',
      'fails = 0',
      'for i in range(80):',
      '    s = socket.socket(); s.settimeout(3)',
      '    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      '    s.bind(("", 47011))',
      '    try:',
      '        s.connect((sys.argv[1], 80))',
      '        s.sendall(b"GET /bytes/1500 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")',
      '        data = b""',
      '        while True:',
      '            d = s.recv(65536)',
      '            if not d: break',
      '            data += d',
      '        head = data.split(b"\\r\\n\\r\\n")[0].decode()',
      '        ok = head.startswith("HTTP/1.1 200") and len(data) - len(head) - 4 == 1500',
      '        print(i, "ok" if ok else "bad " + head.split("\\r\\n")[0])',
      '    except Exception as e:',
      '        print(i, "error", type(e).__name__)',
      '    s.close()',
    ].join('\n');
    const r = await lab.exec(lab.client, ['python3', '-c', py, lab.vip], { timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr);
    const bad = r.stdout.trim().split('\n').filter((l) => !l.endsWith(' ok'));
    assert.deepEqual(bad, [], `${r.stdout}\n${cluster.logs().slice(-2000)}`);
    assert.equal(r.stdout.trim().split('\n').length, 80);
    let left: string[] = [];
    for (let i = 0; i < 40; i++) {
      await sleep(250);
      left = [...(await liveEntries(0)), ...(await liveEntries(1)), ...(await liveEntries(2))];
      if (left.length === 0) break;
    }
    assert.deepEqual(left, [], 'flows left steered after every report arrived');
  });

  test('a killed agent: its flows stop being steered once its channel is lost, not at the idle timeout', async () => {
    // Four idle keep-alive connections handed to b3, held open by the client.
    const py = [
      'import socket, sys, time',
      'socks = []',
      'for i in range(4):',
      '    s = socket.socket(); s.settimeout(10); s.connect((sys.argv[1], 80))',
      '    s.sendall(b"GET /whoami HTTP/1.1\\r\\nHost: b3.example\\r\\n\\r\\n")',
      '    s.recv(65536); socks.append(s)',
      'print("open", flush=True)',
      'time.sleep(60)',
    ].join('\n');
    const client: ChildProcess = lab.spawn(lab.client, ['python3', '-c', py, lab.vip]);
    try {
      await new Promise<void>((resolve, reject) => {
        client.stdout?.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
        client.once('exit', (code) => reject(new Error(`client exited ${code}`)));
      });
      assert.equal((await liveEntries(2)).length, 4, 'four flows steered to b3');
      // SIGKILL b3's agent (the only process this cluster started in b3's namespace).
      const own = execFileSync('ip', ['netns', 'pids', lab.backends[2]!.netns], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
      assert.ok(own.length >= 1, 'b3 agent pid');
      for (const pid of own) process.kill(Number(pid), 'SIGKILL');
      // The channel drops at once (the kernel closes the agent's sockets); entries then linger 1 s.
      let left: string[] = [];
      for (let i = 0; i < 40; i++) {
        await sleep(250);
        left = await liveEntries(2);
        if (left.length === 0) break;
      }
      assert.deepEqual(left, [], `b3's flows still steered\n${cluster.logs().slice(-2000)}`);
      const st = await cluster.stats();
      assert.equal(st.perBackend['b3']?.up, false);
      assert.equal(st.perBackend['b3']?.active, 0, 'a lost back-end counts no connections');
    } finally {
      client.kill('SIGKILL');
    }
  });
});
