// IPVS, the kernel's layer-4 load balancer, over generic netlink: everything
// ipvsadm does but the sync daemon. Input is validated here (errors name the
// field); native/ipvs only names the kernel's attributes.
import type { DestinationLoad, IpvsRawRecord, IpvsStats, IpvsWireOp, RawDest, RawService, WireDest, WireService } from './native/ipvs.js'
import { NETLINK_GENERIC } from './native.js'
import { NetlinkError } from './errors.js'
import { NetlinkSocket, SLICE, resolveGenlFamily, toError, toOutcome, yieldToLoop, type Outcome } from './netlink/socket.js'
import * as v from './validate.js'
import type { Family, Where } from './validate.js'

export type { Outcome } from './netlink/socket.js'
export type { Family } from './validate.js'
export type { IpvsStats } from './native/ipvs.js'

export type IpvsProtocol = 'tcp' | 'udp' | 'sctp'
export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass'
export type TunnelType = 'ipip' | 'gue' | 'gre'
export type TunnelFlag = 'nocsum' | 'csum' | 'remcsum'
/** Service flags as ipvsadm names them; sh-* and mh-* are the scheduler flags 1 and 2 of sh and mh. */
export type ServiceFlag =
  | 'persistent'
  | 'hashed'
  | 'one-packet'
  | 'sh-fallback'
  | 'sh-port'
  | 'mh-fallback'
  | 'mh-port'
  | 'flag-1'
  | 'flag-2'
  | 'flag-3'

/** The scheduler modules the kernel ships. */
export const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh'] as const

/** A virtual service: protocol, address and port, or a firewall mark. */
export type ServiceKey =
  | { protocol: IpvsProtocol; address: string; port: number }
  | { fwmark: number; family?: Family }

export type ServiceSpec = ServiceKey & {
  /** Scheduler module name; default 'wlc', as ipvsadm. */
  scheduler?: string
  /** Same client, same real server for `timeout` seconds. */
  persistent?: boolean
  /** Persistence timeout in seconds; 360 when persistent and not given, as ipvsadm 1.31. */
  timeout?: number
  /** Persistence granularity as a prefix length (32 / 128 by default). */
  netmask?: number
  /** Further flags: 'one-packet', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port', ... */
  flags?: ServiceFlag[]
  /** Persistence engine, e.g. 'sip'. */
  pe?: string
}

export interface DestinationKey {
  address: string
  /** 1..65535; 0 is allowed in firewall-mark services (the packet's own port). */
  port: number
}

export interface DestinationSpec extends DestinationKey {
  /** Default 1. 0 takes the destination out of scheduling (connections stay). */
  weight?: number
  /** Default 'masq' (NAT); 'route' is direct routing, 'tunnel' IP-in-IP / GUE / GRE. */
  forward?: ForwardMethod
  upperThreshold?: number
  lowerThreshold?: number
  tunnelType?: TunnelType
  tunnelPort?: number
  tunnelFlags?: TunnelFlag
}

export interface ServiceRecord {
  family: Family
  protocol?: IpvsProtocol
  address?: string
  port?: number
  fwmark?: number
  scheduler: string
  persistent: boolean
  timeout: number
  netmask: number
  flags: ServiceFlag[]
  pe?: string
  stats: IpvsStats
  /** Present when listed with `{ destinations: true }`. */
  destinations?: DestinationRecord[]
}

export interface DestinationRecord extends DestinationLoad {
  family: Family
  address: string
  port: number
  forward: ForwardMethod
  tunnelType?: TunnelType
  tunnelPort?: number
  tunnelFlags?: TunnelFlag
  stats: IpvsStats
}

export interface IpvsInfo {
  /** e.g. '1.2.1' */
  version: string
  versionCode: number
  connTableSize: number
}

/** Seconds; 0 in setTimeouts leaves that timeout as it is. */
export interface IpvsTimeouts {
  tcp: number
  tcpFin: number
  udp: number
}

export type IpvsOp =
  | { op: 'addService'; service: ServiceSpec }
  | { op: 'updateService'; service: ServiceSpec }
  | { op: 'deleteService'; service: ServiceKey }
  | { op: 'addDestination'; service: ServiceKey; destination: DestinationSpec }
  | { op: 'updateDestination'; service: ServiceKey; destination: DestinationSpec }
  | { op: 'deleteDestination'; service: ServiceKey; destination: DestinationKey }
  | { op: 'zero'; service?: ServiceKey }
  | { op: 'flush' }

