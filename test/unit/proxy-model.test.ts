// lib/proxy/model: v1 Service and discovery/v1 EndpointSlice read from plain
// JSON (API defaults applied, every refusal a ValidationError naming the field,
// kube-proxy's skips), the ServicePorts derived from a Service, and the
// endpoints per service port derived from EndpointSlices.
import t, { type Test } from 'tap'
import { isRefusal, thrown } from '../support/refusal.js'
import {
  canonicalIP,
  endpointsOf,
  externallyAccessible,
  parseEndpointSlice,
  parseService,
  serviceOfPortKey,
  servicePortKey,
  servicePortNameString,
  servicePortsOf,
  usesClusterEndpoints,
  usesLocalEndpoints,
  type EndpointSlice,
  type Service,
} from '../../dist/proxy/model/index.js'

/** What JSON keeps of a value: undefined fields dropped. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v))

type Json = Record<string, any>

function service(spec: Json = {}, extra: Json = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }], ...spec },
    ...extra,
  }
}

function slice(extra: Json = {}): Json {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true }, nodeName: 'node-a' }],
    ...extra,
  }
}

function refusal(t: Test, fn: () => unknown, op: string, field: string): void {
  const e = thrown(fn)
  if (!isRefusal(t, e, field)) return
  t.equal(e.field, field, `field ${field}`)
  t.equal(e.op, op, `op ${op}`)
  t.ok(e.message.includes(field), 'the message names the field')
}

t.test('Service: defaults the API server applies', async (t) => {
  const s = parseService(service({ ports: [{ port: 80 }] }, { metadata: { name: 'web' } })) as Service
  t.equal(s.skip, undefined)
  t.equal(s.metadata.namespace, 'default', 'namespace defaults to default')
  t.strictSame(s.metadata.labels, {})
  t.equal(s.spec.type, 'ClusterIP')
  t.strictSame(s.spec.clusterIPs, ['10.96.0.10'], 'clusterIPs from clusterIP')
  t.strictSame(s.spec.ipFamilies, ['IPv4'], 'ipFamilies from the cluster IPs')
  t.strictSame(s.spec.ports, [{ name: '', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 0 }], 'protocol TCP, targetPort = port, no node port')
  t.equal(s.spec.sessionAffinity, 'None')
  t.equal(s.spec.sessionAffinityConfig, undefined)
  t.equal(s.spec.externalTrafficPolicy, 'Cluster')
  t.equal(s.spec.internalTrafficPolicy, 'Cluster')
  t.equal(s.spec.healthCheckNodePort, 0)
  t.strictSame(s.status.loadBalancer.ingress, [])

  const a = parseService(service({ sessionAffinity: 'ClientIP' })) as Service
  t.strictSame(a.spec.sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } }, 'ClientIP affinity defaults to 3 hours')
})

t.test('Service: every field read', async (t) => {
  const s = parseService(
    service(
      {
        type: 'LoadBalancer',
        clusterIP: 'FD00:0:0::10',
        clusterIPs: ['fd00::10', '10.96.0.10'],
        ipFamilies: ['IPv6', 'IPv4'],
        ipFamilyPolicy: 'RequireDualStack',
        ports: [
          { name: 'http', port: 80, targetPort: 'web', nodePort: 30080, appProtocol: 'http' },
          { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 30053 },
        ],
        externalIPs: ['192.0.2.10'],
        loadBalancerSourceRanges: [' 203.0.113.0/24 ', '2001:DB8::/32'],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
        externalTrafficPolicy: 'Local',
        internalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        trafficDistribution: 'PreferClose',
      },
      { status: { loadBalancer: { ingress: [{ ip: '198.51.100.7' }, { hostname: 'lb.example.com' }, { ip: '198.51.100.8', ipMode: 'Proxy' }] } } },
    ),
  ) as Service
  t.equal(s.spec.clusterIP, 'fd00::10', 'IPv6 in canonical spelling')
  t.strictSame(s.spec.clusterIPs, ['fd00::10', '10.96.0.10'])
  t.strictSame(s.spec.ipFamilies, ['IPv6', 'IPv4'])
  t.equal(s.spec.ports[0]!.targetPort, 'web', 'a named target port')
  t.equal(s.spec.ports[1]!.protocol, 'UDP')
  t.strictSame(s.spec.loadBalancerSourceRanges, ['203.0.113.0/24', '2001:db8::/32'], 'spaces trimmed, canonical')
  t.equal(s.spec.sessionAffinityConfig!.clientIP.timeoutSeconds, 60)
  t.strictSame(s.status.loadBalancer.ingress, [{ ip: '198.51.100.7' }, { hostname: 'lb.example.com' }, { ip: '198.51.100.8', ipMode: 'Proxy' }])

  const ports = servicePortsOf(s)
  t.strictSame([...ports.keys()], ['shop/web:http/TCP', 'shop/web:dns/UDP'])
  const http = ports.get('shop/web:http/TCP')!
  t.strictSame(http.loadBalancerVIPs, ['198.51.100.7'], 'hostnames and Proxy-mode ingress are not VIPs')
  t.equal(http.stickyMaxAgeSeconds, 60)
  t.equal(http.externalPolicyLocal, true)
  t.equal(http.internalPolicyLocal, true)
  t.equal(http.healthCheckNodePort, 32000, 'LoadBalancer + Local keeps its health check port')
  t.equal(http.trafficDistribution, 'PreferClose')
  t.equal(http.nodePort, 30080)
  t.equal(ports.get('shop/web:dns/UDP')!.port, 53)
})

t.test('Service: loadBalancerSourceRanges from the annotation when the field is empty', async (t) => {
  const s = parseService(
    service({ type: 'LoadBalancer', ports: [{ port: 80, nodePort: 30001 }] }, {
      metadata: { name: 'web', annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': '10.0.0.0/8, 192.168.0.0/16' } },
    }),
  ) as Service
  t.strictSame(s.spec.loadBalancerSourceRanges, ['10.0.0.0/8', '192.168.0.0/16'])
})

t.test('Service: what kube-proxy skips', async (t) => {
  const cases: [string, Json, string][] = [
    ['headless', service({ clusterIP: 'None' }), 'headless'],
    ['headless through clusterIPs', service({ clusterIP: undefined, clusterIPs: ['None'] }), 'headless'],
    ['ExternalName', service({ type: 'ExternalName', externalName: 'db.example.com', clusterIP: undefined, ports: undefined }), 'ExternalName'],
    [
      'another proxy',
      service({ ports: 'not even checked' }, { metadata: { name: 'web', labels: { 'service.kubernetes.io/service-proxy-name': 'other' } } }),
      'service-proxy-name',
    ],
  ]
  for (const [name, obj, reason] of cases) {
    const s = parseService(obj)
    t.equal(s.skip, reason, name)
    t.equal(servicePortsOf(s).size, 0, `${name}: no ports`)
  }
  t.equal(servicePortsOf(undefined).size, 0, 'no service, no ports')
})

t.test('Service: addresses with leading zeros read as kube-proxy reads them (decimal), canonical', async (t) => {
  // Older API servers accepted these; kube-proxy parses them with ParseIPSloppy / ParseCIDRSloppy: 041 is 41, not octal 33.
  const s = parseService(
    service(
      {
        type: 'LoadBalancer',
        clusterIP: '172.30.0.041',
        clusterIPs: ['172.30.000.41', 'fd00::1:0:0:5'],
        externalIPs: ['192.0.2.010', '198.051.100.1'],
        loadBalancerSourceRanges: ['010.000.0.0/08', ' 192.168.001.0/24'],
        ports: [{ port: 80, nodePort: 30080 }],
      },
      { status: { loadBalancer: { ingress: [{ ip: '203.0.113.007' }] } } },
    ),
  ) as Service
  t.equal(s.spec.clusterIP, '172.30.0.41')
  t.strictSame(s.spec.clusterIPs, ['172.30.0.41', 'fd00::1:0:0:5'], 'clusterIPs[0] equals clusterIP once both are canonical')
  t.strictSame(s.spec.externalIPs, ['192.0.2.10', '198.51.100.1'])
  t.strictSame(s.spec.loadBalancerSourceRanges, ['10.0.0.0/8', '192.168.1.0/24'])
  t.equal(s.status.loadBalancer.ingress[0]!.ip, '203.0.113.7')
  const annotated = parseService(
    service({}, { metadata: { name: 'web', namespace: 'shop', annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': '10.0.0.0/8, 172.016.0.0/12' } } }),
  ) as Service
  t.strictSame(annotated.spec.loadBalancerSourceRanges, ['10.0.0.0/8', '172.16.0.0/12'], 'the annotation too')
  const port = [...servicePortsOf(s).values()][0]!
  t.strictSame(port.clusterIPs, ['172.30.0.41', 'fd00::1:0:0:5'], 'the ServicePort carries the canonical addresses the proxiers program')
  t.strictSame(port.externalIPs, ['192.0.2.10', '198.51.100.1'])
  t.strictSame(port.loadBalancerVIPs, ['203.0.113.7'])
})

t.test('Service: a NodePort / LoadBalancer port without a node port keeps its cluster IP, no node port', async (t) => {
  for (const type of ['NodePort', 'LoadBalancer']) {
    const s = parseService(service({ type, ports: [{ name: 'http', port: 80 }] })) as Service
    t.equal(s.spec.type, type)
    t.equal(s.spec.ports[0]!.nodePort, 0, `${type}: no node port`)
    const port = servicePortsOf(s).get('shop/web:http/TCP')!
    t.strictSame(port.clusterIPs, ['10.96.0.10'], `${type}: the cluster IP is programmed`)
    t.equal(port.nodePort, 0)
  }
})

t.test('Service: refusals name the field', async (t) => {
  const op = 'Service shop/web'
  const cases: [string, Json, string, string?][] = [
    ['not an object', 'nope' as unknown as Json, 'Service', 'Service'],
    ['wrong kind', { ...service(), kind: 'Pod' }, 'kind', 'Service'],
    ['wrong apiVersion', { ...service(), apiVersion: 'v2' }, 'apiVersion', 'Service'],
    ['no metadata', { ...service(), metadata: undefined }, 'metadata', 'Service'],
    ['no name', service({}, { metadata: { namespace: 'shop' } }), 'metadata.name', 'Service'],
    ['bad name', service({}, { metadata: { name: 'Web_1' } }), 'metadata.name', 'Service'],
    ['name starting with a digit', service({}, { metadata: { name: '1web' } }), 'metadata.name', 'Service'],
    ['bad namespace', service({}, { metadata: { name: 'web', namespace: 'Shop' } }), 'metadata.namespace', 'Service'],
    ['label not a string', service({}, { metadata: { name: 'web', namespace: 'shop', labels: { enabled: true } } }), 'metadata.labels["enabled"]'],
    ['no spec', { ...service(), spec: undefined }, 'spec'],
    ['bad type', service({ type: 'Nodeport' }), 'spec.type'],
    ['no cluster IP', service({ clusterIP: undefined }), 'spec.clusterIP'],
    ['bad cluster IP', service({ clusterIP: '10.96.0.300' }), 'spec.clusterIP'],
    ['cluster IP over 255 behind leading zeros', service({ clusterIP: '10.96.0.0256' }), 'spec.clusterIP'],
    ['leading zeros in an octet over 255', service({ externalIPs: ['192.0.2.00300'] }), 'spec.externalIPs[0]'],
    ['source range prefix over 32 behind leading zeros', service({ loadBalancerSourceRanges: ['10.0.0.0/033'] }), 'spec.loadBalancerSourceRanges[0]'],
    ['clusterIPs[0] differs', service({ clusterIPs: ['10.96.0.11'] }), 'spec.clusterIPs[0]'],
    ['two IPv4 cluster IPs', service({ clusterIPs: ['10.96.0.10', '10.96.0.11'] }), 'spec.clusterIPs[1]'],
    ['bad second cluster IP', service({ clusterIPs: ['10.96.0.10', 'fd00::zz'] }), 'spec.clusterIPs[1]'],
    ['three cluster IPs', service({ clusterIPs: ['10.96.0.10', 'fd00::1', 'fd00::2'] }), 'spec.clusterIPs'],
    ['ipFamilies mismatch', service({ ipFamilies: ['IPv6'] }), 'spec.ipFamilies[0]'],
    ['ipFamilies length', service({ ipFamilies: ['IPv4', 'IPv6'] }), 'spec.ipFamilies'],
    ['SingleStack with two families', service({ clusterIPs: ['10.96.0.10', 'fd00::1'], ipFamilyPolicy: 'SingleStack' }), 'spec.ipFamilyPolicy'],
    ['no ports', service({ ports: [] }), 'spec.ports'],
    ['ports not a list', service({ ports: { port: 80 } }), 'spec.ports'],
    ['port not an object', service({ ports: [80] }), 'spec.ports[0]'],
    ['port missing', service({ ports: [{ name: 'a', port: 80 }, { name: 'b' }] }), 'spec.ports[1].port'],
    ['port 0', service({ ports: [{ name: 'a', port: 80 }, { name: 'b', port: 0 }] }), 'spec.ports[1].port'],
    ['port 65536', service({ ports: [{ port: 65536 }] }), 'spec.ports[0].port'],
    ['port as a string', service({ ports: [{ port: '80' }] }), 'spec.ports[0].port'],
    ['port name missing with two ports', service({ ports: [{ name: 'a', port: 80 }, { port: 81 }] }), 'spec.ports[1].name'],
    ['port name duplicated', service({ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }), 'spec.ports[1].name'],
    ['port name not a DNS label', service({ ports: [{ name: 'HTTP', port: 80 }] }), 'spec.ports[0].name'],
    ['port and protocol duplicated', service({ ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80, protocol: 'TCP' }] }), 'spec.ports[1]'],
    ['bad protocol', service({ ports: [{ port: 80, protocol: 'tcp' }] }), 'spec.ports[0].protocol'],
    ['targetPort out of range', service({ ports: [{ port: 80, targetPort: 70000 }] }), 'spec.ports[0].targetPort'],
    ['targetPort digits as a string', service({ ports: [{ port: 80, targetPort: '8080' }] }), 'spec.ports[0].targetPort'],
    ['targetPort a boolean', service({ ports: [{ port: 80, targetPort: true }] }), 'spec.ports[0].targetPort'],
    ['nodePort on ClusterIP', service({ ports: [{ port: 80, nodePort: 30080 }] }), 'spec.ports[0].nodePort'],
    [
      'nodePort duplicated',
      service({ type: 'NodePort', ports: [{ name: 'a', port: 80, nodePort: 30080 }, { name: 'b', port: 81, nodePort: 30080 }] }),
      'spec.ports[1].nodePort',
    ],
    ['bad externalIP', service({ externalIPs: ['192.0.2.1', 'example.com'] }), 'spec.externalIPs[1]'],
    ['IPv4-mapped externalIP', service({ externalIPs: ['::ffff:192.0.2.1'] }), 'spec.externalIPs[0]'],
    ['bad source range', service({ loadBalancerSourceRanges: ['10.0.0.0/33'] }), 'spec.loadBalancerSourceRanges[0]'],
    ['source range without prefix', service({ loadBalancerSourceRanges: ['10.0.0.0'] }), 'spec.loadBalancerSourceRanges[0]'],
    [
      'bad source range annotation',
      service({}, { metadata: { name: 'web', namespace: 'shop', annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': '10.0.0.0/8,nope' } } }),
      'metadata.annotations["service.beta.kubernetes.io/load-balancer-source-ranges"]',
    ],
    ['bad affinity', service({ sessionAffinity: 'Cookie' }), 'spec.sessionAffinity'],
    ['affinity timeout 0', service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } }), 'spec.sessionAffinityConfig.clientIP.timeoutSeconds'],
    ['affinity timeout over a day', service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } } }), 'spec.sessionAffinityConfig.clientIP.timeoutSeconds'],
    ['bad externalTrafficPolicy', service({ externalTrafficPolicy: 'local' }), 'spec.externalTrafficPolicy'],
    ['bad internalTrafficPolicy', service({ internalTrafficPolicy: 'Node' }), 'spec.internalTrafficPolicy'],
    ['bad healthCheckNodePort', service({ healthCheckNodePort: -1 }), 'spec.healthCheckNodePort'],
    ['bad ingress IP', service({}, { status: { loadBalancer: { ingress: [{ ip: '1.2.3' }] } } }), 'status.loadBalancer.ingress[0].ip'],
    ['bad ipMode', service({}, { status: { loadBalancer: { ingress: [{ ip: '1.2.3.4', ipMode: 'vip' }] } } }), 'status.loadBalancer.ingress[0].ipMode'],
  ]
  for (const [name, obj, field, where] of cases) {
    t.test(name, async (t) => refusal(t, () => parseService(obj), where ?? op, field))
  }
})

t.test('ServicePort: names, keys, traffic policy helpers', async (t) => {
  const n = { namespace: 'default', name: 'nginx-basic', port: 'http', protocol: 'TCP' as const }
  t.equal(servicePortNameString(n), 'default/nginx-basic:http', "kube-proxy's comment spelling")
  t.equal(servicePortNameString({ ...n, port: '' }), 'default/nginx-basic', 'an unnamed port has no colon')
  t.equal(servicePortKey(n), 'default/nginx-basic:http/TCP')
  t.equal(serviceOfPortKey('default/nginx-basic:http/TCP'), 'default/nginx-basic')
  t.equal(serviceOfPortKey('default/nginx-basic/UDP'), 'default/nginx-basic')

  const cases: [string, Json, { accessible: boolean; extLocal: boolean; cluster: boolean; local: boolean; hc: number }][] = [
    ['ClusterIP', {}, { accessible: false, extLocal: false, cluster: true, local: false, hc: 0 }],
    ['ClusterIP, ETP Local without external IPs (ignored)', { externalTrafficPolicy: 'Local' }, { accessible: false, extLocal: false, cluster: true, local: false, hc: 0 }],
    ['ClusterIP + externalIPs, ETP Local', { externalTrafficPolicy: 'Local', externalIPs: ['192.0.2.1'] }, { accessible: true, extLocal: true, cluster: true, local: true, hc: 0 }],
    ['ITP Local only', { internalTrafficPolicy: 'Local' }, { accessible: false, extLocal: false, cluster: false, local: true, hc: 0 }],
    ['NodePort, ETP Local', { type: 'NodePort', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ port: 80, nodePort: 30080 }] }, { accessible: true, extLocal: true, cluster: true, local: true, hc: 0 }],
    ['NodePort + ITP Local', { type: 'NodePort', internalTrafficPolicy: 'Local', ports: [{ port: 80, nodePort: 30080 }] }, { accessible: true, extLocal: false, cluster: true, local: true, hc: 0 }],
    ['LoadBalancer, ETP Local', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ port: 80, nodePort: 30080 }] }, { accessible: true, extLocal: true, cluster: true, local: true, hc: 32000 }],
    ['LoadBalancer, ETP Cluster keeps no health check', { type: 'LoadBalancer', healthCheckNodePort: 32000, ports: [{ port: 80, nodePort: 30080 }] }, { accessible: true, extLocal: false, cluster: true, local: false, hc: 0 }],
  ]
  for (const [name, spec, want] of cases) {
    const p = [...servicePortsOf(parseService(service(spec))).values()][0]!
    t.equal(externallyAccessible(p), want.accessible, `${name}: externally accessible`)
    t.equal(p.externalPolicyLocal, want.extLocal, `${name}: external policy Local`)
    t.equal(usesClusterEndpoints(p), want.cluster, `${name}: uses cluster endpoints`)
    t.equal(usesLocalEndpoints(p), want.local, `${name}: uses local endpoints`)
    t.equal(p.healthCheckNodePort, want.hc, `${name}: health check node port`)
  }
})

t.test('ServicePort: the topology annotation, new name first', async (t) => {
  const ann = (a: Record<string, string>) => [...servicePortsOf(parseService(service({}, { metadata: { name: 'web', annotations: a } }))).values()][0]!.hintsAnnotation
  t.equal(ann({}), '')
  t.equal(ann({ 'service.kubernetes.io/topology-aware-hints': 'auto' }), 'auto')
  t.equal(ann({ 'service.kubernetes.io/topology-mode': 'Auto', 'service.kubernetes.io/topology-aware-hints': 'disabled' }), 'Auto')
})

t.test('EndpointSlice: read with defaults, conditions as given', async (t) => {
  const s = parseEndpointSlice(
    slice({
      ports: [{ port: 8080 }, { name: 'dns', protocol: 'UDP', port: 53 }, { name: 'any' }],
      endpoints: [
        { addresses: ['10.0.0.1', '10.0.0.2'], conditions: { ready: false, serving: true, terminating: true }, nodeName: 'node-a', zone: 'z1', hints: { forZones: [{ name: 'z1' }] } },
        { addresses: ['10.0.0.3'] },
      ],
      metadata: {
        name: 'web-abc',
        namespace: 'shop',
        labels: { 'kubernetes.io/service-name': 'web' },
        annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2024-01-02T03:04:05Z' },
      },
    }),
  )
  t.equal(s.serviceName, 'web')
  t.equal(s.skip, undefined)
  t.equal(s.triggerTime, Date.UTC(2024, 0, 2, 3, 4, 5))
  t.strictSame(s.ports, [{ name: '', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 53 }, { name: 'any', protocol: 'TCP' }], 'name "", protocol TCP, port may be unset')
  // (Absent fields are held as undefined, one object shape for all: compare what JSON keeps.)
  t.strictSame(plain(s.endpoints[0]), {
    addresses: ['10.0.0.1', '10.0.0.2'],
    conditions: { ready: false, serving: true, terminating: true },
    nodeName: 'node-a',
    zone: 'z1',
    hints: { forZones: ['z1'], forNodes: [] },
  })
  t.strictSame(plain(s.endpoints[1]), { addresses: ['10.0.0.3'], conditions: {} }, 'unknown conditions stay unknown')
})

t.test('EndpointSlice: what kube-proxy ignores', async (t) => {
  const cases: [string, Json, string][] = [
    ['FQDN', slice({ addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] }), 'FQDN'],
    ['another proxy', slice({ metadata: { name: 's', labels: { 'kubernetes.io/service-name': 'web', 'service.kubernetes.io/service-proxy-name': 'x' } } }), 'service-proxy-name'],
    ['headless', slice({ metadata: { name: 's', labels: { 'kubernetes.io/service-name': 'web', 'service.kubernetes.io/headless': '' } } }), 'headless'],
  ]
  for (const [name, obj, reason] of cases) {
    const s = parseEndpointSlice(obj)
    t.equal(s.skip, reason, name)
    t.equal(endpointsOf([s], 'node-a').size, 0, `${name}: no endpoints`)
  }
})

t.test('EndpointSlice: addresses with leading zeros read as decimal, canonical', async (t) => {
  const s = parseEndpointSlice(slice({ endpoints: [{ addresses: ['10.0.0.041'], conditions: { ready: true } }] }))
  t.strictSame(s.endpoints[0]!.addresses, ['10.0.0.41'])
  t.strictSame(endpointsOf([s], undefined).get('shop/web:http/TCP')!.map((e) => e.key), ['10.0.0.41:8080'], 'the endpoint key the proxiers program')
})

t.test('EndpointSlice: a bad endpoint is left out and listed in warnings; the others apply', async (t) => {
  const op = 'EndpointSlice shop/web-abc'
  const good = { addresses: ['10.0.0.1'], conditions: { ready: true }, nodeName: 'node-a' }
  const cases: [string, unknown, string][] = [
    ['not an object', 'nope', 'endpoints[1]'],
    ['no addresses', { addresses: [] }, 'endpoints[1].addresses'],
    ['bad second address', { addresses: ['10.0.0.2', '10.0.0.999'] }, 'endpoints[1].addresses[1]'],
    ['IPv6 in an IPv4 slice', { addresses: ['fd00::1'] }, 'endpoints[1].addresses[0]'],
    ['condition not a boolean', { addresses: ['10.0.0.2'], conditions: { ready: 'yes' } }, 'endpoints[1].conditions.ready'],
    ['nodeName not a DNS name', { addresses: ['10.0.0.2'], nodeName: 'Node_A' }, 'endpoints[1].nodeName'],
    ['zone not a string', { addresses: ['10.0.0.2'], zone: 7 }, 'endpoints[1].zone'],
    ['bad zone hint', { addresses: ['10.0.0.2'], hints: { forZones: [{ zone: 'z1' }] } }, 'endpoints[1].hints.forZones[0].name'],
  ]
  for (const [name, bad, field] of cases) {
    t.test(name, async (t) => {
      const s = parseEndpointSlice(slice({ endpoints: [good, bad, { ...good, addresses: ['10.0.0.3'] }] }))
      t.strictSame(s.endpoints.map((e) => e.addresses[0]), ['10.0.0.1', '10.0.0.3'], 'the good endpoints stay')
      t.equal(s.warnings?.length, 1, 'one warning')
      const w = s.warnings![0]!
      t.equal(w.field, field)
      t.equal(w.op, op)
      t.ok(w.message.includes(field), 'the message names the field')
      t.strictSame(endpointsOf([s], 'node-a').get('shop/web:http/TCP')!.map((e) => e.key), ['10.0.0.1:8080', '10.0.0.3:8080'])
    })
  }
  t.equal(parseEndpointSlice(slice()).warnings, undefined, 'no warnings on a good slice')
  const allBad = parseEndpointSlice(slice({ endpoints: [{ addresses: [] }] }))
  t.strictSame(allBad.endpoints, [], 'every endpoint bad: an empty slice, not a refused one')
  t.equal(allBad.warnings?.length, 1)
})

t.test('EndpointSlice: refusals name the field', async (t) => {
  const op = 'EndpointSlice shop/web-abc'
  const labels = { 'kubernetes.io/service-name': 'web' }
  const cases: [string, Json, string, string?][] = [
    ['wrong apiVersion', { ...slice(), apiVersion: 'discovery.k8s.io/v1beta1' }, 'apiVersion', 'EndpointSlice'],
    ['bad name', slice({ metadata: { name: 'Web', labels } }), 'metadata.name', 'EndpointSlice'],
    ['no service-name label', slice({ metadata: { name: 'web-abc', namespace: 'shop' } }), 'metadata.labels["kubernetes.io/service-name"]'],
    ['bad service-name label', slice({ metadata: { name: 'web-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'Web!' } } }), 'metadata.labels["kubernetes.io/service-name"]'],
    [
      'bad trigger time',
      slice({ metadata: { name: 'web-abc', namespace: 'shop', labels, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': 'yesterday' } } }),
      'metadata.annotations["endpoints.kubernetes.io/last-change-trigger-time"]',
    ],
    ['no addressType', slice({ addressType: undefined }), 'addressType'],
    ['bad addressType', slice({ addressType: 'IP' }), 'addressType'],
    ['endpoints not a list', slice({ endpoints: {} }), 'endpoints'],
    ['port 0', slice({ ports: [{ name: 'http', port: 0 }] }), 'ports[0].port'],
    ['bad port protocol', slice({ ports: [{ name: 'http', port: 80, protocol: 'ICMP' }] }), 'ports[0].protocol'],
    ['duplicate port name', slice({ ports: [{ name: 'http', port: 80 }, { name: 'http', port: 81 }] }), 'ports[1].name'],
  ]
  for (const [name, obj, field, where] of cases) {
    t.test(name, async (t) => refusal(t, () => parseEndpointSlice(obj), where ?? op, field))
  }
})

t.test('endpoints per service port, as the endpointSliceCache builds them', async (t) => {
  const a = parseEndpointSlice(
    slice({
      metadata: { name: 'web-a', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
      ports: [{ name: 'http', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 53 }, { name: 'unset' }],
      endpoints: [
        { addresses: ['10.0.0.2', '10.0.0.99'], conditions: { ready: true }, nodeName: 'node-b', zone: 'z2', hints: { forZones: [{ name: 'z2' }] } },
        { addresses: ['10.0.0.1'], conditions: {}, nodeName: 'node-a' },
        { addresses: ['10.0.0.3'], conditions: { ready: false, terminating: true }, nodeName: 'node-a' },
      ],
    }),
  )
  // A second slice repeats 10.0.0.2 as local; the local copy wins.
  const b = parseEndpointSlice(
    slice({
      metadata: { name: 'web-b', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ addresses: ['10.0.0.2'], conditions: { ready: true }, nodeName: 'node-a' }],
    }),
  )
  for (const order of [[a, b], [b, a]] as EndpointSlice[][]) {
    const m = endpointsOf(order, 'node-a')
    t.strictSame([...m.keys()].sort(), ['shop/web:dns/UDP', 'shop/web:http/TCP'], 'a port without a number gets no endpoints')
    const http = m.get('shop/web:http/TCP')!
    t.strictSame(
      http.map((e) => [e.key, e.ready, e.serving, e.terminating, e.isLocal]),
      [
        ['10.0.0.1:8080', true, true, false, true],
        ['10.0.0.2:8080', true, true, false, true],
        ['10.0.0.3:8080', false, true, true, true],
      ],
      'first address only; unknown ready/serving read as true; sorted; the local duplicate wins',
    )
    t.equal(m.get('shop/web:dns/UDP')!.length, 3)
  }
  const remote = endpointsOf([a], 'node-z').get('shop/web:http/TCP')!
  t.strictSame(remote.map((e) => e.isLocal), [false, false, false], 'another node: nothing local')
  t.strictSame(remote[1]!.zoneHints, ['z2'])
  t.equal(remote[1]!.zone, 'z2')
  t.strictSame(endpointsOf([a], undefined).get('shop/web:http/TCP')!.map((e) => e.isLocal), [false, false, false], 'no node name: nothing local')

  const v6 = parseEndpointSlice(slice({ addressType: 'IPv6', endpoints: [{ addresses: ['FD00:0:0:0::5'] }] }))
  t.strictSame(endpointsOf([v6], undefined).get('shop/web:http/TCP')!.map((e) => e.key), ['[fd00::5]:8080'], 'IPv6 keys in brackets, canonical')
})

t.test('canonicalIP: one spelling per address', async (t) => {
  const cases: [string, string][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['FD00::1', 'fd00::1'],
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
  ]
  for (const [input, want] of cases) t.equal(canonicalIP(input), want, input)
})
