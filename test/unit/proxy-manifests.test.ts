// lib/proxy/sources/manifests.ts: Services and EndpointSlices from manifest
// files into the change trackers. Bad documents are refused one by one (logged,
// counted) while the rest applies; an object refused on an edit keeps its last
// good version; file edits, renames and deletions reach the sink through a real
// fs.watch on a temporary directory.
import { mkdtemp, rename, rm, symlink, unlink, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { EndpointsChangeTracker, ServiceChangeTracker, applyChanges, trackerSink } from '../../dist/proxy/changes.js'
import { ManifestSource, readManifest, type ReloadResult } from '../../dist/proxy/sources/manifests.js'
import { quietLog, recorder } from '../support/sinks.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/manifests/', import.meta.url))

const svcYaml = (name: string, ip: string, port = 80, extra = ''): string => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  clusterIP: ${ip}
  ports:
    - port: ${port}${extra}
`

const sliceYaml = (name: string, service: string, ips: string[], port = 8080): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  labels:
    kubernetes.io/service-name: ${service}
addressType: IPv4
ports:
  - port: ${port}
endpoints:
${ips.map((ip) => `  - addresses: ["${ip}"]\n`).join('')}`

/** A ManifestSource over `path` with a recording sink and a quiet log, loaded once. */
async function loaded(path: string) {
  const sink = recorder()
  const log = quietLog()
  const source = new ManifestSource({ path, sink, log })
  return { sink, log, source, r: await source.load() }
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsproxy-manifests-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('the fixtures: nginx-basic (3 endpoints) and a NodePort service', async (t) => {
  const services = new ServiceChangeTracker()
  const endpoints = new EndpointsChangeTracker({ nodeName: 'node01' })
  const log = quietLog()
  const source = new ManifestSource({ path: FIXTURES, sink: trackerSink(services, endpoints), log })
  const r = await source.load()
  t.equal(r.errors.length, 0, 'no errors')
  t.equal(r.added, 4, 'two services and two slices')
  t.match(source.stats, { files: 2, documents: 5, services: 2, endpointSlices: 2, ignored: 1, errorsTotal: 0, partialTotal: 0, reloads: 1 }, 'the Deployment is passed over')
  const changes = applyChanges(services, endpoints)
  t.strictSame([...changes.servicePorts].sort(), ['default/nginx-basic:http/TCP', 'default/nginx-nodeport:http/TCP'])
  const basic = services.ports.get('default/nginx-basic:http/TCP')!
  t.strictSame(basic.clusterIPs, ['10.96.115.68'])
  t.equal(basic.port, 80)
  t.equal(basic.nodePort, 0)
  t.strictSame(
    endpoints.endpoints('default/nginx-basic:http/TCP').map((e) => [e.key, e.isLocal]),
    [['192.168.0.7:80', false], ['192.168.1.3:80', true], ['192.168.1.4:80', true]],
    'the three pods of the reference, two on node01',
  )
  const np = services.ports.get('default/nginx-nodeport:http/TCP')!
  t.equal(np.type, 'NodePort')
  t.equal(np.nodePort, 30080)
  t.equal(endpoints.endpoints('default/nginx-nodeport:http/TCP').length, 3)
  await source.close()
})

t.test('a file source: a single file, read once', async (t) => {
  const { sink, source } = await loaded(join(FIXTURES, 'nginx-basic.yaml'))
  t.strictSame(sink.events, ['add EndpointSlice default/nginx-basic-7xk2p', 'add Service default/nginx-basic'])
  await source.close()
})

t.test('load() rejects a path that does not exist', async (t) => {
  const source = new ManifestSource({ path: '/nonexistent/tsproxy-manifests', sink: recorder(), log: quietLog() })
  await t.rejects(source.load(), { code: 'ENOENT' })
})

t.test('bad documents: each refused with its field and line, the rest applies', async (t) => {
  const good = svcYaml('good', '10.96.0.1')
  const cases: { name: string; doc: string; field?: string; line: number; reason: RegExp }[] = [
    { name: 'an invalid cluster IP', doc: svcYaml('bad-ip', '10.96.0.300'), field: 'spec.clusterIP', line: 0, reason: /spec\.clusterIP is not a valid IPv4 or IPv6 address/ },
    { name: 'a missing port', doc: 'apiVersion: v1\nkind: Service\nmetadata: {name: no-port}\nspec:\n  clusterIP: 10.96.0.2\n  ports: [{name: a}]\n', field: 'spec.ports[0].port', line: 0, reason: /is required/ },
    { name: 'a missing cluster IP', doc: 'apiVersion: v1\nkind: Service\nmetadata: {name: no-ip}\nspec:\n  ports: [{port: 80}]\n', field: 'spec.clusterIP', line: 0, reason: /is required/ },
    // The parser notices the unclosed map where the next document begins.
    { name: 'a YAML syntax error', doc: 'apiVersion: v1\nkind: Service\nmetadata: {name: broken\n', line: 4, reason: /: YAML: Flow map .* at line \d+, column 1$/ },
    { name: 'a scalar document', doc: 'just words\n', line: 0, reason: /is not an object/ },
    { name: 'no kind', doc: 'apiVersion: v1\nmetadata: {name: x}\n', line: 0, reason: /has no kind/ },
    { name: 'an EndpointSlice without its service label', doc: 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\n', field: 'metadata.labels["kubernetes.io/service-name"]', line: 0, reason: /is required/ },
    { name: 'a YAML 1.1 boolean where a string belongs', doc: 'apiVersion: v1\nkind: Service\nmetadata: {name: yes-label, labels: {enabled: yes}}\nspec: {clusterIP: 10.96.0.3, ports: [{port: 80}]}\n', field: 'metadata.labels["enabled"]', line: 0, reason: /must be a string/ },
  ]
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const dir = await tempDir(t)
      // good document, bad document, good slice: the bad one sits on line 1 + the good one's lines + the '---'.
      const docLine = good.split('\n').length + 1
      await writeFile(join(dir, 'a.yaml'), `${good}---\n${c.doc}---\n${sliceYaml('good-1', 'good', ['10.0.0.1'])}`)
      const { sink, log, source, r } = await loaded(dir)
      t.strictSame(sink.events, ['add EndpointSlice default/good-1', 'add Service default/good'], 'the good documents apply')
      t.equal(r.errors.length, 1, 'one error')
      const e = r.errors[0]!
      t.equal(e.name, 'ManifestError')
      t.equal(e.file, join(dir, 'a.yaml'))
      t.equal(e.document, 1, 'the second document')
      t.equal(e.line, c.line === 0 ? docLine : docLine + c.line - 1, 'the line')
      t.equal(e.field, c.field, 'the field')
      t.match(e.message, c.reason)
      t.equal(e.keptPrevious, false)
      t.equal(source.stats.errorsTotal, 1, 'counted')
      t.equal(source.errors.length, 1, 'listed')
      t.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'manifest document refused' && l.fields?.line === e.line), 'logged')
      await source.close()
    })
  }
})

