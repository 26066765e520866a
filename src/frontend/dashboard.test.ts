import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { dashboardRoutes } from './dashboard.ts';

async function serve(t: TestContext, stats: () => object, maxClients = 16): Promise<number> {
  const routes = dashboardRoutes({ stats, intervalMs: 20, maxClients });
  const server = http.createServer((req, res) => {
    if (!routes(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

const get = (port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> =>
  new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject);
  });

/** Opens the event stream and collects the first `n` data events. */
const events = (port: number, n: number): Promise<{ status: number; data: unknown[] }> =>
  new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        resolve({ status: res.statusCode ?? 0, data: [] });
        return;
      }
      let buf = '';
      const data: unknown[] = [];
      res.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (ev.startsWith('data: ')) data.push(JSON.parse(ev.slice(6)));
        }
        if (data.length >= n) {
          req.destroy();
          resolve({ status: 200, data });
        }
      });
    });
    req.on('error', reject);
  });

test('the page is self-contained and its inline script is allowed by hash only', async (t) => {
  const port = await serve(t, () => ({}));
  for (const path of ['/', '/dashboard']) {
    const r = await get(port, path);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    const script = /<script>([\s\S]*)<\/script>/.exec(r.body)![1]!;
    const hash = createHash('sha256').update(script).digest('base64');
    assert.match(String(r.headers['content-security-policy']), new RegExp(`script-src 'sha256-${hash.replace(/[+/]/g, '\\$&')}'`));
    assert.doesNotMatch(r.body, /<(script|link|img)[^>]+(src|href)=/, 'no external asset');
    assert.match(r.body, /new EventSource\('events' \+ location.search\)/);
    assert.doesNotThrow(() => new Function(script), 'the page script parses');
  }
  assert.equal((await get(port, '/other')).status, 404);
});

test('the event stream carries the stats document, sample after sample', async (t) => {
  let n = 0;
  const port = await serve(t, () => ({ handedOff: ++n, perBackend: { b1: { handoffs: n, active: 1, failures: 0, up: true } }, big: 5n }));
  const r = await events(port, 3);
  assert.equal(r.status, 200);
  assert.deepEqual(r.data.map((d) => (d as { handedOff: number }).handedOff), [1, 2, 3]);
  assert.equal((r.data[0] as { big: string }).big, '5');
});

test('?count=N ends the stream after N samples with an end event', async (t) => {
  const port = await serve(t, () => ({ x: 1 }));
  const body = await get(port, '/events?count=2');
  assert.match(body.body, /^retry: 2000\n\ndata: \{"at":\d+,"x":1\}\n\ndata: \{"at":\d+,"x":1\}\n\nevent: end\ndata: \{\}\n\n$/);
  assert.equal((await get(port, '/events?count=0')).status, 400);
});

test('event streams beyond the limit are refused', async (t) => {
  const port = await serve(t, () => ({}), 1);
  const held = http.get({ host: '127.0.0.1', port, path: '/events', agent: false });
  await new Promise<void>((r) => held.once('response', () => r()));
  t.after(() => held.destroy());
  assert.equal((await events(port, 1)).status, 503);
});
