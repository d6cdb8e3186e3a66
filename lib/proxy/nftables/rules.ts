// The statements of kube-proxy's nftables ruleset as the kernel runs them:
// each builder gives the expressions nft would send for the same text
// (`ip daddr . meta l4proto . th dport vmap @service-ips`, `ct state new`,
// `meta l4proto tcp dnat to 10.180.0.1:80`, ...), so what we write reads back
// in `nft list table ip kube-proxy` as kube-proxy's text, and what the kernel
// reads back compares equal to what we would write. Pure.
import { maskBytes, splitNetwork, addressBytes } from '../../address.js'
import { nftData as d, type NftExpr, type NftVerdict } from '../../nftables.js'
import type { Family } from '../../validate.js'

export type Proto = 'tcp' | 'udp' | 'sctp'

/** One rule of a chain: its expressions, an optional comment and, for `vmap { ... }` / `{ ... }`, the anonymous set it holds. */
export interface RuleSpec {
  readonly exprs: readonly NftExpr[]
  readonly comment?: string
  /** An anonymous set the rule looks up (named '__map%d' or '__set%d' in exprs). */
  readonly anon?: AnonSet
}

export interface AnonSet {
  readonly name: '__map%d' | '__set%d'
  readonly key: 'integer' | 'ipv4_addr' | 'ipv6_addr'
  readonly verdict: boolean
  readonly interval: boolean
  readonly elements: readonly { key: Uint8Array; verdict?: NftVerdict; intervalEnd?: boolean }[]
}

/** The addresses of one family as nft loads them: offsets in the IP header, length, data type names. */
export function familyLayout(family: Family) {
  return family === 'inet6'
    ? { nft: 'ip6' as const, saddr: 8, daddr: 24, len: 16, addrType: 'ipv6_addr' as const, l4reg: 12, portReg: 13 }
    : { nft: 'ip' as const, saddr: 12, daddr: 16, len: 4, addrType: 'ipv4_addr' as const, l4reg: 9, portReg: 10 }
}

const verdict = (v: NftVerdict): NftExpr => ({ type: 'verdict', verdict: v.verdict, ...(v.chain === undefined ? {} : { chain: v.chain }) })
export const jump = (chain: string): NftExpr => verdict({ verdict: 'jump', chain })
export const goTo = (chain: string): NftExpr => verdict({ verdict: 'goto', chain })
export const drop: NftExpr = { type: 'verdict', verdict: 'drop' }
export const ret: NftExpr = { type: 'verdict', verdict: 'return' }

/** `ct state new` (NF_CT_STATE_NEW_BIT = 1 << 3). */
export const ctStateNew: NftExpr[] = [
  { type: 'ct', key: 'state', dreg: 1 },
  { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(8), xor: d.u32(0) },
  { type: 'cmp', op: 'neq', sreg: 1, data: d.u32(0) },
]

export function addrBytes(ip: string): Uint8Array {
  const b = addressBytes(ip)
  if (!b) throw new Error(`not an address: ${ip}`)
  return b
}

/** `ip saddr|daddr [!=] X`, X an address or a network. */
export function addrMatch(family: Family, which: 'saddr' | 'daddr', value: string, negate = false): NftExpr[] {
  const f = familyLayout(family)
  const { address, prefix } = splitNetwork(value)
  const bytes = addrBytes(address)
  const out: NftExpr[] = [{ type: 'payload', base: 'network', offset: f[which], len: f.len, dreg: 1 }]
  const full = f.len * 8
  if (prefix !== undefined && prefix < full) {
    // nft compares a whole-byte prefix directly, a partial one through a mask.
    if (prefix % 8 === 0) {
      out[0] = { type: 'payload', base: 'network', offset: f[which], len: prefix / 8, dreg: 1 }
      out.push({ type: 'cmp', op: negate ? 'neq' : 'eq', sreg: 1, data: bytes.slice(0, prefix / 8) })
      return out
    }
    const mask = maskBytes(new Uint8Array(f.len).fill(0xff), prefix)
    out.push({ type: 'bitwise', sreg: 1, dreg: 1, len: f.len, mask, xor: new Uint8Array(f.len) })
    out.push({ type: 'cmp', op: negate ? 'neq' : 'eq', sreg: 1, data: maskBytes(bytes, prefix) })
    return out
  }
  out.push({ type: 'cmp', op: negate ? 'neq' : 'eq', sreg: 1, data: bytes })
  return out
}

/** `ip saddr|daddr [!=] @set`. */
export function addrInSet(family: Family, which: 'saddr' | 'daddr', set: string, negate = false): NftExpr[] {
  const f = familyLayout(family)
  return [
    { type: 'payload', base: 'network', offset: f[which], len: f.len, dreg: 1 },
    { type: 'lookup', set, sreg: 1, ...(negate ? { invert: true } : {}) },
  ]
}

/** `ip daddr . meta l4proto . th dport vmap @map`. */
export function daddrProtoPortVmap(family: Family, map: string): NftExpr[] {
  const f = familyLayout(family)
  return [
    { type: 'payload', base: 'network', offset: f.daddr, len: f.len, dreg: 1 },
    { type: 'meta', key: 'l4proto', dreg: f.l4reg },
    { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: f.portReg },
    { type: 'lookup', set: map, sreg: 1, dreg: 0 },
  ]
}