t.test('a bad endpoint: left out and reported with its field and line; the slice and its other endpoints apply', async (t) => {
  const dir = await tempDir(t)
  const good = svcYaml('good', '10.96.0.1')
  await writeFile(join(dir, 'a.yaml'), `${good}---\n${sliceYaml('bad-ep', 'good', ['10.0.0.1', 'pod-2', '10.0.0.3'])}`)
  const { sink, log, source, r } = await loaded(dir)
  t.strictSame(sink.events, ['add EndpointSlice default/bad-ep', 'add Service default/good'], 'the slice applies')
  t.equal(r.errors.length, 1, 'one error')
  const e = r.errors[0]!
  t.equal(e.partial, true, 'partial: the rest of the object applies')
  t.equal(e.keptPrevious, false)
  t.equal(e.object, 'EndpointSlice default/bad-ep')
  t.equal(e.field, 'endpoints[1].addresses[0]')
  t.equal(e.document, 1)
  t.equal(e.line, good.split('\n').length + 1, 'the line of the slice')
  t.match(e.message, /endpoints\[1\]\.addresses\[0\] is not a valid .* \(left out; the rest of the object applies\)$/)
  t.equal(source.stats.partialTotal, 1, 'counted as partly applied')
  t.equal(source.stats.errorsTotal, 0, 'not as a refused document')
  t.ok(log.lines.some((l) => l.level === 'warn' && l.msg === 'manifest object partly applied' && l.fields?.field === 'endpoints[1].addresses[0]'), 'logged as a warning')
  await source.close()
})

