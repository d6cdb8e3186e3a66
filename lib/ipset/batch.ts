// Batches: many adds and deletes packed into IPSET_ATTR_ADT messages (entries
// as columns, each numbered), sent in pipelined slices, and the kernel's
// answers turned into one outcome per operation; and the plans of batch() and
// syncMembers() that fill them.
import type { NetlinkError } from '../errors.js'
import type { NativeResult } from '../native.js'
import type { IpsetRawRecord, IpsetWireOp, WireColumns } from '../native/ipset.js'
import { OK, SLICE, yieldToLoop, type Outcome } from '../netlink/socket.js'
import * as v from '../validate.js'
import type { Where } from '../validate.js'
import { noSuchSet } from './errors.js'
import { EntryHash, HashIndex, sameEntry } from './identity.js'
import { NFPROTO, kindOf, type SetKind } from './kernel.js'
import { memberWire } from './records.js'
import type { IpSetEntry, IpSetOp, SetInfo } from './types.js'
import { entryWire } from './validate.js'
import { ADT_BUDGET, TEXT_FIELDS, wireSize, type RawColumns, type WireEntry, type WireField } from './wire.js'

/**
 * One request's worth of entries of one command on one set: the entries as
 * columns (what native/ipset reads), and which operation each came from. Built
 * entry by entry as a batch is validated, so no per-entry object outlives
 * validation.
 */
export class Message {
  readonly indices: number[] = []
  readonly cols: Partial<Record<WireField, (string | number | undefined)[]>> = {}
  bytes = 0
  /** Columns so far (an entry with fewer fields leaves holes in the others). */
  private width = 0
  constructor(
    readonly cmd: 'add' | 'del',
    readonly set: string,
    readonly exist: boolean,
    readonly af: number,
    readonly kind: SetKind,
    /** A fallback message of one entry (its error needs no line number). */
    readonly single = false,
  ) {}

  get count(): number {
    return this.indices.length
  }

  fits(cmd: string, set: string, exist: boolean, af: number, size: number): boolean {
    return this.cmd === cmd && this.set === set && this.exist === exist && this.af === af && this.bytes + size <= ADT_BUDGET
  }

  push(index: number, w: WireEntry, size: number): void {
    const n = this.indices.length
    const e = w as Record<string, string | number | undefined>
    let added = 0
    for (const f in e) {
      if (f === 'af') continue
      let col = this.cols[f as WireField]
      if (!col) {
        col = this.cols[f as WireField] = new Array<undefined>(n).fill(undefined)
        this.width++
      }
      col.push(e[f])
      added++
    }
    this.indices.push(index)
    // A field this entry lacks: a hole (undefined) in its column.
    if (added !== this.width) {
      for (const f in this.cols) {
        const col = this.cols[f as WireField]!
        if (col.length === n) col.push(undefined)
      }
    }
    this.bytes += size
  }

  /** Entry i as a wire entry again (for sending it alone). */
  entry(i: number): WireEntry {
    const w: WireEntry = { af: this.af }
    for (const f in this.cols) {
      const x = this.cols[f as WireField]![i]
      if (x !== undefined) (w as Record<string, unknown>)[f] = x
    }
    return w
  }

  /** Entries from..end as a message of their own. */
  tail(from: number): Message {
    const m = new Message(this.cmd, this.set, this.exist, this.af, this.kind)
    m.indices.push(...this.indices.slice(from))
    for (const f in this.cols) m.cols[f as WireField] = this.cols[f as WireField]!.slice(from)
    return m
  }

  singles(from: number): Message[] {
    const out: Message[] = []
    for (let i = from; i < this.indices.length; i++) {
      const m = new Message(this.cmd, this.set, this.exist, this.af, this.kind, true)
      m.push(this.indices[i]!, this.entry(i), 0)
      out.push(m)
    }
    return out
  }

