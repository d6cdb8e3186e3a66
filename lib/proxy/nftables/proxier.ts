// The nftables proxier: kube-proxy's nftables mode (desired.ts, rules.ts) kept
// in one nf_tables table per family (`ip kube-proxy`, `ip6 kube-proxy`)
// through nfnetlink, one kernel transaction per sync.
//
// Each service port contributes elements to shared sets and maps
// (cluster-ips, service-ips, service-nodeports, no-endpoint-*, firewall-ips)
// and owns its own chains (service-, local-, external-, firewall-, endpoint-).
// A partial sync recomputes the changed ports and sends only the difference:
// elements deleted and added, a port's chains created, flushed and refilled
// (when their rules differ) or flushed and deleted. A full sync reads the table
// back and repairs whatever differs from what it should hold (a missing table,
// chain, rule, set or element; a stale one of ours), in one transaction; when
// nothing differs it writes nothing (a restart adopts the table as found).
// Two ports asking for the same element (two ports of one service share their
// cluster IP in cluster-ips): the element stays while one asks for it; for the
// same key with different verdicts, the port whose key sorts first owns it.
// When to sync what, reports and stale conntrack: ../reconciler.ts.
import type { NftElement, NftElementRecord, NftExpr, NftFamily, NftTableContents } from '../../nftables.js'
import type { Family } from '../../validate.js'
import { nodeAddresses, nodePortSelection, selectNodePortAddresses, type NodePortSelection } from '../nodeports.js'
import { Reconciler } from '../reconciler.js'
import type { ChainStatus, Log, ProxyState, Report } from '../types.js'
import type { TopologyOptions } from '../model/topology.js'
import { noFamilySupport, type NftablesDataplane, type NftEdit } from './dataplane.js'
import {
  EMPTY_PORT,
  TABLE,
  TABLE_COMMENT,
  desiredOf,
  fixedElements,
  fixedLayout,
  isAffinitySet,
  type ChainShape,
  type PortSet,
  type PortDesired,
  type PortElement,
} from './desired.js'
import { ruleKey, type RuleSpec } from './rules.js'

export interface NftablesProxierOptions {
  family?: Family
  masqueradeAll?: boolean
  masqueradeBit?: number
  clusterCIDR?: string
  nodePortAddresses?: readonly string[]
  nodeIP?: string
  nodeZone?: string
  log?: Log
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const elKey = (set: string, key: Uint8Array): string => `${set}\0${hex(key)}`

/** A rule's comparable text: its expressions, comment and its anonymous set's elements (sorted). */
function digest(rules: readonly RuleSpec[]): string {
  return rules.map((x) => ruleKey(x.anon ? { ...x, anon: { ...x.anon, elements: sortEls(x.anon.elements) } } : x)).join('\n')
}
function sortEls<T extends { key: Uint8Array; intervalEnd?: boolean }>(els: readonly T[]): T[] {
  return [...els].sort((a, b) => {
    const x = hex(a.key) + (a.intervalEnd ? '1' : '0')
    const y = hex(b.key) + (b.intervalEnd ? '1' : '0')
    return x < y ? -1 : x > y ? 1 : 0
  })
}
const elementText = (e: { verdict?: { verdict: string; chain?: string } | undefined; comment?: string | undefined }): string => JSON.stringify([e.verdict?.verdict, e.verdict?.chain, e.comment])

export class NftablesProxier extends Reconciler {
  readonly #dp: NftablesDataplane
  readonly #o: Required<Pick<NftablesProxierOptions, 'masqueradeAll' | 'masqueradeBit' | 'clusterCIDR'>> & NftablesProxierOptions
  readonly #nft: NftFamily
  readonly #nodePorts: NodePortSelection
  /** nodePortAddresses other than all: the addresses last read. */
  #nodePortAddresses: string[] | undefined
  /** What each port asks for, as last applied. */
  readonly #applied = new Map<string, PortDesired>()
  /** Who asks for each shared element: element key -> port key -> the element. */
  readonly #owners = new Map<string, Map<string, PortElement>>()
  /** The element the kernel holds for each element key, as far as we know. */
  readonly #inKernel = new Map<string, PortElement>()
  #elementCount = 0

