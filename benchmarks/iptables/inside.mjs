// The measuring half of benchmarks/iptables: one run in the current network
// namespace (run.js starts each under `unshare -n`, so every run begins from
// empty tables). Prints one JSON line.
//
//   node inside.mjs '{"mode":"bulk-ours"|"bulk-restore"|"change", "services":N, "endpoints":E, ...}'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { kubeLayout, podIp, sepChain, sepRules } from './layout.mjs'

const cfg = JSON.parse(process.argv[2])
const { Iptables } = await import('../../dist/index.js')
const { native } = await import('../../dist/native.js')

const round2 = (x) => Math.round(x * 100) / 100
const info = () => native.iptc.tableInfo(4, 'nat')

function run(cmd, args, input) {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 30 })
  const ms = performance.now() - t0
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim().slice(0, 400)}`)
  return { ms, stdout: r.stdout }
}

/** iptables-legacy-save -t nat, comments dropped, hashed: the same table gives the same digest. */
function saveDigest() {
  const text = run('iptables-legacy-save', ['-t', 'nat']).stdout
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'))
  return { digest: createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16), lines: lines.length }
}

async function buildOurs(ipt, layout) {
  const t0 = performance.now()
  const tx = ipt.begin('nat')
  for (const c of layout.chains) tx.createChain(c)
  for (const [chain, rule] of layout.rules) tx.appendRule(chain, rule)
  const t1 = performance.now()
  const stats = await tx.commit()
  return { ms: performance.now() - t0, encodeMs: t1 - t0, stats }
}

async function bulkOurs() {
  const layout = kubeLayout(cfg)
  const ipt = await Iptables.open({ reuseSnapshots: true })
  // JIT warm-up: the same edits validated and laid out once, then dropped
  const warm = ipt.begin('nat')
  for (const c of layout.chains) warm.createChain(c)
  for (const [chain, rule] of layout.rules) warm.appendRule(chain, rule)
  await warm.abort()
  globalThis.gc?.()
  const r = await buildOurs(ipt, layout)
  return { ms: r.ms, encodeMs: r.encodeMs, stats: r.stats, table: info(), rules: layout.rules.length, chains: layout.chains.length, ...(cfg.digest ? saveDigest() : {}) }
}

function bulkRestore() {
  const layout = kubeLayout(cfg)
  const r = run('iptables-legacy-restore', ['-w', '--noflush'], layout.text)
  return { ms: r.ms, table: info(), rules: layout.rules.length, chains: layout.chains.length, ...(cfg.digest ? saveDigest() : {}) }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function change() {
  const layout = kubeLayout(cfg)
  run('iptables-legacy-restore', ['-w', '--noflush'], layout.text) // untimed: the table at size
  const before = info()
  const ipt = await Iptables.open({ reuseSnapshots: true })
  const cold = await Iptables.open({ reuseSnapshots: false })
  const settle = () => ipt.listChains('nat') // waits for the prefetch after a commit; re-reads after another writer
  await settle()
  const k = Math.floor(cfg.services / 2) * cfg.endpoints // an endpoint in the middle of the table
  const sep = sepChain(k)
  const svcIndex = Math.floor(k / cfg.endpoints)
  let flip = false
  const samples = { 'ours-endpoint': [], 'ours-append': [], 'ours-endpoint-cold': [], 'iptables-legacy-A': [] }
  const breakdown = { 'ours-endpoint': [], 'ours-append': [], 'ours-endpoint-cold': [] }
  const endpointTx = async (on) => {
    flip = !flip
    const ip = flip ? `10.250.${(k >> 8) & 255}.${k & 255}` : podIp(k)
    const [r1, r2] = sepRules(svcIndex, ip)
    const t0 = performance.now()
    const tx = on.begin('nat')
    tx.replaceRule(sep, 0, r1)
    tx.replaceRule(sep, 1, r2)
    const stats = await tx.commit()
    return { ms: performance.now() - t0, stats }
  }
  for (let i = 0; i < cfg.iterations; i++) {
    // one iptables-legacy -A, as a node's other tools would run it (undone untimed)
    samples['iptables-legacy-A'].push(run('iptables-legacy', ['-w', '-t', 'nat', '-A', 'KUBE-NODEPORTS', '-j', 'RETURN']).ms)
    run('iptables-legacy', ['-w', '-t', 'nat', '-D', 'KUBE-NODEPORTS', '1'])
    await settle()
    // one endpoint moved: its two KUBE-SEP rules replaced, one commit
    const e = await endpointTx(ipt)
    samples['ours-endpoint'].push(e.ms)
    breakdown['ours-endpoint'].push(e.stats)
    await settle()
    // the same single append as the CLI's
    const t0 = performance.now()
    const tx = ipt.begin('nat')
    tx.appendRule('KUBE-NODEPORTS', { target: { target: 'RETURN' } })
    const s = await tx.commit()
    samples['ours-append'].push(performance.now() - t0)
    breakdown['ours-append'].push(s)
    await settle()
    const undo = ipt.begin('nat')
    undo.deleteRule('KUBE-NODEPORTS', 0)
    await undo.commit()
    await settle()
    // without snapshot reuse: the whole table read for each change
    const c = await endpointTx(cold)
    samples['ours-endpoint-cold'].push(c.ms)
    breakdown['ours-endpoint-cold'].push(c.stats)
    await settle()
  }
  const after = info()
  const summary = {}
  for (const [id, list] of Object.entries(breakdown)) {
    summary[id] = {}
    for (const key of ['lockMs', 'loadMs', 'applyMs', 'commitMs']) summary[id][key] = round2(median(list.map((x) => x[key])))
    summary[id].snapshotReused = list.filter((x) => x.snapshotReused).length
    summary[id].replayed = list.filter((x) => x.replayed).length
  }
  return { samples, breakdown: summary, before, after, sep }
}

const modes = { 'bulk-ours': bulkOurs, 'bulk-restore': bulkRestore, change }
const out = await modes[cfg.mode]()
process.stdout.write(JSON.stringify(out) + '\n')
