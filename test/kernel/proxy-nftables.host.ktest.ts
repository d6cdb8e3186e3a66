// The nftables proxier (kube-proxy's nftables mode) driven in-process against
// the host kernel, in a fresh network namespace (the box's kernel has no
// nf_tables ip family): the nginx-basic example read back with
// `nft list table ip kube-proxy` as kube-proxy writes it, a restart adopting
// with no write, drift repaired after `nft flush table` and a deleted element,
// and real TCP through a fake CNI (three pods serving HTTP on 8080) and an
// off-cluster client: ClusterIP from the node and from pods, hairpin, NodePort,
// ETP Local, no-endpoint reject, endpoint removal; cleanup leaving a foreign
// table alone.
import t from 'tap'
import { makeNode, sh, tool, type FakeNode } from '../support/cni.mjs'
import { NftablesProxier, type NftablesProxierOptions } from '../../dist/proxy/nftables/proxier.js'
import { openNftablesDataplane, type NftablesDataplane } from '../../dist/proxy/nftables/dataplane.js'
import type { SyncReport } from '../../dist/proxy/types.js'
import { parseEndpointSlice, parseService, type EndpointSlice, type ServiceObject } from '../../dist/proxy/model/index.js'
import { Nftables } from '../../dist/index.js'
import { changeFeed } from '../support/builders.js'
import { nftablesUnsupported } from './support/nftables.js'

type Json = Record<string, any>
const NODE = 'node1'
const NODE_IP = '192.168.50.10'
// Pod network namespaces are named on the host, whatever namespace we run in: a name of this run's own.
const tag = `nft${process.pid % 100000}`
const pods = [11, 12, 13].map((n, i) => ({ name: `${tag}p${i + 1}`, ip: `10.244.0.${n}` }))
const podName = (i: number): string => pods[i]!.name

const skip = await nftablesUnsupported()

