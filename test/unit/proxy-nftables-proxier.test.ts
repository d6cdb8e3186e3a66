// lib/proxy/nftables (kube-proxy's nftables mode) on the host: chain names as
// kube-proxy hashes them, what one service port asks for (desired.ts), and the
// proxier's transactions on an in-memory nf_tables (test/support/fake-nftables.ts):
// the first sync, no-op syncs, the edits of a partial sync, adoption on start,
// drift repair, a refused commit, cleanup.
import t from 'tap'
import { NftablesProxier, type NftablesProxierOptions } from '../../dist/proxy/nftables/proxier.js'
import { desiredOf, endpointChain, hashAndTruncate, portChains } from '../../dist/proxy/nftables/desired.js'
import { endpointsOf, servicePortsOf, type EndpointSlice, type ServiceObject } from '../../dist/proxy/model/index.js'
import { NetlinkError } from '../../dist/errors.js'
import { nftData as d } from '../../dist/index.js'
import { FakeNftables, describe } from '../support/fake-nftables.js'
import { service as serviceOf, slice as sliceOf, type Ep, type Json } from '../support/builders.js'

const NODE = 'node-a'
const nginx = (spec: Json = {}) => serviceOf('nginx-basic', { ports: [{ name: 'http', port: 80 }], ...spec }, { namespace: 'default', clusterIP: '10.105.250.129' })
const eps = (ips: (string | Ep)[], name = 'nginx-basic') => sliceOf(`${name}-abc`, name, ips, [{ name: 'http', port: 80 }], { namespace: 'default' })
const NGINX_EPS = ['192.168.0.7', '192.168.1.3', '192.168.1.4']

function stateOf(services: ServiceObject[], slices: EndpointSlice[]) {
  const ports = new Map()
  for (const s of services) for (const [k, p] of servicePortsOf(s)) ports.set(k, p)
  const byPort = endpointsOf(slices, NODE)
  return { ports, endpoints: (k: string) => byPort.get(k) ?? [] }
}

function setup(o: NftablesProxierOptions = {}) {
  const fake = new FakeNftables()
  const p = new NftablesProxier(fake, { clusterCIDR: '192.168.0.0/16', ...o })
  return { fake, p }
}

const text = (b: Uint8Array) => Buffer.from(b).toString('hex')
const svcKey = (ip: string, port: number, proto = 'tcp') => text(d.concat(d.ipv4(ip), d.proto(proto as 'tcp'), d.port(port)))

t.test("chain names are kube-proxy's", async (t) => {
  // From kube-proxy's nftables proxier_test.go goldens.
  t.equal(hashAndTruncate('ns1/svc1/tcp/p80'), 'ULMVA6XW-ns1/svc1/tcp/p80')
  t.equal(hashAndTruncate('ns1/svc1/tcp/p80__10.180.0.1/80'), '5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80')
  const [port] = [...servicePortsOf(nginx()).values()]
  t.equal(portChains(port!).svc, `service-${hashAndTruncate('default/nginx-basic/tcp/http')}`)
  const v6 = sliceOf('nginx-basic-v6', 'nginx-basic', ['fd00::7'], [{ name: 'http', port: 80 }], { namespace: 'default', addressType: 'IPv6' })
  const [ep] = endpointsOf([v6], NODE).get(port!.key) ?? []
  t.equal(endpointChain(port!, ep!), `endpoint-${hashAndTruncate('default/nginx-basic/tcp/http__fd00..7/80')}`, 'IPv6 colons become dots')
  t.ok(hashAndTruncate('x'.repeat(300)).endsWith('...') && hashAndTruncate('x'.repeat(300)).length === 240, 'truncated to 240 with "..."')
})

