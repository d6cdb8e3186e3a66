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
//   --malloc M          group a's pair: our batch without and with malloc thresholds M, in the same
//                       rounds: "daemon" (default: the daemon's DAEMON_MALLOC_THRESHOLDS),
//                       TRIM,MMAP in bytes, or "off" (no pair)
//   --large N           the large size: N services, no destinations (default 20000)
//   --quick             small sizes (100x5, 2000, list 2000x5), 1 round: a smoke test;
//                       writes benchmarks/results/ipvs-bulk.quick.tmp instead
//   --cpu-prof          profile each in-box run's node (--cpu-prof; profiles go to /tmp/tsproxy-ipvs-bulk-prof)
//   --timeout S         box timeout (default 3600)
//   --out FILE          results file (default benchmarks/results/ipvs-bulk.json)
//
// Everything inside the box is slow per syscall (user-mode Linux), so only the
// ratios between cases of the same boot mean anything.
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildC, caseSummary, caseTable, cpuProfile, judge, needsDist, parseFlags, resultsFile, runAndReport, runMain } from '../common/harness.mjs'
import { ratio, round } from '../common/stats.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))

// Figures of a raw C probe measured earlier in the same kind of kernel (batched,
// ACK per op): the shape our batch should follow.
const REFERENCE_PROBE_US = { '1kx5': 25, '20k': 60 }
const GOALS = { batchVsProbeMax: 1.5, batchVsRestoreMin: 20 }

function parseArgs(argv) {
  const o = { reps: 5, perProcess: 'full', timeout: 3600, quick: false, cpuProf: false, only: null, out: null, malloc: 'daemon', large: null }
  parseFlags(argv, import.meta.url, o, {
    '--reps': ['reps', 'number'], '--per-process': ['perProcess', 'string'], '--timeout': ['timeout', 'number'], '--quick': ['quick', true],
    '--cpu-prof': ['cpuProf', true], '--only': ['only', 'words'], '--out': ['out', 'path'],
    '--malloc': ['malloc', 'string'], '--large': ['large', 'number'],
  })
  if (o.large !== null && !(Number.isInteger(o.large) && o.large >= 1)) throw new Error('--large must be a count of services')
  if (!(o.reps >= 1)) throw new Error('--reps must be ≥ 1')
  if (o.perProcess !== 'full' && !(Number(o.perProcess) >= 1)) throw new Error('--per-process must be a count or "full"')
  o.out ??= resultsFile('ipvs-bulk', o.quick)
  return o
}

/** The malloc thresholds of group a's pair, or null (no pair). */
async function mallocOf(choice) {
  if (choice === 'off') return null
  if (choice === 'daemon') {
    const { DAEMON_MALLOC_THRESHOLDS } = await import('../../dist/proxy/daemon.js')
    return { ...DAEMON_MALLOC_THRESHOLDS }
  }
  const [trimThreshold, mmapThreshold] = choice.split(',').map(Number)
  if (!Number.isInteger(trimThreshold) || !Number.isInteger(mmapThreshold)) throw new Error('--malloc must be "daemon", "off" or TRIM,MMAP (bytes)')
  return { trimThreshold, mmapThreshold }
}

/** probe.c, built once per source version; without cc the probe rows are skipped. */
function buildProbe() {
  try {
    return { bin: buildC(path.join(here, 'probe.c'), 'ipvs-probe') }
  } catch (e) {
    return { error: `${e.message}: the raw baseline is skipped` }
  }
}

