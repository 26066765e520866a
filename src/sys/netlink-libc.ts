// libc functions the netlink socket needs beyond libc.ts (kept apart: libc.ts is shared).
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

type Fn<A extends unknown[]> = (...args: A) => number;

export const nlRaw = {
  /** poll(2) on a `struct pollfd[]` we own (8 bytes each: int fd, short events, short revents). */
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)') as Fn<[Buffer, number, number]>,
};

export const POLLIN = 0x1;
