// The daemon's logger: one line per message, JSON for log pipelines or klog-like
// text for people. kube-proxy's -v levels carry over: debug lines appear at
// -v=4 and above, the rest always. A log call never throws: fields may hold
// cycles, BigInts, Errors or getters that throw, and the line still comes out.
import type { Log, LogLevel } from './types.js'

export interface LoggerOptions {
  format: 'json' | 'text'
  /** kube-proxy's -v. */
  verbosity: number
  /** Receives each line, newline included (default: process.stderr). */
  write?: (line: string) => void
  /** Milliseconds since the epoch (default Date.now). */
  now?: () => number
}

/** The -v from which debug lines are written. */
export const DEBUG_VERBOSITY = 4

const CORE = new Set(['ts', 'level', 'msg'])
const MAX_DEPTH = 8
const KLOG_LETTER: Record<LogLevel, string> = { debug: 'I', info: 'I', warn: 'W', error: 'E' }

export function makeLogger(options: LoggerOptions): Log {
  const write = options.write ?? ((line: string) => void process.stderr.write(line))
  const now = options.now ?? Date.now
  const format = options.format === 'text' ? textLine : jsonLine
  return (level, msg, fields) => {
    if (level === 'debug' && options.verbosity < DEBUG_VERBOSITY) return
    let line: string
    try {
      line = format(new Date(now()), level, msg, fields)
    } catch (err) {
      // Only a bug here could get this far; say so rather than lose the message.
      line = format(new Date(now()), level, msg, { logError: String(err) })
    }
    write(line)
  }
}

function jsonLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown> | undefined): string {
  const out: Record<string, unknown> = { ts: time.toISOString(), level, msg: String(msg) }
  // A field named like a core key must not overwrite it.
  for (const [k, v] of Object.entries(fields ?? {})) out[CORE.has(k) ? `_${k}` : k] = plain(v, [], 0)
  return `${JSON.stringify(out)}\n`
}

/**
 * klog's header (Lmmdd hh:mm:ss.uuuuuu), then the message and key=value pairs.
 * klog prints local time; we print UTC, so text and JSON lines of one run agree.
 */
function textLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown> | undefined): string {
  const p2 = (n: number) => String(n).padStart(2, '0')
  const head = `${KLOG_LETTER[level]}${p2(time.getUTCMonth() + 1)}${p2(time.getUTCDate())} ${p2(time.getUTCHours())}:${p2(time.getUTCMinutes())}:${p2(time.getUTCSeconds())}.${String(time.getUTCMilliseconds() * 1000).padStart(6, '0')}`
  const parts = [head, textValue(String(msg), true)]
  for (const [k, v] of Object.entries(fields ?? {})) {
    // An Error reads best as its message, as klog prints err="...".
    parts.push(`${k}=${v instanceof Error ? textValue(v.message) : textValue(plain(v, [], 0))}`)
  }
  return `${parts.join(' ')}\n`
}

/** Bare when unambiguous, JSON-quoted otherwise (spaces, quotes, '=', newlines). */
function textValue(v: unknown, isMsg = false): string {
  if (typeof v === 'string') {
    // The message may hold spaces; only a line break would split the record.
    if (isMsg) return /[\n\r]/.test(v) ? JSON.stringify(v) : v
    return v !== '' && /^[^\s"=\\]+$/.test(v) ? v : JSON.stringify(v)
  }
  return JSON.stringify(v) ?? 'undefined'
}

/**
 * A JSON-safe copy: Errors as {name, message, ...own props, cause}, BigInts as
 * decimal strings, cycles as '[Circular]', deep nesting cut at MAX_DEPTH.
 * `ancestors` holds the objects above this one, so a value seen twice on
 * different branches is not mistaken for a cycle.
 */
function plain(v: unknown, ancestors: object[], depth: number): unknown {
  switch (typeof v) {
    case 'bigint':
      return v.toString()
    case 'symbol':
      return v.toString()
    case 'function':
      return `[Function ${v.name || 'anonymous'}]`
    case 'number':
      // JSON would turn NaN and Infinity into null.
      return Number.isFinite(v) ? v : String(v)
    case 'object':
      break
    default:
      return v
  }
  if (v === null) return null
  if (ancestors.includes(v)) return '[Circular]'
  if (depth >= MAX_DEPTH) return Array.isArray(v) ? '[Array]' : '[Object]'
  const inner = [...ancestors, v]
  try {
    if (v instanceof Error) {
      const out: Record<string, unknown> = { name: v.name, message: v.message }
      for (const [k, x] of Object.entries(v)) out[k] = plain(x, inner, depth + 1)
      if (v.cause !== undefined) out.cause = plain(v.cause, inner, depth + 1)
      return out
    }
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()
    if (Array.isArray(v)) return v.map((x) => plain(x, inner, depth + 1))
    if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x, inner, depth + 1)]))
    if (v instanceof Set) return [...v].map((x) => plain(x, inner, depth + 1))
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = plain(x, inner, depth + 1)
    return out
  } catch (err) {
    // A getter or proxy that throws.
    return `[Unserialisable: ${err instanceof Error ? err.message : String(err)}]`
  }
}