t.test('kind: List, JSON, other lists', async (t) => {
  const dir = await tempDir(t)
  await writeFile(
    join(dir, 'list.yaml'),
    `apiVersion: v1
kind: List
items:
- ${svcYaml('l1', '10.96.1.1').trimEnd().split('\n').join('\n  ')}
- ${svcYaml('l2', '10.96.1.300').trimEnd().split('\n').join('\n  ')}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm}
`,
  )
  await writeFile(
    join(dir, 'items.json'),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ServiceList',
      items: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'j1', namespace: 'json' }, spec: { clusterIP: '10.96.2.1', ports: [{ port: 443 }] } }],
    }),
  )
  await writeFile(join(dir, 'broken.json'), '{"apiVersion": "v1"\n "kind": "Service"}')
  await writeFile(join(dir, 'notes.txt'), 'not a manifest')
  await writeFile(join(dir, '.hidden.yaml'), svcYaml('hidden', '10.96.9.9'))
  const { sink, source, r } = await loaded(dir)
  t.strictSame(sink.events, ['add Service default/l1', 'add Service json/j1'], 'List items and JSON lists; other files and hidden files passed over')
  t.equal(r.errors.length, 2)
  const list = r.errors.find((e) => e.file.endsWith('list.yaml'))!
  t.match(list.message, /items\[1\]: Service default\/l2: spec\.clusterIP/, 'a List item is named by its index')
  t.equal(list.field, 'spec.clusterIP')
  const json = r.errors.find((e) => e.file.endsWith('broken.json'))!
  t.match(json.message, /JSON: /)
  t.equal(json.line, 2, 'the JSON error line')
  t.equal(source.stats.ignored, 1, 'the ConfigMap')
  await source.close()
})

t.test('YAML 1.1 as kubectl reads it', async (t) => {
  const dir = await tempDir(t)
  await writeFile(
    join(dir, 's.yaml'),
    `${svcYaml('web', '10.96.0.1')}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
  annotations: {endpoints.kubernetes.io/last-change-trigger-time: 2024-01-02T03:04:05Z}
addressType: IPv4
ports: [{port: 0x1F90}]
endpoints:
  - addresses: ["10.0.0.1"]
    conditions: {ready: no, serving: yes, terminating: on}
`,
  )
  const services = new ServiceChangeTracker()
  const endpoints = new EndpointsChangeTracker()
  const source = new ManifestSource({ path: dir, sink: trackerSink(services, endpoints), log: quietLog() })
  t.equal((await source.load()).errors.length, 0)
  applyChanges(services, endpoints)
  t.strictSame(
    endpoints.endpoints('default/web/TCP').map((e) => [e.key, e.ready, e.serving, e.terminating]),
    [['10.0.0.1:8080', false, true, true]],
    'no/yes/on are booleans, 0x1F90 is 8080',
  )
  t.equal(endpoints.slicesOf('default/web').get('web-1')!.triggerTime, Date.UTC(2024, 0, 2, 3, 4, 5), 'a timestamp stays a string, as kubectl reads it')
  await source.close()
})

t.test('edits: last good version kept, fixes applied, deletions', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'web.yaml')
  await writeFile(file, `${svcYaml('web', '10.96.0.1')}---\n${svcYaml('api', '10.96.0.2')}`)
  const { sink, log, source } = await loaded(dir)
  t.strictSame(sink.events, ['add Service default/api', 'add Service default/web'])
  sink.events.length = 0

  // An edit that breaks web: web keeps its last good version; api's change applies.
  source.watch()
  let r = await change(source, () => put(file, `${svcYaml('web', '10.96.0.999')}---\n${svcYaml('api', '10.96.0.2', 8080)}`))
  t.strictSame(sink.events, ['update Service default/api'], 'only the good change applies')
  t.equal(r.errors.length, 1)
  t.equal(r.errors[0]!.keptPrevious, true, 'the error says the last good version stays')
  t.match(r.errors[0]!.message, /last good version stays applied/)
  sink.events.length = 0

  // A syntax error nobody can name: every object of the file stays.
  r = await change(source, () => put(file, `${svcYaml('web', '10.96.0.1')}---\nkind: [\n`))
  t.strictSame(sink.events, [], 'api is kept although its document is gone')
  t.equal(r.errors.length, 1)
  t.match(r.errors[0]!.message, /YAML: /)
  sink.events.length = 0

  // Fixed: api's removal now applies.
  r = await change(source, () => put(file, svcYaml('web', '10.96.0.1', 81)))
  t.strictSame(sink.events, ['delete Service default/api', 'update Service default/web'])
  t.equal(r.errors.length, 0)
  t.equal(source.errors.length, 0, 'no standing errors')
  t.equal(source.stats.errorsTotal, 2)
  sink.events.length = 0

  // The file deleted: its objects go.
  await change(source, () => unlink(file))
  t.strictSame(sink.events, ['delete Service default/web'])
  t.equal(source.stats.files, 0)
  await source.close()
})

