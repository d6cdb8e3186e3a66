// The measuring half of benchmarks/soak: runs inside the kernel box (run.js boots
// it), as root, in a network namespace of its own (`unshare -n`).
//
// Spawns the daemon (dist/proxy/main.js, IPVS mode) on a manifest directory of
// N services × E endpoints, waits for it to run, then changes one EndpointSlice
// at a time at a fixed rate for the whole duration: an endpoint added, one
// removed, or one's readiness flipped, its group file rewritten (written aside
// and renamed over). A change's latency runs from the rename to the daemon's
// first `sync` log line after which the kernel (one netlink read of that virtual
// server) shows it. Every sample period: the daemon's VmRSS / VmHWM
// (/proc/<pid>/status), its heap and CPU time (/metrics), and the latencies and
// sync times of the changes of that period. At the end the old destinations
// drain and the kernel must hold exactly the model (/proc/net/ip_vs, ipset,
// ip addr: the oracles of benchmarks/common/ipvs-cluster.mjs).
//
//   unshare -n node inside.mjs     config in SOAK_CONFIG (JSON), raw results to cfg.out
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import {
  daemonFlags, diffState, endpointOf, expectedState, ipvsCount, kernelState, makeCluster, netnsSetup, newEndpointIP, rewriteGroup,
  clusterIP, PER_FILE, procStatus, round2, stats, writeManifests,
} from '../common/ipvs-cluster.mjs'
import { MAIN, followLog, repoRoot, sleep, stopwatchLog } from '../common/inside.mjs'

const METRICS = 'http://127.0.0.1:10249/metrics'

const cfg = JSON.parse(process.env.SOAK_CONFIG ?? '{}')
const services = cfg.services ?? 10000
const endpoints = cfg.endpoints ?? 10
const durationS = cfg.durationS ?? 3600
const rate = cfg.rate ?? 2 // changes per second
const sampleS = cfg.sampleS ?? 30
const dir = '/run/tsproxy-bench-soak'
const say = stopwatchLog((s) => process.stderr.write(s), 7)

/** The daemon as a child process; its JSON log lines are followed as they come. */
function startDaemon() {
  const proc = spawn(process.execPath, [MAIN, ...daemonFlags(dir)], { stdio: ['ignore', 'ignore', 'pipe'] })
  const d = { proc, syncs: [], errors: [], running: null, exited: null, waiters: new Set() }
  followLog(proc, (rec, line, now) => {
    if (rec.msg === 'tsproxy running') d.running = now
    if (rec.msg === 'sync' || rec.msg === 'full sync') d.syncs.push({ at: now, ms: rec.ms, full: rec.msg === 'full sync' })
    if (rec.level === 'error') d.errors.push(line.slice(0, 500))
  }, () => {
    for (const w of d.waiters) w()
  })
  proc.on('exit', (code, signal) => {
    d.exited = { code, signal }
    for (const w of d.waiters) w()
  })
  /** Resolves at the next log line (or exit), or after `ms`. */
  d.next = (ms) =>
    new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        d.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      d.waiters.add(done)
    })
  return d
}

async function scrape() {
  const text = await fetch(METRICS).then((r) => r.text()).catch(() => '')
  const value = (n) => {
    const m = new RegExp(`^${n} (\\S+)$`, 'm').exec(text)
    return m ? Number(m[1]) : null
  }
  return { heapUsed: value('nodejs_heap_size_used_bytes'), cpuSeconds: value('process_cpu_seconds_total'), syncs: value('kubeproxy_sync_proxy_rules_duration_seconds_count') }
}

