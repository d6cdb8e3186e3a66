// lib/proxy/iptables (kube-proxy's iptables mode) on the host: the exact rules
// of a service port (rules.ts), and what the proxier asks of an in-memory
// nat/filter (test/support/fake-iptables.ts): first sync, no-op syncs, the
// edits of a partial sync, adoption on start, drift repair, failures, cleanup.
import t from 'tap'
import { IptablesProxier, ruleKey, type IptablesProxierOptions } from '../../dist/proxy/iptables/proxier.js'
import { chainHash, endpointChain, portChains } from '../../dist/proxy/iptables/tables.js'
import { desiredOf as portRules, probability } from '../../dist/proxy/iptables/desired.js'
import { endpointsOf, servicePortsOf, type EndpointSlice, type ServiceObject } from '../../dist/proxy/model/index.js'
import type { Rule } from '../../dist/iptables.js'
import { FakeIptables } from '../support/fake-iptables.js'
import { changeFeed, service as serviceOf, slice as sliceOf, type Ep, type Json } from '../support/builders.js'

const NODE = 'node-a'

const svc = (name: string, spec: Json = {}, status: Json = {}, namespace = 'ns'): ServiceObject => serviceOf(name, spec, { status, namespace })
const slice = (name: string, service: string, eps: (string | Ep)[], ports?: Json[], namespace = 'ns'): EndpointSlice => sliceOf(name, service, eps, ports, { namespace })

/** The rules of the one port of `service` with the endpoints of `slices`. */
function rulesOf(service: ServiceObject, slices: EndpointSlice[], ctx: Partial<Parameters<typeof portRules>[2]> = {}) {
  const [port] = [...servicePortsOf(service).values()]
  const eps = endpointsOf(slices, NODE).get(port!.key) ?? []
  return { port: port!, rules: portRules(port!, eps, { family: 'inet', masqueradeAll: false, clusterCIDR: '10.244.0.0/16', ...ctx }) }
}

const c = (text: string) => ({ match: 'comment' as const, comment: text })
const tcp = (dport?: number) => (dport === undefined ? { match: 'tcp' as const } : { match: 'tcp' as const, dport })

t.test('chain names and probabilities are kube-proxy\'s', async (t) => {
  t.equal(chainHash('default/nginx-basic:http', 'tcp'), 'WWRFY3PZ7W3FGMQW')
  t.equal(chainHash('default/nginx-basic:http', 'tcp', '192.168.0.7:80'), 'BEMSLTMJA26ZCLYL')
  // Three more from the same iptables-save: an unnamed-free UDP port and two endpoints.
  t.equal(chainHash('kube-system/kube-dns:dns', 'udp'), 'TCOU7JCQXEZGVUNU')
  t.equal(chainHash('kube-system/kube-dns:dns', 'udp', '192.168.1.2:53'), 'GHNVWKROTCCBFQKZ')
  t.equal(chainHash('default/kubernetes:https', 'tcp'), 'NPX46M4PTMTKRN6Y')
  t.equal(probability(3).toFixed(11), '0.33333333349')
  t.equal(probability(2).toFixed(11), '0.50000000000')
  const { port } = rulesOf(svc('web', { ports: [{ port: 80 }] }), [])
  t.equal(port.name.port, '')
  t.equal(portChains(port).svc, `KUBE-SVC-${chainHash('ns/web', 'tcp')}`, 'an unnamed port hashes without ":port"')
})

t.test('nginx-basic: three endpoints, exactly the reference rules', async (t) => {
  const service = svc('nginx-basic', { clusterIP: '10.105.250.129', ports: [{ name: 'http', port: 80 }] }, {}, 'default')
  const eps = slice('nginx-basic-x', 'nginx-basic', ['192.168.0.7', '192.168.1.3', '192.168.1.4'], [{ name: 'http', port: 80 }], 'default')
  const { port, rules } = rulesOf(service, [eps], { clusterCIDR: '192.168.0.0/16' })
  const n = 'default/nginx-basic:http'
  const svcChain = 'KUBE-SVC-WWRFY3PZ7W3FGMQW'
  const seps = ['192.168.0.7', '192.168.1.3', '192.168.1.4'].map((ip) => endpointChain(port, `${ip}:80`))
  t.same(seps, ['KUBE-SEP-BEMSLTMJA26ZCLYL', 'KUBE-SEP-UF65ZV4QBOPNRP6O', 'KUBE-SEP-WQR67ZLSTPDXXME4'])
  t.strictSame(rules.nat.shared.get('KUBE-SERVICES'), [
    { protocol: 'tcp', matches: [c(`${n} cluster IP`), tcp(80)], destination: '10.105.250.129/32', target: { jump: svcChain } },
  ])
  t.same([...rules.nat.chains.keys()], [svcChain, ...seps])
  t.strictSame(rules.nat.chains.get(svcChain), [
    { source: { not: '192.168.0.0/16' }, protocol: 'tcp', matches: [c(`${n} cluster IP`), tcp(80)], destination: '10.105.250.129/32', target: { jump: 'KUBE-MARK-MASQ' } },
    { matches: [c(`${n} -> 192.168.0.7:80`), { match: 'statistic', mode: 'random', probability: probability(3) }], target: { jump: seps[0] } },
    { matches: [c(`${n} -> 192.168.1.3:80`), { match: 'statistic', mode: 'random', probability: 0.5 }], target: { jump: seps[1] } },
    { matches: [c(`${n} -> 192.168.1.4:80`)], target: { jump: seps[2] } },
  ])
  t.strictSame(rules.nat.chains.get(seps[0]!), [
    { source: '192.168.0.7/32', matches: [c(n)], target: { jump: 'KUBE-MARK-MASQ' } },
    { protocol: 'tcp', matches: [c(n), tcp()], target: { target: 'DNAT', toDestination: '192.168.0.7:80' } },
  ])
  t.equal(rules.filter.shared.size, 0, 'nothing in filter for a service with endpoints')
  t.same(rules.noLocalEndpoints, [])
  // masqueradeAll: the same rule without the source match.
  const all = rulesOf(service, [eps], { masqueradeAll: true }).rules.nat.chains.get(svcChain)![0]!
  t.equal(all.source, undefined)
  t.same(all.target, { jump: 'KUBE-MARK-MASQ' })
})

