// Reading and validating a JSON configuration file at the edge: one typed object out, or an
// error that names the offending field ("backends.1.control.port: expected number").
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { BatonError } from '../wire/errors.ts';

export class ConfigError extends BatonError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('BATON_ERR_CONFIG', field ? `config: ${field}: ${message}` : `config: ${message}`);
    this.field = field;
  }
}

const MAX_CONFIG_BYTES = 1 << 20;

export function parseConfig<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new ConfigError(issue.path.map(String).join('.'), issue.message);
}

export async function loadConfigFile<S extends z.ZodType>(schema: S, path: string): Promise<z.infer<S>> {
  const text = await readFile(path, 'utf8');
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError('', `${path} is larger than ${MAX_CONFIG_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('', `${path}: invalid JSON: ${(e as Error).message}`);
  }
  return parseConfig(schema, json);
}

/** A secret given inline, as `env:NAME`, or as `file:PATH`; resolved once at start. */
export async function resolveSecret(spec: string): Promise<string> {
  if (spec.startsWith('env:')) {
    const v = process.env[spec.slice(4)];
    if (v === undefined) throw new ConfigError('secret', `environment variable ${spec.slice(4)} is not set`);
    return v;
  }
  if (spec.startsWith('file:')) return (await readFile(spec.slice(5), 'utf8')).trim();
  return spec;
}
