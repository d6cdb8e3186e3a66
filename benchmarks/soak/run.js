#!/usr/bin/env node
// benchmarks/soak: the tsproxy daemon in IPVS mode left running under a steady
// churn of endpoint changes, N services × 10 endpoints, for an hour: one
// EndpointSlice changed at a time at a fixed rate (an endpoint added, removed,
// or its readiness flipped). Every sample period: the daemon's RSS, heap and CPU
// time, and the latency of that period's changes (file rename → the daemon's
// sync after which the kernel shows it). The summary compares the first and the
// last 10% of the run: flat (ratios near 1) is the goal. One boot of the
// kernel box (test/kernel/box.mjs; the host has no IPVS).
//
//   npm run bench:soak [-- options]       (builds first)
//   node benchmarks/soak/run.js [options]
//
//   --services N      services (default 10000)
//   --endpoints N     endpoints per service (default 10)
//   --minutes M       churn duration (default 60)
//   --rate R          changes per second (default 2)
//   --sample S        seconds between samples (default: 1/60 of the run, 5..60)
//   --quick           1000 services for 3 minutes: the CI-scale form;
//                     writes benchmarks/results/soak.quick.tmp instead
//   --timeout S       box timeout (default: the run plus 15 minutes)
//   --out FILE        results file (default benchmarks/results/soak.json)
//
// Everything inside the box is slow per syscall (user-mode Linux): latencies are
// only comparable with other figures of the same kind of run; the trend over
// time is what this measures.
import { finish, grid, needsDist, parseFlags, resultsFile, runBoxBenchmark, runMain, writeResult } from '../common/harness.mjs'
import { median, percentile, ratio, round } from '../common/stats.mjs'

