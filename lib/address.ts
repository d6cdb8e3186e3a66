// IP addresses as the kernel compares them: bytes, not text. Two spellings of
// one address ('fd00::1' and 'fd00:0::1'), or two addresses inside one network
// ('10.0.0.1/24' and '10.0.0.0/24'), are one key here.
import { isIPv4, isIPv6 } from 'node:net'

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
  const out = Uint8Array.from(bytes)
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8))
    out[i]! &= (0xff00 >> keep) & 0xff
  }
  return out
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
