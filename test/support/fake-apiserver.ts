// A fake Kubernetes API server for the kube source's tests: HTTPS with a CA and
// certificates made by the openssl CLI in a temporary directory, speaking the
// list/watch protocol as far as an informer can tell:
//
//  - a bearer token (or a client certificate signed by the CA) is required: 401 otherwise;
//  - lists of Services, EndpointSlices and Nodes (cluster-wide or per namespace)
//    with limit/continue paging over a consistent snapshot and a resourceVersion;
//    list items carry no kind/apiVersion, as a real server's;
//  - watches streaming chunked newline-delimited JSON events from a given
//    resourceVersion, with bookmarks when asked, ending cleanly after timeoutSeconds;
//  - labelSelector (key, !key, key=value, key!=value) and fieldSelector
//    (metadata.name, metadata.namespace) filtering, a watch turning an object
//    that stops (starts) matching into DELETED (ADDED), as the server's watch cache does;
//  - compact(): history dropped; open watches end with an ERROR event carrying a
//    410 Status; a later watch from an older resourceVersion gets an HTTP 410
//    (or, with expiredAs 'event', an ERROR event); old continue tokens get 410;
//  - restart(): every stream and connection closed, back on the same port;
//  - slow(): events trickle, each written in pieces with pauses;
//  - suspendWatches(): open watches fall behind (their events held back);
//  - garbage(): a line that is not JSON on every open watch.
//
// Objects are stored as given: a malformed one is served as it is.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'

export type Kind = 'Service' | 'EndpointSlice' | 'Node'
type Obj = Record<string, any>

interface Resource {
  kind: Kind
  apiVersion: string
  group: string // '' for core
  plural: string
  namespaced: boolean
}

