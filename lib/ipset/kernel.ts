// The kernel's numbers (linux/netfilter/ipset/ip_set.h, linux/in.h) and what
// each set type tsproxy handles looks like: the fields of its entries, where a
// network travels, the newest revision whose wire form this code knows.
import * as v from '../validate.js'
import type { Family } from '../validate.js'
import type { SetInfo, SetType } from './types.js'

export const IPSET_PROTOCOL = 7
export const IPSET_PROTOCOL_MIN = 6
export const NAME_SIZE = 32 // IPSET_MAXNAMELEN
export const MAX_COMMENT = 255 // IPSET_MAX_COMMENT_SIZE
export const MAX_TIMEOUT = 2147483 // the kernel caps larger values silently; the ipset tool refuses them
export const U32_MAX = 0xffffffff
export const NFPROTO = v.table<Family, number>({ inet: 2, inet6: 10 })
export const FLAG_LIST_SETNAME = 1 << 1
export const FLAG_LIST_HEADER = 1 << 2
export const CADT_NOMATCH = 1 << 2
export const CADT_WITH_COUNTERS = 1 << 3
export const CADT_WITH_COMMENT = 1 << 4
export const CADT_WITH_FORCEADD = 1 << 5
export const CADT_WITH_SKBINFO = 1 << 6
export const PROTO_NUMBERS: Readonly<Record<string, number>> = v.table({ tcp: 6, udp: 17, sctp: 132, udplite: 136, icmp: 1, icmpv6: 58 })
export const PROTO_NAMES = new Map(Object.entries(PROTO_NUMBERS).map(([k, n]) => [n, k]))

export type EntryField = 'ip' | 'protocol' | 'port' | 'ip2' | 'net' | 'set'
export type SetKind = 'hash' | 'bitmap' | 'list'

export interface TypeInfo {
  kind: SetKind
  fields: readonly EntryField[]
  /** Where `net` travels: IP + CIDR, or IP2 + CIDR2. */
  net?: 'ip' | 'ip2'
  /** The newest revision whose wire form this code knows (ipset 7.17's). */
  maxRevision: number
}

export const TYPES = v.table<SetType, TypeInfo>({
  'hash:ip': { kind: 'hash', fields: ['ip'], maxRevision: 6 },
  'hash:ip,port': { kind: 'hash', fields: ['ip', 'protocol', 'port'], maxRevision: 7 },
  'hash:ip,port,ip': { kind: 'hash', fields: ['ip', 'protocol', 'port', 'ip2'], maxRevision: 6 },
  'hash:ip,port,net': { kind: 'hash', fields: ['ip', 'protocol', 'port', 'net'], net: 'ip2', maxRevision: 8 },
  'hash:net': { kind: 'hash', fields: ['net'], net: 'ip', maxRevision: 7 },
  'hash:net,port': { kind: 'hash', fields: ['net', 'protocol', 'port'], net: 'ip', maxRevision: 8 },
  'bitmap:port': { kind: 'bitmap', fields: ['port'], maxRevision: 3 },
  'list:set': { kind: 'list', fields: ['set'], maxRevision: 3 },
})
export const EXTENSIONS = ['timeout', 'comment', 'packets', 'bytes', 'skbmark', 'skbmarkmask', 'skbprio', 'skbqueue'] as const

/** The kind of a set validation accepted (so one of TYPES). */
export function kindOf(info: SetInfo): SetKind {
  return TYPES[info.type as SetType]!.kind
}
