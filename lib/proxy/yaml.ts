// YAML as Kubernetes tools read it: sigs.k8s.io/yaml over go-yaml v2, that is
// YAML 1.1 (yes/no/on/off/y/n are booleans, 0755 is octal, 1:30 is 90, << merges)
// with timestamps left as strings, duplicate keys refused. Each document comes
// back on its own, with its line, so one bad document does not hide the others.
// A document nested deeper than the limit never reaches the parser (yaml-scan.ts);
// what the quick scan cannot see (nesting the parser makes up while recovering
// from a syntax error) is caught on the parser's token tree, which is built
// without recursion, before the recursive composer runs.
import { Composer, CST, LineCounter, Parser, type Document } from 'yaml'
import { LimitError, MAX_DEPTH } from './limits.js'
import { yamlSegments } from './yaml-scan.js'

export interface YamlDocument {
  /** Position in the stream, from 0. */
  readonly index: number
  /** The line the document's content starts on, from 1. */
  readonly line: number
  /** The document's value (null for an empty document); present even when `error` is, as far as it could be read. */
  readonly value: unknown
  /** The first error in the document: its words and line. */
  readonly error?: { readonly message: string; readonly line: number }
  /** Set when the document was refused before parsing (then `value` is null and `error` says why). */
  readonly limit?: LimitError
}

export interface YamlOptions {
  /** What the text is, for errors: a file name. */
  source?: string
  /** Nesting levels allowed (MAX_DEPTH). */
  maxDepth?: number
}

/** Every document of a YAML stream (a JSON text is one document). */
export function yamlDocuments(text: string, options: YamlOptions = {}): YamlDocument[] {
  const maxDepth = options.maxDepth ?? MAX_DEPTH
  const deep = yamlSegments(text, maxDepth).filter((s) => s.depth > maxDepth)
  // Each refused document is blanked to a null ('~') in place: the others keep their offsets, lines and indices.
  let source = text
  if (deep.length > 0) {
    const parts: string[] = []
    let at = 0
    for (const s of deep) {
      parts.push(text.slice(at, s.content), '~', blank(text, s.content + 1, s.end))
      at = s.end
    }
    parts.push(text.slice(at))
    source = parts.join('')
  }
  const lines = new LineCounter()
  const composer = new Composer({
    version: '1.1',
    merge: true,
    uniqueKeys: true,
    logLevel: 'silent',
    // go-yaml v2 hands timestamp-looking scalars to interface{} as strings.
    customTags: (tags) => tags.filter((t) => (typeof t === 'string' ? t !== 'timestamp' : t.tag !== 'tag:yaml.org,2002:timestamp')),
  })
  const docs: Document.Parsed[] = []
  /** Offsets of the documents the token tree shows too deep, and the line of their content. */
  const tooDeep = new Map<number, number>()
  for (const token of new Parser(lines.addNewLine).parse(source)) {
    if (token.type === 'document' && token.value && tokenDepth(token.value, maxDepth) > maxDepth) {
      const at = 'offset' in token.value ? token.value.offset : token.offset
      tooDeep.set(token.offset, lines.linePos(at).line)
      token.value = CST.createScalarToken('~', { indent: 0, offset: at, end: [] })
    }
    for (const doc of composer.next(token)) docs.push(doc as Document.Parsed)
  }
  for (const doc of composer.end()) docs.push(doc as Document.Parsed)
  for (const doc of docs) for (const e of doc.errors) prettify(e, lines)
  const refused = new Map<number, LimitError>()
  // The document holding each blanked segment's '~' (both in text order).
  let index = 0
  for (const s of deep) {
    while (index < docs.length && docs[index]!.range[2] <= s.content && docs[index]!.range[0] !== s.content) index++
    if (index < docs.length) refused.set(index, new LimitError({ file: options.source ?? 'YAML', document: index, line: s.deepLine, limit: 'depth', max: maxDepth }))
  }
  docs.forEach((d, index) => {
    const line = tooDeep.get(d.range[0])
    if (line !== undefined && !refused.has(index)) refused.set(index, new LimitError({ file: options.source ?? 'YAML', document: index, line, limit: 'depth', max: maxDepth }))
  })
  return docs.map((doc, index): YamlDocument => {
    const limit = refused.get(index)
    if (limit) return { index, line: limit.line, value: null, error: { message: limit.reason, line: limit.line }, limit }
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

/** The nesting depth of a token tree (collections in collections), up to max + 1; no recursion. */
function tokenDepth(root: CST.Token, max: number): number {
  let deepest = 0
  const stack: [unknown, number][] = [[root, 0]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (typeof node !== 'object' || node === null) continue
    if (Array.isArray(node)) {
      for (const n of node) stack.push([n, depth])
      continue
    }
    const t = node as { type?: string; items?: CST.CollectionItem[]; key?: unknown; value?: unknown; sep?: unknown; start?: unknown }
    let d = depth
    if (t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection') {
      d = depth + 1
      if (d > deepest) deepest = d
      if (deepest > max) return deepest
    }
    if (t.type === 'flow-collection' && (t.start as CST.SourceToken).source === '[') {
      // An item of a flow sequence that is a pair ('[a: b]', '[? a]') composes as a map of its own: one level more.
      for (const item of t.items!) {
        const pair = item.key != null || (item.sep?.length ?? 0) > 0 || item.start.some((s) => s.type === 'explicit-key-ind' || s.type === 'map-value-ind')
        if (pair && d + 1 > deepest) deepest = d + 1
        if (deepest > max) return deepest
        stack.push([item, pair ? d + 1 : d])
      }
      continue
    }
    for (const child of [t.items, t.key, t.value, t.sep, t.start]) if (typeof child === 'object' && child !== null) stack.push([child, d])
  }
  return deepest
}

/** An error's place, as parseAllDocuments's prettyErrors gives it: linePos, and ' at line L, column C' on its words. */
function prettify(error: { pos: [number, number]; linePos?: unknown; message: string }, lines: LineCounter): void {
  if (error.pos[0] === -1) return
  const pos = error.pos.map((p) => lines.linePos(p))
  error.linePos = pos
  error.message += ` at line ${pos[0]!.line}, column ${pos[0]!.col}`
}

/** `text` from `from` to `to` with everything but line ends turned to spaces. */
function blank(text: string, from: number, to: number): string {
  const out: string[] = []
  for (let i = from; i < to; ) {
    const nl = text.indexOf('\n', i)
    const stop = nl < 0 || nl >= to ? to : nl
    out.push(' '.repeat(stop - i))
    if (stop < to) out.push('\n')
    i = stop + 1
  }
  return out.join('')
}

/**
 * A single-document YAML (or JSON) text; throws an Error naming the line on a
 * syntax error or a second document, a LimitError on a document nested too deep.
 */
export function yamlValue(text: string, options: YamlOptions = {}): unknown {
  const docs = yamlDocuments(text, options)
  const refused = docs.find((d) => d.limit)
  if (refused?.limit) throw refused.limit
  const bad = docs.find((d) => d.error)
  if (bad?.error) throw new SyntaxError(`YAML: ${bad.error.message}`)
  const real = docs.filter((d) => d.value !== null)
  if (real.length > 1) throw new SyntaxError(`YAML: expected one document, found ${real.length} (the second starts on line ${real[1]!.line})`)
  return real[0]?.value ?? null
}
