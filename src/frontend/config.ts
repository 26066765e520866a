// The front-end's configuration: one typed object with defaults, validated once at start.
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { routerSpecSchema } from '../policy/index.ts';

const ip = z.string().refine((s) => isIP(s) !== 0, 'expected an IPv4 or IPv6 address');
const port = z.number().int().min(1).max(65535);
const hostPort = z.strictObject({ host: ip, port });

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** True for an address only this host can reach: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. */
export const isLoopback = (a: string): boolean => {
  const v4 = a.toLowerCase().startsWith('::ffff:') ? a.slice(7) : a;
  if (isIP(v4) === 4) return loopback.check(v4, 'ipv4');
  return isIP(a) === 6 && loopback.check(a, 'ipv6');
};

/** An optional active health check: HTTP GET against the back-end, in addition to the control channel. */
export const healthCheckSchema = z
  .strictObject({
    /** Request path (origin-form). */
    path: z.string().regex(/^\/[\x21-\x7e]*$/, 'expected a path starting with /').max(1024).default('/'),
    /** Port probed on the back-end's address (default: the front-end's service `port`). */
    port: port.optional(),
    /** Host header sent (default: the back-end's address). */
    host: z.string().regex(/^[\x21-\x7e]{1,255}$/, 'expected a host name without spaces').optional(),
    /** Time between the end of one probe and the start of the next. */
    intervalMs: z.number().int().min(100).max(3_600_000).default(2000),
    /** A probe not answered with a status line within this long fails. */
    timeoutMs: z.number().int().min(10).max(60_000).default(1000),
    /** Consecutive successes that bring a failed back-end back. */
    rise: z.number().int().min(1).max(100).default(2),
    /** Consecutive failures that take a back-end out (no new handoffs). */
    fall: z.number().int().min(1).max(100).default(3),
  })
  .refine((h) => h.timeoutMs <= h.intervalMs, { path: ['timeoutMs'], message: 'must not exceed intervalMs' });

export type HealthCheckConfig = z.infer<typeof healthCheckSchema>;

