// An in-memory IpvsDataplane for proxier tests on the host: the kernel as the
// IPVS proxier sees it, with the kernel's answers where they matter (EEXIST,
// ESRCH, ENOENT, ENODEV, EADDRNOTAVAIL, exist semantics, ipset type checks),
// a log of every call, and helpers to make the "kernel" drift behind the
// proxier's back (ipvsadm -C, a deleted set member, a lost VIP).
//
// Only types come from lib/proxy/ipvs/dataplane: its openDataplane() loads the
// native addon at import time, this file must not.
import { isDeepStrictEqual } from 'node:util'
import { NetlinkError, ValidationError } from '../../dist/errors.js'
import type { IpvsDataplane } from '../../dist/proxy/ipvs/dataplane.js'
import type { TableSpec, TableSyncResult, TableWriter } from '../../dist/proxy/chains.js'
import type { DestinationRecord, DestinationSpec, IpvsOp, IpvsStats, IpvsTimeouts, Outcome, ServiceKey, ServiceRecord, ServiceSpec, IpvsProtocol } from '../../dist/ipvs.js'
import type { CreateSpec, IpSetEntry, IpSetOp, IpSetRecord, ResizeOptions, SyncResult } from '../../dist/ipset.js'
import type { AddressFlag, AddressRecord, AddressSpec, LinkRecord, RtnlOp, RtnlOutcome } from '../../dist/route.js'
import type { ConntrackFilter } from '../../dist/conntrack.js'
import type { Rule } from '../../dist/iptables.js'
import type { Family } from '../../dist/validate.js'

export type Subsystem = 'ipvs' | 'ipset' | 'rtnl' | 'tables' | 'conntrack' | 'sysctl'

/**
 * One call the proxier made. `kind`: 'read' (listing), 'ensure' (idempotent
 * create/set with exist semantics), 'write' (a change request: a batch op, a
 * set member added or deleted by syncMembers, a destroy, a commit, ...).
 */
export interface Call {
  readonly sub: Subsystem
  readonly kind: 'read' | 'ensure' | 'write'
  /** e.g. 'addDestination tcp/10.96.0.1:80 10.0.0.1:8080 w1 masq'. */
  readonly detail: string
  /** Whether the kernel state changed. */
  readonly changed: boolean
  /** The error the fake answered with, if any. */
  readonly error?: string
}

export interface NodeAddress {
  link: string
  address: string
  prefix?: number
  scope?: AddressRecord['scope']
}

export interface FakeOptions {
  /** The node's own addresses (besides lo's 127.0.0.1 and ::1). */
  nodeAddresses?: NodeAddress[]
  /** The maxelem of a hash set created without one (the kernel's 65536; smaller to test growth). */
  defaultMaxelem?: number
}

const ERRNO = { ENOENT: 2, ESRCH: 3, EEXIST: 17, ENODEV: 19, EINVAL: 22, EADDRNOTAVAIL: 99, ENOMEM: 12 } as const
const IPSET_ERR_EXIST = 4103
const IPSET_ERR_HASH_FULL = 4352

const ZERO_STATS: IpvsStats = Object.freeze({ conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 })

const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)
const familyOf = (ip: string): Family => (ip.includes(':') ? 'inet6' : 'inet')
const fullPrefix = (ip: string): number => (familyOf(ip) === 'inet' ? 32 : 128)

/** 'tcp/10.96.0.1:80', the proxier's own serverKey format. */
export function vsKey(s: { protocol: string; address: string; port: number }): string {
  return `${s.protocol}/${hostPort(s.address, s.port)}`
}

/** An entry as `ipset save` prints it, and as the proxier keys entries: '10.96.0.1,tcp:80', '80', '10.0.0.1,tcp:80,10.0.0.1'. */
export function entryText(e: IpSetEntry): string {
  const parts: string[] = []
  if (e.ip !== undefined) parts.push(e.ip)
  else if (e.net !== undefined && e.ip === undefined) parts.push(e.net)
  if (e.port !== undefined) parts.push(e.protocol !== undefined ? `${e.protocol}:${e.port}` : String(e.port))
  if (e.ip !== undefined && e.ip2 !== undefined) parts.push(e.ip2)
  if (e.ip !== undefined && e.net !== undefined) parts.push(e.net)
  if (e.set !== undefined) parts.push(e.set)
  return parts.join(',')
}

interface FakeService {
  spec: Required<Pick<ServiceSpec, 'scheduler' | 'persistent' | 'timeout' | 'netmask'>> & { protocol: IpvsProtocol; address: string; port: number }
  family: Family
  dests: Map<string, DestinationRecord>
}

