// ipset, the kernel's sets of addresses, ports and networks, over nfnetlink:
// what the ipset tool does for the set types the proxy uses, without the tool.
// Input is validated here (errors name the field); native/ipset only names the
// kernel's attributes.
import { randomBytes } from 'node:crypto'
import { addressKey, isIPv4Text } from './address.js'
import { NetlinkError } from './errors.js'
import type { NativeOp, NativeResult } from './native.js'
import { NETLINK_NETFILTER } from './native.js'
import { NetlinkSocket, OK, SLICE, yieldToLoop, type Outcome } from './netlink/socket.js'
import * as v from './validate.js'
import type { Family, Where } from './validate.js'

export type { Outcome } from './netlink/socket.js'
export type { Family } from './validate.js'

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

export interface SyncResult {
  added: number
  deleted: number
  unchanged: number
  /** Operations the kernel refused (each with its index in the add/del batch). */
  errors: NetlinkError[]
}

// ---- kernel numbers (linux/netfilter/ipset/ip_set.h, linux/in.h) -----------------------------

const IPSET_PROTOCOL = 7
const IPSET_PROTOCOL_MIN = 6
const NAME_SIZE = 32 // IPSET_MAXNAMELEN
const MAX_COMMENT = 255 // IPSET_MAX_COMMENT_SIZE
const MAX_TIMEOUT = 2147483 // the kernel caps larger values silently; the ipset tool refuses them
const U32_MAX = 0xffffffff
const NFPROTO = v.table<Family, number>({ inet: 2, inet6: 10 })
const FLAG_LIST_SETNAME = 1 << 1
const FLAG_LIST_HEADER = 1 << 2
const CADT_NOMATCH = 1 << 2
const CADT_WITH_COUNTERS = 1 << 3
const CADT_WITH_COMMENT = 1 << 4
const CADT_WITH_FORCEADD = 1 << 5
const CADT_WITH_SKBINFO = 1 << 6
const PROTO_NUMBERS: Readonly<Record<string, number>> = v.table({ tcp: 6, udp: 17, sctp: 132, udplite: 136, icmp: 1, icmpv6: 58 })
const PROTO_NAMES = new Map(Object.entries(PROTO_NUMBERS).map(([k, n]) => [n, k]))
const ENOENT = 2
const EEXIST = 17
const IPSET_ERR_EXIST = 4103

type EntryField = 'ip' | 'protocol' | 'port' | 'ip2' | 'net' | 'set'

interface TypeInfo {
  kind: 'hash' | 'bitmap' | 'list'
  fields: readonly EntryField[]
  /** Where `net` travels: IP + CIDR, or IP2 + CIDR2. */
  net?: 'ip' | 'ip2'
  /** The newest revision whose wire form this code knows (ipset 7.17's). */
  maxRevision: number
}

const TYPES = v.table<SetType, TypeInfo>({
  'hash:ip': { kind: 'hash', fields: ['ip'], maxRevision: 6 },
  'hash:ip,port': { kind: 'hash', fields: ['ip', 'protocol', 'port'], maxRevision: 7 },
  'hash:ip,port,ip': { kind: 'hash', fields: ['ip', 'protocol', 'port', 'ip2'], maxRevision: 6 },
  'hash:ip,port,net': { kind: 'hash', fields: ['ip', 'protocol', 'port', 'net'], net: 'ip2', maxRevision: 8 },
  'hash:net': { kind: 'hash', fields: ['net'], net: 'ip', maxRevision: 7 },
  'hash:net,port': { kind: 'hash', fields: ['net', 'protocol', 'port'], net: 'ip', maxRevision: 8 },
  'bitmap:port': { kind: 'bitmap', fields: ['port'], maxRevision: 3 },
  'list:set': { kind: 'list', fields: ['set'], maxRevision: 3 },
})
const EXTENSIONS = ['timeout', 'comment', 'packets', 'bytes', 'skbmark', 'skbmarkmask', 'skbprio', 'skbqueue'] as const

// ---- errors: ipset's private errnos (>= 4096) by name, in the ipset tool's words ---------------

type Cmd = 'create' | 'destroy' | 'flush' | 'rename' | 'swap' | 'list' | 'add' | 'del' | 'test' | 'header' | 'type' | 'protocol'

const CORE_ERRORS: Record<number, [string, string]> = {
  4097: ['IPSET_ERR_PROTOCOL', 'Kernel error received: ipset protocol error'],
  4098: ['IPSET_ERR_FIND_TYPE', 'Kernel error received: set type not supported'],
  4099: ['IPSET_ERR_MAX_SETS', 'Kernel error received: maximal number of sets reached, cannot create more.'],
  4100: ['IPSET_ERR_BUSY', 'Set cannot be destroyed: it is in use by a kernel component'],
  4101: ['IPSET_ERR_EXIST_SETNAME2', 'Set cannot be renamed: a set with the new name already exists'],
  4102: ['IPSET_ERR_TYPE_MISMATCH', 'The sets cannot be swapped: their type does not match'],
  4103: ['IPSET_ERR_EXIST', "Element cannot be added to the set: it's already added"],
  4104: ['IPSET_ERR_INVALID_CIDR', 'The value of the CIDR parameter of the IP address is invalid'],
  4105: ['IPSET_ERR_INVALID_NETMASK', 'The value of the netmask parameter is invalid'],
  4106: ['IPSET_ERR_INVALID_FAMILY', 'Protocol family not supported by the set type'],
  4107: ['IPSET_ERR_TIMEOUT', 'Timeout cannot be used: set was created without timeout support'],
  4108: ['IPSET_ERR_REFERENCED', 'Set cannot be renamed: it is in use by another system'],
  4109: ['IPSET_ERR_IPADDR_IPV4', 'An IPv4 address is expected, but not received'],
  4110: ['IPSET_ERR_IPADDR_IPV6', 'An IPv6 address is expected, but not received'],
  4111: ['IPSET_ERR_COUNTER', 'Packet/byte counters cannot be used: set was created without counter support'],
  4112: ['IPSET_ERR_COMMENT', 'Comment cannot be used: set was created without comment support'],
  4113: ['IPSET_ERR_INVALID_MARKMASK', 'The value of the markmask parameter is invalid'],
  4114: ['IPSET_ERR_SKBINFO', 'Skbinfo mapping cannot be used: set was created without skbinfo support'],
}
/** Words that depend on the command, as the ipset tool has them. */
const CMD_ERRORS: Partial<Record<Cmd, Record<number, string>>> = {
  create: { [EEXIST]: 'Set cannot be created: set with the same name already exists' },
  del: { [IPSET_ERR_EXIST]: "Element cannot be deleted from the set: it's not added" },
  test: { [IPSET_ERR_EXIST]: 'Element is not in the set' },
  swap: { 4101: 'Sets cannot be swapped: the second set does not exist' },
}
/** From 4352 (IPSET_ERR_TYPE_SPECIFIC) each kind of set numbers its own. */
const TYPE_ERRORS: Record<TypeInfo['kind'], [string, string][]> = {
  hash: [
    ['IPSET_ERR_HASH_FULL', 'Hash is full, cannot add more elements'],
    ['IPSET_ERR_HASH_ELEM', 'Null-valued element, cannot be stored in a hash type of set'],
    ['IPSET_ERR_INVALID_PROTO', 'Invalid protocol specified'],
    ['IPSET_ERR_MISSING_PROTO', 'Protocol missing, but must be specified'],
    ['IPSET_ERR_HASH_RANGE_UNSUPPORTED', 'Range is not supported in the "net" component of the element'],
    ['IPSET_ERR_HASH_RANGE', 'Invalid range, covers the whole address space'],
  ],
  bitmap: [
    ['IPSET_ERR_BITMAP_RANGE', 'Element is out of the range of the set'],
    ['IPSET_ERR_BITMAP_RANGE_SIZE', 'The range you specified exceeds the size limit of the set type'],
  ],
  list: [
    ['IPSET_ERR_NAME', 'Set to be added/deleted/tested as element does not exist.'],
    ['IPSET_ERR_LOOP', 'Sets with list:set type cannot be added to the set.'],
    ['IPSET_ERR_BEFORE', 'No reference set specified.'],
    ['IPSET_ERR_NAMEREF', "The set to which you referred with 'before' or 'after' does not exist."],
    ['IPSET_ERR_LIST_FULL', 'The set is full, more elements cannot be added.'],
    ['IPSET_ERR_REF_EXIST', "The set to which you referred with 'before' or 'after' is not added to the set."],
  ],
}

