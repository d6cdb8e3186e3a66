// lib/proxy/limits.ts: size and nesting limits checked before any YAML/JSON
// parser sees a manifest, the --config file, a kubeconfig or a watch event
// (issue 11). Deeply nested brackets made the `yaml` package overflow its stack
// and then abort the whole process (a V8 RegExpCompiler out-of-memory, exit
// 134): the tests that could abort run in a child process and check its exit.
// The fuzz test's seed is printed; TSPROXY_FUZZ_SEED=<seed> replays a failure.
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { stringify } from 'yaml'
import { LimitError, MAX_DEPTH, MAX_MANIFEST_BYTES, MAX_WATCH_LINE_BYTES, jsonDepth } from '../../dist/proxy/limits.js'
import { yamlSegments } from '../../dist/proxy/yaml-scan.js'
import { yamlDocuments } from '../../dist/proxy/yaml.js'
import { ManifestError, ManifestSource, readManifest } from '../../dist/proxy/sources/manifests.js'
import { parseConfig } from '../../dist/proxy/config.js'
import { KubeApiError, KubeClient, KubeConfigError, loadKubeconfig, type WatchEvent } from '../../dist/proxy/sources/kube/client.js'
import { parseService } from '../../dist/proxy/model/service.js'
import { parseEndpointSlice } from '../../dist/proxy/model/endpointslice.js'
import { samePlain } from '../../dist/proxy/model/fields.js'
import { Daemon } from '../../dist/proxy/daemon.js'
import { defaultConfig } from '../../dist/proxy/config.js'
import { FakeDataplane } from '../support/fake-dataplane.js'
import { quietLog, recorder as recordEvents } from '../support/sinks.js'

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url))
const FIXTURES = fileURLToPath(new URL('../fixtures/manifests/', import.meta.url))

// The inputs.
const BRACKETS = `${'['.repeat(1000)}${']'.repeat(1000)}`
const JSON_100K = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`
const YAML_20K_SEQ = `${'- '.repeat(20_000)}x\n`
const YAML_20K_FLOW = `${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}\n`

const svc = (name: string, ip: string): string =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: default\nspec:\n  clusterIP: ${ip}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n`

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsproxy-limits-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const recorder = () => recordEvents((o) => o.metadata.name)

/** Nesting depth of a parsed value (collections in collections), without recursion. */
function valueDepth(v: unknown): number {
  let max = 0
  const stack: [unknown, number][] = [[v, 0]]
  const seen = new Set<object>()
  while (stack.length > 0) {
    const [x, d] = stack.pop()!
    if (typeof x !== 'object' || x === null || seen.has(x)) continue
    seen.add(x)
    if (d + 1 > max) max = d + 1
    for (const y of Array.isArray(x) ? x : x instanceof Map ? [...x.keys(), ...x.values()] : Object.values(x)) stack.push([y, d + 1])
  }
  return max
}

