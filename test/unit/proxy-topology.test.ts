// lib/proxy/model/topology.ts: kube-proxy's CategorizeEndpoints as a pure
// function, table-tested case by case from its documented behaviour: ready
// endpoints, the serving+terminating fallback, Local traffic policies with their
// fallbacks, and zone hints.
import t from 'tap'
import { canUseTopology, categorizeEndpoints, type Endpoint, type ServicePort } from '../../dist/proxy/model/index.js'

interface EpSpec {
  ready?: boolean
  serving?: boolean
  terminating?: boolean
  local?: boolean
  zones?: string[]
}

function ep(ip: string, s: EpSpec = {}): Endpoint {
  const ready = s.ready ?? true
  return {
    ip,
    port: 80,
    key: `${ip}:80`,
    ready,
    serving: s.serving ?? ready,
    terminating: s.terminating ?? false,
    isLocal: s.local ?? false,
    zoneHints: s.zones ?? [],
  }
}

function port(p: Partial<ServicePort> = {}): ServicePort {
  return {
    name: { namespace: 'ns', name: 'svc', port: 'p', protocol: 'TCP' },
    key: 'ns/svc:p/TCP',
    type: 'ClusterIP',
    clusterIPs: ['10.96.0.1'],
    port: 80,
    protocol: 'TCP',
    nodePort: 0,
    externalIPs: [],
    loadBalancerVIPs: [],
    loadBalancerSourceRanges: [],
    stickyMaxAgeSeconds: 0,
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    healthCheckNodePort: 0,
    hintsAnnotation: '',
    ...p,
  }
}

const nodePortLocal = { type: 'NodePort' as const, nodePort: 30080, externalPolicyLocal: true }

interface Case {
  name: string
  port: ServicePort
  zone?: string
  endpoints: Endpoint[]
  cluster: string[] | null // null: the port uses no cluster endpoints (empty list expected)
  local: string[] | null
  all: string[]
  any: boolean
}

