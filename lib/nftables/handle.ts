// The Nftables handle and its transactions: edits checked as they are added
// (a ValidationError names the field and the edit's index; nothing is queued
// then), sent at commit as one nf_tables batch the kernel applies whole or not
// at all; list functions read the kernel back into the records the edits take.
import { NetlinkError } from '../errors.js'
import { NETLINK_NETFILTER } from '../native.js'
import type { NftRawChain, NftRawElements, NftRawRule, NftRawSet, NftRawTable, NftWireElement, NftWireOp } from '../native/nftables.js'
import { NetlinkSocket, throwIfFailed, toError } from '../netlink/socket.js'
import { fail, object, only, type Where } from '../validate.js'
import { COMMENT_MAXLEN, keyLayout, keyTypes, parseUdata, udata, udataString } from './data.js'
import { fromWireExpr, toWireExpr, verdictOf, verdictWire } from './expr.js'
import {
  BYTEORDER_HOST,
  CHAIN_TYPES,
  DATA_VERDICT,
  DATATYPES,
  ELEM_INTERVAL_END,
  FAMILIES,
  HOOKS,
  NFT_NAME_MAXLEN,
  type NftChainType,
  type NftDatatype,
  type NftFamily,
  type NftHook,
  type NftPolicy,
  POLICIES,
  SET_FLAGS,
  UDATA_COMMENT,
  UDATA_SET_COMMENT,
  UDATA_SET_KEYBYTEORDER,
} from './kernel.js'
import type {
  NftChainRecord,
  NftChainSpec,
  NftCommitResult,
  NftElement,
  NftElementRecord,
  NftElementsSpec,
  NftExpr,
  NftRuleRecord,
  NftRuleSpec,
  NftSetFlag,
  NftSetRecord,
  NftSetSpec,
  NftTableRecord,
  NftTableSpec,
} from './types.js'

/** The kernel's answer to a batch whose generation is stale (Node has no name for it). */
const ERESTART = 85
const USER_SET_FLAGS: readonly NftSetFlag[] = ['anonymous', 'constant', 'interval', 'timeout', 'dynamic']
const FAMILY_NAMES: readonly NftFamily[] = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']

function family(at: Where, field: string, v: unknown): number {
  if (!FAMILY_NAMES.includes(v as NftFamily)) fail(at, field, v, `must be one of ${FAMILY_NAMES.join(', ')}`)
  return FAMILIES.number(v as NftFamily)
}

function name(at: Where, field: string, v: unknown, anonymous = false): string {
  if (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > NFT_NAME_MAXLEN || v.includes('\0'))
    fail(at, field, v, `must be a name of 1 to ${NFT_NAME_MAXLEN} bytes`)
  if (!anonymous && v.includes('%')) fail(at, field, v, "must not contain '%' (the kernel's anonymous-set placeholder)")
  return v
}

function comment(at: Where, field: string, v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || Buffer.byteLength(v) > COMMENT_MAXLEN || v.includes('\0'))
    fail(at, field, v, `must be a string of at most ${COMMENT_MAXLEN} bytes`)
  return v
}

function uint(at: Where, field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(at, field, v, `must be an integer from 0 to ${max}`)
  return v
}

function bytes(at: Where, field: string, v: unknown, len?: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length === 0 || v.length > 64) fail(at, field, v, 'must be a Uint8Array of 1 to 64 bytes')
  if (len !== undefined && v.length !== len) fail(at, field, v, `must be ${len} bytes (the set's layout)`)
  return v
}

const commentUdata = (type: number, c: string | undefined): { userdata?: Uint8Array } => (c === undefined ? {} : { userdata: udata([{ type, value: c }]) })

/** What a transaction knows of a set it adds, for the edits after it. */
interface KnownSet {
  id: number
  keyLen: number
  dataLen?: number
  verdict: boolean
}

/** An edit as queued: its wire requests (elements go in several) and what to call it in an error. */
interface Edit {
  op: string
  wires: NftWireOp[]
}

/**
 * Bytes of elements per message: an attribute's length is 16 bits, so the
 * elements nest of one message holds under 64 KiB; a large addElements goes
 * in several messages of the same batch.
 */
const ELEMENTS_PER_MESSAGE_BYTES = 48 * 1024

