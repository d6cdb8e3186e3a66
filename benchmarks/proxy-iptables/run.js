#!/usr/bin/env node
// benchmarks/proxy-iptables: the tsproxy daemon in iptables mode at 1k and 3k
// services × 10 endpoints: cold start to fully programmed nat and filter tables,
// one EndpointSlice change to the kernel (p50/p99), the daemon's RSS; against
// what kube-proxy would exec for the same: iptables-legacy-restore of the very
// tables the daemon wrote, and per change the --noflush text of kube-proxy's
// partial sync. One boot of the kernel box (test/kernel/box.mjs).
//
//   npm run bench:proxy-iptables [-- options]     (builds first)
//   node benchmarks/proxy-iptables/run.js [options]
//
//   --sizes a,b,c     service counts (default 1000,10000; 10000 takes ~12 minutes in the box)
//   --endpoints N     endpoints per service (default 10)
//   --changes N       changes per size, each timed to settled() (default 30)
//   --quick           300 and 1000 services, 10 changes: a smoke test;
//                     writes benchmarks/results/proxy-iptables.quick.tmp instead
//   --cpu-prof        profile the daemons (--cpu-prof; profiles go to /tmp/tsproxy-proxy-iptables-prof)
//   --timeout S       box timeout (default 5400)
//   --out FILE        results file (default benchmarks/results/proxy-iptables.json)
//
// Everything inside the box is slow per syscall (user-mode Linux), so only the
// ratios between figures of the same boot mean anything.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runInBox, repoRoot } from '../../test/kernel/box.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const rel = (p) => path.relative(repoRoot, p)

