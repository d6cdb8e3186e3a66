// The iptables proxier (kube-proxy's iptables mode) driven in-process against
// the real kernel: the rules read back with iptables-legacy-save exactly as
// kube-proxy writes them, and real TCP through a fake CNI (three pods serving
// HTTP on 8080) plus an off-cluster client on a second bridge.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { makeNode, numberedPods, sh, tool, type FakeNode } from '../support/cni.mjs'
import { IptablesProxier, type IptablesProxierOptions } from '../../dist/proxy/iptables/proxier.js'
import { getSysctl, setSysctl } from '../../dist/sysctl.js'
import type { SyncReport } from '../../dist/proxy/types.js'
import { openIptablesDataplane, type IptablesDataplane } from '../../dist/proxy/iptables/dataplane.js'
import { parseEndpointSlice, parseService, type EndpointSlice, type ServiceObject } from '../../dist/proxy/model/index.js'
import { changeFeed } from '../support/builders.js'
import { native } from '../../dist/native.js'

type Json = Record<string, any>
const NODE = 'node1'
const NODE_IP = '192.168.50.10'
const pods = numberedPods('p', 11)

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

/** A proxier over the real kernel, fed through the change trackers. */
function driver(dp: IptablesDataplane, clusterCIDR: string, options: IptablesProxierOptions = {}) {
  const feed = changeFeed(NODE)
  const proxier = new IptablesProxier(dp, { clusterCIDR, ...options })
  return {
    proxier,
    put: feed.put,
    deleteService: feed.deleteService,
    sync(full = false): Promise<SyncReport> {
      return proxier.sync(feed.state, feed.pending().servicePorts, { full })
    },
  }
}

/** kubelet's chain as kube-proxy also writes it (localhost node ports): what cleanup leaves in filter. */
const KUBELET_FIREWALL = [
  '-A INPUT -j KUBE-FIREWALL',
  '-A OUTPUT -j KUBE-FIREWALL',
  '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
]

const save = (table: string): string[] => tool('iptables-legacy-save', ['-t', table]).split('\n')
const kubeChains = (table: string): string[] => save(table).filter((l) => l.startsWith(':KUBE-')).map((l) => l.slice(1).split(' ')[0]!)

let node: FakeNode
let outside: FakeNode
let dp: IptablesDataplane

t.before(async () => {
  // A default route, as every node has: without one the cluster IPs (bound nowhere in this mode) are unreachable before DNAT.
  sh(`ip link set lo up; ip link add eth0 type dummy; ip addr add ${NODE_IP}/24 dev eth0; ip link set eth0 up; ip route add default via 192.168.50.1 dev eth0`)
  node = await makeNode({ pods })
  // An off-cluster client: its own bridge and subnet, routed through the node.
  outside = await makeNode({ bridge: 'cbr1', gateway: '192.168.70.1', pods: [{ name: 'client', ip: '192.168.70.2' }] })
  dp = await openIptablesDataplane()
})

t.teardown(async () => {
  await dp?.close()
  await outside?.destroy()
  await node?.destroy()
})

