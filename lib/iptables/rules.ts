// The typed rule model of tsproxy's iptables API, and its two directions:
// validate + lay out a rule as the kernel's entry (struct ipt_entry or
// ip6t_entry, each match and target with the revision iptables-legacy 1.8
// writes, byte for byte), and read an entry back into the same typed record.
// Extensions we do not model read back as { match: 'raw' } / { target: 'raw' }
// and write back unchanged.
import { isIPv6 } from 'node:net'
import { endianness } from 'node:os'
import { addressBytes, formatAddress } from '../address.js'
import { NetlinkError } from '../errors.js'
import type { Family, Where } from '../validate.js'
import * as v from '../validate.js'
import {
  CONNTRACK,
  ENTRY4,
  ENTRY6,
  type EntryLayout,
  EXT,
  IFNAMSIZ,
  INV_DSTIP,
  INV_FRAG,
  INV_PROTO,
  INV_SRCIP,
  INV_VIA_IN,
  INV_VIA_OUT,
  IP6T_F_GOTO,
  IP6T_F_PROTO,
  IPT_F_FRAG,
  IPT_F_GOTO,
  MULTIPORT,
  NAT_COMPAT,
  NAT_RANGE,
  PHYSDEV,
  RECENT,
  SET,
  STATISTIC,
  XT_HEADER,
  XT_NAME_LEN,
} from './layout.js'

if (endianness() !== 'LE') throw new Error('tsproxy iptables: the entry layouts are written for little-endian hosts')

// ---- the model ------------------------------------------------------------------------

/** A criterion, or its negation (iptables' `!`). */
export type Not<T> = T | { not: T }

/** A port, or an inclusive range [first, last]. */
export type PortRange = number | readonly [number, number]

export type IptablesProtocol = 'tcp' | 'udp' | 'udplite' | 'sctp' | 'dccp' | 'icmp' | 'icmpv6' | 'esp' | 'ah' | 'gre' | number

export type TcpFlag = 'FIN' | 'SYN' | 'RST' | 'PSH' | 'ACK' | 'URG'
export type SetDirection = 'src' | 'dst'
export type AddrType =
  | 'UNSPEC' | 'UNICAST' | 'LOCAL' | 'BROADCAST' | 'ANYCAST' | 'MULTICAST'
  | 'BLACKHOLE' | 'UNREACHABLE' | 'PROHIBIT' | 'THROW' | 'NAT' | 'XRESOLVE'
export type CtState = 'INVALID' | 'ESTABLISHED' | 'RELATED' | 'NEW' | 'SNAT' | 'DNAT' | 'UNTRACKED'
export type CtStatus = 'EXPECTED' | 'SEEN_REPLY' | 'ASSURED' | 'CONFIRMED'
export type RecentCommand = 'set' | 'rcheck' | 'update' | 'remove'
export type RejectWith =
  | 'icmp-net-unreachable' | 'icmp-host-unreachable' | 'icmp-proto-unreachable' | 'icmp-port-unreachable'
  | 'icmp-net-prohibited' | 'icmp-host-prohibited' | 'icmp-admin-prohibited' | 'tcp-reset'
  | 'icmp6-no-route' | 'icmp6-adm-prohibited' | 'icmp6-addr-unreachable' | 'icmp6-port-unreachable'
  | 'icmp6-policy-fail' | 'icmp6-reject-route'

/** An extension we do not model: its name, revision and data bytes (hex), kept as they are. */
export interface RawExtension {
  name: string
  revision: number
  data: string
}

export type Match =
  | { match: 'comment'; comment: string }
  | { match: 'tcp'; sport?: Not<PortRange>; dport?: Not<PortRange>; tcpFlags?: Not<{ mask: TcpFlag[]; set: TcpFlag[] }> }
  | { match: 'udp'; sport?: Not<PortRange>; dport?: Not<PortRange> }
  /** One of sports, dports, ports (either direction); up to 15 ports, a range counting two. */
  | { match: 'multiport'; sports?: Not<PortRange[]>; dports?: Not<PortRange[]>; ports?: Not<PortRange[]> }
  | { match: 'statistic'; mode: 'random'; probability: Not<number> }
  /** Every `every`-th packet, starting with packet number `packet` (0-based, default 0). */
  | { match: 'statistic'; mode: 'nth'; every: Not<number>; packet?: number }
  /** `--match-set NAME dst,dst,src`: one direction per dimension of the set. */
  | { match: 'set'; matchSet: Not<string>; flags: SetDirection[]; returnNomatch?: true }
  | { match: 'mark'; mark: Not<number>; mask?: number }
  | { match: 'addrtype'; srcType?: Not<AddrType | AddrType[]>; dstType?: Not<AddrType | AddrType[]>; limitIfaceIn?: true; limitIfaceOut?: true }
  | ConntrackMatch
  | {
      match: 'recent'
      command: Not<RecentCommand>
      /** The list's name, default 'DEFAULT'. */
      name?: string
      seconds?: number
      /** `--hitcount`. */
      hitcount?: number
      rttl?: true
      reap?: true
      /** Which address is remembered: 'source' (the default, --rsource) or 'dest' (--rdest). */
      side?: 'source' | 'dest'
      /** A netmask address applied before remembering (default all ones). */
      mask?: string
    }
  | {
      match: 'physdev'
      physdevIn?: Not<string>
      physdevOut?: Not<string>
      physdevIsIn?: Not<true>
      physdevIsOut?: Not<true>
      physdevIsBridged?: Not<true>
    }
  | ({ match: 'raw' } & RawExtension)

export interface ConntrackMatch {
  match: 'conntrack'
  ctstate?: Not<CtState[]>
  ctproto?: Not<IptablesProtocol>
  /** An address, or a network 'address/prefix'. */
  ctorigsrc?: Not<string>
  ctorigdst?: Not<string>
  ctreplsrc?: Not<string>
  ctrepldst?: Not<string>
  ctorigsrcport?: Not<PortRange>
  ctorigdstport?: Not<PortRange>
  ctreplsrcport?: Not<PortRange>
  ctrepldstport?: Not<PortRange>
  ctstatus?: Not<CtStatus[]>
  /** Remaining lifetime in seconds, or a range. */
  ctexpire?: Not<PortRange>
  ctdir?: 'ORIGINAL' | 'REPLY'
}

export type Verdict = 'ACCEPT' | 'DROP' | 'RETURN' | 'QUEUE'
export type MarkOp = 'set-xmark' | 'set-mark' | 'and' | 'or' | 'xor'

export type Target =
  | { jump: string }
  | { goto: string }
  | { target: Verdict }
  | { target: 'REJECT'; rejectWith?: RejectWith }
  /** toDestination as iptables writes it: '10.0.0.1', '10.0.0.1:8080', '10.0.0.1-10.0.0.9:80-90', '[fd00::1]:80', ':8080'. */
  | { target: 'DNAT'; toDestination: string; random?: true; persistent?: true }
  | { target: 'SNAT'; toSource: string; random?: true; randomFully?: true; persistent?: true }
  | { target: 'MASQUERADE'; toPorts?: PortRange; random?: true; randomFully?: true }
  /**
   * The kernel keeps one form, mark = (mark & ~mask) ^ value: every op reads
   * back as 'set-xmark' (set-mark v/m is value v, mask m|v; or v: v/v;
   * and v: 0/~v; xor v: v/0). The mask defaults to 0xffffffff.
   */
  | { target: 'MARK'; op: MarkOp; value: number; mask?: number }
  | { target: 'LOG'; prefix?: string; level?: number; tcpSequence?: true; tcpOptions?: true; ipOptions?: true; uid?: true; macDecode?: true }
  | ({ target: 'raw' } & RawExtension)

export interface Rule {
  /** An address or network: '10.0.0.0/8', '10.1.2.3' (read back as '10.1.2.3/32'). */
  source?: Not<string>
  destination?: Not<string>
  /** An interface name; a trailing '+' matches every name with that prefix. */
  inInterface?: Not<string>
  outInterface?: Not<string>
  protocol?: Not<IptablesProtocol>
  /** IPv4 only: second and further fragments (-f). */
  fragment?: Not<true>
  /** In order: iptables-save prints them in this order. */
  matches?: Match[]
  /** Without a target the rule only counts (and falls through). */
  target?: Target
}

export interface Counters {
  packets: number
  bytes: number
}

/** A rule as read back from the kernel: the same shape, in canonical form, with its counters. */
export interface RuleRecord extends Rule {
  counters: Counters
}

// ---- constants of the kernel headers --------------------------------------------------------

const PROTOCOLS: Record<string, number> = {
  icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, icmpv6: 58, sctp: 132, udplite: 136, dccp: 33,
}
const PROTOCOL_NAMES = new Map(Object.entries(PROTOCOLS).map(([k, n]) => [n, k]))
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136])

