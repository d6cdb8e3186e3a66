// A small Kubernetes API client: what a service proxy needs and nothing more.
// Connection settings come from a kubeconfig file or from the pod's service
// account (in-cluster); requests are plain HTTPS with JSON bodies over one
// keep-alive agent: list (following `continue` pages) and watch (a chunked
// stream of newline-delimited JSON events). Everything can be aborted with an
// AbortSignal.
//
// Not supported (refused with a KubeConfigError naming the field): exec and
// auth-provider credential plugins, basic auth, proxy-url. Requests are JSON
// only (clientConnection.contentType's protobuf is not spoken).
import { readFileSync, statSync } from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import { dirname, isAbsolute, resolve } from 'node:path'
import { createGunzip } from 'node:zlib'
import { isObject } from '../../model/fields.js'
import { LimitError, MAX_CONFIG_BYTES, MAX_WATCH_LINE_BYTES } from '../../limits.js'
import { yamlValue } from '../../yaml.js'

/** Where the in-cluster credentials live (a pod's service account volume). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** A connection setting is missing or wrong; names the file (or 'in-cluster') and the field. */
export class KubeConfigError extends Error {
  override name = 'KubeConfigError'
  /** The kubeconfig file, or 'in-cluster'. */
  readonly source: string
  /** The field, as the kubeconfig spells it ('users["admin"].user.client-key-data'), or the environment variable / file. */
  readonly field: string

  constructor(source: string, field: string, reason: string, cause?: unknown) {
    super(`${source}: ${field} ${reason}`, cause === undefined ? undefined : { cause })
    this.source = source
    this.field = field
  }
}

/** The API server answered with an error (or a request failed before any answer: status 0). */
export class KubeApiError extends Error {
  override name = 'KubeApiError'
  /** The HTTP status (or the Status object's code); 0 when no answer came. */
  readonly status: number
  /** The Status reason ('Unauthorized', 'Expired', 'Gone', ...), when the server gave one. */
  readonly reason?: string
  readonly method: string
  readonly path: string

  constructor(init: { status: number; reason?: string; message: string; method: string; path: string; cause?: unknown }) {
    super(`${init.method} ${init.path}: ${init.status === 0 ? '' : `${init.status}${init.reason ? ` ${init.reason}` : ''}: `}${init.message}`, init.cause === undefined ? undefined : { cause: init.cause })
    this.status = init.status
    if (init.reason) this.reason = init.reason
    this.method = init.method
    this.path = init.path
  }

  /** 410: the resourceVersion (or continue token) asked for is too old. */
  get gone(): boolean {
    return this.status === 410
  }
}

/** How to reach and authenticate to the API server. */
export interface KubeConnection {
  /** The server's base URL ('https://10.96.0.1:443', possibly with a path prefix). */
  server: string
  /** CA certificates (PEM) to trust; the system's when absent. */
  ca?: Buffer
  insecureSkipTLSVerify?: boolean
  /** The name to check the server certificate against, instead of the URL's host. */
  tlsServerName?: string
  /** A bearer token. */
  token?: string
  /** A file holding the bearer token, re-read periodically (service account tokens rotate). */
  tokenFile?: string
  /** Client certificate and key (PEM). */
  cert?: Buffer
  key?: Buffer
  /** The context's (or the service account's) namespace. */
  namespace?: string
}

// --- kubeconfig ---

interface Named {
  name: string
  value: Record<string, unknown>
}

function namedList(file: string, field: string, inner: string, value: unknown): Named[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new KubeConfigError(file, field, 'must be a list')
  return value.map((item, i) => {
    if (!isObject(item)) throw new KubeConfigError(file, `${field}[${i}]`, 'must be a mapping')
    if (typeof item.name !== 'string' || item.name === '') throw new KubeConfigError(file, `${field}[${i}].name`, 'is required')
    const v = item[inner]
    if (v !== undefined && v !== null && !isObject(v)) throw new KubeConfigError(file, `${field}[${JSON.stringify(item.name)}].${inner}`, 'must be a mapping')
    return { name: item.name, value: (v ?? {}) as Record<string, unknown> }
  })
}

