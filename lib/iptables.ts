// iptables (legacy x_tables) through libiptc: whole-table transactions.
// A transaction reads a snapshot of one table (nat, filter, mangle, raw), takes
// edits (chains and rules, validated here and laid out as the kernel's entries
// by lib/iptables/planner), and commits them in one atomic replace of the table.
// All libiptc work runs on the thread pool (native/iptc), one job at a time per
// address family. No iptables or iptables-restore process is involved.
import { NetlinkError } from './errors.js'
import { native, type NativeChain, type NativeCommitInfo, type NativeIptcTransaction } from './native.js'
import * as v from './validate.js'
import type { Family, Where } from './validate.js'
import { OP_KIND, type OpName } from './iptables/layout.js'
import { chainName, isBuiltin } from './iptables/fields.js'
import { type Counters, type IptablesTable, type Rule, type RuleRecord, TABLES } from './iptables/model.js'
import { planRule } from './iptables/planner.js'
import { decodeRule } from './iptables/decode.js'
import { dumpedRules, OpWriter } from './iptables/wire.js'
import { detectBackend, type BackendReport } from './iptables/backend.js'
import { enqueue } from './iptables/queue.js'

export type * from './iptables/model.js'
export type { BackendReport, BackendTable } from './iptables/backend.js'
export { TABLES as IPTABLES_TABLES } from './iptables/model.js'
export { encodeRule as iptablesEncodeRule } from './iptables/planner.js'
export { decodeRule as iptablesDecodeRule } from './iptables/decode.js'

export interface IptablesOptions {
  /** 'inet' (IPv4, libip4tc; the default) or 'inet6' (IPv6, libip6tc). */
  family?: Family
  /**
   * Read the next snapshot of a table right after each commit, and hand it to
   * the next transaction when nothing has changed since (default true). Saves
   * the read (and parse) of the whole table on the next commit; costs memory
   * for a parsed copy of each table committed to.
   */
  reuseSnapshots?: boolean
  /** How long a commit waits for the xtables lock (/run/xtables.lock) held by another process (default 5000 ms). */
  lockTimeoutMs?: number
}

export interface ChainRecord {
  name: string
  builtin: boolean
  /** Built-in chains: their policy and its counters. */
  policy?: 'ACCEPT' | 'DROP'
  counters?: Counters
  /** Rules that jump or go to this chain. */
  references: number
  /** Number of rules. */
  rules: number
}

export interface ChainWithRules extends ChainRecord {
  ruleList: RuleRecord[]
}

/** What a commit did: where the time went, and the table as committed. */
export type CommitStats = NativeCommitInfo

/** Thrown when libip4tc / libip6tc cannot be loaded: says what to install. */
export class LibiptcMissingError extends Error {
  override name = 'LibiptcMissingError'
  readonly code = 'ERR_TSPROXY_NO_LIBIPTC'
  constructor(family: Family, detail: string) {
    const lib = family === 'inet' ? 'libip4tc' : 'libip6tc'
    super(
      `tsproxy iptables needs ${lib} (${lib}.so.2), which could not be loaded: ${detail}. Install it: ` +
        `Debian/Ubuntu: apt-get install ${lib}2 (or iptables); Fedora/RHEL: dnf install iptables-libs; ` +
        'Alpine: apk add iptables. IPVS and ipset work without it.',
    )
  }
}

const familyNumber = (f: Family): 4 | 6 => (f === 'inet' ? 4 : 6)
const ENOENT = 2
const EBADF = 9
// native/iptc/table.h: the failures that are not one edit's
const KIND_LOAD = 0
const KIND_READ = 0xfffe
const KIND_COMMIT = 0xffff

