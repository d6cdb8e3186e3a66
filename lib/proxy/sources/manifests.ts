// The manifest source: Services and EndpointSlices from a file or a directory of
// YAML/JSON manifests (multi-document YAML, `kind: List`), watched. Each reload
// re-reads only the files that changed, rebuilds the desired object set, and
// feeds the difference to the change trackers as add/update/delete events.
//
// A bad document is logged, counted and skipped; the rest of the file applies.
// An object whose new version is refused keeps its last good version (as the API
// server would refuse the update), and a document that cannot be identified at
// all (a YAML syntax error) keeps every object its file held before, until the
// file reads cleanly: an edit never half-applies, and a typo never drops traffic.
//
// A source that cannot be read is not an empty one: a directory that cannot be
// listed (renamed away, EACCES, EMFILE when descriptors run out), or a file
// source that cannot be read, keeps everything it held, and so does a file of
// the directory that is listed but cannot be read (a directory in its place).
// Only a file gone from a listing that succeeded is a removal. Each failed read
// is reported (onReadError) and retried at the next poll; once the source reads
// again the real difference applies.
// A file over the size limit, or a document nested past the depth limit, is
// refused before parsing (limits.ts) the same way: as a document nobody can name.
import { Serial } from '../../serial.js'
import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { basename, dirname, extname, join, resolve } from 'node:path'
import type { ChangeSink } from '../changes.js'
import type { EndpointSlice } from '../model/endpointslice.js'
import { samePlain } from '../model/fields.js'
import type { ServiceObject } from '../model/service.js'
import type { Log } from '../types.js'
import { LimitError, MAX_MANIFEST_BYTES } from '../limits.js'
import { describe, ManifestError, readManifest, refusedManifest, type ManifestEntry, type ManifestFileState } from './manifest-file.js'

// One file's reading is part of this module's API.
export { ManifestError, readManifest, refusedManifest, type ManifestEntry, type ManifestFileState } from './manifest-file.js'