/** The change number c of the churn: which service, what happens to it. */
function change(cluster, c) {
  // A stride over the services: consecutive changes hit different manifest files.
  const i = (c * 7919 + 13) % cluster.services
  const eps = cluster.eps[i]
  let kind = ['add', 'remove', 'flip'][c % 3]
  // Services stay within endpoints ± 3.
  if (kind === 'add' && eps.length >= endpoints + 3) kind = 'remove'
  else if (kind === 'remove' && eps.length <= Math.max(1, endpoints - 3)) kind = 'add'
  let ep
  if (kind === 'add') {
    ep = { ip: newEndpointIP(c), ready: true }
    eps.push(ep)
  } else if (kind === 'remove') {
    // A ready one, so the kernel has something to take away.
    const ready = eps.map((e, j) => (e.ready ? j : -1)).filter((j) => j >= 0)
    const j = ready.length ? ready[c % ready.length] : c % eps.length
    ep = eps.splice(j, 1)[0]
    ep = { ...ep, ready: false } // what the kernel must show: no live destination
  } else {
    const j = c % eps.length
    eps[j] = ep = { ip: eps[j].ip, ready: !eps[j].ready }
  }
  return { i, kind, ip: ep.ip, ready: ep.ready }
}

const rewrite = (cluster, i) => rewriteGroup(cluster, dir, i)