t.test('what one port asks for: elements and chains', async (t) => {
  const [port] = [...servicePortsOf(nginx({ type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })).values()]
  const all = endpointsOf([eps(NGINX_EPS)], NODE).get(port!.key)!
  const w = desiredOf(port!, all, { family: 'inet', masqueradeAll: false, clusterCIDR: '192.168.0.0/16' })
  const names = portChains(port!)
  t.same(
    w.elements.map((e) => [e.set, e.verdict?.verdict ?? '', e.verdict?.chain ?? '']),
    [
      ['cluster-ips', '', ''],
      ['service-ips', 'goto', names.svc],
      ['service-nodeports', 'goto', names.ext],
    ],
  )
  t.same([...w.chains.keys()].filter((c) => !c.startsWith('endpoint-')), [names.svc, names.ext], 'the service and external chains')
  t.equal([...w.chains.keys()].filter((c) => c.startsWith('endpoint-')).length, 3, 'an endpoint chain each')
  const svc = w.chains.get(names.svc)!
  t.equal(svc.length, 2, 'masquerade off-cluster traffic, then numgen')
  t.same(svc[1]!.exprs[0], { type: 'numgen', mode: 'random', modulus: 3, dreg: 1 })
  t.same(svc[1]!.anon!.elements.map((e) => e.verdict!.chain), all.map((e) => endpointChain(port!, e)))
  const ext = w.chains.get(names.ext)!
  t.same(ext.map((r) => r.exprs.at(-1)), [{ type: 'verdict', verdict: 'jump', chain: 'mark-for-masquerade' }, { type: 'verdict', verdict: 'goto', chain: names.svc }])
  // Without endpoints: reject through the no-endpoint maps, no chains.
  const none = desiredOf(port!, [], { family: 'inet', masqueradeAll: false, clusterCIDR: '' })
  t.same(
    none.elements.map((e) => [e.set, e.verdict?.chain ?? '', e.comment ?? '']),
    [
      ['cluster-ips', '', ''],
      ['no-endpoint-services', 'reject-chain', 'default/nginx-basic:http'],
      ['no-endpoint-nodeports', 'reject-chain', 'default/nginx-basic:http'],
    ],
  )
  t.equal(none.chains.size, 0)
  // masqueradeAll: the masquerade rule without the source match; no CIDR and not all: none.
  t.equal(desiredOf(port!, all, { family: 'inet', masqueradeAll: true, clusterCIDR: '' }).chains.get(names.svc)!.length, 2)
  t.equal(desiredOf(port!, all, { family: 'inet', masqueradeAll: false, clusterCIDR: '' }).chains.get(names.svc)!.length, 1)
})

t.test('first sync: the whole table in one transaction; then nothing to do', async (t) => {
  const { fake, p } = setup()
  const st = stateOf([nginx()], [eps(NGINX_EPS)])
  const r = await p.sync(st, st.ports.keys())
  t.same(r.errors, [])
  t.equal(fake.commits.length, 1, 'one transaction')
  const [port] = [...st.ports.values()]
  const names = portChains(port!)
  t.same([...fake.set('ip', 'service-ips')!.entries()].map(([k, e]) => [k, e.verdict]), [[svcKey('10.105.250.129', 80), { verdict: 'goto', chain: names.svc }]])
  t.same([...fake.set('ip', 'cluster-ips')!.keys()], [text(d.ipv4('10.105.250.129'))])
  t.equal(fake.chain('ip', names.svc)!.length, 2)
  for (const c of ['filter-prerouting', 'filter-input', 'filter-forward', 'filter-output', 'filter-output-post-dnat', 'nat-prerouting', 'nat-output', 'nat-postrouting'])
    t.ok(fake.tables.get('ip kube-proxy')!.chains.get(c)!.base, `${c} is a base chain`)
  t.equal(p.elements, 2)
  t.ok(p.synced)

  const again = await p.sync(st, st.ports.keys())
  t.equal(fake.commits.length, 1, 'a partial sync without a change writes nothing')
  t.equal(again.ops.nftables, undefined)
  const full = await p.sync(st, [], { full: true })
  t.equal(fake.commits.length, 1, 'a full sync that finds the table as it should be writes nothing')
  t.equal(full.repaired.nftables, undefined)
})

