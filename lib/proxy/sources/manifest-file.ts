// One manifest file read into objects: its documents (multi-document YAML, JSON,
// `kind: List`) parsed past the size and depth limits, each Service and
// EndpointSlice validated, a refused document reported with its file, index and
// line. `old`, the file's previous state, stands in for what cannot be read now:
// a refused object keeps its last good version, and a document nobody can name
// keeps every object the file held.
import { extname } from 'node:path'
import { ValidationError } from '../../errors.js'
import { jsonDepth, LimitError, MAX_DEPTH, MAX_MANIFEST_BYTES } from '../limits.js'
import { parseEndpointSlice, type EndpointSlice } from '../model/endpointslice.js'
import { isObject } from '../model/fields.js'
import { parseService, type ServiceObject } from '../model/service.js'
import { yamlDocuments } from '../yaml.js'

/** A document (or List item) that was refused, or (`partial`) a part of an object left out while the rest applies. */
export class ManifestError extends Error {
  override name = 'ManifestError'
  readonly file: string
  /** The document's position in the file, from 0. */
  readonly document: number
  /** The line of the error (or of the document), from 1. */
  readonly line: number
  /** 'Service default/web' when the object could be identified. */
  readonly object?: string
  /** The field, for a ValidationError ('spec.ports[1].port'). */
  readonly field?: string
  /** True when the object's last good version is still applied. */
  readonly keptPrevious: boolean
  /** True when only `field` was left out (a bad endpoint) and the rest of this version applies. */
  /** Set (true) when only a part of the object was left out. */
  readonly partial?: true

  constructor(init: { file: string; document: number; line: number; reason: string; object?: string; field?: string; keptPrevious?: boolean; partial?: boolean; cause?: unknown }) {
    const note = init.partial ? ' (left out; the rest of the object applies)' : init.keptPrevious ? ' (its last good version stays applied)' : ''
    super(`${init.file}:${init.line} (document ${init.document}): ${init.reason}${note}`, { cause: init.cause })
    this.file = init.file
    this.document = init.document
    this.line = init.line
    if (init.object) this.object = init.object
    if (init.field) this.field = init.field
    this.keptPrevious = init.keptPrevious ?? false
    if (init.partial) this.partial = true
  }
}

/** An object a manifest defines, keyed 'Kind/namespace/name'. */
export type ManifestEntry = ({ kind: 'Service'; value: ServiceObject } | { kind: 'EndpointSlice'; value: EndpointSlice }) & {
  key: string
  /** Where it is defined: the document's index and line. */
  document: number
  line: number
}

export interface ManifestFileState {
  /** The text read (readManifest); a ManifestSource keeps only its digest and leaves this ''. */
  text: string
  objects: Map<string, ManifestEntry>
  errors: ManifestError[]
  documents: number
  ignored: number
}

/** 'Service/default/web' -> 'Service default/web'. */
export function describe(key: string): string {
  const i = key.indexOf('/')
  return `${key.slice(0, i)} ${key.slice(i + 1)}`
}

/** 'Service/default/web' from a raw object, when it says enough; else undefined. */
function identity(value: unknown): string | undefined {
  if (!isObject(value) || (value.kind !== 'Service' && value.kind !== 'EndpointSlice')) return undefined
  const m = value.metadata
  if (!isObject(m) || typeof m.name !== 'string' || m.name === '') return undefined
  const ns = typeof m.namespace === 'string' && m.namespace !== '' ? m.namespace : 'default'
  return `${value.kind}/${ns}/${m.name}`
}

/** The state of a file refused whole (`error` says why): everything it defined before stays. */
export function refusedManifest(file: string, error: LimitError, old?: ManifestFileState): ManifestFileState {
  return {
    text: '',
    objects: new Map(old?.objects ?? []),
    errors: [new ManifestError({ file, document: error.document ?? 0, line: error.line, reason: error.reason, cause: error })],
    documents: 0,
    ignored: 0,
  }
}

/**
 * Reads one file's documents into objects; `old` is its previous state, whose
 * objects stand in for documents refused now.
 */
