// The measuring half of benchmarks/ipset-bulk: runs as root in a fresh network
// namespace (on the host, or inside the kernel box), against that kernel's
// ipset. Every case starts from a set created empty (untimed), is timed around
// the programming call only, and is checked afterwards with the ipset tool
// (`ipset list -t`: the kernel's own entry count), so a run that failed cannot
// print a fast number.
//
// Configuration comes from run.js in IPSET_BULK_CONFIG (JSON); raw results go
// to cfg.out (JSON), which run.js turns into the tables and the results file.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { IpSet } from '../../dist/index.js'
import { native, NETLINK_NETFILTER } from '../../dist/native.js'
import { loopHeld, run, stopwatchLog } from '../common/inside.mjs'

const cfg = JSON.parse(process.env.IPSET_BULK_CONFIG ?? '{}')
const N = cfg.n ?? 100000
const PER_PROCESS = cfg.perProcess ?? 1000
const SINGLE = cfg.single ?? 20
const reps = cfg.reps ?? 5
const SET = 'KUBE-LOOP-BACK'
// What kube-proxy creates, with room for N entries.
const CREATE = ['hash:ip,port,ip', 'family', 'inet', 'hashsize', '1024', 'maxelem', String(Math.max(65536, 2 * N))]

const log = stopwatchLog(undefined, 6, `${cfg.where ?? '?'} `)
const gc = globalThis.gc ?? (() => {})

// ---- the entries: the same for every tool ---------------------------------------------------

