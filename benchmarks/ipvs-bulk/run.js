#!/usr/bin/env node
// benchmarks/ipvs-bulk: how fast tsproxy programs and lists IPVS in bulk, against
// ipvsadm (-R, one process per rule, -Sn) and a raw C netlink probe, all in one
// boot of the kernel box (test/kernel/box.mjs; the host has no IPVS).
//
//   npm run bench:ipvs-bulk [-- options]     (builds first)
//   node benchmarks/ipvs-bulk/run.js [options]
//
//   --reps N            timed rounds of every case but (d) (default 5; the figure is the median)
//   --per-process N     one-ipvsadm-per-op case on the first N ops only (default: all 6000)
//   --only a,b,c,d,e,ref  run only these groups (see README)
//   --quick             small sizes (100x5, 2000, list 2000x5), 1 round: a smoke test;
//                       writes benchmarks/results/ipvs-bulk.quick.tmp instead
//   --cpu-prof          profile each in-box run's node (--cpu-prof; profiles go to /tmp/tsproxy-ipvs-bulk-prof)
//   --timeout S         box timeout (default 3600)
//   --out FILE          results file (default benchmarks/results/ipvs-bulk.json)
//
// Everything inside the box is slow per syscall (user-mode Linux), so only the
// ratios between cases of the same boot mean anything.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runInBox, repoRoot } from '../../test/kernel/box.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const rel = (p) => path.relative(repoRoot, p)

// Figures of a raw C probe measured earlier in the same kind of kernel (batched,
// ACK per op): the shape our batch should follow.
const REFERENCE_PROBE_US = { '1kx5': 25, '20k': 60 }
const GOALS = { batchVsProbeMax: 1.5, batchVsRestoreMin: 20 }

function parseArgs(argv) {
  const o = { reps: 5, perProcess: 'full', timeout: 3600, quick: false, cpuProf: false, only: null, out: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--reps') o.reps = Number(val())
    else if (a === '--per-process') o.perProcess = val()
    else if (a === '--timeout') o.timeout = Number(val())
    else if (a === '--quick') o.quick = true
    else if (a === '--cpu-prof') o.cpuProf = true
    else if (a === '--only') o.only = val().split(',')
    else if (a === '--out') o.out = path.resolve(val())
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1).filter((l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'))
      process.exit(0)
    } else throw new Error(`unknown option ${a}`)
  }
  if (!(o.reps >= 1)) throw new Error('--reps must be ≥ 1')
  if (o.perProcess !== 'full' && !(Number(o.perProcess) >= 1)) throw new Error('--per-process must be a count or "full"')
  o.out ??= path.join(repoRoot, 'benchmarks/results', o.quick ? 'ipvs-bulk.quick.tmp' : 'ipvs-bulk.json')
  return o
}

/** Builds probe.c once per source version into the temp dir (the box sees the host's /tmp). */
function buildProbe() {
  const src = path.join(here, 'probe.c')
  const hash = createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 12)
  const bin = path.join(os.tmpdir(), `tsproxy-ipvs-probe-${hash}-${process.getuid()}`)
  if (fs.existsSync(bin)) return { bin }
  const tmp = `${bin}.${process.pid}.tmp`
  const r = spawnSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', tmp, src], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return { error: `cannot build probe.c (${r.error?.message ?? r.stderr.trim()}): the raw baseline is skipped` }
  fs.renameSync(tmp, bin)
  return { bin }
}

function hostInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  return {
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model,
    cpus: os.cpus().length,
    kernel: os.release(),
    node: process.version,
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null
}
const round = (x, d = 1) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d)

