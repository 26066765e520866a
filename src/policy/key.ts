// The request key used by affinity policies (Maglev, LARD, LARD/R): which part of a
// request names "the same content".

import { z } from 'zod';
import type { RequestInfo } from './types.ts';

export const requestKeySchema = z.union([
  z.enum(['path', 'target', 'host']),
  z.strictObject({ header: z.string().min(1) }),
]);

/** 'path' (default): target without query; 'target': with query; 'host'; or one header's value. */
export type RequestKey = z.infer<typeof requestKeySchema>;

/** Returns a function extracting the key; a missing header yields "". */
export const keyExtractor = (key: RequestKey = 'path'): ((req: RequestInfo) => string) => {
  if (typeof key === 'object') {
    const name = key.header.toLowerCase();
    return (req) => req.headers.get(name) ?? '';
  }
  switch (key) {
    case 'path':
      return (req) => req.path;
    case 'target':
      return (req) => req.target;
    case 'host':
      return (req) => req.host;
  }
};