/** Pod i: 10.244.0.0/14 upwards; KUBE-LOOP-BACK holds pod,tcp:port,pod (hairpin). */
const podIp = (i) => `10.${244 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
const PORT = 8080
const entry = (i) => ({ ip: podIp(i), protocol: 'tcp', port: PORT, ip2: podIp(i) })
const cliEntry = (i) => `${podIp(i)},tcp:${PORT},${podIp(i)}`
const range = (a, b) => Array.from({ length: b - a }, (_, k) => a + k)

// ---- the oracle -------------------------------------------------------------------------

/** The kernel's entry count, as the ipset tool reads it. */
function kernelCount(name = SET) {
  const m = /^Number of entries: (\d+)$/m.exec(run('ipset', ['list', '-t', name]).stdout)
  return m ? Number(m[1]) : -1
}

async function freshSet() {
  run('ipset', ['destroy'])
  run('ipset', ['create', SET, ...CREATE])
  if (kernelCount() !== 0) throw new Error('a fresh set is not empty')
}

// ---- cases ------------------------------------------------------------------------------

const results = new Map()
function record(id, fields) {
  if (!results.has(id)) results.set(id, { id, ...fields, samplesMs: [], checks: [], ok: true, errors: [] })
  return results.get(id)
}

/**
 * One timed run: `setup()` (untimed: a fresh set, maybe filled), `prepare()`
 * (untimed), gc, time `fn(prepared)`, then the kernel must hold `expect`
 * entries and `verify(value)` must pass.
 */
async function sample(id, fields, { setup = freshSet, prepare = () => null, fn, expect, verify = () => undefined }) {
  const rec = record(id, fields)
  try {
    await setup()
    const input = prepare()
    gc()
    const t0 = performance.now()
    const value = await fn(input)
    const ms = performance.now() - t0
    const problems = []
    const bad = verify(value)
    if (bad) problems.push(bad)
    const got = kernelCount()
    rec.checks.push(got)
    if (got !== expect) problems.push(`the kernel holds ${got} entries, expected ${expect}`)
    if (problems.length) throw new Error(problems.join('; '))
    rec.samplesMs.push(ms)
    if (value?.extra) (rec.extra ??= []).push(value.extra)
    log(`${id.padEnd(30)} ${rec.ops} ops in ${ms.toFixed(1)} ms = ${((ms * 1000) / rec.ops).toFixed(2)} µs/op (kernel holds ${got} ✓)`)
  } catch (e) {
    rec.ok = false
    rec.errors.push(String(e?.stack ?? e))
    log(`${id}: FAILED: ${e?.message ?? e}`)
  }
}

const allOk = (outcomes, n) => {
  const bad = outcomes.filter((o) => !o.ok)
  if (outcomes.length !== n) return `${outcomes.length} outcomes for ${n} operations`
  return bad.length ? `${bad.length} of ${outcomes.length} operations failed, first: ${bad[0].error?.message}` : undefined
}

let ipset

async function caseBatch() {
  await sample(`batch-${label(N)}`, { group: 'a', tool: 'tsproxy ipset.batch (one call)', ops: N }, {
    prepare: () => range(0, N).map((i) => ({ op: 'add', set: SET, entry: entry(i) })),
    fn: (ops) => loopHeld(() => ipset.batch(ops)),
    expect: N,
    verify: (v) => allOk(v.outcomes, N),
  })
}

async function caseRestore() {
  await sample(`ipset-restore-${label(N)}`, { group: 'b', tool: 'ipset restore (adds on stdin)', ops: N }, {
    prepare: () => range(0, N).map((i) => `add ${SET} ${cliEntry(i)}`).join('\n') + '\n',
    fn: (text) => run('ipset', ['restore'], { input: text }),
    expect: N,
  })
}

/** One message per entry in one burst, straight through the native socket (the shape ADT replaces). */
async function caseMessagePerEntry() {
  await sample(`message-per-entry-${label(N)}`, { group: 'ref', tool: 'ref: one netlink message per entry, one burst (native)', ops: N }, {
    prepare: () => range(0, N).map((i) => ({ cmd: 'add', name: SET, protocol: ipset.protocol, entry: { af: 2, ip: podIp(i), port: PORT, proto: 6, ip2: podIp(i) } })),
    fn: async (ops) => {
      const sock = new native.NetlinkSocket(NETLINK_NETFILTER)
      try {
        return { results: await sock.execute('ipset', 2, ops) }
      } finally {
        await sock.close()
      }
    },
    expect: N,
    verify: (v) => (v.results.some((r) => r.error) ? `${v.results.filter((r) => r.error).length} failed` : undefined),
  })
}

async function casePerProcess() {
  const file = path.join(os.tmpdir(), `tsproxy-ipset-bulk-${process.pid}.sh`)
  await sample(`ipset-add-per-process-${label(PER_PROCESS)}`, { group: 'c', tool: 'one `ipset add` process per entry (sh script)', ops: PER_PROCESS }, {
    prepare: () => {
      fs.writeFileSync(file, 'set -e\n' + range(0, PER_PROCESS).map((i) => `ipset add ${SET} ${cliEntry(i)}`).join('\n') + '\n')
      return file
    },
    fn: (f) => run('/bin/sh', [f]),
    expect: PER_PROCESS,
  })
  fs.rmSync(file, { force: true })
}

async function casePerCall() {
  await sample(`per-call-${label(PER_PROCESS)}`, { group: 'c', tool: 'tsproxy, one awaited ipset.add per entry', ops: PER_PROCESS }, {
    prepare: () => range(0, PER_PROCESS).map(entry),
    fn: async (entries) => {
      for (const e of entries) await ipset.add(SET, e)
    },
    expect: PER_PROCESS,
  })
}

async function caseAllFail() {
  await sample(`batch-${label(N)}-all-refused`, { group: 'd', tool: 'tsproxy ipset.batch, every add refused (already there)', ops: N }, {
    setup: async () => {
      await freshSet()
      await ipset.batch(range(0, N).map((i) => ({ op: 'add', set: SET, entry: entry(i) })))
    },
    prepare: () => range(0, N).map((i) => ({ op: 'add', set: SET, entry: entry(i) })),
    fn: async (ops) => ({ outcomes: await ipset.batch(ops) }),
    expect: N,
    verify: (v) => (v.outcomes.every((o) => !o.ok && o.error.code === 'IPSET_ERR_EXIST') ? undefined : 'not every add was refused with IPSET_ERR_EXIST'),
  })
}

async function caseSync() {
  // The proxy's steady state: 1% of the entries gone, 1% new.
  const churn = Math.max(1, Math.round(N / 100))
  await sample(`sync-${label(N)}-1pct`, { group: 'd', tool: 'tsproxy ipset.syncMembers (list + 1% del + 1% add)', ops: N }, {
    setup: async () => {
      await freshSet()
      await ipset.batch(range(0, N).map((i) => ({ op: 'add', set: SET, entry: entry(i) })))
    },
    prepare: () => range(churn, N + churn).map(entry),
    fn: async (entries) => ({ r: await ipset.syncMembers(SET, entries) }),
    expect: N,
    verify: (v) => (v.r.added === churn && v.r.deleted === churn && !v.r.errors.length ? undefined : `sync said ${JSON.stringify({ ...v.r, errors: v.r.errors.length })}`),
  })
}

/** One add and one delete into a set of N: ours vs one ipset process each; SINGLE times, median. */
async function caseSingle() {
  await freshSet()
  await ipset.batch(range(0, N).map((i) => ({ op: 'add', set: SET, entry: entry(i) })))
  if (kernelCount() !== N) throw new Error('single: setup failed')
  const extra = (k) => ({ ip: `10.250.0.${k}`, protocol: 'tcp', port: PORT, ip2: `10.250.0.${k}` })
  const cases = [
    ['add-one-at-100k', 'tsproxy ipset.add, set of N', 'e', (k) => ipset.add(SET, extra(k)), +1],
    ['del-one-at-100k', 'tsproxy ipset.del, set of N', 'e', (k) => ipset.del(SET, extra(k)), -1],
    ['ipset-add-one-at-100k', '`ipset add` process, set of N', 'e', (k) => run('ipset', ['add', SET, `10.250.0.${k},tcp:${PORT},10.250.0.${k}`]), +1],
    ['ipset-del-one-at-100k', '`ipset del` process, set of N', 'e', (k) => run('ipset', ['del', SET, `10.250.0.${k},tcp:${PORT},10.250.0.${k}`]), -1],
  ]
  for (let k = 0; k < SINGLE; k++) {
    for (const [id, tool, group, fn, delta] of cases) {
      const rec = record(id.replace('100k', label(N)), { group, tool, ops: 1, unit: 'op' })
      try {
        const before = kernelCount()
        const t0 = performance.now()
        await fn(k)
        const ms = performance.now() - t0
        const after = kernelCount()
        if (after !== before + delta) throw new Error(`the kernel went from ${before} to ${after} entries`)
        rec.samplesMs.push(ms)
      } catch (e) {
        rec.ok = false
        rec.errors.push(String(e?.stack ?? e))
      }
    }
  }
  for (const [id] of cases) {
    const rec = results.get(id.replace('100k', label(N)))
    log(`${rec.id.padEnd(30)} ${rec.samplesMs.length} runs, median ${median(rec.samplesMs)?.toFixed(3)} ms${rec.ok ? ' ✓' : ' FAILED'}`)
  }
}

/** Listing the N entries: ours vs ipset save / ipset list to /dev/null. */
async function caseListing() {
  await freshSet()
  await ipset.batch(range(0, N).map((i) => ({ op: 'add', set: SET, entry: entry(i) })))
  if (kernelCount() !== N) throw new Error('listing: setup failed')
  const devnull = fs.openSync('/dev/null', 'w')
  const cases = [
    ['list-ours', 'tsproxy ipset.list(name): typed records', async () => {
      const rec = await ipset.list(SET)
      const ok = rec.members.length === N && rec.members.every((m) => m.port === PORT && m.protocol === 'tcp' && m.ip === m.ip2)
      return ok ? undefined : `listed ${rec.members.length} members`
    }],
    ['list-ipset-save', 'ipset save NAME > /dev/null', async () => void run('ipset', ['save', SET], { stdio: ['ignore', devnull, 'pipe'] })],
    ['list-ipset-list', 'ipset list NAME > /dev/null', async () => void run('ipset', ['list', SET], { stdio: ['ignore', devnull, 'pipe'] })],
  ]
  for (let r = 0; r < reps; r++) {
    for (const [id, tool, fn] of cases) {
      const rec = record(`${id}-${label(N)}`, { group: 'f', tool, ops: N, unit: 'entry listed' })
      try {
        gc()
        const t0 = performance.now()
        const bad = await fn()
        const ms = performance.now() - t0
        if (bad) throw new Error(bad)
        rec.samplesMs.push(ms)
        log(`${rec.id.padEnd(30)} ${N} entries in ${ms.toFixed(1)} ms ✓`)
      } catch (e) {
        rec.ok = false
        rec.errors.push(String(e?.stack ?? e))
        log(`${rec.id}: FAILED: ${e?.message ?? e}`)
      }
    }
  }
  fs.closeSync(devnull)
  // ipset save went to /dev/null: check once that it does see everything.
  const lines = run('ipset', ['save', SET]).stdout.split('\n').filter((l) => l.startsWith('add ')).length
  const rec = results.get(`list-ipset-save-${label(N)}`)
  rec.checks.push(lines)
  if (lines !== N) {
    rec.ok = false
    rec.errors.push(`ipset save printed ${lines} entries`)
  }
}

function label(n) {
  return n >= 1000 ? `${n / 1000}k` : String(n)
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null
}

function cpuModel() {
  try {
    return /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]
  } catch {
    return undefined
  }
}

async function main() {
  ipset = await IpSet.open()
  const env = {
    where: cfg.where,
    kernelRelease: os.release(),
    node: process.version,
    cpuModel: cpuModel(),
    cpus: os.cpus().length,
    ipsetProtocol: ipset.protocol,
    ipsetTool: run('ipset', ['version']).stdout.trim().split('\n')[0],
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
  }
  log(`Linux ${env.kernelRelease}, node ${env.node}, ${env.ipsetTool}`)

  // Warm-up, untimed: the JIT compiles the library's paths before round 1.
  await freshSet()
  const warm = range(0, 2000).map((i) => ({ op: 'add', set: SET, entry: entry(i) }))
  await ipset.batch(warm)
  await ipset.batch(warm)
  await ipset.list(SET)
  for (const o of warm.slice(0, 100)) await ipset.del(SET, o.entry)
  log('warm-up done')

  const only = cfg.only ? new Set(cfg.only) : null
  const want = (g) => !only || only.has(g)
  for (let r = 0; r < reps; r++) {
    log(`-- round ${r + 1} of ${reps}`)
    if (want('a')) await caseBatch()
    if (want('b')) await caseRestore()
    if (want('ref')) await caseMessagePerEntry()
    if (want('c')) await casePerCall()
    if (want('d')) await caseAllFail()
    if (want('d')) await caseSync()
  }
  if (want('c')) {
    log(`-- one ipset process per entry, ${PER_PROCESS} entries (once)`)
    await casePerProcess()
  }
  if (want('e')) {
    log(`-- one add and one delete at ${label(N)}, ${SINGLE} times each`)
    await caseSingle()
  }
  if (want('f')) {
    log(`-- listing ${label(N)}`)
    await caseListing()
  }
  run('ipset', ['destroy'])
  await ipset.close()

  const out = { env, config: { n: N, perProcess: PER_PROCESS, single: SINGLE, reps, set: `${SET} ${CREATE.join(' ')}` }, cases: [...results.values()] }
  fs.mkdirSync(path.dirname(cfg.out), { recursive: true })
  fs.writeFileSync(cfg.out, JSON.stringify(out, null, 2) + '\n')
  log(`done: ${out.cases.filter((c) => !c.ok).length} failed case(s)`)
  process.exitCode = out.cases.every((c) => c.ok) ? 0 : 1
}

await main()
