// Rounding, medians and percentiles for the benchmarks (host and box side alike).

export const round = (x, d = 2) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d)
export const round2 = (x) => round(x, 2)
export const ratio = (a, b, d = 2) => (a != null && b != null && b > 0 ? round(a / b, d) : null)
/** 1000 → "1k", 300 → "300": the size labels of the tables. */
export const tag = (n) => (n >= 1000 ? `${n / 1000}k` : String(n))

/** The median of the values that are there (nulls skipped); null when none. */
export function median(xs) {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b)
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null
}

/** Nearest-rank percentile (nulls skipped); null when none. */
export function percentile(xs, p) {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b)
  if (!s.length) return null
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

export const stats = (xs) => ({ n: xs.length, p50: round2(percentile(xs, 50)), p90: round2(percentile(xs, 90)), p99: round2(percentile(xs, 99)), max: round2(Math.max(...xs)), mean: round2(xs.reduce((a, b) => a + b, 0) / xs.length) })