t.test('no endpoints: REJECT in filter, nothing in nat', async (t) => {
  const { rules } = rulesOf(svc('empty', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30001 }], externalIPs: ['192.0.2.9'] }), [])
  t.equal(rules.nat.shared.size + rules.nat.chains.size, 0)
  const text = 'ns/empty:http has no endpoints'
  t.strictSame(rules.filter.shared.get('KUBE-SERVICES'), [{ protocol: 'tcp', matches: [c(text), tcp(80)], destination: '10.96.0.10/32', target: { target: 'REJECT' } }])
  t.strictSame(rules.filter.shared.get('KUBE-EXTERNAL-SERVICES'), [
    { protocol: 'tcp', matches: [c(text), tcp(80)], destination: '192.0.2.9/32', target: { target: 'REJECT' } },
    { protocol: 'tcp', matches: [c(text), { match: 'addrtype', dstType: 'LOCAL' }, tcp(30001)], target: { target: 'REJECT' } },
  ])
})

t.test('externalTrafficPolicy Local: EXT short-circuits node and pod traffic, SVL holds local endpoints', async (t) => {
  const service = svc('loc', { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30002 }] })
  const { port, rules } = rulesOf(service, [slice('loc-a', 'loc', [{ ip: '10.244.0.5', node: NODE }, { ip: '10.244.1.5', node: 'other' }])])
  const { svc: s, svl, ext } = portChains(port)
  const n = 'ns/loc:http'
  t.strictSame(rules.nat.shared.get('KUBE-NODEPORTS'), [{ protocol: 'tcp', matches: [c(n), tcp(30002)], target: { jump: ext } }])
  t.strictSame(rules.nat.chains.get(ext), [
    { source: '10.244.0.0/16', matches: [c(`pod traffic for ${n} external destinations`)], target: { jump: s } },
    { matches: [c(`masquerade LOCAL traffic for ${n} external destinations`), { match: 'addrtype', srcType: 'LOCAL' }], target: { jump: 'KUBE-MARK-MASQ' } },
    { matches: [c(`route LOCAL traffic for ${n} external destinations`), { match: 'addrtype', srcType: 'LOCAL' }], target: { jump: s } },
    { target: { jump: svl } },
  ])
  t.strictSame(rules.nat.chains.get(svl), [{ matches: [c(`${n} -> 10.244.0.5:8080`)], target: { jump: endpointChain(port, '10.244.0.5:8080') } }])
  t.equal(rules.nat.chains.get(s)!.filter((r) => r.target && 'jump' in r.target && r.target.jump.startsWith('KUBE-SEP-')).length, 2, 'SVC keeps both endpoints')

  // No local endpoint: external traffic is dropped in filter, node traffic still routed via EXT.
  const none = rulesOf(service, [slice('loc-a', 'loc', [{ ip: '10.244.1.5', node: 'other' }])])
  t.same(none.rules.noLocalEndpoints, ['external'])
  t.strictSame(none.rules.filter.shared.get('KUBE-EXTERNAL-SERVICES'), [
    { protocol: 'tcp', matches: [c(`${n} has no local endpoints`), { match: 'addrtype', dstType: 'LOCAL' }, tcp(30002)], target: { target: 'DROP' } },
  ])
  t.notOk(none.rules.nat.chains.has(svl))
  t.same(none.rules.nat.chains.get(ext)!.at(-1), { matches: [c(`route LOCAL traffic for ${n} external destinations`), { match: 'addrtype', srcType: 'LOCAL' }], target: { jump: s } }, 'no jump to a missing SVL')
})

t.test('internalTrafficPolicy Local: the cluster IP goes to SVL, or is dropped without a local endpoint', async (t) => {
  const service = svc('itp', { internalTrafficPolicy: 'Local' })
  const { port, rules } = rulesOf(service, [slice('itp-a', 'itp', [{ ip: '10.244.0.5', node: NODE }, { ip: '10.244.1.5', node: 'other' }])])
  const { svc: s, svl } = portChains(port)
  t.same(rules.nat.shared.get('KUBE-SERVICES')![0]!.target, { jump: svl })
  t.notOk(rules.nat.chains.has(s), 'no SVC chain')
  t.same(rules.nat.chains.get(svl)![0]!.target, { jump: 'KUBE-MARK-MASQ' }, 'the masquerade rule is in SVL')
  t.equal(rules.nat.chains.size, 2, 'SVL and the local SEP only')
  const none = rulesOf(service, [slice('itp-a', 'itp', [{ ip: '10.244.1.5', node: 'other' }])])
  t.same(none.rules.noLocalEndpoints, ['internal'])
  t.equal(none.rules.nat.shared.size, 0)
  t.same(none.rules.filter.shared.get('KUBE-SERVICES')![0]!.target, { target: 'DROP' })
})

t.test('ClientIP affinity: recent rcheck rules first, recent set in each SEP', async (t) => {
  const service = svc('sticky', { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } })
  const { port, rules } = rulesOf(service, [slice('sticky-a', 'sticky', ['10.244.0.5', '10.244.0.6'])])
  const { svc: s } = portChains(port)
  const [a, b] = ['10.244.0.5:8080', '10.244.0.6:8080'].map((e) => endpointChain(port, e))
  const n = 'ns/sticky:http'
  t.strictSame(rules.nat.chains.get(s)!.slice(1), [
    { matches: [c(`${n} -> 10.244.0.5:8080`), { match: 'recent', command: 'rcheck', name: a, seconds: 600, reap: true }], target: { jump: a } },
    { matches: [c(`${n} -> 10.244.0.6:8080`), { match: 'recent', command: 'rcheck', name: b, seconds: 600, reap: true }], target: { jump: b } },
    { matches: [c(`${n} -> 10.244.0.5:8080`), { match: 'statistic', mode: 'random', probability: 0.5 }], target: { jump: a } },
    { matches: [c(`${n} -> 10.244.0.6:8080`)], target: { jump: b } },
  ])
  t.strictSame(rules.nat.chains.get(a!)![1], { protocol: 'tcp', matches: [c(n), { match: 'recent', command: 'set', name: a }, tcp()], target: { target: 'DNAT', toDestination: '10.244.0.5:8080' } })
})