t.test('duplicates across files: the first file in name order wins', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, '10-a.yaml'), svcYaml('web', '10.96.0.1'))
  await writeFile(join(dir, '20-b.yaml'), svcYaml('web', '10.96.0.2'))
  const services = new ServiceChangeTracker()
  const log = quietLog()
  const source = new ManifestSource({ path: dir, sink: trackerSink(services, new EndpointsChangeTracker()), log })
  const r = await source.load()
  t.equal(r.errors.length, 1)
  t.match(r.errors[0]!.message, /Service\/default\/web is defined again; the definition in .*10-a\.yaml applies/)
  t.equal(r.errors[0]!.file, join(dir, '20-b.yaml'), 'the second definition is the one refused')
  t.equal(r.errors[0]!.object, 'Service default/web')
  t.equal(r.errors[0]!.line, 1)
  services.apply()
  t.strictSame(services.ports.get('default/web/TCP')!.clusterIPs, ['10.96.0.1'])

  // Re-reading another file does not report the same duplicate again.
  source.watch()
  const r2 = await change(source, () => put(join(dir, '30-c.yaml'), svcYaml('other', '10.96.0.3')))
  t.equal(r2.errors.length, 0, 'reported once')
  t.equal(r2.added, 1)

  await change(source, () => unlink(join(dir, '10-a.yaml')))
  services.apply()
  t.strictSame(services.ports.get('default/web/TCP')!.clusterIPs, ['10.96.0.2'], 'the other definition takes over')
  await source.close()
})

t.test('duplicates within a file: the first applies', async (t) => {
  const state = readManifest('/x/a.yaml', `${svcYaml('web', '10.96.0.1')}---\n${svcYaml('web', '10.96.0.2')}`)
  t.equal(state.objects.size, 1)
  t.equal(state.errors.length, 1)
  t.match(state.errors[0]!.message, /defined twice in this file/)
  const v = state.objects.get('Service/default/web')!.value
  t.equal(v.skip, undefined)
  t.equal(v.skip === undefined && v.kind === 'Service' ? v.spec.clusterIP : '', '10.96.0.1')
})