function parseArgs(argv) {
  const o = { services: 10000, endpoints: 10, minutes: 60, rate: 2, sample: null, quick: false, timeout: null, out: null }
  parseFlags(argv, import.meta.url, o, {
    '--services': ['services', 'number'], '--endpoints': ['endpoints', 'number'], '--minutes': ['minutes', 'number'], '--rate': ['rate', 'number'],
    '--sample': ['sample', 'number'], '--quick': ['quick', true], '--timeout': ['timeout', 'number'], '--out': ['out', 'path'],
  })
  if (o.quick) Object.assign(o, { services: 1000, minutes: 3 })
  for (const k of ['services', 'endpoints']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} must be an integer ≥ 1`)
  for (const k of ['minutes', 'rate']) if (!(o[k] > 0)) throw new Error(`--${k} must be a positive number`)
  o.sample ??= Math.min(60, Math.max(5, Math.round((o.minutes * 60) / 60)))
  if (!(o.sample > 0)) throw new Error('--sample must be a positive number')
  o.timeout ??= Math.ceil(o.minutes * 60 + 900)
  o.out ??= resultsFile('soak', o.quick)
  return o
}

/** First 10% of the run against the last 10%: memory by the samples, latency by the changes. */
function summarize(raw) {
  const d = raw.churnS
  const first = (t) => t <= d * 0.1
  const last = (t) => t >= d * 0.9
  const sm = raw.samples
  // Memory: the samples of each tenth, or at least the first / last one.
  const mem = (pick, k) => {
    const inside = sm.filter((s) => pick(s.t))
    return median((inside.length ? inside : [pick === first ? sm[0] : sm[sm.length - 1]]).map((s) => s[k]))
  }
  const lat = (pick, p) => percentile(raw.changes.series.filter((c) => pick(c[0])).map((c) => c[1]), p)
  const sync = (pick, p) => percentile(raw.changes.series.filter((c) => pick(c[0])).map((c) => c[2]), p)
  const row = (what, a, b, unit) => ({ what, first10: round(a), last10: round(b), ratio: ratio(b, a), unit })
  const rows = [
    row('RSS (median of samples)', mem(first, 'rssMB'), mem(last, 'rssMB'), 'MB'),
    row('heap used (median of samples)', mem(first, 'heapUsedMB'), mem(last, 'heapUsedMB'), 'MB'),
    row('change latency p50', lat(first, 50), lat(last, 50), 'ms'),
    row('change latency p99', lat(first, 99), lat(last, 99), 'ms'),
    row('sync time p50', sync(first, 50), sync(last, 50), 'ms'),
    row('sync time p99', sync(first, 99), sync(last, 99), 'ms'),
    row('periodic full sync (median)', mem(first, 'fullSyncMs'), mem(last, 'fullSyncMs'), 'ms'),
  ]
  const cpu = sm.length > 1 ? round((sm[sm.length - 1].cpuSeconds - sm[0].cpuSeconds) / (sm[sm.length - 1].t - sm[0].t), 3) : null
  return { rows, peakRssMB: Math.max(...sm.map((s) => s.hwmMB)), cpuPerSecond: cpu, changes: raw.changes.n, latency: raw.changes.latency, syncMs: raw.changes.syncMs }
}

function table(raw, summary) {
  const f = (x, dd = 1) => (x == null ? '—' : Number(x).toFixed(dd))
  const lines = []
  const head = ['t s', 'changes', 'RSS MB', 'peak MB', 'heap MB', 'CPU s', 'latency p50/p99 ms', 'sync p50/p99 ms', 'full syncs (longest ms)']
  const rows = raw.samples.map((s) => [f(s.t, 0), String(s.changes), f(s.rssMB), f(s.hwmMB), f(s.heapUsedMB), f(s.cpuSeconds), `${f(s.latency?.p50)} / ${f(s.latency?.p99)}`, `${f(s.syncMs?.p50)} / ${f(s.syncMs?.p99)}`, s.fullSyncMs ? `${s.fullSyncs} (${f(s.fullSyncMs, 0)})` : String(s.fullSyncs)])
  lines.push(...grid(head, rows, () => true), '')
  const hw = Math.max(...summary.rows.map((r) => r.what.length))
  lines.push(`${'first 10% → last 10%'.padEnd(hw)}   first    last   ratio`)
  for (const r of summary.rows) lines.push(`${r.what.padEnd(hw)}  ${f(r.first10).padStart(6)}  ${f(r.last10).padStart(6)}   ${r.ratio == null ? '—' : r.ratio.toFixed(2) + '×'}  ${r.unit}`)
  lines.push('', `${summary.changes} changes; latency p50 ${f(summary.latency.p50)} p99 ${f(summary.latency.p99)} max ${f(summary.latency.max)} ms; ` +
    `sync p50 ${f(summary.syncMs.p50)} p99 ${f(summary.syncMs.p99)} ms; peak RSS ${f(summary.peakRssMB)} MB; daemon CPU ${summary.cpuPerSecond ?? '—'} s/s`)
  return lines.join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  needsDist('dist/proxy/main.js')
  const cfg = { services: opts.services, endpoints: opts.endpoints, durationS: opts.minutes * 60, rate: opts.rate, sampleS: opts.sample }
  const run = await runBoxBenchmark('soak', import.meta.url, { envVar: 'SOAK_CONFIG', cfg, timeoutS: opts.timeout, mem: '3G', prefix: 'unshare -n ' })
  if (!run) return
  const { box, raw } = run
  const summary = summarize(raw)
  const result = {
    ...run.head,
    config: { ...raw.config, daemon: 'dist/proxy/main.js --proxy-mode=ipvs --manifests (default sync periods: a full sync every 30 s)' },
    cold: raw.cold,
    churnS: raw.churnS,
    summary,
    samples: raw.samples,
    end: raw.end,
    failures: raw.failures,
    ok: raw.failures.length === 0 && box.code === 0,
  }
  writeResult(opts.out, result)
  console.log(`\nsoak — ${result.date}, box: Linux ${raw.env.kernelRelease}, node ${raw.env.node}, host CPU ${result.host.cpuModel} ×${result.host.cpus}; ` +
    `${raw.config.services} services × ${raw.config.endpoints} endpoints, ${round(raw.churnS / 60, 1)} min at ${raw.config.rate} changes/s; ` +
    `cold start ${round(raw.cold.wallMs / 1000)} s, RSS ${raw.cold.mem.rssMB} MB\n`)
  console.log(table(raw, summary))
  finish('soak', opts.out, result.ok, `FAILED: ${raw.failures.slice(0, 5).join(' | ') || `box exit ${box.code}`}`)
}

runMain('soak', main)
