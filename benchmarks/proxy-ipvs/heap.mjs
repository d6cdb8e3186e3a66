#!/usr/bin/env node
// benchmarks/proxy-ipvs/heap.mjs: where the IPVS-mode daemon's heap goes, on the
// host, without a kernel. The Daemon class (dist/) loads the synthetic cluster of
// benchmarks/common/cluster.mjs from a manifest directory (source → trackers →
// proxier) and programs a null dataplane: one that accepts every operation and
// keeps nothing, so everything left on the heap is the daemon's own.
//
//   node benchmarks/proxy-ipvs/heap.mjs [--services N] [--endpoints N] [--changes N] [--snapshot] [--top N] [--json FILE] [--malloc daemon|off|TRIM,MMAP]
//
// --malloc: daemon (default) sets the daemon's malloc thresholds first thing, as
// tsproxy does (DAEMON_MALLOC_THRESHOLDS); off leaves glibc's (TSPROXY_MALLOC_TUNING=off);
// TRIM,MMAP (bytes) tries others.
//
// Prints the live heap (after a full GC) at each stage, the process RSS, and,
// with --snapshot, a heap snapshot summary: retained-by-kind table, where a kind
// is a constructor name, or for plain objects their property names (the shape),
// and strings and backing stores (elements, properties, Map tables) are counted
// under the kind of the first object that holds them.
//
// Needs --expose-gc (re-runs itself with it). The figures are V8's on this host;
// the box's RSS is measured by benchmarks/proxy-ipvs/run.js.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawnSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import * as v8 from 'node:v8'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)
if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, self, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

const { CLUSTER_CIDR, NODE, NODE_IP, OTHER_NODE, makeCluster, writeManifests, rewriteGroup, changedService, newEndpointIP } = await import('../common/cluster.mjs')
const repoRoot = path.resolve(path.dirname(self), '../..')

const opts = { services: 10000, endpoints: 10, changes: 0, snapshot: false, top: 40, json: null, malloc: 'daemon' }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a === '--services') opts.services = Number(argv[++i])
  else if (a === '--endpoints') opts.endpoints = Number(argv[++i])
  else if (a === '--changes') opts.changes = Number(argv[++i])
  else if (a === '--snapshot') opts.snapshot = true
  else if (a === '--top') opts.top = Number(argv[++i])
  else if (a === '--json') opts.json = argv[++i]
  else if (a === '--malloc') opts.malloc = argv[++i]
  else throw new Error(`unknown option ${a}`)
}

const { DAEMON_MALLOC_THRESHOLDS } = await import(path.join(repoRoot, 'dist/proxy/daemon.js'))
const malloc = opts.malloc === 'off' ? false : opts.malloc === 'daemon' ? { ...DAEMON_MALLOC_THRESHOLDS } : (() => {
  const [trimThreshold, mmapThreshold] = opts.malloc.split(',').map(Number)
  if (!Number.isInteger(trimThreshold) || !Number.isInteger(mmapThreshold)) throw new Error('--malloc must be daemon, off or TRIM,MMAP (bytes)')
  return { trimThreshold, mmapThreshold }
})()
if (malloc) {
  const { tuneMalloc } = await import(path.join(repoRoot, 'dist/memory.js'))
  if (!tuneMalloc(malloc)) throw new Error('tuneMalloc: glibc did not take the thresholds')
}

const MB = 2 ** 20
const mb = (n) => Math.round((n / MB) * 10) / 10
function live() {
  globalThis.gc()
  globalThis.gc()
  const h = process.memoryUsage()
  return { heapUsedMB: mb(h.heapUsed), heapTotalMB: mb(h.heapTotal), externalMB: mb(h.external), rssMB: mb(h.rss) }
}

