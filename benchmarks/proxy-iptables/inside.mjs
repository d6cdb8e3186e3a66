// The measuring half of benchmarks/proxy-iptables: runs inside the kernel box
// (run.js boots it), as root, against the box's real netfilter (legacy x_tables).
//
// For each size (services × 10 endpoints), three workers, each a node process in
// a network namespace of its own (`unshare -n`: empty nat and filter tables):
//
//   cold      spawns the daemon (dist/proxy/main.js --proxy-mode=iptables), times
//             spawn → `full sync` / `tsproxy running`, reads its VmRSS/VmHWM,
//             checks the tables with iptables-legacy-save and keeps that text
//             (nat + filter) for the peer: what the daemon wrote, byte for byte.
//   changes   the Daemon class in this process: start, then one EndpointSlice
//             change at a time (an endpoint replaced, its group file rewritten),
//             timed to `daemon.settled([file])`, with the daemon's own sync ms and
//             libiptc's commit breakdown; checked with `iptables-legacy -S` on the
//             service's chain; at the end the tables are saved again.
//   watch     the path a cluster uses (benchmarks/common/watch.mjs): the test API
//             server in this worker, the daemon spawned with --kubeconfig, one
//             EndpointSlice update per watch event, timed to the daemon's sync line.
//   peer      what kube-proxy would exec: `iptables-legacy-restore --noflush` of
//             the daemon's saved text into the empty netns (the cold sync), then
//             per change the text kube-proxy's partial sync writes (the whole
//             filter table, nat's shared chains, the changed service's SVC/EXT
//             and SEP chains, the old SEP flushed and deleted), built from the
//             daemon's final save; at the end its save must equal the daemon's.
//
//   node inside.mjs                 the orchestrator: config in PROXY_IPTABLES_CONFIG, raw results to cfg.out
//   node inside.mjs --worker JSON   one worker, in the current netns; prints one JSON line
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import {
  CLUSTER_CIDR, NODE, NODE_IP, daemonKit, NODE_PORTS_MAX, OTHER_NODE, PER_FILE, applyChange, daemonFlags, makeCluster,
  name, procStatus, rewriteGroup, run, writeManifests,
} from '../common/cluster.mjs'
import {
  MAIN, coldRecord, daemonStatus, orchestration, repoRoot, sizeHeading, sleep, startUntilRunning, stepper, stopDaemon, toolVersion, workerMain, writeRaw,
} from '../common/inside.mjs'
import { GC_ENV, gcIn, gcRecorder, gcTail, nowEpoch } from '../common/gc.mjs'
import { round2, stats } from '../common/stats.mjs'
import { watchWorker } from '../common/watch.mjs'

const self = fileURLToPath(import.meta.url)

// ---- the oracles: iptables-legacy-save text, never our library ---------------------------

function timed(cmd, args, input) {
  const t0 = performance.now()
  run(cmd, args, input === undefined ? {} : { input })
  return performance.now() - t0
}

/** iptables-legacy-save of filter and nat (the order iptables-restore reads them in one go). */
const save = () => run('iptables-legacy-save', ['-t', 'filter']).stdout + run('iptables-legacy-save', ['-t', 'nat']).stdout

/** Parses save text: per table, chains in order with builtin flag and rule lines. */
function parseSave(text) {
  const tables = new Map()
  let t
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) tables.set(line.slice(1), (t = new Map()))
    else if (line.startsWith(':')) {
      const [chain, policy] = line.slice(1).split(' ')
      t.set(chain, { builtin: policy !== '-', rules: [] })
    } else if (line.startsWith('-A ')) {
      const chain = line.slice(3, line.indexOf(' ', 3))
      t.get(chain).rules.push(line)
    }
  }
  return tables
}

/** The same table gives the same digest: comments and counters dropped. */
function digestOf(text) {
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => (l.startsWith(':') ? l.replace(/\[\d+:\d+\]$/, '[0:0]') : l))
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16)
}

const PORT_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/

