// Size and nesting limits checked before a YAML or JSON parser sees a text
// (the YAML scan is yaml-scan.ts; JSON's depth is a bracket count, here).
//
// Why these numbers: Kubernetes objects nest fewer than 30 levels; 128 leaves
// room for deep CRD schemas sharing a directory, far below the ~800 where the
// parser fails. benchmarks/proxy-ipvs writes 100 Services with their
// 10-endpoint EndpointSlices per file, ~160 kB of JSON: a whole 30k-service
// cluster in one List would be ~50 MB.

/** Nesting levels a document may have (collections in collections). */
export const MAX_DEPTH = 128
/** Bytes a manifest file may have. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024
/** Bytes of a --config file or a kubeconfig (a few kB in practice, certificates included). */
export const MAX_CONFIG_BYTES = 1024 * 1024
/** Bytes of one watch event line from the API server (its objects are at most ~1.5 MB, etcd's limit). */
export const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024

/** A text (or one document of it) refused before parsing: too big or nested too deep. */
export class LimitError extends Error {
  override name = 'LimitError'
  readonly code = 'ERR_TSPROXY_LIMIT'
  /** The file (or 'config', a URL path): what the text came from. */
  readonly file: string
  /** The document's position in the file, from 0 (undefined: the whole file). */
  readonly document?: number
  /** The line where the limit was passed, from 1. */
  readonly line: number
  readonly limit: 'bytes' | 'depth'
  /** The limit's value. */
  readonly max: number
  /** What is wrong, without the place: 'nests deeper than the limit of 128 levels; refused before parsing'. */
  readonly reason: string
  /** For 'bytes': the size found. */
  readonly found?: number

  constructor(init: { file: string; document?: number; line: number; limit: 'bytes' | 'depth'; max: number; found?: number }) {
    const what =
      init.limit === 'bytes'
        ? `is larger than the limit of ${init.max} bytes${init.found === undefined ? '' : ` (${init.found})`}`
        : `nests deeper than the limit of ${init.max} levels`
    const reason = `${what}; refused before parsing`
    super(`${init.file}:${init.line}${init.document === undefined ? '' : ` (document ${init.document})`}: ${init.document === undefined ? 'the file' : 'the document'} ${reason}`)
    this.reason = reason
    this.file = init.file
    if (init.document !== undefined) this.document = init.document
    this.line = init.line
    this.limit = init.limit
    this.max = init.max
    if (init.found !== undefined) this.found = init.found
  }

  /** The same refusal for another file or document. */
  at(file: string, document?: number): LimitError {
    return new LimitError({ file, ...(document !== undefined ? { document } : {}), line: this.line, limit: this.limit, max: this.max, ...(this.found !== undefined ? { found: this.found } : {}) })
  }
}

/** The nesting depth of a JSON text, up to maxDepth + 1, and the line where it passed maxDepth (0 if it did not). */
export function jsonDepth(text: string, maxDepth = MAX_DEPTH): { depth: number; line: number } {
  let depth = 0
  let max = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 91 || c === 123) {
      if (++depth > max) max = depth
      if (depth > maxDepth) {
        let line = 1
        for (let j = text.indexOf('\n'); j >= 0 && j < i; j = text.indexOf('\n', j + 1)) line++
        return { depth, line }
      }
    } else if (c === 93 || c === 125) depth--
    else if (c === 34) {
      // A string: to the closing quote, past escapes.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === 92) i++
        else if (d === 34) break
      }
    }
  }
  return { depth: max, line: 0 }
}

/** Throws a LimitError when `text` has more than `maxBytes` (UTF-16 units; at most its UTF-8 bytes). */
export function checkSize(text: string, file: string, maxBytes: number): void {
  if (text.length > maxBytes) throw new LimitError({ file, line: 1, limit: 'bytes', max: maxBytes, found: text.length })
}
