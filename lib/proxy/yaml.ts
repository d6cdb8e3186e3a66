// YAML as Kubernetes tools read it: sigs.k8s.io/yaml over go-yaml v2, that is
// YAML 1.1 (yes/no/on/off/y/n are booleans, 0755 is octal, 1:30 is 90, << merges)
// with timestamps left as strings, duplicate keys refused. Each document comes
// back on its own, with its line, so one bad document does not hide the others.
import { LineCounter, parseAllDocuments, type Document } from 'yaml'

export interface YamlDocument {
  /** Position in the stream, from 0. */
  readonly index: number
  /** The line the document's content starts on, from 1. */
  readonly line: number
  /** The document's value (null for an empty document); present even when `error` is, as far as it could be read. */
  readonly value: unknown
  /** The first error in the document: its words and line. */
  readonly error?: { readonly message: string; readonly line: number }
}

/** Every document of a YAML stream (a JSON text is one document). */
export function yamlDocuments(text: string): YamlDocument[] {
  const lines = new LineCounter()
  const docs = parseAllDocuments(text, {
    version: '1.1',
    merge: true,
    uniqueKeys: true,
    logLevel: 'silent',
    lineCounter: lines,
    // go-yaml v2 hands timestamp-looking scalars to interface{} as strings.
    customTags: (tags) => tags.filter((t) => (typeof t === 'string' ? t !== 'timestamp' : t.tag !== 'tag:yaml.org,2002:timestamp')),
  }) as Document.Parsed[] | { empty: true }
  if (!Array.isArray(docs)) return []
  return docs.map((doc, index) => {
    // The line of the document's content, past any '---' marker and comments.
    const start = (doc.contents as { range?: [number, number, number] } | null)?.range?.[0] ?? doc.range[0]
    const line = lines.linePos(start).line
    let value: unknown = null
    let error: { message: string; line: number } | undefined
    const first = doc.errors[0]
    if (first) error = { message: first.message.split('\n')[0]!.replace(/:$/, ''), line: first.linePos?.[0].line ?? line }
    try {
      value = doc.toJS({ maxAliasCount: 100 })
    } catch (e) {
      error ??= { message: (e as Error).message, line }
      value = null
    }
    return error ? { index, line, value, error } : { index, line, value }
  })
}

/** A single-document YAML (or JSON) text; throws an Error naming the line on a syntax error or a second document. */
export function yamlValue(text: string): unknown {
  const docs = yamlDocuments(text)
  const bad = docs.find((d) => d.error)
  if (bad?.error) throw new SyntaxError(`YAML: ${bad.error.message}`)
  const real = docs.filter((d) => d.value !== null)
  if (real.length > 1) throw new SyntaxError(`YAML: expected one document, found ${real.length} (the second starts on line ${real[1]!.line})`)
  return real[0]?.value ?? null
}
