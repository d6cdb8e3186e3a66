#!/usr/bin/env node
// benchmarks/proxy-ipvs: the tsproxy daemon in IPVS mode at 1k, 10k and 30k
// services × 10 endpoints: cold start to a fully programmed kernel, one
// EndpointSlice change to the kernel (p50/p99), one netlink round trip, the
// daemon's RSS; against what kube-proxy would exec for the same (ipvsadm -R,
// ipset restore, ip -batch; one ipvsadm per change). One boot of the kernel box
// (test/kernel/box.mjs; the host has no IPVS).
//
//   npm run bench:proxy-ipvs [-- options]     (builds first)
//   node benchmarks/proxy-ipvs/run.js [options]
//
//   --sizes a,b,c     service counts (default 1000,10000,30000)
//   --endpoints N     endpoints per service (default 10)
//   --changes N       changes of each kind per size: N timed to settled(), N end to end (default 100)
//   --reps N          cold-start and peer runs per size (default 1; the figure is the median)
//   --only LIST       workers to run: cold,bare,peer,changes,watch (default all)
//   --api-qps N       the daemon's --kube-api-qps in the watch variant (default 0: unthrottled; see README)
//   --mem SIZE        the box's memory (default 3G; 12G when a size is ≥ 50000)
//   --quick           300 and 1000 services, 10 changes: a smoke test;
//                     writes benchmarks/results/proxy-ipvs.quick.tmp instead
//   --daemon-node-flags a,b   node flags for the daemon processes of the cold runs (e.g.
//                     --max-semi-space-size=2), to measure what a V8 flag saves; recorded in the results
//   --cpu-prof        profile the daemons (--cpu-prof; profiles go to /tmp/tsproxy-proxy-ipvs-prof)
//   --timeout S       box timeout (default 5400)
//   --out FILE        results file (default benchmarks/results/proxy-ipvs.json)
//
// Everything inside the box is slow per syscall (user-mode Linux), so only the
// ratios between figures of the same boot mean anything.
import * as path from 'node:path'
import { cpuProfile, fakeApiServerModule, grid, needsDist, parseFlags, resultsFile, runAndReport, runMain } from '../common/harness.mjs'
import { changesGcSummary, gcTable, watchSummary, watchTable } from '../common/report.mjs'
import { median, ratio, round, tag } from '../common/stats.mjs'

// The goals (reported, never asserted).
const GOALS = { coldAt10kMaxS: 60, syncOverBareMax: 2, changeP99OverRttMax: 3, flat30kOver1kMax: 1.2, rssAt10kMaxMB: 120 }