const cases: Case[] = [
  // ---- Cluster policy, no topology
  {
    name: 'cluster: every ready endpoint',
    port: port(),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true }), ep('10.0.0.3', { ready: false, serving: false })],
    cluster: ['10.0.0.1', '10.0.0.2'],
    local: null,
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'cluster: ready endpoints exclude terminating ones that still serve',
    port: port(),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { ready: false, serving: true, terminating: true })],
    cluster: ['10.0.0.1'],
    local: null,
    all: ['10.0.0.1'],
    any: true,
  },
  {
    name: 'cluster: none ready -> serving and terminating ones',
    port: port(),
    endpoints: [
      ep('10.0.0.1', { ready: false, serving: true, terminating: true }),
      ep('10.0.0.2', { ready: false, serving: false, terminating: true }),
      ep('10.0.0.3', { ready: false, serving: true, terminating: false }),
    ],
    cluster: ['10.0.0.1'],
    local: null,
    all: ['10.0.0.1'],
    any: true,
  },
  {
    name: 'cluster: nothing ready or serving -> nothing, and no endpoints anywhere',
    port: port(),
    endpoints: [ep('10.0.0.1', { ready: false, serving: false, terminating: true }), ep('10.0.0.2', { ready: false, serving: false })],
    cluster: [],
    local: null,
    all: [],
    any: false,
  },
  { name: 'cluster: no endpoints at all', port: port(), endpoints: [], cluster: [], local: null, all: [], any: false },

  // ---- internalTrafficPolicy Local
  {
    name: 'ITP Local: only local ready endpoints',
    port: port({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true }), ep('10.0.0.3', { local: true, ready: false, serving: true, terminating: true })],
    cluster: null,
    local: ['10.0.0.2'],
    all: ['10.0.0.2'],
    any: true,
  },
  {
    name: 'ITP Local: no local endpoint -> nothing (no fallback to remote), though endpoints exist',
    port: port({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2')],
    cluster: null,
    local: [],
    all: [],
    any: true,
  },
  {
    name: 'ITP Local: no local ready -> local serving+terminating',
    port: port({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true, ready: false, serving: true, terminating: true }), ep('10.0.0.3', { local: true, ready: false, serving: false, terminating: true })],
    cluster: null,
    local: ['10.0.0.2'],
    all: ['10.0.0.2'],
    any: true,
  },
  {
    name: 'ITP Local: no endpoints anywhere',
    port: port({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1', { ready: false, serving: false })],
    cluster: null,
    local: [],
    all: [],
    any: false,
  },

  // ---- externalTrafficPolicy Local
  {
    name: 'ETP Local: cluster set for internal traffic, local set for external; reachable = cluster set',
    port: port(nodePortLocal),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true })],
    cluster: ['10.0.0.1', '10.0.0.2'],
    local: ['10.0.0.2'],
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'ETP Local: no local endpoint -> empty local set, cluster set unchanged',
    port: port(nodePortLocal),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2')],
    cluster: ['10.0.0.1', '10.0.0.2'],
    local: [],
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'ETP Local: only local serving+terminating -> local fallback; reachable = cluster + local',
    port: port(nodePortLocal),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true, ready: false, serving: true, terminating: true })],
    cluster: ['10.0.0.1'],
    local: ['10.0.0.2'],
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'ETP Local: local ready wins over local terminating',
    port: port(nodePortLocal),
    endpoints: [ep('10.0.0.1', { local: true }), ep('10.0.0.2', { local: true, ready: false, serving: true, terminating: true })],
    cluster: ['10.0.0.1'],
    local: ['10.0.0.1'],
    all: ['10.0.0.1'],
    any: true,
  },
  {
    name: 'ETP Local on a ClusterIP with external IPs',
    port: port({ externalIPs: ['192.0.2.1'], externalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true })],
    cluster: ['10.0.0.1', '10.0.0.2'],
    local: ['10.0.0.2'],
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'ETP Local without external reachability uses no local set',
    port: port({ externalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true })],
    cluster: ['10.0.0.1', '10.0.0.2'],
    local: null,
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'ETP Local + ITP Local: both local',
    port: port({ ...nodePortLocal, internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true })],
    cluster: ['10.0.0.1', '10.0.0.2'],
    local: ['10.0.0.2'],
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'NodePort + ITP Local: cluster set for external traffic, local set for internal',
    port: port({ type: 'NodePort', nodePort: 30080, internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { local: true })],
    cluster: ['10.0.0.1', '10.0.0.2'],
    local: ['10.0.0.2'],
    all: ['10.0.0.1', '10.0.0.2'],
    any: true,
  },
  {
    name: 'ETP Local: nothing usable anywhere',
    port: port(nodePortLocal),
    endpoints: [ep('10.0.0.1', { ready: false, serving: false, local: true })],
    cluster: [],
    local: [],
    all: [],
    any: false,
  },

  // ---- zone hints (topology aware routing)
  ...((): Case[] => {
    const hinted = [
      ep('10.1.2.3', { zones: ['zone-a'] }),
      ep('10.1.2.4', { zones: ['zone-b'] }),
      ep('10.1.2.5', { zones: ['zone-c'] }),
      ep('10.1.2.6', { zones: ['zone-a'] }),
    ]
    const all = ['10.1.2.3', '10.1.2.4', '10.1.2.5', '10.1.2.6']
    return [
      { name: 'hints Auto: the zone\'s endpoints', port: port({ hintsAnnotation: 'Auto' }), zone: 'zone-a', endpoints: hinted, cluster: ['10.1.2.3', '10.1.2.6'], local: null, all: ['10.1.2.3', '10.1.2.6'], any: true },
      { name: 'hints auto (lowercase)', port: port({ hintsAnnotation: 'auto' }), zone: 'zone-b', endpoints: hinted, cluster: ['10.1.2.4'], local: null, all: ['10.1.2.4'], any: true },
      { name: 'hints Disabled: all', port: port({ hintsAnnotation: 'Disabled' }), zone: 'zone-a', endpoints: hinted, cluster: all, local: null, all, any: true },
      { name: 'no annotation: all', port: port(), zone: 'zone-a', endpoints: hinted, cluster: all, local: null, all, any: true },
      { name: 'an unexpected annotation value: all', port: port({ hintsAnnotation: 'PreferZone' }), zone: 'zone-a', endpoints: hinted, cluster: all, local: null, all, any: true },
      { name: 'trafficDistribution PreferClose: the zone\'s endpoints', port: port({ trafficDistribution: 'PreferClose' }), zone: 'zone-a', endpoints: hinted, cluster: ['10.1.2.3', '10.1.2.6'], local: null, all: ['10.1.2.3', '10.1.2.6'], any: true },
      { name: 'node without a zone: all', port: port({ hintsAnnotation: 'Auto' }), endpoints: hinted, cluster: all, local: null, all, any: true },
      {
        name: 'a ready endpoint without hints: all',
        port: port({ hintsAnnotation: 'Auto' }),
        zone: 'zone-a',
        endpoints: [...hinted, ep('10.1.2.7')],
        cluster: [...all, '10.1.2.7'],
        local: null,
        all: [...all, '10.1.2.7'],
        any: true,
      },
      {
        name: 'a non-ready endpoint without hints does not matter',
        port: port({ hintsAnnotation: 'Auto' }),
        zone: 'zone-a',
        endpoints: [...hinted, ep('10.1.2.7', { ready: false, serving: false })],
        cluster: ['10.1.2.3', '10.1.2.6'],
        local: null,
        all: ['10.1.2.3', '10.1.2.6'],
        any: true,
      },
      { name: 'no endpoint hinted for this zone: all', port: port({ hintsAnnotation: 'Auto' }), zone: 'zone-d', endpoints: hinted, cluster: all, local: null, all, any: true },
      {
        name: 'an endpoint hinted for several zones',
        port: port({ hintsAnnotation: 'Auto' }),
        zone: 'zone-c',
        endpoints: [ep('10.1.2.3', { zones: ['zone-a', 'zone-c'] }), ep('10.1.2.4', { zones: ['zone-b'] })],
        cluster: ['10.1.2.3'],
        local: null,
        all: ['10.1.2.3'],
        any: true,
      },
      {
        name: 'hints with none ready: serving+terminating anywhere',
        port: port({ hintsAnnotation: 'Auto' }),
        zone: 'zone-a',
        endpoints: [ep('10.1.2.3', { zones: ['zone-b'], ready: false, serving: true, terminating: true }), ep('10.1.2.4', { zones: ['zone-a'], ready: false, serving: false, terminating: true })],
        cluster: ['10.1.2.3'],
        local: null,
        all: ['10.1.2.3'],
        any: true,
      },
      {
        name: 'hints + ETP Local: a local endpoint in another zone is reachable too',
        port: port({ ...nodePortLocal, hintsAnnotation: 'Auto' }),
        zone: 'zone-a',
        endpoints: [ep('10.1.2.3', { zones: ['zone-a'] }), ep('10.1.2.4', { zones: ['zone-b'], local: true })],
        cluster: ['10.1.2.3'],
        local: ['10.1.2.4'],
        all: ['10.1.2.3', '10.1.2.4'],
        any: true,
      },
      {
        name: 'hints + ITP Local: hints do not apply to local traffic',
        port: port({ internalPolicyLocal: true, hintsAnnotation: 'Auto' }),
        zone: 'zone-a',
        endpoints: [ep('10.1.2.3', { zones: ['zone-a'] }), ep('10.1.2.4', { zones: ['zone-b'], local: true })],
        cluster: null,
        local: ['10.1.2.4'],
        all: ['10.1.2.4'],
        any: true,
      },
    ]
  })(),
]