t.test('loadBalancerSourceRanges: KUBE-FW- per range, the node let in, the rest dropped in filter', async (t) => {
  const service = svc('lb', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 30003 }], loadBalancerSourceRanges: ['203.0.113.0/24', '192.168.1.0/24'] }, { loadBalancer: { ingress: [{ ip: '198.51.100.7' }] } })
  const { port, rules } = rulesOf(service, [slice('lb-a', 'lb', ['10.244.0.5'])], { nodeIP: '192.168.1.10' })
  const { fw, ext } = portChains(port)
  const n = 'ns/lb:http'
  t.strictSame(rules.nat.shared.get('KUBE-SERVICES')![1], { protocol: 'tcp', matches: [c(`${n} loadbalancer IP`), tcp(80)], destination: '198.51.100.7/32', target: { jump: fw } })
  t.strictSame(rules.nat.chains.get(fw), [
    { source: '203.0.113.0/24', matches: [c(`${n} loadbalancer IP`)], target: { jump: ext } },
    { source: '192.168.1.0/24', matches: [c(`${n} loadbalancer IP`)], target: { jump: ext } },
    { source: '198.51.100.7/32', matches: [c(`${n} loadbalancer IP`)], target: { jump: ext } },
    { matches: [c(`other traffic to ${n} will be dropped by KUBE-PROXY-FIREWALL`)] },
  ])
  t.strictSame(rules.filter.shared.get('KUBE-PROXY-FIREWALL'), [
    { protocol: 'tcp', matches: [c(`${n} traffic not accepted by ${fw}`), tcp(80)], destination: '198.51.100.7/32', target: { target: 'DROP' } },
  ])
  t.strictSame(rules.nat.chains.get(ext), [{ matches: [c(`masquerade traffic for ${n} external destinations`)], target: { jump: 'KUBE-MARK-MASQ' } }, { target: { jump: portChains(port).svc } }])
  const away = rulesOf(service, [slice('lb-a', 'lb', ['10.244.0.5'])], { nodeIP: '172.16.0.1' })
  t.equal(away.rules.nat.chains.get(fw)!.length, 3, 'a node outside the ranges is not let in')
})

// ---- the proxier over the fake tables --------------------------------------------------------------

function harness(options: IptablesProxierOptions = {}, fake = new FakeIptables()) {
  const feed = changeFeed(NODE)
  const proxier = new IptablesProxier(fake, { clusterCIDR: '10.244.0.0/16', ...options })
  return {
    fake,
    proxier,
    put: feed.put,
    deleteService: feed.deleteService,
    async sync(full = false) {
      const { servicePorts, stale } = feed.pending()
      fake.clear()
      return proxier.sync(feed.state, servicePorts, { full, stale })
    },
  }
}

const jumpsOf = (rules: Rule[] | undefined): string[] => (rules ?? []).map((r) => (r.target && 'jump' in r.target ? r.target.jump : '-'))

t.test('first sync writes both tables; an unchanged resync writes nothing', async (t) => {
  const h = harness()
  t.same(await h.proxier.setup(), ['net.ipv4.ip_forward', 'net.ipv4.conf.all.route_localnet'], 'localhost node ports (the default): route_localnet')
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5', '10.244.0.6']))
  const r = await h.sync()
  t.equal(r.full, true)
  t.same(r.errors, [])
  t.equal(h.proxier.synced, true)
  t.same(h.fake.commits.map((c) => c.table), ['nat', 'filter'])
  const ks = jumpsOf(h.fake.chain('nat', 'KUBE-SERVICES'))
  t.same(ks.slice(-1), ['KUBE-NODEPORTS'], 'the node-ports jump is last')
  t.equal(ks.length, 2)
  t.same(jumpsOf(h.fake.chain('nat', 'PREROUTING')), ['KUBE-SERVICES'])
  t.same(jumpsOf(h.fake.chain('nat', 'POSTROUTING')), ['KUBE-POSTROUTING'])
  t.same(jumpsOf(h.fake.chain('filter', 'FORWARD')), ['KUBE-PROXY-FIREWALL', 'KUBE-FORWARD', 'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES'])
  t.same(jumpsOf(h.fake.chain('filter', 'INPUT')), ['KUBE-FIREWALL', 'KUBE-PROXY-FIREWALL', 'KUBE-NODEPORTS', 'KUBE-EXTERNAL-SERVICES'], 'KUBE-FIREWALL first')
  t.same(jumpsOf(h.fake.chain('filter', 'OUTPUT')), ['KUBE-FIREWALL', 'KUBE-PROXY-FIREWALL', 'KUBE-SERVICES'])
  const again = await h.sync(true)
  t.equal(again.full, true)
  t.same(h.fake.commits, [], 'nothing committed')
  t.same(again.repaired.iptables, 0)
  t.equal(h.proxier.draining, 0)
  t.equal(await h.proxier.drain(), 0)
})

