// v1 Service, read from a plain JSON object (a manifest, an API response) into a
// typed record with the API server's defaults applied. A bad object throws one
// ValidationError naming the field ('spec.ports[1].port'): it is refused whole,
// never half-read. Services kube-proxy does not proxy come back as a
// SkippedService that says why.
import { cidr, dns1035Label, dns1123Label, fail, ianaServiceName, int, ip, ipFamilyOf, metadata, object, oneOf, optArray, optBool, optObject, optStr, typeMeta, type IPFamily, type ObjectMeta, type Where } from './fields.js'

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const
export type Protocol = (typeof PROTOCOLS)[number]
export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const
export type ServiceType = (typeof SERVICE_TYPES)[number]
export type TrafficPolicy = 'Cluster' | 'Local'
export type SessionAffinity = 'None' | 'ClientIP'
export type IPFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack'

/** Services carrying this label belong to another proxy; kube-proxy's informers never see them. */
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name'
/** Set by the EndpointSlice controller on the slices of headless services. */
export const LABEL_HEADLESS = 'service.kubernetes.io/headless'
/** The annotation form of loadBalancerSourceRanges, used when the field is empty. */
export const ANNOTATION_LB_SOURCE_RANGES = 'service.beta.kubernetes.io/load-balancer-source-ranges'
/** Topology aware routing: 'Auto' turns on zone hints (the older name below is read when it is absent). */
export const ANNOTATION_TOPOLOGY_MODE = 'service.kubernetes.io/topology-mode'
export const ANNOTATION_TOPOLOGY_AWARE_HINTS = 'service.kubernetes.io/topology-aware-hints'
/** The API server's default for sessionAffinityConfig.clientIP.timeoutSeconds (3 hours). */
export const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS = 10800
export const MAX_CLIENT_IP_TIMEOUT_SECONDS = 86400

export interface ServicePortSpec {
  /** '' only when the service has a single port. */
  readonly name: string
  readonly protocol: Protocol
  readonly port: number
  /** A port number or the name of a container port; defaults to `port`. */
  readonly targetPort: number | string
  /** 0: none. */
  readonly nodePort: number
  readonly appProtocol?: string
}

export interface LoadBalancerIngress {
  readonly ip?: string
  readonly hostname?: string
  /** 'Proxy': the load balancer delivers to the node itself, so the proxy does not claim the IP. */
  readonly ipMode?: 'VIP' | 'Proxy'
}

export interface ServiceSpec {
  readonly type: Exclude<ServiceType, 'ExternalName'>
  readonly clusterIP: string
  /** clusterIP first, then the other family's, in canonical spelling. */
  readonly clusterIPs: readonly string[]
  readonly ipFamilies: readonly IPFamily[]
  readonly ipFamilyPolicy?: IPFamilyPolicy
  readonly ports: readonly ServicePortSpec[]
  readonly externalIPs: readonly string[]
  /** From the field, or else from the annotation of the same name. */
  readonly loadBalancerSourceRanges: readonly string[]
  readonly sessionAffinity: SessionAffinity
  /** Present when sessionAffinity is ClientIP. */
  readonly sessionAffinityConfig?: { readonly clientIP: { readonly timeoutSeconds: number } }
  readonly externalTrafficPolicy: TrafficPolicy
  readonly internalTrafficPolicy: TrafficPolicy
  /** 0: none. */
  readonly healthCheckNodePort: number
  readonly allocateLoadBalancerNodePorts?: boolean
  readonly trafficDistribution?: string
}

export interface Service {
  readonly kind: 'Service'
  readonly metadata: ObjectMeta
  readonly spec: ServiceSpec
  readonly status: { readonly loadBalancer: { readonly ingress: readonly LoadBalancerIngress[] } }
  readonly skip?: undefined
}

/** Why kube-proxy leaves a service alone. */
export type ServiceSkipReason = 'service-proxy-name' | 'ExternalName' | 'headless'

