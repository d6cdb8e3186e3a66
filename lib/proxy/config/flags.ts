// kube-proxy's command line, as pflag reads it: each flag converted to its
// setting's kind and checked (a ValidationError names the flag,
// '--ipvs-scheduler'), applied over the configuration file in order.
import { ValidationError } from '../../errors.js'
import { table } from '../../validate.js'
import { parseGoDuration } from './duration.js'
import { BY_FLAG, type KubeProxyConfiguration, type ProxyOptions, type Setting, setPath } from './schema.js'
import { suggest } from './suggest.js'

/** Options of the command line only. */
// Looked up by what the command line says: tables without a prototype ('--constructor' is no flag).
export const OPTION_FLAGS = table<string, { kind: 'string' | 'bool'; key: keyof ProxyOptions; help: string }>({
  config: { kind: 'string', key: 'config', help: 'a KubeProxyConfiguration file (YAML or JSON); flags given too win over it' },
  master: { kind: 'string', key: 'master', help: 'the API server address (overrides the kubeconfig)' },
  manifests: { kind: 'string', key: 'manifests', help: 'a file or directory of Service and EndpointSlice manifests, watched (tsproxy)' },
  cleanup: { kind: 'bool', key: 'cleanup', help: 'remove what tsproxy made, then exit' },
  'init-only': { kind: 'bool', key: 'initOnly', help: 'set the node up (kernel modules, sysctls) as the daemon would, then exit: the privileged step' },
  help: { kind: 'bool', key: 'help', help: 'this text' },
  version: { kind: 'bool', key: 'version', help: 'print the version and exit' },
})
const SHORTHANDS = table<string, string>({ v: 'v', h: 'help' })


export interface ParsedFlags {
  options: ProxyOptions
  /** Settings given as flags, in order: applied over the configuration file. */
  settings: { path: string; flag: string; value: unknown }[]
}

const FLAG_OP = 'flags'

export function flagError(flag: string, value: unknown, reason: string): never {
  throw new ValidationError(FLAG_OP, flag, value, reason)
}

/** pflag's boolean spellings (strconv.ParseBool). */
function parseBool(flag: string, text: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return false
  return flagError(flag, text, 'must be true or false')
}

/** A flag's text converted to its setting's kind and checked; throws naming the flag. */
function flagValue(s: Setting, flag: string, text: string, before: unknown): unknown {
  let v: unknown
  switch (s.kind) {
    case 'string':
      v = text
      break
    case 'bool':
      v = parseBool(flag, text)
      break
    case 'int':
      if (!/^[-+]?[0-9]+$/.test(text) || Number(text) < -(2 ** 31) || Number(text) >= 2 ** 31) flagError(flag, text, 'must be a 32-bit integer')
      v = Number(text)
      break
    case 'float':
      if (text.trim() === '' || !Number.isFinite(Number(text))) flagError(flag, text, 'must be a number')
      v = Number(text)
      break
    case 'duration':
      try {
        v = parseGoDuration(text)
      } catch (e) {
        flagError(flag, text, `is not a duration (${(e as Error).message}); write it as '30s', '1m30s' or '500ms'`)
      }
      break
    case 'list': {
      // pflag's string slices: comma-separated; a repeated flag appends.
      const items = text === '' ? [] : text.split(',').map((x) => x.trim())
      v = Array.isArray(before) ? [...(before as string[]), ...items] : items
      break
    }
    case 'map': {
      const out: Record<string, boolean> = { ...((before as Record<string, boolean>) ?? {}) }
      for (const pair of text.split(',')) {
        if (pair.trim() === '') continue
        const [k, b] = pair.split('=')
        if (!k || b === undefined) flagError(flag, text, 'must be name=true|false pairs, comma-separated')
        out[k.trim()] = parseBool(flag, b.trim())
      }
      v = out
      break
    }
  }
  const reason = s.check?.(v as never, flag)
  if (reason) flagError(flag, text, reason)
  if (s.path === 'mode' && v === '') return 'iptables' // blank: kube-proxy's default
  return s.normalize ? s.normalize(v as never) : v
}

/**
 * kube-proxy's command line, as pflag reads it: --name=value, --name value,
 * boolean --name (or --name=false), -v 2 / -v=2, -h, and -- ending the flags.
 * Unknown flags throw a ValidationError naming them.
 */
export function parseFlags(argv: readonly string[]): ParsedFlags {
  const options: ProxyOptions = { cleanup: false, initOnly: false, help: false, version: false, args: [] }
  const settings: ParsedFlags['settings'] = []
  const lastValue = new Map<string, unknown>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') {
      options.args.push(...argv.slice(i + 1))
      break
    }
    if (!a.startsWith('-') || a === '-') {
      options.args.push(a)
      continue
    }
    let name: string
    let inline: string | undefined
    const eq = a.indexOf('=')
    if (a.startsWith('--')) {
      name = eq < 0 ? a.slice(2) : a.slice(2, eq)
    } else {
      const short = eq < 0 ? a.slice(1) : a.slice(1, eq)
      const long = SHORTHANDS[short]
      if (!long)
        flagError(a.slice(0, eq < 0 ? undefined : eq), a, short.length > 1 ? `is not a flag: long flags take two dashes (--${short})` : 'is not a flag tsproxy knows')
      name = long
    }
    if (eq >= 0) inline = a.slice(eq + 1)
    const flag = `--${name}`
    const option = OPTION_FLAGS[name]
    const s = BY_FLAG.get(name)
    if (!option && !s) flagError(flag, a, `is not a flag tsproxy knows${suggest(name, [...BY_FLAG.keys(), ...Object.keys(OPTION_FLAGS)], '--')}; see --help`)
    const kind = option ? option.kind : s!.kind
    let text: string
    if (inline !== undefined) text = inline
    else if (kind === 'bool') text = 'true'
    else {
      if (i + 1 >= argv.length) flagError(flag, undefined, 'needs a value')
      text = argv[++i]!
    }
    if (option) {
      ;(options as unknown as Record<string, unknown>)[option.key] = option.kind === 'bool' ? parseBool(flag, text) : text
      continue
    }
    const value = flagValue(s!, flag, text, lastValue.get(s!.path))
    lastValue.set(s!.path, value)
    settings.push({ path: s!.path, flag, value })
    for (const p of s!.alsoSets ?? []) settings.push({ path: p, flag, value })
  }
  return { options, settings }
}


/** A copy of `config` with the flag settings applied in order. */
export function applyFlags(config: KubeProxyConfiguration, settings: ParsedFlags['settings']): KubeProxyConfiguration {
  const out = structuredClone(config)
  for (const { path, value } of settings) setPath(out, path, structuredClone(value))
  return out
}