function summarize(raw) {
  const cases = raw.cases.map((c) => {
    const ms = median(c.samplesMs)
    const extraMedians = {}
    for (const k of Object.keys(c.extra?.[0] ?? {})) extraMedians[k] = round(median(c.extra.map((e) => e[k])), 2)
    return {
      ...c,
      ...(c.extra ? { extraMedians } : {}),
      medianMs: round(ms, 2),
      minMs: round(Math.min(...c.samplesMs), 2),
      usPerOp: c.ok && ms != null ? round((ms * 1000) / c.ops, 2) : null,
    }
  })
  const by = Object.fromEntries(cases.map((c) => [c.id, c]))
  const us = (id) => (by[id]?.ok ? by[id].usPerOp : null)
  const ms = (id) => (by[id]?.ok ? by[id].medianMs : null)
  const ratio = (a, b) => (a != null && b != null && b > 0 ? round(a / b, 2) : null)
  const s = raw.config.small
  const l = raw.config.large
  const tag = (z) => `${z.services >= 1000 ? `${z.services / 1000}k` : z.services}${z.dests ? `x${z.dests}` : ''}`
  const S = tag(s)
  const L = tag(l)
  const LL = tag(raw.config.list)
  const ratios = [
    { what: `ipvsadm -R / ours batch, ${S}`, value: ratio(us(`ipvsadm-R-${S}`), us(`batch-${S}`)), goal: `≥ ${GOALS.batchVsRestoreMin}` },
    { what: `ipvsadm -R / ours batch, ${L}`, value: ratio(us(`ipvsadm-R-${L}`), us(`batch-${L}`)), goal: `≥ ${GOALS.batchVsRestoreMin}` },
    { what: `ipvsadm per process / ours batch, ${S}`, value: ratio(us(`ipvsadm-per-process-${S}`), us(`batch-${S}`)) },
    { what: `ours per call / ours batch, ${S}`, value: ratio(us(`per-call-${S}`), us(`batch-${S}`)) },
    { what: `ours per call / ours batch, ${L}`, value: ratio(us(`per-call-${L}`), us(`batch-${L}`)) },
    { what: `ipvsadm -Sn / ours listServices({destinations}), ${LL}`, value: ratio(ms('list-ipvsadm-Sn'), ms('list-ours-with-dests')) },
    { what: `ours batch / raw probe (same boot), ${S}`, value: ratio(us(`batch-${S}`), us(`probe-${S}`)), goal: `≤ ${GOALS.batchVsProbeMax}` },
    { what: `ours batch / raw probe (same boot), ${L}`, value: ratio(us(`batch-${L}`), us(`probe-${L}`)), goal: `≤ ${GOALS.batchVsProbeMax}` },
  ]
  if (REFERENCE_PROBE_US[S]) ratios.push({ what: `ours batch / reference probe figure (${REFERENCE_PROBE_US[S]} µs), ${S}`, value: ratio(us(`batch-${S}`), REFERENCE_PROBE_US[S]), goal: `≤ ${GOALS.batchVsProbeMax}` })
  if (REFERENCE_PROBE_US[L]) ratios.push({ what: `ours batch / reference probe figure (${REFERENCE_PROBE_US[L]} µs), ${L}`, value: ratio(us(`batch-${L}`), REFERENCE_PROBE_US[L]), goal: `≤ ${GOALS.batchVsProbeMax}` })
  for (const r of ratios) {
    if (r.value == null || !r.goal) continue
    const [op, n] = r.goal.split(' ')
    r.met = op === '≥' ? r.value >= Number(n) : r.value <= Number(n)
  }
  return { cases, ratios }
}

