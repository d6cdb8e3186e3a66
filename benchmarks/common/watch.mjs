// The watch variant of the daemon benchmarks (proxy-ipvs, proxy-iptables), box
// side: the path a cluster uses. In one worker (its own network namespace):
// the test API server (test/support/fake-apiserver.ts, transpiled on the host
// by harness.fakeApiServerModule) holding the synthetic cluster, the daemon
// spawned with --kubeconfig against it (its GC pauses logged), then one
// EndpointSlice update at a time, one object per watch event, each timed from
// the update to the kernel showing it.
//
// `mode` is what differs between IPVS and iptables mode:
//   name          'ipvs' | 'iptables'
//   flags         the daemon's mode flags (proxy mode, sync periods)
//   netnsSetup()  lo, the dummy eth0; checks the tables are empty
//   checkCold(cluster)            a string when the kernel does not hold the cluster (oracles: standard tools)
//   openProbe(cluster, changes)   { seen(i, ip): does the kernel show endpoint ip of service i (awaitable), rtt(): one
//                                   netlink round trip or undefined, close() } ; seen is polled back to back, unless
//                                   mode.pollKernel is false: then the change is timed to the daemon's sync line
//                                   (written after the kernel accepted the sync) and seen() checks it once after
//   checkEnd(cluster, changed)    a string when the kernel does not match the model after the changes (called until
//                                 it matches, or 30 s: replaced destinations drain)
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { CLUSTER_CIDR, NODE, applyChange, makeCluster, procStatus, serviceDoc, sliceDoc } from './cluster.mjs'
import { GC_ENV, gcFromLog, gcIn, gcTail, nowEpoch } from './gc.mjs'
import { MAIN, daemonStatus, sleep, startUntilRunning, stopDaemon } from './inside.mjs'
import { round2, stats } from './stats.mjs'

/** The daemon's flags on the kube path (no --manifests). */
export const kubeFlags = (kubeconfig, qps) => [
  `--kubeconfig=${kubeconfig}`, `--hostname-override=${NODE}`, `--cluster-cidr=${CLUSTER_CIDR}`,
  '--healthz-bind-address=127.0.0.1:10256', '--metrics-bind-address=127.0.0.1:10249', `--kube-api-qps=${qps}`,
]

const cpuSecondsOf = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100 // utime + stime, clock ticks (100 Hz)
}