function optString(file: string, field: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string') throw new KubeConfigError(file, field, `must be a string (got ${typeof v})`)
  return v
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function base64Data(file: string, field: string, v: unknown): Buffer | undefined {
  const text = optString(file, field, v)
  if (text === undefined) return undefined
  const compact = text.replace(/\s+/g, '')
  if (!BASE64.test(compact) || compact.length % 4 !== 0) throw new KubeConfigError(file, field, 'is not valid base64')
  return Buffer.from(compact, 'base64')
}

function readPem(source: string, field: string, path: string, base: string): Buffer {
  const full = isAbsolute(path) ? path : resolve(base, path)
  try {
    return readFileSync(full)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new KubeConfigError(source, field, code === 'ENOENT' ? `names a missing file: ${full}` : `names a file that cannot be read: ${full} (${code ?? String(e)})`, e)
  }
}

function checkPem(source: string, field: string, data: Buffer, what: 'certificate' | 'key'): Buffer {
  const text = data.toString('latin1')
  const ok = what === 'certificate' ? text.includes('-----BEGIN CERTIFICATE-----') : /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
  if (!ok) throw new KubeConfigError(source, field, what === 'certificate' ? 'is not a PEM certificate' : 'is not a PEM private key')
  return data
}

function serverURL(source: string, field: string, text: string): string {
  let u: URL
  try {
    // kubectl accepts 'host:port' and means https.
    u = new URL(text.includes('://') ? text : `https://${text}`)
  } catch {
    throw new KubeConfigError(source, field, `is not a URL: ${JSON.stringify(text)}`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new KubeConfigError(source, field, `must be an http or https URL (got ${JSON.stringify(text)})`)
  return u.toString().replace(/\/$/, '')
}

export interface KubeconfigOptions {
  /** --master: overrides the cluster's server. */
  master?: string
  /** A context other than current-context. */
  context?: string
}

/** Reads a kubeconfig file (YAML or JSON): its current context's cluster and user; throws a KubeConfigError naming the field. */
export function loadKubeconfig(path: string, options: KubeconfigOptions = {}): KubeConnection {
  const file = resolve(path)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new KubeConfigError(file, 'kubeconfig', code === 'ENOENT' ? 'file does not exist' : `cannot be read (${code ?? String(e)})`, e)
  }
  if (text.length > MAX_CONFIG_BYTES) {
    const limit = new LimitError({ file, line: 1, limit: 'bytes', max: MAX_CONFIG_BYTES, found: text.length })
    throw new KubeConfigError(file, 'kubeconfig', limit.reason, limit)
  }
  let doc: unknown
  try {
    doc = yamlValue(text, { source: file })
  } catch (e) {
    if (e instanceof LimitError) throw new KubeConfigError(file, 'kubeconfig', `line ${e.line}: ${e.reason}`, e)
    throw new KubeConfigError(file, 'kubeconfig', `is not valid YAML: ${(e as Error).message}`, e)
  }
  return kubeconfigConnection(doc, file, options)
}

/** The connection a parsed kubeconfig describes; relative file paths resolve against `file`'s directory. */
export function kubeconfigConnection(doc: unknown, file: string, options: KubeconfigOptions = {}): KubeConnection {
  if (!isObject(doc)) throw new KubeConfigError(file, 'kubeconfig', 'must be a mapping')
  const base = dirname(file)
  const contextName = options.context ?? optString(file, 'current-context', doc['current-context'])
  if (contextName === undefined) throw new KubeConfigError(file, 'current-context', 'is not set (no context to use)')
  const contexts = namedList(file, 'contexts', 'context', doc.contexts)
  const context = contexts.find((c) => c.name === contextName)
  if (!context) throw new KubeConfigError(file, 'contexts', `has no context named ${JSON.stringify(contextName)}`)
  const cf = `contexts[${JSON.stringify(contextName)}].context`
  const clusterName = optString(file, `${cf}.cluster`, context.value.cluster)
  if (clusterName === undefined) throw new KubeConfigError(file, `${cf}.cluster`, 'is required')
  const cluster = namedList(file, 'clusters', 'cluster', doc.clusters).find((c) => c.name === clusterName)
  if (!cluster) throw new KubeConfigError(file, 'clusters', `has no cluster named ${JSON.stringify(clusterName)}`)
  const kf = `clusters[${JSON.stringify(clusterName)}].cluster`
  const c = cluster.value

  const conn: KubeConnection = { server: '' }
  const server = options.master ?? optString(file, `${kf}.server`, c.server)
  if (server === undefined) throw new KubeConfigError(file, `${kf}.server`, 'is required (or give --master)')
  conn.server = serverURL(file, options.master !== undefined ? '--master' : `${kf}.server`, server)
  if (c['proxy-url'] !== undefined && c['proxy-url'] !== null && c['proxy-url'] !== '') throw new KubeConfigError(file, `${kf}.proxy-url`, 'is not supported')
  const insecure = c['insecure-skip-tls-verify']
  if (insecure !== undefined && insecure !== null && typeof insecure !== 'boolean') throw new KubeConfigError(file, `${kf}.insecure-skip-tls-verify`, 'must be true or false')
  if (insecure === true) conn.insecureSkipTLSVerify = true
  const caData = base64Data(file, `${kf}.certificate-authority-data`, c['certificate-authority-data'])
  const caFile = optString(file, `${kf}.certificate-authority`, c['certificate-authority'])
  if (caData) conn.ca = checkPem(file, `${kf}.certificate-authority-data`, caData, 'certificate')
  else if (caFile) conn.ca = checkPem(file, `${kf}.certificate-authority`, readPem(file, `${kf}.certificate-authority`, caFile, base), 'certificate')
  if (conn.ca && conn.insecureSkipTLSVerify) throw new KubeConfigError(file, `${kf}.insecure-skip-tls-verify`, 'cannot be true when a certificate authority is given')
  const serverName = optString(file, `${kf}.tls-server-name`, c['tls-server-name'])
  if (serverName) conn.tlsServerName = serverName

  const namespace = optString(file, `${cf}.namespace`, context.value.namespace)
  if (namespace) conn.namespace = namespace

  const userName = optString(file, `${cf}.user`, context.value.user)
  if (userName !== undefined) {
    const user = namedList(file, 'users', 'user', doc.users).find((u) => u.name === userName)
    if (!user) throw new KubeConfigError(file, 'users', `has no user named ${JSON.stringify(userName)}`)
    const uf = `users[${JSON.stringify(userName)}].user`
    const u = user.value
    for (const unsupported of ['exec', 'auth-provider', 'username', 'password']) {
      if (u[unsupported] !== undefined && u[unsupported] !== null && u[unsupported] !== '')
        throw new KubeConfigError(file, `${uf}.${unsupported}`, 'is not supported (use a token, a token file or a client certificate)')
    }
    const token = optString(file, `${uf}.token`, u.token)
    const tokenFile = optString(file, `${uf}.tokenFile`, u.tokenFile)
    if (token) conn.token = token
    else if (tokenFile) {
      conn.tokenFile = isAbsolute(tokenFile) ? tokenFile : resolve(base, tokenFile)
      conn.token = readToken(file, `${uf}.tokenFile`, conn.tokenFile)
    }
    const certData = base64Data(file, `${uf}.client-certificate-data`, u['client-certificate-data'])
    const certFile = optString(file, `${uf}.client-certificate`, u['client-certificate'])
    const keyData = base64Data(file, `${uf}.client-key-data`, u['client-key-data'])
    const keyFile = optString(file, `${uf}.client-key`, u['client-key'])
    const certField = certData ? `${uf}.client-certificate-data` : `${uf}.client-certificate`
    const keyField = keyData ? `${uf}.client-key-data` : `${uf}.client-key`
    const cert = certData ?? (certFile ? readPem(file, certField, certFile, base) : undefined)
    const key = keyData ?? (keyFile ? readPem(file, keyField, keyFile, base) : undefined)
    if (cert && !key) throw new KubeConfigError(file, `${uf}.client-key`, 'is required with a client certificate (client-key or client-key-data)')
    if (key && !cert) throw new KubeConfigError(file, `${uf}.client-certificate`, 'is required with a client key (client-certificate or client-certificate-data)')
    if (cert && key) {
      conn.cert = checkPem(file, certField, cert, 'certificate')
      conn.key = checkPem(file, keyField, key, 'key')
    }
  }
  return conn
}

function readToken(source: string, field: string, path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new KubeConfigError(source, field, code === 'ENOENT' ? `names a missing file: ${path}` : `names a file that cannot be read: ${path} (${code ?? String(e)})`, e)
  }
  const token = text.trim()
  if (token === '') throw new KubeConfigError(source, field, `names an empty file: ${path}`)
  return token
}

export interface InClusterOptions {
  /** The environment to read KUBERNETES_SERVICE_HOST/PORT from (process.env). */
  env?: Record<string, string | undefined>
  /** The service account directory (SERVICE_ACCOUNT_DIR). */
  dir?: string
}

/** The pod's service account: KUBERNETES_SERVICE_HOST/PORT, its token (re-read as it rotates), ca.crt, namespace. */
export function inClusterConnection(options: InClusterOptions = {}): KubeConnection {
  const env = options.env ?? process.env
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  if (!host) throw new KubeConfigError('in-cluster', 'KUBERNETES_SERVICE_HOST', 'is not set (not running in a pod? give --kubeconfig or --master)')
  if (!port) throw new KubeConfigError('in-cluster', 'KUBERNETES_SERVICE_PORT', 'is not set')
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new KubeConfigError('in-cluster', 'KUBERNETES_SERVICE_PORT', `is not a port number (got ${JSON.stringify(port)})`)
  const tokenFile = resolve(dir, 'token')
  const token = readToken('in-cluster', 'token', tokenFile)
  const caFile = resolve(dir, 'ca.crt')
  const ca = checkPem('in-cluster', 'ca.crt', readPem('in-cluster', 'ca.crt', caFile, dir), 'certificate')
  const conn: KubeConnection = { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, ca, token, tokenFile }
  try {
    const ns = readFileSync(resolve(dir, 'namespace'), 'utf8').trim()
    if (ns) conn.namespace = ns
  } catch {
    // The namespace file is optional.
  }
  return conn
}

export interface ConnectionOptions {
  /** --kubeconfig (clientConnection.kubeconfig). */
  kubeconfig?: string
  /** --master. */
  master?: string
  inCluster?: InClusterOptions
}

/**
 * As kube-proxy decides: a kubeconfig when given (--master overriding its
 * server), else --master alone (no credentials), else the pod's service account.
 */
export function resolveConnection(options: ConnectionOptions): KubeConnection {
  if (options.kubeconfig) return loadKubeconfig(options.kubeconfig, options.master ? { master: options.master } : {})
  if (options.master) return { server: serverURL('--master', '--master', options.master) }
  return inClusterConnection(options.inCluster)
}

// --- the client ---

/** One event of a watch stream. */
export type WatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Record<string, unknown> }
  | { type: 'BOOKMARK'; object: Record<string, unknown> }
  | { type: 'ERROR'; object: KubeStatus }

