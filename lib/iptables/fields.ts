// What every part of a rule shares, in both directions: the plan a match or
// target validates into, the fields several families use (protocol, ports,
// addresses and networks, interfaces, strings, chain names) checked into
// bytes, and the same fields read back from an entry.
import { isIPv6 } from 'node:net'
import { addressBytes, formatAddress, ipv4Into, maskPrefix, prefixMask } from '../address.js'
import type { Family, Where } from '../validate.js'
import * as v from '../validate.js'
import { IFNAMSIZ, INV_PROTO, XT_HEADER, XT_NAME_LEN } from './layout.js'
import { BUILTIN_CHAINS, type IptablesProtocol, type IptablesTable, type Not, type PortRange, type RawExtension } from './model.js'

const PROTOCOLS: Readonly<Record<string, number>> = v.table({
  icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, icmpv6: 58, sctp: 132, udplite: 136, dccp: 33,
})
const PROTOCOL_NAMES = new Map(Object.entries(PROTOCOLS).map(([k, n]) => [n, k]))
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136])
export const TARGET_NAMES = ['ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'REJECT', 'DNAT', 'SNAT', 'MASQUERADE', 'MARK', 'LOG', 'raw'] as const
export const U32 = 0xffffffff

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

// ---- plans -----------------------------------------------------------------------------------

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

export interface RuleContext {
  family: Family
  table: IptablesTable
}

export type Obj = Record<string, unknown>

/** What a dump said about ipset indexes (index -> name). */
export type SetNames = Record<string, string>

/**
 * One match or target family (tcp, conntrack, DNAT, ...): how a part of a
 * rule is validated into a plan, and how its data reads back.
 */
export interface ExtFamily<R> {
  /** The revision and data size written for an address family: the only one read back as this family. */
  spec(family: Family): { revision: number; size: number }
  /** Validates `m` (at `field`; a ValidationError names what is wrong) into what writes its data. */
  plan(at: Where, field: string, m: Obj, plan: RulePlan, ctx: RuleContext): ExtPlan
  /** The data at `d` read back; undefined when it holds what the model does not express (read back as raw). */
  decode(b: Buffer, d: number, family: Family, sets: SetNames): R | undefined
}

/** The extension at `o` read back by its family, if it has one and is of the revision and size that family writes. */
export function readExt<R>(families: Map<string, ExtFamily<R>>, b: Buffer, o: number, size: number, family: Family, sets: SetNames): R | undefined {
  const f = families.get(cstr(b, o + 2, o + 2 + XT_NAME_LEN))
  const spec = f?.spec(family)
  return spec && b[o + 31] === spec.revision && size === XT_HEADER + spec.size ? f!.decode(b, o + XT_HEADER, family, sets) : undefined
}

// ---- validation of shared fields ------------------------------------------------------------

const isNot = (x: unknown): x is { not: unknown } =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && Object.keys(x).length === 1 && 'not' in x

export function unwrap(x: unknown): { value: unknown; not: boolean } {
  return isNot(x) ? { value: x.not, not: true } : { value: x, not: false }
}

export function yes(at: Where, field: string, value: unknown): boolean {
  if (value === undefined) return false
  if (value !== true) v.fail(at, field, value, 'must be true when given')
  return true
}

export function protocolNumber(at: Where, field: string, value: unknown): number {
  if (typeof value === 'number') return v.integer(at, field, value, 0, 255)
  if (typeof value === 'string') {
    const n = value === 'all' ? 0 : value === 'ipv6-icmp' ? 58 : PROTOCOLS[value]
    if (n !== undefined) return n
  }
  return v.fail(at, field, value, `must be a protocol number 0..255 or one of ${Object.keys(PROTOCOLS).join(', ')}`)
}

export function portRange(at: Where, field: string, value: unknown): [number, number] {
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

export function addressOf(at: Where, field: string, value: unknown, family: Family): Uint8Array {
  if (typeof value !== 'string') v.fail(at, field, value, 'must be an IP address string')
  if (family === 'inet') {
    const b = new Uint8Array(4)
    if (ipv4Into(value, b)) return b
  }
  v.address(at, field, value, family)
  return addressBytes(value)!
}

/** 'a.b.c.d', 'a.b.c.d/len', IPv6 likewise: the address and the prefix's mask (masked address when `mask`). */
export function cidr(at: Where, field: string, value: unknown, family: Family, applyMask: boolean): { bytes: Uint8Array; mask: Uint8Array; prefix: number } {
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
    if (!ipv4Into(addr, bytes)) v.fail(at, field, value, 'is not an IPv4 address or network')
  } else {
    if (!isIPv6(addr)) v.fail(at, field, value, 'is not an IPv6 address or network')
    bytes = addressBytes(addr)!
  }
  const mask = prefixMask(prefix, max / 8)
  if (applyMask) for (let i = 0; i < bytes.length; i++) bytes[i]! &= mask[i]!
  return { bytes, mask, prefix }
}

export function iface(at: Where, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) v.fail(at, field, value, 'must be an interface name')
  if (Buffer.byteLength(value) > IFNAMSIZ - 1) v.fail(at, field, value, `is longer than ${IFNAMSIZ - 1} bytes (IFNAMSIZ)`)
  if (/[\s/]/.test(value) || value.includes('\0')) v.fail(at, field, value, "must not contain '/' or blanks")
  return value
}

