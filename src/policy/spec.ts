// Configuration schemas for policies and routers: validated once, at the edge, with zod.
// The TypeScript types are inferred from the schemas, so the two cannot drift apart.

import { z } from 'zod';
import { requestKeySchema } from './key.ts';
import { lardOptionsSchema } from './lard-common.ts';

const noOptions = z.strictObject({}).optional();

export const maglevOptionsSchema = z.strictObject({
  /** What the request hashes on; default 'path'. */
  key: requestKeySchema.optional(),
});

export const policySpecSchema = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('wrr'), options: noOptions }),
  z.strictObject({ name: z.literal('lc'), options: noOptions }),
  z.strictObject({ name: z.literal('maglev'), options: maglevOptionsSchema.optional() }),
  z.strictObject({ name: z.literal('lard'), options: lardOptionsSchema.optional() }),
  z.strictObject({ name: z.literal('lardr'), options: lardOptionsSchema.optional() }),
]);

export type PolicySpec = z.infer<typeof policySpecSchema>;
export type PolicyName = PolicySpec['name'];
export const POLICY_NAMES: readonly PolicyName[] = ['wrr', 'lc', 'maglev', 'lard', 'lardr'];

/** True when `source` compiles as a JavaScript RegExp (no flags). */
export const compiles = (source: string): boolean => {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
};

const regexSource = z.string().refine(compiles, { message: 'invalid regex' });

/** A DNS name ("api.example.com") or a wildcard over its subdomains ("*.example.com"). */
const SERVER_NAME_PATTERN = /^(?:\*\.)?[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*$/;

export const ruleMatchSchema = z
  .strictObject({
    /** Host header, case-insensitive exact match; "*.example.com" matches any subdomain (not the apex). */
    host: z.string().min(1).optional(),
    /** Path (target without query) starts with this. */
    pathPrefix: z.string().min(1).optional(),
    /** JavaScript RegExp source tested (unanchored, no flags) against the path. */
    pathRegex: regexSource.optional(),
    /**
     * TLS listeners: the ClientHello's server_name, case-insensitive exact match;
     * "*.example.com" matches any subdomain (not the apex). Never matches a request without SNI.
     */
    sni: z
      .string()
      .regex(SERVER_NAME_PATTERN, { message: 'invalid server name pattern (want "name.example" or "*.name.example")' })
      .max(253)
      .optional(),
    /** TLS listeners: the client offered this ALPN protocol (anywhere in its list), e.g. "h2". */
    alpn: z.string().min(1).max(255).optional(),
    /** Header present; and equal to `value` and/or matching `regex` when given. */
    header: z
      .strictObject({
        name: z.string().min(1),
        value: z.string().optional(),
        regex: regexSource.optional(),
      })
      .optional(),
  })
  .refine((m) => Object.values(m).some((v) => v !== undefined), {
    message: 'a rule needs at least one of host, pathPrefix, pathRegex, header, sni, alpn',
  });

export const routerSpecSchema = z
  .strictObject({
    pools: z
      .array(
        z.strictObject({
          name: z.string().min(1),
          policy: policySpecSchema,
          /** Back-end ids; a back-end may belong to several pools. */
          members: z.array(z.string().min(1)),
        }),
      )
      .min(1),
    /** Tried in order; the first whose every given field matches chooses the pool. */
    rules: z.array(z.strictObject({ match: ruleMatchSchema, pool: z.string().min(1) })),
    /** Pool for requests no rule matches. */
    defaultPool: z.string().min(1),
  })
  .superRefine((spec, ctx) => {
    const names = new Set<string>();
    spec.pools.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: 'custom', path: ['pools', i, 'name'], message: `duplicate pool "${p.name}"` });
      names.add(p.name);
    });
    spec.rules.forEach((r, i) => {
      if (!names.has(r.pool)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'pool'], message: `unknown pool "${r.pool}"` });
    });
    if (!names.has(spec.defaultPool)) {
      ctx.addIssue({ code: 'custom', path: ['defaultPool'], message: `unknown pool "${spec.defaultPool}"` });
    }
  });

export type RouterSpec = z.infer<typeof routerSpecSchema>;
export type RuleMatch = z.infer<typeof ruleMatchSchema>;