/** Turns a native rejection ({ errno, index, kind, detail }) into a NetlinkError with a useful message. */
function toError(e: unknown, table: string, family: Family, readChain?: string): Error {
  const x = e as { errno?: number; index?: number; kind?: number; chain?: string; detail?: string; message?: string }
  if (typeof x.errno !== 'number') return e as Error
  const errno = x.errno
  const kindName = (Object.entries(OP_KIND).find(([, k]) => k === x.kind)?.[0] ?? undefined) as OpName | undefined
  const v6 = family === 'inet6'
  if (x.kind === KIND_LOAD || x.kind === KIND_COMMIT || x.kind === KIND_READ) {
    const op = x.kind === KIND_LOAD ? 'iptables.load' : x.kind === KIND_COMMIT ? 'iptables.commit' : 'iptables.listRules'
    return new NetlinkError({ errno, op, message: `${errnoText(errno)}: ${hint(op, errno, table, v6, x.detail, readChain)}` })
  }
  const chain = x.chain ?? '?'
  const op = `iptables.${kindName ?? 'apply'}`
  return new NetlinkError({
    errno,
    op,
    ...(x.index !== undefined ? { index: x.index } : {}),
    message: `${errnoText(errno)}: ${hint(op, errno, table, v6, x.detail, chain)}`,
  })
}

function errnoText(errno: number): string {
  return new NetlinkError({ errno, op: '' }).code
}

function hint(op: string, errno: number, table: string, v6: boolean, detail?: string, chain?: string): string {
  const t = `${v6 ? 'ip6tables' : 'iptables'} ${table} table`
  const c = chain === undefined ? '' : `chain ${chain}`
  if (detail?.startsWith('set ')) return `${detail}: ${errno === ENOENT ? 'no such ipset' : errno === 97 ? 'the ipset is of the other address family' : 'ipset lookup failed'}`
  switch (`${op}:${errno}`) {
    case 'iptables.load:2':
      return `the kernel has no ${t} (legacy x_tables: modprobe ${v6 ? 'ip6table' : 'iptable'}_${table})`
    case 'iptables.load:1':
    case 'iptables.load:13':
    case 'iptables.commit:1':
      return 'not permitted (needs CAP_NET_ADMIN)'
    case 'iptables.commit:2':
      return `the kernel does not know a target or match of the ${t} (a jump to a chain that does not exist? a module not loaded?); nothing was committed`
    case 'iptables.commit:22':
      return `the kernel refused the ${t} (a target used in a table or chain it does not allow?); nothing was committed`
    case 'iptables.commit:40':
      return `the rules of the ${t} would form a loop; nothing was committed`
    case 'iptables.commit:110':
      return `${detail ?? 'the xtables lock'} is held by another process; nothing was committed`
    case 'iptables.createChain:17':
    case 'iptables.renameChain:17':
      return `a chain of that name already exists in the ${t}`
    case 'iptables.deleteChain:39':
      return `${c} is not empty (flush it first)`
    case 'iptables.deleteChain:31':
      return `${c} is still the target of other rules`
    case 'iptables.deleteRule:2':
      return detail ?? `no rule in ${c} equals the one given (or no ${c})`
    case 'iptables.insertRule:7':
    case 'iptables.replaceRule:7':
    case 'iptables.deleteRuleAt:7':
      return `the index is past the end of ${c}`
  }
  if (errno === ENOENT && chain) return `no ${c} in the ${t}`
  return detail ?? `${op} failed`
}

export class Iptables {
  readonly family: Family
  readonly #options: Required<Omit<IptablesOptions, 'family'>>

  private constructor(family: Family, options: Required<Omit<IptablesOptions, 'family'>>) {
    this.family = family
    this.#options = options
  }

  /**
   * Loads libip4tc (or libip6tc for 'inet6'); rejects with LibiptcMissingError
   * saying what to install when it is not there. Reads nothing yet.
   */
  static async open(options: IptablesOptions = {}): Promise<Iptables> {
    const at: Where = { op: 'iptables.open' }
    v.only(at, 'options', v.object(at, 'options', options), ['family', 'reuseSnapshots', 'lockTimeoutMs'])
    const family = options.family === undefined ? 'inet' : v.oneOf(at, 'family', options.family, ['inet', 'inet6'] as const)
    const reuseSnapshots = options.reuseSnapshots === undefined ? true : v.boolean(at, 'reuseSnapshots', options.reuseSnapshots)
    const lockTimeoutMs = options.lockTimeoutMs === undefined ? 5000 : v.integer(at, 'lockTimeoutMs', options.lockTimeoutMs, 0, 0x7fffffff)
    const loaded = native.iptc.load(familyNumber(family))
    if (!loaded.ok) throw new LibiptcMissingError(family, loaded.error)
    return new Iptables(family, { reuseSnapshots, lockTimeoutMs })
  }

