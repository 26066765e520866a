// BTF (BPF Type Format) read through libbpf: the struct layouts and enum values that a compiled BPF object declares,
// so the TypeScript side derives every offset, size and byte order from the C declaration (bpf/maps.h) instead of
// keeping a copy by hand. Byte order comes from the declared type: a field whose type is (an array of) __be16/__be32/
// __be64 is network order, anything else host order.
import koffi from 'koffi';
import { BatonError } from '../wire/errors.ts';
import { libbpf } from './libbpf.ts';

const KIND = { INT: 1, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, TYPEDEF: 8, VOLATILE: 9, CONST: 10, RESTRICT: 11 } as const;
const TYPE_LEN = 12; // struct btf_type { u32 name_off; u32 info; u32 size_or_type; }

export interface FieldLayout {
  readonly name: string;
  /** Byte offset within the struct. */
  readonly offset: number;
  /** Total size in bytes. */
  readonly size: number;
  /** Elements for an array field, 1 otherwise. */
  readonly count: number;
  /** Size of one element (equal to `size` for a scalar). */
  readonly elemSize: number;
  /** Network byte order (declared with a __be type). */
  readonly bigEndian: boolean;
  /** What the (element) type is, after typedefs: 'int', 'enum', 'struct' or 'union'. */
  readonly kind: 'int' | 'enum' | 'struct' | 'union';
  /** For an enum-typed field: the enum's name. */
  readonly enumName?: string;
}

export interface StructLayout {
  readonly name: string;
  readonly size: number;
  readonly fields: ReadonlyMap<string, FieldLayout>;
}

export class BtfError extends BatonError {
  constructor(message: string) {
    super('BATON_ERR_BTF', message);
  }
}

interface RawType {
  readonly name: string;
  readonly kind: number;
  readonly vlen: number;
  readonly kindFlag: boolean;
  /** size for INT/STRUCT/UNION/ENUM; referenced type for TYPEDEF/CONST/...; */
  readonly sizeOrType: number;
  readonly view: DataView;
}

/** A BTF blob: either parsed from an object file (owned, freed by `close`) or an object's (borrowed). */
export class Btf {
  #ptr: bigint | undefined;
  readonly #owned: boolean;

  private constructor(ptr: bigint, owned: boolean) {
    this.#ptr = ptr;
    this.#owned = owned;
  }

  /** Reads the .BTF section of a compiled object file (no kernel involved, no privileges needed). */
  static parseFile(path: string): Btf {
    const ptr = libbpf().btf.parse(path, null);
    if (ptr === null || ptr === 0n) throw new BtfError(`btf: cannot parse ${path} (errno ${koffi.errno()})`);
    return new Btf(ptr, true);
  }

  /** Wraps a BTF owned by someone else (e.g. `BpfObject.btfPtr`); `close` does not free it. */
  static borrow(ptr: bigint): Btf {
    return new Btf(ptr, false);
  }

  get #p(): bigint {
    if (this.#ptr === undefined) throw new BtfError('btf: closed');
    return this.#ptr;
  }

  #type(id: number): RawType {
    const ptr = libbpf().btf.typeById(this.#p, id);
    if (ptr === null || ptr === 0n) throw new BtfError(`btf: no type ${id}`);
    const head = new DataView(koffi.view(ptr, TYPE_LEN));
    const info = head.getUint32(4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const extra = kind === KIND.STRUCT || kind === KIND.UNION ? vlen * 12 : kind === KIND.ENUM ? vlen * 8 : kind === KIND.ARRAY ? 12 : kind === KIND.INT ? 4 : 0;
    return {
      name: this.#name(head.getUint32(0, true)),
      kind,
      vlen,
      kindFlag: info >>> 31 === 1,
      sizeOrType: head.getUint32(8, true),
      view: new DataView(koffi.view(ptr, TYPE_LEN + extra)),
    };
  }

  #name(off: number): string {
    return libbpf().btf.nameByOffset(this.#p, off) ?? '';
  }

  #find(name: string, kind: number): number {
    const id = libbpf().btf.findByNameKind(this.#p, name, kind);
    if (id < 0) throw new BtfError(`btf: no ${kind === KIND.ENUM ? 'enum' : 'struct'} ${name}`);
    return id;
  }

  /** Skips typedefs and qualifiers, noting whether a __be typedef was on the way. */
  #resolve(id: number): { id: number; t: RawType; bigEndian: boolean } {
    let bigEndian = false;
    for (let depth = 0; depth < 32; depth++) {
      const t = this.#type(id);
      if (t.kind === KIND.TYPEDEF || t.kind === KIND.CONST || t.kind === KIND.VOLATILE || t.kind === KIND.RESTRICT) {
        if (t.kind === KIND.TYPEDEF && /^__be(16|32|64)$/.test(t.name)) bigEndian = true;
        id = t.sizeOrType;
        continue;
      }
      return { id, t, bigEndian };
    }
    throw new BtfError(`btf: type chain too deep at ${id}`);
  }

  #kindName(kind: number): FieldLayout['kind'] {
    if (kind === KIND.INT) return 'int';
    if (kind === KIND.ENUM) return 'enum';
    if (kind === KIND.STRUCT) return 'struct';
    if (kind === KIND.UNION) return 'union';
    throw new BtfError(`btf: unsupported field kind ${kind}`);
  }

  /** The layout of `struct <name>`. */
  struct(name: string): StructLayout {
    const t = this.#type(this.#find(name, KIND.STRUCT));
    const fields = new Map<string, FieldLayout>();
    for (let i = 0; i < t.vlen; i++) {
      const at = TYPE_LEN + i * 12;
      const fname = this.#name(t.view.getUint32(at, true));
      const typeId = t.view.getUint32(at + 4, true);
      const rawOffset = t.view.getUint32(at + 8, true);
      const bitOffset = t.kindFlag ? rawOffset & 0xffffff : rawOffset;
      if (t.kindFlag && rawOffset >>> 24 !== 0) throw new BtfError(`btf: ${name}.${fname} is a bitfield`);
      if (bitOffset % 8 !== 0) throw new BtfError(`btf: ${name}.${fname} is not byte-aligned`);
      let r = this.#resolve(typeId);
      let count = 1;
      let bigEndian = r.bigEndian;
      if (r.t.kind === KIND.ARRAY) {
        count = r.t.view.getUint32(TYPE_LEN + 8, true);
        r = this.#resolve(r.t.view.getUint32(TYPE_LEN, true));
        bigEndian ||= r.bigEndian;
      }
      const elemSize = Number(libbpf().btf.resolveSize(this.#p, r.id));
      fields.set(fname, {
        name: fname,
        offset: bitOffset / 8,
        size: elemSize * count,
        count,
        elemSize,
        bigEndian,
        kind: this.#kindName(r.t.kind),
        ...(r.t.kind === KIND.ENUM ? { enumName: r.t.name } : {}),
      });
    }
    return { name, size: t.sizeOrType, fields };
  }

  /** The enumerators of `enum <name>`, name -> value. */
  enumValues(name: string): ReadonlyMap<string, number> {
    const t = this.#type(this.#find(name, KIND.ENUM));
    const values = new Map<string, number>();
    for (let i = 0; i < t.vlen; i++) {
      const at = TYPE_LEN + i * 8;
      values.set(this.#name(t.view.getUint32(at, true)), t.view.getInt32(at + 4, true));
    }
    return values;
  }

  close(): void {
    if (this.#ptr !== undefined && this.#owned) libbpf().btf.free(this.#ptr);
    this.#ptr = undefined;
  }
}
