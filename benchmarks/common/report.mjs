// Host side, shared by the daemon benchmarks' run.js (proxy-ipvs, proxy-iptables):
// the watch variant's summary and table, and the GC pauses set next to each p99.
import { grid } from './harness.mjs'

const ms = (x) => (x == null ? '—' : Number(x).toFixed(1))
const sec = (x) => (x == null ? '—' : (x / 1000).toFixed(2))
const fix = (x, d) => (x == null ? '—' : Number(x).toFixed(d))
/** count / total ms / longest ms */
export const gcCell = (g) => (g ? `${g.count} / ${ms(g.totalMs)} / ${ms(g.maxMs)}` : '—')
const omitSamples = (t) => {
  if (!t) return t
  const { gcMsPerSample: _, ...rest } = t
  return rest
}

/** The summary of a watch worker's value (null when it did not run). */
export function watchSummary(w) {
  if (!w) return null
  return {
    coldWallMs: w.cold.wallMs,
    firstListMs: w.cold.firstListMs ?? null,
    listsLoadedSeenMs: w.cold.listsLoadedSeenMs,
    firstListToFullSyncMs: w.cold.firstListToFullSyncMs,
    fullSyncMs: w.cold.syncMs,
    listRequests: w.cold.listRequests,
    apiStoreMs: w.cold.storeMs,
    apiServerCpuS: w.cold.apiServerCpuS,
    daemonCpuS: w.cold.daemonCpuS,
    rssMB: w.cold.mem.rssMB,
    peakRssMB: w.cold.mem.hwmMB,
    rssAfter2sMB: w.cold.memAfter2s.rssMB,
    rssEndMB: w.memEnd.rssMB,
    coldGc: w.cold.gc,
    e2e: w.e2e,
    e2eTimedTo: w.e2eTimedTo,
    toSyncLine: w.toSyncLine,
    sync: w.sync,
    rttP50Ms: w.rtt?.p50 ?? null,
    gc: { phase: w.gc.phase, e2e: omitSamples(w.gc.e2e) },
  }
}

/** A GC summary of an in-process changes worker without the per-sample lists. */
export const changesGcSummary = (gc) => (gc ? Object.fromEntries(Object.entries(gc).map(([k, v]) => [k, k === 'phase' ? v : omitSamples(v)])) : null)

/** The watch variant's table: rows with { size, watch }. */
export function watchTable(rows, e2eHead = 'event → kernel p50/p99 ms') {
  const wh = ['size', 'cold wall s', 'first list → full sync s', 'full sync s', 'list requests', 'API / daemon CPU s', 'RSS MB', e2eHead, 'event → sync line p50/p99', 'sync p50 ms', 'rtt ms']
  const wr = rows.filter((r) => r.watch).map((r) => {
    const w = r.watch
    return [r.size, sec(w.coldWallMs), sec(w.firstListToFullSyncMs), sec(w.fullSyncMs), String(w.listRequests), `${fix(w.apiServerCpuS, 1)} / ${fix(w.daemonCpuS, 1)}`,
      `${fix(w.rssMB, 1)} (peak ${fix(w.peakRssMB, 0)})`, `${ms(w.e2e.p50)} / ${ms(w.e2e.p99)}`, `${ms(w.toSyncLine.p50)} / ${ms(w.toSyncLine.p99)}`, ms(w.sync.p50), fix(w.rttP50Ms, 2)]
  })
  return grid(wh, wr, (i) => i !== 0)
}

/**
 * The GC table: per size and series (`series(row)` → [[name, { p50, p99, n }, phase, tail]]), the pauses over
 * the changes, how many samples held one, the GC inside the p99 sample and the p99 with each sample's GC taken out;
 * then the cold starts' GC (`cold(row)` → [[name, gc]]).
 */
export function gcTable(rows, series, cold) {
  const gh = ['size', 'series', 'p50 ms', 'p99 ms', 'GC over the changes n / total / max ms', 'samples with GC', 'GC in the p99 sample ms', 'p99 without GC ms']
  const gr = []
  for (const r of rows) {
    for (const [name, st, phase, tail] of series(r)) {
      if (st && tail) gr.push([r.size, name, ms(st.p50), ms(st.p99), gcCell(phase), `${tail.samplesWithGc}/${st.n}`, ms(tail.gcInP99SampleMs), ms(tail.p99WithoutGcMs)])
    }
  }
  const out = [...grid(gh, gr, (i) => i >= 2), '']
  out.push(`cold-start GC, spawn → full sync (n / total / max ms): ${rows.map((r) => `${r.size} ${cold(r).map(([n, g]) => `${n} ${gcCell(g)}`).join(', ')}`).join('; ')}`)
  return out
}