// Kernel numbers (linux/in.h, linux/ip_vs.h).
const PROTOCOLS = v.table<IpvsProtocol, number>({ tcp: 6, udp: 17, sctp: 132 })
const FORWARDS: ForwardMethod[] = ['masq', 'local', 'tunnel', 'route', 'bypass']
const TUNNEL_TYPES: TunnelType[] = ['ipip', 'gue', 'gre']
const TUNNEL_FLAGS: TunnelFlag[] = ['nocsum', 'csum', 'remcsum']
const F_PERSISTENT = 0x1
const F_HASHED = 0x2
const F_ONEPACKET = 0x4
const F_SCHED1 = 0x8
const F_SCHED2 = 0x10
const F_SCHED3 = 0x20
const FLAG_BITS = v.table<ServiceFlag, number>({
  persistent: F_PERSISTENT,
  hashed: F_HASHED,
  'one-packet': F_ONEPACKET,
  'sh-fallback': F_SCHED1,
  'sh-port': F_SCHED2,
  'mh-fallback': F_SCHED1,
  'mh-port': F_SCHED2,
  'flag-1': F_SCHED1,
  'flag-2': F_SCHED2,
  'flag-3': F_SCHED3,
})
const SCHED_NAME_SIZE = 16 // IP_VS_SCHEDNAME_MAXLEN
const PE_NAME_SIZE = 16 // IP_VS_PENAME_MAXLEN
const U32_MAX = 0xffffffff
const ESRCH = 3

// ---- input: validation and the wire form -------------------------------------------------

// Checked once per operation of batches of 100k: no per-call arrays, spreads or
// field-name strings outside the error paths.
const PROTOCOL_NAMES = Object.keys(PROTOCOLS) as IpvsProtocol[]
const FLAG_NAMES = Object.keys(FLAG_BITS) as ServiceFlag[]
const FAMILIES = ['inet', 'inet6'] as const
const KNOWN_SCHEDULERS: ReadonlySet<string> = new Set(SCHEDULERS)
// The fields of each input record. A record read back (ServiceRecord,
// DestinationRecord) can be written again: its read-only fields are known, and ignored.
const SERVICE_FIELDS: ReadonlySet<string> = new Set(['protocol', 'address', 'port', 'fwmark', 'family', 'scheduler', 'persistent', 'timeout', 'netmask', 'flags', 'pe', 'stats', 'destinations'])
const DESTINATION_FIELDS: ReadonlySet<string> = new Set(['address', 'port', 'weight', 'forward', 'upperThreshold', 'lowerThreshold', 'tunnelType', 'tunnelPort', 'tunnelFlags',
  'family', 'activeConns', 'inactiveConns', 'persistConns', 'stats'])
const OP_FIELDS: Readonly<Record<IpvsOp['op'], readonly string[]>> = v.table({
  addService: ['op', 'service'],
  updateService: ['op', 'service'],
  deleteService: ['op', 'service'],
  addDestination: ['op', 'service', 'destination'],
  updateDestination: ['op', 'service', 'destination'],
  deleteDestination: ['op', 'service', 'destination'],
  zero: ['op', 'service'],
  flush: ['op'],
})

function serviceKey(at: Where, value: unknown): WireService {
  const s = v.object(at, 'service', value)
  v.only(at, 'service', s, SERVICE_FIELDS)
  if (s.fwmark !== undefined) {
    const fwmark = v.integer(at, 'service.fwmark', s.fwmark, 1, U32_MAX)
    const family = s.family === undefined ? 'inet' : v.oneOf(at, 'service.family', s.family, FAMILIES)
    return { af: v.familyOf(family), fwmark }
  }
  const protocol = PROTOCOLS[s.protocol as IpvsProtocol] ?? PROTOCOLS[v.oneOf(at, 'service.protocol', s.protocol, PROTOCOL_NAMES)]
  const family = v.address(at, 'service.address', s.address)
  if (s.family !== undefined && v.oneOf(at, 'service.family', s.family, FAMILIES) !== family)
    v.fail(at, 'service.family', s.family, `does not match service.address (${family})`)
  const port = v.port(at, 'service.port', s.port, 0)
  return { af: v.familyOf(family), protocol, address: s.address as string, port }
}

