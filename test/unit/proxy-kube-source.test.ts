// lib/proxy/sources/kube/source.ts against test/support/fake-apiserver.ts:
// Services and EndpointSlices into a ChangeSink (the recording one, and the
// real trackers), kube-proxy's label selector (headless and
// service-proxy-name objects never fed), this Node's labels and deletion,
// the three first lists before synced(), errors counted and retried.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { EndpointsChangeTracker, ServiceChangeTracker, applyChanges, trackerSink, type ChangeSink } from '../../dist/proxy/changes.js'
import { KubeClient, loadKubeconfig } from '../../dist/proxy/sources/kube/client.js'
import type { InformerError } from '../../dist/proxy/sources/kube/informer.js'
import { KubernetesSource, PROXY_LABEL_SELECTOR, parseNode, type NodeInfo } from '../../dist/proxy/sources/kube/source.js'
import { FakeApiServer } from '../support/fake-apiserver.js'
import { recorder } from '../support/sinks.js'

const FAST = { initialMs: 20, maxMs: 100, factor: 2, jitter: 0.5 }

const svc = (name: string, ip: string, labels: Record<string, string> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', labels },
  spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
})

const slice = (name: string, service: string, ips: string[], labels: Record<string, string> = {}, node = 'node01'): Record<string, unknown> => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service, ...labels } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080 }],
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: node })),
})

