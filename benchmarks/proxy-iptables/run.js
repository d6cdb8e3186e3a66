#!/usr/bin/env node
// benchmarks/proxy-iptables: the tsproxy daemon in iptables mode at 1k and 3k
// services × 10 endpoints: cold start to fully programmed nat and filter tables,
// one EndpointSlice change to the kernel (p50/p99), the daemon's RSS; against
// what kube-proxy would exec for the same: iptables-legacy-restore of the very
// tables the daemon wrote, and per change the --noflush text of kube-proxy's
// partial sync. The same through the path a cluster uses (the watch variant):
// the test API server, the daemon with --kubeconfig, one EndpointSlice per watch
// event. GC pauses counted next to every p99. One boot of the kernel box
// (test/kernel/box.mjs).
//
//   npm run bench:proxy-iptables [-- options]     (builds first)
//   node benchmarks/proxy-iptables/run.js [options]
//
//   --sizes a,b,c     service counts (default 1000,10000; 10000 takes ~12 minutes in the box)
//   --endpoints N     endpoints per service (default 10)
//   --changes N       changes per size, each timed to settled(), and as many watch events (default 30)
//   --only LIST       workers to run: cold,changes,peer,watch (default all; changes and peer need cold)
//   --api-qps N       the daemon's --kube-api-qps in the watch variant (default 0: unthrottled)
//   --quick           300 and 1000 services, 10 changes: a smoke test;
//                     writes benchmarks/results/proxy-iptables.quick.tmp instead
//   --cpu-prof        profile the daemons (--cpu-prof; profiles go to /tmp/tsproxy-proxy-iptables-prof)
//   --timeout S       box timeout (default 5400)
//   --out FILE        results file (default benchmarks/results/proxy-iptables.json)
//
// Everything inside the box is slow per syscall (user-mode Linux), so only the
// ratios between figures of the same boot mean anything.
import * as path from 'node:path'
import { cpuProfile, fakeApiServerModule, grid, needsDist, parseFlags, resultsFile, runAndReport, runMain } from '../common/harness.mjs'
import { changesGcSummary, gcTable, watchSummary, watchTable } from '../common/report.mjs'
import { ratio, round, tag } from '../common/stats.mjs'

