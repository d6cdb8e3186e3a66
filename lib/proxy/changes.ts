// Change tracking between the sources and the proxier, as kube-proxy's
// ServiceChangeTracker and EndpointsChangeTracker do it
// (pkg/proxy/servicechangetracker.go, endpointschangetracker.go):
//  - every event is recorded as {previous, current} per object; repeated updates
//    before a sync merge (previous stays the state last applied);
//  - a change that ends where it started (A -> B -> A) is dropped at once;
//  - apply() folds the pending changes into the applied state and returns the
//    service ports whose kernel state must change, so a sync touches only those,
//    plus what conntrack cleanup needs (UDP cluster IPs and endpoints that went).
import type { EndpointSlice } from './model/endpointslice.js'
import { sliceServiceKey } from './model/endpointslice.js'
import { endpointsOf, type Endpoint } from './model/endpoints.js'
import { samePlain } from './model/fields.js'
import { serviceKey, type ServiceObject } from './model/service.js'
import { servicePortsOf, type ServicePort } from './model/serviceport.js'

type PortMap = Map<string, ServicePort>

export interface ServiceUpdateResult {
  /** Service port keys added, removed or changed. */
  readonly changedPorts: Set<string>
  /** The services ('namespace/name') those ports belong to. */
  readonly services: Set<string>
  /** Cluster IPs of UDP ports that went away: their conntrack entries are stale. */
  readonly deletedUDPClusterIPs: Set<string>
}

/** Services: {previous, current} port maps per service, folded into the applied map on apply(). */
export class ServiceChangeTracker {
  readonly #ports = new Map<string, ServicePort>()
  /**
   * The applied port keys of each service, the ports themselves in #ports: an
   * exact-size array (a Map per service cost ~270 bytes, 2.7 MB at 10k services).
   */
  readonly #byService = new Map<string, readonly string[]>()
  readonly #pending = new Map<string, { previous: ReadonlyMap<string, ServicePort>; current: PortMap }>()

  /**
   * Records an add (previous undefined), update, or delete (current undefined).
   * The `previous` object only names the service: what was applied is known here.
   * Returns whether the service now has a pending change.
   */
  update(previous: ServiceObject | undefined, current: ServiceObject | undefined): boolean {
    if (previous && current && serviceKey(previous) !== serviceKey(current)) {
      this.update(previous, undefined)
      return this.update(undefined, current)
    }
    const obj = current ?? previous
    if (!obj) return false
    const key = serviceKey(obj)
    const before = this.#pending.get(key)?.previous ?? this.portsOf(key)
    const after = servicePortsOf(current)
    if (samePortMaps(before, after)) this.#pending.delete(key)
    else this.#pending.set(key, { previous: before, current: after })
    return this.#pending.has(key)
  }

  /** How many services have a pending change. */
  get pending(): number {
    return this.#pending.size
  }

  /** The pending change of a service, if any (for tests and status). */
  pendingChange(service: string): { readonly previous: ReadonlyMap<string, ServicePort>; readonly current: ReadonlyMap<string, ServicePort> } | undefined {
    return this.#pending.get(service)
  }

  /** Folds every pending change into the applied map; returns what changed. */
  apply(): ServiceUpdateResult {
    const result: ServiceUpdateResult = { changedPorts: new Set(), services: new Set(), deletedUDPClusterIPs: new Set() }
    for (const [svc, { previous, current }] of this.#pending) {
      for (const [key, was] of previous) {
        const now = current.get(key)
        if (now && samePlain(was, now)) continue
        result.changedPorts.add(key)
        this.#ports.delete(key)
        if (!now && was.protocol === 'UDP') for (const ip of was.clusterIPs) result.deletedUDPClusterIPs.add(ip)
      }
      for (const [key, now] of current) {
        const was = previous.get(key)
        if (!was || !samePlain(was, now)) result.changedPorts.add(key)
        this.#ports.set(key, now)
      }
      result.services.add(svc)
      if (current.size > 0) this.#byService.set(svc, Array.from(current.keys()))
      else this.#byService.delete(svc)
    }
    this.#pending.clear()
    return result
  }

  /** The applied service ports, by service port key. */
  get ports(): ReadonlyMap<string, ServicePort> {
    return this.#ports
  }

