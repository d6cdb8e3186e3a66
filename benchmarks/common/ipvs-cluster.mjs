// The IPVS-mode side of the synthetic cluster (proxy-ipvs, soak): what the
// kernel must hold once the daemon programmed it, and the oracles that read the
// kernel (its text and the standard tools, never our library). Runs inside the
// kernel box.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { NODE_IP, daemonFlags as flagsFor, endpointOf, isNodePort, run } from './cluster.mjs'

export * from './cluster.mjs'
export { percentile, round2, stats } from './stats.mjs'

/** What the kernel must hold once the daemon has programmed `cluster` (and drained what it removed). */
export function expectedState(c) {
  const servers = c.services + c.nodePorts
  let dests = 0
  for (let i = 0; i < c.services; i++) {
    const ready = c.eps[i].filter((e) => endpointOf(e).ready).length
    dests += ready * (isNodePort(i) ? 2 : 1)
  }
  return { ipvsServices: servers, ipvsDestinations: dests, clusterIPEntries: c.services, nodePortEntries: c.nodePorts, vips: c.services }
}

// ---- the oracles (kernel text and the standard tools, never our library) ------------------

export function ipvsCount() {
  const text = fs.readFileSync('/proc/net/ip_vs', 'utf8')
  let services = 0
  let dests = 0
  for (const line of text.split('\n')) {
    if (/^(TCP|UDP|SCTP|FWM) /.test(line)) services++
    else if (/^ {2}-> [0-9A-F[]/.test(line)) dests++
  }
  return { services, dests }
}

export function setEntries(set) {
  const r = spawnSync('ipset', ['list', set, '-t'], { encoding: 'utf8' })
  if (r.status !== 0) return null
  const m = /^Number of entries: (\d+)$/m.exec(r.stdout)
  return m ? Number(m[1]) : null
}

export function vipCount() {
  const r = spawnSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'kube-ipvs0'], { encoding: 'utf8', maxBuffer: 1 << 28 })
  if (r.status !== 0) return null
  return r.stdout.split('\n').filter((l) => l.includes(' inet ')).length
}

export function kernelState() {
  const v = ipvsCount()
  return { ipvsServices: v.services, ipvsDestinations: v.dests, clusterIPEntries: setEntries('KUBE-CLUSTER-IP'), nodePortEntries: setEntries('KUBE-NODE-PORT-TCP'), vips: vipCount() }
}

export function diffState(have, want) {
  const bad = Object.keys(want).filter((k) => have[k] !== want[k])
  return bad.length ? `kernel holds ${bad.map((k) => `${k}=${have[k]} (expected ${want[k]})`).join(', ')}` : undefined
}

export function netnsSetup() {
  run('sh', ['-c', `ip link set lo up && ip link add eth0 type dummy && ip addr add ${NODE_IP}/24 dev eth0 && ip link set eth0 up`])
  const empty = ipvsCount()
  if (empty.services || empty.dests) throw new Error(`the IPVS table was not empty: ${JSON.stringify(empty)}`)
}

export const daemonFlags = (dir) => flagsFor('ipvs', dir)
