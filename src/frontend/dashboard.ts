// The live dashboard, served by the stats server: one self-contained HTML page (no build step, no
// external asset) at `/` and `/dashboard`, fed by server-sent events at `/events` that carry the
// same JSON as `/stats` (plus `at`, the sample's time in ms) once a second. Rates (handoffs/s)
// are computed in the page from successive samples. Read-only: it shows what /stats shows and
// offers no action. `/events?count=N` ends the stream after N samples with an `end` event (a
// snapshot; the page passes its own query on).
import { createHash } from 'node:crypto';
import type http from 'node:http';

export interface DashboardOptions {
  /** The /stats document. */
  readonly stats: () => object;
  /** Period of the event stream; default 1000 ms. */
  readonly intervalMs?: number;
  /** Event streams open at once; more are answered 503. Default 16. */
  readonly maxClients?: number;
}

const SCRIPT = String.raw`
'use strict';
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const num = (n) => (n === undefined || n === null ? '-' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 }));
const bytes = (n) => { if (n === undefined) return '-'; const u = ['B', 'KB', 'MB', 'GB', 'TB']; let i = 0; n = Number(n); while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + ' ' + u[i]; };
let prev = null;
const history = [];
function rate(cur, old, dt) { return old === undefined || dt <= 0 ? 0 : Math.max(0, (cur - old) / dt); }
function render(s, t) {
  const dt = prev ? (t - prev.t) / 1000 : 0;
  const hps = prev ? rate(s.handedOff, prev.s.handedOff, dt) : 0;
  history.push(hps); if (history.length > 120) history.shift();
  $('accepted').textContent = num(s.accepted);
  $('handedOff').textContent = num(s.handedOff);
  $('pending').textContent = num(s.pending);
  $('retries').textContent = num(s.retries);
  $('hps').textContent = num(hps);
  const local = Object.entries(s.answeredLocally || {});
  $('local').textContent = local.length ? local.map(([k, v]) => k + ': ' + num(v)).join(', ') : 'none';
  const lat = s.handoffUs || {};
  for (const k of ['p50', 'p90', 'p99', 'max']) $('lat-' + k).textContent = num(lat[k]);
  const rows = Object.entries(s.perBackend || {}).map(([id, b]) => {
    const old = prev && prev.s.perBackend ? prev.s.perBackend[id] : undefined;
    const r = old ? rate(b.handoffs, old.handoffs, dt) : 0;
    const state = b.drained ? 'drained' : !b.up ? 'down' : b.healthy === false ? 'unhealthy' : 'up';
    return '<tr data-backend="' + esc(id) + '"><td>' + esc(id) + '</td><td class="st ' + state + '">' + state + '</td>' +
      '<td data-k="active">' + num(b.active) + '</td><td data-k="handoffs">' + num(b.handoffs) + '</td><td>' + num(r) + '</td>' +
      '<td data-k="failures">' + num(b.failures) + '</td></tr>';
  });
  $('backends').innerHTML = rows.join('') || '<tr><td colspan="6">no back-ends</td></tr>';
  const buckets = Object.entries(lat.buckets || {}).map(([k, v]) => [Number(k), v]).sort((a, b) => a[0] - b[0]);
  const maxN = Math.max(1, ...buckets.map((b) => b[1]));
  $('hist').innerHTML = buckets.map(([ub, n]) =>
    '<div class="bar"><span class="lbl">&le; ' + num(ub) + ' &micro;s</span><span class="fill" style="width:' + (100 * n / maxN).toFixed(1) + '%"></span><span class="n">' + num(n) + '</span></div>').join('') || 'no handoffs yet';
  const phases = Object.entries(s.phasesUs || {});
  $('phases').innerHTML = phases.map(([k, v]) => '<tr><td>' + esc(k) + '</td><td>' + num(v.p50) + '</td><td>' + num(v.p99) + '</td></tr>').join('');
  const st = s.steering || {};
  $('direct').textContent = st.bytes !== undefined ? bytes(st.bytes) : 'not reported';
  $('viafe').textContent = s.frontendBytes !== undefined ? bytes(s.frontendBytes) : 'not reported';
  const pools = Object.entries(s.pools || {});
  $('pools').innerHTML = pools.length ? pools.map(([name, p]) => {
    const old = prev && prev.s.pools ? prev.s.pools[name] : undefined;
    return '<tr><td>' + esc(name) + '</td><td>' + num(old ? rate(p.requests, old.requests, dt) : 0) + '</td></tr>';
  }).join('') : '<tr><td colspan="2">not reported</td></tr>';
  const w = 600, h = 60, m = Math.max(1, ...history);
  $('spark').setAttribute('points', history.map((v, i) => (i * w / 119).toFixed(1) + ',' + (h - v * h / m).toFixed(1)).join(' '));
  $('spark-max').textContent = num(m) + '/s';
  $('updated').textContent = new Date(t).toLocaleTimeString();
  prev = { s, t };
  document.body.dataset.samples = String(Number(document.body.dataset.samples || 0) + 1);
}
// ?count=N on the page asks the server for N samples only (snapshots, headless tests).
const es = new EventSource('events' + location.search);
es.addEventListener('end', () => { es.close(); $('conn').textContent = 'ended'; $('conn').className = ''; });
es.onmessage = (e) => { $('conn').textContent = 'live'; $('conn').className = 'ok'; const s = JSON.parse(e.data); render(s, typeof s.at === 'number' ? s.at : Date.now()); };
es.onerror = () => { $('conn').textContent = 'reconnecting'; $('conn').className = 'bad'; };
`;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>baton front-end</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .5em}h2{font-size:1em;margin:1.2em 0 .4em;color:#555}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:.6em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em .8em}
.card b{display:block;font-size:1.5em}.card small{color:#777}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.25em .7em;text-align:right}
td:first-child,th:first-child{text-align:left}.st.up{color:#080}.st.down{color:#b00}.st.drained{color:#a60}.st.unhealthy{color:#b00}
.bar{display:flex;align-items:center;gap:.5em;font-size:12px}.lbl{width:9em;flex:none;text-align:right;color:#555}
.fill{display:inline-block;height:.9em;background:#4a7bd0}.n{color:#555}
.ok{color:#080}.bad{color:#b00}svg{background:#fff;border:1px solid #ddd}
</style></head>
<body>
<h1>baton front-end <small id="conn" class="bad">connecting</small> <small id="updated"></small></h1>
<div class="grid">
<div class="card"><small>handoffs/s</small><b id="hps">-</b></div>
<div class="card"><small>handed off</small><b id="handedOff">-</b></div>
<div class="card"><small>accepted</small><b id="accepted">-</b></div>
<div class="card"><small>pending</small><b id="pending">-</b></div>
<div class="card"><small>retries</small><b id="retries">-</b></div>
<div class="card"><small>answered by the front-end</small><b id="local" style="font-size:1em">-</b></div>
</div>
<h2>handoffs per second (last 2 minutes, max <span id="spark-max">-</span>)</h2>
<svg width="600" height="60" viewBox="0 0 600 60"><polyline id="spark" fill="none" stroke="#4a7bd0" stroke-width="1.5" points=""/></svg>
<h2>back-ends</h2>
<table><thead><tr><th>id</th><th>state</th><th>active</th><th>handoffs</th><th>handoffs/s</th><th>failures</th></tr></thead><tbody id="backends"></tbody></table>
<h2>handoff latency (head complete to commit, &micro;s): p50 <span id="lat-p50">-</span>, p90 <span id="lat-p90">-</span>, p99 <span id="lat-p99">-</span>, max <span id="lat-max">-</span></h2>
<div id="hist"></div>
<h2>phases (&micro;s)</h2>
<table><thead><tr><th>phase</th><th>p50</th><th>p99</th></tr></thead><tbody id="phases"></tbody></table>
<h2>bytes</h2>
<table><tr><td>served directly by back-ends (steered)</td><td id="direct">-</td></tr><tr><td>through the front-end</td><td id="viafe">-</td></tr></table>
<h2>pools (requests/s)</h2>
<table><tbody id="pools"></tbody></table>
<script>${SCRIPT}</script>
</body></html>
`;

const SCRIPT_HASH = createHash('sha256').update(SCRIPT).digest('base64');
/** Only the page's own inline script and style, and event streams from this origin. */
export const DASHBOARD_CSP = `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'`;

/**
 * Handles `/`, `/dashboard` and `/events`; returns false for any other request so the caller
 * can answer it.
 */
export function dashboardRoutes(o: DashboardOptions): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const interval = o.intervalMs ?? 1000;
  const max = o.maxClients ?? 16;
  let clients = 0;
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const path = url.pathname;
    if (req.method !== 'GET') return false;
    if (path === '/' || path === '/dashboard') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DASHBOARD_CSP, 'cache-control': 'no-store' }).end(PAGE);
      return true;
    }
    if (path !== '/events') return false;
    const countText = url.searchParams.get('count');
    const count = countText === null ? Infinity : Number(countText);
    if (!(count === Infinity || (Number.isInteger(count) && count >= 1 && count <= 10_000))) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('count: expected an integer 1..10000\n');
      return true;
    }
    if (clients >= max) {
      res.writeHead(503, { 'retry-after': '5' }).end();
      return true;
    }
    clients++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    let sent = 0;
    const send = (): void => {
      // `at`: when the sample was taken, so rates do not depend on when the page receives it.
      const sample = { at: Date.now(), ...(o.stats() as object) };
      const text = JSON.stringify(sample, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      res.write(`data: ${text}\n\n`);
      if (++sent >= count) {
        clearInterval(timer);
        res.end('event: end\ndata: {}\n\n');
      }
    };
    const timer = setInterval(send, interval);
    send();
    res.on('close', () => {
      clearInterval(timer);
      clients--;
    });
    return true;
  };
}
