// The back-end agent's configuration: one typed object with defaults, validated once at start.
import { isIP } from 'node:net';
import { z } from 'zod';
import type { Liveness } from '../tcp/liveness.ts';

const ip = z.string().refine((s) => isIP(s) !== 0, 'expected an IPv4 or IPv6 address');
const port = z.number().int().min(1).max(65535);
const hostPort = z.strictObject({ host: ip, port });

export const backendConfigSchema = z.strictObject({
  /** This back-end's name (as the front-end's config calls it). */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'expected 1-32 letters, digits, _ . -'),
  /** Where to accept control channels from front-ends. */
  control: hostPort,
  /** Shared secret (>= 16 chars), inline, `env:NAME` or `file:PATH`. */
  secret: z.string().min(1),
  /** The VIP whose connections this back-end receives. */
  vip: ip,
  /** Apply the direct-routing real-server setup at start: VIP on lo, arp_ignore=1, arp_announce=2. */
  setupRealServer: z.boolean().default(false),
  /** Bind injected sockets with IP_FREEBIND (when the VIP is not a local address). */
  freebind: z.boolean().default(false),
  /**
   * The back-end's data plane, loaded at tc ingress on `interface` (its maps pinned under `pinDir`, a bpffs directory;
   * default /sys/fs/bpf/baton-agent/<name>, so connections survive an agent restart). It decapsulates for
   * front-ends that forward by flow-id encapsulation (back-end `mode: "encap"` in their config) and, for every mode
   * (l2 too), guards the VIP: client packets that reach this back-end before their socket is injected are parked
   * below the stack instead of being answered with a RST (the lossless handoff).
   */
  dataplane: z
    .strictObject({
      kind: z.literal('bpf').default('bpf'),
      interface: z.string().regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'expected an interface name'),
      pinDir: z.string().startsWith('/').max(200).optional(),
      /** The VIP's ports the guard watches (the front-end's listener ports). */
      vipPorts: z.array(port).min(1).max(64).default([80]),
      /** true: parked packets wait in an nfqueue and are let through once the socket is injected (lossless); false:
       * they are dropped (the client retransmits; never a RST). */
      park: z.boolean().default(true),
      /** The nfqueue number parked packets wait in (one per network namespace). */
      parkQueue: z.number().int().min(0).max(65535).default(2983),
      /**
       * Source addresses of front-ends that encapsulate to this back-end, when they differ from the address their
       * control channel comes from (a front-end's `steering.source`). Their encapsulated packets that overtake
       * their blob are parked, not lost. Control-channel peers and blobs' front-ends are added by themselves.
       */
      encapSources: z.array(ip).max(64).default([]),
    })
    .optional(),
  /**
   * Route every later request on a handed-off connection by the front-end's rules (docs/moves.md): the connection
   * moves to another back-end at a request boundary when its request belongs there, and drains move connections.
   * Costs ~45 µs of agent CPU per request (a JavaScript layer between socket and app); false hands sockets over untouched.
   */
  requestRouting: z.boolean().default(true),
  /** Where committed connections go. */
  app: z.discriminatedUnion('kind', [
    z.strictObject({
      /** The built-in sample app (demo, tests, benchmarks). */
      kind: z.literal('sample'),
      /** Also serve the sample app on this ordinary address (for direct and proxy baselines). */
      listen: hostPort.optional(),
      /**
       * Serve HTTPS (for a front-end listener with `tls: true`): PEM files of the certificate chain
       * and its key. The handshake happens here, after the handoff; the front-end holds no key.
       */
      tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    }),
    z.strictObject({
      /** Splice each connection to an unmodified local server. */
      kind: z.literal('upstream'),
      host: ip,
      port,
      /** Prefix each upstream connection with a PROXY protocol v2 header (client address). */
      proxyProtocol: z.boolean().default(false),
    }),
  ]),
  limits: z
    .strictObject({
      /** Time an injected connection waits for the front-end's commit before it is dropped. */
      commitTimeoutMs: z.number().int().min(10).max(60_000).default(5000),
      /** Delivered connections beyond which handoffs are refused. */
      maxConnections: z.number().int().min(1).max(10_000_000).default(100_000),
      /** Largest handoff blob accepted (bytes). */
      maxBlobBytes: z.number().int().min(1024).max(256 << 20).default(64 << 20),
      /** TCP_USER_TIMEOUT on injected connections: longest time sent data may go unacknowledged (ms; 0 = kernel default). */
      userTimeoutMs: z.number().int().min(0).max(3_600_000).default(30_000),
      /** Keepalive on injected connections: idle seconds before the first probe. */
      keepaliveIdleS: z.number().int().min(1).max(32_767).default(60),
      /** Keepalive: seconds between probes. */
      keepaliveIntervalS: z.number().int().min(1).max(32_767).default(10),
      /** Keepalive: unanswered probes before an idle connection whose client is gone is closed. */
      keepaliveCount: z.number().int().min(1).max(127).default(3),
    })
    .prefault({}),
});

export type BackendConfig = z.infer<typeof backendConfigSchema>;

/** The liveness bounds the receiver sets on injected connections, from `limits`. */
export function livenessOf(l: BackendConfig['limits']): Liveness {
  return {
    userTimeoutMs: l.userTimeoutMs,
    keepaliveIdleS: l.keepaliveIdleS,
    keepaliveIntervalS: l.keepaliveIntervalS,
    keepaliveCount: l.keepaliveCount,
  };
}