t.test('partial syncs touch only the changed port', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5', '10.244.0.6']))
  h.put(svc('db', { clusterIP: '10.96.0.20', ports: [{ name: 'pg', port: 5432 }] }), slice('db-a', 'db', ['10.244.0.7'], [{ name: 'pg', port: 5432 }]))
  await h.sync()
  const web = portChains([...servicePortsOf(svc('web')).values()][0]!)

  // An endpoint more: the SVC chain refilled, one SEP created; KUBE-SERVICES untouched.
  h.put(slice('web-a', 'web', ['10.244.0.5', '10.244.0.6', '10.244.0.8']))
  const r = await h.sync()
  t.equal(r.full, false)
  t.equal(r.ports, 1)
  const newSep = endpointChain([...servicePortsOf(svc('web')).values()][0]!, '10.244.0.8:8080')
  t.same(h.fake.ops().filter((o) => !o.startsWith('nat appendRule')), [`nat createChain ${newSep}`, `nat flushChain ${web.svc}`])
  t.equal(h.fake.commits.length, 1, 'one nat commit, no filter commit')
  t.equal(h.fake.chain('nat', web.svc)!.length, 4)

  // A new service: its rule inserted before the node-ports jump.
  h.put(svc('api', { clusterIP: '10.96.0.30' }), slice('api-a', 'api', ['10.244.0.9']))
  await h.sync()
  t.ok(h.fake.ops().includes('nat insertRule KUBE-SERVICES 2'), 'inserted at index 2, before the tail')
  const ks = jumpsOf(h.fake.chain('nat', 'KUBE-SERVICES'))
  t.equal(ks.length, 4)
  t.equal(ks.at(-1), 'KUBE-NODEPORTS')

  // Its endpoints gone: REJECT in filter, its nat rules and chains removed.
  h.put(slice('api-a', 'api', []))
  await h.sync()
  const api = portChains([...servicePortsOf(svc('api')).values()][0]!)
  t.same(h.fake.ops().filter((o) => o.includes('KUBE-SERVICES') || o.includes('Chain')).sort(), [
    `nat deleteChain ${api.svc}`,
    `nat deleteChain ${endpointChain([...servicePortsOf(svc('api')).values()][0]!, '10.244.0.9:8080')}`,
    `nat deleteRule KUBE-SERVICES`,
    `nat flushChain ${api.svc}`,
    `nat flushChain ${endpointChain([...servicePortsOf(svc('api')).values()][0]!, '10.244.0.9:8080')}`,
    'filter appendRule KUBE-SERVICES',
  ].sort())
  t.same(h.fake.chain('filter', 'KUBE-SERVICES')![0]!.target, { target: 'REJECT' })
  t.notOk(h.fake.chain('nat', api.svc))

  // The service deleted: the REJECT goes too.
  h.deleteService('api')
  await h.sync()
  t.same(h.fake.ops(), ['filter deleteRule KUBE-SERVICES'])
  t.same(h.fake.chain('filter', 'KUBE-SERVICES'), [])

  // What a partial sync left is what a fresh full sync wants: nothing to repair.
  const full = await h.sync(true)
  t.same(h.fake.commits, [])
  t.equal(full.repaired.iptables, 0)
})

t.test('a new proxier adopts what is there; drift is repaired and counted', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']), svc('db', { clusterIP: '10.96.0.20' }), slice('db-a', 'db', ['10.244.0.7']))
  await h.sync()
  // The ports' rules in KUBE-SERVICES reversed (as another run could have ordered them): still equal.
  const ks = h.fake.chain('nat', 'KUBE-SERVICES')!
  ks.splice(0, 2, ks[1]!, ks[0]!)
  const h2 = harness({}, h.fake)
  h2.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']), svc('db', { clusterIP: '10.96.0.20' }), slice('db-a', 'db', ['10.244.0.7']))
  const r = await h2.sync()
  t.equal(r.full, true)
  t.same(h.fake.commits, [], 'nothing rewritten on start')
  t.equal(r.repaired.iptables, 0)
  // A partial sync after adoption edits at the right places.
  h2.put(svc('web', { clusterIP: '10.96.0.11' }))
  await h2.sync()
  t.same(jumpsOf(h.fake.chain('nat', 'KUBE-SERVICES')).at(-1), 'KUBE-NODEPORTS')
  t.equal(h.fake.chain('nat', 'KUBE-SERVICES')![1]!.destination, '10.96.0.11/32', 'web moved after db, before the tail')

  // Drift: KUBE-SERVICES flushed, a jump deleted, a stale chain of ours left behind, a foreign chain.
  h.fake.tables.nat.get('KUBE-SERVICES')!.length = 0
  h.fake.tables.nat.set('PREROUTING', [])
  h.fake.tables.nat.set('KUBE-SVC-STALESTALESTALE1', [{ target: { target: 'RETURN' } }])
  h.fake.tables.nat.set('OTHER', [{ target: { target: 'RETURN' } }])
  const fixed = await h2.sync(true)
  t.equal(fixed.repaired.iptables, 3, 'KUBE-SERVICES, the stale chain, the PREROUTING jump')
  t.equal(h.fake.chain('nat', 'KUBE-SERVICES')!.length, 3)
  t.notOk(h.fake.chain('nat', 'KUBE-SVC-STALESTALESTALE1'))
  t.ok(h.fake.chain('nat', 'OTHER'), 'a foreign chain is left alone')
  t.same(jumpsOf(h.fake.chain('nat', 'PREROUTING')), ['KUBE-SERVICES'])
})

t.test("drift in a port's own chains: the digest disagrees, the port's rules are computed again and written", async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5', '10.244.0.6']), svc('db', { clusterIP: '10.96.0.20' }), slice('db-a', 'db', ['10.244.0.7']))
  await h.sync()
  // KUBE-SERVICES as a set: the port whose jump was deleted gets its rule back before the tail, after the others.
  const picture = () => new Map([...h.fake.tables.nat].map(([c, rules]) => [c, c === 'KUBE-SERVICES' ? rules.map((r) => ruleKey(r)).sort() : structuredClone(rules)]))
  const before = picture()
  const sep = [...h.fake.tables.nat.keys()].filter((c) => c.startsWith('KUBE-SEP-'))
  const svcChains = [...h.fake.tables.nat.keys()].filter((c) => c.startsWith('KUBE-SVC-'))
  t.equal(sep.length, 3)
  // One SEP's DNAT rule altered in place, one SVC chain deleted (and its jump with it), one SEP emptied.
  const altered = h.fake.tables.nat.get(sep[0]!)!
  altered[1] = { ...altered[1]!, target: { target: 'DNAT', toDestination: '10.244.9.9:80' } }
  h.fake.tables.nat.get(sep[1]!)!.length = 0
  const gone = svcChains[0]!
  h.fake.tables.nat.delete(gone)
  h.fake.tables.nat.set('KUBE-SERVICES', h.fake.tables.nat.get('KUBE-SERVICES')!.filter((r) => !(r.target && 'jump' in r.target && r.target.jump === gone)))
  h.fake.commits.length = 0
  const r = await h.sync(true)
  t.equal(r.repaired.iptables, 4, 'the two SEPs, the SVC chain, KUBE-SERVICES')
  t.same(picture(), before, 'nat as it was')
  t.same(jumpsOf(h.fake.chain('nat', 'KUBE-SERVICES')).at(-1), 'KUBE-NODEPORTS', 'the tail stays last')
  h.fake.commits.length = 0
  const again = await h.sync(true)
  t.equal(again.repaired.iptables, 0, 'then nothing differs')
  t.same(h.fake.commits, [])
})

