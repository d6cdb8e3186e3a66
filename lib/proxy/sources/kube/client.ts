// A small Kubernetes API client: what a service proxy needs and nothing more.
// Requests are plain HTTPS with JSON bodies over one keep-alive agent, to the
// server connection.ts resolved: list (following `continue` pages) and watch
// (a chunked stream of newline-delimited JSON events). Everything can be
// aborted with an AbortSignal. Requests are JSON only (clientConnection.
// contentType's protobuf is not spoken).
import { readFileSync, statSync } from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import { createGunzip } from 'node:zlib'
import { isObject } from '../../model/fields.js'
import { MAX_WATCH_LINE_BYTES } from '../../limits.js'
import type { KubeConnection } from './connection.js'

// The connection settings are part of this module's API.
export * from './connection.js'

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