/** The code name and the ipset tool's message for an errno (kernel or ipset-private). */
export function ipsetErrorText(errno: number, cmd?: string, kind?: 'hash' | 'bitmap' | 'list'): { code?: string; text?: string } {
  const byCmd = cmd ? CMD_ERRORS[cmd as Cmd]?.[errno] : undefined
  if (errno >= 4352) {
    const e = kind ? TYPE_ERRORS[kind][errno - 4352] : undefined
    return e ? { code: e[0], text: e[1] } : { code: `IPSET_ERR_TYPE_SPECIFIC_${errno - 4352}` }
  }
  if (errno >= 4096) {
    const e = CORE_ERRORS[errno]
    return { code: e?.[0] ?? `IPSET_ERR_${errno}`, text: byCmd ?? e?.[1] }
  }
  if (errno === ENOENT && cmd && cmd !== 'protocol' && cmd !== 'type') return { text: 'The set with the given name does not exist' }
  return byCmd ? { text: byCmd } : {}
}

function ipsetError(result: NativeResult<unknown>, op: string, cmd: Cmd, kind?: TypeInfo['kind'], index?: number): NetlinkError {
  const { code, text } = ipsetErrorText(result.error, cmd, kind)
  const init: ConstructorParameters<typeof NetlinkError>[0] = { errno: result.error, op }
  if (code) init.code = code
  if (result.extack) init.extack = result.extack
  if (index !== undefined) init.index = index
  if (text) init.message = `${code ?? new NetlinkError({ errno: result.error, op }).code}: ${text}`
  return new NetlinkError(init)
}

// ---- input: validation and the wire form --------------------------------------------------

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

/** An entry as native/ipset encodes it. */
export interface WireEntry {
  af: number
  ip?: string
  cidr?: number
  port?: number
  proto?: number
  ip2?: string
  cidr2?: number
  name?: string
  timeout?: number
  packets?: number
  bytes?: number
  comment?: string
  skbmark?: number
  skbmarkmask?: number
  skbprio?: number
  skbqueue?: number
  flags?: number
}

/** The kind of a set validation accepted (so one of TYPES). */
function kindOf(info: SetInfo): TypeInfo['kind'] {
  return TYPES[info.type as SetType]!.kind
}

function typeInfo(at: Where, field: string, type: string): TypeInfo {
  const t = TYPES[type as SetType]
  if (!t) v.fail(at, field, type, `is a ${type} set; tsproxy handles ${SET_TYPES.join(', ')}`)
  return t
}

export function setName(at: Where, field: string, value: unknown): string {
  return v.name(at, field, value, NAME_SIZE)
}

/** A network 'address/prefix' (or a bare address: a host) of `family`. */
function network(at: Where, field: string, value: unknown, family: Family | undefined): { address: string; prefix: number } {
  if (typeof value !== 'string') v.fail(at, field, value, "must be a network string 'address/prefix'")
  const slash = value.indexOf('/')
  const address = slash < 0 ? value : value.slice(0, slash)
  let f: Family
  try {
    f = v.address(at, field, address, family)
  } catch (e) {
    // The same refusal, naming the whole network as given.
    v.fail(at, field, value, (e as Error).message.replace(/^.*?: \S+ (.*) \(got .*\)$/s, '$1'))
  }
  const max = f === 'inet' ? 32 : 128
  if (slash < 0) return { address, prefix: max }
  const p = value.slice(slash + 1)
  if (!/^\d{1,3}$/.test(p) || Number(p) < 1 || Number(p) > max) v.fail(at, field, value, `has a prefix outside 1..${max}`)
  return { address, prefix: Number(p) }
}

function ip(at: Where, field: string, value: unknown, family: Family | undefined): string {
  v.address(at, field, value, family)
  if ((value as string).includes('%')) v.fail(at, field, value, 'must not carry a zone index')
  return value as string
}

const ADD_ONLY: readonly string[] = [...EXTENSIONS, 'nomatch']
/** Per type and command: the fields an entry may have (built once per type). */
const ALLOWED = new WeakMap<TypeInfo, { add: Set<string>; other: Set<string> }>()
function allowedFields(t: TypeInfo, cmd: string): Set<string> {
  let sets = ALLOWED.get(t)
  if (!sets) {
    const add = new Set<string>([...t.fields, ...EXTENSIONS, ...(t.net ? ['nomatch'] : [])])
    sets = { add, other: new Set<string>(t.fields) }
    ALLOWED.set(t, sets)
  }
  return cmd === 'add' ? sets.add : sets.other
}

/** An address of the set's family (the common IPv4 case checked with one test). */
function ipOf(at: Where, field: string, name: string, value: unknown, family: Family | undefined): string {
  if (typeof value === 'string' && family !== 'inet6' && isIPv4Text(value)) return value
  return ip(at, `${field}.${name}`, value, family)
}

/**
 * The wire form of one entry of a set described by `info`; throws
 * ValidationError naming the field. Exported so input checks are testable
 * without a kernel. (On the path of every batched entry: kept lean, no string
 * is built unless something is refused.)
 */
export function entryWire(at: Where, info: SetInfo, value: unknown, cmd: 'add' | 'del' | 'test' = 'add', field = 'entry'): WireEntry {
  const t = typeInfo(at, 'set', info.type)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) v.object(at, field, value)
  const e = value as Record<string, unknown>
  const k = v.unknownField(e, allowedFields(t, cmd))
  if (k !== undefined) {
    const why = ADD_ONLY.includes(k)
      ? cmd === 'add' ? `is not available in ${info.type} sets` : `applies only to add`
      : `is not a field of ${info.type} entries (they have ${t.fields.join(', ')})`
    v.fail(at, `${field}.${k}`, e[k], why)
  }

  const family = info.family
  const w: WireEntry = { af: family === 'inet6' ? NFPROTO.inet6 : NFPROTO.inet }
  const fields = t.fields
  for (let i = 0; i < fields.length; i++) {
    const k = fields[i]!
    const x = e[k]
    if (x === undefined && k !== 'protocol') v.fail(at, `${field}.${k}`, undefined, `is required in ${info.type} entries`)
    switch (k) {
      case 'ip':
        w.ip = ipOf(at, field, 'ip', x, family)
        break
      case 'ip2':
        w.ip2 = ipOf(at, field, 'ip2', x, family)
        break
      case 'net': {
        const n = network(at, `${field}.net`, x, family)
        if (n.address.includes('%')) v.fail(at, `${field}.net`, x, 'must not carry a zone index')
        if (t.net === 'ip') {
          w.ip = n.address
          w.cidr = n.prefix
        } else {
          w.ip2 = n.address
          w.cidr2 = n.prefix
        }
        break
      }
      case 'protocol': {
        const p = x === undefined ? 'tcp' : x
        const n = p === 'tcp' ? 6 : p === 'udp' ? 17 : typeof p === 'string' && (ENTRY_PROTOCOLS as readonly string[]).includes(p) ? PROTO_NUMBERS[p] : undefined
        if (n === undefined) v.oneOf(at, `${field}.protocol`, p, ENTRY_PROTOCOLS)
        if ((p === 'icmp' && family === 'inet6') || (p === 'icmpv6' && family !== 'inet6'))
          v.fail(at, `${field}.protocol`, x, `does not belong to an ${family ?? 'inet'} set`)
        w.proto = n
        break
      }
      case 'port': {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 65535) v.port(at, `${field}.port`, x, 0)
        const port = x as number
        if (info.range && (port < info.range[0] || port > info.range[1]))
          v.fail(at, `${field}.port`, x, `is outside the set's range ${info.range[0]}-${info.range[1]}`)
        w.port = port
        break
      }
      case 'set':
        w.name = setName(at, `${field}.set`, x)
        break
    }
  }
  if (cmd === 'add' && (e.timeout !== undefined || e.comment !== undefined || e.packets !== undefined || e.bytes !== undefined || e.skbmark !== undefined ||
    e.skbmarkmask !== undefined || e.skbprio !== undefined || e.skbqueue !== undefined || e.nomatch !== undefined)) extensions(at, info, e, w, field)
  return w
}

