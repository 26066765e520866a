// Content rules in front of pools: the first rule whose every given field matches names a pool;
// otherwise the default pool. HTTP listeners match on Host, path and headers; TLS listeners,
// routed before the handshake, on SNI and ALPN (and Host, which is the SNI there). The pool's
// own policy then picks among the pool's members.

import { PolicyConfigError, fieldPath } from './errors.ts';
import { NO_ELIGIBLE } from './eligible.ts';
import { createPolicy } from './registry.ts';
import { routerSpecSchema, type RouterSpec, type RuleMatch } from './spec.ts';
import type { BackendId, BackendView, PickResult, Policy, RequestInfo } from './types.ts';

export interface RouterOptions {
  /**
   * Longest path or header value a regex is tested against; longer inputs do not match the
   * rule. Bounds the cost of a badly backtracking pattern. Default 2048.
   */
  readonly maxRegexInput?: number;
}

interface Pool {
  readonly name: string;
  readonly policy: Policy;
  readonly members: ReadonlySet<string>;
}

type Matcher = (req: RequestInfo) => boolean;

interface CompiledRule {
  readonly matches: Matcher;
  readonly pool: Pool;
}

export class Router {
  readonly #pools = new Map<string, Pool>();
  readonly #rules: CompiledRule[];
  readonly #default: Pool;
  readonly #maxRegexInput: number;

  /** Throws PolicyConfigError naming the offending field, e.g. "rules[2].match.pathRegex: invalid regex". */
  constructor(spec: RouterSpec, options: RouterOptions = {}) {
    const r = routerSpecSchema.safeParse(spec);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new PolicyConfigError(
        issue === undefined ? 'router: invalid' : `${fieldPath(issue.path)}: ${issue.message}`,
        { cause: r.error },
      );
    }
    this.#maxRegexInput = options.maxRegexInput ?? 2048;
    for (const p of r.data.pools) {
      this.#pools.set(p.name, { name: p.name, policy: createPolicy(p.policy), members: new Set(p.members) });
    }
    const pool = (name: string): Pool => {
      const p = this.#pools.get(name);
      if (p === undefined) throw new PolicyConfigError(`unknown pool "${name}"`);
      return p;
    };
    this.#rules = r.data.rules.map((rule) => ({ matches: this.#compile(rule.match), pool: pool(rule.pool) }));
    this.#default = pool(r.data.defaultPool);
  }

  /** Name of the pool a request is routed to. */
  poolFor(req: RequestInfo): string {
    return this.#route(req).name;
  }

  pick(req: RequestInfo, backends: readonly BackendView[], nowMs: number): PickResult {
    const pool = this.#route(req);
    const members = backends.filter((b) => pool.members.has(b.id));
    const result = pool.policy.pick(req, members, nowMs);
    if (result.kind === 'none') {
      return { kind: 'none', reason: `pool "${pool.name}": ${members.length === 0 ? NO_ELIGIBLE.reason : result.reason}` };
    }
    return result;
  }

  /** The pool's policy instance (e.g. to ask for its admission bound). */
  policyOf(pool: string): Policy | undefined {
    return this.#pools.get(pool)?.policy;
  }

  /** Back-end ids that are members of a pool. */
  membersOf(pool: string): readonly BackendId[] {
    return [...(this.#pools.get(pool)?.members ?? [])] as BackendId[];
  }

  #route(req: RequestInfo): Pool {
    for (const rule of this.#rules) if (rule.matches(req)) return rule.pool;
    return this.#default;
  }

  #compile(m: RuleMatch): Matcher {
    const tests: Matcher[] = [];
    const max = this.#maxRegexInput;
    const bounded = (re: RegExp) => (s: string) => s.length <= max && re.test(s);
    if (m.host !== undefined) {
      const test = nameMatcher(m.host);
      tests.push((req) => test(req.host));
    }
    if (m.sni !== undefined) {
      const test = nameMatcher(m.sni);
      tests.push((req) => req.sni !== undefined && test(req.sni));
    }
    if (m.alpn !== undefined) {
      const proto = m.alpn;
      tests.push((req) => req.alpn !== undefined && req.alpn.includes(proto));
    }
    if (m.pathPrefix !== undefined) {
      const prefix = m.pathPrefix;
      tests.push((req) => req.path.startsWith(prefix));
    }
    if (m.pathRegex !== undefined) {
      const test = bounded(new RegExp(m.pathRegex));
      tests.push((req) => test(req.path));
    }
    if (m.header !== undefined) {
      const { value, regex } = m.header;
      const name = m.header.name.toLowerCase();
      const test = regex === undefined ? undefined : bounded(new RegExp(regex));
      tests.push((req) => {
        const v = req.headers.get(name);
        return v !== undefined && (value === undefined || v === value) && (test === undefined || test(v));
      });
    }
    return (req) => tests.every((t) => t(req));
  }
}

/**
 * Host and SNI patterns, case-insensitive: "example.com" matches exactly; "*.example.com"
 * matches "a.example.com" and "a.b.example.com", not "example.com".
 */
export const nameMatcher = (pattern: string): ((name: string) => boolean) => {
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) {
    const suffix = p.slice(1);
    return (name) => {
      const h = name.toLowerCase();
      return h.length > suffix.length && h.endsWith(suffix);
    };
  }
  return (name) => name.toLowerCase() === p;
};