const TCP_FLAGS: Record<TcpFlag, number> = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 }
const ADDRTYPES: AddrType[] = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE']
// XT_CONNTRACK_STATE_BIT(IP_CT_*) and the three extra states of xt_conntrack.h.
const CT_STATES: Record<CtState, number> = { INVALID: 1 << 0, ESTABLISHED: 1 << 1, RELATED: 1 << 2, NEW: 1 << 3, SNAT: 1 << 6, DNAT: 1 << 7, UNTRACKED: 1 << 8 }
const CT_STATUS: Record<CtStatus, number> = { EXPECTED: 1 << 0, SEEN_REPLY: 1 << 1, ASSURED: 1 << 2, CONFIRMED: 1 << 3 }
const CT = {
  STATE: 1 << 0, PROTO: 1 << 1, ORIGSRC: 1 << 2, ORIGDST: 1 << 3, REPLSRC: 1 << 4, REPLDST: 1 << 5,
  STATUS: 1 << 6, EXPIRES: 1 << 7, ORIGSRC_PORT: 1 << 8, ORIGDST_PORT: 1 << 9, REPLSRC_PORT: 1 << 10,
  REPLDST_PORT: 1 << 11, DIRECTION: 1 << 12,
}
const RECENT_CMD: Record<RecentCommand, number> = { rcheck: 1, set: 2, update: 4, remove: 8 }
const RECENT_TTL = 16
const RECENT_REAP = 32
const PHYSDEV_OP = { in: 1, out: 2, bridged: 4, isIn: 8, isOut: 16 }
const NAT_MAP_IPS = 1
const NAT_PROTO_SPECIFIED = 2
const NAT_PROTO_RANDOM = 4
const NAT_PERSISTENT = 8
const NAT_PROTO_RANDOM_FULLY = 16
const LOG_FLAGS = { tcpSequence: 0x01, tcpOptions: 0x02, ipOptions: 0x04, uid: 0x08, macDecode: 0x20 } as const
const REJECT4: RejectWith[] = ['icmp-net-unreachable', 'icmp-host-unreachable', 'icmp-proto-unreachable', 'icmp-port-unreachable', 'echo-reply' as RejectWith, 'icmp-net-prohibited', 'icmp-host-prohibited', 'tcp-reset', 'icmp-admin-prohibited']
const REJECT6: RejectWith[] = ['icmp6-no-route', 'icmp6-adm-prohibited', 'not-neighbour' as RejectWith, 'icmp6-addr-unreachable', 'icmp6-port-unreachable', 'echo-reply' as RejectWith, 'tcp-reset', 'icmp6-policy-fail', 'icmp6-reject-route']
const VERDICTS: Verdict[] = ['ACCEPT', 'DROP', 'RETURN', 'QUEUE']
const TARGET_NAMES = ['ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'REJECT', 'DNAT', 'SNAT', 'MASQUERADE', 'MARK', 'LOG', 'raw'] as const
export const BUILTIN_CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const
const SET_NAME_SIZE = 32 // IPSET_MAXNAMELEN
const COMMENT_SIZE = 256 // XT_MAX_COMMENT_LEN
const LOG_PREFIX_SIZE = 30
const U32 = 0xffffffff
export const TABLES = ['nat', 'filter', 'mangle', 'raw'] as const
export type IptablesTable = (typeof TABLES)[number]

// ---- chain names ---------------------------------------------------------------------------

/** A chain name iptables accepts: 1..28 bytes, printable, no blank, not an option or a verdict. */
export function chainName(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) v.fail(at, field, value, 'must be a non-empty chain name')
  if (Buffer.byteLength(value) > XT_NAME_LEN - 1) v.fail(at, field, value, `is longer than ${XT_NAME_LEN - 1} bytes (XT_EXTENSION_MAXNAMELEN)`)
  if (!/^[\x21-\x7e]+$/.test(value)) v.fail(at, field, value, 'must be printable ASCII without blanks')
  if (value.startsWith('-') || value.startsWith('!')) v.fail(at, field, value, "must not start with '-' or '!'")
  if ((TARGET_NAMES as readonly string[]).includes(value)) v.fail(at, field, value, 'is the name of a target')
  return value
}

export function isBuiltin(chain: string): boolean {
  return (BUILTIN_CHAINS as readonly string[]).includes(chain)
}

// ---- encoding: validation to a plan, then bytes -----------------------------------------------

/** One match or target, validated and ready to be written. */
export interface ExtPlan {
  name: string
  revision: number
  size: number // data bytes, XT_ALIGN'd
  user: number // userspacesize
  write(b: Buffer, o: number): void
  /** An ipset name whose index goes at data offset 0. */
  set?: string
}

export interface RulePlan {
  family: Family
  src?: { bytes: Uint8Array; mask: Uint8Array }
  dst?: { bytes: Uint8Array; mask: Uint8Array }
  iniface?: string
  outiface?: string
  proto: number
  flags: number
  invflags: number
  matches: ExtPlan[]
  target: ExtPlan
}

/** A rule laid out: the entry's bytes, the mask `iptables -D` would compare with, the set names to resolve. */
export interface EncodedRule {
  entry: Buffer
  mask: Buffer
  /** Offsets in `entry` of u16 ipset indexes, and the set to look up for each. */
  sets: { offset: number; name: string }[]
}

export interface RuleContext {
  family: Family
  table: IptablesTable
}

type Obj = Record<string, unknown>

const isNot = (x: unknown): x is { not: unknown } =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && Object.keys(x).length === 1 && 'not' in x

function unwrap(x: unknown): { value: unknown; not: boolean } {
  return isNot(x) ? { value: x.not, not: true } : { value: x, not: false }
}

function only(at: Where, field: string, o: Obj, allowed: readonly string[]): void {
  for (const k in o) if (o[k] !== undefined && !allowed.includes(k)) v.fail(at, `${field}.${k}`, o[k], 'is not a known option')
}

function yes(at: Where, field: string, value: unknown): boolean {
  if (value === undefined) return false
  if (value !== true) v.fail(at, field, value, 'must be true when given')
  return true
}

function protocolNumber(at: Where, field: string, value: unknown): number {
  if (typeof value === 'number') return v.integer(at, field, value, 0, 255)
  if (typeof value === 'string') {
    const n = value === 'all' ? 0 : value === 'ipv6-icmp' ? 58 : PROTOCOLS[value]
    if (n !== undefined) return n
  }
  return v.fail(at, field, value, `must be a protocol number 0..255 or one of ${Object.keys(PROTOCOLS).join(', ')}`)
}

function portRange(at: Where, field: string, value: unknown): [number, number] {
  if (typeof value === 'number') {
    const p = v.integer(at, field, value, 0, 65535)
    return [p, p]
  }
  if (Array.isArray(value) && value.length === 2) {
    const lo = v.integer(at, `${field}[0]`, value[0], 0, 65535)
    const hi = v.integer(at, `${field}[1]`, value[1], 0, 65535)
    if (lo > hi) v.fail(at, field, value, 'must be a range [first, last] with first <= last')
    return [lo, hi]
  }
  return v.fail(at, field, value, 'must be a port 0..65535 or a range [first, last]')
}

/**
 * Dotted-quad IPv4 as node:net's isIPv4 accepts it (no leading zeros), into
 * `out` at `o`; false when `s` is not one. By hand: rules carry many addresses.
 */
function parseIPv4(s: string, out: Uint8Array, o = 0): boolean {
  let part = 0
  let digits = 0
  let value = 0
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46 // a final '.'
    if (c === 46) {
      if (digits === 0 || part > 3) return false
      out[o + part++] = value
      digits = 0
      value = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false // leading zero
      value = value * 10 + (c - 48)
      if (++digits > 3 || value > 255) return false
    } else return false
  }
  return part === 4
}

function addressOf(at: Where, field: string, value: unknown, family: Family): Uint8Array {
  if (typeof value !== 'string') v.fail(at, field, value, 'must be an IP address string')
  if (family === 'inet') {
    const b = new Uint8Array(4)
    if (parseIPv4(value, b)) return b
  }
  v.address(at, field, value, family)
  return addressBytes(value)!
}

/** 'a.b.c.d', 'a.b.c.d/len', IPv6 likewise: the address and the prefix's mask (masked address when `mask`). */
function cidr(at: Where, field: string, value: unknown, family: Family, applyMask: boolean): { bytes: Uint8Array; mask: Uint8Array; prefix: number } {
  if (typeof value !== 'string') v.fail(at, field, value, `must be an address or network string ('10.0.0.0/8')`)
  const slash = value.indexOf('/')
  const addr = slash < 0 ? value : value.slice(0, slash)
  const max = family === 'inet' ? 32 : 128
  let prefix = max
  if (slash >= 0) {
    const p = value.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) v.fail(at, field, value, `has a prefix length outside 0..${max}`)
    prefix = Number(p)
  }
  let bytes: Uint8Array
  if (family === 'inet') {
    bytes = new Uint8Array(4)
    if (!parseIPv4(addr, bytes)) v.fail(at, field, value, 'is not an IPv4 address or network')
  } else {
    if (!isIPv6(addr)) v.fail(at, field, value, 'is not an IPv6 address or network')
    bytes = addressBytes(addr)!
  }
  const mask = prefixMask(prefix, max / 8)
  if (applyMask) for (let i = 0; i < bytes.length; i++) bytes[i]! &= mask[i]!
  return { bytes, mask, prefix }
}

const masks = new Map<number, Uint8Array>()
/** The mask of a prefix length (shared: never written to). */
function prefixMask(prefix: number, len: number): Uint8Array {
  const key = len * 256 + prefix
  let m = masks.get(key)
  if (!m) {
    m = new Uint8Array(len)
    for (let i = 0; i < len; i++) m[i] = (0xff00 >> Math.max(0, Math.min(8, prefix - i * 8))) & 0xff
    masks.set(key, m)
  }
  return m
}

function iface(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) v.fail(at, field, value, 'must be an interface name')
  if (Buffer.byteLength(value) > IFNAMSIZ - 1) v.fail(at, field, value, `is longer than ${IFNAMSIZ - 1} bytes (IFNAMSIZ)`)
  if (/[\s/]/.test(value) || value.includes('\0')) v.fail(at, field, value, "must not contain '/' or blanks")
  return value
}

/** xtables_parse_interface: the name (with its '+'), and 0xff over what must match. */
function writeIface(b: Buffer, nameAt: number, maskAt: number, name: string): void {
  b.write(name, nameAt, 'latin1')
  const len = name.length
  b.fill(0xff, maskAt, maskAt + (name.endsWith('+') ? len - 1 : len + 1))
}

function str(at: Where, field: string, value: unknown, size: number, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0)) v.fail(at, field, value, 'must be a non-empty string')
  if (value.includes('\0')) v.fail(at, field, value, 'must not contain NUL')
  if (Buffer.byteLength(value) > size - 1) v.fail(at, field, value, `is longer than ${size - 1} bytes`)
  return value
}

function ext(name: string, spec: { revision: number; size: number; user: number }, write: (b: Buffer, o: number) => void, set?: string): ExtPlan {
  return { name, revision: spec.revision, size: spec.size, user: spec.user, write, ...(set === undefined ? {} : { set }) }
}

