// The routing decision for every later request on a handed-off connection, made at the back-end
// without a round trip. The front-end pushes a RoutingSnapshot (its rules and pools, each
// back-end's weight and availability, and LARD's target assignments); an agent loads it into a
// RoutingTable and calls decide() at each later request head. 'stay' means the front-end's
// router would send this request here too; 'move' means it would not, or that only the
// front-end can tell (a LARD target with no assignment yet, which its pick must count).
//
// Decisions a caller relies on:
// - Rules are evaluated by the same Router code as the front-end's (one source of truth), and
//   Maglev pools by the same MaglevHash over the same eligible members, so a snapshot decides
//   exactly as the front-end would.
// - wrr and lc pools keep a request on any eligible member: spreading load is the first
//   handoff's job, and moving costs more than it balances.
// - lard pools stay only on the target's assigned back-end, lardr pools on any member of the
//   target's server set; a target with no assignment moves (the front-end assigns it).
// - A back-end that is not eligible in the snapshot (down, weight 0, draining) moves every
//   request: that is how a drain moves connections at their next request boundary.
// - Without a snapshot every request stays: the connection keeps today's behaviour.
// Pure: no I/O, no clock.

import { z } from 'zod';
import { PolicyConfigError, fieldPath } from './errors.ts';
import { isEligible } from './eligible.ts';
import { keyExtractor } from './key.ts';
import { MaglevHash } from './maglev.ts';
import { Router, type RouterOptions } from './router.ts';
import { routerSpecSchema, type PolicySpec } from './spec.ts';
import { backendId, type BackendId, type BackendView, type RequestInfo } from './types.ts';

/** Most assignments one snapshot may carry (LARD's default maxTargets is 100 000 per pool). */
export const MAX_SNAPSHOT_ASSIGNMENTS = 1_000_000;

export const routingSnapshotSchema = z.strictObject({
  /** Increases with every change the front-end makes; agents report stays against it. */
  version: z.number().int().nonnegative(),
  router: routerSpecSchema,
  /** Every back-end the front-end knows. `up: false` also marks a back-end being drained. */
  backends: z.array(z.strictObject({ id: z.string().min(1), weight: z.number().nonnegative().finite(), up: z.boolean() })),
  /** lard: one back-end per target; lardr: the target's server set. Targets are the pool's request key. */
  assignments: z
    .array(z.strictObject({ pool: z.string().min(1), target: z.string(), backends: z.array(z.string().min(1)) }))
    .max(MAX_SNAPSHOT_ASSIGNMENTS),
});

export type RoutingSnapshot = z.infer<typeof routingSnapshotSchema>;

export type StayReason = 'no-snapshot' | 'member' | 'hash' | 'assigned';
export type MoveReason = 'unavailable' | 'not-in-pool' | 'hash-elsewhere' | 'assigned-elsewhere' | 'unassigned';

export type RouteDecision =
  | { readonly kind: 'stay'; readonly pool: string | undefined; readonly reason: StayReason }
  | { readonly kind: 'move'; readonly pool: string; readonly reason: MoveReason };

interface CompiledPool {
  readonly policy: PolicySpec['name'];
  readonly members: ReadonlySet<string>;
  /** lard/lardr: the request key; maglev: the shared policy and its eligible members. */
  readonly key: ((req: RequestInfo) => string) | undefined;
  readonly maglev: { readonly hash: MaglevHash; readonly views: readonly BackendView[] } | undefined;
  /** target -> assigned back-ends (lard, lardr). */
  readonly assigned: Map<string, readonly string[]>;
}

interface Compiled {
  readonly version: number;
  readonly router: Router;
  readonly pools: ReadonlyMap<string, CompiledPool>;
  readonly selfEligible: boolean;
}

const NO_SNAPSHOT: RouteDecision = { kind: 'stay', pool: undefined, reason: 'no-snapshot' };

/** One back-end's view of the front-end's routing: load() a snapshot, assign() deltas, decide(). */
export class RoutingTable {
  readonly #self: BackendId;
  readonly #options: RouterOptions;
  #c: Compiled | undefined;

  constructor(self: string, options: RouterOptions = {}) {
    this.#self = backendId(self);
    this.#options = options;
  }

