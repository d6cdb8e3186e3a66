// The proxy's pure layers, by kube-proxy's separation: the model (Kubernetes
// objects and what the proxiers consume), change tracking, the sources, the
// configuration, and the daemon's observability (metrics, health, logs, HTTP).
// Nothing here touches the kernel.
export * from './model/index.js'
export * from './changes.js'
export * from './config.js'
export { ManifestSource, ManifestError, readManifest, stderrLog } from './sources/manifests.js'
export type { Log, LogLevel } from './types.js'
export type { ManifestEntry, ManifestFileState, ManifestSourceOptions, ManifestStats, ReloadResult } from './sources/manifests.js'
export { yamlDocuments, yamlValue } from './yaml.js'
export type { YamlDocument } from './yaml.js'
export { Counter, Gauge, Histogram, MetricError, Registry, exponentialBuckets, followCounter, formatNumber, kubeProxyMetrics, linearBuckets, processMetrics } from './metrics.js'
export type { IptablesMetrics, KubeProxyMetrics, KubeProxyMetricsOptions, Labels, MetricType, ProcessStats, RegistryOptions } from './metrics.js'
export { ProxyHealth } from './health.js'
export type { HealthStatus, ProxyHealthOptions } from './health.js'
export { DEBUG_VERBOSITY, makeLogger } from './log.js'
export type { LoggerOptions } from './log.js'
export { METRICS_CONTENT_TYPE, goTime, healthRoutes, metricsRoutes, startServer } from './http.js'
export type { Reply, Route, RunningServer, ServerOptions } from './http.js'