t.test('a partial sync sends only what the change touches', async (t) => {
  const { fake, p } = setup()
  const st = stateOf([nginx()], [eps(NGINX_EPS)])
  await p.sync(st, st.ports.keys())
  const [port] = [...st.ports.values()]
  const names = portChains(port!)
  const gone = endpointChain(port!, st.endpoints(port!.key).find((e) => e.ip === '192.168.1.4')!)
  // One endpoint removed.
  const st2 = stateOf([nginx()], [eps(NGINX_EPS.slice(0, 2))])
  const r = await p.sync(st2, st2.ports.keys())
  t.same(r.errors, [])
  t.same(fake.commits.at(-1)!.map(describe), [`flushChain ${names.svc}`, `flushChain ${gone}`, 'addRule ' + names.svc, 'addSet __map%d', 'addElements __map%d 2', 'addRule ' + names.svc, `deleteChain ${gone}`])
  t.equal(fake.chain('ip', gone), undefined, 'its chain is gone')
  // Every endpoint removed: the element moves to no-endpoint-services, the chains go.
  const st3 = stateOf([nginx()], [])
  await p.sync(st3, st3.ports.keys())
  t.same([...fake.set('ip', 'service-ips')!.keys()], [])
  t.same([...fake.set('ip', 'no-endpoint-services')!.values()].map((e) => [e.verdict, e.comment]), [[{ verdict: 'goto', chain: 'reject-chain' }, 'default/nginx-basic:http']])
  t.same([...fake.tables.get('ip kube-proxy')!.chains.keys()].filter((c) => c.includes('/')), [], 'no service chain left')
  t.same(fake.commits.at(-1)!.filter((e) => e.op === 'addElements' || e.op === 'deleteElements').map(describe), ['deleteElements service-ips 1', 'addElements no-endpoint-services 1'], 'cluster-ips untouched')
  // The service deleted: everything of it goes.
  const st4 = stateOf([], [])
  await p.sync(st4, [port!.key])
  t.same([...fake.set('ip', 'cluster-ips')!.keys()], [])
  t.same([...fake.set('ip', 'no-endpoint-services')!.keys()], [])
  t.equal(p.elements, 0)
  await p.sync(st4, [], { full: true })
  t.equal(fake.commits.length, 4, 'and a full sync agrees')
})

t.test('two ports of one service share their cluster IP in cluster-ips', async (t) => {
  const { fake, p } = setup()
  const two = nginx({ ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] })
  const sl = sliceOf('nginx-basic-abc', 'nginx-basic', NGINX_EPS, [{ name: 'http', port: 80 }, { name: 'https', port: 443 }], { namespace: 'default' })
  const st = stateOf([two], [sl])
  await p.sync(st, st.ports.keys())
  t.equal(fake.set('ip', 'cluster-ips')!.size, 1)
  t.equal(fake.set('ip', 'service-ips')!.size, 2)
  const one = stateOf([nginx()], [eps(NGINX_EPS)])
  await p.sync(one, st.ports.keys())
  t.equal(fake.set('ip', 'cluster-ips')!.size, 1, 'the cluster IP stays while a port asks for it')
  t.equal(fake.set('ip', 'service-ips')!.size, 1)
})

t.test('NodePort: service-nodeports and the external chain; nodePortAddresses', async (t) => {
  const { fake, p } = setup({ nodePortAddresses: ['10.0.0.0/8'] })
  fake.addresses = [
    { family: 'inet', address: '10.0.0.5', prefixLen: 8, index: 2 },
    { family: 'inet', address: '172.16.0.1', prefixLen: 16, index: 3 },
  ]
  const st = stateOf([nginx({ type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })], [eps(NGINX_EPS)])
  await p.sync(st, st.ports.keys())
  const [port] = [...st.ports.values()]
  t.same([...fake.set('ip', 'service-nodeports')!.values()].map((e) => e.verdict), [{ verdict: 'goto', chain: portChains(port!).ext }])
  t.same([...fake.set('ip', 'nodeport-ips')!.keys()], [text(d.ipv4('10.0.0.5'))], 'only the node addresses in nodePortAddresses')
  t.ok(fake.chain('ip', 'services')![1]!.expressions.some((x) => x.type === 'lookup' && x.set === 'nodeport-ips'), 'services matches @nodeport-ips')
})

