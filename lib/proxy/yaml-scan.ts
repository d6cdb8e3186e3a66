// The nesting depth of a YAML stream, measured before the `yaml` package sees
// it. That package composes documents recursively: some 800 nested levels
// overflow the stack, and on Node 20 a later parse can then abort the whole
// process (a V8 RegExpCompiler out-of-memory), which no catch can stop. So the
// nesting is measured first, by a linear scan that follows YAML's token rules
// far enough to tell structure (flow brackets, block indentation and indicators)
// from text (quoted, plain and block scalars, comments), without regexps.
import { MAX_DEPTH } from './limits.js'

/** A part of a YAML stream between document marker lines, measured. */
export interface YamlSegment {
  /** Offsets in the text: the segment is text.slice(start, end). */
  readonly start: number
  readonly end: number
  /** The line `start` is on, from 1. */
  readonly line: number
  /** Offset of its first content (not space, comment, directive); -1 if none. */
  readonly content: number
  /** Its nesting depth, or maxDepth + 1 when it passes maxDepth (scanning stops there). */
  readonly depth: number
  /** The line where the depth passed maxDepth. */
  readonly deepLine: number
}

const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10 || Number.isNaN(c)
const isFlowIndicator = (c: number): boolean => c === 44 || c === 91 || c === 93 || c === 123 || c === 125 // , [ ] { }
const SP = 32
const TAB = 9
const CR = 13

/** True when a document marker ('---' or '...' then a blank or the end) starts at `i`, the start of a line. */
function markerAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i)
  if (c !== 45 && c !== 46) return false
  return text.charCodeAt(i + 1) === c && text.charCodeAt(i + 2) === c && isBlank(text.charCodeAt(i + 3))
}

/**
 * The stream's segments: a document marker line at column 0 ends whatever
 * construct is open (the YAML spec forbids one inside any scalar), so the
 * documents are split on those lines before anything else is looked at.
 */
export function yamlSegments(text: string, maxDepth = MAX_DEPTH): YamlSegment[] {
  const out: YamlSegment[] = []
  let start = 0
  let line = 1
  let startLine = 1
  let i = 0
  const push = (end: number): void => {
    out.push({ start, end, line: startLine, ...measureYaml(text, start, end, startLine, maxDepth) })
  }
  if (markerAt(text, 0)) start = 3 // nothing before the first marker
  while (i < text.length) {
    if (i !== 0 && markerAt(text, i)) {
      push(i)
      start = i + 3
      startLine = line
    }
    const nl = text.indexOf('\n', i)
    if (nl < 0) break
    i = nl + 1
    line++
  }
  push(text.length)
  return out
}

/**
 * The nesting depth of one YAML document (text.slice(start, end)), and where
 * it passed maxDepth. A block level counts at each indentation step and each
 * '- ', '? ' or ': ' indicator; a flow level at each '[' or '{' that opens a
 * collection. It counts a scalar line as a level too: for well-formed YAML a
 * bound, a little above the true depth. Where a syntax error makes the parser
 * nest more than the text shows, it follows the parser as far as known (keys
 * on continuation lines, 'a: b: c', a stray '{'); yaml.ts checks the parser's
 * token tree as well, so what this misses is still refused before composing.
 */
