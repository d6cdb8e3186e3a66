// The KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): its type,
// kube-proxy's defaults, and one table of its settings (path, kind, flag,
// check, help) that the file reader, the flag parser and --help all read.
// Durations are held in milliseconds.
import { cidr, cidrFamily, ipFamilyOf, isObject } from '../model/fields.js'

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
  /** Set the node up (modules, sysctls) and exit: the privileged step, as kube-proxy --init-only. */
  initOnly: boolean
  help: boolean
  version: boolean
  /** Positional arguments (tsproxy's subcommands). */
  args: string[]
}

// ---- the settings ----------------------------------------------------------------------

export type Kind = 'string' | 'bool' | 'int' | 'float' | 'duration' | 'list' | 'map'

export interface Setting {
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

export const SETTINGS: Setting[] = [
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
export const IGNORED = new Set(['winkernel', 'portRange', 'udpIdleTimeout', 'logging.flushFrequency', 'logging.vmodule', 'logging.options', 'clientConnection.acceptContentTypes'])


export const BY_PATH = new Map(SETTINGS.map((s) => [s.path, s]))
export const BY_FLAG = new Map(SETTINGS.filter((s) => s.flag).map((s) => [s.flag!, s]))

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
export const ZERO_IS_DEFAULT = new Set([
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

export function getPath(o: unknown, path: string): unknown {
  let v: unknown = o
  for (const k of path.split('.')) v = isObject(v) ? v[k] : undefined
  return v
}

export function setPath(o: object, path: string, value: unknown): void {
  const keys = path.split('.')
  let v = o as Record<string, unknown>
  for (const k of keys.slice(0, -1)) v = v[k] as Record<string, unknown>
  v[keys[keys.length - 1]!] = value
}

/** kube-proxy's AppendPortIfNeeded: a bare IP gets the default port. */
function appendPortIfNeeded(addr: string, port: number): string {
  const f = ipFamilyOf(addr)
  if (!f) return addr
  return f === 'IPv4' ? `${addr}:${port}` : `[${addr}]:${port}`
}
