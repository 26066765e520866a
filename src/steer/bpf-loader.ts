// Loads baton's data plane into the kernel of the current network namespace and attaches it at tc ingress:
// the front-end program (bpf/frontend.c) on the client-facing interface, or the back-end program (bpf/backend.c)
// on a back-end's interface. Maps and the tcx link are pinned under `pinDir` (a bpffs directory, one per table)
// so that the data plane keeps working after the process ends, and a later process can adopt the maps (state
// survives) while replacing the program. The caller runs inside the target network namespace.
//
// bpffs and `ip netns exec`: that command gives the process its own mount namespace (a copy of its parent's, made
// when it starts) and a fresh /sys, so a bpffs the process mounts itself dies with it, and the pins with it; a
// bpffs under /sys is hidden by the fresh /sys. For restart survival, mount the bpffs holding `pinDir` OUTSIDE /sys
// in the parent's mount namespace BEFORE starting the daemon (`ensureBpffs('/run/baton/bpffs/<table>')` when the
// lab comes up mounts /run/baton/bpffs): every later `ip netns exec` child shares that same bpffs. Verified: pins
// under /sys/fs/bpf in an `ip netns exec` daemon are gone for the next process (adopted: false).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Btf } from '../sys/btf.ts';
import { SysError } from '../sys/errors.ts';
import {
  type BpfFd,
  BpfObject,
  ifIndex,
  linkDetach,
  linkUpdate,
  mountBpffs,
  objGet,
  objPin,
  tcAttachIngress,
  tcDetachIngress,
  tcQueryIngress,
  tcxAttachIngress,
} from '../sys/libbpf.ts';
import { GuardCodecs, GuardMaps } from './bpf-guard-maps.ts';
import { BackendCodecs, BackendMaps, FrontendCodecs, FrontendMaps, frontendCodecsOf, type FlowEntry } from './bpf-maps.ts';

export const FRONTEND_OBJECT = fileURLToPath(new URL('../../bpf/build/frontend.o', import.meta.url));
export const BACKEND_OBJECT = fileURLToPath(new URL('../../bpf/build/backend.o', import.meta.url));
const FRONTEND_PROGRAM = 'baton_frontend';
const BACKEND_PROGRAM = 'baton_backend';
const FRONTEND_MAPS = ['flows', 'backends', 'counters', 'config', 'orphans'] as const;
/** Maps a newer object added: pins of an older process may lack them; adopting creates them instead of failing. */
const OPTIONAL_PINS = new Set(['orphans', 'guard_vips', 'parking', 'guard_counters', 'backend_config', 'encap_sources', 'park_marked', 'park_settling']);
const BACKEND_MAPS = ['decap', 'guard_vips', 'parking', 'guard_counters', 'backend_config', 'encap_sources', 'park_marked', 'park_settling'] as const;
const LINK_PIN = 'link';
/** cls_bpf filter identity when tcx is missing (handle and priority of our filter at the clsact ingress hook). */
const TC_HANDLE = 0xba70;
const TC_PRIORITY = 0xba70;
export const DEFAULT_MAX_FLOWS = 262144;

export type AttachKind = 'tcx' | 'tc';
export type AttachMode = 'auto' | 'tc';

export interface FrontendLoadOptions {
  /** Client-facing interface (in the current network namespace). */
  readonly ifname: string;
  /** bpffs directory for this table's pins, e.g. /run/baton/bpffs/<table>. */
  readonly pinDir: string;
  /** Capacity of the `flows` map (used when the maps are created, not when adopted). */
  readonly maxFlows?: number;
  /** Reuse pinned maps when present (restart); otherwise start fresh, clearing any old pins. */
  readonly adopt: boolean;
  /** Object file (default: the committed bpf/build/frontend.o). */
  readonly objectPath?: string;
  /** 'auto' (default): tcx where the kernel has it, else cls_bpf; 'tc': cls_bpf only. */
  readonly attachMode?: AttachMode;
}

export interface BackendLoadOptions {
  readonly ifname: string;
  readonly pinDir: string;
  readonly adopt: boolean;
  readonly maxFlows?: number;
  readonly objectPath?: string;
  readonly attachMode?: AttachMode;
}

