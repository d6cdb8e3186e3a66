// lib/proxy/sources/kube/client.ts: connection settings from a kubeconfig or
// the pod's service account (each bad setting a KubeConfigError naming the
// field), and list/watch against test/support/fake-apiserver.ts over HTTPS.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { parseDocument } from 'yaml'
import {
  KubeApiError,
  KubeClient,
  KubeConfigError,
  SERVICE_ACCOUNT_DIR,
  inClusterConnection,
  kubeconfigConnection,
  loadKubeconfig,
  resolveConnection,
  type WatchEvent,
} from '../../dist/proxy/sources/kube/client.js'
import { FakeApiServer, certificates } from '../support/fake-apiserver.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsproxy-kube-client-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function fake(t: Test, options?: Parameters<typeof FakeApiServer.start>[0]): Promise<FakeApiServer> {
  const s = await FakeApiServer.start(options)
  t.teardown(() => s.close())
  return s
}

function clientFor(t: Test, s: FakeApiServer, token = s.token): KubeClient {
  const c = new KubeClient({ server: s.url, ca: Buffer.from(s.ca), token })
  t.teardown(() => c.close())
  return c
}

const svc = (name: string, ip: string, labels: Record<string, string> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', labels },
  spec: { clusterIP: ip, ports: [{ port: 80 }] },
})