/** A metav1.Status, as the server sends it with errors. */
export interface KubeStatus {
  kind?: string
  status?: string
  message?: string
  reason?: string
  code?: number
  [k: string]: unknown
}

export interface ListOptions {
  /** Items per page (the client follows `continue` until the list is whole). */
  limit?: number
  /** Start from this continue token (a single page is then still followed to the end). */
  continue?: string
  /** '' or absent: the most recent (a consistent read); '0': any (the server's cache). */
  resourceVersion?: string
  labelSelector?: string
  fieldSelector?: string
  signal?: AbortSignal
}

export interface ListResult<T = Record<string, unknown>> {
  items: T[]
  /** The list's resourceVersion: watch from here. */
  resourceVersion: string
  /** Pages fetched. */
  pages: number
}

export interface WatchOptions {
  resourceVersion?: string
  allowWatchBookmarks?: boolean
  /** Asks the server to end the stream after this long. */
  timeoutSeconds?: number
  labelSelector?: string
  fieldSelector?: string
  signal?: AbortSignal
  /** Gives up on a stream silent for this long (ms; default timeoutSeconds + 30 s, or 5 minutes). */
  idleTimeoutMs?: number
}

/** What informers need of a client (tests may stand in for it). */
export interface KubeApi {
  list(path: string, options?: ListOptions): Promise<ListResult>
  watch(path: string, options?: WatchOptions): AsyncIterable<WatchEvent>
}