  /**
   * Which backend holds this network namespace's iptables rules: legacy
   * x_tables (what this library drives) or nf_tables (iptables-nft), and where
   * KUBE-* chains are. Reads both, changes nothing; works without libiptc.
   */
  static detectBackend(): Promise<BackendReport> {
    return detectBackend()
  }

  /** Which libiptc was loaded (e.g. 'libip4tc.so.2'), or why none could be. */
  static library(family: Family = 'inet'): { ok: true; path: string } | { ok: false; error: string } {
    return native.iptc.load(familyNumber(family))
  }

  /** Starts a transaction on `table`. The table is read when first needed (a read, or the commit). */
  begin(table: IptablesTable): IptablesTransaction {
    const t = v.oneOf({ op: 'iptables.begin' }, 'table', table, TABLES)
    return new IptablesTransaction(this.family, t, this.#options)
  }

  /** The chains of a table, with policies, counters, references and rule counts. */
  async listChains(table: IptablesTable): Promise<ChainRecord[]> {
    return this.#read(table, (tx) => tx.listChains())
  }

  /** Every rule of one chain, as typed records with counters. */
  async listRules(table: IptablesTable, chain: string): Promise<RuleRecord[]> {
    return this.#read(table, (tx) => tx.listRules(chain))
  }

  /** Every chain of a table with its rules (what iptables-save prints). */
  async readTable(table: IptablesTable): Promise<ChainWithRules[]> {
    return this.#read(table, (tx) => tx.readTable())
  }

  /** Frees the snapshots kept for reuse (a parsed copy of each table committed to). */
  async dropSnapshots(): Promise<void> {
    const f = familyNumber(this.family)
    for (const t of TABLES) await enqueue(f, () => native.iptc.dropSnapshot(f, t))
  }

  async #read<T>(table: IptablesTable, fn: (tx: IptablesTransaction) => Promise<T>): Promise<T> {
    const tx = this.begin(table)
    try {
      return await fn(tx)
    } finally {
      await tx.abort()
    }
  }
}

type TxState = 'open' | 'committing' | 'committed' | 'aborted' | 'failed'

/**
 * Edits of one table, applied atomically by commit(). Edit methods validate at
 * once (a ValidationError names the field; nothing is queued then) and return
 * the edit's index; the kernel-side outcome of every edit is known at the next
 * read or at commit: a failed edit fails the transaction, nothing is committed,
 * and the NetlinkError carries the edit's index and the errno.
 */
export class IptablesTransaction {
  readonly family: Family
  readonly table: IptablesTable
  readonly #native: NativeIptcTransaction
  readonly #options: Required<Omit<IptablesOptions, 'family'>>
  readonly #ops = new OpWriter()
  #next = 0
  #state: TxState = 'open'

  /** @internal use Iptables.begin() */
  constructor(family: Family, table: IptablesTable, options: Required<Omit<IptablesOptions, 'family'>>) {
    this.family = family
    this.table = table
    this.#options = options
    this.#native = new native.iptc.Transaction(familyNumber(family), table, options)
  }

  /** 'open', 'committing', 'committed', 'aborted' or 'failed'. */
  get state(): TxState {
    return this.#state
  }

  // ---- edits ------------------------------------------------------------------------------

  createChain(chain: string): number {
    const at = this.#at('createChain')
    const name = chainName(at, 'chain', chain)
    if (isBuiltin(name)) v.fail(at, 'chain', chain, 'is a built-in chain')
    return this.#add('createChain', name)
  }

  /** Deletes an empty chain that no rule jumps to. */
  deleteChain(chain: string): number {
    const at = this.#at('deleteChain')
    const name = this.#existing(at, chain)
    if (isBuiltin(name)) v.fail(at, 'chain', chain, 'is a built-in chain')
    return this.#add('deleteChain', name)
  }

  /** Deletes every rule of a chain. */
  flushChain(chain: string): number {
    return this.#add('flushChain', this.#existing(this.#at('flushChain'), chain))
  }

