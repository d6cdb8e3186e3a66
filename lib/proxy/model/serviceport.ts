// What the proxiers consume: one ServicePort per port of a proxied service, as
// kube-proxy's serviceToServiceMap / newBaseServiceInfo derive it
// (pkg/proxy/serviceport.go, servicechangetracker.go).
import {
  ANNOTATION_TOPOLOGY_AWARE_HINTS,
  ANNOTATION_TOPOLOGY_MODE,
  type Protocol,
  type ServiceObject,
  type ServiceSpec,
} from './service.js'

/** namespace/name:port with its protocol: the identity of a service port. */
export interface ServicePortName {
  readonly namespace: string
  readonly name: string
  /** The port's name; '' for the single unnamed port. */
  readonly port: string
  readonly protocol: Protocol
}

/** 'default/nginx-basic:http', as kube-proxy writes it in comments and logs ('default/web' for an unnamed port). */
export function servicePortNameString(n: ServicePortName): string {
  return `${n.namespace}/${n.name}${n.port ? `:${n.port}` : ''}`
}

/** The map key of a service port: its name string and protocol, 'default/nginx-basic:http/TCP'. */
export function servicePortKey(n: ServicePortName): string {
  return `${servicePortNameString(n)}/${n.protocol}`
}

/** The service of a service port key: 'default/nginx-basic'. */
export function serviceOfPortKey(key: string): string {
  const slash = key.indexOf('/')
  const end = key.slice(slash + 1).search(/[:/]/)
  return key.slice(0, slash + 1 + end)
}

export interface ServicePort {
  readonly name: ServicePortName
  /** servicePortKey(name). */
  readonly key: string
  readonly type: ServiceSpec['type']
  /** Every cluster IP (one per family), canonical spelling. */
  readonly clusterIPs: readonly string[]
  readonly port: number
  readonly protocol: Protocol
  /** 0: none. */
  readonly nodePort: number
  readonly externalIPs: readonly string[]
  /** status.loadBalancer.ingress IPs in VIP mode (a Proxy-mode ingress is the load balancer's business). */
  readonly loadBalancerVIPs: readonly string[]
  readonly loadBalancerSourceRanges: readonly string[]
  /** ClientIP affinity timeout in seconds; 0: no affinity. */
  readonly stickyMaxAgeSeconds: number
  /** externalTrafficPolicy Local on an externally accessible service. */
  readonly externalPolicyLocal: boolean
  /** internalTrafficPolicy Local. */
  readonly internalPolicyLocal: boolean
  /** Served only for a LoadBalancer with externalTrafficPolicy Local; 0: none. */
  readonly healthCheckNodePort: number
  /** The topology-mode annotation ('Auto' turns zone hints on). */
  readonly hintsAnnotation: string
  readonly trafficDistribution?: string
  /** The service's creationTimestamp (ms since the epoch); absent in most manifests. */
  readonly created?: number
}

/** Reachable from outside the cluster network: a node port, a load-balancer VIP or an external IP. */
export function externallyAccessible(p: ServicePort): boolean {
  return p.nodePort !== 0 || p.loadBalancerVIPs.length > 0 || p.externalIPs.length > 0
}

/** Needs the cluster-wide endpoint set: internal traffic is Cluster, or external traffic exists (short-circuit of Local). */
export function usesClusterEndpoints(p: ServicePort): boolean {
  return !p.internalPolicyLocal || externallyAccessible(p)
}

/** Needs the node-local endpoint set. */
export function usesLocalEndpoints(p: ServicePort): boolean {
  return p.internalPolicyLocal || (p.externalPolicyLocal && externallyAccessible(p))
}

/**
 * The ports of a service, keyed by servicePortKey: empty for a service kube-proxy
 * skips (headless, ExternalName, another proxy's).
 */
export function servicePortsOf(svc: ServiceObject | undefined): Map<string, ServicePort> {
  const out = new Map<string, ServicePort>()
  if (!svc || svc.skip) return out
  const { spec, metadata } = svc
  // apiservice.ExternallyAccessible / ExternalPolicyLocal / NeedsHealthCheck, at the service level.
  const accessible = spec.type === 'NodePort' || spec.type === 'LoadBalancer' || (spec.type === 'ClusterIP' && spec.externalIPs.length > 0)
  const externalPolicyLocal = accessible && spec.externalTrafficPolicy === 'Local'
  const healthCheckNodePort = spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local' ? spec.healthCheckNodePort : 0
  const loadBalancerVIPs = svc.status.loadBalancer.ingress.filter((g) => g.ip !== undefined && g.ipMode !== 'Proxy').map((g) => g.ip!)
  const hintsAnnotation = metadata.annotations[ANNOTATION_TOPOLOGY_MODE] || metadata.annotations[ANNOTATION_TOPOLOGY_AWARE_HINTS] || ''
  for (const p of spec.ports) {
    const name: ServicePortName = { namespace: metadata.namespace, name: metadata.name, port: p.name, protocol: p.protocol }
    const key = servicePortKey(name)
    const sp: { -readonly [K in keyof ServicePort]: ServicePort[K] } = {
      name,
      key,
      type: spec.type,
      clusterIPs: spec.clusterIPs,
      port: p.port,
      protocol: p.protocol,
      nodePort: p.nodePort,
      externalIPs: spec.externalIPs,
      loadBalancerVIPs,
      loadBalancerSourceRanges: spec.loadBalancerSourceRanges,
      stickyMaxAgeSeconds: spec.sessionAffinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP.timeoutSeconds ?? 0) : 0,
      externalPolicyLocal,
      internalPolicyLocal: spec.internalTrafficPolicy === 'Local',
      healthCheckNodePort,
      hintsAnnotation,
    }
    if (spec.trafficDistribution) sp.trafficDistribution = spec.trafficDistribution
    if (metadata.creationTimestamp !== undefined) sp.created = metadata.creationTimestamp
    out.set(key, sp)
  }
  return out
}
