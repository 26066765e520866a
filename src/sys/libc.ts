// The raw libc functions baton calls through koffi. Everything else in sys/ wraps these with
// types and errno checks; nothing outside sys/ imports koffi.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

type Fn<A extends unknown[]> = (...args: A) => number;

// Pointers are declared void* and passed as Buffers we own.
export const raw = {
  socket: libc.func('int socket(int domain, int type, int protocol)') as Fn<[number, number, number]>,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)') as Fn<[number, Buffer, number]>,
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)') as Fn<[number, Buffer, number]>,
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)') as Fn<
    [number, number, number, Buffer, number]
  >,
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, void *val, void *len)') as Fn<
    [number, number, number, Buffer, Buffer]
  >,
  getsockname: libc.func('int getsockname(int fd, void *addr, void *len)') as Fn<[number, Buffer, Buffer]>,
  getpeername: libc.func('int getpeername(int fd, void *addr, void *len)') as Fn<[number, Buffer, Buffer]>,
  ioctl: libc.func('int ioctl(int fd, unsigned long req, void *arg)') as Fn<[number, number, Buffer]>,
  recv: libc.func('intptr_t recv(int fd, void *buf, uintptr_t len, int flags)') as Fn<[number, Buffer, number, number]>,
  send: libc.func('intptr_t send(int fd, const void *buf, uintptr_t len, int flags)') as Fn<
    [number, Buffer, number, number]
  >,
  close: libc.func('int close(int fd)') as Fn<[number]>,
  listen: libc.func('int listen(int fd, int backlog)') as Fn<[number, number]>,
  accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)') as Fn<[number, Buffer, Buffer, number]>,
};

export function lastErrno(): number {
  return koffi.errno();
}
