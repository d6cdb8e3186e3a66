// A manifest source that cannot be read is not an empty one (issue 11): a
// directory renamed away, replaced by a file (ENOTDIR) or unlistable for lack
// of descriptors (EMFILE, injected through the fs seam) keeps every object it
// held, reports each failed read, and reports when it reads again, when the
// changes made meanwhile apply. A file replaced by a directory is an error for
// that file, not a removal; a file really deleted still is one. At load(), an
// unreadable source rejects instead of loading as empty. The daemon keeps the
// kernel as it is, counts the failures, fails /healthz once they last the
// health timeout (2 x syncPeriod, shortened here) and waits at start for a
// source that cannot be read yet.
import { mkdir, mkdtemp, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ManifestSource, type SourceReadError } from '../../dist/proxy/sources/manifests.js'
import { Daemon } from '../../dist/proxy/daemon.js'
import { defaultConfig } from '../../dist/proxy/config.js'
import { FakeDataplane } from '../support/fake-dataplane.js'
import { quietLog, recorder } from '../support/sinks.js'

const svcYaml = (name: string, ip: string, port = 80): string =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  clusterIP: ${ip}\n  ports:\n    - port: ${port}\n`

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsproxy-source-errors-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A source on `dir` holding web and api, with its read errors and recoveries recorded. */
async function loaded(t: Test, dir: string, extra: Partial<ConstructorParameters<typeof ManifestSource>[0]> = {}) {
  await writeFile(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1'))
  await writeFile(join(dir, 'api.yaml'), svcYaml('api', '10.96.0.2'))
  const sink = recorder()
  const log = quietLog()
  const failures: SourceReadError[] = []
  let recoveries = 0
  // pollMs 0: the test drives every re-read with flush(), which compares stamps as a poll does.
  const source = new ManifestSource({ path: dir, sink, log, pollMs: 0, onReadError: (e) => failures.push(e), onReadable: () => recoveries++, ...extra })
  t.teardown(() => source.close())
  await source.load()
  t.strictSame(sink.events, ['add Service default/api', 'add Service default/web'], 'both services loaded')
  sink.events.length = 0
  return { source, sink, log, failures, recoveries: () => recoveries }
}

t.test('a directory renamed away and back: nothing deleted meanwhile, the real difference applied after', async (t) => {
  const parent = await tempDir(t)
  const dir = join(parent, 'manifests')
  await mkdir(dir)
  const { source, sink, log, failures, recoveries } = await loaded(t, dir)
  source.watch()

  await rename(dir, `${dir}.away`)
  await source.flush()
  await source.flush()
  t.strictSame(sink.events, [], 'no deletion while the directory is gone')
  t.equal(failures.length, 2, 'each failed read reported')
  t.match(failures[0], { scope: 'source', path: dir, reason: 'ENOENT' })
  t.equal(source.stats.services, 2, 'the source still holds both services')
  t.ok(source.unreadable, 'the source says it is unreadable')
  t.equal(source.unreadable?.reason, 'ENOENT')
  const warned = log.lines.filter((l) => l.level === 'warn' && /cannot read the manifest source/.test(l.msg))
  t.equal(warned.length, 1, 'one warning for the outage, not one per retry')
  t.match(warned[0]?.fields, { path: dir, error: /ENOENT/ }, 'naming the path and the error')

  // Meanwhile: api is removed, web changes, db appears.
  await unlink(join(`${dir}.away`, 'api.yaml'))
  await writeFile(join(`${dir}.away`, 'web.yaml'), svcYaml('web', '10.96.0.1', 81))
  await writeFile(join(`${dir}.away`, 'db.yaml'), svcYaml('db', '10.96.0.3'))
  await source.flush()
  t.strictSame(sink.events, [], 'still nothing')

  await rename(`${dir}.away`, dir)
  await source.flush()
  t.strictSame(sink.events, ['delete Service default/api', 'add Service default/db', 'update Service default/web'], 'back: the real difference applies')
  t.equal(recoveries(), 1, 'the recovery is reported once')
  t.equal(source.unreadable, undefined, 'readable again')
  t.ok(log.lines.some((l) => l.level === 'info' && /manifest source reads again/.test(l.msg)), 'and logged')

  // The watcher follows the directory that is there now.
  sink.events.length = 0
  await writeFile(join(dir, 'db.yaml'), svcYaml('db', '10.96.0.3', 5432))
  const deadline = Date.now() + 5000
  while (sink.events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.strictSame(sink.events, ['update Service default/db'], 'a change after the outage is seen by the watcher')
})

t.test('the directory replaced by a file (ENOTDIR) and by an empty directory', async (t) => {
  const parent = await tempDir(t)
  const dir = join(parent, 'manifests')
  await mkdir(dir)
  const { source, sink, failures } = await loaded(t, dir)
  await rename(dir, `${dir}.away`)
  await writeFile(dir, 'not a directory')
  await source.flush()
  t.strictSame(sink.events, [], 'kept')
  t.match(failures, [{ scope: 'source', reason: 'ENOTDIR' }])
  await unlink(dir)
  // An empty directory is readable: its emptiness is the truth.
  await mkdir(dir)
  await source.flush()
  t.strictSame(sink.events, ['delete Service default/api', 'delete Service default/web'], 'an empty directory that reads is empty')
  t.equal(source.unreadable, undefined)
})

t.test('EMFILE: no descriptor to list the directory with, or to read a file with', async (t) => {
  const dir = await tempDir(t)
  let exhausted = false
  const emfile = (): Error => Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE', errno: -24 })
  const { default: fsp } = await import('node:fs/promises')
  const fs = {
    readdir: async (p: string) => (exhausted ? Promise.reject(emfile()) : fsp.readdir(p)),
    stat: (p: string) => fsp.stat(p),
    readFile: async (p: string, enc: 'utf8') => (exhausted ? Promise.reject(emfile()) : fsp.readFile(p, enc)),
  }
  const { source, sink, failures, recoveries } = await loaded(t, dir, { fs })
  exhausted = true
  await writeFile(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1', 82))
  t.equal(await source.flush([join(dir, 'web.yaml')]).then((r) => r?.deleted ?? 0), 0, 'nothing deleted')
  t.strictSame(sink.events, [])
  t.match(failures, [{ scope: 'source', reason: 'EMFILE' }], 'the listing failed: the whole source is unreadable')
  exhausted = false
  await source.flush()
  t.strictSame(sink.events, ['update Service default/web'], 'the edit made during the outage applies once it reads')
  t.equal(recoveries(), 1)

  // Listing works, one file does not: that file keeps its objects, and is retried.
  let fileFails = true
  fs.readFile = async (p: string, enc: 'utf8') => (fileFails && p.endsWith('api.yaml') ? Promise.reject(emfile()) : fsp.readFile(p, enc))
  sink.events.length = 0
  failures.length = 0
  await writeFile(join(dir, 'api.yaml'), svcYaml('api', '10.96.0.2', 8080))
  await source.flush([join(dir, 'api.yaml')])
  t.strictSame(sink.events, [], 'api stays as it was')
  t.match(failures, [{ scope: 'file', path: join(dir, 'api.yaml'), reason: 'EMFILE' }])
  t.equal(source.unreadable, undefined, 'a file error is not the source being unreadable')
  fileFails = false
  await source.flush()
  t.strictSame(sink.events, ['update Service default/api'], 'retried without a new change notification')
})

t.test('a file replaced by a directory: an error for that file, kept; a file deleted is removed', async (t) => {
  const dir = await tempDir(t)
  const { source, sink, log, failures } = await loaded(t, dir)
  await unlink(join(dir, 'web.yaml'))
  await mkdir(join(dir, 'web.yaml'))
  await source.flush()
  await source.flush()
  t.strictSame(sink.events, [], 'web is kept')
  t.equal(failures.length, 2, 'counted at each read')
  t.match(failures[0], { scope: 'file', path: join(dir, 'web.yaml'), reason: 'EISDIR' })
  const warned = log.lines.filter((l) => l.level === 'warn' && /cannot read a manifest file/.test(l.msg))
  t.equal(warned.length, 1, 'warned once')
  t.match(warned[0]?.fields, { file: join(dir, 'web.yaml') })
  t.notOk(log.lines.some((l) => /manifest file removed/.test(l.msg)), 'not logged as a removal')

  // A file again: read as usual.
  await rm(join(dir, 'web.yaml'), { recursive: true })
  await writeFile(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1', 8443))
  await source.flush()
  t.strictSame(sink.events, ['update Service default/web'])

  // Really deleted (gone from a directory that lists): removed.
  await unlink(join(dir, 'api.yaml'))
  await source.flush()
  t.strictSame(sink.events, ['update Service default/web', 'delete Service default/api'])
  t.ok(log.lines.some((l) => /manifest file removed/.test(l.msg)))
})

t.test('a single-file source: the file gone or unreadable keeps its objects', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'all.yaml')
  await writeFile(file, `${svcYaml('web', '10.96.0.1')}---\n${svcYaml('api', '10.96.0.2')}`)
  const sink = recorder()
  const failures: SourceReadError[] = []
  const source = new ManifestSource({ path: file, sink, log: quietLog(), pollMs: 0, onReadError: (e) => failures.push(e) })
  t.teardown(() => source.close())
  await source.load()
  sink.events.length = 0
  await rename(file, `${file}.away`)
  await source.flush([file])
  t.strictSame(sink.events, [], 'the file is the source: its absence is an outage, not an empty list')
  t.match(failures, [{ scope: 'source', reason: 'ENOENT' }])
  await mkdir(file)
  await source.flush()
  t.strictSame(sink.events, [], 'a directory in its place neither')
  t.equal(failures.at(-1)?.reason, 'EISDIR')
  await rm(file, { recursive: true })
  await rename(`${file}.away`, file)
  await source.flush()
  t.equal(source.unreadable, undefined, 'reads again')
  t.strictSame(sink.events, [], 'with the same objects: nothing to do')
})

t.test('load(): a source that cannot be read rejects, never loads as empty', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'web.yaml'), svcYaml('web', '10.96.0.1'))
  const emfile = Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' })
  const { default: fsp } = await import('node:fs/promises')
  const sink = recorder()
  const source = new ManifestSource({ path: dir, sink, log: quietLog(), fs: { readdir: () => Promise.reject(emfile), stat: (p) => fsp.stat(p), readFile: (p, e) => fsp.readFile(p, e) } })
  await t.rejects(source.load(), { code: 'EMFILE' })
  t.strictSame(sink.events, [], 'nothing fed')
  t.equal(source.stats.reloads, 0)
  t.ok((await readdir(dir)).length === 1)
})

// The daemon on the in-memory kernel, with a short sync period: the health timeout is 2 x 250 ms.
const daemonConfig = () => ({ ...defaultConfig(), mode: 'ipvs' as const, healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0', ipvs: { ...defaultConfig().ipvs, syncPeriod: 250, minSyncPeriod: 0 } })
const sysctl = () => {
  const v = new Map<string, number>()
  return { get: async (k: string) => v.get(k) ?? 0, set: async (k: string, n: number) => void v.set(k, n) }
}
const sliceYaml = (svc: string, ip: string): string =>
  `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: ${svc}-x, labels: { kubernetes.io/service-name: ${svc} } }\naddressType: IPv4\nports: [{ port: 8080 }]\nendpoints: [{ addresses: [${ip}] }]\n`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function probe(port: number, path = '/healthz'): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: r.status, body: (await r.json()) as Record<string, unknown> }
}

t.test('daemon: the manifest directory renamed away keeps every rule, fails /healthz after the timeout, recovers', async (t) => {
  const parent = await tempDir(t)
  const dir = join(parent, 'manifests')
  await mkdir(dir)
  await writeFile(join(dir, 'web.yaml'), `${svcYaml('web', '10.96.0.1')}---\n${sliceYaml('web', '10.244.0.1')}`)
  await writeFile(join(dir, 'api.yaml'), `${svcYaml('api', '10.96.0.2')}---\n${sliceYaml('api', '10.244.0.2')}`)
  const fake = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10', prefix: 24 }] })
  const log = quietLog()
  const d = new Daemon({ config: daemonConfig(), manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl: sysctl() })
  t.teardown(() => d.stop())
  await d.start()
  t.same(fake.dests('tcp/10.96.0.1:80'), ['10.244.0.1:8080 w1 masq'])
  t.same(fake.dests('tcp/10.96.0.2:80'), ['10.244.0.2:8080 w1 masq'])

  await rename(dir, `${dir}.away`)
  await d.settled()
  t.same(fake.dests('tcp/10.96.0.1:80'), ['10.244.0.1:8080 w1 masq'], 'web stays programmed')
  t.same(fake.dests('tcp/10.96.0.2:80'), ['10.244.0.2:8080 w1 masq'], 'api too')
  t.ok(d.metrics.sourceErrorsTotal.get({ source: 'manifests', reason: 'ENOENT' }) >= 1, 'the failure is counted')
  t.equal((await probe(d.ports.healthz!)).status, 200, 'within the timeout: healthy')

  // The outage lasts: each poll fails again; past 2 x syncPeriod, unhealthy.
  await unlink(join(`${dir}.away`, 'api.yaml'))
  for (let i = 0; i < 8; i++) {
    await sleep(100)
    await d.settled()
  }
  const bad = await probe(d.ports.healthz!)
  t.equal(bad.status, 503, '/healthz fails')
  t.match(bad.body, { healthy: false, sourceError: /^manifests: ENOENT.*\(since \d{4}-/ }, 'saying why')
  t.equal((await probe(d.ports.healthz!, '/livez')).status, 200, '/livez does not: a restart would not mend the source')
  t.same(fake.dests('tcp/10.96.0.2:80'), ['10.244.0.2:8080 w1 masq'], 'api is still there: its removal has not been read')
  const metrics = await (await fetch(`http://127.0.0.1:${d.ports.metrics}/metrics`)).text()
  t.match(metrics, /^tsproxy_source_errors_total\{reason="ENOENT",source="manifests"\} [1-9]\d*$/m, 'on /metrics')

  await rename(`${dir}.away`, dir)
  await d.settled()
  t.equal((await probe(d.ports.healthz!)).status, 200, 'readable again: healthy')
  t.equal(fake.service('tcp/10.96.0.2:80'), undefined, 'the removal made meanwhile applies')
  t.same(fake.dests('tcp/10.96.0.1:80'), ['10.244.0.1:8080 w1 masq'], 'web untouched')
})