t.test('nginx-basic reads back as kube-proxy writes it; a resync finds nothing to do', async (t) => {
  const d = driver(dp, '192.168.0.0/16')
  d.put(
    service('nginx-basic', { clusterIP: '10.105.250.129', ports: [{ name: 'http', port: 80, targetPort: 80 }] }),
    slice('nginx-basic', [{ ip: '192.168.0.7' }, { ip: '192.168.1.3', node: 'n2' }, { ip: '192.168.1.4', node: 'n2' }], 80),
  )
  const r = await d.sync()
  t.same(r.errors, [])
  const nat = save('nat')
  const expected = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-SEP-BEMSLTMJA26ZCLYL -s 192.168.0.7/32 -m comment --comment "default/nginx-basic:http" -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-BEMSLTMJA26ZCLYL -p tcp -m comment --comment "default/nginx-basic:http" -m tcp -j DNAT --to-destination 192.168.0.7:80',
    '-A KUBE-SEP-UF65ZV4QBOPNRP6O -s 192.168.1.3/32 -m comment --comment "default/nginx-basic:http" -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-UF65ZV4QBOPNRP6O -p tcp -m comment --comment "default/nginx-basic:http" -m tcp -j DNAT --to-destination 192.168.1.3:80',
    '-A KUBE-SEP-WQR67ZLSTPDXXME4 -s 192.168.1.4/32 -m comment --comment "default/nginx-basic:http" -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-WQR67ZLSTPDXXME4 -p tcp -m comment --comment "default/nginx-basic:http" -m tcp -j DNAT --to-destination 192.168.1.4:80',
    '-A KUBE-SERVICES -d 10.105.250.129/32 -p tcp -m comment --comment "default/nginx-basic:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WWRFY3PZ7W3FGMQW',
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    '-A KUBE-SVC-WWRFY3PZ7W3FGMQW ! -s 192.168.0.0/16 -d 10.105.250.129/32 -p tcp -m comment --comment "default/nginx-basic:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
    '-A KUBE-SVC-WWRFY3PZ7W3FGMQW -m comment --comment "default/nginx-basic:http -> 192.168.0.7:80" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-BEMSLTMJA26ZCLYL',
    '-A KUBE-SVC-WWRFY3PZ7W3FGMQW -m comment --comment "default/nginx-basic:http -> 192.168.1.3:80" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-UF65ZV4QBOPNRP6O',
    '-A KUBE-SVC-WWRFY3PZ7W3FGMQW -m comment --comment "default/nginx-basic:http -> 192.168.1.4:80" -j KUBE-SEP-WQR67ZLSTPDXXME4',
  ]
  t.same(nat.filter((l) => l.startsWith('-A ')), expected, 'every nat rule, in iptables-save order')
  t.same(kubeChains('nat').sort(), ['KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-SEP-BEMSLTMJA26ZCLYL', 'KUBE-SEP-UF65ZV4QBOPNRP6O', 'KUBE-SEP-WQR67ZLSTPDXXME4', 'KUBE-SERVICES', 'KUBE-SVC-WWRFY3PZ7W3FGMQW'])
  const filter = save('filter')
  t.same(filter.filter((l) => /^-A (INPUT|OUTPUT) /.test(l))[0], '-A INPUT -j KUBE-FIREWALL', 'kubelet\'s chain first in INPUT')
  for (const line of [
    '-A INPUT -j KUBE-FIREWALL',
    '-A OUTPUT -j KUBE-FIREWALL',
    '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
    '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
    '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ])
    t.ok(filter.includes(line), `filter has ${line}`)

  // Written in the canonical form: read back, everything compares equal.
  const again = await d.sync(true)
  t.equal(again.full, true)
  t.equal(again.ops.iptables, 0, 'a full sync right after writes nothing')
  const fresh = driver(dp, '192.168.0.0/16')
  fresh.put(
    service('nginx-basic', { clusterIP: '10.105.250.129', ports: [{ name: 'http', port: 80, targetPort: 80 }] }),
    slice('nginx-basic', [{ ip: '192.168.0.7' }, { ip: '192.168.1.3', node: 'n2' }, { ip: '192.168.1.4', node: 'n2' }], 80),
  )
  const adopted = await fresh.sync()
  t.equal(adopted.ops.iptables, 0, 'a new proxier adopts the tables without a write')
  const c = await fresh.proxier.cleanup()
  t.equal(c.chains, 8 + 5, 'nat 8, filter 5 (not kubelet\'s KUBE-FIREWALL)')
  t.same(kubeChains('nat'), [])
  t.same(kubeChains('filter'), ['KUBE-FIREWALL'])
  t.same(save('nat').filter((l) => l.startsWith('-A ')), [], 'no jump left')
  t.same(save('filter').filter((l) => l.startsWith('-A ')), KUBELET_FIREWALL, 'KUBE-FIREWALL, its rule and its two jumps stay, as kube-proxy\'s cleanup leaves them')
})

const http = (port: number, extra: Json = {}) => [{ name: 'http', protocol: 'TCP', port, targetPort: 8080, ...extra }]
const all = pods.map((p) => ({ ip: p.ip }))
let d: ReturnType<typeof driver>

/** Per full-sync read of a table: the chains the proxier asked to decode, and whether the survey re-read the cached snapshot. */
let reads: { table: string; decoded: string[]; reread: boolean }[] = []
/** `real`, its transactions' surveys and reads recorded in `reads`. */
function spied(real: IptablesDataplane): IptablesDataplane {
  return {
    ...real,
    begin(table) {
      const tx = real.begin(table)
      let reread = false
      return new Proxy(tx, {
        get(target, prop) {
          if (prop === 'surveyTable')
            return async () => {
              const s = await target.surveyTable!()
              reread = s.snapshotReread
              return s
            }
          if (prop === 'readChains')
            return async (chains: readonly string[]) => {
              reads.push({ table, decoded: [...chains], reread })
              return target.readChains!(chains)
            }
          const v = (target as unknown as Record<string | symbol, unknown>)[prop]
          return typeof v === 'function' ? v.bind(target) : v
        },
      })
    },
  }
}
const many = (from: string, host: string, n: number, port = 80, f: FakeNode = node) => f.requestMany(from, { host, port, timeoutMs: 3000 }, n)

t.test('traffic', async (t) => {
  d = driver(spied(dp), '10.244.0.0/16')
  t.same(await d.proxier.setup(), ['net.ipv4.conf.all.route_localnet'], 'ip_forward was on already (the fake CNI sets it); route_localnet for localhost node ports')
  t.equal(await getSysctl('net.ipv4.conf.all.route_localnet'), 1)
  d.put(
    service('web', { clusterIP: '10.96.0.10', ports: http(80) }),
    slice('web', all),
    service('web-np', { type: 'NodePort', clusterIP: '10.96.0.11', ports: http(80, { nodePort: 30080 }) }),
    slice('web-np', all),
    service('sticky', { clusterIP: '10.96.0.12', ports: http(80), sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
    slice('sticky', all),
    service('local', { type: 'NodePort', clusterIP: '10.96.0.13', ports: http(80, { nodePort: 30081 }), externalTrafficPolicy: 'Local' }),
    slice('local', [{ ip: pods[0]!.ip }, { ip: pods[1]!.ip, node: 'node2' }, { ip: pods[2]!.ip, node: 'node2' }]),
    service('empty', { clusterIP: '10.96.0.14', ports: http(80) }),
  )
  const r = await d.sync()
  t.same(r.errors, [])
  t.equal(r.full, true)

  t.test('ClusterIP from the node reaches every pod', async (t) => {
    // The rules choose at random: 60 requests miss a pod with odds 3·(2/3)^60 ≈ 1e-10.
    const r = await many('node', '10.96.0.10', 60)
    t.same(r.errors, [])
    t.same(Object.keys(r.counts).sort(), ['p1', 'p2', 'p3'])
  })

  t.test('ClusterIP from each pod, a pod reaching itself (hairpin) masqueraded', async (t) => {
    for (const p of pods) {
      const r = await many(p.name, '10.96.0.10', 60)
      t.same(r.errors, [], `${p.name}: no failed request`)
      t.ok((r.counts[p.name] ?? 0) > 0, `${p.name} reached itself through the cluster IP`)
    }
    const who = await node.requestMany('p1', { host: '10.96.0.10', port: 80, path: '/whoami', timeoutMs: 3000 }, 60)
    t.same(who.errors, [])
    t.same([...new Set(who.bodies.map((b) => b.split(':')[0]))].sort(), ['10.244.0.1', '10.244.0.11'], 'hairpinned: from the bridge address; else the pod itself')
  })

  t.test('NodePort from the node and from off the cluster', async (t) => {
    const r = await many('node', NODE_IP, 60, 30080)
    t.same(r.errors, [])
    t.equal(Object.keys(r.counts).length, 3)
    const o = await many('client', NODE_IP, 6, 30080, outside)
    t.same(o.errors, [], 'from the off-cluster client')
    const who = await outside.requestMany('client', { host: NODE_IP, port: 30080, path: '/whoami', timeoutMs: 3000 }, 3)
    t.same([...new Set(who.bodies.map((b) => b.split(':')[0]))], ['10.244.0.1'], 'Cluster policy: masqueraded')
  })

  t.test('NodePort on 127.0.0.1 from the node (localhost node ports, the default), masqueraded', async (t) => {
    const r = await many('node', '127.0.0.1', 6, 30080)
    t.same(r.errors, [])
    t.equal(Object.values(r.counts).reduce((a, b) => a + b, 0), 6, 'every request answered by a pod')
    const who = await node.requestMany('node', { host: '127.0.0.1', port: 30080, path: '/whoami', timeoutMs: 3000 }, 2)
    t.same([...new Set(who.bodies.map((b) => b.split(':')[0]))], ['10.244.0.1'], 'from the bridge address, not 127.0.0.1')
  })

  t.test('ClientIP affinity sticks', async (t) => {
    const r = await many('node', '10.96.0.12', 9)
    t.same(r.errors, [])
    t.equal(Object.keys(r.counts).length, 1, `one pod answered every request (${JSON.stringify(r.counts)})`)
  })

  t.test('externalTrafficPolicy Local: the node port serves only the local endpoint, keeping the source', async (t) => {
    const r = await many('client', NODE_IP, 9, 30081, outside)
    t.same(r.errors, [])
    t.same(Object.keys(r.counts), ['p1'], 'only the local endpoint')
    const who = await outside.requestMany('client', { host: NODE_IP, port: 30081, path: '/whoami', timeoutMs: 3000 }, 2)
    t.same([...new Set(who.bodies.map((b) => b.split(':')[0]))], ['192.168.70.2'], 'the client address preserved')
    const fromNode = await many('node', NODE_IP, 30, 30081)
    t.same(fromNode.errors, [])
    t.ok(Object.keys(fromNode.counts).length > 1, 'the node itself is routed to every endpoint (route LOCAL traffic)')
  })

  t.test('a service without endpoints is refused, not blackholed', async (t) => {
    const r = await node.request('node', { host: '10.96.0.14', port: 80, timeoutMs: 3000 })
    t.equal(r.ok, false)
    t.match(!r.ok && r.error, /ECONNREFUSED/)
    const p = await node.request('p2', { host: '10.96.0.14', port: 80, timeoutMs: 3000 })
    t.match(!p.ok && p.error, /ECONNREFUSED/, 'from a pod too (filter FORWARD)')
  })

  t.test('endpoint removal: traffic follows, one nat commit touching only that port', async (t) => {
    d.put(slice('web', all.slice(1)))
    const before = save('nat').filter((l) => l.startsWith('-A KUBE-SERVICES'))
    const r = await d.sync()
    t.same(r.errors, [])
    t.equal(r.full, false)
    t.same(save('nat').filter((l) => l.startsWith('-A KUBE-SERVICES')), before, 'KUBE-SERVICES unchanged')
    const m = await many('node', '10.96.0.10', 40)
    t.same(m.errors, [])
    t.same(Object.keys(m.counts).sort(), ['p2', 'p3'])
  })

  t.test('a new service is inserted before the node-ports jump; a deleted one goes', async (t) => {
    d.put(service('late', { clusterIP: '10.96.0.20', ports: http(80) }), slice('late', [{ ip: pods[2]!.ip }]))
    await d.sync()
    const ks = save('nat').filter((l) => l.startsWith('-A KUBE-SERVICES'))
    t.match(ks.at(-1), /KUBE-NODEPORTS$/, 'the node-ports jump stays last')
    t.ok(ks.some((l) => l.includes('-d 10.96.0.20/32')))
    const r = await many('node', '10.96.0.20', 3)
    t.same(Object.keys(r.counts), ['p3'])
  })

  t.test('two services on one cluster IP:port: only the first by name has rules; the other takes over when it goes', async (t) => {
    const rules = () => save('nat').filter((l) => l.startsWith('-A KUBE-SERVICES -d 10.96.0.21/32'))
    // dup-b first: arrival order does not decide.
    d.put(service('dup-b', { clusterIP: '10.96.0.21', ports: http(80) }), slice('dup-b', [{ ip: pods[1]!.ip }, { ip: pods[2]!.ip }]))
    await d.sync()
    d.put(service('dup-a', { clusterIP: '10.96.0.21', ports: http(80) }), slice('dup-a', [{ ip: pods[0]!.ip }]))
    let r = await d.sync()
    t.same(r.errors, [])
    t.equal(r.conflicts, 1, 'counted')
    t.equal(rules().length, 1, 'one rule for 10.96.0.21:80 in nat KUBE-SERVICES')
    t.match(rules()[0], /"default\/dup-a:http cluster IP"/, 'dup-a\'s')
    t.same((await many('node', '10.96.0.21', 6)).counts, { p1: 6 }, 'only dup-a\'s pod answers')
    d.deleteService('dup-a')
    r = await d.sync()
    t.equal(r.conflicts, 0)
    t.equal(rules().length, 1)
    t.match(rules()[0], /"default\/dup-b:http cluster IP"/, 'dup-a deleted: dup-b\'s rule')
    const m = await many('node', '10.96.0.21', 30)
    t.same(m.errors, [])
    t.same(Object.keys(m.counts).sort(), ['p2', 'p3'], 'dup-b\'s pods answer')
    d.deleteService('dup-b')
    await d.sync()
    t.same(rules(), [])
  })

  t.test('drift: a flushed KUBE-SERVICES is repaired by a full sync', async (t) => {
    tool('iptables-legacy', ['-w', '-t', 'nat', '-F', 'KUBE-SERVICES'])
    const broken = await node.request('node', { host: '10.96.0.10', port: 80, timeoutMs: 1500 })
    t.equal(broken.ok, false, 'the cluster IP does not answer without its rule')
    const partial = await d.sync()
    t.equal(partial.ops.iptables, 0, 'a partial sync does not look')
    const r = await d.sync(true)
    t.same(r.errors, [])
    t.equal(r.repaired.iptables, 1, 'one chain repaired')
    const m = await many('node', '10.96.0.10', 6)
    t.same(m.errors, [])
  })

  t.test("drift in a service's own chain: the digest disagrees, that chain is rewritten; a foreign rule keeps its counters", async (t) => {
    // A foreign chain with a counted rule: every full-sync commit replaces the table, its counters must survive it.
    tool('iptables-legacy', ['-w', '-t', 'nat', '-N', 'COUNTED'])
    tool('iptables-legacy', ['-w', '-t', 'nat', '-A', 'COUNTED', '-j', 'RETURN'])
    // First in OUTPUT: a packet DNATed by KUBE-SERVICES would not go on to a rule after it.
    tool('iptables-legacy', ['-w', '-t', 'nat', '-I', 'OUTPUT', '1', '-j', 'COUNTED'])
    await node.request('node', { host: '10.96.0.10', port: 80, timeoutMs: 1500 })
    const counted = (): string => tool('iptables-legacy-save', ['-c', '-t', 'nat']).split('\n').find((l) => l.endsWith('-A COUNTED -j RETURN'))!
    const before = counted()
    t.notMatch(before, /^\[0:0\]/, `the foreign rule counted packets (${before})`)
    // One of web's SEP chains: its DNAT rule pointed elsewhere behind our back.
    const webSep = save('nat').find((l) => /^-A KUBE-SEP-\S+ .*"default\/web:http" .*-j DNAT --to-destination 10\.244\.0\.12:8080$/.test(l))!
    t.ok(webSep, 'a SEP chain of web')
    const sepChain = webSep.split(' ')[1]!
    const good = save('nat').filter((l) => l.startsWith(`-A ${sepChain} `))
    tool('iptables-legacy', ['-w', '-t', 'nat', '-R', sepChain, '2', ...webSep.replace(`-A ${sepChain} `, '').replace('10.244.0.12:8080', '10.244.0.99:8080').match(/"[^"]*"|\S+/g)!.map((x) => x.replace(/^"|"$/g, ''))])
    t.not(save('nat').filter((l) => l.startsWith(`-A ${sepChain} `)).join('\n'), good.join('\n'), 'the chain drifted')
    const r = await d.sync(true)
    t.same(r.errors, [])
    t.equal(r.repaired.iptables, 1, 'that chain alone repaired')
    t.same(save('nat').filter((l) => l.startsWith(`-A ${sepChain} `)), good, 'rewritten as it was')
    const after = counted()
    const n = (l: string): number => Number(/^\[(\d+):/.exec(l)![1])
    t.ok(n(after) >= n(before), `the foreign rule's counters kept across the full sync's commit (${before} → ${after})`)
    const again = await d.sync(true)
    t.equal(again.repaired.iptables, 0, 'then nothing differs')
    tool('iptables-legacy', ['-w', '-t', 'nat', '-D', 'OUTPUT', '-j', 'COUNTED'])
    tool('iptables-legacy', ['-w', '-t', 'nat', '-F', 'COUNTED'])
    tool('iptables-legacy', ['-w', '-t', 'nat', '-X', 'COUNTED'])
  })

  t.test('drift that neither the table summary nor the xtables lock shows: a resync that decoded nothing still finds it', async (t) => {
    t.same((await d.sync(true)).errors, [])
    reads = []
    const quiet = await d.sync(true)
    t.equal(quiet.ops.iptables, 0, 'nothing drifted: nothing written')
    const perPort = (c: string): boolean => /^KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(c)
    const natReads = reads.filter((r) => r.table === 'nat')
    t.equal(natReads.length, 1, 'nat read once')
    t.same(natReads[0]!.decoded.filter(perPort), [], 'no per-port chain decoded: each hashes as when it was last digested')
    t.ok(natReads[0]!.decoded.includes('KUBE-SERVICES'), 'the shared chains are decoded every time')
    // One of web's SEP chains: its DNAT to another pod address of the same length,
    // written by iptables-legacy under another lock file (our lock watch sees no one).
    const webSep = save('nat').find((l) => /^-A KUBE-SEP-\S+ .*"default\/web:http" .*-j DNAT --to-destination 10\.244\.0\.13:8080$/.test(l))!
    t.ok(webSep, 'a SEP chain of web')
    const sepChain = webSep.split(' ')[1]!
    const good = save('nat').filter((l) => l.startsWith(`-A ${sepChain} `))
    const info = native.iptc.tableInfo(4, 'nat') as { size: number; entries: number }
    const args = webSep.replace(`-A ${sepChain} `, '').replace('10.244.0.13:8080', '10.244.0.19:8080').match(/"[^"]*"|\S+/g)!.map((x) => x.replace(/^"|"$/g, ''))
    execFileSync('iptables-legacy', ['-t', 'nat', '-R', sepChain, String(good.indexOf(webSep) + 1), ...args], { env: { ...process.env, XTABLES_LOCKFILE: '/run/tsproxy-ktest-other.lock' } })
    t.not(save('nat').filter((l) => l.startsWith(`-A ${sepChain} `)).join('\n'), good.join('\n'), 'the chain drifted')
    const after = native.iptc.tableInfo(4, 'nat') as { size: number; entries: number }
    t.same([after.size, after.entries], [info.size, info.entries], "the table's size and entry count are unchanged")
    reads = []
    const r = await d.sync(true)
    t.same(r.errors, [])
    t.equal(r.repaired.iptables, 1, 'that chain alone repaired')
    t.same(save('nat').filter((l) => l.startsWith(`-A ${sepChain} `)), good, 'rewritten as it was')
    const nat = reads.find((x) => x.table === 'nat')!
    t.equal(nat.reread, true, 'the cached snapshot hashed otherwise than the kernel: read again')
    t.same(nat.decoded.filter(perPort), [sepChain], 'that chain alone decoded')
    const again = await d.sync(true)
    t.equal(again.repaired.iptables, 0, 'then nothing differs')
  })

  t.test('status names the ports with their counters', async (t) => {
    const s = await d.proxier.status()
    const web = s.find((x) => x.servicePort === 'default/web:http/TCP')
    t.ok(web && web.packets > 0, 'packets through web counted')
    t.notOk(s.find((x) => x.servicePort === 'default/empty:http/TCP'), 'no nat rules for empty')
  })

  t.test('cleanup leaves only non-KUBE chains', async (t) => {
    tool('iptables-legacy', ['-w', '-t', 'nat', '-N', 'MINE'])
    tool('iptables-legacy', ['-w', '-t', 'nat', '-A', 'POSTROUTING', '-j', 'MINE'])
    const c = await d.proxier.cleanup()
    t.ok(c.chains > 10)
    t.same(kubeChains('nat'), [])
    t.same(kubeChains('filter'), ['KUBE-FIREWALL'], 'kubelet\'s chain stays')
    t.same(save('nat').filter((l) => l.startsWith('-A ')), ['-A POSTROUTING -j MINE'], 'only the foreign rule is left')
    t.same(save('filter').filter((l) => l.startsWith('-A ')), KUBELET_FIREWALL)
  })
})

t.test('localhostNodePorts false, nodePortAddresses: the node-ports jumps and who they let in', async (t) => {
  const objs = [service('web-np', { type: 'NodePort', clusterIP: '10.96.0.11', ports: http(80, { nodePort: 30080 }) }), slice('web-np', all)]
  const refused = async (host: string): Promise<void> => {
    const r = await node.request('node', { host, port: 30080, timeoutMs: 3000 })
    t.match(!r.ok && r.error, /ECONNREFUSED/, `${host}:30080 refused`)
  }
  const answers = async (host: string): Promise<void> => {
    const r = await many('node', host, 3, 30080)
    t.same(r.errors, [], `${host}:30080 answers`)
  }
  const tail = (): string[] => save('nat').filter((l) => l.startsWith('-A KUBE-SERVICES') && l.endsWith('-j KUBE-NODEPORTS'))
  const comment = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'

  const off = driver(dp, '10.244.0.0/16', { localhostNodePorts: false })
  t.same(await off.proxier.setup(), [], 'nothing to set (route_localnet is left as it is)')
  off.put(...objs)
  t.same((await off.sync()).errors, [])
  t.same(tail(), [`-A KUBE-SERVICES ! -d 127.0.0.0/8 ${comment} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`])
  t.ok(save('filter').includes('-A INPUT -j KUBE-FIREWALL'), 'KUBE-FIREWALL still jumped to')
  await refused('127.0.0.1')
  await answers(NODE_IP)

  const some = driver(dp, '10.244.0.0/16', { nodePortAddresses: ['192.168.50.0/24', '127.0.0.0/8'] })
  some.put(...objs)
  t.same((await some.sync()).errors, [])
  t.same(tail(), [`-A KUBE-SERVICES -d ${NODE_IP}/32 ${comment} -j KUBE-NODEPORTS`, `-A KUBE-SERVICES -d 127.0.0.1/32 ${comment} -j KUBE-NODEPORTS`])
  t.equal((await some.sync(true)).ops.iptables, 0, 'read back equal: a full resync writes nothing')
  await answers(NODE_IP)
  await answers('127.0.0.1')
  await refused('10.244.0.1') // a local address outside the CIDRs (the bridge's)

  const one = driver(dp, '10.244.0.0/16', { nodePortAddresses: ['192.168.50.0/24'] })
  one.put(...objs)
  t.same((await one.sync()).errors, [])
  t.same(tail(), [`-A KUBE-SERVICES -d ${NODE_IP}/32 ${comment} -j KUBE-NODEPORTS`], 'no 127.0.0.1: no localhost node ports')
  await refused('127.0.0.1')
  await one.proxier.cleanup()
  t.same(kubeChains('filter'), ['KUBE-FIREWALL'])
})

t.test('SCTP ports: -p sctp -m sctp, read back equal', async (t) => {
  const sd = driver(dp, '10.244.0.0/16')
  sd.put(
    service('sc', { type: 'NodePort', clusterIP: '10.96.0.30', ports: [{ name: 'sc', protocol: 'SCTP', port: 9, targetPort: 9, nodePort: 30009 }] }),
    parseEndpointSlice({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'sc-abc12', namespace: 'default', labels: { 'kubernetes.io/service-name': 'sc' } },
      addressType: 'IPv4',
      ports: [{ name: 'sc', protocol: 'SCTP', port: 9 }],
      endpoints: [{ addresses: [pods[0]!.ip], conditions: { ready: true }, nodeName: NODE }],
    }),
  )
  t.same((await sd.sync()).errors, [])
  const nat = save('nat').filter((l) => l.includes('default/sc:sc'))
  const svc = /-j (KUBE-SVC-[A-Z2-7]{16})$/.exec(nat.find((l) => l.startsWith('-A KUBE-SERVICES'))!)![1]!
  const ext = /-j (KUBE-EXT-[A-Z2-7]{16})$/.exec(nat.find((l) => l.startsWith('-A KUBE-NODEPORTS'))!)![1]!
  t.ok(nat.includes(`-A KUBE-SERVICES -d 10.96.0.30/32 -p sctp -m comment --comment "default/sc:sc cluster IP" -m sctp --dport 9 -j ${svc}`))
  t.ok(nat.includes(`-A KUBE-NODEPORTS -p sctp -m comment --comment "default/sc:sc" -m sctp --dport 30009 -j ${ext}`))
  t.ok(nat.some((l) => /^-A KUBE-SEP-[A-Z2-7]{16} -p sctp -m comment --comment "default\/sc:sc" -m sctp -j DNAT --to-destination 10\.244\.0\.11:9$/.test(l)), 'the DNAT')
  t.equal((await sd.sync(true)).ops.iptables, 0, 'a full resync writes nothing')
  sd.put(slice('sc', []))
  await sd.sync()
  t.ok(save('filter').includes('-A KUBE-SERVICES -d 10.96.0.30/32 -p sctp -m comment --comment "default/sc:sc has no endpoints" -m sctp --dport 9 -j REJECT --reject-with icmp-port-unreachable'), 'no endpoints: REJECT in filter')
  await sd.proxier.cleanup()
})

t.test('nf_conntrack_tcp_be_liberal, read at setup: 1 writes no ctstate INVALID drop, 0 writes it', async (t) => {
  const KEY = 'net.netfilter.nf_conntrack_tcp_be_liberal'
  const before = await getSysctl(KEY)
  t.teardown(() => setSysctl(KEY, before))
  const forward = (): string[] => save('filter').filter((l) => l.startsWith('-A KUBE-FORWARD '))
  const DROP = '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP'
  const start = async (liberal: number): Promise<ReturnType<typeof driver>> => {
    await setSysctl(KEY, liberal)
    const d = driver(dp, '10.244.0.0/16')
    await d.proxier.setup()
    d.put(service('web', { clusterIP: '10.96.0.10', ports: http(80) }), slice('web', all))
    t.same((await d.sync()).errors, [])
    return d
  }
  const liberal = await start(1)
  t.same(forward(), [
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ], '1: KUBE-FORWARD without the drop rule')
  t.equal(await liberal.proxier.ctStateInvalidDropped(), undefined, 'no rule, no counter to read')
  t.equal((await liberal.sync(true)).ops.iptables, 0, 'and a full resync agrees')
  const strict = await start(0)
  t.same(forward()[0], DROP, '0 at the next start: the drop rule first again')
  t.equal(forward().length, 3)
  t.equal(await strict.proxier.ctStateInvalidDropped(), 0)
  await strict.proxier.cleanup()
  t.same(kubeChains('filter'), ['KUBE-FIREWALL'])
})
