// The proxy's pure layers, by kube-proxy's separation: the model (Kubernetes
// objects and what the proxiers consume), change tracking, the sources, the
// configuration. Nothing here touches the kernel.
export * from './model/index.js'
export * from './changes.js'
export * from './config.js'
export { ManifestSource, ManifestError, readManifest, stderrLog } from './sources/manifests.js'
export type { Log, LogLevel, ManifestEntry, ManifestFileState, ManifestSourceOptions, ManifestStats, ReloadResult } from './sources/manifests.js'
export { yamlDocuments, yamlValue } from './yaml.js'
export type { YamlDocument } from './yaml.js'