/** Counts by table: chains, rules, and what a kube-proxy layout must hold. */
function countsOf(tables) {
  const out = {}
  for (const [table, chains] of tables) {
    let rules = 0
    for (const c of chains.values()) rules += c.rules.length
    out[table] = { chains: chains.size, rules }
  }
  const nat = tables.get('nat') ?? new Map()
  const prefix = (p) => [...nat.keys()].filter((c) => c.startsWith(p)).length
  out.svcChains = prefix('KUBE-SVC-')
  out.sepChains = prefix('KUBE-SEP-')
  out.extChains = prefix('KUBE-EXT-')
  out.kubeServicesRules = nat.get('KUBE-SERVICES')?.rules.length ?? null
  out.kubeNodePortsRules = nat.get('KUBE-NODEPORTS')?.rules.length ?? null
  return out
}

/** What the counts must be for `cluster` (kube-proxy's layout: one SVC and E SEPs per service, an EXT per NodePort). */
function checkCounts(have, c) {
  const want = { svcChains: c.services, sepChains: c.services * c.endpoints, extChains: c.nodePorts, kubeServicesRules: c.services + 1, kubeNodePortsRules: c.nodePorts }
  const bad = Object.keys(want).filter((k) => have[k] !== want[k])
  return bad.length ? `tables hold ${bad.map((k) => `${k}=${have[k]} (expected ${want[k]})`).join(', ')}` : undefined
}

/** Per service name: its port chains (SVC, EXT, SEP…) in nat, found by the rules' comments. */
function chainsByService(tables) {
  const by = new Map()
  for (const [chain, c] of tables.get('nat')) {
    if (!PORT_CHAIN.test(chain)) continue
    for (const r of c.rules) {
      const m = /--comment "?[^/ ]+\/(svc-\d+):/.exec(r)
      if (!m) continue
      let s = by.get(m[1])
      if (!s) by.set(m[1], (s = []))
      s.push(chain)
      break
    }
  }
  return by
}

function netnsSetup() {
  run('sh', ['-c', `ip link set lo up && ip link add eth0 type dummy && ip addr add ${NODE_IP}/24 dev eth0 && ip link set eth0 up`])
  const t = parseSave(save())
  for (const [table, chains] of t) {
    const n = [...chains.values()].reduce((a, c) => a + c.rules.length, 0)
    if (n || [...chains.values()].some((c) => !c.builtin)) throw new Error(`the ${table} table was not empty`)
  }
}

// ---- worker: cold start of the daemon process -----------------------------------------

async function coldWorker(spec, cfg) {
  netnsSetup()
  const cluster = makeCluster(spec.size)
  const flags = [...(cfg.daemonNodeFlags ?? []), MAIN, ...daemonFlags('iptables', spec.dir)]
  const d = await startUntilRunning(flags, cfg.coldTimeoutS, { env: GC_ENV })
  const memAtRunning = await daemonStatus(d)
  await sleep(2000)
  const memLater = await daemonStatus(d)
  await stopDaemon(d)
  // Untimed, after the daemon stopped (it leaves the rules): what it wrote.
  const t1 = performance.now()
  const text = save()
  const saveMs = performance.now() - t1
  const counts = countsOf(parseSave(text))
  const bad = checkCounts(counts, cluster)
  if (bad) throw new Error(`after the daemon's cold start: ${bad}`)
  fs.writeFileSync(spec.saveTo, text)
  return {
    ...coldRecord(d, memAtRunning, memLater),
    counts,
    digest: digestOf(text),
    saveBytes: text.length,
    saveMs: round2(saveMs),
  }
}

// ---- worker: the Daemon class in this process: one change at a time ----------------------