  /** The applied ports of one service ('namespace/name'). */
  portsOf(service: string): ReadonlyMap<string, ServicePort> {
    const keys = this.#byService.get(service)
    if (!keys) return EMPTY_PORTS
    const out: PortMap = new Map()
    for (const k of keys) out.set(k, this.#ports.get(k)!)
    return out
  }
}

const EMPTY_PORTS: ReadonlyMap<string, ServicePort> = new Map()

function samePortMaps(a: ReadonlyMap<string, ServicePort>, b: ReadonlyMap<string, ServicePort>): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (!samePlain(v, b.get(k))) return false
  return true
}

/** A UDP endpoint that stopped receiving traffic: conntrack entries toward it are stale. */
export interface StaleEndpoint {
  readonly servicePort: string
  /** The endpoint's key, 'ip:port'. */
  readonly endpoint: string
  readonly ip: string
  readonly port: number
}

export interface EndpointsUpdateResult {
  /** Service port keys whose endpoints changed. */
  readonly changedPorts: Set<string>
  /** The services ('namespace/name') whose slices changed. */
  readonly services: Set<string>
  /** UDP endpoints that were serving and no longer are (or are gone). */
  readonly deletedUDPEndpoints: StaleEndpoint[]
  /** UDP service ports that went from no serving endpoint to some (blackholing conntrack entries to clear). */
  readonly newlyActiveUDPServices: string[]
  /** Per changed service, the earliest time (ms since the epoch) a change behind this sync happened. */
  readonly triggerTimes: Map<string, number>
}

export interface EndpointsChangeTrackerOptions {
  /** This node's name: endpoints whose nodeName equals it are local. */
  nodeName?: string
  /** The clock for trigger times of slices without the last-change-trigger-time annotation. */
  now?: () => number
}

/** EndpointSlices: applied and pending slices per service, endpoints per service port on apply(). */
export class EndpointsChangeTracker {
  readonly nodeName: string | undefined
  readonly #now: () => number
  /**
   * The applied slices of each service: the slice itself when there is one (nearly
   * always), else by name (a Map per service cost ~270 bytes, 2.7 MB at 10k services).
   */
  readonly #slices = new Map<string, EndpointSlice | Map<string, EndpointSlice>>()
  readonly #pending = new Map<string, Map<string, EndpointSlice | null>>()
  readonly #triggers = new Map<string, number>()
  readonly #endpoints = new Map<string, Endpoint[]>()
  /** The service port keys each service has endpoints for: an exact-size array (a Set per service costs ~4× as much). */
  readonly #portsByService = new Map<string, readonly string[]>()

  constructor(options: EndpointsChangeTrackerOptions = {}) {
    this.nodeName = options.nodeName
    this.#now = options.now ?? Date.now
  }

  /**
   * Records an add (previous undefined), update, or delete (current undefined) of a slice.
   * Returns whether the slice's service now has a pending change.
   */
  update(previous: EndpointSlice | undefined, current: EndpointSlice | undefined): boolean {
    if (previous && current && (sliceServiceKey(previous) !== sliceServiceKey(current) || previous.metadata.name !== current.metadata.name)) {
      this.update(previous, undefined)
      return this.update(undefined, current)
    }
    const slice = current ?? previous
    if (!slice) return false
    const svc = sliceServiceKey(slice)
    const name = slice.metadata.name
    const held = this.#slices.get(svc)
    const applied = (held instanceof Map ? held.get(name) : held?.metadata.name === name ? held : undefined) ?? null
    const next = current ?? null
    let pending = this.#pending.get(svc)
    if (sameSlice(applied, next)) {
      if (pending) {
        pending.delete(name)
        if (pending.size === 0) {
          this.#pending.delete(svc)
          this.#triggers.delete(svc)
        }
      }
    } else {
      if (!pending) this.#pending.set(svc, (pending = new Map()))
      pending.set(name, next)
      const at = current?.triggerTime ?? this.#now()
      const was = this.#triggers.get(svc)
      if (was === undefined || at < was) this.#triggers.set(svc, at)
    }
    return this.#pending.has(svc)
  }

  /** How many services have pending slice changes. */
  get pending(): number {
    return this.#pending.size
  }

