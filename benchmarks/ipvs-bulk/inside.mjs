// The measuring half of benchmarks/ipvs-bulk: runs inside the kernel box (run.js
// boots it), as root, against the box's real IPVS.
//
// Every timed run happens in a network namespace of its own (a fresh process
// under `unshare -n`), so each starts from the same kernel state: IPVS keeps
// deleted destinations in a per-netns "trash" for two minutes and scans it on
// every destination add, so runs sharing one namespace would slow each other
// down by whatever the previous ones left behind. Inside its namespace a run
// checks the table is empty, times the programming call only, then checks what
// the kernel holds (/proc/net/ip_vs) so a run that failed cannot print a fast
// number.
//
//   node inside.mjs                 the orchestrator: config in IPVS_BULK_CONFIG, raw results to cfg.out
//   node inside.mjs --worker JSON   one run, in the current netns; prints one JSON line
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

import { loopHeld, run, runFreshNetns, stopwatchLog, workerMain } from '../common/inside.mjs'
import { ipvsCount } from '../common/ipvs-cluster.mjs'
import { round2 } from '../common/stats.mjs'

const self = fileURLToPath(import.meta.url)
const gc = globalThis.gc ?? (() => {})

// ---- the rules: the same for every tool (probe.c computes the same addresses) ----------

const svcAddr = (i) => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
const destAddr = (k) => `10.${244 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`
const SVC_PORT = 80
const DEST_PORT = 8080

/** Every operation in order: service i, then its destinations. */
function* rules({ services, dests }) {
  for (let i = 0; i < services; i++) {
    yield { kind: 'service', i }
    for (let j = 0; j < dests; j++) yield { kind: 'dest', i, k: i * dests + j }
  }
}

const serviceKey = (i) => ({ protocol: 'tcp', address: svcAddr(i), port: SVC_PORT })
const serviceSpec = (i) => ({ ...serviceKey(i), scheduler: 'rr' })
const destSpec = (k) => ({ address: destAddr(k), port: DEST_PORT, forward: 'masq', weight: 1 })

function batchOps(size) {
  const ops = []
  for (const r of rules(size)) {
    ops.push(r.kind === 'service'
      ? { op: 'addService', service: serviceSpec(r.i) }
      : { op: 'addDestination', service: serviceKey(r.i), destination: destSpec(r.k) })
  }
  return ops
}

/** ipvsadm's words for each operation (the lines of `ipvsadm -S`, which -R reads). */
function ipvsadmLines(size) {
  const out = []
  for (const r of rules(size)) {
    out.push(r.kind === 'service'
      ? `-A -t ${svcAddr(r.i)}:${SVC_PORT} -s rr`
      : `-a -t ${svcAddr(r.i)}:${SVC_PORT} -r ${destAddr(r.k)}:${DEST_PORT} -m -w 1`)
  }
  return out
}

const opsOf = ({ services, dests }) => services * (1 + dests)
const label = ({ services, dests }) => `${services >= 1000 ? `${services / 1000}k` : services}${dests ? `x${dests}` : ''}`
const expected = (size) => ({ services: size.services, dests: size.services * size.dests })

// ---- the oracles --------------------------------------------------------------------

/**
 * What the kernel holds, read from /proc/net/ip_vs: the kernel's own text,
 * independent of our library and of ipvsadm, and one read instead of a dump
 * per service (`ipvsadm -Sn` on 20k services costs seconds in the box).
 */
const kernelCount = ipvsCount

/** The same count as ipvsadm sees it (`ipvsadm -Sn`), for the listing cross-check. */
function ipvsadmCount() {
  const out = run('ipvsadm', ['-Sn']).stdout
  let services = 0
  let dests = 0
  for (const line of out.split('\n')) {
    if (line.startsWith('-A ')) services++
    else if (line.startsWith('-a ')) dests++
  }
  return { services, dests }
}

const same = (a, b) => a.services === b.services && a.dests === b.dests
const show = (c) => `${c.services} services / ${c.dests} destinations`

