// The endpoints of each service port, from a service's EndpointSlices, as
// kube-proxy's endpointSliceCache builds them (pkg/proxy/endpointslicecache.go):
// the first address of each endpoint, the slice port matched to the service port
// by name and protocol, conditions read with "unknown means ready/serving",
// duplicates across slices merged (a local copy wins).
import { joinHostPort } from './fields.js'
import type { EndpointSlice } from './endpointslice.js'
import { servicePortKey } from './serviceport.js'

export interface Endpoint {
  readonly ip: string
  readonly port: number
  /** 'ip:port', '[ip]:port' for IPv6: the endpoint's identity within a service port. */
  readonly key: string
  readonly ready: boolean
  readonly serving: boolean
  readonly terminating: boolean
  /** On this node (its nodeName is the proxy's node name). */
  readonly isLocal: boolean
  readonly nodeName?: string
  readonly zone?: string
  /** hints.forZones names; empty when the slice gave none. */
  readonly zoneHints: readonly string[]
}

/**
 * Endpoints per service port key, from every slice of one service (slices that
 * kube-proxy ignores contribute nothing). Lists are sorted by endpoint key so
 * equal inputs give equal outputs whatever the slices' order.
 */
export function endpointsOf(slices: Iterable<EndpointSlice>, nodeName: string | undefined): Map<string, Endpoint[]> {
  const byPort = new Map<string, Map<string, Endpoint>>()
  const sorted = [...slices].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0))
  for (const slice of sorted) {
    if (slice.skip) continue
    for (const p of slice.ports) {
      if (p.port === undefined) continue // kube-proxy: "ignoring invalid endpoint port"
      const key = servicePortKey({ namespace: slice.metadata.namespace, name: slice.serviceName, port: p.name, protocol: p.protocol })
      let set = byPort.get(key)
      if (!set) byPort.set(key, (set = new Map()))
      for (const e of slice.endpoints) {
        const ip = e.addresses[0]!
        const isLocal = nodeName !== undefined && nodeName !== '' && e.nodeName === nodeName
        const ep: { -readonly [K in keyof Endpoint]: Endpoint[K] } = {
          ip,
          port: p.port,
          key: joinHostPort(ip, p.port),
          ready: e.conditions.ready ?? true,
          serving: e.conditions.serving ?? true,
          terminating: e.conditions.terminating ?? false,
          isLocal,
          zoneHints: e.hints ? e.hints.forZones : NO_HINTS,
          // Always present (undefined when absent): one object shape for every
          // endpoint, with no out-of-object property store each.
          nodeName: e.nodeName || undefined,
          zone: e.zone || undefined,
        }
        if (!set.has(ep.key) || isLocal) set.set(ep.key, ep)
      }
    }
  }
  const out = new Map<string, Endpoint[]>()
  for (const [key, set] of byPort) {
    if (set.size === 0) continue
    out.set(key, [...set.values()].sort(byKey))
  }
  return out
}

const NO_HINTS: readonly string[] = Object.freeze([])

function byKey(a: Endpoint, b: Endpoint): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}
