// The daemon in nftables mode on the host kernel (the box's has no nf_tables
// ip family), in a fresh network namespace, with real TCP through a fake CNI:
// it programs `table ip kube-proxy`; a restart under a request loop fails no
// request and sends no transaction; switching to iptables mode removes the
// table, switching back removes iptables mode's chains; `tsproxy cleanup`
// removes the table and leaves a foreign one alone.
import t, { type Test } from 'tap'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNode, sh, tool, type FakeNode } from '../support/cni.mjs'
import { startDaemon, writeManifest, type RunningDaemon } from '../support/daemon.mjs'
import { Nftables } from '../../dist/index.js'
import { nftablesUnsupported } from './support/nftables.js'

const NODE = 'node1'
// Pod network namespaces are named on the host, whatever namespace we run in: names of this run's own.
const tag = `nfm${process.pid % 100000}`
const pods = [41, 42, 43].map((n, i) => ({ name: `${tag}p${i + 1}`, ip: `10.244.0.${n}` }))

const skip = await nftablesUnsupported()

const dir = mkdtempSync(join(tmpdir(), 'tsproxy-nft-modes-'))
const env = { TSPROXY_LOCK_FILE: join(dir, 'tsproxy.lock') }
const manifests = join(dir, 'manifests')
mkdirSync(manifests)
writeManifest(manifests, 'web.json', [
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

let node: FakeNode | undefined
let daemon: RunningDaemon | undefined
const args = [`--hostname-override=${NODE}`, '--cluster-cidr=10.244.0.0/16']
const run = async (mode: string): Promise<RunningDaemon> => (daemon = await startDaemon({ manifests, args: [...args, `--proxy-mode=${mode}`], env }))
const table = (): string => tool('nft', ['list', 'tables'])
const nat = (): string => tool('iptables-legacy-save', ['-t', 'nat'])

t.before(async () => {
  if (skip) return
  sh('ip link set lo up; ip link add eth0 type veth peer name eth0p; ip link set eth0p up; ip addr add 192.168.50.10/24 dev eth0; ip link set eth0 up; ip route add default via 192.168.50.1 dev eth0')
  node = await makeNode({ pods })
})
t.teardown(async () => {
  await daemon?.stop()
  await node?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

const balanced = async (t: Test, what: string): Promise<void> => {
  const r = await node!.requestMany('node', { host: '10.96.0.10', port: 80, timeoutMs: 3000 }, 45)
  t.same(r.errors, [], `${what}: no failed request`)
  t.same(Object.keys(r.counts).sort(), pods.map((p) => p.name), `${what}: all three pods answer`)
}

t.test('nftables mode: the table, traffic, status', { skip }, async (t) => {
  const d = await run('nftables')
  t.match(table(), /table ip kube-proxy/)
  const text = tool('nft', ['list', 'table', 'ip', 'kube-proxy'])
  t.match(text, /10\.96\.0\.10 \. tcp \. 80 : goto service-[A-Z2-7]{8}-default\/web\/tcp\/http/, 'the service-ips element')
  t.match(text, /numgen random mod 3 vmap/, 'three endpoints')
  await balanced(t, 'nftables mode')
  t.match(sh('TSPROXY_LOCK_FILE=' + env.TSPROXY_LOCK_FILE + ' node dist/proxy/main.js status'), /default\/web:http\s+TCP 10\.96\.0\.10:80\s+random/, 'tsproxy status')
  t.equal(await d.metric('kubeproxy_sync_proxy_rules_nftables_sync_failures_total'), 0, "kube-proxy's nftables-mode counter")
  await d.stop()
})

t.test('a restart under a request loop: no failed request, no transaction', { skip }, async (t) => {
  const nft = await Nftables.open()
  const gen = await nft.generation()
  let stop = false
  const failures: string[] = []
  let sent = 0
  const loop = (async () => {
    while (!stop) {
      const r = await node!.request('node', { host: '10.96.0.10', port: 80, timeoutMs: 3000 })
      sent++
      if (!r.ok) failures.push(r.error)
    }
  })()
  const d = await run('nftables')
  t.notOk(d.logs.some((l) => /^removing/.test(l.msg)), 'no mode-switch cleanup')
  const first = d.logs.find((l) => l.msg === 'full sync')!
  t.equal(first.ops.nftables, undefined, 'the first sync writes nothing')
  await d.stop()
  stop = true
  await loop
  t.ok(sent > 0)
  t.same(failures, [], `${sent} requests, none failed`)
  t.equal(await nft.generation(), gen, 'the ruleset generation did not move')
  await nft.close()
})

t.test('switching to iptables mode removes the table; back removes the chains', { skip }, async (t) => {
  let d = await run('iptables')
  t.ok(d.logs.some((l) => l.msg === 'removing nftables-mode state (the mode changed)'), 'it says so')
  t.notMatch(table(), /kube-proxy/, 'no kube-proxy table left')
  t.match(nat(), /KUBE-SVC-[A-Z2-7]{16}/)
  await balanced(t, 'iptables mode')
  await d.stop()
  d = await run('nftables')
  t.ok(d.logs.some((l) => l.msg === 'removing iptables-mode state (the mode changed)'), 'it says so')
  t.notMatch(nat(), /KUBE-SVC-|KUBE-SEP-|KUBE-NODEPORTS/, 'no iptables-mode chain left')
  t.match(table(), /table ip kube-proxy/)
  await balanced(t, 'nftables mode again')
  await d.stop()
})

t.test('tsproxy cleanup removes the table, nothing else', { skip }, async (t) => {
  tool('nft', ['add', 'table', 'ip', 'foreign'])
  const out = sh(`TSPROXY_LOCK_FILE=${env.TSPROXY_LOCK_FILE} node dist/proxy/main.js cleanup 2>&1`)
  t.match(out, /"mode":"nftables","tables":1/)
  t.same(table().trim().split('\n'), ['table ip foreign'])
  tool('nft', ['delete', 'table', 'ip', 'foreign'])
})