function service(name: string, spec: Json, namespace = 'default'): ServiceObject {
  return parseService({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec })
}
function slice(svc: string, eps: { ip: string; node?: string }[], port = 8080, namespace = 'default'): EndpointSlice {
  return parseEndpointSlice({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abc12`, namespace, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port }],
    endpoints: eps.map((e) => ({ addresses: [e.ip], conditions: { ready: true }, nodeName: e.node ?? NODE })),
  })
}
const http = (port: number, extra: Json = {}): Json[] => [{ name: 'http', port, targetPort: 8080, ...extra }]

function driver(dp: NftablesDataplane, clusterCIDR: string, options: NftablesProxierOptions = {}) {
  const feed = changeFeed(NODE)
  const proxier = new NftablesProxier(dp, { clusterCIDR, ...options })
  return {
    proxier,
    put: feed.put,
    deleteService: feed.deleteService,
    sync(full = false): Promise<SyncReport> {
      return proxier.sync(feed.state, feed.pending().servicePorts, { full })
    },
  }
}

const list = (): string => tool('nft', ['list', 'table', 'ip', 'kube-proxy'])
const lines = (): string[] => list().split('\n').map((l) => l.trim()).filter((l) => l !== '')

let dp: NftablesDataplane
let node: FakeNode | undefined
let outside: FakeNode | undefined

t.before(async () => {
  if (skip) return
  sh(`ip link set lo up; ip link add eth0 type veth peer name eth0p; ip link set eth0p up; ip addr add ${NODE_IP}/24 dev eth0; ip link set eth0 up; ip route add default via 192.168.50.1 dev eth0`)
  dp = await openNftablesDataplane()
})
t.teardown(async () => {
  await dp?.close()
  await outside?.destroy()
  await node?.destroy()
})

t.test('nginx-basic reads back in nft list as kube-proxy writes it; adoption and drift', { skip }, async (t) => {
  const d = driver(dp, '192.168.0.0/16')
  const nginx = (): void =>
    d.put(
      service('nginx-basic', { clusterIP: '10.105.250.129', ports: [{ name: 'http', port: 80, targetPort: 80 }] }),
      slice('nginx-basic', [{ ip: '192.168.0.7' }, { ip: '192.168.1.3', node: 'n2' }, { ip: '192.168.1.4', node: 'n2' }], 80),
    )
  nginx()
  const r = await d.sync()
  t.same(r.errors, [])
  const got = lines()
  const svc = 'service-TS4VNHAE-default/nginx-basic/tcp/http'
  const ep = ['endpoint-NJSTEQJL-default/nginx-basic/tcp/http__192.168.0.7/80', 'endpoint-N75CGSGN-default/nginx-basic/tcp/http__192.168.1.3/80', 'endpoint-I5UBHZYV-default/nginx-basic/tcp/http__192.168.1.4/80']
  const expected = [
    'table ip kube-proxy {',
    'comment "rules for kube-proxy"',
    'elements = { 10.105.250.129 }',
    `elements = { 10.105.250.129 . tcp . 80 : goto ${svc} }`,
    'type filter hook prerouting priority dstnat - 10; policy accept;',
    'ct state new jump firewall-check',
    'ct state new jump nodeport-endpoints-check',
    'ct state new jump service-endpoints-check',
    'ct state new jump cluster-ips-check',
    'type nat hook prerouting priority dstnat; policy accept;',
    'type nat hook postrouting priority srcnat; policy accept;',
    'jump services',
    'jump masquerading',
    'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    'ip daddr . meta l4proto . th dport vmap @firewall-ips',
    'meta mark set meta mark | 0x00004000',
    'meta mark & 0x00004000 == 0x00000000 return',
    'meta mark set meta mark ^ 0x00004000',
    'masquerade fully-random',
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports',
    'comment "helper for @no-endpoint-services / @no-endpoint-nodeports"',
    'reject',
    'ip daddr . meta l4proto . th dport vmap @no-endpoint-services',
    'ip daddr . meta l4proto . th dport vmap @service-ips',
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    `chain ${ep[0]} {`,
    'ip saddr 192.168.0.7 jump mark-for-masquerade',
    'meta l4proto tcp dnat to 192.168.0.7:80',
    `chain ${svc} {`,
    'ip daddr 10.105.250.129 tcp dport 80 ip saddr != 192.168.0.0/16 jump mark-for-masquerade',
    `numgen random mod 3 vmap { 0 : goto ${ep[0]}, 1 : goto ${ep[1]}, 2 : goto ${ep[2]} }`,
  ]
  for (const l of expected) t.ok(got.includes(l), `nft list: ${l}`)
  t.same(got.filter((l) => l.startsWith('chain ')).sort(), [
    'chain cluster-ips-check {', ...ep.map((c) => `chain ${c} {`), 'chain filter-forward {', 'chain filter-input {', 'chain filter-output {', 'chain filter-output-post-dnat {',
    'chain filter-prerouting {', 'chain firewall-check {', 'chain mark-for-masquerade {', 'chain masquerading {', 'chain nat-output {', 'chain nat-postrouting {', 'chain nat-prerouting {',
    'chain nodeport-endpoints-check {', 'chain reject-chain {', `chain ${svc} {`, 'chain service-endpoints-check {', 'chain services {',
  ].sort(), 'every chain')

  const again = await d.sync(true)
  t.equal(again.ops.nftables, undefined, 'a full sync right after writes nothing')
  const fresh = driver(dp, '192.168.0.0/16')
  fresh.put(
    service('nginx-basic', { clusterIP: '10.105.250.129', ports: [{ name: 'http', port: 80, targetPort: 80 }] }),
    slice('nginx-basic', [{ ip: '192.168.0.7' }, { ip: '192.168.1.3', node: 'n2' }, { ip: '192.168.1.4', node: 'n2' }], 80),
  )
  const before = list()
  const nft = await Nftables.open()
  const gen = await nft.generation()
  const adopted = await fresh.sync()
  t.equal(adopted.ops.nftables, undefined, 'a new proxier adopts the table without a write')
  t.equal(await nft.generation(), gen, 'the ruleset generation did not move: no transaction at all')
  await nft.close()
  t.equal(list(), before)

  // Drift: the table flushed (every chain emptied, every set emptied).
  tool('nft', ['flush', 'table', 'ip', 'kube-proxy'])
  const fix = await fresh.sync(true)
  t.same(fix.errors, [])
  t.ok((fix.repaired.nftables ?? 0) > 0, `repaired ${fix.repaired.nftables}`)
  t.equal(list(), before, 'the table as it was')
  tool('nft', ['delete', 'element', 'ip', 'kube-proxy', 'service-ips', '{ 10.105.250.129 . tcp . 80 }'])
  const fix2 = await fresh.sync(true)
  t.equal(fix2.repaired.nftables, 1, 'one element repaired')
  t.equal(list(), before)

  // Cleanup: our table only.
  tool('nft', ['add', 'table', 'ip', 'foreign'])
  t.same(await fresh.proxier.cleanup(), { tables: 1 })
  t.same(tool('nft', ['list', 'tables']).trim().split('\n'), ['table ip foreign'], 'the foreign table stays')
  tool('nft', ['delete', 'table', 'ip', 'foreign'])
})

const many = (from: string, host: string, n: number, port = 80, f: FakeNode = node!) => f.requestMany(from, { host, port, timeoutMs: 3000 }, n)

t.test('traffic', { skip }, async (t) => {
  node = await makeNode({ pods })
  outside = await makeNode({ bridge: `${tag}c`, gateway: '192.168.70.1', pods: [{ name: `${tag}cl`, ip: '192.168.70.2' }] })
  const d = driver(dp, '10.244.0.0/16')
  const all = pods.map((p) => ({ ip: p.ip }))
  d.put(
    service('web', { clusterIP: '10.96.0.10', ports: http(80) }),
    slice('web', all),
    service('web-np', { type: 'NodePort', clusterIP: '10.96.0.11', ports: http(80, { nodePort: 30080 }) }),
    slice('web-np', all),
    service('local', { type: 'NodePort', clusterIP: '10.96.0.13', ports: http(80, { nodePort: 30081 }), externalTrafficPolicy: 'Local' }),
    slice('local', [{ ip: pods[0]!.ip }, { ip: pods[1]!.ip, node: 'node2' }, { ip: pods[2]!.ip, node: 'node2' }]),
    service('empty', { clusterIP: '10.96.0.14', ports: http(80) }),
    service('ext', { clusterIP: '10.96.0.15', externalIPs: ['198.51.100.7'], ports: http(80) }),
    slice('ext', all),
    service('sticky', { clusterIP: '10.96.0.12', ports: http(80), sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
    slice('sticky', all),
  )
  const r = await d.sync()
  t.same(r.errors, [])
  const again = await d.sync(true)
  t.equal(again.ops.nftables, undefined, 'read back equal, affinity sets included: a full sync writes nothing')

  t.test('externalIP from the node and from off the cluster', async (t) => {
    const r = await many('node', '198.51.100.7', 30)
    t.same(r.errors, [])
    t.ok(Object.keys(r.counts).length > 1, 'from the node, balanced')
    const o = await many(`${tag}cl`, '198.51.100.7', 6, 80, outside)
    t.same(o.errors, [], 'from the off-cluster client')
    t.equal(Object.values(o.counts).reduce((a, b) => a + b, 0), 6)
  })

  t.test('ClientIP affinity sticks', async (t) => {
    const r = await many('node', '10.96.0.12', 9)
    t.same(r.errors, [])
    t.equal(Object.keys(r.counts).length, 1, `one pod answered every request (${JSON.stringify(r.counts)})`)
    t.match(tool('nft', ['list', 'table', 'ip', 'kube-proxy']), /set affinity-[A-Z2-7]{8}-default\/sticky\/tcp\/http__10\.244\.0\.\d+\/8080 \{\s+type ipv4_addr\s+size \d+\s+flags dynamic,timeout\s+timeout 1m/, 'the affinity sets as kube-proxy makes them')
  })

  t.test('ClusterIP from the node reaches every pod', async (t) => {
    const r = await many('node', '10.96.0.10', 60)
    t.same(r.errors, [])
    t.same(Object.keys(r.counts).sort(), pods.map((p) => p.name))
  })

  t.test('ClusterIP from each pod, a pod reaching itself (hairpin) masqueraded', async (t) => {
    for (const p of pods) {
      const r = await many(p.name, '10.96.0.10', 45)
      t.same(r.errors, [], `${p.name}: no failed request`)
      t.ok((r.counts[p.name] ?? 0) > 0, `${p.name} reached itself through the cluster IP`)
    }
    const who = await node!.requestMany(podName(0), { host: '10.96.0.10', port: 80, path: '/whoami', timeoutMs: 3000 }, 45)
    t.same(who.errors, [])
    t.same([...new Set(who.bodies.map((b) => b.split(':')[0]))].sort(), ['10.244.0.1', '10.244.0.11'], 'hairpinned: from the bridge address; else the pod itself')
  })

  t.test('NodePort from the node and from off the cluster', async (t) => {
    const r = await many('node', NODE_IP, 45, 30080)
    t.same(r.errors, [])
    t.equal(Object.keys(r.counts).length, 3)
    const who = await outside!.requestMany(`${tag}cl`, { host: NODE_IP, port: 30080, path: '/whoami', timeoutMs: 3000 }, 3)
    t.same(who.errors, [], 'from the off-cluster client')
    t.same([...new Set(who.bodies.map((b) => b.split(':')[0]))], ['10.244.0.1'], 'Cluster policy: masqueraded')
  })

  t.test('externalTrafficPolicy Local: the node port serves only the local endpoint, keeping the source', async (t) => {
    const r = await many(`${tag}cl`, NODE_IP, 9, 30081, outside)
    t.same(r.errors, [])
    t.same(Object.keys(r.counts), [podName(0)], 'only the local endpoint')
    const who = await outside!.requestMany(`${tag}cl`, { host: NODE_IP, port: 30081, path: '/whoami', timeoutMs: 3000 }, 2)
    t.same([...new Set(who.bodies.map((b) => b.split(':')[0]))], ['192.168.70.2'], 'the client address preserved')
    const fromNode = await many('node', NODE_IP, 30, 30081)
    t.same(fromNode.errors, [])
    t.ok(Object.keys(fromNode.counts).length > 1, 'the node itself is routed to every endpoint (short-circuit local traffic)')
  })

  t.test('a service without endpoints is refused, not blackholed', async (t) => {
    const r = await node!.request('node', { host: '10.96.0.14', port: 80, timeoutMs: 3000 })
    t.match(!r.ok && r.error, /ECONNREFUSED/)
    const p = await node!.request(podName(1), { host: '10.96.0.14', port: 80, timeoutMs: 3000 })
    t.match(!p.ok && p.error, /ECONNREFUSED/, 'from a pod too (filter forward)')
  })

  t.test('an endpoint removed: one transaction, traffic follows', async (t) => {
    d.put(slice('web', all.slice(0, 2)))
    const r = await d.sync()
    t.same(r.errors, [])
    t.notOk(r.full)
    t.ok((r.ops.nftables ?? 0) > 0 && (r.ops.nftables ?? 0) < 12, `a few edits (${r.ops.nftables})`)
    const m = await many('node', '10.96.0.10', 30)
    t.same(m.errors, [])
    t.same(Object.keys(m.counts).sort(), [podName(0), podName(1)])
  })
})