  /** Folds every pending slice into the applied state; returns what changed. */
  apply(): EndpointsUpdateResult {
    const result: EndpointsUpdateResult = {
      changedPorts: new Set(),
      services: new Set(),
      deletedUDPEndpoints: [],
      newlyActiveUDPServices: [],
      triggerTimes: new Map(),
    }
    for (const [svc, changes] of this.#pending) {
      const slices = new Map(this.slicesOf(svc))
      for (const [name, slice] of changes) {
        if (slice) slices.set(name, slice)
        else slices.delete(name)
      }
      if (slices.size > 1) this.#slices.set(svc, slices)
      else if (slices.size === 1) this.#slices.set(svc, slices.values().next().value!)
      else this.#slices.delete(svc)

      const after = endpointsOf(slices.values(), this.nodeName)
      const keys = new Set([...(this.#portsByService.get(svc) ?? []), ...after.keys()])
      let changed = false
      for (const key of keys) {
        const was = this.#endpoints.get(key) ?? []
        const now = after.get(key) ?? []
        if (samePlain(was, now)) continue
        changed = true
        result.changedPorts.add(key)
        if (key.endsWith('/UDP')) staleUDP(key, was, now, result)
        if (now.length > 0) this.#endpoints.set(key, now)
        else this.#endpoints.delete(key)
      }
      if (after.size > 0) this.#portsByService.set(svc, Array.from(after.keys()).slice())
      else this.#portsByService.delete(svc)
      result.services.add(svc)
      const at = this.#triggers.get(svc)
      if (changed && at !== undefined) result.triggerTimes.set(svc, at)
    }
    this.#pending.clear()
    this.#triggers.clear()
    return result
  }

  /** The applied endpoints of a service port key ([] when it has none). */
  endpoints(servicePort: string): readonly Endpoint[] {
    return this.#endpoints.get(servicePort) ?? NO_ENDPOINTS
  }

  /** Every applied endpoint list, by service port key. */
  get endpointsMap(): ReadonlyMap<string, readonly Endpoint[]> {
    return this.#endpoints
  }

  /** The applied slices of one service ('namespace/name'). */
  slicesOf(service: string): ReadonlyMap<string, EndpointSlice> {
    const held = this.#slices.get(service)
    return held === undefined ? EMPTY_SLICES : held instanceof Map ? held : new Map([[held.metadata.name, held]])
  }
}

const NO_ENDPOINTS: readonly Endpoint[] = Object.freeze([])
const EMPTY_SLICES: ReadonlyMap<string, EndpointSlice> = new Map()

/** What of a slice decides endpoints; metadata (resourceVersion, annotations) does not. */
function sameSlice(a: EndpointSlice | null, b: EndpointSlice | null): boolean {
  if (a === null || b === null) return a === b
  return (
    a.serviceName === b.serviceName &&
    a.addressType === b.addressType &&
    a.skip === b.skip &&
    samePlain(a.endpoints, b.endpoints) &&
    samePlain(a.ports, b.ports)
  )
}

/** kube-proxy's detectStaleConntrackEntries for one UDP service port. */
function staleUDP(key: string, was: readonly Endpoint[], now: readonly Endpoint[], result: EndpointsUpdateResult): void {
  const servingNow = new Set(now.filter((e) => e.serving).map((e) => e.key))
  let servingBefore = 0
  for (const e of was) {
    if (!e.serving) continue // never sent traffic: nothing stale
    servingBefore++
    if (!servingNow.has(e.key)) result.deletedUDPEndpoints.push({ servicePort: key, endpoint: e.key, ip: e.ip, port: e.port })
  }
  if (servingBefore === 0 && servingNow.size > 0) result.newlyActiveUDPServices.push(key)
}

/** What one sync must do: the union of both trackers' changes. */
export interface ProxyChanges {
  /**
   * Service port keys whose kernel state must be recomputed: ports added, removed
   * or changed, and ports of existing services whose endpoints changed.
   */
  readonly servicePorts: Set<string>
  readonly services: ServiceUpdateResult
  readonly endpoints: EndpointsUpdateResult
}

/** Applies both trackers and returns the service ports a sync must touch. */
export function applyChanges(services: ServiceChangeTracker, endpoints: EndpointsChangeTracker): ProxyChanges {
  const s = services.apply()
  const e = endpoints.apply()
  const servicePorts = new Set(s.changedPorts)
  // Endpoints of a port with no service make no rules (yet): when the service
  // arrives its ports are in the service changes.
  for (const key of e.changedPorts) if (services.ports.has(key)) servicePorts.add(key)
  return { servicePorts, services: s, endpoints: e }
}

/** The sink a source feeds: the two trackers. */
export interface ChangeSink {
  service(previous: ServiceObject | undefined, current: ServiceObject | undefined): void
  endpointSlice(previous: EndpointSlice | undefined, current: EndpointSlice | undefined): void
}

export function trackerSink(services: ServiceChangeTracker, endpoints: EndpointsChangeTracker): ChangeSink {
  return {
    service: (previous, current) => void services.update(previous, current),
    endpointSlice: (previous, current) => void endpoints.update(previous, current),
  }
}
