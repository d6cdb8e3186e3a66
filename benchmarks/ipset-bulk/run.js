#!/usr/bin/env node
// benchmarks/ipset-bulk: how fast tsproxy programs and lists ipset in bulk,
// against the ipset tool (restore, one process per entry, save/list), on two
// kernels: the host's (in a fresh network namespace) and the kernel box's
// (test/kernel/box.mjs, user-mode Linux 6.1). Same cases, same order, each in
// its own run of benchmarks/ipset-bulk/inside.mjs.
//
//   npm run bench:ipset-bulk [-- options]     (builds first)
//   node benchmarks/ipset-bulk/run.js [options]
//
//   --reps N            timed rounds of the repeated cases (default 5; the figure is the median)
//   --n N               entries in the bulk cases (default 100000)
//   --per-process N     entries for the one-process-per-entry case (default 1000)
//   --single N          repetitions of the single add / delete at N entries (default 20)
//   --only a,b,c,d,e,f,ref   run only these groups (see README.md)
//   --where host,box    run only there (default both)
//   --quick             small sizes (5000 entries, 100 per process, 5 singles, 1 round): a smoke
//                       test; writes benchmarks/results/ipset-bulk.quick.tmp instead
//   --timeout S         box timeout (default 3600)
//   --out FILE          results file (default benchmarks/results/ipset-bulk.json)
//
// Inside the box every system call is slow (user-mode Linux): compare only
// ratios measured in the same environment.
import { spawn } from 'node:child_process'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  bootBox, BOX_RUNNER, caseSummary, caseTable, finish, hostRecord, judge, needsDist, parseFlags, repoRoot, resultsFile, runMain, takeRaw, writeResult,
} from '../common/harness.mjs'
import { commandLine, rel } from '../common/host.mjs'
import { ratio, tag as label } from '../common/stats.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const GOALS = { restoreOverBatchMin: 3 }

function parseArgs(argv) {
  const o = { reps: 5, n: 100000, perProcess: 1000, single: 20, timeout: 3600, quick: false, only: null, where: ['host', 'box'], out: null }
  parseFlags(argv, import.meta.url, o, {
    '--reps': ['reps', 'number'], '--n': ['n', 'number'], '--per-process': ['perProcess', 'number'], '--single': ['single', 'number'],
    '--timeout': ['timeout', 'number'], '--quick': ['quick', true], '--only': ['only', 'words'], '--where': ['where', 'words'], '--out': ['out', 'path'],
  })
  for (const k of ['reps', 'n', 'perProcess', 'single']) if (!(o[k] >= 1)) throw new Error(`--${k} must be ≥ 1`)
  if (o.where.some((w) => w !== 'host' && w !== 'box')) throw new Error('--where takes host, box')
  if (o.quick) Object.assign(o, { n: 5000, perProcess: 100, single: 5, reps: 1 })
  o.out ??= resultsFile('ipset-bulk', o.quick)
  return o
}

function summarize(raw) {
  const cases = raw.cases.map((c) => caseSummary(c, 3))
  const by = Object.fromEntries(cases.map((c) => [c.id, c]))
  const us = (id) => (by[id]?.ok ? by[id].usPerOp : null)
  const ms = (id) => (by[id]?.ok ? by[id].medianMs : null)
  const N = label(raw.config.n)
  const P = label(raw.config.perProcess)
  const ratios = [
    { what: `ipset restore / ours batch, ${N} entries`, value: ratio(ms(`ipset-restore-${N}`), ms(`batch-${N}`)), goal: `≥ ${GOALS.restoreOverBatchMin}` },
    { what: `one ipset add process per entry (${P}) / ours batch, per entry`, value: ratio(us(`ipset-add-per-process-${P}`), us(`batch-${N}`)) },
    { what: `one ipset add process per entry / ours one awaited add per entry (${P})`, value: ratio(us(`ipset-add-per-process-${P}`), us(`per-call-${P}`)) },
    { what: `one message per entry (ref) / ours batch (ADT), ${N}`, value: ratio(ms(`message-per-entry-${N}`), ms(`batch-${N}`)) },
    { what: `ipset add process / ours add, one entry into ${N}`, value: ratio(ms(`ipset-add-one-at-${N}`), ms(`add-one-at-${N}`)) },
    { what: `ipset del process / ours del, one entry out of ${N}`, value: ratio(ms(`ipset-del-one-at-${N}`), ms(`del-one-at-${N}`)) },
    { what: `ipset save / ours list, ${N} entries`, value: ratio(ms(`list-ipset-save-${N}`), ms(`list-ours-${N}`)) },
    { what: `ipset list / ours list, ${N} entries`, value: ratio(ms(`list-ipset-list-${N}`), ms(`list-ours-${N}`)) },
  ]
  judge(ratios)
  return { cases, ratios }
}