async function main() {
  const env = {
    kernelRelease: os.release(),
    node: process.version,
    cpus: os.cpus().length,
    memTotalMB: Math.round(os.totalmem() / 2 ** 20),
    ipvsadm: spawnSync('ipvsadm', ['--version'], { encoding: 'utf8' }).stdout?.trim(),
    manifestsOn: "the box's own tmpfs (/run)",
  }
  say(`box: Linux ${env.kernelRelease}, node ${env.node}; ${services} services × ${endpoints} endpoints, ${durationS} s at ${rate} changes/s, a sample every ${sampleS} s`)
  netnsSetup()
  const cluster = makeCluster({ services, endpoints })
  cluster.eps = cluster.eps.map((list) => list.map((ip) => ({ ip, ready: true })))
  const written = writeManifests(cluster, dir)
  say(`${written.files} manifest files, ${(written.bytes / 2 ** 20).toFixed(1)} MB`)

  const { Ipvs } = await import(path.join(repoRoot, 'dist/index.js'))
  const ipvs = await Ipvs.open()
  const t0 = performance.now()
  const daemon = startDaemon()
  while (!daemon.running && !daemon.exited && performance.now() - t0 < 900_000) await daemon.next(1000)
  if (!daemon.running) throw new Error(`the daemon did not start: ${JSON.stringify(daemon.exited)} ${daemon.errors.slice(0, 3).join(' | ')}`)
  const cold = { wallMs: round2(daemon.running - t0), fullSyncMs: daemon.syncs[0]?.ms ?? null, mem: procStatus(daemon.proc.pid) }
  const coldBad = diffState(kernelState(), expectedState(cluster))
  if (coldBad) throw new Error(`after the cold start: ${coldBad}`)
  say(`daemon running after ${cold.wallMs} ms (full sync ${cold.fullSyncMs} ms), RSS ${cold.mem.rssMB} MB ✓ kernel matches`)

  /** Whether the kernel shows change `ch` on the service's ClusterIP virtual server. */
  const shows = async (ch) => {
    const list = await ipvs.listDestinations({ protocol: 'tcp', address: clusterIP(ch.i), port: 80 })
    const live = list.some((d) => d.address === ch.ip && d.port === 8080 && d.weight > 0)
    return live === ch.ready
  }

  const samples = []
  const changes = [] // [t s, latency ms, sync ms, full sync seen]
  const failures = []
  let window = { lat: [], sync: [], lag: 0 }
  let syncsSeen = 0
  const churnStart = performance.now()
  let nextSample = churnStart + sampleS * 1000
  const sample = async () => {
    const now = performance.now()
    const mem = procStatus(daemon.proc.pid)
    const m = await scrape()
    const s = {
      t: round2((now - churnStart) / 1000),
      changes: changes.length,
      rssMB: mem.rssMB,
      hwmMB: mem.hwmMB,
      heapUsedMB: m.heapUsed == null ? null : round2(m.heapUsed / 2 ** 20),
      cpuSeconds: m.cpuSeconds == null ? null : round2(m.cpuSeconds),
      syncs: m.syncs,
      latency: window.lat.length ? stats(window.lat) : null,
      syncMs: window.sync.length ? stats(window.sync) : null,
      fullSyncs: daemon.syncs.slice(syncsSeen).filter((x) => x.full).length,
      fullSyncMs: Math.max(0, ...daemon.syncs.slice(syncsSeen).filter((x) => x.full).map((x) => x.ms)) || null,
      behindSchedule: window.lag,
    }
    samples.push(s)
    say(`t=${s.t.toFixed(0)} s: ${s.changes} changes, RSS ${s.rssMB} MB (peak ${s.hwmMB}), heap ${s.heapUsedMB} MB, CPU ${s.cpuSeconds} s; ` +
      `latency p50 ${s.latency?.p50 ?? '—'} p99 ${s.latency?.p99 ?? '—'} ms, sync p50 ${s.syncMs?.p50 ?? '—'} ms, ${s.fullSyncs} full sync(s)${s.fullSyncMs ? ` (longest ${s.fullSyncMs} ms)` : ''}`)
    window = { lat: [], sync: [], lag: 0 }
    syncsSeen = daemon.syncs.length
  }

  await sample() // t = 0: just programmed, before any change
  for (let c = 0; ; c++) {
    const due = churnStart + (c * 1000) / rate
    if (due - churnStart >= durationS * 1000) break
    while (performance.now() < due) {
      if (performance.now() >= nextSample) {
        await sample()
        nextSample += sampleS * 1000
      }
      await sleep(Math.max(0, Math.min(due, nextSample) - performance.now()))
    }
    if (performance.now() - due > 1000 / rate) window.lag++
    if (daemon.exited) throw new Error(`the daemon exited: ${JSON.stringify(daemon.exited)}`)
    const ch = change(cluster, c)
    const seen = daemon.syncs.length
    const tw = performance.now()
    rewrite(cluster, ch.i)
    // Each sync logged after the write: does the kernel show the change now?
    let k = seen
    let done = null
    while (!done && performance.now() - tw < 60_000) {
      if (k < daemon.syncs.length) {
        const s = daemon.syncs[k++]
        if (await shows(ch)) done = s
      } else await daemon.next(60_000 - (performance.now() - tw))
    }
    if (!done) {
      failures.push(`change ${c} (${ch.kind} ${ch.ip} on service ${ch.i}): not in the kernel 60 s after the write`)
      continue
    }
    const lat = done.at - tw
    window.lat.push(lat)
    window.sync.push(done.ms)
    changes.push([round2((tw - churnStart) / 1000), round2(lat), done.ms, done.full ? 1 : 0])
    if (failures.length > 10) break
  }
  await sample()
  const churnS = (performance.now() - churnStart) / 1000

  // The removed destinations drain (weight 0, deleted without connections).
  const want = expectedState(cluster)
  const drain0 = performance.now()
  while (ipvsCount().dests !== want.ipvsDestinations && performance.now() - drain0 < 120_000) await sleep(500)
  const end = kernelState()
  const bad = diffState(end, want)
  if (bad) failures.push(`after the churn: ${bad}`)
  for (const e of daemon.errors) failures.push(`daemon logged: ${e}`)
  const memEnd = procStatus(daemon.proc.pid)
  await ipvs.close()
  daemon.proc.kill('SIGTERM')
  await new Promise((r) => (daemon.exited ? r() : daemon.proc.on('exit', r)))
  fs.rmSync(dir, { recursive: true, force: true })
  const readyNow = cluster.eps.reduce((n, l) => n + l.filter((e) => endpointOf(e).ready).length, 0)
  say(`churn done: ${changes.length} changes in ${churnS.toFixed(0)} s; kernel ${bad ? `WRONG: ${bad}` : 'matches the model ✓'} (${readyNow} ready endpoints); ${failures.length} failure(s)`)
  const out = {
    env,
    config: { services, endpoints, durationS, rate, sampleS, perFile: PER_FILE, manifests: written },
    cold,
    churnS: round2(churnS),
    changes: { n: changes.length, latency: stats(changes.map((x) => x[1])), syncMs: stats(changes.map((x) => x[2])), series: changes },
    samples,
    end: { kernel: end, expected: want, mem: memEnd },
    failures,
  }
  fs.writeFileSync(cfg.out, JSON.stringify(out) + '\n')
  process.exitCode = failures.length ? 1 : 0
}

main().catch((e) => {
  say(`FAILED: ${e?.stack ?? e}`)
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(1)
})