t.test('the issue\'s inputs do not abort the process: refused, counted, the rest applied', async (t) => {
  const dir = await tempDir(t)
  const manifests = join(dir, 'manifests')
  const script = join(dir, 'child.mjs')
  await rm(manifests, { recursive: true, force: true })
  await import('node:fs/promises').then((fs) => fs.mkdir(manifests))
  await writeFile(join(manifests, 'a-brackets.yaml'), BRACKETS)
  await writeFile(join(manifests, 'b-brackets.yaml'), BRACKETS)
  await writeFile(join(manifests, 'c-two.yaml'), `${BRACKETS}\n---\n${BRACKETS}\n---\n${svc('two', '10.96.0.12')}`)
  await writeFile(join(manifests, 'd-json.json'), JSON_100K)
  await writeFile(join(manifests, 'e-json.yaml'), JSON_100K)
  await writeFile(join(manifests, 'f-seq.yaml'), YAML_20K_SEQ)
  await writeFile(join(manifests, 'g-flow.yaml'), YAML_20K_FLOW)
  await writeFile(join(manifests, 'web.yaml'), svc('web', '10.96.0.10'))
  // The source loads the directory, then reads every file again (a second parse aborted before).
  await writeFile(
    script,
    `import { ManifestSource } from ${JSON.stringify(pathToFileURL(join(DIST, 'proxy/sources/manifests.js')).href)}
const added = []
const sink = { service: (p, c) => c && added.push(c.metadata.name), endpointSlice: () => {} }
const refused = []
const log = (level, msg, f) => { if (msg === 'manifest document refused') refused.push(f.file.split('/').pop() + ' ' + f.document) }
const src = new ManifestSource({ path: ${JSON.stringify(manifests)}, sink, log, pollMs: 0 })
await src.load()
const again = await src.flush(${JSON.stringify(['a-brackets.yaml', 'b-brackets.yaml', 'c-two.yaml', 'e-json.yaml', 'f-seq.yaml', 'g-flow.yaml'].map((f) => join(manifests, f)))})
process.stdout.write(JSON.stringify({ added, refused, stats: src.stats, again: again?.filesRead }) + '\\n')
`,
  )
  // Unchanged texts are not parsed twice by the source: the flush above re-reads nothing new,
  // so the child also parses them directly a second time.
  const direct = join(dir, 'direct.mjs')
  await writeFile(
    direct,
    `import { yamlDocuments } from ${JSON.stringify(pathToFileURL(join(DIST, 'proxy/yaml.js')).href)}
import { readFileSync, writeFileSync } from 'node:fs'
const out = []
for (let i = 0; i < 2; i++) for (const f of ${JSON.stringify(['a-brackets.yaml', 'c-two.yaml', 'e-json.yaml', 'f-seq.yaml', 'g-flow.yaml'].map((f) => join(manifests, f)))})
  out.push(yamlDocuments(readFileSync(f, 'utf8'), { source: f }).map((d) => d.limit ? 'refused' : d.error ? 'error' : 'ok').join(','))
process.stdout.write(JSON.stringify(out) + '\\n')
`,
  )
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 50_000 })
  t.equal(run.status, 0, `the source's process exits normally (signal ${run.signal}; stderr: ${run.stderr.slice(0, 300)})`)
  t.notMatch(run.stderr, /FATAL|out of memory/, 'no V8 abort')
  const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as { added: string[]; refused: string[]; stats: { errorsTotal: number; services: number } }
  t.same(out.added.sort(), ['two', 'web'], 'the good service beside them and the one after two refused documents apply')
  t.same(
    out.refused.sort(),
    ['a-brackets.yaml 0', 'b-brackets.yaml 0', 'c-two.yaml 0', 'c-two.yaml 1', 'd-json.json 0', 'e-json.yaml 0', 'f-seq.yaml 0', 'g-flow.yaml 0'],
    'each deep document is logged as refused, naming its file and index',
  )
  t.equal(out.stats.errorsTotal, 8, 'and counted')
  t.equal(out.stats.services, 2, 'two services held')

  const twice = spawnSync(process.execPath, [direct], { encoding: 'utf8', timeout: 50_000 })
  t.equal(twice.status, 0, `parsing each text twice in one process does not abort (signal ${twice.signal}; stderr: ${twice.stderr.slice(0, 300)})`)
  t.same(JSON.parse(twice.stdout.trim() || '[]'), ['refused', 'refused,refused,ok', 'refused', 'refused', 'refused', 'refused', 'refused,refused,ok', 'refused', 'refused', 'refused'])
})