export async function watchWorker(spec, cfg, mode) {
  mode.netnsSetup()
  const cluster = makeCluster(spec.size)
  const { FakeApiServer } = await import(cfg.fakeApiServer)
  const api = await FakeApiServer.start({})
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsproxy-bench-watch-'))
  let d
  try {
    // The store: the node, then every Service and its EndpointSlice.
    let t = performance.now()
    api.create('Node', { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE } })
    for (let i = 0; i < cluster.services; i++) {
      api.create('Service', serviceDoc(i))
      api.create('EndpointSlice', sliceDoc(cluster, i))
    }
    const storeMs = performance.now() - t
    const requests = { lists: 0, watches: 0, firstListAt: undefined }
    api.onRequest = (r) => {
      if (r.watch) requests.watches++
      else {
        requests.lists++
        requests.firstListAt ??= nowEpoch()
      }
    }
    const kubeconfig = api.kubeconfig(path.join(tmp, 'kubeconfig'))

    // Cold: spawn → the first list → the API lists loaded → the full sync.
    const cpu0 = process.cpuUsage()
    d = await startUntilRunning([...(cfg.daemonNodeFlags ?? []), MAIN, ...mode.flags, ...kubeFlags(kubeconfig, cfg.apiQps ?? 0)], cfg.coldTimeoutS, { env: GC_ENV })
    const cpu = process.cpuUsage(cpu0)
    const daemonCpuS = cpuSecondsOf(d.proc.pid)
    const mem = await daemonStatus(d)
    const fullSyncAt = d.spawnedAt + d.fullSync.at
    const loaded = d.lines.find((l) => l.msg === 'API lists loaded')
    const badCold = mode.checkCold(cluster)
    if (badCold) throw new Error(`after the cold start: ${badCold}`)
    await sleep(2000)
    const memAfter2s = await daemonStatus(d)
    const gcCold = gcIn(gcFromLog(d.lines), -Infinity, fullSyncAt)
    const cold = {
      storeMs: round2(storeMs),
      wallMs: round2(d.running),
      firstListMs: round2(requests.firstListAt - d.spawnedAt),
      listsLoadedSeenMs: round2(d.firstSeen['API lists loaded']),
      fullSyncSeenMs: round2(d.fullSync.at),
      firstListToFullSyncMs: round2(fullSyncAt - requests.firstListAt),
      syncMs: d.fullSync.rec.ms,
      ops: d.fullSync.rec.ops,
      loaded: loaded ? { services: loaded.services, endpointSlices: loaded.endpointSlices, refused: loaded.refused } : undefined,
      listRequests: requests.lists,
      watchRequests: requests.watches,
      apiServerCpuS: round2((cpu.user + cpu.system) / 1e6),
      daemonCpuS: round2(daemonCpuS),
      mem,
      memAfter2s,
      gc: gcCold,
    }

    // Changes: one EndpointSlice update at a time, timed to the kernel.
    const probe = await mode.openProbe(cluster, spec.changes)
    const e2eMs = []
    const toSyncLineMs = []
    const syncMs = []
    const polls = []
    const rttMs = []
    const windows = []
    const changed = new Map()
    const errorsBefore = d.lines.filter((l) => l.level === 'error').length
    const phaseStart = nowEpoch()
    for (let c = 0; c < spec.changes; c++) {
      const { i, old, ip } = applyChange(cluster, c)
      changed.set(i, { old, ip })
      const mark = d.lines.length
      const doc = sliceDoc(cluster, i)
      const t0 = nowEpoch()
      api.update('EndpointSlice', doc)
      const syncLine = async () => {
        for (;;) {
          for (let k = mark; k < d.lines.length; k++) if (d.lines[k].msg === 'sync' || d.lines[k].msg === 'full sync') return k
          if (nowEpoch() - t0 > 60_000) throw new Error(`change ${c}: no sync logged within 60 s`)
          await sleep(1)
        }
      }
      let n = 0
      if (mode.pollKernel !== false) {
        for (;;) {
          n++
          if (await probe.seen(i, ip)) break
          if (nowEpoch() - t0 > 60_000) throw new Error(`change ${c}: ${ip} of service ${i} not in the kernel within 60 s`)
        }
        e2eMs.push(nowEpoch() - t0)
        polls.push(n)
      }
      const k = await syncLine()
      toSyncLineMs.push(d.seenAt[k] - t0)
      syncMs.push(d.lines[k].ms)
      if (mode.pollKernel === false) {
        e2eMs.push(d.seenAt[k] - t0)
        if (!(await probe.seen(i, ip))) throw new Error(`change ${c}: ${ip} of service ${i} not in the kernel after the daemon's sync line`)
      }
      windows.push([t0, t0 + e2eMs[e2eMs.length - 1]])
      const r = await probe.rtt?.()
      if (r !== undefined) rttMs.push(r)
    }
    const phaseEnd = nowEpoch()
    // The replaced endpoints leave (IPVS: drained first), then the whole kernel is checked.
    let badEnd
    const drainStart = performance.now()
    do {
      badEnd = await mode.checkEnd(cluster, changed)
      if (badEnd) await sleep(500)
    } while (badEnd && performance.now() - drainStart < 30_000)
    if (badEnd) throw new Error(`after the changes: ${badEnd}`)
    await probe.close()
    await sleep(300) // the last GC lines
    const errors = d.lines.filter((l) => l.level === 'error')
    if (errors.length > errorsBefore) throw new Error(`daemon logged errors: ${errors.slice(errorsBefore, errorsBefore + 3).map((l) => JSON.stringify(l)).join(' | ')}`)
    const gcEntries = gcFromLog(d.lines)
    const memEnd = procStatus(d.proc.pid)
    return {
      cold,
      e2e: { ...stats(e2eMs), ...(polls.length ? { pollsP50: polls.sort((a, b) => a - b)[polls.length >> 1], pollsMax: Math.max(...polls) } : {}) },
      toSyncLine: stats(toSyncLineMs),
      sync: stats(syncMs),
      rtt: rttMs.length ? stats(rttMs) : undefined,
      e2eTimedTo: mode.pollKernel === false ? 'the daemon\'s sync line (then checked in the kernel)' : 'the kernel read back to back',
      gc: { phase: gcIn(gcEntries, phaseStart, phaseEnd), e2e: gcTail(e2eMs, windows, gcEntries) },
      memEnd,
      samples: { e2eMs: e2eMs.map(round2), toSyncLineMs: toSyncLineMs.map(round2), syncMs },
    }
  } finally {
    if (d && !d.exited) await stopDaemon(d)
    await api.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}
