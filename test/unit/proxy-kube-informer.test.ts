// lib/proxy/sources/kube/informer.ts against test/support/fake-apiserver.ts:
// list then watch; bookmarks; a relist after a 410 emits exactly the
// difference; a lost API server deletes nothing and what changed meanwhile
// arrives after; refused objects are skipped, logged, counted; a wrong token
// is retried with backoff.
import t, { type Test } from 'tap'
import { KubeClient } from '../../dist/proxy/sources/kube/client.js'
import { backoffDelay, DEFAULT_BACKOFF, Informer, type InformerError } from '../../dist/proxy/sources/kube/informer.js'
import { parseService, type ServiceObject } from '../../dist/proxy/model/service.js'
import type { Log } from '../../dist/proxy/types.js'
import { FakeApiServer } from '../support/fake-apiserver.js'

const FAST = { initialMs: 20, maxMs: 100, factor: 2, jitter: 0.5 }

const svc = (name: string, ip: string, port = 80, labels: Record<string, string> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', labels },
  spec: { clusterIP: ip, ports: [{ port }] },
})

interface Rig {
  s: FakeApiServer
  client: KubeClient
  inf: Informer<ServiceObject>
  events: string[]
  errors: InformerError[]
  /** onRecovered calls. */
  recovered: string[]
  logs: { level: string; msg: string; fields?: Record<string, unknown> }[]
}