/** An element's size on the wire, from above. */
function elementBytes(e: NftWireElement): number {
  return 48 + (e.key?.length ?? 0) + (e.data ? e.data.length + 12 : 0) + (e.verdict ? 32 + (e.verdict.chain?.length ?? 0) : 0) + (e.userdata ? e.userdata.length + 8 : 0)
}

function splitElements<W extends { elements?: NftWireElement[] }>(w: W): W[] {
  const all = w.elements ?? []
  const out: W[] = []
  let cur: NftWireElement[] = []
  let bytes = 0
  for (const e of all) {
    const n = elementBytes(e)
    if (cur.length && bytes + n > ELEMENTS_PER_MESSAGE_BYTES) {
      out.push({ ...w, elements: cur })
      cur = []
      bytes = 0
    }
    cur.push(e)
    bytes += n
  }
  out.push({ ...w, elements: cur })
  return out
}

/**
 * Edits to the ruleset, applied at commit() in one kernel transaction: every
 * edit or none. Tables, chains, rules, sets and elements of several tables and
 * families may mix; an edit may refer to anything an earlier one adds.
 */
export class NftTransaction {
  readonly #nft: Nftables
  readonly #edits: Edit[] = []
  readonly #sets = new Map<string, KnownSet>()
  #nextSetId = 1
  #committed = false

  /** @internal */
  constructor(nft: Nftables) {
    this.#nft = nft
  }

  /** Edits queued. */
  get size(): number {
    return this.#edits.length
  }

  #at(op: string): Where {
    if (this.#committed) throw new NetlinkError({ errno: 22, op: `nftables.${op}`, message: 'the transaction was already committed' })
    return { op: `nftables.${op}`, index: this.#edits.length }
  }

  #push(at: Where, wire: NftWireOp, ...more: NftWireOp[]): this {
    this.#edits.push({ op: at.op, wires: [wire, ...more] })
    return this
  }

