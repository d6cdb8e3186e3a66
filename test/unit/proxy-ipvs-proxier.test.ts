// lib/proxy/ipvs/proxier.ts against the in-memory kernel of
// test/support/fake-dataplane.ts: what a sync asks of IPVS, ipset, rtnetlink,
// iptables and conntrack, service kind by service kind; incremental syncs; the
// graceful termination of TCP real servers; full resyncs that adopt what is
// right and repair what drifted; kernel errors; cleanup; setup's sysctls; and
// the SyncRunner that decides when syncs run.
import t from 'tap'
import { IpvsProxier, type IpvsProxierOptions } from '../../dist/proxy/ipvs/proxier.js'
import type { SyncReport } from '../../dist/proxy/types.js'
import { SyncRunner } from '../../dist/proxy/runner.js'
import type { EndpointSlice, ServiceObject } from '../../dist/proxy/model/index.js'
import { grownMaxelem, SET_ROLES, setName } from '../../dist/proxy/ipvs/netfilter.js'
import { NetlinkError } from '../../dist/errors.js'
import type { IpvsDataplane } from '../../dist/proxy/ipvs/dataplane.js'
import { FakeDataplane, type FakeOptions } from '../support/fake-dataplane.js'
import { changeFeed, service, slice, type Json } from '../support/builders.js'

const NODE = 'node-a'
const NODE_ADDRESSES: FakeOptions['nodeAddresses'] = [
  { link: 'eth0', address: '192.168.1.10', prefix: 24 },
  { link: 'eth1', address: '10.1.0.5', prefix: 16 },
]

const svc = (name: string, spec: Json = {}, status: Json = {}): ServiceObject => service(name, spec, { status })

/** A proxier over a fake kernel, fed through the real change trackers. */
function harness(options: IpvsProxierOptions = {}, fake = new FakeDataplane({ nodeAddresses: NODE_ADDRESSES }), dataplane: IpvsDataplane = fake) {
  const feed = changeFeed(NODE)
  const proxier = new IpvsProxier(dataplane, options)
  return {
    fake,
    proxier,
    state: feed.state,
    put: feed.put,
    deleteService: feed.deleteService,
    deleteSlice: feed.deleteSlice,
    /** Applies pending changes and syncs; the call log is cleared first. */
    async sync(full = false): Promise<SyncReport> {
      const { servicePorts, stale } = feed.pending()
      fake.clearCalls()
      return proxier.sync(feed.state, servicePorts, { full, stale })
    },
  }
}

/** web with real servers 10.0.0.1 and 10.0.0.2, synced; then 10.0.0.2 gone from its slice and synced: it drains (weight 0) on VS. */
async function draining(): Promise<ReturnType<typeof harness>> {
  const h = harness()
  h.put(svc('web'), slice('web-1', 'web', ['10.0.0.1', '10.0.0.2']))
  await h.sync()
  h.put(slice('web-1', 'web', ['10.0.0.1']))
  await h.sync()
  return h
}
const VS = 'tcp/10.96.0.10:80'

const LB = 'KUBE-LOOP-BACK'
const CIP = 'KUBE-CLUSTER-IP'
const IPS = 'KUBE-IPVS-IPS'

/** Members of every non-empty set. */
function nonEmptySets(fake: FakeDataplane): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const [name] of fake.sets) {
    const m = fake.members(name)!
    if (m.length > 0) out[name] = m
  }
  return out
}

/** Everything the fake kernel holds that the proxier programs, for before/after comparisons. */
function snapshot(fake: FakeDataplane) {
  const ipvs: Record<string, { spec: unknown; dests: string[] }> = {}
  for (const [k, s] of fake.services) ipvs[k] = { spec: { ...s.spec }, dests: fake.dests(k)! }
  return { ipvs, sets: nonEmptySets(fake), vips: fake.addressesOf('kube-ipvs0'), nat: [...(fake.chains('nat') ?? new Map()).keys()].sort(), filter: [...(fake.chains('filter') ?? new Map()).keys()].sort() }
}

t.test('ClusterIP with three endpoints, one of them local', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-1', 'web', [{ ip: '10.0.0.1', node: NODE }, { ip: '10.0.0.2', node: 'node-b' }, { ip: '10.0.0.3', node: 'node-c' }]))
  const r = await h.sync()
  t.equal(r.full, true, 'the first sync is full')
  t.strictSame(r.errors, [])
  t.equal(h.proxier.synced, true)
  t.strictSame(h.fake.writes('ipvs'), [
    'addService tcp/10.96.0.10:80 rr',
    'addDestination tcp/10.96.0.10:80 10.0.0.1:8080 w1 masq',
    'addDestination tcp/10.96.0.10:80 10.0.0.2:8080 w1 masq',
    'addDestination tcp/10.96.0.10:80 10.0.0.3:8080 w1 masq',
  ])
  t.strictSame([...h.fake.services.keys()], ['tcp/10.96.0.10:80'], 'one virtual server, on the cluster IP only')
  t.equal(h.fake.service('tcp/10.96.0.10:80')!.spec.scheduler, 'rr')
  t.equal(h.fake.service('tcp/10.96.0.10:80')!.spec.persistent, false)
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10'], 'the VIP is bound on kube-ipvs0')
  t.strictSame(h.fake.addressRecord('kube-ipvs0', '10.96.0.10')!.flags.includes('noprefixroute'), true, 'with noprefixroute')
  t.equal(h.fake.addressRecord('kube-ipvs0', '10.96.0.10')!.prefix, 32)
  t.equal(h.fake.links.get('kube-ipvs0')?.kind, 'dummy')
  t.strictSame(nonEmptySets(h.fake), {
    [CIP]: ['10.96.0.10,tcp:80'],
    [IPS]: ['10.96.0.10'],
    [LB]: ['10.0.0.1,tcp:8080,10.0.0.1'],
  }, 'cluster IP and VIP entries; the local endpoint, and only it, hairpins')
  t.strictSame([...h.fake.sets.keys()].sort(), SET_ROLES.map((r) => setName(r, 'inet')).sort(), 'every set of IPVS mode exists')
  t.strictSame(
    [...h.fake.chains('nat')!.keys()].sort(),
    ['KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ', 'KUBE-NODE-PORT', 'KUBE-POSTROUTING', 'KUBE-SERVICES'],
  )
  t.equal(h.fake.chains('filter')!.size, 6)
  t.equal(h.fake.heldTables.get('nat')!.jumps.length, 3)
  t.equal(h.fake.heldTables.get('filter')!.jumps.length, 6)
  t.equal(r.ops.ipvs, 4)
  t.equal(r.ops.rtnl, 1)
  t.equal(r.ops.ipset, 3)
  t.strictSame(r.repaired, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0 }, 'nothing counts as repaired on the first sync')
})

t.test('the configured scheduler', async (t) => {
  const h = harness({ scheduler: 'lc' })
  h.put(svc('web'), slice('web-1', 'web', ['10.0.0.1']))
  await h.sync()
  t.strictSame(h.fake.writes('ipvs'), ['addService tcp/10.96.0.10:80 lc', 'addDestination tcp/10.96.0.10:80 10.0.0.1:8080 w1 masq'])
})

t.test('NodePort: a virtual server per node address, not on lo or kube-ipvs0', async (t) => {
  const h = harness()
  h.put(svc('np', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('np-1', 'np', ['10.0.0.1', '10.0.0.2']))
  await h.sync()
  t.strictSame([...h.fake.services.keys()].sort(), ['tcp/10.1.0.5:30080', 'tcp/10.96.0.10:80', 'tcp/192.168.1.10:30080'])
  for (const k of h.fake.services.keys()) t.strictSame(h.fake.dests(k), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w1 masq'], `${k}: every endpoint`)
  t.strictSame(h.fake.members('KUBE-NODE-PORT-TCP'), ['30080'])
  t.strictSame(h.fake.members('KUBE-NODE-PORT-LOCAL-TCP'), [])
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10'], 'node addresses are not bound on kube-ipvs0')

  // A second sync must not take kube-ipvs0's VIPs for node addresses.
  h.put(svc('np', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }))
  const r = await h.sync(true)
  t.strictSame(h.fake.writes(), [], 'a full resync changes nothing')
  t.strictSame([...h.fake.services.keys()].sort(), ['tcp/10.1.0.5:30080', 'tcp/10.96.0.10:80', 'tcp/192.168.1.10:30080'])
  t.strictSame(r.repaired, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0 })
})