function measureYaml(text: string, start: number, end: number, firstLine: number, maxDepth: number): { content: number; depth: number; deepLine: number } {
  // Block levels open on this path: columns, and whether each is a '- ' entry.
  const cols: number[] = []
  const seqs: boolean[] = []
  let depth = 0
  let deepLine = 0
  let content = -1
  let line = firstLine
  let i = start
  if (text.charCodeAt(i) === 0xfeff) i++
  // The indentation continuation lines of the current node need (the lexer's "indent next").
  let indentNext = 0
  let atMarkerLine = start > 0 // the rest of a '---' line: a node, no block level
  // A scalar that may continue on the next lines: 'plain', 'quote' (with `quote`), 'block'.
  let open = '' as '' | 'plain' | 'quote' | 'block'
  let quote = 0
  let blockIndent = -1 // block scalar: its content's indentation once known
  let blockExplicit = 0
  let flow = 0
  // Per flow level: a '[' (not '{'), and whether an implicit pair ('[a: b]', a map of its own) is open in it.
  const flowSeq: boolean[] = []
  const flowPair: boolean[] = []
  let pairs = 0 // open implicit pairs
  let dashes = 0 // '- ' in flow: an error a parser may still nest
  let stray = false // the open flow collection came right after a node: the parser drops it, reads on as block
  let lineStart = start
  let scalarCol = -1 // the indentation of the block line a multi-line scalar started on
  let flowKey = false
  let inPlain = false // in flow: inside a plain scalar
  let fresh = true // nothing but directives and comments so far
  let indentValue = 0 // the line's indentation, past its leading indicators

  const note = (d: number): boolean => {
    if (d > depth) depth = d
    if (d > maxDepth) {
      deepLine = line
      return true
    }
    return false
  }
  const lineEnd = (from: number): number => {
    const nl = text.indexOf('\n', from)
    return nl < 0 || nl > end ? end : nl
  }
  /** Skips a quoted scalar from its opening quote at `p`; returns the offset after it, or -1 if it runs past the line. */
  const quoteFrom = (p: number, eol: number): number => {
    for (let j = p + 1; j < eol; j++) {
      const c = text.charCodeAt(j)
      if (quote === 39 && c === 39) {
        if (text.charCodeAt(j + 1) === 39) j++
        else return j + 1
      } else if (quote === 34) {
        if (c === 92) j++
        else if (c === 34) return j + 1
      }
    }
    return -1
  }
  /** Enters a quoted scalar at its opening quote `p`: the offset after it, or -1 when it goes on past the line (left open). */
  const quoted = (p: number, eol: number): number => {
    quote = text.charCodeAt(p)
    const q = quoteFrom(p, eol)
    if (q < 0) open = 'quote'
    return q
  }
  /** Past an anchor or a tag at `p`. */
  const propertyEnd = (p: number, eol: number): number => {
    while (p < eol && !isBlank(text.charCodeAt(p)) && !isFlowIndicator(text.charCodeAt(p))) p++
    return p
  }

  /** A ':' or '?' in flow: in a '[', the start of a single-pair map, one level more. True past the limit. */
  const pair = (base: number): boolean => {
    if (flowSeq[flow - 1] && !flowPair[flow - 1]) {
      flowPair[flow - 1] = true
      pairs++
    }
    return note(base + flow + pairs + dashes)
  }
  const endFlow = (): void => {
    flow = 0
    pairs = 0
    dashes = 0
    inPlain = false
  }

  /** Scans flow content from `p` to `eol`; returns where it stopped (eol, or where the outermost collection closed). */
  const scanFlow = (p: number, eol: number, base: number): number | undefined => {
    while (p < eol) {
      const c = text.charCodeAt(p)
      if (inPlain) {
        const next = text.charCodeAt(p + 1)
        if (c === 58 && (isBlank(next) || isFlowIndicator(next))) {
          // ':' after a key: its value follows
          inPlain = false
          flowKey = false
          if (pair(base)) return undefined
          p++
          continue
        }
        if ((c === SP || c === TAB) && next === 35) {
          inPlain = false
          return eol // a comment
        }
        if (!isFlowIndicator(c)) {
          p++
          continue
        }
        inPlain = false
      }
      if (c === SP || c === TAB || c === CR) p++
      else if (c === 35) return eol // '#' after a blank or at a line start
      else if (c === 91 || c === 123) {
        flowSeq[flow] = c === 91
        flowPair[flow] = false
        flow++
        dashes = 0
        flowKey = false
        if (note(base + flow + pairs)) return undefined
        p++
      } else if (c === 93 || c === 125) {
        flowKey = true
        p++
        if (flowPair[flow - 1]) pairs--
        dashes = 0
        if (--flow === 0) return p
      } else if (c === 44) {
        flowKey = false
        if (flowPair[flow - 1]) {
          flowPair[flow - 1] = false
          pairs--
        }
        dashes = 0
        p++
      } else if (c === 34 || c === 39) {
        flowKey = true
        const q = quoted(p, eol)
        if (q < 0) return eol
        p = q
      } else if (c === 38 || c === 33 || c === 42) p = propertyEnd(p + 1, eol) // & ! *
      else if ((c === 58 || c === 63 || c === 45) && (isBlank(text.charCodeAt(p + 1)) || isFlowIndicator(text.charCodeAt(p + 1)) || (c === 58 && flowKey))) {
        flowKey = false
        if (c === 45) dashes++
        if (c === 45 ? note(base + flow + pairs + dashes) : pair(base)) return undefined
        p++
      } else {
        flowKey = false
        inPlain = true
        p++
      }
    }
    return eol
  }

  while (i < end) {
    const eol = lineEnd(i)
    lineStart = i
    // Indentation: spaces only (a tab is not indentation).
    let p = i
    while (p < eol && text.charCodeAt(p) === SP) p++
    const indent = atMarkerLine ? 0 : p - i
    let q = p
    while (q < eol && (text.charCodeAt(q) === SP || text.charCodeAt(q) === TAB || text.charCodeAt(q) === CR)) q++
    const empty = q >= eol
    const first = text.charCodeAt(q)

    if (open === 'block') {
      // A block scalar: its lines are text while indented enough (blank lines too).
      if (empty || blockIndent < 0 || indent >= blockIndent) {
        if (!empty && blockIndent < 0) {
          if (blockExplicit > 0) blockIndent = (indentNext === 0 ? 1 : indentNext) + blockExplicit - 1
          else blockIndent = indent
          if (blockIndent < indentNext) blockIndent = indentNext
          if (indent < blockIndent) {
            open = ''
          }
        }
        if (open === 'block') {
          i = eol + 1
          line++
          continue
        }
      } else open = ''
    } else if (open === 'quote') {
      // A quoted scalar goes on while its lines are indented enough.
      if (empty) {
        i = eol + 1
        line++
        continue
      }
      if (indent >= indentNext) {
        const r = quoteFrom(p - 1, eol) // scans from p, the line's first character
        if (r < 0) {
          i = eol + 1
          line++
          continue
        }
        open = ''
        if (flow === 0 && keyAfter(r, eol)) nestKey()
        if (note(cols.length + 1)) break
        if (flow > 0) {
          const s = scanFlow(r, eol, cols.length)
          if (s === undefined) break
          if (flow > 0) {
            i = eol + 1
            line++
            continue
          }
          p = s
        } else p = r
        // the rest of the line, in block context, below
        const rest = blockRest(p, eol)
        if (rest === undefined) break
        i = eol + 1
        line++
        continue
      }
      open = '' // under-indented: the quote ends here, as the parser recovers
      endFlow()
    } else if (open === 'plain') {
      if (empty) {
        i = eol + 1
        line++
        continue
      }
      if (first !== 35 && indent >= indentNext && flow === 0) {
        // A continuation line: text, up to a ': ' (then a value) or ' #'. A ': '
        // here makes the lines so far a multi-line key, an error the parser
        // recovers from by nesting one map more each time: counted as levels.
        if (note(cols.length + 1)) break
        const r = plainFrom(q, eol)
        if (r < eol) {
          nestKey()
          if (blockRest(r, eol) === undefined) break
        }
        i = eol + 1
        line++
        continue
      }
      open = ''
    }

    if (empty || first === 35) {
      if (!empty) inPlain = false
      i = eol + 1
      line++
      atMarkerLine = false
      continue
    }
    if (fresh && first === 37 && !atMarkerLine && flow === 0) {
      // A directive ('%YAML 1.1') before the document.
      i = eol + 1
      line++
      continue
    }
    fresh = false
    if (content < 0) content = q

    if (flow > 0) {
      // A flow collection spanning lines ends early at an under-indented line, as the parser recovers.
      const closing = first === 93 || first === 125
      if (indent < indentNext && !(closing && flow === 1 && indent === indentNext - 1)) endFlow()
      else {
        if (stray) {
          const saved = indentNext
          blockLevels(i, q, indent, eol)
          indentNext = saved
          if (note(cols.length + flow)) break
        }
        const s = scanFlow(q, eol, cols.length)
        if (s === undefined) break
        if (flow === 0 && blockRest(s, eol) === undefined) break
        i = eol + 1
        line++
        continue
      }
    }

    if (atMarkerLine) {
      indentNext = 0
      scalarCol = -1
      if (blockRest(q, eol) === undefined) break
      atMarkerLine = false
      i = eol + 1
      line++
      continue
    }

    // A block line: close the levels it is not inside.
    if (indentNext > indent) indentNext = indent
    scalarCol = indent
    p = blockLevels(i, q, indent, eol)
    if (note(cols.length)) break
    if (blockRest(p, eol) === undefined) break
    i = eol + 1
    line++
  }
  return { content, depth, deepLine }

  /**
   * The block levels of a line (content at `q`): closes those it is not inside,
   * opens one per indicator ('- ', '? ', ': ') and one for its node. Returns
   * where the node starts.
   */
  function blockLevels(i: number, q: number, indent: number, eol: number): number {
    closeLevels(indent, text.charCodeAt(q) === 45 && isBlank(text.charCodeAt(q + 1)))
    indentValue = indent
    let p = q
    for (;;) {
      const c = text.charCodeAt(p)
      if ((c === 45 || c === 63 || c === 58) && isBlank(text.charCodeAt(p + 1))) {
        cols.push(p - i)
        seqs.push(c === 45)
        indentNext = indentValue + 1
        let n = p + 1
        while (n < eol && (text.charCodeAt(n) === SP || text.charCodeAt(n) === TAB)) n++
        indentValue += n - p
        p = n
      } else break
    }
    if (p < eol && text.charCodeAt(p) !== 35) {
      cols.push(p - i)
      seqs.push(false)
    }
    return p
  }

  /**
   * A key found on a continuation line of a multi-line scalar: an error the
   * parser recovers from by nesting a map, and what follows, more indented than
   * the scalar's line or as much (as lenient as the parser), inside it.
   */
  function nestKey(): void {
    cols.push(scalarCol - 0.5)
    seqs.push(false)
  }

  /** True when a ': ' follows `p` on the line (after blanks). */
  function keyAfter(p: number, eol: number): boolean {
    while (p < eol && (text.charCodeAt(p) === SP || text.charCodeAt(p) === TAB)) p++
    return text.charCodeAt(p) === 58 && isBlank(text.charCodeAt(p + 1))
  }

  /** Closes the block levels a line at `indent` is not inside; a '- ' line stays inside a key at its own column. */
  function closeLevels(indent: number, dash: boolean): void {
    while (cols.length > 0 && cols[cols.length - 1]! > indent) {
      cols.pop()
      seqs.pop()
    }
    while (cols.length > 0 && cols[cols.length - 1] === indent && !(dash && !seqs[seqs.length - 1])) {
      cols.pop()
      seqs.pop()
    }
  }

  /**
   * A line's content in block context from `p`: properties, then a node; a plain
   * or quoted scalar followed by ': ' is a key and its value follows on the line.
   * Returns undefined when the depth passed the limit.
   */
  function blockRest(p: number, eol: number): number | undefined {
    let afterNode = false // a node ended, and no indicator followed yet
    let keys = 0 // 'a: b: c' is refused by the parser, which still nests a map per key
    for (;;) {
      while (p < eol && (text.charCodeAt(p) === SP || text.charCodeAt(p) === TAB || text.charCodeAt(p) === CR)) p++
      if (p >= eol) return eol
      const c = text.charCodeAt(p)
      if (c === 35) return eol
      if (c === 38 || c === 33 || c === 42) {
        p = propertyEnd(p + 1, eol)
        afterNode = c === 42
        continue
      }
      if ((c === 45 || c === 63 || c === 58) && isBlank(text.charCodeAt(p + 1))) {
        indentNext = indentValue + 1
        if (c === 58 && afterNode && ++keys > 1) {
          cols.push(p - lineStart)
          seqs.push(false)
          if (note(cols.length)) return undefined
        }
        afterNode = false
        p++
        continue
      }
      if (c === 91 || c === 123) {
        flowKey = false
        endFlow()
        stray = afterNode
        const s = scanFlow(p, eol, cols.length)
        if (s === undefined) return undefined
        if (flow > 0) return eol
        p = s
        afterNode = true
        continue
      }
      if (c === 93 || c === 125) {
        p++
        continue
      }
      if (c === 34 || c === 39) {
        const r = quoted(p, eol)
        if (r < 0) return eol
        p = r
        afterNode = true
        continue
      }
      if (c === 124 || c === 62) {
        // '|' or '>': a block scalar; its header may give the indentation.
        blockExplicit = 0
        let h = p + 1
        for (; h < eol; h++) {
          const d = text.charCodeAt(h)
          if (d > 48 && d <= 57) blockExplicit = d - 48
          else if (d !== 43 && d !== 45) break
        }
        open = 'block'
        blockIndent = -1
        return eol
      }
      const r = plainFrom(p, eol)
      if (r >= eol) return eol
      p = r
      afterNode = true
    }
  }

  /** A plain scalar from `p` in block context: to a ': ' (a key; returns the ':'), a ' #' or the line's end (it may go on). */
  function plainFrom(p: number, eol: number): number {
    for (let j = p; j < eol; j++) {
      const c = text.charCodeAt(j)
      if (c === 58 && isBlank(text.charCodeAt(j + 1))) {
        open = ''
        return j
      }
      if ((c === SP || c === TAB) && text.charCodeAt(j + 1) === 35) {
        open = ''
        return eol
      }
    }
    open = 'plain'
    return eol
  }
}
