// Errors raised while building policies and routers from configuration. Picking never
// throws: an impossible pick is a PickResult of kind 'none'.

export class PolicyConfigError extends Error {
  readonly code = 'BATON_ERR_POLICY_CONFIG';
  override readonly name = 'PolicyConfigError';
}

/** Formats a zod-style issue path as the config field it names: ["rules", 2, "pool"] -> "rules[2].pool". */
export const fieldPath = (path: readonly PropertyKey[]): string => {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
};
