// kube-proxy's configuration, read as kube-proxy reads it: a KubeProxyConfiguration
// (kubeproxy.config.k8s.io/v1alpha1) from --config, kube-proxy's defaults for what
// it leaves out, and kube-proxy's flags on top (a flag given on the command line
// wins over the file). YAML 1.1 (strictARP: yes is true), Go durations ('1m30s'),
// and ValidationErrors naming the field ('ipvs.syncPeriod') or the flag
// ('--ipvs-scheduler'). Fields tsproxy does not know are warnings, as in
// kube-proxy's lenient decoding; wrong types and values are errors.
//
// This file is the one importers use: the command line resolved (loadConfig)
// and the values derived from a configuration. The parts live in config/:
// schema.ts (type, defaults, the settings table), file.ts (the file),
// flags.ts (the command line), duration.ts (Go durations), usage.ts (--help),
// suggest.ts ("did you mean").
import { hostname as osHostname } from 'node:os'
import { configFromObject, type ParsedConfig, parseConfig, validateConfig } from './config/file.js'
import { applyFlags, flagError, type ParsedFlags, parseFlags } from './config/flags.js'
import { BY_FLAG, CONFIG_KIND, defaultConfig, getPath, type KubeProxyConfiguration, type ProxyOptions } from './config/schema.js'
import { formatGoDuration } from './config/duration.js'
import { isDeepStrictEqual } from 'node:util'

export {
  CONFIG_API_VERSION,
  CONFIG_KIND,
  defaultConfig,
  DETECT_LOCAL_MODES,
  type DetectLocalMode,
  HEALTHZ_PORT,
  IPVS_SCHEDULERS,
  type KubeProxyConfiguration,
  METRICS_PORT,
  PROXY_MODES,
  type ProxyMode,
  type ProxyOptions,
} from './config/schema.js'
export { formatGoDuration, parseGoDuration } from './config/duration.js'
export { configFromObject, type ParsedConfig, parseConfig, validateConfig }
export { applyFlags, type ParsedFlags, parseFlags }
export { usage } from './config/usage.js'

export interface LoadedConfig {
  config: KubeProxyConfiguration
  options: ProxyOptions
  warnings: string[]
}

/**
 * The command line resolved: --config read through `readFile` and parsed (or
 * the defaults), flags applied over it, the whole validated.
 */
export async function loadConfig(argv: readonly string[], io: { readFile: (path: string) => Promise<string> }): Promise<LoadedConfig> {
  const { options, settings } = parseFlags(argv)
  let parsed: ParsedConfig = { config: defaultConfig(), warnings: [] }
  if (options.config !== undefined) {
    if (options.config === '') flagError('--config', '', 'needs a file path')
    parsed = parseConfig(await io.readFile(options.config), options.config)
  }
  const config = applyFlags(parsed.config, settings)
  // The file's value (or its default) changed by a flag is said once: the file alone no longer tells what runs.
  if (options.config !== undefined) {
    const said = new Set<string>()
    for (const { path, flag } of settings) {
      const from = getPath(parsed.config, path)
      const to = getPath(config, path)
      if (said.has(path) || isDeepStrictEqual(from, to)) continue
      said.add(path)
      const show = (v: unknown): string => (BY_FLAG.get(flag.slice(2))?.kind === 'duration' && typeof v === 'number' ? formatGoDuration(v) : JSON.stringify(v))
      parsed.warnings.push(`${flag}=${show(to)} overrides ${path}: ${show(from)} from ${options.config}`)
    }
  }
  validateConfig(config, options.config === undefined ? CONFIG_KIND : `${CONFIG_KIND} (${options.config} and flags)`)
  return { config, options, warnings: parsed.warnings }
}

/** The node name kube-proxy uses: hostnameOverride, or the host name, trimmed and lowercased. */
export function nodeName(config: Pick<KubeProxyConfiguration, 'hostnameOverride'>, hostname: () => string = osHostname): string {
  const name = config.hostnameOverride.trim() || hostname()
  return name.trim().toLowerCase()
}

/** clusterCIDR as a list ([] when blank). */
export function clusterCIDRs(config: Pick<KubeProxyConfiguration, 'clusterCIDR'>): string[] {
  return config.clusterCIDR === '' ? [] : config.clusterCIDR.split(',').map((c) => c.trim())
}

/** The IPVS scheduler in effect ('' is rr). */
export function ipvsScheduler(config: Pick<KubeProxyConfiguration, 'ipvs'>): string {
  return config.ipvs.scheduler || 'rr'
}