async function changesWorker(spec, cfg) {
  netnsSetup()
  const cluster = makeCluster(spec.size)
  const { Daemon, config, errors, log } = await daemonKit('iptables')
  const { openIptablesDataplane } = await import(path.join(repoRoot, 'dist/proxy/iptables/dataplane.js'))
  // No periodic full resync in the middle (it is the cold start), and no 1 s
  // spacing between syncs (kube-proxy's default min-sync-period): one change is timed, not the rate limit.
  config.iptables.syncPeriod = 3600_000
  config.iptables.minSyncPeriod = 0
  // The real dataplane, its commits recorded (libiptc's own breakdown of each).
  const real = await openIptablesDataplane('inet')
  const commits = []
  const dp = {
    ...real,
    begin(table) {
      const tx = real.begin(table)
      return new Proxy(tx, {
        get(target, prop) {
          if (prop === 'commit') {
            return async () => {
              const t0 = performance.now()
              const info = await target.commit()
              commits.push({ table, ms: performance.now() - t0, ...info })
              return info
            }
          }
          const v = target[prop]
          return typeof v === 'function' ? v.bind(target) : v
        },
      })
    },
  }
  const daemon = new Daemon({ config, manifests: spec.dir, log, iptablesDataplane: () => dp })
  const t0 = performance.now()
  await daemon.start()
  const startMs = performance.now() - t0
  const startCommits = commits.splice(0)
  const before = save()
  const beforeTables = parseSave(before)
  const countsBefore = countsOf(beforeTables)
  const bad = checkCounts(countsBefore, cluster)
  if (bad) throw new Error(`after start: ${bad}`)
  if (spec.coldDigest && digestOf(before) !== spec.coldDigest) throw new Error(`after start: the tables differ from the cold daemon's (${digestOf(before)} vs ${spec.coldDigest})`)
  const svcChainOf = new Map()
  for (const r of beforeTables.get('nat').get('KUBE-SERVICES').rules) {
    const m = /--comment "?[^/ ]+\/(svc-\d+):http cluster IP"? .* -j (KUBE-SVC-\S+)/.exec(r)
    if (m) svcChainOf.set(m[1], m[2])
  }

  const rewrite = (i) => [rewriteGroup(cluster, spec.dir, i)]
  const gc = gcRecorder()
  const phaseStart = nowEpoch()
  const settledWin = []
  const settledMs = []
  const syncMs = []
  const checkMs = []
  const perChange = []
  const changes = []
  for (let c = 0; c < spec.changes; c++) {
    const { i, old, ip } = applyChange(cluster, c)
    changes.push({ c, service: name(i), old, ip })
    const files = rewrite(i)
    commits.length = 0
    const t = performance.now()
    await daemon.settled(files)
    settledMs.push(performance.now() - t)
    settledWin.push([performance.timeOrigin + t, nowEpoch()])
    syncMs.push(daemon.lastSync.ms)
    perChange.push({ ops: daemon.lastSync.ops.iptables, full: daemon.lastSync.full, commits: commits.map((x) => ({ table: x.table, ms: round2(x.ms), lockMs: round2(x.lockMs), loadMs: round2(x.loadMs), applyMs: round2(x.applyMs), commitMs: round2(x.commitMs), snapshotReused: x.snapshotReused, entries: x.entries, bytes: x.bytes })) })
    // Checked (untimed) with the standard tool: the service's chain jumps to the new endpoint, not the old.
    const tc = performance.now()
    const svc = svcChainOf.get(name(i))
    const text = run('iptables-legacy', ['-w', '-t', 'nat', '-S', svc]).stdout
    checkMs.push(performance.now() - tc)
    if (!text.includes(`-> ${ip}:8080`) || text.includes(`-> ${old}:8080`)) throw new Error(`change ${c}: ${svc} of ${name(i)} does not jump to ${ip} alone:\n${text.slice(0, 1500)}`)
  }
  const phaseEnd = nowEpoch()
  await sleep(100) // the last GC entries
  gc.stop()
  await daemon.settled()
  const after = save()
  const countsAfter = countsOf(parseSave(after))
  const badAfter = checkCounts(countsAfter, cluster)
  if (badAfter) throw new Error(`after the changes: ${badAfter}`)
  if (errors.length) throw new Error(`daemon logged errors: ${errors.slice(0, 3).join(' | ')}`)
  fs.writeFileSync(spec.saveTo, after)
  const rss = process.memoryUsage().rss
  await daemon.stop()
  await real.close()
  const pick = (k) => stats(perChange.map((p) => p.commits.reduce((a, x) => a + (x[k] ?? 0), 0)))
  return {
    startInProcessMs: round2(startMs),
    startCommits: startCommits.map((x) => ({ table: x.table, ms: round2(x.ms), lockMs: round2(x.lockMs), loadMs: round2(x.loadMs), applyMs: round2(x.applyMs), commitMs: round2(x.commitMs), entries: x.entries, bytes: x.bytes })),
    settled: stats(settledMs),
    sync: stats(syncMs),
    // This process's GC pauses (daemon and harness share it): over the changes, and inside each settled() sample.
    gc: { phase: gcIn(gc.entries, phaseStart, phaseEnd), settled: gcTail(settledMs, settledWin, gc.entries) },
    commit: { ms: pick('ms'), lockMs: pick('lockMs'), loadMs: pick('loadMs'), applyMs: pick('applyMs'), kernelReplaceMs: pick('commitMs'), perChange: perChange.map((p) => p.commits.length), tables: [...new Set(perChange.flatMap((p) => p.commits.map((x) => x.table)))] },
    opsPerChange: stats(perChange.map((p) => p.ops)),
    checkMs: stats(checkMs),
    harnessRssMB: round2(rss / 2 ** 20),
    countsBefore,
    countsAfter,
    digestBefore: digestOf(before),
    digestAfter: digestOf(after),
    changes,
    samples: { settledMs: settledMs.map(round2), syncMs: syncMs.map(round2) },
    perChange,
  }
}