t.test('a full sync decodes only the chains whose survey hash is not the one they were last digested from', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5', '10.244.0.6']), svc('db', { clusterIP: '10.96.0.20' }), slice('db-a', 'db', ['10.244.0.7']))
  await h.sync()
  const perPort = (c: string): boolean => /^KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(c)
  const decoded = (table: string) => h.fake.decoded.filter((d) => d.table === table).flatMap((d) => d.chains)
  // Written by the first sync, not yet read back: decoded once.
  await h.sync(true)
  const own = [...h.fake.tables.nat.keys()].filter(perPort)
  t.same(decoded('nat').filter(perPort).sort(), own.sort(), 'every per-port chain decoded once')
  h.fake.decoded.length = 0
  const quiet = await h.sync(true)
  t.equal(quiet.repaired.iptables, 0)
  t.same(decoded('nat').filter(perPort), [], 'none again: their hashes are the ones digested')
  t.ok(decoded('nat').includes('KUBE-SERVICES') && decoded('nat').includes('PREROUTING'), 'shared and built-in chains every time')
  // A DNAT address changed behind our back: that chain's hash changes, it alone is decoded, and it is repaired.
  const sep = own.find((c) => c.startsWith('KUBE-SEP-'))!
  const good = structuredClone(h.fake.tables.nat.get(sep)!)
  const rules = h.fake.tables.nat.get(sep)!
  rules[1] = { ...rules[1]!, target: { target: 'DNAT', toDestination: '10.244.0.9:80' } }
  h.fake.decoded.length = 0
  const r = await h.sync(true)
  t.equal(r.repaired.iptables, 1, 'that chain repaired')
  t.same(decoded('nat').filter(perPort), [sep], 'that chain alone decoded')
  t.same(h.fake.tables.nat.get(sep), good, 'as it was')
  // Without surveys (another dataplane): the whole table is read, as before.
  h.fake.surveys = false
  h.fake.decoded.length = 0
  h.fake.tables.nat.get(sep)!.length = 0
  const plain = await h.sync(true)
  t.equal(plain.repaired.iptables, 1)
  t.same(h.fake.decoded, [])
  t.same(h.fake.tables.nat.get(sep), good)
})

t.test('a failed commit asks for a full sync, which writes it', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  h.put(slice('web-a', 'web', ['10.244.0.5', '10.244.0.6']))
  h.fake.failNext = new Error('EAGAIN')
  const r = await h.sync()
  t.equal(r.errors.length, 1)
  t.equal(h.proxier.synced, false)
  const again = await h.sync()
  t.equal(again.full, true)
  t.same(again.errors, [])
  const svcChain = portChains([...servicePortsOf(svc('web')).values()][0]!).svc
  t.equal(h.fake.chain('nat', svcChain)!.length, 3, 'masquerade + two endpoints')
})

