// The host side of the box benchmarks (run.js files): flags, booting the kernel
// box on inside.mjs and taking back the raw results it wrote, the result file,
// tables. Each run.js keeps its own flags, summary and output shape.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runInBox, repoRoot } from '../../test/kernel/box.mjs'
import { commandLine, helpText, hostInfo, rel } from './host.mjs'
import { median, round } from './stats.mjs'

export { repoRoot }

/**
 * Reads argv into `o` (the defaults). `flags` maps '--name' to [key, kind]:
 * kind 'number', 'numbers' (a,b,c), 'words' (a,b,c), 'string', 'path', or true
 * for a switch. -h/--help prints the script's leading comment and exits.
 */
export function parseFlags(argv, fileUrl, o, flags) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-h' || a === '--help') {
      console.log(helpText(fileUrl))
      process.exit(0)
    }
    const f = flags[a]
    if (!f) throw new Error(`unknown option ${a}`)
    const [key, kind] = f
    if (kind === true) {
      o[key] = true
      continue
    }
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
    const v = argv[++i]
    o[key] = kind === 'number' ? Number(v) : kind === 'numbers' ? v.split(',').map(Number) : kind === 'words' ? v.split(',') : kind === 'path' ? path.resolve(v) : v
  }
  return o
}

/** benchmarks/results/<name>.json, or <name>.quick.tmp for a smoke run. */
export const resultsFile = (name, quick) => path.join(repoRoot, 'benchmarks/results', quick ? `${name}.quick.tmp` : `${name}.json`)

/** Where inside.mjs writes its raw results for this run (the box sees the host's /tmp). */
export const rawFile = (name) => path.join(os.tmpdir(), `tsproxy-${name}-${process.pid}.json`)

/** The box script that runs the inside.mjs next to `fileUrl`. */
export const insideScript = (fileUrl, prefix = '') => `exec ${prefix}node ${rel(path.join(path.dirname(fileURLToPath(fileUrl)), 'inside.mjs'))}\n`

export function needsDist(file) {
  if (!fs.existsSync(path.join(repoRoot, file))) throw new Error('dist/ is missing: npm run build first')
}

/** Boots the box with Ctrl-C passed on and its output streamed to stderr; throws if the box cannot run. */
export function bootBox({ script, env, timeoutS, mem }) {
  const ac = new AbortController()
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => ac.abort())
  return runInBox({ script, env, timeoutMs: timeoutS * 1000, mem, signal: ac.signal, onOutput: (chunk) => process.stderr.write(chunk) })
}

/** The raw results file inside.mjs wrote, read and removed; null when none came back. */
export function takeRaw(file) {
  if (!fs.existsSync(file)) return null
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  fs.rmSync(file, { force: true })
  return raw
}

/**
 * One box run of a benchmark: runs the inside.mjs next to `fileUrl` with `cfg`
 * (plus `out`, where it writes its raw results) in env[envVar], waits, returns
 * { box, raw, head } (head: the first fields of its results file: name, date,
 * command, host, box); on failure says why and returns null with the exit code
 * set (125: no box, else the box's).
 */
export async function runBoxBenchmark(name, fileUrl, { envVar, cfg, timeoutS, mem, prefix = '' }) {
  const file = rawFile(name)
  const env = { [envVar]: JSON.stringify({ ...cfg, out: file }) }
  const script = insideScript(fileUrl, prefix)
  const loadBefore = os.loadavg()
  console.error(`${name}: booting the kernel box (timeout ${timeoutS} s)…`)
  let box
  try {
    box = await bootBox({ script, env, timeoutS, mem })
  } catch (e) {
    console.error(`${name}: the box failed: ${e.message}`)
    // The sizes finished before (inside.mjs writes its raw results as it goes) are still reported, marked partial.
    const partial = takeRaw(file)
    if (!partial) {
      process.exitCode = 125
      return null
    }
    box = { code: 125, error: e.message }
    const head = { benchmark: name, date: new Date().toISOString(), command: commandLine(fileUrl), host: hostRecord(loadBefore), box: { ...boxRecord(partial, box, mem), error: e.message } }
    return { box, raw: partial, head }
  }
  const raw = takeRaw(file)
  if (!raw) {
    console.error(`${name}: no results came back (box exit ${box.code})`)
    process.exitCode = box.code || 1
    return null
  }
  const head = { benchmark: name, date: new Date().toISOString(), command: commandLine(fileUrl), host: hostRecord(loadBefore), box: boxRecord(raw, box, mem) }
  return { box, raw, head }
}

/**
 * A box benchmark from the boot to the exit code: runBoxBenchmark, then
 * `report(raw, box)` gives the results file's fields after the common head, whether
 * every check passed (the box must exit 0 too), the heading's parts (`box`:
 * more about the box before the host CPU, `tail`: what was run) and the table;
 * writes the results file, prints heading and table, and finishes.
 */
export async function runAndReport(name, fileUrl, boxOptions, out, report, failure) {
  const run = await runBoxBenchmark(name, fileUrl, boxOptions)
  if (!run) return
  const { box, raw, head } = run
  const r = report(raw, box)
  const result = { ...head, ...r.fields, ok: r.ok && box.code === 0 }
  writeResult(out, result)
  console.log(`\n${name} — ${result.date}, box: Linux ${raw.env.kernelRelease}, node ${raw.env.node}, ${r.box ?? ''}host CPU ${result.host.cpuModel} ×${result.host.cpus}; ${r.tail}\n`)
  console.log(r.table)
  finish(name, out, result.ok, failure)
}