// ---- worker: what kube-proxy would exec ----------------------------------------------------

/**
 * The iptables-restore input of kube-proxy's partial sync for one changed service
 * (pkg/proxy/iptables/proxier.go, MinimizeIPTablesRestore): the whole filter table
 * (its chains are always written), nat's chains that are not per-port (KUBE-SERVICES
 * with every service's rule, KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ), and
 * every chain of the changed service (SVC, EXT, all its SEPs); the replaced endpoint's
 * SEP chain declared (flushed) and deleted with -X, so the result is the daemon's table.
 * Built-in chains are left out (with --noflush their rules would be appended again).
 */
function changeText(final, byService, svc, staleChains) {
  const out = []
  for (const table of ['filter', 'nat']) {
    const chains = final.get(table)
    const keep = [...chains].filter(([c, v]) => !v.builtin && (table === 'filter' || !PORT_CHAIN.test(c)))
    if (table === 'nat') for (const c of byService.get(svc)) keep.push([c, chains.get(c)])
    const stale = table === 'nat' ? staleChains : []
    out.push(`*${table}`, ...keep.map(([c]) => `:${c} - [0:0]`), ...stale.map((c) => `:${c} - [0:0]`))
    for (const [, v] of keep) out.push(...v.rules)
    for (const c of stale) out.push(`-X ${c}`)
    out.push('COMMIT')
  }
  return out.join('\n') + '\n'
}

