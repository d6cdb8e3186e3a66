// What the fake-CNI tests in the box (cni*.ktest.ts) share: the IPVS / ipset /
// iptables handles with one clean-up that the last test calls and the
// teardown calls again (a failure on the way still leaves the box clean); the
// four virtual services both program, one family each, and the round robin
// through them.
import type { Test } from 'tap'
import { Iptables, IpSet, Ipvs, setSysctl, type ServiceKey } from '../../../dist/index.js'
import { sh, tool, type FakeNode } from '../../support/cni.mjs'
import { lines } from './shell.js'

export interface CniBoxOptions {
  /** Whose iptables (iptables or ip6tables) the hairpin rule goes in. */
  family: 'inet' | 'inet6'
  /** The hairpin set. */
  loop: string
  /** net.ipv4.vs.conntrack as it was, to put back. */
  vsConntrackBefore: number
}

export async function cniBox(t: Test, node: FakeNode, o: CniBoxOptions) {
  const ipvs = await Ipvs.open()
  const ipset = await IpSet.open()
  const iptables = await Iptables.open({ family: o.family })
  let cleaned = false
  async function cleanUp(): Promise<void> {
    if (cleaned) return
    cleaned = true
    await ipvs.flush()
    const tx = iptables.begin('nat')
    if ((await tx.listRules('POSTROUTING')).length) tx.flushChain('POSTROUTING')
    await tx.commit()
    await ipset.destroy(o.loop, { exist: true })
    await setSysctl('net.ipv4.vs.conntrack', o.vsConntrackBefore)
    await node.destroy()
    sh('if ip link show dev kube-ipvs0 >/dev/null 2>&1; then ip link del kube-ipvs0; fi')
  }
  t.teardown(async () => {
    try {
      await cleanUp()
    } finally {
      await ipvs.close()
      await ipset.close()
    }
  })
  /** After cleanUp: no link but lo, no pod netns (of `names`), no agent, no IPVS service, no set, no nat rule. */
  function checkGone(t: Test, names: readonly string[]): void {
    t.same(lines(tool('ip', ['-o', 'link', 'show'])).map((l) => l.split(': ')[1]), ['lo'], 'only lo')
    const netns = lines(tool('ip', ['netns', 'list'])).map((l) => l.split(' ')[0])
    t.same(names.filter((n) => netns.includes(n)), [], 'no pod netns')
    let agents = ''
    try {
      agents = tool('pgrep', ['-f', 'cni-agent\\.mjs'])
    } catch (e) {
      t.equal((e as { status?: number }).status, 1, 'pgrep: none found')
    }
    t.equal(agents, '', 'no agent process')
    t.equal(tool('ipvsadm', ['-Sn']), '', 'no IPVS service')
    t.equal(tool('ipset', ['list', '-n']), '', 'no set')
    const save = o.family === 'inet' ? 'iptables-legacy-save' : 'ip6tables-legacy-save'
    t.same(lines(tool(save, ['-t', 'nat'])).filter((l) => l.startsWith('-A')), [], o.family === 'inet' ? 'no nat rule' : 'no ip6 nat rule')
  }
  return { ipvs, ipset, iptables, cleanUp, checkGone }
}

type Vip = Extract<ServiceKey, { address: string }>

/** web and dns (UDP echo) over a, b and c; others over b and c, not a; selfOnly over a alone (the hairpin case). */
export interface CniServices {
  web: Vip
  dns: Vip
  others: Vip
  selfOnly: Vip
}

/** `address` or `[address]` (IPv6), then `:port`, as ipvsadm -Sn writes a service or a real server. */
const hostPort = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`)

/**
 * Programs the four services in one batch (pods: a, b and c) through the API (round robin; real
 * servers masqueraded, on 8080, 5353 for dns, at `address(pod)`), and checks
 * with ipvsadm -Sn that the kernel holds exactly them.
 */
export async function addCniServices<P>(t: Test, ipvs: Ipvs, s: CniServices, pods: readonly P[], address: (p: P) => string): Promise<void> {
  const [a, b, c] = pods as readonly [P, P, P]
  const members: [Vip, P[], number][] = [
    [s.web, [a, b, c], 8080],
    [s.dns, [a, b, c], 5353],
    [s.others, [b, c], 8080],
    [s.selfOnly, [a], 8080],
  ]
  const results = await ipvs.batch(
    members.flatMap(([service, pods, port]) => [
      { op: 'addService' as const, service: { ...service, scheduler: 'rr' } },
      ...pods.map((p) => ({ op: 'addDestination' as const, service, destination: { address: address(p), port, forward: 'masq' as const } })),
    ]),
  )
  t.same(results.filter((r) => !r.ok), [], 'every operation ok')
  const saved = members.flatMap(([service, pods, port]) => {
    const vs = `${service.protocol === 'udp' ? '-u' : '-t'} ${hostPort(service.address, service.port)}`
    return [`-A ${vs} -s rr`, ...pods.map((p) => `-a ${vs} -r ${hostPort(address(p), port)} -m -w 1`)]
  })
  t.same(lines(tool('ipvsadm', ['-Sn'])).sort(), saved.sort(), 'ipvsadm -Sn')
}

/** Once hairpin traffic is masqueraded: a reaches web's three pods, itself included, and so does b three requests at a time. */
export async function hairpinSpread(t: Test, node: FakeNode, web: Vip, [a, b, c]: readonly { name: string }[]): Promise<void> {
  const r = await node.requestMany(a!.name, { host: web.address, port: web.port }, 6)
  t.same(r.errors, [], 'a through the VIP of all three, itself included')
  t.same(r.counts, { [a!.name]: 2, [b!.name]: 2, [c!.name]: 2 })
  const many = await node.requestMany(b!.name, { host: web.address, port: web.port }, 9, { concurrency: 3 })
  t.same(many.errors, [], 'b, three at a time')
  t.same(many.counts, { [a!.name]: 3, [b!.name]: 3, [c!.name]: 3 })
}

/** From the node, web and dns spread requests evenly over a, b and c (HTTP, then UDP). */
export async function roundRobin(t: Test, node: FakeNode, s: CniServices, pods: readonly { name: string }[]): Promise<void> {
  const each = (n: number) => Object.fromEntries(pods.map((p) => [p.name, n]))
  const r = await node.requestMany('node', { host: s.web.address, port: s.web.port }, 9)
  t.same(r.errors, [])
  t.same(r.counts, each(3))
  const u = await node.requestMany('node', { proto: 'udp', host: s.dns.address, port: s.dns.port }, 6)
  t.same(u.errors, [], 'UDP')
  t.same(u.counts, each(2), 'UDP')
}
