// -m conntrack: the connection's state, status, original and reply tuples,
// remaining lifetime and direction (xt_conntrack_mtinfo3).
import { formatAddress } from '../../address.js'
import type { Family, Where } from '../../validate.js'
import * as v from '../../validate.js'
import { cidr, cidrText, ext, type ExtFamily, type ExtPlan, not, type Obj, portRange, protocolName, protocolNumber, range, U32, unwrap } from '../fields.js'
import { CONNTRACK, EXT } from '../layout.js'
import type { ConntrackMatch, CtState, CtStatus, Match, Not, PortRange } from '../model.js'

// XT_CONNTRACK_STATE_BIT(IP_CT_*) and the three extra states of xt_conntrack.h.
const CT_STATES = v.table<CtState, number>({ INVALID: 1 << 0, ESTABLISHED: 1 << 1, RELATED: 1 << 2, NEW: 1 << 3, SNAT: 1 << 6, DNAT: 1 << 7, UNTRACKED: 1 << 8 })
const CT_STATUS = v.table<CtStatus, number>({ EXPECTED: 1 << 0, SEEN_REPLY: 1 << 1, ASSURED: 1 << 2, CONFIRMED: 1 << 3 })
const CT = {
  STATE: 1 << 0, PROTO: 1 << 1, ORIGSRC: 1 << 2, ORIGDST: 1 << 3, REPLSRC: 1 << 4, REPLDST: 1 << 5,
  STATUS: 1 << 6, EXPIRES: 1 << 7, ORIGSRC_PORT: 1 << 8, ORIGDST_PORT: 1 << 9, REPLSRC_PORT: 1 << 10,
  REPLDST_PORT: 1 << 11, DIRECTION: 1 << 12,
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
  v.only(at, field, m, ['match', ...keys])
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


export const conntrack: ExtFamily<Match> = {
  spec: () => EXT.conntrack,
  plan: (at, field, m, plan) => conntrackPlan(at, field, m, plan.family),
  decode: decodeConntrack,
}