function portsFor(at: Where, field: string, plan: RulePlan, what: string): void {
  if (!PORT_PROTOCOLS.has(plan.proto) || plan.invflags & INV_PROTO)
    v.fail(at, field, undefined, `needs the rule's protocol to be tcp, udp, udplite, sctp or dccp (${what})`)
}

// ---- matches ---------------------------------------------------------------------------------

function matchPlan(at: Where, field: string, value: unknown, plan: RulePlan): ExtPlan {
  const m = v.object(at, field, value)
  const family = plan.family
  switch (m.match) {
    case 'comment': {
      only(at, field, m, ['match', 'comment'])
      const text = str(at, `${field}.comment`, m.comment, COMMENT_SIZE, true)
      return ext('comment', EXT.comment, (b, o) => void b.write(text, o, 'utf8'))
    }
    case 'tcp':
    case 'udp': {
      const tcp = m.match === 'tcp'
      only(at, field, m, tcp ? ['match', 'sport', 'dport', 'tcpFlags'] : ['match', 'sport', 'dport'])
      if (plan.proto !== (tcp ? 6 : 17) || plan.invflags & INV_PROTO)
        v.fail(at, `${field}.match`, m.match, `needs the rule's protocol to be ${m.match} (iptables: -p ${m.match})`)
      const sp = unwrap(m.sport)
      const dp = unwrap(m.dport)
      const sports = sp.value === undefined ? [0, 65535] : portRange(at, `${field}.sport`, sp.value)
      const dports = dp.value === undefined ? [0, 65535] : portRange(at, `${field}.dport`, dp.value)
      let inv = (sp.not ? 1 : 0) | (dp.not ? 2 : 0)
      let flgMask = 0
      let flgCmp = 0
      if (tcp && m.tcpFlags !== undefined) {
        const f = unwrap(m.tcpFlags)
        const fo = v.object(at, `${field}.tcpFlags`, f.value)
        flgMask = tcpFlagBits(at, `${field}.tcpFlags.mask`, fo.mask)
        flgCmp = tcpFlagBits(at, `${field}.tcpFlags.set`, fo.set)
        if (f.not) inv |= 0x04 // XT_TCP_INV_FLAGS
      }
      return ext(m.match, tcp ? EXT.tcp : EXT.udp, (b, o) => {
        b.writeUInt16LE(sports[0]!, o)
        b.writeUInt16LE(sports[1]!, o + 2)
        b.writeUInt16LE(dports[0]!, o + 4)
        b.writeUInt16LE(dports[1]!, o + 6)
        if (tcp) {
          b[o + 9] = flgMask
          b[o + 10] = flgCmp
          b[o + 11] = inv
        } else {
          b[o + 8] = inv
        }
      })
    }
    case 'multiport': {
      only(at, field, m, ['match', 'sports', 'dports', 'ports'])
      const given = (['sports', 'dports', 'ports'] as const).filter((k) => m[k] !== undefined)
      if (given.length !== 1) v.fail(at, field, value, 'needs exactly one of sports, dports, ports')
      const key = given[0]!
      portsFor(at, `${field}.${key}`, plan, 'multiport')
      const { value: list, not } = unwrap(m[key])
      if (!Array.isArray(list) || list.length === 0) v.fail(at, `${field}.${key}`, list, 'must be a non-empty array of ports and ranges')
      const ports: number[] = []
      const pflags: number[] = []
      list.forEach((p, i) => {
        const [lo, hi] = portRange(at, `${field}.${key}[${i}]`, p)
        if (Array.isArray(p)) {
          ports.push(lo, hi)
          pflags.push(1, 0)
        } else {
          ports.push(lo)
          pflags.push(0)
        }
      })
      if (ports.length > MULTIPORT.max) v.fail(at, `${field}.${key}`, list, `holds more than ${MULTIPORT.max} ports (a range counts two)`)
      const flags = key === 'sports' ? 0 : key === 'dports' ? 1 : 2 // XT_MULTIPORT_SOURCE, _DESTINATION, _EITHER
      return ext('multiport', EXT.multiport, (b, o) => {
        b[o + MULTIPORT.flags] = flags
        b[o + MULTIPORT.count] = ports.length
        ports.forEach((p, i) => b.writeUInt16LE(p, o + MULTIPORT.ports + 2 * i))
        pflags.forEach((f, i) => (b[o + MULTIPORT.pflags + i] = f))
        b[o + MULTIPORT.invert] = not ? 1 : 0
      })
    }
    case 'statistic': {
      if (m.mode === 'random') {
        only(at, field, m, ['match', 'mode', 'probability'])
        const { value: p, not } = unwrap(m.probability)
        if (typeof p !== 'number' || !(p >= 0 && p <= 1)) v.fail(at, `${field}.probability`, p, 'must be a number from 0 to 1')
        // As iptables: lround(0x80000000 * p), read back as bits / 2^31.
        const bits = Math.round(0x80000000 * p)
        return ext('statistic', EXT.statistic, (b, o) => {
          b.writeUInt16LE(0, o + STATISTIC.mode)
          b.writeUInt16LE(not ? 1 : 0, o + STATISTIC.flags)
          b.writeUInt32LE(bits, o + STATISTIC.every)
          b.writeUInt32LE(bits, o + STATISTIC.count) // iptables: count = every - packet, whatever the mode
        })
      }
      if (m.mode === 'nth') {
        only(at, field, m, ['match', 'mode', 'every', 'packet'])
        const { value: e, not } = unwrap(m.every)
        const every = v.integer(at, `${field}.every`, e, 1, U32)
        const packet = m.packet === undefined ? 0 : v.integer(at, `${field}.packet`, m.packet, 0, every - 1)
        return ext('statistic', EXT.statistic, (b, o) => {
          b.writeUInt16LE(1, o + STATISTIC.mode)
          b.writeUInt16LE(not ? 1 : 0, o + STATISTIC.flags)
          b.writeUInt32LE(every - 1, o + STATISTIC.every)
          b.writeUInt32LE(packet, o + STATISTIC.packet)
          b.writeUInt32LE(every - 1 - packet, o + STATISTIC.count)
        })
      }
      return v.fail(at, `${field}.mode`, m.mode, "must be 'random' or 'nth'")
    }
    case 'set': {
      only(at, field, m, ['match', 'matchSet', 'flags', 'returnNomatch'])
      const { value: name, not } = unwrap(m.matchSet)
      const set = str(at, `${field}.matchSet`, name, SET_NAME_SIZE)
      if (!Array.isArray(m.flags) || m.flags.length < 1 || m.flags.length > 6)
        v.fail(at, `${field}.flags`, m.flags, "must be 1 to 6 of 'src' / 'dst', one per dimension of the set")
      let flags = not ? 1 : 0 // IPSET_INV_MATCH
      m.flags.forEach((d, i) => {
        if (v.oneOf(at, `${field}.flags[${i}]`, d, ['src', 'dst'] as const) === 'src') flags |= 1 << (i + 1)
      })
      const dim = m.flags.length
      const nomatch = yes(at, `${field}.returnNomatch`, m.returnNomatch)
      return ext('set', EXT.set, (b, o) => {
        b[o + SET.dim] = dim
        b[o + SET.flags] = flags
        if (nomatch) b.writeUInt32LE(1 << 7, o + SET.matchFlags) // IPSET_FLAG_RETURN_NOMATCH
      }, set)
    }
    case 'mark': {
      only(at, field, m, ['match', 'mark', 'mask'])
      const { value: mark, not } = unwrap(m.mark)
      const value = v.integer(at, `${field}.mark`, mark, 0, U32)
      const mask = m.mask === undefined ? U32 : v.integer(at, `${field}.mask`, m.mask, 0, U32)
      return ext('mark', EXT.mark, (b, o) => {
        b.writeUInt32LE(value, o)
        b.writeUInt32LE(mask, o + 4)
        b[o + 8] = not ? 1 : 0
      })
    }
    case 'addrtype': {
      only(at, field, m, ['match', 'srcType', 'dstType', 'limitIfaceIn', 'limitIfaceOut'])
      const s = unwrap(m.srcType)
      const d = unwrap(m.dstType)
      const src = s.value === undefined ? 0 : addrTypeBits(at, `${field}.srcType`, s.value)
      const dst = d.value === undefined ? 0 : addrTypeBits(at, `${field}.dstType`, d.value)
      const inIf = yes(at, `${field}.limitIfaceIn`, m.limitIfaceIn)
      const outIf = yes(at, `${field}.limitIfaceOut`, m.limitIfaceOut)
      if (inIf && outIf) v.fail(at, `${field}.limitIfaceOut`, true, 'cannot go with limitIfaceIn')
      if (!src && !dst) v.fail(at, field, value, 'needs srcType or dstType')
      const flags = (s.not ? 1 : 0) | (d.not ? 2 : 0) | (inIf ? 4 : 0) | (outIf ? 8 : 0)
      return ext('addrtype', EXT.addrtype, (b, o) => {
        b.writeUInt16LE(src, o)
        b.writeUInt16LE(dst, o + 2)
        b.writeUInt32LE(flags, o + 4)
      })
    }
    case 'conntrack':
      return conntrackPlan(at, field, m, family)
    case 'recent': {
      only(at, field, m, ['match', 'command', 'name', 'seconds', 'hitcount', 'rttl', 'reap', 'side', 'mask'])
      const { value: cmd, not } = unwrap(m.command)
      const command = v.oneOf(at, `${field}.command`, cmd, ['set', 'rcheck', 'update', 'remove'] as const)
      const name = m.name === undefined ? undefined : str(at, `${field}.name`, m.name, RECENT.nameLen)
      if (name !== undefined && name.includes('/')) v.fail(at, `${field}.name`, name, "must not contain '/' (it names a file under /proc)")
      const seconds = m.seconds === undefined ? 0 : v.integer(at, `${field}.seconds`, m.seconds, 1, U32)
      const hitcount = m.hitcount === undefined ? 0 : v.integer(at, `${field}.hitcount`, m.hitcount, 1, U32)
      const timed = command === 'rcheck' || command === 'update'
      if ((seconds || hitcount) && !timed) v.fail(at, `${field}.${seconds ? 'seconds' : 'hitcount'}`, seconds || hitcount, "goes with command 'rcheck' or 'update' only")
      const rttl = yes(at, `${field}.rttl`, m.rttl)
      const reap = yes(at, `${field}.reap`, m.reap)
      if (reap && !seconds) v.fail(at, `${field}.reap`, true, 'needs seconds')
      const side = m.side === undefined ? 'source' : v.oneOf(at, `${field}.side`, m.side, ['source', 'dest'] as const)
      const mask = m.mask === undefined ? undefined : addressOf(at, `${field}.mask`, m.mask, family)
      const checkSet = RECENT_CMD[command] | (rttl ? RECENT_TTL : 0) | (reap ? RECENT_REAP : 0)
      return ext('recent', EXT.recent, (b, o) => {
        b.writeUInt32LE(seconds, o + RECENT.seconds)
        b.writeUInt32LE(hitcount, o + RECENT.hitCount)
        b[o + RECENT.checkSet] = checkSet
        b[o + RECENT.invert] = not ? 1 : 0
        // As iptables: "DEFAULT" first, then the name and its NUL over it
        // (a short name leaves the rest of "DEFAULT" behind the NUL).
        b.write('DEFAULT', o + RECENT.name, 'latin1')
        if (name !== undefined) {
          const n = b.write(name, o + RECENT.name, 'utf8')
          b[o + RECENT.name + n] = 0
        }
        b[o + RECENT.side] = side === 'dest' ? 1 : 0
        if (mask) b.set(mask, o + RECENT.mask)
        else b.fill(0xff, o + RECENT.mask, o + RECENT.mask + 16)
      })
    }
    case 'physdev': {
      only(at, field, m, ['match', 'physdevIn', 'physdevOut', 'physdevIsIn', 'physdevIsOut', 'physdevIsBridged'])
      let bitmask = 0
      let invert = 0
      const names: [number, number, string][] = []
      const named = (key: string, op: number, nameAt: number, maskAt: number): void => {
        if (m[key] === undefined) return
        const { value: n, not } = unwrap(m[key])
        names.push([nameAt, maskAt, iface(at, `${field}.${key}`, n)])
        bitmask |= op
        if (not) invert |= op
      }
      const flag = (key: string, op: number): void => {
        if (m[key] === undefined) return
        const { value: x, not } = unwrap(m[key])
        yes(at, `${field}.${key}`, x)
        bitmask |= op
        if (not) invert |= op
      }
      named('physdevIn', PHYSDEV_OP.in, PHYSDEV.in, PHYSDEV.inMask)
      named('physdevOut', PHYSDEV_OP.out, PHYSDEV.out, PHYSDEV.outMask)
      flag('physdevIsIn', PHYSDEV_OP.isIn)
      flag('physdevIsOut', PHYSDEV_OP.isOut)
      flag('physdevIsBridged', PHYSDEV_OP.bridged)
      if (!bitmask) v.fail(at, field, value, 'needs at least one physdev option')
      return ext('physdev', EXT.physdev, (b, o) => {
        for (const [n, k, name] of names) writeIface(b, o + n, o + k, name)
        b[o + PHYSDEV.invert] = invert
        b[o + PHYSDEV.bitmask] = bitmask
      })
    }
    case 'raw':
      return rawPlan(at, field, m)
    default:
      return v.fail(at, `${field}.match`, m.match,
        'must be one of comment, tcp, udp, multiport, statistic, set, mark, addrtype, conntrack, recent, physdev, raw')
  }
}

