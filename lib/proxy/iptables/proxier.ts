// The iptables proxier: kube-proxy's iptables mode (desired.ts, tables.ts), kept in the
// kernel through libiptc with the smallest edits.
//
// Each service port contributes rules to a few shared chains (nat
// KUBE-SERVICES and KUBE-NODEPORTS; filter KUBE-SERVICES,
// KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS, KUBE-PROXY-FIREWALL) and owns its
// own nat chains (KUBE-SVC-, KUBE-SVL-, KUBE-EXT-, KUBE-FW-, KUBE-SEP-).
// `applied` is what the kernel holds as far as we know, per port and table,
// with the order of the ports' rules in each shared chain. Of a port's own
// chains (the bulk: 310 000 of 323 000 rules at 10k services × 10 endpoints)
// it keeps only a digest per chain (digest.ts), never the rules: the rules
// exist only while a sync writes them. A partial sync recomputes the changed
// ports and edits only what differs: their rules in the shared chains are
// deleted and inserted again (before the node-ports jump, which stays last),
// their own chains created, refilled (when the digest differs) or deleted.
// One transaction per table that changed. A full sync reads each table,
// digests each chain of ours, and rewrites every chain whose digest differs
// from what it should be (its rules computed again then; on start nothing
// equal is rewritten: the order of the ports' rules in shared chains is taken
// from the kernel), deletes stale chains of ours and restores missing jumps;
// after the first, what it fixes is counted as drift repaired.
//
// Two ports whose rules match the same address:port: only the owner's rules
// go into the shared chains (../claims.ts), rather than whichever came first.
// When to sync what, reports and stale conntrack: ../reconciler.ts.
//
// libiptc replaces the whole table at each commit: the cost of any commit
// grows with the size of the table, not of the change.
import { deletable } from '../chains.js'
import { Reconciler } from '../reconciler.js'
import type { Rule } from '../../iptables.js'
import type { Family } from '../../validate.js'
import { samePlain } from '../model/fields.js'
import type { ChainStatus, Log, Proxier, ProxyState, Report } from '../types.js'
import { SYSCTL } from '../../sysctl.js'
import type { IptablesDataplane, TableTransaction } from './dataplane.js'
import { desiredOf, EMPTY_PORT_RULES, portClaims, type PortRules } from './desired.js'
import { chainDigest, digestRules, EMPTY_DIGEST, EMPTY_PORT_DIGEST, portDigest, type PartDigest, type PortDigest } from './digest.js'
import { countingRules, Plan } from './plan.js'
import { fixedRules, isKubeletChain, isOurChain, nodePortsJumps, SHARED_CHAINS, type Table } from './tables.js'
import { nodeAddresses, nodePortSelection, selectNodePortAddresses, type NodePortSelection } from '../nodeports.js'

export interface IptablesProxierOptions {
  family?: Family
  masqueradeAll?: boolean
  masqueradeBit?: number
  /** The pod network of this family. */
  clusterCIDR?: string
  /** The node's primary address (load-balancer source ranges that cover it let the node in). */
  nodeIP?: string
  nodeZone?: string
  /** Node ports on 127.0.0.1 (IPv4 only; default true, as kube-proxy): route_localnet=1 and the localnet drop rule. */
  localhostNodePorts?: boolean
  /** nodePortAddresses: CIDRs, or ['primary']; [] is every node address. */
  nodePortAddresses?: readonly string[]
  log?: Log
}

const TABLES: readonly Table[] = ['nat', 'filter']
/** Shared chains with rules that must stay after every port's (the node-ports jumps). */
const TAIL: Record<Table, Record<string, boolean>> = { nat: { 'KUBE-SERVICES': true }, filter: {} }
const EMPTY: readonly Rule[] = Object.freeze([])

/** Where #rules hands a port's rules, whole: a partial sync keeps them for its plan; a full sync drops them. */
interface RulesSink {
  set(key: string, rules: PortRules): unknown
}
type Fresh = Map<string, PortRules>
const DROP: RulesSink = { set: () => undefined }

interface Applied {
  /** Per port: what the kernel holds of it in this table. */
  readonly ports: Map<string, PartDigest>
  /** Per shared chain: the ports with rules there, in kernel order, and those rules. */
  readonly order: Map<string, Map<string, readonly Rule[]>>
}