/** A Services informer on a fake API server; events recorded as 'add default/a 80'. */
async function rig(t: Test, opts: { token?: string; expiredAs?: 'http' | 'event'; before?: (s: FakeApiServer) => void; pageSize?: number } = {}): Promise<Rig> {
  const s = await FakeApiServer.start(opts.expiredAs ? { expiredAs: opts.expiredAs } : {})
  t.teardown(() => s.close())
  opts.before?.(s)
  const client = new KubeClient({ server: s.url, ca: Buffer.from(s.ca), token: opts.token ?? s.token })
  t.teardown(() => client.close())
  const events: string[] = []
  const errors: InformerError[] = []
  const recovered: string[] = []
  const logs: Rig['logs'] = []
  const log: Log = (level, msg, fields) => void logs.push({ level, msg, fields })
  const port = (o: ServiceObject): string => (o.skip ? o.skip : String(o.spec.ports[0]!.port))
  const inf = new Informer<ServiceObject>({
    client,
    path: '/api/v1/services',
    apiVersion: 'v1',
    kind: 'Service',
    name: 'services',
    parse: parseService,
    handler: (p, c) => {
      const o = (c ?? p)!
      events.push(`${p && c ? 'update' : c ? 'add' : 'delete'} ${o.metadata.namespace}/${o.metadata.name} ${port(o)}${p && c ? ` (was ${port(p)})` : ''}`)
    },
    log,
    onError: (e) => void errors.push(e),
    onRecovered: (name) => void recovered.push(name),
    backoff: FAST,
    ...(opts.pageSize ? { pageSize: opts.pageSize } : {}),
  })
  t.teardown(() => inf.stop())
  return { s, client, inf, events, errors, recovered, logs }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met in ${ms} ms: ${cond.toString()}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test('backoff: doubling from the first delay, jitter on top, capped', async (t) => {
  const b = DEFAULT_BACKOFF
  t.strictSame(b, { initialMs: 800, maxMs: 30_000, factor: 2, jitter: 1 })
  t.strictSame([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(b, n, () => 0)), [800, 1600, 3200, 6400, 12800, 25600, 30000])
  t.equal(backoffDelay(b, 1, () => 0.5), 1200, 'half the jitter: 1.5 times')
  t.equal(backoffDelay(b, 6, () => 1), 30_000, 'never past the cap')
})

t.test('list, then watch: adds, updates and deletes in order', async (t) => {
  const r = await rig(t, { pageSize: 2, before: (s) => ['a', 'b', 'c'].forEach((n, i) => s.create('Service', svc(n, `10.96.0.${i + 1}`))) })
  r.inf.start()
  await r.inf.synced()
  t.ok(r.inf.hasSynced)
  t.strictSame(r.events, ['add default/a 80', 'add default/b 80', 'add default/c 80'], 'the first list, over two pages, as adds')
  t.equal(r.inf.resourceVersion, r.s.resourceVersion, 'watching from the list resourceVersion')
  await until(() => r.s.watchers === 1)
  t.equal(r.s.watchRequests[0]!.query.resourceVersion, r.s.resourceVersion)
  r.s.update('Service', svc('b', '10.96.0.2', 8080))
  r.s.delete('Service', { name: 'a' })
  r.s.create('Service', svc('d', '10.96.0.4'))
  await until(() => r.events.length === 6)
  t.strictSame(r.events.slice(3), ['update default/b 8080 (was 80)', 'delete default/a 80', 'add default/d 80'])
  t.strictSame(r.inf.values().map((o) => o.metadata.name).sort(), ['b', 'c', 'd'])
  t.equal(r.inf.resourceVersion, r.s.resourceVersion)
  t.match(r.inf.stats, { events: 6, relists: 0, errors: 0, refused: 0 })
})

t.test('bookmarks move the resourceVersion on, with no event; the next watch starts there', async (t) => {
  const r = await rig(t, { before: (s) => void s.create('Service', svc('a', '10.96.0.1')) })
  r.inf.start()
  await r.inf.synced()
  await until(() => r.s.watchers === 1)
  t.equal(r.s.watchRequests[0]!.query.allowWatchBookmarks, 'true', 'bookmarks asked for')
  const listed = r.inf.resourceVersion
  // Changes to other kinds move the server's resourceVersion on, unseen by this watch.
  for (let i = 0; i < 3; i++) r.s.create('EndpointSlice', { metadata: { name: `x${i}` } })
  t.not(r.s.resourceVersion, listed)
  r.s.bookmark()
  await until(() => r.inf.stats.bookmarks === 1)
  t.equal(r.inf.resourceVersion, r.s.resourceVersion, 'at the bookmark')
  t.strictSame(r.events, ['add default/a 80'], 'no event')
  r.s.breakWatches()
  await until(() => r.s.watchRequests.length === 2)
  t.equal(r.s.watchRequests[1]!.query.resourceVersion, r.s.resourceVersion, 'the next watch starts at the bookmark')
})

t.test('410 as an ERROR event: a relist emits exactly the difference', async (t) => {
  const r = await rig(t, { before: (s) => ['a', 'b', 'c'].forEach((n, i) => s.create('Service', svc(n, `10.96.0.${i + 1}`))) })
  r.inf.start()
  await r.inf.synced()
  await until(() => r.s.watchers === 1)
  // The watch falls behind; meanwhile a is deleted, b changed, d added, c left alone.
  r.s.suspendWatches()
  r.s.delete('Service', { name: 'a' })
  r.s.update('Service', svc('b', '10.96.0.2', 443))
  r.s.create('Service', svc('d', '10.96.0.4'))
  r.s.compact()
  await until(() => r.inf.stats.relists === 1 && r.s.watchers === 1)
  t.strictSame(r.events.slice(3), ['delete default/a 80', 'update default/b 443 (was 80)', 'add default/d 80'], 'deletes first, then the changes; c not emitted again')
  const lists = r.s.requests.filter((q) => !q.watch)
  t.equal(lists.length, 2)
  t.equal(lists[0]!.query.resourceVersion, '0', 'the first list may come from the cache')
  t.equal(lists[1]!.query.resourceVersion, undefined, 'the relist is a consistent read')
  t.equal(r.inf.resourceVersion, r.s.resourceVersion)
  t.equal(r.inf.stats.errors, 0, 'a 410 is not an error')
  // And it goes on watching.
  r.s.delete('Service', { name: 'c' })
  await until(() => r.events.length === 7)
  t.equal(r.events[6], 'delete default/c 80')
})

t.test('410 as the answer to the watch (after a restart across a compaction): relist, the difference', async (t) => {
  const r = await rig(t, { before: (s) => ['a', 'b', 'c'].forEach((n, i) => s.create('Service', svc(n, `10.96.0.${i + 1}`))) })
  r.inf.start()
  await r.inf.synced()
  await until(() => r.s.watchers === 1)
  await r.s.restart(async () => {
    r.s.delete('Service', { name: 'c' })
    r.s.create('Service', svc('e', '10.96.0.5'))
    r.s.compact()
    await until(() => r.inf.stats.errors >= 1)
    t.strictSame(r.events.length, 3, 'nothing emitted while the server is down')
  })
  await until(() => r.inf.stats.relists === 1 && r.s.watchers === 1)
  t.ok(r.s.watchRequests.some((q) => q.status === 410), 'a watch was answered 410')
  t.strictSame(r.events.slice(3), ['delete default/c 80', 'add default/e 80'])
})

t.test('API server restart: reconnect, no deletes while down, changes made meanwhile arrive after', async (t) => {
  const r = await rig(t, { before: (s) => ['a', 'b'].forEach((n, i) => s.create('Service', svc(n, `10.96.0.${i + 1}`))) })
  r.inf.start()
  await r.inf.synced()
  await until(() => r.s.watchers === 1)
  const rv = r.inf.resourceVersion
  await r.s.restart(async () => {
    r.s.delete('Service', { name: 'a' })
    r.s.update('Service', svc('b', '10.96.0.2', 81))
    await until(() => r.inf.stats.errors >= 2)
    t.strictSame(r.events, ['add default/a 80', 'add default/b 80'], 'the state is kept while the server is away')
    t.strictSame(r.inf.values().map((o) => o.metadata.name).sort(), ['a', 'b'])
  })
  await until(() => r.events.length === 4)
  t.strictSame(r.events.slice(2), ['delete default/a 80', 'update default/b 81 (was 80)'], 'the changes, from the watch history')
  t.equal(r.inf.stats.relists, 0, 'no relist: nothing was lost')
  const after = r.s.watchRequests.filter((q) => q.status === 200)
  t.equal(after.at(-1)!.query.resourceVersion, rv, 'watching again from the last resourceVersion')
  t.ok(r.inf.stats.reconnects >= 1)
  t.ok(r.errors.every((e) => e.kind === 'watch'), 'the failures were counted as watch errors')
  t.ok(r.logs.some((l) => l.level === 'warn' && l.msg === 'watch failed; retrying'), 'and logged')
  t.ok(r.logs.some((l) => l.msg === 'watch works again'), 'as was the recovery')
})

t.test('a slow stream: events trickle in pieces and arrive whole, in order', async (t) => {
  const r = await rig(t)
  r.inf.start()
  await r.inf.synced()
  await until(() => r.s.watchers === 1)
  r.s.slow(10)
  r.s.create('Service', svc('a', '10.96.0.1'))
  r.s.update('Service', svc('a', '10.96.0.1', 82))
  r.s.create('Service', svc('b', '10.96.0.2'))
  await until(() => r.events.length === 3)
  t.strictSame(r.events, ['add default/a 80', 'update default/a 82 (was 80)', 'add default/b 80'])
  t.equal(r.inf.stats.errors, 0)
})

t.test('a broken line on the stream: watch again from the last resourceVersion, nothing lost or repeated', async (t) => {
  const r = await rig(t)
  r.inf.start()
  await r.inf.synced()
  await until(() => r.s.watchers === 1)
  r.s.create('Service', svc('a', '10.96.0.1'))
  await until(() => r.events.length === 1)
  r.s.garbage()
  await until(() => r.inf.stats.errors === 1)
  r.s.create('Service', svc('b', '10.96.0.2'))
  await until(() => r.events.length === 2)
  t.strictSame(r.events, ['add default/a 80', 'add default/b 80'])
  t.match(r.errors[0], { kind: 'watch', error: { message: /not JSON/ } })
})

t.test('a refused object is skipped, logged once with its name and field, counted; the rest applies', async (t) => {
  const bad = { ...svc('bad', '10.96.0.9'), spec: { clusterIP: '10.96.0.9', ports: [{ port: 'eighty' }] } }
  const r = await rig(t, {
    before: (s) => {
      s.create('Service', svc('a', '10.96.0.1'))
      s.create('Service', bad)
      s.create('Service', svc('c', '10.96.0.3'))
    },
  })
  r.inf.start()
  await r.inf.synced()
  t.strictSame(r.events, ['add default/a 80', 'add default/c 80'], 'the others applied')
  t.equal(r.errors.length, 1)
  t.match(r.errors[0], { kind: 'refused', resource: 'services', object: 'default/bad', field: 'spec.ports[0].port' })
  const logged = r.logs.filter((l) => l.msg === 'object refused; skipped')
  t.equal(logged.length, 1)
  t.match(logged[0]!.fields, { object: 'default/bad', field: 'spec.ports[0].port' })
  t.equal(r.inf.stats.refused, 1)

  // A relist finding the same version does not log it again.
  await until(() => r.s.watchers === 1)
  r.s.suspendWatches()
  r.s.create('Service', svc('d', '10.96.0.4'))
  r.s.compact()
  await until(() => r.inf.stats.relists === 1 && r.events.length === 3)
  t.equal(r.inf.stats.refused, 1, 'the same refused version is not counted twice')

  // Fixed: now it is added.
  await until(() => r.s.watchers === 1)
  r.s.update('Service', svc('bad', '10.96.0.9', 90))
  await until(() => r.events.length === 4)
  t.equal(r.events[3], 'add default/bad 90')

  // A good object whose new version is refused keeps its last good version; deleting it deletes that.
  r.s.update('Service', { ...svc('a', '10.96.0.1'), spec: { clusterIP: 'ten', ports: [{ port: 80 }] } })
  await until(() => r.inf.stats.refused === 2)
  t.equal(r.events.length, 4, 'no event for the refused version')
  t.equal((r.inf.get('default/a') as { spec: { clusterIP: string } }).spec.clusterIP, '10.96.0.1', 'the last good version held')
  t.match(r.logs.filter((l) => l.msg === 'object refused; skipped').at(-1)!.fields, { object: 'default/a', field: 'spec.clusterIP', kept: /last good version/ })
  r.s.delete('Service', { name: 'a' })
  await until(() => r.events.length === 5)
  t.equal(r.events[4], 'delete default/a 80')
})

t.test('a wrong token: a clear error, retried with backoff, synced once the token is right', async (t) => {
  const r = await rig(t, { token: 'wrong', before: (s) => void s.create('Service', svc('a', '10.96.0.1')) })
  r.inf.start()
  await until(() => r.inf.stats.errors >= 3)
  t.notOk(r.inf.hasSynced, 'not synced')
  t.ok(r.s.requests.length >= 3 && r.s.requests.every((q) => q.status === 401 && !q.watch), 'the list retried, each answered 401')
  t.match(r.errors[0], { kind: 'list', error: { name: 'KubeApiError', status: 401, message: /401 Unauthorized/ } })
  const warned = r.logs.filter((l) => l.msg === 'list failed; retrying')
  t.equal(warned[0]!.level, 'warn', 'the first failure is a warning')
  t.ok(warned.slice(1).every((l) => l.level === 'debug'), 'the same failure again is logged quietly')
  t.strictSame(r.recovered, [], 'not recovered while failing')
  // The server comes to accept the token the client sends.
  r.s.token = 'wrong'
  await r.inf.synced()
  t.strictSame(r.events, ['add default/a 80'])
  t.strictSame(r.recovered, ['services'], 'the recovery reported once (the daemon\'s health hears it)')
})

t.test('stop: before the first list, synced() rejects; the loop ends', async (t) => {
  const r = await rig(t, { token: 'wrong' })
  r.inf.start()
  await until(() => r.inf.stats.errors >= 1)
  await r.inf.stop()
  await t.rejects(r.inf.synced(), /stopped before the first list/)
  const n = r.s.requests.length
  await new Promise((res) => setTimeout(res, 150))
  t.equal(r.s.requests.length, n, 'no request after stop')
})
