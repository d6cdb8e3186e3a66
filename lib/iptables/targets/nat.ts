// The NAT targets: DNAT --to-destination, SNAT --to-source, MASQUERADE
// --to-ports. IPv4 SNAT and MASQUERADE keep the old compat range
// (nf_nat_ipv4_multi_range_compat) at the revisions iptables-legacy writes;
// the rest use nf_nat_range / nf_nat_range2.
import { formatAddress } from '../../address.js'
import type { Family, Where } from '../../validate.js'
import * as v from '../../validate.js'
import { addressOf, ext, type ExtFamily, portRange, portsFor, range, type RulePlan, yes } from '../fields.js'
import { EXT, NAT_COMPAT, NAT_RANGE } from '../layout.js'
import type { Target } from '../model.js'

const NAT_MAP_IPS = 1
const NAT_PROTO_SPECIFIED = 2
const NAT_PROTO_RANDOM = 4
const NAT_PERSISTENT = 8
const NAT_PROTO_RANDOM_FULLY = 16

function natTable(at: Where, field: string, name: string, table: string): void {
  if (table !== 'nat') v.fail(at, `${field}.target`, name, `works in the nat table only (this is ${table})`)
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


export const dnat: ExtFamily<Target> = {
  spec: () => EXT.DNAT,
  plan(at, field, t, plan, ctx) {
    v.only(at, field, t, ['target', 'toDestination', 'random', 'persistent'])
    natTable(at, field, 'DNAT', ctx.table)
    const r = natRange(at, `${field}.toDestination`, t.toDestination, plan.family, plan)
    const flags = r.flags | (yes(at, `${field}.random`, t.random) ? NAT_PROTO_RANDOM : 0) | (yes(at, `${field}.persistent`, t.persistent) ? NAT_PERSISTENT : 0)
    return ext('DNAT', EXT.DNAT, (b, o) => writeNatRange(b, o, flags, r))
  },
  decode(b, d, family) {
    const r = decodeNat(b, d, false, family)
    if (r.flags & ~(NAT_MAP_IPS | NAT_PROTO_SPECIFIED | NAT_PROTO_RANDOM | NAT_PERSISTENT)) return undefined
    return { target: 'DNAT', toDestination: r.text, ...(r.flags & NAT_PROTO_RANDOM ? { random: true as const } : {}), ...(r.flags & NAT_PERSISTENT ? { persistent: true as const } : {}) }
  },
}

const KNOWN = NAT_PROTO_RANDOM | NAT_PERSISTENT | NAT_PROTO_RANDOM_FULLY | NAT_MAP_IPS | NAT_PROTO_SPECIFIED

/** SNAT and MASQUERADE read back alike: the IPv4 compat range holds exactly one range. */
function decodeSource(b: Buffer, d: number, family: Family): { flags: number; text: string; ports: [number, number]; extra: { random?: true; randomFully?: true } } | undefined {
  const compat = family === 'inet'
  if (compat && b.readUInt32LE(d + NAT_COMPAT.rangesize) !== 1) return undefined
  const r = decodeNat(b, d, compat, family)
  if (r.flags & ~KNOWN) return undefined
  const extra = {
    ...(r.flags & NAT_PROTO_RANDOM ? { random: true as const } : {}),
    ...(r.flags & NAT_PROTO_RANDOM_FULLY ? { randomFully: true as const } : {}),
  }
  return { ...r, extra }
}

export const snat: ExtFamily<Target> = {
  spec: (family) => (family === 'inet' ? EXT.SNAT4 : EXT.SNAT6),
  plan(at, field, t, plan, ctx) {
    v.only(at, field, t, ['target', 'toSource', 'random', 'randomFully', 'persistent'])
    natTable(at, field, 'SNAT', ctx.table)
    const r = natRange(at, `${field}.toSource`, t.toSource, plan.family, plan)
    const flags = r.flags | (yes(at, `${field}.random`, t.random) ? NAT_PROTO_RANDOM : 0)
      | (yes(at, `${field}.randomFully`, t.randomFully) ? NAT_PROTO_RANDOM_FULLY : 0)
      | (yes(at, `${field}.persistent`, t.persistent) ? NAT_PERSISTENT : 0)
    if (plan.family === 'inet') return ext('SNAT', EXT.SNAT4, (b, o) => writeNatCompat(b, o, flags, r))
    return ext('SNAT', EXT.SNAT6, (b, o) => writeNatRange(b, o, flags, r))
  },
  decode(b, d, family) {
    const r = decodeSource(b, d, family)
    if (!r) return undefined
    return { target: 'SNAT', toSource: r.text, ...r.extra, ...(r.flags & NAT_PERSISTENT ? { persistent: true as const } : {}) }
  },
}

export const masquerade: ExtFamily<Target> = {
  spec: (family) => (family === 'inet' ? EXT.MASQUERADE4 : EXT.MASQUERADE6),
  plan(at, field, t, plan, ctx) {
    v.only(at, field, t, ['target', 'toPorts', 'random', 'randomFully'])
    natTable(at, field, 'MASQUERADE', ctx.table)
    let flags = 0
    let ports: [number, number] = [0, 0]
    if (t.toPorts !== undefined) {
      portsFor(at, `${field}.toPorts`, plan, 'MASQUERADE --to-ports')
      ports = portRange(at, `${field}.toPorts`, t.toPorts)
      flags |= NAT_PROTO_SPECIFIED
    }
    flags |= (yes(at, `${field}.random`, t.random) ? NAT_PROTO_RANDOM : 0) | (yes(at, `${field}.randomFully`, t.randomFully) ? NAT_PROTO_RANDOM_FULLY : 0)
    const r = { flags, min: new Uint8Array(16), max: new Uint8Array(16), ports }
    if (plan.family === 'inet') return ext('MASQUERADE', EXT.MASQUERADE4, (b, o) => writeNatCompat(b, o, flags, r))
    return ext('MASQUERADE', EXT.MASQUERADE6, (b, o) => writeNatRange(b, o, flags, r))
  },
  decode(b, d, family) {
    const r = decodeSource(b, d, family)
    if (!r || r.flags & (NAT_MAP_IPS | NAT_PERSISTENT)) return undefined
    return { target: 'MASQUERADE', ...(r.flags & NAT_PROTO_SPECIFIED ? { toPorts: range(r.ports[0], r.ports[1]) } : {}), ...r.extra }
  },
}
