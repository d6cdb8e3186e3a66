// Bytes as nf_tables compares them: set keys and cmp data for the datatypes the
// proxy uses, concatenations laid out as the kernel's registers hold them, and
// nft's user-data TLVs (how `nft list` finds a comment).
import { isIPv4, isIPv6 } from 'node:net'
import { addressBytes } from '../address.js'
import { ValidationError } from '../errors.js'
import { DATATYPES, type NftDatatype } from './kernel.js'

const PROTOCOLS: Record<string, number> = Object.assign(Object.create(null) as Record<string, number>, { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 })

function refuse(what: string, value: unknown, reason: string): never {
  throw new ValidationError('nftables.data', what, value, reason)
}

/** An IPv4 address: 4 bytes, network order. */
export function ipv4(address: string): Uint8Array {
  if (!isIPv4(address)) refuse('ipv4', address, 'must be an IPv4 address')
  return addressBytes(address)!
}

/** An IPv6 address: 16 bytes, network order. */
export function ipv6(address: string): Uint8Array {
  if (!isIPv6(address) || address.includes('%')) refuse('ipv6', address, 'must be an IPv6 address')
  return addressBytes(address)!
}

/** An IPv4 or IPv6 address, its bytes. */
export function ip(address: string): Uint8Array {
  return isIPv4(address) ? ipv4(address) : ipv6(address)
}

/** An L4 protocol (inet_proto): one byte. */
export function proto(p: 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6' | number): Uint8Array {
  const n = typeof p === 'number' ? p : PROTOCOLS[p]
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 255) refuse('proto', p, 'must be tcp, udp, sctp, icmp, icmpv6 or 0..255')
  return Uint8Array.of(n)
}

/** A port (inet_service): 2 bytes, network order. */
export function port(p: number): Uint8Array {
  if (!Number.isInteger(p) || p < 0 || p > 65535) refuse('port', p, 'must be 0..65535')
  return Uint8Array.of(p >> 8, p & 0xff)
}

/** A 32-bit integer as the kernel's registers hold meta and numgen values (host order, little-endian here). */
export function u32(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) refuse('u32', n, 'must be 0..2^32-1')
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n, true)
  return b
}

/** A 32-bit integer in network order (payload fields). */
export function be32(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) refuse('be32', n, 'must be 0..2^32-1')
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n, false)
  return b
}

/** An interface name (ifname): 16 bytes, NUL padded. */
export function ifname(name: string): Uint8Array {
  const b = Buffer.from(name, 'utf8')
  if (b.length === 0 || b.length > 15) refuse('ifname', name, 'must be 1 to 15 bytes')
  const out = new Uint8Array(16)
  out.set(b)
  return out
}

/**
 * A network ('10.0.0.0/8', or an address: one host) as an interval set holds
 * it: its first address, and the address after its last flagged as the end
 * (none when the network reaches the top of the address space).
 */
export function cidr(network: string): { key: Uint8Array; intervalEnd?: true }[] {
  const [addr, len] = network.split('/') as [string, string | undefined]
  const start = ip(addr)
  const bits = start.length * 8
  const prefix = len === undefined ? bits : Number(len)
  if (!/^\d+$/.test(len ?? String(bits)) || prefix > bits) refuse('cidr', network, `must be an address or address/prefix (prefix 0..${bits})`)
  for (let i = 0; i < start.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8))
    start[i]! &= (0xff << (8 - keep)) & 0xff
  }
  // The end: the start with every host bit set, plus one (carrying upwards).
  const end = Uint8Array.from(start)
  for (let i = 0; i < end.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8))
    end[i]! |= ~((0xff << (8 - keep)) & 0xff) & 0xff
  }
  let i = end.length - 1
  for (; i >= 0; i--) {
    if (end[i] === 0xff) end[i] = 0
    else {
      end[i]!++
      break
    }
  }
  return i < 0 ? [{ key: start }] : [{ key: start }, { key: end, intervalEnd: true }]
}

/**
 * A concatenated key (`ipv4_addr . inet_proto . inet_service`): each field
 * padded to 4 bytes, as the kernel loads a concatenation into consecutive
 * 32-bit registers.
 */
export function concat(...fields: Uint8Array[]): Uint8Array {
  const size = fields.reduce((n, f) => n + pad4(f.length), 0)
  const out = new Uint8Array(size)
  let off = 0
  for (const f of fields) {
    out.set(f, off)
    off += pad4(f.length)
  }
  return out
}

export function pad4(n: number): number {
  return (n + 3) & ~3
}

/** The key type and length of a (concatenated) key, and its fields' lengths. */
export function keyLayout(key: NftDatatype | NftDatatype[]): { type: number; len: number; fields: number[] } {
  const parts = Array.isArray(key) ? key : [key]
  let type = 0
  let len = 0
  const fields: number[] = []
  for (const p of parts) {
    const d = DATATYPES[p]
    type = (type << 6) | d.type
    len += parts.length > 1 ? pad4(d.len) : d.len
    fields.push(d.len)
  }
  return { type: type >>> 0, len, fields }
}

/** The datatype names of a set's key type (a concatenation split in 6-bit fields); undefined when one is not named here. */
export function keyTypes(type: number): NftDatatype[] | undefined {
  const byType = new Map<number, NftDatatype>(Object.entries(DATATYPES).map(([k, v]) => [v.type, k as NftDatatype]))
  const out: NftDatatype[] = []
  let t = type
  do {
    const name = byType.get(t & 0x3f)
    if (!name) return undefined
    out.unshift(name)
    t = Math.floor(t / 64)
  } while (t > 0)
  return out
}

// ---- user data: nft's TLVs (type: u8, length: u8, value) ----

/** The longest comment nft accepts (its NFT_USERDATA_MAXLEN / 2). */
export const COMMENT_MAXLEN = 128

/** TLVs, each value a string with its NUL (as nft writes a comment) or raw bytes. */
export function udata(items: { type: number; value: string | Uint8Array }[]): Uint8Array {
  const parts: number[] = []
  for (const { type, value } of items) {
    const v = typeof value === 'string' ? Buffer.concat([Buffer.from(value, 'utf8'), Buffer.of(0)]) : value
    parts.push(type, v.length, ...v)
  }
  return Uint8Array.from(parts)
}

/** The TLVs of a user-data blob; a truncated last one is left out. */
export function parseUdata(b: Uint8Array | undefined): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>()
  if (!b) return out
  for (let i = 0; i + 2 <= b.length; ) {
    const type = b[i]!
    const len = b[i + 1]!
    if (i + 2 + len > b.length) break
    out.set(type, b.subarray(i + 2, i + 2 + len))
    i += 2 + len
  }
  return out
}

/** A TLV value as a string (up to its NUL). */
export function udataString(v: Uint8Array | undefined): string | undefined {
  if (!v) return undefined
  const nul = v.indexOf(0)
  return Buffer.from(v.subarray(0, nul < 0 ? v.length : nul)).toString('utf8')
}
