#!/usr/bin/env node
// benchmarks/dataplane: what a new connection to a ClusterIP costs with N
// services programmed, iptables mode (kube-proxy's nat layout, the measured
// service last in KUBE-SERVICES, and first) vs IPVS mode (N virtual servers),
// against a baseline straight to the pod with no rules. TCP connect latency
// (SYN out, SYN-ACK back) from the node to the VIP, one new connection at a
// time, timed by a small C client (connect.c). One boot of the kernel box
// (test/kernel/box.mjs); every mode at every size in a fresh netns.
//
//   npm run bench:dataplane [-- options]     (builds first)
//   node benchmarks/dataplane/run.js [options]
//
//   --sizes a,b,c     services (default 100,1000,10000,30000)
//   --endpoints E     endpoints per service (default 3); the measured service's E
//                     endpoints are E pods (one netns each, at most 26)
//   --count N         timed connections per target per mode and size (default 2000)
//   --warmup N        untimed connections before each round (default 50)
//   --rounds R        rounds the count is split into, the targets alternating (default 4)
//   --modes list      default baseline,ipvs,iptables-last,iptables-first
//   --mem SIZE        box memory (default 3G)
//   --quick           100 and 1000 services, 200 connections: a smoke test;
//                     writes benchmarks/results/dataplane.quick.tmp (and .svg.tmp)
//   --timeout S       box timeout (default 3600)
//   --out FILE        results file (default benchmarks/results/dataplane.json)
//   --replot          no run: redraw the SVG from the results file
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  BOX_RUNNER, buildC, finish, grid, hostRecord, needsDist, parseFlags, resultsFile, runBoxBenchmark, runMain, writeResult,
} from '../common/harness.mjs'
import { commandLine, rel } from '../common/host.mjs'
import { round } from '../common/stats.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))

