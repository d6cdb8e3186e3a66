// Services and EndpointSlices for the proxy tests, as the API server sends them
// (serviceJson, sliceJson) and parsed by lib/proxy/model (service, slice). The
// defaults: namespace 'ns', cluster IP 10.96.0.10, port 'http' 80 -> 8080.
// changeFeed: the objects through the real change trackers, for a proxier.
import { EndpointsChangeTracker, ServiceChangeTracker, applyChanges } from '../../dist/proxy/changes.js'
import { parseEndpointSlice, parseService, type EndpointSlice, type ServiceObject } from '../../dist/proxy/model/index.js'

export type Json = Record<string, any>

/** An endpoint: its address, node and conditions (a condition left out is left out of the object). */
export interface Ep {
  ip: string
  node?: string
  ready?: boolean
  serving?: boolean
  terminating?: boolean
}

export interface ServiceOptions {
  namespace?: string
  /** Merged into metadata (labels, creationTimestamp, ...). */
  meta?: Json
  /** spec.clusterIP unless the spec names one; null: none. */
  clusterIP?: string | null
  status?: Json
}

export interface SliceOptions {
  namespace?: string
  meta?: Json
  addressType?: 'IPv4' | 'IPv6'
}

export function serviceJson(name: string, spec: Json = {}, o: ServiceOptions = {}): Json {
  const clusterIP = o.clusterIP === undefined ? '10.96.0.10' : o.clusterIP
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.namespace ?? 'ns', ...o.meta },
    spec: { ...(clusterIP === null ? {} : { clusterIP }), ports: [{ name: 'http', port: 80 }], ...spec },
    ...(o.status === undefined ? {} : { status: o.status }),
  }
}

export function service(name: string, spec: Json = {}, o: ServiceOptions = {}): ServiceObject {
  return parseService(serviceJson(name, spec, o))
}

export function sliceJson(name: string, serviceName: string, eps: (string | Ep)[], ports: Json[] = [{ name: 'http', port: 8080 }], o: SliceOptions = {}): Json {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: o.namespace ?? 'ns', labels: { 'kubernetes.io/service-name': serviceName }, ...o.meta },
    addressType: o.addressType ?? 'IPv4',
    ports,
    endpoints: eps.map((e) => {
      const s = typeof e === 'string' ? { ip: e } : e
      const conditions: Json = {}
      if (s.ready !== undefined) conditions.ready = s.ready
      if (s.serving !== undefined) conditions.serving = s.serving
      if (s.terminating !== undefined) conditions.terminating = s.terminating
      return { addresses: [s.ip], conditions, ...(s.node ? { nodeName: s.node } : {}) }
    }),
  }
}

export function slice(name: string, serviceName: string, eps: (string | Ep)[], ports?: Json[], o: SliceOptions = {}): EndpointSlice {
  return parseEndpointSlice(sliceJson(name, serviceName, eps, ports, o))
}

/**
 * Services and slices fed through the real change trackers, as the daemon
 * feeds a proxier: put/delete objects, then take the pending changes for a sync.
 */
export function changeFeed(nodeName: string) {
  const services = new ServiceChangeTracker()
  const endpoints = new EndpointsChangeTracker({ nodeName })
  const state = { ports: services.ports, endpoints: (k: string) => endpoints.endpoints(k) }
  const svcs = new Map<string, ServiceObject>()
  const slices = new Map<string, EndpointSlice>()
  return {
    state,
    put(...objs: (ServiceObject | EndpointSlice)[]) {
      for (const o of objs) {
        if (o.kind === 'Service') {
          services.update(svcs.get(o.metadata.name), o)
          svcs.set(o.metadata.name, o)
        } else {
          endpoints.update(slices.get(o.metadata.name), o)
          slices.set(o.metadata.name, o)
        }
      }
    },
    deleteService(name: string) {
      services.update(svcs.get(name), undefined)
      svcs.delete(name)
    },
    deleteSlice(name: string) {
      endpoints.update(slices.get(name), undefined)
      slices.delete(name)
    },
    /** Applies what was put and deleted since the last call: the ports to sync and the stale conntrack. */
    pending() {
      const ch = applyChanges(services, endpoints)
      return {
        servicePorts: ch.servicePorts,
        stale: {
          deletedUDPClusterIPs: ch.services.deletedUDPClusterIPs,
          deletedUDPEndpoints: ch.endpoints.deletedUDPEndpoints,
          newlyActiveUDPServices: ch.endpoints.newlyActiveUDPServices,
        },
      }
    },
  }
}