t.test('the daemon: deep documents are counted in tsproxy_manifest_errors_total; the services beside them are programmed', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'a.yaml'), `${BRACKETS}\n---\n${BRACKETS}\n---\n${svc('web', '10.96.0.10')}`)
  await writeFile(join(dir, 'b.yaml'), BRACKETS)
  const log = quietLog()
  const fake = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10', prefix: 24 }] })
  const sysctl = { get: async () => 0, set: async () => undefined }
  const d = new Daemon({ config: { ...defaultConfig(), mode: 'ipvs', healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0' }, manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl })
  t.teardown(() => d.stop())
  await d.start()
  t.ok(fake.service('tcp/10.96.0.10:80'), 'the good service is programmed')
  t.equal(d.metrics.manifestErrorsTotal.get(), 3, 'three refused documents counted')
  t.equal(log.lines.filter((l) => l.msg === 'manifest document refused').length, 3, 'each logged')
  const metrics = await (await fetch(`http://127.0.0.1:${d.ports.metrics}/metrics`)).text()
  t.match(metrics, /^tsproxy_manifest_errors_total 3$/m, 'and exported')

  // A reload that only refuses (nothing else changed) is counted too.
  await writeFile(join(dir, 'c.yaml'), BRACKETS)
  await d.settled()
  t.equal(d.metrics.manifestErrorsTotal.get(), 4, 'a new deep file after start: one more')
  t.ok(fake.service('tcp/10.96.0.10:80'), 'the service stays')
})

t.test('readManifest: a deep document is a ManifestError caused by a LimitError naming file, document and limit', async (t) => {
  const state = readManifest('/m/two.yaml', `${svc('a', '10.96.0.1')}---\n${BRACKETS}\n---\n${BRACKETS}\n---\n${svc('b', '10.96.0.2')}`)
  t.same([...state.objects.keys()], ['Service/default/a', 'Service/default/b'], 'the documents around them apply')
  t.equal(state.errors.length, 2)
  for (const [i, e] of state.errors.entries()) {
    t.ok(e instanceof ManifestError, 'a ManifestError')
    t.equal(e.document, i + 1, 'naming the document')
    t.match(e.message, new RegExp(`^/m/two\\.yaml:\\d+ \\(document ${i + 1}\\): nests deeper than the limit of ${MAX_DEPTH} levels`), 'and the limit')
    const cause = e.cause as LimitError
    t.ok(cause instanceof LimitError, 'caused by a LimitError')
    t.match(cause, { file: '/m/two.yaml', document: i + 1, limit: 'depth', max: MAX_DEPTH })
  }
  const json = readManifest('/m/deep.json', JSON_100K)
  t.match(json.errors[0]?.cause, { limit: 'depth', document: 0, file: '/m/deep.json' }, 'a 100k-deep JSON file: refused before JSON.parse')
  const big = readManifest('/m/big.yaml', ' '.repeat(MAX_MANIFEST_BYTES + 1))
  t.match(big.errors[0]?.cause, { limit: 'bytes', max: MAX_MANIFEST_BYTES }, 'a text over the size limit')

  // Nesting the parser makes up from a syntax error (found by the fuzz test): refused as well.
  for (const [what, text] of [
    ['keys on 2000 continuation lines', `a: b\n${'  c: d\n'.repeat(2000)}`],
    ['3000 keys on one line', `${'a: '.repeat(3000)}x\n`],
    ['a stray flow start after a key', `${'- "q"{\n'}${Array.from({ length: 300 }, (_, i) => `${' '.repeat(2 * i + 2)}- k:`).join('\n')}\n`],
  ]) {
    const docs = yamlDocuments(text!, { source: 'r.yaml' })
    t.ok(docs.length > 0 && docs.every((d) => d.limit instanceof LimitError), `${what}: refused`)
  }

  // Just at the limit is accepted; one level more is refused.
  const nest = (n: number): string => `${'['.repeat(n - 1)}1${']'.repeat(n - 1)}`
  t.equal(yamlDocuments(nest(MAX_DEPTH - 1))[0]?.limit, undefined, `${MAX_DEPTH - 1} levels pass`)
  t.ok(yamlDocuments(nest(MAX_DEPTH + 2))[0]?.limit, `${MAX_DEPTH + 2} levels are refused`)
  t.equal(jsonDepth(nest(MAX_DEPTH)).line, 0, `JSON: ${MAX_DEPTH} levels pass`)
  t.equal(jsonDepth(nest(MAX_DEPTH + 2)).line, 1, 'one more is refused, on its line')
})

t.test('real manifests pass the limits unchanged', async (t) => {
  for (const f of ['nginx-basic.yaml', 'nginx-nodeport.yaml']) {
    const text = readFileSync(join(FIXTURES, f), 'utf8')
    const segs = yamlSegments(text)
    t.ok(segs.every((s) => s.depth <= 12), `${f}: every document measured shallow (${segs.map((s) => s.depth).join(',')})`)
    t.same(readManifest(f, text).errors, [], `${f}: nothing refused`)
  }
  // A benchmark-sized List file (100 services with 10 endpoints each), as JSON and as YAML.
  const items: unknown[] = []
  for (let i = 0; i < 100; i++) {
    items.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'b' }, spec: { clusterIP: `10.96.1.${i + 1}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }], selector: { app: `s${i}` } } })
    items.push({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${i}-x`, namespace: 'b', labels: { 'kubernetes.io/service-name': `s${i}` } },
      addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }],
      endpoints: Array.from({ length: 10 }, (_, j) => ({ addresses: [`10.244.${i}.${j + 1}`], conditions: { ready: true }, nodeName: 'n2' })),
    })
  }
  const list = { apiVersion: 'v1', kind: 'List', items }
  for (const [f, text] of [['list.json', JSON.stringify(list)], ['list.yaml', stringify(list)], ['list-flow.yaml', stringify(list, { collectionStyle: 'flow' })]] as const) {
    const s = readManifest(f, text)
    t.same(s.errors, [], `${f}: nothing refused`)
    t.equal(s.objects.size, 200, `${f}: every object read`)
  }
})

