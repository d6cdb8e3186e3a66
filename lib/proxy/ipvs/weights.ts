// The real servers of one applied virtual server, with their weights: a Map in
// behaviour (get, set, delete, insertion order), but tens of thousands of them
// are kept and most hold a handful of real servers, nearly all at the one
// weight the proxier programs. A Map of ten entries costs ~500 bytes of hash
// table; an exact-size array of the keys (the weights array only once one
// differs) costs ~130. Past SMALL entries it is a Map, so lookups stay O(1).
import { WEIGHT } from './desired.js'

/** Entries kept as arrays (linear lookups) up to here; a Map beyond. */
const SMALL = 16
const NONE: readonly never[] = Object.freeze([])

export class Weights implements Iterable<[string, number]> {
  /** Small: the keys in insertion order, exact size (replaced, never grown in place). */
  #keys: readonly string[] = NONE
  /** Small: the weights, parallel to #keys; undefined while every one is WEIGHT. */
  #weights: readonly number[] | undefined
  /** Large: everything. */
  #map: Map<string, number> | undefined

  get size(): number {
    return this.#map ? this.#map.size : this.#keys.length
  }

  get(key: string): number | undefined {
    if (this.#map) return this.#map.get(key)
    const i = this.#keys.indexOf(key)
    return i < 0 ? undefined : (this.#weights?.[i] ?? WEIGHT)
  }

  has(key: string): boolean {
    return this.#map ? this.#map.has(key) : this.#keys.includes(key)
  }

  set(key: string, weight: number): this {
    if (this.#map) {
      this.#map.set(key, weight)
      return this
    }
    const i = this.#keys.indexOf(key)
    if (i >= 0) {
      if ((this.#weights?.[i] ?? WEIGHT) === weight) return this
      const w = this.#weights ? this.#weights.slice() : this.#keys.map(() => WEIGHT)
      w[i] = weight
      this.#weights = w
      return this
    }
    if (this.#keys.length >= SMALL) {
      this.#map = new Map(this)
      this.#map.set(key, weight)
      this.#keys = NONE
      this.#weights = undefined
      return this
    }
    // concat and slice make exact-size arrays (spread and filter leave room to grow).
    const before = this.#keys
    this.#keys = before.concat(key)
    if (this.#weights || weight !== WEIGHT) this.#weights = (this.#weights ?? before.map(() => WEIGHT)).concat(weight)
    return this
  }

  delete(key: string): boolean {
    if (this.#map) return this.#map.delete(key)
    const i = this.#keys.indexOf(key)
    if (i < 0) return false
    this.#keys = this.#keys.length === 1 ? NONE : without(this.#keys, i)
    const w = this.#weights && without(this.#weights, i)
    this.#weights = w && w.some((x) => x !== WEIGHT) ? w : undefined
    return true
  }

  *[Symbol.iterator](): IterableIterator<[string, number]> {
    if (this.#map) {
      yield* this.#map
      return
    }
    // A snapshot: set() and delete() replace the arrays, so iterating while changing is safe, as with a Map's own entries.
    const keys = this.#keys
    const weights = this.#weights
    for (let i = 0; i < keys.length; i++) yield [keys[i]!, weights?.[i] ?? WEIGHT]
  }
}

function without<T>(list: readonly T[], i: number): T[] {
  return list.slice(0, i).concat(list.slice(i + 1))
}
