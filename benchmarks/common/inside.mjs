// The box side of the benchmarks (inside.mjs files): a timestamped log, workers
// each a node process of its own in a fresh network namespace, and the daemon
// as a child process whose JSON log lines are followed.
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { procStatus } from './cluster.mjs'
import { gcFromLog, gcIn } from './gc.mjs'
import { round2 } from './stats.mjs'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const MAIN = path.join(repoRoot, 'dist/proxy/main.js')

/** Runs a tool to completion; a non-zero exit throws with its stderr. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 30, encoding: 'utf8', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr ?? '').trim().slice(0, 500)}`)
  return r
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A log that prefixes each line with the seconds since it was made. */
export function stopwatchLog(write = (s) => process.stdout.write(s), width = 6, prefix = '') {
  const started = performance.now()
  return (msg) => write(`[${prefix}${((performance.now() - started) / 1000).toFixed(1).padStart(width)}s] ${msg}\n`)
}

/**
 * Runs `script --worker JSON(spec)` under `unshare -n` (an empty netns: no
 * IPVS trash, no rules from an earlier run) with the config in env[envVar];
 * the worker's last stdout line is its JSON reply ({ error } if it died).
 */
export function runFreshNetns(script, spec, { envVar, cfg, nodeFlags = [] }) {
  const r = spawnSync('unshare', ['-n', process.execPath, ...nodeFlags, script, '--worker', JSON.stringify(spec)], {
    encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [envVar]: JSON.stringify(cfg) },
  })
  const last = (r.stdout ?? '').trim().split('\n').pop()
  try {
    return JSON.parse(last)
  } catch {
    return { error: `worker exited ${r.status ?? r.signal ?? r.error?.message}: ${(r.stderr ?? '').trim().slice(-1500)}` }
  }
}

/**
 * The worker end of runFreshNetns: when argv has --worker, runs `work(spec,
 * cfg)`, prints its reply (or { error }) as one line and exits (the netns goes
 * with the last process in it). Returns false when this is not a worker.
 */
export async function workerMain(envVar, work) {
  const at = process.argv.indexOf('--worker')
  if (at < 0) return false
  const spec = JSON.parse(process.argv[at + 1])
  const cfg = JSON.parse(process.env[envVar] ?? '{}')
  try {
    process.stdout.write(JSON.stringify(await work(spec, cfg)) + '\n')
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: String(e?.stack ?? e) }) + '\n')
  }
  process.exit(0)
}

/** Calls onRecord(rec, line, now) for each JSON log line of a daemon's stderr (a non-JSON line is { msg: line }). */
export function followLog(proc, onRecord, onChunk) {
  let partial = ''
  proc.stderr.setEncoding('utf8').on('data', (chunk) => {
    const now = performance.now()
    partial += chunk
    const parts = partial.split('\n')
    partial = parts.pop()
    for (const line of parts) {
      let rec
      try {
        rec = JSON.parse(line)
      } catch {
        rec = { msg: line }
      }
      onRecord(rec, line, now)
    }
    onChunk?.()
  })
}

/**
 * Spawns the daemon (node `flags`, `env` added to ours) and waits for `tsproxy
 * running`: the cold start. Rejects on an error log line, an early exit, or
 * after timeoutS. Its log lines keep coming into d.lines after that, each
 * line's arrival (ms since the epoch) in d.seenAt; d.spawnedAt is the spawn's;
 * d.firstSeen[msg] the first arrival of each message (ms after the spawn).
 */
export async function startUntilRunning(flags, timeoutS = 900, { env } = {}) {
  const t0 = performance.now()
  const proc = spawn(process.execPath, flags, { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) })
  const d = { proc, lines: [], seenAt: [], firstSeen: {}, spawnedAt: performance.timeOrigin + t0, fullSync: undefined, running: undefined, exited: undefined }
  const done = new Promise((resolve, reject) => {
    followLog(proc, (rec, line, now) => {
      d.lines.push(rec)
      d.seenAt.push(performance.timeOrigin + now)
      if (typeof rec.msg === 'string') d.firstSeen[rec.msg] ??= now - t0
      if (rec.msg === 'full sync' && !d.fullSync) d.fullSync = { at: now - t0, rec }
      if (rec.msg === 'tsproxy running') {
        d.running = now - t0
        resolve()
      }
      if (rec.level === 'error') reject(new Error(`daemon error: ${line}`))
    })
    proc.on('exit', (code, signal) => {
      d.exited = { code, signal }
      if (d.running !== undefined) return
      reject(new Error(`daemon exited ${code ?? signal} before running; last lines: ${d.lines.slice(-5).map((l) => JSON.stringify(l)).join(' | ')}`))
    })
  })
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutS * 1000)
  try {
    await done
  } finally {
    clearTimeout(timer)
  }
  return d
}

/**
 * The daemon's /proc status (procStatus); if it is gone, an error saying how it
 * ended and its last lines (a crash after `tsproxy running`: V8 out of heap, a
 * kill), instead of ENOENT on /proc/PID/status.
 */