export interface KubeClientOptions {
  /** Requests per second (0: unlimited) and burst, as clientConnection.qps/burst. */
  qps?: number
  burst?: number
  /** Re-read the token file when the token is older than this (ms; default 60000). */
  tokenRefreshMs?: number
  userAgent?: string
  /** Silence allowed on a list request's connection before giving up (ms; default 60000). */
  requestTimeoutMs?: number
}

export class KubeClient implements KubeApi {
  readonly connection: Readonly<KubeConnection>
  readonly #base: URL
  readonly #agent: http.Agent
  readonly #secure: boolean
  readonly #userAgent: string
  readonly #tokenRefreshMs: number
  readonly #requestTimeoutMs: number
  #token: string | undefined
  #tokenReadAt = 0
  #tokenMtime = 0
  // Token bucket.
  readonly #qps: number
  readonly #burst: number
  #tokens: number
  #refilledAt = Date.now()

  constructor(connection: KubeConnection, options: KubeClientOptions = {}) {
    this.connection = connection
    this.#base = new URL(connection.server)
    this.#secure = this.#base.protocol === 'https:'
    if (this.#secure) {
      const opts: https.AgentOptions = { keepAlive: true, rejectUnauthorized: connection.insecureSkipTLSVerify !== true }
      if (connection.ca) opts.ca = connection.ca
      if (connection.cert) opts.cert = connection.cert
      if (connection.key) opts.key = connection.key
      if (connection.tlsServerName) opts.servername = connection.tlsServerName
      this.#agent = new https.Agent(opts)
    } else this.#agent = new http.Agent({ keepAlive: true })
    this.#userAgent = options.userAgent ?? 'tsproxy'
    this.#tokenRefreshMs = options.tokenRefreshMs ?? 60_000
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 60_000
    this.#token = connection.token
    this.#tokenReadAt = Date.now()
    this.#qps = options.qps ?? 0
    this.#burst = Math.max(1, options.burst ?? 1)
    this.#tokens = this.#burst
  }

