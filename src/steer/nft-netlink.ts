// nftables set elements added and deleted straight over NETLINK_NETFILTER: one batch (one
// kernel transaction) per apply(), acked synchronously, tens of microseconds instead of the
// milliseconds an `nft -i` round trip costs. Tables, sets and rules are still made by `nft -f`.
//
// Wire format (include/uapi/linux/netfilter/nf_tables.h), one batch:
//   NFNL_MSG_BATCH_BEGIN (nfgenmsg res_id = NFNL_SUBSYS_NFTABLES, big-endian)
//   per op: NFT_MSG_{NEW,DEL,DESTROY}SETELEM, family NFPROTO_NETDEV,
//     TABLE "t\0", SET "s\0", ELEMENTS { LIST_ELEM { KEY { DATA_VALUE key }, [TIMEOUT u64be ms] } }
//   NFNL_MSG_BATCH_END
// Key for `ipvX_addr . inet_service`: each field in its own 4-byte register, network order:
//   IPv4: addr(4) port(2) pad(2) = 8 bytes; IPv6: addr(16) port(2) pad(2) = 20 bytes.
import { errnoName } from '../sys/errors.ts';
import {
  NETLINK_NETFILTER, NetlinkSocket, NlWriter, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, type NlAck,
} from '../sys/netlink.ts';
import { parseIPv4, parseIPv6 } from '../wire/bytes.ts';
import { NftError } from './nft-session.ts';

const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
/** Linux >= 6.3: delete that succeeds when the element is missing. */
const NFT_MSG_DESTROYSETELEM = 30;
const NFPROTO_UNSPEC = 0;
const NFPROTO_NETDEV = 5;

const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_TIMEOUT = 4;
const NFTA_DATA_VALUE = 1;

const ENOENT = 2;
const EINVAL = 22;
const EOPNOTSUPP = 95;

export interface ElementOp {
  readonly kind: 'add' | 'delete';
  readonly table: string;
  readonly set: string;
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  /** add only: the element's own timeout (else the set's default). */
  readonly timeoutMs?: number;
  /** delete only: a missing element is not an error (and does not roll the batch back). */
  readonly missingOk?: boolean;
}

export const describeOp = (op: ElementOp): string => {
  const key = `${op.address} . ${op.port}`;
  return op.kind === 'add'
    ? `add ${key} to netdev ${op.table} ${op.set}${op.timeoutMs === undefined ? '' : ` timeout ${op.timeoutMs}ms`}`
    : `delete ${key} from netdev ${op.table} ${op.set}`;
};

export class NftNetlinkError extends NftError {
  /** Positive errno the kernel returned. */
  readonly errno: number;
  readonly errnoName: string;
  /** The op that failed (absent when the kernel refused the batch as a whole). */
  readonly op: ElementOp | undefined;
  constructor(errno: number, op: ElementOp | undefined, detail: string) {
    const name = errnoName(errno);
    super(`${op ? describeOp(op) : 'nft batch'}: ${name}${detail}`);
    this.errno = errno;
    this.errnoName = name;
    this.op = op;
  }
}

/** The set key for client address . client port. */
export function elementKey(family: 4 | 6, address: string, port: number): Uint8Array {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`nft element: bad port ${port}`);
  const addr = family === 4 ? parseIPv4(address) : parseIPv6(address);
  if (addr === undefined) throw new TypeError(`nft element: not an IPv${family} address: ${address}`);
  const key = new Uint8Array(addr.length + 4);
  key.set(addr, 0);
  key[addr.length] = port >> 8;
  key[addr.length + 1] = port & 0xff;
  return key;
}

export interface EncodeOptions {
  /** Encode missingOk deletes as NFT_MSG_DESTROYSETELEM (kernel >= 6.3). */
  readonly destroy?: boolean;
}

/**
 * Encodes one batch into `w` (reset first). Sequence numbers: BATCH_BEGIN `seq`, op i
 * `seq + 1 + i`, BATCH_END `seq + 1 + ops.length`. Only the ops ask for acks.
 */
export function encodeBatch(w: NlWriter, ops: readonly ElementOp[], seq: number, o: EncodeOptions = {}): void {
  w.reset();
  let m = w.beginNfMsg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
  w.endMsg(m);
  ops.forEach((op, i) => {
    let type: number;
    let flags = NLM_F_REQUEST | NLM_F_ACK;
    if (op.kind === 'add') {
      type = NFT_MSG_NEWSETELEM;
      // No NLM_F_EXCL: re-adding an existing element succeeds.
      flags |= NLM_F_CREATE;
    } else {
      type = op.missingOk && o.destroy ? NFT_MSG_DESTROYSETELEM : NFT_MSG_DELSETELEM;
    }
    m = w.beginNfMsg((NFNL_SUBSYS_NFTABLES << 8) | type, flags, seq + 1 + i, NFPROTO_NETDEV, 0);
    w.attrString(NFTA_SET_ELEM_LIST_TABLE, op.table);
    w.attrString(NFTA_SET_ELEM_LIST_SET, op.set);
    const list = w.beginNest(NFTA_SET_ELEM_LIST_ELEMENTS);
    const elem = w.beginNest(NFTA_LIST_ELEM);
    const key = w.beginNest(NFTA_SET_ELEM_KEY);
    w.attrBytes(NFTA_DATA_VALUE, elementKey(op.family, op.address, op.port));
    w.endNest(key);
    if (op.kind === 'add' && op.timeoutMs !== undefined) {
      w.attrU64BE(NFTA_SET_ELEM_TIMEOUT, Math.max(1, Math.ceil(op.timeoutMs)));
    }
    w.endNest(elem);
    w.endNest(list);
    w.endMsg(m);
  });
  m = w.beginNfMsg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1 + ops.length, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
  w.endMsg(m);
}

