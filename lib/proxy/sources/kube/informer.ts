// One resource's list+watch loop, as kube-proxy's reflector runs it: list, then
// watch from the list's resourceVersion. A bookmark only moves the
// resourceVersion on. A 410 (the resourceVersion was compacted away, as an
// ERROR event or as the answer to the watch request) means events were lost:
// list again and emit the difference against what this informer holds (adds,
// updates, and deletes of objects no longer there), never a flush. A lost
// connection or an ended stream means nothing was lost: watch again from the
// last resourceVersion, after a backoff with jitter when it failed, keeping the
// state as it is: an API server out of reach deletes nothing.
//
// Objects the parse function refuses (a ValidationError) are skipped, logged
// once per version with their namespace/name and field, and counted; the rest
// applies. An object whose new version is refused keeps its last good version.
import { ValidationError } from '../../../errors.js'
import { isObject } from '../../model/fields.js'
import type { Log } from '../../types.js'
import { KubeApiError, sleep, type KubeApi, type WatchEvent } from './client.js'

export interface BackoffOptions {
  /** The first delay (ms; default 800). */
  initialMs: number
  /** The longest delay (ms; default 30000). */
  maxMs: number
  /** Each failure multiplies the delay by this (default 2). */
  factor: number
  /** Up to this fraction of the delay is added at random (default 1). */
  jitter: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 800, maxMs: 30_000, factor: 2, jitter: 1 }

/** The delay before retry number `failures` (from 1). */
export function backoffDelay(b: BackoffOptions, failures: number, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, failures - 1))
  return Math.min(b.maxMs, base * (1 + b.jitter * random()))
}

/** Something went wrong in an informer; `kind` says what. */
export interface InformerError {
  /**
   * 'refused': an object the parse function refused; 'partial': a part of an
   * object left out, the rest applied (a bad endpoint of a slice); 'list' /
   * 'watch': the API; 'handler': the handler threw.
   */
  kind: 'refused' | 'partial' | 'list' | 'watch' | 'handler'
  /** The informer's name ('services'). */
  resource: string
  error: Error
  /** 'namespace/name' of the object concerned (refused, partial, handler). */
  object?: string
  /** The refused field (refused, partial). */
  field?: string
}

/** What an informer counts; a KubernetesSource sums them over its three informers. */
export interface InformerCounters {
  /** Events given to the handler. */
  events: number
  /** Lists after the first one (after a 410). */
  relists: number
  /** Failed lists and watches. */
  errors: number
  /** Watches started again after a stream ended or broke. */
  reconnects: number
  /** Object versions refused by the parse function. */
  refused: number
  /** Parts left out of object versions that applied (options.warnings). */
  partial: number
}

export interface InformerStats extends InformerCounters {
  bookmarks: number
}

export interface InformerOptions<T> {
  client: KubeApi
  /** The collection ('/api/v1/services'). */
  path: string
  /** Written into list items, which the API sends without them. */
  apiVersion: string
  kind: string
  /** For logs and errors ('services'). */
  name?: string
  labelSelector?: string
  fieldSelector?: string
  /** Raw object to model; throws a ValidationError for an object to skip. */
  parse: (raw: Record<string, unknown>) => T
  /** What the parse function left out of an object it kept (a slice's bad endpoints): logged and counted, the object applies. */
  warnings?: (value: T) => readonly ValidationError[] | undefined
  /** previous: what this informer last emitted for the key. */
  handler: (previous: T | undefined, current: T | undefined) => void
  log?: Log
  onError?: (e: InformerError) => void
  /** A list or watch works again after failing ('list' / 'watch' errors). */
  onRecovered?: (resource: string) => void
  backoff?: Partial<BackoffOptions>
  /** Items per list page (default 500). */
  pageSize?: number
  /** Asked of the server for each watch (default: at random between 300 and 600 s, as the reflector). */
  watchTimeoutSeconds?: number
}

interface Held<T> {
  /** The resourceVersion of the latest version seen (parsed or refused). */
  rv: string
  /** The last version parsed and emitted; undefined when every version so far was refused. */
  value: T | undefined
}

/** A stream that ended: why, and whether to list again. */
type WatchEnd = { relist: boolean; failed: boolean; error?: Error; events?: boolean }

export class Informer<T> {
  readonly name: string
  readonly stats: InformerStats = { events: 0, relists: 0, errors: 0, reconnects: 0, refused: 0, partial: 0, bookmarks: 0 }
  readonly #o: InformerOptions<T>
  readonly #backoff: BackoffOptions
  readonly #log: Log
  readonly #held = new Map<string, Held<T>>()
  #rv = ''
  #abort: AbortController | undefined
  #loop: Promise<void> | undefined
  #synced = false
  #resolveSynced!: () => void
  #rejectSynced!: (e: Error) => void
  readonly #syncedPromise: Promise<void>
  /** The message of the last failure logged, to log a repeated one quietly. */
  #lastFailure = ''