const newApplied = (): Applied => ({ ports: new Map(), order: new Map() })

export class IptablesProxier extends Reconciler implements Proxier {
  readonly #dp: IptablesDataplane
  readonly #o: { masqueradeAll: boolean; masqueradeBit: number; clusterCIDR: string; nodeIP?: string; nodeZone?: string; localhostNodePorts: boolean; nodePorts: NodePortSelection; conntrackTCPLiberal?: boolean }
  /** The node-port addresses when nodePortAddresses selects some (read at each full sync); undefined: every local address. */
  #nodePortAddresses: string[] | undefined
  /** Per port, what it asks of the kernel: digests of its own chains, its rules in shared chains. */
  readonly #want = new Map<string, PortDigest>()
  readonly #applied: Record<Table, Applied> = { nat: newApplied(), filter: newApplied() }
  /**
   * Per table, of each of our per-port chains read at a full sync: the
   * kernel's hash of its rules (surveyTable) followed by chainDigest of them
   * as decoded from that same read. A later full sync whose survey shows the
   * same hash takes the digest without decoding the chain again: who wrote
   * what does not matter, equal hashes are equal rules.
   */
  readonly #seen: Record<Table, Map<string, string>> = { nat: new Map(), filter: new Map() }
  /** Rules in the chains of this mode, per table, as of the last commit (kube-proxy's iptables_total metric). */
  readonly #ruleCount: Record<Table, number> = { nat: 0, filter: 0 }

  constructor(dataplane: IptablesDataplane, options: IptablesProxierOptions = {}) {
    super(dataplane, options)
    this.#dp = dataplane
    this.#o = {
      masqueradeAll: options.masqueradeAll ?? false,
      masqueradeBit: options.masqueradeBit ?? 14,
      clusterCIDR: options.clusterCIDR ?? '',
      ...(options.nodeIP ? { nodeIP: options.nodeIP } : {}),
      ...(options.nodeZone ? { nodeZone: options.nodeZone } : {}),
      // kube-proxy: only IPv4, and only when nodePortAddresses lets 127.0.0.1 in.
      localhostNodePorts: false,
      nodePorts: nodePortSelection(options.nodePortAddresses ?? [], this.family),
    }
    this.#o.localhostNodePorts = this.family === 'inet' && (options.localhostNodePorts ?? true) && this.#o.nodePorts.loopback
    if (!this.#o.nodePorts.all) this.#nodePortAddresses = []
  }

  /** Nothing drains in iptables mode: conntrack keeps established connections going to removed endpoints. */
  get draining(): number {
    return 0
  }

  /** Resolves 0: there is nothing to drain (kept for the shape of IpvsProxier). */
  async drain(): Promise<number> {
    return 0
  }

  /**
   * Node settings iptables mode needs: forwarding on; with localhost node
   * ports, route_localnet=1 (packets to 127.0.0.1 may be DNATed off the node;
   * filter KUBE-FIREWALL drops what comes from elsewhere to 127.0.0.0/8).
   * Also reads nf_conntrack_tcp_be_liberal, once: when it is non-zero, filter
   * KUBE-FORWARD gets no ctstate INVALID drop (kube-proxy's NewProxier).
   * Resolves the keys it changed.
   */
  async setup(): Promise<string[]> {
    const want = [this.family === 'inet' ? SYSCTL.ipForward : 'net.ipv6.conf.all.forwarding']
    if (this.#o.localhostNodePorts) {
      want.push(SYSCTL.routeLocalnet)
      this.log('info', 'setting route_localnet=1 for node ports on localhost; iptables.localhostNodePorts=false or a nodePortAddresses without 127.0.0.1 turns it off')
    }
    const changed: string[] = []
    for (const key of want) if (await this.#dp.ensureSysctl(key, 1)) changed.push(key)
    // kube-proxy reads it once, at start; unreadable counts as 0 (the drop rule stays).
    this.#o.conntrackTCPLiberal = (await this.#dp.getSysctl(SYSCTL.conntrackTCPBeLiberal).catch(() => 0)) !== 0
    if (this.#o.conntrackTCPLiberal) this.log('info', 'nf_conntrack_tcp_be_liberal is set: no DROP rule for ctstate INVALID packets')
    return changed
  }

  /**
   * Recomputes the rules of `keys` and of the ports whose claims they changed
   * hands of; resolves all of them.
   */
  #recompute(keys: Iterable<string>, state: ProxyState, fresh: RulesSink): Set<string> {
    const all = new Set<string>()
    for (const key of keys) {
      all.add(key)
      const port = state.ports.get(key)
      const changed = this.claims.set(key, port, port ? portClaims(port, this.family) : [])
      for (const [c, was] of changed) {
        const now = this.claims.owner(c)
        if (was !== undefined) all.add(was)
        if (now !== undefined) all.add(now)
      }
    }
    for (const key of all) this.#rules(key, state, fresh)
    return all
  }

  /** Computes the rules of `key` into `fresh`, and keeps their digest in #want. */
  #rules(key: string, state: ProxyState, fresh: RulesSink): void {
    const before = this.#want.get(key) ?? EMPTY_PORT_DIGEST
    const after = this.#desired(key, state)
    this.countNoLocal(before.noLocalEndpoints, after.noLocalEndpoints)
    fresh.set(key, after)
    if (after === EMPTY_PORT_RULES) this.#want.delete(key)
    else this.#want.set(key, portDigest(after))
  }

