// Hot reload, the pure half: compare the running configuration with a newly validated one and say
// what can change live (back-ends added, removed, re-weighted, health checks; pools and rules;
// most limits) and what cannot (the listener, the steering table, the secret, the admin and stats
// endpoints). The daemon applies a plan; this module does no I/O so every case is a unit test.
import type { FrontendConfig } from './config.ts';

export type BackendConfig = FrontendConfig['backends'][number];

/** A change that needs a restart: the field's path and why. */
export interface Refusal {
  readonly field: string;
  readonly message: string;
}

export interface BackendUpdate {
  readonly id: string;
  readonly before: BackendConfig;
  readonly after: BackendConfig;
  /** The top-level fields of the back-end that differ ('weight', 'healthCheck'). */
  readonly fields: readonly string[];
}

export interface ReloadPlan {
  /** In the new file's order. */
  readonly added: readonly BackendConfig[];
  /** Ids no longer in the file: no new handoffs; their existing flows stay steered until they end. */
  readonly removed: readonly string[];
  readonly updated: readonly BackendUpdate[];
  /** Pools, rules or the default pool differ: the router is rebuilt (policy state starts afresh). */
  readonly routerChanged: boolean;
  /** Limits other than handoffTimeoutMs differ: they apply to connections accepted afterwards. */
  readonly limitsChanged: boolean;
  /** One line per change, for the operator. Empty when nothing changed. */
  readonly summary: readonly string[];
}

export type ReloadDecision =
  | { readonly kind: 'apply'; readonly plan: ReloadPlan }
  | { readonly kind: 'refused'; readonly refusals: readonly Refusal[] };

/** Structural equality of plain JSON values (key order ignored). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameValue(ra[k], rb[k]));
}

/** Top-level fields that only a restart can change, and why. */
const FIXED: ReadonlyArray<readonly [keyof FrontendConfig, string]> = [
  ['vip', 'the listener is bound to it'],
  ['port', 'the listener is bound to it'],
  ['tls', 'the listener is made for it: plain HTTP is accepted as descriptors, TLS by Node'],
  ['interface', 'steering is attached to it'],
  ['steering', 'the steering table is built with it'],
  ['secret', 'open control channels were authenticated with it'],
  ['stats', 'the stats server is bound to it'],
  ['admin', 'the admin server is bound to it'],
];

/** Back-end fields that only a restart (or a new id) can change. */
const FIXED_BACKEND: ReadonlyArray<readonly [keyof BackendConfig, string]> = [
  ['address', 'steered flows are forwarded to it; add the new address under a new id instead'],
  ['control', 'the control channel is connected to it; add it under a new id instead'],
  ['mode', 'steered flows are forwarded this way; add it under a new id instead'],
];

export function planReload(cur: FrontendConfig, next: FrontendConfig): ReloadDecision {
  const refusals: Refusal[] = [];
  const restart = (field: string, why: string): void => {
    refusals.push({ field, message: `cannot change without a restart (${why})` });
  };
  for (const [k, why] of FIXED) if (!sameValue(cur[k], next[k])) restart(k, why);
  if (cur.limits.handoffTimeoutMs !== next.limits.handoffTimeoutMs) {
    restart('limits.handoffTimeoutMs', 'open control channels were made with it');
  }

  const before = new Map(cur.backends.map((b) => [b.id, b]));
  const after = new Map(next.backends.map((b) => [b.id, b]));
  const added = next.backends.filter((b) => !before.has(b.id));
  const removed = cur.backends.filter((b) => !after.has(b.id)).map((b) => b.id);
  const updated: BackendUpdate[] = [];
  next.backends.forEach((b, i) => {
    const old = before.get(b.id);
    if (!old) return;
    for (const [k, why] of FIXED_BACKEND) {
      if (!sameValue(old[k], b[k])) restart(`backends.${i}.${k}`, why);
    }
    const keys = new Set([...Object.keys(old), ...Object.keys(b)]) as Set<keyof BackendConfig>;
    const fields = [...keys].filter((k) => !sameValue(old[k], b[k]) && !FIXED_BACKEND.some(([f]) => f === k));
    if (fields.length > 0) updated.push({ id: b.id, before: old, after: b, fields });
  });
  if (refusals.length > 0) return { kind: 'refused', refusals };

  const routerChanged = !sameValue(
    { pools: cur.pools, rules: cur.rules, defaultPool: cur.defaultPool },
    { pools: next.pools, rules: next.rules, defaultPool: next.defaultPool },
  );
  const limitsChanged = !sameValue(cur.limits, next.limits);

  const summary: string[] = [
    ...added.map((b) => `back-end ${b.id} added (${b.address}, weight ${b.weight})`),
    ...removed.map((id) => `back-end ${id} removed (no new handoffs; its connections finish)`),
    ...updated.map((u) =>
      `back-end ${u.id}: ${u.fields
        .map((f) => (f === 'weight' ? `weight ${u.before.weight} -> ${u.after.weight}` : `${f} changed`))
        .join(', ')}`,
    ),
  ];
  if (routerChanged) summary.push('pools/rules changed (router rebuilt)');
  if (limitsChanged) summary.push('limits changed (apply to new connections)');
  return { kind: 'apply', plan: { added, removed, updated, routerChanged, limitsChanged, summary } };
}