/** xtables_parse_interface: the name (with its '+'), and 0xff over what must match. */
export function writeIface(b: Buffer, nameAt: number, maskAt: number, name: string): void {
  b.write(name, nameAt, 'latin1')
  const len = name.length
  b.fill(0xff, maskAt, maskAt + (name.endsWith('+') ? len - 1 : len + 1))
}

export function str(at: Where, field: string, value: unknown, size: number, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0)) v.fail(at, field, value, 'must be a non-empty string')
  if (value.includes('\0')) v.fail(at, field, value, 'must not contain NUL')
  if (Buffer.byteLength(value) > size - 1) v.fail(at, field, value, `is longer than ${size - 1} bytes`)
  return value
}

export function ext(name: string, spec: { revision: number; size: number; user: number }, write: (b: Buffer, o: number) => void, set?: string): ExtPlan {
  return { name, revision: spec.revision, size: spec.size, user: spec.user, write, ...(set === undefined ? {} : { set }) }
}

export function portsFor(at: Where, field: string, plan: RulePlan, what: string): void {
  if (!PORT_PROTOCOLS.has(plan.proto) || plan.invflags & INV_PROTO)
    v.fail(at, field, undefined, `needs the rule's protocol to be tcp, udp, udplite, sctp or dccp (${what})`)
}

export function rawPlan(at: Where, field: string, m: Obj): ExtPlan {
  const name = str(at, `${field}.name`, m.name, XT_NAME_LEN)
  const revision = v.integer(at, `${field}.revision`, m.revision, 0, 255)
  if (typeof m.data !== 'string' || !/^([0-9a-f]{2})*$/i.test(m.data)) v.fail(at, `${field}.data`, m.data, 'must be a hex string')
  const data = Buffer.from(m.data, 'hex')
  if (data.length % 8 !== 0 || data.length > 0xffff - XT_HEADER) v.fail(at, `${field}.data`, m.data, 'must be a multiple of 8 bytes (XT_ALIGN)')
  return ext(name, { revision, size: data.length, user: data.length }, (b, o) => void data.copy(b, o))
}

// ---- reading back ----------------------------------------------------------------------------

export const not = <T>(value: T, inverted: boolean | number): Not<T> => (inverted ? { not: value } : value)
export const cstr = (b: Buffer, from: number, to: number, enc: BufferEncoding = 'latin1'): string => {
  const end = b.indexOf(0, from)
  return b.toString(enc, from, end < 0 || end > to ? to : end)
}
export const range = (lo: number, hi: number): PortRange => (lo === hi ? lo : [lo, hi])
const isZero = (b: Buffer, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false
  return true
}

export function cidrText(addr: Uint8Array, mask: Uint8Array): string {
  const p = maskPrefix(mask)
  return `${formatAddress(addr)}/${p < 0 ? formatAddress(mask) : p}`
}

export function ifaceText(b: Buffer, nameAt: number, maskAt: number): string | undefined {
  const name = cstr(b, nameAt, nameAt + IFNAMSIZ)
  if (name === '' && isZero(b, maskAt, maskAt + IFNAMSIZ)) return undefined
  return name
}

export function protocolName(n: number, family: Family): IptablesProtocol {
  if (family === 'inet6' && n === 58) return 'icmpv6'
  return (PROTOCOL_NAMES.get(n) as IptablesProtocol | undefined) ?? n
}

export function rawOf(b: Buffer, o: number, size: number): RawExtension {
  return { name: cstr(b, o + 2, o + 2 + XT_NAME_LEN), revision: b[o + 31]!, data: b.toString('hex', o + XT_HEADER, o + size) }
}