// ---- worker: one timed run in this process's own netns -------------------------------

/**
 * Opens our handle. With `warmOps`, first runs that many operations (at most
 * 30 000) through batch, and a few hundred through single calls, so the JIT
 * has compiled the library's paths and the heap has grown to its working size,
 * as in a daemon that has been running: a cold process pays for both inside
 * its first big batch. The warm-up leaves nothing behind: its services are
 * flushed (deleted services are freed at once), its destinations go to
 * services that do not exist (ESRCH before the kernel looks at its trash).
 */
async function openIpvs(warmOps = 0) {
  const { Ipvs } = await import('../../dist/index.js')
  const ipvs = await Ipvs.open()
  if (warmOps > 0) {
    const svc = (i) => ({ protocol: 'tcp', address: `172.16.${(i >> 8) & 255}.${i & 255}`, port: 80 })
    const ops = []
    for (let i = 0; ops.length < Math.min(warmOps, 30000); i++) {
      ops.push({ op: 'addService', service: { ...svc(i), scheduler: 'rr' } })
      for (let j = 0; j < 5; j++) ops.push({ op: 'addDestination', service: { ...svc(i), port: 81 }, destination: destSpec(j) })
    }
    for (let r = 0; r < 2; r++) {
      await ipvs.batch(ops)
      await ipvs.flush()
    }
    for (const op of ops.slice(0, 300)) {
      try {
        if (op.op === 'addService') await ipvs.addService(op.service)
        else await ipvs.addDestination(op.service, op.destination)
      } catch {}
    }
    await ipvs.flush()
  }
  return ipvs
}

/** Times `fn(prepare())` from an empty table; checks the kernel holds `expect` afterwards. */
async function timed(expect, prepare, fn, verify = () => undefined) {
  const before = kernelCount()
  if (before.services || before.dests) throw new Error(`the table was not empty: ${show(before)}`)
  const input = prepare()
  gc()
  const t0 = performance.now()
  const value = await fn(input)
  const elapsed = performance.now() - t0
  // A tool that times itself (the probe, without its exec) says so.
  const ms = typeof value?.timedMs === 'number' ? value.timedMs : elapsed
  const problems = []
  const bad = verify(value)
  if (bad) problems.push(bad)
  const check = kernelCount()
  if (!same(check, expect)) problems.push(`the kernel holds ${show(check)}, expected ${show(expect)}`)
  if (problems.length) throw new Error(problems.join('; '))
  return { ms, check, ...(value?.extra ? { extra: value.extra } : {}) }
}

const allOk = (outcomes) => {
  const bad = outcomes.filter((o) => !o.ok)
  return bad.length ? `${bad.length} of ${outcomes.length} operations failed, first: ${bad[0].error?.message}` : undefined
}

const PROBE_VARIANTS = {
  'probe': { args: ['--ack', 'each', '--recv', 'recvmsg'], tool: 'raw C, ACK per op, recvmsg (the reference shape)' },
  'probe-recvmmsg': { args: ['--ack', 'each', '--recv', 'recvmmsg'], tool: 'raw C, ACK per op, recvmmsg ×64' },
  'probe-ack-errors': { args: ['--ack', 'errors', '--recv', 'recvmsg'], tool: 'raw C, ACK only on error + last of chunk' },
}

/** Minor page faults of this process so far (getrusage): each one is a host process switch in the box. */
const minorFaults = () => process.resourceUsage().minorPageFault

async function batchRun(ipvs, size) {
  return timed(expected(size), () => batchOps(size), async (ops) => {
    const f0 = minorFaults()
    const v = await loopHeld(() => ipvs.batch(ops))
    v.extra.pageFaults = minorFaults() - f0
    return v
  }, (v) => allOk(v.outcomes))
}

/**
 * The malloc pair (group a): with spec.malloc, the worker sets the daemon's
 * thresholds (tuneMalloc, as lib/proxy/daemon.ts does at start) before it
 * allocates anything of the library; without, glibc's defaults.
 */
