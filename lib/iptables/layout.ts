// The byte layouts of x_tables as the kernel headers define them (for x86_64
// and every other little-endian 64-bit Linux): struct ipt_entry / ip6t_entry,
// xt_entry_match / xt_entry_target, and the data of each match and target
// revision iptables-legacy 1.8 writes. test/unit/iptables-layout.test.ts checks
// every number here against sizeof/offsetof compiled from the headers
// (native/iptc/table.cc, layout()).
import { endianness } from 'node:os'

if (endianness() !== 'LE') throw new Error('tsproxy iptables: the entry layouts are written for little-endian hosts')

/** XT_ALIGN: entries, matches and targets are 8-byte aligned (u64 counters). */
export const align8 = (n: number): number => (n + 7) & ~7

/** struct ipt_entry (linux/netfilter_ipv4/ip_tables.h). */
export const ENTRY4 = {
  size: 112,
  src: 0, dst: 4, smsk: 8, dmsk: 12,
  iniface: 16, outiface: 32, inifaceMask: 48, outifaceMask: 64,
  proto: 80, flags: 82, invflags: 83,
  nfcache: 84, targetOffset: 88, nextOffset: 90, comefrom: 92, counters: 96,
  addrLen: 4,
} as const

/** struct ip6t_entry (linux/netfilter_ipv6/ip6_tables.h). */
export const ENTRY6 = {
  size: 168,
  src: 0, dst: 16, smsk: 32, dmsk: 48,
  iniface: 64, outiface: 80, inifaceMask: 96, outifaceMask: 112,
  proto: 128, tos: 130, flags: 131, invflags: 132,
  nfcache: 136, targetOffset: 140, nextOffset: 142, comefrom: 144, counters: 152,
  addrLen: 16,
} as const

export type EntryLayout = typeof ENTRY4 | typeof ENTRY6

// ipt_ip.flags / ip6t_ip6.flags and the shared invflags bits.
export const IPT_F_FRAG = 0x01
export const IPT_F_GOTO = 0x02
export const IP6T_F_PROTO = 0x01
export const IP6T_F_GOTO = 0x04
export const INV_VIA_IN = 0x01
export const INV_VIA_OUT = 0x02
export const INV_SRCIP = 0x08
export const INV_DSTIP = 0x10
export const INV_FRAG = 0x20
export const INV_PROTO = 0x40

/** xt_entry_match / xt_entry_target: u16 size, char name[29], u8 revision, then data. */
export const XT_HEADER = 32
export const XT_NAME_LEN = 29 // XT_EXTENSION_MAXNAMELEN, NUL included
export const IFNAMSIZ = 16

/**
 * Data sizes (XT_ALIGN'd, as in the match_size / target_size iptables writes)
 * and userspacesize (the bytes `iptables -D` compares) of every revision we write.
 */
export const EXT = {
  comment: { revision: 0, size: 256, user: 256 }, // xt_comment_info
  tcp: { revision: 0, size: 16, user: 16 }, // xt_tcp (12)
  udp: { revision: 0, size: 16, user: 16 }, // xt_udp (10)
  sctp: { revision: 0, size: 296, user: 296 }, // xt_sctp_info (292)
  multiport: { revision: 1, size: 48, user: 48 }, // xt_multiport_v1
  statistic: { revision: 0, size: 24, user: 12 }, // xt_statistic_info; user = offsetof(u.nth.count)
  set: { revision: 4, size: 48, user: 48 }, // xt_set_info_match_v4
  mark: { revision: 1, size: 16, user: 16 }, // xt_mark_mtinfo1 (12)
  addrtype: { revision: 1, size: 8, user: 8 }, // xt_addrtype_info_v1
  conntrack: { revision: 3, size: 168, user: 168 }, // xt_conntrack_mtinfo3 (164)
  recent: { revision: 1, size: 232, user: 232 }, // xt_recent_mtinfo_v1 (228)
  physdev: { revision: 0, size: 72, user: 72 }, // xt_physdev_info (66)
  standard: { revision: 0, size: 8, user: 4 }, // xt_standard_target: int verdict
  DNAT: { revision: 2, size: 48, user: 48 }, // nf_nat_range2 (44), both families
  SNAT4: { revision: 0, size: 24, user: 24 }, // nf_nat_ipv4_multi_range_compat (20)
  SNAT6: { revision: 1, size: 40, user: 40 }, // nf_nat_range
  MASQUERADE4: { revision: 0, size: 24, user: 24 }, // nf_nat_ipv4_multi_range_compat
  MASQUERADE6: { revision: 0, size: 40, user: 40 }, // nf_nat_range
  MARK: { revision: 2, size: 8, user: 8 }, // xt_mark_tginfo2
  REJECT: { revision: 0, size: 8, user: 8 }, // ipt_reject_info / ip6t_reject_info (4)
  LOG: { revision: 0, size: 32, user: 32 }, // xt_log_info
} as const