function serviceSpec(at: Where, value: unknown): WireService {
  const wire = serviceKey(at, value)
  const s = value as Record<string, unknown>
  const scheduler =
    s.scheduler === undefined ? 'wlc' : KNOWN_SCHEDULERS.has(s.scheduler as string) ? (s.scheduler as string) : v.name(at, 'service.scheduler', s.scheduler, SCHED_NAME_SIZE)
  let flags = 0
  if (s.flags !== undefined) {
    if (!Array.isArray(s.flags)) v.fail(at, 'service.flags', s.flags, 'must be an array of flag names')
    for (const f of s.flags) {
      const name = v.oneOf(at, 'service.flags', f, FLAG_NAMES)
      if ((name.startsWith('sh-') && scheduler !== 'sh') || (name.startsWith('mh-') && scheduler !== 'mh'))
        v.fail(at, 'service.flags', f, `belongs to the ${name.slice(0, 2)} scheduler, not ${scheduler}`)
      flags |= FLAG_BITS[name]
    }
  }
  if (s.persistent !== undefined && v.boolean(at, 'service.persistent', s.persistent)) flags |= F_PERSISTENT
  if (s.persistent === false) flags &= ~F_PERSISTENT
  flags &= ~F_HASHED // the kernel's own bookkeeping, never ours to set
  const persistent = (flags & F_PERSISTENT) !== 0
  const timeout = s.timeout === undefined ? (persistent ? 360 : 0) : v.integer(at, 'service.timeout', s.timeout, 0, U32_MAX)
  const maxPrefix = wire.af === v.AF_INET ? 32 : 128
  const netmask = s.netmask === undefined ? maxPrefix : v.integer(at, 'service.netmask', s.netmask, 1, maxPrefix)
  if (wire.port === 0 && !persistent) v.fail(at, 'service.port', 0, 'may be 0 only in a persistent service')
  wire.scheduler = scheduler
  wire.flags = flags
  wire.timeout = timeout
  wire.netmask = netmask
  if (s.pe !== undefined) wire.peName = v.name(at, 'service.pe', s.pe, PE_NAME_SIZE)
  return wire
}

function destination(at: Where, svc: WireService, value: unknown, full: boolean): WireDest {
  const d = v.object(at, 'destination', value)
  v.only(at, 'destination', d, DESTINATION_FIELDS)
  const family = v.address(at, 'destination.address', d.address)
  const port = v.port(at, 'destination.port', d.port, svc.fwmark === undefined ? 1 : 0)
  const wire: WireDest = { af: v.familyOf(family), address: d.address as string, port }
  const forward = !full || d.forward === undefined ? 'masq' : v.oneOf(at, 'destination.forward', d.forward, FORWARDS)
  // The kernel mixes families only when the packet is encapsulated anyway (and
  // does not check on delete, so neither do we: such a destination must be deletable).
  const svcFamily = v.familyName(svc.af)
  if (full && family !== svcFamily && forward !== 'tunnel')
    v.fail(at, 'destination.address', d.address, `is ${family === 'inet' ? 'IPv4' : 'IPv6'} in an ${svcFamily === 'inet' ? 'IPv4' : 'IPv6'} service (only tunnel forwarding may mix families)`)
  if (!full) return wire
  wire.forward = FORWARDS.indexOf(forward)
  wire.weight = d.weight === undefined ? 1 : v.integer(at, 'destination.weight', d.weight, 0, 0x7fffffff)
  wire.upperThreshold = d.upperThreshold === undefined ? 0 : v.integer(at, 'destination.upperThreshold', d.upperThreshold, 0, U32_MAX)
  wire.lowerThreshold = d.lowerThreshold === undefined ? 0 : v.integer(at, 'destination.lowerThreshold', d.lowerThreshold, 0, U32_MAX)
  const tunnelOnly = ['tunnelType', 'tunnelPort', 'tunnelFlags'].filter((k) => d[k] !== undefined)
  if (tunnelOnly.length && forward !== 'tunnel')
    v.fail(at, `destination.${tunnelOnly[0]}`, d[tunnelOnly[0]!], "applies only to forward: 'tunnel'")
  if (d.tunnelType !== undefined) wire.tunType = TUNNEL_TYPES.indexOf(v.oneOf(at, 'destination.tunnelType', d.tunnelType, TUNNEL_TYPES))
  if (d.tunnelPort !== undefined) wire.tunPort = v.port(at, 'destination.tunnelPort', d.tunnelPort)
  if (d.tunnelFlags !== undefined) wire.tunFlags = TUNNEL_FLAGS.indexOf(v.oneOf(at, 'destination.tunnelFlags', d.tunnelFlags, TUNNEL_FLAGS))
  if (d.tunnelType === 'gue' && d.tunnelPort === undefined)
    v.fail(at, 'destination.tunnelPort', undefined, 'is required for a gue tunnel')
  return wire
}