  /** What `key` asks of the kernel now (pure: #want and the claims are left as they are). */
  #desired(key: string, state: ProxyState): PortRules {
    const port = state.ports.get(key)
    if (!port) return EMPTY_PORT_RULES
    const lost = this.claims.lost(key)
    return desiredOf(port, state.endpoints(key), {
      family: this.family,
      masqueradeAll: this.#o.masqueradeAll,
      clusterCIDR: this.#o.clusterCIDR,
      ...(this.#o.nodeIP ? { nodeIP: this.#o.nodeIP } : {}),
      ...(this.#o.nodeZone ? { topology: { nodeZone: this.#o.nodeZone } } : {}),
      ...(lost ? { lost } : {}),
    })
  }

  // ---- partial sync -------------------------------------------------------------------------

  protected override async applyChanges(state: ProxyState, changed: Iterable<string>, report: Report): Promise<void> {
    const fresh: Fresh = new Map()
    const keys = [...this.#recompute(changed, state, fresh)]
    report.ports += keys.length
    if (keys.length === 0) return
    for (const table of TABLES) {
      const plan = this.#planPorts(table, keys, fresh)
      if (plan.empty) continue
      await this.#commit(table, this.#dp.begin(table), plan, report, 'partial', () => {
        for (const f of plan.after) f()
      })
    }
  }