/** A dataplane that accepts everything and keeps nothing: the kernel is empty at each read. */
function nullDataplane() {
  const ok = (ops) => ops.map(() => ({ ok: true }))
  const nodeAddr = { family: 'inet', address: NODE_IP, prefix: 24, index: 2, link: 'eth0', scope: 'universe', flags: [] }
  return {
    ipvs: { listServices: async () => [], listDestinations: async () => [], batch: async (ops) => ok(ops), setTimeouts: async () => {} },
    ipset: {
      create: async () => {}, batch: async (ops) => ok(ops), destroy: async () => {}, listNames: async () => [],
      // Keeps nothing, so no set is ever there to read (the proxier then assumes no maxelem).
      header: async () => { throw Object.assign(new Error('ENOENT: no such set'), { code: 'ENOENT', errno: 2 }) },
      syncMembers: async (_set, entries) => ({ added: entries.length, deleted: 0, errors: [] }),
      // A set the kernel has no header for holds any number of entries (the proxier never grows it).
      header: async () => Promise.reject(Object.assign(new Error('no such set'), { code: 'ENOENT' })), replaceMembers: async () => {},
    },
    rtnl: {
      addDummy: async () => {}, deleteLink: async () => false, getLink: async () => undefined, batch: async (ops) => ok(ops),
      listAddresses: async (f = {}) => (f.link === undefined && (f.family === undefined || f.family === 'inet') ? [nodeAddr] : []),
    },
    tables: { sync: async () => ({ repaired: [], committed: false }), remove: async () => ({ repaired: [], committed: false }) },
    conntrack: { delete: async () => 0 },
    ensureSysctl: async () => false,
    close: async () => {},
  }
}

const memSysctl = () => {
  const v = new Map()
  return { get: async (k) => v.get(k) ?? 0, set: async (k, n) => void v.set(k, n) }
}

const base = live()
let cluster = makeCluster({ services: opts.services, endpoints: opts.endpoints })
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsproxy-heap-'))
writeManifests(cluster, dir)
const { Daemon } = await import(path.join(repoRoot, 'dist/proxy/daemon.js'))
const { defaultConfig } = await import(path.join(repoRoot, 'dist/proxy/config.js'))
const config = defaultConfig()
Object.assign(config, { mode: 'ipvs', clusterCIDR: CLUSTER_CIDR, hostnameOverride: NODE, healthzBindAddress: '', metricsBindAddress: '' })
config.ipvs.syncPeriod = 3600_000
const errors = []
const log = (level, msg, fields) => {
  if (level === 'error') errors.push(`${msg} ${JSON.stringify(fields ?? {})}`.slice(0, 300))
}
// Layer by layer, the same pieces the daemon wires: what each one adds to the live heap.
const layers = await (async () => {
  const { ManifestSource } = await import(path.join(repoRoot, 'dist/proxy/sources/manifests.js'))
  const { ServiceChangeTracker, EndpointsChangeTracker, applyChanges, trackerSink } = await import(path.join(repoRoot, 'dist/proxy/changes.js'))
  const { IpvsProxier } = await import(path.join(repoRoot, 'dist/proxy/ipvs/proxier.js'))
  const h0 = live().heapUsedMB
  const services = new ServiceChangeTracker()
  const endpoints = new EndpointsChangeTracker({ nodeName: NODE })
  const source = new ManifestSource({ path: dir, sink: trackerSink(services, endpoints), log, pollMs: 0 })
  await source.load()
  const h1 = live().heapUsedMB
  const changes = applyChanges(services, endpoints)
  const h2 = live().heapUsedMB
  const proxier = new IpvsProxier(nullDataplane(), { family: 'inet', clusterCIDR: CLUSTER_CIDR, log })
  await proxier.sync({ ports: services.ports, endpoints: (k) => endpoints.endpoints(k) }, changes.servicePorts, { full: true })
  const h3 = live().heapUsedMB
  const r = (x) => Math.round(x * 10) / 10
  const out = {
    'manifest source + pending changes (source.load())': r(h1 - h0),
    'trackers applied (applyChanges(); the pending changes folded in)': r(h2 - h1),
    "IPVS proxier's desired + applied pictures (one full sync)": r(h3 - h2),
    total: r(h3 - h0),
  }
  await source.close()
  return out
})()
const afterImport = live()
const daemon = new Daemon({ config, manifests: dir, log, dataplane: nullDataplane(), nodeName: NODE, sysctl: memSysctl(), malloc })
const t0 = performance.now()
await daemon.start()
const startMs = Math.round(performance.now() - t0)
const hwm = process.resourceUsage().maxRSS / 1024
const afterStart = live()
let changesMs = null
if (opts.changes > 0) {
  const t = performance.now()
  for (let c = 0; c < opts.changes; c++) {
    const i = changedService(c, cluster.services)
    cluster.eps[i][c % cluster.endpoints] = newEndpointIP(c)
    await daemon.settled([rewriteGroup(cluster, dir, i)])
  }
  changesMs = Math.round(performance.now() - t)
}
const afterChanges = live()
if (errors.length) throw new Error(`daemon logged errors: ${errors.slice(0, 3).join(' | ')}`)

