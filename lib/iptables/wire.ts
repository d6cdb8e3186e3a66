// The records lib/iptables exchanges with native/iptc (table.h): operation
// records going in, rule records coming back from a dump.
import { OP_HEADER, OP_KIND, type OpName, RULE_HEADER, SET_FIXUP } from './layout.js'
import type { EncodedRule } from './rules.js'

export interface OpOptions {
  arg?: string
  rulenum?: number
  rule?: EncodedRule
  /** Also send the rule's mask (delete by spec). */
  withMask?: boolean
}

/** Appends operation records to one growing buffer; take() hands the bytes over and starts afresh. */
export class OpWriter {
  #buf = Buffer.alloc(16 * 1024)
  #len = 0
  #count = 0

  get count(): number {
    return this.#count
  }

  add(kind: OpName, index: number, chain: string, opts: OpOptions = {}): void {
    const rule = opts.rule
    const entryLen = rule ? rule.entry.length : 0
    const maskLen = rule && opts.withMask ? rule.mask.length : 0
    const nsets = rule ? rule.sets.length : 0
    const length = OP_HEADER.size + entryLen + maskLen + nsets * SET_FIXUP.size // all multiples of 8
    this.#reserve(length)
    const b = this.#buf
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
    let p = o + OP_HEADER.size
    if (rule) {
      rule.entry.copy(b, p)
      p += entryLen
      if (maskLen) {
        rule.mask.copy(b, p)
        p += maskLen
      }
      for (const s of rule.sets) {
        b.writeUInt32LE(s.offset, p + SET_FIXUP.offset)
        b.write(s.name, p + SET_FIXUP.name, 31, 'latin1')
        p += SET_FIXUP.size
      }
    }
    this.#len += length
    this.#count++
  }

  /** The records written so far (null if none); the writer starts a new buffer. */
  take(): Buffer | null {
    if (this.#len === 0) return null
    const out = this.#buf.subarray(0, this.#len)
    this.#buf = Buffer.alloc(Math.max(16 * 1024, Math.min(this.#buf.length, 1 << 20)))
    this.#len = 0
    this.#count = 0
    return out
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return
    let size = this.#buf.length * 2
    while (size < this.#len + n) size *= 2
    const next = Buffer.alloc(size) // zeroed: records rely on zero padding
    this.#buf.copy(next, 0, 0, this.#len)
    this.#buf = next
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
