// lib/proxy/changes.ts: the service and endpoint change trackers, table-tested.
// Each case applies a starting state (one sync), then feeds events and checks
// what is pending and what the next sync must touch.
import t from 'tap'
import {
  EndpointsChangeTracker,
  ServiceChangeTracker,
  applyChanges,
  trackerSink,
} from '../../dist/proxy/changes.js'
import type { EndpointSlice, ServiceObject } from '../../dist/proxy/model/index.js'
import { service, slice as sliceOf, type Ep, type Json } from '../support/builders.js'

const svc = (name: string, spec: Json = {}, meta: Json = {}): ServiceObject => service(name, spec, { clusterIP: '10.96.0.1', meta })
const slice = (name: string, service: string, eps: (string | Ep)[], ports?: Json[], meta: Json = {}): EndpointSlice => sliceOf(name, service, eps, ports, { meta })

type Step = ['svc', ServiceObject | undefined, ServiceObject | undefined] | ['eps', EndpointSlice | undefined, EndpointSlice | undefined]

interface Case {
  name: string
  /** Applied in one sync before the steps. */
  before?: Step[]
  steps: Step[]
  pendingServices: number
  pendingSlices: number
  servicePorts: string[]
  deletedUDPClusterIPs?: string[]
  deletedUDPEndpoints?: string[]
  newlyActiveUDP?: string[]
  /** Applied endpoints afterwards, per port key. */
  endpoints?: Record<string, string[]>
  /** Applied service port keys afterwards. */
  ports?: string[]
}

const A = svc('a')
const A2 = svc('a', { ports: [{ name: 'http', port: 81 }] })
const A_LABELLED = svc('a', {}, { labels: { team: 'x' }, resourceVersion: '7' })
const TWO = svc('a', { ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] })
const TWO_CHANGED = svc('a', { ports: [{ name: 'http', port: 80 }, { name: 'https', port: 8443 }] })
const DNS = svc('dns', { clusterIP: '10.96.0.10', ports: [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }] })
const S1 = slice('a-1', 'a', ['10.0.0.1', '10.0.0.2'])
const S1B = slice('a-1', 'a', ['10.0.0.1', '10.0.0.3'])
const S1_RV = slice('a-1', 'a', ['10.0.0.1', '10.0.0.2'], undefined, { resourceVersion: '99', annotations: { note: 'x' } })
const S2 = slice('a-2', 'a', ['10.0.0.4'])
const UDP_PORTS = [{ name: 'dns', protocol: 'UDP', port: 53 }]
const U1 = slice('dns-1', 'dns', ['10.0.1.1', '10.0.1.2'], UDP_PORTS)