interface Loaded {
  /** True when pinned maps from an earlier process were reused. */
  readonly adopted: boolean;
  /** Set when this load had to mount the bpffs (at this mount point) itself: if the process runs in a private mount
   * namespace (`ip netns exec`), that mount and the pins die with it, so nothing survives a restart. Worth a
   * warning; mount it beforehand from the host's namespace (`ensureBpffs`) and keep pinDir outside /sys. */
  readonly mountedBpffs?: string;
  readonly attach: AttachKind;
  readonly ifindex: number;
  /** The loaded program's descriptor (for BPF_PROG_TEST_RUN); valid until close. */
  readonly programFd: number;
  /** keep: leave the program attached and the maps pinned (a later process adopts them); otherwise detach the
   * program, unpin everything and remove pinDir. Idempotent. */
  close(opts?: { readonly keep?: boolean }): void;
}

export interface FrontendDataplane extends Loaded {
  readonly maps: FrontendMaps;
}

export interface BackendDataplane extends Loaded {
  readonly maps: BackendMaps;
  /** The guard (parking of packets no socket takes yet, bpf/backend.c step 2). */
  readonly guard: GuardMaps;
}

/** Makes sure `dir` is on a bpf filesystem, mounting one at `dir`'s parent when none covers it. Returns the mount
 * point that now holds it. */
export function ensureBpffs(dir: string): string {
  return bpffsFor(dir).mountPoint;
}

function bpffsFor(dir: string): { mountPoint: string; mounted: boolean } {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((p) => p[2] === 'bpf')
    .map((p) => (p[1] ?? '').replace(/\\040/g, ' '));
  const covering = mounts.filter((m) => dir === m || dir.startsWith(m.endsWith('/') ? m : `${m}/`)).sort((a, b) => b.length - a.length)[0];
  if (covering) return { mountPoint: covering, mounted: false };
  const at = dir.startsWith('/sys/fs/bpf/') || dir === '/sys/fs/bpf' ? '/sys/fs/bpf' : dirname(dir);
  mkdirSync(at, { recursive: true });
  mountBpffs(at);
  return { mountPoint: at, mounted: true };
}

function removePins(pinDir: string, maps: readonly string[]): void {
  const link = objGet(join(pinDir, LINK_PIN));
  if (link) {
    try {
      linkDetach(link.fd);
    } catch (err) {
      if (!(err instanceof SysError)) throw err; // already defunct (interface gone): nothing to detach
    } finally {
      link.close();
    }
  }
  for (const name of [LINK_PIN, ...maps]) {
    const p = join(pinDir, name);
    if (existsSync(p)) unlinkSync(p);
  }
  if (existsSync(pinDir) && readdirSync(pinDir).length === 0) rmdirSync(pinDir);
}

/** The id of the program our cls_bpf filter runs on `ifname`, if one is attached. */
export function tcAttachedProgram(ifname: string): number | undefined {
  return tcQueryIngress(ifIndex(ifname), TC_HANDLE, TC_PRIORITY);
}

/** Removes our cls_bpf filter if there is one (no clsact qdisc, or no filter: nothing to do). */
function detachTc(ifindex: number): void {
  try {
    tcDetachIngress(ifindex, TC_HANDLE, TC_PRIORITY);
  } catch (err) {
    if (!(err instanceof SysError) || !['EINVAL', 'ENOENT'].includes(err.errnoName)) throw err;
  }
}

/** Attaches `progFd` at ingress: replaces the program behind a pinned tcx link when adopting, else a new tcx link
 * pinned under pinDir, else (kernel without tcx) a cls_bpf filter. */
function attach(progFd: number, ifindex: number, pinDir: string, mode: AttachMode): { kind: AttachKind; link?: BpfFd } {
  if (mode === 'tc') {
    tcAttachIngress(progFd, ifindex, TC_HANDLE, TC_PRIORITY);
    return { kind: 'tc' };
  }
  const linkPath = join(pinDir, LINK_PIN);
  const old = objGet(linkPath);
  if (old) {
    try {
      linkUpdate(old.fd, progFd);
      return { kind: 'tcx', link: old };
    } catch (err) {
      if (!(err instanceof SysError)) throw err;
      old.close(); // the link went defunct (its interface was deleted): make a new one
      unlinkSync(linkPath);
    }
  }
  let link: BpfFd;
  try {
    link = tcxAttachIngress(progFd, ifindex);
  } catch (err) {
    if (!(err instanceof SysError) || !['EINVAL', 'EOPNOTSUPP', 'ENOTSUP'].includes(err.errnoName)) throw err;
    tcAttachIngress(progFd, ifindex, TC_HANDLE, TC_PRIORITY);
    return { kind: 'tc' };
  }
  try {
    objPin(link.fd, linkPath);
  } catch (err) {
    link.close();
    throw err;
  }
  return { kind: 'tcx', link };
}

