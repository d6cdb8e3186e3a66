// The daemon in both modes on one node, with real TCP through a fake CNI:
// iptables mode programs kube-proxy's chain layout; switching to IPVS mode
// removes it and programs IPVS; restarting in the same mode rewrites nothing;
// switching back removes IPVS mode's virtual servers, sets and kube-ipvs0.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNode, numberedPods, sh, tool, type FakeNode } from '../support/cni.mjs'
import { startDaemon, writeManifest, type RunningDaemon } from '../support/daemon.mjs'

const NODE = 'node1'
const pods = numberedPods('m', 41)
// kube-proxy's chain name for default/web:http over TCP (sha256, base32, 16 characters).
const SVC_CHAIN = 'KUBE-SVC-'

const dir = mkdtempSync(join(tmpdir(), 'tsproxy-modes-'))
writeManifest(dir, 'web.json', [
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-x', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: pods.map((p) => ({ addresses: [p.ip], nodeName: NODE })),
  },
])

let node: FakeNode
let daemon: RunningDaemon | undefined
const args = [`--hostname-override=${NODE}`, '--cluster-cidr=10.244.0.0/16']
const run = async (mode: string): Promise<RunningDaemon> => (daemon = await startDaemon({ manifests: dir, args: [...args, `--proxy-mode=${mode}`] }))
const nat = (): string => tool('iptables-legacy-save', ['-t', 'nat'])

t.before(async () => {
  // iptables mode binds cluster IPs nowhere: the node needs a route for them
  // (any) so that locally made connections get as far as the DNAT.
  sh('ip link set lo up; ip link add eth0 type dummy; ip addr add 192.168.50.10/24 dev eth0; ip link set eth0 up; ip route add default dev eth0')
  node = await makeNode({ pods })
})
t.teardown(async () => {
  await daemon?.stop()
  await node?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

const balanced = async (t: Test, what: string): Promise<void> => {
  // iptables mode chooses at random: 60 requests miss a pod with odds 3·(2/3)^60 ≈ 1e-10.
  const r = await node.requestMany('node', { host: '10.96.0.10', port: 80, timeoutMs: 3000 }, 60)
  t.same(r.errors, [], `${what}: no failed request`)
  t.same(Object.keys(r.counts).sort(), ['m1', 'm2', 'm3'], `${what}: all three pods answer`)
}

t.test('iptables mode: kube-proxy\'s chain layout, and traffic', async (t) => {
  await run('iptables')
  const text = nat()
  t.match(text, /-A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p tcp -m comment --comment "default\/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-[A-Z2-7]{16}/, 'the KUBE-SERVICES match')
  t.equal((text.match(/-m statistic --mode random --probability/g) ?? []).length, 2, 'two statistic rules for three endpoints (the last takes the rest)')
  t.equal((text.match(/-j DNAT --to-destination 10\.244\.0\.4[123]:8080/g) ?? []).length, 3, 'a DNAT per endpoint')
  t.notMatch(tool('ip', ['-o', 'link']), /kube-ipvs0/, 'no kube-ipvs0 in iptables mode')
  t.match(tool('iptables-legacy-save', ['-t', 'filter']), /-A KUBE-FIREWALL ! -s 127\.0\.0\.0\/8 -d 127\.0\.0\.0\/8 -m comment --comment "block incoming localnet connections"/, 'localhost node ports (the default): the localnet drop rule')
  await balanced(t, 'iptables mode')
  const status = sh('node dist/proxy/main.js status')
  t.match(status, /default\/web:http\s+TCP 10\.96\.0\.10:80\s+random\s+\d+ packets/, 'tsproxy status in iptables mode')
  await daemon!.stop()
})

t.test('switching to IPVS mode removes the iptables-mode chains', async (t) => {
  const d = await run('ipvs')
  t.ok(d.logs.some((l) => l.msg === 'removing iptables-mode state (the mode changed)'), 'it says so')
  t.notMatch(nat(), new RegExp(`${SVC_CHAIN}|KUBE-SEP-|KUBE-NODEPORTS`), 'no KUBE-SVC/SEP/NODEPORTS chain left')
  const filter = tool('iptables-legacy-save', ['-t', 'filter'])
  t.notMatch(filter, /KUBE-EXTERNAL-SERVICES|KUBE-NODEPORTS/, 'nor the iptables-mode filter chains')
  // kube-proxy's cleanup leaves the chain it shares with kubelet, its rule and its jumps.
  t.match(filter, /^-A INPUT -j KUBE-FIREWALL$/m, 'kubelet\'s KUBE-FIREWALL still jumped to from INPUT')
  t.match(filter, /^-A OUTPUT -j KUBE-FIREWALL$/m, 'and from OUTPUT')
  t.match(filter, /^-A KUBE-FIREWALL ! -s 127\.0\.0\.0\/8 -d 127\.0\.0\.0\/8 .*-j DROP$/m, 'with its rule')
  t.ok(tool('ipvsadm', ['-Sn']).split('\n').includes('-A -t 10.96.0.10:80 -s rr'), 'the IPVS virtual server is there')
  await balanced(t, 'IPVS mode')
  await d.stop()
})

t.test('a restart in the same mode removes nothing and writes nothing', async (t) => {
  const d = await run('ipvs')
  t.notOk(d.logs.some((l) => /^removing/.test(l.msg)), 'no mode-switch cleanup')
  const first = d.logs.find((l) => l.msg === 'full sync')!
  t.same(first.ops, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0, conntrack: 0 }, 'the first sync writes nothing')
  await d.stop()
})

t.test('switching back to iptables mode removes IPVS mode\'s state', async (t) => {
  const d = await run('iptables')
  t.ok(d.logs.some((l) => l.msg === 'removing IPVS-mode state (the mode changed)'), 'it says so')
  t.equal(tool('ipvsadm', ['-Sn']).trim(), '', 'no virtual server left')
  t.notMatch(tool('ip', ['-o', 'link']), /kube-ipvs0/, 'no kube-ipvs0')
  t.notMatch(tool('ipset', ['list', '-n']), /KUBE-/, 'no IPVS-mode set')
  t.match(nat(), /KUBE-SVC-[A-Z2-7]{16}/, 'the iptables layout is back')
  await balanced(t, 'iptables mode again')
  await d.stop()
  daemon = undefined
})

t.test('tsproxy cleanup removes iptables mode\'s chains too', async (t) => {
  sh('iptables-legacy -t nat -N OTHER-CHAIN')
  t.match(sh('node dist/proxy/main.js cleanup 2>&1'), /"mode":"iptables"/, 'it cleans up iptables mode')
  const text = nat()
  t.notMatch(text, /KUBE-/, 'no KUBE chain or jump left in nat')
  t.match(text, /:OTHER-CHAIN/, 'the foreign chain stays')
  // kube-proxy's CleanupLeftovers leaves kubelet's KUBE-FIREWALL: the chain, its rule, its INPUT and OUTPUT jumps.
  const filter = tool('iptables-legacy-save', ['-t', 'filter']).split('\n').filter((l) => /KUBE-/.test(l))
  t.same(filter, [
    ':KUBE-FIREWALL - [0:0]',
    '-A INPUT -j KUBE-FIREWALL',
    '-A OUTPUT -j KUBE-FIREWALL',
    '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
  ], 'in filter, only kubelet\'s KUBE-FIREWALL is left')
})
