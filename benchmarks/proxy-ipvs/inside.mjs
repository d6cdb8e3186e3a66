// The measuring half of benchmarks/proxy-ipvs: runs inside the kernel box (run.js
// boots it), as root, against the box's real IPVS, ipset and rtnetlink.
//
// For each size (services × 10 endpoints), three workers, each a node process in
// a network namespace of its own (`unshare -n`: empty IPVS table, no sets, no
// kube-ipvs0, and no trash of deleted destinations from an earlier run):
//
//   cold      spawns the daemon (dist/proxy/main.js) on the manifest directory,
//             times spawn → `full sync` / `tsproxy running` log lines, checks the
//             kernel (/proc/net/ip_vs, `ipset list -t`, `ip addr show dev
//             kube-ipvs0`), reads the daemon's VmRSS/VmHWM, stops it.
//   bare      the same state through the library's own batches (ipvs.batch,
//             ipset.batch, rtnl.batch), nothing else: the floor for the cold sync.
//   peer      what kube-proxy would exec for the same state: `ipvsadm -R`,
//             `ipset restore`, `ip -batch` (addresses), checked the same way; then
//             one `ipvsadm -a` process per endpoint change.
//   changes   the Daemon class in this process: start, then one EndpointSlice
//             change at a time (an endpoint replaced, its group file rewritten),
//             timed to `daemon.settled()` and, end to end, to the new destination
//             seen by a netlink read; single netlink round trips interleaved.
//
//   node inside.mjs                 the orchestrator: config in PROXY_IPVS_CONFIG, raw results to cfg.out
//   node inside.mjs --worker JSON   one worker, in the current netns; prints one JSON line
import * as fs from 'node:fs'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import {
  CLUSTER_CIDR, NODE, NODE_IP, daemonKit, NODE_PORTS_MAX, OTHER_NODE, PER_FILE, applyChange, changedService, clusterIP, daemonFlags, diffState, expectedState,
  ipvsCount, isNodePort, kernelState, makeCluster, newEndpointIP, netnsSetup, nodePortOf, percentile, procStatus, rewriteGroup,
  round2, run, stats, writeManifests,
} from '../common/ipvs-cluster.mjs'
import { GC_ENV, gcIn, gcRecorder, gcTail, nowEpoch } from '../common/gc.mjs'
import { watchWorker } from '../common/watch.mjs'
import {
  MAIN, coldRecord, daemonStatus, orchestration, repoRoot, sizeHeading, sleep, startUntilRunning, stepper, stopDaemon, toolVersion, workerMain, writeRaw,
} from '../common/inside.mjs'

const self = fileURLToPath(import.meta.url)

// ---- worker: cold start of the daemon process -----------------------------------------

async function coldWorker(spec, cfg) {
  netnsSetup()
  const cluster = makeCluster(spec.size)
  const want = expectedState(cluster)
  const flags = [...(cfg.daemonNodeFlags ?? []), MAIN, ...daemonFlags(spec.dir)]
  const d = await startUntilRunning(flags, cfg.coldTimeoutS, { env: GC_ENV })
  const memAtRunning = await daemonStatus(d)
  const have = kernelState()
  const bad = diffState(have, want)
  // Memory a little later: what the daemon keeps while it runs (a GC may have run).
  await sleep(2000)
  const memLater = await daemonStatus(d)
  const metricsRes = await fetch('http://127.0.0.1:10249/metrics').then((r) => r.text()).catch(() => '')
  const heapMetric = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(metricsRes)?.[1]
  await stopDaemon(d)
  if (bad) throw new Error(bad)
  return {
    ...coldRecord(d, memAtRunning, memLater),
    heapUsedMB: heapMetric ? round2(Number(heapMetric) / 2 ** 20) : undefined,
    kernel: have,
  }
}

// ---- worker: what kube-proxy would exec ----------------------------------------------------

