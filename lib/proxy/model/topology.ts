// Which endpoints a service port sends traffic to, as kube-proxy's
// CategorizeEndpoints decides it (pkg/proxy/topology.go):
//  - Cluster traffic goes to the ready endpoints (filtered by zone hints when
//    topology aware routing applies); if none is ready anywhere, to the ones that
//    are serving and terminating, so a rolling update never blackholes a service.
//  - Local traffic (internalTrafficPolicy Local, or externalTrafficPolicy Local on
//    an externally reachable port) goes to this node's ready endpoints; if there
//    are none, to its serving+terminating ones; if none either, nowhere (the
//    proxier drops it, or — for external traffic — the load balancer's health
//    check steers away from this node).
// Pure: the same inputs give the same lists, in the order of `endpoints`.
import { inFamily } from '../../address.js'
import type { Family } from '../../validate.js'
import type { Endpoint } from './endpoints.js'
import { usesClusterEndpoints, usesLocalEndpoints, type ServicePort } from './serviceport.js'

export interface CategorizedEndpoints {
  /** For traffic under the Cluster policy; empty when the port uses only Local endpoints. */
  readonly clusterEndpoints: readonly Endpoint[]
  /** For traffic under the Local policy; empty when the port uses none or this node has none usable. */
  readonly localEndpoints: readonly Endpoint[]
  /** The union: every endpoint some traffic may reach (what gets programmed). */
  readonly allReachableEndpoints: readonly Endpoint[]
  /** Whether any endpoint anywhere could take traffic (ready, or serving and terminating). */
  readonly hasAnyEndpoints: boolean
}

export interface TopologyOptions {
  /** This node's topology.kubernetes.io/zone label; without it zone hints are not used. */
  nodeZone?: string
}

/** kube-proxy's CategorizeEndpoints, from its documented behaviour. */
export function categorizeEndpoints(endpoints: readonly Endpoint[], port: ServicePort, options: TopologyOptions = {}): CategorizedEndpoints {
  let clusterEndpoints: Endpoint[] = []
  let localEndpoints: Endpoint[] = []
  let hasAnyEndpoints = false
  let useTopology = false

  if (usesClusterEndpoints(port)) {
    useTopology = canUseTopology(endpoints, port, options.nodeZone)
    clusterEndpoints = endpoints.filter((ep) => ep.ready && (!useTopology || ep.zoneHints.includes(options.nodeZone!)))
    // No ready endpoint anywhere (topology was already given up when none were
    // ready in this zone): fall back to serving, terminating ones.
    if (clusterEndpoints.length === 0) clusterEndpoints = endpoints.filter((ep) => ep.serving && ep.terminating)
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true
  }

  if (!usesLocalEndpoints(port)) return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints }

  let hasLocalReady = false
  let hasLocalServingTerminating = false
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAnyEndpoints = true
      if (ep.isLocal) hasLocalReady = true
    } else if (ep.serving && ep.terminating) {
      hasAnyEndpoints = true
      if (ep.isLocal) hasLocalServingTerminating = true
    }
  }
  let localServingTerminating = false
  if (hasLocalReady) {
    localEndpoints = endpoints.filter((ep) => ep.isLocal && ep.ready)
  } else if (hasLocalServingTerminating) {
    localServingTerminating = true
    localEndpoints = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating)
  }

  if (!usesClusterEndpoints(port)) return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints, hasAnyEndpoints }

  // Both policies in use. Without topology and with ready local endpoints, the
  // cluster set already holds every local one.
  if (!useTopology && !localServingTerminating) return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints }
  const union = new Set<Endpoint>([...clusterEndpoints, ...localEndpoints])
  const allReachableEndpoints = endpoints.filter((ep) => union.has(ep))
  return { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints }
}

/**
 * Zone hints apply when the service asks for them (trafficDistribution set, or the
 * topology-mode annotation 'Auto'), this node's zone is known, every ready
 * endpoint carries hints, and at least one is hinted for this zone.
 */
export function canUseTopology(endpoints: readonly Endpoint[], port: ServicePort, nodeZone: string | undefined): boolean {
  if (port.trafficDistribution === undefined && port.hintsAnnotation !== 'Auto' && port.hintsAnnotation !== 'auto') return false
  if (!nodeZone) return false
  let hasEndpointForZone = false
  for (const ep of endpoints) {
    if (!ep.ready) continue
    if (ep.zoneHints.length === 0) return false
    if (ep.zoneHints.includes(nodeZone)) hasEndpointForZone = true
  }
  return hasEndpointForZone
}

/**
 * The per-port decisions kube-proxy's iptables and nftables modes share
 * (syncProxyRules): which traffic has endpoints under its policy, whether the
 * port is reachable from outside the cluster and needs an external chain, and
 * the port's external IPs, load-balancer IPs and source ranges of `family`.
 */
export interface PortPolicy {
  readonly hasEndpoints: boolean
  readonly usesClusterPolicyChain: boolean
  readonly usesLocalPolicyChain: boolean
  /** Cluster IP traffic has an endpoint (false: internalTrafficPolicy Local without a local one). */
  readonly hasInternalEndpoints: boolean
  /** External traffic has an endpoint (false: externalTrafficPolicy Local without a local one). */
  readonly hasExternalEndpoints: boolean
  /** A node port, a load-balancer IP or an external IP. */
  readonly accessible: boolean
  readonly usesExternalChain: boolean
  readonly externalIPs: readonly string[]
  readonly lbIPs: readonly string[]
  readonly sourceRanges: readonly string[]
  /** What has endpoints only elsewhere (kube-proxy's "no local endpoints" metric). */
  readonly noLocalEndpoints: readonly ('internal' | 'external')[]
}

export function portPolicy(port: ServicePort, family: Family, cat: CategorizedEndpoints): PortPolicy {
  const hasEndpoints = cat.hasAnyEndpoints
  const noLocal = cat.localEndpoints.length === 0
  const hasInternalEndpoints = hasEndpoints && !(port.internalPolicyLocal && noLocal)
  const hasExternalEndpoints = hasEndpoints && !(port.externalPolicyLocal && noLocal)
  const accessible = port.nodePort !== 0 || port.loadBalancerVIPs.length > 0 || port.externalIPs.length > 0
  const noLocalEndpoints: ('internal' | 'external')[] = []
  if (hasEndpoints && !hasInternalEndpoints) noLocalEndpoints.push('internal')
  if (hasEndpoints && !hasExternalEndpoints && accessible) noLocalEndpoints.push('external')
  return {
    hasEndpoints,
    usesClusterPolicyChain: cat.clusterEndpoints.length > 0,
    usesLocalPolicyChain: cat.localEndpoints.length > 0,
    hasInternalEndpoints,
    hasExternalEndpoints,
    accessible,
    usesExternalChain: hasEndpoints && accessible,
    externalIPs: port.externalIPs.filter((ip) => inFamily(ip, family)),
    lbIPs: port.loadBalancerVIPs.filter((ip) => inFamily(ip, family)),
    sourceRanges: port.loadBalancerSourceRanges.filter((r) => inFamily(r, family)),
    noLocalEndpoints,
  }
}