/** The per-entry extensions of an add: each needs the set to have it. */
function extensions(at: Where, info: SetInfo, e: Record<string, unknown>, w: WireEntry, field: string): void {
  const need = (k: string, ok: boolean, what: string): void => {
    if (!ok) v.fail(at, `${field}.${k}`, e[k], `needs a set created with ${what}`)
  }
  if (e.timeout !== undefined) {
    need('timeout', info.timeout, 'timeout')
    w.timeout = v.integer(at, `${field}.timeout`, e.timeout, 0, MAX_TIMEOUT)
  }
  if (e.comment !== undefined) {
    need('comment', info.comment, 'comment')
    if (typeof e.comment !== 'string') v.fail(at, `${field}.comment`, e.comment, 'must be a string')
    if (Buffer.byteLength(e.comment) > MAX_COMMENT) v.fail(at, `${field}.comment`, e.comment, `is longer than ${MAX_COMMENT} bytes`)
    if (e.comment.includes('\0')) v.fail(at, `${field}.comment`, e.comment, 'must not contain NUL')
    w.comment = e.comment
  }
  if (e.packets !== undefined || e.bytes !== undefined) {
    for (const k of ['packets', 'bytes'] as const) {
      if (e[k] === undefined) continue
      need(k, info.counters, 'counters')
      w[k] = v.integer(at, `${field}.${k}`, e[k], 0, Number.MAX_SAFE_INTEGER)
    }
  }
  if (e.skbmark !== undefined || e.skbmarkmask !== undefined || e.skbprio !== undefined || e.skbqueue !== undefined) {
    if (e.skbmarkmask !== undefined && e.skbmark === undefined) v.fail(at, `${field}.skbmarkmask`, e.skbmarkmask, 'needs skbmark')
    for (const [k, max] of [['skbmark', U32_MAX], ['skbmarkmask', U32_MAX], ['skbprio', U32_MAX], ['skbqueue', 0xffff]] as const) {
      if (e[k] === undefined) continue
      need(k, info.skbinfo, 'skbinfo')
      w[k] = v.integer(at, `${field}.${k}`, e[k], 0, max)
    }
  }
  if (e.nomatch !== undefined && v.boolean(at, `${field}.nomatch`, e.nomatch)) w.flags = CADT_NOMATCH
}

/** The identity of an entry inside its set, as the kernel compares entries. */
export function entryKey(w: WireEntry): string {
  return `${w.ip === undefined ? '' : addressKey(w.ip, w.cidr)}|${w.port ?? ''}|${w.proto ?? ''}|${w.ip2 === undefined ? '' : addressKey(w.ip2, w.cidr2)}|${w.name ?? ''}`
}

const attrSize = (payload: number): number => 4 + ((payload + 3) & ~3)

/** Bytes an entry takes inside IPSET_ATTR_ADT (DATA nest, LINENO included). */
function wireSize(w: WireEntry): number {
  const addr = w.af === NFPROTO.inet6 ? 24 + 4 : 12
  let n = 12 // DATA header, LINENO
  if (w.ip !== undefined) n += addr
  if (w.ip2 !== undefined) n += addr
  if (w.cidr !== undefined) n += 8
  if (w.port !== undefined) n += 8
  if (w.proto !== undefined) n += 8
  if (w.cidr2 !== undefined) n += 8
  if (w.timeout !== undefined || w.packets !== undefined || w.bytes !== undefined || w.comment !== undefined || w.name !== undefined ||
    w.skbmark !== undefined || w.skbprio !== undefined || w.skbqueue !== undefined || w.flags !== undefined) {
    for (const k of ['timeout', 'skbprio', 'skbqueue', 'flags'] as const) if (w[k] !== undefined) n += 8
    for (const k of ['packets', 'bytes', 'skbmark'] as const) if (w[k] !== undefined) n += 12
    if (w.name !== undefined) n += attrSize(Buffer.byteLength(w.name) + 1)
    if (w.comment !== undefined) n += attrSize(Buffer.byteLength(w.comment) + 1)
  }
  return n
}

/** Entries per ADT message: at most this many bytes of DATA nests (the nest's own limit is 64 KiB). */
const ADT_BUDGET = 32 * 1024

const WIRE_FIELDS = ['ip', 'cidr', 'port', 'proto', 'ip2', 'cidr2', 'name', 'timeout', 'packets', 'bytes', 'comment', 'skbmark', 'skbmarkmask', 'skbprio', 'skbqueue', 'flags'] as const
const TEXT_FIELDS = new Set(['ip', 'ip2', 'name', 'comment'])

const CREATE_FIELDS: ReadonlySet<string> = new Set(['name', 'type', 'family', 'hashsize', 'maxelem', 'range', 'size', 'timeout', 'counters', 'comment', 'skbinfo', 'forceadd', 'exist'])
const OP_FIELDS: ReadonlySet<string> = new Set(['op', 'set', 'entry', 'exist'])

/** `{ exist }`, the options of add, del and destroy. */
function existOption(at: Where, options: unknown): boolean {
  const o = v.object(at, 'options', options)
  v.only(at, 'options', o, ['exist'])
  return o.exist === undefined ? false : v.boolean(at, 'options.exist', o.exist)
}

function createWire(at: Where, spec: CreateSpec): { wire: NativeOp & { name: string; family: number }; info: SetInfo } {
  const s = v.object(at, 'spec', spec)
  v.only(at, 'spec', s, CREATE_FIELDS)
  const name = setName(at, 'spec.name', s.name)
  const type = v.oneOf(at, 'spec.type', s.type, SET_TYPES)
  const t = TYPES[type]
  const only = (k: string, ok: boolean, kinds: string): void => {
    if (s[k] !== undefined && !ok) v.fail(at, `spec.${k}`, s[k], `applies only to ${kinds}, not ${type}`)
  }
  only('family', t.kind === 'hash', 'hash types')
  only('hashsize', t.kind === 'hash', 'hash types')
  only('maxelem', t.kind === 'hash', 'hash types')
  only('forceadd', t.kind === 'hash', 'hash types')
  only('range', t.kind === 'bitmap', 'bitmap:port')
  only('size', t.kind === 'list', 'list:set')
  const family = t.kind === 'hash' ? (s.family === undefined ? 'inet' : v.oneOf(at, 'spec.family', s.family, ['inet', 'inet6'] as const)) : undefined
  const data: Record<string, number> = {}
  if (s.hashsize !== undefined) data.hashsize = v.integer(at, 'spec.hashsize', s.hashsize, 1, 0x80000000)
  if (s.maxelem !== undefined) data.maxelem = v.integer(at, 'spec.maxelem', s.maxelem, 1, U32_MAX)
  if (s.size !== undefined) data.size = v.integer(at, 'spec.size', s.size, 1, U32_MAX)
  let range: [number, number] | undefined
  if (t.kind === 'bitmap') {
    if (!Array.isArray(s.range) || s.range.length !== 2) v.fail(at, 'spec.range', s.range, 'must be [first, last] ports')
    const lo = v.port(at, 'spec.range', s.range[0], 0)
    const hi = v.port(at, 'spec.range', s.range[1], 0)
    if (lo > hi) v.fail(at, 'spec.range', s.range, 'must not end before it starts')
    range = [lo, hi]
    data.portFrom = lo
    data.portTo = hi
  }
  if (s.timeout !== undefined) data.timeout = v.integer(at, 'spec.timeout', s.timeout, 0, MAX_TIMEOUT)
  let flags = 0
  const flag = (k: string, bit: number): boolean => {
    if (s[k] === undefined || !v.boolean(at, `spec.${k}`, s[k])) return false
    flags |= bit
    return true
  }
  const info: SetInfo = {
    type,
    ...(family ? { family } : {}),
    timeout: s.timeout !== undefined,
    counters: flag('counters', CADT_WITH_COUNTERS),
    comment: flag('comment', CADT_WITH_COMMENT),
    skbinfo: flag('skbinfo', CADT_WITH_SKBINFO),
    ...(range ? { range } : {}),
  }
  flag('forceadd', CADT_WITH_FORCEADD)
  if (flags) data.flags = flags
  const exist = s.exist !== undefined && v.boolean(at, 'spec.exist', s.exist)
  return {
    wire: { cmd: 'create', name, typename: type, family: family ? NFPROTO[family] : 0, data, ...(exist ? { exist } : {}) },
    info,
  }
}