function tcpFlagBits(at: Where, field: string, value: unknown): number {
  if (!Array.isArray(value)) v.fail(at, field, value, 'must be an array of FIN, SYN, RST, PSH, ACK, URG')
  let bits = 0
  value.forEach((f, i) => (bits |= TCP_FLAGS[v.oneOf(at, `${field}[${i}]`, f, Object.keys(TCP_FLAGS) as TcpFlag[])]))
  return bits
}

function addrTypeBits(at: Where, field: string, value: unknown): number {
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0) v.fail(at, field, value, 'must name at least one address type')
  let bits = 0
  list.forEach((t, i) => (bits |= 1 << ADDRTYPES.indexOf(v.oneOf(at, Array.isArray(value) ? `${field}[${i}]` : field, t, ADDRTYPES))))
  return bits
}

function bitsOf<K extends string>(at: Where, field: string, value: unknown, table: Record<K, number>): number {
  if (!Array.isArray(value) || value.length === 0) v.fail(at, field, value, `must be a non-empty array of ${Object.keys(table).join(', ')}`)
  let bits = 0
  value.forEach((s, i) => (bits |= table[v.oneOf(at, `${field}[${i}]`, s, Object.keys(table) as K[])]))
  return bits
}

function conntrackPlan(at: Where, field: string, m: Obj, family: Family): ExtPlan {
  const keys = ['ctstate', 'ctproto', 'ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst', 'ctorigsrcport', 'ctorigdstport',
    'ctreplsrcport', 'ctrepldstport', 'ctstatus', 'ctexpire', 'ctdir']
  only(at, field, m, ['match', ...keys])
  if (!keys.some((k) => m[k] !== undefined)) v.fail(at, field, m, 'needs at least one conntrack option')
  let matchFlags = 0
  let invertFlags = 0
  const writes: ((b: Buffer, o: number) => void)[] = []
  const opt = (key: string, flag: number, parse: (x: unknown) => (b: Buffer, o: number) => void): void => {
    if (m[key] === undefined) return
    const { value, not } = unwrap(m[key])
    writes.push(parse(value))
    matchFlags |= flag
    if (not) invertFlags |= flag
  }
  opt('ctstate', CT.STATE, (x) => {
    const bits = bitsOf(at, `${field}.ctstate`, x, CT_STATES)
    return (b, o) => b.writeUInt16LE(bits, o + CONNTRACK.stateMask)
  })
  opt('ctproto', CT.PROTO, (x) => {
    const p = protocolNumber(at, `${field}.ctproto`, x)
    return (b, o) => b.writeUInt16LE(p, o + CONNTRACK.l4proto)
  })
  const addr = (key: string, flag: number, addrAt: number, maskAt: number): void =>
    opt(key, flag, (x) => {
      // As iptables' XTTYPE_HOSTMASK: the address as given; a host's mask is all 128 bits.
      const c = cidr(at, `${field}.${key}`, x, family, false)
      const hasPrefix = (x as string).includes('/')
      return (b, o) => {
        b.set(c.bytes, o + addrAt)
        if (hasPrefix) b.set(c.mask, o + maskAt)
        else b.fill(0xff, o + maskAt, o + maskAt + 16)
      }
    })
  addr('ctorigsrc', CT.ORIGSRC, CONNTRACK.origsrcAddr, CONNTRACK.origsrcMask)
  addr('ctorigdst', CT.ORIGDST, CONNTRACK.origdstAddr, CONNTRACK.origdstMask)
  addr('ctreplsrc', CT.REPLSRC, CONNTRACK.replsrcAddr, CONNTRACK.replsrcMask)
  addr('ctrepldst', CT.REPLDST, CONNTRACK.repldstAddr, CONNTRACK.repldstMask)
  const port = (key: string, flag: number, lowAt: number, highAt: number): void =>
    opt(key, flag, (x) => {
      const [lo, hi] = portRange(at, `${field}.${key}`, x)
      return (b, o) => {
        b.writeUInt16LE(lo, o + lowAt)
        b.writeUInt16LE(hi, o + highAt)
      }
    })
  port('ctorigsrcport', CT.ORIGSRC_PORT, CONNTRACK.origsrcPort, CONNTRACK.origsrcPortHigh)
  port('ctorigdstport', CT.ORIGDST_PORT, CONNTRACK.origdstPort, CONNTRACK.origdstPortHigh)
  port('ctreplsrcport', CT.REPLSRC_PORT, CONNTRACK.replsrcPort, CONNTRACK.replsrcPortHigh)
  port('ctrepldstport', CT.REPLDST_PORT, CONNTRACK.repldstPort, CONNTRACK.repldstPortHigh)
  opt('ctstatus', CT.STATUS, (x) => {
    const bits = bitsOf(at, `${field}.ctstatus`, x, CT_STATUS)
    return (b, o) => b.writeUInt16LE(bits, o + CONNTRACK.statusMask)
  })
  opt('ctexpire', CT.EXPIRES, (x) => {
    const [lo, hi] = Array.isArray(x)
      ? [v.integer(at, `${field}.ctexpire[0]`, x[0], 0, U32), v.integer(at, `${field}.ctexpire[1]`, x[1], 0, U32)]
      : [v.integer(at, `${field}.ctexpire`, x, 0, U32), v.integer(at, `${field}.ctexpire`, x, 0, U32)]
    if (lo > hi) v.fail(at, `${field}.ctexpire`, x, 'must be a range [min, max] with min <= max')
    return (b, o) => {
      b.writeUInt32LE(lo, o + CONNTRACK.expiresMin)
      b.writeUInt32LE(hi, o + CONNTRACK.expiresMax)
    }
  })
  if (m.ctdir !== undefined) {
    const dir = v.oneOf(at, `${field}.ctdir`, m.ctdir, ['ORIGINAL', 'REPLY'] as const)
    matchFlags |= CT.DIRECTION
    if (dir === 'REPLY') invertFlags |= CT.DIRECTION
  }
  return ext('conntrack', EXT.conntrack, (b, o) => {
    for (const w of writes) w(b, o)
    b.writeUInt16LE(matchFlags, o + CONNTRACK.matchFlags)
    b.writeUInt16LE(invertFlags, o + CONNTRACK.invertFlags)
  })
}

function rawPlan(at: Where, field: string, m: Obj): ExtPlan {
  const name = str(at, `${field}.name`, m.name, XT_NAME_LEN)
  const revision = v.integer(at, `${field}.revision`, m.revision, 0, 255)
  if (typeof m.data !== 'string' || !/^([0-9a-f]{2})*$/i.test(m.data)) v.fail(at, `${field}.data`, m.data, 'must be a hex string')
  const data = Buffer.from(m.data, 'hex')
  if (data.length % 8 !== 0 || data.length > 0xffff - XT_HEADER) v.fail(at, `${field}.data`, m.data, 'must be a multiple of 8 bytes (XT_ALIGN)')
  return ext(name, { revision, size: data.length, user: data.length }, (b, o) => void data.copy(b, o))
}