/**
 * The wire operation for one API operation, as native/ipvs encodes it; throws
 * ValidationError naming the field. Exported so input checks are testable
 * without a kernel.
 */
export function toWire(op: IpvsOp, index?: number): IpvsWireOp {
  return wireOp({ op: `ipvs.${(op as { op?: string })?.op ?? 'batch'}`, ...(index === undefined ? {} : { index }) }, op)
}

function wireOp(at: Where, op: IpvsOp): IpvsWireOp {
  const o = v.object(at, 'op', op)
  const fields = OP_FIELDS[o.op as IpvsOp['op']]
  if (fields) v.only(at, 'op', o, fields)
  switch (op.op) {
    case 'addService':
      return { cmd: 'newService', service: serviceSpec(at, op.service) }
    case 'updateService':
      return { cmd: 'setService', service: serviceSpec(at, op.service) }
    case 'deleteService':
      return { cmd: 'delService', service: serviceKey(at, op.service) }
    case 'addDestination':
    case 'updateDestination': {
      const svc = serviceKey(at, op.service)
      return { cmd: op.op === 'addDestination' ? 'newDest' : 'setDest', service: svc, dest: destination(at, svc, op.destination, true) }
    }
    case 'deleteDestination': {
      const svc = serviceKey(at, op.service)
      return { cmd: 'delDest', service: svc, dest: destination(at, svc, op.destination, false) }
    }
    case 'zero':
      return op.service === undefined ? { cmd: 'zero' } : { cmd: 'zero', service: serviceKey(at, op.service) }
    case 'flush':
      return { cmd: 'flush' }
    default:
      return v.fail(at, 'op', (op as { op: unknown }).op, 'is not an IPVS operation')
  }
}

// ---- output: records ---------------------------------------------------------------------

function flagNames(bits: number, scheduler: string): ServiceFlag[] {
  const out: ServiceFlag[] = []
  if (bits & F_PERSISTENT) out.push('persistent')
  // F_HASHED is left out: the kernel sets it on every service in its table, so
  // it says nothing, and records read back then equal the spec that made them.
  if (bits & F_ONEPACKET) out.push('one-packet')
  const prefix = scheduler === 'sh' || scheduler === 'mh' ? scheduler : undefined
  if (bits & F_SCHED1) out.push(prefix ? (`${prefix}-fallback` as ServiceFlag) : 'flag-1')
  if (bits & F_SCHED2) out.push(prefix ? (`${prefix}-port` as ServiceFlag) : 'flag-2')
  if (bits & F_SCHED3) out.push('flag-3')
  return out
}

function serviceRecord(r: RawService): ServiceRecord {
  const protocol = PROTOCOL_NAMES.find((p) => PROTOCOLS[p] === r.protocol)
  const rec: ServiceRecord = {
    family: v.familyName(r.af),
    ...(r.fwmark !== undefined ? { fwmark: r.fwmark } : { protocol: protocol ?? 'tcp', address: r.address!, port: r.port! }),
    scheduler: r.scheduler,
    persistent: (r.flags & F_PERSISTENT) !== 0,
    timeout: r.timeout,
    netmask: r.netmask,
    flags: flagNames(r.flags, r.scheduler),
    stats: r.stats,
  }
  if (r.peName) rec.pe = r.peName
  return rec
}

function destinationRecord(r: RawDest): DestinationRecord {
  const rec: DestinationRecord = {
    family: v.familyName(r.af),
    address: r.address ?? '',
    port: r.port,
    forward: FORWARDS[r.forward] ?? 'masq',
    weight: r.weight,
    upperThreshold: r.upperThreshold,
    lowerThreshold: r.lowerThreshold,
    activeConns: r.activeConns,
    inactiveConns: r.inactiveConns,
    persistConns: r.persistConns,
    stats: r.stats,
  }
  if (rec.forward === 'tunnel') {
    rec.tunnelType = TUNNEL_TYPES[r.tunType ?? 0] ?? 'ipip'
    if (rec.tunnelType === 'gue') rec.tunnelPort = r.tunPort ?? 0
    rec.tunnelFlags = TUNNEL_FLAGS[r.tunFlags ?? 0] ?? 'nocsum'
  }
  return rec
}