// ---- output: records ------------------------------------------------------------------

interface RawHeader {
  hashsize?: number
  maxelem?: number
  netmask?: number
  bucketsize?: number
  initval?: number
  portFrom?: number
  portTo?: number
  size?: number
  timeout?: number
  flags?: number
  elements?: number
  references?: number
  memsize?: number
}

/** Members of one dump message, a column per field (NaN / hole where a member lacks it). */
type RawColumns = { count: number } & { [K in (typeof WIRE_FIELDS)[number]]?: ArrayLike<number | string | undefined> }

interface RawSet {
  kind: 'set'
  name: string
  typename?: string
  family?: number
  revision?: number
  header?: RawHeader
  members?: RawColumns
}

function familyOf(nfproto: number | undefined): Family | undefined {
  return nfproto === NFPROTO.inet ? 'inet' : nfproto === NFPROTO.inet6 ? 'inet6' : undefined
}

function infoOf(type: string, nfproto: number | undefined, h: RawHeader): SetInfo {
  const flags = h.flags ?? 0
  const family = familyOf(nfproto)
  return {
    type,
    ...(family && TYPES[type as SetType]?.kind === 'hash' ? { family } : {}),
    timeout: h.timeout !== undefined,
    counters: (flags & CADT_WITH_COUNTERS) !== 0,
    comment: (flags & CADT_WITH_COMMENT) !== 0,
    skbinfo: (flags & CADT_WITH_SKBINFO) !== 0,
    ...(h.portFrom !== undefined && h.portTo !== undefined ? { range: [h.portFrom, h.portTo] as [number, number] } : {}),
  }
}

function recordOf(first: RawSet, members: IpSetEntry[] | undefined): IpSetRecord {
  const h = first.header ?? {}
  const type = first.typename ?? ''
  const flags = h.flags ?? 0
  const family = TYPES[type as SetType]?.kind === 'hash' || !TYPES[type as SetType] ? familyOf(first.family) : undefined
  const r: IpSetRecord = {
    name: first.name,
    type,
    ...(family ? { family } : {}),
    revision: first.revision ?? 0,
    ...(h.hashsize !== undefined ? { hashsize: h.hashsize } : {}),
    ...(h.maxelem !== undefined ? { maxelem: h.maxelem } : {}),
    ...(h.bucketsize !== undefined ? { bucketsize: h.bucketsize } : {}),
    ...(h.initval !== undefined ? { initval: h.initval } : {}),
    ...(h.netmask !== undefined ? { netmask: h.netmask } : {}),
    ...(h.portFrom !== undefined && h.portTo !== undefined ? { range: [h.portFrom, h.portTo] as [number, number] } : {}),
    ...(h.size !== undefined ? { size: h.size } : {}),
    ...(h.timeout !== undefined ? { timeout: h.timeout } : {}),
    counters: (flags & CADT_WITH_COUNTERS) !== 0,
    comment: (flags & CADT_WITH_COMMENT) !== 0,
    skbinfo: (flags & CADT_WITH_SKBINFO) !== 0,
    forceadd: (flags & CADT_WITH_FORCEADD) !== 0,
    references: h.references ?? 0,
    memsize: h.memsize ?? 0,
    entries: h.elements ?? 0,
  }
  if (members) r.members = members
  return r
}

function protocolName(n: number): string {
  return PROTO_NAMES.get(n) ?? String(n)
}

/** Typed entries from the columns of one dump message. */
function membersOf(type: string, c: RawColumns, out: IpSetEntry[]): void {
  const t = TYPES[type as SetType]
  const num = (f: keyof RawColumns, i: number): number | undefined => {
    const col = c[f] as ArrayLike<number | undefined> | undefined
    const x = col?.[i]
    return x === undefined || Number.isNaN(x) ? undefined : x
  }
  const str = (f: keyof RawColumns, i: number): string | undefined => (c[f] as ArrayLike<string | undefined> | undefined)?.[i]
  for (let i = 0; i < c.count; i++) {
    const e: IpSetEntry = {}
    const fields = t?.fields ?? []
    const ipText = str('ip', i)
    const ip2Text = str('ip2', i)
    if (!t) {
      // A type tsproxy does not handle: the raw fields, so nothing is hidden.
      if (ipText !== undefined) e.ip = ipText
      if (num('port', i) !== undefined) e.port = num('port', i)!
      if (num('proto', i) !== undefined) e.protocol = protocolName(num('proto', i)!)
      if (ip2Text !== undefined) e.ip2 = ip2Text
      if (str('name', i) !== undefined) e.set = str('name', i)!
    }
    for (const f of fields) {
      switch (f) {
        case 'ip':
          e.ip = ipText!
          break
        case 'ip2':
          e.ip2 = ip2Text!
          break
        case 'net':
          e.net = t!.net === 'ip' ? `${ipText}/${num('cidr', i)}` : `${ip2Text}/${num('cidr2', i)}`
          break
        case 'protocol':
          e.protocol = protocolName(num('proto', i) ?? 0)
          break
        case 'port':
          e.port = num('port', i) ?? 0
          break
        case 'set':
          e.set = str('name', i) ?? ''
          break
      }
    }
    const timeout = num('timeout', i)
    if (timeout !== undefined) e.timeout = timeout
    const packets = num('packets', i)
    if (packets !== undefined) e.packets = packets
    const bytes = num('bytes', i)
    if (bytes !== undefined) e.bytes = bytes
    const comment = str('comment', i)
    if (comment !== undefined) e.comment = comment
    const skbmark = num('skbmark', i)
    if (skbmark !== undefined) {
      e.skbmark = skbmark
      const mask = num('skbmarkmask', i)
      if (mask !== undefined && mask !== U32_MAX) e.skbmarkmask = mask
    }
    const skbprio = num('skbprio', i)
    if (skbprio !== undefined) e.skbprio = skbprio
    const skbqueue = num('skbqueue', i)
    if (skbqueue !== undefined) e.skbqueue = skbqueue
    if ((num('flags', i) ?? 0) & CADT_NOMATCH) e.nomatch = true
    out.push(e)
  }
}

// ---- the handle ------------------------------------------------------------------------

/** Two independent 32-bit hashes of a string, folded into (h1, h2), then a separator. */
let h1 = 0
let h2 = 0
function mixIn(x: string): void {
  for (let i = 0; i < x.length; i++) {
    const c = x.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 0x01000193) // FNV-1a
    h2 = Math.imul(h2 + c, 0x5bd1e995) ^ (h2 >>> 15) // a murmur-style step
  }
  h1 = Math.imul(h1 ^ 0x7c, 0x01000193)
  h2 = Math.imul(h2 + 0x7c, 0x5bd1e995) ^ (h2 >>> 15)
}

/**
 * Hashes an entry's identity (what entryKey says) into h1, h2: equal entries
 * hash equal; two different entries agree on all 64 bits about never (and if
 * they did, a batch would only be split once more).
 */
function keyHash(w: WireEntry, set: string | undefined): void {
  h1 = 0x811c9dc5
  h2 = 0x2545f491
  // IPv4 hosts have one spelling; anything else goes through its canonical key.
  if (w.ip !== undefined) mixIn(w.cidr === undefined && !w.ip.includes(':') ? w.ip : addressKey(w.ip, w.cidr))
  if (w.ip2 !== undefined) mixIn(w.cidr2 === undefined && !w.ip2.includes(':') ? w.ip2 : addressKey(w.ip2, w.cidr2))
  if (w.name !== undefined) mixIn(w.name)
  if (set !== undefined) mixIn(set)
  const pp = (w.port ?? 0x10000) | ((w.proto ?? 0x100) << 17)
  h1 = Math.imul(h1 ^ pp, 0x01000193)
  h2 = Math.imul(h2 + pp, 0x5bd1e995) ^ (h2 >>> 13)
}

/**
 * Entries by their two hashes, to an int: open addressing in typed arrays (a
 * JavaScript Set or Map of 100k keys cost more than validating them, in
 * hashing and in garbage).
 */
class HashIndex {
  #a = new Int32Array(0)
  #b = new Int32Array(0)
  #v = new Int32Array(0)
  #mask = 0
  #shift = 32
  #count = 0

