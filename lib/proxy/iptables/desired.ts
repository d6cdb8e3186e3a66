// What one service port asks of the kernel in iptables mode: its rules in the
// shared chains of nat and filter and its own nat chains (KUBE-SVC-, KUBE-SVL-,
// KUBE-EXT-, KUBE-FW-, KUBE-SEP-), as kube-proxy's syncProxyRules writes them.
// Pure: a function of the port, its endpoints and the node.
import type { Rule } from '../../iptables.js'
import type { Family } from '../../validate.js'
import { cidrContains, inFamily } from '../../address.js'
import { nodePortClaim, serverKey } from '../claims.js'
import type { Endpoint } from '../model/endpoints.js'
import { servicePortNameString, type ServicePort } from '../model/serviceport.js'
import { categorizeEndpoints, portPolicy, type TopologyOptions } from '../model/topology.js'
import { comment, endpointChain, portChains } from './tables.js'

/** What one service port adds to one table. */
export interface TablePart {
  /** Its rules in each shared chain (absent: none). */
  readonly shared: ReadonlyMap<string, readonly Rule[]>
  /** Its own chains (nat only), in creation order. */
  readonly chains: ReadonlyMap<string, readonly Rule[]>
}

export interface PortRules {
  readonly nat: TablePart
  readonly filter: TablePart
  readonly noLocalEndpoints: readonly ('internal' | 'external')[]
}

export interface PortContext {
  readonly family: Family
  readonly masqueradeAll: boolean
  /** The pod network of this family; '' when unknown (then only masqueradeAll masquerades off-cluster traffic). */
  readonly clusterCIDR: string
  /** The node's primary address: load-balancer source ranges that cover it let the node in. */
  readonly nodeIP?: string
  readonly topology?: TopologyOptions
  /** Claims (portClaims) another port owns: their rules in the shared chains are left out. */
  readonly lost?: ReadonlySet<string>
}

const EMPTY_PART: TablePart = Object.freeze({ shared: new Map(), chains: new Map() })
export const EMPTY_PORT_RULES: PortRules = Object.freeze({ nat: EMPTY_PART, filter: EMPTY_PART, noLocalEndpoints: [] })

/**
 * The address:ports a port's shared-chain rules match: 'tcp/10.96.0.10:80' for
 * its cluster IP, external and load-balancer IPs, 'tcp/*:30080' for its node
 * port. None when the port has no rules in this family.
 */
export function portClaims(port: ServicePort, family: Family): string[] {
  const clusterIP = port.clusterIPs.find((ip) => inFamily(ip, family))
  if (clusterIP === undefined) return []
  const proto = port.protocol.toLowerCase()
  const out = new Set([serverKey(proto, clusterIP, port.port)])
  for (const ip of port.externalIPs) if (inFamily(ip, family)) out.add(serverKey(proto, ip, port.port))
  for (const ip of port.loadBalancerVIPs) if (inFamily(ip, family)) out.add(serverKey(proto, ip, port.port))
  if (port.nodePort !== 0) out.add(nodePortClaim(proto, port.nodePort))
  return [...out]
}

/** The probability iptables reads back for 1/n: the kernel keeps it in 31 bits. */
export function probability(n: number): number {
  return Math.round(0x80000000 / n) / 0x80000000
}