async function tuneFor(spec) {
  if (!spec.malloc) return
  const { tuneMalloc } = await import('../../dist/index.js')
  if (!tuneMalloc(spec.malloc)) throw new Error('tuneMalloc: glibc did not take the thresholds')
}

/** Runs one spec; returns [{ id, ms, check, extra? }]. */
async function worker(spec, cfg) {
  run('ip', ['link', 'set', 'lo', 'up'])
  const { size } = spec
  const id = (prefix) => `${prefix}-${label(size)}`
  switch (spec.kind) {
    case 'batch': {
      await tuneFor(spec)
      const ipvs = await openIpvs(opsOf(size))
      return [{ id: id(spec.malloc ? 'batch-malloc' : 'batch'), ...(await batchRun(ipvs, size)) }]
    }
    case 'per-call': {
      const ipvs = await openIpvs(600)
      return [{
        id: id('per-call'),
        ...(await timed(expected(size), () => batchOps(size), async (ops) => {
          for (const op of ops) {
            if (op.op === 'addService') await ipvs.addService(op.service)
            else await ipvs.addDestination(op.service, op.destination)
          }
        })),
      }]
    }
    case 'restore':
      return [{
        id: id('ipvsadm-R'),
        ...(await timed(expected(size), () => ipvsadmLines(size).join('\n') + '\n', (text) => run('ipvsadm', ['-R'], { input: text }))),
      }]
    case 'per-process': {
      // One ipvsadm process per operation, from a shell script (the cheapest way to start them).
      const lines = ipvsadmLines(size).slice(0, spec.limit ?? Infinity)
      const expect = {
        services: lines.filter((l) => l.startsWith('-A ')).length,
        dests: lines.filter((l) => l.startsWith('-a ')).length,
      }
      const file = path.join(os.tmpdir(), `tsproxy-ipvs-bulk-${process.pid}.sh`)
      try {
        return [{
          id: id('ipvsadm-per-process'),
          ...(await timed(expect, () => {
            fs.writeFileSync(file, 'set -e\n' + lines.map((l) => `ipvsadm ${l}`).join('\n') + '\n')
            return file
          }, (f) => run('/bin/sh', [f]))),
        }]
      } finally {
        fs.rmSync(file, { force: true })
      }
    }
    case 'probe':
      return [{
        id: id(spec.variant),
        ...(await timed(expected(size), () => null, () => {
          const t0 = performance.now()
          const r = run(cfg.probe, [String(size.services), String(size.dests), ...PROBE_VARIANTS[spec.variant].args])
          const wallMs = performance.now() - t0
          const j = JSON.parse(r.stdout)
          return { probe: j, timedMs: j.ns / 1e6, extra: { wallMs: round2(wallMs), sends: j.sends, recvCalls: j.recvCalls, datagrams: j.datagrams } }
        }, (v) => (v.probe.errors ? `${v.probe.errors} operations failed` : v.probe.ops !== opsOf(size) ? `the probe did ${v.probe.ops} ops` : undefined))),
      }]
    case 'listing': {
      // Program the table once, through one batch (itself a figure), then list it, round after round.
      const ipvs = await openIpvs(opsOf(size))
      const out = [{ id: id('batch'), ...(await batchRun(ipvs, size)) }]
      const expect = expected(size)
      const devnull = fs.openSync('/dev/null', 'w')
      const cases = [
        ['list-ours-with-dests', async () => {
          const list = await ipvs.listServices({ destinations: true })
          const dests = list.reduce((n, s) => n + (s.destinations?.length ?? 0), 0)
          return list.length === expect.services && dests === expect.dests ? undefined : `listed ${list.length} services / ${dests} destinations`
        }],
        ['list-ipvsadm-Sn', async () => void run('ipvsadm', ['-Sn'], { stdio: ['ignore', devnull, 'pipe'] })],
        ['list-ours-services-only', async () => {
          const list = await ipvs.listServices()
          return list.length === expect.services ? undefined : `listed ${list.length} services`
        }],
      ]
      for (let r = 0; r < spec.reps; r++) {
        for (const [lid, fn] of cases) {
          gc()
          const t0 = performance.now()
          const bad = await fn()
          const ms = performance.now() - t0
          if (bad) throw new Error(`${lid}: ${bad}`)
          out.push({ id: lid, ms, check: expect })
        }
      }
      fs.closeSync(devnull)
      // ipvsadm -Sn wrote to /dev/null: check once that it does see everything.
      const seen = ipvsadmCount()
      if (!same(seen, expect)) throw new Error(`ipvsadm -Sn sees ${show(seen)}, expected ${show(expect)}`)
      return out
    }
    default:
      throw new Error(`unknown case kind ${spec.kind}`)
  }
}

