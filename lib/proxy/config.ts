// kube-proxy's configuration, read as kube-proxy reads it: a KubeProxyConfiguration
// (kubeproxy.config.k8s.io/v1alpha1) from --config, kube-proxy's defaults for what
// it leaves out, and kube-proxy's flags on top (a flag given on the command line
// wins over the file). YAML 1.1 (strictARP: yes is true), Go durations ('1m30s'),
// and ValidationErrors naming the field ('ipvs.syncPeriod') or the flag
// ('--ipvs-scheduler'). Fields tsproxy does not know are warnings, as in
// kube-proxy's lenient decoding; wrong types and values are errors.
//
// Durations are held in milliseconds.
import { hostname as osHostname } from 'node:os'
import { ValidationError } from '../errors.js'
import { table } from '../validate.js'
import { cidr, cidrFamily, ipFamilyOf, isObject } from './model/fields.js'
import { checkSize, LimitError, MAX_CONFIG_BYTES } from './limits.js'
import { yamlValue } from './yaml.js'

export const CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1'
export const CONFIG_KIND = 'KubeProxyConfiguration'
export const PROXY_MODES = ['iptables', 'ipvs', 'nftables'] as const
export type ProxyMode = (typeof PROXY_MODES)[number]
/** The schedulers kube-proxy accepts for ipvs.scheduler ('' means rr). */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'sh', 'dh', 'sed', 'nq', 'mh'] as const
export const DETECT_LOCAL_MODES = ['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'] as const
export type DetectLocalMode = (typeof DETECT_LOCAL_MODES)[number]
export const HEALTHZ_PORT = 10256
export const METRICS_PORT = 10249

export interface KubeProxyConfiguration {
  bindAddress: string
  bindAddressHardFail: boolean
  clientConnection: { kubeconfig: string; acceptContentTypes: string; contentType: string; qps: number; burst: number }
  /** '' or one CIDR per family, comma-separated. */
  clusterCIDR: string
  configSyncPeriod: number
  conntrack: {
    /** Connections per CPU core for nf_conntrack_max; 0 leaves it alone. */
    maxPerCore: number
    min: number
    tcpEstablishedTimeout: number
    tcpCloseWaitTimeout: number
    tcpBeLiberal: boolean
    udpTimeout: number
    udpStreamTimeout: number
  }
  detectLocalMode: DetectLocalMode
  detectLocal: { bridgeInterface: string; interfaceNamePrefix: string }
  enableProfiling: boolean
  featureGates: Record<string, boolean>
  /** 'ip:port'; '' disables the server. */
  healthzBindAddress: string
  hostnameOverride: string
  iptables: { masqueradeAll: boolean; masqueradeBit: number; localhostNodePorts: boolean; syncPeriod: number; minSyncPeriod: number }
  ipvs: {
    /** '' is rr. */
    scheduler: string
    syncPeriod: number
    minSyncPeriod: number
    strictARP: boolean
    /** 0 leaves the kernel's value. */
    tcpTimeout: number
    tcpFinTimeout: number
    udpTimeout: number
    excludeCIDRs: string[]
  }
  nftables: { masqueradeAll: boolean; masqueradeBit: number; syncPeriod: number; minSyncPeriod: number }
  logging: { format: string; verbosity: number }
  /** 'ip:port'; '' disables the server. */
  metricsBindAddress: string
  mode: ProxyMode
  /** CIDRs, or ['primary']; [] is every node address. */
  nodePortAddresses: string[]
  oomScoreAdj: number
  showHiddenMetricsForVersion: string
}

/** Command-line options that are not part of the configuration. */
export interface ProxyOptions {
  config?: string
  master?: string
  /** tsproxy's manifest source: a file or a directory. */
  manifests?: string
  cleanup: boolean
  help: boolean
  version: boolean
  /** Positional arguments (tsproxy's subcommands). */
  args: string[]
}

// ---- Go durations ----------------------------------------------------------------------

const UNIT_NS: Record<string, bigint> = { ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n }
const MAX_DURATION_NS = (1n << 63n) - 1n

