#!/usr/bin/env node
// benchmarks/iptables: the kube-proxy layout of the nat table (10k services x 3
// endpoints, ~110k rules, ~40k chains) built through tsproxy's iptables API vs
// iptables-legacy-restore; then one endpoint change at that size through our
// API vs one `iptables-legacy -A`. Host kernel, each run in a fresh network
// namespace (`unshare -n`, needs root), one node process per run.
//
//   npm run bench:iptables [-- options]     (builds first)
//   node benchmarks/iptables/run.js [options]
//
//   --services N     services in the layout (default 10000)
//   --endpoints N    endpoints per service (default 3)
//   --reps N         rounds of the bulk cases, ours and restore interleaved (default 5; the figure is the median)
//   --iterations N   changes of each kind at full size (default 15; the figure is the median)
//   --quick          1000 services, 1 round, 3 iterations: a smoke test; writes
//                    benchmarks/results/iptables.quick.tmp instead
//   --out FILE       results file (default benchmarks/results/iptables.json)
import { spawnSync } from 'node:child_process'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { finish, grid, hostRecord, needsDist, parseFlags, ratioLines, repoRoot, resultsFile, runMain, writeResult } from '../common/harness.mjs'
import { commandLine } from '../common/host.mjs'
import { median, round } from '../common/stats.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
// The goal for one change: at most half of what one `iptables-legacy -A` costs.
const GOALS = { changeOverAppendMax: 0.5 }

function parseArgs(argv) {
  const o = { services: 10000, endpoints: 3, reps: 5, iterations: 15, quick: false, out: null }
  parseFlags(argv, import.meta.url, o, {
    '--services': ['services', 'number'], '--endpoints': ['endpoints', 'number'], '--reps': ['reps', 'number'], '--iterations': ['iterations', 'number'],
    '--quick': ['quick', true], '--out': ['out', 'path'],
  })
  if (o.quick) Object.assign(o, { services: 1000, reps: 1, iterations: 3 })
  for (const k of ['services', 'endpoints', 'reps', 'iterations']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} must be an integer ≥ 1`)
  o.out ??= resultsFile('iptables', o.quick)
  return o
}

/** One run of inside.mjs in a new network namespace; its JSON line. */
function inFreshNetns(cfg) {
  const r = spawnSync('unshare', ['-n', '--', process.execPath, '--expose-gc', path.join(here, 'inside.mjs'), JSON.stringify(cfg)], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cfg.mode}: exit ${r.status}: ${r.stderr.trim().slice(-1500)}`)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

const r1 = (x) => round(x, 1)
const r2 = (x) => round(x, 2)

function version(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return (r.stdout || r.stderr || '').trim().split('\n')[0]
}