/** A service's key as the kernel reported it, for further requests. */
export function keyOf(s: ServiceRecord): ServiceKey {
  return s.fwmark !== undefined
    ? { fwmark: s.fwmark, family: s.family }
    : { protocol: s.protocol!, address: s.address!, port: s.port! }
}

// ---- the handle --------------------------------------------------------------------------

export class Ipvs {
  readonly #sock: NetlinkSocket
  readonly #family: number

  private constructor(sock: NetlinkSocket, family: number) {
    this.#sock = sock
    this.#family = family
  }

  /** Opens a generic netlink socket and finds the IPVS family; rejects when the kernel has no IPVS. */
  static async open(): Promise<Ipvs> {
    const op = 'ipvs.open'
    const sock = NetlinkSocket.open(NETLINK_GENERIC, op)
    try {
      const fam = await resolveGenlFamily(sock, 'IPVS', op)
      if (!fam)
        throw new NetlinkError({ errno: 2, op, message: 'ENOENT: the kernel has no IPVS (load the ip_vs module: modprobe ip_vs)' })
      return new Ipvs(sock, fam.id)
    } catch (e) {
      await sock.close()
      throw e
    }
  }

  /** The generic netlink family id the kernel gave IPVS. */
  get familyId(): number {
    return this.#family
  }

