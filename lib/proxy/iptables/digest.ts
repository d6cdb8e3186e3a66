// A chain's rules in a few bytes: what the iptables proxier keeps of each
// chain it wrote, instead of the rules themselves (at 10k services × 10
// endpoints, 111 000 chains and 310 000 rules). Two lists of rules that are
// equal as samePlain compares them (keys in any order, an undefined key
// absent, counters left out) have the same digest; a rule read back from the
// kernel and the same rule as desiredOf writes it, too. Hashed from the
// values, no text built (at 10k services a full sync digests 310 000 rules).
// Also what the proxier keeps of each port: its rules in shared chains and a
// digest per own chain (PortDigest). Pure.
import type { Rule } from '../../iptables.js'
import { EMPTY_PORT_RULES, type PortRules, type TablePart } from './desired.js'

/** The digest of a chain's rules (counters ignored): a count and a 64-bit hash, as text. */
export function chainDigest(rules: readonly Rule[]): string {
  let a = 0x811c9dc5
  let b = 0x2f6b7a1d
  for (const r of rules) {
    hashValue(r, true)
    a = fmix(Math.imul(a ^ A, 0x01000193) + 0x9e3779b9)
    b = fmix(Math.imul(b ^ B, 0x5bd1e995) + 0x7f4a7c15)
  }
  return `${rules.length}:${(a >>> 0).toString(36)}.${(b >>> 0).toString(36)}`
}

/** The number of rules a digest stands for. */
export function digestRules(digest: string): number {
  return Number(digest.slice(0, digest.indexOf(':')))
}

// The hash of the last value hashed, two independent 32-bit lanes (no object per value).
let A = 0
let B = 0

/** murmur3's finalizer: every input bit moves every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) | 0
}

function hashString(s: string, a: number, b: number): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995)
    b ^= b >>> 15
  }
  A = fmix(a ^ s.length)
  B = fmix(b ^ s.length)
}

/**
 * Hashes a plain value into A, B without building text: arrays in order,
 * object keys in any order (each key's hash with its value's, summed), an
 * undefined value as an absent key; `rule`: the key 'counters' left out.
 */
function hashValue(v: unknown, rule = false): void {
  switch (typeof v) {
    case 'string':
      return hashString(v, 0x73747231, 0x5a17c0de)
    case 'number':
      return hashString(String(v), 0x6e756d31, 0x1b873593)
    case 'boolean':
      A = v ? 0x2545f491 : 0x4f1bbcdc
      B = v ? 0x1b873593 : 0x68e31da4
      return
    case 'object': {
      if (v === null) {
        A = 0x6c8e9cf5
        B = 0x7feb352d
        return
      }
      if (Array.isArray(v)) {
        let a = 0x61727231 ^ v.length
        let b = 0x3c6ef372 ^ v.length
        for (const x of v) {
          hashValue(x)
          a = fmix(Math.imul(a ^ A, 0x01000193) + 0x9e3779b9)
          b = fmix(Math.imul(b ^ B, 0x5bd1e995) + 0x7f4a7c15)
        }
        A = a
        B = b
        return
      }
      let sa = 0
      let sb = 0
      let n = 0
      const o = v as Record<string, unknown>
      for (const k in o) {
        const x = o[k]
        if (x === undefined || (rule && k === 'counters')) continue
        hashValue(x)
        const xa = A
        const xb = B
        hashString(k, 0x6b657931, 0x0badf00d)
        sa = (sa + fmix(A ^ Math.imul(xa, 0x2c1b3c6d))) | 0
        sb = (sb + fmix(B ^ Math.imul(xb, 0x297a2d39))) | 0
        n++
      }
      A = fmix(sa ^ Math.imul(n, 0x01000193) ^ 0x6f626a31)
      B = fmix(sb ^ Math.imul(n, 0x5bd1e995) ^ 0x0f1e2d3c)
      return
    }
    default:
      A = 0x756e6466
      B = 0x3a8f05c5
  }
}

/** What is kept of a port's part of one table: its rules in shared chains (a few), a digest per own chain. */
export interface PartDigest {
  readonly shared: ReadonlyMap<string, readonly Rule[]>
  /** Own chain → chainDigest of its rules, in creation order. */
  readonly chains: ReadonlyMap<string, string>
  /** Rules of its own chains and in shared chains. */
  readonly rules: number
}

/** What is kept of a port's desired state. */
export interface PortDigest {
  readonly nat: PartDigest
  readonly filter: PartDigest
  readonly noLocalEndpoints: PortRules['noLocalEndpoints']
}

export const EMPTY_DIGEST: PartDigest = Object.freeze({ shared: new Map(), chains: new Map(), rules: 0 })
export const EMPTY_PORT_DIGEST: PortDigest = Object.freeze({ nat: EMPTY_DIGEST, filter: EMPTY_DIGEST, noLocalEndpoints: [] })

export function partDigest(part: TablePart): PartDigest {
  if (part.chains.size + part.shared.size === 0) return EMPTY_DIGEST
  const chains = new Map<string, string>()
  let rules = 0
  for (const [c, r] of part.chains) {
    chains.set(c, chainDigest(r))
    rules += r.length
  }
  for (const r of part.shared.values()) rules += r.length
  return { shared: part.shared, chains, rules }
}

export function portDigest(p: PortRules): PortDigest {
  if (p === EMPTY_PORT_RULES) return EMPTY_PORT_DIGEST
  return { nat: partDigest(p.nat), filter: partDigest(p.filter), noLocalEndpoints: p.noLocalEndpoints }
}