function parseArgs(argv) {
  const o = { sizes: [1000, 10000, 30000], endpoints: 10, changes: 100, reps: 1, only: null, quick: false, cpuProf: false, daemonNodeFlags: [], timeout: 5400, out: null, apiQps: 0, mem: null }
  parseFlags(argv, import.meta.url, o, {
    '--sizes': ['sizes', 'numbers'], '--endpoints': ['endpoints', 'number'], '--changes': ['changes', 'number'], '--reps': ['reps', 'number'],
    '--api-qps': ['apiQps', 'number'], '--mem': ['mem', 'string'],
    '--only': ['only', 'words'], '--quick': ['quick', true], '--cpu-prof': ['cpuProf', true], '--daemon-node-flags': ['daemonNodeFlags', 'words'], '--timeout': ['timeout', 'number'], '--out': ['out', 'path'],
  })
  if (o.quick) Object.assign(o, { sizes: [300, 1000], changes: 10, reps: 1 })
  if (!o.sizes.every((n) => Number.isInteger(n) && n >= 2 * o.changes + 1)) throw new Error('--sizes: integers, each more than twice --changes')
  for (const k of ['endpoints', 'changes', 'reps']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} must be an integer ≥ 1`)
  if (o.only && !o.only.every((w) => ['cold', 'bare', 'peer', 'changes', 'watch'].includes(w))) throw new Error('--only: cold, bare, peer, changes, watch')
  if (!(o.apiQps >= 0)) throw new Error('--api-qps must be ≥ 0')
  if (o.mem !== null && !/^\d+[MG]$/.test(o.mem)) throw new Error('--mem: a size such as 3G or 12G')
  o.mem ??= Math.max(...o.sizes) >= 50000 ? '12G' : '3G'
  o.out ??= resultsFile('proxy-ipvs', o.quick)
  return o
}

/** Per size: the medians of the cold/peer runs, the change statistics, and the ratios. */
function summarize(raw) {
  const rows = raw.sizes.map((s) => {
    const c = s.changes
    const rtt = c?.rttBatch.p50
    const row = {
      size: `${tag(s.services)}x${s.endpoints}`,
      services: s.services,
      nodePorts: s.nodePorts,
      virtualServers: s.expected.ipvsServices,
      destinations: s.expected.ipvsDestinations,
      coldWallMs: round(median(s.cold.map((x) => x.wallMs))),
      coldSyncMs: round(median(s.cold.map((x) => x.syncMs))),
      rssMB: round(median(s.cold.map((x) => x.mem.rssMB))),
      rssAfter2sMB: round(median(s.cold.map((x) => x.memAfter2s.rssMB))),
      peakRssMB: round(median(s.cold.map((x) => x.mem.hwmMB))),
      bareMs: round(median((s.bare ?? []).map((x) => x.totalMs))),
      peerIpvsadmRMs: round(median(s.peer.map((x) => x.cold.ipvsadmRestoreMs))),
      peerIpsetRestoreMs: round(median(s.peer.map((x) => x.cold.ipsetRestoreMs))),
      peerIpBatchMs: round(median(s.peer.map((x) => x.cold.ipBatchMs))),
      peerColdMs: round(median(s.peer.map((x) => x.cold.totalMs))),
      peerChangeP50Ms: round(median(s.peer.map((x) => x.change.p50))),
      peerChangeP99Ms: round(median(s.peer.map((x) => x.change.p99))),
      startInProcessMs: c?.startInProcessMs ?? null,
      settled: c?.settled ?? null,
      sync: c?.sync ?? null,
      e2e: c?.e2e ?? null,
      rttListP50Ms: c?.rttList.p50 ?? null,
      rttBatchP50Ms: rtt ?? null,
      ok: s.errors.length === 0,
      errors: s.errors,
    }
    const w = s.watch
    row.coldGc = s.cold[0]?.gc ?? null
    row.gc = changesGcSummary(c?.gc)
    row.watch = watchSummary(w)
    row.ratios = {
      peerColdOverDaemonSync: ratio(row.peerColdMs, row.coldSyncMs),
      daemonSyncOverBare: ratio(row.coldSyncMs, row.bareMs),
      peerColdOverDaemonWall: ratio(row.peerColdMs, row.coldWallMs),
      settledP99OverRtt: ratio(c?.settled.p99, rtt),
      e2eP99OverRtt: ratio(c?.e2e.p99, rtt),
      syncP99OverRtt: ratio(c?.sync.p99, rtt),
      peerChangeP50OverSettledP50: ratio(row.peerChangeP50Ms, c?.settled.p50),
      peerChangeP50OverE2eP50: ratio(row.peerChangeP50Ms, c?.e2e.p50),
      watchE2eP99OverRtt: ratio(w?.e2e.p99, w?.rtt?.p50),
      watchOverManifestE2eP50: ratio(w?.e2e.p50, c?.e2e.p50),
      watchOverManifestE2eP99: ratio(w?.e2e.p99, c?.e2e.p99),
      watchColdOverManifestCold: ratio(w?.cold.wallMs, row.coldWallMs),
      watchFullSyncOverManifestFullSync: ratio(w?.cold.syncMs, row.coldSyncMs),
    }
    return row
  })
  const by = (n) => rows.find((r) => r.services === n)
  const small = rows[0]
  const large = rows[rows.length - 1]
  const at10k = by(10000)
  const goals = []
  const goal = (what, value, target, met) => goals.push({ what, value, goal: target, met: value == null ? null : met })
  if (at10k) {
    goal('cold start at 10k×10, daemon spawn → running (s)', round(at10k.coldWallMs / 1000), `≤ ${GOALS.coldAt10kMaxS} s ("seconds, not minutes")`, at10k.coldWallMs / 1000 <= GOALS.coldAt10kMaxS)
    goal('daemon RSS after programming at 10k×10 (MB)', at10k.rssMB, `≤ ${GOALS.rssAt10kMaxMB} MB`, at10k.rssMB <= GOALS.rssAt10kMaxMB)
    goal('cold full sync at 10k×10 / the library\'s bare batches of the same state', at10k.ratios.daemonSyncOverBare, `≤ ${GOALS.syncOverBareMax}×`, at10k.ratios.daemonSyncOverBare <= GOALS.syncOverBareMax)
  }
  for (const r of rows) {
    goal(`one change p99 / one netlink round trip, ${r.size}, settled()`, r.ratios.settledP99OverRtt, `≤ ${GOALS.changeP99OverRttMax}×`, r.ratios.settledP99OverRtt <= GOALS.changeP99OverRttMax)
    goal(`one change p99 / one netlink round trip, ${r.size}, end to end`, r.ratios.e2eP99OverRtt, `≤ ${GOALS.changeP99OverRttMax}×`, r.ratios.e2eP99OverRtt <= GOALS.changeP99OverRttMax)
    goal(`one change p99 / one netlink round trip, ${r.size}, sync only (trackers → kernel)`, r.ratios.syncP99OverRtt, `≤ ${GOALS.changeP99OverRttMax}×`, r.ratios.syncP99OverRtt <= GOALS.changeP99OverRttMax)
  }
  for (const r of rows) {
    if (r.watch) goal(`one change p99 / one netlink round trip, ${r.size}, watch event → kernel`, r.ratios.watchE2eP99OverRtt, `≤ ${GOALS.changeP99OverRttMax}×`, r.ratios.watchE2eP99OverRtt <= GOALS.changeP99OverRttMax)
  }
  if (rows.length > 1 && small.watch && large.watch) {
    const f = ratio(large.watch.e2e.p99, small.watch.e2e.p99)
    goal(`flat: watch event → kernel p99 ${large.size} / ${small.size}`, f, `≤ ${GOALS.flat30kOver1kMax}×`, f <= GOALS.flat30kOver1kMax)
  }
  if (rows.length > 1) {
    const f = (k) => ratio(large[k]?.p99, small[k]?.p99)
    goal(`flat: settled() p99 ${large.size} / ${small.size}`, f('settled'), `≤ ${GOALS.flat30kOver1kMax}×`, f('settled') <= GOALS.flat30kOver1kMax)
    goal(`flat: end-to-end p99 ${large.size} / ${small.size}`, f('e2e'), `≤ ${GOALS.flat30kOver1kMax}×`, f('e2e') <= GOALS.flat30kOver1kMax)
    const f50 = (k) => ratio(large[k]?.p50, small[k]?.p50)
    goal(`flat: settled() p50 ${large.size} / ${small.size}`, f50('settled'), `≤ ${GOALS.flat30kOver1kMax}×`, f50('settled') <= GOALS.flat30kOver1kMax)
    goal(`flat: end-to-end p50 ${large.size} / ${small.size}`, f50('e2e'), `≤ ${GOALS.flat30kOver1kMax}×`, f50('e2e') <= GOALS.flat30kOver1kMax)
  }
  return { rows, goals }
}

function table(summary) {
  const lines = []
  const f = (x, d = 0) => (x == null ? '—' : Number(x).toFixed(d))
  const head = ['size', 'VS / dests', 'cold wall s', 'sync s', 'peer s', 'peer/sync', 'RSS MB', 'settled p50/p99 ms', 'sync p50 ms', 'e2e p50/p99 ms', 'rtt list/batch ms', 'ipvsadm -a p50/p99 ms', 'check']
  const rows = summary.rows.map((r) => [
    r.size,
    `${r.virtualServers}/${r.destinations}`,
    f(r.coldWallMs == null ? null : r.coldWallMs / 1000, 2),
    f(r.coldSyncMs == null ? null : r.coldSyncMs / 1000, 2),
    f(r.peerColdMs == null ? null : r.peerColdMs / 1000, 2),
    r.ratios.peerColdOverDaemonSync == null ? '—' : `${r.ratios.peerColdOverDaemonSync.toFixed(2)}×`,
    `${f(r.rssMB, 1)} (peak ${f(r.peakRssMB, 0)})`,
    `${f(r.settled?.p50, 1)} / ${f(r.settled?.p99, 1)}`,
    f(r.sync?.p50, 1),
    `${f(r.e2e?.p50, 1)} / ${f(r.e2e?.p99, 1)}`,
    `${f(r.rttListP50Ms, 2)} / ${f(r.rttBatchP50Ms, 2)}`,
    `${f(r.peerChangeP50Ms, 1)} / ${f(r.peerChangeP99Ms, 1)}`,
    r.ok ? 'ok' : 'FAILED',
  ])
  lines.push(...grid(head, rows, (i) => i !== 0 && i !== 12), '')
  for (const r of summary.rows) {
    lines.push(`${r.size}: peer = ipvsadm -R ${f(r.peerIpvsadmRMs)} ms + ipset restore ${f(r.peerIpsetRestoreMs)} ms + ip -batch ${f(r.peerIpBatchMs)} ms; ` +
      `peer / daemon wall ${r.ratios.peerColdOverDaemonWall ?? '—'}×; one ipvsadm -a / one change (settled, e2e) p50: ${r.ratios.peerChangeP50OverSettledP50 ?? '—'}×, ${r.ratios.peerChangeP50OverE2eP50 ?? '—'}×; ` +
      `the library's bare batches ${f(r.bareMs)} ms, daemon full sync / bare ${r.ratios.daemonSyncOverBare ?? '—'}×`)
  }
  lines.push('')
  if (summary.rows.some((r) => r.watch)) {
    lines.push('watch variant: the test API server, the daemon with --kubeconfig, one EndpointSlice per watch event', '', ...watchTable(summary.rows), '')
  }
  lines.push('GC pauses next to the p99s', '')
  lines.push(...gcTable(summary.rows, (r) => [
    ['manifest settled()', r.settled, r.gc?.phase, r.gc?.settled],
    ['manifest end to end', r.e2e, r.gc?.phase, r.gc?.e2e],
    ['watch event → kernel', r.watch?.e2e, r.watch?.gc.phase, r.watch?.gc.e2e],
  ], (r) => [['manifests', r.coldGc], ['watch', r.watch?.coldGc]]), '')
  const gw = Math.max(...summary.goals.map((g) => g.what.length))
  for (const g of summary.goals) lines.push(`${g.what.padEnd(gw)}  ${String(g.value ?? 'n/a').padStart(8)}   goal ${g.goal}: ${g.met == null ? 'n/a' : g.met ? 'met' : 'NOT MET'}`)
  return lines.join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  needsDist('dist/proxy/main.js')
  const prof = cpuProfile('proxy-ipvs', opts.cpuProf)
  const cfg = {
    fakeApiServer: await fakeApiServerModule(),
    apiQps: opts.apiQps,
    // Large sizes: room for the API server's store in the worker, and for the daemon.
    ...(Math.max(...opts.sizes) >= 50000 ? { coldTimeoutS: 3600 } : {}),
    sizes: opts.sizes,
    endpoints: opts.endpoints,
    changes: opts.changes,
    reps: opts.reps,
    only: opts.only,
    daemonNodeFlags: [...prof.flags, ...opts.daemonNodeFlags],
    workerNodeFlags: [...prof.flags, ...(Math.max(...opts.sizes) >= 50000 ? ['--max-old-space-size=6144'] : [])],
  }
  const box = { envVar: 'PROXY_IPVS_CONFIG', cfg, timeoutS: opts.timeout, mem: opts.mem }
  await runAndReport('proxy-ipvs', import.meta.url, box, opts.out, (raw, box) => {
    const summary = summarize(raw)
    return {
      fields: { config: { ...raw.config, cpuProf: prof.record, daemonNodeFlags: opts.daemonNodeFlags }, goals: GOALS, summary: summary.rows, goalsReport: summary.goals, raw: raw.sizes, ...(raw.partial ? { partial: `the box stopped early (${box.error}): only the sizes finished before are here` } : {}) },
      ok: summary.rows.every((r) => r.ok),
      tail: `${raw.config.changes} changes of each kind per size, ${raw.config.reps} cold run(s), box memory ${opts.mem}`,
      table: table(summary),
    }
  }, 'some workers FAILED their checks (see "errors" in the results file)')
}

runMain('proxy-ipvs', main)