export const frontendConfigSchema = z
  .strictObject({
    /** The virtual IP clients connect to; the front-end must own it (it answers ARP for it). */
    vip: ip,
    /** The TCP port served on the VIP. */
    port: port.default(80),
    /**
     * The port carries TLS: the front-end reads the ClientHello (not a request head), routes on its SNI
     * and ALPN (`sni`/`alpn`/`host` rules) and hands the connection off before the handshake, which
     * the back-end completes with its own certificate. See docs/tls.md.
     */
    tls: z.boolean().default(false),
    /** The client-facing interface: steering hooks its ingress, back-ends are reached through it. */
    interface: z.string().regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'expected an interface name'),
    /** Shared secret for the control channels (>= 16 chars), inline, `env:NAME` or `file:PATH`. */
    secret: z.string().min(1),
    backends: z
      .array(
        z.strictObject({
          /** Unique name, used by pools and in metrics. */
          id: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'expected 1-32 letters, digits, _ . -'),
          /** The back-end's address on the front-end's segment: the next hop for steered packets. */
          address: ip,
          /** Where the back-end agent accepts the control channel. */
          control: hostPort,
          /** Relative weight for weighted policies; 0 drains it. */
          weight: z.number().min(0).max(1000).default(1),
          /**
           * How steered packets reach it: `l2` (direct routing: same L2 segment, MAC rewrite) or `encap`
           * (flow-id encapsulation across L3: needs `steering.kind` "bpf" and the agent's `dataplane`).
           */
          mode: z.enum(['l2', 'encap']).default('l2'),
          /** Optional active health check; a back-end failing it gets no new handoffs. */
          healthCheck: healthCheckSchema.optional(),
        }),
      )
      .min(1)
      .max(64),
    ...routerSpecSchema.shape,
    limits: z
      .strictObject({
        /** Largest request head (request line + headers) read before answering 431. */
        maxHeadBytes: z.number().int().min(256).max(1 << 20).default(16384),
        /** Most header fields accepted before answering 431. */
        maxHeaders: z.number().int().min(1).max(1000).default(100),
        /** Time allowed for the whole request head to arrive before answering 408. */
        headTimeoutMs: z.number().int().min(10).max(600_000).default(10_000),
        /** tls: largest ClientHello (handshake message with its 4-byte header) read before refusing it. */
        maxHelloBytes: z.number().int().min(512).max(1 << 20).default(16384),
        /** tls: most records one ClientHello may be spread over. */
        maxHelloRecords: z.number().int().min(1).max(256).default(16),
        /** tls: time allowed for the whole ClientHello to arrive before the connection is closed. */
        helloTimeoutMs: z.number().int().min(10).max(600_000).default(10_000),
        /** Time a back-end has to inject a connection and acknowledge it. */
        handoffTimeoutMs: z.number().int().min(10).max(60_000).default(2000),
        /** Back-ends tried for one connection before answering 503. */
        maxAttempts: z.number().int().min(1).max(16).default(3),
        /** Connections accepted and not yet handed off, beyond which new ones are refused. */
        maxPending: z.number().int().min(1).max(1_000_000).default(4096),
        /**
         * Forward first (docs/handoff.md): to an agent that guards the VIP against early packets (its
         * `dataplane`), steer the client there before sending the blob, and let it deliver at once: one round
         * trip less per handoff, and nothing the client sends meanwhile is dropped. false: always hold first.
         */
        forwardFirst: z.boolean().default(true),
      })
      .prefault({}),
    steering: z
      .strictObject({
        /** `bpf` (eBPF at tc ingress, maps pinned so handed-off flows survive a restart) or `nft` (fallback). */
        kind: z.enum(['bpf', 'nft']).default('bpf'),
        /** Names the kernel state: the nftables table, or the pin directory /sys/fs/bpf/baton/<table>. */
        table: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,30}$/).default('baton'),
        /** Forget a forwarded flow after this long without a client packet. */
        idleTimeoutS: z.number().int().min(1).max(86_400).default(300),
        /** Keep forwarding an ended flow this long, for its last FIN/ACK packets. */
        lingerMs: z.number().int().min(100).max(60_000).default(2000),
        /** bpf: bpffs directory where the maps and program link are pinned (default /sys/fs/bpf/baton/<table>). */
        pinDir: z.string().startsWith('/').max(200).optional(),
        /** bpf: most flows steered at once (size of the kernel's flow table). */
        maxFlows: z.number().int().min(1024).max(16_777_216).default(262_144),
        /** bpf: encapsulation source address (default: this host's source address on the route to each encap back-end). */
        source: ip.optional(),
        /**
         * bpf: recover flows other front-ends handed off (several front-ends behind ECMP): a packet to the VIP with
         * no entry and no local connection is dropped (not reset) while the back-ends are asked who holds it.
         */
        orphans: z.boolean().default(false),
      })
      .prefault({}),
    /** Optional HTTP endpoint with /stats (JSON) and /metrics (Prometheus text). */
    stats: hostPort.optional(),
    /** The operator's admin API (status, back-ends, flows, drain, reload); never reachable from clients. */
    admin: z
      .strictObject({
        /** Unix socket path (mode 0600, directory created); default /run/baton/<steering.table>.sock. */
        socket: z.string().regex(/^\/[^\0]{1,99}$/, 'expected an absolute path of at most 100 bytes').optional(),
        /** Also listen on TCP, loopback addresses only. */
        tcp: hostPort.optional(),
        /** Where drain and health state are kept across restarts; default /run/baton/<steering.table>.state.json. */
        stateFile: z.string().regex(/^\/[^\0]{1,4095}$/, 'expected an absolute path').optional(),
      })
      .prefault({}),
    /**
     * The name sent to agents in HELLO; they route FLOW_END by it, so it must differ between front-ends sharing
     * back-ends, and stay the same across restarts. Default: this host's address toward the first back-end, VIP and port.
     */
    name: z.string().min(1).refine((s) => Buffer.byteLength(s) <= 64, 'at most 64 bytes').optional(),
    /**
     * Announce the VIP through the host's BGP daemon (BIRD 2) only while ready (data plane loaded, a back-end's
     * channel up); withdraw when not, and on shutdown. `protocols` are the BIRD protocols originating the VIP route
     * (e.g. a `protocol static` exported to the BGP session), enabled and disabled through `birdSocket`.
     */
    bgp: z
      .strictObject({
        birdSocket: z.string().startsWith('/').max(200),
        protocols: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected a BIRD protocol name')).min(1).max(8),
        birdc: z.string().min(1).max(200).optional(),
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    const r = routerSpecSchema.safeParse({ pools: c.pools, rules: c.rules, defaultPool: c.defaultPool });
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
    // A rule that can never match on this listener is a mistake, not a no-op: say so at load.
    c.rules.forEach((r, i) => {
      const never = c.tls ? (['pathPrefix', 'pathRegex', 'header'] as const) : (['sni', 'alpn'] as const);
      for (const f of never) {
        if (r.match[f] !== undefined) {
          const why = c.tls ? 'a tls listener routes before any HTTP request is read' : 'only a tls listener (tls: true) reads a ClientHello';
          ctx.addIssue({ code: 'custom', path: ['rules', i, 'match', f], message: `never matches: ${why}` });
        }
      }
    });
    const ids = new Set<string>();
    c.backends.forEach((b, i) => {
      if (ids.has(b.id)) ctx.addIssue({ code: 'custom', path: ['backends', i, 'id'], message: `duplicate back-end "${b.id}"` });
      ids.add(b.id);
    });
    c.pools.forEach((p, i) =>
      p.members.forEach((m, j) => {
        if (!ids.has(m)) ctx.addIssue({ code: 'custom', path: ['pools', i, 'members', j], message: `unknown back-end "${m}"` });
      }),
    );
    if (c.steering.orphans && c.steering.kind !== 'bpf') {
      ctx.addIssue({ code: 'custom', path: ['steering', 'orphans'], message: 'orphan recovery needs steering.kind "bpf"' });
    }
    c.backends.forEach((b, i) => {
      if (b.mode === 'encap' && c.steering.kind !== 'bpf') {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'mode'], message: 'encap needs steering.kind "bpf"' });
      }
    });
    if (c.admin.tcp && !isLoopback(c.admin.tcp.host)) {
      ctx.addIssue({ code: 'custom', path: ['admin', 'tcp', 'host'], message: 'must be a loopback address (127.0.0.0/8 or ::1)' });
    }
    const fam = isIP(c.vip);
    c.backends.forEach((b, i) => {
      if (isIP(b.address) !== fam) ctx.addIssue({ code: 'custom', path: ['backends', i, 'address'], message: `must be IPv${fam} like the vip` });
    });
  });

export type FrontendConfig = z.infer<typeof frontendConfigSchema>;

/** Where the admin API's Unix socket is: configured, or /run/baton/<steering table>.sock. */
export const adminSocketPath = (c: Pick<FrontendConfig, 'admin' | 'steering'>): string =>
  c.admin.socket ?? tableSocketPath(c.steering.table);

/** Where the front-end keeps drain and health state across restarts. */
export const adminStatePath = (c: Pick<FrontendConfig, 'admin' | 'steering'>): string =>
  c.admin.stateFile ?? `/run/baton/${c.steering.table}.state.json`;

/** The default admin socket of the front-end whose steering table is `table` ("baton" by default). */
export const tableSocketPath = (table = 'baton'): string => `/run/baton/${table}.sock`;