const RESOURCES: Resource[] = [
  { kind: 'Service', apiVersion: 'v1', group: '', plural: 'services', namespaced: true },
  { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', group: 'discovery.k8s.io', plural: 'endpointslices', namespaced: true },
  { kind: 'Node', apiVersion: 'v1', group: '', plural: 'nodes', namespaced: false },
]

export interface Certificates {
  dir: string
  caFile: string
  ca: string
  serverCert: string
  serverKey: string
  /** A client certificate (CN system:kube-proxy) signed by the CA, and its key. */
  clientCertFile: string
  clientKeyFile: string
  clientCert: string
  clientKey: string
  /** A CA that signed nothing here: trusting it must fail the TLS handshake. */
  otherCaFile: string
}

let certs: Certificates | undefined

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made once per process. */
export function certificates(): Certificates {
  if (certs) return certs
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-fake-apiserver-'))
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  ssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=fake-apiserver-ca')
  ssl('req', '-x509', ...key, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=some-other-ca')
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  ssl('req', ...key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver')
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext')
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
  ssl('req', ...key, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=system:kube-proxy')
  ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2', '-extfile', 'client.ext')
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8')
  certs = {
    dir,
    caFile: join(dir, 'ca.crt'),
    ca: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    otherCaFile: join(dir, 'other-ca.crt'),
  }
  return certs
}

export interface FakeApiServerOptions {
  /** The bearer token to require (default 'fake-token'). */
  token?: string
  /** How a watch from a compacted resourceVersion is refused: HTTP 410 (default) or a 200 stream with an ERROR event. */
  expiredAs?: 'http' | 'event'
  /** Send a bookmark to watches that allow them every this many ms (0: only on bookmark()). */
  bookmarkMs?: number
}

export interface RequestRecord {
  path: string
  query: Record<string, string>
  watch: boolean
  status: number
  /** The request's Accept and Authorization headers. */
  accept: string | undefined
  authorization: string | undefined
}

interface HistoryEvent {
  rv: number
  kind: Kind
  type: 'ADDED' | 'MODIFIED' | 'DELETED'
  object: Obj
  previous: Obj | undefined
}

interface Watcher {
  res: ServerResponse
  resource: Resource
  namespace: string | undefined
  match: (o: Obj) => boolean
  bookmarks: boolean
  held: Obj[] | undefined
  chain: Promise<void>
  ended: boolean
  timer?: NodeJS.Timeout
}

type Selector = (o: Obj) => boolean

export class FakeApiServer {
  token: string
  expiredAs: 'http' | 'event'
  readonly requests: RequestRecord[] = []
  /** Called with each request before it is answered (tests: change things between pages). */
  onRequest: ((r: RequestRecord) => void) | undefined
  readonly certificates: Certificates
  #server: Server | undefined
  #port = 0
  #rv = 1
  #compactedRv = 0
  readonly #store = new Map<Kind, Map<string, Obj>>(RESOURCES.map((r) => [r.kind, new Map()]))
  #history: HistoryEvent[] = []
  readonly #watchers = new Set<Watcher>()
  readonly #sockets = new Set<Socket>()
  readonly #snapshots = new Map<string, { rv: number; items: Obj[] }>()
  #snapshotId = 0
  #slowMs = 0
  #suspended = false
  #bookmarkTimer: NodeJS.Timeout | undefined
  #uid = 0

  private constructor(options: FakeApiServerOptions) {
    this.token = options.token ?? 'fake-token'
    this.expiredAs = options.expiredAs ?? 'http'
    this.certificates = certificates()
    if (options.bookmarkMs) {
      this.#bookmarkTimer = setInterval(() => this.bookmark(), options.bookmarkMs)
      this.#bookmarkTimer.unref()
    }
  }

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(options)
    await s.#listen(0)
    return s
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`
  }

  get port(): number {
    return this.#port
  }

  get ca(): string {
    return this.certificates.ca
  }

  get caFile(): string {
    return this.certificates.caFile
  }

  /** The current resourceVersion (the last change's). */
  get resourceVersion(): string {
    return String(this.#rv)
  }

  /** Open watch streams. */
  get watchers(): number {
    return this.#watchers.size
  }

  /** The watch requests seen, in order. */
  get watchRequests(): RequestRecord[] {
    return this.requests.filter((r) => r.watch)
  }

  /** Writes a kubeconfig pointing here; `auth` picks the credentials (default: the token inline). */
  kubeconfig(path: string, options: { auth?: 'token' | 'tokenFile' | 'cert'; token?: string; caData?: boolean } = {}): string {
    const auth = options.auth ?? 'token'
    const token = options.token ?? this.token
    const c = this.certificates
    let user: string
    if (auth === 'token') user = `    token: ${JSON.stringify(token)}`
    else if (auth === 'tokenFile') {
      const file = `${path}.token`
      writeFileSync(file, `${token}\n`)
      user = `    tokenFile: ${JSON.stringify(file)}`
    } else user = `    client-certificate: ${JSON.stringify(c.clientCertFile)}\n    client-key: ${JSON.stringify(c.clientKeyFile)}`
    const ca = options.caData ? `    certificate-authority-data: ${Buffer.from(c.ca).toString('base64')}` : `    certificate-authority: ${JSON.stringify(c.caFile)}`
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster:
    server: ${this.url}
${ca}
contexts:
- name: fake
  context:
    cluster: fake
    user: proxy
    namespace: kube-system
users:
- name: proxy
  user:
${user}
`,
    )
    return path
  }

  // --- the store ---

  #key(r: Resource, o: Obj): string {
    return r.namespaced ? `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}` : String(o.metadata?.name)
  }

  #resource(kind: Kind): Resource {
    return RESOURCES.find((r) => r.kind === kind)!
  }

  #record(kind: Kind, type: HistoryEvent['type'], object: Obj, previous: Obj | undefined): Obj {
    const ev: HistoryEvent = { rv: this.#rv, kind, type, object, previous }
    this.#history.push(ev)
    for (const w of this.#watchers) if (w.resource.kind === kind) this.#deliver(w, ev)
    return structuredClone(object)
  }

  /** A copy of an object given to create or update, its kind, apiVersion and namespace filled in; its key and its kind's store. */
  #incoming(kind: Kind, obj: Obj): { o: Obj; key: string; store: Map<string, Obj> } {
    const r = this.#resource(kind)
    const o: Obj = structuredClone(obj)
    o.kind ??= kind
    o.apiVersion ??= r.apiVersion
    o.metadata ??= {}
    if (r.namespaced) o.metadata.namespace ??= 'default'
    return { o, key: this.#key(r, o), store: this.#store.get(kind)! }
  }

  /** Stores a new object (as given: no validation); returns it as stored. */
  create(kind: Kind, obj: Obj): Obj {
    const { o, key, store } = this.#incoming(kind, obj)
    if (store.has(key)) throw new Error(`fake apiserver: ${kind} ${key} exists`)
    this.#rv++
    o.metadata.uid ??= `uid-${++this.#uid}`
    o.metadata.resourceVersion = String(this.#rv)
    o.metadata.creationTimestamp ??= '2024-01-01T00:00:00Z'
    store.set(key, o)
    return this.#record(kind, 'ADDED', o, undefined)
  }

  /** Replaces an object (found by namespace/name). */
  update(kind: Kind, obj: Obj): Obj {
    const { o, key, store } = this.#incoming(kind, obj)
    const previous = store.get(key)
    if (!previous) throw new Error(`fake apiserver: ${kind} ${key} does not exist`)
    this.#rv++
    o.metadata.uid = previous.metadata.uid
    o.metadata.creationTimestamp = previous.metadata.creationTimestamp
    o.metadata.resourceVersion = String(this.#rv)
    store.set(key, o)
    return this.#record(kind, 'MODIFIED', o, previous)
  }

  /** Deletes an object ({ namespace, name } or the object). */
  delete(kind: Kind, obj: { metadata?: { namespace?: string; name?: string } } | { namespace?: string; name: string }): Obj {
    const r = this.#resource(kind)
    const meta = 'metadata' in obj && obj.metadata ? obj.metadata : (obj as { namespace?: string; name: string })
    const key = r.namespaced ? `${meta.namespace ?? 'default'}/${meta.name}` : String(meta.name)
    const store = this.#store.get(kind)!
    const previous = store.get(key)
    if (!previous) throw new Error(`fake apiserver: ${kind} ${key} does not exist`)
    store.delete(key)
    this.#rv++
    const o = structuredClone(previous)
    o.metadata.resourceVersion = String(this.#rv)
    return this.#record(kind, 'DELETED', o, previous)
  }

  /** The stored object, or undefined. */
  get(kind: Kind, namespace: string | undefined, name: string): Obj | undefined {
    const r = this.#resource(kind)
    const o = this.#store.get(kind)!.get(r.namespaced ? `${namespace ?? 'default'}/${name}` : name)
    return o && structuredClone(o)
  }

  /**
   * Drops the history up to now (as etcd compaction): every open watch ends with
   * an ERROR event carrying a 410 Status (its held-back events lost; watches
   * are no longer suspended), and later
   * watches or continue tokens from before now get a 410.
   */
  compact(): void {
    this.#compactedRv = this.#rv
    this.#history = []
    this.#suspended = false // the watches that fell behind are ended
    this.#snapshots.clear()
    for (const w of [...this.#watchers]) {
      w.held = undefined
      this.#write(w, { type: 'ERROR', object: expiredStatus(`too old resource version: the watch fell behind the compaction at ${this.#rv}`) })
      this.#end(w)
    }
  }

  /** Open watches stop receiving events (held back) until resumeWatches() or compact(). */
  suspendWatches(): void {
    this.#suspended = true
    for (const w of this.#watchers) w.held ??= []
  }

  resumeWatches(): void {
    this.#suspended = false
    for (const w of this.#watchers) {
      const held = w.held ?? []
      w.held = undefined
      for (const ev of held) this.#write(w, ev)
    }
  }

  /** Events trickle: each is written in pieces `ms` apart (0: at once). */
  slow(ms: number): void {
    this.#slowMs = ms
  }

  /** A bookmark at the current resourceVersion to every watch that allows them. */
  bookmark(): void {
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue
      const ev = { type: 'BOOKMARK', object: { kind: w.resource.kind, apiVersion: w.resource.apiVersion, metadata: { resourceVersion: String(this.#rv) } } }
      if (w.held) w.held.push(ev)
      else this.#write(w, ev)
    }
  }

  /** A line that is not JSON, on every open watch. */
  garbage(): void {
    for (const w of this.#watchers) w.chain = w.chain.then(() => void (w.ended || w.res.write('{"type": "ADDED", "object": {oops\n')))
  }

  /** Cuts every open watch's connection (no clean end), the server staying up. */
  breakWatches(): void {
    for (const w of [...this.#watchers]) {
      w.ended = true
      this.#watchers.delete(w)
      clearTimeout(w.timer)
      w.res.socket?.destroy()
    }
  }

  /** Goes down (every connection cut), runs `during`, and comes back on the same port. */
  async restart(during?: () => void | Promise<void>): Promise<void> {
    await this.#stopListening()
    await during?.()
    await this.#listen(this.#port)
  }

  async close(): Promise<void> {
    clearInterval(this.#bookmarkTimer)
    await this.#stopListening()
  }

  // --- HTTP ---

  async #listen(port: number): Promise<void> {
    const c = this.certificates
    const server = createServer({ key: c.serverKey, cert: c.serverCert, ca: c.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => this.#handle(req, res))
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s)
      s.on('close', () => this.#sockets.delete(s))
    })
    server.on('tlsClientError', () => undefined)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.#server = server
    this.#port = (server.address() as { port: number }).port
  }

  async #stopListening(): Promise<void> {
    const server = this.#server
    this.#server = undefined
    for (const w of this.#watchers) {
      w.ended = true
      clearTimeout(w.timer)
    }
    this.#watchers.clear()
    if (!server) return
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
    await closed
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://fake')
    const query = Object.fromEntries(url.searchParams)
    const watch = query.watch === 'true' || query.watch === '1'
    const record: RequestRecord = { path: url.pathname, query, watch, status: 0, accept: req.headers.accept, authorization: req.headers.authorization }
    this.requests.push(record)
    this.onRequest?.(record)
    const fail = (code: number, reason: string, message: string): void => {
      record.status = code
      res.writeHead(code, { 'content-type': 'application/json' })
      res.end(JSON.stringify(status(code, reason, message)))
    }
    const socket = req.socket as TLSSocket
    const bearer = req.headers.authorization === `Bearer ${this.token}`
    const certOk = socket.authorized === true && socket.getPeerCertificate()?.subject?.CN === 'system:kube-proxy'
    if (!bearer && !certOk) return fail(401, 'Unauthorized', 'Unauthorized')
    if (req.method !== 'GET') return fail(405, 'MethodNotAllowed', `${req.method} is not supported here`)
    const route = this.#route(url.pathname)
    if (!route) return fail(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`)
    let match: Selector
    try {
      const labels = labelSelector(query.labelSelector ?? '')
      const fields = fieldSelector(query.fieldSelector ?? '')
      const ns = route.namespace
      match = (o) => (ns === undefined || o.metadata?.namespace === ns) && labels(o) && fields(o)
    } catch (e) {
      return fail(400, 'BadRequest', (e as Error).message)
    }
    if (watch) return this.#watch(route.resource, route.namespace, match, query, res, record, fail)
    this.#list(route.resource, match, query, res, record, fail)
  }

  #route(path: string): { resource: Resource; namespace?: string } | undefined {
    for (const r of RESOURCES) {
      const prefix = r.group === '' ? '/api/v1' : `/apis/${r.apiVersion}`
      if (path === `${prefix}/${r.plural}`) return { resource: r }
      if (r.namespaced) {
        const m = new RegExp(`^${prefix.replace(/\./g, '\\.')}/namespaces/([a-z0-9-]+)/${r.plural}$`).exec(path)
        if (m) return { resource: r, namespace: m[1]! }
      }
    }
    return undefined
  }

  #list(r: Resource, match: Selector, query: Record<string, string>, res: ServerResponse, record: RequestRecord, fail: (c: number, r: string, m: string) => void): void {
    const limit = query.limit ? Number(query.limit) : 0
    let snap: { rv: number; items: Obj[] }
    let offset = 0
    if (query.continue) {
      let token: { id: string; offset: number }
      try {
        token = JSON.parse(Buffer.from(query.continue, 'base64url').toString())
      } catch {
        return fail(400, 'BadRequest', 'continue key is not valid')
      }
      const s = this.#snapshots.get(token.id)
      if (!s) return fail(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.')
      snap = s
      offset = token.offset
    } else {
      const items = [...this.#store.get(r.kind)!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o).filter(match)
      snap = { rv: this.#rv, items: items.map((o) => structuredClone(o)) }
    }
    const end = limit > 0 ? Math.min(snap.items.length, offset + limit) : snap.items.length
    const page = snap.items.slice(offset, end).map((o) => {
      const { kind: _k, apiVersion: _a, ...rest } = o
      return rest
    })
    const metadata: Obj = { resourceVersion: String(snap.rv) }
    if (end < snap.items.length) {
      const id = query.continue ? JSON.parse(Buffer.from(query.continue, 'base64url').toString()).id : `s${++this.#snapshotId}`
      this.#snapshots.set(id, snap)
      metadata.continue = Buffer.from(JSON.stringify({ id, offset: end })).toString('base64url')
      metadata.remainingItemCount = snap.items.length - end
    }
    record.status = 200
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ kind: `${r.kind}List`, apiVersion: r.apiVersion, metadata, items: page }))
  }

  #watch(
    r: Resource,
    namespace: string | undefined,
    match: Selector,
    query: Record<string, string>,
    res: ServerResponse,
    record: RequestRecord,
    fail: (c: number, r: string, m: string) => void,
  ): void {
    const from = query.resourceVersion ?? ''
    const rv = from === '' || from === '0' ? undefined : Number(from)
    if (rv !== undefined && !Number.isInteger(rv)) return fail(400, 'BadRequest', `invalid resource version: ${from}`)
    const expired = rv !== undefined && rv < this.#compactedRv
    if (expired && this.expiredAs === 'http') return fail(410, 'Expired', `too old resource version: ${rv} (${this.#compactedRv})`)
    record.status = 200
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    const w: Watcher = { res, resource: r, namespace, match, bookmarks: query.allowWatchBookmarks === 'true', held: undefined, chain: Promise.resolve(), ended: false }
    if (expired) {
      this.#write(w, { type: 'ERROR', object: expiredStatus(`too old resource version: ${rv} (${this.#compactedRv})`) })
      this.#end(w)
      return
    }
    this.#watchers.add(w)
    res.on('close', () => {
      w.ended = true
      clearTimeout(w.timer)
      this.#watchers.delete(w)
    })
    if (rv === undefined) {
      // From now, starting with the current state as ADDED events.
      for (const o of [...this.#store.get(r.kind)!.values()]) if (match(o)) this.#write(w, { type: 'ADDED', object: structuredClone(o) })
    } else {
      for (const ev of this.#history) if (ev.kind === r.kind && ev.rv > rv) this.#deliver(w, ev)
    }
    if (this.#suspended) w.held = []
    const timeout = Number(query.timeoutSeconds ?? 0)
    if (timeout > 0) w.timer = setTimeout(() => this.#end(w), timeout * 1000)
  }

  /** The event `ev` as this watcher sees it through its selectors, if at all. */
  #deliver(w: Watcher, ev: HistoryEvent): void {
    const before = ev.previous !== undefined && w.match(ev.previous)
    const after = ev.type !== 'DELETED' && w.match(ev.object)
    let type: string | undefined
    if (ev.type === 'ADDED') type = after ? 'ADDED' : undefined
    else if (ev.type === 'DELETED') type = before ? 'DELETED' : undefined
    else type = before && after ? 'MODIFIED' : before ? 'DELETED' : after ? 'ADDED' : undefined
    if (!type) return
    const out = { type, object: structuredClone(ev.object) }
    if (w.held) w.held.push(out)
    else this.#write(w, out)
  }

  #write(w: Watcher, ev: Obj): void {
    const line = `${JSON.stringify(ev)}\n`
    w.chain = w.chain.then(async () => {
      if (w.ended) return
      if (this.#slowMs <= 0) return void w.res.write(line)
      // In three pieces: a reader must put the line back together.
      const cuts = [0, Math.floor(line.length / 3), Math.floor((2 * line.length) / 3), line.length]
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, this.#slowMs))
        if (w.ended) return
        w.res.write(line.slice(cuts[i], cuts[i + 1]))
      }
    })
  }

  /** Ends a watch cleanly, after what was written. */
  #end(w: Watcher): void {
    this.#watchers.delete(w)
    clearTimeout(w.timer)
    w.chain = w.chain.then(() => {
      if (!w.ended) {
        w.ended = true
        w.res.end()
      }
    })
  }
}

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

function expiredStatus(message: string): Obj {
  return status(410, 'Expired', message)
}

/** key, !key, key=value, key==value, key!=value; comma-separated (set-based forms refused). */
export function labelSelector(text: string): Selector {
  const reqs: Selector[] = []
  for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    let m: RegExpExecArray | null
    if (/\s(in|notin)\s/.test(raw) || raw.includes('(')) throw new Error(`unable to parse requirement: set-based selectors are not supported here: ${raw}`)
    if ((m = /^!([A-Za-z0-9./_-]+)$/.exec(raw))) {
      const k = m[1]!
      reqs.push((o) => !(k in (o.metadata?.labels ?? {})))
    } else if ((m = /^([A-Za-z0-9./_-]+)\s*(!=|==|=)\s*([A-Za-z0-9._-]*)$/.exec(raw))) {
      const [, k, op, v] = m as unknown as [string, string, string, string]
      reqs.push((o) => {
        const have = (o.metadata?.labels ?? {})[k]
        return op === '!=' ? have !== v : have === v
      })
    } else if ((m = /^([A-Za-z0-9./_-]+)$/.exec(raw))) {
      const k = m[1]!
      reqs.push((o) => k in (o.metadata?.labels ?? {}))
    } else throw new Error(`unable to parse requirement: ${raw}`)
  }
  return (o) => reqs.every((r) => r(o))
}

/** metadata.name and metadata.namespace with =, == or !=. */
export function fieldSelector(text: string): Selector {
  const reqs: Selector[] = []
  for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-zA-Z.]+)\s*(!=|==|=)\s*(.*)$/.exec(raw)
    if (!m) throw new Error(`invalid field selector: ${raw}`)
    const [, field, op, value] = m as unknown as [string, string, string, string]
    if (field !== 'metadata.name' && field !== 'metadata.namespace') throw new Error(`field label not supported: ${field}`)
    const pick = field === 'metadata.name' ? (o: Obj) => o.metadata?.name : (o: Obj) => o.metadata?.namespace ?? ''
    reqs.push((o) => (op === '!=' ? pick(o) !== value : pick(o) === value))
  }
  return (o) => reqs.every((r) => r(o))
}