function parseArgs(argv) {
  const o = { sizes: [1000, 10000], endpoints: 10, changes: 30, quick: false, cpuProf: false, timeout: 5400, out: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--sizes') o.sizes = val().split(',').map(Number)
    else if (a === '--endpoints') o.endpoints = Number(val())
    else if (a === '--changes') o.changes = Number(val())
    else if (a === '--quick') o.quick = true
    else if (a === '--cpu-prof') o.cpuProf = true
    else if (a === '--timeout') o.timeout = Number(val())
    else if (a === '--out') o.out = path.resolve(val())
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1).filter((l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'))
      process.exit(0)
    } else throw new Error(`unknown option ${a}`)
  }
  if (o.quick) Object.assign(o, { sizes: [300, 1000], changes: 10 })
  if (!o.sizes.every((n) => Number.isInteger(n) && n >= o.changes + 1)) throw new Error('--sizes: integers, each more than --changes')
  for (const k of ['endpoints', 'changes']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} must be an integer ≥ 1`)
  o.out ??= path.join(repoRoot, 'benchmarks/results', o.quick ? 'proxy-iptables.quick.tmp' : 'proxy-iptables.json')
  return o
}

function hostInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  return { cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model, cpus: os.cpus().length, kernel: os.release(), node: process.version }
}

const round = (x, d = 2) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d)
const ratio = (a, b) => (a != null && b != null && b > 0 ? round(a / b) : null)
const tag = (n) => (n >= 1000 ? `${n / 1000}k` : String(n))

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
    row.ratios = {
      peerColdOverDaemonSync: ratio(row.peerColdMs, row.coldSyncMs),
      peerColdOverDaemonWall: ratio(row.peerColdMs, row.coldWallMs),
      peerChangeP50OverSettledP50: ratio(p?.change.p50, c?.settled.p50),
      peerChangeP99OverSettledP99: ratio(p?.change.p99, c?.settled.p99),
      peerChangeP50OverSyncP50: ratio(p?.change.p50, c?.sync.p50),
    }
    return row
  })
}

function table(rows) {
  const f = (x, d = 0) => (x == null ? '—' : Number(x).toFixed(d))
  const x = (r) => (r == null ? '—' : `${r.toFixed(2)}×`)
  const out = []
  const grid = (head, body) => {
    const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)))
    const fmt = (r) => r.map((v, i) => (i === 0 || i === r.length - 1 ? v.padEnd(w[i]) : v.padStart(w[i]))).join('  ')
    out.push(fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(fmt), '')
  }
  grid(['size', 'nat chains / rules', 'cold wall s', 'full sync s', 'restore s', 'restore/sync', 'restore/wall', 'RSS MB', 'check'],
    rows.map((r) => [r.size, `${r.natChains}/${r.natRules}`, f(r.coldWallMs / 1000, 2), f(r.coldSyncMs / 1000, 2), f(r.peerColdMs / 1000, 2), x(r.ratios.peerColdOverDaemonSync), x(r.ratios.peerColdOverDaemonWall), `${f(r.rssMB, 1)} (peak ${f(r.peakRssMB, 0)})`, r.ok ? 'ok' : 'FAILED']))
  grid(['size', 'settled p50/p99 ms', 'sync p50/p99 ms', 'commit p50 ms (kernel replace)', 'restore --noflush p50/p99 ms', 'restore/settled p50 · p99', 'check'],
    rows.map((r) => [r.size, `${f(r.settled?.p50, 1)} / ${f(r.settled?.p99, 1)}`, `${f(r.sync?.p50, 1)} / ${f(r.sync?.p99, 1)}`, `${f(r.commit?.ms.p50, 1)} (${f(r.commit?.kernelReplaceMs.p50, 1)})`, `${f(r.peerChange?.p50, 1)} / ${f(r.peerChange?.p99, 1)}`, `${x(r.ratios.peerChangeP50OverSettledP50)} · ${x(r.ratios.peerChangeP99OverSettledP99)}`, r.ok ? 'ok' : 'FAILED']))
  for (const r of rows) out.push(`${r.size}: restore input ${f(r.peerColdTextMB, 1)} MB; one change's restore input ${r.peerChangeTextLines ?? '—'} lines; process start ${f(r.peerProcessStartMs, 1)} ms, read-only restore (nat read, nothing committed) ${f(r.peerReadOnlyRestoreMs, 1)} ms`)
  return out.join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (!fs.existsSync(path.join(repoRoot, 'dist/proxy/main.js'))) throw new Error('dist/ is missing: npm run build first')
  const rawFile = path.join(os.tmpdir(), `tsproxy-proxy-iptables-${process.pid}.json`)
  const profDir = path.join(os.tmpdir(), 'tsproxy-proxy-iptables-prof')
  const prof = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []
  const cfg = { out: rawFile, sizes: opts.sizes, endpoints: opts.endpoints, changes: opts.changes, daemonNodeFlags: prof, workerNodeFlags: prof }
  const command = process.env.npm_lifecycle_event
    ? `npm run ${process.env.npm_lifecycle_event}${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `node ${rel(fileURLToPath(import.meta.url))} ${process.argv.slice(2).join(' ')}`.trim()
  const loadBefore = os.loadavg()
  console.error(`proxy-iptables: booting the kernel box (timeout ${opts.timeout} s)…`)
  const ac = new AbortController()
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => ac.abort())
  let box
  try {
    box = await runInBox({
      script: `exec node ${rel(path.join(here, 'inside.mjs'))}\n`,
      env: { PROXY_IPTABLES_CONFIG: JSON.stringify(cfg) },
      timeoutMs: opts.timeout * 1000,
      mem: '3G',
      signal: ac.signal,
      onOutput: (chunk) => process.stderr.write(chunk),
    })
  } catch (e) {
    console.error(`proxy-iptables: the box failed: ${e.message}`)
    process.exitCode = 125
    return
  }
  if (!fs.existsSync(rawFile)) {
    console.error(`proxy-iptables: no results came back (box exit ${box.code})`)
    process.exitCode = box.code || 1
    return
  }
  const raw = JSON.parse(fs.readFileSync(rawFile, 'utf8'))
  fs.rmSync(rawFile, { force: true })
  const rows = summarize(raw)
  const result = {
    benchmark: 'proxy-iptables',
    date: new Date().toISOString(),
    command,
    host: { ...hostInfo(), loadavgBefore: loadBefore.map((x) => round(x)), loadavgAfter: os.loadavg().map((x) => round(x)) },
    box: { ...raw.env, bootMs: box.bootMs, totalMs: box.totalMs, mem: '3G', runner: 'test/kernel/box.mjs (user-mode Linux)' },
    config: { ...raw.config, cpuProf: opts.cpuProf ? profDir : false },
    summary: rows,
    raw: raw.sizes,
    ok: rows.every((r) => r.ok) && box.code === 0,
  }
  fs.mkdirSync(path.dirname(opts.out), { recursive: true })
  fs.writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n')
  console.log(`\nproxy-iptables — ${result.date}, box: Linux ${raw.env.kernelRelease}, node ${raw.env.node}, ${raw.env.iptables}; host CPU ${result.host.cpuModel} ×${result.host.cpus}; ${raw.config.changes} changes per size, one cold run\n`)
  console.log(table(rows))
  console.log(`\nresults: ${rel(opts.out)}`)
  if (!result.ok) {
    console.error('proxy-iptables: some workers FAILED their checks (see "errors" in the results file)')
    process.exitCode = 1
  }
}

main().catch((e) => {
  console.error(`proxy-iptables: ${e.message}`)
  process.exitCode = 2
})