  constructor(expected: number) {
    let size = 1024
    while (size < expected * 2) size *= 2
    this.#alloc(size)
  }

  #alloc(size: number): void {
    this.#a = new Int32Array(size)
    this.#b = new Int32Array(size)
    this.#v = new Int32Array(size).fill(-1)
    this.#mask = size - 1
    this.#shift = 32 - Math.log2(size)
    this.#count = 0
  }

  #slot(x: number, y: number): number {
    // Fibonacci hashing of both: the top bits of a multiplication spread
    // similar keys (addresses that differ in one digit) over the table.
    let i = Math.imul(x ^ ((y << 7) | (y >>> 25)), 0x9e3779b1) >>> this.#shift
    while (this.#v[i] !== -1 && (this.#a[i] !== x || this.#b[i] !== y)) i = (i + 1) & this.#mask
    return i
  }

  /** The value under (x, y), or -1. */
  get(x: number, y: number): number {
    return this.#v[this.#slot(x, y)]!
  }

  /** Sets (x, y) to a value >= 0. */
  set(x: number, y: number, value: number): void {
    if (this.#count * 2 >= this.#mask) this.#grow()
    const i = this.#slot(x, y)
    if (this.#v[i] === -1) this.#count++
    this.#a[i] = x
    this.#b[i] = y
    this.#v[i] = value
  }

  clear(): void {
    this.#v.fill(-1)
    this.#count = 0
  }

  #grow(): void {
    const [a, b, v] = [this.#a, this.#b, this.#v]
    this.#alloc(v.length * 2)
    for (let i = 0; i < v.length; i++) if (v[i] !== -1) this.set(a[i]!, b[i]!, v[i]!)
  }
}

function sameAddr(x: string | undefined, px: number | undefined, y: string | undefined, py: number | undefined): boolean {
  return x === undefined || y === undefined ? x === y : (x === y && px === py) || addressKey(x, px) === addressKey(y, py)
}

/** Two entries the kernel would take for one (addresses compared as the kernel stores them). */
function sameEntry(a: WireEntry, b: WireEntry): boolean {
  return a.port === b.port && a.proto === b.proto && a.name === b.name && sameAddr(a.ip, a.cidr, b.ip, b.cidr) && sameAddr(a.ip2, a.cidr2, b.ip2, b.cidr2)
}

/**
 * One request's worth of entries of one command on one set: the entries as
 * columns (what native/ipset reads), and which operation each came from. Built
 * entry by entry as a batch is validated, so no per-entry object outlives
 * validation.
 */
class Message {
  readonly indices: number[] = []
  readonly cols: Partial<Record<(typeof WIRE_FIELDS)[number], (string | number | undefined)[]>> = {}
  bytes = 0
  /** Columns so far (an entry with fewer fields leaves holes in the others). */
  private width = 0
  constructor(
    readonly cmd: 'add' | 'del',
    readonly set: string,
    readonly exist: boolean,
    readonly af: number,
    readonly kind: TypeInfo['kind'],
    /** A fallback message of one entry (its error needs no line number). */
    readonly single = false,
  ) {}

  get count(): number {
    return this.indices.length
  }

  fits(cmd: string, set: string, exist: boolean, af: number, size: number): boolean {
    return this.cmd === cmd && this.set === set && this.exist === exist && this.af === af && this.bytes + size <= ADT_BUDGET
  }

  push(index: number, w: WireEntry, size: number): void {
    const n = this.indices.length
    const e = w as unknown as Record<string, string | number | undefined>
    let added = 0
    for (const f in e) {
      if (f === 'af') continue
      let col = this.cols[f as (typeof WIRE_FIELDS)[number]]
      if (!col) {
        col = this.cols[f as (typeof WIRE_FIELDS)[number]] = new Array<undefined>(n).fill(undefined)
        this.width++
      }
      col.push(e[f])
      added++
    }
    this.indices.push(index)
    // A field this entry lacks: a hole (undefined) in its column.
    if (added !== this.width) {
      for (const f in this.cols) {
        const col = this.cols[f as (typeof WIRE_FIELDS)[number]]!
        if (col.length === n) col.push(undefined)
      }
    }
    this.bytes += size
  }

  /** Entry i as a wire entry again (for sending it alone). */
  entry(i: number): WireEntry {
    const w: WireEntry = { af: this.af }
    for (const f in this.cols) {
      const x = this.cols[f as (typeof WIRE_FIELDS)[number]]![i]
      if (x !== undefined) (w as unknown as Record<string, unknown>)[f] = x
    }
    return w
  }

  /** Entries from..end as a message of their own. */
  tail(from: number): Message {
    const m = new Message(this.cmd, this.set, this.exist, this.af, this.kind)
    m.indices.push(...this.indices.slice(from))
    for (const f in this.cols) m.cols[f as (typeof WIRE_FIELDS)[number]] = this.cols[f as (typeof WIRE_FIELDS)[number]]!.slice(from)
    return m
  }

  singles(from: number): Message[] {
    const out: Message[] = []
    for (let i = from; i < this.indices.length; i++) {
      const m = new Message(this.cmd, this.set, this.exist, this.af, this.kind, true)
      m.push(this.indices[i]!, this.entry(i), 0)
      out.push(m)
    }
    return out
  }

  wire(): NativeOp {
    const base: NativeOp = { cmd: this.cmd, name: this.set, ...(this.exist ? { exist: true } : {}) }
    const entries: Record<string, unknown> = { count: this.count, af: this.af }
    for (const f in this.cols) {
      const col = this.cols[f as (typeof WIRE_FIELDS)[number]]!
      // Every entry has it: numbers as a typed array, addresses joined by
      // newlines (read natively without an N-API call per value).
      const complete = !col.includes(undefined)
      entries[f] = !complete ? col : !TEXT_FIELDS.has(f) ? Float64Array.from(col as number[]) : f === 'ip' || f === 'ip2' ? col.join('\n') : col
    }
    return { ...base, entries }
  }
}

/** A batch goes to the socket in slices of about this many entries (or messages, for one-entry fallbacks). */
const PIPELINE_ENTRIES = 4096
const PIPELINE_MESSAGES = 1024

/** Adds to the last message while the entry fits, else starts one. */
function append(msgs: Message[], cmd: 'add' | 'del', set: string, exist: boolean, kind: TypeInfo['kind'], index: number, w: WireEntry): void {
  const size = wireSize(w)
  let m = msgs[msgs.length - 1]
  if (!m || !m.fits(cmd, set, exist, w.af, size)) msgs.push((m = new Message(cmd, set, exist, w.af, kind)))
  m.push(index, w, size)
}

const ok: Outcome = OK

export class IpSet {
  readonly #sock: NetlinkSocket
  readonly #protocol: number
  readonly #sets = new Map<string, SetInfo>()
  readonly #revisions = new Map<string, number>()

  private constructor(sock: NetlinkSocket, protocol: number) {
    this.#sock = sock
    this.#protocol = protocol
  }

  /**
   * Opens a netfilter netlink socket and agrees on the ipset protocol with the
   * kernel; rejects when the kernel has no ipset.
   */
  static async open(): Promise<IpSet> {
    const op = 'ipset.open'
    const noIpset = (): NetlinkError => new NetlinkError({ errno: ENOENT, op, message: 'ENOENT: the kernel has no ipset (load the ip_set module: modprobe ip_set)' })
    let sock: NetlinkSocket
    try {
      sock = NetlinkSocket.open(NETLINK_NETFILTER, op)
    } catch (e) {
      // No nfnetlink at all: the socket family itself is missing.
      throw (e as NetlinkError).errno === 93 /* EPROTONOSUPPORT */ ? noIpset() : e
    }
    try {
      const [r] = await sock.execute<{ kind: string; protocol: number; protocolMin?: number }>('ipset', NFPROTO.inet, [{ cmd: 'protocol', protocol: IPSET_PROTOCOL }], op)
      // nfnetlink without the ipset subsystem answers EINVAL (or EOPNOTSUPP).
      if (r!.error === 22 /* EINVAL */ || r!.error === 95 /* EOPNOTSUPP */ || r!.error === 93 /* EPROTONOSUPPORT */) throw noIpset()
      if (r!.error) throw ipsetError(r!, op, 'protocol')
      const k = r!.records.find((x) => x.kind === 'protocol')
      const kernelMax = k?.protocol ?? 0
      const kernelMin = k?.protocolMin ?? kernelMax
      if (kernelMax < IPSET_PROTOCOL_MIN || kernelMin > IPSET_PROTOCOL)
        throw new NetlinkError({ errno: 4097, op, code: 'IPSET_ERR_PROTOCOL', message: `IPSET_ERR_PROTOCOL: the kernel speaks ipset protocol ${kernelMin}..${kernelMax}, tsproxy ${IPSET_PROTOCOL_MIN}..${IPSET_PROTOCOL}` })
      return new IpSet(sock, Math.min(kernelMax, IPSET_PROTOCOL))
    } catch (e) {
      await sock.close()
      throw e
    }
  }

  /** The ipset protocol version agreed with the kernel. */
  get protocol(): number {
    return this.#protocol
  }

  async #run(wires: NativeOp[], op: string): Promise<NativeResult<RawSet>[]> {
    return this.#sock.execute<RawSet>('ipset', NFPROTO.inet, wires.map((w) => ({ ...w, protocol: this.#protocol })), op)
  }

  async #one(cmd: Cmd, wire: NativeOp, op: string, kind?: TypeInfo['kind']): Promise<NativeResult<RawSet>> {
    const [r] = await this.#run([wire], op)
    if (r!.error) throw ipsetError(r!, op, cmd, kind)
    return r!
  }

  /** The newest revision of a type both this code and the kernel know. */
  async #revision(type: SetType, nfproto: number, op: string): Promise<number> {
    const key = `${type}/${nfproto}`
    const known = this.#revisions.get(key)
    if (known !== undefined) return known
    const r = await this.#one('type', { cmd: 'type', typename: type, family: nfproto }, op)
    const t = r.records.find((x) => (x as { kind: string }).kind === 'type') as unknown as { revision: number; revisionMin: number } | undefined
    if (!t) throw new NetlinkError({ errno: 4098, op, code: 'IPSET_ERR_FIND_TYPE', message: 'IPSET_ERR_FIND_TYPE: the kernel did not describe the type' })
    if (t.revisionMin > TYPES[type].maxRevision)
      throw new NetlinkError({ errno: 4098, op, code: 'IPSET_ERR_FIND_TYPE', message: `IPSET_ERR_FIND_TYPE: the kernel's ${type} starts at revision ${t.revisionMin}, tsproxy knows up to ${TYPES[type].maxRevision}` })
    const rev = Math.min(t.revision, TYPES[type].maxRevision)
    this.#revisions.set(key, rev)
    return rev
  }

  /** What validation needs of each named set (undefined: no such set), from the kernel once. */
  async #infos(names: Iterable<string>, op: string): Promise<Map<string, SetInfo | undefined>> {
    const out = new Map<string, SetInfo | undefined>()
    const missing: string[] = []
    for (const n of names) {
      if (out.has(n)) continue
      const known = this.#sets.get(n)
      out.set(n, known)
      if (!known) missing.push(n)
    }
    if (!missing.length) return out
    const results = await this.#run(missing.map((name) => ({ cmd: 'list', name, flags: FLAG_LIST_HEADER })), op)
    results.forEach((r, i) => {
      const name = missing[i]!
      if (r.error === ENOENT) return
      if (r.error) throw ipsetError(r, op, 'list')
      const rec = r.records.find((x) => x.kind === 'set' && x.typename !== undefined)
      if (!rec) return
      const info = infoOf(rec.typename!, rec.family, rec.header ?? {})
      this.#sets.set(name, info)
      out.set(name, info)
    })
    return out
  }

  async #info(name: string, op: string): Promise<SetInfo> {
    const info = (await this.#infos([name], op)).get(name)
    if (!info) throw ipsetError({ error: ENOENT, records: [] }, op, 'list')
    return info
  }

  /**
   * Forgets what this handle knows of a set's type (or of every set): the next
   * operation reads it from the kernel again. Needed only when another program
   * re-creates a set under the same name with another type.
   */
  forget(name?: string): void {
    if (name === undefined) this.#sets.clear()
    else this.#sets.delete(name)
  }

  async create(spec: CreateSpec): Promise<void> {
    return this.#sock.call('ipset.create', () => this.#create(spec))
  }

  async #create(spec: CreateSpec): Promise<void> {
    const op = 'ipset.create'
    const { wire, info } = createWire({ op }, spec)
    const revision = await this.#revision(spec.type, wire.family, op)
    await this.#one('create', { ...wire, revision }, op)
    this.#sets.set(wire.name, info)
  }

  /** Destroys a set; with `exist`, a missing set is no error (kernels since 6.8; older ones say ENOENT). */
  async destroy(name: string, options: { exist?: boolean } = {}): Promise<void> {
    return this.#sock.call('ipset.destroy', () => this.#destroy(name, options))
  }

  async #destroy(name: string, options: { exist?: boolean } = {}): Promise<void> {
    const op = 'ipset.destroy'
    const n = setName({ op }, 'name', name)
    const exist = existOption({ op }, options)
    this.#sets.delete(n)
    await this.#one('destroy', { cmd: 'destroy', name: n, ...(exist ? { exist: true } : {}) }, op)
  }

  /** Destroys every set of this network namespace (none may be in use). */
  async destroyAll(): Promise<void> {
    return this.#sock.call('ipset.destroyAll', async () => {
      this.#sets.clear()
      await this.#one('destroy', { cmd: 'destroy' }, 'ipset.destroyAll')
    })
  }

  /** Removes every entry of a set. */
  async flush(name: string): Promise<void> {
    return this.#sock.call('ipset.flush', async () => {
      const op = 'ipset.flush'
      await this.#one('flush', { cmd: 'flush', name: setName({ op }, 'name', name) }, op)
    })
  }

  async flushAll(): Promise<void> {
    return this.#sock.call('ipset.flushAll', async () => {
      await this.#one('flush', { cmd: 'flush' }, 'ipset.flushAll')
    })
  }

  async rename(from: string, to: string): Promise<void> {
    return this.#sock.call('ipset.rename', async () => {
      const op = 'ipset.rename'
      const a = setName({ op }, 'from', from)
      const b = setName({ op }, 'to', to)
      const info = this.#sets.get(a)
      this.#sets.delete(a)
      this.#sets.delete(b)
      await this.#one('rename', { cmd: 'rename', name: a, name2: b }, op)
      if (info) this.#sets.set(b, info)
    })
  }

  /** Exchanges the contents (and so the names) of two sets of the same type and family, atomically. */
  async swap(a: string, b: string): Promise<void> {
    return this.#sock.call('ipset.swap', () => this.#swap(a, b))
  }

  async #swap(a: string, b: string): Promise<void> {
    const op = 'ipset.swap'
    const x = setName({ op }, 'a', a)
    const y = setName({ op }, 'b', b)
    const ix = this.#sets.get(x)
    const iy = this.#sets.get(y)
    this.#sets.delete(x)
    this.#sets.delete(y)
    await this.#one('swap', { cmd: 'swap', name: x, name2: y }, op)
    if (ix) this.#sets.set(y, ix)
    if (iy) this.#sets.set(x, iy)
  }

  /** The names of every set, in the kernel's order. */
  async listNames(): Promise<string[]> {
    return this.#sock.call('ipset.listNames', async () => {
      const r = await this.#one('list', { cmd: 'list', flags: FLAG_LIST_SETNAME }, 'ipset.listNames')
      return r.records.filter((x) => x.kind === 'set').map((x) => x.name)
    })
  }

  /** One set's header (no members); rejects with ENOENT when there is no such set. */
  async header(name: string): Promise<IpSetRecord> {
    return this.#sock.call('ipset.header', async () => {
      const op = 'ipset.header'
      const n = setName({ op }, 'name', name)
      const r = await this.#one('list', { cmd: 'list', name: n, flags: FLAG_LIST_HEADER }, op)
      const [rec] = this.#records(r.records, false)
      if (!rec) throw ipsetError({ error: ENOENT, records: [] }, op, 'list')
      return rec
    })
  }

  /** One set with its header and every member; rejects with ENOENT when there is no such set. */
  async list(name: string): Promise<IpSetRecord> {
    return this.#sock.call('ipset.list', async () => {
      const op = 'ipset.list'
      const n = setName({ op }, 'name', name)
      const r = await this.#one('list', { cmd: 'list', name: n }, op)
      const [rec] = this.#records(r.records, true)
      if (!rec) throw ipsetError({ error: ENOENT, records: [] }, op, 'list')
      return rec
    })
  }

  /** Every set with its members (list:set sets last, as the kernel dumps them). */
  async listAll(): Promise<IpSetRecord[]> {
    return this.#sock.call('ipset.listAll', async () => {
      const r = await this.#one('list', { cmd: 'list' }, 'ipset.listAll')
      return this.#records(r.records, true)
    })
  }

  /** Dump messages to records: a set's first message has its header, every message some members. */
  #records(raws: RawSet[], withMembers: boolean): IpSetRecord[] {
    const out: IpSetRecord[] = []
    let cur: { first: RawSet; members: IpSetEntry[] } | undefined
    const flush = (): void => {
      if (!cur) return
      out.push(recordOf(cur.first, withMembers ? cur.members : undefined))
      this.#sets.set(cur.first.name, infoOf(cur.first.typename ?? '', cur.first.family, cur.first.header ?? {}))
    }
    for (const raw of raws) {
      if (raw.kind !== 'set') continue
      if (raw.typename !== undefined) {
        flush()
        cur = { first: raw, members: [] }
      }
      if (cur && raw.members && raw.name === cur.first.name) membersOf(cur.first.typename ?? '', raw.members, cur.members)
    }
    flush()
    return out
  }

  async add(name: string, entry: IpSetEntry, options: { exist?: boolean } = {}): Promise<void> {
    await this.#adt('add', name, entry, options)
  }

  async del(name: string, entry: IpSetEntry, options: { exist?: boolean } = {}): Promise<void> {
    await this.#adt('del', name, entry, options)
  }

  /** Whether the set holds the entry (for net types: that exact network). */
  async test(name: string, entry: IpSetEntry): Promise<boolean> {
    return this.#sock.call('ipset.test', async () => {
      const op = 'ipset.test'
      const n = setName({ op }, 'name', name)
      const info = await this.#info(n, op)
      const wire = entryWire({ op }, info, entry, 'test')
      const [r] = await this.#run([{ cmd: 'test', name: n, entry: wire }], op)
      if (r!.error === IPSET_ERR_EXIST) return false
      if (r!.error) throw this.#fail(r!, op, 'test', n, kindOf(info))
      return true
    })
  }

  async #adt(cmd: 'add' | 'del', name: string, entry: IpSetEntry, options: { exist?: boolean }): Promise<void> {
    return this.#sock.call(`ipset.${cmd}`, async () => {
      const op = `ipset.${cmd}`
      const n = setName({ op }, 'name', name)
      const exist = existOption({ op }, options)
      const info = await this.#info(n, op)
      const wire = entryWire({ op }, info, entry, cmd)
      const [r] = await this.#run([{ cmd, name: n, entry: wire, ...(exist ? { exist } : {}) }], op)
      if (r!.error) throw this.#fail(r!, op, cmd, n, kindOf(info))
    })
  }

  /**
   * A refusal of an entry of a `kind` set, named as that kind numbers its
   * errors (from the request, not from what the handle knows now: the first
   * refusal of a batch may make it forget the set).
   */
  #fail(r: NativeResult<unknown>, op: string, cmd: Cmd, set: string, kind: TypeInfo['kind'], index?: number): NetlinkError {
    // An answer that says our picture of the set is wrong: read it again next time.
    // (4352 is a bitmap's "out of range", a stale range; for hash sets it is "full", and says nothing of the picture.)
    if (r.error === ENOENT || r.error === 4097 || r.error === 4102 || (r.error >= 4107 && r.error <= 4114) || (r.error === 4352 && kind === 'bitmap'))
      this.#sets.delete(set)
    return ipsetError(r, op, cmd, kind, index)
  }

  /**
   * Many adds and deletes in one burst, one result per operation, in order.
   * Every operation is validated first (a bad one throws ValidationError with
   * its index and nothing is sent). Consecutive operations on one set travel
   * together in IPSET_ATTR_ADT messages of up to ~32 KiB (hundreds of entries),
   * each entry numbered: the kernel stops a message at its first failing entry
   * and says which, so that entry gets the error and the rest of the message is
   * sent again. Operations naming a set that does not exist fail with ENOENT
   * without being sent.
   */
  async batch(ops: IpSetOp[]): Promise<Outcome[]> {
    return this.#sock.call('ipset.batch', () => this.#batch(ops))
  }

  async #batch(ops: IpSetOp[]): Promise<Outcome[]> {
    const op = 'ipset.batch'
    if (!Array.isArray(ops)) v.fail({ op }, 'ops', ops, 'must be an array')
    const names = new Set<string>()
    for (let index = 0; index < ops.length; index++) {
      const o = ops[index]!
      if (typeof o === 'object' && o !== null && (o.op === 'add' || o.op === 'del') && names.has(o.set) && (o.exist === undefined || typeof o.exist === 'boolean') &&
        v.unknownField(o as unknown as Record<string, unknown>, OP_FIELDS) === undefined) continue
      const at = { op: `ipset.${(o as { op?: string })?.op ?? 'batch'}`, index }
      v.only(at, 'op', v.object(at, 'op', o), OP_FIELDS)
      v.oneOf(at, 'op', o.op, ['add', 'del'] as const)
      names.add(setName(at, 'set', o.set))
      if (o.exist !== undefined) v.boolean(at, 'exist', o.exist)
    }
    if (ops.length === 0) return []
    const infos = await this.#infos(names, op)
    const outcomes: Outcome[] = new Array(ops.length)
    // The kernel may apply the entries of one burst out of order (a message's
    // tail goes again after later messages): harmless while no entry appears
    // twice. A repeated entry starts a new segment, sent after the previous
    // one has fully completed.
    const segments: Message[][] = [[]]
    const seen = new HashIndex(ops.length)
    const at: Where & { index: number } = { op: 'ipset.add', index: 0 } // one object, refilled: errors copy what they need
    for (let index = 0; index < ops.length; index++) {
      const o = ops[index]!
      at.op = o.op === 'add' ? 'ipset.add' : 'ipset.del'
      at.index = index
      const info = infos.get(o.set)
      if (!info) {
        // Validated as far as it can be without the set's type; the kernel's answer, without asking.
        v.object(at, 'entry', o.entry)
        outcomes[index] = { ok: false, error: ipsetError({ error: ENOENT, records: [] }, at.op, o.op, undefined, index) }
        continue
      }
      // Everything is checked before anything is sent, a slice per turn of the event loop.
      if (index % SLICE === SLICE - 1) await yieldToLoop()
      const w = entryWire(at, info, o.entry, o.op)
      keyHash(w, names.size === 1 ? undefined : o.set)
      if (seen.get(h1 | 0, h2 | 0) >= 0) {
        segments.push([])
        seen.clear()
      }
      seen.set(h1 | 0, h2 | 0, index)
      append(segments[segments.length - 1]!, o.op, o.set, o.exist === true, TYPES[info.type as SetType]!.kind, index, w)
    }
    for (const msgs of segments) await this.#runMessages(msgs, outcomes)
    return outcomes
  }

  /**
   * Sends messages in one burst; a message the kernel stopped at entry L has
   * that entry's outcome set to the error and its rest sent again: twice as a
   * batch, then one message per entry (so many failures in one message cannot
   * cost a round each).
   */
  async #runMessages(msgs: Message[], outcomes: Outcome[]): Promise<void> {
    let queue = msgs.filter((m) => m.count > 0)
    for (let round = 0; queue.length; round++) {
      // In slices of PIPELINE_ENTRIES entries, each handed over as soon as it is
      // encoded: the kernel works on one slice (off the event loop) while the
      // next is encoded, and timers and I/O run between slices. Results come
      // back in order.
      const pending: Promise<NativeResult<RawSet>[]>[] = []
      for (let i = 0; i < queue.length; ) {
        if (i > 0) await yieldToLoop()
        let end = i
        for (let entries = 0; end < queue.length && entries < PIPELINE_ENTRIES && end - i < PIPELINE_MESSAGES; end++) entries += queue[end]!.count
        pending.push(this.#run(queue.slice(i, end).map((m) => m.wire()), 'ipset.batch'))
        i = end
      }
      const results = (await Promise.all(pending)).flat()
      const next: Message[] = []
      // Outcome errors are made by the thousand here, and a stack trace of
      // this loop says nothing about the entry: none is captured.
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 0
      try {
        results.forEach((r, i) => this.#settle(r, queue[i]!, round, outcomes, next))
      } finally {
        Error.stackTraceLimit = limit
      }
      queue = next
    }
  }

  /** One message's result: outcomes for its entries, and what must go again. */
  #settle(r: NativeResult<RawSet>, m: Message, round: number, outcomes: Outcome[], next: Message[]): void {
    if (!r.error) {
      for (const index of m.indices) outcomes[index] = ok
      return
    }
    const fail = (index: number): void => {
      outcomes[index] = { ok: false, error: this.#fail(r, `ipset.${m.cmd}`, m.cmd, m.set, m.kind, index) }
    }
    const line = m.single ? 0 : Number((r.echo as { line?: number } | undefined)?.line ?? 0)
    if (line < 1 || line > m.count) {
      // No line: the whole message was refused (no such set, a socket error).
      m.indices.forEach(fail)
      return
    }
    for (let k = 0; k < line - 1; k++) outcomes[m.indices[k]!] = ok
    fail(m.indices[line - 1]!)
    if (line === m.count) return
    if (round === 0) next.push(m.tail(line))
    else next.push(...m.singles(line))
  }

  /**
   * Makes the set hold exactly `entries`, atomically: a temporary set of the
   * same type is filled, swapped in, and destroyed. If any entry is refused,
   * nothing changes and the first refusal is thrown (with its index).
   */
  async replaceMembers(name: string, entries: IpSetEntry[]): Promise<void> {
    return this.#sock.call('ipset.replaceMembers', async () => {
      const op = 'ipset.replaceMembers'
      const n = setName({ op }, 'name', name)
      if (!Array.isArray(entries)) v.fail({ op }, 'entries', entries, 'must be an array')
      const h = await this.header(n)
      const info = this.#sets.get(n) ?? infoOf(h.type, h.family ? NFPROTO[h.family] : 0, {})
      typeInfo({ op }, 'name', h.type)
      entries.forEach((e, index) => entryWire({ op, index }, info, e, 'add'))
      const tmp = `tsproxy-tmp-${randomBytes(6).toString('hex')}`
      const spec: CreateSpec = { name: tmp, type: h.type as SetType }
      if (h.family) spec.family = h.family
      if (h.hashsize !== undefined) spec.hashsize = h.hashsize
      if (h.maxelem !== undefined) spec.maxelem = h.maxelem
      if (h.range) spec.range = h.range
      if (h.size !== undefined) spec.size = h.size
      if (h.timeout !== undefined) spec.timeout = h.timeout
      if (h.counters) spec.counters = true
      if (h.comment) spec.comment = true
      if (h.skbinfo) spec.skbinfo = true
      if (h.forceadd) spec.forceadd = true
      await this.#create(spec)
      try {
        const outcomes = await this.#batch(entries.map((entry) => ({ op: 'add' as const, set: tmp, entry, exist: true })))
        const bad = outcomes.find((o): o is { ok: false; error: NetlinkError } => !o.ok)
        if (bad) throw bad.error
        await this.#swap(tmp, n)
      } finally {
        await this.#destroy(tmp).catch(() => undefined)
      }
    })
  }

  /**
   * Adds what `entries` has and the set lacks, deletes what the set has and
   * `entries` lacks (entries compare as the kernel compares them: by address,
   * network, protocol, port, set name; not by timeout or comment). One listing,
   * then one batch.
   */
  async syncMembers(name: string, entries: IpSetEntry[]): Promise<SyncResult> {
    return this.#sock.call('ipset.syncMembers', async () => {
      const op = 'ipset.syncMembers'
      const n = setName({ op }, 'name', name)
      if (!Array.isArray(entries)) v.fail({ op }, 'entries', entries, 'must be an array')
      const info = await this.#info(n, op)
      const kind = TYPES[info.type as SetType]!.kind
      const af = info.family === 'inet6' ? NFPROTO.inet6 : NFPROTO.inet

      // What the set holds, as the dump's columns: indexed by hash, rebuilt as
      // wire entries only where needed (a match to confirm, a delete to send).
      const listed = (await this.#one('list', { cmd: 'list', name: n }, op)).records.filter((x) => x.kind === 'set' && x.name === n)
      const cols = listed.flatMap((x) => (x.members ? [x.members] : []))
      const total = cols.reduce((sum, c) => sum + c.count, 0)
      const colOf = new Int32Array(total)
      const rowOf = new Int32Array(total)
      const held = new HashIndex(total)
      for (let c = 0, k = 0; c < cols.length; c++) {
        for (let i = 0; i < cols[c]!.count; i++, k++) {
          keyHash(memberWire(cols[c]!, i, af), undefined)
          colOf[k] = c
          rowOf[k] = i
          held.set(h1 | 0, h2 | 0, k)
        }
      }
      const member = (k: number): WireEntry => memberWire(cols[colOf[k]!]!, rowOf[k]!, af)

      // What should be there: validated whole before anything is sent.
      const kept = new Uint8Array(total)
      const wanted = new HashIndex(entries.length)
      const adds: WireEntry[] = []
      let unchanged = 0
      const at: Where & { index: number } = { op, index: 0 }
      for (let j = 0; j < entries.length; j++) {
        if (j % SLICE === SLICE - 1) await yieldToLoop()
        at.index = j
        const w = entryWire(at, info, entries[j], 'add')
        keyHash(w, undefined)
        const x = h1 | 0
        const y = h2 | 0
        const first = wanted.get(x, y)
        if (first >= 0 && sameEntry(w, entryWire(at, info, entries[first], 'add'))) continue // given twice
        if (first < 0) wanted.set(x, y, j)
        const k = held.get(x, y)
        if (k >= 0 && sameEntry(w, member(k))) {
          kept[k] = 1
          unchanged++
        } else {
          adds.push(w)
        }
      }
      // Deletes first: should two different entries ever share both hashes, the
      // one deleted by mistake is the one added back.
      const msgs: Message[] = []
      const cmds: ('add' | 'del')[] = []
      for (let k = 0; k < total; k++) {
        if (kept[k]) continue
        append(msgs, 'del', n, true, kind, cmds.length, member(k))
        cmds.push('del')
      }
      for (const w of adds) {
        append(msgs, 'add', n, true, kind, cmds.length, w)
        cmds.push('add')
      }
      // Each entry is either deleted or added, once: one segment.
      const outcomes: Outcome[] = new Array(cmds.length)
      await this.#runMessages(msgs, outcomes)
      const errors: NetlinkError[] = []
      let added = 0
      let deleted = 0
      outcomes.forEach((o, i) => {
        if (!o.ok) errors.push(o.error)
        else if (cmds[i] === 'add') added++
        else deleted++
      })
      return { added, deleted, unchanged, errors }
    })
  }

  /** Every call started before it finishes first (all of its requests); later calls reject with EBADF. */
  async close(): Promise<void> {
    await this.#sock.close()
  }
}

/** The key fields of member i of a dump's columns, as a wire entry (no validation: the kernel's own data). */
function memberWire(c: RawColumns, i: number, af: number): WireEntry {
  const w: WireEntry = { af }
  const text = (f: 'ip' | 'ip2' | 'name'): string | undefined => (c[f] as ArrayLike<string | undefined> | undefined)?.[i]
  const num = (f: 'cidr' | 'cidr2' | 'port' | 'proto'): number | undefined => {
    const x = (c[f] as ArrayLike<number> | undefined)?.[i]
    return x === undefined || Number.isNaN(x) ? undefined : x
  }
  const ip = text('ip')
  if (ip !== undefined) w.ip = ip
  const cidr = num('cidr')
  if (cidr !== undefined) w.cidr = cidr
  const port = num('port')
  if (port !== undefined) w.port = port
  const proto = num('proto')
  if (proto !== undefined) w.proto = proto
  const ip2 = text('ip2')
  if (ip2 !== undefined) w.ip2 = ip2
  const cidr2 = num('cidr2')
  if (cidr2 !== undefined) w.cidr2 = cidr2
  const name = text('name')
  if (name !== undefined) w.name = name
  return w
}
