// IP addresses as the kernel compares them: bytes, not text. Two spellings of
// one address ('fd00::1' and 'fd00:0::1'), or two addresses inside one network
// ('10.0.0.1/24' and '10.0.0.0/24'), are one key here. Address families,
// prefix masks, CIDR containment and 'host:port' for the rest of lib/.
import { isIPv4, isIPv6 } from 'node:net'
import type { Family } from './validate.js'

/** The family of an address text ('inet', 'inet6'); undefined when it is neither (an IPv6 zone included). */
export function familyOf(text: string): Family | undefined {
  return isIPv4(text) ? 'inet' : isIPv6(text) && !text.includes('%') ? 'inet6' : undefined
}

/** Whether an address, or the address of a network 'address/prefix', is of `family`. */
export function inFamily(text: string, family: Family): boolean {
  const slash = text.indexOf('/')
  return familyOf(slash < 0 ? text : text.slice(0, slash)) === family
}

/**
 * Whether `text` is a dotted IPv4 address exactly as node:net's isIPv4 has it
 * (four decimal octets up to 255, no leading zeros), without its regular
 * expression: this runs twice per entry of a 100k batch.
 */
export function isIPv4Text(text: string): boolean {
  const n = text.length
  if (n < 7 || n > 15) return false
  let dots = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46
    if (c === 46) {
      if (digits === 0 || value > 255) return false
      if (i < n && ++dots > 3) return false
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return false // a leading zero
      value = value * 10 + (c - 48)
      if (++digits > 3) return false
    } else {
      return false
    }
  }
  return dots === 3
}

/** The 4 or 16 bytes of an IPv4 / IPv6 address; undefined when `text` is neither. */
export function addressBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number))
  if (!isIPv6(text) || text.includes('%')) return undefined
  // An embedded IPv4 tail ('::ffff:10.0.0.1') becomes two groups.
  let s = text
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (v4) {
    const b = v4[1]!.split('.').map(Number)
    s = s.slice(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`
  }
  const [head, tail] = s.split('::') as [string, string | undefined]
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : [])
  const h = groups(head)
  const t = groups(tail)
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  const out = new Uint8Array(16)
  all.forEach((g, i) => {
    const n = parseInt(g, 16)
    out[i * 2] = n >> 8
    out[i * 2 + 1] = n & 0xff
  })
  return out
}

/** The address with every bit past `prefix` cleared, as the kernel stores a network. */
export function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const mask = prefixMask(prefix, bytes.length)
  return bytes.map((b, i) => b & mask[i]!)
}

/** Whether `ip` lies in `cidr` ('10.0.0.0/8'; a bare address is a host). */
export function cidrContains(cidr: string, ip: string): boolean {
  const slash = cidr.indexOf('/')
  const net = addressBytes(slash < 0 ? cidr : cidr.slice(0, slash))
  const a = addressBytes(ip)
  if (!net || !a || net.length !== a.length) return false
  const prefix = slash < 0 ? net.length * 8 : Number(cidr.slice(slash + 1))
  const m1 = maskBytes(net, prefix)
  const m2 = maskBytes(a, prefix)
  return m1.every((b, i) => b === m2[i])
}

/** { host, port } of 'ip:port' ('[ip]:port' for IPv6), as Go's net.SplitHostPort reads it; undefined otherwise. */
export function splitHostPort(addr: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]+)$/.exec(addr)
  return m ? { host: m[1] ?? m[2]!, port: Number(m[3]) } : undefined
}

/**
 * One comparable string per address (and network, with `prefix`). Dotted IPv4
 * as node:net validates it has one spelling only (no leading zeros), so a host
 * is its own key and a network costs a little arithmetic.
 */
export function addressKey(text: string, prefix?: number): string {
  if (isIPv4Text(text)) {
    if (prefix === undefined || prefix >= 32) return text
    const p = text.split('.')
    const n = ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0
    return `${prefix <= 0 ? 0 : (n & (0xffffffff << (32 - prefix))) >>> 0}/${prefix}`
  }
  let b = addressBytes(text)
  if (!b) return `?${text}`
  if (prefix !== undefined) b = maskBytes(b, prefix)
  const hex = Buffer.from(b).toString('hex')
  return prefix === undefined ? hex : `${hex}/${prefix}`
}

/** RFC 5952 text of 4 or 16 address bytes, as inet_ntop writes it. */
export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
  const g: number[] = []
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!)
  // inet_ntop keeps an embedded IPv4 for ::ffff:a.b.c.d and ::a.b.c.d
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || (g[5] === 0 && (g[6] !== 0 || g[7]! > 1)))) {
    return `::${g[5] === 0xffff ? 'ffff:' : ''}${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  }
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = g.map((x) => x.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/**
 * The four bytes of a dotted IPv4 address (as isIPv4Text accepts it) written
 * into `out` at `o`; false when `text` is not one. By hand: rules and sets
 * carry many addresses.
 */
export function ipv4Into(text: string, out: Uint8Array, o = 0): boolean {
  let part = 0
  let digits = 0
  let value = 0
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46 // a final '.'
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

const masks = new Map<number, Uint8Array>()
/** The mask of a prefix length over `len` bytes (4 or 16); shared, never to be written to. */
export function prefixMask(prefix: number, len: number): Uint8Array {
  const key = len * 256 + prefix
  let m = masks.get(key)
  if (!m) {
    m = new Uint8Array(len)
    for (let i = 0; i < len; i++) m[i] = (0xff00 >> Math.max(0, Math.min(8, prefix - i * 8))) & 0xff
    masks.set(key, m)
  }
  return m
}

/** The prefix length of a contiguous mask, or -1 when it is not one. */
export function maskPrefix(mask: Uint8Array): number {
  let n = 0
  let i = 0
  for (; i < mask.length && mask[i] === 0xff; i++) n += 8
  if (i < mask.length) {
    const bits = [0, 0x80, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc, 0xfe].indexOf(mask[i]!)
    if (bits < 0) return -1
    n += bits
    for (i++; i < mask.length; i++) if (mask[i] !== 0) return -1
  }
  return n
}

/**
 * A network 'address/prefix' split at its slash; a bare address (a host) has
 * no prefix. A prefix that is not 1 to 3 decimal digits is NaN: every range
 * check refuses it. The address is not checked here.
 */
export function splitNetwork(text: string): { address: string; prefix?: number } {
  const slash = text.indexOf('/')
  if (slash < 0) return { address: text }
  const p = text.slice(slash + 1)
  return { address: text.slice(0, slash), prefix: /^\d{1,3}$/.test(p) ? Number(p) : NaN }
}