  renameChain(chain: string, newName: string): number {
    const at = this.#at('renameChain')
    const from = this.#existing(at, chain)
    if (isBuiltin(from)) v.fail(at, 'chain', chain, 'is a built-in chain')
    const to = chainName(at, 'newName', newName)
    if (isBuiltin(to)) v.fail(at, 'newName', newName, 'is a built-in chain')
    return this.#add('renameChain', from, { arg: to })
  }

  /** The policy of a built-in chain. */
  setPolicy(chain: string, policy: 'ACCEPT' | 'DROP'): number {
    const at = this.#at('setPolicy')
    const name = this.#existing(at, chain)
    if (!isBuiltin(name)) v.fail(at, 'chain', chain, 'is not a built-in chain: only those have a policy')
    const p = v.oneOf(at, 'policy', policy, ['ACCEPT', 'DROP'] as const)
    return this.#add('setPolicy', name, { arg: p })
  }

  /** Zeroes the packet and byte counters of every rule of a chain. */
  zeroCounters(chain: string): number {
    return this.#add('zeroCounters', this.#existing(this.#at('zeroCounters'), chain))
  }

  appendRule(chain: string, rule: Rule): number {
    const at = this.#at('appendRule')
    const name = this.#existing(at, chain)
    return this.#add('appendRule', name, { rule: this.#encode(at, rule) })
  }

  /** Inserts before the rule at `index` (0: first; the chain's length: last). */
  insertRule(chain: string, rule: Rule, index = 0): number {
    const at = this.#at('insertRule')
    const name = this.#existing(at, chain)
    const rulenum = v.integer(at, 'index', index, 0, 0xffffffff)
    return this.#add('insertRule', name, { rule: this.#encode(at, rule), rulenum })
  }

  /** Replaces the rule at `index` (0-based). */
  replaceRule(chain: string, index: number, rule: Rule): number {
    const at = this.#at('replaceRule')
    const name = this.#existing(at, chain)
    const rulenum = v.integer(at, 'index', index, 0, 0xffffffff)
    return this.#add('replaceRule', name, { rule: this.#encode(at, rule), rulenum })
  }

  /** Deletes the rule at `index` (0-based), or the first rule equal to `rule` (as iptables -D compares). */
  deleteRule(chain: string, rule: Rule | number): number {
    if (typeof rule === 'number') {
      const at = this.#at('deleteRuleAt')
      const name = this.#existing(at, chain)
      return this.#add('deleteRuleAt', name, { rulenum: v.integer(at, 'index', rule, 0, 0xffffffff) })
    }
    const at = this.#at('deleteRule')
    const name = this.#existing(at, chain)
    return this.#add('deleteRule', name, { rule: this.#encode(at, rule), withMask: true })
  }

  // ---- reads (they see this transaction's edits) ------------------------------------------

  async listChains(): Promise<ChainRecord[]> {
    const d = await this.#dump(null, false)
    return d.chains.map(chainRecord)
  }

  async listRules(chain: string): Promise<RuleRecord[]> {
    const name = this.#existing(this.#at('listRules'), chain)
    const d = await this.#dump(name, true)
    return [...dumpedRules(d.rules)].map((r) => decodeRule(r.entry, this.family, r.label, d.sets))
  }

  /**
   * Every chain with a hash of its rules as the kernel holds them now
   * (counters aside; '' for a chain with a set match, whose rules the hash
   * cannot name): equal hashes, equal rules. Reads the table from the kernel
   * even when a snapshot was cached, and reads the snapshot again if it
   * hashes otherwise, so a later read or commit of this transaction sees the
   * table as surveyed. No rules are decoded.
   */
  async surveyTable(): Promise<TableSurvey> {
    const d = await this.#dump(null, false, true)
    // As native code made them (name, builtin, hash): no copy of 111 000 records at 10k services.
    return { chains: d.chains as TableSurvey['chains'], snapshotReread: d.reread === true }
  }

  /** readTable's records of the chains named (in table order; names not there are left out). */
  async readChains(chains: readonly string[]): Promise<ChainWithRules[]> {
    return this.#readRules(await this.#dump(chains, true))
  }