export async function daemonStatus(d) {
  try {
    return procStatus(d.proc.pid)
  } catch (e) {
    if (e?.code !== 'ENOENT') throw e
    if (!d.exited) await new Promise((r) => d.proc.once('exit', r))
    const how = d.exited?.code ?? d.exited?.signal
    throw new Error(`daemon ended (${how}) after running; last lines: ${d.lines.slice(-8).map((l) => JSON.stringify(l).slice(0, 400)).join(' | ')}`)
  }
}

/** SIGTERM, and wait for the exit. */
export async function stopDaemon(d) {
  d.proc.kill('SIGTERM')
  await new Promise((r) => (d.exited ? r() : d.proc.on('exit', r)))
}

/** A cold start's figures: spawn → running and → the full sync's log line, the sync's own figures, memory at running and 2 s later. */
export function coldRecord(d, mem, memAfter2s) {
  const loaded = d.lines.find((l) => l.msg === 'manifests loaded')
  return {
    wallMs: round2(d.running),
    fullSyncSeenMs: round2(d.fullSync?.at),
    syncMs: d.fullSync?.rec.ms,
    // More than 1: full syncs back to back before `tsproxy running` (each longer than the sync period, before runner.ts counted the period from a full sync's end).
    fullSyncsBeforeRunning: d.lines.filter((l) => l.msg === 'full sync').length,
    ops: d.fullSync?.rec.ops,
    manifestsLoaded: loaded ? { services: loaded.services, endpointSlices: loaded.endpointSlices, errors: loaded.errors } : undefined,
    mem,
    memAfter2s,
    // The GC pauses from the spawn to the full sync's line (when the daemon logged them: TSPROXY_BENCH_GC=1).
    gc: d.lines.some((l) => l.msg === 'gc') && d.fullSync ? gcIn(gcFromLog(d.lines), -Infinity, d.spawnedAt + d.fullSync.at) : undefined,
  }
}

/**
 * Awaits call() (one programming call): how long it held the event loop before
 * returning its promise (validation + encoding, before anything is sent), and
 * the longest stall after (turning the replies into results).
 */
export async function loopHeld(call) {
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  const t0 = performance.now()
  const pending = call()
  const syncMs = performance.now() - t0
  const outcomes = await pending
  loop.disable()
  return { outcomes, extra: { syncMs: round2(syncMs), maxLoopDelayMs: round2(loop.max / 1e6) } }
}

// ---- the orchestrator of the daemon benchmarks (proxy-ipvs, proxy-iptables) ----------------

export const toolVersion = (cmd) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).stdout.trim()

/** What the box is: kernel, node, CPUs, the tools' versions, and how the workers are kept apart. */
export const boxEnv = (tools) => ({
  kernelRelease: os.release(),
  node: process.version,
  cpus: os.cpus().length,
  ...tools,
  manifestsOn: 'the box\'s own tmpfs (/run)',
  isolation: 'each worker in a fresh network namespace (unshare -n), its own node process',
})

/**
 * The orchestrator's kit: its config (env[envVar]), a log, the box's record
 * (logged; `tools` are the versions of the tools it runs), workers in fresh
 * network namespaces, and a short pause between them.
 */
export function orchestration(self, envVar, tools) {
  const cfg = JSON.parse(process.env[envVar] ?? '{}')
  const log = stopwatchLog()
  const env = boxEnv(tools)
  log(`box: Linux ${env.kernelRelease}, node ${env.node}, ${Object.values(tools)[0]}`)
  const runWorker = (spec) => runFreshNetns(self, spec, { envVar, cfg, nodeFlags: cfg.workerNodeFlags })
  return { cfg, log, env, runWorker, pause: () => sleep(500) }
}

export const sizeHeading = (cluster, written) =>
  `== ${cluster.services} services × ${cluster.endpoints} endpoints (${cluster.nodePorts} NodePort), ${written.files} files, ${(written.bytes / 2 ** 20).toFixed(1)} MB`

/**
 * One worker of a size: its value, logged by `ok`; or null, its error kept in
 * res.errors and its first `errorLines` lines logged.
 */
export function stepper(runWorker, res, log, errorLines = 1) {
  return (kind, spec, ok) => {
    const r = runWorker({ kind, ...spec })
    if (r.error) {
      res.errors.push(`${kind}: ${r.error}`)
      log(`${kind}: FAILED: ${r.error.split('\n').slice(0, errorLines).join(' / ')}`)
      return null
    }
    log(ok(r.value))
    return r.value
  }
}

/**
 * Writes the raw results for run.js; the exit code says whether a worker failed.
 * `partial`: the sizes done so far, written after each (kept if the box stops early), nothing logged.
 */
export function writeRaw(file, out, log, partial = false) {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(partial ? { ...out, partial: true } : out, null, 2) + '\n')
  fs.renameSync(`${file}.tmp`, file)
  const failed = out.sizes.reduce((n, r) => n + r.errors.length, 0)
  if (partial) return
  log(`done: ${failed} failed worker(s)`)
  process.exitCode = failed ? 1 : 0
}
