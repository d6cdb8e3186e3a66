#!/usr/bin/env node
// benchmarks/proxy-iptables/resync.mjs: the periodic full resync of iptables
// mode when nothing drifted, and when one rule did. The Daemon class in this
// process (as the changes worker runs it), on the kernel it runs on: start it on
// N services × E endpoints, let iptables.syncPeriod fire a few full resyncs and
// read the daemon's own "full sync" lines (ms); then replace one DNAT target of a
// KUBE-SEP- chain with iptables-legacy -R (same length: same table size and
// entry count; XTABLES_LOCKFILE elsewhere, so the xtables lock's watch does not
// see it) and check that the next resync repairs it.
//
//   unshare -n node benchmarks/proxy-iptables/resync.mjs [--services N] [--endpoints E]
//     [--period S] [--resyncs K] [--repo DIR]
//
// --repo: the checkout whose dist/ runs (default this one), to compare two trees
// with the same script. Run it in a fresh network namespace (unshare -n as root):
// it writes nat and filter there.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { CLUSTER_CIDR, NODE, NODE_IP, makeCluster, writeManifests } from '../common/cluster.mjs'

const args = process.argv.slice(2)
const opt = (name, d) => {
  const i = args.indexOf(name)
  return i < 0 ? d : args[i + 1]
}
const services = Number(opt('--services', 10000))
const endpoints = Number(opt('--endpoints', 10))
const periodS = Number(opt('--period', 20))
const resyncs = Number(opt('--resyncs', 3))
const repo = path.resolve(opt('--repo', path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')))

process.env.XTABLES_LOCKFILE = path.join(os.tmpdir(), `tsproxy-resync-${process.pid}.lock`)
const run = (cmd, a, env) => execFileSync(cmd, a, { encoding: 'utf8', maxBuffer: 1 << 30, ...(env ? { env } : {}) })
// The node's address on a dummy link where there is one (the box), else on lo (the host).
run('sh', ['-c', `ip link set lo up && (ip link add eth0 type dummy 2>/dev/null && ip addr add ${NODE_IP}/24 dev eth0 && ip link set eth0 up || ip addr add ${NODE_IP}/24 dev lo)`])
const rss = () => Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsproxy-resync-'))
const cluster = makeCluster({ services, endpoints })
writeManifests(cluster, dir)

const { Daemon } = await import(path.join(repo, 'dist/proxy/daemon.js'))
const { defaultConfig } = await import(path.join(repo, 'dist/proxy/config.js'))
const config = defaultConfig()
Object.assign(config, { mode: 'iptables', clusterCIDR: CLUSTER_CIDR, hostnameOverride: NODE, healthzBindAddress: '', metricsBindAddress: '' })
config.iptables.syncPeriod = periodS * 1000
config.iptables.minSyncPeriod = 0
const fulls = []
let waiter = null
const log = (level, msg, fields) => {
  if (level === 'error') console.error('error', msg, JSON.stringify(fields ?? {}).slice(0, 300))
  if (msg === 'full sync') {
    fulls.push({ ...fields, reads })
    reads = []
    waiter?.()
  }
}
const nextFull = () => new Promise((resolve) => (waiter = () => ((waiter = null), resolve(fulls.at(-1)))))

// The real dataplane, its table reads timed (what a full sync spends reading, against the rest of it).
const { openIptablesDataplane } = await import(path.join(repo, 'dist/proxy/iptables/dataplane.js'))
const real = await openIptablesDataplane('inet')
let reads = []
const dp = {
  ...real,
  begin(table) {
    const tx = real.begin(table)
    return new Proxy(tx, {
      get(target, prop) {
        const v = target[prop]
        if (typeof v !== 'function') return v
        if (prop === 'surveyTable' || prop === 'readChains' || prop === 'readTable')
          return async (...a) => {
            const t = performance.now()
            const out = await v.apply(target, a)
            reads.push(`${table} ${prop} ${Math.round(performance.now() - t)} ms${prop === 'readChains' ? ` (${a[0].length} chains)` : ''}`)
            return out
          }
        return v.bind(target)
      },
    })
  },
}
const daemon = new Daemon({ config, manifests: dir, log, iptablesDataplane: () => dp })
const t0 = performance.now()
await daemon.start()
console.log(`${services} × ${endpoints} (${repo}): started in ${Math.round(performance.now() - t0)} ms; cold full sync ${fulls[0]?.ms} ms; RSS ${rss()} MB`)
const results = { services, endpoints, repo, startMs: Math.round(performance.now() - t0), coldMs: fulls[0]?.ms, noDrift: [], drift: null }
for (let i = 0; i < resyncs; i++) {
  const f = await nextFull()
  results.noDrift.push(f.ms)
  console.log(`no-drift resync ${i + 1}: ${f.ms} ms, ops ${JSON.stringify(f.ops)}${f.repaired ? ` repaired ${JSON.stringify(f.repaired)}` : ''}; RSS ${rss()} MB; reads: ${f.reads.join(', ')}`)
}
// One DNAT target moved to another address of the same length, without our lock file.
const save = () => run('iptables-legacy-save', ['-t', 'nat'])
const line = save().split('\n').find((l) => /^-A KUBE-SEP-\S+ .*-j DNAT --to-destination 10\.244\.\d+\.\d+:8080$/.test(l))
const chain = line.split(' ')[1]
const good = save().split('\n').filter((l) => l.startsWith(`-A ${chain} `))
const m = /--to-destination (10\.244\.\d+\.\d*)(\d):8080$/.exec(line)
const moved = line.replace(/--to-destination \S+$/, `--to-destination ${m[1]}${(Number(m[2]) + 1) % 10}:8080`)
if (moved.length !== line.length) throw new Error('not the same length')
const tokens = moved.replace(`-A ${chain} `, '').match(/"[^"]*"|\S+/g).map((x) => x.replace(/^"|"$/g, ''))
run('iptables-legacy', ['-t', 'nat', '-R', chain, String(good.indexOf(line) + 1), ...tokens], { ...process.env, XTABLES_LOCKFILE: `${process.env.XTABLES_LOCKFILE}.other` })
const drifted = save().split('\n').filter((l) => l.startsWith(`-A ${chain} `))
if (drifted.join('\n') === good.join('\n')) throw new Error('the write did not land')
const f = await nextFull()
const fixed = save().split('\n').filter((l) => l.startsWith(`-A ${chain} `))
results.drift = { ms: f.ms, repaired: f.repaired ?? null, restored: fixed.join('\n') === good.join('\n') }
console.log(`drift resync: ${f.ms} ms (reads: ${f.reads.join(', ')}), repaired ${JSON.stringify(f.repaired ?? {})}, chain ${chain} ${results.drift.restored ? 'restored' : 'NOT restored'}`)
const g = await nextFull()
results.afterRepair = g.ms
console.log(`the resync after: ${g.ms} ms, ops ${JSON.stringify(g.ops)}; RSS ${rss()} MB`)
await daemon.stop()
fs.rmSync(dir, { recursive: true, force: true })
console.log(JSON.stringify(results))
if (!results.drift.restored) process.exitCode = 1