  async readTable(): Promise<ChainWithRules[]> {
    return this.#readRules(await this.#dump(null, true))
  }

  #readRules(d: Awaited<ReturnType<NativeIptcTransaction['dump']>>): ChainWithRules[] {
    const rules = dumpedRules(d.rules)
    return d.chains.map((c) => {
      const ruleList: RuleRecord[] = []
      for (let i = 0; i < c.rules; i++) {
        const r = rules.next()
        if (r.done) break
        ruleList.push(decodeRule(r.value.entry, this.family, r.value.label, d.sets))
      }
      return { ...chainRecord(c), ruleList }
    })
  }

  // ---- the end --------------------------------------------------------------------------

  /**
   * Applies the pending edits and replaces the table in the kernel atomically,
   * holding the xtables lock as iptables does. If another writer changed the
   * table since this transaction read it, the table is read again and every
   * edit re-applied to it first (like iptables-restore --noflush). On any
   * failure nothing is committed.
   */
  async commit(): Promise<CommitStats> {
    this.#check('commit')
    this.#state = 'committing'
    const ops = this.#ops.take()
    const f = familyNumber(this.family)
    try {
      const info = await enqueue(f, () => this.#native.commit(ops))
      this.#state = 'committed'
      if (this.#options.reuseSnapshots) void enqueue(f, () => native.iptc.prefetch(f, this.table)).catch(() => undefined)
      return info
    } catch (e) {
      this.#state = 'failed'
      throw toError(e, this.table, this.family)
    }
  }

  /** Drops the transaction: nothing is committed. */
  async abort(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return
    this.#state = 'aborted'
    this.#ops.take()
    await enqueue(familyNumber(this.family), () => this.#native.release())
  }

  // ---- internals ------------------------------------------------------------------------

  #at(op: string): Where {
    this.#check(op)
    return { op: `iptables.${op}` }
  }

  #check(op: string): void {
    if (this.#state !== 'open')
      throw new NetlinkError({ errno: EBADF, op: `iptables.${op}`, message: `EBADF: the transaction is ${this.#state}` })
  }

  /** A chain that may already exist: anything libiptc can name (xt_chainlabel, 31 bytes). */
  #existing(at: Where, chain: unknown): string {
    if (typeof chain !== 'string' || chain.length === 0 || Buffer.byteLength(chain) > 31 || chain.includes('\0'))
      v.fail(at, 'chain', chain, 'must be a chain name of 1 to 31 bytes')
    return chain
  }

  #encode(at: Where, rule: Rule) {
    return planRule(at, rule, { family: this.family, table: this.table })
  }

  #add(kind: OpName, chain: string, opts: Parameters<OpWriter['add']>[3] = {}): number {
    const index = this.#next++
    this.#ops.add(kind, index, chain, opts)
    return index
  }

  async #dump(chain: string | readonly string[] | null, rules: boolean, survey = false) {
    this.#check('read')
    const ops = this.#ops.take()
    const f = familyNumber(this.family)
    try {
      return await enqueue(f, async () => {
        if (ops) await this.#native.apply(ops)
        return this.#native.dump(chain, rules, survey)
      })
    } catch (e) {
      // A read of a missing chain leaves the transaction usable; a failed load or edit does not.
      if ((e as { kind?: number }).kind !== KIND_READ) this.#state = 'failed'
      throw toError(e, this.table, this.family, typeof chain === 'string' ? chain : undefined)
    }
  }
}

/** What surveyTable read: every chain with its hash. */
export interface TableSurvey {
  chains: { name: string; builtin: boolean; hash: string }[]
  /** The transaction's snapshot (cached after our last commit) hashed otherwise than the kernel's table, and was read again. */
  snapshotReread: boolean
}

function chainRecord(c: NativeChain): ChainRecord {
  return {
    name: c.name,
    builtin: c.builtin,
    ...(c.builtin ? { policy: c.policy as 'ACCEPT' | 'DROP', counters: { packets: c.packets ?? 0, bytes: c.bytes ?? 0 } } : {}),
    references: c.references,
    rules: c.rules,
  }
}