/**
 * Go's time.ParseDuration ('300ms', '-1.5h', '2h45m', '1h2m3s4ms5us6ns'), in
 * milliseconds: whole parts exact (int64 nanoseconds, overflow refused as Go
 * refuses it), fractions truncated to the nanosecond. Throws an Error saying why.
 */
export function parseGoDuration(text: string): number {
  const quoted = JSON.stringify(text)
  let s = text
  let negative = false
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-'
    s = s.slice(1)
  }
  if (s === '0') return 0
  if (s === '') throw new Error(`invalid duration ${quoted}`)
  let ns = 0n
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!
    const whole = m[1]!
    const frac = m[2]
    if (whole === '' && (frac === undefined || frac === '')) throw new Error(`invalid duration ${quoted}`)
    s = s.slice(m[0].length)
    const unit = /^[^0-9.]+/.exec(s)?.[0]
    if (unit === undefined) throw new Error(`missing unit in duration ${quoted}`)
    const scale = UNIT_NS[unit]
    if (scale === undefined) throw new Error(`unknown unit ${JSON.stringify(unit)} in duration ${quoted}`)
    s = s.slice(unit.length)
    ns += BigInt(whole || '0') * scale
    if (frac) ns += BigInt(Math.floor(Number(`0.${frac}`) * Number(scale)))
    if (ns > MAX_DURATION_NS + (negative ? 1n : 0n)) throw new Error(`invalid duration ${quoted}`)
  }
  return (negative ? -Number(ns) : Number(ns)) / 1e6
}

/** A duration in Go's spelling ('1m30s', '500ms', '0s'), from milliseconds. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s'
  const neg = ms < 0
  let ns = Math.round(Math.abs(ms) * 1e6)
  let out: string
  if (ns < 1e9) {
    out = ns < 1e3 ? `${ns}ns` : ns < 1e6 ? `${trim(ns / 1e3)}µs` : `${trim(ns / 1e6)}ms`
  } else {
    const h = Math.floor(ns / 3600e9)
    ns -= h * 3600e9
    const m = Math.floor(ns / 60e9)
    ns -= m * 60e9
    out = `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(ns / 1e9)}s`
  }
  return neg ? `-${out}` : out
}

function trim(n: number): string {
  return String(Number(n.toFixed(9)))
}

// ---- the settings ----------------------------------------------------------------------

type Kind = 'string' | 'bool' | 'int' | 'float' | 'duration' | 'list' | 'map'

interface Setting {
  /** Where it lives in the configuration: 'ipvs.scheduler'. */
  path: string
  kind: Kind
  /** kube-proxy's flag for it, without dashes. */
  flag?: string
  /** More paths the flag sets (--masquerade-all sets iptables' and nftables'). */
  alsoSets?: string[]
  /** Rewrites a checked value (a bare bind IP gets its default port). */
  normalize?: (value: never) => unknown
  /** Checks a value already of its kind; `field` is the path or the flag. */
  check?: (value: never, field: string) => string | undefined
  help: string
}

const nonNegative = (v: number): string | undefined => (v < 0 ? 'must be greater than or equal to 0' : undefined)
const positive = (v: number): string | undefined => (v <= 0 ? 'must be greater than 0' : undefined)
const range = (min: number, max: number) => (v: number): string | undefined => (v < min || v > max ? `must be within the range [${min}, ${max}]` : undefined)
const among = (allowed: readonly string[], blank = true) => (v: string): string | undefined =>
  (blank && v === '') || allowed.includes(v) ? undefined : `must be one of ${allowed.join(', ')}${blank ? ' or blank' : ''}`
