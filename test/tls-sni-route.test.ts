// TLS routed by SNI, end to end on loopback without the kernel handoff: a stand-in front-end
// reads the ClientHello with parseClientHello, routes it with the Router's sni/alpn rules, and
// "hands off" by opening a fresh connection to the chosen back-end whose first bytes are the
// ClientHello (what TCP_REPAIR's refilled receive queue gives an injected socket). The back-end
// is a Node tls.Server fed through emit('connection') on a paused socket, as deliverToServer
// does, and it completes the handshake. Self-signed certificate made here with openssl.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Router, backendId, tlsRequestInfo, type BackendView } from '../src/policy/index.ts';
import { TLS_ALERT, alertFor, buildAlert, parseClientHello } from '../src/wire/tls-hello.ts';

const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('TLS routed by SNI (loopback stand-in for the handoff)', { skip: haveOpenssl ? false : 'openssl not installed (needed to make a test certificate)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-tls-'));
  const servers = new Map<string, tls.Server>();
  const sockets = new Set<net.Socket>();
  const injectors = new Map<string, net.Server>();
  let front: net.Server;
  let frontPort = 0;
  const refused: string[] = [];

  const router = new Router({
    pools: [
      { name: 'a', policy: { name: 'wrr' }, members: ['A'] },
      { name: 'b', policy: { name: 'wrr' }, members: ['B'] },
      { name: 'h2', policy: { name: 'wrr' }, members: ['H'] },
      { name: 'down', policy: { name: 'wrr' }, members: ['D'] },
    ],
    rules: [
      { match: { sni: 'a.example.com' }, pool: 'a' },
      { match: { sni: 'down.example.com' }, pool: 'down' },
      { match: { sni: '*.b.example.com' }, pool: 'b' },
      { match: { alpn: 'h2' }, pool: 'h2' },
    ],
    defaultPool: 'a',
  });
  const views: BackendView[] = ['A', 'B', 'H', 'D'].map((id) => ({ id: backendId(id), up: id !== 'D', weight: 1, active: 0 }));

  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=baton-test', '-addext', 'subjectAltName=DNS:a.example.com,DNS:*.b.example.com,DNS:c.example.com',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.pem'));
    const cert = readFileSync(join(dir, 'cert.pem'));
    for (const id of ['A', 'B', 'H']) {
      const s = tls.createServer({ key, cert, ALPNProtocols: ['h2', 'http/1.1'] }, (c) => {
        c.end(`${id} ${c.servername || '-'} ${c.alpnProtocol || '-'}\n`);
      });
      servers.set(id, s);
    }
    // The "agents", one per back-end: a connection arrives with the ClientHello already in its
    // kernel receive queue; pauseOnConnect keeps Node from reading before the TLS server takes it.
    for (const [id, sv] of servers) {
      const inj = net.createServer({ pauseOnConnect: true }, (sock) => {
        sockets.add(sock);
        sv.emit('connection', sock);
      });
      await new Promise<void>((r) => inj.listen(0, '127.0.0.1', r));
      injectors.set(id, inj);
    }
    // The "front-end": read until the ClientHello is complete, route, hand off.
    front = net.createServer((client) => {
      sockets.add(client);
      let buf = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        const r = parseClientHello(buf);
        if (r.kind === 'incomplete') return;
        client.off('data', onData);
        client.pause();
        if (r.kind === 'error') {
          refused.push(r.code);
          // No HTTP status before TLS: a fatal alert when the peer speaks TLS, else just close.
          const alert = alertFor(r.code);
          return void (alert === undefined ? client.destroy() : client.end(buildAlert(alert)));
        }
        const pick = router.pick(tlsRequestInfo(r.hello), views, 0);
        if (pick.kind !== 'backend') return void client.end(buildAlert(TLS_ALERT.unrecognizedName));
        const inj = injectors.get(pick.id)!;
        const up = net.connect((inj.address() as net.AddressInfo).port, '127.0.0.1', () => {
          up.write(buf); // every byte read so far, ClientHello first
          client.pipe(up);
          up.pipe(client);
          client.resume();
        });
        sockets.add(up);
        up.on('error', () => client.destroy());
      };
      client.on('data', onData);
      client.on('error', () => undefined);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    frontPort = (front.address() as net.AddressInfo).port;
  });

  after(() => {
    for (const s of sockets) s.destroy();
    front?.close();
    for (const inj of injectors.values()) inj.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects through the front-end and returns what the back-end said, or the error code. */
  function fetchVia(options: tls.ConnectionOptions): Promise<string> {
    return new Promise((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port: frontPort, rejectUnauthorized: false, ...options });
      let out = '';
      c.on('data', (d: Buffer) => (out += d.toString()));
      c.on('end', () => resolve(out));
      c.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    });
  }

  const cases: { name: string; options: tls.ConnectionOptions; want: string }[] = [
    { name: 'exact SNI', options: { servername: 'a.example.com' }, want: 'A a.example.com -\n' },
    // Routing lower-cases the name; the back-end sees the bytes unchanged, as the client sent them.
    { name: 'wildcard SNI, mixed case', options: { servername: 'X.b.example.com', ALPNProtocols: ['http/1.1'] }, want: 'B X.b.example.com http/1.1\n' },
    { name: 'ALPN h2, other name', options: { servername: 'c.example.com', ALPNProtocols: ['h2'] }, want: 'H c.example.com h2\n' },
    { name: 'no SNI goes to the default pool', options: {}, want: 'A - -\n' },
  ];
  for (const c of cases) {
    it(`${c.name}: the chosen back-end completes the handshake`, async () => {
      assert.equal(await fetchVia(c.options), c.want);
    });
  }

  it('the certificate the client sees is the back-end\'s (handshake not terminated at the front)', async () => {
    const cert = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port: frontPort, servername: 'a.example.com', rejectUnauthorized: false }, () => {
        resolve(c.getPeerCertificate());
        c.destroy();
      });
      c.on('error', reject);
    });
    assert.equal(cert.subject.CN, 'baton-test');
  });

  it('a name whose pool has no back-end up gets a fatal unrecognized_name alert', async () => {
    assert.match(await fetchVia({ servername: 'down.example.com' }), /^error ERR_SSL_TLSV1_UNRECOGNIZED_NAME$/);
  });

  it('plain HTTP on the TLS port is closed without an answer', async () => {
    const got = await new Promise<string>((resolve) => {
      const s = net.connect(frontPort, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => resolve(out));
      s.on('error', () => undefined);
    });
    assert.equal(got, '');
    assert.ok(refused.includes('BATON_ERR_TLS_CONTENT_TYPE'));
  });
});
