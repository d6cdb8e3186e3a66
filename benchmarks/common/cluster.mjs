// The synthetic cluster the daemon benchmarks program (proxy-ipvs,
// proxy-iptables, soak): the model (services × endpoints), its manifest files
// (Service + EndpointSlice, PER_FILE services a file), the daemon's flags.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { repoRoot, run } from './inside.mjs'
import { round2 } from './stats.mjs'

export { run }

export const NODE = 'node1'
export const OTHER_NODE = 'node2' // every endpoint lives there: no hairpin or local-endpoint special cases
export const NODE_IP = '192.168.50.10'
export const CLUSTER_CIDR = '10.240.0.0/12' // covers the endpoints 10.244.0.0 … 10.251.x.y and the new ones in 10.252+
export const PER_FILE = 100 // services (Service + EndpointSlice) per manifest file
export const NODE_PORTS_MAX = 2500 // 30000-32767 holds 2768 ports
export const ip4 = (base, n) => `10.${base + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`
export const clusterIP = (i) => ip4(96, i + 10)
// 10.244.0.0 … 10.251.255.255 hold 524 288 endpoints (52k services × 10); beyond that (100k services)
// they continue in 172.16.0.0/12, outside the cluster CIDR (it only decides masquerading, the same for all).
const IN_CLUSTER_CIDR = 8 << 16
export const endpointIP = (k) => (k < IN_CLUSTER_CIDR ? ip4(244, k) : `172.${16 + ((k - IN_CLUSTER_CIDR) >> 16)}.${((k - IN_CLUSTER_CIDR) >> 8) & 255}.${(k - IN_CLUSTER_CIDR) & 255}`)
export const newEndpointIP = (c) => ip4(252, c + 1)
export const isNodePort = (i) => i % 10 === 5 && (i - 5) / 10 < NODE_PORTS_MAX
export const nodePortOf = (i) => 30000 + (i - 5) / 10

/** The model: services and their endpoint IPs (mutable: changes replace endpoints). */
export function makeCluster({ services, endpoints }) {
  const eps = []
  for (let i = 0; i < services; i++) {
    const list = []
    for (let j = 0; j < endpoints; j++) list.push(endpointIP(i * endpoints + j))
    eps.push(list)
  }
  let nodePorts = 0
  for (let i = 0; i < services; i++) if (isNodePort(i)) nodePorts++
  return { services, endpoints, eps, nodePorts }
}

export const name = (i) => `svc-${String(i).padStart(5, '0')}`

export function serviceDoc(i) {
  const port = { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }
  const np = isNodePort(i)
  if (np) port.nodePort = nodePortOf(i)
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: name(i), namespace: 'bench' },
    spec: { type: np ? 'NodePort' : 'ClusterIP', clusterIP: clusterIP(i), clusterIPs: [clusterIP(i)], ports: [port], selector: { app: name(i) } },
  }
}

export function sliceDoc(cluster, i) {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `${name(i)}-x7k2p`, namespace: 'bench', labels: { 'kubernetes.io/service-name': name(i) } },
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: cluster.eps[i].map((e) => {
      const { ip, ready } = endpointOf(e)
      return { addresses: [ip], conditions: { ready, serving: ready, terminating: false }, nodeName: OTHER_NODE }
    }),
  }
}

export const groupFile = (dir, g) => path.join(dir, `group-${String(g).padStart(4, '0')}.json`)

export function groupText(cluster, g) {
  const items = []
  for (let i = g * PER_FILE; i < Math.min(cluster.services, (g + 1) * PER_FILE); i++) items.push(serviceDoc(i), sliceDoc(cluster, i))
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items })
}

/**
 * Rewrites the group file of service i from the model: written aside and
 * renamed over, as a careful writer does (the daemon's watcher must never see
 * a half-written file). Returns the file.
 */
export function rewriteGroup(cluster, dir, i) {
  const file = groupFile(dir, Math.floor(i / PER_FILE))
  const tmp = `${file}.tmp`
  fs.writeFileSync(tmp, groupText(cluster, Math.floor(i / PER_FILE)))
  fs.renameSync(tmp, file)
  return file
}

export function writeManifests(cluster, dir) {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  let bytes = 0
  const groups = Math.ceil(cluster.services / PER_FILE)
  for (let g = 0; g < groups; g++) {
    const text = groupText(cluster, g)
    bytes += text.length
    fs.writeFileSync(groupFile(dir, g), text)
  }
  return { files: groups, bytes }
}

/** An endpoint of the model: an IP (ready), or { ip, ready }. */
export const endpointOf = (e) => (typeof e === 'string' ? { ip: e, ready: true } : e)


/** The service changed at step c: a stride over the whole range, so consecutive changes hit different files. */
export const changedService = (c, services) => (c * 7919 + 13) % services

/** Change number c of a run: one endpoint of service changedService(c) replaced by newEndpointIP(c), in the model. */
export function applyChange(cluster, c) {
  const i = changedService(c, cluster.services)
  const j = c % cluster.endpoints
  const old = cluster.eps[i][j]
  const ip = newEndpointIP(c)
  cluster.eps[i][j] = ip
  return { i, old, ip }
}

export const daemonFlags = (mode, dir) => [
  `--proxy-mode=${mode}`, `--manifests=${dir}`, `--hostname-override=${NODE}`, `--cluster-cidr=${CLUSTER_CIDR}`,
  '--healthz-bind-address=127.0.0.1:10256', '--metrics-bind-address=127.0.0.1:10249',
]

export function procStatus(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN)
  return { rssMB: round2(kb('VmRSS') / 1024), hwmMB: round2(kb('VmHWM') / 1024) }
}


/**
 * For the in-process workers: the Daemon class (from dist/) and a config for
 * this cluster without HTTP servers; its error log lines go to `errors`.
 */
export async function daemonKit(mode) {
  const { Daemon } = await import(path.join(repoRoot, 'dist/proxy/daemon.js'))
  const { defaultConfig } = await import(path.join(repoRoot, 'dist/proxy/config.js'))
  const config = defaultConfig()
  config.mode = mode
  config.clusterCIDR = CLUSTER_CIDR
  config.hostnameOverride = NODE
  config.healthzBindAddress = ''
  config.metricsBindAddress = ''
  const errors = []
  const log = (level, msg, fields) => {
    if (level === 'error') errors.push(`${msg} ${JSON.stringify(fields ?? {})}`.slice(0, 500))
  }
  return { Daemon, config, errors, log }
}
