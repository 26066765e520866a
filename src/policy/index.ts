// Request distribution: one Policy interface (types.ts), five policies behind a registry, and a
// Router that applies Host/path/header (and, for TLS listeners, SNI/ALPN) rules to choose a pool.
// Pure: no I/O, no clock, no randomness.

export * from './types.ts';
export { createPolicy } from './registry.ts';
export {
  policySpecSchema,
  routerSpecSchema,
  maglevOptionsSchema,
  POLICY_NAMES,
  type PolicySpec,
  type PolicyName,
  type RouterSpec,
  type RuleMatch,
} from './spec.ts';
export { Router, type RouterOptions } from './router.ts';
export { PolicyConfigError } from './errors.ts';
export { WeightedRoundRobin } from './wrr.ts';
export { LeastConnections } from './least-conn.ts';
export { MaglevHash, buildMaglevTable, MAGLEV_TABLE_SIZE } from './maglev.ts';
export { Lard } from './lard.ts';
export { LardReplicated } from './lardr.ts';
export { LARD_DEFAULTS, lardAdmissionLimit, lardOptionsSchema, type LardOptions } from './lard-common.ts';
export { requestKeySchema, type RequestKey } from './key.ts';
export { isEligible } from './eligible.ts';
