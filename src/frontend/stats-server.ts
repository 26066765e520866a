// The front-end's observability endpoint: GET /stats (JSON), GET /metrics (Prometheus), and the
// live dashboard (GET / or /dashboard, fed by /events; dashboard.ts).
import http from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { dashboardRoutes } from './dashboard.ts';
import type { Frontend } from './frontend.ts';

/** Move counters exported by outcome: asked = go + stays + refused; moved counts forwardFirst (lossless) ones. */
const MOVE_OUTCOMES = ['asked', 'go', 'stays', 'refused', 'moved', 'forwardFirst', 'forwardFirstFailed', 'returned', 'kept', 'lost'] as const;

/** `extra`: more top-level fields for /stats (the daemon's announcement and orphan recovery). */
export function startStatsServer(fe: Frontend, host: string, port: number, extra?: () => Record<string, unknown>): Promise<http.Server> {
  const reg = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name: `baton_frontend_${name}`, help, labelNames, registers: [reg] });
  const accepted = gauge('accepted_total', 'connections accepted');
  const handed = gauge('handoffs_total', 'connections handed off', ['backend']);
  const failures = gauge('handoff_failures_total', 'handoffs refused or timed out', ['backend']);
  const active = gauge('backend_active', 'active connections per back-end (reported + own)', ['backend']);
  const up = gauge('backend_up', 'control channel up', ['backend']);
  const drained = gauge('backend_drained', 'drained by an operator (takes no new handoffs)', ['backend']);
  const healthy = gauge('backend_healthy', 'passing its active health check (1 without one)', ['backend']);
  const vanished = gauge('vanished_total', 'clients gone between request head and capture', []);
  const pending = gauge('pending', 'connections still sending their request head or TLS hello', []);
  const shed = gauge('shed_total', 'waiting connections expired early to make room at limits.maxPending', []);
  const local = gauge('answered_locally_total', 'responses sent by the front-end itself', ['status']);
  const tlsRefused = gauge('tls_refused_total', 'tls listener: connections refused before the handshake', ['reason']);
  const lat = gauge('handoff_latency_us', 'handoff latency, head complete to commit', ['quantile']);
  const moves = gauge('moves_total', 'requests on handed-off connections asked about, by outcome (docs/moves.md)', ['outcome']);
  const steeredPackets = gauge('steered_packets_total', 'client packets the data plane forwarded to the back-end', ['backend']);
  const steeredBytes = gauge('steered_bytes_total', 'client bytes the data plane forwarded to the back-end', ['backend']);
  const dataPath = async (): Promise<Awaited<ReturnType<Frontend['dataPathCounters']>>> => {
    const c = await fe.dataPathCounters().catch(() => ({}));
    for (const [id, v] of Object.entries(c)) {
      steeredPackets.set({ backend: id }, v.packets);
      steeredBytes.set({ backend: id }, v.bytes);
    }
    return c;
  };

  const refresh = (): ReturnType<Frontend['stats']> => {
    const s = fe.stats();
    accepted.set(s.accepted);
    vanished.set(s.vanished);
    pending.set(s.pending);
    shed.set(s.shed);
    for (const [id, b] of Object.entries(s.perBackend)) {
      handed.set({ backend: id }, b.handoffs);
      failures.set({ backend: id }, b.failures);
      active.set({ backend: id }, b.active);
      up.set({ backend: id }, b.up ? 1 : 0);
      drained.set({ backend: id }, b.drained ? 1 : 0);
      healthy.set({ backend: id }, b.healthy ? 1 : 0);
    }
    for (const [status, n] of Object.entries(s.answeredLocally)) local.set({ status }, n);
    for (const [reason, n] of Object.entries(s.tlsRefused)) tlsRefused.set({ reason }, n);
    for (const outcome of MOVE_OUTCOMES) moves.set({ outcome }, s.moves[outcome]);
    lat.set({ quantile: '0.5' }, s.handoffUs.p50);
    lat.set({ quantile: '0.99' }, s.handoffUs.p99);
    return s;
  };

  const dashboard = dashboardRoutes({ stats: refresh });
  const server = http.createServer((req, res) => {
    if (dashboard(req, res)) return;
    if (req.url === '/stats') {
      const s = refresh();
      void dataPath().then((steered) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...s, steering: { perBackend: steered }, ...extra?.() })),
      );
    } else if (req.url === '/metrics') {
      refresh();
      void dataPath()
        .then(() => reg.metrics())
        .then((m) => res.writeHead(200, { 'content-type': reg.contentType }).end(m));
    } else res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
