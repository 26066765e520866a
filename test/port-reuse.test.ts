// A client that reuses its port at once (wrk, ab and busy proxies do; the kernel lets a connect() reuse a port in
// TIME_WAIT) reaches the same back-end again within seconds on the same tuple. The back-end's guard used to let
// that connection's early packets (forwarded before its blob) into the stack as the old connection's "released"
// tuple: no socket, so a RST, and the client died (bench: wrk read errors in upload cells). Root only.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { clusterDown, clusterUp, type Cluster } from '../src/lab/cluster.ts';
import type { Lab } from '../src/lab/lab.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces, TCP_REPAIR, bpf, nfqueue)' : false;

/**
 * Python: for each of `ports` local ports, a keep-alive GET that the client closes first (so the back-end keeps no
 * TIME_WAIT for the tuple), then, from the same port, a POST whose body streams before its blob (the kernel lets a
 * client reuse a port in its own TIME_WAIT after 1 s, with tcp_tw_reuse). Prints ok and what failed.
 */
const PY_REUSE = `
import json, os, socket, sys, time
client, vip, ports = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = os.urandom(3_000_000)
post = b'POST /sha256 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body)
get = b'GET /bytes/1000 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'
def conn(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(20)
    s.bind((client, port)); s.connect((vip, 80))
    return s
ok, failed = 0, []
for i in range(ports):
    port = 43000 + i
    try:
        s = conn(port); s.sendall(get)
        data = b''
        while not (b'\\r\\n\\r\\n' in data and len(data.split(b'\\r\\n\\r\\n', 1)[1]) >= 1000):
            d = s.recv(65536)
            if not d: break
            data += d
        s.close()  # the client closes first
        time.sleep(1.1)
        s = conn(port); s.sendall(post + body)
        data = b''
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        s.close()
        if data.startswith(b'HTTP/1.1 200') and b'"length":3000000' in data: ok += 1
        else: failed.append([port, data[:60].decode('latin1')])
    except OSError as e:
        failed.append([port, str(e)])
print(json.dumps({'ok': ok, 'failed': failed}))
`;

let lab: Lab | undefined;
let cluster: Cluster | undefined;

before(async () => {
  if (skip) return;
  // One back-end: every connection on a tuple lands where the previous one on it was. Its agent holds each blob
  // 50 ms (test hook), so the new connection's packets sent meanwhile surely reach it before its socket exists.
  process.env['BATON_TEST_PREPARE_DELAY_MS'] = '50';
  try {
    ({ lab, cluster } = await clusterUp({ backends: 1 }));
  } finally {
    delete process.env['BATON_TEST_PREPARE_DELAY_MS'];
  }
  // The client reuses ports in TIME_WAIT for new connections (as a client under load does).
  await lab.exec(lab.client, ['sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
});

after(() => clusterDown(cluster, lab));

test('a new connection on a port the client just used reaches the same back-end unharmed', { skip }, async () => {
  const r = await lab!.exec(lab!.client, ['python3', '-c', PY_REUSE, lab!.client.address, lab!.vip, '10'], { timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: number; failed: unknown[] };
  assert.deepEqual(out.failed, [], `${JSON.stringify(out.failed)}\n${cluster!.logs().slice(-2000)}`);
  assert.equal(out.ok, 10);
});