  /** The edits that bring `keys`' rules in `table` from applied to wanted. */
  #planPorts(table: Table, keys: readonly string[], fresh: Fresh): Plan {
    const plan = new Plan()
    const applied = this.#applied[table]
    const sharedChanges = new Map<string, { key: string; old: readonly Rule[]; now: readonly Rule[] }[]>()
    for (const key of keys) {
      const want = this.#want.get(key)?.[table] ?? EMPTY_DIGEST
      const have = applied.ports.get(key) ?? EMPTY_DIGEST
      if (want === have) continue
      const rules = (fresh.get(key) ?? EMPTY_PORT_RULES)[table].chains
      for (const [c, digest] of want.chains) {
        const h = have.chains.get(c)
        if (h === undefined) plan.creates.push(c)
        if (h !== digest) plan.fills.push([c, rules.get(c)!])
      }
      for (const c of have.chains.keys()) if (!want.chains.has(c)) plan.removals.push(c)
      for (const chain of SHARED_CHAINS[table]) {
        const old = have.shared.get(chain) ?? EMPTY
        const now = want.shared.get(chain) ?? EMPTY
        if (samePlain(old, now)) continue
        let l = sharedChanges.get(chain)
        if (!l) sharedChanges.set(chain, (l = []))
        l.push({ key, old, now })
      }
      const grown = want.rules - have.rules
      plan.after.push(() => {
        if (want === EMPTY_DIGEST) applied.ports.delete(key)
        else applied.ports.set(key, want)
        this.#ruleCount[table] += grown
      })
    }
    for (const [chain, changes] of sharedChanges) {
      let order = applied.order.get(chain)
      if (!order) applied.order.set(chain, (order = new Map()))
      const o = order
      const tail = TAIL[table][chain] ?? false
      let length = 0
      for (const rules of o.values()) length += rules.length
      const rewrite = changes.length > 64 && changes.length * 4 > o.size
      if (rewrite) {
        // Many ports at once: one flush and refill of the chain is cheaper than a delete per rule.
        plan.shared.push((tx) => {
          const next = new Map(o)
          for (const ch of changes) next.delete(ch.key)
          for (const ch of changes) if (ch.now.length > 0) next.set(ch.key, ch.now)
          tx.flushChain(chain)
          let n = 1
          for (const rules of next.values()) for (const r of rules) (tx.appendRule(chain, r), n++)
          if (tail) for (const r of this.#tail(table, chain)) (tx.appendRule(chain, r), n++)
          return n
        })
      } else {
        plan.shared.push((tx) => {
          let n = 0
          let len = length
          for (const ch of changes) {
            for (const r of ch.old) (tx.deleteRule(chain, r), n++)
            len -= ch.old.length
          }
          for (const ch of changes) {
            for (const r of ch.now) {
              if (tail) tx.insertRule(chain, r, len)
              else tx.appendRule(chain, r)
              len++
              n++
            }
          }
          return n
        })
      }
      plan.after.push(() => {
        for (const ch of changes) o.delete(ch.key)
        for (const ch of changes) if (ch.now.length > 0) o.set(ch.key, ch.now)
      })
    }
    return plan
  }

  #tail(table: Table, chain: string): Rule[] {
    if (table === 'nat' && chain === 'KUBE-SERVICES') return nodePortsJumps(this.#fixedOptions(), this.#nodePortAddresses)
    throw new Error(`no tail rule for ${table} ${chain}`)
  }

  #fixedOptions() {
    return { family: this.family, masqueradeBit: this.#o.masqueradeBit, localhostNodePorts: this.#o.localhostNodePorts, conntrackTCPLiberal: !!this.#o.conntrackTCPLiberal }
  }

