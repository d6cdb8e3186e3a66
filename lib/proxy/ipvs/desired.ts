// What one service port asks of the kernel in IPVS mode, as kube-proxy's
// syncService/syncEndpoint decide it: its virtual servers (cluster IPs, external
// IPs, load-balancer IPs, node ports on each node address) with their real
// servers, the VIPs bound on kube-ipvs0, and its entries in the ipsets. Pure: a
// function of the port, its endpoints and the node.
import { cidrContains, inFamily } from '../../address.js'
import type { IpSetEntry } from '../../ipset.js'
import type { IpvsProtocol, ServiceSpec as IpvsServiceSpec } from '../../ipvs.js'
import type { Family } from '../../validate.js'
import type { Endpoint } from '../model/endpoints.js'
import type { ServicePort } from '../model/serviceport.js'
import { categorizeEndpoints, type TopologyOptions } from '../model/topology.js'
import { setName, type SetRole } from './netfilter.js'
import { nodePortClaim, serverKey } from '../claims.js'

/** The weight of every real server kube-proxy's IPVS mode programs. */
export const WEIGHT = 1

export interface VirtualServer {
  /** 'tcp/10.96.0.10/80', '[fd00::1]' style for IPv6: the identity of a virtual server. */
  readonly key: string
  readonly spec: IpvsServiceSpec & { protocol: IpvsProtocol; address: string; port: number }
  /** Its real servers (masq, weight WEIGHT), sorted by key; shared by the servers of a port with the same policy. */
  readonly endpoints: readonly Endpoint[]
  /** The service port it serves (for status and logs). */
  readonly servicePort: string
}

export interface SetEntry {
  readonly set: string
  /** The entry's identity inside its set. */
  readonly key: string
  readonly entry: IpSetEntry
}

/**
 * One address:port a port asks for: a virtual server and its set entries, or
 * (key 'tcp/*:30080') the node-port set entries. Two ports may claim the same
 * key; only the owner's part reaches the kernel (../claims.ts).
 */
export interface Claim {
  readonly key: string
  readonly server?: VirtualServer
  readonly entries: readonly SetEntry[]
}

export interface Contribution {
  /** At most one per key. */
  readonly claims: readonly Claim[]
  /** Entries of no particular address:port: hairpin, KUBE-IPVS-IPS, the health check node port. */
  readonly entries: readonly SetEntry[]
  /** VIPs to bind on kube-ipvs0. */
  readonly addresses: readonly string[]
  /** Traffic policies left with no local endpoint (kube-proxy's no_local_endpoints metric). */
  readonly noLocalEndpoints: readonly ('internal' | 'external')[]
}

export interface NodeContext {
  readonly family: Family
  /** The IPVS scheduler ('rr', ...). */
  readonly scheduler: string
  /** Addresses node ports listen on. */
  readonly nodePortAddresses: readonly string[]
  /** Every address of the node (for load-balancer source ranges that include the node). */
  readonly nodeAddresses: readonly string[]
  readonly topology?: TopologyOptions
}

export const EMPTY_CONTRIBUTION: Contribution = Object.freeze({ claims: [], entries: [], addresses: [], noLocalEndpoints: [] })

const PROTO: Record<ServicePort['protocol'], IpvsProtocol> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' }