function summarize(raw) {
  const cases = raw.cases.map((c) => caseSummary(c, 2))
  const by = Object.fromEntries(cases.map((c) => [c.id, c]))
  const us = (id) => (by[id]?.ok ? by[id].usPerOp : null)
  const ms = (id) => (by[id]?.ok ? by[id].medianMs : null)
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
    { what: `ours batch, malloc thresholds / without, ${S}`, value: ratio(us(`batch-malloc-${S}`), us(`batch-${S}`)) },
    { what: `ours batch, malloc thresholds / without, ${L}`, value: ratio(us(`batch-malloc-${L}`), us(`batch-${L}`)) },
    { what: `ours batch / raw probe (same boot), ${S}`, value: ratio(us(`batch-${S}`), us(`probe-${S}`)), goal: `≤ ${GOALS.batchVsProbeMax}` },
    { what: `ours batch / raw probe (same boot), ${L}`, value: ratio(us(`batch-${L}`), us(`probe-${L}`)), goal: `≤ ${GOALS.batchVsProbeMax}` },
  ]
  if (REFERENCE_PROBE_US[S]) ratios.push({ what: `ours batch / reference probe figure (${REFERENCE_PROBE_US[S]} µs), ${S}`, value: ratio(us(`batch-${S}`), REFERENCE_PROBE_US[S]), goal: `≤ ${GOALS.batchVsProbeMax}` })
  if (REFERENCE_PROBE_US[L]) ratios.push({ what: `ours batch / reference probe figure (${REFERENCE_PROBE_US[L]} µs), ${L}`, value: ratio(us(`batch-${L}`), REFERENCE_PROBE_US[L]), goal: `≤ ${GOALS.batchVsProbeMax}` })
  judge(ratios)
  return { cases, ratios }
}

function table(summary) {
  const lines = caseTable(summary, (c) => [
    c.tool + (c.sampleOfOps ? ` (sample: first ${c.ops} of ${c.sampleOfOps})` : ''),
    String(c.ops) + (c.unit ? ` svc` : ''),
    c.ok ? c.medianMs.toFixed(1) : '—',
    c.ok ? (c.unit ? `${c.usPerOp.toFixed(1)}/svc` : c.usPerOp.toFixed(1)) : 'BROKEN',
  ], 8)
  const notes = []
  for (const c of summary.cases) {
    const m = c.extraMedians
    if (!c.ok || !m) continue
    if (m.syncMs != null) notes.push(`${c.id}: event loop held ${m.syncMs} ms inside the call (validation + encoding, before anything is sent); longest stall after it ${m.maxLoopDelayMs} ms`)
    if (m.pageFaults != null) notes.push(`${c.id}: ${m.pageFaults} minor page faults in the batch (median; per round: ${c.extra.map((e) => e.pageFaults).join(', ')})`)
    if (m.recvCalls != null) notes.push(`${c.id}: ${m.sends} sendmsg, ${m.recvCalls} receive calls (${round(m.recvCalls / c.ops, 2)}/op); wall with exec ${m.wallMs} ms`)
  }
  if (notes.length) lines.push('', ...notes)
  return lines.join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  needsDist('dist/index.js')
  const probe = buildProbe()
  if (probe.error) console.error(`ipvs-bulk: ${probe.error}`)
  const cfg = {
    probe: probe.bin ?? null,
    reps: opts.quick ? 1 : opts.reps,
    perProcess: opts.perProcess,
    only: opts.only,
    malloc: await mallocOf(opts.malloc),
    ...(opts.large ? { large: { services: opts.large, dests: 0 } } : {}),
    ...(opts.quick
      ? { small: { services: 100, dests: 5 }, large: { services: 2000, dests: 0 }, list: { services: 2000, dests: 5 } }
      : {}),
  }
  const prof = cpuProfile('ipvs-bulk', opts.cpuProf)
  // Flags of the node processes that run the cases (one per timed run).
  cfg.nodeFlags = ['--expose-gc', ...prof.flags]
  // The box is one more process on the host: other load there shows up as noise (host.loadavg*).
  const box = { envVar: 'IPVS_BULK_CONFIG', cfg, timeoutS: opts.timeout, mem: '2G' }
  await runAndReport('ipvs-bulk', import.meta.url, box, opts.out, (raw) => {
    const summary = summarize(raw)
    return {
      fields: {
        config: { ...raw.config, probe: probe.bin ? 'benchmarks/ipvs-bulk/probe.c' : null, cpuProf: prof.record },
        referenceProbeUsPerOp: REFERENCE_PROBE_US,
        goals: GOALS,
        cases: summary.cases,
        ratios: summary.ratios,
      },
      ok: summary.cases.every((c) => c.ok),
      tail: `medians of ${cfg.reps} run(s)`,
      table: table(summary),
    }
  }, 'some cases FAILED their checks (see "errors" in the results file)')
}

runMain('ipvs-bulk', main)