function parseArgs(argv) {
  const o = { sizes: [100, 1000, 10000, 30000], endpoints: 3, count: 2000, warmup: 50, rounds: 4, modes: ['baseline', 'ipvs', 'iptables-last', 'iptables-first'], mem: '3G', quick: false, timeout: 3600, out: null }
  parseFlags(argv, import.meta.url, o, {
    '--sizes': ['sizes', 'numbers'], '--endpoints': ['endpoints', 'number'], '--count': ['count', 'number'], '--warmup': ['warmup', 'number'],
    '--rounds': ['rounds', 'number'], '--modes': ['modes', 'words'], '--mem': ['mem', 'string'], '--quick': ['quick', true],
    '--timeout': ['timeout', 'number'], '--out': ['out', 'path'], '--replot': ['replot', true],
  })
  if (o.quick) Object.assign(o, { sizes: [100, 1000], count: 200, warmup: 20, rounds: 2 })
  for (const k of ['endpoints', 'count', 'rounds']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} must be an integer ≥ 1`)
  if (!o.sizes.every((n) => Number.isInteger(n) && n >= 1 && n <= 65536)) throw new Error('--sizes: integers 1..65536')
  if (o.endpoints > 26) throw new Error('--endpoints: at most 26 (one pod each for the measured service)')
  const known = ['baseline', 'ipvs', 'iptables-last', 'iptables-first']
  for (const m of o.modes) if (!known.includes(m)) throw new Error(`--modes: ${m}? (${known.join(', ')})`)
  o.out ??= resultsFile('dataplane', o.quick)
  o.svg = o.quick ? o.out.replace(/(\.tmp)?$/, '.svg.tmp') : path.join(path.dirname(o.out), `${path.basename(o.out, '.json')}.svg`)
  return o
}

/** connect.c, built once per source version. */
const buildClient = () => buildC(path.join(here, 'connect.c'), 'dataplane-connect')

const r2 = (x) => round(x, 2)

// ---- the plot: hand-written SVG, log x ---------------------------------------------------

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function svgPlot(result) {
  const W = 760
  const H = 460
  const M = { l: 70, r: 200, t: 48, b: 58 }
  const pw = W - M.l - M.r
  const ph = H - M.t - M.b
  const series = [
    { mode: 'iptables-last', target: 'vip', label: 'iptables, service last', color: '#c0392b' },
    { mode: 'iptables-first', target: 'vip', label: 'iptables, service first', color: '#e59866' },
    { mode: 'ipvs', target: 'vip', label: 'IPVS', color: '#2471a3' },
    { mode: 'baseline', target: 'pod', label: 'baseline: pod IP, no rules', color: '#555555' },
  ].map((s) => ({
    ...s,
    points: result.runs.filter((r) => r.ok && r.mode === s.mode).map((r) => ({ n: r.services, p50: r.targets[s.target].p50Us, p99: r.targets[s.target].p99Us })).sort((a, b) => a.n - b.n),
  })).filter((s) => s.points.length)
  const ns = result.config.sizes
  const xmin = Math.log10(Math.min(...ns)) - 0.15
  const xmax = Math.log10(Math.max(...ns)) + 0.15
  // y: log scale too; p99 inside user-mode Linux can be 10-100× p50
  const all = series.flatMap((s) => s.points.flatMap((p) => [p.p50, p.p99]))
  const ticks = []
  for (let d = 1; d <= 1e6; d *= 10) for (const m of [1, 2, 5]) ticks.push(d * m)
  const ymin = [...ticks].reverse().find((t) => t <= Math.min(...all) * 0.95) ?? 1
  const ymax = ticks.find((t) => t >= Math.max(...all) * 1.05) ?? 1e6
  const X = (n) => M.l + ((Math.log10(n) - xmin) / (xmax - xmin)) * pw
  const Y = (v) => M.t + ph - ((Math.log10(v) - Math.log10(ymin)) / (Math.log10(ymax) - Math.log10(ymin))) * ph
  const o = []
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  o.push(`<text x="${M.l + pw / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">TCP connect latency to a ClusterIP vs number of services</text>`)
  o.push(`<text x="${M.l + pw / 2}" y="37" text-anchor="middle" font-size="11" fill="#444">${esc(`kernel box (UML ${result.box.kernelRelease}), ${result.config.count} new connections per point, p50 solid, p99 dashed`)}</text>`)
  for (const v of ticks.filter((t) => t >= ymin && t <= ymax)) {
    o.push(`<line x1="${M.l}" x2="${M.l + pw}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#e5e5e5"/>`)
    o.push(`<text x="${M.l - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`)
  }
  for (const n of ns) {
    o.push(`<line x1="${X(n).toFixed(1)}" x2="${X(n).toFixed(1)}" y1="${M.t}" y2="${M.t + ph}" stroke="#e5e5e5"/>`)
    o.push(`<text x="${X(n).toFixed(1)}" y="${M.t + ph + 16}" text-anchor="middle">${n.toLocaleString('en-US')}</text>`)
  }
  o.push(`<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`)
  o.push(`<text x="${M.l + pw / 2}" y="${H - 14}" text-anchor="middle">ClusterIP services programmed, N (log scale)</text>`)
  o.push(`<text transform="translate(18 ${M.t + ph / 2}) rotate(-90)" text-anchor="middle">connect latency, µs (log scale)</text>`)
  for (const s of series) {
    for (const [key, dash] of [['p50', ''], ['p99', ' stroke-dasharray="6 4"']]) {
      const pts = s.points.map((p) => `${X(p.n).toFixed(1)},${Y(p[key]).toFixed(1)}`).join(' ')
      o.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`)
      for (const p of s.points) o.push(`<circle cx="${X(p.n).toFixed(1)}" cy="${Y(p[key]).toFixed(1)}" r="${key === 'p50' ? 3.5 : 2.5}" fill="${key === 'p50' ? s.color : 'white'}" stroke="${s.color}"><title>${esc(`${s.label}, N=${p.n}: ${key} ${p[key]} µs`)}</title></circle>`)
    }
  }
  const lx = M.l + pw + 16
  let ly = M.t + 8
  for (const s of series) {
    o.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`)
    o.push(`<text x="${lx + 32}" y="${ly + 4}">${esc(s.label)}</text>`)
    ly += 22
  }
  ly += 6
  o.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="#333" stroke-width="2"/><text x="${lx + 32}" y="${ly + 4}">p50</text>`)
  ly += 20
  o.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="#333" stroke-width="2" stroke-dasharray="6 4"/><text x="${lx + 32}" y="${ly + 4}">p99</text>`)
  o.push('</svg>')
  return o.join('\n') + '\n'
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.replot) {
    fs.writeFileSync(opts.svg, svgPlot(JSON.parse(fs.readFileSync(opts.out, 'utf8'))))
    console.log(`plot: ${rel(opts.svg)}`)
    return
  }
  needsDist('dist/index.js')
  const client = buildClient()
  const command = commandLine(import.meta.url)
  const cfg = { sizes: opts.sizes, modes: opts.modes, endpoints: opts.endpoints, count: opts.count, warmup: opts.warmup, rounds: opts.rounds, client }
  const loadBefore = os.loadavg()
  const run = await runBoxBenchmark('dataplane', import.meta.url, { envVar: 'DATAPLANE_CONFIG', cfg, timeoutS: opts.timeout, mem: opts.mem })
  if (!run) return
  const { box, raw } = run

  const at = (mode, n) => raw.runs.find((r) => r.mode === mode && r.services === n && r.ok)
  const ratios = opts.sizes.map((n) => {
    const ipt = at('iptables-last', n)
    const first = at('iptables-first', n)
    const ipvs = at('ipvs', n)
    const base = at('baseline', n)
    const q = (a, b) => (a && b ? r2(a / b) : null)
    return {
      services: n,
      iptablesLastOverIpvs: { p50: q(ipt?.targets.vip.p50Us, ipvs?.targets.vip.p50Us), p99: q(ipt?.targets.vip.p99Us, ipvs?.targets.vip.p99Us) },
      iptablesFirstOverIpvs: { p50: q(first?.targets.vip.p50Us, ipvs?.targets.vip.p50Us), p99: q(first?.targets.vip.p99Us, ipvs?.targets.vip.p99Us) },
      iptablesLastOverBaseline: { p50: q(ipt?.targets.vip.p50Us, base?.targets.pod.p50Us) },
      ipvsOverBaseline: { p50: q(ipvs?.targets.vip.p50Us, base?.targets.pod.p50Us) },
      iptablesLastMinusFirstP50Us: ipt && first ? r2(ipt.targets.vip.p50Us - first.targets.vip.p50Us) : null,
    }
  })
  const errors = raw.runs.filter((r) => !r.ok).map((r) => `${r.mode} at ${r.services}: ${r.error}`)
  const result = {
    benchmark: 'dataplane',
    date: new Date().toISOString(),
    command,
    how: 'One boot of the kernel box (user-mode Linux, test/kernel/box.mjs). Every mode at every size runs in its own node process in a fresh network namespace (unshare -n): ' +
      'lo, a dummy eth0 192.168.50.10/24 holding the default route, the fake CNI of test/support/cni.mjs (bridge cbr0 10.244.0.1/24, the pods in their own netns with an HTTP agent on :8080). ' +
      'iptables-last / iptables-first: benchmarks/iptables/layout.mjs (kube-proxy\'s nat layout, N services x E endpoints) committed through tsproxy\'s Iptables API in one transaction, the measured service\'s KUBE-SEP DNATs pointing at the pods, the service last (index N-1) or first (index 0) in KUBE-SERVICES. ' +
      'ipvs: N VIPs on a dummy kube-ipvs0 (Rtnl.batch), N virtual servers x E masq destinations (Ipvs.batch, rr), plus kube-proxy\'s constant IPVS-mode iptables side (KUBE-CLUSTER-IP hash:ip,port with N entries, one set match marking for masquerade, MASQUERADE, vs.conntrack=1), so both modes masquerade and track. baseline: no rules at all, straight to the pod IP. ' +
      'Timing: connect.c, a blocking connect() timed alone (clock_gettime around it; it returns when the SYN-ACK is in), a new socket each time, closed with an RST (SO_LINGER 0) so every connection is NEW to conntrack and walks the nat rules; warm-up connections untimed before each round; the targets (the VIP, and the pod IP directly in the same netns) alternate in rounds. ' +
      'Checks: iptables-legacy-save rule count and the measured service\'s position in KUBE-SERVICES; ipvsadm -Ln services and destinations, the VIPs on kube-ipvs0, the set\'s entries; the measured KUBE-SERVICES rule\'s packet counter (or the virtual server\'s connection count, ipvsadm --stats) grew by exactly the number of connections made to the VIP; no connect failed.',
    host: hostRecord(loadBefore),
    box: { ...raw.env, mem: opts.mem, bootMs: box.bootMs, totalMs: box.totalMs, runner: BOX_RUNNER },
    client: { source: rel(path.join(here, 'connect.c')), why: 'node\'s net.connect adds an event-loop round trip and several system calls per connection (socket, connect, epoll_ctl, epoll_wait, getsockopt), each tens of µs inside user-mode Linux: more than the effect measured, and noisier. The C client times one blocking connect() and nothing else.' },
    config: { sizes: opts.sizes, modes: opts.modes, endpoints: opts.endpoints, pods: opts.endpoints, count: opts.count, warmupPerRound: opts.warmup, rounds: opts.rounds },
    ratios,
    runs: raw.runs,
    errors,
    ok: errors.length === 0 && raw.runs.length === opts.sizes.length * opts.modes.length,
  }
  writeResult(opts.out, result, 1)
  fs.writeFileSync(opts.svg, svgPlot(result))

  console.log(`\ndataplane — ${result.date}, box: Linux ${raw.env.kernelRelease} (UML, mem ${opts.mem}), node ${raw.env.node}; host ${result.host.cpuModel} ×${result.host.cpus}, load ${result.host.loadavgBefore.join(' ')}`)
  console.log(`${opts.count} connections per target (after ${opts.warmup} untimed per round, ${opts.rounds} rounds), ${opts.endpoints} endpoints per service (the measured one's: ${opts.endpoints} pods); µs\n`)
  const head = ['N', 'mode', 'target', 'p50', 'p90', 'p99', 'program s', 'check']
  const rows = []
  for (const r of raw.runs) {
    if (!r.ok && !r.targets) {
      rows.push([String(r.services), r.mode, '—', '—', '—', '—', '—', 'FAILED'])
      continue
    }
    for (const [id, t] of Object.entries(r.targets)) {
      const check = r.mode.startsWith('iptables') ? `${r.check.saveRules} rules, pos ${r.check.measuredPosition}/${r.check.kubeServicesRules}` : r.mode === 'ipvs' ? `${r.check.ipvsadmServices} vs, ${r.check.ipvsadmDestinations} rs` : ''
      rows.push([String(r.services), r.mode, id === 'vip' ? `VIP ${t.addr}` : `pod ${t.addr}`, t.p50Us.toFixed(1), t.p90Us.toFixed(1), t.p99Us.toFixed(1), id === Object.keys(r.targets)[0] ? (r.programMs / 1000).toFixed(1) : '', (r.ok ? 'ok ' : 'FAILED ') + (id === Object.keys(r.targets)[0] ? check : '')])
    }
  }
  console.log(grid(head, rows, (i) => [0, 3, 4, 5, 6].includes(i)).join('\n'))
  console.log('')
  for (const r of ratios) {
    console.log(`N=${String(r.services).padStart(6)}: iptables(last)/IPVS p50 ${r.iptablesLastOverIpvs.p50 ?? '—'}× p99 ${r.iptablesLastOverIpvs.p99 ?? '—'}×;` +
      ` iptables(first)/IPVS p50 ${r.iptablesFirstOverIpvs.p50 ?? '—'}×; last − first p50 ${r.iptablesLastMinusFirstP50Us ?? '—'} µs;` +
      ` vs baseline: iptables(last) ${r.iptablesLastOverBaseline.p50 ?? '—'}×, IPVS ${r.ipvsOverBaseline.p50 ?? '—'}×`)
  }
  finish('dataplane', opts.out, result.ok, `FAILED checks:\n  ${errors.join('\n  ') || 'runs missing'}`, '\n', `, plot: ${rel(opts.svg)}`)
}

runMain('dataplane', main)