const cases: Case[] = [
  { name: 'a service added', steps: [['svc', undefined, A]], pendingServices: 1, pendingSlices: 0, servicePorts: ['ns/a:http/TCP'], ports: ['ns/a:http/TCP'] },
  { name: 'added then deleted before the sync: nothing', steps: [['svc', undefined, A], ['svc', A, undefined]], pendingServices: 0, pendingSlices: 0, servicePorts: [], ports: [] },
  { name: 'A -> B -> A: nothing', before: [['svc', undefined, A]], steps: [['svc', A, A2], ['svc', A2, A]], pendingServices: 0, pendingSlices: 0, servicePorts: [], ports: ['ns/a:http/TCP'] },
  { name: 'a metadata-only update: nothing', before: [['svc', undefined, A]], steps: [['svc', A, A_LABELLED]], pendingServices: 0, pendingSlices: 0, servicePorts: [] },
  { name: 'repeated updates merge into one change', before: [['svc', undefined, A]], steps: [['svc', A, A_LABELLED], ['svc', A_LABELLED, A2], ['svc', A2, A2]], pendingServices: 1, pendingSlices: 0, servicePorts: ['ns/a:http/TCP'] },
  { name: 'one port of two changes: only it', before: [['svc', undefined, TWO]], steps: [['svc', TWO, TWO_CHANGED]], pendingServices: 1, pendingSlices: 0, servicePorts: ['ns/a:https/TCP'], ports: ['ns/a:http/TCP', 'ns/a:https/TCP'] },
  { name: 'a port removed', before: [['svc', undefined, TWO]], steps: [['svc', TWO, A]], pendingServices: 1, pendingSlices: 0, servicePorts: ['ns/a:https/TCP'], ports: ['ns/a:http/TCP'] },
  { name: 'a service deleted', before: [['svc', undefined, TWO]], steps: [['svc', TWO, undefined]], pendingServices: 1, pendingSlices: 0, servicePorts: ['ns/a:http/TCP', 'ns/a:https/TCP'], ports: [] },
  {
    name: 'a deleted UDP service leaves stale conntrack for its cluster IP',
    before: [['svc', undefined, DNS]],
    steps: [['svc', DNS, undefined]],
    pendingServices: 1,
    pendingSlices: 0,
    servicePorts: ['ns/dns:dns-tcp/TCP', 'ns/dns:dns/UDP'],
    deletedUDPClusterIPs: ['10.96.0.10'],
  },
  {
    name: 'a deleted with a stale previous object: the applied state decides',
    before: [['svc', undefined, TWO]],
    steps: [['svc', A, undefined]],
    pendingServices: 1,
    pendingSlices: 0,
    servicePorts: ['ns/a:http/TCP', 'ns/a:https/TCP'],
    ports: [],
  },
  { name: 'a service turned headless: its ports go', before: [['svc', undefined, A]], steps: [['svc', A, svc('a', { clusterIP: 'None' })]], pendingServices: 1, pendingSlices: 0, servicePorts: ['ns/a:http/TCP'], ports: [] },
  {
    name: 'a service handed to another proxy: its ports go',
    before: [['svc', undefined, A]],
    steps: [['svc', A, svc('a', {}, { labels: { 'service.kubernetes.io/service-proxy-name': 'other' } })]],
    pendingServices: 1,
    pendingSlices: 0,
    servicePorts: ['ns/a:http/TCP'],
    ports: [],
  },
  { name: 'a skipped service added: nothing', steps: [['svc', undefined, svc('h', { clusterIP: 'None' })]], pendingServices: 0, pendingSlices: 0, servicePorts: [] },

  // ---- endpoints
  {
    name: 'a slice for a known service: its port',
    before: [['svc', undefined, A]],
    steps: [['eps', undefined, S1]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/a:http/TCP'],
    endpoints: { 'ns/a:http/TCP': ['10.0.0.1:8080', '10.0.0.2:8080'] },
  },
  {
    name: 'a slice for an unknown service: no rules to touch, endpoints kept',
    steps: [['eps', undefined, S1]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: [],
    endpoints: { 'ns/a:http/TCP': ['10.0.0.1:8080', '10.0.0.2:8080'] },
  },
  {
    name: 'service and slice together',
    steps: [['eps', undefined, S1], ['svc', undefined, A]],
    pendingServices: 1,
    pendingSlices: 1,
    servicePorts: ['ns/a:http/TCP'],
  },
  { name: 'slice A -> B -> A: nothing', before: [['svc', undefined, A], ['eps', undefined, S1]], steps: [['eps', S1, S1B], ['eps', S1B, S1]], pendingServices: 0, pendingSlices: 0, servicePorts: [] },
  { name: 'slice metadata-only update: nothing', before: [['svc', undefined, A], ['eps', undefined, S1]], steps: [['eps', S1, S1_RV]], pendingServices: 0, pendingSlices: 0, servicePorts: [] },
  { name: 'slice added and deleted before the sync: nothing', before: [['svc', undefined, A]], steps: [['eps', undefined, S1], ['eps', S1, undefined]], pendingServices: 0, pendingSlices: 0, servicePorts: [] },
  {
    name: 'an endpoint replaced',
    before: [['svc', undefined, A], ['eps', undefined, S1]],
    steps: [['eps', S1, S1B]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/a:http/TCP'],
    endpoints: { 'ns/a:http/TCP': ['10.0.0.1:8080', '10.0.0.3:8080'] },
  },
  {
    name: 'one of two slices deleted',
    before: [['svc', undefined, A], ['eps', undefined, S1], ['eps', undefined, S2]],
    steps: [['eps', S1, undefined]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/a:http/TCP'],
    endpoints: { 'ns/a:http/TCP': ['10.0.0.4:8080'] },
  },
  {
    name: 'the last slice deleted: no endpoints left',
    before: [['svc', undefined, A], ['eps', undefined, S1]],
    steps: [['eps', S1, undefined]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/a:http/TCP'],
    endpoints: {},
  },
  {
    name: 'a slice whose port name matches no service port: nothing to touch',
    before: [['svc', undefined, A]],
    steps: [['eps', undefined, slice('a-x', 'a', ['10.0.0.9'], [{ name: 'metrics', port: 9090 }])]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: [],
    endpoints: { 'ns/a:metrics/TCP': ['10.0.0.9:9090'] },
  },
  {
    name: 'a slice moved to another service: both change',
    before: [['svc', undefined, A], ['svc', undefined, svc('b', { clusterIP: '10.96.0.2' })], ['eps', undefined, S1]],
    steps: [['eps', S1, slice('a-1', 'b', ['10.0.0.1', '10.0.0.2'])]],
    pendingServices: 0,
    pendingSlices: 2,
    servicePorts: ['ns/a:http/TCP', 'ns/b:http/TCP'],
    endpoints: { 'ns/b:http/TCP': ['10.0.0.1:8080', '10.0.0.2:8080'] },
  },
  {
    name: 'an endpoint turning not ready changes the port',
    before: [['svc', undefined, A], ['eps', undefined, S1]],
    steps: [['eps', S1, slice('a-1', 'a', ['10.0.0.1', { ip: '10.0.0.2', ready: false, serving: true, terminating: true }])]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/a:http/TCP'],
  },

  // ---- stale UDP conntrack
  {
    name: 'a UDP endpoint gone: stale',
    before: [['svc', undefined, DNS], ['eps', undefined, U1]],
    steps: [['eps', U1, slice('dns-1', 'dns', ['10.0.1.1'], UDP_PORTS)]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/dns:dns/UDP'],
    deletedUDPEndpoints: ['ns/dns:dns/UDP 10.0.1.2:53'],
  },
  {
    name: 'a UDP endpoint no longer serving: stale',
    before: [['svc', undefined, DNS], ['eps', undefined, U1]],
    steps: [['eps', U1, slice('dns-1', 'dns', ['10.0.1.1', { ip: '10.0.1.2', ready: false, serving: false, terminating: true }], UDP_PORTS)]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/dns:dns/UDP'],
    deletedUDPEndpoints: ['ns/dns:dns/UDP 10.0.1.2:53'],
  },
  {
    name: 'a UDP endpoint that never served: nothing stale',
    before: [['svc', undefined, DNS], ['eps', undefined, slice('dns-1', 'dns', ['10.0.1.1', { ip: '10.0.1.2', ready: false, serving: false }], UDP_PORTS)]],
    steps: [['eps', undefined, slice('dns-1', 'dns', ['10.0.1.1'], UDP_PORTS)]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/dns:dns/UDP'],
    deletedUDPEndpoints: [],
  },
  {
    name: 'a UDP service from no serving endpoint to some: newly active',
    before: [['svc', undefined, DNS]],
    steps: [['eps', undefined, U1]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/dns:dns/UDP'],
    newlyActiveUDP: ['ns/dns:dns/UDP'],
  },
  {
    name: 'TCP endpoints gone: no conntrack work',
    before: [['svc', undefined, A], ['eps', undefined, S1]],
    steps: [['eps', S1, undefined]],
    pendingServices: 0,
    pendingSlices: 1,
    servicePorts: ['ns/a:http/TCP'],
    deletedUDPEndpoints: [],
    newlyActiveUDP: [],
  },
]

t.test('change trackers', async (t) => {
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const services = new ServiceChangeTracker()
      const endpoints = new EndpointsChangeTracker({ nodeName: 'node-a' })
      const run = (steps: Step[]): void => {
        for (const s of steps) {
          if (s[0] === 'svc') services.update(s[1], s[2])
          else endpoints.update(s[1], s[2])
        }
      }
      if (c.before) {
        run(c.before)
        applyChanges(services, endpoints)
        t.equal(services.pending + endpoints.pending, 0, 'nothing pending after a sync')
      }
      run(c.steps)
      t.equal(services.pending, c.pendingServices, 'services pending')
      t.equal(endpoints.pending, c.pendingSlices, 'services with slice changes pending')
      const r = applyChanges(services, endpoints)
      t.strictSame([...r.servicePorts].sort(), [...c.servicePorts].sort(), 'service ports the sync must touch')
      if (c.deletedUDPClusterIPs) t.strictSame([...r.services.deletedUDPClusterIPs], c.deletedUDPClusterIPs, 'stale UDP cluster IPs')
      else t.equal(r.services.deletedUDPClusterIPs.size, 0, 'no stale UDP cluster IPs')
      if (c.deletedUDPEndpoints)
        t.strictSame(r.endpoints.deletedUDPEndpoints.map((e) => `${e.servicePort} ${e.endpoint}`), c.deletedUDPEndpoints, 'stale UDP endpoints')
      if (c.newlyActiveUDP) t.strictSame(r.endpoints.newlyActiveUDPServices, c.newlyActiveUDP, 'newly active UDP services')
      if (c.endpoints) {
        const got: Record<string, string[]> = {}
        for (const [k, v] of endpoints.endpointsMap) got[k] = v.map((e) => e.key)
        t.strictSame(got, c.endpoints, 'applied endpoints')
      }
      if (c.ports) t.strictSame([...services.ports.keys()].sort(), [...c.ports].sort(), 'applied service ports')
      t.equal(services.pending + endpoints.pending, 0, 'nothing pending after apply')
      const again = applyChanges(services, endpoints)
      t.equal(again.servicePorts.size, 0, 'a second sync has nothing to do')
    })
  }
})

t.test('the applied state reads back', async (t) => {
  const services = new ServiceChangeTracker()
  const endpoints = new EndpointsChangeTracker({ nodeName: 'node-a' })
  const sink = trackerSink(services, endpoints)
  sink.service(undefined, TWO)
  sink.endpointSlice(undefined, slice('a-1', 'a', [{ ip: '10.0.0.1', node: 'node-a' }, { ip: '10.0.0.2', node: 'node-b' }]))
  t.ok(services.pendingChange('ns/a'), 'the pending change is visible')
  t.equal(services.pendingChange('ns/zzz'), undefined)
  applyChanges(services, endpoints)
  t.strictSame([...services.portsOf('ns/a').keys()], ['ns/a:http/TCP', 'ns/a:https/TCP'])
  t.equal(services.portsOf('ns/none').size, 0)
  t.equal(services.ports.get('ns/a:https/TCP')!.port, 443)
  t.strictSame(endpoints.endpoints('ns/a:http/TCP').map((e) => [e.ip, e.isLocal]), [['10.0.0.1', true], ['10.0.0.2', false]], 'isLocal from the tracker\'s node name')
  t.strictSame(endpoints.endpoints('ns/a:https/TCP'), [], 'a port without endpoints reads empty')
  t.strictSame([...endpoints.slicesOf('ns/a').keys()], ['a-1'])
  t.equal(endpoints.slicesOf('ns/b').size, 0)
})

t.test('trigger times: the annotation, else the clock; the earliest per service', async (t) => {
  let now = 1000
  const services = new ServiceChangeTracker()
  const endpoints = new EndpointsChangeTracker({ now: () => now })
  services.update(undefined, A)
  services.update(undefined, DNS)
  applyChanges(services, endpoints)
  endpoints.update(undefined, S1)
  now = 2000
  endpoints.update(S1, S1B)
  endpoints.update(undefined, slice('dns-1', 'dns', ['10.0.1.1'], UDP_PORTS, { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '1970-01-01T00:00:00.500Z' } }))
  const r = applyChanges(services, endpoints)
  t.strictSame([...r.endpoints.triggerTimes].sort(), [['ns/a', 1000], ['ns/dns', 500]])

  endpoints.update(S1B, S1)
  endpoints.update(S1, S1B)
  t.equal(endpoints.pending, 0, 'back where it was')
  t.equal(applyChanges(services, endpoints).endpoints.triggerTimes.size, 0, 'a dropped change has no trigger time')
})