async function peerWorker(spec, cfg) {
  netnsSetup()
  const cluster = makeCluster(spec.size)
  const coldText = fs.readFileSync(spec.coldSave, 'utf8')
  const finalText = fs.readFileSync(spec.finalSave, 'utf8')
  const restore = ['-w', '--noflush']
  // The cold sync: the daemon's own tables, restored into the empty netns.
  const coldMs = timed('iptables-legacy-restore', restore, coldText)
  const afterCold = save()
  if (digestOf(afterCold) !== digestOf(coldText)) throw new Error('after the restore: the tables differ from what the daemon wrote')
  const counts = countsOf(parseSave(afterCold))
  const bad = checkCounts(counts, cluster)
  if (bad) throw new Error(`after the restore: ${bad}`)
  // One change each: kube-proxy's partial-sync text for that service.
  const initial = parseSave(coldText)
  const final = parseSave(finalText)
  const initialBy = chainsByService(initial)
  const finalBy = chainsByService(final)
  const samples = []
  const bytes = []
  const lines = []
  for (const ch of spec.changes) {
    const was = new Set(finalBy.get(ch.service))
    const stale = initialBy.get(ch.service).filter((c) => !was.has(c))
    if (stale.length !== 1) throw new Error(`${ch.service}: ${stale.length} stale chains, expected the replaced endpoint's one`)
    const text = changeText(final, finalBy, ch.service, stale)
    bytes.push(text.length)
    lines.push(text.split('\n').length - 1)
    samples.push(timed('iptables-legacy-restore', restore, text))
  }
  const end = save()
  if (digestOf(end) !== digestOf(finalText)) throw new Error('after the changes: the tables differ from the daemon\'s after its changes')
  // Where a restore's time goes: a process start, and a restore that reads nat and commits nothing.
  const base = { processStartMs: [], readOnlyRestoreMs: [] }
  for (let r = 0; r < spec.baselineReps; r++) {
    base.processStartMs.push(timed('true', []))
    base.readOnlyRestoreMs.push(timed('iptables-legacy-restore', restore, '*nat\nCOMMIT\n'))
  }
  return {
    coldRestoreMs: round2(coldMs),
    coldTextBytes: coldText.length,
    coldTextLines: coldText.split('\n').length - 1,
    counts,
    change: stats(samples),
    changeTextBytes: stats(bytes),
    changeTextLines: stats(lines),
    baseline: { processStartMs: stats(base.processStartMs), readOnlyRestoreMs: stats(base.readOnlyRestoreMs) },
    digestEnd: digestOf(end),
    samples: samples.map(round2),
  }
}

// ---- worker: the path a cluster uses: the test API server, the daemon with --kubeconfig ----

const iptablesMode = {
  name: 'iptables',
  // No periodic full sync among the changes and no 1 s spacing between syncs, as in the changes worker.
  flags: ['--proxy-mode=iptables', '--iptables-sync-period=1h', '--iptables-min-sync-period=0'],
  netnsSetup,
  checkCold: (cluster) => checkCounts(countsOf(parseSave(save())), cluster),
  // Polling iptables-legacy (a process, and the xtables lock the daemon's commit needs) would
  // slow what it measures: a change is timed to the daemon's sync line, then checked once.
  pollKernel: false,
  async openProbe() {
    const svcChainOf = new Map()
    for (const r of parseSave(save()).get('nat').get('KUBE-SERVICES').rules) {
      const m = /--comment "?[^/ ]+\/(svc-\d+):http cluster IP"? .* -j (KUBE-SVC-\S+)/.exec(r)
      if (m) svcChainOf.set(m[1], m[2])
    }
    return {
      seen: (i, ip) => run('iptables-legacy', ['-w', '-t', 'nat', '-S', svcChainOf.get(name(i))]).stdout.includes(`-> ${ip}:8080`),
      close: () => undefined,
    }
  },
  checkEnd(cluster, changed) {
    const tables = parseSave(save())
    const bad = checkCounts(countsOf(tables), cluster)
    if (bad) return bad
    const by = chainsByService(tables)
    for (const [i, { old, ip }] of changed) {
      const rules = (by.get(name(i)) ?? []).flatMap((c) => tables.get('nat').get(c).rules).join('\n')
      if (!rules.includes(`-> ${ip}:8080`) || rules.includes(`-> ${old}:8080`)) return `${name(i)}: its chains do not lead to ${ip} alone`
    }
    return undefined
  },
}

// ---- orchestrator ------------------------------------------------------------------------

