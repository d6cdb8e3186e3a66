// The tsproxy daemon on a dual-stack node: one IPVS proxier per family of the
// cluster CIDRs, fed by one sync. A dual-stack Service with an EndpointSlice
// per family, real TCP over both families from the node and from pods
// (IPv6 hairpin included), an IPv6 node port; IPv6 state read back with
// ipvsadm, ipset and ip6tables-legacy-save; no drift found where there is
// none; cleanup of both families.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNode, numberedPods, sh, tool, type FakeNode } from '../support/cni.mjs'
import { startDaemon, writeManifest, type RunningDaemon } from '../support/daemon.mjs'

const NODE = 'node1'
const NODE_IP6 = '2001:db8::10'
const pods = numberedPods('q', 21, { dualStack: true })
const VIP4 = '10.96.0.10'
const VIP6 = 'fd00:10:96::10'

const dir = mkdtempSync(join(tmpdir(), 'tsproxy-ktest6-'))
const slice = (name: string, family: 'IPv4' | 'IPv6', ips: string[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: family,
  ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: NODE })),
})
writeManifest(dir, 'web.json', [
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      type: 'NodePort',
      clusterIP: VIP4,
      clusterIPs: [VIP4, VIP6],
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'RequireDualStack',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }],
    },
  },
  slice('web-v4', 'IPv4', pods.map((p) => p.ip)),
  slice('web-v6', 'IPv6', pods.map((p) => p.ip6)),
])

let node: FakeNode
let daemon: RunningDaemon
t.before(async () => {
  sh(`ip link set lo up; ip link add eth0 type dummy; ip -6 addr add ${NODE_IP6}/64 dev eth0 nodad; ip link set eth0 up`)
  node = await makeNode({ gateway6: 'fd00:10:244::1', pods })
  daemon = await startDaemon({
    manifests: dir,
    args: [`--hostname-override=${NODE}`, '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56', '--ipvs-sync-period=1s'],
  })
})
t.teardown(async () => {
  await daemon?.stop()
  await node?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

t.test('both families programmed, IPv6 as ipvsadm, ipset and ip6tables-legacy-save read it', async (t) => {
  const saved = tool('ipvsadm', ['-Sn']).split('\n')
  for (const line of [
    `-A -t ${VIP4}:80 -s rr`,
    `-A -t [${VIP6}]:80 -s rr`,
    `-a -t [${VIP6}]:80 -r [fd00:10:244::21]:8080 -m -w 1`,
    `-A -t [${NODE_IP6}]:30080 -s rr`,
  ])
    t.ok(saved.includes(line), `ipvsadm -Sn has ${line}`)
  t.notOk(saved.some((l) => l.startsWith(`-a -t [${VIP6}]:80 -r 10.`)), 'no IPv4 endpoint behind the IPv6 VIP')
  const sets = tool('ipset', ['save']).split('\n')
  for (const line of [`add KUBE-6-CLUSTER-IP ${VIP6},tcp:80`, 'add KUBE-6-LOOP-BACK fd00:10:244::21,tcp:8080,fd00:10:244::21', 'add KUBE-6-NODE-PORT-TCP 30080', `add KUBE-CLUSTER-IP ${VIP4},tcp:80`])
    t.ok(sets.includes(line), `ipset save has ${line}`)
  const nat6 = tool('ip6tables-legacy-save', ['-t', 'nat']).split('\n')
  for (const line of [
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-6-LOOP-BACK dst,dst,src -j MASQUERADE',
    '-A KUBE-SERVICES ! -s fd00:10:244::/56 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-6-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
  ])
    t.ok(nat6.includes(line), `ip6tables-legacy-save -t nat has ${line}`)
  t.match(tool('ip', ['-6', '-o', 'addr', 'show', 'dev', 'kube-ipvs0']), `inet6 ${VIP6}/128`, 'the IPv6 VIP bound on kube-ipvs0')
})

t.test('TCP over both families, from the node and from each pod (IPv6 hairpin included)', async (t) => {
  for (const host of [VIP4, VIP6]) {
    const r = await node.requestMany('node', { host, port: 80, timeoutMs: 3000 }, 6)
    t.same(r.errors, [], `node -> ${host}: no failure`)
    t.same(Object.keys(r.counts).sort(), ['q1', 'q2', 'q3'], `node -> ${host}: all three pods`)
  }
  for (const p of pods) {
    const r = await node.requestMany(p.name, { host: VIP6, port: 80, path: '/whoami', timeoutMs: 3000 }, 6)
    t.same(r.errors, [], `${p.name} -> [${VIP6}]: no failure`)
    const sources = new Set(r.bodies.map((b) => b.slice(1, b.lastIndexOf(']'))))
    t.same([...sources].sort(), ['fd00:10:244::1', p.ip6].sort(), `${p.name}: masqueraded only when it reached itself`)
  }
  const np = await node.requestMany('node', { host: NODE_IP6, port: 30080, timeoutMs: 3000 }, 3)
  t.same(np.errors, [], 'the IPv6 node port answers')
})

t.test('resyncs of both families find nothing to repair (the read-back forms match)', async (t) => {
  const from = daemon.logs.length
  await daemon.waitLog((r) => r.msg === 'full sync', { from })
  const next = await daemon.waitLog((r) => r.msg === 'full sync', { from: daemon.logs.indexOf(daemon.logs.find((r, i) => i >= from && r.msg === 'full sync')!) + 1 })
  t.same(next.ops, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0, conntrack: 0 }, 'a periodic full sync writes nothing')
  t.equal(await daemon.metric('tsproxy_drift_repairs_total{subsystem="iptables"}'), undefined, 'no iptables/ip6tables repair ever counted')
})

t.test('cleanup removes both families', async (t) => {
  await daemon.stop()
  sh('node dist/proxy/main.js cleanup 2>&1')
  t.equal(tool('ipvsadm', ['-Sn']).trim(), '', 'no virtual server left')
  t.notMatch(tool('ipset', ['list', '-n']), /KUBE-/, 'no KUBE set of either family')
  t.notMatch(tool('ip6tables-legacy-save', ['-t', 'nat']), /KUBE-/, 'nothing in ip6tables nat')
  t.notMatch(tool('iptables-legacy-save', ['-t', 'nat']), /KUBE-/, 'nothing in iptables nat')
  t.notMatch(tool('ip', ['-o', 'link']), /kube-ipvs0/, 'no kube-ipvs0')
})
