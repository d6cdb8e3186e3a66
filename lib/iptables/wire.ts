// The records lib/iptables exchanges with native/iptc (table.h): operation
// records going in, rule records coming back from a dump.
import { OP_HEADER, OP_KIND, type OpName, RULE_HEADER, SET_FIXUP } from './layout.js'
import { type PlannedRule, writeEntry, writeMask } from './planner.js'

export interface OpOptions {
  arg?: string
  rulenum?: number
  rule?: PlannedRule
  /** Also send the rule's mask (delete by spec). */
  withMask?: boolean
}

const CHUNK = 1 << 20

/**
 * Appends operation records, rules laid out in place, to a list of zeroed
 * chunks (no record straddles two; nothing is copied as they grow); take()
 * hands the chunks over and starts afresh.
 */
export class OpWriter {
  #chunks: Buffer[] = []
  #buf: Buffer | null = null
  #len = 0
  #count = 0

  get count(): number {
    return this.#count
  }

  add(kind: OpName, index: number, chain: string, opts: OpOptions = {}): void {
    const rule = opts.rule
    const entryLen = rule ? rule.size : 0
    const maskLen = rule && opts.withMask ? rule.size : 0
    const nsets = rule ? rule.nsets : 0
    const length = OP_HEADER.size + entryLen + maskLen + nsets * SET_FIXUP.size // all multiples of 8
    const b = this.#reserve(length)
    const o = this.#len
    b.writeUInt32LE(length, o + OP_HEADER.length)
    b.writeUInt16LE(OP_KIND[kind], o + OP_HEADER.kind)
    b.writeUInt16LE(nsets, o + OP_HEADER.nsets)
    b.writeUInt32LE(index, o + OP_HEADER.index)
    b.writeUInt32LE(opts.rulenum ?? 0, o + OP_HEADER.rulenum)
    b.write(chain, o + OP_HEADER.chain, 31, 'latin1')
    if (opts.arg !== undefined) b.write(opts.arg, o + OP_HEADER.arg, 31, 'latin1')
    b.writeUInt32LE(entryLen, o + OP_HEADER.entryLen)
    b.writeUInt32LE(maskLen, o + OP_HEADER.maskLen)
    if (rule) {
      const e = o + OP_HEADER.size
      let fix = e + entryLen + maskLen
      writeEntry(rule, b, e, nsets === 0 ? undefined : (offset, name) => {
        b.writeUInt32LE(offset, fix + SET_FIXUP.offset)
        b.write(name, fix + SET_FIXUP.name, 31, 'latin1')
        fix += SET_FIXUP.size
      })
      if (maskLen) writeMask(rule, b, e + entryLen)
    }
    this.#len += length
    this.#count++
  }

  /** The records written so far, in chunks (null if none); the writer starts afresh. */
  take(): Buffer[] | null {
    if (this.#count === 0) return null
    if (this.#buf) this.#chunks.push(this.#buf.subarray(0, this.#len))
    const out = this.#chunks
    this.#chunks = []
    this.#buf = null
    this.#len = 0
    this.#count = 0
    return out
  }

  #reserve(n: number): Buffer {
    if (this.#buf && this.#len + n <= this.#buf.length) return this.#buf
    if (this.#buf) this.#chunks.push(this.#buf.subarray(0, this.#len))
    this.#buf = Buffer.alloc(Math.max(CHUNK, n)) // zeroed: records rely on zero padding
    this.#len = 0
    return this.#buf
  }
}

/** One rule of a dump: libiptc's label for standard targets, and the entry bytes. */
export interface DumpedRule {
  label: string | undefined
  entry: Buffer
}

/** Splits a dump's rules buffer into entries. */
export function* dumpedRules(b: Buffer): Generator<DumpedRule> {
  for (let o = 0; o + RULE_HEADER.size <= b.length;) {
    const length = b.readUInt32LE(o + RULE_HEADER.length)
    if (length < RULE_HEADER.size || o + length > b.length) return
    const standard = b.readUInt16LE(o + RULE_HEADER.standard) !== 0
    let label: string | undefined
    if (standard) {
      const end = b.indexOf(0, o + RULE_HEADER.label)
      label = b.toString('latin1', o + RULE_HEADER.label, end < 0 || end > o + RULE_HEADER.size ? o + RULE_HEADER.size : end)
    }
    yield { label, entry: b.subarray(o + RULE_HEADER.size, o + length) }
    o += length
  }
}