t.test('ManifestSource: a file turned deep keeps its last good objects; refusals are logged and counted', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'web.yaml'), svc('web', '10.96.0.10'))
  await writeFile(join(dir, 'api.yaml'), svc('api', '10.96.0.11'))
  const sink = recorder()
  const log = quietLog()
  const src = new ManifestSource({ path: dir, sink, log, pollMs: 0 })
  t.teardown(() => src.close())
  await src.load()
  t.same(sink.events.sort(), ['add api', 'add web'])
  sink.events.length = 0

  await writeFile(join(dir, 'web.yaml'), `${BRACKETS}\n---\n${svc('other', '10.96.0.99')}`)
  const r = await src.flush([join(dir, 'web.yaml')])
  t.same(sink.events, ['add other'], 'the good document beside it applies; web is not deleted: the deep document could have been it')
  sink.events.length = 0
  t.equal(r?.errors.length, 1, 'one refusal')
  t.equal(src.stats.errorsTotal, 1, 'counted')
  const logged = log.lines.filter((l) => l.msg === 'manifest document refused')
  t.match(logged, [{ level: 'error', fields: { file: join(dir, 'web.yaml'), document: 0, error: /nests deeper than the limit/ } }], 'logged with file and document')

  // A file over the size limit is refused by its stamp, without reading it, and once.
  await writeFile(join(dir, 'api.yaml'), Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20))
  const big = await src.flush([join(dir, 'api.yaml')])
  t.match(big?.errors[0], { file: join(dir, 'api.yaml'), document: 0 }, 'the big file refused')
  t.match(big?.errors[0]?.cause, { limit: 'bytes', max: MAX_MANIFEST_BYTES })
  t.same(sink.events, [], 'its objects stay')
  const again = await src.flush([join(dir, 'api.yaml')])
  t.equal(again?.filesRead, 0, 'unchanged: not refused again')
  t.equal(src.stats.errorsTotal, 2)

  await writeFile(join(dir, 'web.yaml'), svc('web', '10.96.0.12'))
  await writeFile(join(dir, 'api.yaml'), svc('api', '10.96.0.11'))
  await src.flush([join(dir, 'web.yaml'), join(dir, 'api.yaml')])
  t.same(sink.events, ['delete other', 'update web'], 'fixed: the file\'s new text applies')
  t.same(src.errors, [], 'nothing refused any more')
})