const result = {
  services: opts.services, endpoints: opts.endpoints, node: process.version, malloc, startMs, changes: opts.changes, changesMs,
  peakRssMB: Math.round(hwm * 10) / 10,
  stages: { base, afterImport, afterStart, afterChanges },
  daemonHeapMB: Math.round((afterChanges.heapUsedMB - afterImport.heapUsedMB) * 10) / 10,
}
console.log(`${opts.services} services × ${opts.endpoints} endpoints (other node: ${OTHER_NODE}); start ${startMs} ms; node ${process.version}; malloc ${malloc ? `trim ${malloc.trimThreshold / MB} MiB, mmap ${malloc.mmapThreshold / MB} MiB` : "glibc's"}`)
console.log(`live heap after GC: before ${afterImport.heapUsedMB} MB, after start ${afterStart.heapUsedMB} MB, after ${opts.changes} changes ${afterChanges.heapUsedMB} MB ` +
  `→ the daemon's ${result.daemonHeapMB} MB; heap total ${afterChanges.heapTotalMB} MB; RSS ${afterChanges.rssMB} MB (peak ${result.peakRssMB} MB)`)

console.log('by layer (MB of live heap each adds):')
for (const [k, v] of Object.entries(layers)) console.log(`  ${String(v).padStart(6)}  ${k}`)
result.layers = layers

if (opts.snapshot) {
  cluster = null // the harness's own model: out of the snapshot
  const file = v8.writeHeapSnapshot(path.join(os.tmpdir(), `tsproxy-heap-${process.pid}.heapsnapshot`))
  const kinds = summarize(JSON.parse(fs.readFileSync(file, 'utf8')))
  fs.rmSync(file)
  result.kinds = kinds.slice(0, opts.top)
  const total = kinds.reduce((s, k) => s + k.bytes, 0)
  console.log(`\nheap snapshot: ${mb(total)} MB in ${kinds.reduce((s, k) => s + k.count, 0)} objects; top ${opts.top} kinds (self size, with their strings and backing stores)`)
  console.log(`${'MB'.padStart(7)} ${'count'.padStart(9)}  kind`)
  for (const k of kinds.slice(0, opts.top)) console.log(`${mb(k.bytes).toFixed(1).padStart(7)} ${String(k.count).padStart(9)}  ${k.kind}`)
}
await daemon.stop()
fs.rmSync(dir, { recursive: true, force: true })
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n')

/**
 * A class histogram from a heap snapshot. Each object counts under its kind
 * (constructor, or `{shape}` for plain objects); strings, numbers, arrays and
 * V8's hidden stores count under the kind of the first object found holding
 * them, as `kind .edge` (strings) or `kind []` (stores).
 */
