// A failed system call, with the call's name and errno, e.g. "setsockopt(TCP_REPAIR_WINDOW): EINVAL".
import { constants } from 'node:os';
import { BatonError } from '../wire/errors.ts';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name] as const),
);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export class SysError extends BatonError {
  readonly call: string;
  readonly errno: number;
  /** Symbolic errno, e.g. "EPERM". */
  readonly errnoName: string;
  constructor(call: string, errno: number) {
    const name = errnoName(errno);
    super('BATON_ERR_SYS', `${call}: ${name}`);
    this.call = call;
    this.errno = errno;
    this.errnoName = name;
  }
}