function peerTexts(cluster) {
  const ipvs = []
  const sets = ['create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536', 'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535']
  const addrs = []
  const dests = (vs, i) => {
    for (const ip of cluster.eps[i]) ipvs.push(`-a -t ${vs} -r ${ip}:8080 -m -w 1`)
  }
  for (let i = 0; i < cluster.services; i++) {
    const vs = `${clusterIP(i)}:80`
    ipvs.push(`-A -t ${vs} -s rr`)
    dests(vs, i)
    sets.push(`add KUBE-CLUSTER-IP ${clusterIP(i)},tcp:80`)
    addrs.push(`address add ${clusterIP(i)}/32 dev kube-ipvs0 noprefixroute`)
    if (isNodePort(i)) {
      const np = `${NODE_IP}:${nodePortOf(i)}`
      ipvs.push(`-A -t ${np} -s rr`)
      dests(np, i)
      sets.push(`add KUBE-NODE-PORT-TCP ${nodePortOf(i)}`)
    }
  }
  return { ipvs: ipvs.join('\n') + '\n', sets: sets.join('\n') + '\n', addrs: addrs.join('\n') + '\n' }
}

async function peerWorker(spec, cfg) {
  netnsSetup()
  const cluster = makeCluster(spec.size)
  const want = expectedState(cluster)
  const texts = peerTexts(cluster)
  run('ip', ['link', 'add', 'kube-ipvs0', 'type', 'dummy'])
  const time = (fn) => {
    const t0 = performance.now()
    fn()
    return round2(performance.now() - t0)
  }
  const cold = {
    ipvsadmRestoreMs: time(() => run('ipvsadm', ['-R'], { input: texts.ipvs })),
    ipsetRestoreMs: time(() => run('ipset', ['restore'], { input: texts.sets })),
    ipBatchMs: time(() => run('ip', ['-batch', '-'], { input: texts.addrs })),
  }
  cold.totalMs = round2(cold.ipvsadmRestoreMs + cold.ipsetRestoreMs + cold.ipBatchMs)
  const have = kernelState()
  const bad = diffState(have, want)
  if (bad) throw new Error(`after the restores: ${bad}`)
  // One change = one ipvsadm process adding the new destination (kube-proxy would
  // also set the old one's weight to 0: a second operation, not counted here).
  const samples = []
  for (let c = 0; c < spec.changes; c++) {
    const i = changedService(c, cluster.services)
    const t0 = performance.now()
    run('ipvsadm', ['-a', '-t', `${clusterIP(i)}:80`, '-r', `${newEndpointIP(c)}:8080`, '-m', '-w', '1'])
    samples.push(performance.now() - t0)
  }
  const after = ipvsCount()
  if (after.dests !== want.ipvsDestinations + spec.changes) throw new Error(`after the ipvsadm -a runs: ${after.dests} destinations, expected ${want.ipvsDestinations + spec.changes}`)
  return { cold, kernel: have, change: stats(samples) }
}


// ---- worker: the same state through the library's own batches ---------------------------

