// Fakes for policy tests: back-end views and requests built from short literals.

import { backendId, type BackendView, type RequestInfo } from './types.ts';

export interface FakeBackend extends BackendView {
  active: number;
  up: boolean;
  weight: number;
}

/** be('a', { active: 3 }) -> an up back-end "a" of weight 1. */
export const be = (id: string, o: Partial<Omit<FakeBackend, 'id'>> = {}): FakeBackend => ({
  id: backendId(id),
  up: o.up ?? true,
  weight: o.weight ?? 1,
  active: o.active ?? 0,
});

/** n back-ends "b0".."b{n-1}". */
export const cluster = (n: number): FakeBackend[] => Array.from({ length: n }, (_, i) => be(`b${i}`));

/** req('/a?x=1', { host: 'Example.com', headers: { 'X-T': 'v' } }) */
export const req = (
  target: string,
  o: { host?: string; method?: string; headers?: Record<string, string> } = {},
): RequestInfo => {
  const q = target.indexOf('?');
  return {
    method: o.method ?? 'GET',
    target,
    path: q < 0 ? target : target.slice(0, q),
    host: (o.host ?? '').toLowerCase(),
    headers: new Map(Object.entries(o.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
  };
};

/** The id picked, or "none". */
export const pickedId = (r: { kind: 'backend'; id: string } | { kind: 'none' }): string =>
  r.kind === 'backend' ? r.id : 'none';