  /** One request, as a call of its own (begun now: every caller makes it before any await). */
  async #one(op: string, wire: IpvsWireOp): Promise<IpvsRawRecord[]> {
    return this.#sock.call(`ipvs.${op}`, () => this.#sock.request('ipvs', this.#family, wire, `ipvs.${op}`))
  }

  async addService(service: ServiceSpec): Promise<void> {
    await this.#one('addService', wireOp({ op: 'ipvs.addService' }, { op: 'addService', service }))
  }

  /** Replaces the scheduler, flags, timeout, netmask and pe of a service (unset fields take their defaults). */
  async updateService(service: ServiceSpec): Promise<void> {
    await this.#one('updateService', wireOp({ op: 'ipvs.updateService' }, { op: 'updateService', service }))
  }

  async deleteService(service: ServiceKey): Promise<void> {
    await this.#one('deleteService', wireOp({ op: 'ipvs.deleteService' }, { op: 'deleteService', service }))
  }

  /** One service, or undefined when the kernel has none with that key. */
  async getService(service: ServiceKey): Promise<ServiceRecord | undefined> {
    return this.#sock.call('ipvs.getService', async () => {
      const at = { op: 'ipvs.getService' }
      const wire: IpvsWireOp = { cmd: 'getService', service: serviceKey(at, service) }
      const [result] = await this.#sock.execute('ipvs', this.#family, [wire], at.op)
      if (result!.error === ESRCH) return undefined
      if (result!.error) throw toError(result!, at.op)
      const raw = result!.records.find((r) => r.kind === 'service')
      return raw && serviceRecord(raw)
    })
  }

  /** Every service; with `destinations: true` each carries its destinations (one call for all). */
  async listServices(options: { destinations?: boolean } = {}): Promise<ServiceRecord[]> {
    return this.#sock.call('ipvs.listServices', async () => {
      const op = 'ipvs.listServices'
      v.only({ op }, 'options', v.object({ op }, 'options', options), ['destinations'])
      const withDestinations = options.destinations === undefined ? false : v.boolean({ op }, 'options.destinations', options.destinations)
      const raws = (await this.#one('listServices', { cmd: 'listServices' })).filter((r): r is RawService => r.kind === 'service')
      const services = raws.map(serviceRecord)
      if (!withDestinations || services.length === 0) return services
      // One request per service (the kernel lists destinations of one service at
      // a time), all handed to the socket at once: no round trip through JS between them.
      const wires = raws.map((r): IpvsWireOp => ({ cmd: 'listDests', service: rawKey(r) }))
      const results = await this.#sock.execute('ipvs', this.#family, wires, op)
      results.forEach((res, i) => {
        if (res.error) throw toError(res, op, i)
        services[i]!.destinations = res.records.filter((d): d is RawDest => d.kind === 'destination').map(destinationRecord)
      })
      return services
    })
  }

  async addDestination(service: ServiceKey, destination: DestinationSpec): Promise<void> {
    await this.#one('addDestination', wireOp({ op: 'ipvs.addDestination' }, { op: 'addDestination', service, destination }))
  }

  async updateDestination(service: ServiceKey, destination: DestinationSpec): Promise<void> {
    await this.#one('updateDestination', wireOp({ op: 'ipvs.updateDestination' }, { op: 'updateDestination', service, destination }))
  }

  async deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void> {
    await this.#one('deleteDestination', wireOp({ op: 'ipvs.deleteDestination' }, { op: 'deleteDestination', service, destination }))
  }

  /** The destinations of a service (empty when the service does not exist: that is what the kernel says). */
  async listDestinations(service: ServiceKey): Promise<DestinationRecord[]> {
    const key = serviceKey({ op: 'ipvs.listDestinations' }, service)
    const raws = await this.#one('listDestinations', { cmd: 'listDests', service: key })
    return raws.filter((d): d is RawDest => d.kind === 'destination').map(destinationRecord)
  }

  /**
   * Many operations in one burst. Every operation is validated first (a bad one
   * throws ValidationError with its index and nothing is sent); then each gets
   * its own result, in order: the kernel applies the good ones and refuses the bad.
   */
  async batch(ops: IpvsOp[]): Promise<Outcome[]> {
    return this.#sock.call('ipvs.batch', async () => {
      if (!Array.isArray(ops)) v.fail({ op: 'ipvs.batch' }, 'ops', ops, 'must be an array')
      // Everything is checked before anything is sent, a slice per turn of the loop.
      const wires: IpvsWireOp[] = new Array(ops.length)
      for (let i = 0; i < ops.length; i++) {
        wires[i] = toWire(ops[i]!, i)
        if (i % SLICE === SLICE - 1) await yieldToLoop()
      }
      if (wires.length === 0) return []
      const results = await this.#sock.execute('ipvs', this.#family, wires, 'ipvs.batch')
      return results.map((r, i) => toOutcome(r, `ipvs.${ops[i]!.op}`, i))
    })
  }

  async getInfo(): Promise<IpvsInfo> {
    const info = (await this.#one('getInfo', { cmd: 'getInfo' })).find((r) => r.kind === 'info')
    const code = info!.version
    return { version: `${code >> 16}.${(code >> 8) & 0xff}.${code & 0xff}`, versionCode: code, connTableSize: info!.connTableSize }
  }

  async getTimeouts(): Promise<IpvsTimeouts> {
    const c = (await this.#one('getTimeouts', { cmd: 'getConfig' })).find((r) => r.kind === 'config')
    return { tcp: c!.tcp, tcpFin: c!.tcpFin, udp: c!.udp }
  }

  /** Sets the given timeouts (seconds); the ones not given stay as they are. */
  async setTimeouts(timeouts: Partial<IpvsTimeouts>): Promise<void> {
    const at = { op: 'ipvs.setTimeouts' }
    const t = v.object(at, 'timeouts', timeouts)
    v.only(at, 'timeouts', t, ['tcp', 'tcpFin', 'udp'])
    const wire: Record<string, number> = {}
    for (const k of ['tcp', 'tcpFin', 'udp'] as const)
      if (t[k] !== undefined) wire[k] = v.integer(at, `timeouts.${k}`, t[k], 0, Math.floor(U32_MAX / 1000))
    await this.#one('setTimeouts', { cmd: 'setConfig', timeouts: wire })
  }

  /** Zeroes the counters of one service, or of all. */
  async zero(service?: ServiceKey): Promise<void> {
    await this.#one('zero', wireOp({ op: 'ipvs.zero' }, service === undefined ? { op: 'zero' } : { op: 'zero', service }))
  }

  /** Deletes every service (and so every destination). */
  async flush(): Promise<void> {
    await this.#one('flush', { cmd: 'flush' })
  }

  /** Every call started before it finishes first (all of its requests); later calls reject with EBADF. */
  async close(): Promise<void> {
    await this.#sock.close()
  }
}

function rawKey(r: RawService): WireService {
  return r.fwmark !== undefined ? { af: r.af, fwmark: r.fwmark } : { af: r.af, protocol: r.protocol!, address: r.address!, port: r.port! }
}