interface Common {
  readonly ifname: string;
  readonly pinDir: string;
  readonly adopt: boolean;
  readonly objectPath: string;
  readonly program: string;
  readonly maps: readonly string[];
  readonly maxFlows: number;
  readonly sizedMap: string;
  readonly attachMode: AttachMode;
}

function load(o: Common): { obj: BpfObject; adopted: boolean; kind: AttachKind; link?: BpfFd; ifindex: number; mountedBpffs?: string } {
  const ifindex = ifIndex(o.ifname);
  const fs = bpffsFor(o.pinDir);
  const adopted = o.adopt && existsSync(join(o.pinDir, o.maps[0] ?? ''));
  if (!adopted) {
    removePins(o.pinDir, o.maps);
    detachTc(ifindex); // a fresh start leaves nothing of an earlier cls_bpf attachment either
  }
  mkdirSync(o.pinDir, { recursive: true });
  const obj = BpfObject.open(o.objectPath);
  try {
    for (const name of o.maps) {
      const spec = obj.map(name);
      if (adopted) {
        // reuse_fd takes the pinned map's own definition (its size may differ from this run's maxFlows)
        const pinned = objGet(join(o.pinDir, name));
        if (!pinned && OPTIONAL_PINS.has(name)) {
          spec.setPinPath(join(o.pinDir, name));
          continue;
        }
        if (!pinned) throw new SysError(`bpf_obj_get(${join(o.pinDir, name)})`, 2 /* ENOENT: partial pins */);
        try {
          spec.reuseFd(pinned.fd);
        } finally {
          pinned.close();
        }
      } else {
        if (name === o.sizedMap) spec.setMaxEntries(o.maxFlows);
        spec.setPinPath(join(o.pinDir, name)); // created and pinned at load
      }
    }
    obj.captureLog(o.program);
    obj.load();
    const a = attach(obj.programFd(o.program), ifindex, o.pinDir, o.attachMode);
    return { obj, adopted, kind: a.kind, ifindex, ...(a.link ? { link: a.link } : {}), ...(fs.mounted ? { mountedBpffs: fs.mountPoint } : {}) };
  } catch (err) {
    obj.close();
    throw err;
  }
}

function closer(o: Common, obj: BpfObject, kind: AttachKind, ifindex: number, link: BpfFd | undefined) {
  let closed = false;
  return (opts?: { readonly keep?: boolean }): void => {
    if (closed) return;
    closed = true;
    if (opts?.keep) {
      link?.close();
      obj.close();
      return;
    }
    if (link) {
      try {
        linkDetach(link.fd);
      } finally {
        link.close();
      }
    }
    if (kind === 'tc') detachTc(ifindex);
    obj.close();
    removePins(o.pinDir, o.maps);
  };
}

/** What differs between the two programs: the object, its program and maps, and which map `maxFlows` sizes. */
const PROGRAMS = {
  frontend: { object: FRONTEND_OBJECT, program: FRONTEND_PROGRAM, maps: FRONTEND_MAPS, sizedMap: 'flows' },
  backend: { object: BACKEND_OBJECT, program: BACKEND_PROGRAM, maps: BACKEND_MAPS, sizedMap: 'decap' },
} as const;

/** Loads, attaches (and pins, or adopts) one program, then builds its typed maps from the loaded object. */
function loadAttached<M>(which: keyof typeof PROGRAMS, opts: BackendLoadOptions, typed: (obj: BpfObject) => M): Loaded & { readonly maps: M } {
  const p = PROGRAMS[which];
  const o: Common = {
    ifname: opts.ifname,
    pinDir: opts.pinDir,
    adopt: opts.adopt,
    objectPath: opts.objectPath ?? p.object,
    program: p.program,
    maps: p.maps,
    maxFlows: opts.maxFlows ?? DEFAULT_MAX_FLOWS,
    sizedMap: p.sizedMap,
    attachMode: opts.attachMode ?? 'auto',
  };
  const l = load(o);
  return {
    maps: typed(l.obj),
    adopted: l.adopted,
    ...(l.mountedBpffs ? { mountedBpffs: l.mountedBpffs } : {}),
    attach: l.kind,
    ifindex: l.ifindex,
    programFd: l.obj.programFd(p.program),
    close: closer(o, l.obj, l.kind, l.ifindex, l.link),
  };
}