  #setKey(fam: number, table: string, set: string): string {
    return `${fam}\0${table}\0${set}`
  }

  /** Adds a table (kept as it is when it exists). */
  addTable(spec: NftTableSpec): this {
    const at = this.#at('addTable')
    const o = object(at, 'table', spec)
    only(at, 'table', o, ['family', 'name', 'comment'])
    return this.#push(at, {
      cmd: 'newTable',
      family: family(at, 'table.family', o.family),
      name: name(at, 'table.name', o.name),
      ...commentUdata(UDATA_COMMENT, comment(at, 'table.comment', o.comment)),
    })
  }

  /** Deletes a table and everything in it. */
  deleteTable(spec: { family: NftFamily; name: string }): this {
    const at = this.#at('deleteTable')
    const o = object(at, 'table', spec)
    only(at, 'table', o, ['family', 'name'])
    return this.#push(at, { cmd: 'delTable', family: family(at, 'table.family', o.family), name: name(at, 'table.name', o.name) })
  }

  /** Adds a chain; with `base`, a base chain hooked into the stack (an existing chain is kept, its policy updated). */
  addChain(spec: NftChainSpec): this {
    const at = this.#at('addChain')
    const o = object(at, 'chain', spec)
    only(at, 'chain', o, ['family', 'table', 'name', 'base', 'comment'])
    const wire: NftWireOp & { cmd: 'newChain' } = {
      cmd: 'newChain',
      family: family(at, 'chain.family', o.family),
      table: name(at, 'chain.table', o.table),
      name: name(at, 'chain.name', o.name),
      ...commentUdata(UDATA_COMMENT, comment(at, 'chain.comment', o.comment)),
    }
    if (o.base !== undefined) {
      const b = object(at, 'chain.base', o.base)
      only(at, 'chain.base', b, ['type', 'hook', 'priority', 'policy'])
      if (!CHAIN_TYPES.includes(b.type as never)) fail(at, 'chain.base.type', b.type, `must be one of ${CHAIN_TYPES.join(', ')}`)
      if (!HOOKS.has(b.hook)) fail(at, 'chain.base.hook', b.hook, `must be one of ${HOOKS.names.join(', ')}`)
      if (typeof b.priority !== 'number' || !Number.isInteger(b.priority) || b.priority < -(2 ** 31) || b.priority >= 2 ** 31)
        fail(at, 'chain.base.priority', b.priority, 'must be a 32-bit integer')
      if (b.policy !== undefined && !POLICIES.has(b.policy)) fail(at, 'chain.base.policy', b.policy, 'must be accept or drop')
      Object.assign(wire, {
        type: b.type as string,
        hook: HOOKS.number(b.hook),
        priority: b.priority,
        ...(b.policy === undefined ? {} : { policy: POLICIES.number(b.policy) }),
      })
    }
    return this.#push(at, wire)
  }

  /**
   * Deletes every rule of every chain of a table (as `nft flush table`): chains,
   * sets and elements stay (flushSet empties a set).
   */
  flushTable(spec: { family: NftFamily; name: string }): this {
    const at = this.#at('flushTable')
    const o = object(at, 'table', spec)
    only(at, 'table', o, ['family', 'name'])
    return this.#push(at, { cmd: 'delRule', family: family(at, 'table.family', o.family), table: name(at, 'table.name', o.name) })
  }

  /** Deletes a chain (it must be empty and unreferenced). */
  deleteChain(spec: { family: NftFamily; table: string; name: string }): this {
    const at = this.#at('deleteChain')
    const o = object(at, 'chain', spec)
    only(at, 'chain', o, ['family', 'table', 'name'])
    return this.#push(at, { cmd: 'delChain', family: family(at, 'chain.family', o.family), table: name(at, 'chain.table', o.table), name: name(at, 'chain.name', o.name) })
  }

  /** Deletes every rule of a chain. */
  flushChain(spec: { family: NftFamily; table: string; name: string }): this {
    const at = this.#at('flushChain')
    const o = object(at, 'chain', spec)
    only(at, 'chain', o, ['family', 'table', 'name'])
    return this.#push(at, { cmd: 'delRule', family: family(at, 'chain.family', o.family), table: name(at, 'chain.table', o.table), chain: name(at, 'chain.name', o.name) })
  }

  /** Appends a rule to its chain. */
  addRule(spec: NftRuleSpec): this {
    const at = this.#at('addRule')
    const o = object(at, 'rule', spec)
    only(at, 'rule', o, ['family', 'table', 'chain', 'expressions', 'comment'])
    const fam = family(at, 'rule.family', o.family)
    const table = name(at, 'rule.table', o.table)
    if (!Array.isArray(o.expressions)) fail(at, 'rule.expressions', o.expressions, 'must be a list of expressions')
    const setId = (set: string): number | undefined => this.#sets.get(this.#setKey(fam, table, set))?.id
    const expressions = (o.expressions as unknown[]).map((e, i) => toWireExpr(at, `rule.expressions[${i}]`, e, setId))
    return this.#push(at, {
      cmd: 'newRule',
      family: fam,
      table,
      chain: name(at, 'rule.chain', o.chain),
      expressions,
      ...commentUdata(UDATA_COMMENT, comment(at, 'rule.comment', o.comment)),
    })
  }

  /** Deletes one rule by its handle (from listRules). */
  deleteRule(spec: { family: NftFamily; table: string; chain: string; handle: number }): this {
    const at = this.#at('deleteRule')
    const o = object(at, 'rule', spec)
    only(at, 'rule', o, ['family', 'table', 'chain', 'handle'])
    const handle = uint(at, 'rule.handle', o.handle, Number.MAX_SAFE_INTEGER)
    if (handle === 0) fail(at, 'rule.handle', handle, 'must be a rule handle (from listRules), not 0')
    return this.#push(at, { cmd: 'delRule', family: family(at, 'rule.family', o.family), table: name(at, 'rule.table', o.table), chain: name(at, 'rule.chain', o.chain), handle })
  }

  /** Adds a set, or a map with `data` (kept as it is when it exists). */
  addSet(spec: NftSetSpec): this {
    const at = this.#at('addSet')
    const o = object(at, 'set', spec)
    only(at, 'set', o, ['family', 'table', 'name', 'key', 'data', 'flags', 'timeout', 'size', 'comment'])
    const fam = family(at, 'set.family', o.family)
    const table = name(at, 'set.table', o.table)
    const flagList = o.flags === undefined ? [] : o.flags
    if (!Array.isArray(flagList)) fail(at, 'set.flags', o.flags, `must be a list of ${USER_SET_FLAGS.join(', ')}`)
    let flags = 0
    flagList.forEach((f, i) => {
      if (!USER_SET_FLAGS.includes(f as NftSetFlag)) fail(at, `set.flags[${i}]`, f, `must be one of ${USER_SET_FLAGS.join(', ')}`)
      flags |= SET_FLAGS.number(f as NftSetFlag)
    })
    const anonymous = (flags & SET_FLAGS.number('anonymous')) !== 0
    const setName = name(at, 'set.name', o.name, anonymous)
    if (anonymous && !setName.includes('%d')) fail(at, 'set.name', setName, "of an anonymous set must hold '%d' (the kernel numbers it)")
    const keys = Array.isArray(o.key) ? (o.key as unknown[]) : [o.key]
    if (keys.length === 0 || keys.length > 16) fail(at, 'set.key', o.key, 'must be a datatype or a list of 1 to 16')
    keys.forEach((k, i) => {
      if (typeof k !== 'string' || !Object.prototype.hasOwnProperty.call(DATATYPES, k) || k === 'verdict')
        fail(at, Array.isArray(o.key) ? `set.key[${i}]` : 'set.key', k, `must be one of ${Object.keys(DATATYPES).filter((d) => d !== 'verdict').join(', ')}`)
    })
    const layout = keyLayout(o.key as NftDatatype | NftDatatype[])
    const wire: NftWireOp & { cmd: 'newSet' } = { cmd: 'newSet', family: fam, table, name: setName, id: this.#nextSetId++, flags, keyType: layout.type, keyLen: layout.len }
    const known: KnownSet = { id: wire.id, keyLen: layout.len, verdict: false }
    if (o.data !== undefined) {
      if (typeof o.data !== 'string' || !Object.prototype.hasOwnProperty.call(DATATYPES, o.data)) fail(at, 'set.data', o.data, `must be one of ${Object.keys(DATATYPES).join(', ')}`)
      wire.flags |= SET_FLAGS.number('map')
      if (o.data === 'verdict') {
        wire.dataType = DATA_VERDICT
        wire.dataLen = 0
        known.verdict = true
      } else {
        const d = DATATYPES[o.data as NftDatatype]
        wire.dataType = d.type
        wire.dataLen = d.len
        known.dataLen = d.len
      }
    }
    if (keys.length > 1 && flags & SET_FLAGS.number('interval')) {
      wire.flags |= SET_FLAGS.number('concat')
      wire.concat = layout.fields
    }
    if (o.timeout !== undefined) {
      if (!(flags & SET_FLAGS.number('timeout'))) fail(at, 'set.timeout', o.timeout, "needs the 'timeout' flag")
      wire.timeout = uint(at, 'set.timeout', o.timeout, Number.MAX_SAFE_INTEGER)
    }
    if (o.size !== undefined) wire.size = uint(at, 'set.size', o.size, 0xffffffff)
    const c = comment(at, 'set.comment', o.comment)
    const ud: { type: number; value: string | Uint8Array }[] = []
    // An integer key prints as a number only when nft knows its byte order.
    if (keys.length === 1 && (o.key === 'integer' || o.key === 'mark')) ud.push({ type: UDATA_SET_KEYBYTEORDER, value: Uint8Array.of(BYTEORDER_HOST, 0, 0, 0) })
    if (c !== undefined) ud.push({ type: UDATA_SET_COMMENT, value: c })
    if (ud.length) wire.userdata = udata(ud)
    this.#sets.set(this.#setKey(fam, table, setName), known)
    return this.#push(at, wire)
  }

  /** Deletes a set (it must not be referenced by a rule). */
  deleteSet(spec: { family: NftFamily; table: string; name: string }): this {
    const at = this.#at('deleteSet')
    const o = object(at, 'set', spec)
    only(at, 'set', o, ['family', 'table', 'name'])
    return this.#push(at, { cmd: 'delSet', family: family(at, 'set.family', o.family), table: name(at, 'set.table', o.table), name: name(at, 'set.name', o.name) })
  }

  /** Deletes every element of a set. */
  flushSet(spec: { family: NftFamily; table: string; name: string }): this {
    const at = this.#at('flushSet')
    const o = object(at, 'set', spec)
    only(at, 'set', o, ['family', 'table', 'name'])
    return this.#push(at, { cmd: 'delElements', family: family(at, 'set.family', o.family), table: name(at, 'set.table', o.table), set: name(at, 'set.name', o.name) })
  }

  #elements(at: Where, spec: NftElementsSpec, keysOnly: boolean): NftWireOp & { cmd: 'newElements' } {
    const o = object(at, 'elements', spec)
    only(at, 'elements', o, ['family', 'table', 'set', 'elements'])
    const fam = family(at, 'elements.family', o.family)
    const table = name(at, 'elements.table', o.table)
    const set = name(at, 'elements.set', o.set, true)
    const known = this.#sets.get(this.#setKey(fam, table, set))
    if (!Array.isArray(o.elements) || o.elements.length === 0) fail(at, 'elements.elements', o.elements, 'must be a non-empty list of elements')
    const elements = (o.elements as unknown[]).map((e, i): NftWireElement => {
      const f = `elements.elements[${i}]`
      const el = object(at, f, e)
      only(at, f, el, keysOnly ? ['key', 'intervalEnd', 'data', 'verdict', 'timeout', 'comment'] : ['key', 'data', 'verdict', 'intervalEnd', 'timeout', 'comment'])
      const w: NftWireElement = { key: bytes(at, `${f}.key`, el.key, known?.keyLen) }
      if (el.intervalEnd !== undefined && typeof el.intervalEnd !== 'boolean') fail(at, `${f}.intervalEnd`, el.intervalEnd, 'must be a boolean')
      if (el.intervalEnd) w.flags = ELEM_INTERVAL_END
      if (keysOnly) return w
      if (el.data !== undefined && el.verdict !== undefined) fail(at, `${f}.verdict`, el.verdict, 'and data cannot both be set')
      if (el.data !== undefined) w.data = bytes(at, `${f}.data`, el.data, known?.dataLen)
      if (el.verdict !== undefined) w.verdict = verdictWire(at, `${f}.verdict`, el.verdict)
      if (known && known.verdict && !w.verdict && !el.intervalEnd) fail(at, `${f}.verdict`, undefined, 'is required in a verdict map')
      if (el.timeout !== undefined) w.timeout = uint(at, `${f}.timeout`, el.timeout, Number.MAX_SAFE_INTEGER)
      const c = comment(at, `${f}.comment`, el.comment)
      if (c !== undefined) w.userdata = udata([{ type: UDATA_COMMENT, value: c }])
      return w
    })
    return { cmd: 'newElements', family: fam, table, set, ...(known ? { setId: known.id } : {}), elements }
  }

  /** Adds elements to a set or map (an element already there with the same value is kept). */
  addElements(spec: NftElementsSpec): this {
    const at = this.#at('addElements')
    const [first, ...rest] = splitElements(this.#elements(at, spec, false))
    return this.#push(at, first!, ...rest)
  }

  /** Deletes elements by key (each must exist). */
  deleteElements(spec: { family: NftFamily; table: string; set: string; elements: Pick<NftElement, 'key' | 'intervalEnd'>[] }): this {
    const at = this.#at('deleteElements')
    const [first, ...rest] = splitElements({ ...this.#elements(at, spec as NftElementsSpec, true), cmd: 'delElements' as const })
    return this.#push(at, first!, ...rest)
  }

  /**
   * Sends every edit as one kernel transaction. With `generation` (from
   * Nftables.generation() or a previous commit), the kernel refuses it with
   * ERESTART if the ruleset changed since. A refused edit fails the whole
   * transaction (nothing applied): the NetlinkError names it by `index` and
   * its op; a refusal of the batch itself has no index.
   */
  async commit(options: { generation?: number } = {}): Promise<NftCommitResult> {
    const at = this.#at('commit')
    only(at, 'options', object(at, 'options', options), ['generation'])
    if (options.generation !== undefined) uint(at, 'options.generation', options.generation, 0xffffffff)
    this.#committed = true
    const wires: NftWireOp[] = []
    const edits: { op: string; index: number }[] = []
    this.#edits.forEach((e, index) => {
      for (const w of e.wires) {
        wires.push(w)
        edits.push({ op: e.op, index })
      }
    })
    return this.#nft._commit(wires, edits, options.generation)
  }
}

