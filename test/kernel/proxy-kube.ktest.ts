// The tsproxy daemon following a Kubernetes API server, in the kernel box: an
// HTTPS server in this process speaks the list/watch protocol
// (test/support/fake-apiserver.ts: TLS with its own CA, bearer token, chunked
// watch streams, bookmarks, 410 Gone), the daemon runs as a process with
// --kubeconfig, and every add, update and delete is checked in the kernel
// (ipvsadm as the oracle) and, once, with real traffic through a fake CNI.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNode, numberedPods, sh, tool, type FakeNode } from '../support/cni.mjs'
import { startDaemon, until, type RunningDaemon } from '../support/daemon.mjs'
import { FakeApiServer } from '../support/fake-apiserver.js'

const NODE = 'node1'
const pods = numberedPods('k', 31)

const service = (name: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default' },
  spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] },
})
const slice = (svc: string, ips: string[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${svc}-abcde`, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: NODE })),
})

const ipvs = (): string[] => tool('ipvsadm', ['-Sn']).split('\n')
const has = (line: string) => () => ipvs().includes(line)
const hasNot = (prefix: string) => () => !ipvs().some((l) => l.startsWith(prefix))

const dir = mkdtempSync(join(tmpdir(), 'tsproxy-kube-'))
let api: FakeApiServer
let node: FakeNode
let daemon: RunningDaemon

t.before(async () => {
  sh('ip link set lo up')
  node = await makeNode({ pods })
  api = await FakeApiServer.start({ bookmarkMs: 500 })
  api.create('Node', { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } } })
  api.create('Service', service('web', '10.96.0.10'))
  api.create('EndpointSlice', slice('web', pods.map((p) => p.ip)))
  const kubeconfig = api.kubeconfig(join(dir, 'kubeconfig'))
  daemon = await startDaemon({ args: [`--kubeconfig=${kubeconfig}`, `--hostname-override=${NODE}`, '--cluster-cidr=10.244.0.0/16', '--ipvs-sync-period=30s'] })
})

t.teardown(async () => {
  await daemon?.stop()
  await api?.close()
  await node?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

t.test('the first lists are programmed, and traffic flows', async (t) => {
  for (const p of pods) t.ok(ipvs().includes(`-a -t 10.96.0.10:80 -r ${p.ip}:8080 -m -w 1`), `${p.ip} behind 10.96.0.10:80`)
  const r = await node.requestMany('node', { host: '10.96.0.10', port: 80, timeoutMs: 3000 }, 6)
  t.same(r.errors, [], 'no failed request')
  t.same(Object.keys(r.counts).sort(), ['k1', 'k2', 'k3'], 'all three pods answer')
  t.ok(daemon.logs.some((l) => l.msg === 'API lists loaded' && l.zone === 'zone-a'), 'the node\'s zone was read from its Node object')
})

t.test('adds, updates and deletes reach the kernel', async (t) => {
  api.update('EndpointSlice', slice('web', [pods[0]!.ip, pods[1]!.ip]))
  await until(() => !/10\.244\.0\.33:8080 -m -w 1/.test(tool('ipvsadm', ['-Sn'])), { what: 'k3 out of rotation' })
  t.pass('an endpoint removed from the slice leaves rotation')
  api.create('Service', service('api', '10.96.0.11'))
  api.create('EndpointSlice', slice('api', [pods[2]!.ip]))
  await until(has('-a -t 10.96.0.11:80 -r 10.244.0.33:8080 -m -w 1'), { what: 'the new service' })
  t.pass('a new service and its slice are programmed')
  api.delete('Service', { namespace: 'default', name: 'api' })
  await until(hasNot('-A -t 10.96.0.11:80'), { what: 'the deleted service gone' })
  t.pass('a deleted service is removed')
})

t.test('410 Gone: the daemon relists and applies exactly the difference', async (t) => {
  api.suspendWatches()
  api.create('Service', service('gone-a', '10.96.0.20'))
  api.create('EndpointSlice', slice('gone-a', [pods[0]!.ip]))
  api.update('EndpointSlice', slice('web', pods.map((p) => p.ip)))
  api.compact() // the held events are lost: only a relist can find them
  await until(has('-a -t 10.96.0.20:80 -r 10.244.0.31:8080 -m -w 1'), { what: 'the service created during the compaction' })
  await until(has('-a -t 10.96.0.10:80 -r 10.244.0.33:8080 -m -w 1'), { what: 'the endpoint added back during the compaction' })
  t.pass('both changes lost with the watch arrived through the relist')
})

t.test('API server restart: the kernel keeps its state while it is down, changes made meanwhile arrive', async (t) => {
  await api.restart(async () => {
    api.create('Service', service('while-down', '10.96.0.21'))
    api.create('EndpointSlice', slice('while-down', [pods[1]!.ip]))
    await new Promise((r) => setTimeout(r, 1500))
    t.ok(ipvs().includes('-A -t 10.96.0.10:80 -s rr'), 'with the API server down, nothing was removed')
  })
  await until(has('-a -t 10.96.0.21:80 -r 10.244.0.32:8080 -m -w 1'), { what: 'the service created while the API server was down', timeoutMs: 60_000 })
  t.pass('reconnected and caught up')
  const r = await node.requestMany('node', { host: '10.96.0.10', port: 80, timeoutMs: 3000 }, 3)
  t.same(r.errors, [], 'traffic kept flowing')
})

t.test('a slow stream still delivers', async (t) => {
  api.slow(40)
  api.create('Service', service('slow', '10.96.0.22'))
  api.create('EndpointSlice', slice('slow', [pods[2]!.ip]))
  await until(has('-a -t 10.96.0.22:80 -r 10.244.0.33:8080 -m -w 1'), { what: 'the service sent in trickles' })
  api.slow(0)
  t.pass('events cut in pieces arrive whole')
})

t.test('a malformed object is skipped and counted; the rest applies', async (t) => {
  api.create('Service', service('bad', '10.96.0.300'))
  api.garbage()
  api.create('Service', service('after-bad', '10.96.0.23'))
  api.create('EndpointSlice', slice('after-bad', [pods[0]!.ip]))
  await until(has('-a -t 10.96.0.23:80 -r 10.244.0.31:8080 -m -w 1'), { what: 'the valid service after the bad one' })
  t.ok(((await daemon.metric('tsproxy_source_objects_refused_total')) ?? 0) >= 1, 'tsproxy_source_objects_refused_total counted the invalid Service')
  t.ok(daemon.logs.some((l) => JSON.stringify(l).includes('default/bad')), 'the refusal is logged naming the object')
  t.ok(hasNot('-A -t 10.96.0.300')(), 'nothing of it programmed')
})

t.test('stopping the daemon leaves the kernel as it is', async (t) => {
  const exit = await daemon.stop()
  t.equal(exit.code, 0, 'exit 0 on SIGTERM')
  t.ok(ipvs().includes('-A -t 10.96.0.10:80 -s rr'), 'the services stay programmed')
})
