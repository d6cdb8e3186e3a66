// The IPVS proxier: service ports and endpoints in, the smallest set of kernel
// operations out.
//
// It keeps two pictures. `desired` is the sum of every service port's
// desired state (desired.ts), reference-counted because ports can share a VIP or
// an ipset entry. `applied` is what the kernel holds as far as we know: read from
// the kernel at a full sync, and updated from each operation's own outcome.
// A partial sync recomputes only the changed ports, diffs only the objects they
// touch, and sends one IPVS batch, one ipset batch and one rtnetlink batch. A
// full sync re-reads the kernel first, so whatever drifted (ipvsadm -C, a
// deleted set member, a lost VIP) is repaired, and on start nothing that is
// already right is touched: connections survive a restart.
//
// Two ports asking for one virtual server: the owner's part only (../claims.ts).
// When to sync what, reports and stale conntrack: ../reconciler.ts.
//
// Graceful termination: a TCP real server that goes away gets weight 0 (no new
// connections) and is deleted once IPVS reports no established connection on
// it; UDP and SCTP ones are deleted at once, as kube-proxy does.
import { cidrContains, splitHostPort } from '../../address.js'
import type { IpSetEntry } from '../../ipset.js'
import type { DestinationRecord, IpvsOp, IpvsTimeouts, Outcome } from '../../ipvs.js'
import type { RtnlOp } from '../../route.js'
import type { Family } from '../../validate.js'
import { joinHostPort } from '../model/fields.js'
import { SYSCTL } from '../../sysctl.js'
import type { IpvsDataplane } from './dataplane.js'
import type { Log, Proxier, ProxyState, Report, ServerStatus } from '../types.js'
import { Reconciler } from '../reconciler.js'
import { serverKey } from '../claims.js'
import { nodeAddresses, nodePortSelection, selectNodePortAddresses } from '../nodeports.js'
import { desiredOf, EMPTY_CONTRIBUTION, WEIGHT, type Claim, type Contribution, type SetEntry, type VirtualServer } from './desired.js'
import { DUMMY_LINK, grownMaxelem, ipvsTables, SET_ROLES, setName, setSpec, type SetRole } from './netfilter.js'
import { Weights } from './weights.js'

export interface IpvsProxierOptions {
  family?: Family
  /** IPVS scheduler; '' or undefined is rr. */
  scheduler?: string
  /** ipvs.excludeCIDRs: virtual servers there are never deleted. */
  excludeCIDRs?: readonly string[]
  /** nodePortAddresses: CIDRs, or ['primary']; [] is every node address. */
  nodePortAddresses?: readonly string[]
  masqueradeAll?: boolean
  masqueradeBit?: number
  /** The pod network of this family. */
  clusterCIDR?: string
  strictARP?: boolean
  /** Seconds; 0 leaves the kernel's. */
  timeouts?: Partial<IpvsTimeouts>
  nodeZone?: string
  log?: Log
}

type Touched = { servers: Set<string>; entries: Map<string, Set<string>>; addresses: Set<string> }
const newTouched = (): Touched => ({ servers: new Set(), entries: new Map(), addresses: new Set() })

interface AppliedServer {
  spec: VirtualServer['spec']
  /** Weight by real server key ('ip:port'); -1: not masq (to be put right). */
  destinations: Weights
}

interface Counted<T> {
  value: T
  refs: number
}

const GRACEFUL = new Set(['tcp'])
/** IPVS operations per batch call in a big sync. */
const SLICE_OPS = 4096

export class IpvsProxier extends Reconciler implements Proxier {
  readonly #dp: IpvsDataplane
  readonly #o: Required<Omit<IpvsProxierOptions, 'nodeZone' | 'log' | 'timeouts'>> & Pick<IpvsProxierOptions, 'nodeZone' | 'timeouts'>
  readonly #contrib = new Map<string, Contribution>()
  /** The owner's virtual server of each key. */
  readonly #servers = new Map<string, VirtualServer>()
  readonly #entries = new Map<string, Map<string, Counted<IpSetEntry>>>()
  readonly #addresses = new Map<string, number>()
  readonly #applied = new Map<string, AppliedServer>()
  readonly #appliedEntries = new Map<string, Map<string, IpSetEntry>>()
  /** The most entries each hash set holds (its maxelem, read at every full sync). */
  readonly #capacity = new Map<string, number>()
  readonly #appliedAddresses = new Set<string>()
  /** Real servers at weight 0 waiting for their connections to end, by server key. */
  readonly #draining = new Map<string, Set<string>>()
  #nodePortAddresses: string[] = []
  #nodeAddresses: string[] = []