function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (process.getuid?.() !== 0) throw new Error('needs root (each run gets its own network namespace with unshare -n)')
  needsDist('dist/index.js')
  const command = commandLine(import.meta.url)
  const size = { services: opts.services, endpoints: opts.endpoints }
  const loadBefore = os.loadavg()
  const errors = []

  // ---- bulk: the whole layout into an empty nat table ----
  const bulk = { ours: [], restore: [] }
  for (let round = 0; round < opts.reps; round++) {
    const order = round % 2 === 0 ? ['ours', 'restore'] : ['restore', 'ours']
    for (const who of order) {
      process.stderr.write(`iptables: bulk round ${round + 1}/${opts.reps}: ${who}…\n`)
      bulk[who].push(inFreshNetns({ mode: who === 'ours' ? 'bulk-ours' : 'bulk-restore', ...size, digest: round === 0 }))
    }
  }
  const expect = bulk.restore[0].table
  for (const [who, runs] of Object.entries(bulk)) {
    for (const r of runs) {
      if (r.table.entries !== expect.entries || r.table.size !== expect.size)
        errors.push(`bulk ${who}: the kernel holds ${r.table.entries} entries / ${r.table.size} bytes, restore made ${expect.entries} / ${expect.size}`)
    }
  }
  const sameTable = bulk.ours[0].digest === bulk.restore[0].digest
  if (!sameTable) errors.push(`bulk: iptables-legacy-save differs (ours ${bulk.ours[0].digest}, restore ${bulk.restore[0].digest})`)

  // ---- one change at full size ----
  process.stderr.write(`iptables: ${opts.iterations} changes of each kind at ${opts.services} services…\n`)
  const change = inFreshNetns({ mode: 'change', ...size, iterations: opts.iterations })
  if (change.after.entries !== change.before.entries) errors.push(`change: the table went from ${change.before.entries} to ${change.after.entries} entries`)

  const cases = [
    { id: 'bulk-ours', what: 'layout through our API (one transaction)', samplesMs: bulk.ours.map((r) => r.ms), extra: { encodeMs: r1(median(bulk.ours.map((r) => r.encodeMs))), applyMs: r1(median(bulk.ours.map((r) => r.stats.applyMs))), commitMs: r1(median(bulk.ours.map((r) => r.stats.commitMs))) } },
    { id: 'bulk-restore', what: 'iptables-legacy-restore --noflush (process included)', samplesMs: bulk.restore.map((r) => r.ms) },
    ...Object.entries(change.samples).map(([id, samplesMs]) => ({
      id,
      what: {
        'ours-endpoint': 'one endpoint moved (2 KUBE-SEP rules replaced), one commit, snapshot reused',
        'ours-append': 'one rule appended, one commit, snapshot reused',
        'ours-endpoint-cold': 'one endpoint moved, snapshot reuse off (the table read first)',
        'iptables-legacy-A': 'one iptables-legacy -w -t nat -A (process included)',
      }[id],
      samplesMs,
      ...(change.breakdown[id] ? { extra: change.breakdown[id] } : {}),
    })),
  ].map((c) => ({ ...c, medianMs: r1(median(c.samplesMs)), minMs: r1(Math.min(...c.samplesMs)), samplesMs: c.samplesMs.map(r1) }))
  const by = Object.fromEntries(cases.map((c) => [c.id, c.medianMs]))
  const ratios = [
    { what: 'iptables-legacy-restore / ours, whole layout', value: r2(by['bulk-restore'] / by['bulk-ours']) },
    { what: 'ours one endpoint change / one iptables-legacy -A', value: r2(by['ours-endpoint'] / by['iptables-legacy-A']), goal: `≤ ${GOALS.changeOverAppendMax}` },
    { what: 'ours one append / one iptables-legacy -A', value: r2(by['ours-append'] / by['iptables-legacy-A']), goal: `≤ ${GOALS.changeOverAppendMax}` },
    { what: 'ours one endpoint change, no snapshot reuse / one iptables-legacy -A', value: r2(by['ours-endpoint-cold'] / by['iptables-legacy-A']) },
  ]
  for (const r of ratios) if (r.goal) r.met = r.value <= GOALS.changeOverAppendMax

  const result = {
    benchmark: 'iptables',
    date: new Date().toISOString(),
    command,
    how: 'host kernel; every run a fresh node process in a fresh network namespace (unshare -n); bulk rounds interleave ours and restore, alternating which goes first; our bulk run is timed after one untimed pass that validates and lays out the same edits (JIT warm-up) and is dropped; changes interleave the four kinds in one namespace holding the full layout, each followed (untimed) by a read that waits for the snapshot prefetch, as a daemon between syncs',
    host: hostRecord(loadBefore, { iptables: version('iptables-legacy', ['--version']), memTotalMB: Math.round(os.totalmem() / 2 ** 20) }),
    config: { ...size, rules: bulk.ours[0].rules, chains: bulk.ours[0].chains, reps: opts.reps, iterations: opts.iterations },
    table: { entries: expect.entries, bytes: expect.size, sameAsRestore: sameTable, saveLines: bulk.restore[0].lines },
    goals: GOALS,
    cases,
    ratios,
    errors,
    ok: errors.length === 0,
  }
  writeResult(opts.out, result)

  console.log(`\niptables — ${result.date}, host Linux ${result.host.kernel}, ${result.host.iptables}, ${result.host.cpuModel} ×${result.host.cpus}, load ${result.host.loadavgBefore.join(' ')}`)
  console.log(`layout: ${opts.services} services × ${opts.endpoints} endpoints = ${result.config.rules} rules, ${result.config.chains} chains; kernel table ${expect.entries} entries, ${(expect.size / 2 ** 20).toFixed(1)} MiB; iptables-legacy-save of ours ${sameTable ? 'identical to' : 'DIFFERS from'} restore's\n`)
  const head = ['case', 'median ms', 'min ms', 'runs', 'what']
  const rows = cases.map((c) => [c.id, c.medianMs.toFixed(1), c.minMs.toFixed(1), String(c.samplesMs.length), c.what])
  console.log(grid(head, rows, (i) => i >= 1 && i <= 3).join('\n'))
  console.log('')
  console.log(ratioLines(ratios, 7).join('\n'))
  const b = cases.find((c) => c.id === 'bulk-ours').extra
  const e = change.breakdown['ours-endpoint']
  const cold = change.breakdown['ours-endpoint-cold']
  console.log(`\nwhere the time goes (medians): bulk: validate + lay out ${b.encodeMs} ms, libiptc edits ${b.applyMs} ms, commit ${b.commitMs} ms.`)
  console.log(`one change: lock ${e.lockMs} ms, read ${e.loadMs} ms (snapshot reused ${e.snapshotReused}/${opts.iterations}), edits ${e.applyMs} ms, commit ${e.commitMs} ms` +
    ` (libiptc compiles the whole table, the kernel replaces it: IPT_SO_SET_REPLACE + SET_ADD_COUNTERS); without reuse the read alone is ${cold.loadMs} ms.`)
  finish('iptables', opts.out, result.ok, `FAILED checks:\n  ${errors.join('\n  ')}`)
}

runMain('iptables', main)
