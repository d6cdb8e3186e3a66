// kube-proxy's iptables-mode metrics from the daemon (iptables mode, manifests)
// against the real kernel, with iptables-legacy-save as the oracle: rules in our
// chains and rules written, the ctstate INVALID drop counter fed by real
// invalid packets forwarded from a pod, and commits the kernel's tables refuse
// (a chain of ours that another rule still jumps to cannot be deleted) counted
// as partial, then full, restore failures.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNode, numberedPods, sh, tool, type FakeNode } from '../support/cni.mjs'
import { startDaemon, until, writeManifest, type RunningDaemon } from '../support/daemon.mjs'

const NODE = 'node1'
const pods = numberedPods('p', 11, { count: 2 })
const dir = mkdtempSync(join(tmpdir(), 'tsproxy-ipt-metrics-'))

function write(ips: string[]): void {
  writeManifest(dir, 'web.json', [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-x', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: ips.map((ip) => ({ addresses: [ip], nodeName: NODE })),
    },
  ])
}

/** The rules of KUBE-* chains in one table, as iptables-legacy-save prints them (the jumps from built-in chains are not ours). */
const ours = (table: 'nat' | 'filter'): string[] => tool('iptables-legacy-save', ['-t', table]).split('\n').filter((l) => l.startsWith('-A KUBE-'))

let node: FakeNode
let daemon: RunningDaemon

t.before(async () => {
  sh('ip link set lo up; ip link add eth0 type dummy; ip addr add 192.168.50.10/24 dev eth0; ip link set eth0 up; ip route add default via 192.168.50.1 dev eth0')
  node = await makeNode({ pods })
  write(pods.map((p) => p.ip))
  daemon = await startDaemon({ manifests: dir, args: [`--hostname-override=${NODE}`, '--cluster-cidr=10.244.0.0/16', '--proxy-mode=iptables', '--iptables-min-sync-period=0s'] })
})

t.teardown(async () => {
  await daemon?.stop()
  await node?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

const total = (table: string) => daemon.metric(`kubeproxy_sync_proxy_rules_iptables_total{table="${table}"}`)
const last = (table: string) => daemon.metric(`kubeproxy_sync_proxy_rules_iptables_last{table="${table}"}`)

t.test('_iptables_total is the rules of our chains as iptables-legacy-save shows them; the first sync wrote them all (_last)', async (t) => {
  const nat = ours('nat').length
  const filter = ours('filter').length
  t.ok(nat > 10 && filter >= 3, `nat ${nat}, filter ${filter} (KUBE-FORWARD)`)
  t.equal(await total('nat'), nat)
  t.equal(await total('filter'), filter)
  t.equal(await last('nat'), nat, 'from an empty table: every rule written')
  t.equal(await last('filter'), filter)
  t.equal(await daemon.metric('kubeproxy_sync_proxy_rules_iptables_restore_failures_total'), 0)
  t.equal(await daemon.metric('kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total'), 0)
})

t.test('the ctstate INVALID drop counter: stray FIN segments forwarded from a pod', async (t) => {
  const before = (await daemon.metric('kubeproxy_iptables_ct_state_invalid_dropped_packets_total')) ?? -1
  t.equal(before, 0, 'nothing dropped yet')
  // A FIN of no connection is INVALID to conntrack; forwarded, it meets KUBE-FORWARD's DROP.
  sh(`ip netns exec p1 python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
fin = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x01, 1024, 0, 0)
for _ in range(3): s.sendto(fin, ("192.168.50.1", 0))
'`)
  const rule = tool('iptables-legacy-save', ['-c', '-t', 'filter']).split('\n').find((l) => /-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP$/.test(l))
  const kernel = Number(/^\[(\d+):/.exec(rule ?? '')?.[1])
  t.equal(kernel, 3, `the rule counted them: ${rule}`)
  t.equal(await daemon.metric('kubeproxy_iptables_ct_state_invalid_dropped_packets_total'), kernel, 'the metric is the rule\'s packet counter')
})

t.test('a refused commit: partial, then full restore failures; counts right again once it goes through', async (t) => {
  // Another rule jumps to p2's KUBE-SEP chain: libiptc will not delete a chain still jumped to, so nothing commits.
  const sep = ours('nat').find((l) => l.includes('--to-destination 10.244.0.12:8080'))!.split(' ')[1]!
  tool('iptables-legacy', ['-t', 'nat', '-N', 'PROBE'])
  tool('iptables-legacy', ['-t', 'nat', '-A', 'PROBE', '-j', sep])
  let from = daemon.logs.length
  write([pods[0]!.ip])
  await daemon.waitLog((r) => r.msg === 'sync failed; retrying', { from })
  await until(async () => ((await daemon.metric('kubeproxy_sync_proxy_rules_iptables_restore_failures_total')) ?? 0) >= 1, { what: 'a full sync failed too' })
  t.equal(await daemon.metric('kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total'), 1, 'the partial sync\'s commit failed once')
  t.ok(ours('nat').some((l) => l.startsWith(`-A ${sep} `)), 'the chain is still there: nothing was committed')

  from = daemon.logs.length
  tool('iptables-legacy', ['-t', 'nat', '-F', 'PROBE'])
  tool('iptables-legacy', ['-t', 'nat', '-X', 'PROBE'])
  await daemon.waitLog((r) => r.msg === 'full sync', { from })
  t.notOk(ours('nat').some((l) => l.startsWith(`-A ${sep} `)), 'the endpoint\'s chain is gone')
  t.equal(await total('nat'), ours('nat').length, 'the total follows the kernel')
  t.equal(await total('filter'), ours('filter').length)
  const failures = await daemon.metric('kubeproxy_sync_proxy_rules_iptables_restore_failures_total')
  t.ok(failures! >= 1, `full failures counted: ${failures}`)
})
