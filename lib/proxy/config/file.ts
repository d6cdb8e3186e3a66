// A KubeProxyConfiguration file read as kube-proxy reads it: YAML 1.1
// (strictARP: yes is true) or JSON, kube-proxy's defaults for what it leaves
// out, ValidationErrors naming the field ('ipvs.syncPeriod'). Fields tsproxy
// does not know are warnings, as in kube-proxy's lenient decoding; wrong types
// and values are errors.
import { ValidationError } from '../../errors.js'
import { checkSize, LimitError, MAX_CONFIG_BYTES } from '../limits.js'
import { ipFamilyOf, isObject } from '../model/fields.js'
import { yamlValue } from '../yaml.js'
import { formatGoDuration, parseGoDuration } from './duration.js'
import {
  BY_PATH,
  CONFIG_API_VERSION,
  CONFIG_KIND,
  defaultConfig,
  getPath,
  HEALTHZ_PORT,
  IGNORED,
  type KubeProxyConfiguration,
  METRICS_PORT,
  type Setting,
  SETTINGS,
  setPath,
  ZERO_IS_DEFAULT,
} from './schema.js'
import { suggest } from './suggest.js'

/** A raw value of the file, converted to the setting's kind (undefined: the default applies); throws naming `field`. */
function convert(op: string, s: Setting, field: string, raw: unknown): unknown {
  const bad = (reason: string): never => {
    throw new ValidationError(op, field, raw, reason)
  }
  let v: unknown
  switch (s.kind) {
    case 'string':
      if (typeof raw !== 'string') bad('must be a string')
      v = raw
      break
    case 'bool':
      if (typeof raw !== 'boolean') bad('must be true or false')
      v = raw
      break
    case 'int':
      if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < -(2 ** 31) || raw >= 2 ** 31) bad('must be a 32-bit integer')
      v = raw
      break
    case 'float':
      if (typeof raw !== 'number' || !Number.isFinite(raw)) bad('must be a number')
      v = raw
      break
    case 'duration':
      if (typeof raw !== 'string') bad("must be a duration string, as '30s', '1m30s' or '500ms'")
      try {
        v = parseGoDuration(raw as string)
      } catch (e) {
        bad(`is not a duration (${(e as Error).message}); write it as '30s', '1m30s' or '500ms'`)
      }
      break
    case 'list':
      if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string')) bad('must be a list of strings')
      v = [...(raw as string[])]
      break
    case 'map':
      if (!isObject(raw) || Object.values(raw).some((x) => typeof x !== 'boolean')) bad('must map names to true or false')
      v = { ...(raw as Record<string, boolean>) }
      break
  }
  // kube-proxy defaults before it validates: a zero it replaces is not checked.
  if (ZERO_IS_DEFAULT.has(s.path) && (v === 0 || v === '')) return undefined
  const reason = s.check?.(v as never, field)
  if (reason) bad(reason)
  return s.normalize ? s.normalize(v as never) : v
}

export interface ParsedConfig {
  config: KubeProxyConfiguration
  /** Unknown fields, fields tsproxy ignores. */
  warnings: string[]
}

/**
 * A KubeProxyConfiguration from YAML or JSON text, kube-proxy's defaults filled in.
 * Throws SyntaxError for bad YAML, LimitError for a text too big or nested too
 * deep to parse, ValidationError naming the field otherwise.
 */
export function parseConfig(text: string, source = 'config'): ParsedConfig {
  const op = `${CONFIG_KIND} (${source})`
  checkSize(text, source, MAX_CONFIG_BYTES)
  let raw: unknown
  try {
    raw = yamlValue(text, { source })
  } catch (e) {
    if (e instanceof LimitError) throw e
    throw new SyntaxError(`${source}: ${(e as Error).message}`)
  }
  if (!isObject(raw)) throw new ValidationError(op, CONFIG_KIND, raw, 'must be an object')
  return configFromObject(raw, op)
}

/** A KubeProxyConfiguration from a plain object (already parsed YAML/JSON). */
export function configFromObject(raw: Record<string, unknown>, op = CONFIG_KIND): ParsedConfig {
  if (raw.kind !== CONFIG_KIND) throw new ValidationError(op, 'kind', raw.kind, `must be ${CONFIG_KIND}`)
  if (raw.apiVersion !== CONFIG_API_VERSION) throw new ValidationError(op, 'apiVersion', raw.apiVersion, `must be ${CONFIG_API_VERSION}`)
  const config = defaultConfig()
  const warnings: string[] = []
  const walk = (o: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(o)) {
      const path = prefix + k
      if (prefix === '' && (k === 'kind' || k === 'apiVersion')) continue
      if (IGNORED.has(path)) {
        if (v !== null && v !== undefined) warnings.push(`${path}: not used by tsproxy, ignored`)
        continue
      }
      const s = BY_PATH.get(path)
      if (s) {
        if (v === null || v === undefined) continue
        const value = convert(op, s, path, v)
        if (value !== undefined) setPath(config, path, value)
        continue
      }
      const section = SETTINGS.some((x) => x.path.startsWith(`${path}.`))
      if (section) {
        if (v === null || v === undefined) continue
        if (!isObject(v)) throw new ValidationError(op, path, v, 'must be an object')
        walk(v, `${path}.`)
        continue
      }
      warnings.push(`unknown field ${JSON.stringify(path)}${suggest(path, [...BY_PATH.keys()])}`)
    }
  }
  walk(raw, '')
  // getDefaultAddresses: an IPv6 bindAddress moves the default servers to [::] and [::1].
  const v6 = ipFamilyOf(config.bindAddress) === 'IPv6'
  const given = (f: string): boolean => raw[f] !== undefined && raw[f] !== null && raw[f] !== ''
  if (!given('healthzBindAddress')) config.healthzBindAddress = v6 ? `[::]:${HEALTHZ_PORT}` : `0.0.0.0:${HEALTHZ_PORT}`
  if (!given('metricsBindAddress')) config.metricsBindAddress = v6 ? `[::1]:${METRICS_PORT}` : `127.0.0.1:${METRICS_PORT}`
  return { config, warnings }
}


/** The rules that span fields (validation.go); throws a ValidationError naming the field. */
export function validateConfig(config: KubeProxyConfiguration, op = CONFIG_KIND): void {
  for (const s of SETTINGS) {
    const v = getPath(config, s.path)
    const reason = s.check?.(v as never, s.path)
    if (reason) throw new ValidationError(op, s.path, v, reason)
  }
  const periods: [string, { syncPeriod: number; minSyncPeriod: number }][] = [['iptables', config.iptables]]
  if (config.mode === 'ipvs') periods.push(['ipvs', config.ipvs])
  if (config.mode === 'nftables') periods.push(['nftables', config.nftables])
  for (const [name, p] of periods)
    if (p.syncPeriod < p.minSyncPeriod)
      throw new ValidationError(op, `${name}.syncPeriod`, formatGoDuration(p.syncPeriod), `must be greater than or equal to ${name}.minSyncPeriod (${formatGoDuration(p.minSyncPeriod)})`)
  if (config.detectLocalMode === 'BridgeInterface' && config.detectLocal.bridgeInterface === '')
    throw new ValidationError(op, 'detectLocal.bridgeInterface', '', 'is required when detectLocalMode is BridgeInterface')
  if (config.detectLocalMode === 'InterfaceNamePrefix' && config.detectLocal.interfaceNamePrefix === '')
    throw new ValidationError(op, 'detectLocal.interfaceNamePrefix', '', 'is required when detectLocalMode is InterfaceNamePrefix')
}