// What the daemon's full sync amounts to in kernel requests, with nothing else: no
// manifests, no trackers, no diff, no read-back. The daemon's cold sync is set next
// to it (issue 14: ≤ 2× these bare batches).
async function bareWorker(spec) {
  netnsSetup()
  const cluster = makeCluster(spec.size)
  const want = expectedState(cluster)
  const lib = (m) => import(path.join(repoRoot, 'dist', m))
  const [{ Ipvs }, { IpSet }, { Rtnl }] = await Promise.all([lib('ipvs.js'), lib('ipset.js'), lib('route.js')])
  const ipvsOps = []
  const setOps = []
  const addrOps = []
  const service = (address, port) => ({ protocol: 'tcp', address, port })
  const dests = (svc, i) => {
    for (const ip of cluster.eps[i]) ipvsOps.push({ op: 'addDestination', service: svc, destination: { address: ip, port: 8080, weight: 1, forward: 'masq' } })
  }
  for (let i = 0; i < cluster.services; i++) {
    const vs = service(clusterIP(i), 80)
    ipvsOps.push({ op: 'addService', service: { ...vs, scheduler: 'rr' } })
    dests(vs, i)
    setOps.push({ op: 'add', set: 'KUBE-CLUSTER-IP', entry: { ip: clusterIP(i), protocol: 'tcp', port: 80 } })
    setOps.push({ op: 'add', set: 'KUBE-IPVS-IPS', entry: { ip: clusterIP(i) } })
    addrOps.push({ op: 'addAddress', link: 'kube-ipvs0', address: { address: clusterIP(i), noPrefixRoute: true } })
    if (isNodePort(i)) {
      const np = service(NODE_IP, nodePortOf(i))
      ipvsOps.push({ op: 'addService', service: { ...np, scheduler: 'rr' } })
      dests(np, i)
      setOps.push({ op: 'add', set: 'KUBE-NODE-PORT-TCP', entry: { port: nodePortOf(i) } })
    }
  }
  const [ipvs, ipset, rtnl] = await Promise.all([Ipvs.open(), IpSet.open(), Rtnl.open()])
  const timed = async (fn) => {
    const t0 = performance.now()
    const r = await fn()
    return [round2(performance.now() - t0), r]
  }
  const failed = (outcomes, what) => {
    const bad = outcomes.filter((o) => !o.ok).length
    if (bad) throw new Error(`${what}: ${bad} operations failed`)
  }
  const t0 = performance.now()
  const [ipvsMs, o1] = await timed(() => ipvs.batch(ipvsOps))
  failed(o1, 'ipvs.batch')
  const [ipsetMs, o2] = await timed(async () => {
    // As the daemon's sets (KUBE-IPVS-IPS: every VIP, as the daemon writes it), sized for the count.
    const maxelem = cluster.services > 65536 ? { maxelem: 262144 } : {}
    await ipset.create({ name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', ...maxelem })
    await ipset.create({ name: 'KUBE-IPVS-IPS', type: 'hash:ip', ...maxelem })
    await ipset.create({ name: 'KUBE-NODE-PORT-TCP', type: 'bitmap:port', range: [0, 65535] })
    return ipset.batch(setOps)
  })
  failed(o2, 'ipset.batch')
  const [rtnlMs, o3] = await timed(async () => {
    await rtnl.addDummy('kube-ipvs0')
    return rtnl.batch(addrOps)
  })
  failed(o3, 'rtnl.batch')
  const totalMs = round2(performance.now() - t0)
  await Promise.all([ipvs.close(), ipset.close(), rtnl.close()])
  const have = kernelState()
  const bad = diffState(have, want)
  if (bad) throw new Error(`after the library's batches: ${bad}`)
  return { ipvsMs, ipsetMs, rtnlMs, totalMs, ops: { ipvs: ipvsOps.length, ipset: setOps.length, rtnl: addrOps.length } }
}

// ---- worker: the Daemon class in this process: one change at a time ----------------------

async function changesWorker(spec, cfg) {
  netnsSetup()
  const cluster = makeCluster(spec.size)
  const want = expectedState(cluster)
  const { Daemon, config, errors, log } = await daemonKit('ipvs')
  const { Ipvs } = await import(path.join(repoRoot, 'dist/index.js'))
  // No periodic full resync in the middle of the changes: it is measured as the cold start.
  config.ipvs.syncPeriod = 3600_000
  const daemon = new Daemon({ config, manifests: spec.dir, log })
  const t0 = performance.now()
  await daemon.start()
  const startMs = performance.now() - t0
  const afterStart = kernelState()
  const bad = diffState(afterStart, want)
  if (bad) throw new Error(`after start: ${bad}`)
  const ipvs = await Ipvs.open()
  const svcKey = (i) => ({ protocol: 'tcp', address: clusterIP(i), port: 80 })
  const hasDest = (list, ip) => list.some((d) => d.address === ip && d.port === 8080 && d.weight === 1)

  // Warm-up: the netlink paths the probes use, on a service that no change touches.
  const touched = new Set(Array.from({ length: 2 * spec.changes }, (_, c) => changedService(c, cluster.services)))
  if (touched.size !== 2 * spec.changes) throw new Error(`${2 * spec.changes} changes hit only ${touched.size} services: pick another stride`)
  let probeIndex = 0
  while (touched.has(probeIndex)) probeIndex++
  const probe = svcKey(probeIndex)
  const probeDest = { address: cluster.eps[probeIndex][0], port: 8080, weight: 1, forward: 'masq' }
  for (let r = 0; r < 50; r++) {
    await ipvs.listDestinations(probe)
    await ipvs.batch([{ op: 'updateDestination', service: probe, destination: probeDest }])
  }

  const gc = gcRecorder()
  const phaseStart = nowEpoch()
  const settledWin = []
  const e2eWin = []
  const settledMs = []
  const syncMs = []
  const e2eMs = []
  const e2ePolls = []
  const rttListMs = []
  const rttBatchMs = []
  const changed = new Map()
  const rewrite = (i) => [rewriteGroup(cluster, spec.dir, i)]
  for (let c = 0; c < 2 * spec.changes; c++) {
    const { i, old, ip } = applyChange(cluster, c)
    changed.set(i, { old, ip })
    if (c % 2 === 0) {
      // (a) inside the daemon: the file is written, then settled() re-reads it and syncs.
      const files = rewrite(i)
      const t = performance.now()
      await daemon.settled(files)
      settledMs.push(performance.now() - t)
      settledWin.push([performance.timeOrigin + t, nowEpoch()])
      syncMs.push(daemon.lastSync.ms)
      if (!hasDest(await ipvs.listDestinations(svcKey(i)), ip)) throw new Error(`change ${c}: ${ip} not in the kernel after settled()`)
    } else {
      // (b) end to end: from the file write to the destination seen by a netlink read.
      const t = performance.now()
      const settled = daemon.settled(rewrite(i))
      let polls = 0
      for (;;) {
        polls++
        if (hasDest(await ipvs.listDestinations(svcKey(i)), ip)) break
        if (performance.now() - t > 60_000) throw new Error(`change ${c}: ${ip} not seen within 60 s`)
      }
      e2eMs.push(performance.now() - t)
      e2eWin.push([performance.timeOrigin + t, nowEpoch()])
      e2ePolls.push(polls)
      await settled
    }
    // One netlink round trip each, between changes.
    let t = performance.now()
    await ipvs.listDestinations(probe)
    rttListMs.push(performance.now() - t)
    t = performance.now()
    const [o] = await ipvs.batch([{ op: 'updateDestination', service: probe, destination: probeDest }])
    rttBatchMs.push(performance.now() - t)
    if (!o.ok) throw new Error(`one-op batch failed: ${o.error?.message}`)
  }
  const phaseEnd = nowEpoch()
  await sleep(100) // the last GC entries
  gc.stop()
  // The old destinations drain (weight 0, then deleted once without connections, ~1 s).
  const drainStart = performance.now()
  while (daemon.proxiers.some((p) => p.draining > 0) && performance.now() - drainStart < 30_000) await new Promise((r) => setTimeout(r, 100))
  await daemon.settled()
  const end = kernelState()
  const badEnd = diffState(end, want)
  if (badEnd) throw new Error(`after the changes: ${badEnd}`)
  for (const [i, { old, ip }] of changed) {
    const list = await ipvs.listDestinations(svcKey(i))
    if (!hasDest(list, ip) || list.some((d) => d.address === old) || list.length !== cluster.endpoints) throw new Error(`service ${i}: destinations ${list.map((d) => `${d.address}/${d.weight}`).join(',')} (want ${ip}, not ${old})`)
  }
  if (errors.length) throw new Error(`daemon logged errors: ${errors.slice(0, 3).join(' | ')}`)
  const rss = process.memoryUsage().rss
  await ipvs.close()
  await daemon.stop()
  return {
    startInProcessMs: round2(startMs),
    settled: stats(settledMs),
    sync: stats(syncMs),
    e2e: { ...stats(e2eMs), pollsP50: percentile(e2ePolls, 50), pollsMax: Math.max(...e2ePolls) },
    rttList: stats(rttListMs),
    rttBatch: stats(rttBatchMs),
    harnessRssMB: round2(rss / 2 ** 20),
    // This process's GC pauses (daemon and harness share it): over the changes, and inside each timed sample.
    gc: { phase: gcIn(gc.entries, phaseStart, phaseEnd), settled: gcTail(settledMs, settledWin, gc.entries), e2e: gcTail(e2eMs, e2eWin, gc.entries) },
    kernel: end,
    samples: { settledMs: settledMs.map(round2), syncMs: syncMs.map(round2), e2eMs: e2eMs.map(round2), rttListMs: rttListMs.map(round2), rttBatchMs: rttBatchMs.map(round2) },
  }
}

// ---- worker: the path a cluster uses: the test API server, the daemon with --kubeconfig ----

const ipvsMode = {
  name: 'ipvs',
  flags: ['--proxy-mode=ipvs', '--ipvs-sync-period=1h'], // no periodic full sync among the changes, as in the changes worker
  netnsSetup,
  checkCold: (cluster) => diffState(kernelState(), expectedState(cluster)),
  async openProbe(cluster, changes) {
    const { Ipvs } = await import(path.join(repoRoot, 'dist/index.js'))
    const ipvs = await Ipvs.open()
    // The round-trip probe: a service no change touches.
    const touched = new Set(Array.from({ length: changes }, (_, c) => changedService(c, cluster.services)))
    let p = 0
    while (touched.has(p)) p++
    const probe = { protocol: 'tcp', address: clusterIP(p), port: 80 }
    const probeDest = { address: cluster.eps[p][0], port: 8080, weight: 1, forward: 'masq' }
    for (let r = 0; r < 50; r++) await ipvs.batch([{ op: 'updateDestination', service: probe, destination: probeDest }])
    return {
      seen: async (i, ip) => (await ipvs.listDestinations({ protocol: 'tcp', address: clusterIP(i), port: 80 })).some((d) => d.address === ip && d.port === 8080 && d.weight === 1),
      async rtt() {
        const t = performance.now()
        const [o] = await ipvs.batch([{ op: 'updateDestination', service: probe, destination: probeDest }])
        if (!o.ok) throw new Error(`one-op batch failed: ${o.error?.message}`)
        return performance.now() - t
      },
      close: () => ipvs.close(),
      ipvs,
    }
  },
  async checkEnd(cluster, changed) {
    const bad = diffState(kernelState(), expectedState(cluster))
    if (bad) return bad
    const { Ipvs } = await import(path.join(repoRoot, 'dist/index.js'))
    const ipvs = await Ipvs.open()
    try {
      for (const [i, { old, ip }] of changed) {
        const list = await ipvs.listDestinations({ protocol: 'tcp', address: clusterIP(i), port: 80 })
        if (!list.some((d) => d.address === ip && d.weight === 1) || list.some((d) => d.address === old) || list.length !== cluster.endpoints)
          return `service ${i}: destinations ${list.map((d) => `${d.address}/${d.weight}`).join(',')} (want ${ip}, not ${old})`
      }
    } finally {
      await ipvs.close()
    }
    return undefined
  },
}

// ---- orchestrator ------------------------------------------------------------------------

async function orchestrate() {
  const { cfg, log, env, runWorker, pause } = orchestration(self, 'PROXY_IPVS_CONFIG', { ipvsadm: toolVersion('ipvsadm'), ipset: toolVersion('ipset') })
  const sizes = cfg.sizes ?? [1000, 10000, 30000]
  const endpoints = cfg.endpoints ?? 10
  const changes = cfg.changes ?? 100
  const reps = cfg.reps ?? 1
  const only = cfg.only ? new Set(cfg.only) : null

  const results = []
  const out = { env, config: { sizes, endpoints, changes, reps, apiQps: cfg.apiQps ?? 0, perFile: PER_FILE, nodePortsMax: NODE_PORTS_MAX, node: NODE, endpointNode: OTHER_NODE, clusterCIDR: CLUSTER_CIDR }, sizes: results }
  for (const services of sizes) {
    const size = { services, endpoints }
    const cluster = makeCluster(size)
    const dir = `/run/tsproxy-bench-proxy-ipvs/${services}`
    const written = writeManifests(cluster, dir)
    const res = { services, endpoints, nodePorts: cluster.nodePorts, expected: expectedState(cluster), manifests: written, cold: [], bare: [], peer: [], changes: null, watch: null, errors: [] }
    log(sizeHeading(cluster, written))
    const step = stepper(runWorker, res, log)
    for (let r = 0; r < reps; r++) {
      if (!only || only.has('cold')) {
        const v = step('cold', { size, dir }, (v) =>
          `cold: daemon running after ${v.wallMs.toFixed(0)} ms (full sync seen at ${v.fullSyncSeenMs?.toFixed(0)} ms, logged ${v.syncMs} ms, ${v.fullSyncsBeforeRunning} full sync(s) before running, ops ${JSON.stringify(v.ops)}), RSS ${v.mem.rssMB} MB (peak ${v.mem.hwmMB}, 2 s later ${v.memAfter2s.rssMB}) ✓`)
        if (v) res.cold.push(v)
        await pause()
      }
      if (!only || only.has('bare')) {
        const v = step('bare', { size }, (v) =>
          `bare: the library's own batches for the same state, ipvs ${v.ipvsMs} ms + ipset ${v.ipsetMs} ms + rtnl ${v.rtnlMs} ms = ${v.totalMs} ms ✓`)
        if (v) res.bare.push(v)
        await pause()
      }
      if (!only || only.has('peer')) {
        const v = step('peer', { size, changes }, (v) =>
          `peer: ipvsadm -R ${v.cold.ipvsadmRestoreMs} ms + ipset restore ${v.cold.ipsetRestoreMs} ms + ip -batch ${v.cold.ipBatchMs} ms = ${v.cold.totalMs} ms ✓; one ipvsadm -a p50 ${v.change.p50} ms p99 ${v.change.p99} ms`)
        if (v) res.peer.push(v)
        await pause()
      }
    }
    writeManifests(cluster, dir) // the cold runs did not change it; the changes worker does
    if (!only || only.has('changes')) {
      res.changes = step('changes', { size, dir, changes }, (v) =>
        `changes: start in-process ${v.startInProcessMs} ms; settled p50 ${v.settled.p50} p99 ${v.settled.p99} ms (sync p50 ${v.sync.p50}); e2e p50 ${v.e2e.p50} p99 ${v.e2e.p99} ms; ` +
        `netlink list p50 ${v.rttList.p50} ms, 1-op batch p50 ${v.rttBatch.p50} ms ✓`)
    }
    fs.rmSync(dir, { recursive: true, force: true })
    if (!only || only.has('watch')) {
      res.watch = step('watch', { size, changes }, (v) =>
        `watch: API store ${(v.cold.storeMs / 1000).toFixed(1)} s; daemon running after ${v.cold.wallMs.toFixed(0)} ms, first list → full sync ${v.cold.firstListToFullSyncMs} ms ` +
        `(sync logged ${v.cold.syncMs} ms, ${v.cold.listRequests} list requests), RSS ${v.cold.mem.rssMB} MB; ` +
        `e2e p50 ${v.e2e.p50} p99 ${v.e2e.p99} ms (sync p50 ${v.sync.p50}; GC in the changes: ${v.gc.phase.count}, ${v.gc.phase.totalMs} ms, max ${v.gc.phase.maxMs} ms) ✓`)
    }
    results.push(res)
    writeRaw(cfg.out, out, log, true)
  }
  writeRaw(cfg.out, out, log)
}

// ---- main ----------------------------------------------------------------------------------

const work = { cold: coldWorker, bare: bareWorker, peer: peerWorker, changes: changesWorker, watch: (spec, cfg) => watchWorker(spec, cfg, ipvsMode) }
if (!(await workerMain('PROXY_IPVS_CONFIG', async (spec, cfg) => ({ value: await work[spec.kind](spec, cfg) })))) await orchestrate()