/** Per-op errnos of one batch (0: ok), plus a batch-level error (kernel refused the framing). */
interface BatchResult {
  readonly errnos: number[];
  readonly batchErrno: number;
}

export class NftNetlink {
  readonly #sock: NetlinkSocket;
  readonly #w = new NlWriter(4096);
  #seq: number;
  #destroy = false;
  #closed = false;

  private constructor(sock: NetlinkSocket) {
    this.#sock = sock;
    this.#seq = (Date.now() & 0x3fffffff) >>> 0;
  }

  /**
   * Opens the socket in the calling process's network namespace. `useDestroy: false` forces the
   * pre-6.3 path for missing-ok deletes (tests); by default the kernel is probed.
   */
  static open(o: { readonly useDestroy?: boolean } = {}): NftNetlink {
    const nl = new NftNetlink(NetlinkSocket.open(NETLINK_NETFILTER));
    try {
      nl.#destroy = o.useDestroy !== false && nl.#probeDestroy();
    } catch (e) {
      nl.close();
      throw e;
    }
    return nl;
  }

  /** Whether missing-ok deletes go out as one DESTROYSETELEM (else: DELSETELEM, retried without them on ENOENT). */
  get destroySupported(): boolean {
    return this.#destroy;
  }

  // A destroy in a table that does not exist: ENOENT if the kernel knows the message
  // (table lookup fails), EINVAL if it does not. Either way the batch aborts: no change.
  #probeDestroy(): boolean {
    const op: ElementOp = {
      kind: 'delete', table: 'baton-destroy-probe', set: 'none', family: 4, address: '0.0.0.0', port: 0, missingOk: true,
    };
    const r = this.#run([op], true);
    const e = r.errnos[0] ?? r.batchErrno;
    return e === ENOENT;
  }

  /**
   * Applies the ops as one transaction: all or none. Throws NftNetlinkError naming the first
   * op the kernel refused (the whole batch is then rolled back).
   */
  apply(ops: readonly ElementOp[]): void {
    if (this.#closed) throw new NftError('nft netlink: closed');
    if (ops.length === 0) return;
    let todo = ops;
    for (;;) {
      const r = this.#run(todo, this.#destroy);
      if (r.batchErrno !== 0) throw new NftNetlinkError(r.batchErrno, undefined, ' (batch refused)');
      const failed = r.errnos.findIndex((e) => e !== 0);
      if (failed < 0) return;
      // Without DESTROYSETELEM, a missing element fails its delete and rolls the batch back:
      // drop the missing-ok deletes that found nothing and apply the rest again.
      const missing = (e: number, i: number): boolean => e === ENOENT && todo[i]?.kind === 'delete' && todo[i]?.missingOk === true;
      if (!this.#destroy && r.errnos.every((e, i) => e === 0 || missing(e, i))) {
        todo = todo.filter((_, i) => !missing(r.errnos[i] ?? 0, i));
        if (todo.length === 0) return;
        continue;
      }
      const e = r.errnos[failed] ?? 0;
      const hint = e === EINVAL || e === EOPNOTSUPP ? ' (set key type or flags do not match?)' : '';
      throw new NftNetlinkError(e, todo[failed], `${hint} (batch of ${todo.length} rolled back)`);
    }
  }

  #run(ops: readonly ElementOp[], destroy: boolean): BatchResult {
    // Sequence numbers of one batch never wrap.
    const seq = this.#seq + ops.length + 2 > 0xfffffff0 ? 1 : this.#seq;
    this.#seq = seq + ops.length + 2;
    encodeBatch(this.#w, ops, seq, { destroy });
    const errnos = new Array<number>(ops.length).fill(-1);
    let pending = ops.length;
    let batchErrno = 0;
    this.#sock.send(this.#w.buffer, this.#w.length);
    this.#sock.collectAcks((ack: NlAck) => {
      const i = ack.seq - seq - 1;
      if (i >= 0 && i < ops.length) {
        if (errnos[i] === -1) pending--;
        errnos[i] = ack.errno;
      } else if (ack.seq === seq || ack.seq === seq + 1 + ops.length) {
        // The kernel acks the batch header only when it refuses the batch as a whole.
        if (ack.errno !== 0) {
          batchErrno = ack.errno;
          return true;
        }
      }
      // Acks of other (timed-out, earlier) batches are ignored.
      return pending === 0;
    });
    return { errnos: errnos.map((e) => (e === -1 ? 0 : e)), batchErrno };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.close();
  }
}
