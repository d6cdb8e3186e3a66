// The numbers of <linux/netfilter/nf_tables.h> and <linux/netfilter.h> the
// typed API names, and nft's own (its datatype numbers, which `nft list` reads
// back from a set's key type, and its user-data TLV types for comments).

/** A name <-> number table, both ways. */
export class Names<N extends string> {
  readonly byName: Readonly<Record<N, number>>
  readonly #byNumber = new Map<number, N>()
  constructor(entries: Record<N, number>) {
    this.byName = Object.freeze(Object.assign(Object.create(null) as Record<N, number>, entries))
    for (const [k, v] of Object.entries(entries) as [N, number][]) if (!this.#byNumber.has(v)) this.#byNumber.set(v, k)
  }
  has(name: unknown): name is N {
    return typeof name === 'string' && Object.prototype.hasOwnProperty.call(this.byName, name)
  }
  number(name: N): number {
    return this.byName[name]
  }
  /** The name of `n`, or the number itself when it has none here (a newer kernel's value). */
  name(n: number): N | number {
    return this.#byNumber.get(n) ?? n
  }
  get names(): N[] {
    return Object.keys(this.byName) as N[]
  }
}

export const FAMILIES = new Names({ inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 })
export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev'

export const HOOKS = new Names({ prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4, ingress: 5 })
export type NftHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress'

export const CHAIN_TYPES = ['filter', 'nat', 'route'] as const
export type NftChainType = (typeof CHAIN_TYPES)[number]

export const POLICIES = new Names({ drop: 0, accept: 1 })
export type NftPolicy = 'accept' | 'drop'

/** Verdict codes: NF_DROP 0, NF_ACCEPT 1, NFT_CONTINUE -1 .. NFT_RETURN -5. */
export const VERDICTS = new Names({ drop: 0, accept: 1, continue: -1, break: -2, jump: -3, goto: -4, return: -5 })
export type NftVerdictCode = 'drop' | 'accept' | 'continue' | 'break' | 'jump' | 'goto' | 'return'

export const PAYLOAD_BASES = new Names({ link: 0, network: 1, transport: 2, inner: 3 })
export type NftPayloadBase = 'link' | 'network' | 'transport' | 'inner'

export const META_KEYS = new Names({
  len: 0,
  protocol: 1,
  priority: 2,
  mark: 3,
  iif: 4,
  oif: 5,
  iifname: 6,
  oifname: 7,
  iiftype: 8,
  oiftype: 9,
  skuid: 10,
  skgid: 11,
  nftrace: 12,
  rtclassid: 13,
  secmark: 14,
  nfproto: 15,
  l4proto: 16,
  bri_iifname: 17,
  bri_oifname: 18,
  pkttype: 19,
  cpu: 20,
  iifgroup: 21,
  oifgroup: 22,
  cgroup: 23,
  prandom: 24,
})
export type NftMetaKey = keyof typeof META_KEYS.byName

export const CMP_OPS = new Names({ eq: 0, neq: 1, lt: 2, lte: 3, gt: 4, gte: 5 })
export type NftCmpOp = 'eq' | 'neq' | 'lt' | 'lte' | 'gt' | 'gte'

export const RANGE_OPS = new Names({ eq: 0, neq: 1 })
export type NftRangeOp = 'eq' | 'neq'

export const BITWISE_OPS = new Names({ bool: 0, lshift: 1, rshift: 2 })
export type NftBitwiseOp = 'bool' | 'lshift' | 'rshift'

export const CT_KEYS = new Names({
  state: 0,
  direction: 1,
  status: 2,
  mark: 3,
  secmark: 4,
  expiration: 5,
  helper: 6,
  l3protocol: 7,
  src: 8,
  dst: 9,
  protocol: 10,
  'proto-src': 11,
  'proto-dst': 12,
  labels: 13,
  pkts: 14,
  bytes: 15,
  avgpkt: 16,
  zone: 17,
  eventmask: 18,
  'src-ip': 19,
  'dst-ip': 20,
  'src-ip6': 21,
  'dst-ip6': 22,
  id: 23,
})
export type NftCtKey = keyof typeof CT_KEYS.byName

export const CT_DIRECTIONS = new Names({ original: 0, reply: 1 })
export type NftCtDirection = 'original' | 'reply'

export const FIB_RESULTS = new Names({ oif: 1, oifname: 2, addrtype: 3 })
export type NftFibResult = 'oif' | 'oifname' | 'addrtype'
/** NFTA_FIB_F_* bits. */
export const FIB_FLAGS = new Names({ saddr: 1, daddr: 2, mark: 4, iif: 8, oif: 16, present: 32 })
export type NftFibFlag = 'saddr' | 'daddr' | 'mark' | 'iif' | 'oif' | 'present'

export const NUMGEN_TYPES = new Names({ incremental: 0, random: 1 })
export type NftNumgenType = 'incremental' | 'random'

export const NAT_TYPES = new Names({ snat: 0, dnat: 1 })
export type NftNatType = 'snat' | 'dnat'
/** NF_NAT_RANGE_* bits. */
export const NAT_FLAGS = new Names({ 'map-ips': 1, 'proto-specified': 2, random: 4, persistent: 8, 'random-fully': 16, netmap: 64 })
export type NftNatFlag = 'map-ips' | 'proto-specified' | 'random' | 'persistent' | 'random-fully' | 'netmap'

export const REJECT_TYPES = new Names({ 'icmp-unreach': 0, 'tcp-rst': 1, 'icmpx-unreach': 2 })
export type NftRejectType = 'icmp-unreach' | 'tcp-rst' | 'icmpx-unreach'

export const DYNSET_OPS = new Names({ add: 0, update: 1, delete: 2 })
export type NftDynsetOp = 'add' | 'update' | 'delete'

export const LIMIT_TYPES = new Names({ packets: 0, bytes: 1 })

export const SET_FLAGS = new Names({ anonymous: 1, constant: 2, interval: 4, map: 8, timeout: 16, dynamic: 32, object: 64, concat: 128 })
export type NftSetFlag = 'anonymous' | 'constant' | 'interval' | 'timeout' | 'dynamic'

/** NFT_SET_ELEM_INTERVAL_END. */
export const ELEM_INTERVAL_END = 1
/** NFT_DATA_VERDICT: a map's data type when it maps to verdicts. */
export const DATA_VERDICT = 0xffffff00

/**
 * nft's datatypes (its src/datatype.h numbers, what `nft list` reads from a
 * set's NFTA_SET_KEY_TYPE) with their size on the wire in bytes. A
 * concatenation's type is its fields' types, 6 bits each, first field highest.
 */
export const DATATYPES = {
  verdict: { type: 1, len: 4 },
  integer: { type: 4, len: 4 },
  ipv4_addr: { type: 7, len: 4 },
  ipv6_addr: { type: 8, len: 16 },
  ether_addr: { type: 9, len: 6 },
  inet_proto: { type: 12, len: 1 },
  inet_service: { type: 13, len: 2 },
  mark: { type: 19, len: 4 },
  ifname: { type: 41, len: 16 },
} as const
export type NftDatatype = keyof typeof DATATYPES
export const DATATYPE_BITS = 6

/** Registers: NFT_REG_VERDICT 0, the 16-byte NFT_REG_1..4, the 4-byte NFT_REG32_00..15 (8..23). */
export const REG_VERDICT = 0
export function validRegister(r: unknown): r is number {
  return typeof r === 'number' && Number.isInteger(r) && ((r >= 0 && r <= 4) || (r >= 8 && r <= 23))
}

/**
 * nft's user-data TLV types (libnftnl's NFTNL_UDATA_*): a comment is type 0
 * on tables, chains, rules and elements, type 7 on sets; a set's key byte
 * order (0) tells `nft list` how to print an integer key.
 */
export const UDATA_COMMENT = 0
export const UDATA_SET_KEYBYTEORDER = 0
export const UDATA_SET_COMMENT = 7
/** nft's byte orders: BYTEORDER_HOST_ENDIAN 1, BYTEORDER_BIG_ENDIAN 2. */
export const BYTEORDER_HOST = 1

export const NFT_NAME_MAXLEN = 255
/** NFT_USERDATA_MAXLEN. */
export const USERDATA_MAXLEN = 256