/** A kubeconfig as YAML-ready data, with parts replaced by `patch`. */
function config(patch: { cluster?: Record<string, unknown>; user?: Record<string, unknown> | null; context?: Record<string, unknown>; top?: Record<string, unknown> } = {}): Record<string, unknown> {
  const c = certificates()
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'ctx',
    clusters: [{ name: 'prod', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority': c.caFile, ...patch.cluster } }],
    contexts: [{ name: 'ctx', context: { cluster: 'prod', user: 'proxy', ...patch.context } }],
    users: patch.user === null ? [] : [{ name: 'proxy', user: { token: 'abc', ...patch.user } }],
    ...patch.top,
  }
}

function refused(t: Test, fn: () => unknown, field: string, words: RegExp, name: string): void {
  try {
    fn()
    t.fail(`${name}: no error`)
  } catch (e) {
    t.type(e, KubeConfigError, `${name}: a KubeConfigError`)
    t.equal((e as KubeConfigError).field, field, `${name}: names ${field}`)
    t.match((e as Error).message, words, `${name}: says why`)
  }
}

t.test('kubeconfig: the current context, its cluster and user', async (t) => {
  const dir = await tempDir(t)
  const c = certificates()
  await writeFile(join(dir, 'token'), ' from-file\n')
  await mkdir(join(dir, 'pki'))
  await writeFile(join(dir, 'pki', 'ca.crt'), c.ca)
  const file = join(dir, 'kubeconfig')
  await writeFile(
    file,
    `apiVersion: v1
kind: Config
current-context: b
clusters:
- name: one
  cluster:
    server: https://one.example:6443
    certificate-authority: pki/ca.crt
- name: two
  cluster:
    server: https://two.example:443/prefix/
    certificate-authority-data: ${Buffer.from(c.ca).toString('base64')}
    tls-server-name: api.two
contexts:
- name: a
  context: { cluster: one, user: u1 }
- name: b
  context: { cluster: two, user: u2, namespace: kube-system }
users:
- name: u1
  user: { tokenFile: token }
- name: u2
  user:
    client-certificate-data: ${Buffer.from(c.clientCert).toString('base64')}
    client-key-data: ${Buffer.from(c.clientKey).toString('base64')}
`,
  )
  const b = loadKubeconfig(file)
  t.equal(b.server, 'https://two.example/prefix', 'server of the current context (default port and trailing slash dropped)')
  t.equal(b.ca?.toString(), c.ca, 'certificate-authority-data decoded')
  t.equal(b.cert?.toString(), c.clientCert)
  t.equal(b.key?.toString(), c.clientKey)
  t.equal(b.tlsServerName, 'api.two')
  t.equal(b.namespace, 'kube-system')
  t.equal(b.token, undefined)

  const a = loadKubeconfig(file, { context: 'a' })
  t.equal(a.server, 'https://one.example:6443')
  t.equal(a.ca?.toString(), c.ca, 'a relative certificate-authority resolves against the kubeconfig directory')
  t.equal(a.tokenFile, join(dir, 'token'), 'a relative tokenFile too')
  t.equal(a.token, 'from-file', 'the token file is read, trimmed')

  const m = loadKubeconfig(file, { master: 'https://10.1.2.3:8443' })
  t.equal(m.server, 'https://10.1.2.3:8443', '--master overrides the server')
  t.equal(m.cert?.toString(), c.clientCert, 'and the credentials stay')
})

t.test('kubeconfig: each bad setting names its field', async (t) => {
  const dir = await tempDir(t)
  const f = join(dir, 'kc')
  const check = (doc: unknown, field: string, words: RegExp, name: string): void => refused(t, () => kubeconfigConnection(doc, f), field, words, name)
  refused(t, () => loadKubeconfig(join(dir, 'nope')), 'kubeconfig', /does not exist/, 'missing file')
  await writeFile(join(dir, 'bad.yaml'), 'clusters: [\n')
  refused(t, () => loadKubeconfig(join(dir, 'bad.yaml')), 'kubeconfig', /not valid YAML/, 'YAML syntax error')
  check([], 'kubeconfig', /mapping/, 'not a mapping')
  check(config({ top: { 'current-context': '' } }), 'current-context', /not set/, 'no current context')
  check(config({ top: { 'current-context': 'other' } }), 'contexts', /no context named "other"/, 'unknown context')
  check(config({ context: { cluster: '' } }), 'contexts["ctx"].context.cluster', /required/, 'context without cluster')
  check(config({ context: { cluster: 'dev' } }), 'clusters', /no cluster named "dev"/, 'unknown cluster')
  check(config({ context: { user: 'nobody' } }), 'users', /no user named "nobody"/, 'unknown user')
  check(config({ cluster: { server: undefined } }), 'clusters["prod"].cluster.server', /required/, 'no server')
  check(config({ cluster: { server: 'ftp://x' } }), 'clusters["prod"].cluster.server', /http or https/, 'not http(s)')
  check(config({ cluster: { server: 'https://[::1' } }), 'clusters["prod"].cluster.server', /not a URL/, 'not a URL')
  check(config({ cluster: { 'certificate-authority': join(dir, 'missing-ca.crt') } }), 'clusters["prod"].cluster.certificate-authority', /missing file: .*missing-ca\.crt/, 'missing CA file')
  check(config({ cluster: { 'certificate-authority-data': 'not base64!' } }), 'clusters["prod"].cluster.certificate-authority-data', /not valid base64/, 'bad base64')
  check(config({ cluster: { 'certificate-authority-data': 'abc' } }), 'clusters["prod"].cluster.certificate-authority-data', /not valid base64/, 'unpadded base64')
  check(config({ cluster: { 'certificate-authority-data': Buffer.from('hello').toString('base64') } }), 'clusters["prod"].cluster.certificate-authority-data', /not a PEM certificate/, 'CA data not PEM')
  check(config({ cluster: { 'insecure-skip-tls-verify': 'yes please' } }), 'clusters["prod"].cluster.insecure-skip-tls-verify', /true or false/, 'insecure not a boolean')
  check(config({ cluster: { 'insecure-skip-tls-verify': true } }), 'clusters["prod"].cluster.insecure-skip-tls-verify', /cannot be true when a certificate authority/, 'insecure with a CA')
  check(config({ cluster: { 'proxy-url': 'http://proxy:3128' } }), 'clusters["prod"].cluster.proxy-url', /not supported/, 'proxy-url')
  check(config({ user: { token: undefined, exec: { command: 'aws' } } }), 'users["proxy"].user.exec', /not supported/, 'exec plugin')
  check(config({ user: { token: undefined, 'auth-provider': { name: 'gcp' } } }), 'users["proxy"].user.auth-provider', /not supported/, 'auth-provider')
  check(config({ user: { token: undefined, tokenFile: join(dir, 'no-token') } }), 'users["proxy"].user.tokenFile', /missing file/, 'missing token file')
  await writeFile(join(dir, 'empty-token'), '\n')
  check(config({ user: { token: undefined, tokenFile: join(dir, 'empty-token') } }), 'users["proxy"].user.tokenFile', /empty file/, 'empty token file')
  const c = certificates()
  check(config({ user: { 'client-certificate': c.clientCertFile } }), 'users["proxy"].user.client-key', /required with a client certificate/, 'certificate without key')
  check(config({ user: { 'client-key': c.clientKeyFile } }), 'users["proxy"].user.client-certificate', /required with a client key/, 'key without certificate')
  check(config({ user: { 'client-certificate': c.clientCertFile, 'client-key-data': '@@@@' } }), 'users["proxy"].user.client-key-data', /not valid base64/, 'bad key data')
  check(config({ user: { 'client-certificate': c.clientCertFile, 'client-key': c.caFile } }), 'users["proxy"].user.client-key', /not a PEM private key/, 'key file not a key')
  check(config({ user: { 'client-certificate': join(dir, 'gone.crt'), 'client-key': c.clientKeyFile } }), 'users["proxy"].user.client-certificate', /missing file/, 'missing certificate file')
  check(config({ top: { clusters: { prod: {} } } }), 'clusters', /must be a list/, 'clusters not a list')
  check(config({ top: { contexts: [{ context: {} }] } }), 'contexts[0].name', /required/, 'context without name')
  // And one without a user at all: anonymous, not an error.
  const anon = kubeconfigConnection(config({ context: { user: undefined }, user: null }), f)
  t.equal(anon.token, undefined, 'no user: no credentials')
})

t.test('in-cluster: the service account', async (t) => {
  const dir = await tempDir(t)
  const c = certificates()
  await writeFile(join(dir, 'token'), 'sa-token\n')
  await writeFile(join(dir, 'ca.crt'), c.ca)
  await writeFile(join(dir, 'namespace'), 'kube-system')
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }
  const conn = inClusterConnection({ env, dir })
  t.equal(conn.server, 'https://10.96.0.1:443')
  t.equal(conn.token, 'sa-token')
  t.equal(conn.tokenFile, join(dir, 'token'), 'the token file is kept, to be read again as it rotates')
  t.equal(conn.ca?.toString(), c.ca)
  t.equal(conn.namespace, 'kube-system')
  t.equal(inClusterConnection({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, dir }).server, 'https://[fd00::1]:6443', 'an IPv6 host in brackets')

  refused(t, () => inClusterConnection({ env: {}, dir }), 'KUBERNETES_SERVICE_HOST', /not set/, 'no host')
  refused(t, () => inClusterConnection({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, dir }), 'KUBERNETES_SERVICE_PORT', /not set/, 'no port')
  refused(t, () => inClusterConnection({ env: { ...env, KUBERNETES_SERVICE_PORT: 'https' }, dir }), 'KUBERNETES_SERVICE_PORT', /not a port number/, 'bad port')
  const empty = await tempDir(t)
  refused(t, () => inClusterConnection({ env, dir: empty }), 'token', /missing file/, 'no token')
  await writeFile(join(empty, 'token'), '  \n')
  refused(t, () => inClusterConnection({ env, dir: empty }), 'token', /empty file/, 'empty token')
  await writeFile(join(empty, 'token'), 'x')
  refused(t, () => inClusterConnection({ env, dir: empty }), 'ca.crt', /missing file/, 'no ca.crt')
  await writeFile(join(empty, 'ca.crt'), 'garbage')
  refused(t, () => inClusterConnection({ env, dir: empty }), 'ca.crt', /not a PEM certificate/, 'ca.crt not PEM')
})