  wire(): IpsetWireOp {
    const base = { cmd: this.cmd, name: this.set, ...(this.exist ? { exist: true } : {}) }
    const entries: WireColumns = { count: this.count, af: this.af }
    for (const f of Object.keys(this.cols) as WireField[]) {
      const col = this.cols[f]!
      // Every entry has it: numbers as a typed array, addresses joined by
      // newlines (read natively without an N-API call per value).
      const complete = !col.includes(undefined)
      entries[f] = !complete ? col : !TEXT_FIELDS.has(f) ? Float64Array.from(col as number[]) : f === 'ip' || f === 'ip2' ? col.join('\n') : col
    }
    return { ...base, entries }
  }
}

/** A batch goes to the socket in slices of about this many entries (or messages, for one-entry fallbacks). */
const PIPELINE_ENTRIES = 4096
const PIPELINE_MESSAGES = 1024

/** Adds to the last message while the entry fits, else starts one. */
function append(msgs: Message[], cmd: 'add' | 'del', set: string, exist: boolean, kind: SetKind, index: number, w: WireEntry): void {
  const size = wireSize(w)
  let m = msgs[msgs.length - 1]
  if (!m || !m.fits(cmd, set, exist, w.af, size)) msgs.push((m = new Message(cmd, set, exist, w.af, kind)))
  m.push(index, w, size)
}

/** How a handle sends requests and names a refused entry. */
export interface Sender {
  /** Requests in one burst, one result each, in order. */
  run(wires: IpsetWireOp[]): Promise<NativeResult<IpsetRawRecord>[]>
  /** The error of operation `index`, an entry of `m` the kernel refused. */
  refuse(r: NativeResult<unknown>, m: Message, index: number): NetlinkError
}

/**
 * The messages of batch(), from operations whose shape has been checked:
 * every entry is validated against its set first (a bad one throws, nothing is
 * sent), and one naming a set that does not exist gets ENOENT in `outcomes`
 * without being sent. The kernel may apply the entries of one burst out of
 * order (a message's tail goes again after later messages): harmless while no
 * entry appears twice. A repeated entry starts a new segment, to be sent after
 * the previous one has fully completed.
 */
export async function planBatch(ops: IpSetOp[], infos: Map<string, SetInfo | undefined>, outcomes: Outcome[]): Promise<Message[][]> {
  const segments: Message[][] = [[]]
  const seen = new HashIndex(ops.length)
  const key = new EntryHash()
  const manySets = infos.size !== 1
  const at: Where & { index: number } = { op: 'ipset.add', index: 0 } // one object, refilled: errors copy what they need
  for (let index = 0; index < ops.length; index++) {
    const o = ops[index]!
    at.op = o.op === 'add' ? 'ipset.add' : 'ipset.del'
    at.index = index
    const info = infos.get(o.set)
    if (!info) {
      // Validated as far as it can be without the set's type; the kernel's answer, without asking.
      v.object(at, 'entry', o.entry)
      outcomes[index] = { ok: false, error: noSuchSet(at.op, o.op, undefined, index) }
      continue
    }
    // Everything is checked before anything is sent, a slice per turn of the event loop.
    if (index % SLICE === SLICE - 1) await yieldToLoop()
    const w = entryWire(at, info, o.entry, o.op)
    key.of(w, manySets ? o.set : undefined)
    if (seen.get(key) >= 0) {
      segments.push([])
      seen.clear()
    }
    seen.set(key, index)
    append(segments[segments.length - 1]!, o.op, o.set, o.exist === true, kindOf(info), index, w)
  }
  return segments
}

/**
 * The messages of syncMembers(): from what the set holds (the dump's
 * columns) and what it should hold (validated whole before anything is sent),
 * the deletes and the adds, each entry once. `cmds` says which each operation is.
 */