t.test('NodePort: nodePortAddresses filters node addresses by CIDR', async (t) => {
  const h = harness({ nodePortAddresses: ['192.168.1.0/24'] })
  h.put(svc('np', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('np-1', 'np', ['10.0.0.1']))
  await h.sync()
  t.strictSame([...h.fake.services.keys()].sort(), ['tcp/10.96.0.10:80', 'tcp/192.168.1.10:30080'])
})

t.test('externalTrafficPolicy Local: only local endpoints behind the node port, all behind the cluster IP', async (t) => {
  const h = harness()
  h.put(
    svc('np', { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
    slice('np-1', 'np', [{ ip: '10.0.0.1', node: NODE }, { ip: '10.0.0.2', node: 'node-b' }, { ip: '10.0.0.3', node: 'node-b' }]),
  )
  const r = await h.sync()
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w1 masq', '10.0.0.3:8080 w1 masq'])
  t.strictSame(h.fake.dests('tcp/192.168.1.10:30080'), ['10.0.0.1:8080 w1 masq'])
  t.strictSame(h.fake.dests('tcp/10.1.0.5:30080'), ['10.0.0.1:8080 w1 masq'])
  t.strictSame(h.fake.members('KUBE-NODE-PORT-TCP'), ['30080'])
  t.strictSame(h.fake.members('KUBE-NODE-PORT-LOCAL-TCP'), ['30080'])
  t.strictSame(r.noLocalEndpoints, { internal: 0, external: 0 })
})

t.test('externalTrafficPolicy Local with no local endpoint: the node port has none, and it is counted', async (t) => {
  const h = harness()
  h.put(
    svc('np', { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
    slice('np-1', 'np', [{ ip: '10.0.0.2', node: 'node-b' }]),
  )
  const r = await h.sync()
  t.strictSame(h.fake.dests('tcp/192.168.1.10:30080'), [])
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.2:8080 w1 masq'])
  t.strictSame(r.noLocalEndpoints, { internal: 0, external: 1 })
})

t.test('internalTrafficPolicy Local: only local endpoints behind the cluster IP', async (t) => {
  const h = harness()
  h.put(svc('itp', { internalTrafficPolicy: 'Local' }), slice('itp-1', 'itp', [{ ip: '10.0.0.1', node: NODE }, { ip: '10.0.0.2', node: 'node-b' }]))
  await h.sync()
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.1:8080 w1 masq'])
})

t.test('externalIPs: bound, served, in KUBE-EXTERNAL-IP or -LOCAL by policy', async (t) => {
  const h = harness()
  h.put(
    svc('ext', { externalIPs: ['203.0.113.7'] }),
    svc('extl', { clusterIP: '10.96.0.11', externalIPs: ['203.0.113.8'], externalTrafficPolicy: 'Local' }),
    slice('ext-1', 'ext', [{ ip: '10.0.0.1', node: NODE }, { ip: '10.0.0.2', node: 'node-b' }]),
    slice('extl-1', 'extl', [{ ip: '10.0.1.1', node: NODE }, { ip: '10.0.1.2', node: 'node-b' }]),
  )
  await h.sync()
  t.strictSame(h.fake.members('KUBE-EXTERNAL-IP'), ['203.0.113.7,tcp:80'])
  t.strictSame(h.fake.members('KUBE-EXTERNAL-IP-LOCAL'), ['203.0.113.8,tcp:80'])
  t.strictSame(h.fake.dests('tcp/203.0.113.7:80'), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w1 masq'])
  t.strictSame(h.fake.dests('tcp/203.0.113.8:80'), ['10.0.1.1:8080 w1 masq'], 'Local: local endpoints only')
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10', '10.96.0.11', '203.0.113.7', '203.0.113.8'])
  t.strictSame(h.fake.members(IPS), ['10.96.0.10', '10.96.0.11', '203.0.113.7', '203.0.113.8'])
})

t.test('LoadBalancer: ingress IP served, source ranges filtered, ETP Local health check', async (t) => {
  const h = harness()
  h.put(
    svc(
      'lb',
      { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 30080 }], loadBalancerSourceRanges: ['198.51.100.0/24', '192.168.1.0/24'] },
      { loadBalancer: { ingress: [{ ip: '203.0.113.50' }] } },
    ),
    svc(
      'lbl',
      { clusterIP: '10.96.0.11', type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ name: 'http', port: 80, nodePort: 30081 }] },
      { loadBalancer: { ingress: [{ ip: '203.0.113.51' }] } },
    ),
    slice('lb-1', 'lb', ['10.0.0.1']),
    slice('lbl-1', 'lbl', [{ ip: '10.0.1.1', node: NODE }]),
  )
  const r = await h.sync()
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.members('KUBE-LOAD-BALANCER'), ['203.0.113.50,tcp:80', '203.0.113.51,tcp:80'])
  t.strictSame(h.fake.members('KUBE-LOAD-BALANCER-FW'), ['203.0.113.50,tcp:80'], 'only the one with source ranges')
  t.strictSame(h.fake.members('KUBE-LOAD-BALANCER-SOURCE-CIDR'), ['203.0.113.50,tcp:80,192.168.1.0/24', '203.0.113.50,tcp:80,198.51.100.0/24'])
  t.strictSame(h.fake.members('KUBE-LOAD-BALANCER-SOURCE-IP'), ['203.0.113.50,tcp:80,203.0.113.50'], 'a range covers the node: the node may reach it')
  t.strictSame(h.fake.members('KUBE-LOAD-BALANCER-LOCAL'), ['203.0.113.51,tcp:80'])
  t.strictSame(h.fake.members('KUBE-HEALTH-CHECK-NODE-PORT'), ['32000'])
  t.strictSame(h.fake.members('KUBE-NODE-PORT-TCP'), ['30080', '30081'])
  t.strictSame(h.fake.members('KUBE-NODE-PORT-LOCAL-TCP'), ['30081'])
  t.strictSame(h.fake.dests('tcp/203.0.113.50:80'), ['10.0.0.1:8080 w1 masq'])
  t.strictSame(h.fake.dests('tcp/203.0.113.51:80'), ['10.0.1.1:8080 w1 masq'])
  t.ok(h.fake.addressesOf('kube-ipvs0').includes('203.0.113.50'), 'the ingress IP is bound')
})

t.test('LoadBalancer: source ranges that do not cover the node make no SOURCE-IP entry', async (t) => {
  const h = harness()
  h.put(
    svc('lb', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 30080 }], loadBalancerSourceRanges: ['198.51.100.0/24'] }, { loadBalancer: { ingress: [{ ip: '203.0.113.50' }] } }),
    slice('lb-1', 'lb', ['10.0.0.1']),
  )
  await h.sync()
  t.strictSame(h.fake.members('KUBE-LOAD-BALANCER-SOURCE-IP'), [])
  t.strictSame(h.fake.members('KUBE-LOAD-BALANCER-SOURCE-CIDR'), ['203.0.113.50,tcp:80,198.51.100.0/24'])
})

t.test('sessionAffinity ClientIP: a persistent virtual server with the timeout', async (t) => {
  const h = harness()
  h.put(svc('sticky', { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } }), slice('s-1', 'sticky', ['10.0.0.1']))
  await h.sync()
  t.strictSame(h.fake.writes('ipvs')[0], 'addService tcp/10.96.0.10:80 rr persistent 600/32')
  const s = h.fake.service('tcp/10.96.0.10:80')!.spec
  t.strictSame([s.persistent, s.timeout, s.netmask], [true, 600, 32])

  // Affinity switched off: the server is updated in place, not recreated.
  h.put(svc('sticky'))
  await h.sync()
  t.strictSame(h.fake.writes(), ['ipvs updateService tcp/10.96.0.10:80 rr'])
  t.equal(h.fake.service('tcp/10.96.0.10:80')!.spec.persistent, false)
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.1:8080 w1 masq'], 'real servers kept')
})

t.test('a UDP service', async (t) => {
  const h = harness()
  h.put(svc('dns', { ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] }), slice('dns-1', 'dns', ['10.0.0.1'], [{ name: 'dns', protocol: 'UDP', port: 5353 }]))
  await h.sync()
  t.strictSame(h.fake.writes('ipvs'), ['addService udp/10.96.0.10:53 rr', 'addDestination udp/10.96.0.10:53 10.0.0.1:5353 w1 masq'])
  t.strictSame(h.fake.members(CIP), ['10.96.0.10,udp:53'])
})