const ipAddress = (v: string): string | undefined => (ipFamilyOf(v) ? undefined : 'must be a valid IP address')
const hostPort = (v: string): string | undefined => {
  if (v === '' || ipFamilyOf(v)) return undefined // a bare IP gets the default port
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]+)$/.exec(v)
  if (!m) return 'must be IP:port (as 0.0.0.0:10256 or [::]:10256)'
  if (!ipFamilyOf(m[1] ?? m[2]!)) return 'must name a valid IP address before the port'
  const port = Number(m[3])
  return port < 1 || port > 65535 ? 'must end with a port from 1 to 65535' : undefined
}
const cidrs = (allowPrimary: boolean) => (v: string[], field: string): string | undefined => {
  if (allowPrimary && v.includes('primary')) return v.length === 1 ? undefined : `may hold 'primary' only alone`
  for (let i = 0; i < v.length; i++) {
    try {
      cidr({ op: '' }, `${field}[${i}]`, v[i])
    } catch {
      return `[${i}] ${JSON.stringify(v[i])} is not a valid CIDR`
    }
  }
  return undefined
}
const clusterCIDR = (v: string): string | undefined => {
  if (v === '') return undefined
  const parts = v.split(',')
  if (parts.length > 2) return 'may hold one CIDR, or two of different IP families (dual-stack)'
  for (const p of parts) {
    try {
      cidr({ op: '' }, '', p)
    } catch {
      return `${JSON.stringify(p)} is not a valid CIDR`
    }
  }
  if (parts.length === 2 && cidrFamily(parts[0]!.trim()) === cidrFamily(parts[1]!.trim())) return 'two CIDRs must be of different IP families (dual-stack)'
  return undefined
}