t.test('stale UDP conntrack entries are deleted as in IPVS mode', async (t) => {
  const h = harness()
  const dns = svc('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] })
  h.put(dns, slice('dns-a', 'dns', ['10.244.0.5', '10.244.0.6'], [{ name: 'dns', port: 5353, protocol: 'UDP' }]))
  await h.sync()
  h.put(slice('dns-a', 'dns', ['10.244.0.5'], [{ name: 'dns', port: 5353, protocol: 'UDP' }]))
  const r = await h.sync()
  t.same(h.fake.conntrackDeletes, [{ family: 'inet', protocol: 'udp', destination: '10.96.0.53', port: 53, replySource: '10.244.0.6' }])
  t.equal(r.ops.conntrack, 1)
})

t.test('cleanup removes our chains and jumps, nothing else; kubelet\'s KUBE-FIREWALL stays', async (t) => {
  const h = harness()
  h.put(svc('web', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  h.fake.tables.nat.set('OTHER', [])
  h.fake.tables.nat.get('PREROUTING')!.push({ target: { jump: 'OTHER' } })
  const r = await h.proxier.cleanup()
  t.equal(r.jumps, 3 + 9, 'nat 3, filter 9; not the two KUBE-FIREWALL jumps')
  t.same([...h.fake.tables.nat.keys()].sort(), ['INPUT', 'OTHER', 'OUTPUT', 'POSTROUTING', 'PREROUTING'])
  t.same([...h.fake.tables.filter.keys()].sort(), ['FORWARD', 'INPUT', 'KUBE-FIREWALL', 'OUTPUT'])
  t.same(jumpsOf(h.fake.chain('nat', 'PREROUTING')), ['OTHER'])
  // kube-proxy's CleanupLeftovers never unlinks nor flushes the chain it shares with kubelet.
  t.same(jumpsOf(h.fake.chain('filter', 'INPUT')), ['KUBE-FIREWALL'])
  t.same(jumpsOf(h.fake.chain('filter', 'OUTPUT')), ['KUBE-FIREWALL'])
  t.same(jumpsOf(h.fake.chain('filter', 'FORWARD')), [])
  t.equal(h.fake.chain('filter', 'KUBE-FIREWALL')!.length, 1, 'its localnet drop rule kept')
  t.equal(r.chains, 4 + 3 + 4 + 1, 'nat: 4 fixed, SVC, EXT, SEP; filter: 4 shared, KUBE-FORWARD')
  t.equal(h.proxier.synced, false)
  // A second cleanup finds nothing of ours.
  t.same(await h.proxier.cleanup(), { chains: 0, jumps: 0 })
  t.ok(h.fake.chain('filter', 'KUBE-FIREWALL'))
})

// ---- nf_conntrack_tcp_be_liberal -----------------------------------------------------------

const INVALID_DROP: Rule = { matches: [{ match: 'conntrack', ctstate: ['INVALID'] }], target: { target: 'DROP' } }
const BE_LIBERAL = 'net.netfilter.nf_conntrack_tcp_be_liberal'

t.test('nf_conntrack_tcp_be_liberal read at setup: 1 leaves out the ctstate INVALID drop, 0 or unreadable keeps it first', async (t) => {
  const forward = async (liberal: number | undefined): Promise<Rule[]> => {
    const fake = new FakeIptables()
    if (liberal !== undefined) fake.sysctls.set(BE_LIBERAL, liberal)
    const h = harness({}, fake)
    await h.proxier.setup()
    h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
    t.same((await h.sync()).errors, [])
    t.equal(fake.sysctls.get(BE_LIBERAL), liberal, 'only read, never set')
    return fake.chain('filter', 'KUBE-FORWARD')!
  }
  const strict = await forward(0)
  t.equal(strict.length, 3)
  t.strictSame(strict[0], INVALID_DROP, '0: the drop rule first')
  t.strictSame(await forward(undefined), strict, 'unreadable (nf_conntrack not loaded): as 0')
  const liberal = await forward(1)
  t.strictSame(liberal, strict.slice(1), '1: the same chain without the drop rule')
  t.strictSame(await forward(2), liberal, 'any non-zero value')
})

t.test('liberal: the drop rule is drift, no INVALID counter is read, and a restart that reads 0 writes it back', async (t) => {
  const fake = new FakeIptables()
  fake.sysctls.set(BE_LIBERAL, 1)
  const h = harness({}, fake)
  await h.proxier.setup()
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  t.equal(await h.proxier.ctStateInvalidDropped(), undefined, 'no rule, no counter')
  // Someone puts it back: a full sync removes it.
  fake.tables.filter.get('KUBE-FORWARD')!.unshift(INVALID_DROP)
  const r = await h.sync(true)
  t.equal(r.repaired.iptables, 1)
  t.notOk(fake.chain('filter', 'KUBE-FORWARD')!.some((x) => JSON.stringify(x) === JSON.stringify(INVALID_DROP)))
  // Read once: a change of the sysctl waits for the next start, as in kube-proxy.
  fake.sysctls.set(BE_LIBERAL, 0)
  t.same((await h.sync(true)).ops.iptables, 0, 'the running proxier keeps what it read')
  const next = harness({}, fake)
  await next.proxier.setup()
  next.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await next.sync()
  t.strictSame(fake.chain('filter', 'KUBE-FORWARD')![0], INVALID_DROP, 'a new proxier that reads 0 writes it')
  t.equal(await next.proxier.ctStateInvalidDropped(), 0)
})

// ---- localhost node ports, KUBE-FIREWALL, nodePortAddresses, SCTP --------------------------

const LOCALNET_DROP: Rule = {
  source: { not: '127.0.0.0/8' },
  destination: '127.0.0.0/8',
  matches: [c('block incoming localnet connections'), { match: 'conntrack', ctstate: { not: ['ESTABLISHED', 'RELATED', 'DNAT'] } }],
  target: { target: 'DROP' },
}
const NP_COMMENT = c('kubernetes service nodeports; NOTE: this must be the last rule in this chain')
const tailOf = (fake: FakeIptables): Rule[] => {
  const ks = fake.chain('nat', 'KUBE-SERVICES') ?? []
  return ks.filter((r) => r.target && 'jump' in r.target && r.target.jump === 'KUBE-NODEPORTS')
}
const addr = (link: string, address: string, family: 'inet' | 'inet6' = 'inet', scope = 'global') =>
  ({ family, address, prefix: family === 'inet' ? 24 : 64, index: 1, link, scope, flags: [] }) as never

t.test('localhostNodePorts (default true): the localnet drop rule, route_localnet, node ports on 127.0.0.1', async (t) => {
  const h = harness()
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  t.strictSame(h.fake.chain('filter', 'KUBE-FIREWALL'), [LOCALNET_DROP])
  t.strictSame(tailOf(h.fake), [{ matches: [NP_COMMENT, { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODEPORTS' } }], 'no 127.0.0.0/8 exclusion')
  // Its rule flushed by hand: a full sync puts it back, counted as drift.
  h.fake.tables.filter.set('KUBE-FIREWALL', [])
  const r = await h.sync(true)
  t.equal(r.repaired.iptables, 1)
  t.strictSame(h.fake.chain('filter', 'KUBE-FIREWALL'), [LOCALNET_DROP])
})

t.test('localhostNodePorts false: KUBE-FIREWALL and its jumps made but its rules left alone; 127.0.0.0/8 kept out; no route_localnet', async (t) => {
  const h = harness({ localhostNodePorts: false })
  t.same(await h.proxier.setup(), ['net.ipv4.ip_forward'])
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  t.strictSame(h.fake.chain('filter', 'KUBE-FIREWALL'), [], 'made empty')
  t.same(jumpsOf(h.fake.chain('filter', 'INPUT'))[0], 'KUBE-FIREWALL')
  t.same(jumpsOf(h.fake.chain('filter', 'OUTPUT'))[0], 'KUBE-FIREWALL')
  t.strictSame(tailOf(h.fake), [{ destination: { not: '127.0.0.0/8' }, matches: [NP_COMMENT, { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODEPORTS' } }])
  // kubelet's copy of the rule: not ours to remove, nor drift.
  h.fake.tables.filter.set('KUBE-FIREWALL', [LOCALNET_DROP])
  const r = await h.sync(true)
  t.same(h.fake.commits, [], 'nothing written')
  t.equal(r.repaired.iptables, 0)
  t.strictSame(h.fake.chain('filter', 'KUBE-FIREWALL'), [LOCALNET_DROP])
  // Deleted: made again.
  h.fake.tables.filter.get('INPUT')!.splice(0, 1)
  h.fake.tables.filter.set('KUBE-FIREWALL', [])
  h.fake.tables.filter.delete('KUBE-FIREWALL')
  await h.sync(true)
  t.strictSame(h.fake.chain('filter', 'KUBE-FIREWALL'), [])
  t.same(jumpsOf(h.fake.chain('filter', 'INPUT'))[0], 'KUBE-FIREWALL', 'the jump restored first')
})

t.test('IPv6: never localhost node ports (::1 kept out), KUBE-FIREWALL made empty', async (t) => {
  const h = harness({ family: 'inet6', clusterCIDR: 'fd00:10:244::/64', localhostNodePorts: true })
  t.same(await h.proxier.setup(), ['net.ipv6.conf.all.forwarding'], 'no route_localnet')
  h.put(svc('web', { clusterIP: 'fd00:10:96::10', ipFamilies: ['IPv6'] }), sliceOf('web-a', 'web', ['fd00:10:244::5'], undefined, { namespace: 'ns', addressType: 'IPv6' }))
  await h.sync()
  t.strictSame(h.fake.chain('filter', 'KUBE-FIREWALL'), [])
  t.strictSame(tailOf(h.fake), [{ destination: { not: '::1/128' }, matches: [NP_COMMENT, { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODEPORTS' } }])
})

t.test('nodePortAddresses: one jump per node address in the CIDRs, loopback only with localhost node ports', async (t) => {
  const fake = new FakeIptables()
  fake.addresses = [addr('lo', '127.0.0.1', 'inet', 'host'), addr('eth0', '192.168.1.10'), addr('eth1', '10.1.0.5'), addr('eth0', 'fd00::10', 'inet6')]
  const h = harness({ nodePortAddresses: ['192.168.0.0/16', '127.0.0.0/8', 'fd00::/64'] }, fake)
  t.same(await h.proxier.setup(), ['net.ipv4.ip_forward', 'net.ipv4.conf.all.route_localnet'], '127.0.0.0/8 given: localhost node ports')
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  const jump = (ip: string): Rule => ({ destination: `${ip}/32`, matches: [NP_COMMENT], target: { jump: 'KUBE-NODEPORTS' } })
  t.strictSame(tailOf(fake), [jump('192.168.1.10'), jump('127.0.0.1')], 'CIDR by CIDR; no addrtype match')
  t.equal(jumpsOf(fake.chain('nat', 'KUBE-SERVICES')).at(-1), 'KUBE-NODEPORTS')
  // A partial sync inserts before both tail rules.
  h.put(svc('late', { clusterIP: '10.96.0.20' }), slice('late-a', 'late', ['10.244.0.6']))
  await h.sync()
  t.same(jumpsOf(fake.chain('nat', 'KUBE-SERVICES')).slice(-2), ['KUBE-NODEPORTS', 'KUBE-NODEPORTS'])
  t.equal(fake.chain('nat', 'KUBE-SERVICES')!.length, 4)
  // The node's addresses change: the next full sync follows.
  fake.addresses.push(addr('eth2', '192.168.2.20'))
  const r = await h.sync(true)
  t.same(r.errors, [])
  t.strictSame(tailOf(fake), [jump('192.168.1.10'), jump('192.168.2.20'), jump('127.0.0.1')])

  // Without localhost node ports, 127.0.0.1 gets no rule (and is warned about).
  const warnings: string[] = []
  const f2 = new FakeIptables()
  f2.addresses = fake.addresses
  const h2 = harness({ nodePortAddresses: ['127.0.0.0/8', '192.168.1.0/24'], localhostNodePorts: false, log: (level, msg) => void (level === 'warn' && warnings.push(msg)) }, f2)
  t.same(await h2.proxier.setup(), ['net.ipv4.ip_forward'])
  h2.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h2.sync()
  t.strictSame(tailOf(f2), [jump('192.168.1.10')])
  t.match(warnings, [/127\.0\.0\.1/])
  t.strictSame(f2.chain('filter', 'KUBE-FIREWALL'), [], 'no localnet drop rule')
})

t.test('nodePortAddresses without 127.0.0.1: no localhost node ports (kube-proxy turns them off)', async (t) => {
  const fake = new FakeIptables()
  fake.addresses = [addr('lo', '127.0.0.1', 'inet', 'host'), addr('eth0', '192.168.1.10')]
  const h = harness({ nodePortAddresses: ['192.168.1.0/24'] }, fake)
  t.same(await h.proxier.setup(), ['net.ipv4.ip_forward'], 'no route_localnet')
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  t.strictSame(tailOf(fake), [{ destination: '192.168.1.10/32', matches: [NP_COMMENT], target: { jump: 'KUBE-NODEPORTS' } }])
  t.strictSame(fake.chain('filter', 'KUBE-FIREWALL'), [])
})

t.test('nodePortAddresses: primary is the node IP or the first node address; IPv6 with only IPv4 CIDRs is all', async (t) => {
  const fake = new FakeIptables()
  fake.addresses = [addr('lo', '127.0.0.1', 'inet', 'host'), addr('eth0', '192.168.1.10'), addr('eth1', '10.1.0.5'), addr('eth0', 'fd00::10', 'inet6')]
  const h = harness({ nodePortAddresses: ['primary'] }, fake)
  h.put(svc('web'), slice('web-a', 'web', ['10.244.0.5']))
  await h.sync()
  t.strictSame(tailOf(fake).map((r) => r.destination), ['192.168.1.10/32'])
  const h2 = harness({ nodePortAddresses: ['primary'], nodeIP: '10.1.0.5' }, fake)
  await h2.sync(true)
  t.strictSame(tailOf(fake).map((r) => r.destination), ['10.1.0.5/32'])
  const f6 = new FakeIptables()
  f6.addresses = fake.addresses
  const h6 = harness({ family: 'inet6', clusterCIDR: 'fd00:10:244::/64', nodePortAddresses: ['192.168.0.0/16'] }, f6)
  await h6.sync()
  t.strictSame(tailOf(f6), [{ destination: { not: '::1/128' }, matches: [NP_COMMENT, { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODEPORTS' } }])
})

t.test('SCTP ports: -p sctp -m sctp --dport, as kube-proxy writes them', async (t) => {
  const service = svc('sc', { type: 'NodePort', ports: [{ name: 'sc', protocol: 'SCTP', port: 9, nodePort: 30009 }] })
  const eps = slice('sc-a', 'sc', ['10.244.0.5'], [{ name: 'sc', protocol: 'SCTP', port: 9 }])
  const { port, rules } = rulesOf(service, [eps])
  const names = portChains(port)
  t.strictSame(rules.nat.shared.get('KUBE-SERVICES'), [
    { protocol: 'sctp', matches: [c('ns/sc:sc cluster IP'), { match: 'sctp', dport: 9 }], destination: '10.96.0.10/32', target: { jump: names.svc } },
  ])
  t.strictSame(rules.nat.shared.get('KUBE-NODEPORTS'), [{ protocol: 'sctp', matches: [c('ns/sc:sc'), { match: 'sctp', dport: 30009 }], target: { jump: names.ext } }])
  const sep = endpointChain(port, '10.244.0.5:9')
  t.strictSame(rules.nat.chains.get(sep)![1], { protocol: 'sctp', matches: [c('ns/sc:sc'), { match: 'sctp' }], target: { target: 'DNAT', toDestination: '10.244.0.5:9' } })
  const empty = rulesOf(service, []).rules
  t.strictSame(empty.filter.shared.get('KUBE-SERVICES'), [
    { protocol: 'sctp', matches: [c('ns/sc:sc has no endpoints'), { match: 'sctp', dport: 9 }], destination: '10.96.0.10/32', target: { target: 'REJECT' } },
  ])
  const h = harness()
  h.put(service, eps)
  const r = await h.sync()
  t.same(r.errors, [])
  t.equal(jumpsOf(h.fake.chain('nat', 'KUBE-SERVICES'))[0], names.svc)
})

// ---- two services on one address:port -----------------------------------------------------

const SHARED: Record<'nat' | 'filter', readonly string[]> = { nat: ['KUBE-SERVICES', 'KUBE-NODEPORTS'], filter: ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'] }

/** Both tables as rule texts; the shared chains sorted (which port's rules come first is not the point). */
function tablesOf(fake: FakeIptables, sharedOnly = false): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const table of ['nat', 'filter'] as const)
    for (const [chain, rules] of fake.tables[table]) {
      const shared = SHARED[table].includes(chain)
      if (sharedOnly && !shared) continue
      out[`${table} ${chain}`] = shared ? rules.map(ruleKey).sort() : rules.map(ruleKey)
    }
  return out
}

type Objs = (ServiceObject | EndpointSlice)[]

async function referenceTables(objs: Objs, sharedOnly = false) {
  const h = harness()
  h.put(...objs)
  await h.sync()
  return tablesOf(h.fake, sharedOnly)
}

const lbStatus = (ip: string) => ({ loadBalancer: { ingress: [{ ip }] } })
const IPT_CONFLICTS: { what: string; a: Objs; b: Objs; bRest: Objs; dst?: string }[] = [
  {
    what: 'the same cluster IP:port',
    a: [svc('a'), slice('a-1', 'a', ['10.244.0.1'])],
    b: [svc('b'), slice('b-1', 'b', ['10.244.0.3', '10.244.0.4'])],
    bRest: [],
    dst: '10.96.0.10/32',
  },
  {
    what: 'a shared external IP:port',
    a: [svc('a', { externalIPs: ['203.0.113.7'] }), slice('a-1', 'a', ['10.244.0.1'])],
    b: [svc('b', { clusterIP: '10.96.0.11', externalIPs: ['203.0.113.7'], externalTrafficPolicy: 'Local' }), slice('b-1', 'b', ['10.244.0.3'])],
    bRest: [svc('b', { clusterIP: '10.96.0.11' }), slice('b-1', 'b', ['10.244.0.3'])],
    dst: '203.0.113.7/32',
  },
  {
    what: 'a shared load-balancer IP:port, one without endpoints',
    a: [svc('a', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }, lbStatus('198.51.100.5')), slice('a-1', 'a', ['10.244.0.1'])],
    b: [svc('b', { type: 'LoadBalancer', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30081 }], loadBalancerSourceRanges: ['10.0.0.0/8'] }, lbStatus('198.51.100.5'))],
    bRest: [svc('b', { type: 'LoadBalancer', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30081 }], loadBalancerSourceRanges: ['10.0.0.0/8'] })],
    dst: '198.51.100.5/32',
  },
  {
    what: 'the same node port',
    a: [svc('a', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('a-1', 'a', ['10.244.0.1'])],
    b: [svc('b', { type: 'NodePort', clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('b-1', 'b', ['10.244.0.3'])],
    bRest: [svc('b', { clusterIP: '10.96.0.11' }), slice('b-1', 'b', ['10.244.0.3'])],
  },
  {
    what: 'one\'s cluster IP:port, the other\'s external IP:port',
    a: [svc('a'), slice('a-1', 'a', ['10.244.0.1'])],
    b: [svc('b', { clusterIP: '10.96.0.11', externalIPs: ['10.96.0.10'] }), slice('b-1', 'b', ['10.244.0.3'])],
    bRest: [svc('b', { clusterIP: '10.96.0.11' }), slice('b-1', 'b', ['10.244.0.3'])],
    dst: '10.96.0.10/32',
  },
]

for (const cc of IPT_CONFLICTS) {
  t.test(`two services on ${cc.what}: only the owner's rules match it, whatever the order; the other's when it goes`, async (t) => {
    const both = await referenceTables([...cc.a, ...cc.bRest], true)
    const onlyA = await referenceTables(cc.a)
    const onlyB = await referenceTables(cc.b)
    for (const order of ['a then b', 'b then a', 'together'] as const) {
      const warnings: Json[] = []
      const h = harness({ log: (level, msg, fields) => void (level === 'warn' && warnings.push({ msg, ...fields })) })
      const deleteAll = (name: string) => {
        h.deleteService(name)
        h.put(slice(`${name}-1`, name, []))
      }
      if (order === 'a then b') (h.put(...cc.a), await h.sync(), h.put(...cc.b))
      else if (order === 'b then a') (h.put(...cc.b), await h.sync(), h.put(...cc.a))
      else h.put(...cc.a, ...cc.b)
      let r = await h.sync()
      t.strictSame(r.errors, [])
      t.strictSame(tablesOf(h.fake, true), both, `${order}: the shared chains hold a's rules for the contested address:port, not b's`)
      if (cc.dst) {
        const matching = h.fake.chain('nat', 'KUBE-SERVICES')!.filter((x) => x.destination === cc.dst)
        t.ok(matching.every((x) => (x.matches?.[0] as { comment: string }).comment.startsWith('ns/a:http')), `${order}: nat KUBE-SERVICES sends ${cc.dst} to a only`)
      }
      t.equal(r.conflicts, 1, `${order}: counted`)
      t.equal(warnings.length, 1, `${order}: logged once`)
      t.match(warnings[0], { msg: 'services conflict: the same virtual server', owner: 'ns/a:http/TCP', ignored: ['ns/b:http/TCP'] })
      await h.sync(true)
      t.same(h.fake.commits, [], `${order}: a full resync agrees`)

      deleteAll('a')
      r = await h.sync()
      t.equal(r.conflicts, 0)
      t.strictSame(tablesOf(h.fake), onlyB, `${order}: a deleted: as if only b had ever existed`)
      await h.sync(true)
      t.same(h.fake.commits, [], `${order}: and a full resync finds nothing to change`)
      h.put(...cc.a)
      await h.sync()
      t.strictSame(tablesOf(h.fake, true), both, `${order}: a back: it owns the address:port again`)
      deleteAll('b')
      await h.sync(true)
      t.strictSame(tablesOf(h.fake), onlyA, `${order}: b deleted: as if only a had ever existed (full resync)`)
    }
  })
}