export function readManifest(file: string, text: string, old?: ManifestFileState): ManifestFileState {
  if (text.length > MAX_MANIFEST_BYTES) return refusedManifest(file, new LimitError({ file, line: 1, limit: 'bytes', max: MAX_MANIFEST_BYTES, found: text.length }), old)
  const state: ManifestFileState = { text, objects: new Map(), errors: [], documents: 0, ignored: 0 }
  const docs: { index: number; line: number; value: unknown; error?: { message: string; line: number }; limit?: LimitError }[] = []
  if (extname(file).toLowerCase() === '.json') {
    const deep = jsonDepth(text, MAX_DEPTH)
    if (deep.line > 0) {
      const limit = new LimitError({ file, document: 0, line: deep.line, limit: 'depth', max: MAX_DEPTH })
      docs.push({ index: 0, line: deep.line, value: null, error: { message: limit.reason, line: deep.line }, limit })
    } else {
      try {
        docs.push({ index: 0, line: 1, value: JSON.parse(text) })
      } catch (e) {
        const at = /position (\d+)/.exec((e as Error).message)
        const line = at ? text.slice(0, Number(at[1])).split('\n').length : 1
        docs.push({ index: 0, line, value: null, error: { message: `JSON: ${(e as Error).message}`, line } })
      }
    }
  } else docs.push(...yamlDocuments(text, { source: file }))

  let unidentified = false
  const kept = new Set<string>()
  const refuse = (doc: { index: number; line: number }, reason: string, key: string | undefined, cause?: unknown, field?: string, line = doc.line): void => {
    const keep = key !== undefined && old?.objects.has(key) === true && !state.objects.has(key)
    if (keep) {
      state.objects.set(key, old!.objects.get(key)!)
      kept.add(key)
    }
    if (key === undefined) unidentified = true
    state.errors.push(new ManifestError({ file, document: doc.index, line, reason, object: key === undefined ? undefined : describe(key), field, keptPrevious: keep, cause }))
  }
  const one = (doc: { index: number; line: number }, value: unknown, where: string): void => {
    if (!isObject(value)) return refuse(doc, `${where}is not an object (got ${value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value})`, undefined)
    if (value.kind !== 'Service' && value.kind !== 'EndpointSlice') {
      if (typeof value.kind !== 'string' || value.kind === '') return refuse(doc, `${where}has no kind`, undefined)
      state.ignored++
      return
    }
    const key = identity(value)
    try {
      // Literals, not spreads: a spread puts the fields out of the object (an extra store per entry).
      const entry: ManifestEntry =
        value.kind === 'Service'
          ? { kind: 'Service', value: parseService(value), key: '', document: doc.index, line: doc.line }
          : { kind: 'EndpointSlice', value: parseEndpointSlice(value), key: '', document: doc.index, line: doc.line }
      entry.key = `${entry.kind}/${entry.value.metadata.namespace}/${entry.value.metadata.name}`
      if (state.objects.has(entry.key) && !kept.has(entry.key)) return refuse(doc, `${where}${entry.key} is defined twice in this file; the first definition applies`, entry.key)
      kept.delete(entry.key)
      state.objects.set(entry.key, entry)
      if (entry.kind === 'EndpointSlice')
        for (const w of entry.value.warnings ?? [])
          state.errors.push(new ManifestError({ file, document: doc.index, line: doc.line, reason: `${where}${w.message}`, object: describe(entry.key), field: w.field, partial: true, cause: w }))
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e
      refuse(doc, `${where}${e.message}`, key, e, e.field)
    }
  }

  for (const doc of docs) {
    if (doc.limit) {
      refuse(doc, doc.limit.reason, undefined, doc.limit, undefined, doc.limit.line)
      continue
    }
    if (doc.error) {
      refuse(doc, `YAML: ${doc.error.message}`, identity(doc.value), undefined, undefined, doc.error.line)
      continue
    }
    if (doc.value === null || doc.value === undefined) continue
    state.documents++
    const v = doc.value
    if (isObject(v) && typeof v.kind === 'string' && v.kind.endsWith('List') && 'items' in v) {
      if (!Array.isArray(v.items)) {
        refuse(doc, `${v.kind}: items must be a list`, undefined)
        continue
      }
      v.items.forEach((item, i) => one(doc, item, `items[${i}]: `))
      continue
    }
    one(doc, v, '')
  }
  // A document nobody can name may have been any of the file's objects: keep them all.
  if (unidentified && old) for (const [key, entry] of old.objects) if (!state.objects.has(key)) state.objects.set(key, entry)
  return state
}