t.test('resolveConnection: kubeconfig, else --master alone, else in-cluster', async (t) => {
  const dir = await tempDir(t)
  const s = await fake(t)
  const file = s.kubeconfig(join(dir, 'kc'))
  t.equal(resolveConnection({ kubeconfig: file }).server, s.url)
  t.equal(resolveConnection({ kubeconfig: file, master: 'https://1.2.3.4:6443' }).server, 'https://1.2.3.4:6443')
  t.strictSame(resolveConnection({ master: 'http://127.0.0.1:8080' }), { server: 'http://127.0.0.1:8080' })
  refused(t, () => resolveConnection({ inCluster: { env: {}, dir } }), 'KUBERNETES_SERVICE_HOST', /not set/, 'neither: in-cluster')
})

t.test('kubeadm\'s kube-proxy kubeconfig.conf (token file + CA file of the service account) reaches the API server', async (t) => {
  // The deploy/ DaemonSet mounts this file (kubeadm's ConfigMap kube-proxy) as its
  // clientConnection.kubeconfig. Here the service-account directory is a scratch one
  // and the server the fake's; everything else is kubeadm's text.
  const fixture = fileURLToPath(new URL('../fixtures/kubeadm/kube-proxy-configmap.yaml', import.meta.url))
  const text = (parseDocument(await readFile(fixture, 'utf8')).toJSON() as { data: Record<string, string> }).data['kubeconfig.conf']!
  t.ok(text.includes(`tokenFile: ${SERVICE_ACCOUNT_DIR}/token`) && text.includes(`certificate-authority: ${SERVICE_ACCOUNT_DIR}/ca.crt`), 'kubeadm\'s form: absolute paths into the service-account volume')
  const s = await fake(t)
  s.create('Service', svc('kubernetes', '10.96.0.1'))
  const dir = await tempDir(t)
  const sa = join(dir, 'serviceaccount')
  await mkdir(sa)
  await writeFile(join(sa, 'token'), `${s.token}\n`)
  await writeFile(join(sa, 'ca.crt'), s.ca)
  const file = join(dir, 'kubeconfig.conf')
  await writeFile(file, text.replaceAll(SERVICE_ACCOUNT_DIR, sa).replace(/server: \S+/, `server: ${s.url}`))

  const conn = resolveConnection({ kubeconfig: file })
  t.strictSame(
    { server: conn.server, tokenFile: conn.tokenFile, token: conn.token, ca: conn.ca?.toString(), namespace: conn.namespace },
    { server: s.url, tokenFile: join(sa, 'token'), token: s.token, ca: s.ca, namespace: 'default' },
    'server, token file (read, trimmed), CA file, the context\'s namespace',
  )
  const c = new KubeClient(conn, { tokenRefreshMs: 3_600_000 })
  t.teardown(() => c.close())
  const r = await c.list('/api/v1/services')
  t.strictSame(r.items.map((o) => (o.metadata as { name: string }).name), ['kubernetes'], 'listed over TLS, the server checked against the CA file')
  t.equal(s.requests.at(-1)!.authorization, `Bearer ${s.token}`, 'with the token from the file')
  // The kubelet rotates the projected token in place: the client follows the file.
  s.token = 'rotated'
  await writeFile(join(sa, 'token'), 'rotated\n')
  t.equal((await c.list('/api/v1/services')).items.length, 1, 'still listed after the token rotated')
  t.equal(s.requests.at(-1)!.authorization, 'Bearer rotated', 'with the new token')

  await writeFile(join(sa, 'ca.crt'), await readFile(certificates().otherCaFile))
  const other = new KubeClient(resolveConnection({ kubeconfig: file }))
  t.teardown(() => other.close())
  t.match(await other.list('/api/v1/services').catch((e: unknown) => e), { name: 'KubeApiError', status: 0, message: /certificate/i }, 'the CA file is what is trusted: another CA is refused')
})