// ---- targets ---------------------------------------------------------------------------------

function targetPlan(at: Where, value: unknown, plan: RulePlan, ctx: RuleContext): ExtPlan {
  const field = 'rule.target'
  // As iptables: the standard target named by its label (a verdict, a chain
  // or '' for none); libiptc turns the label into a verdict or a jump.
  const standard = (label: string): ExtPlan => ext(label, EXT.standard, () => {})
  if (value === undefined) return standard('')
  const t = v.object(at, field, value)
  if ('jump' in t || 'goto' in t) {
    const key = 'jump' in t ? 'jump' : 'goto'
    only(at, field, t, [key])
    const chain = chainName(at, `${field}.${key}`, t[key])
    if (isBuiltin(chain)) v.fail(at, `${field}.${key}`, chain, 'is a built-in chain: rules cannot jump to one')
    if (key === 'goto') plan.flags |= plan.family === 'inet' ? IPT_F_GOTO : IP6T_F_GOTO
    return standard(chain)
  }
  const family = plan.family
  const nat = (name: string): void => {
    if (ctx.table !== 'nat') v.fail(at, `${field}.target`, name, `works in the nat table only (this is ${ctx.table})`)
  }
  switch (t.target) {
    case 'ACCEPT':
    case 'DROP':
    case 'RETURN':
    case 'QUEUE':
      only(at, field, t, ['target'])
      return standard(t.target)
    case 'REJECT': {
      only(at, field, t, ['target', 'rejectWith'])
      if (ctx.table !== 'filter' && ctx.table !== 'mangle' && ctx.table !== 'raw')
        v.fail(at, `${field}.target`, 'REJECT', `works in the filter, mangle and raw tables only (this is ${ctx.table})`)
      const names = family === 'inet' ? REJECT4 : REJECT6
      const dflt = family === 'inet' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'
      const usable = names.filter((n) => (n as string) !== 'echo-reply' && (n as string) !== 'not-neighbour')
      const w = t.rejectWith === undefined ? dflt : v.oneOf(at, `${field}.rejectWith`, t.rejectWith, usable)
      if (w === 'tcp-reset' && (plan.proto !== 6 || plan.invflags & INV_PROTO))
        v.fail(at, `${field}.rejectWith`, w, "needs the rule's protocol to be tcp")
      const code = names.indexOf(w)
      return ext('REJECT', EXT.REJECT, (b, o) => void b.writeUInt32LE(code, o))
    }
    case 'DNAT': {
      only(at, field, t, ['target', 'toDestination', 'random', 'persistent'])
      nat('DNAT')
      const r = natRange(at, `${field}.toDestination`, t.toDestination, family, plan)
      const flags = r.flags | (yes(at, `${field}.random`, t.random) ? NAT_PROTO_RANDOM : 0) | (yes(at, `${field}.persistent`, t.persistent) ? NAT_PERSISTENT : 0)
      return ext('DNAT', EXT.DNAT, (b, o) => writeNatRange(b, o, flags, r))
    }
    case 'SNAT': {
      only(at, field, t, ['target', 'toSource', 'random', 'randomFully', 'persistent'])
      nat('SNAT')
      const r = natRange(at, `${field}.toSource`, t.toSource, family, plan)
      const flags = r.flags | (yes(at, `${field}.random`, t.random) ? NAT_PROTO_RANDOM : 0)
        | (yes(at, `${field}.randomFully`, t.randomFully) ? NAT_PROTO_RANDOM_FULLY : 0)
        | (yes(at, `${field}.persistent`, t.persistent) ? NAT_PERSISTENT : 0)
      if (family === 'inet') return ext('SNAT', EXT.SNAT4, (b, o) => writeNatCompat(b, o, flags, r))
      return ext('SNAT', EXT.SNAT6, (b, o) => writeNatRange(b, o, flags, r))
    }
    case 'MASQUERADE': {
      only(at, field, t, ['target', 'toPorts', 'random', 'randomFully'])
      nat('MASQUERADE')
      let flags = 0
      let ports: [number, number] = [0, 0]
      if (t.toPorts !== undefined) {
        portsFor(at, `${field}.toPorts`, plan, 'MASQUERADE --to-ports')
        ports = portRange(at, `${field}.toPorts`, t.toPorts)
        flags |= NAT_PROTO_SPECIFIED
      }
      flags |= (yes(at, `${field}.random`, t.random) ? NAT_PROTO_RANDOM : 0) | (yes(at, `${field}.randomFully`, t.randomFully) ? NAT_PROTO_RANDOM_FULLY : 0)
      const r = { flags, min: new Uint8Array(16), max: new Uint8Array(16), ports }
      if (family === 'inet') return ext('MASQUERADE', EXT.MASQUERADE4, (b, o) => writeNatCompat(b, o, flags, r))
      return ext('MASQUERADE', EXT.MASQUERADE6, (b, o) => writeNatRange(b, o, flags, r))
    }
    case 'MARK': {
      only(at, field, t, ['target', 'op', 'value', 'mask'])
      const op = v.oneOf(at, `${field}.op`, t.op, ['set-xmark', 'set-mark', 'and', 'or', 'xor'] as const)
      const val = v.integer(at, `${field}.value`, t.value, 0, U32)
      if (t.mask !== undefined && op !== 'set-xmark' && op !== 'set-mark') v.fail(at, `${field}.mask`, t.mask, `does not go with op '${op}'`)
      const mask = t.mask === undefined ? U32 : v.integer(at, `${field}.mask`, t.mask, 0, U32)
      // libxt_MARK, revision 2: every op as (mark, mask).
      const [mark, msk] = op === 'set-xmark' ? [val, mask] : op === 'set-mark' ? [val, (mask | val) >>> 0]
        : op === 'and' ? [0, ~val >>> 0] : op === 'or' ? [val, val] : [val, 0]
      return ext('MARK', EXT.MARK, (b, o) => {
        b.writeUInt32LE(mark, o)
        b.writeUInt32LE(msk, o + 4)
      })
    }
    case 'LOG': {
      only(at, field, t, ['target', 'prefix', 'level', ...Object.keys(LOG_FLAGS)])
      const prefix = t.prefix === undefined ? '' : str(at, `${field}.prefix`, t.prefix, LOG_PREFIX_SIZE)
      const level = t.level === undefined ? 4 : v.integer(at, `${field}.level`, t.level, 0, 7)
      let flags = 0
      for (const [k, bit] of Object.entries(LOG_FLAGS)) if (yes(at, `${field}.${k}`, t[k])) flags |= bit
      return ext('LOG', EXT.LOG, (b, o) => {
        b[o] = level
        b[o + 1] = flags
        b.write(prefix, o + 2, 'utf8')
      })
    }
    case 'raw':
      return rawPlan(at, field, t)
    default:
      return v.fail(at, `${field}.target`, t.target,
        'must be one of ACCEPT, DROP, RETURN, QUEUE, REJECT, DNAT, SNAT, MASQUERADE, MARK, LOG, raw (or give jump / goto)')
  }
}

interface NatRange {
  flags: number
  min: Uint8Array
  max: Uint8Array
  ports: [number, number]
}

