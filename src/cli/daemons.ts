// `baton frontend` and `baton backend`: load and validate the config, start the daemon, stop
// cleanly on SIGINT/SIGTERM.
import type { Command } from 'commander';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { BackendAgent } from '../backend/agent.ts';
import { backendConfigSchema } from '../backend/config.ts';
import { deliverToServer, deliverToUpstream } from '../backend/deliver.ts';
import { setupRealServer } from '../backend/realserver.ts';
import { createSampleApp } from '../backend/sample-app.ts';
import { ControlClient } from '../control/client.ts';
import { frontendConfigSchema, type FrontendConfig } from '../frontend/config.ts';
import { Frontend } from '../frontend/frontend.ts';
import { startStatsServer } from '../frontend/stats-server.ts';
import { Router } from '../policy/index.ts';
import { createSteering } from '../steer/create.ts';
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

export async function runFrontend(cfg: FrontendConfig, log: Logger): Promise<() => Promise<void>> {
  const secret = await resolveSecret(cfg.secret);
  const router = new Router({ pools: cfg.pools, rules: cfg.rules, defaultPool: cfg.defaultPool });
  const steering = await createSteering({
    kind: cfg.steering.kind,
    table: cfg.steering.table,
    device: cfg.interface,
    vip: cfg.vip,
    port: cfg.port,
    family: isIPv6(cfg.vip) ? 6 : 4,
    backends: cfg.backends.map((b) => ({ id: b.id, address: b.address, mode: b.mode })),
    idleTimeoutS: cfg.steering.idleTimeoutS,
    lingerMs: cfg.steering.lingerMs,
    pinDir: cfg.steering.pinDir,
    maxFlows: cfg.steering.maxFlows,
    source: cfg.steering.source,
  });
  const channels = new Map<string, ControlClient>();
  let fe: Frontend | undefined;
  for (const b of cfg.backends) {
    const ch = new ControlClient({
      secret,
      address: b.control,
      name: `frontend ${cfg.vip}:${cfg.port}`,
      handoffTimeoutMs: cfg.limits.handoffTimeoutMs,
    });
    ch.on('up', () => log.info({ backend: b.id }, 'control channel up'));
    ch.on('down', (reason: string) => log.warn({ backend: b.id, reason }, 'control channel down'));
    ch.on('load', (active) => fe?.onLoad(b.id, active));
    ch.on('flowEnd', (f) => fe?.onFlowEnd({ family: f.family, clientAddress: f.client.address, clientPort: f.client.port }));
    channels.set(b.id, ch);
  }
  fe = new Frontend({ config: cfg, router, steering, channels, log });
  const addr = await fe.listen();
  for (const ch of channels.values()) ch.start();
  const stats = cfg.stats ? await startStatsServer(fe, cfg.stats.host, cfg.stats.port) : undefined;
  log.info({ vip: addr.address, port: addr.port, backends: cfg.backends.length }, 'front-end listening');
  return async () => {
    await fe.close();
    stats?.close();
    for (const ch of channels.values()) ch.close();
    await steering.close();
  };
}

export function registerDaemons(program: Command): void {
  program
    .command('frontend')
    .description('run a front-end: accept on the VIP, hand connections to back-ends')
    .requiredOption('-c, --config <file>', 'front-end configuration (JSON)')
    .action(async (o: { config: string }) => {
      const log = createLogger('baton-frontend');
      const cfg = await loadConfigFile(frontendConfigSchema, o.config);
      const stop = await runFrontend(cfg, log);
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
        sample = createSampleApp(cfg.name);
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
      const agent = await BackendAgent.start({
        name: cfg.name,
        secret,
        control: cfg.control,
        deliver,
        freebind: cfg.freebind,
        commitTimeoutMs: cfg.limits.commitTimeoutMs,
        maxConnections: cfg.limits.maxConnections,
        maxBlobBytes: cfg.limits.maxBlobBytes,
        onEvent: (ev, detail) => log[ev === 'authFailed' ? 'warn' : 'info']({ detail }, ev),
      });
      log.info({ control: cfg.control, app: app.kind }, 'back-end agent listening');
      onSignals(log, async () => {
        await agent.close();
        sample?.close();
      });
    });
}