const SETTINGS: Setting[] = [
  { path: 'bindAddress', kind: 'string', flag: 'bind-address', check: ipAddress, help: 'overrides the default addresses of the health and metrics servers when IPv6 (default 0.0.0.0)' },
  { path: 'bindAddressHardFail', kind: 'bool', flag: 'bind-address-hard-fail', help: 'fail when a node port cannot be bound' },
  { path: 'clientConnection.kubeconfig', kind: 'string', flag: 'kubeconfig', help: 'path to a kubeconfig file' },
  { path: 'clientConnection.acceptContentTypes', kind: 'string', help: '' },
  { path: 'clientConnection.contentType', kind: 'string', flag: 'kube-api-content-type', help: 'content type of requests to the API server' },
  { path: 'clientConnection.qps', kind: 'float', flag: 'kube-api-qps', check: nonNegative, help: 'queries per second to the API server' },
  { path: 'clientConnection.burst', kind: 'int', flag: 'kube-api-burst', check: nonNegative, help: 'burst of queries to the API server' },
  { path: 'clusterCIDR', kind: 'string', flag: 'cluster-cidr', check: clusterCIDR, help: 'the pod CIDR(s): traffic to a cluster IP from outside it is masqueraded' },
  { path: 'configSyncPeriod', kind: 'duration', flag: 'config-sync-period', check: positive, help: 'how often configuration from the API server is refreshed' },
  { path: 'conntrack.maxPerCore', kind: 'int', flag: 'conntrack-max-per-core', check: nonNegative, help: 'tracked connections per CPU core (0: leave the limit as it is)' },
  { path: 'conntrack.min', kind: 'int', flag: 'conntrack-min', check: nonNegative, help: 'minimum connection tracking table size' },
  { path: 'conntrack.tcpEstablishedTimeout', kind: 'duration', flag: 'conntrack-tcp-timeout-established', check: nonNegative, help: 'idle timeout of established TCP connections (0: leave it)' },
  { path: 'conntrack.tcpCloseWaitTimeout', kind: 'duration', flag: 'conntrack-tcp-timeout-close-wait', check: nonNegative, help: 'timeout of TCP connections in CLOSE_WAIT' },
  { path: 'conntrack.tcpBeLiberal', kind: 'bool', flag: 'conntrack-tcp-be-liberal', help: 'mark only out-of-window RST segments INVALID' },
  { path: 'conntrack.udpTimeout', kind: 'duration', flag: 'conntrack-udp-timeout', check: nonNegative, help: 'idle timeout of UNREPLIED UDP flows (0: leave it)' },
  { path: 'conntrack.udpStreamTimeout', kind: 'duration', flag: 'conntrack-udp-timeout-stream', check: nonNegative, help: 'idle timeout of ASSURED UDP flows (0: leave it)' },
  { path: 'detectLocalMode', kind: 'string', flag: 'detect-local-mode', check: among(DETECT_LOCAL_MODES), help: 'how local traffic is told apart' },
  { path: 'detectLocal.bridgeInterface', kind: 'string', flag: 'pod-bridge-interface', help: 'the bridge, for detectLocalMode BridgeInterface' },
  { path: 'detectLocal.interfaceNamePrefix', kind: 'string', flag: 'pod-interface-name-prefix', help: 'the interface prefix, for detectLocalMode InterfaceNamePrefix' },
  { path: 'enableProfiling', kind: 'bool', flag: 'profiling', help: 'serve /debug/pprof on the healthz server' },
  { path: 'featureGates', kind: 'map', flag: 'feature-gates', help: 'feature gates, A=true,B=false' },
  { path: 'healthzBindAddress', kind: 'string', flag: 'healthz-bind-address', check: hostPort, normalize: (v: string) => appendPortIfNeeded(v, HEALTHZ_PORT), help: `IP:port of the health server (default 0.0.0.0:${HEALTHZ_PORT}; empty disables)` },
  { path: 'hostnameOverride', kind: 'string', flag: 'hostname-override', help: 'this node\'s name, instead of the host name (for Local traffic policies)' },
  { path: 'iptables.masqueradeAll', kind: 'bool', flag: 'masquerade-all', alsoSets: ['nftables.masqueradeAll'], help: 'masquerade all traffic sent to cluster IPs' },
  { path: 'iptables.masqueradeBit', kind: 'int', flag: 'iptables-masquerade-bit', check: range(0, 31), help: 'the fwmark bit that marks packets to masquerade (default 14)' },
  { path: 'iptables.localhostNodePorts', kind: 'bool', flag: 'iptables-localhost-nodeports', help: 'accept node ports on 127.0.0.1 (iptables mode)' },
  { path: 'iptables.syncPeriod', kind: 'duration', flag: 'iptables-sync-period', check: positive, help: 'the longest time between full syncs (iptables mode; default 30s)' },
  { path: 'iptables.minSyncPeriod', kind: 'duration', flag: 'iptables-min-sync-period', check: nonNegative, help: 'the shortest time between syncs (iptables mode; default 1s)' },
  { path: 'ipvs.scheduler', kind: 'string', flag: 'ipvs-scheduler', check: among(IPVS_SCHEDULERS), help: 'the IPVS scheduler (default rr)' },
  { path: 'ipvs.syncPeriod', kind: 'duration', flag: 'ipvs-sync-period', check: positive, help: 'the longest time between full syncs (ipvs mode; default 30s)' },
  { path: 'ipvs.minSyncPeriod', kind: 'duration', flag: 'ipvs-min-sync-period', check: nonNegative, help: 'the shortest time between syncs (ipvs mode; default 0s)' },
  { path: 'ipvs.strictARP', kind: 'bool', flag: 'ipvs-strict-arp', help: 'set arp_ignore 1 and arp_announce 2' },
  { path: 'ipvs.tcpTimeout', kind: 'duration', flag: 'ipvs-tcp-timeout', check: nonNegative, help: 'IPVS idle TCP timeout (0: leave it)' },
  { path: 'ipvs.tcpFinTimeout', kind: 'duration', flag: 'ipvs-tcpfin-timeout', check: nonNegative, help: 'IPVS TCP FIN_WAIT timeout (0: leave it)' },
  { path: 'ipvs.udpTimeout', kind: 'duration', flag: 'ipvs-udp-timeout', check: nonNegative, help: 'IPVS UDP timeout (0: leave it)' },
  { path: 'ipvs.excludeCIDRs', kind: 'list', flag: 'ipvs-exclude-cidrs', check: cidrs(false), help: 'CIDRs whose IPVS services are left alone on cleanup' },
  { path: 'nftables.masqueradeAll', kind: 'bool', help: '' },
  { path: 'nftables.masqueradeBit', kind: 'int', check: range(0, 31), help: '' },
  { path: 'nftables.syncPeriod', kind: 'duration', check: positive, help: '' },
  { path: 'nftables.minSyncPeriod', kind: 'duration', check: nonNegative, help: '' },
  { path: 'logging.format', kind: 'string', flag: 'logging-format', check: among(['text', 'json'], false), help: 'log format: json (tsproxy\'s default: one object per line) or text' },
  { path: 'logging.verbosity', kind: 'int', flag: 'v', check: nonNegative, help: 'log level' },
  { path: 'metricsBindAddress', kind: 'string', flag: 'metrics-bind-address', check: hostPort, normalize: (v: string) => appendPortIfNeeded(v, METRICS_PORT), help: `IP:port of the metrics server (default 127.0.0.1:${METRICS_PORT}; empty disables)` },
  { path: 'mode', kind: 'string', flag: 'proxy-mode', check: among(PROXY_MODES), help: 'iptables, ipvs or nftables (blank: iptables, as kube-proxy)' },
  { path: 'nodePortAddresses', kind: 'list', flag: 'nodeport-addresses', check: cidrs(true), help: 'CIDRs of the node addresses node ports open on, or primary' },
  { path: 'oomScoreAdj', kind: 'int', flag: 'oom-score-adj', check: range(-1000, 1000), help: 'the process\'s oom_score_adj' },
  { path: 'showHiddenMetricsForVersion', kind: 'string', flag: 'show-hidden-metrics-for-version', help: 'the previous version whose hidden metrics to show' },
]