t.test('a restart adopts the table with zero writes; drift is repaired', async (t) => {
  const { fake, p } = setup()
  const st = stateOf([nginx({ type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })], [eps(NGINX_EPS)])
  await p.sync(st, st.ports.keys())
  const p2 = new NftablesProxier(fake, { clusterCIDR: '192.168.0.0/16' })
  const r = await p2.sync(st, st.ports.keys())
  t.ok(r.full)
  t.equal(fake.commits.length, 1, 'no write on adoption')
  t.ok(p2.synced)
  // Drift: an element deleted, a chain emptied, a stale chain of ours added.
  const tbl = fake.tables.get('ip kube-proxy')!
  tbl.sets.get('service-ips')!.elements.clear()
  const [port] = [...st.ports.values()]
  tbl.chains.get(portChains(port!).svc)!.rules = []
  tbl.chains.set('service-XXXXXXXX-ns/old/tcp/p', { family: 'ip', table: 'kube-proxy', name: 'service-XXXXXXXX-ns/old/tcp/p', rules: [] })
  const fix = await p2.sync(st, [], { full: true })
  t.same(fix.errors, [])
  t.equal(fix.repaired.nftables, 3, 'the element, the chain and the stale chain')
  t.equal(fake.set('ip', 'service-ips')!.size, 1)
  t.equal(fake.chain('ip', portChains(port!).svc)!.length, 2)
  t.notOk(fake.tables.get('ip kube-proxy')!.chains.has('service-XXXXXXXX-ns/old/tcp/p'), 'the stale chain is gone')
  const n = fake.commits.length
  await p2.sync(st, [], { full: true })
  t.equal(fake.commits.length, n, 'then nothing')
  // The table deleted: made again whole.
  fake.tables.clear()
  const whole = await p2.sync(st, [], { full: true })
  t.equal(whole.repaired.nftables, 1)
  t.equal(fake.set('ip', 'service-ips')!.size, 1)
})

t.test('a refused commit applies nothing, is reported, and the next full sync mends it', async (t) => {
  const { fake, p } = setup()
  const st = stateOf([nginx()], [eps(NGINX_EPS)])
  await p.sync(st, st.ports.keys())
  const before = JSON.stringify([...fake.tables.get('ip kube-proxy')!.chains.keys()])
  fake.failNext = new NetlinkError({ errno: 12, code: 'ENOMEM', op: 'nftables.commit', message: 'ENOMEM' })
  const st2 = stateOf([nginx()], [eps(NGINX_EPS.slice(0, 1))])
  const r = await p.sync(st2, st2.ports.keys())
  t.equal(r.errors.length, 1)
  t.equal(r.commitFailures.partial, 1)
  t.notOk(p.synced, 'asks for a full sync')
  t.equal(JSON.stringify([...fake.tables.get('ip kube-proxy')!.chains.keys()]), before, 'nothing applied')
  const fix = await p.sync(st2, [])
  t.ok(fix.full)
  t.same(fix.errors, [])
  const [port] = [...st2.ports.values()]
  t.equal(fake.chain('ip', portChains(port!).svc)![1]!.expressions[0]!.type, 'numgen')
  t.equal([...fake.tables.get('ip kube-proxy')!.chains.keys()].filter((c) => c.startsWith('endpoint-')).length, 1)
})