export async function planSync(set: string, info: SetInfo, listed: RawColumns[], entries: IpSetEntry[], op: string): Promise<{ msgs: Message[]; cmds: ('add' | 'del')[]; unchanged: number }> {
  const kind = kindOf(info)
  const af = info.family === 'inet6' ? NFPROTO.inet6 : NFPROTO.inet
  const key = new EntryHash()

  // What the set holds, indexed by hash, rebuilt as wire entries only where
  // needed (a match to confirm, a delete to send).
  const total = listed.reduce((sum, c) => sum + c.count, 0)
  const colOf = new Int32Array(total)
  const rowOf = new Int32Array(total)
  const held = new HashIndex(total)
  for (let c = 0, k = 0; c < listed.length; c++) {
    for (let i = 0; i < listed[c]!.count; i++, k++) {
      colOf[k] = c
      rowOf[k] = i
      held.set(key.of(memberWire(listed[c]!, i, af), undefined), k)
    }
  }
  const member = (k: number): WireEntry => memberWire(listed[colOf[k]!]!, rowOf[k]!, af)

  const kept = new Uint8Array(total)
  const wanted = new HashIndex(entries.length)
  const adds: WireEntry[] = []
  let unchanged = 0
  const at: Where & { index: number } = { op, index: 0 }
  for (let j = 0; j < entries.length; j++) {
    if (j % SLICE === SLICE - 1) await yieldToLoop()
    at.index = j
    const w = entryWire(at, info, entries[j], 'add')
    key.of(w, undefined)
    const first = wanted.get(key)
    if (first >= 0 && sameEntry(w, entryWire(at, info, entries[first], 'add'))) continue // given twice
    if (first < 0) wanted.set(key, j)
    const k = held.get(key)
    if (k >= 0 && sameEntry(w, member(k))) {
      kept[k] = 1
      unchanged++
    } else {
      adds.push(w)
    }
  }
  // Deletes first: should two different entries ever share both hashes, the
  // one deleted by mistake is the one added back.
  const msgs: Message[] = []
  const cmds: ('add' | 'del')[] = []
  for (let k = 0; k < total; k++) {
    if (kept[k]) continue
    append(msgs, 'del', set, true, kind, cmds.length, member(k))
    cmds.push('del')
  }
  for (const w of adds) {
    append(msgs, 'add', set, true, kind, cmds.length, w)
    cmds.push('add')
  }
  return { msgs, cmds, unchanged }
}

/**
 * Sends messages in one burst; a message the kernel stopped at entry L has
 * that entry's outcome set to the error and its rest sent again: twice as a
 * batch, then one message per entry (so many failures in one message cannot
 * cost a round each).
 */
export async function sendMessages(msgs: Message[], outcomes: Outcome[], sender: Sender): Promise<void> {
  let queue = msgs.filter((m) => m.count > 0)
  for (let round = 0; queue.length; round++) {
    // In slices of PIPELINE_ENTRIES entries, each handed over as soon as it is
    // encoded: the kernel works on one slice (off the event loop) while the
    // next is encoded, and timers and I/O run between slices. Results come
    // back in order.
    const pending: Promise<NativeResult<IpsetRawRecord>[]>[] = []
    for (let i = 0; i < queue.length; ) {
      if (i > 0) await yieldToLoop()
      let end = i
      for (let entries = 0; end < queue.length && entries < PIPELINE_ENTRIES && end - i < PIPELINE_MESSAGES; end++) entries += queue[end]!.count
      pending.push(sender.run(queue.slice(i, end).map((m) => m.wire())))
      i = end
    }
    const results = (await Promise.all(pending)).flat()
    const next: Message[] = []
    // Outcome errors are made by the thousand here, and a stack trace of
    // this loop says nothing about the entry: none is captured.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      results.forEach((r, i) => settle(r, queue[i]!, round, outcomes, next, sender))
    } finally {
      Error.stackTraceLimit = limit
    }
    queue = next
  }
}

/** One message's result: outcomes for its entries, and what must go again. */
function settle(r: NativeResult<IpsetRawRecord>, m: Message, round: number, outcomes: Outcome[], next: Message[], sender: Sender): void {
  if (!r.error) {
    for (const index of m.indices) outcomes[index] = OK
    return
  }
  const fail = (index: number): void => {
    outcomes[index] = { ok: false, error: sender.refuse(r, m, index) }
  }
  const line = m.single ? 0 : Number((r.echo as { line?: number } | undefined)?.line ?? 0)
  if (line < 1 || line > m.count) {
    // No line: the whole message was refused (no such set, a socket error).
    m.indices.forEach(fail)
    return
  }
  for (let k = 0; k < line - 1; k++) outcomes[m.indices[k]!] = OK
  fail(m.indices[line - 1]!)
  if (line === m.count) return
  if (round === 0) next.push(m.tail(line))
  else next.push(...m.singles(line))
}
