// Policies by name. createPolicy() validates a spec and returns a fresh instance, so two
// pools never share state (LARD's assignments are per pool).

import { PolicyConfigError, fieldPath } from './errors.ts';
import { LeastConnections } from './least-conn.ts';
import { Lard } from './lard.ts';
import { LardReplicated } from './lardr.ts';
import { MaglevHash } from './maglev.ts';
import { POLICY_NAMES, policySpecSchema, type PolicySpec } from './spec.ts';
import type { Policy } from './types.ts';
import { WeightedRoundRobin } from './wrr.ts';

/** Throws PolicyConfigError for an unknown name or invalid options. */
export const createPolicy = (spec: PolicySpec): Policy => {
  const name: unknown = (spec as { name?: unknown } | null)?.name;
  if (!(POLICY_NAMES as readonly unknown[]).includes(name)) {
    throw new PolicyConfigError(`name: unknown policy ${JSON.stringify(name) ?? 'undefined'} (expected one of ${POLICY_NAMES.join(', ')})`);
  }
  const r = policySpecSchema.safeParse(spec);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue === undefined ? 'policy' : fieldPath(issue.path);
    throw new PolicyConfigError(`${where}: ${issue?.message ?? 'invalid policy'}`, { cause: r.error });
  }
  const s = r.data;
  switch (s.name) {
    case 'wrr':
      return new WeightedRoundRobin();
    case 'lc':
      return new LeastConnections();
    case 'maglev':
      return new MaglevHash(s.options);
    case 'lard':
      return new Lard(s.options);
    case 'lardr':
      return new LardReplicated(s.options);
  }
};