t.test('incremental syncs send only what changed', async (t) => {
  const h = harness()
  for (let i = 1; i <= 5; i++) h.put(svc(`s${i}`, { clusterIP: `10.96.${i}.1` }), slice(`s${i}-1`, `s${i}`, [`10.${i}.0.1`, `10.${i}.0.2`]))
  await h.sync()
  t.equal(h.fake.services.size, 5)

  h.put(slice('s3-1', 's3', ['10.3.0.1', '10.3.0.3']))
  let r = await h.sync()
  t.equal(r.full, false)
  t.equal(r.ports, 1, 'one service port recomputed')
  t.strictSame(h.fake.writes(), [
    'ipvs addDestination tcp/10.96.3.1:80 10.3.0.3:8080 w1 masq',
    'ipvs updateDestination tcp/10.96.3.1:80 10.3.0.2:8080 w0 masq',
  ], 'exactly that service\'s real servers; nothing else')
  t.notOk(h.fake.calls.some((c) => c.sub === 'ipvs' && c.kind === 'read'), 'an incremental sync reads nothing back')

  r = await h.sync()
  t.strictSame(h.fake.writes(), [], 'no change: nothing sent')
  t.equal(r.ports, 0)
  t.strictSame(r.ops, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0, conntrack: 0 })

  // A local endpoint appears: a real server and its hairpin entry.
  h.put(slice('s2-1', 's2', ['10.2.0.1', '10.2.0.2', { ip: '10.2.0.9', node: NODE }]))
  await h.sync()
  t.strictSame(h.fake.writes(), ['ipvs addDestination tcp/10.96.2.1:80 10.2.0.9:8080 w1 masq', `ipset add ${LB} 10.2.0.9,tcp:8080,10.2.0.9`])

  // A service goes: its server, its entries, its VIP.
  h.deleteService('s5')
  await h.sync()
  t.strictSame(h.fake.writes(), [
    'ipvs deleteService tcp/10.96.5.1:80',
    `ipset del ${CIP} 10.96.5.1,tcp:80`,
    `ipset del ${IPS} 10.96.5.1`,
    'rtnl deleteAddress kube-ipvs0 10.96.5.1/32',
  ])
  t.notOk(h.fake.addressesOf('kube-ipvs0').includes('10.96.5.1'))
  t.equal(h.fake.services.size, 4)
})

t.test('ports sharing a VIP: the VIP stays until the last one goes', async (t) => {
  const h = harness()
  h.put(svc('two', { ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] }), slice('two-1', 'two', ['10.0.0.1'], [{ name: 'http', port: 8080 }, { name: 'https', port: 8443 }]))
  await h.sync()
  t.strictSame(h.fake.members(IPS), ['10.96.0.10'])
  h.put(svc('two', { ports: [{ name: 'http', port: 80 }] }))
  await h.sync()
  t.strictSame(h.fake.writes(), ['ipvs deleteService tcp/10.96.0.10:443', `ipset del ${CIP} 10.96.0.10,tcp:443`], 'the shared VIP and its IPVS-IPS entry stay')
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10'])
  t.strictSame(h.fake.members(IPS), ['10.96.0.10'])
  h.deleteService('two')
  await h.sync()
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), [])
  t.strictSame(h.fake.members(IPS), [])
})