// Offsets inside the data of a match or target.
export const STATISTIC = { mode: 0, flags: 2, every: 4, packet: 8, count: 12 } as const
export const MULTIPORT = { flags: 0, count: 1, ports: 2, pflags: 32, invert: 47, max: 15 } as const
export const SET = { index: 0, dim: 2, flags: 3, packetsOp: 8, packets: 16, bytesOp: 24, bytes: 32, matchFlags: 40 } as const
export const CONNTRACK = {
  origsrcAddr: 0, origsrcMask: 16, origdstAddr: 32, origdstMask: 48,
  replsrcAddr: 64, replsrcMask: 80, repldstAddr: 96, repldstMask: 112,
  expiresMin: 128, expiresMax: 132, l4proto: 136,
  origsrcPort: 138, origdstPort: 140, replsrcPort: 142, repldstPort: 144,
  matchFlags: 146, invertFlags: 148, stateMask: 150, statusMask: 152,
  origsrcPortHigh: 154, origdstPortHigh: 156, replsrcPortHigh: 158, repldstPortHigh: 160,
} as const
export const RECENT = { seconds: 0, hitCount: 4, checkSet: 8, invert: 9, name: 10, nameLen: 200, side: 210, mask: 212 } as const
/** xt_sctp_info: dpts before spts; flag_info is XT_NUM_SCTP_FLAGS × { chunktype, flag, flag_mask }. */
export const SCTP = { dpts: 0, spts: 4, chunkmap: 8, chunkMatchType: 264, flagInfo: 268, flagSlots: 4, flagCount: 280, flags: 284, invflags: 288 } as const
export const PHYSDEV = { in: 0, inMask: 16, out: 32, outMask: 48, invert: 64, bitmask: 65 } as const
export const NAT_RANGE = { flags: 0, minAddr: 4, maxAddr: 20, minProto: 36, maxProto: 38, baseProto: 40 } as const
export const NAT_COMPAT = { rangesize: 0, flags: 4, minIp: 8, maxIp: 12, minProto: 16, maxProto: 18 } as const

/** The records native/iptc exchanges with lib/ (table.h: OpHeader, SetFixup, RuleHeader). */
export const OP_HEADER = { size: 88, length: 0, kind: 4, nsets: 6, index: 8, rulenum: 12, chain: 16, arg: 48, entryLen: 80, maskLen: 84 } as const
export const SET_FIXUP = { size: 40, offset: 0, name: 4 } as const
export const RULE_HEADER = { size: 40, length: 0, standard: 4, label: 8 } as const

/** The numbers of table.h's OpKind. */
export const OP_KIND = {
  createChain: 1,
  deleteChain: 2,
  flushChain: 3,
  renameChain: 4,
  setPolicy: 5,
  zeroCounters: 6,
  appendRule: 7,
  insertRule: 8,
  replaceRule: 9,
  deleteRuleAt: 10,
  deleteRule: 11,
} as const
export type OpName = keyof typeof OP_KIND