  /** Version of the loaded snapshot (raised by assign()), or undefined before the first. */
  get version(): number | undefined {
    return this.#c?.version;
  }

  /** Validates and installs a snapshot; throws PolicyConfigError naming the field and keeps the old one. */
  load(snapshot: RoutingSnapshot): void {
    const r = routingSnapshotSchema.safeParse(snapshot);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new PolicyConfigError(`snapshot: ${issue === undefined ? 'invalid' : `${fieldPath(issue.path)}: ${issue.message}`}`, {
        cause: r.error,
      });
    }
    const s = r.data;
    const router = new Router(s.router, this.#options);
    const byId = new Map(s.backends.map((b) => [b.id, b]));
    const view = (id: string): BackendView => {
      const b = byId.get(id);
      return { id: backendId(id), up: b?.up ?? false, weight: b?.weight ?? 0, active: 0 };
    };
    const pools = new Map<string, CompiledPool>();
    for (const p of s.router.pools) {
      const policy = p.policy.name;
      const options = p.policy.options;
      const key = policy === 'lard' || policy === 'lardr' || policy === 'maglev' ? keyExtractor(options?.key) : undefined;
      pools.set(p.name, {
        policy,
        members: new Set(p.members),
        key,
        maglev: policy === 'maglev' ? { hash: new MaglevHash(options ?? {}), views: p.members.map(view) } : undefined,
        assigned: new Map(),
      });
    }
    for (const [i, a] of s.assignments.entries()) {
      const pool = pools.get(a.pool);
      if (pool === undefined || (pool.policy !== 'lard' && pool.policy !== 'lardr')) {
        throw new PolicyConfigError(`snapshot: assignments[${i}].pool: "${a.pool}" is not a lard or lardr pool`);
      }
      pool.assigned.set(a.target, a.backends);
    }
    const self = byId.get(this.#self);
    this.#c = { version: s.version, router, pools, selfEligible: self !== undefined && isEligible(view(this.#self)) };
  }

  /**
   * Applies one assignment change pushed after the snapshot (LARD's pick assigned or moved a
   * target; undefined or [] forgets it). Ignored for an unknown pool, or before any snapshot.
   */
  assign(version: number, pool: string, target: string, backends: readonly string[] | undefined): void {
    const c = this.#c;
    const p = c?.pools.get(pool);
    if (c === undefined || p === undefined) return;
    if (backends === undefined || backends.length === 0) p.assigned.delete(target);
    else p.assigned.set(target, backends);
    if (version > c.version) this.#c = { ...c, version };
  }

  /** Whether `req`, arriving on a connection this back-end holds, stays here. Synchronous, never throws. */
  decide(req: RequestInfo): RouteDecision {
    const c = this.#c;
    if (c === undefined) return NO_SNAPSHOT;
    const name = c.router.poolFor(req);
    const pool = c.pools.get(name);
    if (!c.selfEligible) return { kind: 'move', pool: name, reason: 'unavailable' };
    if (pool === undefined || !pool.members.has(this.#self)) return { kind: 'move', pool: name, reason: 'not-in-pool' };
    switch (pool.policy) {
      case 'wrr':
      case 'lc':
        return { kind: 'stay', pool: name, reason: 'member' };
      case 'maglev': {
        const m = pool.maglev;
        const pick = m === undefined ? undefined : m.hash.pick(req, m.views);
        return pick?.kind === 'backend' && pick.id === this.#self
          ? { kind: 'stay', pool: name, reason: 'hash' }
          : { kind: 'move', pool: name, reason: 'hash-elsewhere' };
      }
      case 'lard':
      case 'lardr': {
        const set = pool.assigned.get(pool.key?.(req) ?? '');
        if (set === undefined) return { kind: 'move', pool: name, reason: 'unassigned' };
        return set.includes(this.#self)
          ? { kind: 'stay', pool: name, reason: 'assigned' }
          : { kind: 'move', pool: name, reason: 'assigned-elsewhere' };
      }
    }
  }

  /** The key a pool's affinity policy uses for this request ('' for wrr/lc), for STAY reports. */
  targetOf(pool: string, req: RequestInfo): string {
    return this.#c?.pools.get(pool)?.key?.(req) ?? '';
  }
}