t.test('list: follows continue pages; items, resourceVersion; JSON asked for', async (t) => {
  const s = await fake(t)
  for (let i = 0; i < 5; i++) s.create('Service', svc(`s${i}`, `10.96.0.${i + 1}`))
  const c = clientFor(t, s)
  const r = await c.list('/api/v1/services', { limit: 2 })
  t.equal(r.pages, 3, 'three pages of two')
  t.strictSame(r.items.map((o) => (o.metadata as { name: string }).name), ['s0', 's1', 's2', 's3', 's4'])
  t.equal(r.resourceVersion, s.resourceVersion)
  const lists = s.requests.filter((q) => !q.watch)
  t.strictSame(lists.map((q) => [q.query.limit, q.query.continue === undefined]), [['2', true], ['2', false], ['2', false]], 'the first page without continue, the next two with')
  t.ok(lists.every((q) => q.accept === 'application/json' && q.authorization === `Bearer ${s.token}`), 'Accept: application/json and the bearer token on each')

  const whole = await c.list('/api/v1/namespaces/default/services')
  t.equal(whole.pages, 1)
  t.equal(whole.items.length, 5, 'no limit: one page')
})

t.test('list: a continue token that expired mid-list falls back to one whole list', async (t) => {
  const s = await fake(t)
  for (let i = 0; i < 5; i++) s.create('Service', svc(`s${i}`, `10.96.0.${i + 1}`))
  const c = clientFor(t, s)
  s.onRequest = (r) => {
    if (r.query.continue) {
      s.onRequest = undefined
      s.create('Service', svc('late', '10.96.0.99'))
      s.compact()
    }
  }
  const r = await c.list('/api/v1/services', { limit: 2 })
  t.equal(r.items.length, 6, 'the whole list, as of after the compaction')
  t.strictSame(
    s.requests.map((q) => [q.status, q.query.limit ?? '', q.query.continue === undefined]),
    [[200, '2', true], [410, '2', false], [200, '', true]],
  )
  // A continue token the caller gave, expired: that is the caller's to handle.
  const token = s.requests[1]!.query.continue!
  await t.rejects(c.list('/api/v1/services', { continue: token }), { name: 'KubeApiError', status: 410 })
})