t.test('categorizeEndpoints', async (t) => {
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const r = categorizeEndpoints(c.endpoints, c.port, c.zone === undefined ? {} : { nodeZone: c.zone })
      t.strictSame(r.clusterEndpoints.map((e) => e.ip), c.cluster ?? [], 'cluster endpoints')
      t.strictSame(r.localEndpoints.map((e) => e.ip), c.local ?? [], 'local endpoints')
      t.strictSame(r.allReachableEndpoints.map((e) => e.ip), c.all, 'all reachable endpoints')
      t.equal(r.hasAnyEndpoints, c.any, 'has any endpoints')
    })
  }
})

t.test('categorizeEndpoints is pure: inputs untouched, same answer twice', async (t) => {
  const eps = [ep('10.0.0.2', { local: true }), ep('10.0.0.1')]
  const before = JSON.stringify(eps)
  const a = categorizeEndpoints(eps, port(nodePortLocal))
  const b = categorizeEndpoints(eps, port(nodePortLocal))
  t.equal(JSON.stringify(eps), before, 'endpoints not modified')
  t.strictSame(a, b)
  t.strictSame(a.allReachableEndpoints.map((e) => e.ip), ['10.0.0.2', '10.0.0.1'], 'the input order is kept')
})

t.test('canUseTopology', async (t) => {
  const hinted = [ep('10.1.2.3', { zones: ['zone-a'] })]
  t.equal(canUseTopology(hinted, port({ hintsAnnotation: 'Auto' }), 'zone-a'), true)
  t.equal(canUseTopology(hinted, port({ hintsAnnotation: 'Auto' }), undefined), false, 'no node zone')
  t.equal(canUseTopology(hinted, port({ hintsAnnotation: 'Auto' }), ''), false, 'empty node zone')
  t.equal(canUseTopology(hinted, port(), 'zone-a'), false, 'not asked for')
  t.equal(canUseTopology([], port({ hintsAnnotation: 'Auto' }), 'zone-a'), false, 'no endpoints')
})
