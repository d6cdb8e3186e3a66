// Go's durations as kube-proxy's configuration and flags spell them ('1m30s',
// '500ms'), held in milliseconds.

const UNIT_NS: Record<string, bigint> = { ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n }
const MAX_DURATION_NS = (1n << 63n) - 1n

/**
 * Go's time.ParseDuration ('300ms', '-1.5h', '2h45m', '1h2m3s4ms5us6ns'), in
 * milliseconds: whole parts exact (int64 nanoseconds, overflow refused as Go
 * refuses it), fractions truncated to the nanosecond. Throws an Error saying why.
 */
export function parseGoDuration(text: string): number {
  const quoted = JSON.stringify(text)
  let s = text
  let negative = false
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-'
    s = s.slice(1)
  }
  if (s === '0') return 0
  if (s === '') throw new Error(`invalid duration ${quoted}`)
  let ns = 0n
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!
    const whole = m[1]!
    const frac = m[2]
    if (whole === '' && (frac === undefined || frac === '')) throw new Error(`invalid duration ${quoted}`)
    s = s.slice(m[0].length)
    const unit = /^[^0-9.]+/.exec(s)?.[0]
    if (unit === undefined) throw new Error(`missing unit in duration ${quoted}`)
    const scale = UNIT_NS[unit]
    if (scale === undefined) throw new Error(`unknown unit ${JSON.stringify(unit)} in duration ${quoted}`)
    s = s.slice(unit.length)
    ns += BigInt(whole || '0') * scale
    if (frac) ns += BigInt(Math.floor(Number(`0.${frac}`) * Number(scale)))
    if (ns > MAX_DURATION_NS + (negative ? 1n : 0n)) throw new Error(`invalid duration ${quoted}`)
  }
  return (negative ? -Number(ns) : Number(ns)) / 1e6
}

/** A duration in Go's spelling ('1m30s', '500ms', '0s'), from milliseconds. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s'
  const neg = ms < 0
  let ns = Math.round(Math.abs(ms) * 1e6)
  let out: string
  if (ns < 1e9) {
    out = ns < 1e3 ? `${ns}ns` : ns < 1e6 ? `${trim(ns / 1e3)}µs` : `${trim(ns / 1e6)}ms`
  } else {
    const h = Math.floor(ns / 3600e9)
    ns -= h * 3600e9
    const m = Math.floor(ns / 60e9)
    ns -= m * 60e9
    out = `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(ns / 1e9)}s`
  }
  return neg ? `-${out}` : out
}

function trim(n: number): string {
  return String(Number(n.toFixed(9)))
}