  /** Closes every connection, idle or not: requests and watches under way fail (abort them first to end them quietly). */
  close(): void {
    this.#agent.destroy()
  }

  /** The bearer token to send: re-read from the token file when stale (or `force`d after a 401). */
  #bearer(force = false): string | undefined {
    const file = this.connection.tokenFile
    if (file && (force || Date.now() - this.#tokenReadAt >= this.#tokenRefreshMs)) {
      this.#tokenReadAt = Date.now()
      try {
        const mtime = statSync(file).mtimeMs
        if (force || mtime !== this.#tokenMtime) {
          const t = readFileSync(file, 'utf8').trim()
          if (t) this.#token = t
          this.#tokenMtime = mtime
        }
      } catch {
        // Keep the last token: the file may be in the middle of being swapped.
      }
    }
    return this.#token
  }

  async #throttle(signal?: AbortSignal): Promise<void> {
    if (this.#qps <= 0) return
    for (;;) {
      const now = Date.now()
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#qps)
      this.#refilledAt = now
      if (this.#tokens >= 1) {
        this.#tokens -= 1
        return
      }
      await sleep(Math.ceil(((1 - this.#tokens) / this.#qps) * 1000), signal)
    }
  }

  #url(path: string, query: Record<string, string | number | boolean | undefined>): URL {
    const u = new URL(this.#base.toString())
    u.pathname = `${this.#base.pathname.replace(/\/$/, '')}${path}`
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') u.searchParams.set(k, String(v))
    return u
  }

  /** Sends a GET; resolves with the response once its head arrived (any status). */
  #get(url: URL, opts: { signal?: AbortSignal; gzip: boolean; idleMs: number; forceToken?: boolean }): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.#userAgent }
    if (opts.gzip) headers['accept-encoding'] = 'gzip'
    const token = this.#bearer(opts.forceToken)
    if (token) headers.authorization = `Bearer ${token}`
    const path = url.pathname
    return new Promise((resolvePromise, reject) => {
      const mod = this.#secure ? https : http
      const req = mod.request(url, { method: 'GET', agent: this.#agent, headers, ...(opts.signal ? { signal: opts.signal } : {}) }, (res) => resolvePromise(res))
      req.setTimeout(opts.idleMs, () => req.destroy(new Error(`no data for ${opts.idleMs} ms`)))
      req.on('error', (e) => {
        const aborted = (e as { name?: string }).name === 'AbortError'
        reject(aborted ? e : new KubeApiError({ status: 0, message: errorText(e), method: 'GET', path, cause: e }))
      })
      req.end()
    })
  }

  /** A GET whose body is read whole and parsed as JSON; a non-2xx answer throws a KubeApiError. */
  async #getJSON(url: URL, signal?: AbortSignal): Promise<Record<string, unknown>> {
    await this.#throttle(signal)
    let res = await this.#get(url, { signal, gzip: true, idleMs: this.#requestTimeoutMs })
    if (res.statusCode === 401 && this.connection.tokenFile) {
      // The token may have rotated since it was read: once more with a fresh read.
      res.resume()
      res = await this.#get(url, { signal, gzip: true, idleMs: this.#requestTimeoutMs, forceToken: true })
    }
    const body = await readBody(res, url.pathname)
    const status = res.statusCode ?? 0
    if (status < 200 || status > 299) throw statusError(status, body, url.pathname)
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch (e) {
      throw new KubeApiError({ status, message: `the answer is not JSON (${(e as Error).message})`, method: 'GET', path: url.pathname, cause: e })
    }
    if (!isObject(parsed)) throw new KubeApiError({ status, message: 'the answer is not a JSON object', method: 'GET', path: url.pathname })
    return parsed
  }

  /** Lists a collection, following `continue` pages; if a continue token expires, lists again whole (as client-go's pager). */
  async list(path: string, options: ListOptions = {}): Promise<ListResult> {
    const items: Record<string, unknown>[] = []
    let cont = options.continue
    let limit = options.limit
    let pages = 0
    for (;;) {
      const url = this.#url(path, {
        limit: limit && limit > 0 ? limit : undefined,
        continue: cont,
        resourceVersion: cont ? undefined : options.resourceVersion,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
      })
      let page: Record<string, unknown>
      try {
        page = await this.#getJSON(url, options.signal)
      } catch (e) {
        if (e instanceof KubeApiError && e.gone && cont && pages > 0) {
          items.length = 0
          cont = undefined
          limit = undefined
          continue
        }
        throw e
      }
      pages++
      const meta = isObject(page.metadata) ? page.metadata : {}
      if (!Array.isArray(page.items)) throw new KubeApiError({ status: 200, message: 'the list has no items array', method: 'GET', path })
      for (const item of page.items) if (isObject(item)) items.push(item)
      const next = typeof meta.continue === 'string' ? meta.continue : ''
      if (next === '') return { items, resourceVersion: typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '', pages }
      cont = next
    }
  }

  /**
   * Watches a collection: yields each event as it arrives; returns when the
   * server ends the stream; throws a KubeApiError when the server refuses the
   * watch (410 included) or the connection is lost. An ERROR event is yielded,
   * not thrown: the caller decides (410: list again).
   */
  async *watch(path: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent, void, undefined> {
    const url = this.#url(path, {
      watch: 'true',
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: options.allowWatchBookmarks ? 'true' : undefined,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
    })
    const idleMs = options.idleTimeoutMs ?? (options.timeoutSeconds ? (options.timeoutSeconds + 30) * 1000 : 300_000)
    await this.#throttle(options.signal)
    let res = await this.#get(url, { signal: options.signal, gzip: false, idleMs })
    if (res.statusCode === 401 && this.connection.tokenFile) {
      res.resume()
      res = await this.#get(url, { signal: options.signal, gzip: false, idleMs, forceToken: true })
    }
    const status = res.statusCode ?? 0
    if (status !== 200) throw statusError(status, await readBody(res, path), path)
    const stream = res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res
    // A line is kept as bytes until its end arrives: each byte is looked at once
    // (not the whole line again per chunk), a character split between chunks is
    // decoded whole, and a line longer than any object the API server can hold
    // ends the watch (counted and retried as a failed watch) before it fills memory.
    let partial: Buffer[] = []
    let partialBytes = 0
    const tooLong = (): KubeApiError =>
      new KubeApiError({ status: 0, message: `a watch event is longer than the limit of ${MAX_WATCH_LINE_BYTES} bytes; refused`, method: 'GET', path })
    const take = (last: Buffer): string => {
      const bytes = partial.length === 0 ? last : Buffer.concat([...partial, last])
      partial = []
      partialBytes = 0
      return bytes.toString('utf8').trim()
    }
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let from = 0
        let nl: number
        while ((nl = chunk.indexOf(10, from)) >= 0) {
          if (partialBytes + nl - from > MAX_WATCH_LINE_BYTES) throw tooLong()
          const line = take(chunk.subarray(from, nl))
          from = nl + 1
          if (line !== '') yield decodeEvent(line, path)
        }
        if (from < chunk.length) {
          partialBytes += chunk.length - from
          if (partialBytes > MAX_WATCH_LINE_BYTES) throw tooLong()
          partial.push(chunk.subarray(from))
        }
      }
    } catch (e) {
      if ((e as { name?: string }).name === 'AbortError' || options.signal?.aborted) throw e
      if (e instanceof KubeApiError) throw e
      throw new KubeApiError({ status: 0, message: `the watch stream broke: ${errorText(e)}`, method: 'GET', path, cause: e })
    } finally {
      if (!res.complete) res.destroy()
    }
    const rest = take(Buffer.alloc(0))
    if (rest !== '') yield decodeEvent(rest, path)
  }
}

