// An nftables rule that sends marked packets to an nfqueue: `meta mark & MASK == MARK queue num N` (no bypass), in
// its own tables (one per IP family) at prerouting, priority raw. The tables and chains are made by `nft -f`, as the
// rest of baton's tables. The rule is added over NETLINK_NETFILTER because kernels built without nft_queue (this
// lab's: CONFIG_NFT_QUEUE unset) refuse nft's native `queue` expression, while the same verdict is available as the
// xtables NFQUEUE target through nft_compat — which the nft command cannot write. Expressions, in order:
//   meta load mark => reg 1;  bitwise reg 1 = (reg 1 & MASK) ^ 0;  cmp eq reg 1 MARK;  target NFQUEUE v3 {queue, 1, 0}
// Register data are host order (the mark is a host-order u32 in the skb). Ids: include/uapi/linux/netfilter/nf_tables.h.
import { execFileSync, spawnSync } from 'node:child_process';
import { NETLINK_NETFILTER, NetlinkSocket, NlWriter, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST } from '../sys/netlink.ts';
import { errnoName } from '../sys/errors.ts';
import { NftError } from './nft-session.ts';

const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWRULE = 6;
const NFPROTO_UNSPEC = 0;
const NFPROTO_IPV4 = 2;
const NFPROTO_IPV6 = 10;
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_META_DREG = 1;
const NFTA_META_KEY = 2;
const NFT_META_MARK = 3;
const NFTA_BITWISE_SREG = 1;
const NFTA_BITWISE_DREG = 2;
const NFTA_BITWISE_LEN = 3;
const NFTA_BITWISE_MASK = 4;
const NFTA_BITWISE_XOR = 5;
const NFTA_CMP_SREG = 1;
const NFTA_CMP_OP = 2;
const NFTA_CMP_DATA = 3;
const NFT_CMP_EQ = 0;
const NFTA_DATA_VALUE = 1;
const NFTA_TARGET_NAME = 1;
const NFTA_TARGET_REV = 2;
const NFTA_TARGET_INFO = 3;
const NFT_REG_1 = 1;
const CHAIN = 'prerouting';

export interface QueueRule {
  /** Table name (the same in the ip and ip6 families). */
  readonly table: string;
  readonly queue: number;
  readonly mark: number;
  readonly mask: number;
}

const be32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const host32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0); // registers hold the mark as the CPU does (x86_64, arm64: little-endian)
  return b;
};

/** The tables and chains, as an nft script (recreated empty when they exist). */
export function queueTablesScript(table: string): string {
  return ['ip', 'ip6']
    .flatMap((f) => [
      `table ${f} ${table}`,
      `delete table ${f} ${table}`,
      `table ${f} ${table} {`,
      `  chain ${CHAIN} {`,
      '    type filter hook prerouting priority raw; policy accept;',
      '  }',
      '}',
    ])
    .concat('')
    .join('\n');
}

/** One batch adding the rule to both families' chains (pure; golden-tested). */
export function encodeQueueRuleBatch(w: NlWriter, r: QueueRule, seq: number): void {
  if (!Number.isInteger(r.queue) || r.queue < 0 || r.queue > 0xffff) throw new NftError(`nft queue rule: queue ${r.queue}`);
  w.reset();
  let m = w.beginNfMsg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
  w.endMsg(m);
  [NFPROTO_IPV4, NFPROTO_IPV6].forEach((family, i) => {
    m = w.beginNfMsg((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, seq + 1 + i, family, 0);
    w.attrString(NFTA_RULE_TABLE, r.table);
    w.attrString(NFTA_RULE_CHAIN, CHAIN);
    const exprs = w.beginNest(NFTA_RULE_EXPRESSIONS);
    const expr = (name: string, body: () => void): void => {
      const e = w.beginNest(NFTA_LIST_ELEM);
      w.attrString(NFTA_EXPR_NAME, name);
      const d = w.beginNest(NFTA_EXPR_DATA);
      body();
      w.endNest(d);
      w.endNest(e);
    };
    const data = (type: number, bytes: Buffer): void => {
      const n = w.beginNest(type);
      w.attrBytes(NFTA_DATA_VALUE, bytes);
      w.endNest(n);
    };
    expr('meta', () => {
      w.attrBytes(NFTA_META_DREG, be32(NFT_REG_1));
      w.attrBytes(NFTA_META_KEY, be32(NFT_META_MARK));
    });
    expr('bitwise', () => {
      w.attrBytes(NFTA_BITWISE_SREG, be32(NFT_REG_1));
      w.attrBytes(NFTA_BITWISE_DREG, be32(NFT_REG_1));
      w.attrBytes(NFTA_BITWISE_LEN, be32(4));
      data(NFTA_BITWISE_MASK, host32(r.mask));
      data(NFTA_BITWISE_XOR, host32(0));
    });
    expr('cmp', () => {
      w.attrBytes(NFTA_CMP_SREG, be32(NFT_REG_1));
      w.attrBytes(NFTA_CMP_OP, be32(NFT_CMP_EQ));
      data(NFTA_CMP_DATA, host32(r.mark));
    });
    expr('target', () => {
      w.attrString(NFTA_TARGET_NAME, 'NFQUEUE');
      w.attrBytes(NFTA_TARGET_REV, be32(3));
      // struct xt_NFQ_info_v3 { u16 queuenum; u16 queues_total; u16 flags } (host order), XT_ALIGNed to 8;
      // flags 0: no bypass (with nobody reading, the kernel drops), no CPU fanout
      const info = Buffer.alloc(8);
      info.writeUInt16LE(r.queue, 0);
      info.writeUInt16LE(1, 2);
      w.attrBytes(NFTA_TARGET_INFO, info);
    });
    w.endNest(exprs);
    w.endMsg(m);
  });
  m = w.beginNfMsg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 3, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
  w.endMsg(m);
}

/** Makes the tables and adds the rule (in the calling process's network namespace). Throws NftError. */
export function installQueueRule(r: QueueRule): void {
  removeQueueRule(r.table);
  try {
    execFileSync('nft', ['-f', '-'], { input: queueTablesScript(r.table), stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (err) {
    throw new NftError(`nft queue rule: create tables ${r.table}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const sock = NetlinkSocket.open(NETLINK_NETFILTER, 64 * 1024);
  try {
    const w = new NlWriter(1024);
    const seq = (Date.now() & 0x3fffffff) >>> 0;
    encodeQueueRuleBatch(w, r, seq);
    sock.send(w.buffer, w.length);
    const errnos = new Map<number, number>();
    sock.collectAcks((a) => {
      if (a.seq === seq + 1 || a.seq === seq + 2) errnos.set(a.seq, a.errno);
      else if ((a.seq === seq || a.seq === seq + 3) && a.errno !== 0) errnos.set(a.seq, a.errno);
      return errnos.size >= 2 || [...errnos.values()].some((e) => e !== 0);
    });
    const bad = [...errnos.values()].find((e) => e !== 0);
    if (bad !== undefined) throw new NftError(`nft queue rule: add to ${r.table}: ${errnoName(bad)} (xt NFQUEUE target through nft_compat)`);
  } catch (err) {
    removeQueueRule(r.table);
    throw err;
  } finally {
    sock.close();
  }
}

/** Removes both tables; missing ones are not an error. */
export function removeQueueRule(table: string): void {
  for (const f of ['ip', 'ip6']) spawnSync('nft', ['delete', 'table', f, table], { stdio: 'ignore' });
}
