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
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runInBox, repoRoot } from '../../test/kernel/box.mjs'
import { commandLine, helpText, hostInfo, rel } from '../common/host.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))

function parseArgs(argv) {
  const o = { services: 10000, endpoints: 10, minutes: 60, rate: 2, sample: null, quick: false, timeout: null, out: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--services') o.services = Number(val())
    else if (a === '--endpoints') o.endpoints = Number(val())
    else if (a === '--minutes') o.minutes = Number(val())
    else if (a === '--rate') o.rate = Number(val())
    else if (a === '--sample') o.sample = Number(val())
    else if (a === '--quick') o.quick = true
    else if (a === '--timeout') o.timeout = Number(val())
    else if (a === '--out') o.out = path.resolve(val())
    else if (a === '-h' || a === '--help') {
      console.log(helpText(import.meta.url))
      process.exit(0)
    } else throw new Error(`unknown option ${a}`)
  }
  if (o.quick) Object.assign(o, { services: 1000, minutes: 3 })
  for (const k of ['services', 'endpoints']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} must be an integer ≥ 1`)
  for (const k of ['minutes', 'rate']) if (!(o[k] > 0)) throw new Error(`--${k} must be a positive number`)
  o.sample ??= Math.min(60, Math.max(5, Math.round((o.minutes * 60) / 60)))
  if (!(o.sample > 0)) throw new Error('--sample must be a positive number')
  o.timeout ??= Math.ceil(o.minutes * 60 + 900)
  o.out ??= path.join(repoRoot, 'benchmarks/results', o.quick ? 'soak.quick.tmp' : 'soak.json')
  return o
}

const round = (x, d = 2) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d)
const median = (xs) => {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b)
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null
}
function percentile(xs, p) {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : null
}
const ratio = (a, b) => (a != null && b != null && b > 0 ? round(a / b) : null)

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
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const fmt = (r) => r.map((x, i) => x.padStart(w[i])).join('  ')
  lines.push(fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt), '')
  const hw = Math.max(...summary.rows.map((r) => r.what.length))
  lines.push(`${'first 10% → last 10%'.padEnd(hw)}   first    last   ratio`)
  for (const r of summary.rows) lines.push(`${r.what.padEnd(hw)}  ${f(r.first10).padStart(6)}  ${f(r.last10).padStart(6)}   ${r.ratio == null ? '—' : r.ratio.toFixed(2) + '×'}  ${r.unit}`)
  lines.push('', `${summary.changes} changes; latency p50 ${f(summary.latency.p50)} p99 ${f(summary.latency.p99)} max ${f(summary.latency.max)} ms; ` +
    `sync p50 ${f(summary.syncMs.p50)} p99 ${f(summary.syncMs.p99)} ms; peak RSS ${f(summary.peakRssMB)} MB; daemon CPU ${summary.cpuPerSecond ?? '—'} s/s`)
  return lines.join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (!fs.existsSync(path.join(repoRoot, 'dist/proxy/main.js'))) throw new Error('dist/ is missing: npm run build first')
  const rawFile = path.join(os.tmpdir(), `tsproxy-soak-${process.pid}.json`)
  const cfg = { out: rawFile, services: opts.services, endpoints: opts.endpoints, durationS: opts.minutes * 60, rate: opts.rate, sampleS: opts.sample }
  const loadBefore = os.loadavg()
  console.error(`soak: booting the kernel box (timeout ${opts.timeout} s)…`)
  const ac = new AbortController()
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => ac.abort())
  let box
  try {
    box = await runInBox({
      script: `exec unshare -n node ${rel(path.join(here, 'inside.mjs'))}\n`,
      env: { SOAK_CONFIG: JSON.stringify(cfg) },
      timeoutMs: opts.timeout * 1000,
      mem: '3G',
      signal: ac.signal,
      onOutput: (chunk) => process.stderr.write(chunk),
    })
  } catch (e) {
    console.error(`soak: the box failed: ${e.message}`)
    process.exitCode = 125
    return
  }
  if (!fs.existsSync(rawFile)) {
    console.error(`soak: no results came back (box exit ${box.code})`)
    process.exitCode = box.code || 1
    return
  }
  const raw = JSON.parse(fs.readFileSync(rawFile, 'utf8'))
  fs.rmSync(rawFile, { force: true })
  const summary = summarize(raw)
  const result = {
    benchmark: 'soak',
    date: new Date().toISOString(),
    command: commandLine(import.meta.url),
    host: { ...hostInfo(), loadavgBefore: loadBefore.map((x) => round(x)), loadavgAfter: os.loadavg().map((x) => round(x)) },
    box: { ...raw.env, bootMs: box.bootMs, totalMs: box.totalMs, mem: '3G', runner: 'test/kernel/box.mjs (user-mode Linux)' },
    config: { ...raw.config, daemon: 'dist/proxy/main.js --proxy-mode=ipvs --manifests (default sync periods: a full sync every 30 s)' },
    cold: raw.cold,
    churnS: raw.churnS,
    summary,
    samples: raw.samples,
    end: raw.end,
    failures: raw.failures,
    ok: raw.failures.length === 0 && box.code === 0,
  }
  fs.mkdirSync(path.dirname(opts.out), { recursive: true })
  fs.writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n')
  console.log(`\nsoak — ${result.date}, box: Linux ${raw.env.kernelRelease}, node ${raw.env.node}, host CPU ${result.host.cpuModel} ×${result.host.cpus}; ` +
    `${raw.config.services} services × ${raw.config.endpoints} endpoints, ${round(raw.churnS / 60, 1)} min at ${raw.config.rate} changes/s; ` +
    `cold start ${round(raw.cold.wallMs / 1000)} s, RSS ${raw.cold.mem.rssMB} MB\n`)
  console.log(table(raw, summary))
  console.log(`\nresults: ${rel(opts.out)}`)
  if (!result.ok) {
    console.error(`soak: FAILED: ${raw.failures.slice(0, 5).join(' | ') || `box exit ${box.code}`}`)
    process.exitCode = 1
  }
}

main().catch((e) => {
  console.error(`soak: ${e.message}`)
  process.exitCode = 2
})