/** nf_tables over netlink: transactions and read-back. */
export class Nftables {
  readonly #socket: NetlinkSocket

  private constructor(socket: NetlinkSocket) {
    this.#socket = socket
  }

  static async open(): Promise<Nftables> {
    return new Nftables(NetlinkSocket.open(NETLINK_NETFILTER, 'nftables.open'))
  }

  /** A new, empty transaction. */
  transaction(): NftTransaction {
    return new NftTransaction(this)
  }

  /** The ruleset's generation: it changes with every committed transaction (ours or another's). */
  generation(): Promise<number> {
    return this.#socket.call('nftables.generation', async () => {
      const recs = await this.#socket.request('nftables', 0, { cmd: 'getGen' }, 'nftables.generation')
      return (recs[0] as { id: number }).id
    })
  }

  /** @internal NftTransaction.commit's work. */
  _commit(wires: NftWireOp[], edits: { op: string; index: number }[], generation: number | undefined): Promise<NftCommitResult> {
    const op = 'nftables.commit'
    return this.#socket.call(op, async () => {
      if (wires.length === 0) return { generation: await this.#generation(op), messages: 0 }
      const batch: NftWireOp[] = [{ cmd: 'batchBegin', ...(generation === undefined ? {} : { genid: generation }) }, ...wires, { cmd: 'batchEnd' }, { cmd: 'getGen' }]
      const results = await this.#socket.execute('nftables', 0, batch, op, true)
      for (let i = 1; i <= wires.length; i++) if (results[i]!.error !== 0) throw toError(results[i]!, edits[i - 1]!.op, edits[i - 1]!.index)
      // The batch itself refused (a stale generation, the commit failing): no edit to name.
      if (results[0]!.error === ERESTART && generation !== undefined)
        throw new NetlinkError({ errno: ERESTART, code: 'ERESTART', op, message: `ERESTART: the ruleset is no longer at generation ${generation}; nothing applied` })
      throwIfFailed(results[0]!, op)
      throwIfFailed(results[wires.length + 1]!, op)
      const end = results[wires.length + 2]!
      throwIfFailed(end, op)
      return { generation: (end.records[0] as { id: number }).id, messages: wires.length }
    })
  }

  async #generation(op: string): Promise<number> {
    const recs = await this.#socket.request('nftables', 0, { cmd: 'getGen' }, op)
    return (recs[0] as { id: number }).id
  }

  /** Tables, of one family or all. */
  listTables(family?: NftFamily): Promise<NftTableRecord[]> {
    const op = 'nftables.listTables'
    const fam = family === undefined ? 0 : familyArg({ op }, family)
    return this.#socket.call(op, () => this.#tables(fam, op))
  }

  /** The chains of one table. */
  listChains(family: NftFamily, table: string): Promise<NftChainRecord[]> {
    const op = 'nftables.listChains'
    familyArg({ op }, family)
    return this.#socket.call(op, () => this.#chains(family, table, op))
  }

  /** The rules of one table, or of one chain of it, in chain order. */
  listRules(family: NftFamily, table: string, chain?: string): Promise<NftRuleRecord[]> {
    const op = 'nftables.listRules'
    familyArg({ op }, family)
    return this.#socket.call(op, () => this.#rules(family, table, chain, op))
  }

  /** The sets and maps of one table (anonymous ones included, by the names the kernel gave them). */
  listSets(family: NftFamily, table: string): Promise<NftSetRecord[]> {
    const op = 'nftables.listSets'
    familyArg({ op }, family)
    return this.#socket.call(op, () => this.#sets(family, table, op))
  }

  /** The elements of one set or map. */
  listElements(family: NftFamily, table: string, set: string): Promise<NftElementRecord[]> {
    const op = 'nftables.listElements'
    familyArg({ op }, family)
    return this.#socket.call(op, () => this.#elements(family, table, set, op))
  }

  /**
   * One table whole: its chains, rules, sets and each set's elements (one dump
   * each, and one per set); undefined when the table does not exist.
   */
  listTable(family: NftFamily, table: string): Promise<NftTableContents | undefined> {
    const op = 'nftables.listTable'
    const fam = familyArg({ op }, family)
    return this.#socket.call(op, async () => {
      const found = (await this.#tables(fam, op)).find((t) => t.name === table)
      if (!found) return undefined
      const chains = await this.#chains(family, table, op)
      const rules = await this.#rules(family, table, undefined, op)
      const sets = await this.#sets(family, table, op)
      const elements: Record<string, NftElementRecord[]> = {}
      for (const s of sets) elements[s.name] = await this.#elements(family, table, s.name, op)
      return { table: found, chains, rules, sets, elements }
    })
  }

  async #tables(fam: number, op: string): Promise<NftTableRecord[]> {
    const recs = (await this.#socket.request('nftables', fam, { cmd: 'getTables' }, op)) as NftRawTable[]
    return recs.map((t) => ({
      family: FAMILIES.name(t.family) as NftFamily,
      name: t.name,
      ...commentOf(t.userdata, UDATA_COMMENT),
      handle: t.handle,
      use: t.use,
    }))
  }

  async #chains(family: NftFamily, table: string, op: string): Promise<NftChainRecord[]> {
    const recs = (await this.#socket.request('nftables', FAMILIES.number(family), { cmd: 'getChains' }, op)) as NftRawChain[]
    return recs.filter((c) => c.table === table).map((c) => chainRecord(family, c))
  }

  async #rules(family: NftFamily, table: string, chain: string | undefined, op: string): Promise<NftRuleRecord[]> {
    const wire = { cmd: 'getRules' as const, table, ...(chain === undefined ? {} : { chain }) }
    const recs = (await this.#socket.request('nftables', FAMILIES.number(family), wire, op)) as NftRawRule[]
    return recs
      .filter((r) => r.table === table && (chain === undefined || r.chain === chain))
      .map((r) => ({
        family,
        table: r.table,
        chain: r.chain,
        expressions: r.expressions.map(fromWireExpr) as NftExpr[],
        ...commentOf(r.userdata, UDATA_COMMENT),
        handle: r.handle,
      }))
  }

  async #sets(family: NftFamily, table: string, op: string): Promise<NftSetRecord[]> {
    const recs = (await this.#socket.request('nftables', FAMILIES.number(family), { cmd: 'getSets', table }, op)) as NftRawSet[]
    return recs.filter((s) => s.table === table).map((s) => setRecord(family, s))
  }

  async #elements(family: NftFamily, table: string, set: string, op: string): Promise<NftElementRecord[]> {
    const recs = (await this.#socket.request('nftables', FAMILIES.number(family), { cmd: 'getElements', table, set }, op)) as NftRawElements[]
    return recs.flatMap((r) => r.elements.map(elementRecord))
  }

  close(): Promise<void> {
    return this.#socket.close()
  }
}