/** What one service port asks of the kernel: its rules, as kube-proxy's syncProxyRules writes them. */
export function desiredOf(port: ServicePort, endpoints: readonly Endpoint[], ctx: PortContext): PortRules {
  const family = ctx.family
  const clusterIP = port.clusterIPs.find((ip) => inFamily(ip, family))
  if (clusterIP === undefined) return EMPTY_PORT_RULES
  const host = family === 'inet' ? 32 : 128
  const net = (ip: string): string => (ip.includes('/') ? ip : `${ip}/${host}`)
  const eps = endpoints.filter((e) => inFamily(e.ip, family))
  const cat = categorizeEndpoints(eps, port, ctx.topology)
  const proto = port.protocol.toLowerCase() as 'tcp' | 'udp' | 'sctp'
  const spn = servicePortNameString(port.name)
  const names = portChains(port)
  const protoMatch = (dport?: number): Rule['matches'] => [dport === undefined ? { match: proto } : { match: proto, dport }]
  /** `-d ip -p proto -m comment -m proto --dport P`: the canonical order of kube-proxy's service matches. */
  const dst = (ip: string | undefined, text: string, dport: number, extra: Rule['matches'] = []): Rule => {
    const r: Rule = { protocol: proto, matches: [comment(text), ...extra, ...protoMatch(dport)!] }
    if (ip !== undefined) r.destination = net(ip)
    return r
  }

  const nat = { shared: new Map<string, Rule[]>(), chains: new Map<string, Rule[]>() }
  const filter = { shared: new Map<string, Rule[]>(), chains: new Map<string, Rule[]>() }
  const lost = ctx.lost
  const owns = (ip: string | undefined, p: number): boolean => !lost || !lost.has(ip === undefined ? nodePortClaim(proto, p) : serverKey(proto, ip, p))
  const add = (m: Map<string, Rule[]>, chain: string, ...rules: Rule[]): void => {
    let l = m.get(chain)
    if (!l) m.set(chain, (l = []))
    l.push(...rules)
  }
  const { hasEndpoints, usesClusterPolicyChain, usesLocalPolicyChain, hasInternalEndpoints, hasExternalEndpoints, usesExternalChain, externalIPs, lbIPs, sourceRanges, noLocalEndpoints } =
    portPolicy(port, family, cat)
  const internalChain = port.internalPolicyLocal ? names.svl : names.svc
  const externalPolicyChain = port.externalPolicyLocal ? names.svl : names.svc
  const usesFWChain = hasEndpoints && lbIPs.length > 0 && sourceRanges.length > 0
  const lbChain = usesFWChain ? names.fw : names.ext

  let internalFilter: { target: 'REJECT' | 'DROP'; text: string } | undefined
  let externalFilter: { target: 'REJECT' | 'DROP'; text: string } | undefined
  if (!hasEndpoints) internalFilter = externalFilter = { target: 'REJECT', text: `${spn} has no endpoints` }
  else {
    if (!hasInternalEndpoints) internalFilter = { target: 'DROP', text: `${spn} has no local endpoints` }
    if (!hasExternalEndpoints) externalFilter = { target: 'DROP', text: `${spn} has no local endpoints` }
  }
  const filterRule = (r: Rule, f: { target: 'REJECT' | 'DROP' }): Rule => ({ ...r, target: f.target === 'REJECT' ? { target: 'REJECT' } : { target: 'DROP' } })

  // The cluster IP.
  if (!owns(clusterIP, port.port)) {
    // Another service's: nothing in the shared chains.
  } else if (hasInternalEndpoints) add(nat.shared, 'KUBE-SERVICES', { ...dst(clusterIP, `${spn} cluster IP`, port.port), target: { jump: internalChain } })
  else add(filter.shared, 'KUBE-SERVICES', filterRule(dst(clusterIP, internalFilter!.text, port.port), internalFilter!))

  // External IPs.
  for (const ip of externalIPs) {
    if (!owns(ip, port.port)) continue
    if (hasEndpoints) add(nat.shared, 'KUBE-SERVICES', { ...dst(ip, `${spn} external IP`, port.port), target: { jump: names.ext } })
    if (!hasExternalEndpoints) add(filter.shared, 'KUBE-EXTERNAL-SERVICES', filterRule(dst(ip, externalFilter!.text, port.port), externalFilter!))
  }

  // Load-balancer ingress IPs.
  const ownLbIPs = lbIPs.filter((ip) => owns(ip, port.port))
  for (const ip of ownLbIPs) {
    if (hasEndpoints) add(nat.shared, 'KUBE-SERVICES', { ...dst(ip, `${spn} loadbalancer IP`, port.port), target: { jump: lbChain } })
    if (usesFWChain) add(filter.shared, 'KUBE-PROXY-FIREWALL', { ...dst(ip, `${spn} traffic not accepted by ${names.fw}`, port.port), target: { target: 'DROP' } })
  }
  if (!hasExternalEndpoints) for (const ip of ownLbIPs) add(filter.shared, 'KUBE-EXTERNAL-SERVICES', filterRule(dst(ip, externalFilter!.text, port.port), externalFilter!))

  // The node port.
  if (port.nodePort !== 0 && owns(undefined, port.nodePort)) {
    if (hasEndpoints) add(nat.shared, 'KUBE-NODEPORTS', { ...dst(undefined, spn, port.nodePort), target: { jump: names.ext } })
    if (!hasExternalEndpoints)
      add(filter.shared, 'KUBE-EXTERNAL-SERVICES', filterRule(dst(undefined, externalFilter!.text, port.nodePort, [{ match: 'addrtype', dstType: 'LOCAL' }]), externalFilter!))
  }
  // The health check node port is always open.
  if (port.healthCheckNodePort !== 0)
    add(filter.shared, 'KUBE-NODEPORTS', {
      protocol: 'tcp',
      matches: [comment(`${spn} health check node port`), { match: 'tcp', dport: port.healthCheckNodePort }],
      target: { target: 'ACCEPT' },
    })

  if (!hasEndpoints) return { nat, filter, noLocalEndpoints }

  // Masquerade off-cluster traffic to the cluster IP: it may have been routed here from off the node.
  if (hasInternalEndpoints) {
    const masq = { ...dst(clusterIP, `${spn} cluster IP`, port.port), target: { jump: 'KUBE-MARK-MASQ' } }
    if (ctx.masqueradeAll) add(nat.chains, internalChain, masq)
    else if (ctx.clusterCIDR) add(nat.chains, internalChain, { source: { not: ctx.clusterCIDR }, ...masq })
  }

  // External traffic: everything jumps to KUBE-EXT-, which handles the special cases.
  if (usesExternalChain) {
    add(nat.chains, names.ext)
    if (!port.externalPolicyLocal) {
      add(nat.chains, names.ext, { matches: [comment(`masquerade traffic for ${spn} external destinations`)], target: { jump: 'KUBE-MARK-MASQ' } })
    } else {
      // Pods reaching an external destination of the service are subject to
      // neither policy (as if they went out to the load balancer and back).
      if (ctx.clusterCIDR && usesClusterPolicyChain)
        add(nat.chains, names.ext, { source: ctx.clusterCIDR, matches: [comment(`pod traffic for ${spn} external destinations`)], target: { jump: names.svc } })
      // The node itself: its source address is local, so it needs masquerading and all endpoints.
      add(nat.chains, names.ext, {
        matches: [comment(`masquerade LOCAL traffic for ${spn} external destinations`), { match: 'addrtype', srcType: 'LOCAL' }],
        target: { jump: 'KUBE-MARK-MASQ' },
      })
      if (usesClusterPolicyChain)
        add(nat.chains, names.ext, {
          matches: [comment(`route LOCAL traffic for ${spn} external destinations`), { match: 'addrtype', srcType: 'LOCAL' }],
          target: { jump: names.svc },
        })
    }
    if (hasExternalEndpoints) add(nat.chains, names.ext, { target: { jump: externalPolicyChain } })
  }

  // The firewall of load-balancer source ranges; what falls through is dropped in filter KUBE-PROXY-FIREWALL.
  if (usesFWChain) {
    const text = `${spn} loadbalancer IP`
    let allowFromNode = false
    for (const r of sourceRanges) {
      add(nat.chains, names.fw, { source: net(r), matches: [comment(text)], target: { jump: names.ext } })
      if (ctx.nodeIP && cidrContains(r, ctx.nodeIP)) allowFromNode = true
    }
    if (allowFromNode) for (const ip of lbIPs) add(nat.chains, names.fw, { source: net(ip), matches: [comment(text)], target: { jump: names.ext } })
    add(nat.chains, names.fw, { matches: [comment(`other traffic to ${spn} will be dropped by KUBE-PROXY-FIREWALL`)] })
  }

  const sep = new Map<Endpoint, string>()
  const sepOf = (e: Endpoint): string => {
    let c = sep.get(e)
    if (!c) sep.set(e, (c = endpointChain(port, e.key)))
    return c
  }
  const toEndpoints = (chain: string, list: readonly Endpoint[]): void => {
    const sticky = port.stickyMaxAgeSeconds
    if (sticky > 0)
      for (const e of list)
        add(nat.chains, chain, {
          matches: [comment(`${spn} -> ${e.key}`), { match: 'recent', command: 'rcheck', name: sepOf(e), seconds: sticky, reap: true }],
          target: { jump: sepOf(e) },
        })
    const n = list.length
    list.forEach((e, i) => {
      const matches: Rule['matches'] = [comment(`${spn} -> ${e.key}`)]
      if (i < n - 1) matches.push({ match: 'statistic', mode: 'random', probability: probability(n - i) })
      add(nat.chains, chain, { matches, target: { jump: sepOf(e) } })
    })
  }
  if (usesClusterPolicyChain) toEndpoints(names.svc, cat.clusterEndpoints)
  if (usesLocalPolicyChain) toEndpoints(names.svl, cat.localEndpoints)

  for (const e of cat.allReachableEndpoints) {
    const c = sepOf(e)
    add(nat.chains, c, { source: net(e.ip), matches: [comment(spn)], target: { jump: 'KUBE-MARK-MASQ' } })
    const matches: Rule['matches'] = [comment(spn)]
    if (port.stickyMaxAgeSeconds > 0) matches.push({ match: 'recent', command: 'set', name: c })
    matches.push(...protoMatch()!)
    add(nat.chains, c, { protocol: proto, matches, target: { target: 'DNAT', toDestination: e.key } })
  }
  return { nat, filter, noLocalEndpoints }
}
