// The measuring half of benchmarks/dataplane: runs inside the kernel box
// (run.js boots it once), as root.
//
//   node inside.mjs                 the orchestrator: config in DATAPLANE_CONFIG, raw results to cfg.out
//   node inside.mjs --worker JSON   one mode at one size, in the current netns; prints one JSON line
//
// The orchestrator starts every worker under `unshare -n`: each mode at each
// size starts from an empty network namespace (no rules, no IPVS services, no
// conntrack entries, no addresses) and leaves nothing behind for the next.
//
// A worker builds the node in its namespace: lo, a dummy eth0 192.168.50.10/24
// with the default route (as a node's uplink; the cluster IPs route there
// before DNAT), the fake CNI of test/support/cni.mjs (bridge cbr0
// 10.244.0.1/24, one pod per endpoint of the measured service, each with an
// HTTP agent on 8080), then programs its mode,
// checks what the kernel holds, and times TCP connects with connect.c (a
// new connection each time, RST on close) in alternating rounds.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { kubeLayout, sepChain, sepRules, svcChain, vip } from '../iptables/layout.mjs'

const self = fileURLToPath(import.meta.url)

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 30, encoding: 'utf8', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr ?? '').trim().slice(0, 800)}`)
  return r.stdout
}
const sh = (script) => run('sh', ['-ec', script])

// ---- the orchestrator ---------------------------------------------------------------------

function orchestrate() {
  const cfg = JSON.parse(process.env.DATAPLANE_CONFIG)
  const env = {
    kernelRelease: os.release(),
    node: process.version,
    memTotalMB: Math.round(os.totalmem() / 2 ** 20),
    cpus: os.cpus().length,
    iptables: run('iptables-legacy', ['--version']).trim(),
    ipvsadm: run('ipvsadm', ['--version']).trim(),
    conntrackMax: Number(fs.readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8')),
  }
  const runs = []
  let idx = 0
  for (const services of cfg.sizes) {
    for (const mode of cfg.modes) {
      const w = { mode, services, endpoints: cfg.endpoints, pods: cfg.endpoints, count: cfg.count, warmup: cfg.warmup, rounds: cfg.rounds, client: cfg.client, tag: `dp${idx++}` }
      process.stderr.write(`dataplane: ${mode} at ${services} services…\n`)
      const t0 = performance.now()
      const r = spawnSync('unshare', ['-n', '--', process.execPath, '--max-old-space-size=2048', self, '--worker', JSON.stringify(w)], { encoding: 'utf8', maxBuffer: 1 << 28 })
      const wallMs = Math.round(performance.now() - t0)
      let out
      try {
        if (r.error) throw r.error
        if (r.status !== 0) throw new Error(`exit ${r.status ?? r.signal}: ${r.stderr.trim().slice(-1500)}`)
        out = JSON.parse(r.stdout.trim().split('\n').pop())
      } catch (e) {
        out = { mode, services, ok: false, error: e.message }
      }
      out.wallMs = wallMs
      const free = /MemAvailable:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))
      out.memAvailableAfterMB = free ? Math.round(Number(free[1]) / 1024) : null
      process.stderr.write(`dataplane:   ${out.ok ? Object.entries(out.targets).map(([k, t]) => `${k} p50 ${t.p50Us} µs p99 ${t.p99Us} µs`).join(', ') : `FAILED: ${out.error}`} (${(wallMs / 1000).toFixed(1)} s)\n`)
      runs.push(out)
    }
  }
  fs.writeFileSync(cfg.out, JSON.stringify({ env, runs }) + '\n')
}

// ---- one worker ---------------------------------------------------------------------------

const POD_NET = '10.244.0'
const podsOf = (tag, n) => Array.from({ length: n }, (_, i) => ({ name: `${tag}-${String.fromCharCode(97 + i)}`, ip: `${POD_NET}.${10 + i}` }))

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
const us = (ns) => Math.round(ns / 10) / 100

function stats(samplesNs) {
  const s = [...samplesNs].sort((a, b) => a - b)
  const mean = s.reduce((a, b) => a + b, 0) / s.length
  return { n: s.length, p50Us: us(quantile(s, 0.5)), p90Us: us(quantile(s, 0.9)), p99Us: us(quantile(s, 0.99)), minUs: us(s[0]), maxUs: us(s[s.length - 1]), meanUs: us(mean) }
}

/** Runs the C client: COUNT connects (after WARMUP untimed); the latencies in ns and the failures. */
function connects(client, ip, port, count, warmup) {
  const out = run(client, [ip, String(port), String(count), String(warmup)])
  const ns = []
  const errors = []
  for (const line of out.split('\n')) {
    if (!line) continue
    if (line.startsWith('E ')) errors.push(Number(line.slice(2)))
    else ns.push(Number(line))
  }
  return { ns, errors }
}

/** The measured service: last in KUBE-SERVICES, or first. */
const measuredIndex = (mode, services) => (mode === 'iptables-first' ? 0 : services - 1)

async function programIptables(cfg, pods, m) {
  const { Iptables } = await import('../../dist/index.js')
  const layout = kubeLayout(cfg)
  // the measured service's endpoints are the pods: its KUBE-SEP rules point at them
  const seps = new Map()
  for (let e = 0; e < cfg.endpoints; e++) seps.set(sepChain(m * cfg.endpoints + e), sepRules(m, pods[e % pods.length].ip))
  const seen = new Map()
  const rules = layout.rules.map(([chain, rule]) => {
    const repl = seps.get(chain)
    if (!repl) return [chain, rule]
    const i = seen.get(chain) ?? 0
    seen.set(chain, i + 1)
    return [chain, repl[i]]
  })
  const ipt = await Iptables.open()
  const t0 = performance.now()
  const tx = ipt.begin('nat')
  for (const c of layout.chains) tx.createChain(c)
  for (const [chain, rule] of rules) tx.appendRule(chain, rule)
  await tx.commit()
  const programMs = performance.now() - t0
  // checks: the table as iptables-legacy-save sees it, and where the measured service sits
  const save = run('iptables-legacy-save', ['-t', 'nat'])
  const saveRules = save.split('\n').filter((l) => l.startsWith('-A ')).length
  const svcLines = save.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES '))
  const want = `-d ${vip(m)}/32 `
  const position = svcLines.findIndex((l) => l.includes(want)) + 1
  const mine = [...seps.keys()]
  const dnat = save.split('\n').filter((l) => l.includes('-j DNAT') && mine.some((c) => l.startsWith(`-A ${c} `)) && pods.some((p) => l.includes(`--to-destination ${p.ip}:8080`))).length
  const check = {
    rulesProgrammed: rules.length,
    chainsProgrammed: layout.chains.length,
    saveLines: save.split('\n').filter((l) => l && !l.startsWith('#')).length,
    saveRules,
    kubeServicesRules: svcLines.length,
    measuredPosition: position,
    dnatToPods: dnat,
  }
  const ok = saveRules === rules.length && svcLines.length === cfg.services + 1 && position === (m === 0 ? 1 : cfg.services) && dnat === cfg.endpoints
  return { programMs, check, ok, svcChain: svcChain(m), counters: () => kubeServicesCounter(want) }
}

/** Packets counted by the measured service's KUBE-SERVICES rule: one per new connection that walked to it. */
function kubeServicesCounter(want) {
  const out = run('iptables-legacy', ['-w', '-t', 'nat', '-nvxL', 'KUBE-SERVICES'])
  const d = want.trim().split(' ')[1].replace('/32', '')
  const line = out.split('\n').find((l) => l.split(/\s+/).includes(d))
  return line ? Number(line.trim().split(/\s+/)[0]) : null
}

async function programIpvs(cfg, pods, m) {
  const { Ipvs, Rtnl, IpSet, Iptables, setSysctl } = await import('../../dist/index.js')
  const rtnl = await Rtnl.open()
  const ipvs = await Ipvs.open()
  const ipset = await IpSet.open()
  const t0 = performance.now()
  // the VIPs on a dummy kube-ipvs0, as kube-proxy's IPVS mode binds them
  await rtnl.addDummy('kube-ipvs0', { up: true })
  const addrOps = []
  for (let i = 0; i < cfg.services; i++) addrOps.push({ op: 'addAddress', link: 'kube-ipvs0', address: { address: vip(i), noPrefixRoute: true } })
  const addrRes = await rtnl.batch(addrOps)
  // N virtual servers × E destinations (masq, rr); the measured one's destinations are the pods
  const ops = []
  for (let i = 0; i < cfg.services; i++) {
    const key = { protocol: 'tcp', address: vip(i), port: 80 }
    ops.push({ op: 'addService', service: { ...key, scheduler: 'rr' } })
    for (let e = 0; e < cfg.endpoints; e++) {
      const k = i * cfg.endpoints + e
      // the others outside the pods' 10.244.0.0/24 (10.244.0.0 there is not a unicast address: IPVS refuses it)
      const address = i === m ? pods[e % pods.length].ip : `10.${248 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`
      ops.push({ op: 'addDestination', service: key, destination: { address, port: 8080, forward: 'masq', weight: 1 } })
    }
  }
  const ipvsRes = await ipvs.batch(ops)
  // kube-proxy's IPVS mode keeps a small, constant iptables side: KUBE-CLUSTER-IP
  // (hash:ip,port of every cluster IP), one set match to mark traffic from outside
  // the cluster CIDR for masquerade, MASQUERADE in POSTROUTING, vs.conntrack=1.
  // The same masquerade the iptables layout does, so both modes pay it.
  await ipset.create({ name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', hashsize: 1024, maxelem: 262144 })
  const setRes = await ipset.batch(Array.from({ length: cfg.services }, (_, i) => ({ op: 'add', set: 'KUBE-CLUSTER-IP', entry: { ip: vip(i), protocol: 'tcp', port: 80 } })))
  await setSysctl('net.ipv4.vs.conntrack', 1)
  const ipt = await Iptables.open()
  const tx = ipt.begin('nat')
  for (const c of ['KUBE-SERVICES', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING']) tx.createChain(c)
  const cm = (comment) => ({ match: 'comment', comment })
  tx.appendRule('PREROUTING', { matches: [cm('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } })
  tx.appendRule('OUTPUT', { matches: [cm('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } })
  tx.appendRule('POSTROUTING', { matches: [cm('kubernetes postrouting rules')], target: { jump: 'KUBE-POSTROUTING' } })
  tx.appendRule('KUBE-SERVICES', { source: { not: '10.244.0.0/16' }, matches: [cm('Kubernetes service cluster ip + port for masquerade purpose'), { match: 'set', matchSet: 'KUBE-CLUSTER-IP', flags: ['dst', 'dst'] }], target: { jump: 'KUBE-MARK-MASQ' } })
  tx.appendRule('KUBE-SERVICES', { matches: [{ match: 'set', matchSet: 'KUBE-CLUSTER-IP', flags: ['dst', 'dst'] }], target: { target: 'ACCEPT' } })
  tx.appendRule('KUBE-MARK-MASQ', { target: { target: 'MARK', op: 'set-xmark', value: 0x4000, mask: 0x4000 } })
  tx.appendRule('KUBE-POSTROUTING', { matches: [{ match: 'mark', mark: { not: 0x4000 }, mask: 0x4000 }], target: { target: 'RETURN' } })
  tx.appendRule('KUBE-POSTROUTING', { target: { target: 'MARK', op: 'xor', value: 0x4000 } })
  tx.appendRule('KUBE-POSTROUTING', { matches: [cm('kubernetes service traffic requiring SNAT')], target: { target: 'MASQUERADE', randomFully: true } })
  await tx.commit()
  const programMs = performance.now() - t0
  await Promise.all([rtnl.close(), ipvs.close(), ipset.close()])

  const proc = fs.readFileSync('/proc/net/ip_vs', 'utf8').split('\n')
  const ln = run('ipvsadm', ['-Ln']).split('\n')
  const addrs = run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'kube-ipvs0']).split('\n').filter(Boolean).length
  const setEntries = Number(/Number of entries: (\d+)/.exec(run('ipset', ['list', '-t', 'KUBE-CLUSTER-IP']))?.[1])
  const check = {
    opsFailed: [...addrRes, ...ipvsRes, ...setRes].filter((r) => !r.ok).length,
    firstFailure: [...addrRes, ...ipvsRes, ...setRes].find((r) => !r.ok)?.error?.message,
    ipvsadmServices: ln.filter((l) => l.startsWith('TCP ')).length,
    ipvsadmDestinations: ln.filter((l) => l.includes('->') && !l.includes('RemoteAddress')).length,
    procServices: proc.filter((l) => l.startsWith('TCP ')).length,
    vipsOnKubeIpvs0: addrs,
    clusterIpSetEntries: setEntries,
    natRules: run('iptables-legacy-save', ['-t', 'nat']).split('\n').filter((l) => l.startsWith('-A ')).length,
    vsConntrack: fs.readFileSync('/proc/sys/net/ipv4/vs/conntrack', 'utf8').trim(),
  }
  const ok = check.opsFailed === 0 && check.ipvsadmServices === cfg.services && check.ipvsadmDestinations === cfg.services * cfg.endpoints &&
    addrs === cfg.services && setEntries === cfg.services
  const vipHex = vip(m).split('.').map((x) => Number(x).toString(16).padStart(2, '0')).join('').toUpperCase()
  return {
    programMs, check, ok,
    counters: () => {
      // ipvsadm --stats: connections scheduled by the measured virtual server. Linux 6.1
      // sums the per-CPU counters in the 2 s estimator timer: wait for it.
      spawnSync('sleep', ['2.5'])
      const st = run('ipvsadm', ['-Ln', '--stats', '-t', `${vip(m)}:80`]).split('\n').find((l) => l.startsWith('TCP '))
      return st ? Number(st.trim().split(/\s+/)[2]) : null
    },
    vipHex,
  }
}

async function worker(cfg) {
  const { makeNode } = await import('../../test/support/cni.mjs')
  sh(`ip link set lo up
      ip link add eth0 type dummy
      ip addr add 192.168.50.10/24 dev eth0
      ip link set eth0 up
      ip route add default via 192.168.50.1 dev eth0`)
  const pods = podsOf(cfg.tag, cfg.pods)
  const node = await makeNode({ pods })
  try {
    const m = measuredIndex(cfg.mode, cfg.services)
    let prog = { programMs: 0, check: {}, ok: true, counters: () => null }
    if (cfg.mode.startsWith('iptables')) prog = await programIptables(cfg, pods, m)
    else if (cfg.mode === 'ipvs') prog = await programIpvs(cfg, pods, m)
    const targets = cfg.mode === 'baseline'
      ? { pod: { ip: pods[0].ip, port: 8080 } }
      : { vip: { ip: vip(m), port: 80 }, pod: { ip: pods[0].ip, port: 8080 } }
    // one connect each before anything is timed: the path works
    for (const [id, t] of Object.entries(targets)) {
      const r = connects(cfg.client, t.ip, t.port, 1, 0)
      if (r.errors.length) throw new Error(`${cfg.mode} ${cfg.services}: ${id} ${t.ip}:${t.port} does not connect (errno ${r.errors[0]})`)
    }
    const before = prog.counters()
    const samples = Object.fromEntries(Object.keys(targets).map((k) => [k, []]))
    const errors = Object.fromEntries(Object.keys(targets).map((k) => [k, []]))
    const per = Math.ceil(cfg.count / cfg.rounds)
    for (let round = 0; round < cfg.rounds; round++) {
      const order = Object.keys(targets)
      if (round % 2) order.reverse()
      for (const id of order) {
        const t = targets[id]
        const r = connects(cfg.client, t.ip, t.port, per, cfg.warmup)
        samples[id].push(...r.ns)
        errors[id].push(...r.errors)
      }
    }
    const after = prog.counters()
    const vipConnects = cfg.mode === 'baseline' ? 0 : cfg.rounds * (per + cfg.warmup)
    const counted = before == null || after == null ? null : after - before
    const conntrack = (() => {
      try { return Number(fs.readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8')) } catch { return null }
    })()
    const out = {
      mode: cfg.mode,
      services: cfg.services,
      endpoints: cfg.endpoints,
      measuredIndex: m,
      programMs: Math.round(prog.programMs),
      check: { ...prog.check, newConnectionsCounted: counted, vipConnectsMade: vipConnects, conntrackEntriesAfter: conntrack },
      targets: Object.fromEntries(Object.entries(targets).map(([id, t]) => [id, { addr: `${t.ip}:${t.port}`, ...stats(samples[id]), errors: errors[id].length }])),
      samplesUs: Object.fromEntries(Object.entries(samples).map(([id, s]) => [id, s.map((x) => Math.round(x / 100) / 10)])),
      rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
    }
    // every connection to the VIP was a new one that reached the measured service's rule / virtual server
    const countOk = counted == null || cfg.mode === 'baseline' || counted === vipConnects
    out.ok = prog.ok && countOk && Object.values(errors).every((e) => e.length === 0)
    if (!out.ok) out.error = `checks: program ${prog.ok ? 'ok' : 'FAILED'}, counted ${counted} of ${vipConnects} new connections, errors ${Object.values(errors).map((e) => e.length).join('/')}`
    return out
  } finally {
    await node.destroy()
  }
}

if (process.argv[2] === '--worker') {
  const out = await worker(JSON.parse(process.argv[3]))
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
} else {
  orchestrate()
}