function table(summary) {
  const lines = []
  const head = ['case', 'tool', 'ops', 'median ms', 'µs/op', 'runs', 'check']
  const rows = summary.cases.map((c) => [
    c.id,
    c.tool + (c.sampleOfOps ? ` (sample: first ${c.ops} of ${c.sampleOfOps})` : ''),
    String(c.ops) + (c.unit ? ` svc` : ''),
    c.ok ? c.medianMs.toFixed(1) : '—',
    c.ok ? (c.unit ? `${c.usPerOp.toFixed(1)}/svc` : c.usPerOp.toFixed(1)) : 'BROKEN',
    String(c.samplesMs.length),
    c.ok ? 'ok' : 'FAILED',
  ])
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const fmt = (r) => r.map((x, i) => (i >= 2 && i <= 5 ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ')
  lines.push(fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt), '')
  const rw = Math.max(...summary.ratios.map((r) => r.what.length))
  for (const r of summary.ratios) {
    const v = r.value == null ? 'n/a' : `${r.value.toFixed(2)}×`
    lines.push(`${r.what.padEnd(rw)}  ${v.padStart(8)}${r.goal ? `   goal ${r.goal}: ${r.met == null ? 'n/a' : r.met ? 'met' : 'NOT MET'}` : ''}`)
  }
  const notes = []
  for (const c of summary.cases) {
    const m = c.extraMedians
    if (!c.ok || !m) continue
    if (m.syncMs != null) notes.push(`${c.id}: event loop held ${m.syncMs} ms inside the call (validation + encoding, before anything is sent); longest stall after it ${m.maxLoopDelayMs} ms`)
    if (m.recvCalls != null) notes.push(`${c.id}: ${m.sends} sendmsg, ${m.recvCalls} receive calls (${round(m.recvCalls / c.ops, 2)}/op); wall with exec ${m.wallMs} ms`)
  }
  if (notes.length) lines.push('', ...notes)
  return lines.join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (!fs.existsSync(path.join(repoRoot, 'dist/index.js'))) throw new Error('dist/ is missing: npm run build first')
  const probe = buildProbe()
  if (probe.error) console.error(`ipvs-bulk: ${probe.error}`)
  const rawFile = path.join(os.tmpdir(), `tsproxy-ipvs-bulk-${process.pid}.json`)
  const cfg = {
    out: rawFile,
    probe: probe.bin ?? null,
    reps: opts.quick ? 1 : opts.reps,
    perProcess: opts.perProcess,
    only: opts.only,
    ...(opts.quick
      ? { small: { services: 100, dests: 5 }, large: { services: 2000, dests: 0 }, list: { services: 2000, dests: 5 } }
      : {}),
  }
  const profDir = path.join(os.tmpdir(), 'tsproxy-ipvs-bulk-prof')
  // Flags of the node processes that run the cases (one per timed run).
  cfg.nodeFlags = ['--expose-gc', ...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])]
  const script = `exec node ${rel(path.join(here, 'inside.mjs'))}\n`
  const command = process.env.npm_lifecycle_event
    ? `npm run ${process.env.npm_lifecycle_event}${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`
    : `node ${rel(fileURLToPath(import.meta.url))} ${process.argv.slice(2).join(' ')}`.trim()

  const loadBefore = os.loadavg()
  console.error(`ipvs-bulk: booting the kernel box (timeout ${opts.timeout} s)…`)
  const ac = new AbortController()
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => ac.abort())
  let box
  try {
    box = await runInBox({
      script,
      env: { IPVS_BULK_CONFIG: JSON.stringify(cfg) },
      timeoutMs: opts.timeout * 1000,
      mem: '2G',
      signal: ac.signal,
      onOutput: (chunk) => process.stderr.write(chunk),
    })
  } catch (e) {
    console.error(`ipvs-bulk: the box failed: ${e.message}`)
    process.exitCode = 125
    return
  }
  if (!fs.existsSync(rawFile)) {
    console.error(`ipvs-bulk: no results came back (box exit ${box.code})`)
    process.exitCode = box.code || 1
    return
  }
  const raw = JSON.parse(fs.readFileSync(rawFile, 'utf8'))
  fs.rmSync(rawFile, { force: true })
  const summary = summarize(raw)
  const result = {
    benchmark: 'ipvs-bulk',
    date: new Date().toISOString(),
    command,
    // The box is one more process on the host: other load there shows up as noise.
    host: { ...hostInfo(), loadavgBefore: loadBefore.map((x) => round(x, 2)), loadavgAfter: os.loadavg().map((x) => round(x, 2)) },
    box: { ...raw.env, bootMs: box.bootMs, totalMs: box.totalMs, mem: '2G', runner: 'test/kernel/box.mjs (user-mode Linux)' },
    config: { ...raw.config, probe: probe.bin ? 'benchmarks/ipvs-bulk/probe.c' : null, cpuProf: opts.cpuProf ? profDir : false },
    referenceProbeUsPerOp: REFERENCE_PROBE_US,
    goals: GOALS,
    cases: summary.cases,
    ratios: summary.ratios,
    ok: summary.cases.every((c) => c.ok) && box.code === 0,
  }
  fs.mkdirSync(path.dirname(opts.out), { recursive: true })
  fs.writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n')

  console.log(`\nipvs-bulk — ${result.date}, box: Linux ${raw.env.kernelRelease}, node ${raw.env.node}, ` +
    `host CPU ${result.host.cpuModel} ×${result.host.cpus}; medians of ${cfg.reps} run(s)\n`)
  console.log(table(summary))
  console.log(`\nresults: ${rel(opts.out)}`)
  if (!result.ok) {
    console.error('ipvs-bulk: some cases FAILED their checks (see "errors" in the results file)')
    process.exitCode = 1
  }
}

main().catch((e) => {
  console.error(`ipvs-bulk: ${e.message}`)
  process.exitCode = 2
})
