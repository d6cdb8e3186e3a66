// A chain's rules in a few bytes: what the iptables proxier keeps of each
// chain it wrote, instead of the rules themselves (at 10k services × 10
// endpoints, 111 000 chains and 310 000 rules). Two lists of rules that are
// equal as samePlain compares them (keys in any order, an undefined key
// absent, counters left out) have the same digest; a rule read back from the
// kernel and the same rule as desiredOf writes it, too. Pure.
import type { Rule } from '../../iptables.js'

/** The digest of a chain's rules (counters ignored): a count and a 64-bit hash, as text. */
export function chainDigest(rules: readonly Rule[]): string {
  const h = new Hasher()
  for (const r of rules) {
    const { counters: _, ...plain } = r as Rule & { counters?: unknown }
    h.add(canonical(plain))
    h.add('\n')
  }
  return `${rules.length}:${h.text()}`
}

/** The number of rules a digest stands for. */
export function digestRules(digest: string): number {
  return Number(digest.slice(0, digest.indexOf(':')))
}

/** Stable text of a plain value: object keys sorted, undefined values left out. */
export function canonical(v: unknown): string {
  if (v === undefined) return 'u'
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) {
    let s = '['
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + canonical(v[i])
    return s + ']'
  }
  const o = v as Record<string, unknown>
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort()
  let s = '{'
  for (let i = 0; i < keys.length; i++) s += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + canonical(o[keys[i]!])
  return s + '}'
}

/** Two 32-bit FNV-1a lanes with different seeds over UTF-16 code units: not cryptographic, only to tell lists apart. */
class Hasher {
  #a = 0x811c9dc5
  #b = 0x01000193 ^ 0x5bd1e995

  add(s: string): void {
    let a = this.#a
    let b = this.#b
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x5bd1e995)
      b ^= b >>> 15
    }
    this.#a = a
    this.#b = b
  }

  text(): string {
    return (this.#a >>> 0).toString(36) + '.' + (this.#b >>> 0).toString(36)
  }
}
