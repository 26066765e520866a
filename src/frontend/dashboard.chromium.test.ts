// The dashboard in a real browser: headless Chromium loads the page, its script runs under the
// page's CSP, takes samples from the event stream and renders the same figures as /stats.
// Skips when no Chromium is installed (Debian: apt-get install chromium).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { dashboardRoutes } from './dashboard.ts';

const browser = ['chromium', 'chromium-browser', 'google-chrome'].find((b) => spawnSync(b, ['--version'], { stdio: 'ignore' }).status === 0);

/** Loads a page headless and returns its DOM after the page's network activity ends. */
async function dumpDom(url: string, profile: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    browser!,
    ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--virtual-time-budget=10000', '--dump-dom', url],
    { timeout: 60_000, maxBuffer: 16 << 20 },
  );
  return stdout;
}

const textOf = (dom: string, id: string): string | undefined => new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(dom)?.[1];

test('headless Chromium renders the figures of /stats', { skip: browser ? false : 'needs chromium' }, async (t) => {
  let n = 0;
  const stats = () => {
    n++;
    return {
      accepted: 100 + n, handedOff: 90 + n, pending: 2, retries: 3, answeredLocally: { '503': 4 },
      handoffUs: { count: 90, p50: 310, p90: 520, p99: 900, max: 1200, buckets: { '256': 20, '512': 60, '1024': 10 } },
      phasesUs: { hold: { p50: 20, p99: 40 }, capture: { p50: 60, p99: 90 } },
      perBackend: {
        b1: { handoffs: 50 + n, failures: 1, active: 7, up: true, drained: false },
        b2: { handoffs: 40, failures: 0, active: 0, up: true, drained: true },
        b3: { handoffs: 0, failures: 2, active: 0, up: true, drained: false, healthy: false },
      },
    };
  };
  const routes = dashboardRoutes({ stats, intervalMs: 50 });
  const server = http.createServer((req, res) => {
    if (!routes(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const profile = await mkdtemp(join(tmpdir(), 'baton-chromium-'));
  t.after(async () => {
    server.closeAllConnections();
    server.close();
    await rm(profile, { recursive: true, force: true });
  });
  const port = (server.address() as AddressInfo).port;

  const dom = await dumpDom(`http://127.0.0.1:${port}/dashboard?count=3`, profile);
  assert.match(dom, /<body[^>]*data-samples="3"/, 'the script ran (CSP allowed it) and took 3 samples');
  const last = { handedOff: 93, accepted: 103 };
  assert.equal(textOf(dom, 'handedOff'), String(last.handedOff));
  assert.equal(textOf(dom, 'accepted'), String(last.accepted));
  assert.equal(textOf(dom, 'pending'), '2');
  assert.equal(textOf(dom, 'lat-p99'), '900');
  assert.equal(textOf(dom, 'local'), '503: 4');
  assert.equal(textOf(dom, 'conn'), 'ended');
  const row = (id: string) => new RegExp(`<tr data-backend="${id}">(.*?)</tr>`).exec(dom)?.[1] ?? '';
  assert.match(row('b1'), /class="st up">up<.*data-k="active">7<.*data-k="handoffs">53<.*data-k="failures">1</);
  assert.match(row('b2'), /class="st drained">drained<.*data-k="active">0<.*data-k="handoffs">40</);
  assert.match(row('b3'), /class="st unhealthy">unhealthy</);
  // handoffs/s is computed from successive samples: positive for b1 (its count grows), 0 for b2.
  assert.doesNotMatch(row('b1'), /data-k="handoffs">53<\/td><td>0</);
  assert.match(row('b2'), /data-k="handoffs">40<\/td><td>0</);
});