/** One JSON line per message on stderr. */
export const stderrLog: Log = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`)
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json'])

export interface ReloadResult {
  /** Files read (changed) in this reload. */
  readonly filesRead: number
  readonly added: number
  readonly updated: number
  readonly deleted: number
  /** Errors found in this reload (bad documents in the files read, new duplicates). */
  readonly errors: readonly ManifestError[]
}

export interface ManifestStats {
  files: number
  documents: number
  services: number
  endpointSlices: number
  /** Documents of other kinds (Deployments, ConfigMaps, ...), passed over. */
  ignored: number
  /** Bad documents seen since start, counted each time their file is read. */
  errorsTotal: number
  /** Parts of objects left out while the rest applies (ManifestError.partial) since start, counted each time their file is read. */
  partialTotal: number
  reloads: number
}

/** A read of the source that failed; what it held stays as it was. */
export interface SourceReadError {
  /** 'source': the directory (or the file source) itself; 'file': one file of the directory. */
  scope: 'source' | 'file'
  path: string
  /** The errno code (ENOENT, EACCES, EMFILE, ENOTDIR, EISDIR...), or ENOTFILE for a FIFO, socket or device. */
  reason: string
  message: string
}

/** What the source reads with (node:fs/promises): a seam for tests that need EMFILE on demand. */
export interface ManifestFs {
  readdir(path: string): Promise<string[]>
  stat(path: string): Promise<{ isFile(): boolean; isDirectory(): boolean; mtimeMs: number; size: number; ino: number }>
  readFile(path: string, encoding: 'utf8'): Promise<string>
}

const nodeFs: ManifestFs = { readdir: (p) => fsp.readdir(p), stat: (p) => fsp.stat(p), readFile: (p, e) => fsp.readFile(p, e) }

export interface ManifestSourceOptions {
  /** A manifest file, or a directory whose *.yaml, *.yml and *.json files are read (not recursively). */
  path: string
  /** Where events go (trackerSink(services, endpoints)). */
  sink: ChangeSink
  /** Events within this window after the first make one reload (ms; default 10). */
  debounceMs?: number
  log?: Log
  /** After each reload that fed the sink or refused something, e.g. to ask the proxier for a sync. */
  onReload?: (result: ReloadResult) => void
  /**
   * Also look for changes every this many ms (0: never), for filesystems whose
   * change notifications do not arrive (network and FUSE mounts, UML's hostfs).
   * Default 1000. A poll stats the files; it reads only those that changed.
   */
  pollMs?: number
  /** Each failed read of the source (after load(), which rejects instead) or of one of its files. */
  onReadError?: (e: SourceReadError) => void
  /** The source reads again after onReadError({ scope: 'source' }). */
  onReadable?: () => void
  fs?: ManifestFs
}

export class ManifestSource {
  readonly path: string
  readonly #sink: ChangeSink
  readonly #debounceMs: number
  readonly #log: Log
  readonly #onReload: ((r: ReloadResult) => void) | undefined
  readonly #files = new Map<string, ManifestFileState>()
  /** What the sink holds, by 'Kind/namespace/name'. */
  readonly #emitted = new Map<string, ManifestEntry>()
  /** The files defining each object, in name order (the first one's definition applies). */
  readonly #definers = new Map<string, string | string[]>()
  /** Each file's last text, by digest: a re-read that finds the same text changes nothing. */
  readonly #digests = new Map<string, string>()
  /** Definitions that lost to an earlier file, by object, as reported. */
  readonly #duplicates = new Map<string, Set<string>>()
  #isDir = false
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #pollMs: number
  #poller: NodeJS.Timeout | undefined
  /** mtime, size and inode of each file as last read: what a poll compares. */
  readonly #stamps = new Map<string, string>()
  #dirty = new Set<string>()
  #rescan = false
  readonly #serial = new Serial()
  #closed = false
  #loaded = false
  readonly #fs: ManifestFs
  readonly #onReadError: ((e: SourceReadError) => void) | undefined
  readonly #onReadable: (() => void) | undefined
  /** Set while the source cannot be read: since when, and why. */
  #unreadable: { since: Date; reason: string; message: string } | undefined
  /** Files of the directory that are listed but cannot be read, by path: their last error. */
  readonly #fileErrors = new Map<string, string>()
  /** The result of the last reload that read something. */
  lastResult: ReloadResult | undefined
  readonly stats: ManifestStats = { files: 0, documents: 0, services: 0, endpointSlices: 0, ignored: 0, errorsTotal: 0, partialTotal: 0, reloads: 0 }

  constructor(options: ManifestSourceOptions) {
    this.path = resolve(options.path)
    this.#sink = options.sink
    this.#debounceMs = options.debounceMs ?? 10
    this.#log = options.log ?? stderrLog
    this.#onReload = options.onReload
    this.#pollMs = options.pollMs ?? 1000
    this.#fs = options.fs ?? nodeFs
    this.#onReadError = options.onReadError
    this.#onReadable = options.onReadable
  }

  /** Since when and why the source cannot be read; undefined while it reads. */
  get unreadable(): { since: Date; reason: string; message: string } | undefined {
    return this.#unreadable
  }

  /**
   * Reads everything once and feeds the sink; rejects, feeding nothing, if the
   * path cannot be read (the directory listed, or the file read).
   */
  async load(): Promise<ReloadResult> {
    const st = await this.#fs.stat(this.path)
    this.#isDir = st.isDirectory()
    if (!this.#isDir && !st.isFile()) throw new Error(`${this.path}: neither a file nor a directory`)
    const r = await this.#enqueue(() => this.#reload(null))
    this.#loaded = true
    return r
  }

  /** Starts watching (after load()); changes are applied after the debounce window. */
  watch(): void {
    if (this.#watcher || this.#closed) return
    this.#startWatcher()
    if (this.#pollMs > 0) {
      this.#poller = setInterval(() => void this.#poll(), this.#pollMs)
      this.#poller.unref()
    }
  }

  #startWatcher(): void {
    const dir = this.#isDir ? this.path : dirname(this.path)
    const only = this.#isDir ? undefined : basename(this.path)
    // A directory watch also sees editors that write a new file and rename it over the old one.
    this.#watcher = watch(dir, { persistent: true }, (_event, filename) => {
      const name = filename?.toString()
      if (name === undefined) this.#rescan = true
      else if (name.startsWith('..')) {
        // A ConfigMap volume: the kubelet swaps the ..data symlink; every file may have changed.
        if (only === undefined) this.#rescan = true
        else this.#dirty.add(this.path)
      } else {
        if (only !== undefined ? name !== only : !relevant(name)) return
        this.#dirty.add(join(dir, name))
      }
      this.#schedule()
    })
    this.#watcher.on('error', (e) => this.#log('error', 'manifest watch failed', { path: this.path, error: String(e) }))
  }

  /** Marks files whose stamp changed, and asks for a rescan when files came or went. */
  async #poll(): Promise<void> {
    if (this.#closed) return
    // Unreadable: try again (the reload reports the error, or the recovery).
    if (this.#unreadable) {
      this.#rescan = true
      return this.#schedule()
    }
    let files: string[]
    try {
      files = this.#isDir ? (await this.#fs.readdir(this.path)).filter(relevant).map((n) => join(this.path, n)) : [this.path]
    } catch {
      this.#rescan = true
      return this.#schedule()
    }
    let found = false
    // Files that failed to read have no stamp; they are retried, not rescanned for.
    const known = this.#stamps.size + [...this.#fileErrors.keys()].filter((f) => !this.#stamps.has(f)).length
    if (files.length !== known || files.some((f) => !this.#stamps.has(f) && !this.#fileErrors.has(f))) {
      this.#rescan = true
      found = true
    }
    for (const f of files) {
      if (this.#fileErrors.has(f)) {
        this.#dirty.add(f)
        found = true
      }
      const was = this.#stamps.get(f)
      if (was === undefined) continue
      const now = await this.#fs.stat(f).then(stampOf, () => '')
      if (now !== was) {
        this.#dirty.add(f)
        found = true
      }
    }
    if (found) this.#schedule()
  }

  /**
   * Applies pending file changes now instead of after the debounce window (tests,
   * shutdown). `files` are re-read as if the watcher had reported them: for
   * callers that know what they wrote. Without them, the file stamps are
   * compared first: a change notification may still be on its way.
   */
  async flush(files?: Iterable<string>): Promise<ReloadResult | undefined> {
    if (files === undefined) await this.#poll()
    for (const f of files ?? []) {
      const file = resolve(f)
      if (this.#isDir ? dirname(file) === this.path && relevant(basename(file)) : file === this.path) this.#dirty.add(file)
    }
    if (this.#timer) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    return this.#enqueue(() => this.#reloadPending())
  }

  /** Stops watching; what was applied stays applied. */
  async close(): Promise<void> {
    this.#closed = true
    this.#watcher?.close()
    this.#watcher = undefined
    clearInterval(this.#poller)
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#serial.idle()
  }

  /** The refusals of the files as they are now. */
  get errors(): ManifestError[] {
    return [...this.#files.values()].flatMap((f) => f.errors)
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#enqueue(() => this.#reloadPending()).catch((e) => this.#log('error', 'manifest reload failed', { path: this.path, error: String(e) }))
    }, this.#debounceMs)
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    return this.#serial.run(fn)
  }

  async #reloadPending(): Promise<ReloadResult | undefined> {
    if (!this.#rescan && this.#dirty.size === 0) return undefined
    const which = this.#rescan ? null : this.#dirty
    this.#dirty = new Set()
    this.#rescan = false
    return this.#reload(which)
  }

  /** Re-reads `changed` files (null: every file) and feeds the sink the difference. */
  async #reload(changed: Set<string> | null): Promise<ReloadResult> {
    const errors: ManifestError[] = []
    // Objects whose winning definition may have changed: those the re-read and removed files defined, before and after.
    const affected = new Set<string>()
    const forget = (file: string): boolean => {
      const old = this.#files.get(file)
      if (!old) return false
      this.#files.delete(file)
      for (const key of old.objects.keys()) {
        affected.add(key)
        const files = this.#definers.get(key)
        if (files === file) this.#definers.delete(key)
        else if (Array.isArray(files)) {
          const at = files.indexOf(file)
          if (at >= 0) files.splice(at, 1)
          if (files.length === 1) this.#definers.set(key, files[0]!)
        }
      }
      return true
    }
    let candidates: string[]
    let filesGone = 0
    if (!this.#isDir) candidates = [this.path]
    else {
      // The listing decides what was removed; without one, nothing was.
      let present: Set<string>
      try {
        present = new Set((await this.#fs.readdir(this.path)).filter(relevant).map((n) => join(this.path, n)))
      } catch (e) {
        return this.#sourceFailed(e)
      }
      for (const f of [...this.#files.keys()]) {
        if (present.has(f) || !forget(f)) continue
        filesGone++
        this.#log('info', 'manifest file removed', { file: f })
      }
      for (const f of this.#stamps.keys()) if (!present.has(f)) this.#stamps.delete(f)
      for (const f of this.#fileErrors.keys()) if (!present.has(f)) this.#fileErrors.delete(f)
      candidates = changed === null ? [...present] : [...changed].filter((f) => present.has(f))
    }
    if (this.#unreadable && this.#isDir) this.#readable()

    let filesRead = 0
    for (const file of candidates) {
      let text = ''
      let big = 0 // the size of a file too big to read; its stamp stands in for its digest
      try {
        const st = await this.#fs.stat(file)
        if (!st.isFile()) throw Object.assign(new Error(st.isDirectory() ? 'a directory, not a file' : 'not a regular file'), { code: st.isDirectory() ? 'EISDIR' : 'ENOTFILE' })
        // Too big to read: refused by its stamp, without reading it.
        if (st.size > MAX_MANIFEST_BYTES) big = st.size
        else text = await this.#fs.readFile(file, 'utf8')
        this.#stamps.set(file, stampOf(st))
      } catch (e) {
        this.#stamps.delete(file)
        // The file source itself, or a file the listing has: kept as it was, retried at the next poll.
        if (!this.#isDir) return this.#sourceFailed(e)
        this.#fileFailed(file, e)
        continue
      }
      if (this.#unreadable) this.#readable()
      if (this.#fileErrors.delete(file)) this.#log('info', 'manifest file reads again', { file })
      const old = this.#files.get(file)
      const digest = big > 0 ? `too big: ${this.#stamps.get(file)}` : digestOf(text)
      if (old && this.#digests.get(file) === digest) continue
      filesRead++
      const state = big > 0 ? refusedManifest(file, new LimitError({ file, line: 1, limit: 'bytes', max: MAX_MANIFEST_BYTES, found: big }), old) : readManifest(file, text, old)
      state.text = '' // what the file held is known by its digest; the text itself is not kept
      // An object the re-read did not change keeps its one parsed copy (the trackers hold it
      // too): without this, each rewrite of a file would leave a second copy of its other objects.
      for (const entry of state.objects.values()) {
        const prev = this.#emitted.get(entry.key) ?? old?.objects.get(entry.key)
        if (prev && prev.kind === entry.kind && prev.value !== entry.value && samePlain(prev.value, entry.value)) (entry as { value: unknown }).value = prev.value
      }
      forget(file)
      this.#files.set(file, state)
      this.#digests.set(file, digest)
      for (const key of state.objects.keys()) {
        affected.add(key)
        const had = this.#definers.get(key)
        if (had === undefined) this.#definers.set(key, file)
        else {
          const files = typeof had === 'string' ? [had] : had
          if (files !== had) this.#definers.set(key, files)
          // Kept in name order: the first file defining an object wins.
          let i = files.length
          while (i > 0 && files[i - 1]! > file) i--
          files.splice(i, 0, file)
        }
      }
      for (const err of state.errors) {
        errors.push(err)
        if (err.partial) this.stats.partialTotal++
        else this.stats.errorsTotal++
        this.#log(err.partial ? 'warn' : 'error', err.partial ? 'manifest object partly applied' : 'manifest document refused', { file: err.file, line: err.line, document: err.document, object: err.object, field: err.field, error: err.message })
      }
    }
    for (const f of this.#digests.keys()) if (!this.#files.has(f)) this.#digests.delete(f)

    // Events that changed no file's text (an editor touching a file) change nothing.
    if (changed !== null && filesRead === 0 && filesGone === 0) return { filesRead: 0, added: 0, updated: 0, deleted: 0, errors: [] }

    // The affected objects' definitions: files in name order, the first definition of an object wins.
    const keys = [...affected].sort()
    const duplicateErrors: ManifestError[] = []
    for (const key of keys) {
      const files = definersOf(this.#definers.get(key))
      const was = this.#duplicates.get(key)
      let now: Set<string> | undefined
      for (const file of files.slice(1)) {
        const entry = this.#files.get(file)!.objects.get(key)!
        const d = `${key} in ${file} (first defined in ${files[0]})`
        ;(now ??= new Set()).add(d)
        if (was?.has(d)) continue
        duplicateErrors.push(new ManifestError({ file, document: entry.document, line: entry.line, object: describe(key), reason: `${key} is defined again; the definition in ${files[0]} applies` }))
        this.#log('error', 'manifest object defined twice', { file, object: key, first: files[0] })
      }
      if (now) this.#duplicates.set(key, now)
      else this.#duplicates.delete(key)
    }
    duplicateErrors.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.document - b.document))
    for (const err of duplicateErrors) {
      errors.push(err)
      this.stats.errorsTotal++
    }

    // The difference, fed to the sink in key order: deletions first.
    let added = 0
    let updated = 0
    let deleted = 0
    const winner = (key: string): ManifestEntry | undefined => {
      const first = definersOf(this.#definers.get(key))[0]
      return first === undefined ? undefined : this.#files.get(first)!.objects.get(key)
    }
    for (const key of keys) {
      const was = this.#emitted.get(key)
      if (!was || winner(key)) continue
      this.#feed(was, undefined)
      this.#emitted.delete(key)
      this.#count(was, -1)
      deleted++
    }
    for (const key of keys) {
      const entry = winner(key)
      if (!entry) continue
      const was = this.#emitted.get(key)
      if (was && samePlain(was.value, entry.value)) {
        // Unchanged: nothing to feed, but the entry of the file as read now is the one kept (the old one goes).
        if (was !== entry) this.#emitted.set(key, entry)
        continue
      }
      this.#feed(was, entry)
      this.#emitted.set(key, entry)
      if (was) {
        this.#count(was, -1)
        updated++
      } else added++
      this.#count(entry, 1)
    }

    let documents = 0
    let ignored = 0
    for (const f of this.#files.values()) {
      documents += f.documents
      ignored += f.ignored
    }
    Object.assign(this.stats, { files: this.#files.size, documents, ignored })
    this.stats.reloads++
    const result: ReloadResult = { filesRead, added, updated, deleted, errors }
    this.lastResult = result
    if (added + updated + deleted > 0 || errors.length > 0)
      this.#log('info', 'manifests reloaded', { path: this.path, filesRead, added, updated, deleted, errors: errors.length })
    if (added + updated + deleted > 0 || errors.length > 0) this.#onReload?.(result)
    return result
  }

  /** The source cannot be read: nothing changes, the next poll tries again. Before load() completes, rejects. */
  #sourceFailed(e: unknown): ReloadResult {
    if (!this.#loaded) throw e
    this.#rescan = true
    const reason = codeOf(e)
    const message = e instanceof Error ? e.message : String(e)
    if (this.#unreadable?.reason !== reason)
      this.#log('warn', 'cannot read the manifest source; every object it held stays as it was until it reads again', { path: this.path, error: message })
    this.#unreadable = { since: this.#unreadable?.since ?? new Date(), reason, message }
    this.#onReadError?.({ scope: 'source', path: this.path, reason, message })
    return { filesRead: 0, added: 0, updated: 0, deleted: 0, errors: [] }
  }

  #readable(): void {
    const was = this.#unreadable!
    this.#unreadable = undefined
    this.#log('info', 'the manifest source reads again', { path: this.path, unreadableMs: Date.now() - was.since.getTime() })
    // The directory there now may not be the one watched before (renamed away and back, replaced).
    if (this.#watcher) {
      this.#watcher.close()
      try {
        this.#startWatcher()
      } catch (e) {
        this.#watcher = undefined
        this.#log('warn', 'cannot watch the manifest source again; polling only', { path: this.path, error: String(e) })
      }
    }
    this.#onReadable?.()
  }

  #fileFailed(file: string, e: unknown): void {
    const reason = codeOf(e)
    const message = e instanceof Error ? e.message : String(e)
    if (this.#fileErrors.get(file) !== reason) this.#log('warn', 'cannot read a manifest file; its objects stay as they were', { file, error: message })
    this.#fileErrors.set(file, reason)
    this.#onReadError?.({ scope: 'file', path: file, reason, message })
  }

  #count(entry: ManifestEntry, by: number): void {
    if (entry.kind === 'Service') this.stats.services += by
    else this.stats.endpointSlices += by
  }

  #feed(previous: ManifestEntry | undefined, current: ManifestEntry | undefined): void {
    const kind = (previous ?? current)!.kind
    if (kind === 'Service') this.#sink.service(previous?.value as ServiceObject | undefined, current?.value as ServiceObject | undefined)
    else this.#sink.endpointSlice(previous?.value as EndpointSlice | undefined, current?.value as EndpointSlice | undefined)
  }
}

/** The files defining an object, in name order: kept as one string when there is one (nearly always). */
function definersOf(v: string | string[] | undefined): readonly string[] {
  return v === undefined ? NO_FILES : typeof v === 'string' ? [v] : v
}

const NO_FILES: readonly string[] = Object.freeze([])

function relevant(name: string): boolean {
  return !name.startsWith('.') && EXTENSIONS.has(extname(name).toLowerCase())
}

function codeOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && code !== '' ? code : 'EUNKNOWN'
}

function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('base64')
}

function stampOf(st: { mtimeMs: number; size: number; ino: number }): string {
  return `${st.mtimeMs}:${st.size}:${st.ino}`
}