function table(summary) {
  const lines = caseTable(summary, (c) => [
    c.tool,
    String(c.ops),
    c.ok ? c.medianMs.toFixed(c.medianMs < 10 ? 3 : 1) : '—',
    c.ok ? c.usPerOp.toFixed(2) : 'BROKEN',
  ], 9)
  const notes = []
  for (const c of summary.cases) {
    const m = c.extraMedians
    if (c.ok && m?.syncMs != null) notes.push(`${c.id}: the call returned to the event loop after ${m.syncMs} ms; its longest stall after that (validating and encoding all entries before anything is sent) was ${m.maxLoopDelayMs} ms`)
  }
  if (notes.length) lines.push('', ...notes)
  return lines.join('\n')
}

/** inside.mjs on the host, as root, in a fresh network namespace. */
function runOnHost(cfg, onOutput) {
  return new Promise((resolve) => {
    if (process.getuid?.() !== 0) return resolve({ skipped: 'needs root for unshare -n' })
    const t0 = Date.now()
    const child = spawn('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
      process.execPath, '--expose-gc', path.join(here, 'inside.mjs')], {
      cwd: repoRoot,
      env: { ...process.env, IPSET_BULK_CONFIG: JSON.stringify(cfg) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout.on('data', (d) => onOutput(String(d)))
    child.stderr.on('data', (d) => onOutput(String(d)))
    child.on('error', (e) => resolve({ code: 127, error: e.message }))
    child.on('exit', (code) => resolve({ code, totalMs: Date.now() - t0 }))
  })
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  needsDist('dist/index.js')
  const command = commandLine(import.meta.url)
  const base = { n: opts.n, perProcess: opts.perProcess, single: opts.single, reps: opts.reps, only: opts.only }

  const environments = {}
  const loadBefore = os.loadavg()
  for (const where of opts.where) {
    const rawFile = path.join(os.tmpdir(), `tsproxy-ipset-bulk-${process.pid}-${where}.json`)
    const cfg = { ...base, where, out: rawFile }
    let run
    if (where === 'host') {
      console.error('ipset-bulk: host kernel, fresh network namespace…')
      run = await runOnHost(cfg, (s) => process.stderr.write(s))
    } else {
      console.error(`ipset-bulk: booting the kernel box (timeout ${opts.timeout} s)…`)
      try {
        const box = await bootBox({ script: `exec node --expose-gc ${rel(path.join(here, 'inside.mjs'))}\n`, env: { IPSET_BULK_CONFIG: JSON.stringify(cfg) }, timeoutS: opts.timeout, mem: '2G' })
        run = { code: box.code, bootMs: box.bootMs, totalMs: box.totalMs, mem: '2G', runner: BOX_RUNNER }
      } catch (e) {
        run = { code: 125, error: `the box failed: ${e.message}`, ...(e.code === 'ENOBOX' ? { skipped: e.message } : {}) }
      }
    }
    const raw = takeRaw(rawFile)
    if (!raw) {
      environments[where] = { run, ok: Boolean(run.skipped), ...(run.skipped ? { skipped: run.skipped } : { error: run.error ?? `no results came back (exit ${run.code})` }) }
      console.error(`ipset-bulk: ${where}: ${environments[where].skipped ?? environments[where].error}`)
      continue
    }
    const summary = summarize(raw)
    environments[where] = { env: raw.env, config: raw.config, run, cases: summary.cases, ratios: summary.ratios, ok: summary.cases.every((c) => c.ok) && run.code === 0 }
  }

  const result = {
    benchmark: 'ipset-bulk',
    date: new Date().toISOString(),
    command,
    // Other load on the host shows up as noise in every tool alike; it is recorded here.
    host: hostRecord(loadBefore),
    goals: GOALS,
    environments,
    ok: Object.values(environments).every((e) => e.ok),
  }
  writeResult(opts.out, result)

  for (const [where, e] of Object.entries(environments)) {
    if (!e.cases) {
      console.log(`\nipset-bulk — ${where}: ${e.skipped ? `skipped (${e.skipped})` : `FAILED: ${e.error}`}`)
      continue
    }
    console.log(`\nipset-bulk — ${where === 'host' ? 'host kernel, fresh netns' : 'kernel box'}: Linux ${e.env.kernelRelease}, node ${e.env.node}, ` +
      `${e.env.ipsetTool}; set ${e.config.set}; medians of ${e.config.reps} round(s)\n`)
    console.log(table(e))
  }
  console.log(`\n${result.date}, host CPU ${result.host.cpuModel} ×${result.host.cpus}, load ${result.host.loadavgBefore.join(' ')} → ${result.host.loadavgAfter.join(' ')}`)
  finish('ipset-bulk', opts.out, result.ok, 'some cases FAILED their checks (see "errors" in the results file)', '')
}

runMain('ipset-bulk', main)