t.test('graceful termination of TCP real servers', async (t) => {
  const h = await draining()
  t.strictSame(h.fake.writes(), ['ipvs updateDestination tcp/10.96.0.10:80 10.0.0.2:8080 w0 masq'], 'quiesced, not deleted')
  t.strictSame(h.fake.dests(VS), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w0 masq'])
  t.equal(h.proxier.draining, 1)

  h.fake.setConns(VS, '10.0.0.2:8080', 2, 1)
  h.fake.clearCalls()
  t.equal(await h.proxier.drain(), 1, 'still draining while connections remain')
  t.strictSame(h.fake.writes(), [])
  t.strictSame(h.fake.dests(VS), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w0 masq'])

  // A sync in between leaves it alone (no second weight-0 update).
  await h.sync()
  t.strictSame(h.fake.writes(), [])

  // Only closing connections left (IPVS's inactive count: FIN_WAIT, TIME_WAIT):
  // nothing more to carry, so the real server goes.
  h.fake.setConns(VS, '10.0.0.2:8080', 0, 4)
  h.fake.clearCalls()
  t.equal(await h.proxier.drain(), 0)
  t.strictSame(h.fake.writes(), ['ipvs deleteDestination tcp/10.96.0.10:80 10.0.0.2:8080'])
  t.strictSame(h.fake.dests(VS), ['10.0.0.1:8080 w1 masq'])
  t.equal(h.proxier.draining, 0)

  // Coming back later is a plain add.
  h.put(slice('web-1', 'web', ['10.0.0.1', '10.0.0.2']))
  await h.sync()
  t.strictSame(h.fake.writes(), ['ipvs addDestination tcp/10.96.0.10:80 10.0.0.2:8080 w1 masq'])
})

t.test('graceful termination: a virtual server flushed behind our back (ipvsadm -C) ends the drain', async (t) => {
  // The kernel lists no destinations for a missing service (no error): the
  // draining real server is gone, there is nothing left to delete.
  const h = await draining()
  t.equal(h.proxier.draining, 1)
  h.fake.flushIpvs()
  h.fake.clearCalls()
  t.equal(await h.proxier.drain(), 0, 'no longer draining')
  t.strictSame(h.fake.writes(), [], 'nothing deleted')
})

t.test('graceful termination: an endpoint back before it drained gets weight 1 again', async (t) => {
  const h = await draining()
  h.fake.setConns(VS, '10.0.0.2:8080', 3)
  h.put(slice('web-1', 'web', ['10.0.0.1', '10.0.0.2']))
  await h.sync()
  t.strictSame(h.fake.writes(), ['ipvs updateDestination tcp/10.96.0.10:80 10.0.0.2:8080 w1 masq'])
  t.strictSame(h.fake.dests(VS), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w1 masq'])
  t.equal(h.proxier.draining, 0)
  h.fake.setConns(VS, '10.0.0.2:8080', 0)
  h.fake.clearCalls()
  t.equal(await h.proxier.drain(), 0)
  t.strictSame(h.fake.writes(), [], 'a restored real server is not drained away')
  t.strictSame(h.fake.dests(VS), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w1 masq'])
})

t.test('graceful termination survives a full resync and a restart', async (t) => {
  const h = await draining()
  h.fake.setConns(VS, '10.0.0.2:8080', 1)
  const r = await h.sync(true)
  t.strictSame(h.fake.writes(), [], 'the weight-0 real server is left as it is')
  t.equal(r.repaired.ipvs, 0)
  t.equal(h.proxier.draining, 1, 'still known as draining')

  // A new proxier over the same kernel finds it draining too.
  const p2 = new IpvsProxier(h.fake)
  await p2.sync(h.state, [])
  t.equal(p2.draining, 1)
  h.fake.setConns(VS, '10.0.0.2:8080', 0)
  t.equal(await p2.drain(), 0)
  t.strictSame(h.fake.dests(VS), ['10.0.0.1:8080 w1 masq'])
})

t.test('UDP real servers are deleted at once', async (t) => {
  const h = harness()
  const UDP = [{ name: 'dns', protocol: 'UDP', port: 53 }]
  h.put(svc('dns', { ports: UDP }), slice('dns-1', 'dns', ['10.0.0.1', '10.0.0.2'], [{ name: 'dns', protocol: 'UDP', port: 53 }]))
  await h.sync()
  h.put(slice('dns-1', 'dns', ['10.0.0.1'], [{ name: 'dns', protocol: 'UDP', port: 53 }]))
  await h.sync()
  t.strictSame(h.fake.writes('ipvs'), ['deleteDestination udp/10.96.0.10:53 10.0.0.2:53'])
  t.equal(h.proxier.draining, 0)
})

t.test('full resync repairs exactly what drifted', async (t) => {
  const h = harness()
  h.put(
    svc('web'),
    svc('np', { clusterIP: '10.96.0.11', type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
    slice('web-1', 'web', [{ ip: '10.0.0.1', node: NODE }, '10.0.0.2']),
    slice('np-1', 'np', ['10.0.1.1']),
  )
  await h.sync()
  const good = snapshot(h.fake)

  let r = await h.sync(true)
  t.strictSame(h.fake.writes(), [], 'no drift: nothing sent')
  t.strictSame(r.repaired, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0 }, 'no drift: nothing repaired')

  // ipvsadm -C, ipset del, ip addr del, a chain flushed away.
  h.fake.flushIpvs()
  h.fake.deleteSetMember(LB, '10.0.0.1,tcp:8080,10.0.0.1')
  h.fake.removeAddress('kube-ipvs0', '10.96.0.11')
  h.fake.dropChain('nat', 'KUBE-POSTROUTING')
  r = await h.sync()
  t.strictSame(h.fake.writes(), [], 'an incremental sync does not look for drift')
  r = await h.sync(true)
  t.strictSame(r.errors, [])
  t.strictSame(snapshot(h.fake), good, 'everything is back')
  t.strictSame(r.repaired, { ipvs: 9, ipset: 1, rtnl: 1, iptables: 1 }, '4 servers + 5 real servers, 1 member, 1 VIP, 1 chain')
  t.strictSame(h.fake.writes('ipset'), [`add ${LB} 10.0.0.1,tcp:8080,10.0.0.1`])
  t.strictSame(h.fake.writes('rtnl'), ['addAddress kube-ipvs0 10.96.0.11/32 noprefixroute'])
  t.strictSame(h.fake.writes('tables'), ['sync nat KUBE-POSTROUTING'])

  r = await h.sync(true)
  t.strictSame(h.fake.writes(), [], 'repaired: the next full sync has nothing to do')
})

t.test('a full sync with pending changes counts only drift as repaired', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-1', 'web', ['10.0.0.1']))
  await h.sync()
  h.put(slice('web-1', 'web', ['10.0.0.1', '10.0.0.2']))
  const r = await h.sync(true)
  t.strictSame(h.fake.writes(), ['ipvs addDestination tcp/10.96.0.10:80 10.0.0.2:8080 w1 masq'])
  t.strictSame(r.repaired, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0 })
})

t.test('adoption: a new proxier over a kernel already right writes nothing', async (t) => {
  const h = harness()
  h.put(
    svc('web', { sessionAffinity: 'ClientIP' }),
    svc('np', { clusterIP: '10.96.0.11', type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
    slice('web-1', 'web', [{ ip: '10.0.0.1', node: NODE }, '10.0.0.2']),
    slice('np-1', 'np', [{ ip: '10.0.1.1', node: NODE }, '10.0.1.2']),
  )
  await h.sync()
  const good = snapshot(h.fake)
  h.fake.setConns('tcp/10.96.0.10:80', '10.0.0.2:8080', 5)

  const p2 = new IpvsProxier(h.fake)
  h.fake.clearCalls()
  const r = await p2.sync(h.state, h.state.ports.keys())
  t.equal(r.full, true)
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.changes(), [], 'no kernel state changed')
  t.strictSame(h.fake.writes(), [], 'and nothing was even sent')
  t.strictSame(snapshot(h.fake), good)
  t.equal(h.fake.service('tcp/10.96.0.10:80')!.dests.get('10.0.0.2:8080')!.activeConns, 5, 'connections survive')
  t.equal(p2.synced, true)
})

t.test('a set past its maxelem grows: replaced by a bigger one, atomically; a restart adopts it', async (t) => {
  t.strictSame([1, 32768, 32769, 65536, 100000].map(grownMaxelem), [65536, 65536, 131072, 131072, 262144], 'powers of two, twice the need, at least the default')
  // A kernel whose sets hold 4 entries by default stands in for 65536.
  const h = harness({}, new FakeDataplane({ nodeAddresses: NODE_ADDRESSES, defaultMaxelem: 4 }))
  const ip = (i: number): string => `10.96.1.${i}`
  for (let i = 1; i <= 3; i++) h.put(svc(`s${i}`, { clusterIP: ip(i) }), slice(`s${i}-1`, `s${i}`, ['10.0.0.1']))
  let r = await h.sync()
  t.strictSame(r.errors, [])
  t.equal(h.fake.members(CIP)!.length, 3)
  t.equal(h.fake.sets.get(CIP)!.spec.maxelem, undefined, 'created as kube-proxy creates it')

  // Two more: 5 no longer fit in 4. The incremental sync replaces the set.
  h.put(svc('s4', { clusterIP: ip(4) }), slice('s4-1', 's4', ['10.0.0.1']))
  h.put(svc('s5', { clusterIP: ip(5), type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('s5-1', 's5', ['10.0.0.1']))
  r = await h.sync()
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes('ipset'), [`replaceMembers ${CIP} 5 maxelem 65536`, `replaceMembers ${IPS} 5 maxelem 65536`, 'add KUBE-NODE-PORT-TCP 30080'],
    'a replace per full set (the VIPs too), no adds that would fail; a set with room gets its add')
  t.equal(h.fake.members(CIP)!.length, 5)
  t.equal(h.fake.sets.get(CIP)!.spec.maxelem, 65536)

  // Further adds go in as adds; a full resync finds nothing to do.
  h.put(svc('s6', { clusterIP: ip(6) }), slice('s6-1', 's6', ['10.0.0.1']))
  await h.sync()
  t.strictSame(h.fake.writes('ipset').sort(), [`add ${CIP} ${ip(6)},tcp:80`, `add ${IPS} ${ip(6)}`])
  r = await h.sync(true)
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes(), [], 'a full resync adopts the grown set')

  // A restart: the grown set is kept (create with the default maxelem would be refused: the kernel compares maxelem).
  const p2 = new IpvsProxier(h.fake)
  h.fake.clearCalls()
  r = await p2.sync(h.state, h.state.ports.keys())
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes(), [], 'nothing written')
  t.notOk(h.fake.calls.some((c) => c.detail === `create ${CIP}`), 'not even an idempotent create')
})

t.test('a full sync that starts past maxelem grows the set; a refused grow is reported and retried', async (t) => {
  const h = harness({}, new FakeDataplane({ nodeAddresses: NODE_ADDRESSES, defaultMaxelem: 2 }))
  for (let i = 1; i <= 3; i++) h.put(svc(`s${i}`, { clusterIP: `10.96.1.${i}` }), slice(`s${i}-1`, `s${i}`, ['10.0.0.1']))
  h.fake.refuse('ipset', `replaceMembers ${CIP}`)
  let r = await h.sync()
  t.match(r.errors, [{ op: 'ipset.replaceMembers', code: 'ENOMEM' }], 'the refusal, once: no per-entry HASH_FULL flood')
  t.equal(h.fake.members(CIP)!.length, 0, 'nothing half-applied')
  t.equal(h.proxier.synced, false)
  r = await h.sync()
  t.equal(r.full, true)
  t.strictSame(r.errors, [])
  t.equal(h.fake.members(CIP)!.length, 3)
  t.equal(h.fake.sets.get(CIP)!.spec.maxelem, 65536)
})

t.test('stale virtual servers: ours deleted, foreign and excluded ones left', async (t) => {
  const fake = new FakeDataplane({ nodeAddresses: NODE_ADDRESSES })
  // Left from a previous run: a VIP with its server, a node port on a node address.
  fake.bindAddress('kube-ipvs0', '10.96.9.9')
  fake.addForeignService({ protocol: 'tcp', address: '10.96.9.9', port: 80 }, ['10.9.0.1:80'])
  fake.addForeignService({ protocol: 'tcp', address: '192.168.1.10', port: 31999 }, ['10.9.0.1:80'])
  // Someone else's: an address that is no VIP and no node address; and one excluded.
  fake.addForeignService({ protocol: 'tcp', address: '172.16.0.1', port: 80 }, ['10.9.0.2:80'])
  fake.bindAddress('kube-ipvs0', '10.200.0.1')
  fake.addForeignService({ protocol: 'tcp', address: '10.200.0.1', port: 80 }, ['10.9.0.3:80'])
  fake.addForeignService({ protocol: 'udp', address: '10.1.0.5', port: 4789 })
  const h = harness({ excludeCIDRs: ['10.200.0.0/16', '10.1.0.5/32'] }, fake)
  h.put(svc('web'), slice('web-1', 'web', ['10.0.0.1']))
  const r = await h.sync()
  t.strictSame(r.errors, [])
  t.strictSame(
    h.fake.writes('ipvs').filter((w) => w.startsWith('deleteService')).sort(),
    ['deleteService tcp/10.96.9.9:80', 'deleteService tcp/192.168.1.10:31999'],
  )
  t.strictSame([...fake.services.keys()].sort(), ['tcp/10.200.0.1:80', 'tcp/10.96.0.10:80', 'tcp/172.16.0.1:80', 'udp/10.1.0.5:4789'])
  t.strictSame(fake.dests('tcp/172.16.0.1:80'), ['10.9.0.2:80 w1 masq'], 'the foreign server keeps its real servers')
  t.strictSame(fake.dests('tcp/10.200.0.1:80'), ['10.9.0.3:80 w1 masq'])
  t.notOk(fake.addressesOf('kube-ipvs0').includes('10.96.9.9'), 'the stale VIP is unbound')
})

t.test('node addresses come and go: node-port servers follow at the next full sync', async (t) => {
  const h = harness()
  h.put(svc('np', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('np-1', 'np', ['10.0.0.1']))
  await h.sync()
  h.fake.bindAddress('eth2', '172.20.0.1', ['permanent'])
  await h.sync(true)
  t.strictSame(h.fake.writes(), ['ipvs addService tcp/172.20.0.1:30080 rr', 'ipvs addDestination tcp/172.20.0.1:30080 10.0.0.1:8080 w1 masq'])
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10'], 'a node address is not a VIP')

  h.fake.removeAddress('eth2', '172.20.0.1')
  const r = await h.sync(true)
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes('ipvs'), ['deleteService tcp/172.20.0.1:30080'], 'the server on the address that went is ours to delete')
  t.strictSame([...h.fake.services.keys()].sort(), ['tcp/10.1.0.5:30080', 'tcp/10.96.0.10:80', 'tcp/192.168.1.10:30080'])
})

t.test('a refused deleteService is retried by the next sync, though its VIP is gone', async (t) => {
  const h = harness()
  h.put(svc('web'), svc('api', { clusterIP: '10.96.0.11' }), slice('web-1', 'web', ['10.0.0.1']), slice('api-1', 'api', ['10.0.1.1']))
  await h.sync()
  h.fake.refuse('ipvs', 'deleteService tcp/10.96.0.11:80')
  h.deleteService('api')
  let r = await h.sync()
  t.equal(r.errors.length, 1)
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10'], 'the VIP went in the same sync')
  t.ok(h.fake.services.has('tcp/10.96.0.11:80'), 'the server stayed')
  r = await h.sync()
  t.equal(r.full, true)
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes('ipvs'), ['deleteService tcp/10.96.0.11:80'])
  t.strictSame([...h.fake.services.keys()], ['tcp/10.96.0.10:80'])
})

t.test('dual stack: an inet and an inet6 proxier share kube-ipvs0 and stay out of each other\'s way', async (t) => {
  const fake = new FakeDataplane({ nodeAddresses: [...NODE_ADDRESSES!, { link: 'eth0', address: '2001:db8::10', prefix: 64 }, { link: 'eth0', address: 'fe80::1', prefix: 64, scope: 'link' }] })
  const h4 = harness({}, fake)
  const h6 = harness({ family: 'inet6' }, fake, fake.inet6View())
  const ds = svc('ds', { clusterIPs: ['10.96.0.10', 'fd00::10'], type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })
  const s4 = slice('ds-4', 'ds', [{ ip: '10.0.0.1', node: NODE }])
  const s6 = slice('ds-6', 'ds', [{ ip: 'fd00:1::1', node: NODE }], undefined, { addressType: 'IPv6' })
  for (const h of [h4, h6]) h.put(ds, s4, s6)
  const r4 = await h4.sync()
  const r6 = await h6.sync()
  t.strictSame([...r4.errors, ...r6.errors], [])
  t.strictSame([...fake.services.keys()].sort(), [
    'tcp/10.1.0.5:30080',
    'tcp/10.96.0.10:80',
    'tcp/192.168.1.10:30080',
    'tcp/[2001:db8::10]:30080',
    'tcp/[fd00::10]:80',
  ], 'no IPv6 node port on a link-local address')
  t.strictSame(fake.dests('tcp/[fd00::10]:80'), ['[fd00:1::1]:8080 w1 masq'])
  t.strictSame(fake.dests('tcp/10.96.0.10:80'), ['10.0.0.1:8080 w1 masq'])
  t.strictSame(fake.members('KUBE-6-CLUSTER-IP'), ['fd00::10,tcp:80'])
  t.strictSame(fake.members('KUBE-6-LOOP-BACK'), ['fd00:1::1,tcp:8080,fd00:1::1'])
  t.strictSame(fake.members('KUBE-6-NODE-PORT-TCP'), ['30080'])
  t.strictSame(fake.members(CIP), ['10.96.0.10,tcp:80'])
  t.ok(fake.addressRecord('kube-ipvs0', 'fd00::10')!.flags.includes('nodad'), 'an IPv6 VIP skips DAD')
  t.equal(fake.addressRecord('kube-ipvs0', 'fd00::10')!.prefix, 128)
  t.strictSame(fake.addressesOf('kube-ipvs0'), ['10.96.0.10', 'fd00::10'])
  t.equal(fake.heldTables6.get('nat')!.chains.size, 5, 'the inet6 proxier wrote ip6tables')
  t.ok(JSON.stringify([...fake.heldTables6.get('nat')!.chains]).includes('KUBE-6-LOOP-BACK'), 'with the KUBE-6- sets')

  // Each one's full resync leaves the other's objects alone.
  await h4.sync(true)
  await h6.sync(true)
  t.strictSame(fake.writes(), [])
  await h4.sync(true)
  t.strictSame(fake.writes(), [])

  // Cleanup, one family at a time, in either order: kube-ipvs0 goes with the last.
  const c6 = await h6.proxier.cleanup()
  t.equal(c6.link, false, 'the inet6 cleanup keeps kube-ipvs0 while IPv4 VIPs are on it')
  t.strictSame(fake.addressesOf('kube-ipvs0'), ['10.96.0.10'], 'with only the IPv4 VIP left')
  t.strictSame([...fake.services.keys()].sort(), ['tcp/10.1.0.5:30080', 'tcp/10.96.0.10:80', 'tcp/192.168.1.10:30080'], 'only IPv4 virtual servers left')
  const c4 = await h4.proxier.cleanup()
  t.equal(c4.link, true, 'the inet cleanup, last, removes kube-ipvs0')
  t.strictSame([...fake.services.keys()], [], 'and every virtual server is gone')
})

t.test('the fake kernel answers as the kernel does', async (t) => {
  const fake = new FakeDataplane()
  const svc80 = { protocol: 'tcp' as const, address: '10.96.0.1', port: 80 }
  const out = await fake.ipvs.batch([
    { op: 'addService', service: svc80 },
    { op: 'addService', service: svc80 },
    { op: 'addDestination', service: { ...svc80, port: 81 }, destination: { address: '10.0.0.1', port: 80 } },
    { op: 'deleteDestination', service: svc80, destination: { address: '10.0.0.1', port: 80 } },
    { op: 'addDestination', service: svc80, destination: { address: '10.0.0.1', port: 80 } },
    { op: 'updateDestination', service: svc80, destination: { address: '10.0.0.1', port: 80, weight: 0 } },
  ])
  t.strictSame(out.map((o) => (o.ok ? 'ok' : `${o.error.code} ${o.error.op} ${o.error.index}`)), [
    'ok',
    'EEXIST ipvs.addService 1',
    'ESRCH ipvs.addDestination 2',
    'ENOENT ipvs.deleteDestination 3',
    'ok',
    'ok',
  ])
  t.ok(!out[1]!.ok && out[1]!.error instanceof NetlinkError)
  t.strictSame(fake.dests('tcp/10.96.0.1:80'), ['10.0.0.1:80 w0 masq'])
  t.equal(fake.service('tcp/10.96.0.1:80')!.spec.scheduler, 'wlc', 'the kernel default scheduler')

  await fake.ipset.create({ name: 'S', type: 'hash:ip,port', family: 'inet', exist: true })
  await fake.ipset.create({ name: 'S', type: 'hash:ip,port', family: 'inet', exist: true })
  await t.rejects(fake.ipset.create({ name: 'S', type: 'hash:ip,port', family: 'inet' }), { code: 'EEXIST' })
  const e = { ip: '10.0.0.1', protocol: 'tcp', port: 80 }
  const adds = await fake.ipset.batch([{ op: 'add', set: 'S', entry: e }, { op: 'add', set: 'S', entry: e }, { op: 'add', set: 'S', entry: e, exist: true }, { op: 'del', set: 'T', entry: e }])
  t.strictSame(adds.map((o) => (o.ok ? 'ok' : o.error.code)), ['ok', 'IPSET_ERR_EXIST', 'ok', 'ENOENT'])
  await t.rejects(fake.ipset.batch([{ op: 'add', set: 'S', entry: { ip: '10.0.0.1' } }]), { name: 'ValidationError' }, 'an entry that does not fit the set type')
  await t.rejects(fake.ipset.batch([{ op: 'add', set: 'S', entry: { ip: 'fd00::1', protocol: 'tcp', port: 1 } }]), { name: 'ValidationError' }, 'an entry of the other family')
  const sync = await fake.ipset.syncMembers('S', [{ ip: '10.0.0.2', protocol: 'tcp', port: 80 }])
  t.strictSame({ ...sync, errors: sync.errors.length }, { added: 1, deleted: 1, unchanged: 0, errors: 0 })
  t.strictSame(fake.members('S'), ['10.0.0.2,tcp:80'])

  t.equal(await fake.rtnl.addDummy('d0', { exist: true }), true)
  t.equal(await fake.rtnl.addDummy('d0', { exist: true }), false)
  await t.rejects(fake.rtnl.addDummy('d0'), { code: 'EEXIST' })
  await t.rejects(fake.rtnl.listAddresses({ link: 'nope' }), { code: 'ENODEV' })
  const a = await fake.rtnl.batch([
    { op: 'addAddress', link: 'd0', address: '10.96.0.1', exist: true },
    { op: 'addAddress', link: 'd0', address: '10.96.0.1', exist: true },
    { op: 'addAddress', link: 'd0', address: '10.96.0.1' },
    { op: 'deleteAddress', link: 'd0', address: '10.96.0.2' },
    { op: 'deleteAddress', link: 'd0', address: '10.96.0.2', exist: true },
    { op: 'addAddress', link: 'nope', address: '10.96.0.3' },
  ])
  t.strictSame(a.map((o) => (o.ok ? (o.unchanged ? 'unchanged' : 'ok') : o.error.code)), ['ok', 'unchanged', 'EEXIST', 'EADDRNOTAVAIL', 'unchanged', 'ENODEV'])
  t.equal(await fake.rtnl.deleteLink('d0'), true)
  t.equal(await fake.rtnl.deleteLink('d0', { exist: true }), false)

  const spec = { chains: new Map([['C', [{ target: { target: 'ACCEPT' } }]]]), jumps: [{ chain: 'INPUT', rule: { target: { jump: 'C' } } }] } as any
  t.strictSame(await fake.tables.sync('filter', spec), { repaired: ['C', 'INPUT jump'], committed: true })
  t.strictSame(await fake.tables.sync('filter', spec), { repaired: [], committed: false })
  t.strictSame(await fake.tables.remove('filter', spec), { repaired: ['INPUT jump', 'C'], committed: true })
})

t.test('a kernel error: reported, not synced, the next sync is full and repairs', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-1', 'web', ['10.0.0.1']))
  await h.sync()
  h.fake.refuse('ipvs', 'addDestination tcp/10.96.0.10:80 10.0.0.2:8080')
  h.put(slice('web-1', 'web', ['10.0.0.1', '10.0.0.2', '10.0.0.3']))
  let r = await h.sync()
  t.equal(r.errors.length, 1)
  const e = r.errors[0] as NetlinkError
  t.ok(e instanceof NetlinkError)
  t.equal(e.code, 'ENOMEM')
  t.equal(e.op, 'ipvs.addDestination')
  t.equal(e.index, 0)
  t.equal(h.proxier.synced, false)
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.1:8080 w1 masq', '10.0.0.3:8080 w1 masq'], 'the other op went through')

  r = await h.sync()
  t.equal(r.full, true, 'a sync after an error is full')
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes('ipvs'), ['addDestination tcp/10.96.0.10:80 10.0.0.2:8080 w1 masq'])
  t.equal(r.repaired.ipvs, 1)
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.1:8080 w1 masq', '10.0.0.2:8080 w1 masq', '10.0.0.3:8080 w1 masq'])
  t.equal(h.proxier.synced, true)
})