/** What one service port asks of the kernel: its objects in one address family. */
export function desiredOf(port: ServicePort, endpoints: readonly Endpoint[], ctx: NodeContext): Contribution {
  const family = ctx.family
  const clusterIPs = port.clusterIPs.filter((ip) => inFamily(ip, family))
  if (clusterIPs.length === 0) return EMPTY_CONTRIBUTION
  // The tracker's own list when every endpoint is of this family (the usual case): no copy.
  const eps = endpoints.every((e) => inFamily(e.ip, family)) ? endpoints : endpoints.filter((e) => inFamily(e.ip, family))
  const cat = categorizeEndpoints(eps, port, ctx.topology)
  // A server's real servers: `eps` itself when all of them are (a filter that kept every
  // element is the same list), else an exact-size copy; either way nothing is kept twice.
  const kept = (list: readonly Endpoint[]): readonly Endpoint[] => (list.length === eps.length ? eps : list.length === 0 ? NONE : list.slice())
  const protocol = PROTO[port.protocol]
  const claims: Claim[] = []
  const entries: SetEntry[] = []
  const addresses: string[] = []
  const noLocalEndpoints: ('internal' | 'external')[] = []
  const entry = (to: SetEntry[], role: SetRole, e: IpSetEntry, key: string): void => void to.push({ set: setName(role, family), key, entry: e })
  const ipPort = (to: SetEntry[], role: SetRole, ip: string): void => entry(to, role, { ip, protocol, port: port.port }, `${ip},${protocol}:${port.port}`)

  const internal = kept(port.internalPolicyLocal ? cat.localEndpoints : cat.clusterEndpoints)
  const external = port.internalPolicyLocal === port.externalPolicyLocal ? internal : kept(port.externalPolicyLocal ? cat.localEndpoints : cat.clusterEndpoints)
  if (cat.hasAnyEndpoints && port.internalPolicyLocal && cat.localEndpoints.length === 0) noLocalEndpoints.push('internal')
  if (cat.hasAnyEndpoints && port.externalPolicyLocal && cat.localEndpoints.length === 0) noLocalEndpoints.push('external')

  const seen = new Set<string>()
  /** A claim on a virtual server; undefined when this port already claims it (an external IP that is also its cluster IP): the first kind wins. */
  const server = (address: string, p: number, endpoints: readonly Endpoint[]): SetEntry[] | undefined => {
    const key = serverKey(protocol, address, p)
    if (seen.has(key)) return undefined
    seen.add(key)
    const spec: VirtualServer['spec'] = { protocol, address, port: p, scheduler: ctx.scheduler }
    if (port.stickyMaxAgeSeconds > 0) {
      spec.persistent = true
      spec.timeout = port.stickyMaxAgeSeconds
      spec.netmask = family === 'inet' ? 32 : 128
    }
    const to: SetEntry[] = []
    claims.push({ key, server: { key, spec, endpoints, servicePort: port.key }, entries: to })
    return to
  }

  for (const ip of clusterIPs) {
    const to = server(ip, port.port, internal)
    if (!to) continue
    addresses.push(ip)
    ipPort(to, 'clusterIP', ip)
  }
  // Hairpin: a pod reaching itself through a VIP is masqueraded, or its reply
  // would skip IPVS. Only this node's endpoints can hairpin here.
  for (const e of eps) if (e.isLocal) entry(entries, 'loopBack', { ip: e.ip, protocol, port: e.port, ip2: e.ip }, `${e.ip},${protocol}:${e.port},${e.ip}`)

  for (const ip of port.externalIPs.filter((x) => inFamily(x, family))) {
    const to = server(ip, port.port, external)
    if (!to) continue
    addresses.push(ip)
    ipPort(to, port.externalPolicyLocal ? 'externalIPLocal' : 'externalIP', ip)
  }

  for (const ip of port.loadBalancerVIPs.filter((x) => inFamily(x, family))) {
    const to = server(ip, port.port, external)
    if (!to) continue
    addresses.push(ip)
    ipPort(to, 'loadBalancer', ip)
    if (port.externalPolicyLocal) ipPort(to, 'loadBalancerLocal', ip)
    const ranges = port.loadBalancerSourceRanges.filter((r) => inFamily(r, family))
    if (ranges.length > 0) {
      ipPort(to, 'loadBalancerFW', ip)
      for (const net of ranges) entry(to, 'loadBalancerSourceCIDR', { ip, protocol, port: port.port, net }, `${ip},${protocol}:${port.port},${net}`)
      // The node may reach its own load balancer when a range covers it.
      if (ctx.nodeAddresses.some((n) => ranges.some((r) => cidrContains(r, n))))
        entry(to, 'loadBalancerSourceIP', { ip, protocol, port: port.port, ip2: ip }, `${ip},${protocol}:${port.port},${ip}`)
    }
  }

  if (port.nodePort !== 0) {
    const np = port.nodePort
    for (const ip of ctx.nodePortAddresses) if (inFamily(ip, family)) server(ip, np, external)
    // The node-port sets match every node address at once: their own claim.
    const to: SetEntry[] = []
    claims.push({ key: nodePortClaim(protocol, np), entries: to })
    if (protocol === 'sctp') {
      for (const ip of ctx.nodePortAddresses.filter((x) => inFamily(x, family))) {
        entry(to, 'nodePortSCTP', { ip, protocol, port: np }, `${ip},sctp:${np}`)
        if (port.externalPolicyLocal) entry(to, 'nodePortLocalSCTP', { ip, protocol, port: np }, `${ip},sctp:${np}`)
      }
    } else {
      const [all, local]: [SetRole, SetRole] = protocol === 'tcp' ? ['nodePortTCP', 'nodePortLocalTCP'] : ['nodePortUDP', 'nodePortLocalUDP']
      entry(to, all, { port: np }, String(np))
      if (port.externalPolicyLocal) entry(to, local, { port: np }, String(np))
    }
  }

  if (port.healthCheckNodePort !== 0) entry(entries, 'healthCheckNodePort', { port: port.healthCheckNodePort }, String(port.healthCheckNodePort))
  for (const ip of addresses) entry(entries, 'ipvsIPs', { ip }, ip)
  // Kept until the port changes: exact-size arrays (a pushed-to array has room for 16 more).
  return {
    claims: claims.map((c) => (c.server ? { key: c.key, server: c.server, entries: exact(c.entries) } : { key: c.key, entries: exact(c.entries) })),
    entries: exact(entries),
    addresses: exact(addresses),
    noLocalEndpoints: exact(noLocalEndpoints),
  }
}

const NONE: readonly never[] = Object.freeze([])

function exact<T>(list: readonly T[]): readonly T[] {
  return list.length === 0 ? NONE : list.slice()
}