/** What listTable reads: a table and everything in it. */
export interface NftTableContents {
  table: NftTableRecord
  chains: NftChainRecord[]
  /** In chain order, each chain's rules in their order. */
  rules: NftRuleRecord[]
  sets: NftSetRecord[]
  /** Each set's elements, by set name. */
  elements: Record<string, NftElementRecord[]>
}

function familyArg(at: Where, v: unknown): number {
  return family(at, 'family', v)
}

function commentOf(userdata: Uint8Array | undefined, type: number): { comment?: string } {
  const c = udataString(parseUdata(userdata).get(type))
  return c === undefined ? {} : { comment: c }
}

function chainRecord(family: NftFamily, c: NftRawChain): NftChainRecord {
  return {
    family,
    table: c.table,
    name: c.name,
    ...(c.base
      ? {
          base: {
            type: c.type as NftChainType,
            hook: HOOKS.name(c.hook!) as NftHook,
            priority: c.priority!,
            policy: POLICIES.name(c.policy ?? 1) as NftPolicy,
          },
        }
      : {}),
    ...commentOf(c.userdata, UDATA_COMMENT),
    handle: c.handle,
  }
}

function setRecord(family: NftFamily, s: NftRawSet): NftSetRecord {
  const key = keyTypes(s.keyType)
  const flags = USER_SET_FLAGS.filter((f) => s.flags & SET_FLAGS.number(f))
  let data: NftDatatype | undefined
  if (s.flags & SET_FLAGS.number('map')) data = s.dataType === DATA_VERDICT ? 'verdict' : keyTypes(s.dataType ?? 0)?.[0]
  return {
    family,
    table: s.table,
    name: s.name,
    key: (key === undefined ? ('integer' as const) : key.length === 1 ? key[0]! : key) as NftDatatype | NftDatatype[],
    ...(data === undefined ? {} : { data }),
    ...(flags.length ? { flags } : {}),
    ...(s.timeout ? { timeout: s.timeout } : {}),
    ...(s.size ? { size: s.size } : {}),
    ...commentOf(s.userdata, UDATA_SET_COMMENT),
    handle: s.handle,
  }
}

function elementRecord(e: NftRawElements['elements'][number]): NftElementRecord {
  return {
    key: new Uint8Array(e.key!),
    ...(e.data ? { data: new Uint8Array(e.data) } : {}),
    ...(e.verdict ? { verdict: verdictOf(e.verdict) } : {}),
    ...((e.flags ?? 0) & ELEM_INTERVAL_END ? { intervalEnd: true } : {}),
    ...(e.timeout ? { timeout: e.timeout } : {}),
    ...(e.expiration ? { expires: e.expiration } : {}),
    ...commentOf(e.userdata, UDATA_COMMENT),
  }
}