t.test('a refused VIP or set member: reported, then repaired', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-1', 'web', ['10.0.0.1']))
  await h.sync()
  h.fake.refuse('rtnl', 'addAddress kube-ipvs0 10.96.0.11')
  h.fake.refuse('ipset', `add ${CIP} 10.96.0.11`)
  h.put(svc('api', { clusterIP: '10.96.0.11' }), slice('api-1', 'api', ['10.0.1.1']))
  let r = await h.sync()
  t.equal(r.errors.length, 2)
  t.strictSame(r.errors.map((e) => (e as NetlinkError).op).sort(), ['ipset.add', 'route.addAddress'])
  t.equal(h.proxier.synced, false)
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10'])
  r = await h.sync()
  t.equal(r.full, true)
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes().sort(), [`ipset add ${CIP} 10.96.0.11,tcp:80`, 'rtnl addAddress kube-ipvs0 10.96.0.11/32 noprefixroute'])
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), ['10.96.0.10', '10.96.0.11'])
})

t.test('an error in the first full sync: the next one completes it', async (t) => {
  const h = harness()
  h.fake.refuse('ipvs', 'addService')
  h.put(svc('web'), slice('web-1', 'web', ['10.0.0.1']))
  let r = await h.sync()
  t.equal(r.errors.length, 2, 'the service and, without it, its real server (ESRCH)')
  t.strictSame(r.errors.map((e) => (e as NetlinkError).code), ['ENOMEM', 'ESRCH'])
  t.equal(h.proxier.synced, false)
  r = await h.sync()
  t.strictSame(r.errors, [])
  t.strictSame(h.fake.writes('ipvs'), ['addService tcp/10.96.0.10:80 rr', 'addDestination tcp/10.96.0.10:80 10.0.0.1:8080 w1 masq'])
  t.equal(h.proxier.synced, true)
})