/** '10.0.0.1', '10.0.0.1-10.0.0.9', '10.0.0.1:80', '10.0.0.1:80-90', ':80', 'fd00::1', '[fd00::1]:80', '[fd00::1-fd00::9]:80'. */
function natRange(at: Where, field: string, value: unknown, family: Family, plan: RulePlan): NatRange {
  if (typeof value !== 'string' || value === '') v.fail(at, field, value, 'must be an address[-address][:port[-port]] string')
  let addrPart = value
  let portPart: string | undefined
  if (family === 'inet6') {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(value)
    if (m) {
      addrPart = m[1]!
      portPart = m[2]
      if (portPart === undefined) v.fail(at, field, value, "has brackets without a port ('[fd00::1]:80')")
    } else if (value.startsWith(':') && !value.startsWith('::')) {
      addrPart = ''
      portPart = value.slice(1)
    }
  } else {
    const c = value.indexOf(':')
    if (c >= 0) {
      addrPart = value.slice(0, c)
      portPart = value.slice(c + 1)
    }
  }
  let flags = 0
  const min = new Uint8Array(16)
  const max = new Uint8Array(16)
  if (addrPart !== '') {
    const dash = addrPart.indexOf('-')
    const lo = dash < 0 ? addrPart : addrPart.slice(0, dash)
    const hi = dash < 0 ? addrPart : addrPart.slice(dash + 1)
    const a = addressOf(at, field, lo, family)
    const z = addressOf(at, field, hi, family)
    if (compareBytes(a, z) > 0) v.fail(at, field, value, 'has an address range whose first address is above its last')
    min.set(a)
    max.set(z)
    flags |= NAT_MAP_IPS
  }
  let ports: [number, number] = [0, 0]
  if (portPart !== undefined) {
    const pm = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(portPart)
    if (!pm) v.fail(at, field, value, 'has a port that is not a number or a range first-last')
    ports = portRange(at, field, pm[2] === undefined ? Number(pm[1]) : [Number(pm[1]), Number(pm[2])])
    portsFor(at, field, plan, 'a NAT port')
    flags |= NAT_PROTO_SPECIFIED
  }
  if (!flags) v.fail(at, field, value, 'needs an address or a port')
  return { flags, min, max, ports }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

function writeNatRange(b: Buffer, o: number, flags: number, r: NatRange): void {
  b.writeUInt32LE(flags, o + NAT_RANGE.flags)
  b.set(r.min, o + NAT_RANGE.minAddr)
  b.set(r.max, o + NAT_RANGE.maxAddr)
  b.writeUInt16BE(r.ports[0], o + NAT_RANGE.minProto)
  b.writeUInt16BE(r.ports[1], o + NAT_RANGE.maxProto)
}

function writeNatCompat(b: Buffer, o: number, flags: number, r: NatRange): void {
  b.writeUInt32LE(1, o + NAT_COMPAT.rangesize)
  b.writeUInt32LE(flags, o + NAT_COMPAT.flags)
  b.set(r.min.subarray(0, 4), o + NAT_COMPAT.minIp)
  b.set(r.max.subarray(0, 4), o + NAT_COMPAT.maxIp)
  b.writeUInt16BE(r.ports[0], o + NAT_COMPAT.minProto)
  b.writeUInt16BE(r.ports[1], o + NAT_COMPAT.maxProto)
}

// ---- the rule ----------------------------------------------------------------------------------

const RULE_KEYS = ['source', 'destination', 'inInterface', 'outInterface', 'protocol', 'fragment', 'matches', 'target', 'counters']

function rulePlan(at: Where, value: unknown, ctx: RuleContext): RulePlan {
  const r = v.object(at, 'rule', value)
  only(at, 'rule', r, RULE_KEYS)
  const family = ctx.family
  const plan: RulePlan = { family, proto: 0, flags: 0, invflags: 0, matches: [], target: undefined as unknown as ExtPlan }
  if (r.source !== undefined) {
    const { value: s, not } = unwrap(r.source)
    const c = cidr(at, 'rule.source', s, family, true)
    plan.src = { bytes: c.bytes, mask: c.mask }
    if (not) plan.invflags |= INV_SRCIP
  }
  if (r.destination !== undefined) {
    const { value: d, not } = unwrap(r.destination)
    const c = cidr(at, 'rule.destination', d, family, true)
    plan.dst = { bytes: c.bytes, mask: c.mask }
    if (not) plan.invflags |= INV_DSTIP
  }
  if (r.inInterface !== undefined) {
    const { value: i, not } = unwrap(r.inInterface)
    plan.iniface = iface(at, 'rule.inInterface', i)
    if (not) plan.invflags |= INV_VIA_IN
  }
  if (r.outInterface !== undefined) {
    const { value: i, not } = unwrap(r.outInterface)
    plan.outiface = iface(at, 'rule.outInterface', i)
    if (not) plan.invflags |= INV_VIA_OUT
  }
  if (r.protocol !== undefined) {
    const { value: p, not } = unwrap(r.protocol)
    plan.proto = protocolNumber(at, 'rule.protocol', p)
    if (not) {
      if (plan.proto === 0) v.fail(at, 'rule.protocol', r.protocol, "cannot negate 'all'")
      plan.invflags |= INV_PROTO
    }
    if (family === 'inet6' && plan.proto !== 0) plan.flags |= IP6T_F_PROTO
  }
  if (r.fragment !== undefined) {
    if (family !== 'inet') v.fail(at, 'rule.fragment', r.fragment, 'is IPv4 only')
    const { value: f, not } = unwrap(r.fragment)
    yes(at, 'rule.fragment', f)
    plan.flags |= IPT_F_FRAG
    if (not) plan.invflags |= INV_FRAG
  }
  if (r.matches !== undefined) {
    if (!Array.isArray(r.matches)) v.fail(at, 'rule.matches', r.matches, 'must be an array of matches')
    r.matches.forEach((m, i) => plan.matches.push(matchPlan(at, `rule.matches[${i}]`, m, plan)))
  }
  plan.target = targetPlan(at, r.target, plan, ctx)
  return plan
}

/** A rule validated and measured: what writeEntry / writeMask lay out. */
export interface PlannedRule {
  plan: RulePlan
  layout: EntryLayout
  size: number
  targetOffset: number
  /** How many set matches need an index resolved. */
  nsets: number
}

/** Validates `rule` (a ValidationError names the field) and measures its entry. */
export function planRule(at: Where, rule: unknown, ctx: RuleContext): PlannedRule {
  const plan = rulePlan(at, rule, ctx)
  const layout: EntryLayout = ctx.family === 'inet' ? ENTRY4 : ENTRY6
  let size = layout.size
  let nsets = 0
  for (const m of plan.matches) {
    size += XT_HEADER + m.size
    if (m.set !== undefined) nsets++
  }
  const targetOffset = size
  size += XT_HEADER + plan.target.size
  if (size > 0xffff) v.fail(at, 'rule', rule, 'is larger than an entry can be (64 KiB)')
  return { plan, layout, size, targetOffset, nsets }
}

/**
 * Writes the entry at `o` of `b` (zeroed there): struct ipt_entry / ip6t_entry,
 * each match, the target. Calls `set(offset, name)` (offset from the entry's
 * start) for each set match whose u16 index native code fills in.
 */
export function writeEntry(p: PlannedRule, b: Buffer, o: number, set?: (offset: number, name: string) => void): void {
  const L = p.layout
  writeHead(b, o, L, p.plan)
  u16(b, o + L.targetOffset, p.targetOffset)
  u16(b, o + L.nextOffset, p.size)
  let at = o + L.size
  const n = p.plan.matches.length
  for (let i = 0; i <= n; i++) {
    const m = i < n ? p.plan.matches[i]! : p.plan.target
    const total = XT_HEADER + m.size
    u16(b, at, total)
    b.write(m.name, at + 2, 'latin1')
    b[at + 31] = m.revision
    m.write(b, at + XT_HEADER)
    if (m.set !== undefined && set) set(at - o + XT_HEADER + SET.index, m.set)
    at += total
  }
}

/** A u16 in host (little-endian) order, without Buffer's argument checks. */
function u16(b: Buffer, o: number, v: number): void {
  b[o] = v & 0xff
  b[o + 1] = v >>> 8
}

/** The mask iptables -D compares with (make_delete_mask): the entry, then each header and its userspacesize. */
export function writeMask(p: PlannedRule, b: Buffer, o: number): void {
  b.fill(0xff, o, o + p.layout.size)
  let at = o + p.layout.size
  for (const m of [...p.plan.matches, p.plan.target]) {
    b.fill(0xff, at, at + XT_HEADER + m.user)
    at += XT_HEADER + m.size
  }
}

/** Validates `rule` and lays it out as the kernel's entry (and the mask iptables -D would compare with). */
export function encodeRule(at: Where, rule: unknown, ctx: RuleContext): EncodedRule {
  const p = planRule(at, rule, ctx)
  const entry = Buffer.alloc(p.size)
  const mask = Buffer.alloc(p.size)
  const sets: { offset: number; name: string }[] = []
  writeEntry(p, entry, 0, (offset, name) => sets.push({ offset, name }))
  writeMask(p, mask, 0)
  return { entry, mask, sets }
}

function writeHead(b: Buffer, o: number, L: EntryLayout, p: RulePlan): void {
  if (p.src) {
    b.set(p.src.bytes, o + L.src)
    b.set(p.src.mask, o + L.smsk)
  }
  if (p.dst) {
    b.set(p.dst.bytes, o + L.dst)
    b.set(p.dst.mask, o + L.dmsk)
  }
  if (p.iniface !== undefined) writeIface(b, o + L.iniface, o + L.inifaceMask, p.iniface)
  if (p.outiface !== undefined) writeIface(b, o + L.outiface, o + L.outifaceMask, p.outiface)
  u16(b, o + L.proto, p.proto)
  b[o + L.flags] = p.flags
  b[o + L.invflags] = p.invflags
}

// ---- decoding ------------------------------------------------------------------------------------

const not = <T>(value: T, inverted: boolean | number): Not<T> => (inverted ? { not: value } : value)
const cstr = (b: Buffer, from: number, to: number, enc: BufferEncoding = 'latin1'): string => {
  const end = b.indexOf(0, from)
  return b.toString(enc, from, end < 0 || end > to ? to : end)
}
const range = (lo: number, hi: number): PortRange => (lo === hi ? lo : [lo, hi])
const isZero = (b: Buffer, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false
  return true
}


/** Prefix length of a contiguous mask, or -1. */
function maskPrefix(m: Uint8Array): number {
  let n = 0
  let i = 0
  for (; i < m.length && m[i] === 0xff; i++) n += 8
  if (i < m.length) {
    const x = m[i]!
    const bits = [0, 0x80, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc, 0xfe].indexOf(x)
    if (bits < 0) return -1
    n += bits
    for (i++; i < m.length; i++) if (m[i] !== 0) return -1
  }
  return n
}

function cidrText(addr: Uint8Array, mask: Uint8Array): string {
  const p = maskPrefix(mask)
  return `${formatAddress(addr)}/${p < 0 ? formatAddress(mask) : p}`
}

function ifaceText(b: Buffer, nameAt: number, maskAt: number): string | undefined {
  const name = cstr(b, nameAt, nameAt + IFNAMSIZ)
  if (name === '' && isZero(b, maskAt, maskAt + IFNAMSIZ)) return undefined
  return name
}

function protocolName(n: number, family: Family): IptablesProtocol {
  if (family === 'inet6' && n === 58) return 'icmpv6'
  return (PROTOCOL_NAMES.get(n) as IptablesProtocol | undefined) ?? n
}

function rawOf(b: Buffer, o: number, size: number): RawExtension {
  return { name: cstr(b, o + 2, o + 2 + XT_NAME_LEN), revision: b[o + 31]!, data: b.toString('hex', o + XT_HEADER, o + size) }
}

/** What a dump said about ipset indexes (index -> name). */
export type SetNames = Record<string, string>

function decodeMatch(b: Buffer, o: number, size: number, family: Family, sets: SetNames): Match {
  const name = cstr(b, o + 2, o + 2 + XT_NAME_LEN)
  const rev = b[o + 31]
  const d = o + XT_HEADER
  const raw = (): Match => ({ match: 'raw', ...rawOf(b, o, size) })
  const is = (n: keyof typeof EXT): boolean => rev === EXT[n].revision && size === XT_HEADER + EXT[n].size
  switch (name) {
    case 'comment':
      if (!is('comment')) return raw()
      return { match: 'comment', comment: cstr(b, d, d + 256, 'utf8') }
    case 'tcp':
    case 'udp': {
      if (!is(name)) return raw()
      const tcp = name === 'tcp'
      const inv = b[d + (tcp ? 11 : 8)]!
      if (tcp && (b[d + 8] !== 0 || inv & ~0x07)) return raw() // tcp options: not modelled
      const out: { match: 'tcp' | 'udp'; sport?: Not<PortRange>; dport?: Not<PortRange>; tcpFlags?: Not<{ mask: TcpFlag[]; set: TcpFlag[] }> } = { match: name }
      const s0 = b.readUInt16LE(d), s1 = b.readUInt16LE(d + 2), d0 = b.readUInt16LE(d + 4), d1 = b.readUInt16LE(d + 6)
      if (!(s0 === 0 && s1 === 65535) || inv & 1) out.sport = not(range(s0, s1), inv & 1)
      if (!(d0 === 0 && d1 === 65535) || inv & 2) out.dport = not(range(d0, d1), inv & 2)
      if (tcp && (b[d + 9] || inv & 4)) {
        const flags = (x: number): TcpFlag[] => (Object.keys(TCP_FLAGS) as TcpFlag[]).filter((f) => x & TCP_FLAGS[f])
        out.tcpFlags = not({ mask: flags(b[d + 9]!), set: flags(b[d + 10]!) }, inv & 4)
      }
      return out as Match
    }
    case 'multiport': {
      if (!is('multiport')) return raw()
      const count = b[d + MULTIPORT.count]!
      const list: PortRange[] = []
      for (let i = 0; i < count && i < MULTIPORT.max; i++) {
        const p = b.readUInt16LE(d + MULTIPORT.ports + 2 * i)
        if (b[d + MULTIPORT.pflags + i] && i + 1 < count) {
          list.push([p, b.readUInt16LE(d + MULTIPORT.ports + 2 * (i + 1))])
          i++
        } else list.push(p)
      }
      const key = (['sports', 'dports', 'ports'] as const)[b[d + MULTIPORT.flags]!]
      if (!key) return raw()
      return { match: 'multiport', [key]: not(list, b[d + MULTIPORT.invert]!) } as Match
    }
    case 'statistic': {
      if (!is('statistic')) return raw()
      const mode = b.readUInt16LE(d + STATISTIC.mode)
      const inv = b.readUInt16LE(d + STATISTIC.flags) & 1
      if (mode === 0) return { match: 'statistic', mode: 'random', probability: not(b.readUInt32LE(d + STATISTIC.every) / 0x80000000, inv) }
      if (mode === 1) {
        const every = b.readUInt32LE(d + STATISTIC.every) + 1
        const packet = b.readUInt32LE(d + STATISTIC.packet)
        return { match: 'statistic', mode: 'nth', every: not(every, inv), ...(packet ? { packet } : {}) }
      }
      return raw()
    }
    case 'set': {
      if (!is('set')) return raw()
      const index = b.readUInt16LE(d + SET.index)
      const setName = sets[String(index)]
      const mflags = b.readUInt32LE(d + SET.matchFlags)
      if (!setName || b[d + SET.packetsOp] || b[d + SET.bytesOp] || mflags & ~(1 << 7)) return raw()
      const dim = b[d + SET.dim]!
      const f = b[d + SET.flags]!
      const flags: SetDirection[] = []
      for (let i = 1; i <= dim; i++) flags.push(f & (1 << i) ? 'src' : 'dst')
      return { match: 'set', matchSet: not(setName, f & 1), flags, ...(mflags & (1 << 7) ? { returnNomatch: true as const } : {}) }
    }
    case 'mark': {
      if (!is('mark')) return raw()
      const mask = b.readUInt32LE(d + 4)
      return { match: 'mark', mark: not(b.readUInt32LE(d), b[d + 8]!), ...(mask === U32 ? {} : { mask }) }
    }
    case 'addrtype': {
      if (!is('addrtype')) return raw()
      const types = (x: number): AddrType | AddrType[] => {
        const l = ADDRTYPES.filter((_, i) => x & (1 << i))
        return l.length === 1 ? l[0]! : l
      }
      const src = b.readUInt16LE(d), dst = b.readUInt16LE(d + 2), flags = b.readUInt32LE(d + 4)
      return {
        match: 'addrtype',
        ...(src ? { srcType: not(types(src), flags & 1) } : {}),
        ...(dst ? { dstType: not(types(dst), flags & 2) } : {}),
        ...(flags & 4 ? { limitIfaceIn: true as const } : {}),
        ...(flags & 8 ? { limitIfaceOut: true as const } : {}),
      }
    }
    case 'conntrack':
      if (!is('conntrack')) return raw()
      return decodeConntrack(b, d, family)
    case 'recent': {
      if (!is('recent')) return raw()
      const cs = b[d + RECENT.checkSet]!
      const cmds = (Object.keys(RECENT_CMD) as RecentCommand[]).filter((k) => cs & RECENT_CMD[k])
      if (cmds.length !== 1 || cs & ~0x3f) return raw()
      const name = cstr(b, d + RECENT.name, d + RECENT.name + RECENT.nameLen, 'utf8')
      const seconds = b.readUInt32LE(d + RECENT.seconds)
      const hitcount = b.readUInt32LE(d + RECENT.hitCount)
      const maskAll = b.subarray(d + RECENT.mask, d + RECENT.mask + 16).every((x) => x === 0xff)
      const maskLen = family === 'inet' ? 4 : 16
      return {
        match: 'recent',
        command: not(cmds[0]!, b[d + RECENT.invert]!),
        ...(name === 'DEFAULT' ? {} : { name }),
        ...(seconds ? { seconds } : {}),
        ...(hitcount ? { hitcount } : {}),
        ...(cs & RECENT_TTL ? { rttl: true as const } : {}),
        ...(cs & RECENT_REAP ? { reap: true as const } : {}),
        ...(b[d + RECENT.side] === 1 ? { side: 'dest' as const } : {}),
        ...(maskAll ? {} : { mask: formatAddress(b.subarray(d + RECENT.mask, d + RECENT.mask + maskLen)) }),
      }
    }
    case 'physdev': {
      if (!is('physdev')) return raw()
      const bm = b[d + PHYSDEV.bitmask]!
      const inv = b[d + PHYSDEV.invert]!
      const out: Record<string, unknown> = { match: 'physdev' }
      if (bm & PHYSDEV_OP.in) out.physdevIn = not(cstr(b, d + PHYSDEV.in, d + PHYSDEV.in + IFNAMSIZ), inv & PHYSDEV_OP.in)
      if (bm & PHYSDEV_OP.out) out.physdevOut = not(cstr(b, d + PHYSDEV.out, d + PHYSDEV.out + IFNAMSIZ), inv & PHYSDEV_OP.out)
      if (bm & PHYSDEV_OP.isIn) out.physdevIsIn = not(true, inv & PHYSDEV_OP.isIn)
      if (bm & PHYSDEV_OP.isOut) out.physdevIsOut = not(true, inv & PHYSDEV_OP.isOut)
      if (bm & PHYSDEV_OP.bridged) out.physdevIsBridged = not(true, inv & PHYSDEV_OP.bridged)
      return out as Match
    }
    default:
      return raw()
  }
}

function decodeConntrack(b: Buffer, d: number, family: Family): Match {
  const mf = b.readUInt16LE(d + CONNTRACK.matchFlags)
  const inv = b.readUInt16LE(d + CONNTRACK.invertFlags)
  const out: ConntrackMatch = { match: 'conntrack' }
  const n = family === 'inet' ? 4 : 16
  const bitsToList = <K extends string>(x: number, table: Record<K, number>): K[] => (Object.keys(table) as K[]).filter((k) => x & table[k])
  if (mf & CT.STATE) out.ctstate = not(bitsToList(b.readUInt16LE(d + CONNTRACK.stateMask), CT_STATES), inv & CT.STATE)
  if (mf & CT.PROTO) out.ctproto = not(protocolName(b.readUInt16LE(d + CONNTRACK.l4proto), family), inv & CT.PROTO)
  const addr = (flag: number, a: number, m: number): Not<string> | undefined => {
    if (!(mf & flag)) return undefined
    const mask = b.subarray(d + m, d + m + 16)
    const bytes = b.subarray(d + a, d + a + n)
    const text = mask.every((x) => x === 0xff) ? formatAddress(bytes) : cidrText(bytes, mask.subarray(0, n))
    return not(text, inv & flag)
  }
  const port = (flag: number, lo: number, hi: number): Not<PortRange> | undefined =>
    mf & flag ? not(range(b.readUInt16LE(d + lo), b.readUInt16LE(d + hi)), inv & flag) : undefined
  const set = <K extends keyof ConntrackMatch>(k: K, x: ConntrackMatch[K] | undefined): void => {
    if (x !== undefined) out[k] = x
  }
  set('ctorigsrc', addr(CT.ORIGSRC, CONNTRACK.origsrcAddr, CONNTRACK.origsrcMask))
  set('ctorigdst', addr(CT.ORIGDST, CONNTRACK.origdstAddr, CONNTRACK.origdstMask))
  set('ctreplsrc', addr(CT.REPLSRC, CONNTRACK.replsrcAddr, CONNTRACK.replsrcMask))
  set('ctrepldst', addr(CT.REPLDST, CONNTRACK.repldstAddr, CONNTRACK.repldstMask))
  set('ctorigsrcport', port(CT.ORIGSRC_PORT, CONNTRACK.origsrcPort, CONNTRACK.origsrcPortHigh))
  set('ctorigdstport', port(CT.ORIGDST_PORT, CONNTRACK.origdstPort, CONNTRACK.origdstPortHigh))
  set('ctreplsrcport', port(CT.REPLSRC_PORT, CONNTRACK.replsrcPort, CONNTRACK.replsrcPortHigh))
  set('ctrepldstport', port(CT.REPLDST_PORT, CONNTRACK.repldstPort, CONNTRACK.repldstPortHigh))
  if (mf & CT.STATUS) out.ctstatus = not(bitsToList(b.readUInt16LE(d + CONNTRACK.statusMask), CT_STATUS), inv & CT.STATUS)
  if (mf & CT.EXPIRES) out.ctexpire = not(range(b.readUInt32LE(d + CONNTRACK.expiresMin), b.readUInt32LE(d + CONNTRACK.expiresMax)), inv & CT.EXPIRES)
  if (mf & CT.DIRECTION) out.ctdir = inv & CT.DIRECTION ? 'REPLY' : 'ORIGINAL'
  return out
}

function decodeNat(b: Buffer, d: number, compat: boolean, family: Family): { flags: number; text: string; ports: [number, number] } {
  let flags: number, min: Uint8Array, max: Uint8Array, p0: number, p1: number
  if (compat) {
    flags = b.readUInt32LE(d + NAT_COMPAT.flags)
    min = b.subarray(d + NAT_COMPAT.minIp, d + NAT_COMPAT.minIp + 4)
    max = b.subarray(d + NAT_COMPAT.maxIp, d + NAT_COMPAT.maxIp + 4)
    p0 = b.readUInt16BE(d + NAT_COMPAT.minProto)
    p1 = b.readUInt16BE(d + NAT_COMPAT.maxProto)
  } else {
    const n = family === 'inet' ? 4 : 16
    flags = b.readUInt32LE(d + NAT_RANGE.flags)
    min = b.subarray(d + NAT_RANGE.minAddr, d + NAT_RANGE.minAddr + n)
    max = b.subarray(d + NAT_RANGE.maxAddr, d + NAT_RANGE.maxAddr + n)
    p0 = b.readUInt16BE(d + NAT_RANGE.minProto)
    p1 = b.readUInt16BE(d + NAT_RANGE.maxProto)
  }
  // libxt_NAT's sprint_range
  const brackets = family === 'inet6' && flags & NAT_PROTO_SPECIFIED
  let text = ''
  if (flags & NAT_MAP_IPS) {
    text += formatAddress(min)
    if (Buffer.compare(Buffer.from(min), Buffer.from(max)) !== 0) text += `-${formatAddress(max)}`
    if (brackets) text = `[${text}]`
  }
  if (flags & NAT_PROTO_SPECIFIED) text += `:${p0}${p1 !== p0 ? `-${p1}` : ''}`
  return { flags, text, ports: [p0, p1] }
}

function decodeTarget(b: Buffer, o: number, size: number, family: Family, label: string | undefined, goto: boolean): Target | undefined {
  if (label !== undefined) {
    if (label === '') return undefined
    if ((VERDICTS as string[]).includes(label)) return { target: label as Verdict }
    return goto ? { goto: label } : { jump: label }
  }
  const name = cstr(b, o + 2, o + 2 + XT_NAME_LEN)
  const rev = b[o + 31]
  const d = o + XT_HEADER
  const raw = (): Target => ({ target: 'raw', ...rawOf(b, o, size) })
  const is = (spec: { revision: number; size: number }): boolean => rev === spec.revision && size === XT_HEADER + spec.size
  const known = NAT_PROTO_RANDOM | NAT_PERSISTENT | NAT_PROTO_RANDOM_FULLY | NAT_MAP_IPS | NAT_PROTO_SPECIFIED
  switch (name) {
    case 'REJECT': {
      if (!is(EXT.REJECT)) return raw()
      const w = (family === 'inet' ? REJECT4 : REJECT6)[b.readUInt32LE(d)]
      if (!w || (w as string) === 'echo-reply' || (w as string) === 'not-neighbour') return raw()
      const dflt = family === 'inet' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'
      return { target: 'REJECT', ...(w === dflt ? {} : { rejectWith: w }) }
    }
    case 'DNAT': {
      if (!is(EXT.DNAT)) return raw()
      const r = decodeNat(b, d, false, family)
      if (r.flags & ~(NAT_MAP_IPS | NAT_PROTO_SPECIFIED | NAT_PROTO_RANDOM | NAT_PERSISTENT)) return raw()
      return { target: 'DNAT', toDestination: r.text, ...(r.flags & NAT_PROTO_RANDOM ? { random: true as const } : {}), ...(r.flags & NAT_PERSISTENT ? { persistent: true as const } : {}) }
    }
    case 'SNAT':
    case 'MASQUERADE': {
      const spec = name === 'SNAT' ? (family === 'inet' ? EXT.SNAT4 : EXT.SNAT6) : family === 'inet' ? EXT.MASQUERADE4 : EXT.MASQUERADE6
      if (!is(spec)) return raw()
      const compat = family === 'inet'
      if (compat && b.readUInt32LE(d + NAT_COMPAT.rangesize) !== 1) return raw()
      const r = decodeNat(b, d, compat, family)
      if (r.flags & ~known) return raw()
      const extra = {
        ...(r.flags & NAT_PROTO_RANDOM ? { random: true as const } : {}),
        ...(r.flags & NAT_PROTO_RANDOM_FULLY ? { randomFully: true as const } : {}),
      }
      if (name === 'SNAT') return { target: 'SNAT', toSource: r.text, ...extra, ...(r.flags & NAT_PERSISTENT ? { persistent: true as const } : {}) }
      if (r.flags & (NAT_MAP_IPS | NAT_PERSISTENT)) return raw()
      return { target: 'MASQUERADE', ...(r.flags & NAT_PROTO_SPECIFIED ? { toPorts: range(r.ports[0], r.ports[1]) } : {}), ...extra }
    }
    case 'MARK':
      if (!is(EXT.MARK)) return raw()
      return { target: 'MARK', op: 'set-xmark', value: b.readUInt32LE(d), mask: b.readUInt32LE(d + 4) }
    case 'LOG': {
      if (!is(EXT.LOG)) return raw()
      const level = b[d]!
      const flags = b[d + 1]!
      if (level > 7 || flags & ~0x2f) return raw()
      const prefix = cstr(b, d + 2, d + 2 + LOG_PREFIX_SIZE, 'utf8')
      const out: Record<string, unknown> = { target: 'LOG' }
      if (prefix) out.prefix = prefix
      if (level !== 4) out.level = level
      for (const [k, bit] of Object.entries(LOG_FLAGS)) if (flags & bit) out[k] = true
      return out as Target
    }
    default:
      return raw()
  }
}

const EBADMSG = 74

/**
 * The entry's own offsets stay inside it: the matches tile the bytes from the
 * entry header to the target, the target fits. What libiptc hands back always
 * does; anything else would be read past its end, so it is refused whole.
 */
function checkEntry(b: Buffer, L: EntryLayout): void {
  const bad = (why: string): never => {
    throw new NetlinkError({ errno: EBADMSG, op: 'iptables.decodeRule', message: `EBADMSG: malformed entry (${b.length} bytes): ${why}` })
  }
  if (b.length < L.size + XT_HEADER) bad(`shorter than the entry header and a target (${L.size + XT_HEADER})`)
  const targetOffset = b.readUInt16LE(L.targetOffset)
  if (targetOffset < L.size || targetOffset + XT_HEADER > b.length) bad(`target_offset ${targetOffset} outside ${L.size}..${b.length - XT_HEADER}`)
  for (let o = L.size; o < targetOffset;) {
    const size = o + XT_HEADER <= targetOffset ? b.readUInt16LE(o) : 0
    if (size < XT_HEADER || o + size > targetOffset) bad(`the match at ${o} (size ${size}) overruns target_offset ${targetOffset}`)
    o += size
  }
  const tsize = b.readUInt16LE(targetOffset)
  if (tsize < XT_HEADER || targetOffset + tsize > b.length) bad(`the target at ${targetOffset} (size ${tsize}) overruns the entry`)
}

/**
 * Reads an entry back (as libiptc holds it) into a typed record. `label` is
 * libiptc's reading of a standard target (verdict, chain, '' for none), or
 * undefined when the target is an extension.
 */
export function decodeRule(b: Buffer, family: Family, label: string | undefined, sets: SetNames): RuleRecord {
  const L: EntryLayout = family === 'inet' ? ENTRY4 : ENTRY6
  checkEntry(b, L)
  const n = L.addrLen
  const flags = b[L.flags]!
  const inv = b[L.invflags]!
  const rule: RuleRecord = { counters: { packets: 0, bytes: 0 } }
  const smsk = b.subarray(L.smsk, L.smsk + n)
  const dmsk = b.subarray(L.dmsk, L.dmsk + n)
  if (!smsk.every((x) => x === 0) || inv & INV_SRCIP) rule.source = not(cidrText(b.subarray(L.src, L.src + n), smsk), inv & INV_SRCIP)
  if (!dmsk.every((x) => x === 0) || inv & INV_DSTIP) rule.destination = not(cidrText(b.subarray(L.dst, L.dst + n), dmsk), inv & INV_DSTIP)
  const inIf = ifaceText(b, L.iniface, L.inifaceMask)
  if (inIf !== undefined) rule.inInterface = not(inIf, inv & INV_VIA_IN)
  const outIf = ifaceText(b, L.outiface, L.outifaceMask)
  if (outIf !== undefined) rule.outInterface = not(outIf, inv & INV_VIA_OUT)
  const proto = b.readUInt16LE(L.proto)
  if (proto !== 0 || inv & INV_PROTO) rule.protocol = not(protocolName(proto, family), inv & INV_PROTO)
  if (family === 'inet' && flags & IPT_F_FRAG) rule.fragment = not(true, inv & INV_FRAG)
  const targetOffset = b.readUInt16LE(L.targetOffset)
  const matches: Match[] = []
  for (let o = L.size; o + XT_HEADER <= targetOffset;) {
    const size = b.readUInt16LE(o)
    if (size < XT_HEADER) break
    matches.push(decodeMatch(b, o, size, family, sets))
    o += size
  }
  if (matches.length) rule.matches = matches
  const tsize = b.readUInt16LE(targetOffset)
  const goto = (flags & (family === 'inet' ? IPT_F_GOTO : IP6T_F_GOTO)) !== 0
  const target = decodeTarget(b, targetOffset, tsize, family, label, goto)
  if (target) rule.target = target
  // counters last, as in the record type: { packets, bytes }
  const c = L.counters
  rule.counters = { packets: Number(b.readBigUInt64LE(c)), bytes: Number(b.readBigUInt64LE(c + 8)) }
  return rule
}