interface FakeSet {
  spec: CreateSpec
  members: Map<string, IpSetEntry>
}

interface FakeAddress {
  link: string
  address: string
  prefix: number
  family: Family
  scope: AddressRecord['scope']
  flags: AddressFlag[]
}

interface HeldTable {
  chains: Map<string, Rule[]>
  jumps: { chain: string; rule: Rule }[]
}

type Refusal = { sub: Subsystem; match: (detail: string) => boolean; errno: number; code?: string; times: number }

/** Which entry fields each set type needs (and allows). */
const ENTRY_FIELDS: Record<string, string[]> = {
  'hash:ip': ['ip'],
  'hash:ip,port': ['ip', 'port'],
  'hash:ip,port,ip': ['ip', 'port', 'ip2'],
  'hash:ip,port,net': ['ip', 'port', 'net'],
  'hash:net': ['net'],
  'bitmap:port': ['port'],
}

export class FakeDataplane implements IpvsDataplane {
  readonly calls: Call[] = []
  readonly services = new Map<string, FakeService>()
  readonly sets = new Map<string, FakeSet>()
  readonly links = new Map<string, { index: number; kind?: string }>()
  readonly addresses: FakeAddress[] = []
  readonly heldTables = new Map<string, HeldTable>()
  readonly sysctls = new Map<string, number>()
  readonly conntrackDeletes: ConntrackFilter[] = []
  timeouts: Partial<IpvsTimeouts> | undefined
  closed = false
  #nextIndex = 1
  #refusals: Refusal[] = []
  readonly #defaultMaxelem: number

  constructor(options: FakeOptions = {}) {
    this.#defaultMaxelem = options.defaultMaxelem ?? 65536
    this.#link('lo')
    this.#addr({ link: 'lo', address: '127.0.0.1', prefix: 8, scope: 'host' })
    this.#addr({ link: 'lo', address: '::1', prefix: 128, scope: 'host' })
    for (const a of options.nodeAddresses ?? []) {
      if (!this.links.has(a.link)) this.#link(a.link)
      this.#addr(a)
    }
  }

  #link(name: string, kind?: string): void {
    this.links.set(name, { index: this.#nextIndex++, ...(kind ? { kind } : {}) })
  }

  #addr(a: NodeAddress & { flags?: AddressFlag[] }): void {
    this.addresses.push({ link: a.link, address: a.address, prefix: a.prefix ?? fullPrefix(a.address), family: familyOf(a.address), scope: a.scope ?? 'global', flags: a.flags ?? ['permanent'] })
  }