t.test('IPv6: table ip6 kube-proxy, ip6 addresses, dnat to ip6', async (t) => {
  const { fake, p } = setup({ family: 'inet6', clusterCIDR: 'fd00:10::/64' })
  const svc = serviceOf('web', { ipFamilies: ['IPv6'], ports: [{ name: 'http', port: 80 }] }, { namespace: 'default', clusterIP: 'fd00:96::10' })
  const sl = sliceOf('web-abc', 'web', ['fd00:10::7'], [{ name: 'http', port: 80 }], { namespace: 'default', addressType: 'IPv6' })
  const st = stateOf([svc], [sl])
  const r = await p.sync(st, st.ports.keys())
  t.same(r.errors, [])
  t.ok(fake.tables.has('ip6 kube-proxy'))
  t.notOk(fake.tables.has('ip kube-proxy'))
  const ep = [...fake.tables.get('ip6 kube-proxy')!.chains.keys()].find((c) => c.startsWith('endpoint-'))!
  t.match(ep, /__fd00.10..7\/80$/)
  const nat = fake.chain('ip6', ep)![1]!.expressions.find((x) => x.type === 'nat')
  t.match(nat, { nat: 'dnat', family: 'ip6' })
  t.equal(fake.chain('ip6', 'reject-chain')![0]!.expressions[0]!.type, 'reject')
})

t.test('cleanup removes the table and nothing else', async (t) => {
  const { fake, p } = setup()
  const st = stateOf([nginx()], [eps(NGINX_EPS)])
  await p.sync(st, st.ports.keys())
  fake.tables.set('ip other', { chains: new Map(), sets: new Map(), anon: 0 })
  t.same(await p.cleanup(), { tables: 1 })
  t.same([...fake.tables.keys()], ['ip other'])
  t.same(await p.cleanup(), { tables: 0 }, 'twice: nothing to do')
  t.notOk(p.synced)
})

t.test('cleanup on a kernel without nf_tables for the family: nothing to remove', async (t) => {
  const { fake, p } = setup()
  fake.listTable = async () => {
    throw new NetlinkError({ errno: 22, code: 'EINVAL', op: 'nftables.listTable', message: 'EINVAL' })
  }
  t.same(await p.cleanup(), { tables: 0 })
  fake.listTable = async () => {
    throw new NetlinkError({ errno: 1, code: 'EPERM', op: 'nftables.listTable', message: 'EPERM' })
  }
  await t.rejects(p.cleanup(), { code: 'EPERM' }, 'other refusals are errors')
})

t.test('ClientIP affinity: a dynamic set per endpoint, checked first, updated on the way', async (t) => {
  const { fake, p } = setup()
  const sticky = (timeoutSeconds: number) => nginx({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds } } })
  const st = stateOf([sticky(60)], [eps(NGINX_EPS)])
  const r = await p.sync(st, st.ports.keys())
  t.same(r.errors, [])
  const [port] = [...st.ports.values()]
  const names = portChains(port!)
  const sets = [...fake.tables.get('ip kube-proxy')!.sets.values()].filter((x) => x.name.startsWith('affinity-'))
  t.equal(sets.length, 3, 'one set per endpoint')
  t.same(sets.map((x) => [x.flags, x.timeout, x.key]), Array(3).fill([['dynamic', 'timeout'], 60_000, 'ipv4_addr']))
  const svc = fake.chain('ip', names.svc)!
  t.same(svc.slice(1, 4).map((x) => [x.expressions[1], x.expressions[2]]), st.endpoints(port!.key).map((e) => [
    { type: 'lookup', set: `affinity-${endpointChain(port!, e).slice(9)}`, sreg: 1 },
    { type: 'verdict', verdict: 'goto', chain: endpointChain(port!, e) },
  ]), 'ip saddr @affinity-X goto endpoint-X, for each endpoint, before numgen')
  const ep = fake.chain('ip', endpointChain(port!, st.endpoints(port!.key)[0]!))!
  t.same(ep[1]!.expressions[1], { type: 'dynset', set: `affinity-${endpointChain(port!, st.endpoints(port!.key)[0]!).slice(9)}`, op: 'update', sregKey: 1 }, 'update @affinity-X { ip saddr }')
  // Adopted by a new proxier without a write.
  const p2 = new NftablesProxier(fake, { clusterCIDR: '192.168.0.0/16' })
  await p2.sync(st, st.ports.keys())
  t.equal(fake.commits.length, 1)
  // A new timeout: the sets made again (their chains rewritten first).
  const st2 = stateOf([sticky(30)], [eps(NGINX_EPS)])
  const r2 = await p2.sync(st2, st2.ports.keys())
  t.same(r2.errors, [])
  t.same([...fake.tables.get('ip kube-proxy')!.sets.values()].filter((x) => x.name.startsWith('affinity-')).map((x) => x.timeout), [30_000, 30_000, 30_000])
  // A stale set found on a full sync is deleted; affinity off removes them all.
  const st3 = stateOf([nginx()], [eps(NGINX_EPS)])
  await p2.sync(st3, st3.ports.keys())
  t.same([...fake.tables.get('ip kube-proxy')!.sets.keys()].filter((x) => x.startsWith('affinity-')), [])
  fake.tables.get('ip kube-proxy')!.sets.set('affinity-XXXXXXXX-ns/old/tcp/p__10.0.0.1/80', { family: 'ip', table: 'kube-proxy', name: 'affinity-XXXXXXXX-ns/old/tcp/p__10.0.0.1/80', key: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeout: 1000, elements: new Map() })
  const fix = await p2.sync(st3, [], { full: true })
  t.equal(fix.repaired.nftables, 1)
  t.same([...fake.tables.get('ip kube-proxy')!.sets.keys()].filter((x) => x.startsWith('affinity-')), [])
})