  constructor(options: InformerOptions<T>) {
    this.#o = options
    this.name = options.name ?? options.path
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff }
    this.#log = options.log ?? (() => undefined)
    this.#syncedPromise = new Promise<void>((res, rej) => {
      this.#resolveSynced = res
      this.#rejectSynced = rej
    })
    this.#syncedPromise.catch(() => undefined)
  }

  /** The resourceVersion the next watch starts from ('' before the first list). */
  get resourceVersion(): string {
    return this.#rv
  }

  get hasSynced(): boolean {
    return this.#synced
  }

  /** Resolves once the first list is applied; rejects if stopped before. */
  synced(): Promise<void> {
    return this.#syncedPromise
  }

  /** The objects held (the last good version of each). */
  values(): T[] {
    const out: T[] = []
    for (const h of this.#held.values()) if (h.value !== undefined) out.push(h.value)
    return out
  }

  get(key: string): T | undefined {
    return this.#held.get(key)?.value
  }

  start(): void {
    if (this.#loop) return
    this.#abort = new AbortController()
    this.#loop = this.#run(this.#abort.signal).catch((e) => {
      if (!this.#abort?.signal.aborted) this.#log('error', 'informer stopped on an unexpected error', { resource: this.name, error: String(e) })
    })
  }

  /** Stops listing and watching; what was emitted stays. */
  async stop(): Promise<void> {
    this.#abort?.abort()
    await this.#loop
    if (!this.#synced) this.#rejectSynced(new Error(`${this.name}: stopped before the first list`))
  }

  #timeout(): number {
    return this.#o.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300)
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0
    let needList = true
    let first = true
    const pause = async (): Promise<void> => {
      failures++
      await sleep(backoffDelay(this.#backoff, failures), signal)
    }
    while (!signal.aborted) {
      if (needList) {
        try {
          // The first list may come from the server's cache ('0'); after a 410 it must be current ('').
          const listed = await this.#o.client.list(this.#o.path, {
            limit: this.#o.pageSize ?? 500,
            resourceVersion: first ? '0' : '',
            ...(this.#o.labelSelector ? { labelSelector: this.#o.labelSelector } : {}),
            ...(this.#o.fieldSelector ? { fieldSelector: this.#o.fieldSelector } : {}),
            signal,
          })
          if (!first) this.stats.relists++
          this.#applyList(listed.items, listed.resourceVersion)
          this.#recovered('list')
          failures = 0
          needList = false
          first = false
          if (!this.#synced) {
            this.#synced = true
            this.#resolveSynced()
          }
        } catch (e) {
          if (signal.aborted) return
          this.#failed('list', e)
          await pause()
          continue
        }
      }
      const started = Date.now()
      const end = await this.#watch(signal)
      if (signal.aborted) return
      // A stream that delivered something worked: the next failure starts the backoff over.
      if (end.events) failures = 0
      if (end.relist) {
        this.#log('info', 'resourceVersion too old: listing again', { resource: this.name, resourceVersion: this.#rv, error: end.error ? String(end.error.message) : undefined })
        needList = true
        continue
      }
      this.stats.reconnects++
      if (end.failed) {
        this.#failed('watch', end.error!)
        await pause()
      } else if (end.events || Date.now() - started >= 1000) {
        // The server ended the stream (its timeout): watch again at once.
        failures = 0
      } else await pause() // a stream ending as soon as it began: not in a tight loop
    }
  }

  /** One watch: applies its events until it ends. */
  async #watch(signal: AbortSignal): Promise<WatchEnd> {
    let got = false
    try {
      const stream = this.#o.client.watch(this.#o.path, {
        resourceVersion: this.#rv,
        allowWatchBookmarks: true,
        timeoutSeconds: this.#timeout(),
        ...(this.#o.labelSelector ? { labelSelector: this.#o.labelSelector } : {}),
        ...(this.#o.fieldSelector ? { fieldSelector: this.#o.fieldSelector } : {}),
        signal,
      })
      for await (const ev of stream) {
        if (!got) {
          got = true
          this.#recovered('watch')
        }
        const end = this.#event(ev)
        if (end) return { ...end, events: got }
      }
      return { relist: false, failed: false, events: got }
    } catch (e) {
      if (signal.aborted) return { relist: false, failed: false }
      const err = e instanceof Error ? e : new Error(String(e))
      if (err instanceof KubeApiError && err.gone) return { relist: true, failed: false, error: err, events: got }
      return { relist: false, failed: true, error: err, events: got }
    }
  }

  /** Applies one watch event; returns how the watch ends when it must. */
  #event(ev: WatchEvent): WatchEnd | undefined {
    const obj = ev.object
    if (ev.type === 'ERROR') {
      const code = typeof obj.code === 'number' ? obj.code : 0
      const err = new KubeApiError({ status: code, ...(typeof obj.reason === 'string' ? { reason: obj.reason } : {}), message: typeof obj.message === 'string' ? obj.message : 'watch error', method: 'GET', path: this.#o.path })
      if (code === 410) return { relist: true, failed: false, error: err }
      return { relist: false, failed: true, error: err }
    }
    const rv = resourceVersionOf(obj)
    if (ev.type === 'BOOKMARK') {
      if (rv) this.#rv = rv
      this.stats.bookmarks++
      return undefined
    }
    const key = keyOf(obj)
    if (key === undefined) {
      this.#refuse(undefined, rv, new ValidationError(this.#o.kind, 'metadata.name', undefined, 'is required'))
    } else if (ev.type === 'DELETED') {
      const held = this.#held.get(key)
      this.#held.delete(key)
      if (held?.value !== undefined) this.#emit(key, held.value, undefined)
    } else this.#upsert(key, obj, rv)
    if (rv) this.#rv = rv
    return undefined
  }

  #applyList(items: Record<string, unknown>[], rv: string): void {
    const seen = new Map<string, Record<string, unknown>>()
    for (const item of items) {
      if (item.kind === undefined) item.kind = this.#o.kind
      if (item.apiVersion === undefined) item.apiVersion = this.#o.apiVersion
      const key = keyOf(item)
      if (key === undefined) {
        this.#refuse(undefined, resourceVersionOf(item), new ValidationError(this.#o.kind, 'metadata.name', undefined, 'is required'))
        continue
      }
      seen.set(key, item)
    }
    // Deletions first: objects gone from the list were deleted while no event could say so.
    for (const [key, held] of [...this.#held]) {
      if (seen.has(key)) continue
      this.#held.delete(key)
      if (held.value !== undefined) this.#emit(key, held.value, undefined)
    }
    for (const [key, item] of seen) this.#upsert(key, item, resourceVersionOf(item))
    this.#rv = rv
  }

  /** A new version of `key`: parsed and emitted, unless it is the version already held. */
  #upsert(key: string, raw: Record<string, unknown>, rv: string | undefined): void {
    const held = this.#held.get(key)
    if (held && rv !== undefined && held.rv === rv) return
    let value: T
    try {
      value = this.#o.parse(raw)
    } catch (e) {
      // A ValidationError names the field; anything else thrown by a parser refuses the object all the same.
      const error = e instanceof ValidationError ? e : e instanceof Error ? e : new Error(String(e))
      if (held) held.rv = rv ?? ''
      else this.#held.set(key, { rv: rv ?? '', value: undefined })
      this.#refuse(key, rv, error, held?.value !== undefined)
      return
    }
    for (const w of this.#o.warnings?.(value) ?? []) {
      this.stats.partial++
      this.#log('warn', 'part of an object left out; the rest applies', { resource: this.name, object: key, resourceVersion: rv, field: w.field, error: w.message })
      this.#o.onError?.({ kind: 'partial', resource: this.name, error: w, object: key, field: w.field })
    }
    const previous = held?.value
    this.#held.set(key, { rv: rv ?? '', value })
    this.#emit(key, previous, value)
  }

  #emit(key: string, previous: T | undefined, current: T | undefined): void {
    this.stats.events++
    try {
      this.#o.handler(previous, current)
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e))
      this.#log('error', 'event handler failed', { resource: this.name, object: key, error: String(error) })
      this.#o.onError?.({ kind: 'handler', resource: this.name, error, object: key })
    }
  }

  #refuse(key: string | undefined, rv: string | undefined, error: Error, keptPrevious = false): void {
    const field = error instanceof ValidationError ? error.field : undefined
    this.stats.refused++
    this.#log('error', 'object refused; skipped', {
      resource: this.name,
      object: key,
      resourceVersion: rv,
      field,
      error: error.message,
      ...(keptPrevious ? { kept: 'its last good version stays applied' } : {}),
    })
    this.#o.onError?.({ kind: 'refused', resource: this.name, error, ...(key ? { object: key } : {}), ...(field ? { field } : {}) })
  }

  #failed(kind: 'list' | 'watch', e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e))
    this.stats.errors++
    const text = `${kind}: ${error.message}`
    // The first failure of a run is a warning; the same one again, while retrying, is quieter.
    this.#log(text === this.#lastFailure ? 'debug' : 'warn', `${kind} failed; retrying`, { resource: this.name, error: error.message })
    this.#lastFailure = text
    this.#o.onError?.({ kind, resource: this.name, error })
  }

  #recovered(kind: 'list' | 'watch'): void {
    if (this.#lastFailure === '') return
    this.#log('info', `${kind} works again`, { resource: this.name, resourceVersion: this.#rv })
    this.#lastFailure = ''
    this.#o.onRecovered?.(this.name)
  }
}

/** 'namespace/name' ('name' for cluster-scoped objects), or undefined without a name. */
export function keyOf(obj: Record<string, unknown>): string | undefined {
  const m = obj.metadata
  if (!isObject(m) || typeof m.name !== 'string' || m.name === '') return undefined
  return typeof m.namespace === 'string' && m.namespace !== '' ? `${m.namespace}/${m.name}` : m.name
}

function resourceVersionOf(obj: Record<string, unknown>): string | undefined {
  const m = obj.metadata
  return isObject(m) && typeof m.resourceVersion === 'string' && m.resourceVersion !== '' ? m.resourceVersion : undefined
}