t.test('cleanup removes everything of ours and nothing else', async (t) => {
  const h = harness()
  h.put(
    svc('web'),
    svc('np', { clusterIP: '10.96.0.11', type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
    slice('web-1', 'web', ['10.0.0.1']),
    slice('np-1', 'np', ['10.0.1.1']),
  )
  await h.sync()
  h.fake.addForeignService({ protocol: 'tcp', address: '172.16.0.1', port: 80 }, ['10.9.0.2:80'])
  h.fake.clearCalls()
  const r = await h.proxier.cleanup()
  t.strictSame(r, { servers: 4, chains: 11, sets: SET_ROLES.length, link: true })
  t.strictSame([...h.fake.services.keys()], ['tcp/172.16.0.1:80'], 'the foreign server is left')
  t.strictSame(h.fake.writes('tables').map((w) => w.split(' ').slice(0, 2).join(' ')), ['remove nat', 'remove filter'])
  t.equal(h.fake.chains('nat')!.size, 0)
  t.equal(h.fake.chains('filter')!.size, 0)
  t.equal(h.fake.heldTables.get('nat')!.jumps.length + h.fake.heldTables.get('filter')!.jumps.length, 0, 'the jumps are gone too')
  t.equal(h.fake.sets.size, 0)
  t.notOk(h.fake.links.has('kube-ipvs0'))
  t.equal(h.proxier.synced, false)

  const again = await h.proxier.cleanup()
  t.strictSame(again, { servers: 0, chains: 0, sets: 0, link: false }, 'a second cleanup finds nothing')
})

t.test('UDP conntrack cleanup', async (t) => {
  const h = harness()
  const UDP_SVC = [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053 }]
  const UDP_EP = [{ name: 'dns', protocol: 'UDP', port: 5353 }]
  h.put(svc('dns', { type: 'NodePort', ports: UDP_SVC }), slice('dns-1', 'dns', ['10.0.0.1', '10.0.0.2'], UDP_EP))
  let r = await h.sync()
  t.strictSame(h.fake.conntrackDeletes, [
    { family: 'inet', protocol: 'udp', destination: '10.96.0.10', port: 53 },
    { family: 'inet', protocol: 'udp', port: 30053 },
  ], 'a UDP service that gets its first endpoints: blackholed entries go')
  t.equal(r.ops.conntrack, 2)

  h.fake.conntrackDeletes.length = 0
  h.put(slice('dns-1', 'dns', ['10.0.0.1'], UDP_EP))
  r = await h.sync()
  t.strictSame(h.fake.conntrackDeletes, [
    { family: 'inet', protocol: 'udp', destination: '10.96.0.10', port: 53, replySource: '10.0.0.2' },
    { family: 'inet', protocol: 'udp', port: 30053, replySource: '10.0.0.2' },
  ], 'a removed UDP endpoint: entries toward it go')

  h.fake.conntrackDeletes.length = 0
  h.put(slice('dns-1', 'dns', ['10.0.0.1', '10.0.0.3'], UDP_EP))
  await h.sync()
  t.strictSame(h.fake.conntrackDeletes, [], 'an added endpoint of an active service: nothing')

  h.deleteService('dns')
  await h.sync()
  t.strictSame(h.fake.conntrackDeletes, [{ family: 'inet', protocol: 'udp', destination: '10.96.0.10' }], 'a deleted UDP service: its cluster IP')
})

t.test('TCP changes make no conntrack work', async (t) => {
  const h = await draining()
  h.deleteService('web')
  await h.sync()
  t.strictSame(h.fake.conntrackDeletes, [])
})

t.test('setup: the sysctls of IPVS mode', async (t) => {
  const fake = new FakeDataplane()
  const p = new IpvsProxier(fake)
  const changed = await p.setup()
  t.strictSame(changed, ['net.ipv4.vs.conntrack', 'net.ipv4.vs.expire_nodest_conn', 'net.ipv4.vs.expire_quiescent_template', 'net.ipv4.ip_forward'])
  t.strictSame(Object.fromEntries(fake.sysctls), {
    'net.ipv4.vs.conntrack': 1,
    'net.ipv4.vs.expire_nodest_conn': 1,
    'net.ipv4.vs.expire_quiescent_template': 1,
    'net.ipv4.ip_forward': 1,
  }, 'no ARP settings without strictARP')
  t.equal(fake.timeouts, undefined, 'IPVS timeouts left alone')
  t.strictSame(await p.setup(), [], 'a second setup changes nothing')

  const fake2 = new FakeDataplane()
  await new IpvsProxier(fake2, { strictARP: true, timeouts: { tcp: 900, tcpFin: 0, udp: 0 } }).setup()
  t.equal(fake2.sysctls.get('net/ipv4/conf/all/arp_ignore'), 1)
  t.equal(fake2.sysctls.get('net/ipv4/conf/all/arp_announce'), 2)
  t.strictSame(fake2.timeouts, { tcp: 900, tcpFin: 0, udp: 0 })
})

// ---- the sync runner -------------------------------------------------------------------------

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms))

