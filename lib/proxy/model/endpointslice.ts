// discovery.k8s.io/v1 EndpointSlice, read from a plain JSON object into a typed
// record with the API server's defaults applied (port name '', protocol TCP).
// Conditions stay as the API has them (a missing condition is "unknown");
// lib/proxy/model/endpoints.ts reads them as kube-proxy does. A bad slice
// (metadata, addressType, ports, too many endpoints) throws one ValidationError
// naming the field; a bad endpoint ('endpoints[2].nodeName') is left out and
// listed in `warnings`, the rest applies, as kube-proxy keeps the good ones.
import { ValidationError } from '../../errors.js'
import { dns1123Label, dns1123Subdomain, fail, int, ip, metadata, object, oneOf, optArray, optBool, optObject, optStr, str, typeMeta, type ObjectMeta, type Where } from './fields.js'
import { LABEL_HEADLESS, LABEL_SERVICE_PROXY_NAME, PROTOCOLS, type Protocol } from './service.js'

/** The label naming the service a slice belongs to. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name'
/** When the change behind this slice happened (RFC 3339); feeds the network programming latency. */
export const ANNOTATION_LAST_CHANGE_TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time'
export const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const
export type AddressType = (typeof ADDRESS_TYPES)[number]
/** The API's limits: addresses per endpoint, endpoints and ports per slice. */
export const MAX_ADDRESSES = 100
export const MAX_ENDPOINTS = 1000
export const MAX_PORTS = 100

export interface EndpointConditions {
  /** undefined: unknown, which consumers read as ready. */
  readonly ready?: boolean
  /** undefined: unknown, read as serving. */
  readonly serving?: boolean
  /** undefined: not terminating. */
  readonly terminating?: boolean
}

export interface EndpointSliceEndpoint {
  /** 1..100 addresses of the slice's type, canonical spelling; kube-proxy uses the first. */
  readonly addresses: readonly string[]
  readonly conditions: EndpointConditions
  readonly nodeName?: string
  readonly zone?: string
  readonly hostname?: string
  readonly hints?: { readonly forZones: readonly string[]; readonly forNodes: readonly string[] }
}

export interface EndpointSlicePort {
  readonly name: string
  readonly protocol: Protocol
  /** undefined: unspecified, which kube-proxy ignores. */
  readonly port?: number
  readonly appProtocol?: string
}

export interface EndpointSlice {
  readonly kind: 'EndpointSlice'
  readonly metadata: ObjectMeta
  /** The kubernetes.io/service-name label. */
  readonly serviceName: string
  readonly addressType: AddressType
  readonly endpoints: readonly EndpointSliceEndpoint[]
  readonly ports: readonly EndpointSlicePort[]
  /** The last-change-trigger-time annotation, in ms since the epoch. */
  readonly triggerTime?: number
  /** Why kube-proxy ignores this slice, when it does. */
  readonly skip?: EndpointSliceSkipReason
  /** The endpoints left out, one ValidationError each (field 'endpoints[i]...'); absent when none. Sources log and count them. */
  readonly warnings?: readonly ValidationError[]
}

export type EndpointSliceSkipReason = 'service-proxy-name' | 'headless' | 'FQDN'

// A cluster's slices repeat a few condition sets and node and zone names a
// hundred thousand times: one frozen copy of each keeps the heap small.
const CONDITIONS = new Map<string, EndpointSliceEndpoint['conditions']>()
function sharedConditions(ready?: boolean, serving?: boolean, terminating?: boolean): EndpointSliceEndpoint['conditions'] {
  const key = `${ready}${serving}${terminating}`
  let c = CONDITIONS.get(key)
  if (!c) {
    const o: { ready?: boolean; serving?: boolean; terminating?: boolean } = {}
    if (ready !== undefined) o.ready = ready
    if (serving !== undefined) o.serving = serving
    if (terminating !== undefined) o.terminating = terminating
    CONDITIONS.set(key, (c = Object.freeze(o)))
  }
  return c
}

const NAMES = new Map<string, string>()
/** One copy of a node or zone name (bounded: past 65536 names, new ones are not kept). */
function intern(name: string): string {
  const have = NAMES.get(name)
  if (have !== undefined) return have
  if (NAMES.size < 65536) NAMES.set(name, name)
  return name
}

/** The slice's service: 'namespace/name'. */
export function sliceServiceKey(s: EndpointSlice): string {
  return `${s.metadata.namespace}/${s.serviceName}`
}