// ---- orchestrator -------------------------------------------------------------------

const TOOLS = {
  batch: ['a', 'tsproxy ipvs.batch (one call)'],
  'batch-malloc': ['a', 'tsproxy ipvs.batch (one call), the daemon\'s malloc thresholds (tuneMalloc)'],
  'per-call': ['b', 'tsproxy, one awaited call per op'],
  'ipvsadm-R': ['c', 'ipvsadm -R (rules on stdin)'],
  'ipvsadm-per-process': ['d', 'one ipvsadm process per op (sh script)'],
  'list-ours-with-dests': ['e', 'tsproxy listServices({ destinations: true })'],
  'list-ipvsadm-Sn': ['e', 'ipvsadm -Sn > /dev/null'],
  'list-ours-services-only': ['e', 'tsproxy listServices() (no destinations)'],
  ...Object.fromEntries(Object.entries(PROBE_VARIANTS).map(([k, v]) => [k, ['ref', v.tool]])),
}

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))
    return m ? m[1] : undefined
  } catch {
    return undefined
  }
}

async function orchestrate() {
  const cfg = JSON.parse(process.env.IPVS_BULK_CONFIG ?? '{}')
  const reps = cfg.reps ?? 5
  const small = cfg.small ?? { services: 1000, dests: 5 }
  const large = cfg.large ?? { services: 20000, dests: 0 }
  const listing = cfg.list ?? { services: 20000, dests: 5 }
  const nodeFlags = cfg.nodeFlags ?? ['--expose-gc']
  const log = stopwatchLog()

  const results = new Map()
  const record = (id, fields) => {
    if (!results.has(id)) {
      const base = id.replace(/-\d+k?(x\d+)?$/, '')
      const [group, tool] = TOOLS[base] ?? ['?', base]
      results.set(id, { id, group, tool, ...fields, samplesMs: [], checks: [], ok: true, errors: [] })
    }
    return results.get(id)
  }

  /** One worker process in a fresh netns; its samples go into `results`. */
  const runWorker = (spec, fieldsOf) => {
    const reply = runFreshNetns(self, spec, { envVar: 'IPVS_BULK_CONFIG', cfg, nodeFlags })
    if (reply.error) {
      const id = spec.id
      const rec = record(id, fieldsOf(id))
      rec.ok = false
      rec.errors.push(reply.error)
      log(`${id}: FAILED: ${reply.error.split('\n')[0]}`)
      return
    }
    for (const s of reply.samples) {
      const rec = record(s.id, fieldsOf(s.id))
      rec.samplesMs.push(round2(s.ms))
      rec.checks.push(s.check)
      if (s.extra) (rec.extra ??= []).push(s.extra)
      const per = rec.unit ? `${((s.ms * 1000) / rec.ops).toFixed(1)} µs/${rec.unit}` : `${((s.ms * 1000) / rec.ops).toFixed(1)} µs/op`
      log(`${s.id.padEnd(26)} ${String(rec.ops).padStart(6)} ${rec.unit ? 'services' : 'ops'} in ${s.ms.toFixed(1).padStart(8)} ms = ${per} ` +
        `(kernel: ${show(s.check)} ✓)`)
    }
  }
  const fields = (size, extra = {}) => () => ({ ...size, ops: opsOf(size), ...extra })

  const info = spawnSync(process.execPath, ['--input-type=module', '-e',
    "const { Ipvs } = await import(process.argv[1]); const i = await Ipvs.open(); console.log(JSON.stringify(await i.getInfo())); await i.close()",
    path.resolve(path.dirname(self), '../../dist/index.js')], { encoding: 'utf8' })
  const ipvsInfo = JSON.parse(info.stdout || '{}')
  const env = {
    kernelRelease: os.release(),
    node: process.version,
    nodeFlags,
    cpuModel: cpuModel(),
    cpus: os.cpus().length,
    ipvs: ipvsInfo.version,
    connTableSize: ipvsInfo.connTableSize,
    ipvsadm: spawnSync('ipvsadm', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    isolation: 'each timed run in a fresh network namespace (unshare -n), its own node process, JIT warmed up first',
  }
  log(`box: Linux ${env.kernelRelease}, node ${env.node}, IPVS ${env.ipvs}, ${env.ipvsadm}`)

  const only = cfg.only ? new Set(cfg.only) : null
  const want = (g) => !only || only.has(g)
  const pause = () => new Promise((r) => setTimeout(r, cfg.settleMs ?? 300)) // let the old netns go

  for (let r = 0; r < reps; r++) {
    log(`-- round ${r + 1} of ${reps}`)
    for (const size of [small, large]) {
      const specs = []
      if (want('a')) {
        // The malloc pair, interleaved: which goes first alternates by round.
        const pair = [{ kind: 'batch', size, id: `batch-${label(size)}` }]
        if (cfg.malloc) pair.push({ kind: 'batch', size, malloc: cfg.malloc, id: `batch-malloc-${label(size)}` })
        specs.push(...(r % 2 ? pair.reverse() : pair))
      }
      if (want('b')) specs.push({ kind: 'per-call', size, id: `per-call-${label(size)}` })
      if (want('c')) specs.push({ kind: 'restore', size, id: `ipvsadm-R-${label(size)}` })
      if (want('ref') && cfg.probe) for (const v of Object.keys(PROBE_VARIANTS)) specs.push({ kind: 'probe', variant: v, size, id: `${v}-${label(size)}` })
      for (const spec of specs) {
        runWorker(spec, fields(size, spec.kind === 'probe' ? { timing: 'inside the probe (excludes its exec)' } : {}))
        await pause()
      }
    }
  }
  if (want('d')) {
    const limit = cfg.perProcess === 'full' || cfg.perProcess === undefined ? undefined : Number(cfg.perProcess)
    const n = Math.min(limit ?? Infinity, opsOf(small))
    log(`-- one ipvsadm process per op, ${n < opsOf(small) ? `first ${n} ops of ` : ''}${label(small)} (once)`)
    runWorker({ kind: 'per-process', size: small, limit, id: `ipvsadm-per-process-${label(small)}` },
      () => ({ ...small, ops: n, ...(n < opsOf(small) ? { sampleOfOps: opsOf(small) } : {}) }))
    await pause()
  }
  if (want('e')) {
    log(`-- listing ${label(listing)} (programmed by one batch, then ${reps} rounds)`)
    runWorker({ kind: 'listing', size: listing, reps, id: `batch-${label(listing)}` }, (id) =>
      id.startsWith('list-') ? { ...listing, ops: listing.services, unit: 'service' } : { ...listing, ops: opsOf(listing) })
  }

  const out = {
    env,
    config: { reps, small, large, list: listing, perProcess: cfg.perProcess ?? 'full', malloc: cfg.malloc ?? null },
    cases: [...results.values()],
  }
  fs.mkdirSync(path.dirname(cfg.out), { recursive: true })
  fs.writeFileSync(cfg.out, JSON.stringify(out, null, 2) + '\n')
  const failed = out.cases.filter((c) => !c.ok).length
  log(`done: ${failed} failed case(s)`)
  process.exitCode = failed ? 1 : 0
}

// ---- main ---------------------------------------------------------------------------

if (!(await workerMain('IPVS_BULK_CONFIG', async (spec, cfg) => ({ samples: await worker(spec, cfg) })))) await orchestrate()