function parseArgs(argv) {
  const o = { sizes: [1000, 10000], endpoints: 10, changes: 30, quick: false, cpuProf: false, timeout: 5400, out: null, only: null, apiQps: 0 }
  parseFlags(argv, import.meta.url, o, {
    '--only': ['only', 'words'], '--api-qps': ['apiQps', 'number'],
    '--sizes': ['sizes', 'numbers'], '--endpoints': ['endpoints', 'number'], '--changes': ['changes', 'number'], '--quick': ['quick', true],
    '--cpu-prof': ['cpuProf', true], '--timeout': ['timeout', 'number'], '--out': ['out', 'path'],
  })
  if (o.quick) Object.assign(o, { sizes: [300, 1000], changes: 10 })
  if (!o.sizes.every((n) => Number.isInteger(n) && n >= o.changes + 1)) throw new Error('--sizes: integers, each more than --changes')
  for (const k of ['endpoints', 'changes']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} must be an integer ≥ 1`)
  if (o.only && !o.only.every((w) => ['cold', 'changes', 'peer', 'watch'].includes(w))) throw new Error('--only: cold, changes, peer, watch')
  if (!(o.apiQps >= 0)) throw new Error('--api-qps must be ≥ 0')
  o.out ??= resultsFile('proxy-iptables', o.quick)
  return o
}

function summarize(raw) {
  return raw.sizes.map((s) => {
    const c = s.changes
    const p = s.peer
    const row = {
      size: `${tag(s.services)}x${s.endpoints}`,
      services: s.services,
      nodePorts: s.nodePorts,
      natChains: s.cold?.counts.nat.chains ?? null,
      natRules: s.cold?.counts.nat.rules ?? null,
      filterRules: s.cold?.counts.filter.rules ?? null,
      coldWallMs: s.cold?.wallMs ?? null,
      coldSyncMs: s.cold?.syncMs ?? null,
      rssMB: s.cold?.mem.rssMB ?? null,
      peakRssMB: s.cold?.mem.hwmMB ?? null,
      rssAfter2sMB: s.cold?.memAfter2s.rssMB ?? null,
      peerColdMs: p?.coldRestoreMs ?? null,
      peerColdTextMB: p ? round(p.coldTextBytes / 2 ** 20) : null,
      startInProcessMs: c?.startInProcessMs ?? null,
      settled: c?.settled ?? null,
      sync: c?.sync ?? null,
      commit: c?.commit ?? null,
      peerChange: p?.change ?? null,
      peerChangeTextLines: p?.changeTextLines.p50 ?? null,
      peerProcessStartMs: p?.baseline.processStartMs.p50 ?? null,
      peerReadOnlyRestoreMs: p?.baseline.readOnlyRestoreMs.p50 ?? null,
      ok: s.errors.length === 0,
      errors: s.errors,
    }
    row.coldGc = s.cold?.gc ?? null
    row.gc = changesGcSummary(c?.gc)
    row.watch = watchSummary(s.watch)
    row.ratios = {
      peerColdOverDaemonSync: ratio(row.peerColdMs, row.coldSyncMs),
      peerColdOverDaemonWall: ratio(row.peerColdMs, row.coldWallMs),
      peerChangeP50OverSettledP50: ratio(p?.change.p50, c?.settled.p50),
      peerChangeP99OverSettledP99: ratio(p?.change.p99, c?.settled.p99),
      peerChangeP50OverSyncP50: ratio(p?.change.p50, c?.sync.p50),
      watchOverManifestP50: ratio(s.watch?.e2e.p50, c?.settled.p50),
      watchOverManifestP99: ratio(s.watch?.e2e.p99, c?.settled.p99),
      watchColdOverManifestCold: ratio(s.watch?.cold.wallMs, row.coldWallMs),
    }
    return row
  })
}

function table(rows) {
  const f = (x, d = 0) => (x == null ? '—' : Number(x).toFixed(d))
  const x = (r) => (r == null ? '—' : `${r.toFixed(2)}×`)
  const out = []
  const block = (head, body) => out.push(...grid(head, body, (i, n) => i !== 0 && i !== n - 1), '')
  block(['size', 'nat chains / rules', 'cold wall s', 'full sync s', 'restore s', 'restore/sync', 'restore/wall', 'RSS MB', 'check'],
    rows.map((r) => [r.size, `${r.natChains}/${r.natRules}`, f(r.coldWallMs / 1000, 2), f(r.coldSyncMs / 1000, 2), f(r.peerColdMs / 1000, 2), x(r.ratios.peerColdOverDaemonSync), x(r.ratios.peerColdOverDaemonWall), `${f(r.rssMB, 1)} (peak ${f(r.peakRssMB, 0)})`, r.ok ? 'ok' : 'FAILED']))
  block(['size', 'settled p50/p99 ms', 'sync p50/p99 ms', 'commit p50 ms (kernel replace)', 'restore --noflush p50/p99 ms', 'restore/settled p50 · p99', 'check'],
    rows.map((r) => [r.size, `${f(r.settled?.p50, 1)} / ${f(r.settled?.p99, 1)}`, `${f(r.sync?.p50, 1)} / ${f(r.sync?.p99, 1)}`, `${f(r.commit?.ms.p50, 1)} (${f(r.commit?.kernelReplaceMs.p50, 1)})`, `${f(r.peerChange?.p50, 1)} / ${f(r.peerChange?.p99, 1)}`, `${x(r.ratios.peerChangeP50OverSettledP50)} · ${x(r.ratios.peerChangeP99OverSettledP99)}`, r.ok ? 'ok' : 'FAILED']))
  if (rows.some((r) => r.watch)) out.push('watch variant: the test API server, the daemon with --kubeconfig, one EndpointSlice per watch event (timed to the daemon\'s sync line, then checked with iptables-legacy)', '', ...watchTable(rows, 'event → synced p50/p99 ms'), '')
  out.push('GC pauses next to the p99s', '', ...gcTable(rows, (r) => [
    ['manifest settled()', r.settled, r.gc?.phase, r.gc?.settled],
    ['watch event → synced', r.watch?.e2e, r.watch?.gc.phase, r.watch?.gc.e2e],
  ], (r) => [['manifests', r.coldGc], ['watch', r.watch?.coldGc]]), '')
  for (const r of rows) out.push(`${r.size}: restore input ${f(r.peerColdTextMB, 1)} MB; one change's restore input ${r.peerChangeTextLines ?? '—'} lines; process start ${f(r.peerProcessStartMs, 1)} ms, read-only restore (nat read, nothing committed) ${f(r.peerReadOnlyRestoreMs, 1)} ms`)
  return out.join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  needsDist('dist/proxy/main.js')
  const prof = cpuProfile('proxy-iptables', opts.cpuProf)
  const cfg = { fakeApiServer: await fakeApiServerModule(), apiQps: opts.apiQps, only: opts.only, sizes: opts.sizes, endpoints: opts.endpoints, changes: opts.changes, daemonNodeFlags: prof.flags, workerNodeFlags: prof.flags }
  const box = { envVar: 'PROXY_IPTABLES_CONFIG', cfg, timeoutS: opts.timeout, mem: '3G' }
  await runAndReport('proxy-iptables', import.meta.url, box, opts.out, (raw, box) => {
    const rows = summarize(raw)
    return {
      fields: { config: { ...raw.config, cpuProf: prof.record }, summary: rows, raw: raw.sizes, ...(raw.partial ? { partial: `the box stopped early (${box.error}): only the sizes finished before are here` } : {}) },
      ok: rows.every((r) => r.ok),
      box: `${raw.env.iptables}; `,
      tail: `${raw.config.changes} changes per size, one cold run`,
      table: table(rows),
    }
  }, 'some workers FAILED their checks (see "errors" in the results file)')
}

runMain('proxy-iptables', main)
