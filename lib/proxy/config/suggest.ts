// "did you mean": the known name a small edit away from a mistyped field or flag.

/** ' (did you mean --x?)' when a known name is a small edit away. */
export function suggest(name: string, known: string[], prefix = ''): string {
  let best: string | undefined
  let bestD = Math.max(2, Math.floor(name.length / 4)) + 1
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase())
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  return best === undefined ? '' : `; did you mean ${prefix}${best}?`
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]!
}