t.test('LoadBalancer with source ranges and ETP Local: firewall chain, external short-circuits', async (t) => {
  const lb = serviceOf('lb', { type: 'LoadBalancer', externalIPs: ['198.51.100.7'], loadBalancerSourceRanges: ['203.0.113.0/24'], externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30090 }] }, { namespace: 'default', clusterIP: '10.96.0.20', status: { loadBalancer: { ingress: [{ ip: '198.51.100.10' }] } } })
  const sl = sliceOf('lb-abc', 'lb', [{ ip: '10.244.0.5', node: NODE }, { ip: '10.244.0.6', node: 'other' }], [{ name: 'http', port: 8080 }], { namespace: 'default' })
  const [port] = [...servicePortsOf(lb).values()]
  const all = endpointsOf([sl], NODE).get(port!.key)!
  const names = portChains(port!)
  const w = desiredOf(port!, all, { family: 'inet', masqueradeAll: false, clusterCIDR: '10.244.0.0/16', nodeIP: '203.0.113.5' })
  t.same(
    w.elements.map((e) => [e.set, e.verdict?.chain ?? '']),
    [
      ['cluster-ips', ''],
      ['service-ips', names.svc],
      ['service-ips', names.ext],
      ['service-ips', names.ext],
      ['firewall-ips', names.fw],
      ['service-nodeports', names.ext],
    ],
  )
  t.same(w.chains.get(names.ext)!.map((x) => x.comment ?? x.exprs.at(-1)), ['short-circuit pod traffic', 'masquerade local traffic', 'short-circuit local traffic', { type: 'verdict', verdict: 'goto', chain: names.local }])
  const fw = w.chains.get(names.fw)!
  t.equal(fw.length, 1)
  t.same(fw[0]!.exprs.at(-1), { type: 'verdict', verdict: 'drop' })
  t.equal(fw[0]!.anon!.elements.length, 4, 'the range and, the node being in it, the load-balancer IP: two intervals')
  t.equal(w.chains.get(names.local)![0]!.anon!.elements.length, 1, 'the local chain: the local endpoint only')
  // No local endpoint: external traffic dropped, counted.
  const none = desiredOf(port!, all.filter((e) => !e.isLocal), { family: 'inet', masqueradeAll: false, clusterCIDR: '10.244.0.0/16' })
  t.same(none.noLocalEndpoints, ['external'])
  t.same(none.elements.filter((e) => e.set.startsWith('no-endpoint')).map((e) => [e.set, e.verdict]), [
    ['no-endpoint-services', { verdict: 'drop' }],
    ['no-endpoint-services', { verdict: 'drop' }],
    ['no-endpoint-nodeports', { verdict: 'drop' }],
  ])
})