t.test('--config: a deep or huge file is a clear error and exit 2, not an abort', async (t) => {
  const dir = await tempDir(t)
  const main = join(DIST, 'proxy/main.js')
  const cases: [string, string, RegExp][] = [
    ['brackets.yaml', BRACKETS, /brackets\.yaml:1 \(document 0\): the document nests deeper than the limit of \d+ levels/],
    ['json.yaml', JSON_100K, /json\.yaml:1 \(document 0\): the document nests deeper than the limit/],
    ['seq.yaml', YAML_20K_SEQ, /seq\.yaml:1 \(document 0\): the document nests deeper than the limit/],
    ['big.yaml', `# ${'x'.repeat(2 * 1024 * 1024)}\n`, /big\.yaml:1: the file is larger than the limit of 1048576 bytes/],
  ]
  for (const [name, text, message] of cases) {
    const file = join(dir, name)
    await writeFile(file, text)
    // Twice in one process: the second parse is the one that aborted.
    t.throws(() => parseConfig(text, file), LimitError, `${name}: parseConfig throws a LimitError`)
    const run = spawnSync(process.execPath, [main, `--config=${file}`, '--manifests=/nonexistent'], { encoding: 'utf8', timeout: 50_000 })
    t.equal(run.status, 2, `${name}: tsproxy exits 2 (signal ${run.signal})`)
    t.match(run.stderr, message, `${name}: naming the file and the limit`)
    t.notMatch(run.stderr, /FATAL/, `${name}: no V8 abort`)
  }
})

t.test('kubeconfig: a deep or huge file is a KubeConfigError caused by a LimitError', async (t) => {
  const dir = await tempDir(t)
  for (const [name, text, limit] of [['deep', `apiVersion: v1\nclusters: ${BRACKETS}\n`, 'depth'], ['big', `# ${'x'.repeat(2 * 1024 * 1024)}\n`, 'bytes']] as const) {
    const file = join(dir, name)
    await writeFile(file, text)
    for (let i = 0; i < 2; i++) {
      const e = (() => {
        try {
          loadKubeconfig(file)
        } catch (e) {
          return e
        }
        return undefined
      })() as KubeConfigError
      t.ok(e instanceof KubeConfigError, `${name}: a KubeConfigError (call ${i + 1})`)
      t.match(e.message, new RegExp(`${name}: kubeconfig .*(nests deeper|larger) than the limit`), 'naming the file and the limit')
      t.match(e.cause, { limit }, 'caused by a LimitError')
    }
  }
})

/** A plain-HTTP server whose watch answers are written by `write`. */
async function watchServer(t: Test, write: (res: http.ServerResponse) => void): Promise<KubeClient> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    write(res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  t.teardown(() => server.closeAllConnections())
  return new KubeClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, { qps: 0 })
}

const event = (name: string): string => `{"type":"ADDED","object":{"kind":"Service","metadata":{"name":"${name}","namespace":"d","resourceVersion":"2"}}}\n`

t.test('watch: a line longer than the limit ends the watch with an error, read once', async (t) => {
  const client = await watchServer(t, (res) => {
    res.write(event('before'))
    const chunk = Buffer.alloc(64 * 1024, 0x78)
    let sent = 0
    const more = (): void => {
      while (sent <= MAX_WATCH_LINE_BYTES) {
        sent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', more)
      }
      res.end(`\n${event('after')}`)
    }
    more()
  })
  const seen: string[] = []
  const err = await (async () => {
    try {
      for await (const ev of client.watch('/api/v1/services')) seen.push(String((ev as WatchEvent).object.metadata && (ev.object.metadata as { name: string }).name))
    } catch (e) {
      return e
    }
    return undefined
  })()
  t.same(seen, ['before'], 'the events before it arrive')
  t.ok(err instanceof KubeApiError, 'a KubeApiError')
  t.match((err as Error).message, new RegExp(`longer than the limit of ${MAX_WATCH_LINE_BYTES} bytes`), 'naming the limit')
})

t.test('watch: a character split between two chunks arrives whole; a deep event object is just parsed', async (t) => {
  const line = Buffer.from(`{"type":"ADDED","object":{"kind":"Service","metadata":{"name":"caf\u00e9","namespace":"d","resourceVersion":"3","labels":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}}}\n`)
  const at = line.indexOf(Buffer.from('\u00e9')) + 1 // inside the two bytes of é
  const client = await watchServer(t, (res) => {
    res.write(line.subarray(0, at))
    setTimeout(() => res.end(line.subarray(at)), 50)
  })
  const names: string[] = []
  for await (const ev of client.watch('/api/v1/services')) names.push((ev.object.metadata as { name: string }).name)
  t.same(names, ['caf\u00e9'], 'the name is intact')
})

