// libbpf (Debian's libbpf1) through koffi: open a compiled BPF object, size and pin its maps, load it (keeping the
// verifier's log on failure), attach a program at tc ingress (tcx link, or cls_bpf where the kernel has no tcx),
// map element operations, and BPF_PROG_TEST_RUN. libbpf 1.x returns -errno from int functions and NULL (errno set)
// from pointer ones; both become SysError. Pointers come back from koffi as bigint addresses.
import koffi from 'koffi';
import { BatonError } from '../wire/errors.ts';
import { SysError } from './errors.ts';

type Ptr = bigint;
type IntFn<A extends unknown[]> = (...args: A) => number;
type PtrFn<A extends unknown[]> = (...args: A) => Ptr | null;
type Arg = Buffer | Ptr | null;

function bind() {
  const lib = koffi.load('libbpf.so.1');
  const libc = koffi.load('libc.so.6');
  const i = <A extends unknown[]>(decl: string) => lib.func(decl) as IntFn<A>;
  const p = <A extends unknown[]>(decl: string) => lib.func(decl) as PtrFn<A>;
  return {
    objectOpenFile: p<[string, Arg]>('void *bpf_object__open_file(const char *path, const void *opts)'),
    objectLoad: i<[Ptr]>('int bpf_object__load(void *obj)'),
    objectClose: lib.func('void bpf_object__close(void *obj)') as (obj: Ptr) => void,
    objectFindMap: p<[Ptr, string]>('void *bpf_object__find_map_by_name(void *obj, const char *name)'),
    objectFindProgram: p<[Ptr, string]>('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
    objectBtf: p<[Ptr]>('void *bpf_object__btf(void *obj)'),
    mapSetMaxEntries: i<[Ptr, number]>('int bpf_map__set_max_entries(void *map, uint32_t n)'),
    mapMaxEntries: i<[Ptr]>('uint32_t bpf_map__max_entries(void *map)'),
    mapSetPinPath: i<[Ptr, string | null]>('int bpf_map__set_pin_path(void *map, const char *path)'),
    mapReuseFd: i<[Ptr, number]>('int bpf_map__reuse_fd(void *map, int fd)'),
    mapFd: i<[Ptr]>('int bpf_map__fd(void *map)'),
    mapKeySize: i<[Ptr]>('uint32_t bpf_map__key_size(void *map)'),
    mapValueSize: i<[Ptr]>('uint32_t bpf_map__value_size(void *map)'),
    mapBtfKeyTypeId: i<[Ptr]>('uint32_t bpf_map__btf_key_type_id(void *map)'),
    mapBtfValueTypeId: i<[Ptr]>('uint32_t bpf_map__btf_value_type_id(void *map)'),
    progFd: i<[Ptr]>('int bpf_program__fd(void *prog)'),
    progSetLogBuf: i<[Ptr, Buffer, number]>('int bpf_program__set_log_buf(void *prog, void *buf, size_t size)'),
    objGet: i<[string]>('int bpf_obj_get(const char *path)'),
    objPin: i<[number, string]>('int bpf_obj_pin(int fd, const char *path)'),
    linkCreate: i<[number, number, number, Arg]>(
      'int bpf_link_create(int prog_fd, int target_fd, int attach_type, const void *opts)',
    ),
    linkUpdate: i<[number, number, Arg]>('int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)'),
    linkDetach: i<[number]>('int bpf_link_detach(int link_fd)'),
    tcHookCreate: i<[Buffer]>('int bpf_tc_hook_create(void *hook)'),
    tcHookDestroy: i<[Buffer]>('int bpf_tc_hook_destroy(void *hook)'),
    tcAttach: i<[Buffer, Buffer]>('int bpf_tc_attach(const void *hook, void *opts)'),
    tcDetach: i<[Buffer, Buffer]>('int bpf_tc_detach(const void *hook, const void *opts)'),
    tcQuery: i<[Buffer, Buffer]>('int bpf_tc_query(const void *hook, void *opts)'),
    mapUpdate: i<[number, Buffer, Buffer, bigint]>(
      'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
    ),
    mapLookup: i<[number, Buffer, Buffer]>('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    mapDelete: i<[number, Buffer]>('int bpf_map_delete_elem(int fd, const void *key)'),
    mapNextKey: i<[number, Buffer | null, Buffer]>('int bpf_map_get_next_key(int fd, const void *key, void *next)'),
    progTestRun: i<[number, Buffer]>('int bpf_prog_test_run_opts(int prog_fd, void *opts)'),
    numPossibleCpus: i<[]>('int libbpf_num_possible_cpus(void)'),
    btf: {
      parse: p<[string, Arg]>('void *btf__parse(const char *path, void *ext)'),
      free: lib.func('void btf__free(void *btf)') as (btf: Ptr) => void,
      findByNameKind: i<[Ptr, string, number]>('int btf__find_by_name_kind(const void *btf, const char *name, uint32_t kind)'),
      typeById: p<[Ptr, number]>('const void *btf__type_by_id(const void *btf, uint32_t id)'),
      nameByOffset: lib.func('const char *btf__name_by_offset(const void *btf, uint32_t off)') as (
        btf: Ptr,
        off: number,
      ) => string | null,
      resolveSize: lib.func('int64_t btf__resolve_size(const void *btf, uint32_t id)') as (btf: Ptr, id: number) => number,
    },
    close: libc.func('int close(int fd)') as IntFn<[number]>,
    ifNameToIndex: libc.func('unsigned int if_nametoindex(const char *name)') as IntFn<[string]>,
    mount: libc.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)') as IntFn<
      [string, string, string, number, null]
    >,
  };
}

let bound: ReturnType<typeof bind> | undefined;

/** The bound libbpf functions; throws BATON_ERR_LIBBPF when libbpf.so.1 cannot be loaded (install `libbpf1`).
 * libbpf's own messages to stderr are silenced (expected probes such as "Parent Qdisc doesn't exists" would look
 * like failures; our errors carry errno and the verifier log) unless BATON_LIBBPF_DEBUG is set. */
export function libbpf(): ReturnType<typeof bind> {
  if (bound) return bound;
  try {
    bound = bind();
    if (!process.env.BATON_LIBBPF_DEBUG) {
      koffi.load('libbpf.so.1').func('void *libbpf_set_print(void *fn)')(null);
    }
  } catch (err) {
    throw new BatonError('BATON_ERR_LIBBPF', 'libbpf: cannot load libbpf.so.1 (apt-get install libbpf1)', { cause: err });
  }
  return bound;
}

/** A libbpf int result: >= 0 is returned, < 0 is -errno. */
export function check(call: string, rc: number): number {
  if (rc < 0) throw new SysError(call, -rc);
  return rc;
}

function checkPtr(call: string, ptr: Ptr | null): Ptr {
  if (ptr === null || ptr === 0n) throw new SysError(call, koffi.errno() || 2 /* ENOENT */);
  return ptr;
}

const ENOENT = 2;

/** A BPF object descriptor (map, program, link) that this process owns; close it, or disown it to keep it open. */
export class BpfFd {
  #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
  }
  get fd(): number {
    if (this.#fd < 0) throw new BatonError('BATON_ERR_BPF_CLOSED', 'bpf: descriptor already closed');
    return this.#fd;
  }
  get closed(): boolean {
    return this.#fd < 0;
  }
  close(): void {
    if (this.#fd >= 0) libbpf().close(this.#fd);
    this.#fd = -1;
  }
  /** Gives the descriptor up without closing it. */
  disown(): number {
    const fd = this.#fd;
    this.#fd = -1;
    return fd;
  }
}

/** Opens a pinned object (map, link, program) by its bpffs path; undefined when nothing is pinned there. */
export function objGet(path: string): BpfFd | undefined {
  const rc = libbpf().objGet(path);
  if (rc === -ENOENT) return undefined;
  return new BpfFd(check(`bpf_obj_get(${path})`, rc));
}

export function objPin(fd: number, path: string): void {
  check(`bpf_obj_pin(${path})`, libbpf().objPin(fd, path));
}

/** A map of an opened object: settable before load, usable through its fd after. */
export class BpfMapSpec {
  readonly name: string;
  readonly #ptr: Ptr;
  constructor(name: string, ptr: Ptr) {
    this.name = name;
    this.#ptr = ptr;
  }
  setMaxEntries(n: number): void {
    check(`bpf_map__set_max_entries(${this.name})`, libbpf().mapSetMaxEntries(this.#ptr, n));
  }
  get maxEntries(): number {
    return libbpf().mapMaxEntries(this.#ptr);
  }
  /** Before load: reuse the map pinned at `path` if there is one (compatible), else create it and pin it there. */
  setPinPath(path: string | null): void {
    check(`bpf_map__set_pin_path(${this.name})`, libbpf().mapSetPinPath(this.#ptr, path));
  }
  /** Before load: use this existing map instead of creating one. */
  reuseFd(fd: number): void {
    check(`bpf_map__reuse_fd(${this.name})`, libbpf().mapReuseFd(this.#ptr, fd));
  }
  /** After load: the map's descriptor (owned by the object). */
  get fd(): number {
    return check(`bpf_map__fd(${this.name})`, libbpf().mapFd(this.#ptr));
  }
  get keySize(): number {
    return libbpf().mapKeySize(this.#ptr);
  }
  get valueSize(): number {
    return libbpf().mapValueSize(this.#ptr);
  }
  /** BTF type ids of the key and value, in the object's BTF. */
  get btfTypeIds(): { key: number; value: number } {
    return { key: libbpf().mapBtfKeyTypeId(this.#ptr), value: libbpf().mapBtfValueTypeId(this.#ptr) };
  }
}

/** An opened (then loaded) BPF object file. Close it once the maps and programs it owns are no longer needed:
 * attachments made through pinned links or cls_bpf and pinned maps outlive it. */
export class BpfObject {
  readonly path: string;
  #ptr: Ptr | undefined;
  readonly #logs = new Map<string, Buffer>();

  private constructor(path: string, ptr: Ptr) {
    this.path = path;
    this.#ptr = ptr;
  }

  static open(path: string): BpfObject {
    return new BpfObject(path, checkPtr(`bpf_object__open_file(${path})`, libbpf().objectOpenFile(path, null)));
  }

  get ptr(): Ptr {
    if (this.#ptr === undefined) throw new BatonError('BATON_ERR_BPF_CLOSED', `bpf: object ${this.path} closed`);
    return this.#ptr;
  }

  map(name: string): BpfMapSpec {
    return new BpfMapSpec(name, checkPtr(`bpf_object__find_map_by_name(${name})`, libbpf().objectFindMap(this.ptr, name)));
  }

  #program(name: string): Ptr {
    return checkPtr(`bpf_object__find_program_by_name(${name})`, libbpf().objectFindProgram(this.ptr, name));
  }

  /** Keeps the verifier's log for these programs so a failed load can say why (1 MiB each). */
  captureLog(...programs: string[]): void {
    for (const name of programs) {
      const buf = Buffer.alloc(1 << 20);
      check(`bpf_program__set_log_buf(${name})`, libbpf().progSetLogBuf(this.#program(name), buf, buf.length));
      this.#logs.set(name, buf);
    }
  }

  /** Loads maps and programs into the kernel. A verifier rejection carries the log in the error's `verifierLog`. */
  load(): void {
    const rc = libbpf().objectLoad(this.ptr);
    if (rc >= 0) return;
    const err = new SysError(`bpf_object__load(${this.path})`, -rc);
    const log = [...this.#logs.values()]
      .map((b) => b.subarray(0, Math.max(0, b.indexOf(0))).toString('utf8'))
      .filter((s) => s.length > 0)
      .join('\n');
    if (log) Object.assign(err, { verifierLog: log }).message += `\n${log.slice(-4000)}`;
    throw err;
  }

  /** After load: a program's descriptor (owned by the object). */
  programFd(name: string): number {
    return check(`bpf_program__fd(${name})`, libbpf().progFd(this.#program(name)));
  }

  /** The object's BTF (owned by the object). */
  get btfPtr(): Ptr {
    return checkPtr('bpf_object__btf', libbpf().objectBtf(this.ptr));
  }

  close(): void {
    if (this.#ptr !== undefined) libbpf().objectClose(this.#ptr);
    this.#ptr = undefined;
  }
}

// --- map elements (fd-level, so they work on pinned maps opened with objGet too) ---

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;

export function mapUpdate(fd: number, key: Buffer, value: Buffer, flags = BPF_ANY): void {
  check('bpf_map_update_elem', libbpf().mapUpdate(fd, key, value, flags));
}

/** Fills `value` and returns true, or returns false when the key is absent. */
export function mapLookup(fd: number, key: Buffer, value: Buffer): boolean {
  const rc = libbpf().mapLookup(fd, key, value);
  if (rc === -ENOENT) return false;
  check('bpf_map_lookup_elem', rc);
  return true;
}

/** Returns false when the key was absent. */
export function mapDelete(fd: number, key: Buffer): boolean {
  const rc = libbpf().mapDelete(fd, key);
  if (rc === -ENOENT) return false;
  check('bpf_map_delete_elem', rc);
  return true;
}

/** Writes the key after `key` (the first when null) into `next`; false at the end. */
export function mapNextKey(fd: number, key: Buffer | null, next: Buffer): boolean {
  const rc = libbpf().mapNextKey(fd, key, next);
  if (rc === -ENOENT) return false;
  check('bpf_map_get_next_key', rc);
  return true;
}

/** Number of possible CPUs: a per-CPU map's lookup returns one value (8-byte aligned) per possible CPU. */
export function possibleCpus(): number {
  return check('libbpf_num_possible_cpus', libbpf().numPossibleCpus());
}

// --- attachment at tc ingress ---

const BPF_TCX_INGRESS = 46;
const BPF_TC_INGRESS = 1;
const BPF_TC_F_REPLACE = 1;

/** Attaches with a tcx link (kernel >= 6.6). Pin the link to keep it attached after this process ends. */
export function tcxAttachIngress(progFd: number, ifindex: number): BpfFd {
  return new BpfFd(check(`bpf_link_create(tcx ingress, ifindex ${ifindex})`, libbpf().linkCreate(progFd, ifindex, BPF_TCX_INGRESS, null)));
}

/** Atomically replaces the program behind a link. */
export function linkUpdate(linkFd: number, progFd: number): void {
  check('bpf_link_update', libbpf().linkUpdate(linkFd, progFd, null));
}

export function linkDetach(linkFd: number): void {
  check('bpf_link_detach', libbpf().linkDetach(linkFd));
}

function tcHook(ifindex: number): Buffer {
  const hook = Buffer.alloc(24); // struct bpf_tc_hook { size_t sz; int ifindex; enum attach_point; u32 parent; }
  hook.writeBigUInt64LE(24n, 0);
  hook.writeInt32LE(ifindex, 8);
  hook.writeUInt32LE(BPF_TC_INGRESS, 12);
  return hook;
}

function tcOpts(progFd: number, flags: number, handle: number, priority: number): Buffer {
  const opts = Buffer.alloc(32); // struct bpf_tc_opts { size_t sz; int prog_fd; u32 flags, prog_id, handle, priority; }
  opts.writeBigUInt64LE(32n, 0);
  opts.writeInt32LE(progFd, 8);
  opts.writeUInt32LE(flags, 12);
  opts.writeUInt32LE(handle, 20);
  opts.writeUInt32LE(priority, 24);
  return opts;
}

/** cls_bpf (direct action) at the clsact ingress hook, replacing the filter with the same handle and priority; it
 * stays attached after this process ends. */
export function tcAttachIngress(progFd: number, ifindex: number, handle: number, priority: number): void {
  const hook = tcHook(ifindex);
  const rc = libbpf().tcHookCreate(hook);
  if (rc < 0 && rc !== -17 /* EEXIST */) check('bpf_tc_hook_create', rc);
  check('bpf_tc_attach', libbpf().tcAttach(hook, tcOpts(progFd, BPF_TC_F_REPLACE, handle, priority)));
}

/** Removes the cls_bpf filter; false when there was none. */
export function tcDetachIngress(ifindex: number, handle: number, priority: number): boolean {
  const rc = libbpf().tcDetach(tcHook(ifindex), tcOpts(0, 0, handle, priority));
  if (rc === -ENOENT) return false;
  check('bpf_tc_detach', rc);
  return true;
}

/** The id of the program behind a cls_bpf filter, or undefined when none is attached. */
export function tcQueryIngress(ifindex: number, handle: number, priority: number): number | undefined {
  const opts = tcOpts(0, 0, handle, priority);
  const rc = libbpf().tcQuery(tcHook(ifindex), opts);
  if (rc === -ENOENT || rc === -22 /* EINVAL: no clsact qdisc */) return undefined;
  check('bpf_tc_query', rc);
  return opts.readUInt32LE(16);
}

// --- BPF_PROG_TEST_RUN ---

export interface TestRunResult {
  /** The program's return code (TC_ACT_*). */
  readonly retval: number;
  /** The packet as the program left it. */
  readonly data: Buffer;
  /** Mean ns per run (kernel-measured). */
  readonly durationNs: number;
  /** The context (struct __sk_buff) as the program left it, when one was passed in. */
  readonly ctx?: Buffer;
}

/** Runs a program on a packet `repeat` times (BPF_PROG_TEST_RUN); `ctx` is an optional struct __sk_buff. */
export function progTestRun(progFd: number, data: Buffer, opts: { repeat?: number; ctx?: Buffer } = {}): TestRunResult {
  const out = Buffer.alloc(data.length + 256);
  const o = Buffer.alloc(80); // struct bpf_test_run_opts (libbpf 1.1)
  o.writeBigUInt64LE(80n, 0);
  o.writeBigUInt64LE(koffi.address(data), 8);
  o.writeBigUInt64LE(koffi.address(out), 16);
  o.writeUInt32LE(data.length, 24);
  o.writeUInt32LE(out.length, 28);
  const ctxOut = opts.ctx ? Buffer.alloc(opts.ctx.length) : undefined;
  if (opts.ctx && ctxOut) {
    o.writeBigUInt64LE(koffi.address(opts.ctx), 32);
    o.writeBigUInt64LE(koffi.address(ctxOut), 40);
    o.writeUInt32LE(opts.ctx.length, 48);
    o.writeUInt32LE(ctxOut.length, 52);
  }
  o.writeInt32LE(opts.repeat ?? 1, 60);
  check('bpf_prog_test_run_opts', libbpf().progTestRun(progFd, o));
  const r = { retval: o.readUInt32LE(56), data: out.subarray(0, o.readUInt32LE(28)), durationNs: o.readUInt32LE(64) };
  return ctxOut ? { ...r, ctx: ctxOut.subarray(0, o.readUInt32LE(52)) } : r;
}

/** The interface's index in the current network namespace. */
export function ifIndex(ifname: string): number {
  const i = libbpf().ifNameToIndex(ifname);
  if (i === 0) throw new SysError(`if_nametoindex(${ifname})`, koffi.errno());
  return i;
}

// --- bpffs ---

const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;

/** Mounts a bpf filesystem at `dir` (which must exist). */
export function mountBpffs(dir: string): void {
  if (libbpf().mount('bpf', dir, 'bpf', MS_NOSUID | MS_NODEV | MS_NOEXEC, null) < 0) {
    throw new SysError(`mount(bpf, ${dir})`, koffi.errno());
  }
}