  #log(sub: Subsystem, kind: Call['kind'], detail: string, changed: boolean, error?: NetlinkError): void {
    this.calls.push({ sub, kind, detail, changed, ...(error ? { error: error.code } : {}) })
  }

  /** The refusal for this op, if one is armed (consumed). */
  #refused(sub: Subsystem, detail: string, op: string, index?: number): NetlinkError | undefined {
    const r = this.#refusals.find((x) => x.sub === sub && x.times > 0 && x.match(detail))
    if (!r) return undefined
    r.times--
    return new NetlinkError({ errno: r.errno, op, ...(r.code ? { code: r.code } : {}), ...(index === undefined ? {} : { index }) })
  }

  // ---- test helpers ------------------------------------------------------------------------

  /** Makes the next `times` ops of `sub` whose detail matches fail with `errno` (ENOMEM by default). */
  refuse(sub: Subsystem, match: string | RegExp | ((detail: string) => boolean), options: { errno?: number; code?: string; times?: number } = {}): void {
    const fn = typeof match === 'string' ? (d: string) => d.startsWith(match) : match instanceof RegExp ? (d: string) => match.test(d) : match
    this.#refusals.push({ sub, match: fn, errno: options.errno ?? ERRNO.ENOMEM, ...(options.code ? { code: options.code } : {}), times: options.times ?? 1 })
  }

  /** Forgets the call log. */
  clearCalls(): void {
    this.calls.length = 0
  }

  /** 'sub detail' of every write request (optionally of one subsystem), in order. */
  writes(sub?: Subsystem): string[] {
    return this.calls.filter((c) => c.kind === 'write' && (!sub || c.sub === sub)).map((c) => (sub ? c.detail : `${c.sub} ${c.detail}`))
  }

  /** Calls that changed kernel state (of any kind). */
  changes(sub?: Subsystem): string[] {
    return this.calls.filter((c) => c.changed && (!sub || c.sub === sub)).map((c) => `${c.sub} ${c.detail}`)
  }

  /** ipvsadm -C. */
  flushIpvs(): void {
    this.services.clear()
  }

  /** A virtual server nobody asked the proxier for (another tool's, or stale). */
  addForeignService(spec: { protocol: IpvsProtocol; address: string; port: number; scheduler?: string }, dests: string[] = []): void {
    const s = this.#newService({ ...spec })
    for (const d of dests) {
      const [address, port] = splitHostPort(d)
      s.dests.set(d, destRecord({ address, port, weight: 1, forward: 'masq' }))
    }
    this.services.set(vsKey(spec), s)
  }

  service(key: string): FakeService | undefined {
    return this.services.get(key)
  }

  /** The destinations of a virtual server as 'ip:port w<weight>' (sorted), or undefined when it does not exist. */
  dests(key: string): string[] | undefined {
    const s = this.services.get(key)
    return s && [...s.dests.values()].map((d) => `${hostPort(d.address, d.port)} w${d.weight} ${d.forward}`).sort()
  }

  /** Sets a real server's connection counts (as IPVS would report them). */
  setConns(server: string, dest: string, activeConns: number, inactiveConns = 0): void {
    const d = this.services.get(server)?.dests.get(dest)
    if (!d) throw new Error(`fake: no destination ${dest} on ${server}`)
    d.activeConns = activeConns
    d.inactiveConns = inactiveConns
  }

  /** Members of a set, as entryText (sorted); undefined when the set does not exist. */
  members(set: string): string[] | undefined {
    const s = this.sets.get(set)
    return s && [...s.members.keys()].sort()
  }

  /** ipset del behind the proxier's back. */
  deleteSetMember(set: string, key: string): void {
    if (!this.sets.get(set)?.members.delete(key)) throw new Error(`fake: ${set} has no member ${key}`)
  }

  /** ip addr del behind the proxier's back. */
  removeAddress(link: string, address: string): void {
    const i = this.addresses.findIndex((a) => a.link === link && a.address === address)
    if (i < 0) throw new Error(`fake: no ${address} on ${link}`)
    this.addresses.splice(i, 1)
  }

  /** ip addr add behind the proxier's back (a VIP, or a node address). */
  bindAddress(link: string, address: string, flags: AddressFlag[] = ['noprefixroute', 'permanent']): void {
    if (!this.links.has(link)) this.#link(link, link === 'kube-ipvs0' ? 'dummy' : undefined)
    this.#addr({ link, address, flags })
  }

  /** Addresses of a link (sorted). */
  addressesOf(link: string): string[] {
    return this.addresses.filter((a) => a.link === link).map((a) => a.address).sort()
  }

  addressRecord(link: string, address: string): FakeAddress | undefined {
    return this.addresses.find((a) => a.link === link && a.address === address)
  }

  /** Chains the fake holds for a table. */
  chains(table: string): Map<string, Rule[]> | undefined {
    return this.heldTables.get(table)?.chains
  }

  /** Deletes a held chain (iptables -F/-X behind the proxier's back). */
  dropChain(table: string, chain: string): void {
    if (!this.heldTables.get(table)?.chains.delete(chain)) throw new Error(`fake: no chain ${chain} in ${table}`)
  }

  // ---- IPVS ------------------------------------------------------------------------------------

  #newService(spec: ServiceSpec & { protocol: IpvsProtocol; address: string; port: number }): FakeService {
    const family = familyOf(spec.address)
    return {
      spec: {
        protocol: spec.protocol,
        address: spec.address,
        port: spec.port,
        scheduler: spec.scheduler ?? 'wlc',
        persistent: spec.persistent ?? false,
        timeout: spec.persistent ? (spec.timeout ?? 360) : 0,
        netmask: spec.netmask ?? fullPrefix(spec.address),
      },
      family,
      dests: new Map(),
    }
  }

  #record(s: FakeService, withDests: boolean): ServiceRecord {
    const r: ServiceRecord = {
      family: s.family,
      protocol: s.spec.protocol,
      address: s.spec.address,
      port: s.spec.port,
      scheduler: s.spec.scheduler,
      persistent: s.spec.persistent,
      timeout: s.spec.timeout,
      netmask: s.spec.netmask,
      flags: s.spec.persistent ? ['persistent'] : [],
      stats: { ...ZERO_STATS },
    }
    if (withDests) r.destinations = [...s.dests.values()].map((d) => ({ ...d, stats: { ...d.stats } }))
    return r
  }

  #ipvsOp(o: IpvsOp, index: number): Outcome {
    const detail = ipvsDetail(o)
    const op = `ipvs.${o.op}`
    const fail = (errno: number): Outcome => {
      const error = new NetlinkError({ errno, op, index })
      this.#log('ipvs', 'write', detail, false, error)
      return { ok: false, error }
    }
    const refused = this.#refused('ipvs', detail, op, index)
    if (refused) {
      this.#log('ipvs', 'write', detail, false, refused)
      return { ok: false, error: refused }
    }
    if (o.op === 'flush') {
      this.services.clear()
      this.#log('ipvs', 'write', detail, true)
      return { ok: true }
    }
    if (o.op === 'zero') {
      this.#log('ipvs', 'write', detail, false)
      return { ok: true }
    }
    if (!('protocol' in o.service)) return fail(ERRNO.EINVAL) // no fwmark services here
    const key = vsKey(o.service)
    const svc = this.services.get(key)
    switch (o.op) {
      case 'addService':
        if (svc) return fail(ERRNO.EEXIST)
        this.services.set(key, this.#newService(o.service as ServiceSpec & { protocol: IpvsProtocol; address: string; port: number }))
        break
      case 'updateService': {
        if (!svc) return fail(ERRNO.ESRCH)
        const spec = this.#newService(o.service as ServiceSpec & { protocol: IpvsProtocol; address: string; port: number }).spec
        svc.spec = spec
        break
      }
      case 'deleteService':
        if (!svc) return fail(ERRNO.ESRCH)
        this.services.delete(key)
        break
      case 'addDestination': {
        if (!svc) return fail(ERRNO.ESRCH)
        const dk = hostPort(o.destination.address, o.destination.port)
        if (svc.dests.has(dk)) return fail(ERRNO.EEXIST)
        svc.dests.set(dk, destRecord(o.destination))
        break
      }
      case 'updateDestination': {
        if (!svc) return fail(ERRNO.ESRCH)
        const dk = hostPort(o.destination.address, o.destination.port)
        const d = svc.dests.get(dk)
        if (!d) return fail(ERRNO.ENOENT)
        d.weight = o.destination.weight ?? 1
        d.forward = o.destination.forward ?? 'masq'
        break
      }
      case 'deleteDestination': {
        if (!svc) return fail(ERRNO.ESRCH)
        const dk = hostPort(o.destination.address, o.destination.port)
        if (!svc.dests.delete(dk)) return fail(ERRNO.ENOENT)
        break
      }
    }
    this.#log('ipvs', 'write', detail, true)
    return { ok: true }
  }

  readonly ipvs: IpvsDataplane['ipvs'] = {
    listServices: async (options: { destinations?: boolean } = {}) => {
      this.#log('ipvs', 'read', 'listServices', false)
      return [...this.services.values()].map((s) => this.#record(s, options.destinations === true))
    },
    listDestinations: async (service: ServiceKey) => {
      const detail = `listDestinations ${'protocol' in service ? vsKey(service) : `fwmark ${service.fwmark}`}`
      this.#log('ipvs', 'read', detail, false)
      // The kernel's dump of a missing service's destinations is empty, not an error.
      const s = 'protocol' in service ? this.services.get(vsKey(service)) : undefined
      if (!s) return []
      return [...s.dests.values()].map((d) => ({ ...d, stats: { ...d.stats } }))
    },
    batch: async (ops: IpvsOp[]) => {
      await Promise.resolve()
      return ops.map((o, i) => this.#ipvsOp(o, i))
    },
    setTimeouts: async (t: Partial<IpvsTimeouts>) => {
      this.timeouts = { ...t }
      this.#log('ipvs', 'write', `setTimeouts tcp=${t.tcp ?? 0} tcpFin=${t.tcpFin ?? 0} udp=${t.udp ?? 0}`, true)
    },
  }

  // ---- ipset -------------------------------------------------------------------------------------

  #checkEntry(op: string, set: FakeSet, e: IpSetEntry, index?: number): void {
    const need = ENTRY_FIELDS[set.spec.type]
    if (!need) return
    for (const f of need) if ((e as Record<string, unknown>)[f] === undefined) throw new ValidationError(op, `entry.${f}`, e, `is required in a ${set.spec.type} set (${set.spec.name})`, index)
    for (const f of ['ip', 'port', 'ip2', 'net'])
      if (!need.includes(f) && (e as Record<string, unknown>)[f] !== undefined) throw new ValidationError(op, `entry.${f}`, e, `has no place in a ${set.spec.type} set (${set.spec.name})`, index)
    if (set.spec.type.startsWith('hash:')) {
      const fam = set.spec.family ?? 'inet'
      for (const a of [e.ip, e.ip2, e.net?.split('/')[0]]) if (a !== undefined && familyOf(a) !== fam) throw new ValidationError(op, 'entry', e, `is not of the set's family ${fam} (${set.spec.name})`, index)
    }
    if (set.spec.type === 'bitmap:port') {
      const [lo, hi] = set.spec.range ?? [0, 65535]
      if (e.port! < lo || e.port! > hi) throw new ValidationError(op, 'entry.port', e.port, 'is out of the set\'s range', index)
    }
  }

  /** A hash set's maxelem (fixed at create, as the kernel's); bitmap sets have none. */
  #maxelem(spec: CreateSpec): number | undefined {
    return spec.type.startsWith('hash:') ? (spec.maxelem ?? this.#defaultMaxelem) : undefined
  }

  #ipsetOp(o: IpSetOp, index: number): Outcome {
    const key = entryText(o.entry)
    const detail = `${o.op} ${o.set} ${key}`
    const op = `ipset.${o.op}`
    const refused = this.#refused('ipset', detail, op, index)
    if (refused) {
      this.#log('ipset', 'write', detail, false, refused)
      return { ok: false, error: refused }
    }
    const set = this.sets.get(o.set)!
    const have = set.members.has(key)
    if (o.op === 'add') {
      if (have && !o.exist) {
        const error = new NetlinkError({ errno: IPSET_ERR_EXIST, code: 'IPSET_ERR_EXIST', op, index })
        this.#log('ipset', 'write', detail, false, error)
        return { ok: false, error }
      }
      if (!have && set.members.size >= (this.#maxelem(set.spec) ?? Infinity)) {
        const error = new NetlinkError({ errno: IPSET_ERR_HASH_FULL, code: 'IPSET_ERR_HASH_FULL', op, index })
        this.#log('ipset', 'write', detail, false, error)
        return { ok: false, error }
      }
      set.members.set(key, { ...o.entry })
    } else {
      if (!have && !o.exist) {
        const error = new NetlinkError({ errno: IPSET_ERR_EXIST, code: 'IPSET_ERR_EXIST', op, index })
        this.#log('ipset', 'write', detail, false, error)
        return { ok: false, error }
      }
      set.members.delete(key)
    }
    this.#log('ipset', 'write', detail, !have === (o.op === 'add'))
    return { ok: true }
  }

  readonly ipset: IpvsDataplane['ipset'] = {
    create: async (spec: CreateSpec) => {
      const s = this.sets.get(spec.name)
      if (s) {
        // The kernel's "same set" also compares maxelem.
        const same = s.spec.type === spec.type && (s.spec.family ?? 'inet') === (spec.family ?? 'inet') && this.#maxelem(s.spec) === this.#maxelem(spec)
        if (!spec.exist || !same) {
          const error = new NetlinkError({ errno: ERRNO.EEXIST, op: 'ipset.create' })
          this.#log('ipset', 'ensure', `create ${spec.name}`, false, error)
          throw error
        }
        this.#log('ipset', 'ensure', `create ${spec.name}`, false)
        return
      }
      if (spec.type === 'bitmap:port' && !spec.range) throw new ValidationError('ipset.create', 'range', spec.range, 'is required for bitmap:port')
      this.sets.set(spec.name, { spec: { ...spec }, members: new Map() })
      this.#log('ipset', 'ensure', `create ${spec.name}`, true)
    },
    batch: async (ops: IpSetOp[]) => {
      // Validated whole before anything is "sent", as the real batch.
      ops.forEach((o, i) => {
        const set = this.sets.get(o.set)
        if (set) this.#checkEntry(`ipset.${o.op}`, set, o.entry, i)
      })
      await Promise.resolve()
      return ops.map((o, i): Outcome => {
        if (!this.sets.has(o.set)) {
          const error = new NetlinkError({ errno: ERRNO.ENOENT, op: `ipset.${o.op}`, index: i })
          this.#log('ipset', 'write', `${o.op} ${o.set} ${entryText(o.entry)}`, false, error)
          return { ok: false, error }
        }
        return this.#ipsetOp(o, i)
      })
    },
    syncMembers: async (name: string, entries: IpSetEntry[]): Promise<SyncResult> => {
      const set = this.sets.get(name)
      this.#log('ipset', 'read', `syncMembers ${name}`, false)
      if (!set) throw new NetlinkError({ errno: ERRNO.ENOENT, op: 'ipset.syncMembers' })
      entries.forEach((e, i) => this.#checkEntry('ipset.syncMembers', set, e, i))
      const want = new Map(entries.map((e) => [entryText(e), e]))
      const ops: IpSetOp[] = []
      let unchanged = 0
      for (const [k, e] of set.members) if (!want.has(k)) ops.push({ op: 'del', set: name, entry: e, exist: true })
      for (const [k, e] of want) {
        if (set.members.has(k)) unchanged++
        else ops.push({ op: 'add', set: name, entry: e, exist: true })
      }
      const result: SyncResult = { added: 0, deleted: 0, unchanged, errors: [] }
      ops.forEach((o, i) => {
        const r = this.#ipsetOp(o, i)
        if (!r.ok) result.errors.push(r.error)
        else if (o.op === 'add') result.added++
        else result.deleted++
      })
      return result
    },
    header: async (name: string): Promise<IpSetRecord> => {
      this.#log('ipset', 'read', `header ${name}`, false)
      const set = this.sets.get(name)
      if (!set) throw new NetlinkError({ errno: ERRNO.ENOENT, op: 'ipset.header' })
      const { spec } = set
      const maxelem = this.#maxelem(spec)
      return {
        name, type: spec.type, revision: 0, counters: false, comment: false, skbinfo: false, forceadd: false, references: 0, memsize: 0, entries: set.members.size,
        ...(spec.type.startsWith('hash:') ? { family: spec.family ?? 'inet', hashsize: spec.hashsize ?? 1024, maxelem } : {}),
        ...(spec.range ? { range: spec.range } : {}),
      }
    },
    replaceMembers: async (name: string, entries: IpSetEntry[], resize: ResizeOptions = {}) => {
      const set = this.sets.get(name)
      const detail = `replaceMembers ${name} ${entries.length}${resize.maxelem ? ` maxelem ${resize.maxelem}` : ''}`
      const refused = this.#refused('ipset', detail, 'ipset.replaceMembers')
      if (refused) {
        this.#log('ipset', 'write', detail, false, refused)
        throw refused
      }
      if (!set) throw new NetlinkError({ errno: ERRNO.ENOENT, op: 'ipset.replaceMembers' })
      entries.forEach((e, i) => this.#checkEntry('ipset.replaceMembers', set, e, i))
      const spec = { ...set.spec, ...(resize.maxelem ? { maxelem: resize.maxelem } : {}) }
      const max = this.#maxelem(spec) ?? Infinity
      if (entries.length > max) {
        // The refused add of the filling, as the library reports it.
        const error = new NetlinkError({ errno: IPSET_ERR_HASH_FULL, code: 'IPSET_ERR_HASH_FULL', op: 'ipset.add', index: max })
        this.#log('ipset', 'write', detail, false, error)
        throw error
      }
      this.sets.set(name, { spec, members: new Map(entries.map((e) => [entryText(e), { ...e }])) })
      this.#log('ipset', 'write', detail, true)
    },
    destroy: async (name: string, options: { exist?: boolean } = {}) => {
      if (!this.sets.delete(name)) {
        const error = new NetlinkError({ errno: ERRNO.ENOENT, op: 'ipset.destroy' })
        this.#log('ipset', 'write', `destroy ${name}`, false, error)
        if (!options.exist) throw error
        return
      }
      this.#log('ipset', 'write', `destroy ${name}`, true)
    },
    listNames: async () => {
      this.#log('ipset', 'read', 'listNames', false)
      return [...this.sets.keys()]
    },
  }

  // ---- rtnetlink ---------------------------------------------------------------------------------

  #rtnlOp(o: RtnlOp, index: number): RtnlOutcome {
    const spec: AddressSpec = typeof o.address === 'string' ? { address: o.address } : (o.address as AddressSpec)
    const prefix = spec.prefix ?? fullPrefix(spec.address)
    const detail = o.op === 'addAddress' ? `addAddress ${o.link} ${spec.address}/${prefix}${spec.noPrefixRoute ? ' noprefixroute' : ''}${spec.nodad ? ' nodad' : ''}` : `deleteAddress ${o.link} ${spec.address}/${prefix}`
    const op = `route.${o.op}`
    const fail = (errno: number): RtnlOutcome => {
      const error = new NetlinkError({ errno, op, index })
      this.#log('rtnl', 'write', detail, false, error)
      return { ok: false, error }
    }
    const refused = this.#refused('rtnl', detail, op, index)
    if (refused) {
      this.#log('rtnl', 'write', detail, false, refused)
      return { ok: false, error: refused }
    }
    const link = String(o.link)
    if (!this.links.has(link)) return fail(ERRNO.ENODEV)
    const i = this.addresses.findIndex((a) => a.link === link && a.address === spec.address && a.prefix === prefix)
    if (o.op === 'addAddress') {
      if (i >= 0) {
        if (!o.exist) return fail(ERRNO.EEXIST)
        this.#log('rtnl', 'write', detail, false)
        return { ok: true, unchanged: true }
      }
      const flags: AddressFlag[] = ['permanent']
      if (spec.noPrefixRoute) flags.push('noprefixroute')
      if (spec.nodad) flags.push('nodad')
      this.addresses.push({ link, address: spec.address, prefix, family: familyOf(spec.address), scope: spec.scope ?? 'global', flags })
    } else {
      if (i < 0) {
        if (!o.exist) return fail(ERRNO.EADDRNOTAVAIL)
        this.#log('rtnl', 'write', detail, false)
        return { ok: true, unchanged: true }
      }
      this.addresses.splice(i, 1)
    }
    this.#log('rtnl', 'write', detail, true)
    return { ok: true }
  }

  readonly rtnl: IpvsDataplane['rtnl'] = {
    addDummy: async (name: string, options: { up?: boolean; mtu?: number; exist?: boolean } = {}) => {
      const l = this.links.get(name)
      if (l) {
        if (!options.exist || l.kind !== 'dummy') {
          const error = new NetlinkError({ errno: ERRNO.EEXIST, op: 'route.addDummy' })
          this.#log('rtnl', 'ensure', `addDummy ${name}`, false, error)
          throw error
        }
        this.#log('rtnl', 'ensure', `addDummy ${name}`, false)
        return false
      }
      this.#link(name, 'dummy')
      this.#log('rtnl', 'ensure', `addDummy ${name}`, true)
      return true
    },
    deleteLink: async (link: string | number, options: { exist?: boolean } = {}) => {
      const name = typeof link === 'number' ? [...this.links].find(([, l]) => l.index === link)?.[0] : link
      if (name === undefined || !this.links.has(name)) {
        const error = new NetlinkError({ errno: ERRNO.ENODEV, op: 'route.deleteLink' })
        this.#log('rtnl', 'write', `deleteLink ${link}`, false, error)
        if (!options.exist) throw error
        return false
      }
      this.links.delete(name)
      for (let i = this.addresses.length - 1; i >= 0; i--) if (this.addresses[i]!.link === name) this.addresses.splice(i, 1)
      this.#log('rtnl', 'write', `deleteLink ${name}`, true)
      return true
    },
    getLink: async (link: string | number): Promise<LinkRecord | undefined> => {
      this.#log('rtnl', 'read', `getLink ${link}`, false)
      const entry = typeof link === 'number' ? [...this.links].find(([, l]) => l.index === link) : ([link, this.links.get(link)] as const)
      if (!entry || !entry[1]) return undefined
      const [name, l] = entry
      return { index: l.index, name, ...(l.kind ? { kind: l.kind } : {}), type: name === 'lo' ? 'loopback' : 'ether', flags: [], up: false, operState: 'down' }
    },
    listAddresses: async (filter: { link?: string | number; family?: Family } = {}): Promise<AddressRecord[]> => {
      this.#log('rtnl', 'read', `listAddresses${filter.link !== undefined ? ` ${filter.link}` : ''}${filter.family ? ` ${filter.family}` : ''}`, false)
      if (filter.link !== undefined && !this.links.has(String(filter.link))) throw new NetlinkError({ errno: ERRNO.ENODEV, op: 'route.listAddresses' })
      return this.addresses
        .filter((a) => (filter.link === undefined || a.link === String(filter.link)) && (!filter.family || a.family === filter.family))
        .map((a) => ({ family: a.family, address: a.address, prefix: a.prefix, index: this.links.get(a.link)!.index, link: a.link, scope: a.scope, flags: [...a.flags] }))
    },
    batch: async (ops: RtnlOp[]) => {
      await Promise.resolve()
      return ops.map((o, i) => this.#rtnlOp(o, i))
    },
  }

  // ---- iptables ------------------------------------------------------------------------------------

  readonly tables: TableWriter = this.#tableWriter(this.heldTables, '')

  /** ip6tables' tables: what an inet6 dataplane writes (see inet6View). */
  readonly heldTables6 = new Map<string, HeldTable>()

  /**
   * The same kernel as the dataplane of an inet6 proxier sees it: IPVS, ipsets,
   * links, conntrack and sysctls shared, its own (ip6tables) tables, whose calls
   * are logged as 'ip6 sync nat ...'.
   */
  inet6View(): IpvsDataplane {
    return { ipvs: this.ipvs, ipset: this.ipset, rtnl: this.rtnl, conntrack: this.conntrack, ensureSysctl: this.ensureSysctl, tables: this.#tableWriter(this.heldTables6, 'ip6 '), close: async () => undefined }
  }

  #tableWriter(store: Map<string, HeldTable>, prefix: string): TableWriter {
    return {
    sync: async (table, spec: TableSpec): Promise<TableSyncResult> => {
      let held = store.get(table)
      if (!held) store.set(table, (held = { chains: new Map(), jumps: [] }))
      const repaired: string[] = []
      const rewritten = [...spec.chains].filter(([chain, rules]) => {
        const now = held.chains.get(chain)
        return !(now && isDeepStrictEqual(now, rules))
      })
      for (const [chain] of rewritten) repaired.push(chain)
      const missing = spec.jumps.filter((j) => !held.jumps.some((h) => h.chain === j.chain && isDeepStrictEqual(h.rule, j.rule)))
      for (const j of [...missing].reverse()) repaired.push(`${j.chain} jump`)
      const committed = repaired.length > 0
      const detail = `${prefix}sync ${table}${committed ? ` ${repaired.join(', ')}` : ''}`
      // A refused commit (refuse('tables', ...)) changes nothing, as libiptc's all-or-nothing commit.
      const refused = committed ? this.#refused('tables', detail, 'iptables.commit') : undefined
      if (refused) {
        this.#log('tables', 'write', detail, false, refused)
        throw refused
      }
      for (const [chain, rules] of rewritten) held.chains.set(chain, structuredClone([...rules]) as Rule[])
      // Inserted at the top last first (so they end up in spec order), as libiptc does.
      for (const j of [...missing].reverse()) held.jumps.unshift({ chain: j.chain, rule: structuredClone(j.rule) as Rule })
      this.#log('tables', committed ? 'write' : 'read', detail, committed)
      return { repaired, committed }
    },
    remove: async (table, spec: TableSpec): Promise<TableSyncResult> => {
      const held = store.get(table)
      const repaired: string[] = []
      if (held) {
        for (const j of spec.jumps) {
          const before = held.jumps.length
          held.jumps = held.jumps.filter((h) => !(h.chain === j.chain && isDeepStrictEqual(h.rule, j.rule)))
          if (held.jumps.length < before) repaired.push(`${j.chain} jump`)
        }
        for (const c of spec.chains.keys()) if (held.chains.delete(c)) repaired.push(c)
      }
      const committed = repaired.length > 0
      this.#log('tables', 'write', `${prefix}remove ${table}${committed ? ` ${repaired.join(', ')}` : ''}`, committed)
      return { repaired, committed }
    },
    }
  }

  // ---- conntrack, sysctl ---------------------------------------------------------------------

  readonly conntrack: IpvsDataplane['conntrack'] = {
    delete: async (filter: ConntrackFilter) => {
      const detail = `delete ${Object.entries(filter).map(([k, v]) => `${k}=${v}`).join(' ')}`
      const refused = this.#refused('conntrack', detail, 'conntrack.delete')
      this.#log('conntrack', 'write', detail, !refused, refused)
      if (refused) throw refused
      this.conntrackDeletes.push({ ...filter })
      return 0
    },
  }

  ensureSysctl = async (key: string, value: number): Promise<boolean> => {
    const changed = this.sysctls.get(key) !== value
    this.sysctls.set(key, value)
    this.#log('sysctl', 'ensure', `${key}=${value}`, changed)
    return changed
  }

  async close(): Promise<void> {
    this.closed = true
  }
}

function destRecord(d: DestinationSpec): DestinationRecord {
  return {
    family: familyOf(d.address),
    address: d.address,
    port: d.port,
    forward: d.forward ?? 'masq',
    weight: d.weight ?? 1,
    upperThreshold: d.upperThreshold ?? 0,
    lowerThreshold: d.lowerThreshold ?? 0,
    activeConns: 0,
    inactiveConns: 0,
    persistConns: 0,
    stats: { ...ZERO_STATS },
  }
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':')
  const host = s.slice(0, i)
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(s.slice(i + 1))]
}

/** 'addService tcp/10.96.0.1:80 rr', 'addDestination tcp/10.96.0.1:80 10.0.0.1:8080 w1 masq', ... */
export function ipvsDetail(o: IpvsOp): string {
  if (o.op === 'flush' || o.op === 'zero') return o.op
  const svc = 'protocol' in o.service ? vsKey(o.service) : `fwmark ${o.service.fwmark}`
  switch (o.op) {
    case 'addService':
    case 'updateService': {
      const s = o.service
      return `${o.op} ${svc} ${s.scheduler ?? 'wlc'}${s.persistent ? ` persistent ${s.timeout ?? 360}/${s.netmask ?? ''}` : ''}`
    }
    case 'deleteService':
      return `deleteService ${svc}`
    case 'addDestination':
    case 'updateDestination':
      return `${o.op} ${svc} ${hostPort(o.destination.address, o.destination.port)} w${o.destination.weight ?? 1} ${o.destination.forward ?? 'masq'}`
    case 'deleteDestination':
      return `deleteDestination ${svc} ${hostPort(o.destination.address, o.destination.port)}`
  }
  return 'unknown'
}