  /** nodePortAddresses other than all: the node's addresses in them (kube-proxy: every interface's, loopback included). */
  async #readNodePortAddresses(report: Report): Promise<void> {
    if (this.#o.nodePorts.all) return
    try {
      const records = await this.#dp.listAddresses(this.family)
      const all = [...new Set(records.filter((a) => a.family === this.family).map((a) => a.address))]
      const primary = this.#o.nodeIP ?? nodeAddresses(records, this.family)[0]
      const np = selectNodePortAddresses(this.#o.nodePorts, all, primary)
      if (np.join() !== this.#nodePortAddresses?.join()) this.log('info', 'node port addresses', { addresses: np })
      for (const ip of np)
        if (ip === '::1' || (this.family === 'inet' && ip.startsWith('127.') && !this.#o.localhostNodePorts))
          this.log('warn', this.family === 'inet6' ? 'nodePortAddresses holds ::1, but localhost node ports are IPv4 only' : 'nodePortAddresses holds 127.0.0.1, but iptables.localhostNodePorts is false', { address: ip })
      this.#nodePortAddresses = np
    } catch (e) {
      report.errors.push(e as Error)
      this.log('error', 'reading the node addresses failed; node ports keep the addresses read before', { error: e })
    }
  }

  /**
   * Sends `plan` in `tx` and commits, then `done`; a failure aborts, is
   * reported (and counted as a failed commit of this `kind`), and resolves false.
   */
  async #commit(table: Table, tx: TableTransaction, plan: Plan, report: Report, kind: 'full' | 'partial', done: () => void): Promise<boolean> {
    const counted = countingRules(tx)
    try {
      const n = plan.apply(counted.tx)
      await tx.commit()
      report.ops.iptables += n
      report.rulesWritten[table] += counted.rules()
      done()
      return true
    } catch (e) {
      await tx.abort().catch(() => undefined)
      report.errors.push(e as Error)
      report.commitFailures[kind]++
      this.log('error', 'iptables commit failed', { table, error: e })
      return false
    }
  }

  // ---- full sync ----------------------------------------------------------------------------

  protected override async applyAll(state: ProxyState, report: Report, repairing: boolean): Promise<boolean> {
    // Every port's digest; its rules are dropped here and computed again
    // when its chains are written (where the kernel's digest differs): at 10k
    // services, never 310 000 rule objects at once.
    if (!repairing) {
      report.ports = this.#recompute(new Set([...this.#want.keys(), ...state.ports.keys()]), state, DROP).size
    }
    await this.#readNodePortAddresses(report)
    let ok = true
    for (const table of TABLES) if (!(await this.#fullTable(table, state, report, repairing))) ok = false
    return ok
  }

  async #fullTable(table: Table, state: ProxyState, report: Report, repairing: boolean): Promise<boolean> {
    const tx = this.#dp.begin(table)
    const fixed = fixedRules(this.#fixedOptions())[table]
    // Of the kernel's table: the rules of the fixed and shared chains and of
    // the built-in ones (for the jumps), a digest of every other chain of ours,
    // the names of all.
    const kernel = new Map<string, Rule[]>()
    const kernelDigest = new Map<string, string>()
    const seen = this.#seen[table]
    try {
      const whole = (c: { name: string; builtin: boolean }): boolean => c.builtin || fixed.chains.has(c.name) || (SHARED_CHAINS[table] as readonly string[]).includes(c.name)
      // A hash per chain, read from the kernel now; a chain whose hash is the
      // one its rules were digested from last time is not decoded again.
      const survey = tx.surveyTable ? await tx.surveyTable() : undefined
      let read: Awaited<ReturnType<TableTransaction['readTable']>>
      const hashes = new Map<string, string>()
      if (survey && tx.readChains) {
        const need: string[] = []
        const present = new Set<string>()
        for (const c of survey.chains) {
          present.add(c.name)
          if (whole(c)) need.push(c.name)
          else if (!isOurChain(table, c.name)) kernelDigest.set(c.name, '')
          else {
            const m = c.hash === '' ? undefined : seen.get(c.name)
            if (m !== undefined && m.length > c.hash.length && m.startsWith(c.hash)) kernelDigest.set(c.name, m.slice(c.hash.length))
            else {
              need.push(c.name)
              if (c.hash !== '') hashes.set(c.name, c.hash)
            }
          }
        }
        for (const c of seen.keys()) if (!present.has(c)) seen.delete(c)
        read = await tx.readChains(need)
      } else {
        seen.clear()
        read = await tx.readTable()
      }
      for (const c of read) {
        if (whole(c)) kernel.set(c.name, c.ruleList.map(plainRule))
        else if (isOurChain(table, c.name)) {
          const digest = chainDigest(c.ruleList)
          kernelDigest.set(c.name, digest)
          const h = hashes.get(c.name)
          if (h !== undefined) seen.set(c.name, h + digest)
          else seen.delete(c.name)
        } else kernelDigest.set(c.name, '')
      }
    } catch (e) {
      await tx.abort().catch(() => undefined)
      report.errors.push(e as Error)
      this.log('error', 'reading the iptables table failed', { table, error: e })
      return false
    }
    const inKernel = (c: string): boolean => kernel.has(c) || kernelDigest.has(c)
    const want = new Map<string, readonly Rule[]>(fixed.chains)
    // Shared chains: the ports in the kernel's order where they are there already.
    const orders = new Map<string, Map<string, readonly Rule[]>>()
    for (const chain of SHARED_CHAINS[table]) {
      const owner = new Map<string, string>()
      const parts = new Map<string, readonly Rule[]>()
      for (const [key, p] of this.#want) {
        const rules = p[table].shared.get(chain)
        if (!rules || rules.length === 0) continue
        parts.set(key, rules)
        for (const r of rules) owner.set(ruleKey(r), key)
      }
      const order = new Map<string, readonly Rule[]>()
      for (const r of kernel.get(chain) ?? []) {
        const k = owner.get(ruleKey(r))
        if (k !== undefined && !order.has(k)) order.set(k, parts.get(k)!)
      }
      for (const [k, rules] of parts) if (!order.has(k)) order.set(k, rules)
      orders.set(chain, order)
      const all: Rule[] = []
      for (const rules of order.values()) all.push(...rules)
      if (TAIL[table][chain]) all.push(...this.#tail(table, chain))
      want.set(chain, all)
    }

    const plan = new Plan()
    const repaired: string[] = []
    for (const [c, rules] of want) {
      const have = kernel.get(c)
      if (!inKernel(c)) plan.creates.push(c)
      if (!have || !samePlain(have, rules)) {
        plan.fills.push([c, rules])
        repaired.push(c)
      }
    }
    // The ports' own chains: written where the kernel's digest differs.
    const ownChains = new Set<string>()
    let rules = 0
    for (const r of want.values()) rules += r.length
    for (const [key, p] of this.#want) {
      const differ: string[] = []
      for (const [c, digest] of p[table].chains) {
        ownChains.add(c)
        if (kernelDigest.get(c) !== digest) differ.push(c)
      }
      if (differ.length === 0) continue
      repaired.push(...differ)
      plan.ports.push((tx) => {
        const now = this.#desired(key, state)[table].chains
        let n = 0
        // Every chain of the port exists before its rules jump to it.
        for (const c of differ)
          if (!kernelDigest.has(c)) {
            tx.createChain(c)
            n++
          }
        for (const c of differ) {
          if (kernelDigest.has(c)) {
            tx.flushChain(c)
            n++
          }
          for (const r of now.get(c) ?? EMPTY) {
            tx.appendRule(c, r)
            n++
          }
        }
        return n
      })
    }
    for (const p of this.#want.values()) for (const r of p[table].chains.values()) rules += digestRules(r)
    for (const c of fixed.kept)
      if (!inKernel(c)) {
        plan.creates.push(c)
        repaired.push(c)
      }
    for (const c of kernelDigest.keys()) {
      if (want.has(c) || ownChains.has(c) || fixed.kept.includes(c) || !isOurChain(table, c)) continue
      plan.removals.push(c)
      repaired.push(`${c} (stale)`)
    }
    const missing = fixed.jumps.filter((j) => !(kernel.get(j.chain) ?? []).some((r) => samePlain(r, j.rule)))
    if (missing.length > 0)
      plan.shared.push((tx) => {
        for (const j of [...missing].reverse()) tx.insertRule(j.chain, j.rule, 0)
        return missing.length
      })
    for (const j of missing) repaired.push(`${j.chain} jump`)

    const applied = this.#applied[table]
    const adopt = (): void => {
      this.#ruleCount[table] = rules
      applied.ports.clear()
      for (const [k, p] of this.#want) if (p[table].chains.size + p[table].shared.size > 0) applied.ports.set(k, p[table])
      applied.order.clear()
      for (const [c, o] of orders) applied.order.set(c, o)
    }
    if (plan.empty && missing.length === 0) {
      await tx.abort()
      adopt()
      return true
    }
    return this.#commit(table, tx, plan, report, 'full', () => {
      if (repairing) report.repaired.iptables += repaired.length
      if (repaired.length > 0) this.log(repairing ? 'warn' : 'debug', repairing ? 'iptables chains repaired' : 'iptables chains written', { table, chains: repaired.length, first: repaired.slice(0, 5) })
      adopt()
    })
  }

  // ---- cleanup, status ------------------------------------------------------------------------

  /**
   * Removes every chain of this mode (KUBE-SERVICES, KUBE-NODEPORTS, ...,
   * every KUBE-SVC-/SVL-/EXT-/FW-/SEP- in nat) and the rules of built-in chains
   * that jump to them. filter KUBE-FIREWALL, which kubelet makes too, stays with
   * its rules and its INPUT/OUTPUT jumps (as kube-proxy's cleanup leaves it).
   * Nothing else is touched. Resolves what was removed.
   */
  cleanup(): Promise<{ chains: number; jumps: number }> {
    return this.exclusive(async () => {
      let chains = 0
      let jumps = 0
      for (const table of TABLES) {
        const tx = this.#dp.begin(table)
        try {
          const read = await tx.readTable()
          const ours = read.filter((c) => !c.builtin && isOurChain(table, c.name) && !isKubeletChain(table, c.name)).map((c) => c.name)
          const set = new Set(ours)
          let edits = 0
          for (const c of read) {
            if (!c.builtin) continue
            for (let i = c.ruleList.length - 1; i >= 0; i--) {
              const t = c.ruleList[i]!.target
              if (t && 'jump' in t && set.has(t.jump)) {
                tx.deleteRule(c.name, i)
                jumps++
                edits++
              }
            }
          }
          for (const c of ours) tx.flushChain(c)
          const gone = deletable(new Map(read.map((c) => [c.name, c.ruleList as Rule[]])), set, (chain, r) => {
            const t = r.target
            return read.find((c) => c.name === chain)!.builtin && !!t && 'jump' in t && set.has(t.jump)
          })
          for (const c of gone) tx.deleteChain(c)
          chains += gone.length
          edits += ours.length
          if (edits > 0) await tx.commit()
          else await tx.abort()
        } catch (e) {
          await tx.abort().catch(() => undefined)
          throw e
        }
      }
      this.#want.clear()
      for (const t of TABLES) {
        this.#seen[t].clear()
        this.#applied[t] = newApplied()
        this.#ruleCount[t] = 0
      }
      this.reset()
      this.forgetHistory()
      return { chains, jumps }
    })
  }

  /**
   * Rules in the chains of this mode (fixed, shared and per-port; not the
   * jumps from built-in chains), per table, as of the last commit.
   */
  ruleCounts(): Record<Table, number> {
    return { ...this.#ruleCount }
  }

  /**
   * Packets dropped so far by filter KUBE-FORWARD's `-m conntrack --ctstate
   * INVALID -j DROP` rule (kube-proxy's ct_state_invalid_dropped metric),
   * read now; undefined while the rule is not there. Reads that one chain
   * (x_tables hands over the whole table, but only the chain is decoded).
   */
  async ctStateInvalidDropped(): Promise<number | undefined> {
    const rules = await this.#dp.readChain('filter', 'KUBE-FORWARD').catch((e: unknown) => {
      if ((e as { code?: string }).code === 'ENOENT') return []
      throw e
    })
    const drop = rules.find((r) => r.target && 'target' in r.target && r.target.target === 'DROP' && (r.matches ?? []).some((m) => m.match === 'conntrack' && Array.isArray(m.ctstate) && m.ctstate.length === 1 && m.ctstate[0] === 'INVALID'))
    return drop?.counters?.packets
  }

  /**
   * The programmed service ports with the counters of their nat KUBE-SERVICES
   * and KUBE-NODEPORTS rules (packets that entered the service), for `tsproxy status`.
   */
  status(): Promise<ChainStatus[]> {
    return this.exclusive(async () => {
      const read = await this.#dp.readFresh('nat')
      const byRule = new Map<string, string>()
      for (const [key, p] of this.#applied.nat.ports) for (const rules of p.shared.values()) for (const r of rules) byRule.set(ruleKey(r), key)
      const out = new Map<string, ChainStatus>()
      for (const [key, p] of this.#applied.nat.ports) out.set(key, { servicePort: key, chains: [...p.chains.keys()], packets: 0, bytes: 0 })
      for (const c of read) {
        if (!SHARED_CHAINS.nat.includes(c.name as never)) continue
        for (const r of c.ruleList) {
          const key = byRule.get(ruleKey(plainRule(r)))
          const s = key === undefined ? undefined : out.get(key)
          const counters = (r as { counters?: { packets: number; bytes: number } }).counters
          if (s && counters) {
            s.packets += counters.packets
            s.bytes += counters.bytes
          }
        }
      }
      return [...out.values()].sort((a, b) => (a.servicePort < b.servicePort ? -1 : a.servicePort > b.servicePort ? 1 : 0))
    })
  }
}

/** A rule without its counters. */
function plainRule(r: Rule & { counters?: unknown }): Rule {
  if (!('counters' in r)) return r
  const { counters: _, ...rule } = r
  return rule
}

/** A stable text of a rule (keys sorted, undefined left out): equal rules, equal keys. */
export function ruleKey(r: unknown): string {
  return JSON.stringify(r, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(o).sort()) if (o[k] !== undefined) out[k] = o[k]
      return out
    }
    return v
  })
}