  constructor(dataplane: IpvsDataplane, options: IpvsProxierOptions = {}) {
    super(dataplane, options)
    this.#dp = dataplane
    this.#o = {
      family: this.family,
      scheduler: options.scheduler || 'rr',
      excludeCIDRs: options.excludeCIDRs ?? [],
      nodePortAddresses: options.nodePortAddresses ?? [],
      masqueradeAll: options.masqueradeAll ?? false,
      masqueradeBit: options.masqueradeBit ?? 14,
      clusterCIDR: options.clusterCIDR ?? '',
      strictARP: options.strictARP ?? false,
      nodeZone: options.nodeZone,
      timeouts: options.timeouts,
    }
  }

  /** Real servers currently draining (weight 0, connections still open). */
  get draining(): number {
    let n = 0
    for (const s of this.#draining.values()) n += s.size
    return n
  }

  /**
   * Node settings IPVS mode needs (kube-proxy's): IPVS keeps conntrack entries
   * (masquerading needs them), connections of deleted real servers and their
   * persistence templates expire, forwarding on; strictARP's ARP settings; the
   * IPVS timeouts. Resolves the keys it changed.
   */
  async setup(): Promise<string[]> {
    const changed: string[] = []
    const want: [string, number][] = [
      [SYSCTL.ipvsConntrack, 1],
      [SYSCTL.expireNodestConn, 1],
      [SYSCTL.expireQuiescentTemplate, 1],
      [SYSCTL.ipForward, 1],
    ]
    if (this.#o.strictARP) want.push([SYSCTL.arpIgnore(), 1], [SYSCTL.arpAnnounce(), 2])
    for (const [key, value] of want) if (await this.#dp.ensureSysctl(key, value)) changed.push(key)
    const t = this.#o.timeouts
    if (t && (t.tcp || t.tcpFin || t.udp)) await this.#dp.ipvs.setTimeouts(t)
    return changed
  }

  protected override async applyChanges(state: ProxyState, changed: Iterable<string>, report: Report): Promise<void> {
    const touched = newTouched()
    for (const key of changed) {
      this.#recompute(key, state, touched)
      report.ports++
    }
    await this.#applyServers(touched.servers, report)
    await this.#applyEntries(touched.entries, report)
    await this.#applyAddresses(touched.addresses, report)
  }

  protected override async applyAll(state: ProxyState, report: Report, repairing: boolean): Promise<boolean> {
    const touched = newTouched()
    // The partial sync before this one brought every port up to date; only
    // the node's own addresses (node ports, source ranges) can have moved.
    const nodeChanged = await this.#readNode()
    if (!repairing || nodeChanged) {
      const keys = new Set([...this.#contrib.keys(), ...state.ports.keys()])
      for (const key of keys) this.#recompute(key, state, touched)
      report.ports = keys.size
    }
    const errors = report.errors.length
    await this.#readKernel(report, repairing)
    // Everything: what we want and whatever of ours the kernel holds.
    for (const k of [...this.#servers.keys(), ...this.#applied.keys()]) touched.servers.add(k)
    for (const a of [...this.#addresses.keys(), ...this.#appliedAddresses]) touched.addresses.add(a)
    const before = { ...report.ops }
    await this.#applyServers(touched.servers, report)
    await this.#syncSets(report)
    await this.#applyAddresses(touched.addresses, report)
    if (repairing) {
      report.repaired.ipvs += report.ops.ipvs - before.ipvs
      report.repaired.ipset += report.ops.ipset - before.ipset
      report.repaired.rtnl += report.ops.rtnl - before.rtnl
    }
    return report.errors.length === errors
  }

  /**
   * Deletes drained real servers: those at weight 0 with no connection left.
   * Resolves how many are still draining.
   */
  async drain(): Promise<number> {
    // One virtual server per turn: a sync waiting behind a drain check waits
    // for one read and one delete, not for every draining server's.
    for (const key of [...this.#draining.keys()]) await this.exclusive(() => this.#drainOne(key))
    return this.draining
  }

  async #drainOne(key: string): Promise<void> {
    const dests = this.#draining.get(key)
    if (!dests) return
    const applied = this.#applied.get(key)
    if (!applied) {
      this.#draining.delete(key)
      return
    }
    let listed: DestinationRecord[]
    try {
      listed = await this.#dp.ipvs.listDestinations(keyOf(applied.spec))
    } catch (e) {
      this.log('warn', 'could not read a draining virtual server', { server: key, error: e })
      return
    }
    // Established connections only: closing ones (FIN_WAIT, TIME_WAIT: IPVS's
    // inactive count) carry no more data but linger for minutes; kube-proxy
    // waits for those too and keeps dead endpoints at weight 0 that long.
    const conns = new Map(listed.map((d) => [joinHostPort(d.address, d.port), d.activeConns]))
    const ops: IpvsOp[] = []
    const done: string[] = []
    for (const d of dests) {
      const n = conns.get(d)
      if (n !== undefined && n > 0) continue
      if (applied.destinations.has(d) && n !== undefined) ops.push({ op: 'deleteDestination', service: keyOf(applied.spec), destination: realServer(d) })
      done.push(d)
    }
    if (ops.length > 0) {
      const outcomes = await this.#dp.ipvs.batch(ops)
      outcomes.forEach((o, i) => {
        if (!o.ok && o.error.code !== 'ENOENT' && o.error.code !== 'ESRCH') this.log('warn', 'deleting a drained real server failed', { error: o.error, op: ops[i] })
      })
    }
    for (const d of done) {
      applied.destinations.delete(d)
      dests.delete(d)
    }
    if (dests.size === 0) this.#draining.delete(key)
    if (done.length > 0) this.log('debug', 'real servers drained', { server: key, count: done.length })
  }

  /**
   * Removes everything IPVS mode makes: our virtual servers (on kube-ipvs0's
   * VIPs and node-port addresses), the link, the jumps and chains, the sets.
   * Nothing else is touched. Resolves what was removed, by kind.
   */
  cleanup(): Promise<{ servers: number; chains: number; sets: number; link: boolean }> {
    return this.exclusive(() => this.#cleanup())
  }

  async #cleanup(): Promise<{ servers: number; chains: number; sets: number; link: boolean }> {
    await this.#readNode()
    const link = await this.#dp.rtnl.getLink(DUMMY_LINK)
    const vips = new Set(link ? (await this.#dp.rtnl.listAddresses({ link: DUMMY_LINK, family: this.family })).map((a) => a.address) : [])
    const servers = (await this.#dp.ipvs.listServices()).filter((s) => s.address !== undefined && this.#owned(s.address, vips))
    const outcomes = servers.length > 0 ? await this.#dp.ipvs.batch(servers.map((s) => ({ op: 'deleteService' as const, service: keyOf(s as never) }))) : []
    const tables = ipvsTables(this.#ruleOptions())
    let chains = 0
    for (const t of ['nat', 'filter'] as const) chains += (await this.#dp.tables.remove(t, tables[t])).repaired.filter((r) => !r.endsWith(' jump')).length
    let sets = 0
    const names = new Set(await this.#dp.ipset.listNames())
    for (const role of SET_ROLES) {
      const n = setName(role, this.family)
      if (!names.has(n)) continue
      await this.#dp.ipset.destroy(n)
      sets++
    }
    // kube-ipvs0 is shared by both families: the last one out removes it.
    const others = link ? (await this.#dp.rtnl.listAddresses({ link: DUMMY_LINK })).filter((a) => a.family !== this.family && a.scope !== 'link') : []
    const deletedLink = link && others.length === 0 ? await this.#dp.rtnl.deleteLink(DUMMY_LINK, { exist: true }) : false
    if (link && !deletedLink && vips.size > 0) await this.#dp.rtnl.batch([...vips].map((a) => ({ op: 'deleteAddress' as const, link: DUMMY_LINK, address: a, exist: true })))
    this.#reset()
    return { servers: outcomes.filter((o) => o.ok).length, chains, sets, link: deletedLink }
  }

  /** The programmed virtual servers with live statistics, named by service port (for `tsproxy status`). */
  async status(): Promise<ServerStatus[]> {
    const listed = await this.#dp.ipvs.listServices({ destinations: true })
    const out: ServerStatus[] = []
    for (const s of listed) {
      if (s.protocol === undefined || s.address === undefined || s.port === undefined) continue
      const key = serverKey(s.protocol, s.address, s.port)
      const mine = this.#servers.get(key)
      if (!mine) continue
      const ignored = this.claims.ignored(key)
      out.push(ignored.length > 0 ? { servicePort: mine.servicePort, server: s, ignored } : { servicePort: mine.servicePort, server: s })
    }
    return out.sort((a, b) => (a.servicePort < b.servicePort ? -1 : a.servicePort > b.servicePort ? 1 : 0))
  }

  // ---- desired state ------------------------------------------------------------------

  #recompute(key: string, state: ProxyState, touched: Touched): void {
    const before = this.#contrib.get(key) ?? EMPTY_CONTRIBUTION
    const port = state.ports.get(key)
    const after = port
      ? desiredOf(port, state.endpoints(key), {
          family: this.family,
          scheduler: this.#o.scheduler,
          nodePortAddresses: this.#nodePortAddresses,
          nodeAddresses: this.#nodeAddresses,
          ...(this.#o.nodeZone ? { topology: { nodeZone: this.#o.nodeZone } } : {}),
        })
      : EMPTY_CONTRIBUTION
    // Claimed parts: released by the owner before, held by the owner after.
    const owners = new Map<string, string | undefined>()
    for (const c of before.claims) owners.set(c.key, this.claims.owner(c.key))
    for (const c of after.claims) if (!owners.has(c.key)) owners.set(c.key, this.claims.owner(c.key))
    if (owners.size > 0) this.claims.set(key, port, after.claims.map((c) => c.key))
    if (after === EMPTY_CONTRIBUTION) this.#contrib.delete(key)
    else this.#contrib.set(key, after)
    for (const [c, was] of owners) {
      const now = this.claims.owner(c)
      if (was === now && was !== key) continue
      if (was !== undefined) this.#drop(claimOf(was === key ? before : this.#contrib.get(was)!, c), touched)
      if (now !== undefined) this.#take(claimOf(this.#contrib.get(now)!, c), touched)
    }
    for (const e of before.entries) this.#release(e, touched)
    for (const a of before.addresses) {
      touched.addresses.add(a)
      const n = (this.#addresses.get(a) ?? 0) - 1
      if (n > 0) this.#addresses.set(a, n)
      else this.#addresses.delete(a)
    }
    for (const e of after.entries) this.#hold(e, touched)
    for (const a of after.addresses) {
      touched.addresses.add(a)
      this.#addresses.set(a, (this.#addresses.get(a) ?? 0) + 1)
    }
    this.countNoLocal(before.noLocalEndpoints, after.noLocalEndpoints)
  }

  #take(c: Claim, touched: Touched): void {
    if (c.server) {
      this.#servers.set(c.key, c.server)
      touched.servers.add(c.key)
    }
    for (const e of c.entries) this.#hold(e, touched)
  }

  #drop(c: Claim, touched: Touched): void {
    if (c.server) {
      this.#servers.delete(c.key)
      touched.servers.add(c.key)
    }
    for (const e of c.entries) this.#release(e, touched)
  }

  #hold(e: SetEntry, touched: Touched): void {
    touchEntry(touched, e)
    let m = this.#entries.get(e.set)
    if (!m) this.#entries.set(e.set, (m = new Map()))
    hold(m, e.key, e.entry)
  }

  #release(e: SetEntry, touched: Touched): void {
    touchEntry(touched, e)
    const m = this.#entries.get(e.set)
    if (m) release(m, e.key)
  }

  // ---- reading the kernel (full sync) -----------------------------------------------------

  /** Reads the node's addresses; resolves whether they changed since the last read. */
  async #readNode(): Promise<boolean> {
    const all = await this.#dp.rtnl.listAddresses({ family: this.family })
    const before = this.#nodeAddresses.join()
    this.#nodeAddresses = nodeAddresses(all, this.family, [DUMMY_LINK])
    let changed = this.#nodeAddresses.join() !== before
    const np = selectNodePortAddresses(nodePortSelection(this.#o.nodePortAddresses, this.family), this.#nodeAddresses, this.#nodeAddresses[0])
    if (np.join() !== this.#nodePortAddresses.join()) {
      this.#nodePortAddresses = np
      this.log('info', 'node port addresses', { addresses: np })
      changed = true
    }
    return changed
  }

  /**
   * Creates a set that is missing; a set of ours that exists, perhaps grown
   * past the default maxelem, is kept as it is. Notes its capacity.
   */
  async #ensureSet(role: SetRole): Promise<void> {
    const spec = setSpec(role, this.family)
    const read = () => this.#dp.ipset.header(spec.name).catch((e: unknown) => {
      if ((e as { code?: string }).code === 'ENOENT') return undefined
      throw e
    })
    let h = await read()
    if (!h || h.type !== spec.type || h.family !== spec.family) {
      // Missing: created. Another kind of set under our name: create refuses (EEXIST), as before.
      await this.#dp.ipset.create(spec)
      h = await read()
    }
    this.#capacity.set(spec.name, h?.maxelem ?? Infinity)
  }

  async #readKernel(report: Report, repairing: boolean): Promise<void> {
    await this.#dp.rtnl.addDummy(DUMMY_LINK, { exist: true })
    const tables = ipvsTables(this.#ruleOptions())
    for (const role of SET_ROLES) await this.#ensureSet(role)
    for (const t of ['nat', 'filter'] as const) {
      const r = await this.#dp.tables.sync(t, tables[t]).catch((e: unknown) => {
        // kube-proxy's IPVS mode counts a failed iptables-restore in the iptables mode's metric; a
        // failed commit here is that (a failed read is not). The sync goes on; the next is a full one.
        report.errors.push(e as Error)
        if ((e as { op?: string }).op !== 'iptables.load') report.commitFailures.full++
        this.log('error', 'iptables commit failed', { table: t, error: e })
        return undefined
      })
      if (r?.committed) {
        report.ops.iptables++
        if (repairing) report.repaired.iptables += r.repaired.length
      }
    }
    const vips = (await this.#dp.rtnl.listAddresses({ link: DUMMY_LINK, family: this.family })).map((a) => a.address)
    this.#appliedAddresses.clear()
    for (const a of vips) this.#appliedAddresses.add(a)
    const vipSet = new Set(vips)
    // Servers we programmed stay ours even when their address no longer marks
    // them (a node address that went, a VIP unbound while its deleteService failed).
    const known = new Set(this.#applied.keys())
    this.#applied.clear()
    this.#draining.clear()
    for (const s of await this.#dp.ipvs.listServices({ destinations: true })) {
      if (s.protocol === undefined || s.address === undefined || s.port === undefined || s.family !== this.family) continue
      const key = serverKey(s.protocol, s.address, s.port)
      if (!this.#servers.has(key) && !known.has(key) && !this.#owned(s.address, vipSet)) continue
      const spec: VirtualServer['spec'] = { protocol: s.protocol, address: s.address, port: s.port, scheduler: s.scheduler }
      if (s.persistent) {
        spec.persistent = true
        spec.timeout = s.timeout
        spec.netmask = s.netmask
      }
      const destinations = new Weights()
      for (const d of s.destinations ?? []) destinations.set(joinHostPort(d.address, d.port), d.forward === 'masq' ? d.weight : -1)
      this.#applied.set(key, { spec, destinations })
    }
  }

  /** Ours to delete: on a VIP of kube-ipvs0 or a node-port address, and not excluded. */
  #owned(address: string, vips: Set<string>): boolean {
    if (this.#o.excludeCIDRs.some((c) => cidrContains(c, address))) return false
    return vips.has(address) || this.#nodePortAddresses.includes(address)
  }

  #ruleOptions() {
    const cidr = this.#o.clusterCIDR
    return { family: this.family, masqueradeAll: this.#o.masqueradeAll, masqueradeBit: this.#o.masqueradeBit, clusterCIDR: cidr }
  }

  #reset(): void {
    this.#contrib.clear()
    this.reset()
    this.#servers.clear()
    this.#entries.clear()
    this.#addresses.clear()
    this.#applied.clear()
    this.#appliedEntries.clear()
    this.#appliedAddresses.clear()
    this.#draining.clear()
  }

  // ---- writing ---------------------------------------------------------------------------

  async #applyServers(keys: Set<string>, report: Report): Promise<void> {
    let ops: IpvsOp[] = []
    let after: (() => void)[] = []
    // Sent in slices: a cold start of 10k services is 120k operations, and
    // holding them all (with their outcomes) at once is what sets the peak heap.
    const send = async (): Promise<void> => {
      const outcomes = await this.#dp.ipvs.batch(ops)
      report.ops.ipvs += ops.length
      this.#settle(outcomes, ops, after, report, 'ipvs')
      ops = []
      after = []
    }
    for (const key of keys) {
      if (ops.length >= SLICE_OPS) await send()
      const want = this.#servers.get(key)
      const have = this.#applied.get(key)
      if (!want) {
        if (!have) continue
        ops.push({ op: 'deleteService', service: keyOf(have.spec) })
        after.push(() => {
          this.#applied.delete(key)
          this.#draining.delete(key)
        })
        continue
      }
      const svc = keyOf(want.spec)
      let applied = have
      if (!have) {
        ops.push({ op: 'addService', service: want.spec })
        applied = { spec: want.spec, destinations: new Weights() }
        const a = applied
        after.push(() => this.#applied.set(key, a))
      } else if (!sameServer(have.spec, want.spec)) {
        ops.push({ op: 'updateService', service: want.spec })
        after.push(() => (have.spec = want.spec))
      }
      const current = applied!.destinations
      const draining = this.#draining.get(key)
      for (const e of want.endpoints) {
        const dk = e.key
        const now = current.get(dk)
        if (now === WEIGHT) continue
        ops.push({ op: now === undefined ? 'addDestination' : 'updateDestination', service: svc, destination: { address: e.ip, port: e.port, weight: WEIGHT, forward: 'masq' } })
        after.push(() => {
          this.#applied.get(key)?.destinations.set(dk, WEIGHT)
          draining?.delete(dk)
          if (draining?.size === 0) this.#draining.delete(key)
        })
      }
      const wanted = want.endpoints.length > 16 ? new Set(want.endpoints.map((e) => e.key)) : undefined
      for (const [dk, weight] of current) {
        if (wanted ? wanted.has(dk) : want.endpoints.some((e) => e.key === dk)) continue
        const rs = realServer(dk)
        if (GRACEFUL.has(want.spec.protocol)) {
          let set = this.#draining.get(key)
          if (!set) this.#draining.set(key, (set = new Set()))
          set.add(dk)
          if (weight === 0) continue // already draining
          ops.push({ op: 'updateDestination', service: svc, destination: { ...rs, weight: 0, forward: 'masq' } })
          after.push(() => this.#applied.get(key)?.destinations.set(dk, 0))
        } else {
          ops.push({ op: 'deleteDestination', service: svc, destination: rs })
          after.push(() => this.#applied.get(key)?.destinations.delete(dk))
        }
      }
    }
    if (ops.length > 0) await send()
  }

  #settle(outcomes: readonly Outcome[], ops: readonly unknown[], after: (() => void)[], report: Report, what: string): void {
    outcomes.forEach((o, i) => {
      if (o.ok) after[i]!()
      else {
        report.errors.push(o.error)
        this.log('error', `${what} operation failed`, { error: o.error, op: ops[i] })
      }
    })
  }

  async #applyEntries(touched: Map<string, Set<string>>, report: Report): Promise<void> {
    const ops: { op: 'add' | 'del'; set: string; entry: IpSetEntry; exist: true }[] = []
    const after: (() => void)[] = []
    for (const [set, keys] of touched) {
      let applied = this.#appliedEntries.get(set)
      if (!applied) this.#appliedEntries.set(set, (applied = new Map()))
      const a = applied
      const want = this.#entries.get(set)
      const first = ops.length
      let size = a.size
      for (const k of keys) {
        const entry = want?.get(k)?.value
        const have = a.get(k)
        if (entry && !have) {
          ops.push({ op: 'add', set, entry, exist: true })
          after.push(() => a.set(k, entry))
          size++
        } else if (!entry && have) {
          ops.push({ op: 'del', set, entry: have, exist: true })
          after.push(() => a.delete(k))
          size--
        }
      }
      const all = this.#outgrown(set, size)
      if (all) {
        ops.length = after.length = first
        await this.#grow(set, all, report)
      }
    }
    if (ops.length === 0) return
    const outcomes = await this.#dp.ipset.batch(ops)
    report.ops.ipset += ops.length
    this.#settle(outcomes, ops, after, report, 'ipset')
  }

  /** Every entry a set should hold, when `size` entries no longer fit in it (else undefined). */
  #outgrown(set: string, size: number): IpSetEntry[] | undefined {
    if (size <= (this.#capacity.get(set) ?? Infinity)) return undefined
    return [...(this.#entries.get(set)?.values() ?? [])].map((c) => c.value)
  }

  /**
   * Replaces a set that outgrew its maxelem by a bigger one holding `entries`
   * (filled aside, swapped in atomically: packets never see it half full).
   */
  async #grow(set: string, entries: IpSetEntry[], report: Report): Promise<void> {
    const maxelem = grownMaxelem(entries.length)
    try {
      await this.#dp.ipset.replaceMembers(set, entries, { maxelem })
    } catch (e) {
      report.errors.push(e as Error)
      this.log('error', 'ipset could not grow', { error: e, set, maxelem, entries: entries.length })
      return
    }
    report.ops.ipset += entries.length
    this.#capacity.set(set, maxelem)
    this.#appliedEntries.set(set, new Map([...(this.#entries.get(set) ?? [])].map(([k, c]) => [k, c.value])))
    this.log('info', 'ipset grown', { set, maxelem, entries: entries.length })
  }

  async #syncSets(report: Report): Promise<void> {
    for (const role of SET_ROLES) {
      const set = setName(role, this.family)
      const want = this.#entries.get(set)
      const entries = want ? [...want.values()].map((c) => c.value) : []
      if (this.#outgrown(set, entries.length)) {
        await this.#grow(set, entries, report)
        continue
      }
      const r = await this.#dp.ipset.syncMembers(set, entries)
      report.ops.ipset += r.added + r.deleted
      for (const e of r.errors) {
        report.errors.push(e)
        this.log('error', 'ipset operation failed', { error: e, set })
      }
      this.#appliedEntries.set(set, new Map(want ? [...want].map(([k, c]) => [k, c.value]) : []))
    }
  }

  async #applyAddresses(touched: Set<string>, report: Report): Promise<void> {
    const ops: RtnlOp[] = []
    const after: (() => void)[] = []
    for (const a of touched) {
      const want = this.#addresses.has(a)
      const have = this.#appliedAddresses.has(a)
      if (want && !have) {
        ops.push({ op: 'addAddress', link: DUMMY_LINK, address: { address: a, noPrefixRoute: true, ...(this.family === 'inet6' ? { nodad: true } : {}) }, exist: true })
        after.push(() => this.#appliedAddresses.add(a))
      } else if (!want && have) {
        ops.push({ op: 'deleteAddress', link: DUMMY_LINK, address: a, exist: true })
        after.push(() => this.#appliedAddresses.delete(a))
      }
    }
    if (ops.length === 0) return
    const outcomes = await this.#dp.rtnl.batch(ops)
    report.ops.rtnl += ops.length
    this.#settle(outcomes, ops, after, report, 'rtnetlink')
  }
}

function hold<T>(m: Map<string, Counted<T>>, key: string, value: T): void {
  const c = m.get(key)
  if (c) {
    c.refs++
    c.value = value
  } else m.set(key, { value, refs: 1 })
}

function release<T>(m: Map<string, Counted<T>>, key: string): void {
  const c = m.get(key)
  if (!c) return
  if (--c.refs <= 0) m.delete(key)
}

function touchEntry(touched: Touched, e: SetEntry): void {
  let s = touched.entries.get(e.set)
  if (!s) touched.entries.set(e.set, (s = new Set()))
  s.add(e.key)
}

function claimOf(c: Contribution, key: string): Claim {
  return c.claims.find((x) => x.key === key)!
}

function keyOf(spec: { protocol: VirtualServer['spec']['protocol']; address: string; port: number }): { protocol: VirtualServer['spec']['protocol']; address: string; port: number } {
  return { protocol: spec.protocol, address: spec.address, port: spec.port }
}

function sameServer(a: VirtualServer['spec'], b: VirtualServer['spec']): boolean {
  if ((a.scheduler ?? 'wlc') !== (b.scheduler ?? 'wlc')) return false
  if (!!a.persistent !== !!b.persistent) return false
  if (a.persistent && (a.timeout !== b.timeout || a.netmask !== b.netmask)) return false
  return true
}

/** A real server's address and port from its key ('10.0.0.1:80', '[fd00::1]:80'). */
function realServer(key: string): { address: string; port: number } {
  const hp = splitHostPort(key)!
  return { address: hp.host, port: hp.port }
}