/** A service kube-proxy does not proxy: kept (so a change into or out of this state is seen), never programmed. */
export interface SkippedService {
  readonly kind: 'Service'
  readonly metadata: ObjectMeta
  readonly skip: ServiceSkipReason
}

export type ServiceObject = Service | SkippedService

export function serviceKey(o: { metadata: { namespace: string; name: string } }): string {
  return `${o.metadata.namespace}/${o.metadata.name}`
}

/** A v1 Service from plain JSON, defaults applied; throws a ValidationError naming the field. */
export function parseService(value: unknown): ServiceObject {
  const o = object({ op: 'Service' }, 'Service', value)
  typeMeta({ op: 'Service' }, o, 'v1', 'Service')
  const { meta, at } = metadata('Service', o.metadata, dns1035Label)
  if (LABEL_SERVICE_PROXY_NAME in meta.labels) return { kind: 'Service', metadata: meta, skip: 'service-proxy-name' }
  const spec = object(at, 'spec', o.spec)
  const type = spec.type === undefined || spec.type === null ? 'ClusterIP' : oneOf(at, 'spec.type', spec.type, SERVICE_TYPES)
  if (type === 'ExternalName') return { kind: 'Service', metadata: meta, skip: 'ExternalName' }

  // Cluster IPs. The API server allocates them; a manifest has to carry them.
  const rawIPs = optArray(at, 'spec.clusterIPs', spec.clusterIPs)
  const first = spec.clusterIP === undefined || spec.clusterIP === null || spec.clusterIP === '' ? rawIPs[0] : spec.clusterIP
  if (first === 'None') return { kind: 'Service', metadata: meta, skip: 'headless' }
  if (first === undefined || first === '') fail(at, 'spec.clusterIP', spec.clusterIP, 'is required (there is no API server here to allocate one)')
  const clusterIP = ip(at, spec.clusterIP === undefined || spec.clusterIP === null || spec.clusterIP === '' ? 'spec.clusterIPs[0]' : 'spec.clusterIP', first)
  const clusterIPs = [clusterIP]
  if (rawIPs.length > 2) fail(at, 'spec.clusterIPs', rawIPs, 'may hold at most two addresses, one per family')
  rawIPs.forEach((v, i) => {
    const text = ip(at, `spec.clusterIPs[${i}]`, v)
    if (i === 0 && text !== clusterIP) fail(at, 'spec.clusterIPs[0]', v, 'must equal spec.clusterIP')
    if (i === 1) {
      if (ipFamilyOf(text) === ipFamilyOf(clusterIP)) fail(at, 'spec.clusterIPs[1]', v, 'must be of the other IP family than spec.clusterIPs[0]')
      clusterIPs.push(text)
    }
  })
  const families = clusterIPs.map((a) => ipFamilyOf(a)!)
  const rawFamilies = optArray(at, 'spec.ipFamilies', spec.ipFamilies)
  if (rawFamilies.length > 0) {
    if (rawFamilies.length !== families.length) fail(at, 'spec.ipFamilies', rawFamilies, `must name the family of each of the ${families.length} cluster IP(s)`)
    rawFamilies.forEach((f, i) => {
      if (oneOf(at, `spec.ipFamilies[${i}]`, f, ['IPv4', 'IPv6'] as const) !== families[i])
        fail(at, `spec.ipFamilies[${i}]`, f, `does not match spec.clusterIPs[${i}] (${clusterIPs[i]})`)
    })
  }
  const ipFamilyPolicy =
    spec.ipFamilyPolicy === undefined || spec.ipFamilyPolicy === null
      ? undefined
      : oneOf(at, 'spec.ipFamilyPolicy', spec.ipFamilyPolicy, ['SingleStack', 'PreferDualStack', 'RequireDualStack'] as const)
  if (ipFamilyPolicy === 'SingleStack' && clusterIPs.length > 1) fail(at, 'spec.ipFamilyPolicy', ipFamilyPolicy, 'is SingleStack but spec.clusterIPs holds two families')

  const allocateLoadBalancerNodePorts = optBool(at, 'spec.allocateLoadBalancerNodePorts', spec.allocateLoadBalancerNodePorts)
  const ports = servicePorts(at, spec.ports, type)

  const externalIPs = optArray(at, 'spec.externalIPs', spec.externalIPs).map((v, i) => ip(at, `spec.externalIPs[${i}]`, v))

  let loadBalancerSourceRanges = optArray(at, 'spec.loadBalancerSourceRanges', spec.loadBalancerSourceRanges).map((v, i) =>
    cidr(at, `spec.loadBalancerSourceRanges[${i}]`, v),
  )
  const annotated = meta.annotations[ANNOTATION_LB_SOURCE_RANGES]
  if (loadBalancerSourceRanges.length === 0 && annotated !== undefined && annotated.trim() !== '') {
    loadBalancerSourceRanges = annotated.split(',').map((v) => cidr(at, `metadata.annotations[${JSON.stringify(ANNOTATION_LB_SOURCE_RANGES)}]`, v))
  }

  const sessionAffinity =
    spec.sessionAffinity === undefined || spec.sessionAffinity === null || spec.sessionAffinity === ''
      ? 'None'
      : oneOf(at, 'spec.sessionAffinity', spec.sessionAffinity, ['None', 'ClientIP'] as const)
  let sessionAffinityConfig: ServiceSpec['sessionAffinityConfig']
  if (sessionAffinity === 'ClientIP') {
    const cfg = optObject(at, 'spec.sessionAffinityConfig', spec.sessionAffinityConfig)
    const clientIP = optObject(at, 'spec.sessionAffinityConfig.clientIP', cfg.clientIP)
    const timeoutSeconds =
      clientIP.timeoutSeconds === undefined || clientIP.timeoutSeconds === null
        ? DEFAULT_CLIENT_IP_TIMEOUT_SECONDS
        : int(at, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', clientIP.timeoutSeconds, 1, MAX_CLIENT_IP_TIMEOUT_SECONDS)
    sessionAffinityConfig = { clientIP: { timeoutSeconds } }
  }

  const policy = (field: string, v: unknown): TrafficPolicy =>
    v === undefined || v === null || v === '' ? 'Cluster' : oneOf(at, field, v, ['Cluster', 'Local'] as const)
  const externalTrafficPolicy = policy('spec.externalTrafficPolicy', spec.externalTrafficPolicy)
  const internalTrafficPolicy = policy('spec.internalTrafficPolicy', spec.internalTrafficPolicy)
  const healthCheckNodePort =
    spec.healthCheckNodePort === undefined || spec.healthCheckNodePort === null ? 0 : int(at, 'spec.healthCheckNodePort', spec.healthCheckNodePort, 0, 65535)
  const trafficDistribution = optStr(at, 'spec.trafficDistribution', spec.trafficDistribution)

  const status = optObject(at, 'status', o.status)
  const lb = optObject(at, 'status.loadBalancer', status.loadBalancer)
  const ingress = optArray(at, 'status.loadBalancer.ingress', lb.ingress).map((v, i): LoadBalancerIngress => {
    const field = `status.loadBalancer.ingress[${i}]`
    const g = object(at, field, v)
    const out: { ip?: string; hostname?: string; ipMode?: 'VIP' | 'Proxy' } = {}
    if (g.ip !== undefined && g.ip !== null && g.ip !== '') out.ip = ip(at, `${field}.ip`, g.ip)
    const hostname = optStr(at, `${field}.hostname`, g.hostname)
    if (hostname) out.hostname = hostname
    if (g.ipMode !== undefined && g.ipMode !== null) out.ipMode = oneOf(at, `${field}.ipMode`, g.ipMode, ['VIP', 'Proxy'] as const)
    return out
  })

  const out: { -readonly [K in keyof ServiceSpec]: ServiceSpec[K] } = {
    type,
    clusterIP,
    clusterIPs,
    ipFamilies: families,
    ports,
    externalIPs,
    loadBalancerSourceRanges,
    sessionAffinity,
    externalTrafficPolicy,
    internalTrafficPolicy,
    healthCheckNodePort,
  }
  if (ipFamilyPolicy) out.ipFamilyPolicy = ipFamilyPolicy
  if (sessionAffinityConfig) out.sessionAffinityConfig = sessionAffinityConfig
  if (allocateLoadBalancerNodePorts !== undefined) out.allocateLoadBalancerNodePorts = allocateLoadBalancerNodePorts
  if (trafficDistribution) out.trafficDistribution = trafficDistribution
  return { kind: 'Service', metadata: meta, spec: out, status: { loadBalancer: { ingress } } }
}

function servicePorts(at: Where, value: unknown, type: ServiceSpec['type']): ServicePortSpec[] {
  const list = optArray(at, 'spec.ports', value)
  if (list.length === 0) fail(at, 'spec.ports', value, 'must list at least one port')
  const seenName = new Map<string, number>()
  const seenPort = new Map<string, number>()
  const seenNodePort = new Map<string, number>()
  return list.map((v, i): ServicePortSpec => {
    const field = `spec.ports[${i}]`
    const p = object(at, field, v)
    let name = ''
    if (p.name === undefined || p.name === null || p.name === '') {
      if (list.length > 1) fail(at, `${field}.name`, p.name, 'is required when the service has more than one port')
    } else {
      name = dns1123Label(at, `${field}.name`, p.name)
    }
    if (seenName.has(name)) fail(at, `${field}.name`, p.name, `duplicates spec.ports[${seenName.get(name)}].name`)
    seenName.set(name, i)
    const protocol = p.protocol === undefined || p.protocol === null || p.protocol === '' ? 'TCP' : oneOf(at, `${field}.protocol`, p.protocol, PROTOCOLS)
    if (p.port === undefined || p.port === null) fail(at, `${field}.port`, p.port, 'is required')
    const port = int(at, `${field}.port`, p.port, 1, 65535)
    const pk = `${port}/${protocol}`
    if (seenPort.has(pk)) fail(at, field, { port, protocol }, `duplicates spec.ports[${seenPort.get(pk)}] (${pk})`)
    seenPort.set(pk, i)
    let targetPort: number | string = port
    if (typeof p.targetPort === 'number' && p.targetPort !== 0) targetPort = int(at, `${field}.targetPort`, p.targetPort, 1, 65535)
    else if (typeof p.targetPort === 'string' && p.targetPort !== '') targetPort = ianaServiceName(at, `${field}.targetPort`, p.targetPort)
    else if (p.targetPort !== undefined && p.targetPort !== null && p.targetPort !== 0 && p.targetPort !== '')
      fail(at, `${field}.targetPort`, p.targetPort, 'must be a port number or a port name')
    let nodePort = 0
    if (p.nodePort !== undefined && p.nodePort !== null && p.nodePort !== 0) {
      nodePort = int(at, `${field}.nodePort`, p.nodePort, 1, 65535)
      if (type === 'ClusterIP') fail(at, `${field}.nodePort`, p.nodePort, 'may not be used when spec.type is ClusterIP')
      const nk = `${nodePort}/${protocol}`
      if (seenNodePort.has(nk)) fail(at, `${field}.nodePort`, p.nodePort, `duplicates spec.ports[${seenNodePort.get(nk)}].nodePort`)
      seenNodePort.set(nk, i)
    }
    // A NodePort or LoadBalancer port without a node port (none allocated yet, or a
    // manifest without one) still gets its cluster IP and external addresses, as in kube-proxy.
    const appProtocol = optStr(at, `${field}.appProtocol`, p.appProtocol)
    const out: { -readonly [K in keyof ServicePortSpec]: ServicePortSpec[K] } = { name, protocol, port, targetPort, nodePort }
    if (appProtocol) out.appProtocol = appProtocol
    return out
  })
}