t.test('watching: new files, editor-style renames, a single watched file', async (t) => {
  const dir = await tempDir(t)
  const reloads: ReloadResult[] = []
  const sink = recorder()
  const source = new ManifestSource({ path: dir, sink, debounceMs: 5, log: quietLog(), onReload: (r) => reloads.push(r) })
  await source.load()
  source.watch()
  await change(source, () => put(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1')))
  t.strictSame(sink.events, ['add Service default/web'], 'a new file')
  // An editor writes a swap file, then a temporary file renamed over the original.
  await change(source, async () => {
    await writeFile(join(dir, '.web.yaml.swp'), 'junk')
    await put(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1', 8443))
  })
  t.strictSame(sink.events, ['add Service default/web', 'update Service default/web'], 'a rename over the file')
  t.ok(reloads.length >= 2, 'onReload called')
  t.equal(reloads.at(-1)!.updated, 1)
  await source.close()

  // A source on one file ignores its neighbours.
  const sub = join(dir, 'one')
  await mkdir(sub)
  await writeFile(join(sub, 'watched.yaml'), svcYaml('w', '10.96.0.5'))
  const one = recorder()
  const single = new ManifestSource({ path: join(sub, 'watched.yaml'), sink: one, debounceMs: 5, log: quietLog() })
  await single.load()
  single.watch()
  await change(single, async () => {
    await put(join(sub, 'other.yaml'), svcYaml('o', '10.96.0.6'))
    await put(join(sub, 'watched.yaml'), svcYaml('w', '10.96.0.5', 81))
  })
  t.strictSame(one.events, ['add Service default/w', 'update Service default/w'], 'only the watched file')
  await single.close()
})

t.test('a ConfigMap volume: the kubelet swaps the ..data symlink', async (t) => {
  const dir = await tempDir(t)
  // The kubelet's atomic writer: files are symlinks into ..data, itself a symlink to a timestamped directory.
  await mkdir(join(dir, '..2024_01'))
  await writeFile(join(dir, '..2024_01', 'web.yaml'), svcYaml('web', '10.96.0.1'))
  await symlink('..2024_01', join(dir, '..data'))
  await symlink('..data/web.yaml', join(dir, 'web.yaml'))
  const services = new ServiceChangeTracker()
  let updated = 0
  const source = new ManifestSource({ path: dir, sink: trackerSink(services, new EndpointsChangeTracker()), debounceMs: 5, log: quietLog(), onReload: (r) => void (updated += r.updated) })
  await source.load()
  source.watch()
  await change(source, async () => {
    await mkdir(join(dir, '..2024_02'))
    await writeFile(join(dir, '..2024_02', 'web.yaml'), svcYaml('web', '10.96.0.1', 8080))
    await symlink('..2024_02', join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  })
  // The first reload may have come from the new directory alone, before the swap.
  for (const deadline = Date.now() + 5000; updated === 0 && Date.now() < deadline;) await sleep(20)
  t.equal(updated, 1, 'the service behind the symlink is re-read')
  services.apply()
  t.equal(services.ports.get('default/web/TCP')?.port, 8080)
  await source.close()
})

t.test('flush(files): files the caller wrote are read at once, without a watcher or a poll', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1'))
  const sink = recorder()
  const source = new ManifestSource({ path: dir, sink, pollMs: 0, log: quietLog() })
  await source.load()
  await writeFile(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1', 81))
  await writeFile(join(dir, 'notes.txt'), 'not a manifest')
  const r = await source.flush([join(dir, 'web.yaml'), join(dir, 'notes.txt'), '/elsewhere/other.yaml'])
  t.same({ filesRead: r?.filesRead, updated: r?.updated }, { filesRead: 1, updated: 1 }, 'only the manifest file of the directory is read')
  t.same(sink.events, ['add Service default/web', 'update Service default/web'])

  // Without files, flush() compares the file stamps: a write nobody reported is found too.
  await writeFile(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1', 8443))
  const s = await source.flush()
  t.same({ filesRead: s?.filesRead, updated: s?.updated }, { filesRead: 1, updated: 1 }, 'flush() found the unreported write by its stamp')
  t.equal(await source.flush(), undefined, 'and a second flush finds nothing more')
  await source.close()
})

t.test('bursts of writes coalesce, the last one wins', async (t) => {
  const dir = await tempDir(t)
  const services = new ServiceChangeTracker()
  const source = new ManifestSource({ path: dir, sink: trackerSink(services, new EndpointsChangeTracker()), debounceMs: 200, log: quietLog() })
  await source.load()
  source.watch()
  const before = source.stats.reloads
  await change(source, async () => {
    for (let i = 0; i < 10; i++) await put(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1', 80 + i))
  })
  t.ok(source.stats.reloads - before <= 3, `ten writes, ${source.stats.reloads - before} reload(s)`)
  services.apply()
  t.equal(services.ports.get('default/web/TCP')?.port, 89, 'the last write applies')
  await source.close()
})

/** Writes a file whole (a temporary file renamed over it), as careful editors do. */
async function put(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text)
  await rename(`${file}.tmp`, file)
}

/**
 * Runs `fn` (file changes) and waits for the watcher's reloads it causes (up to
 * 5 s), then returns the last reload's result.
 */
async function change(source: ManifestSource, fn: () => Promise<void>): Promise<ReloadResult> {
  const since = source.stats.reloads
  await fn()
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    await sleep(10)
    if (source.stats.reloads > since) {
      await sleep(50) // let a trailing event of the same change settle
      await source.flush()
      return source.lastResult!
    }
  }
  throw new Error('no reload within 5 s')
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
