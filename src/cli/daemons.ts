// `baton frontend` and `baton backend`: load and validate the config, start the daemon, stop
// cleanly on SIGINT/SIGTERM; the front-end reloads its config file on SIGHUP.
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { BackendAgent } from '../backend/agent.ts';
import { BpfDecapGate } from '../backend/decap.ts';
import { openParkGate } from '../backend/park-bpf.ts';
import { loadBackendDataplane } from '../steer/bpf-loader.ts';
import { backendConfigSchema, livenessOf } from '../backend/config.ts';
import { deliverToServer, deliverToUpstream } from '../backend/deliver.ts';
import { setupRealServer } from '../backend/realserver.ts';
import { createSampleApp } from '../backend/sample-app.ts';
import { frontendConfigSchema, type FrontendConfig } from '../frontend/config.ts';
import { FrontendDaemon } from '../frontend/daemon.ts';
import { loadConfigFile, resolveSecret } from '../util/config-file.ts';
import { createLogger } from './log.ts';

function onSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ sig }, 'stopping');
    stop()
      .catch((e: Error) => log.error({ err: e.message }, 'stop failed'))
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export async function runFrontend(cfg: FrontendConfig, log: Logger, o: { fresh?: boolean; configFile?: string } = {}): Promise<() => Promise<void>> {
  const d = await FrontendDaemon.start(cfg, log, o);
  // SIGHUP re-reads the file (as `baton reload`); the daemon logs what changed or why not.
  process.on('SIGHUP', () => void d.reload());
  // bpf steering outlives the process: a restart or upgrade adopts it and handed-off connections keep
  // flowing meanwhile (as LVS keeps its table in the kernel). `--fresh` at the next start discards it.
  return () => d.stop({ keepSteering: cfg.steering.kind === 'bpf' });
}