const WATCH_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'])

function decodeEvent(line: string, path: string): WatchEvent {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch (e) {
    throw new KubeApiError({ status: 0, message: `a watch event is not JSON (${(e as Error).message}): ${line.slice(0, 200)}`, method: 'GET', path, cause: e })
  }
  if (!isObject(v) || typeof v.type !== 'string' || !WATCH_TYPES.has(v.type) || !isObject(v.object))
    throw new KubeApiError({ status: 0, message: `not a watch event: ${line.slice(0, 200)}`, method: 'GET', path })
  return v as unknown as WatchEvent
}

async function readBody(res: http.IncomingMessage, path: string): Promise<string> {
  const stream = res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res
  const chunks: Buffer[] = []
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk)
  } catch (e) {
    if ((e as { name?: string }).name === 'AbortError') throw e
    throw new KubeApiError({ status: res.statusCode ?? 0, message: `the answer broke off: ${errorText(e)}`, method: 'GET', path, cause: e })
  }
  return Buffer.concat(chunks).toString('utf8')
}

function statusError(status: number, body: string, path: string): KubeApiError {
  let s: KubeStatus | undefined
  try {
    const v: unknown = JSON.parse(body)
    if (isObject(v)) s = v as KubeStatus
  } catch {
    // Not a Status: the body's first words will do.
  }
  const message = s?.message ?? (body.trim().slice(0, 200) || http.STATUS_CODES[status] || 'error')
  const reason = s?.reason ?? http.STATUS_CODES[status]
  return new KubeApiError({ status, message, method: 'GET', path, ...(reason ? { reason } : {}) })
}

function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  return err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? e)
}

/** Resolves after `ms`, or rejects with an AbortError when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? abortError())
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolvePromise()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal!.reason ?? abortError())
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function abortError(): Error {
  const e = new Error('aborted')
  e.name = 'AbortError'
  return e
}