t.test('SyncRunner: many requests before a run make one run', async (t) => {
  const runs: boolean[] = []
  const runner = new SyncRunner({ run: async (full) => void runs.push(full), minInterval: 0, maxInterval: 60_000 })
  for (let i = 0; i < 10; i++) runner.request()
  runner.request(true)
  await runner.idle()
  t.strictSame(runs, [true], 'one run, full because one request asked for it')
  runner.request()
  await runner.idle()
  t.strictSame(runs, [true, false])
  await runner.stop()
})

t.test('SyncRunner: requests during a run make one more run after it', async (t) => {
  const runs: number[] = []
  let release!: () => void
  let active = 0
  let overlap = false
  const runner = new SyncRunner({
    run: async () => {
      if (active++) overlap = true
      runs.push(runs.length)
      if (runs.length === 1) await new Promise<void>((r) => (release = r))
      active--
    },
    minInterval: 0,
    maxInterval: 60_000,
  })
  runner.request()
  await tick(5)
  t.equal(runs.length, 1, 'the first run started')
  for (let i = 0; i < 5; i++) runner.request()
  await tick(5)
  t.equal(runs.length, 1, 'no second run while the first runs')
  release()
  await runner.idle()
  t.equal(runs.length, 2)
  t.notOk(overlap, 'runs never overlap')
  await runner.stop()
})

t.test('SyncRunner: a burst, then minInterval spacing', async (t) => {
  let now = 0
  const runs: number[] = []
  const runner = new SyncRunner({ run: async () => void runs.push(now), minInterval: 30, maxInterval: 60_000, burst: 2, now: () => now })
  runner.request()
  await runner.idle()
  runner.request()
  await runner.idle()
  t.strictSame(runs, [0, 0], 'two back to back (the burst)')
  runner.request()
  await tick(100)
  t.equal(runs.length, 2, 'the third waits: no token until minInterval has passed on the clock')
  now = 30
  await runner.idle()
  t.strictSame(runs, [0, 0, 30], 'it runs once the interval has passed')
  runner.request()
  await tick(100)
  t.equal(runs.length, 3, 'and the next waits again')
  now = 60
  await runner.idle()
  t.strictSame(runs, [0, 0, 30, 60])
  await runner.stop()
})

t.test('SyncRunner: a thrown run is retried, as a full one', async (t) => {
  const runs: boolean[] = []
  const errors: unknown[] = []
  const runner = new SyncRunner({
    run: async (full) => {
      runs.push(full)
      if (runs.length === 1) throw new Error('boom')
    },
    minInterval: 0,
    maxInterval: 60_000,
    onError: (e) => errors.push(e),
  })
  runner.request()
  await runner.idle()
  t.strictSame(runs, [false, true], 'the retry is full')
  t.equal(errors.length, 1)
  t.equal((errors[0] as Error).message, 'boom')
  await runner.stop()
})

t.test('SyncRunner: stop() ends it; later requests do nothing', async (t) => {
  const runs: boolean[] = []
  const runner = new SyncRunner({ run: async (full) => void runs.push(full), minInterval: 0, maxInterval: 60_000 })
  await runner.stop()
  runner.request()
  await tick(20)
  t.strictSame(runs, [])
})

t.test('SyncRunner: the periodic full resync', async (t) => {
  const runs: boolean[] = []
  const runner = new SyncRunner({ run: async (full) => void runs.push(full), minInterval: 0, maxInterval: 20 })
  runner.start()
  await tick(75)
  await runner.stop()
  t.ok(runs.length >= 2, `periodic runs happened (${runs.length})`)
  t.ok(runs.every((f) => f), 'every periodic run is full')
})

t.test('SyncRunner: a full sync longer than the period is not followed by another straight away', async (t) => {
  // 30k services on a loaded node: a full sync of 79 s against the 30 s syncPeriod. The next
  // periodic resync counts from the end of the last full one (kube-proxy resets its timer after
  // each run), so the daemon is not left running full syncs back to back (nor start() waiting).
  const runs: boolean[] = []
  let release!: () => void
  const runner = new SyncRunner({
    run: async (full) => {
      runs.push(full)
      if (runs.length === 1) await new Promise<void>((r) => (release = r))
    },
    minInterval: 0,
    maxInterval: 20,
  })
  runner.request(true)
  runner.start()
  await tick(5)
  t.strictSame(runs, [true], 'the first full sync runs')
  await tick(100) // five periods pass while it runs
  release()
  await runner.idle()
  t.strictSame(runs, [true], 'idle once it ends: no periodic resync was queued behind it')
  await tick(100)
  t.ok(runs.length >= 2 && runs.every((f) => f), `and the periodic resync resumes after it (${runs.length} runs)`)
  await runner.stop()
})

t.test('set names: kube-proxy\'s, unique across both families, within ipset\'s 31 characters', async (t) => {
  const names = [...SET_ROLES.map((r) => setName(r, 'inet')), ...SET_ROLES.map((r) => setName(r, 'inet6'))]
  t.equal(new Set(names).size, names.length, 'no two sets share a name')
  t.same(names.filter((n) => n.length > 31), [], 'none longer than 31')
  t.equal(setName('loadBalancerSourceCIDR', 'inet6'), 'KUBE-6-LOAD-BALANCER-SOURCE-CID', 'cut as kube-proxy cuts it')
  t.equal(setName('loopBack', 'inet6'), 'KUBE-6-LOOP-BACK')
})

// ---- two services on one virtual server --------------------------------------------------

const svcAt = (name: string, spec: Json, status: Json = {}, created?: string): ServiceObject =>
  service(name, spec, { clusterIP: null, status, ...(created ? { meta: { creationTimestamp: created } } : {}) })

type Objs = (ServiceObject | EndpointSlice)[]

/** The kernel of a fresh proxier that only ever saw `objs` (drained). */
async function reference(objs: Objs) {
  const h = harness()
  h.put(...objs)
  await h.sync()
  await h.proxier.drain()
  return snapshot(h.fake)
}

interface ConflictCase {
  what: string
  /** The owner (ns/a ranks before ns/b) and the other claimant. */
  a: Objs
  b: Objs
  /** b without the contested address: what of b the kernel holds while a owns it. */
  bRest: Objs
  server: string
}

const lbStatus = (ip: string) => ({ loadBalancer: { ingress: [{ ip }] } })
const CONFLICTS: ConflictCase[] = [
  {
    what: 'the same cluster IP:port',
    a: [svcAt('a', { clusterIP: '10.96.0.10' }), slice('a-1', 'a', ['10.0.0.1', '10.0.0.2'])],
    b: [svcAt('b', { clusterIP: '10.96.0.10', sessionAffinity: 'ClientIP' }), slice('b-1', 'b', ['10.0.0.3', '10.0.0.4'])],
    bRest: [],
    server: 'tcp/10.96.0.10:80',
  },
  {
    what: 'a shared external IP:port',
    a: [svcAt('a', { clusterIP: '10.96.0.10', externalIPs: ['203.0.113.7'] }), slice('a-1', 'a', ['10.0.0.1'])],
    b: [svcAt('b', { clusterIP: '10.96.0.11', externalIPs: ['203.0.113.7'], externalTrafficPolicy: 'Local' }), slice('b-1', 'b', ['10.0.0.3', { ip: '10.0.0.4', node: NODE }])],
    bRest: [svcAt('b', { clusterIP: '10.96.0.11' }), slice('b-1', 'b', ['10.0.0.3', { ip: '10.0.0.4', node: NODE }])],
    server: 'tcp/203.0.113.7:80',
  },
  {
    what: 'a shared load-balancer ingress IP:port',
    a: [svcAt('a', { type: 'LoadBalancer', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }, lbStatus('198.51.100.5')), slice('a-1', 'a', ['10.0.0.1'])],
    b: [
      svcAt('b', { type: 'LoadBalancer', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30081 }], loadBalancerSourceRanges: ['10.0.0.0/8'] }, lbStatus('198.51.100.5')),
      slice('b-1', 'b', ['10.0.0.3']),
    ],
    bRest: [svcAt('b', { type: 'LoadBalancer', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30081 }], loadBalancerSourceRanges: ['10.0.0.0/8'] }), slice('b-1', 'b', ['10.0.0.3'])],
    server: 'tcp/198.51.100.5:80',
  },
  {
    what: 'the same node port',
    a: [svcAt('a', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('a-1', 'a', ['10.0.0.1'])],
    b: [svcAt('b', { type: 'NodePort', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30080 }], externalTrafficPolicy: 'Local' }), slice('b-1', 'b', ['10.0.0.3', { ip: '10.0.0.4', node: NODE }])],
    bRest: [svcAt('b', { clusterIP: '10.96.0.11' }), slice('b-1', 'b', ['10.0.0.3', { ip: '10.0.0.4', node: NODE }])],
    server: 'tcp/192.168.1.10:30080',
  },
  {
    what: 'one\'s cluster IP:port, the other\'s external IP:port',
    a: [svcAt('a', { clusterIP: '10.96.0.10' }), slice('a-1', 'a', ['10.0.0.1'])],
    b: [svcAt('b', { clusterIP: '10.96.0.11', externalIPs: ['10.96.0.10'] }), slice('b-1', 'b', ['10.0.0.3'])],
    bRest: [svcAt('b', { clusterIP: '10.96.0.11' }), slice('b-1', 'b', ['10.0.0.3'])],
    server: 'tcp/10.96.0.10:80',
  },
]