/** `meta l4proto . th dport vmap @map`. */
export function protoPortVmap(map: string): NftExpr[] {
  return [
    { type: 'meta', key: 'l4proto', dreg: 1 },
    { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 9 },
    { type: 'lookup', set: map, sreg: 1, dreg: 0 },
  ]
}

/** `update @set { ip saddr }`: the source address into a dynamic set (its timeout refreshed). */
export function updateSource(family: Family, set: string): NftExpr[] {
  const f = familyLayout(family)
  return [
    { type: 'payload', base: 'network', offset: f.saddr, len: f.len, dreg: 1 },
    { type: 'dynset', set, op: 'update', sregKey: 1 },
  ]
}

/** `fib saddr|daddr type local` (RTN_LOCAL = 2). */
export function fibLocal(which: 'saddr' | 'daddr'): NftExpr[] {
  return [
    { type: 'fib', result: 'addrtype', flags: [which], dreg: 1 },
    { type: 'cmp', op: 'eq', sreg: 1, data: d.u32(2) },
  ]
}

/** `ip daddr != 127.0.0.0/8` / `ip6 daddr != ::1`. */
export function notLocalhost(family: Family): NftExpr[] {
  return family === 'inet6' ? addrMatch(family, 'daddr', '::1', true) : addrMatch(family, 'daddr', '127.0.0.0/8', true)
}

/** `tcp dport 80` (nft loads the protocol first). */
export function protoDport(proto: Proto, port: number): NftExpr[] {
  return [
    { type: 'meta', key: 'l4proto', dreg: 1 },
    { type: 'cmp', op: 'eq', sreg: 1, data: d.proto(proto) },
    { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 1 },
    { type: 'cmp', op: 'eq', sreg: 1, data: d.port(port) },
  ]
}

/** `mark set mark or M`. */
export function markOr(mark: number): NftExpr[] {
  return [
    { type: 'meta', key: 'mark', dreg: 1 },
    { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(~mark >>> 0), xor: d.u32(mark) },
    { type: 'meta-set', key: 'mark', sreg: 1 },
  ]
}

/** `mark and M == 0`. */
export function markClear(mark: number): NftExpr[] {
  return [
    { type: 'meta', key: 'mark', dreg: 1 },
    { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(mark), xor: d.u32(0) },
    { type: 'cmp', op: 'eq', sreg: 1, data: d.u32(0) },
  ]
}

/** `mark set mark xor M`. */
export function markXor(mark: number): NftExpr[] {
  return [
    { type: 'meta', key: 'mark', dreg: 1 },
    { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(0xffffffff), xor: d.u32(mark) },
    { type: 'meta-set', key: 'mark', sreg: 1 },
  ]
}

/** `masquerade fully-random`. */
export const masqueradeFullyRandom: NftExpr = { type: 'masq', flags: ['random-fully'] }

/** `reject` as nft writes it in an ip / ip6 table: ICMP port unreachable (3) / ICMPv6 port unreachable (4). */
export function reject(family: Family): NftExpr {
  return { type: 'reject', reject: 'icmp-unreach', code: family === 'inet6' ? 4 : 3 }
}

/** `meta l4proto P dnat to IP:PORT`. */
export function dnat(family: Family, proto: Proto, ip: string, port: number): NftExpr[] {
  return [
    { type: 'meta', key: 'l4proto', dreg: 1 },
    { type: 'cmp', op: 'eq', sreg: 1, data: d.proto(proto) },
    { type: 'immediate', dreg: 1, data: addrBytes(ip) },
    { type: 'immediate', dreg: 2, data: d.port(port) },
    { type: 'nat', nat: 'dnat', family: familyLayout(family).nft, addrMin: 1, protoMin: 2, flags: ['proto-specified'] },
  ]
}

/** `numgen random mod N vmap { 0 : goto A, 1 : goto B, ... }`. */
export function numgenVmap(chains: readonly string[], comment?: string): RuleSpec {
  return {
    exprs: [
      { type: 'numgen', mode: 'random', modulus: chains.length, dreg: 1 },
      { type: 'lookup', set: '__map%d', sreg: 1, dreg: 0 },
    ],
    ...(comment === undefined ? {} : { comment }),
    anon: { name: '__map%d', key: 'integer', verdict: true, interval: false, elements: chains.map((c, i) => ({ key: d.u32(i), verdict: { verdict: 'goto', chain: c } })) },
  }
}

export const rule = (exprs: NftExpr[], comment?: string): RuleSpec => (comment === undefined ? { exprs } : { exprs, comment })

/**
 * A stable text of a rule (bytes as hex; anonymous set names left out; a nat
 * expression's 'map-ips' flag, which the kernel adds whenever an address is
 * given, left out): equal rules, equal keys.
 */
export function ruleKey(r: RuleSpec): string {
  return JSON.stringify(r, (k, v: unknown) => {
    if (k === 'flags' && Array.isArray(v)) return v.filter((f) => f !== 'map-ips')
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
    if (k === 'set' && typeof v === 'string' && v.startsWith('__')) return '__anon'
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>
      const out: Record<string, unknown> = {}
      for (const key of Object.keys(o).sort()) if (o[key] !== undefined && key !== 'name') out[key] = o[key]
      return out
    }
    return v
  })
}
