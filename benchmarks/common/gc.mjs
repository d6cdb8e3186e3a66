// Garbage-collection accounting for the daemon benchmarks: the GC pauses of a
// process (perf_hooks 'gc' entries; a spawned daemon logs them as `gc` lines
// when TSPROXY_BENCH_GC=1, see lib/proxy/main.ts), counted inside timed windows,
// so a p99 can be set next to the pauses that fell into it.
// Times are ms since the epoch (performance.timeOrigin + performance.now()),
// comparable between processes of one box.
import { PerformanceObserver, constants, performance } from 'node:perf_hooks'
import { percentile, round2 } from './stats.mjs'

/** The env that turns the daemon's GC log lines on. */
export const GC_ENV = { TSPROXY_BENCH_GC: '1' }

/** Now, in ms since the epoch, on the clock the GC entries use. */
export const nowEpoch = () => performance.timeOrigin + performance.now()

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}

/** This process's GC pauses from now on: { entries: [{ kind, ms, at }], stop() }. */
export function gcRecorder() {
  const entries = []
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) entries.push({ kind: KINDS[e.detail?.kind] ?? String(e.detail?.kind), ms: e.duration, at: performance.timeOrigin + e.startTime })
  })
  obs.observe({ entryTypes: ['gc'] })
  return { entries, stop: () => obs.disconnect() }
}

/** The GC pauses a daemon logged (its `gc` lines). */
export const gcFromLog = (lines) => lines.filter((l) => l.msg === 'gc' && typeof l.ms === 'number').map((l) => ({ kind: l.kind, ms: l.ms, at: l.at }))

/** The pauses that began in [from, to]: count, total and longest (ms), and how many were major. */
export function gcIn(entries, from = -Infinity, to = Infinity) {
  const inside = entries.filter((e) => e.at >= from && e.at <= to)
  return {
    count: inside.length,
    totalMs: round2(inside.reduce((a, e) => a + e.ms, 0)),
    maxMs: round2(inside.reduce((a, e) => Math.max(a, e.ms), 0)),
    major: inside.filter((e) => e.kind === 'major').length,
  }
}

/** The GC pause time overlapping each window [from, to] (ms). */
export function gcPerWindow(entries, windows) {
  return windows.map(([from, to]) => {
    let ms = 0
    for (const e of entries) ms += Math.max(0, Math.min(to, e.at + e.ms) - Math.max(from, e.at))
    return ms
  })
}

/**
 * A latency series next to the GC pauses inside its samples: the p99 sample
 * and the GC in it, the p99 with each sample's own GC time taken out, how many
 * samples had a pause, and each sample's GC time.
 */
export function gcTail(samples, windows, entries) {
  const gc = gcPerWindow(entries, windows)
  const p99 = percentile(samples, 99)
  const at = samples.indexOf(p99)
  return {
    p99: round2(p99),
    gcInP99SampleMs: at >= 0 ? round2(gc[at]) : null,
    p99WithoutGcMs: round2(percentile(samples.map((s, k) => s - gc[k]), 99)),
    samplesWithGc: gc.filter((x) => x > 0).length,
    gcMsPerSample: gc.map(round2),
  }
}