/** A discovery.k8s.io/v1 EndpointSlice from plain JSON, defaults applied; throws a ValidationError naming the field. */
export function parseEndpointSlice(value: unknown): EndpointSlice {
  const o = object({ op: 'EndpointSlice' }, 'EndpointSlice', value)
  typeMeta({ op: 'EndpointSlice' }, o, 'discovery.k8s.io/v1', 'EndpointSlice')
  const { meta, at } = metadata('EndpointSlice', o.metadata, dns1123Subdomain)
  const labelField = `metadata.labels[${JSON.stringify(LABEL_SERVICE_NAME)}]`
  const serviceName = meta.labels[LABEL_SERVICE_NAME]
  if (serviceName === undefined || serviceName === '') fail(at, labelField, serviceName, 'is required: it names the service the slice belongs to')
  dns1123Label(at, labelField, serviceName)
  let triggerTime: number | undefined
  const trigger = meta.annotations[ANNOTATION_LAST_CHANGE_TRIGGER_TIME]
  if (trigger !== undefined) {
    triggerTime = Date.parse(trigger)
    if (!Number.isFinite(triggerTime))
      fail(at, `metadata.annotations[${JSON.stringify(ANNOTATION_LAST_CHANGE_TRIGGER_TIME)}]`, trigger, 'must be an RFC 3339 time')
  }
  if (o.addressType === undefined || o.addressType === null) fail(at, 'addressType', o.addressType, 'is required')
  const addressType = oneOf(at, 'addressType', o.addressType, ADDRESS_TYPES)
  // Object literals, not spreads: a spread gives each slice a hidden class of its own (~230 bytes a slice).
  const slice = (endpoints: EndpointSliceEndpoint[], ports: EndpointSlicePort[]): { -readonly [K in keyof EndpointSlice]: EndpointSlice[K] } =>
    triggerTime === undefined
      ? { kind: 'EndpointSlice', metadata: meta, serviceName, addressType, endpoints, ports }
      : { kind: 'EndpointSlice', metadata: meta, serviceName, addressType, triggerTime, endpoints, ports }
  const skip: EndpointSliceSkipReason | undefined =
    LABEL_SERVICE_PROXY_NAME in meta.labels ? 'service-proxy-name' : LABEL_HEADLESS in meta.labels ? 'headless' : addressType === 'FQDN' ? 'FQDN' : undefined
  if (skip) {
    const out = slice([], [])
    out.skip = skip
    return out
  }
  const family = addressType as 'IPv4' | 'IPv6'

  const rawEndpoints = optArray(at, 'endpoints', o.endpoints)
  if (rawEndpoints.length > MAX_ENDPOINTS) fail(at, 'endpoints', `${rawEndpoints.length} endpoints`, `may hold at most ${MAX_ENDPOINTS} endpoints`)
  const warnings: ValidationError[] = []
  const endpoints: EndpointSliceEndpoint[] = []
  for (let i = 0; i < rawEndpoints.length; i++) {
    try {
      endpoints.push(parseEndpoint(at, `endpoints[${i}]`, rawEndpoints[i], family))
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e
      warnings.push(e)
    }
  }

  const rawPorts = optArray(at, 'ports', o.ports)
  if (rawPorts.length > MAX_PORTS) fail(at, 'ports', `${rawPorts.length} ports`, `may hold at most ${MAX_PORTS} ports`)
  const seen = new Map<string, number>()
  const ports = rawPorts.map((v, i): EndpointSlicePort => {
    const field = `ports[${i}]`
    const p = object(at, field, v)
    const name = p.name === undefined || p.name === null || p.name === '' ? '' : dns1123Label(at, `${field}.name`, p.name)
    const protocol = p.protocol === undefined || p.protocol === null || p.protocol === '' ? 'TCP' : oneOf(at, `${field}.protocol`, p.protocol, PROTOCOLS)
    const key = `${name}/${protocol}`
    if (seen.has(key)) fail(at, `${field}.name`, name, `duplicates ports[${seen.get(key)}] (name and protocol must be unique)`)
    seen.set(key, i)
    const out: { -readonly [K in keyof EndpointSlicePort]: EndpointSlicePort[K] } = { name, protocol }
    if (p.port !== undefined && p.port !== null) out.port = int(at, `${field}.port`, p.port, 1, 65535)
    const appProtocol = optStr(at, `${field}.appProtocol`, p.appProtocol)
    if (appProtocol) out.appProtocol = appProtocol
    return out
  })
  // slice(): an exact-size copy (a pushed-to array keeps room to grow).
  const out = slice(endpoints.slice(), ports)
  if (warnings.length > 0) out.warnings = warnings
  return out
}

/** One endpoint; what it throws leaves out just this endpoint. */
function parseEndpoint(at: Where, field: string, v: unknown, family: 'IPv4' | 'IPv6'): EndpointSliceEndpoint {
  const e = object(at, field, v)
  const addrs = optArray(at, `${field}.addresses`, e.addresses)
  if (addrs.length === 0) fail(at, `${field}.addresses`, e.addresses, 'must hold at least one address')
  if (addrs.length > MAX_ADDRESSES) fail(at, `${field}.addresses`, `${addrs.length} addresses`, `may hold at most ${MAX_ADDRESSES} addresses`)
  const addresses = addrs.map((a, j) => ip(at, `${field}.addresses[${j}]`, a, family))
  const c = optObject(at, `${field}.conditions`, e.conditions)
  const conditions = sharedConditions(
    optBool(at, `${field}.conditions.ready`, c.ready),
    optBool(at, `${field}.conditions.serving`, c.serving),
    optBool(at, `${field}.conditions.terminating`, c.terminating),
  )
  const nodeName = optStr(at, `${field}.nodeName`, e.nodeName)
  const zone = optStr(at, `${field}.zone`, e.zone)
  const hostname = optStr(at, `${field}.hostname`, e.hostname)
  // Every field in the literal (undefined when absent): one shape, no
  // out-of-object property store per endpoint.
  const out: { -readonly [K in keyof EndpointSliceEndpoint]: EndpointSliceEndpoint[K] } = {
    addresses,
    conditions,
    nodeName: nodeName ? intern(dns1123Subdomain(at, `${field}.nodeName`, nodeName)) : undefined,
    zone: zone ? intern(zone) : undefined,
    hostname: hostname || undefined,
    hints: undefined,
  }
  if (e.hints !== undefined && e.hints !== null) {
    const h = object(at, `${field}.hints`, e.hints)
    const names = (key: 'forZones' | 'forNodes'): string[] =>
      optArray(at, `${field}.hints.${key}`, h[key]).map((z, j) => str(at, `${field}.hints.${key}[${j}].name`, object(at, `${field}.hints.${key}[${j}]`, z).name))
    out.hints = { forZones: names('forZones'), forNodes: names('forNodes') }
  }
  return out
}