t.test('daemon: a manifest directory that cannot be read at start is waited for; nothing is written meanwhile', async (t) => {
  const parent = await tempDir(t)
  const dir = join(parent, 'manifests')
  const fake = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10', prefix: 24 }] })
  const log = quietLog()
  const config = { ...daemonConfig(), healthzBindAddress: '127.0.0.1:0' }
  const d = new Daemon({ config, manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl: sysctl() })
  t.teardown(() => d.stop())
  let started = false
  const starting = d.start().then(() => void (started = true))
  await sleep(700)
  t.equal(started, false, 'start waits')
  t.same(fake.writes(), [], 'nothing written to the kernel')
  t.ok(log.lines.some((l) => l.level === 'warn' && /cannot read the manifests; waiting/.test(l.msg)), 'the wait is logged')
  t.ok(d.metrics.sourceErrorsTotal.get({ source: 'manifests', reason: 'ENOENT' }) >= 1, 'and counted')
  const bad = await probe(d.ports.healthz!)
  t.equal(bad.status, 503, 'waiting longer than the health timeout fails /healthz')
  t.match(bad.body, { sourceError: /ENOENT/ })

  await mkdir(dir)
  await writeFile(join(dir, 'web.yaml'), `${svcYaml('web', '10.96.0.1')}---\n${sliceYaml('web', '10.244.0.1')}`)
  await starting
  t.same(fake.dests('tcp/10.96.0.1:80'), ['10.244.0.1:8080 w1 masq'], 'read, then programmed')
  t.equal((await probe(d.ports.healthz!)).status, 200)
})

t.test('daemon: stop() ends the wait for a source that never reads', async (t) => {
  const fake = new FakeDataplane({ nodeAddresses: [] })
  const d = new Daemon({ config: daemonConfig(), manifests: '/nonexistent/tsproxy-manifests', log: quietLog(), dataplane: fake, nodeName: 'n1', sysctl: sysctl() })
  const starting = d.start()
  await sleep(50)
  await d.stop()
  await t.rejects(starting, /stopped before the manifests could be read/)
  t.same(fake.writes(), [])
})