  constructor(dataplane: NftablesDataplane, options: NftablesProxierOptions = {}) {
    super(dataplane, options)
    this.#dp = dataplane
    this.#o = { masqueradeAll: false, masqueradeBit: 14, clusterCIDR: '', ...options }
    this.#nft = this.family === 'inet6' ? 'ip6' : 'ip'
    this.#nodePorts = nodePortSelection(options.nodePortAddresses ?? [], this.family)
  }

  get draining(): number {
    return 0
  }

  async setup(): Promise<string[]> {
    return []
  }

  drain(): Promise<number> {
    return Promise.resolve(0)
  }

  /** Elements of the shared sets and maps, as of the last commit. */
  get elements(): number {
    return this.#elementCount
  }

  #fixed() {
    const o = { family: this.family, masqueradeBit: this.#o.masqueradeBit, ...(this.#nodePorts.all ? {} : { nodePortAddresses: this.#nodePortAddresses ?? [] }) }
    return { layout: fixedLayout(o), elements: fixedElements(o) }
  }

  #desired(key: string, state: ProxyState): PortDesired {
    const port = state.ports.get(key)
    if (!port) return EMPTY_PORT
    const topology: TopologyOptions = this.#o.nodeZone ? { nodeZone: this.#o.nodeZone } : {}
    return desiredOf(port, state.endpoints(key), {
      family: this.family,
      masqueradeAll: this.#o.masqueradeAll,
      clusterCIDR: this.#o.clusterCIDR,
      ...(this.#o.nodeIP ? { nodeIP: this.#o.nodeIP } : {}),
      topology,
    })
  }

  /** The element a key resolves to: the one of the port whose key sorts first. */
  #winner(k: string): PortElement | undefined {
    const owners = this.#owners.get(k)
    if (!owners || owners.size === 0) return undefined
    let best: string | undefined
    for (const p of owners.keys()) if (best === undefined || p < best) best = p
    return owners.get(best!)
  }