const nodeObj = (name: string, labels: Record<string, string> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels, ...extra },
})

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met in ${ms} ms: ${cond.toString()}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function setup(t: Test, opts: { token?: string; sink?: ChangeSink; before?: (s: FakeApiServer) => void } = {}) {
  const s = await FakeApiServer.start()
  t.teardown(() => s.close())
  opts.before?.(s)
  const dir = await mkdtemp(join(tmpdir(), 'tsproxy-kube-source-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const client = new KubeClient(loadKubeconfig(s.kubeconfig(join(dir, 'kubeconfig'), opts.token ? { token: opts.token } : {})))
  t.teardown(() => client.close())
  const sink = opts.sink ?? recorder()
  const errors: InformerError[] = []
  const nodes: [NodeInfo | undefined, NodeInfo | undefined][] = []
  const source = new KubernetesSource({
    client,
    sink,
    nodeName: 'node01',
    log: () => undefined,
    onError: (e) => void errors.push(e),
    onNode: (p, c) => void nodes.push([p, c]),
    backoff: FAST,
  })
  t.teardown(() => source.stop())
  return { s, source, sink, errors, nodes }
}

t.test('Services and EndpointSlices reach the sink; synced once the three first lists are applied', async (t) => {
  const { s, source, sink, nodes } = await setup(t, {
    before: (s) => {
      s.create('Service', svc('web', '10.96.0.10'))
      s.create('EndpointSlice', slice('web-1', 'web', ['10.0.0.1', '10.0.0.2']))
      s.create('Node', nodeObj('node01', { 'topology.kubernetes.io/zone': 'zone-a', 'kubernetes.io/os': 'linux' }))
      s.create('Node', nodeObj('node02', { 'topology.kubernetes.io/zone': 'zone-b' }))
    },
  })
  const rec = sink as ReturnType<typeof recorder>
  t.notOk(source.hasSynced)
  source.start()
  await source.synced()
  t.ok(source.hasSynced)
  t.strictSame(rec.events.slice().sort(), ['add EndpointSlice default/web-1', 'add Service default/web'])
  t.match(source.node, { name: 'node01', zone: 'zone-a', deleting: false, labels: { 'kubernetes.io/os': 'linux' } }, "this node's labels")
  t.equal(nodes.length, 1, 'onNode once, for this node only')

  const lists = s.requests.filter((q) => !q.watch)
  const byPath = (p: string) => lists.find((q) => q.path === p)!
  t.equal(byPath('/api/v1/services').query.labelSelector, PROXY_LABEL_SELECTOR)
  t.equal(byPath('/apis/discovery.k8s.io/v1/endpointslices').query.labelSelector, PROXY_LABEL_SELECTOR)
  t.equal(PROXY_LABEL_SELECTOR, '!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name')
  t.equal(byPath('/api/v1/nodes').query.fieldSelector, 'metadata.name=node01')

  await until(() => s.watchers === 3)
  s.update('EndpointSlice', slice('web-1', 'web', ['10.0.0.1']))
  s.create('Service', svc('api', '10.96.0.11'))
  s.delete('Service', { name: 'web' })
  await until(() => rec.events.length === 5)
  t.strictSame(rec.events.slice(2), ['update EndpointSlice default/web-1', 'add Service default/api', 'delete Service default/web'])

  // The node: relabelled, then being deleted.
  s.update('Node', nodeObj('node01', { 'topology.kubernetes.io/zone': 'zone-c' }))
  await until(() => source.node?.zone === 'zone-c')
  s.update('Node', nodeObj('node01', { 'topology.kubernetes.io/zone': 'zone-c' }, { deletionTimestamp: '2024-01-01T00:00:00Z' }))
  await until(() => source.node?.deleting === true)
  s.update('Node', nodeObj('node02', { 'topology.kubernetes.io/zone': 'zone-z' }))
  s.delete('Node', { name: 'node01' })
  await until(() => source.node === undefined)
  t.strictSame(
    nodes.map(([p, c]) => `${p?.zone ?? '-'} -> ${c ? `${c.zone}${c.deleting ? ' (deleting)' : ''}` : 'gone'}`),
    ['- -> zone-a', 'zone-a -> zone-c', 'zone-c -> zone-c (deleting)', 'zone-c -> gone'],
    'node02 never seen',
  )
  t.match(source.stats, { services: 1, endpointSlices: 1, relists: 0, errors: 0, refused: 0 })
  t.equal(source.stats.events, 5 + 4)
})

t.test('headless and service-proxy-name objects are not fed; gaining the label deletes, losing it adds', async (t) => {
  const { s, source, sink } = await setup(t, {
    before: (s) => {
      s.create('Service', svc('mine', '10.96.0.10'))
      s.create('Service', svc('theirs', '10.96.0.11', { 'service.kubernetes.io/service-proxy-name': 'other-proxy' }))
      s.create('EndpointSlice', slice('mine-1', 'mine', ['10.0.0.1']))
      s.create('EndpointSlice', slice('theirs-1', 'theirs', ['10.0.0.2'], { 'service.kubernetes.io/service-proxy-name': 'other-proxy' }))
      s.create('EndpointSlice', slice('db-1', 'db', ['10.0.0.3'], { 'service.kubernetes.io/headless': '' }))
      s.create('Node', nodeObj('node01'))
    },
  })
  const rec = sink as ReturnType<typeof recorder>
  source.start()
  await source.synced()
  t.strictSame(rec.events.slice().sort(), ['add EndpointSlice default/mine-1', 'add Service default/mine'], 'only the unlabelled ones')
  await until(() => s.watchers === 3)
  s.create('EndpointSlice', slice('db-2', 'db', ['10.0.0.4'], { 'service.kubernetes.io/headless': '' }))
  s.update('Service', svc('mine', '10.96.0.10', { 'service.kubernetes.io/service-proxy-name': 'other-proxy' }))
  await until(() => rec.events.length === 3)
  t.equal(rec.events[2], 'delete Service default/mine', 'handed to another proxy: deleted here')
  s.update('Service', svc('theirs', '10.96.0.11'))
  await until(() => rec.events.length === 4)
  t.equal(rec.events[3], 'add Service default/theirs', 'label removed: ours now')
  t.notOk(rec.events.some((e) => e.includes('db-')), 'headless slices never fed')
})

t.test('into the real change trackers: a service port with its endpoints', async (t) => {
  const services = new ServiceChangeTracker()
  const endpoints = new EndpointsChangeTracker({ nodeName: 'node01' })
  const { source } = await setup(t, {
    sink: trackerSink(services, endpoints),
    before: (s) => {
      s.create('Service', svc('web', '10.96.0.10'))
      s.create('EndpointSlice', slice('web-1', 'web', ['10.0.0.1', '10.0.0.2']))
    },
  })
  source.start()
  await source.synced()
  t.equal(source.node, undefined, 'no Node object: none')
  const changes = applyChanges(services, endpoints)
  t.strictSame([...changes.servicePorts], ['default/web:http/TCP'])
  t.strictSame(
    endpoints.endpoints('default/web:http/TCP').map((e) => [e.key, e.isLocal]),
    [['10.0.0.1:8080', true], ['10.0.0.2:8080', true]],
  )
})

t.test('a malformed object is skipped and counted; the rest applies', async (t) => {
  const { source, sink, errors } = await setup(t, {
    before: (s) => {
      s.create('Service', svc('good', '10.96.0.10'))
      s.create('EndpointSlice', { ...slice('broken', 'good', ['10.0.0.1']), addressType: 'IPv5' })
      s.create('EndpointSlice', slice('fine', 'good', ['10.0.0.2']))
      s.create('Node', nodeObj('node01', { 'topology.kubernetes.io/zone': 7 as unknown as string }))
    },
  })
  const rec = sink as ReturnType<typeof recorder>
  source.start()
  await source.synced()
  t.strictSame(rec.events.slice().sort(), ['add EndpointSlice default/fine', 'add Service default/good'])
  t.strictSame(
    errors.map((e) => [e.kind, e.resource, e.object, e.field]).sort(),
    [
      ['refused', 'endpointslices', 'default/broken', 'addressType'],
      ['refused', 'nodes', 'node01', 'metadata.labels["topology.kubernetes.io/zone"]'],
    ],
  )
  t.equal(source.stats.refused, 2)
  t.equal(source.node, undefined, 'a Node refused is not known')
})

t.test('a bad endpoint is left out, reported and counted; the slice and its other endpoints apply', async (t) => {
  const sink = recorder()
  const { source, errors } = await setup(t, {
    sink,
    before: (s) => {
      s.create('Service', svc('good', '10.96.0.10'))
      const bad = slice('mixed', 'good', ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
      ;(bad.endpoints as Record<string, unknown>[])[1]!.nodeName = 'Node_B'
      s.create('EndpointSlice', bad)
    },
  })
  source.start()
  await source.synced()
  t.strictSame(sink.events.slice().sort(), ['add EndpointSlice default/mixed', 'add Service default/good'], 'the slice applies')
  t.strictSame(errors.map((e) => [e.kind, e.resource, e.object, e.field]), [['partial', 'endpointslices', 'default/mixed', 'endpoints[1].nodeName']])
  t.equal(source.stats.refused, 0, 'nothing refused')
  t.equal(source.stats.partial, 1, 'one part left out')
})

t.test('a wrong token: errors counted and retried, not a crash; synced once accepted', async (t) => {
  const { s, source, errors } = await setup(t, { token: 'nope', before: (s) => void s.create('Service', svc('a', '10.96.0.1')) })
  source.start()
  await until(() => errors.length >= 6)
  t.notOk(source.hasSynced)
  t.ok(errors.every((e) => e.kind === 'list' && /401 Unauthorized/.test(e.error.message)), 'each a 401 on a list')
  t.same(new Set(errors.map((e) => e.resource)), new Set(['services', 'endpointslices', 'nodes']), 'all three retrying')
  t.ok(source.stats.errors >= 6)
  s.token = 'nope'
  await source.synced()
  t.pass('synced once the server accepts the token')
})

t.test('stop before synced: synced() rejects, nothing more is asked', async (t) => {
  const { s, source } = await setup(t, { token: 'nope' })
  source.start()
  const synced = source.synced()
  await until(() => s.requests.length >= 3)
  await source.stop()
  await t.rejects(synced, /stopped before the first list/)
})

t.test('parseNode: name, labels, zone, deletion; bad fields named', async (t) => {
  t.strictSame(parseNode({ kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'z' }, resourceVersion: '5' } }), {
    name: 'n1',
    labels: { 'topology.kubernetes.io/zone': 'z' },
    deleting: false,
    zone: 'z',
    resourceVersion: '5',
  })
  t.equal(parseNode({ metadata: { name: 'n1', deletionTimestamp: '2024-01-01T00:00:00Z' } }).deleting, true)
  t.throws(() => parseNode({ metadata: {} }), { name: 'ValidationError', field: 'metadata.name' })
  t.throws(() => parseNode({ metadata: { name: 'N_1' } }), { name: 'ValidationError', field: 'metadata.name' })
  t.throws(() => parseNode({ metadata: { name: 'n1', labels: { a: 1 } } }), { name: 'ValidationError', field: 'metadata.labels["a"]' })
})