t.test('errors: wrong token (401), untrusted server, nothing listening, unknown path', async (t) => {
  const s = await fake(t)
  const bad = clientFor(t, s, 'wrong')
  const e401 = await bad.list('/api/v1/services').catch((e: unknown) => e)
  t.type(e401, KubeApiError)
  t.match(e401, { status: 401, reason: 'Unauthorized', message: /GET \/api\/v1\/services: 401 Unauthorized/ })

  const other = new KubeClient({ server: s.url, ca: await readFile(certificates().otherCaFile), token: s.token })
  t.teardown(() => other.close())
  const tls = await other.list('/api/v1/services').catch((e: unknown) => e)
  t.match(tls, { name: 'KubeApiError', status: 0, message: /certificate/i }, 'a server certificate from another CA is refused')

  const down = new KubeClient({ server: 'https://127.0.0.1:1', ca: Buffer.from(s.ca), token: 'x' })
  t.teardown(() => down.close())
  t.match(await down.list('/api/v1/services').catch((e: unknown) => e), { name: 'KubeApiError', status: 0, message: /ECONNREFUSED/ })

  const good = clientFor(t, s)
  t.match(await good.list('/api/v1/pods').catch((e: unknown) => e), { status: 404, reason: 'NotFound' })
  t.match(await good.list('/api/v1/services', { labelSelector: 'a in (b)' }).catch((e: unknown) => e), { status: 400, reason: 'BadRequest' })
})

t.test('credentials: client certificate; a rotated token file is read again after a 401', async (t) => {
  const dir = await tempDir(t)
  const s = await fake(t)
  s.create('Service', svc('a', '10.96.0.1'))
  const cert = new KubeClient(loadKubeconfig(s.kubeconfig(join(dir, 'cert.kc'), { auth: 'cert', caData: true })))
  t.teardown(() => cert.close())
  const r = await cert.list('/api/v1/services')
  t.equal(r.items.length, 1, 'a client certificate signed by the CA is accepted')
  t.equal(s.requests.at(-1)!.authorization, undefined, 'no bearer token sent')

  const kc = s.kubeconfig(join(dir, 'file.kc'), { auth: 'tokenFile' })
  const conn = loadKubeconfig(kc)
  const c = new KubeClient(conn, { tokenRefreshMs: 3_600_000 })
  t.teardown(() => c.close())
  t.equal((await c.list('/api/v1/services')).items.length, 1)
  // The kubelet rotates the token: the server wants the new one, the file holds it.
  s.token = 'rotated-token'
  await writeFile(conn.tokenFile!, 'rotated-token\n')
  const before = s.requests.length
  t.equal((await c.list('/api/v1/services')).items.length, 1, 'works with the new token')
  t.strictSame(s.requests.slice(before).map((q) => [q.status, q.authorization]), [[401, 'Bearer fake-token'], [200, 'Bearer rotated-token']], 'refused once, then sent the token read again')
})

async function collect(it: AsyncIterable<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = []
  for await (const ev of it) {
    out.push(ev)
    if (out.length === n) break
  }
  return out
}