// ---- fuzz ----

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const SNIPPETS = ['[', ']', '{', '}', '"', "'", '#', ' #', '- ', ': ', ':', '\n', '  ', '    ', '|', '|-\n', '>', '---\n', '...\n', '&a ', '*a', '!!str ', '\t', '? ', ',', '\\', '\r\n', '%YAML 1.1\n', 'kind: Service\n', '  - ', '\u00e9']

t.test('fuzz: readManifest on random and mutated manifests refuses only with typed errors; what it accepts is valid', async (t) => {
  const seed = Number(process.env.TSPROXY_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
  t.comment(`fuzz seed ${seed} (TSPROXY_FUZZ_SEED=${seed} replays)`)
  const rnd = prng(seed)
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!
  const int = (n: number): number => Math.floor(rnd() * n)

  const corpus = [
    readFileSync(join(FIXTURES, 'nginx-basic.yaml'), 'utf8'),
    readFileSync(join(FIXTURES, 'nginx-nodeport.yaml'), 'utf8'),
    svc('web', '10.96.0.10'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [parseLike('a', '10.96.0.1'), parseLike('b', '10.96.0.2')] }),
    stringify(parseLike('c', '10.96.0.3'), { collectionStyle: 'flow' }),
  ]
  function parseLike(name: string, ip: string): Record<string, unknown> {
    return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'f', labels: { app: name } }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }
  }
  /** A random nested value `depth` levels deep, with text that looks like structure. */
  function nested(depth: number): unknown {
    let v: unknown = pick(['x', "it's", '[{', ']}', '"q"', '# no', 'a: b', '- c', 1, true, null])
    for (let i = 0; i < depth - 1; i++) v = rnd() < 0.5 ? [v, pick(['y', '[', '}'])] : { [pick(['k', 'a b', '[x]', "'q'", 'z: y'])]: v }
    return v
  }
  function mutate(text: string): string {
    let s = text
    for (let n = 1 + int(6); n > 0; n--) {
      const at = int(s.length + 1)
      switch (int(6)) {
        case 0:
          s = s.slice(0, at) + pick(SNIPPETS) + s.slice(at)
          break
        case 1:
          s = s.slice(0, at) + s.slice(at + 1 + int(20))
          break
        case 2: {
          const len = int(200)
          s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at)
          break
        }
        case 3: {
          const c = pick(['[', '{', '- ', '{a: ', ' '])
          s = s.slice(0, at) + c.repeat(1 + int(400)) + s.slice(at)
          break
        }
        case 4: {
          const lines = s.split('\n')
          const i = int(lines.length)
          lines[i] = ' '.repeat(int(8)) + lines[i]
          s = lines.join('\n')
          break
        }
        default:
          s = s.slice(0, at) + pick(SNIPPETS) + pick(SNIPPETS) + s.slice(at)
      }
    }
    return s
  }

  /** Writes a failing input to a file, for a closer look; returns its name. */
  const keep = (n: number, text: string): string => {
    const f = join(tmpdir(), `tsproxy-fuzz-${seed}-${n}.txt`)
    writeFileSync(f, text)
    return f
  }
  let refusedDeep = 0
  let accepted = 0
  const N = 300
  for (let n = 0; n < N; n++) {
    const kind = int(4)
    const depth = 1 + int(2 * MAX_DEPTH)
    const text =
      kind === 0
        ? mutate(pick(corpus))
        : kind === 1
          ? stringify({ ...parseLike('n', '10.96.0.9'), extra: nested(depth) }, { collectionStyle: pick(['any', 'block', 'flow'] as const), flowCollectionPadding: rnd() < 0.5 })
          : kind === 2
            ? JSON.stringify({ ...parseLike('n', '10.96.0.9'), extra: nested(depth) })
            : mutate(stringify(nested(depth)))
    const file = kind === 2 && rnd() < 0.5 ? `/fuzz/${n}.json` : `/fuzz/${n}.yaml`
    let state
    try {
      state = readManifest(file, text)
    } catch (e) {
      t.fail(`input ${n} (seed ${seed}): readManifest threw ${String(e)}`)
      continue
    }
    for (const e of state.errors) {
      if (!(e instanceof ManifestError)) t.fail(`input ${n} (seed ${seed}): refused with ${String(e)}`)
      if (e.cause instanceof LimitError && e.cause.file !== file) t.fail(`input ${n}: the LimitError names ${e.cause.file}`)
    }
    // Each accepted object is what the model's parser makes of one of the documents (or List items) as parsed.
    const raws: unknown[] = []
    for (const d of file.endsWith('.json') ? [{ value: JSON.parse(text) as unknown }] : yamlDocuments(text)) {
      const v = d.value as { kind?: unknown; items?: unknown } | null
      raws.push(v)
      if (v && typeof v === 'object' && Array.isArray(v.items)) raws.push(...(v.items as unknown[]))
    }
    for (const [key, entry] of state.objects) {
      accepted++
      const valid = raws.some((raw) => {
        try {
          return samePlain(entry.kind === 'Service' ? parseService(raw) : parseEndpointSlice(raw), entry.value)
        } catch {
          return false
        }
      })
      if (!valid || !key.startsWith(`${entry.kind}/`)) t.fail(`input ${n} (seed ${seed}): accepted ${key} is not a valid object of the text`)
    }
    if (file.endsWith('.yaml')) {
      // Nothing deeper than the limit is composed; and for a document without
      // errors the quick scan alone is a bound (the token-tree check catches the
      // nesting a parser makes up while recovering from a syntax error).
      const bound = Math.max(0, ...yamlSegments(text).map((s) => s.depth))
      for (const d of yamlDocuments(text, { source: file })) {
        if (d.limit) {
          refusedDeep++
          continue
        }
        const dv = valueDepth(d.value)
        if (dv > MAX_DEPTH) t.fail(`input ${n} (seed ${seed}): document ${d.index} is ${dv} deep, past the limit: ${keep(n, text)}`)
        if (!d.error && dv > bound) t.fail(`input ${n} (seed ${seed}): document ${d.index} is ${dv} deep, the scan measured ${bound}: ${keep(n, text)}`)
      }
    } else if (kind === 2 && depth > MAX_DEPTH) {
      if (!state.errors.some((e) => e.cause instanceof LimitError)) t.fail(`input ${n} (seed ${seed}): a ${depth}-deep JSON document was not refused`)
      else refusedDeep++
    }
  }
  t.ok(refusedDeep > 0, `some inputs were refused as too deep (${refusedDeep})`)
  t.ok(accepted > 0, `some objects were accepted (${accepted})`)
  t.pass(`${N} inputs, none threw, none composed past the limit`)
})