  /** Records `after` as what `key` asks for; resolves the element keys whose winner may have changed. */
  #record(key: string, after: PortDesired, touched: Set<string>): void {
    const before = this.#applied.get(key) ?? EMPTY_PORT
    for (const e of before.elements) {
      const k = elKey(e.set, e.key)
      const o = this.#owners.get(k)
      o?.delete(key)
      if (o?.size === 0) this.#owners.delete(k)
      touched.add(k)
    }
    for (const e of after.elements) {
      const k = elKey(e.set, e.key)
      let o = this.#owners.get(k)
      if (!o) this.#owners.set(k, (o = new Map()))
      o.set(key, e)
      touched.add(k)
    }
    this.countNoLocal(before.noLocalEndpoints, after.noLocalEndpoints)
    if (after.elements.length === 0 && after.chains.size === 0) this.#applied.delete(key)
    else this.#applied.set(key, after)
  }

  #at() {
    return { family: this.#nft, table: TABLE }
  }

  #ruleEdits(chain: string, rules: readonly RuleSpec[], out: NftEdit[]): void {
    const at = this.#at()
    for (const x of rules) {
      if (x.anon) {
        const a = x.anon
        out.push({
          op: 'addSet',
          spec: { ...at, name: a.name, key: a.key, ...(a.verdict ? { data: 'verdict' as const } : {}), flags: a.interval ? ['anonymous', 'constant', 'interval'] : ['anonymous', 'constant'] },
        })
        out.push({ op: 'addElements', ...at, set: a.name, elements: a.elements.map((e) => ({ key: e.key, ...(e.verdict ? { verdict: e.verdict } : {}), ...(e.intervalEnd ? { intervalEnd: true } : {}) })) })
      }
      out.push({ op: 'addRule', spec: { ...at, chain, expressions: x.exprs as NftExpr[], ...(x.comment === undefined ? {} : { comment: x.comment }) } })
    }
  }

  #setEdit(x: PortSet): NftEdit {
    return { op: 'addSet', spec: { ...this.#at(), name: x.name, key: x.key, flags: ['dynamic', 'timeout'], timeout: x.timeout } }
  }

  #element(e: PortElement): NftElement {
    return { key: e.key, ...(e.verdict ? { verdict: e.verdict } : {}), ...(e.comment === undefined ? {} : { comment: e.comment }) }
  }

  // ---- partial sync -----------------------------------------------------------------------------

  protected override async applyChanges(state: ProxyState, changed: Iterable<string>, report: Report): Promise<void> {
    const keys = new Set(changed)
    if (keys.size === 0) return
    const touched = new Set<string>()
    const chainsBefore = new Map<string, string>()
    const chainsAfter = new Map<string, readonly RuleSpec[]>()
    const setsBefore = new Map<string, number>()
    const setsAfter = new Map<string, PortSet>()
    /** Chains to rewrite whatever their rules: they refer to an affinity set made again. */
    const rewrite = new Set<string>()
    const saved = new Map<string, PortDesired | undefined>()
    for (const key of keys) {
      const before = this.#applied.get(key) ?? EMPTY_PORT
      saved.set(key, this.#applied.get(key))
      for (const [c, rules] of before.chains) chainsBefore.set(c, digest(rules))
      for (const x of before.sets) setsBefore.set(x.name, x.timeout)
      const after = this.#desired(key, state)
      for (const [c, rules] of after.chains) chainsAfter.set(c, rules)
      for (const x of after.sets) setsAfter.set(x.name, x)
      if (after.sets.some((x) => setsBefore.has(x.name) && setsBefore.get(x.name) !== x.timeout)) for (const c of after.chains.keys()) rewrite.add(c)
      this.#record(key, after, touched)
    }
    report.ports += keys.size
    const at = this.#at()
    const dels: NftEdit[] = []
    const adds: NftEdit[] = []
    const newKernel = new Map<string, PortElement | undefined>()
    for (const k of touched) {
      const was = this.#inKernel.get(k)
      const now = this.#winner(k)
      if (was && now && hex(was.key) === hex(now.key) && elementText(was) === elementText(now)) continue
      if (!was && !now) continue
      if (was) dels.push({ op: 'deleteElements', ...at, set: was.set, elements: [{ key: was.key }] })
      if (now) adds.push({ op: 'addElements', ...at, set: now.set, elements: [this.#element(now)] })
      newKernel.set(k, now)
    }
    const edits: NftEdit[] = [...dels]
    const creates: NftEdit[] = []
    const fills: NftEdit[] = []
    const removes: NftEdit[] = []
    for (const [c, rules] of chainsAfter) {
      const before = chainsBefore.get(c)
      if (before === undefined) {
        creates.push({ op: 'addChain', spec: { ...at, name: c } })
        this.#ruleEdits(c, rules, fills)
      } else if (before !== digest(rules) || rewrite.has(c)) {
        edits.push({ op: 'flushChain', ...at, name: c })
        this.#ruleEdits(c, rules, fills)
      }
    }
    for (const c of chainsBefore.keys())
      if (!chainsAfter.has(c)) {
        edits.push({ op: 'flushChain', ...at, name: c })
        removes.push({ op: 'deleteChain', ...at, name: c })
      }
    // Affinity sets: after the rules that used them are gone, before the rules that use them.
    const setEdits: NftEdit[] = []
    for (const [name, timeout] of setsBefore) if (setsAfter.get(name)?.timeout !== timeout) setEdits.push({ op: 'deleteSet', ...at, name })
    for (const [name, x] of setsAfter) if (setsBefore.get(name) !== x.timeout) setEdits.push(this.#setEdit(x))
    edits.push(...setEdits, ...creates, ...fills, ...adds, ...removes)
    if (edits.length === 0) return
    try {
      await this.#dp.commit(edits)
      report.ops.nftables = (report.ops.nftables ?? 0) + edits.length
      for (const [k, e] of newKernel) {
        if (e) {
          if (!this.#inKernel.has(k)) this.#elementCount++
          this.#inKernel.set(k, e)
        } else if (this.#inKernel.delete(k)) this.#elementCount--
      }
    } catch (e) {
      // Nothing applied: forget these ports' new state (the next full sync repairs from the kernel).
      for (const [key, prev] of saved) this.#record(key, prev ?? EMPTY_PORT, new Set())
      report.errors.push(e as Error)
      report.commitFailures.partial++
      this.log('error', 'nftables commit failed', { error: e })
    }
  }

  // ---- full sync ----------------------------------------------------------------------------

  async #readNodePortAddresses(report: Report): Promise<void> {
    if (this.#nodePorts.all) return
    try {
      const records = await this.#dp.listAddresses(this.family)
      const all = [...new Set(records.filter((a) => a.family === this.family).map((a) => a.address))]
      const primary = this.#o.nodeIP ?? nodeAddresses(records, this.family)[0]
      const np = selectNodePortAddresses(this.#nodePorts, all, primary).filter((ip) => !(ip === '::1' || ip.startsWith('127.')))
      if (np.join() !== this.#nodePortAddresses?.join()) this.log('info', 'node port addresses', { addresses: np })
      this.#nodePortAddresses = np
    } catch (e) {
      report.errors.push(e as Error)
      this.log('error', 'reading the node addresses failed; node ports keep the addresses read before', { error: e })
    }
  }

  protected override async applyAll(state: ProxyState, report: Report, repairing: boolean): Promise<boolean> {
    const touched = new Set<string>()
    const keys = new Set([...this.#applied.keys(), ...state.ports.keys()])
    for (const key of keys) this.#record(key, this.#desired(key, state), touched)
    // Every port is recomputed (the pending changes may have been applied just before: not counted twice).
    report.ports = Math.max(report.ports, keys.size)
    await this.#readNodePortAddresses(report)
    let kernel: NftTableContents | undefined
    try {
      kernel = await this.#dp.listTable(this.#nft, TABLE)
    } catch (e) {
      report.errors.push(e as Error)
      this.log('error', 'reading the nftables table failed', { error: e })
      return false
    }
    const at = this.#at()
    const fixed = this.#fixed()
    // What the table should hold.
    const chains = new Map<string, ChainShape>()
    for (const c of fixed.layout.chains) chains.set(c.name, c)
    const portSets = new Map<string, { set: PortSet; chains: string[] }>()
    for (const p of this.#applied.values()) {
      for (const [name, rules] of p.chains) chains.set(name, { name, rules })
      for (const x of p.sets) portSets.set(x.name, { set: x, chains: [...p.chains.keys()] })
    }
    const elements = new Map<string, Map<string, NftElement>>()
    for (const s of fixed.layout.sets) elements.set(s.name, new Map())
    for (const [set, els] of fixed.elements) for (const e of els) elements.get(set)!.set(hex(e.key), e)
    const winners = new Map<string, PortElement>()
    for (const k of this.#owners.keys()) {
      const w = this.#winner(k)!
      winners.set(k, w)
      elements.get(w.set)?.set(hex(w.key), this.#element(w))
    }

    const repaired: string[] = []
    const edits: NftEdit[] = []
    const creates: NftEdit[] = []
    const fills: NftEdit[] = []
    const elAdds: NftEdit[] = []
    const elDels: NftEdit[] = []
    const removes: NftEdit[] = []
    const fresh = kernel === undefined || !this.#shapeMatches(kernel, fixed.layout)
    if (fresh) {
      if (kernel) {
        edits.push({ op: 'deleteTable', family: this.#nft, name: TABLE })
        repaired.push('table (shape)')
      } else repaired.push('table')
      edits.push({ op: 'addTable', family: this.#nft, name: TABLE, comment: TABLE_COMMENT })
      for (const s of fixed.layout.sets) edits.push({ op: 'addSet', spec: { ...at, name: s.name, key: s.key, ...(s.data ? { data: s.data } : {}), comment: s.comment } })
      for (const c of chains.values()) {
        creates.push({ op: 'addChain', spec: { ...at, name: c.name, ...(c.base ? { base: c.base } : {}), ...(c.comment ? { comment: c.comment } : {}) } })
        this.#ruleEdits(c.name, c.rules, fills)
      }
      for (const x of portSets.values()) edits.push(this.#setEdit(x.set))
      for (const [set, els] of elements) if (els.size > 0) elAdds.push({ op: 'addElements', ...at, set, elements: [...els.values()] })
    } else {
      const k = kernel!
      const anonEls = new Map<string, NftElementRecord[]>()
      for (const s of k.sets) if (s.name.startsWith('__')) anonEls.set(s.name, k.elements[s.name] ?? [])
      const kernelRules = new Map<string, RuleSpec[]>()
      for (const c of k.chains) kernelRules.set(c.name, [])
      for (const x of k.rules) {
        const lookup = x.expressions.find((e) => e.type === 'lookup' && e.set.startsWith('__')) as { set: string } | undefined
        const spec: { exprs: NftExpr[]; comment?: string; anon?: RuleSpec['anon'] } = { exprs: x.expressions }
        if (x.comment !== undefined) spec.comment = x.comment
        if (lookup) {
          const els = anonEls.get(lookup.set) ?? []
          spec.anon = {
            name: '__map%d',
            key: 'integer',
            verdict: false,
            interval: false,
            elements: els.map((e) => ({ key: e.key, ...(e.verdict ? { verdict: e.verdict } : {}), ...(e.intervalEnd ? { intervalEnd: true } : {}) })),
          }
        }
        kernelRules.get(x.chain)?.push(spec)
      }
      // Affinity sets: missing ones made, stale ones deleted, one of another shape made again (its chains rewritten).
      const setEdits: NftEdit[] = []
      const rewrite = new Set<string>()
      const kernelSets = new Map(k.sets.map((x) => [x.name, x]))
      for (const [name, { set: x, chains: cs }] of portSets) {
        const have = kernelSets.get(name)
        if (have && have.timeout === x.timeout && JSON.stringify(have.key) === JSON.stringify(x.key) && [...(have.flags ?? [])].sort().join() === 'dynamic,timeout') continue
        if (have) {
          setEdits.push({ op: 'deleteSet', ...at, name })
          for (const c of cs) rewrite.add(c)
        }
        setEdits.push(this.#setEdit(x))
        repaired.push(name)
      }
      for (const x of k.sets)
        if (isAffinitySet(x.name) && !portSets.has(x.name)) {
          setEdits.push({ op: 'deleteSet', ...at, name: x.name })
          repaired.push(`${x.name} (stale)`)
        }
      const norm = (rules: readonly RuleSpec[]): string =>
        digest(rules.map((x) => (x.anon ? { ...x, anon: { name: '__map%d', key: 'integer', verdict: false, interval: false, elements: x.anon.elements } } : x)))
      for (const c of chains.values()) {
        const have = kernelRules.get(c.name)
        if (have === undefined) {
          creates.push({ op: 'addChain', spec: { ...at, name: c.name, ...(c.base ? { base: c.base } : {}), ...(c.comment ? { comment: c.comment } : {}) } })
          this.#ruleEdits(c.name, c.rules, fills)
          repaired.push(c.name)
        } else if (norm(have) !== norm(c.rules) || (rewrite.has(c.name) && have.length > 0)) {
          edits.push({ op: 'flushChain', ...at, name: c.name })
          this.#ruleEdits(c.name, c.rules, fills)
          repaired.push(c.name)
        }
      }
      // The table is ours (kube-proxy's rule: nobody else writes in it): any other chain goes, a service
      // port's that is no more, or one an older layout had.
      for (const c of k.chains)
        if (!chains.has(c.name)) {
          edits.push({ op: 'flushChain', ...at, name: c.name })
          removes.push({ op: 'deleteChain', ...at, name: c.name })
          repaired.push(`${c.name} (stale)`)
        }
      // After the flushes (rules using a set go first), before the rules.
      creates.unshift(...setEdits)
      for (const [set, want] of elements) {
        const have = new Map<string, NftElementRecord>()
        for (const e of k.elements[set] ?? []) have.set(hex(e.key), e)
        const del: NftElement[] = []
        const add: NftElement[] = []
        for (const [h, e] of have) {
          const w = want.get(h)
          if (!w) del.push({ key: e.key })
          else if (elementText(w) !== elementText(e)) {
            del.push({ key: e.key })
            add.push(w)
          }
        }
        for (const [h, w] of want) if (!have.has(h)) add.push(w)
        if (del.length) elDels.push({ op: 'deleteElements', ...at, set, elements: del })
        if (add.length) elAdds.push({ op: 'addElements', ...at, set, elements: add })
        if (del.length + add.length) repaired.push(`${set} (${del.length + add.length} elements)`)
      }
    }
    const all = [...elDels, ...edits, ...creates, ...fills, ...elAdds, ...removes]
    const adopt = (): void => {
      this.#inKernel.clear()
      for (const [k, w] of winners) this.#inKernel.set(k, w)
      this.#elementCount = winners.size
    }
    if (all.length === 0) {
      adopt()
      return true
    }
    try {
      await this.#dp.commit(all)
    } catch (e) {
      report.errors.push(e as Error)
      report.commitFailures.full++
      this.log('error', 'nftables commit failed', { error: e })
      return false
    }
    report.ops.nftables = (report.ops.nftables ?? 0) + all.length
    if (repairing) report.repaired.nftables = (report.repaired.nftables ?? 0) + repaired.length
    this.log(repairing ? 'warn' : 'debug', repairing ? 'nftables table repaired' : 'nftables table written', { family: this.#nft, objects: repaired.length, first: repaired.slice(0, 5) })
    adopt()
    return true
  }

  /** Whether the kernel's table has the fixed sets with the shapes we make and the base chains as we hook them. */
  #shapeMatches(k: NftTableContents, layout: ReturnType<typeof fixedLayout>): boolean {
    if (k.table.comment !== TABLE_COMMENT) return false
    const sets = new Map(k.sets.map((s) => [s.name, s]))
    for (const s of layout.sets) {
      const have = sets.get(s.name)
      if (!have || JSON.stringify(have.key) !== JSON.stringify(s.key) || have.data !== s.data || (have.flags ?? []).length > 0 || have.comment !== s.comment) return false
    }
    for (const s of k.sets) if (!s.name.startsWith('__') && !isAffinitySet(s.name) && !layout.sets.some((x) => x.name === s.name)) return false
    const chains = new Map(k.chains.map((c) => [c.name, c]))
    for (const c of layout.chains) {
      const have = chains.get(c.name)
      if (!have) continue
      if (JSON.stringify(have.base ?? null) !== JSON.stringify(c.base ?? null) || have.comment !== c.comment) return false
    }
    return true
  }

  // ---- cleanup, status ------------------------------------------------------------------------

  /**
   * Removes this mode's table of this family (nothing else). Resolves whether
   * there was one; a kernel without nf_tables for the family has none.
   */
  cleanup(): Promise<{ tables: number }> {
    return this.exclusive(async () => {
      const k = await this.#dp.listTable(this.#nft, TABLE).catch((e: unknown) => {
        if (noFamilySupport(e)) return undefined
        throw e
      })
      if (k) await this.#dp.commit([{ op: 'deleteTable', family: this.#nft, name: TABLE }])
      this.#applied.clear()
      this.#owners.clear()
      this.#inKernel.clear()
      this.#elementCount = 0
      this.reset()
      this.forgetHistory()
      return { tables: k ? 1 : 0 }
    })
  }

  /** The programmed service ports and their chains. */
  status(): Promise<ChainStatus[]> {
    return this.exclusive(async () => {
      const out: ChainStatus[] = []
      for (const [key, p] of this.#applied) if (p.chains.size > 0 || p.elements.length > 0) out.push({ servicePort: key, chains: [...p.chains.keys()], packets: 0, bytes: 0 })
      return out.sort((a, b) => (a.servicePort < b.servicePort ? -1 : a.servicePort > b.servicePort ? 1 : 0))
    })
  }
}