async function orchestrate() {
  const { cfg, log, env, runWorker, pause } = orchestration(self, 'PROXY_IPTABLES_CONFIG', { iptables: toolVersion('iptables-legacy') })
  const sizes = cfg.sizes ?? [1000, 10000]
  const endpoints = cfg.endpoints ?? 10
  const nChanges = cfg.changes ?? 40
  const only = cfg.only ? new Set(cfg.only) : null

  const results = []
  const out = { env, config: { sizes, endpoints, changes: nChanges, apiQps: cfg.apiQps ?? 0, perFile: PER_FILE, nodePortsMax: NODE_PORTS_MAX, node: NODE, endpointNode: OTHER_NODE, clusterCIDR: CLUSTER_CIDR }, sizes: results }
  for (const services of sizes) {
    const size = { services, endpoints }
    const cluster = makeCluster(size)
    const base = `/run/tsproxy-bench-proxy-iptables/${services}`
    const dir = `${base}/manifests`
    const written = writeManifests(cluster, dir)
    const coldSave = `${base}/cold.save`
    const finalSave = `${base}/final.save`
    const res = { services, endpoints, nodePorts: cluster.nodePorts, manifests: written, cold: null, changes: null, peer: null, watch: null, errors: [] }
    log(sizeHeading(cluster, written))
    const step = stepper(runWorker, res, log, 3)
    if (!only || only.has('cold')) res.cold = step('cold', { size, dir, saveTo: coldSave }, (v) =>
      `cold: daemon running after ${v.wallMs.toFixed(0)} ms (full sync logged ${v.syncMs} ms), RSS ${v.mem.rssMB} MB (peak ${v.mem.hwmMB}); nat ${v.counts.nat.chains} chains / ${v.counts.nat.rules} rules, filter ${v.counts.filter.rules} rules ✓`)
    if (res.cold) await pause()
    writeManifests(cluster, dir)
    if (res.cold && (!only || only.has('changes'))) {
      res.changes = step('changes', { size, dir, changes: nChanges, saveTo: finalSave, coldDigest: res.cold.digest }, (v) =>
        `changes: start in-process ${v.startInProcessMs} ms; settled p50 ${v.settled.p50} p99 ${v.settled.p99} ms; sync p50 ${v.sync.p50} p99 ${v.sync.p99} ms; commit p50 ${v.commit.ms.p50} (kernel replace ${v.commit.kernelReplaceMs.p50}) ms ✓`)
      await pause()
    }
    if (res.cold && res.changes && (!only || only.has('peer'))) {
      res.peer = step('peer', { size, coldSave, finalSave, changes: res.changes.changes, baselineReps: cfg.baselineReps ?? 10 }, (v) =>
        `peer: iptables-legacy-restore (cold) ${v.coldRestoreMs} ms ✓; one change (--noflush, ${v.changeTextLines.p50} lines) p50 ${v.change.p50} p99 ${v.change.p99} ms; process start ${v.baseline.processStartMs.p50} ms, read-only restore ${v.baseline.readOnlyRestoreMs.p50} ms ✓`)
    }
    fs.rmSync(base, { recursive: true, force: true })
    if (!only || only.has('watch')) {
      res.watch = step('watch', { size, changes: nChanges }, (v) =>
        `watch: API store ${(v.cold.storeMs / 1000).toFixed(1)} s; daemon running after ${v.cold.wallMs.toFixed(0)} ms, first list → full sync ${v.cold.firstListToFullSyncMs} ms ` +
        `(sync logged ${v.cold.syncMs} ms, ${v.cold.listRequests} list requests), RSS ${v.cold.mem.rssMB} MB; ` +
        `event → sync line p50 ${v.e2e.p50} p99 ${v.e2e.p99} ms (sync p50 ${v.sync.p50}; GC in the changes: ${v.gc.phase.count}, ${v.gc.phase.totalMs} ms, max ${v.gc.phase.maxMs} ms) ✓`)
    }
    results.push(res)
    writeRaw(cfg.out, out, log, true)
  }
  writeRaw(cfg.out, out, log)
}

// ---- main ----------------------------------------------------------------------------------

const work = { cold: coldWorker, changes: changesWorker, peer: peerWorker, watch: (spec, cfg) => watchWorker(spec, cfg, iptablesMode) }
if (!(await workerMain('PROXY_IPTABLES_CONFIG', async (spec, cfg) => ({ value: await work[spec.kind](spec, cfg) })))) await orchestrate()