t.test('a pair in a flow sequence is a map of its own: counted as a level where a syntax error hides it from the scan', async (t) => {
  // Found by the fuzz test (seed 811766011, input 64): a broken block document whose
  // deepest path runs through '[ "[x]": ...', which composes as [{"[x]": ...}].
  const text = readFileSync(join(fileURLToPath(new URL('../fixtures/yaml/', import.meta.url)), 'flow-pair-past-depth.yaml'), 'utf8')
  const depth = (v: unknown): number =>
    Array.isArray(v) ? 1 + Math.max(0, ...v.map(depth)) : v && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depth)) : 0
  const [loose] = yamlDocuments(text, { maxDepth: 1000 })
  t.equal(depth(loose!.value), MAX_DEPTH + 1, 'composed without the limit, it is one level past it')
  t.ok(Math.max(...yamlSegments(text).map((s) => s.depth)) <= MAX_DEPTH, 'the quick scan alone does not see it')
  const [doc] = yamlDocuments(text, { source: 'f.yaml' })
  t.ok(doc!.limit instanceof LimitError, 'refused as too deep')
  t.equal(doc!.value, null)
  // The smallest form: without the syntax error the scan counts the pair too.
  const [small] = yamlDocuments('[a: [b: c]]')
  t.same(small!.value, [{ a: [{ b: 'c' }] }])
  const [over] = yamlDocuments('[a: [b: c]]', { maxDepth: 2 })
  t.ok(over!.limit, '4 levels refused at a limit of 2')
})