/** Fields kube-proxy reads on other platforms or no longer: accepted and left alone. */
const IGNORED = new Set(['winkernel', 'portRange', 'udpIdleTimeout', 'logging.flushFrequency', 'logging.vmodule', 'logging.options', 'clientConnection.acceptContentTypes'])

/** Options of the command line only. */
// Looked up by what the command line says: tables without a prototype ('--constructor' is no flag).
const OPTION_FLAGS = table<string, { kind: 'string' | 'bool'; key: keyof ProxyOptions; help: string }>({
  config: { kind: 'string', key: 'config', help: 'a KubeProxyConfiguration file (YAML or JSON); flags given too win over it' },
  master: { kind: 'string', key: 'master', help: 'the API server address (overrides the kubeconfig)' },
  manifests: { kind: 'string', key: 'manifests', help: 'a file or directory of Service and EndpointSlice manifests, watched (tsproxy)' },
  cleanup: { kind: 'bool', key: 'cleanup', help: 'remove what tsproxy made, then exit' },
  help: { kind: 'bool', key: 'help', help: 'this text' },
  version: { kind: 'bool', key: 'version', help: 'print the version and exit' },
})
const SHORTHANDS = table<string, string>({ v: 'v', h: 'help' })

const BY_PATH = new Map(SETTINGS.map((s) => [s.path, s]))
const BY_FLAG = new Map(SETTINGS.filter((s) => s.flag).map((s) => [s.flag!, s]))

/** kube-proxy's defaults (pkg/proxy/apis/config/v1alpha1/defaults.go). */
export function defaultConfig(): KubeProxyConfiguration {
  return {
    bindAddress: '0.0.0.0',
    bindAddressHardFail: false,
    clientConnection: { kubeconfig: '', acceptContentTypes: '', contentType: 'application/vnd.kubernetes.protobuf', qps: 5, burst: 10 },
    clusterCIDR: '',
    configSyncPeriod: 15 * 60_000,
    conntrack: {
      maxPerCore: 32 * 1024,
      min: 128 * 1024,
      tcpEstablishedTimeout: 24 * 3600_000,
      tcpCloseWaitTimeout: 3600_000,
      tcpBeLiberal: false,
      udpTimeout: 0,
      udpStreamTimeout: 0,
    },
    detectLocalMode: 'ClusterCIDR',
    detectLocal: { bridgeInterface: '', interfaceNamePrefix: '' },
    enableProfiling: false,
    featureGates: {},
    healthzBindAddress: `0.0.0.0:${HEALTHZ_PORT}`,
    hostnameOverride: '',
    iptables: { masqueradeAll: false, masqueradeBit: 14, localhostNodePorts: true, syncPeriod: 30_000, minSyncPeriod: 1_000 },
    ipvs: { scheduler: '', syncPeriod: 30_000, minSyncPeriod: 0, strictARP: false, tcpTimeout: 0, tcpFinTimeout: 0, udpTimeout: 0, excludeCIDRs: [] },
    nftables: { masqueradeAll: false, masqueradeBit: 14, syncPeriod: 30_000, minSyncPeriod: 1_000 },
    logging: { format: 'json', verbosity: 0 },
    metricsBindAddress: `127.0.0.1:${METRICS_PORT}`,
    mode: 'iptables',
    nodePortAddresses: [],
    oomScoreAdj: -999,
    showHiddenMetricsForVersion: '',
  }
}