const summary = (evs: WatchEvent[]): string[] => evs.map((e) => `${e.type} ${(e.object.metadata as { name?: string; resourceVersion?: string })?.name ?? (e.object.metadata as { resourceVersion: string }).resourceVersion}`)

t.test('watch: events from a resourceVersion, bookmarks, a clean end after timeoutSeconds', async (t) => {
  const s = await fake(t)
  const c = clientFor(t, s)
  s.create('Service', svc('a', '10.96.0.1'))
  const from = s.resourceVersion
  s.create('Service', svc('b', '10.96.0.2'))
  s.update('Service', svc('a', '10.96.0.1', { x: 'y' }))
  s.create('EndpointSlice', { metadata: { name: 'other-kind' } })
  const it = c.watch('/api/v1/services', { resourceVersion: from, allowWatchBookmarks: true })
  const firstTwo = collect(it, 4)
  await until(() => s.watchers === 1)
  s.delete('Service', { name: 'b' })
  s.bookmark()
  const evs = await firstTwo
  t.strictSame(summary(evs), ['ADDED b', 'MODIFIED a', 'DELETED b', `BOOKMARK ${s.resourceVersion}`], 'the history after `from`, then live events, then the bookmark')
  t.equal(s.watchRequests[0]!.query.allowWatchBookmarks, 'true')
  await until(() => s.watchers === 0)
  t.pass('breaking out of the loop closes the stream')

  // The server ends the stream after timeoutSeconds: the iteration ends, no error.
  const ended = await collect(c.watch('/api/v1/services', { resourceVersion: s.resourceVersion, timeoutSeconds: 1 }), 100)
  t.strictSame(ended, [], 'nothing happened, the stream ended cleanly')
})

t.test('watch: 410 as an ERROR event, as HTTP 410; a broken line; abort', async (t) => {
  const s = await fake(t, { expiredAs: 'event' })
  const c = clientFor(t, s)
  s.create('Service', svc('a', '10.96.0.1'))
  const old = s.resourceVersion
  s.create('Service', svc('b', '10.96.0.2'))
  s.compact()
  const evs = await collect(c.watch('/api/v1/services', { resourceVersion: old }), 10)
  t.equal(evs.length, 1)
  t.match(evs[0], { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } }, 'an ERROR event with a 410 Status is yielded')
  s.expiredAs = 'http'
  const e = await collect(c.watch('/api/v1/services', { resourceVersion: old }), 10).catch((x: unknown) => x)
  t.type(e, KubeApiError)
  t.equal((e as KubeApiError).gone, true, 'an HTTP 410 throws a KubeApiError that is `gone`')

  const it = c.watch('/api/v1/services', { resourceVersion: s.resourceVersion })
  const got = collect(it, 10)
  await until(() => s.watchers === 1)
  s.garbage()
  t.match(await got.catch((x: unknown) => x), { name: 'KubeApiError', message: /not JSON/ }, 'a line that is not JSON breaks the watch with a KubeApiError')

  const ac = new AbortController()
  const aborted = collect(c.watch('/api/v1/services', { resourceVersion: s.resourceVersion, signal: ac.signal }), 10)
  await until(() => s.watchers === 1)
  ac.abort()
  t.match(await aborted.catch((x: unknown) => x), { name: 'AbortError' }, 'aborting ends the watch with an AbortError')
  await until(() => s.watchers === 0)
  t.pass('and the server saw the stream close')
})

t.test('watch: a slow stream, each event in pieces, is put back together', async (t) => {
  const s = await fake(t)
  const c = clientFor(t, s)
  s.slow(15)
  const it = c.watch('/api/v1/services', { resourceVersion: s.resourceVersion })
  const got = collect(it, 3)
  await until(() => s.watchers === 1)
  s.create('Service', svc('a', '10.96.0.1'))
  s.create('Service', svc('b', '10.96.0.2'))
  s.delete('Service', { name: 'a' })
  t.strictSame(summary(await got), ['ADDED a', 'ADDED b', 'DELETED a'])
})

/** Waits for `cond` (polling); fails after `ms`. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met in ${ms} ms: ${cond.toString()}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