for (const c of CONFLICTS) {
  t.test(`two services on ${c.what}: one owner whatever the order, the other takes over when it goes`, async (t) => {
    const onlyA = await reference(c.a)
    const onlyB = await reference(c.b)
    const both = await reference([...c.a, ...c.bRest])
    t.notSame(onlyA.ipvs[c.server], onlyB.ipvs[c.server], 'the two services ask different things of the contested server')
    for (const order of ['a then b', 'b then a', 'together'] as const) {
      const warnings: Json[] = []
      const h = harness({ log: (level, msg, fields) => void (level === 'warn' && warnings.push({ msg, ...fields })) })
      if (order === 'a then b') (h.put(...c.a), await h.sync(), h.put(...c.b))
      else if (order === 'b then a') (h.put(...c.b), await h.sync(), h.put(...c.a))
      else h.put(...c.a, ...c.b)
      let r = await h.sync()
      t.strictSame(r.errors, [], `${order}: no kernel error`)
      await h.proxier.drain()
      t.strictSame(snapshot(h.fake), both, `${order}: a owns ${c.server}; b keeps only what does not collide`)
      t.equal(r.conflicts, 1, `${order}: the conflict is counted`)
      t.equal(warnings.length, 1, `${order}: and logged once`)
      t.match(warnings[0], { msg: 'services conflict: the same virtual server', owner: 'ns/a:http/TCP', ignored: ['ns/b:http/TCP'] })
      t.ok(warnings[0]?.servers.includes(c.server), `${order}: the warning names ${c.server}`)
      r = await h.sync(true)
      t.strictSame(h.fake.writes(), [], `${order}: a full resync agrees`)
      t.equal(warnings.length, 1, `${order}: not logged again`)

      // A restart adopts the same state.
      const again = harness({}, h.fake)
      again.put(...(order === 'b then a' ? [...c.b, ...c.a] : [...c.a, ...c.b]))
      await again.sync()
      t.strictSame(h.fake.writes(), [], `${order}: a new proxier writes nothing`)

      h.deleteService('a')
      h.deleteSlice('a-1')
      r = await h.sync()
      t.equal(r.full, false)
      t.equal(r.conflicts, 0, `${order}: no conflict left`)
      await h.proxier.drain()
      t.strictSame(snapshot(h.fake), onlyB, `${order}: a deleted: the kernel is as if only b had ever existed (incremental)`)
      await h.sync(true)
      t.strictSame(h.fake.writes(), [], `${order}: and a full resync finds nothing to change`)

      h.put(...c.a)
      await h.sync()
      await h.proxier.drain()
      t.strictSame(snapshot(h.fake), both, `${order}: a back: it owns ${c.server} again`)
      h.deleteService('b')
      h.deleteSlice('b-1')
      await h.sync(true)
      await h.proxier.drain()
      t.strictSame(snapshot(h.fake), onlyA, `${order}: b deleted: as if only a had ever existed (full resync)`)
    }
  })
}

t.test('the owner is the oldest service (creationTimestamp), then namespace/name', async (t) => {
  const older = '2024-01-01T00:00:00Z'
  const newer = '2024-06-01T00:00:00Z'
  const a = (created?: string) => [svcAt('a', { clusterIP: '10.96.0.10' }, {}, created), slice('a-1', 'a', ['10.0.0.1'])]
  const b = (created?: string) => [svcAt('b', { clusterIP: '10.96.0.10' }, {}, created), slice('b-1', 'b', ['10.0.0.2'])]
  const owner = async (objs: Objs) => {
    const h = harness()
    h.put(...objs)
    await h.sync()
    return h.fake.dests('tcp/10.96.0.10:80')
  }
  const A = ['10.0.0.1:8080 w1 masq']
  const B = ['10.0.0.2:8080 w1 masq']
  t.strictSame(await owner([...a(newer), ...b(older)]), B, 'b is older: b owns')
  t.strictSame(await owner([...b(older), ...a(newer)]), B, 'in either order')
  t.strictSame(await owner([...a(older), ...b(newer)]), A)
  t.strictSame(await owner([...a(older), ...b(older)]), A, 'the same age: by name')
  t.strictSame(await owner([...a(), ...b(older)]), B, 'no timestamp (a manifest) ranks after any timestamp')

  // The owner recreated: younger now, it loses the server to the other.
  const h = harness()
  h.put(...a(older), ...b(newer))
  await h.sync()
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), A)
  h.put(svcAt('a', { clusterIP: '10.96.0.10' }, {}, '2025-01-01T00:00:00Z'))
  await h.sync()
  await h.proxier.drain()
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), B)
  t.throws(() => svcAt('c', { clusterIP: '10.96.0.12' }, {}, 'yesterday'), { name: 'ValidationError', message: /metadata\.creationTimestamp/ })
})

t.test('a contested server: endpoint changes of the loser write nothing; of the owner, what they change', async (t) => {
  const h = harness()
  h.put(svcAt('a', { clusterIP: '10.96.0.10' }), slice('a-1', 'a', ['10.0.0.1']), svcAt('b', { clusterIP: '10.96.0.10' }), slice('b-1', 'b', ['10.0.0.2']))
  await h.sync()
  h.put(slice('b-1', 'b', ['10.0.0.2', '10.0.0.3']))
  let r = await h.sync()
  t.strictSame(h.fake.writes(), [], 'the loser\'s endpoints reach no kernel object')
  t.equal(r.conflicts, 1)
  const st = await h.proxier.status()
  t.strictSame(st.map((s) => [s.servicePort, s.ignored]), [['ns/a:http/TCP', ['ns/b:http/TCP']]], 'status: the owner, and who else asks for its VIP')
  h.put(slice('a-1', 'a', ['10.0.0.1', '10.0.0.9']))
  r = await h.sync()
  t.strictSame(h.fake.writes(), ['ipvs addDestination tcp/10.96.0.10:80 10.0.0.9:8080 w1 masq'])
  t.equal(r.ports, 1)
})

t.test('three services on one VIP: ownership passes down the ranks; the end of the conflict is logged', async (t) => {
  const logs: Json[] = []
  const h = harness({ log: (level, msg, fields) => void (level !== 'debug' && msg.startsWith('services conflict') && logs.push({ level, msg, ...fields })) })
  const three = ['a', 'b', 'c']
  for (const n of [...three].reverse()) h.put(svcAt(n, { clusterIP: '10.96.0.10' }), slice(`${n}-1`, n, [`10.0.0.${n.charCodeAt(0) - 96}`]))
  let r = await h.sync()
  t.equal(r.conflicts, 2, 'b and c are each left without the VIP')
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.1:8080 w1 masq'])
  t.match(logs.at(-1), { level: 'warn', owner: 'ns/a:http/TCP', ignored: ['ns/b:http/TCP', 'ns/c:http/TCP'] })
  const n = logs.length
  h.deleteService('a')
  r = await h.sync()
  await h.proxier.drain()
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.2:8080 w1 masq'], 'b next')
  t.equal(r.conflicts, 1)
  t.match(logs.slice(n), [{ level: 'warn', owner: 'ns/b:http/TCP', ignored: ['ns/c:http/TCP'] }])
  h.deleteService('b')
  r = await h.sync()
  await h.proxier.drain()
  t.strictSame(h.fake.dests('tcp/10.96.0.10:80'), ['10.0.0.3:8080 w1 masq'], 'then c')
  t.equal(r.conflicts, 0)
  t.match(logs.at(-1), { level: 'info', msg: 'services conflict ended', servers: ['tcp/10.96.0.10:80'], owner: 'ns/c:http/TCP' })
  t.equal(logs.length, n + 2, 'one line per change')
  h.deleteService('c')
  await h.sync()
  t.equal(h.fake.services.size, 0)
  t.strictSame(nonEmptySets(h.fake), {}, 'nothing left')
  t.strictSame(h.fake.addressesOf('kube-ipvs0'), [])
})