function summarize(snap) {
  const m = snap.snapshot.meta
  const nf = m.node_fields.length
  const ef = m.edge_fields.length
  const N = snap.nodes
  const E = snap.edges
  const S = snap.strings
  const nType = m.node_fields.indexOf('type')
  const nName = m.node_fields.indexOf('name')
  const nSelf = m.node_fields.indexOf('self_size')
  const nEdges = m.node_fields.indexOf('edge_count')
  const eType = m.edge_fields.indexOf('type')
  const eName = m.edge_fields.indexOf('name_or_index')
  const eTo = m.edge_fields.indexOf('to_node')
  const nodeTypes = m.node_types[nType]
  const edgeTypes = m.edge_types[eType]
  const count = N.length / nf
  const firstEdge = new Uint32Array(count + 1)
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e
    e += N[i * nf + nEdges] * ef
  }
  firstEdge[count] = E.length
  const type = (i) => nodeTypes[N[i * nf + nType]]
  const name = (i) => S[N[i * nf + nName]]
  // Plain objects: their property names make the kind.
  const kindOf = new Array(count)
  for (let i = 0; i < count; i++) {
    const t = type(i)
    if (t === 'object' || t === 'closure' || t === 'regexp') {
      let k = t === 'closure' ? '(closure)' : name(i)
      if (k === 'Object') {
        const props = []
        for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ef) {
          if (edgeTypes[E[e + eType]] !== 'property') continue
          const p = S[E[e + eName]]
          if (p !== '__proto__' && p !== 'map') props.push(p)
        }
        k = `{${props.slice(0, 8).join(',')}${props.length > 8 ? ',…' : ''}}`
      }
      kindOf[i] = k
    }
  }
  // Arrays and Maps are named by what holds them: 'Array ← {claims,…}.entries'.
  const short = (k) => (k.length > 40 ? `${k.slice(0, 39)}…}` : k)
  for (let i = 0; i < count; i++) {
    if (kindOf[i] === undefined) continue
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ef) {
      const et = edgeTypes[E[e + eType]]
      if (et !== 'property' && et !== 'element' && et !== 'internal') continue
      const to = E[e + eTo] / nf
      const k = kindOf[to]
      if (k !== 'Array' && k !== 'Map' && k !== 'Set') continue
      const label = et === 'property' ? `.${S[E[e + eName]]}` : et === 'element' ? '[i]' : `.(${S[E[e + eName]]})`
      const parent = kindOf[i].split(' ← ')
      kindOf[to] = `${k} ← ${parent[0] === 'Array' && parent.length > 1 ? `(${short(parent[1])})` : short(parent[0])}${label}`
    }
  }
  // Owners: each non-object node goes to the first object (in snapshot order, BFS from the roots) that points at it.
  const owner = new Int32Array(count).fill(-1)
  const via = new Array(count)
  for (let pass = 0; pass < 3; pass++) {
    for (let i = 0; i < count; i++) {
      const own = kindOf[i] !== undefined ? i : owner[i]
      if (own < 0) continue
      for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += ef) {
        const et = edgeTypes[E[e + eType]]
        if (et === 'weak' || et === 'shortcut') continue
        const to = E[e + eTo] / nf
        if (kindOf[to] !== undefined || owner[to] >= 0) continue
        owner[to] = own
        via[to] = et === 'property' && kindOf[i] !== undefined ? `.${S[E[e + eName]]}` : et === 'element' ? '[i]' : et === 'internal' || et === 'hidden' ? '' : ''
      }
    }
  }
  const hist = new Map()
  const add = (k, bytes) => {
    let h = hist.get(k)
    if (!h) hist.set(k, (h = { kind: k, bytes: 0, count: 0 }))
    h.bytes += bytes
    h.count++
  }
  for (let i = 0; i < count; i++) {
    const self = N[i * nf + nSelf]
    if (self === 0) continue
    if (kindOf[i] !== undefined) add(kindOf[i], self)
    else if (owner[i] >= 0) {
      const t = type(i)
      const what = t === 'string' || t === 'concatenated string' || t === 'sliced string' ? `string${via[i] ?? ''}` : t === 'number' ? 'number' : `${t}${via[i] ?? ''}`
      add(`${kindOf[owner[i]]} ▸ ${what}`, self)
    } else add(`(${type(i)}) ${name(i).slice(0, 40)}`, self)
  }
  return [...hist.values()].sort((a, b) => b.bytes - a.bytes)
}
