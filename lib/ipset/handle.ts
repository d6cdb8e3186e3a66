// The IpSet handle: one nfnetlink socket, the protocol agreed with the kernel,
// and what it has learnt of each set's type (for validation without a round
// trip per call).
import { randomBytes } from 'node:crypto'
import { NetlinkError } from '../errors.js'
import type { NativeResult } from '../native.js'
import type { IpsetRawRecord, IpsetWireOp } from '../native/ipset.js'
import { NETLINK_NETFILTER } from '../native.js'
import { NetlinkSocket, type Outcome } from '../netlink/socket.js'
import { planBatch, planSync, sendMessages, type Sender } from './batch.js'
import { ENOENT, IPSET_ERR_EXIST, ipsetError, noSuchSet, staleInfo, type Cmd } from './errors.js'
import { FLAG_LIST_HEADER, FLAG_LIST_SETNAME, IPSET_PROTOCOL, IPSET_PROTOCOL_MIN, NFPROTO, TYPES, kindOf, type SetKind } from './kernel.js'
import { infoOf, recordsOf } from './records.js'
import type { CreateSpec, IpSetEntry, IpSetOp, IpSetRecord, ResizeOptions, SetInfo, SetType, SyncResult } from './types.js'
import { batchSets, createWire, entryList, entryWire, existOption, handledType, resizeFits, resizeOptions, setName } from './validate.js'
import { execute, negotiate, type RawSet } from './wire.js'