/**
 * Fields where kube-proxy's defaulting replaces a zero value (not only a missing
 * one): `syncPeriod: 0s` in a file means the default. Flags are not defaulted.
 */
const ZERO_IS_DEFAULT = new Set([
  'bindAddress',
  'clientConnection.contentType',
  'clientConnection.qps',
  'clientConnection.burst',
  'configSyncPeriod',
  'detectLocalMode',
  'healthzBindAddress',
  'metricsBindAddress',
  'iptables.syncPeriod',
  'iptables.minSyncPeriod',
  'ipvs.syncPeriod',
  'nftables.syncPeriod',
  'nftables.minSyncPeriod',
  'mode',
])

function getPath(o: unknown, path: string): unknown {
  let v: unknown = o
  for (const k of path.split('.')) v = isObject(v) ? v[k] : undefined
  return v
}

function setPath(o: object, path: string, value: unknown): void {
  const keys = path.split('.')
  let v = o as Record<string, unknown>
  for (const k of keys.slice(0, -1)) v = v[k] as Record<string, unknown>
  v[keys[keys.length - 1]!] = value
}

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

/** kube-proxy's AppendPortIfNeeded: a bare IP gets the default port. */
function appendPortIfNeeded(addr: string, port: number): string {
  const f = ipFamilyOf(addr)
  if (!f) return addr
  return f === 'IPv4' ? `${addr}:${port}` : `[${addr}]:${port}`
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

// ---- flags -----------------------------------------------------------------------------

export interface ParsedFlags {
  options: ProxyOptions
  /** Settings given as flags, in order: applied over the configuration file. */
  settings: { path: string; flag: string; value: unknown }[]
}

const FLAG_OP = 'flags'

function flagError(flag: string, value: unknown, reason: string): never {
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
  const options: ProxyOptions = { cleanup: false, help: false, version: false, args: [] }
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
  validateConfig(config, options.config === undefined ? CONFIG_KIND : `${CONFIG_KIND} (${options.config} and flags)`)
  return { config, options, warnings: parsed.warnings }
}

/** A copy of `config` with the flag settings applied in order. */
export function applyFlags(config: KubeProxyConfiguration, settings: ParsedFlags['settings']): KubeProxyConfiguration {
  const out = structuredClone(config)
  for (const { path, value } of settings) setPath(out, path, structuredClone(value))
  return out
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

/** The --help text: every flag with what it sets. */
export function usage(): string {
  const lines = ['Usage: tsproxy [flags]', '', 'Flags (kube-proxy\'s, where kube-proxy has them):']
  const rows: [string, string][] = []
  for (const [name, o] of Object.entries(OPTION_FLAGS)) rows.push([`--${name}${o.kind === 'bool' ? '' : ' string'}`, o.help])
  for (const s of SETTINGS) {
    if (!s.flag) continue
    const arg = s.kind === 'bool' ? '' : s.kind === 'duration' ? ' duration' : s.kind === 'list' ? ' strings' : s.kind === 'map' ? ' mapStringBool' : s.kind === 'int' ? ' int' : s.kind === 'float' ? ' float' : ' string'
    rows.push([`${s.flag === 'v' ? '-v, --v' : `--${s.flag}`}${arg}`, `${s.help} [${s.path}]`])
  }
  rows.sort((a, b) => a[0].replace(/^-v, /, '').localeCompare(b[0].replace(/^-v, /, '')))
  const width = Math.max(...rows.map((r) => r[0].length)) + 2
  for (const [f, h] of rows) lines.push(`  ${f.padEnd(width)}${h}`)
  return `${lines.join('\n')}\n`
}

/** ' (did you mean --x?)' when a known name is a small edit away. */
function suggest(name: string, known: string[], prefix = ''): string {
  let best: string | undefined
  let bestD = Math.max(2, Math.floor(name.length / 4)) + 1
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase())
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  return best === undefined ? '' : `; did you mean ${prefix}${best}?`
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]!
}