export function registerDaemons(program: Command): void {
  program
    .command('frontend')
    .description('run a front-end: accept on the VIP, hand connections to back-ends')
    .requiredOption('-c, --config <file>', 'front-end configuration (JSON)')
    .option('--fresh', 'bpf steering: discard the flows an earlier front-end process left steered, instead of adopting them')
    .action(async (o: { config: string; fresh?: boolean }) => {
      const log = createLogger('baton-frontend');
      const cfg = await loadConfigFile(frontendConfigSchema, o.config);
      const stop = await runFrontend(cfg, log, { fresh: o.fresh === true, configFile: o.config });
      onSignals(log, stop);
    });

  program
    .command('backend')
    .description('run a back-end agent: accept handed-off connections and deliver them to an app')
    .requiredOption('-c, --config <file>', 'back-end configuration (JSON)')
    .action(async (o: { config: string }) => {
      const log = createLogger('baton-backend');
      const cfg = await loadConfigFile(backendConfigSchema, o.config);
      const secret = await resolveSecret(cfg.secret);
      if (cfg.setupRealServer) await setupRealServer(cfg.vip);
      const app = cfg.app;
      let deliver;
      let sample: ReturnType<typeof createSampleApp> | undefined;
      if (app.kind === 'sample') {
        const tls = app.tls && { cert: await readFile(app.tls.cert), key: await readFile(app.tls.key) };
        sample = createSampleApp(cfg.name, { ...(tls && { tls }) });
        deliver = deliverToServer(sample);
        if (app.listen) {
          const { host, port } = app.listen;
          await new Promise<void>((r) => sample!.listen(port, host, r));
        }
      } else {
        deliver = deliverToUpstream({
          host: app.host,
          port: app.port,
          proxyProtocol: app.proxyProtocol,
          onError: (err, flow) => log.warn({ err: err.message, client: flow.client }, 'upstream failed'),
        });
      }
      // One program for both: decapsulation (encap front-ends) and the guard (every mode).
      const dp = cfg.dataplane && loadBackendDataplane({
        ifname: cfg.dataplane.interface, pinDir: cfg.dataplane.pinDir ?? `/sys/fs/bpf/baton-agent/${cfg.name}`, adopt: true,
      });
      const park = dp && cfg.dataplane && openGuard(dp, cfg.dataplane, log);
      const family = cfg.vip.includes(':') ? 6 : 4;
      const guardedVips = cfg.dataplane ? cfg.dataplane.vipPorts.map((p) => ({ family, address: cfg.vip, port: p }) as const) : [];
      if (park) park.guardVips(guardedVips);
      if (park) reportParking(park, log);
      const agent = await BackendAgent.start({
        name: cfg.name,
        secret,
        guardedVips,
        control: cfg.control,
        deliver,
        freebind: cfg.freebind,
        commitTimeoutMs: cfg.limits.commitTimeoutMs,
        maxConnections: cfg.limits.maxConnections,
        maxBlobBytes: cfg.limits.maxBlobBytes,
        liveness: livenessOf(cfg.limits),
        ...(dp && { decap: BpfDecapGate.of(dp) }),
        ...(park && { park }),
        ...(cfg.dataplane && { encapSources: cfg.dataplane.encapSources }),
        onEvent: (ev, detail) => log[ev === 'authFailed' ? 'warn' : 'info']({ detail }, ev),
        log: (level, obj, msg) => log[level](obj, msg),
        ...(!cfg.requestRouting && { requestRouting: false as const }),
        // Test hook (test/frontend-faults.test.ts): end-of-connection reports arriving late.
        flowEndDelayMs: Number(process.env['BATON_TEST_FLOW_END_DELAY_MS'] ?? 0) || 0,
        // Test hook (src/lab/cluster-encap-early.test.ts): blobs that arrive after their client's packets.
        prepareDelayMs: Number(process.env['BATON_TEST_PREPARE_DELAY_MS'] ?? 0) || 0,
      });
      log.info({ control: cfg.control, app: app.kind }, 'back-end agent listening');
      onSignals(log, async () => {
        // Graceful: move idle connections away now and the others at their next request boundary, for
        // a few seconds; whatever is left (busy, pinned) stays with the process until it exits.
        const r = await agent.drain();
        const until = Date.now() + 3000;
        while (agent.active > 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
        log.info({ movedIdle: r.moved, left: agent.active }, 'drained');
        await agent.close();
        sample?.close();
      });
    });
}

/**
 * The guard, parking (nfqueue) when asked; if the queue or its nftables rule cannot be set up (no nft, no
 * NFQUEUE support), the guard still runs and drops early packets instead (the client retransmits, never reset).
 */
function openGuard(dp: Parameters<typeof openParkGate>[0]['dataplane'], c: { readonly park: boolean; readonly parkQueue?: number | undefined }, log: { warn(o: object, m: string): void }): ReturnType<typeof openParkGate> {
  if (!c.park) return openParkGate({ dataplane: dp, lossless: false });
  try {
    return openParkGate({ dataplane: dp, lossless: true, ...(c.parkQueue !== undefined && { queue: c.parkQueue }) });
  } catch (err) {
    log.warn({ err: err instanceof Error ? err.message : String(err) }, 'parking unavailable; the guard drops early packets instead (dataplane.park: false)');
    return openParkGate({ dataplane: dp, lossless: false });
  }
}

/**
 * Logs the guard's parking figures every 10 s when packets were dropped or expired since the last report (info
 * when only parked and released): an operator sees early packets the guard could not keep without a stats port.
 */
function reportParking(park: { stats(): { parked: number; released: number; dropped: number; expired: number; pending: number } }, log: { info(o: object, m: string): void; warn(o: object, m: string): void }): void {
  let last = park.stats();
  // Test hook (test/encap-early.test.ts): reports soon after a handoff instead of every 10 s.
  const everyMs = Number(process.env['BATON_TEST_PARK_REPORT_MS'] ?? 0) || 10_000;
  setInterval(() => {
    const now = park.stats();
    const lost = now.dropped - last.dropped + (now.expired - last.expired);
    const moved = now.parked - last.parked + (now.released - last.released);
    if (lost > 0) log.warn({ ...now, since: { dropped: now.dropped - last.dropped, expired: now.expired - last.expired } }, 'guard dropped early client packets');
    else if (moved > 0) log.info({ ...now }, 'guard parked early client packets');
    last = now;
  }, everyMs).unref();
}
