// The public shapes of the ipset API: set types, entries, specs, records.
import type { NetlinkError } from '../errors.js'
import type { Family } from '../validate.js'

/** The set types tsproxy reads and writes. */
export const SET_TYPES = [
  'hash:ip',
  'hash:ip,port',
  'hash:ip,port,ip',
  'hash:ip,port,net',
  'hash:net',
  'hash:net,port',
  'bitmap:port',
  'list:set',
] as const
export type SetType = (typeof SET_TYPES)[number]

/**
 * Protocols of the port-carrying types (the ipset tool's default is tcp, and so
 * is ours). With icmp (inet) and icmpv6 (inet6) the port is type << 8 | code.
 */
export const ENTRY_PROTOCOLS = ['tcp', 'udp', 'sctp', 'udplite', 'icmp', 'icmpv6'] as const
export type EntryProtocol = (typeof ENTRY_PROTOCOLS)[number]

/** Per-entry extensions; each needs the set to have been created with it. */
export interface EntryOptions {
  /** Seconds until the kernel removes the entry (0: never); needs a set with `timeout`. Listed: seconds left. */
  timeout?: number
  /** Needs a set with `comment`; up to 255 bytes. */
  comment?: string
  /** Counter values (add); needs a set with `counters`. */
  packets?: number
  bytes?: number
  /** skb mark (with skbmarkmask, default 0xffffffff), priority (major << 16 | minor), queue; need `skbinfo`. */
  skbmark?: number
  skbmarkmask?: number
  skbprio?: number
  skbqueue?: number
}

/**
 * An entry, by set type: hash:ip `{ ip }`; hash:ip,port `{ ip, protocol, port }`;
 * hash:ip,port,ip `{ ip, protocol, port, ip2 }`; hash:ip,port,net
 * `{ ip, protocol, port, net }`; hash:net `{ net }`; hash:net,port
 * `{ net, protocol, port }`; bitmap:port `{ port }`; list:set `{ set }`.
 * A `net` is 'address/prefix' (a bare address is a host). `nomatch` (net types,
 * add): the network is an exception inside a wider one.
 */
export interface IpSetEntry extends EntryOptions {
  ip?: string
  protocol?: EntryProtocol | string
  port?: number
  ip2?: string
  net?: string
  set?: string
  nomatch?: boolean
}

export interface CreateSpec {
  name: string
  type: SetType
  /** Address family of the hash types: 'inet' (default) or 'inet6'. */
  family?: Family
  /** Hash types: initial hash size (the kernel rounds it up to a power of 2, min 64; default 1024). */
  hashsize?: number
  /** Hash types: most entries the set holds (default 65536). */
  maxelem?: number
  /** bitmap:port: the first and last port it can hold (required). */
  range?: [number, number]
  /** list:set: most sets it holds (default 8). */
  size?: number
  /** Default entry timeout in seconds; a set without it has no timeouts at all. */
  timeout?: number
  counters?: boolean
  comment?: boolean
  skbinfo?: boolean
  /** Hash types: when full, evict a random entry rather than refuse the add. */
  forceadd?: boolean
  /** No error when a set of this name and the same kind exists. */
  exist?: boolean
}

export interface IpSetRecord {
  name: string
  type: SetType | string
  /** Absent for bitmap:port and list:set, which have none. */
  family?: Family
  revision: number
  hashsize?: number
  maxelem?: number
  bucketsize?: number
  initval?: number
  netmask?: number
  range?: [number, number]
  size?: number
  /** The default entry timeout, when the set has timeouts. */
  timeout?: number
  counters: boolean
  comment: boolean
  skbinfo: boolean
  forceadd: boolean
  /** Kernel references (iptables rules, list:set sets) to the set. */
  references: number
  memsize: number
  /** Number of entries the kernel holds. */
  entries: number
  /** Present from list(): every entry, typed by the set's type. */
  members?: IpSetEntry[]
}

export type IpSetOp =
  | { op: 'add'; set: string; entry: IpSetEntry; exist?: boolean }
  | { op: 'del'; set: string; entry: IpSetEntry; exist?: boolean }

/** replaceMembers: a hash set's new size limits (the kernel fixes maxelem when a set is created). */
export interface ResizeOptions {
  /** Most entries the replaced set holds. */
  maxelem?: number
  /** Its initial hash size (the kernel grows the table by itself as entries arrive). */
  hashsize?: number
}

export interface SyncResult {
  added: number
  deleted: number
  unchanged: number
  /** Operations the kernel refused (each with its index in the add/del batch). */
  errors: NetlinkError[]
}

/** What validation needs to know of a set: read from the kernel once, then kept. */
export interface SetInfo {
  type: string
  family?: Family
  timeout: boolean
  counters: boolean
  comment: boolean
  skbinfo: boolean
  /** bitmap:port */
  range?: [number, number]
}
