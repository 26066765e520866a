// End-to-end: real kernels in network namespaces (client, front-end, back-ends on one L2
// segment), the real daemons, real clients (curl and Node). Needs root; CI is root.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { clusterDown, clusterUp, type Cluster } from '../src/lab/cluster.ts';
import type { Lab } from '../src/lab/lab.ts';
import { runDriver } from '../src/lab/run-driver.ts';
import { pinnedFlows } from '../src/steer/bpf-loader.ts';
import { parseSetElements } from '../src/steer/nft-script.ts';
import { patternSha256 } from '../src/wire/pattern.ts';

const root = process.getuid?.() === 0;
const SLOW = new URL('../src/lab/slow-downloads.ts', import.meta.url).pathname;

const skip = root ? false : 'needs root (network namespaces, TCP_REPAIR, nftables)';

for (const kind of ['bpf', 'nft'] as const) describe(`handoff end to end (${kind} steering)`, { skip }, () => {
  let lab: Lab;
  let cluster: Cluster;
  const steering = (): { table: string; pinDir?: string } => cluster.frontendConfig.steering as { table: string; pinDir?: string };
  const table = (): string => steering().table;

  /** Flows the front-end's data plane steers now, as client:port strings with their state. */
  const steered = async (): Promise<string[]> => {
    if (kind === 'bpf') return pinnedFlows(steering().pinDir!).map((e) => `${e.state.verdict}:${e.flow.clientAddress}:${e.flow.clientPort}`);
    const r = await lab.exec(lab.frontend, ['nft', '-j', 'list', 'table', 'netdev', table()]);
    return [...parseSetElements(r.stdout)].flatMap(([set, v]) => v.map((f) => `${set}:${f.clientAddress}:${f.clientPort}`));
  };

  before(async () => {
    ({ lab, cluster } = await clusterUp({ backends: 3 }, {
      steering: kind,
      frontend: {
        pools: [
          { name: 'all', policy: { name: 'wrr' }, members: ['b1', 'b2', 'b3'] },
          { name: 'only-b2', policy: { name: 'wrr' }, members: ['b2'] },
          { name: 'only-b3', policy: { name: 'lc' }, members: ['b3'] },
          { name: 'refuser-first', policy: { name: 'wrr' }, members: ['b1', 'b3'] },
        ],
        rules: [
          { match: { host: 'b2.example' }, pool: 'only-b2' },
          { match: { pathPrefix: '/bytes/3' }, pool: 'only-b3' },
          { match: { host: 'retry.example' }, pool: 'refuser-first' },
        ],
        defaultPool: 'all',
        limits: { headTimeoutMs: 1500, maxHeadBytes: 8192 },
      },
      // b1 refuses any handoff whose blob exceeds 2 KiB: the front-end must re-hand it.
      backend: (name) => (name === 'b1' ? { limits: { maxBlobBytes: 2048 } } : {}),
    }));
  });
  // The lab's bpffs goes with the lab: the pins the front-end kept on SIGTERM go with it.
  after(() => clusterDown(cluster, lab));

  const curl = async (args: string[]): Promise<string> => {
    const r = await lab.exec(lab.client, ['curl', '-sS', '--max-time', '60', ...args], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}\n${cluster.logs().slice(-3000)}`);
    return r.stdout;
  };

  for (const size of [1024, 1 << 20, 20 << 20]) {
    test(`curl gets a byte-exact ${size}-byte body from the back-end the rule chose`, async () => {
      const url = `http://${lab.vip}/bytes/${size}`;
      // Body checksum and response headers from one request; the header file is unique per run.
      const script = `h=$(mktemp); curl -sS --max-time 60 -H 'Host: b2.example' -D "$h" '${url}' | sha256sum | cut -d' ' -f1; tr -d '\\r' < "$h" | grep -i '^x-baton-backend'; rm -f "$h"`;
      const r = await lab.exec(lab.client, ['sh', '-c', script], { timeoutMs: 90_000 });
      const [sum, backend] = r.stdout.trim().split('\n');
      assert.equal(sum, patternSha256(size), `${r.stderr}\n${cluster.logs().slice(-2000)}`);
      assert.equal(backend?.toLowerCase(), 'x-baton-backend: b2');
    });
  }

  test('a Node client gets byte-exact 1 KB, 1 MB and 20 MB bodies, routed by path prefix', async () => {
    const s = await runDriver(lab, {
      host: lab.vip, port: 80, concurrency: 3, keepAlive: false, timeoutMs: 60_000,
      requests: [1024, 1 << 20, 20 << 20].map((size) => ({ method: 'GET' as const, path: `/bytes/${size}`, size })),
    });
    assert.equal(s.errors, 0, s.firstErrors.join('; '));
    // /bytes/1024 and /bytes/1048576 start with /bytes/1, 20 MB with /bytes/2: all to the wrr pool...
    const pinned = await runDriver(lab, {
      host: lab.vip, port: 80, concurrency: 2, keepAlive: false, timeoutMs: 60_000,
      requests: [{ method: 'GET', path: '/bytes/3000', size: 3000 }, { method: 'GET', path: '/bytes/300000', size: 300000 }],
    });
    // ...and /bytes/3* to b3 alone.
    assert.deepEqual(pinned.perBackend, { b3: 2 });
  });

  test('direct server return: front-end interface carries < 5% of 20 x 1 MB served', async () => {
    const before = await lab.ifaceBytes(lab.frontend);
    const s = await runDriver(lab, {
      host: lab.vip, port: 80, concurrency: 4, keepAlive: false, timeoutMs: 60_000,
      requests: Array.from({ length: 20 }, () => ({ method: 'GET' as const, path: '/bytes/1048576', size: 1 << 20 })),
    });
    const afterC = await lab.ifaceBytes(lab.frontend);
    assert.equal(s.errors, 0, s.firstErrors.join('; '));
    const fe = Number(afterC.rxBytes - before.rxBytes + afterC.txBytes - before.txBytes);
    assert.ok(fe < 0.05 * s.bytesServed, `front-end moved ${fe} bytes for ${s.bytesServed} served`);
    // The data plane counts what it steers, per back-end (bpf only): the clients' ACKs of 20 MB went through it.
    if (kind === 'bpf') {
      const steered = Object.values((await cluster.stats()).steering?.perBackend ?? {});
      assert.ok(steered.reduce((n, c) => n + c.packets, 0) > 100, JSON.stringify(steered));
    }
  });

  test('slow readers get whole responses: the back-end closes its descriptor long before its kernel has sent everything', async () => {
    // Each client reads 6 MB at 1 MB/s (pausing its reads, so flow control holds the rest in the back-end's send
    // queue): the app closes, the agent reports the end, and the client's ACKs keep coming for seconds after the
    // front-end's 1 s linger. They must still reach the back-end, not the front-end's stack (which would reset).
    const job = { host: lab.vip, port: 80, count: 3, size: 6 << 20, bytesPerS: 1 << 20, timeoutMs: 60_000 };
    const r = await lab.exec(lab.client, ['node', '--import', 'tsx', SLOW, JSON.stringify(job)], { timeoutMs: 90_000 });
    const summary = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; results?: { ok: boolean; bytes: number; error?: string }[] }).find((m) => m.type === 'summary');
    assert.ok(summary?.results, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(summary.results.map((x) => (x.ok ? 'ok' : `${x.bytes} ${x.error ?? ''}`)), ['ok', 'ok', 'ok'], cluster.logs().slice(-2000));
  });

  test('a 4 MB POST body still streaming at handoff time arrives intact', async () => {
    const s = await runDriver(lab, {
      host: lab.vip, port: 80, concurrency: 2, keepAlive: false, timeoutMs: 60_000,
      requests: [{ method: 'POST', path: '/sha256', size: 4 << 20 }, { method: 'POST', path: '/sha256', size: 6 << 20 }],
    });
    assert.equal(s.errors, 0, s.firstErrors.join('; '));
  });

  test('keep-alive: several requests on one handed-off connection are all answered', async () => {
    const urls = ['/whoami', '/bytes/1000', '/bytes/200000', '/whoami'].map((p) => `http://${lab.vip}${p}`);
    const out = await curl(['-w', '%{http_code} %{num_connects}\\n', ...urls.flatMap((u) => ['-o', '/dev/null', u])]);
    const lines = out.trim().split('\n');
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), ['200', '200', '200', '200']);
    // One connection made, then reused for the next three.
    assert.deepEqual(lines.map((l) => l.split(' ')[1]), ['1', '0', '0', '0']);
  });

  test('a back-end that refuses is skipped: the connection is re-handed, not lost', async () => {
    // The 3 KB header makes the blob larger than b1 accepts; wrr tries b1 first at least once.
    const big = `x-pad: ${'p'.repeat(3000)}`;
    for (let i = 0; i < 4; i++) {
      const out = await curl(['-H', 'Host: retry.example', '-H', big, '-sD', '-', '-o', '/dev/null', `http://${lab.vip}/bytes/5000`]);
      assert.match(out, /^HTTP\/1\.1 200/);
      assert.match(out, /x-baton-backend: b3/i);
    }
    const st = await cluster.stats();
    assert.ok(st.retries >= 1, `expected retries, stats: ${JSON.stringify(st)}`);
  });

  test('a client reusing its port at once gets a fresh handoff, not the old flow\'s steering', async () => {
    // The client reads to the server's FIN before closing, so its port is free again at once
    // (no TIME_WAIT on the client) while the old flow's entry still lingers at the front-end;
    // round robin sends each new connection to another back-end.
    const py = [
      'import socket, sys, time',
      'for i in range(5):',
      '    s = socket.socket(); s.settimeout(10)',
      '    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      '    s.bind(("", 47001)); s.connect((sys.argv[1], 80))',
      '    s.sendall(b"GET /bytes/2000 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")',
      '    data = b""',
      '    while True:',
      '        d = s.recv(65536)',
      '        if not d: break',
      '        data += d',
      '    s.close(); time.sleep(0.05)',  // our FIN's ACK arrives; still well inside the 1 s linger
      '    head = data.split(b"\\r\\n\\r\\n")[0].decode()',
      '    who = [l.split(": ")[1] for l in head.split("\\r\\n") if l.lower().startswith("x-baton-backend")]',
      '    print(head.split(" ")[1], who[0] if who else "?", len(data) - len(head) - 4)',
    ].join('\n');
    const r = await lab.exec(lab.client, ['python3', '-c', py, lab.vip], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').map((l) => l.split(' '));
    assert.equal(rows.length, 5, r.stdout);
    for (const [status, , bodyLen] of rows) {
      assert.equal(status, '200', r.stdout);
      assert.equal(bodyLen, '2000', r.stdout);
    }
    assert.ok(new Set(rows.map((x) => x[1])).size > 1, `expected several back-ends: ${r.stdout}`);
  });

  test('200 concurrent connections all correct; no steering entries left after they close', async () => {
    const s = await runDriver(lab, {
      host: lab.vip, port: 80, concurrency: 200, keepAlive: false, timeoutMs: 60_000,
      requests: Array.from({ length: 200 }, (_, i) => ({ method: 'GET' as const, path: `/bytes/${10000 + i}`, size: 10000 + i })),
    });
    assert.equal(s.errors, 0, s.firstErrors.join('; '));
    // Entries linger 1 s after the back-end reports the end (cluster default), then expire.
    let left: string[] = [];
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 250));
      left = await steered();
      if (left.length === 0) break;
    }
    assert.deepEqual(left, [], 'steering entries left behind');
  });

  const raw = async (payload: string, waitMs = 0): Promise<string> => {
    // bash's /dev/tcp: a raw client that sends exactly these bytes.
    const script = `exec 3<>/dev/tcp/${lab.vip}/80; printf '%b' "$1" >&3; sleep ${waitMs / 1000}; timeout 10 cat <&3`;
    const r = await lab.exec(lab.client, ['bash', '-c', script, 'raw', payload], { timeoutMs: 20_000 });
    return r.stdout;
  };

  test('malformed request -> 400 from the front-end', async () => {
    assert.match(await raw('GARBAGE\\r\\n\\r\\n'), /^HTTP\/1\.1 400 /);
    assert.match(await raw('GET / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 1\\r\\nContent-Length: 2\\r\\n\\r\\n'), /^HTTP\/1\.1 400 /);
  });

  test('request head too large -> 431', async () => {
    const out = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', `x-big: ${'a'.repeat(9000)}`, `http://${lab.vip}/whoami`]);
    assert.equal(out, '431');
  });

  test('request head too slow -> 408', async () => {
    assert.match(await raw('GET / HTTP/1.1\\r\\nHost: a\\r\\n', 0), /^HTTP\/1\.1 408 /);
  });
});

describe('no back-end available', { skip }, () => {
  let lab: Lab;
  let cluster: Cluster;
  before(async () => {
    ({ lab, cluster } = await clusterUp({ backends: 2 }, {
      skipAgents: ['b2'],
      frontend: {
        pools: [
          { name: 'up', policy: { name: 'wrr' }, members: ['b1'] },
          { name: 'down', policy: { name: 'wrr' }, members: ['b2'] },
        ],
        rules: [{ match: { host: 'down.example' }, pool: 'down' }],
        defaultPool: 'up',
      },
    }));
  });
  after(() => clusterDown(cluster, lab));

  test('-> 503 from the front-end, and the healthy pool still serves', async () => {
    const r = await lab.exec(lab.client, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: down.example', `http://${lab.vip}/whoami`]);
    assert.equal(r.stdout, '503');
    const ok = await lab.exec(lab.client, ['curl', '-sS', `http://${lab.vip}/whoami`]);
    assert.equal(ok.stdout.trim(), 'b1');
  });
});