/** A refusal as one line naming each field: "config: vip: cannot change without a restart (...)". */
export const refusalText = (rs: readonly Refusal[]): string =>
  rs.map((r) => `config: ${r.field}: ${r.message}`).join('; ');

/** What applying a plan needs from the daemon (faked in tests). */
export interface ReloadPorts<R> {
  /** Build the router for the new pools and rules; throws on an invalid spec (nothing applied yet). */
  router(next: FrontendConfig): R;
  /**
   * Make a new back-end reachable: steering knows it and its control channel is opening. Resolves
   * when it may be picked; throws (with the reason) when it cannot be added.
   */
  add(b: BackendConfig): Promise<void>;
  /** Undo `add` for a back-end whose reload was abandoned. */
  undoAdd(id: string): void;
  /** Swap the configuration and router in one synchronous step: new connections see the new state. */
  swap(next: FrontendConfig, router: R): void;
  /** A removed back-end: no new handoffs; keep what steers its flows until they end. */
  retire(id: string): void;
  /** Health checks for the new back-end list (state of the ids that remain is kept). */
  health(next: FrontendConfig): void;
}

export type ReloadOutcome =
  | { readonly ok: true; readonly changes: readonly string[] }
  | { readonly ok: false; readonly code: string; readonly field: string; readonly message: string };

export const RELOAD_ERR = {
  /** A field that needs a restart changed. */
  RESTART_NEEDED: 'BATON_ERR_RELOAD_RESTART',
  /** The new state could not be built or applied (router, steering, channel); nothing changed. */
  APPLY: 'BATON_ERR_RELOAD_APPLY',
} as const;

/**
 * Applies a new validated configuration in the order that loses nothing: build the router, make
 * added back-ends reachable, swap the configuration in one step, then retire removed back-ends and
 * update health checks. Any failure before the swap undoes the additions and changes nothing.
 * Handoffs in flight finish against the state they started with: they hold their channel, and
 * steering never forgets a back-end's flows on retirement.
 */
export async function applyReload<R>(cur: FrontendConfig, next: FrontendConfig, ports: ReloadPorts<R>): Promise<ReloadOutcome> {
  const d = planReload(cur, next);
  if (d.kind === 'refused') {
    return { ok: false, code: RELOAD_ERR.RESTART_NEEDED, field: d.refusals[0]!.field, message: refusalText(d.refusals) };
  }
  const plan = d.plan;
  let router: R;
  try {
    router = ports.router(next);
  } catch (e) {
    return { ok: false, code: RELOAD_ERR.APPLY, field: 'pools', message: `config: router: ${(e as Error).message}` };
  }
  const added: string[] = [];
  for (const b of plan.added) {
    try {
      await ports.add(b);
      added.push(b.id);
    } catch (e) {
      for (const id of added) ports.undoAdd(id);
      const i = next.backends.findIndex((x) => x.id === b.id);
      return { ok: false, code: RELOAD_ERR.APPLY, field: `backends.${i}`, message: `config: backends.${i}: cannot add ${b.id}: ${(e as Error).message}` };
    }
  }
  ports.swap(next, router);
  for (const id of plan.removed) ports.retire(id);
  ports.health(next);
  return { ok: true, changes: plan.summary };
}
