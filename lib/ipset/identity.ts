// An entry's identity inside its set, as the kernel compares entries (by
// address, network, protocol, port, set name; not by timeout or comment): as a
// string, as a comparison, and as a 64-bit hash with an index over it for the
// batch paths that meet 100k entries at a time.
import { addressKey } from '../address.js'
import type { WireEntry } from './wire.js'

/** The identity of an entry inside its set, as the kernel compares entries. */
export function entryKey(w: WireEntry): string {
  return `${w.ip === undefined ? '' : addressKey(w.ip, w.cidr)}|${w.port ?? ''}|${w.proto ?? ''}|${w.ip2 === undefined ? '' : addressKey(w.ip2, w.cidr2)}|${w.name ?? ''}`
}

function sameAddr(x: string | undefined, px: number | undefined, y: string | undefined, py: number | undefined): boolean {
  return x === undefined || y === undefined ? x === y : (x === y && px === py) || addressKey(x, px) === addressKey(y, py)
}

/** Two entries the kernel would take for one (addresses compared as the kernel stores them). */
export function sameEntry(a: WireEntry, b: WireEntry): boolean {
  return a.port === b.port && a.proto === b.proto && a.name === b.name && sameAddr(a.ip, a.cidr, b.ip, b.cidr) && sameAddr(a.ip2, a.cidr2, b.ip2, b.cidr2)
}

/**
 * Two independent 32-bit hashes (h1, h2) of an entry's identity (what entryKey
 * says): equal entries hash equal; two different entries agree on all 64 bits
 * about never (and if they did, a batch would only be split once more). One
 * object serves a whole batch, refilled by of(): nothing is allocated per entry.
 */
export class EntryHash {
  h1 = 0
  h2 = 0

  /** Hashes `w` (and the set it goes to, when a batch spans several) into h1, h2. */
  of(w: WireEntry, set: string | undefined): this {
    this.h1 = 0x811c9dc5
    this.h2 = 0x2545f491
    // IPv4 hosts have one spelling; anything else goes through its canonical key.
    if (w.ip !== undefined) this.#mix(w.cidr === undefined && !w.ip.includes(':') ? w.ip : addressKey(w.ip, w.cidr))
    if (w.ip2 !== undefined) this.#mix(w.cidr2 === undefined && !w.ip2.includes(':') ? w.ip2 : addressKey(w.ip2, w.cidr2))
    if (w.name !== undefined) this.#mix(w.name)
    if (set !== undefined) this.#mix(set)
    const pp = (w.port ?? 0x10000) | ((w.proto ?? 0x100) << 17)
    this.h1 = Math.imul(this.h1 ^ pp, 0x01000193)
    this.h2 = Math.imul(this.h2 + pp, 0x5bd1e995) ^ (this.h2 >>> 13)
    return this
  }

  /** Folds a string in, then a separator. */
  #mix(x: string): void {
    let h1 = this.h1
    let h2 = this.h2
    for (let i = 0; i < x.length; i++) {
      const c = x.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 0x01000193) // FNV-1a
      h2 = Math.imul(h2 + c, 0x5bd1e995) ^ (h2 >>> 15) // a murmur-style step
    }
    this.h1 = Math.imul(h1 ^ 0x7c, 0x01000193)
    this.h2 = Math.imul(h2 + 0x7c, 0x5bd1e995) ^ (h2 >>> 15)
  }
}

/**
 * Entries by their two hashes, to an int: open addressing in typed arrays (a
 * JavaScript Set or Map of 100k keys cost more than validating them, in
 * hashing and in garbage).
 */
export class HashIndex {
  #a = new Int32Array(0)
  #b = new Int32Array(0)
  #v = new Int32Array(0)
  #mask = 0
  #shift = 32
  #count = 0

  constructor(expected: number) {
    let size = 1024
    while (size < expected * 2) size *= 2
    this.#alloc(size)
  }

  #alloc(size: number): void {
    this.#a = new Int32Array(size)
    this.#b = new Int32Array(size)
    this.#v = new Int32Array(size).fill(-1)
    this.#mask = size - 1
    this.#shift = 32 - Math.log2(size)
    this.#count = 0
  }

  #slot(x: number, y: number): number {
    // Fibonacci hashing of both: the top bits of a multiplication spread
    // similar keys (addresses that differ in one digit) over the table.
    let i = Math.imul(x ^ ((y << 7) | (y >>> 25)), 0x9e3779b1) >>> this.#shift
    while (this.#v[i] !== -1 && (this.#a[i] !== x || this.#b[i] !== y)) i = (i + 1) & this.#mask
    return i
  }

  /** The value under the key `k` hashes to, or -1. */
  get(k: EntryHash): number {
    return this.#v[this.#slot(k.h1, k.h2)]!
  }

  /** Sets the key `k` hashes to, to a value >= 0. */
  set(k: EntryHash, value: number): void {
    this.#put(k.h1, k.h2, value)
  }

  clear(): void {
    this.#v.fill(-1)
    this.#count = 0
  }

  #put(x: number, y: number, value: number): void {
    if (this.#count * 2 >= this.#mask) this.#grow()
    const i = this.#slot(x, y)
    if (this.#v[i] === -1) this.#count++
    this.#a[i] = x
    this.#b[i] = y
    this.#v[i] = value
  }

  #grow(): void {
    const [a, b, v] = [this.#a, this.#b, this.#v]
    this.#alloc(v.length * 2)
    for (let i = 0; i < v.length; i++) if (v[i] !== -1) this.#put(a[i]!, b[i]!, v[i]!)
  }
}