export class IpSet {
  readonly #sock: NetlinkSocket
  readonly #protocol: number
  readonly #sets = new Map<string, SetInfo>()
  readonly #revisions = new Map<string, number>()
  /** How batches send and name refusals (batch.ts). */
  readonly #sender: Sender = {
    run: (wires) => this.#run(wires, 'ipset.batch'),
    refuse: (r, m, index) => this.#fail(r, `ipset.${m.cmd}`, m.cmd, m.set, m.kind, index),
  }

  private constructor(sock: NetlinkSocket, protocol: number) {
    this.#sock = sock
    this.#protocol = protocol
  }

  /**
   * Opens a netfilter netlink socket and agrees on the ipset protocol with the
   * kernel; rejects when the kernel has no ipset.
   */
  static async open(): Promise<IpSet> {
    const op = 'ipset.open'
    const noIpset = (): NetlinkError => new NetlinkError({ errno: ENOENT, op, message: 'ENOENT: the kernel has no ipset (load the ip_set module: modprobe ip_set)' })
    let sock: NetlinkSocket
    try {
      sock = NetlinkSocket.open(NETLINK_NETFILTER, op)
    } catch (e) {
      // No nfnetlink at all: the socket family itself is missing.
      throw (e as NetlinkError).errno === 93 /* EPROTONOSUPPORT */ ? noIpset() : e
    }
    try {
      const r = await negotiate(sock, op)
      // nfnetlink without the ipset subsystem answers EINVAL (or EOPNOTSUPP).
      if (r.error === 22 /* EINVAL */ || r.error === 95 /* EOPNOTSUPP */ || r.error === 93 /* EPROTONOSUPPORT */) throw noIpset()
      if (r.error) throw ipsetError(r, op, 'protocol')
      const k = r.records.find((x) => x.kind === 'protocol')
      const kernelMax = k?.protocol ?? 0
      const kernelMin = k?.protocolMin ?? kernelMax
      if (kernelMax < IPSET_PROTOCOL_MIN || kernelMin > IPSET_PROTOCOL)
        throw new NetlinkError({ errno: 4097, op, code: 'IPSET_ERR_PROTOCOL', message: `IPSET_ERR_PROTOCOL: the kernel speaks ipset protocol ${kernelMin}..${kernelMax}, tsproxy ${IPSET_PROTOCOL_MIN}..${IPSET_PROTOCOL}` })
      return new IpSet(sock, Math.min(kernelMax, IPSET_PROTOCOL))
    } catch (e) {
      await sock.close()
      throw e
    }
  }

  /** The ipset protocol version agreed with the kernel. */
  get protocol(): number {
    return this.#protocol
  }

  async #run(wires: IpsetWireOp[], op: string): Promise<NativeResult<IpsetRawRecord>[]> {
    return execute(this.#sock, this.#protocol, wires, op)
  }

  async #one(cmd: Cmd, wire: IpsetWireOp, op: string, kind?: SetKind): Promise<NativeResult<IpsetRawRecord>> {
    const [r] = await this.#run([wire], op)
    if (r!.error) throw ipsetError(r!, op, cmd, kind)
    return r!
  }

  /** The newest revision of a type both this code and the kernel know. */
  async #revision(type: SetType, nfproto: number, op: string): Promise<number> {
    const key = `${type}/${nfproto}`
    const known = this.#revisions.get(key)
    if (known !== undefined) return known
    const r = await this.#one('type', { cmd: 'type', typename: type, family: nfproto }, op)
    const t = r.records.find((x) => x.kind === 'type')
    const noType = (why: string): NetlinkError => new NetlinkError({ errno: 4098, op, code: 'IPSET_ERR_FIND_TYPE', message: `IPSET_ERR_FIND_TYPE: ${why}` })
    if (!t) throw noType('the kernel did not describe the type')
    if (t.revisionMin > TYPES[type].maxRevision) throw noType(`the kernel's ${type} starts at revision ${t.revisionMin}, tsproxy knows up to ${TYPES[type].maxRevision}`)
    const rev = Math.min(t.revision, TYPES[type].maxRevision)
    this.#revisions.set(key, rev)
    return rev
  }

  /** What validation needs of each named set (undefined: no such set), from the kernel once. */
  async #infos(names: Iterable<string>, op: string): Promise<Map<string, SetInfo | undefined>> {
    const out = new Map<string, SetInfo | undefined>()
    const missing: string[] = []
    for (const n of names) {
      if (out.has(n)) continue
      const known = this.#sets.get(n)
      out.set(n, known)
      if (!known) missing.push(n)
    }
    if (!missing.length) return out
    const results = await this.#run(missing.map((name) => ({ cmd: 'list', name, flags: FLAG_LIST_HEADER })), op)
    results.forEach((r, i) => {
      const name = missing[i]!
      if (r.error === ENOENT) return
      if (r.error) throw ipsetError(r, op, 'list')
      const rec = r.records.find((x): x is RawSet => x.kind === 'set' && x.typename !== undefined)
      if (!rec) return
      const info = infoOf(rec.typename!, rec.family, rec.header ?? {})
      this.#sets.set(name, info)
      out.set(name, info)
    })
    return out
  }

  async #info(name: string, op: string): Promise<SetInfo> {
    const info = (await this.#infos([name], op)).get(name)
    if (!info) throw noSuchSet(op, 'list')
    return info
  }

  /**
   * Forgets what this handle knows of a set's type (or of every set): the next
   * operation reads it from the kernel again. Needed only when another program
   * re-creates a set under the same name with another type.
   */
  forget(name?: string): void {
    if (name === undefined) this.#sets.clear()
    else this.#sets.delete(name)
  }

  async create(spec: CreateSpec): Promise<void> {
    return this.#sock.call('ipset.create', () => this.#create(spec))
  }

  async #create(spec: CreateSpec): Promise<void> {
    const op = 'ipset.create'
    const { wire, info } = createWire({ op }, spec)
    const revision = await this.#revision(spec.type, wire.family, op)
    await this.#one('create', { ...wire, revision }, op)
    this.#sets.set(wire.name, info)
  }

  /** Destroys a set; with `exist`, a missing set is no error (kernels since 6.8; older ones say ENOENT). */
  async destroy(name: string, options: { exist?: boolean } = {}): Promise<void> {
    return this.#sock.call('ipset.destroy', () => this.#destroy(name, options))
  }

  async #destroy(name: string, options: { exist?: boolean } = {}): Promise<void> {
    const op = 'ipset.destroy'
    const n = setName({ op }, 'name', name)
    const exist = existOption({ op }, options)
    this.#sets.delete(n)
    await this.#one('destroy', { cmd: 'destroy', name: n, ...(exist ? { exist: true } : {}) }, op)
  }

  /** Destroys every set of this network namespace (none may be in use). */
  async destroyAll(): Promise<void> {
    return this.#sock.call('ipset.destroyAll', async () => {
      this.#sets.clear()
      await this.#one('destroy', { cmd: 'destroy' }, 'ipset.destroyAll')
    })
  }

  /** Removes every entry of a set. */
  async flush(name: string): Promise<void> {
    return this.#sock.call('ipset.flush', async () => {
      const op = 'ipset.flush'
      await this.#one('flush', { cmd: 'flush', name: setName({ op }, 'name', name) }, op)
    })
  }

  async flushAll(): Promise<void> {
    return this.#sock.call('ipset.flushAll', async () => {
      await this.#one('flush', { cmd: 'flush' }, 'ipset.flushAll')
    })
  }

  async rename(from: string, to: string): Promise<void> {
    return this.#sock.call('ipset.rename', async () => {
      const op = 'ipset.rename'
      const a = setName({ op }, 'from', from)
      const b = setName({ op }, 'to', to)
      const info = this.#sets.get(a)
      this.#sets.delete(a)
      this.#sets.delete(b)
      await this.#one('rename', { cmd: 'rename', name: a, name2: b }, op)
      if (info) this.#sets.set(b, info)
    })
  }

  /** Exchanges the contents (and so the names) of two sets of the same type and family, atomically. */
  async swap(a: string, b: string): Promise<void> {
    return this.#sock.call('ipset.swap', () => this.#swap(a, b))
  }

  async #swap(a: string, b: string): Promise<void> {
    const op = 'ipset.swap'
    const x = setName({ op }, 'a', a)
    const y = setName({ op }, 'b', b)
    const ix = this.#sets.get(x)
    const iy = this.#sets.get(y)
    this.#sets.delete(x)
    this.#sets.delete(y)
    await this.#one('swap', { cmd: 'swap', name: x, name2: y }, op)
    if (ix) this.#sets.set(y, ix)
    if (iy) this.#sets.set(x, iy)
  }

  /** The names of every set, in the kernel's order. */
  async listNames(): Promise<string[]> {
    return this.#sock.call('ipset.listNames', async () => {
      const r = await this.#one('list', { cmd: 'list', flags: FLAG_LIST_SETNAME }, 'ipset.listNames')
      return r.records.filter((x) => x.kind === 'set').map((x) => x.name)
    })
  }

  /** One set's header (no members); rejects with ENOENT when there is no such set. */
  async header(name: string): Promise<IpSetRecord> {
    return this.#sock.call('ipset.header', () => this.#listOne('ipset.header', name, false))
  }

  /** One set with its header and every member; rejects with ENOENT when there is no such set. */
  async list(name: string): Promise<IpSetRecord> {
    return this.#sock.call('ipset.list', () => this.#listOne('ipset.list', name, true))
  }

  async #listOne(op: string, name: string, withMembers: boolean): Promise<IpSetRecord> {
    const n = setName({ op }, 'name', name)
    const r = await this.#one('list', { cmd: 'list', name: n, ...(withMembers ? {} : { flags: FLAG_LIST_HEADER }) }, op)
    const [rec] = this.#records(setsOf(r), withMembers)
    if (!rec) throw noSuchSet(op, 'list')
    return rec
  }

  /** Every set with its members (list:set sets last, as the kernel dumps them). */
  async listAll(): Promise<IpSetRecord[]> {
    return this.#sock.call('ipset.listAll', async () => {
      const r = await this.#one('list', { cmd: 'list' }, 'ipset.listAll')
      return this.#records(setsOf(r), true)
    })
  }

  /** Dump messages to records, learning each set's type on the way. */
  #records(raws: RawSet[], withMembers: boolean): IpSetRecord[] {
    return recordsOf(raws, withMembers).map(({ record, info }) => {
      this.#sets.set(record.name, info)
      return record
    })
  }

  async add(name: string, entry: IpSetEntry, options: { exist?: boolean } = {}): Promise<void> {
    await this.#adt('add', name, entry, options)
  }

  async del(name: string, entry: IpSetEntry, options: { exist?: boolean } = {}): Promise<void> {
    await this.#adt('del', name, entry, options)
  }

  /** Whether the set holds the entry (for net types: that exact network). */
  async test(name: string, entry: IpSetEntry): Promise<boolean> {
    return this.#sock.call('ipset.test', async () => {
      const op = 'ipset.test'
      const n = setName({ op }, 'name', name)
      const info = await this.#info(n, op)
      const wire = entryWire({ op }, info, entry, 'test')
      const [r] = await this.#run([{ cmd: 'test', name: n, entry: wire }], op)
      if (r!.error === IPSET_ERR_EXIST) return false
      if (r!.error) throw this.#fail(r!, op, 'test', n, kindOf(info))
      return true
    })
  }

  async #adt(cmd: 'add' | 'del', name: string, entry: IpSetEntry, options: { exist?: boolean }): Promise<void> {
    return this.#sock.call(`ipset.${cmd}`, async () => {
      const op = `ipset.${cmd}`
      const n = setName({ op }, 'name', name)
      const exist = existOption({ op }, options)
      const info = await this.#info(n, op)
      const wire = entryWire({ op }, info, entry, cmd)
      const [r] = await this.#run([{ cmd, name: n, entry: wire, ...(exist ? { exist } : {}) }], op)
      if (r!.error) throw this.#fail(r!, op, cmd, n, kindOf(info))
    })
  }

  /**
   * A refusal of an entry of a `kind` set, named as that kind numbers its
   * errors (from the request, not from what the handle knows now: the first
   * refusal of a batch may make it forget the set).
   */
  #fail(r: NativeResult<unknown>, op: string, cmd: Cmd, set: string, kind: SetKind, index?: number): NetlinkError {
    // An answer that says our picture of the set is wrong: read it again next time.
    if (staleInfo(r.error, kind)) this.#sets.delete(set)
    return ipsetError(r, op, cmd, kind, index)
  }

  /**
   * Many adds and deletes in one burst, one result per operation, in order.
   * Every operation is validated first (a bad one throws ValidationError with
   * its index and nothing is sent). Consecutive operations on one set travel
   * together in IPSET_ATTR_ADT messages of up to ~32 KiB (hundreds of entries),
   * each entry numbered: the kernel stops a message at its first failing entry
   * and says which, so that entry gets the error and the rest of the message is
   * sent again. Operations naming a set that does not exist fail with ENOENT
   * without being sent.
   */
  async batch(ops: IpSetOp[]): Promise<Outcome[]> {
    return this.#sock.call('ipset.batch', () => this.#batch(ops))
  }

  async #batch(ops: IpSetOp[]): Promise<Outcome[]> {
    const op = 'ipset.batch'
    const names = batchSets({ op }, ops)
    if (ops.length === 0) return []
    const infos = await this.#infos(names, op)
    const outcomes: Outcome[] = new Array(ops.length)
    for (const msgs of await planBatch(ops, infos, outcomes)) await sendMessages(msgs, outcomes, this.#sender)
    return outcomes
  }

  /**
   * Makes the set hold exactly `entries`, atomically: a temporary set of the
   * same type is filled, swapped in, and destroyed. If any entry is refused,
   * nothing changes and the first refusal is thrown (with its index).
   * `resize` gives a hash set a new `maxelem` / `hashsize` on the way (the
   * kernel fixes maxelem at create: this is how a full set grows); the rest of
   * the header is kept.
   */
  async replaceMembers(name: string, entries: IpSetEntry[], resize: ResizeOptions = {}): Promise<void> {
    return this.#sock.call('ipset.replaceMembers', async () => {
      const op = 'ipset.replaceMembers'
      const n = setName({ op }, 'name', name)
      entryList({ op }, entries)
      const size = resizeOptions({ op }, resize)
      const h = await this.#listOne('ipset.header', n, false)
      const info = this.#sets.get(n) ?? infoOf(h.type, h.family ? NFPROTO[h.family] : 0, {})
      handledType({ op }, 'name', h.type)
      resizeFits({ op }, size, h.type, n)
      entries.forEach((e, index) => entryWire({ op, index }, info, e, 'add'))
      const tmp = `tsproxy-tmp-${randomBytes(6).toString('hex')}`
      const spec: CreateSpec = { name: tmp, type: h.type as SetType }
      if (h.family) spec.family = h.family
      const hashsize = size.hashsize ?? h.hashsize
      const maxelem = size.maxelem ?? h.maxelem
      if (hashsize !== undefined) spec.hashsize = hashsize
      if (maxelem !== undefined) spec.maxelem = maxelem
      if (h.range) spec.range = h.range
      if (h.size !== undefined) spec.size = h.size
      if (h.timeout !== undefined) spec.timeout = h.timeout
      if (h.counters) spec.counters = true
      if (h.comment) spec.comment = true
      if (h.skbinfo) spec.skbinfo = true
      if (h.forceadd) spec.forceadd = true
      await this.#create(spec)
      try {
        const outcomes = await this.#batch(entries.map((entry) => ({ op: 'add' as const, set: tmp, entry, exist: true })))
        const bad = outcomes.find((o): o is { ok: false; error: NetlinkError } => !o.ok)
        if (bad) throw bad.error
        await this.#swap(tmp, n)
      } finally {
        await this.#destroy(tmp).catch(() => undefined)
      }
    })
  }

  /**
   * Adds what `entries` has and the set lacks, deletes what the set has and
   * `entries` lacks (entries compare as the kernel compares them: by address,
   * network, protocol, port, set name; not by timeout or comment). One listing,
   * then one batch.
   */
  async syncMembers(name: string, entries: IpSetEntry[]): Promise<SyncResult> {
    return this.#sock.call('ipset.syncMembers', async () => {
      const op = 'ipset.syncMembers'
      const n = setName({ op }, 'name', name)
      entryList({ op }, entries)
      const info = await this.#info(n, op)
      const listed = (await this.#one('list', { cmd: 'list', name: n }, op)).records.filter((x): x is RawSet => x.kind === 'set' && x.name === n)
      const { msgs, cmds, unchanged } = await planSync(n, info, listed.flatMap((x) => (x.members ? [x.members] : [])), entries, op)
      // Each entry is either deleted or added, once: one segment.
      const outcomes: Outcome[] = new Array(cmds.length)
      await sendMessages(msgs, outcomes, this.#sender)
      const errors: NetlinkError[] = []
      let added = 0
      let deleted = 0
      outcomes.forEach((o, i) => {
        if (!o.ok) errors.push(o.error)
        else if (cmds[i] === 'add') added++
        else deleted++
      })
      return { added, deleted, unchanged, errors }
    })
  }

  /** Every call started before it finishes first (all of its requests); later calls reject with EBADF. */
  async close(): Promise<void> {
    await this.#sock.close()
  }
}

/** The set records of a reply (a list dump gives nothing else). */
function setsOf(r: NativeResult<IpsetRawRecord>): RawSet[] {
  return r.records.filter((x): x is RawSet => x.kind === 'set')
}