/** --cpu-prof: the node flags that write profiles to /tmp/tsproxy-<name>-prof (none when off), and what the results file records. */
export function cpuProfile(name, on) {
  const dir = path.join(os.tmpdir(), `tsproxy-${name}-prof`)
  return { flags: on ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [], record: on ? dir : false }
}

export const BOX_RUNNER = 'test/kernel/box.mjs (user-mode Linux)'

/** The "box" record of a results file: what inside.mjs saw, and the boot. */
export const boxRecord = (raw, box, mem) => ({ ...raw.env, bootMs: box.bootMs, totalMs: box.totalMs, mem, runner: BOX_RUNNER })

/** The "host" record: the machine (plus `extra`) and its load before and after; other load shows up as noise. */
export const hostRecord = (loadBefore, extra = {}) => ({ ...hostInfo(), ...extra, loadavgBefore: loadBefore.map((x) => round(x)), loadavgAfter: os.loadavg().map((x) => round(x)) })

export function writeResult(out, result, indent = 2) {
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify(result, null, indent) + '\n')
}

/** The closing lines of a run: where the results are; a failed check sets exit 1. */
export function finish(name, out, ok, failure, before = '\n', after = '') {
  console.log(`${before}results: ${rel(out)}${after}`)
  if (!ok) {
    console.error(`${name}: ${failure}`)
    process.exitCode = 1
  }
}

/** Runs main; an error is one line and exit 2. */
export function runMain(name, main) {
  Promise.resolve()
    .then(main)
    .catch((e) => {
      console.error(`${name}: ${e.message}`)
      process.exitCode = 2
    })
}

/** Aligned text columns: a head, a rule, the rows; `right(i)` says which columns are right-aligned. */
export function grid(head, rows, right) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const fmt = (r) => r.map((x, i) => (right(i, r.length) ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ')
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt)]
}

/**
 * The test API server (test/support/fake-apiserver.ts, the kube source tests'
 * one) as a plain ES module in the temp dir (the box sees the host's /tmp), so
 * a box worker imports it without a TypeScript loader; returns its path.
 */
export async function fakeApiServerModule() {
  const src = path.join(repoRoot, 'test/support/fake-apiserver.ts')
  const { transpile } = await import('../../test/kernel/ts-hooks.mjs')
  const text = transpile(src)
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 12)
  const out = path.join(os.tmpdir(), `tsproxy-fake-apiserver-${hash}-${process.getuid()}.mjs`)
  if (!fs.existsSync(out)) {
    fs.writeFileSync(`${out}.${process.pid}.tmp`, text)
    fs.renameSync(`${out}.${process.pid}.tmp`, out)
  }
  return out
}

/** Builds a C helper once per source version into the temp dir (the box sees the host's /tmp); throws if it cannot. */
export function buildC(src, name) {
  const hash = createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 12)
  const bin = path.join(os.tmpdir(), `tsproxy-${name}-${hash}-${process.getuid()}`)
  if (fs.existsSync(bin)) return bin
  const tmp = `${bin}.${process.pid}.tmp`
  const r = spawnSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', tmp, src], { encoding: 'utf8' })
  if (r.error || r.status !== 0) throw new Error(`cannot build ${path.basename(src)}: ${r.error?.message ?? r.stderr.trim()}`)
  fs.renameSync(tmp, bin)
  return bin
}

/** One case of the bulk benchmarks: its median and minimum (to `d` digits), µs per op, and the medians of its extra figures. */
const CASE_HEAD = ['case', 'tool', 'ops', 'median ms', 'µs/op', 'runs', 'check']

/** The bulk benchmarks' table: a row per case (`cells(c)`: tool, ops, median ms, µs/op), then the ratio lines. */
export function caseTable(summary, cells, ratioWidth) {
  const rows = summary.cases.map((c) => [c.id, ...cells(c), String(c.samplesMs.length), c.ok ? 'ok' : 'FAILED'])
  return [...grid(CASE_HEAD, rows, (i) => i >= 2 && i <= 5), '', ...ratioLines(summary.ratios, ratioWidth)]
}

export function caseSummary(c, d) {
  const ms = median(c.samplesMs)
  const extraMedians = {}
  for (const k of Object.keys(c.extra?.[0] ?? {})) extraMedians[k] = round(median(c.extra.map((e) => e[k])), 2)
  return {
    ...c,
    ...(c.extra ? { extraMedians } : {}),
    medianMs: round(ms, d),
    minMs: c.samplesMs.length ? round(Math.min(...c.samplesMs), d) : null,
    usPerOp: c.ok && ms != null ? round((ms * 1000) / c.ops, 2) : null,
  }
}

/** Sets `met` on the ratios that have a goal ("≥ n" or "≤ n") and a value. */
export function judge(ratios) {
  for (const r of ratios) {
    if (r.value == null || !r.goal) continue
    const [op, n] = r.goal.split(' ')
    r.met = op === '≥' ? r.value >= Number(n) : r.value <= Number(n)
  }
  return ratios
}

/** The ratio lines under a table: what, the ratio, the goal and whether it was met. */
export function ratioLines(ratios, width) {
  const rw = Math.max(...ratios.map((r) => r.what.length))
  return ratios.map((r) => {
    const v = r.value == null ? 'n/a' : `${r.value.toFixed(2)}×`
    return `${r.what.padEnd(rw)}  ${v.padStart(width)}${r.goal ? `   goal ${r.goal}: ${r.met == null ? 'n/a' : r.met ? 'met' : 'NOT MET'}` : ''}`
  })
}
