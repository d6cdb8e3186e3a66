// Port matches: tcp and udp (ports, TCP flags) and multiport (up to 15 ports
// and ranges, one direction or either).
import type { Where } from '../../validate.js'
import * as v from '../../validate.js'
import { ext, type ExtFamily, not, type Obj, portRange, portsFor, range, type RulePlan, unwrap } from '../fields.js'
import { EXT, INV_PROTO, MULTIPORT } from '../layout.js'
import type { Match, Not, PortRange, TcpFlag } from '../model.js'

const TCP_FLAGS = v.table<TcpFlag, number>({ FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 })

function tcpFlagBits(at: Where, field: string, value: unknown): number {
  if (!Array.isArray(value)) v.fail(at, field, value, 'must be an array of FIN, SYN, RST, PSH, ACK, URG')
  let bits = 0
  value.forEach((f, i) => (bits |= TCP_FLAGS[v.oneOf(at, `${field}[${i}]`, f, Object.keys(TCP_FLAGS) as TcpFlag[])]))
  return bits
}

function portsPlan(name: 'tcp' | 'udp') {
  return (at: Where, field: string, m: Obj, plan: RulePlan) => {
    const tcp = name === 'tcp'
    v.only(at, field, m, tcp ? ['match', 'sport', 'dport', 'tcpFlags'] : ['match', 'sport', 'dport'])
    if (plan.proto !== (tcp ? 6 : 17) || plan.invflags & INV_PROTO)
      v.fail(at, `${field}.match`, m.match, `needs the rule's protocol to be ${name} (iptables: -p ${name})`)
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
      v.only(at, `${field}.tcpFlags`, fo, ['mask', 'set'])
      flgMask = tcpFlagBits(at, `${field}.tcpFlags.mask`, fo.mask)
      flgCmp = tcpFlagBits(at, `${field}.tcpFlags.set`, fo.set)
      if (f.not) inv |= 0x04 // XT_TCP_INV_FLAGS
    }
    return ext(name, tcp ? EXT.tcp : EXT.udp, (b, o) => {
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
}

function portsDecode(name: 'tcp' | 'udp') {
  return (b: Buffer, d: number): Match | undefined => {
    const tcp = name === 'tcp'
    const inv = b[d + (tcp ? 11 : 8)]!
    if (tcp && (b[d + 8] !== 0 || inv & ~0x07)) return undefined // tcp options: not modelled
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
}

export const tcp: ExtFamily<Match> = { spec: () => EXT.tcp, plan: portsPlan('tcp'), decode: portsDecode('tcp') }
export const udp: ExtFamily<Match> = { spec: () => EXT.udp, plan: portsPlan('udp'), decode: portsDecode('udp') }

export const multiport: ExtFamily<Match> = {
  spec: () => EXT.multiport,
  plan(at, field, m, plan) {
    v.only(at, field, m, ['match', 'sports', 'dports', 'ports'])
    const given = (['sports', 'dports', 'ports'] as const).filter((k) => m[k] !== undefined)
    if (given.length !== 1) v.fail(at, field, m, 'needs exactly one of sports, dports, ports')
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
  },
  decode(b, d) {
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
    if (!key) return undefined
    return { match: 'multiport', [key]: not(list, b[d + MULTIPORT.invert]!) } as Match
  },
}