/** Loads and attaches the front-end program on `ifname`; see the module comment for pinning and adoption. */
export function loadFrontendDataplane(opts: FrontendLoadOptions): FrontendDataplane {
  return loadAttached('frontend', opts, (obj) =>
    new FrontendMaps(new FrontendCodecs(Btf.borrow(obj.btfPtr)), {
      flows: obj.map('flows').fd,
      backends: obj.map('backends').fd,
      counters: obj.map('counters').fd,
      config: obj.map('config').fd,
      orphans: obj.map('orphans').fd,
    }),
  );
}

function backendMapsOf(obj: BpfObject): { decap: BackendMaps; guard: GuardMaps } {
  const btf = Btf.borrow(obj.btfPtr);
  return {
    decap: new BackendMaps(new BackendCodecs(btf), obj.map('decap').fd),
    guard: new GuardMaps(new GuardCodecs(btf), {
      vips: obj.map('guard_vips').fd,
      parking: obj.map('parking').fd,
      counters: obj.map('guard_counters').fd,
      config: obj.map('backend_config').fd,
      sources: obj.map('encap_sources').fd,
      marked: obj.map('park_marked').fd,
      settling: obj.map('park_settling').fd,
    }),
  };
}

/** Loads and attaches the back-end program (decapsulation and guard) on `ifname`. */
export function loadBackendDataplane(opts: BackendLoadOptions): BackendDataplane {
  const l = loadAttached('backend', opts, backendMapsOf);
  return { ...l, maps: l.maps.decap, guard: l.maps.guard };
}

/** A data plane loaded but neither attached nor pinned: for BPF_PROG_TEST_RUN fixtures and benchmarks. */
export interface DetachedDataplane<M> {
  readonly maps: M;
  readonly programFd: number;
  close(): void;
}

function loadDetached(objectPath: string, program: string, sizedMap: string, maxFlows: number): BpfObject {
  const obj = BpfObject.open(objectPath);
  try {
    obj.map(sizedMap).setMaxEntries(maxFlows);
    obj.captureLog(program);
    obj.load();
    return obj;
  } catch (err) {
    obj.close();
    throw err;
  }
}

export function loadFrontendDetached(opts: { readonly maxFlows?: number; readonly objectPath?: string } = {}): DetachedDataplane<FrontendMaps> {
  const obj = loadDetached(opts.objectPath ?? FRONTEND_OBJECT, FRONTEND_PROGRAM, 'flows', opts.maxFlows ?? DEFAULT_MAX_FLOWS);
  const maps = new FrontendMaps(new FrontendCodecs(Btf.borrow(obj.btfPtr)), {
    flows: obj.map('flows').fd,
    backends: obj.map('backends').fd,
    counters: obj.map('counters').fd,
    config: obj.map('config').fd,
    orphans: obj.map('orphans').fd,
  });
  return { maps, programFd: obj.programFd(FRONTEND_PROGRAM), close: () => obj.close() };
}

export function loadBackendDetached(
  opts: { readonly maxFlows?: number; readonly objectPath?: string } = {},
): DetachedDataplane<BackendMaps> & { readonly guard: GuardMaps } {
  const obj = loadDetached(opts.objectPath ?? BACKEND_OBJECT, BACKEND_PROGRAM, 'decap', opts.maxFlows ?? DEFAULT_MAX_FLOWS);
  const m = backendMapsOf(obj);
  return { maps: m.decap, guard: m.guard, programFd: obj.programFd(BACKEND_PROGRAM), close: () => obj.close() };
}

/** The flows a front-end data plane pinned at `pinDir` steers now (for operators and tests; works from any
 * network namespace, since maps are not per-namespace). Empty when nothing is pinned there. */
export function pinnedFlows(pinDir: string): FlowEntry[] {
  const flows = objGet(join(pinDir, 'flows'));
  if (!flows) return [];
  try {
    const codecs = frontendCodecsOf(FRONTEND_OBJECT);
    const maps = new FrontendMaps(codecs, { flows: flows.fd, backends: -1, counters: -1, config: -1, orphans: -1 });
    return [...maps.iterateFlows()];
  } finally {
    flows.close();
  }
}

/** Detaches and unpins a front-end data plane that no process holds any more (a stopped front-end kept it). */
export function removeFrontendPins(pinDir: string): void {
  removePins(pinDir, FRONTEND_MAPS);
}

/** Detaches and unpins a back-end (decap) data plane. */
export function removeBackendPins(pinDir: string): void {
  removePins(pinDir, BACKEND_MAPS);
}
