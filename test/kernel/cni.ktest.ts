// The fake CNI of test/support/cni.mjs, end to end in the box: a bridge and
// three pods, traffic between them and from the node, then IPVS virtual
// services programmed by hand through the library (VIPs on a dummy
// kube-ipvs0), traffic through them, and the hairpin case (a pod reaching
// itself through a VIP), which works only once the ipset + MASQUERADE rule and
// net.ipv4.vs.conntrack=1 are in place. ipvsadm, ipset, iptables-legacy-save
// and ip are the oracles; everything IPVS/ipset/iptables is written through the API.
import t from 'tap'
import { getSysctl, setSysctl, type Rule, type ServiceKey } from '../../dist/index.js'
import { makeNode, sh, tool, type FakeNode } from '../support/cni.mjs'
import { addCniServices, cniBox, hairpinSpread, roundRobin } from './support/cni-box.js'
import { lines, readKey } from './support/shell.js'


const [a, b, c] = [
  { name: 'cni-a', ip: '10.244.0.10' },
  { name: 'cni-b', ip: '10.244.0.11' },
  { name: 'cni-c', ip: '10.244.0.12' },
] as const
const gateway = '10.244.0.1'
const names = [a.name, b.name, c.name]

const web: ServiceKey = { protocol: 'tcp', address: '10.96.0.10', port: 80 } // all three pods
const dns: ServiceKey = { protocol: 'udp', address: '10.96.0.10', port: 53 } // all three pods, UDP echo
const others: ServiceKey = { protocol: 'tcp', address: '10.96.0.11', port: 80 } // b and c, not a
const selfOnly: ServiceKey = { protocol: 'tcp', address: '10.96.0.12', port: 80 } // a only
const LOOP = 'KUBE-LOOP-BACK'
const masquerade: Rule = { matches: [{ match: 'set', matchSet: LOOP, flags: ['dst', 'dst', 'src'] }], target: { target: 'MASQUERADE' } }

const brnfBefore = readKey('net.bridge.bridge-nf-call-iptables')
const vsConntrackBefore = await getSysctl('net.ipv4.vs.conntrack')
const forwardBefore = readKey('net.ipv4.ip_forward')

const started = Date.now()
const node: FakeNode = await makeNode({ pods: [a, b, c] })
t.comment(`makeNode, 3 pods: ${Date.now() - started} ms (links and netns ${node.timings.setupMs} ms, agents ${node.timings.agentsMs} ms)`)

// cleanUp undoes it all; the last test checks that nothing is left.
const { ipvs, ipset, iptables, cleanUp, checkGone } = await cniBox(t, node, { family: 'inet', loop: LOOP, vsConntrackBefore })

t.test('makeNode builds the bridge, the pods and their agents', async (t) => {
  t.same(node.pods.map((p) => [p.name, p.ip]), [[a.name, a.ip], [b.name, b.ip], [c.name, c.ip]])
  type Link = { ifname: string; operstate: string; linkinfo?: { info_slave_data?: { hairpin?: boolean } } }
  const ports = JSON.parse(tool('ip', ['-j', '-d', 'link', 'show', 'master', node.bridge])) as Link[]
  t.same(ports.map((l) => l.ifname).sort(), node.pods.map((p) => p.veth).sort(), 'one veth per pod on the bridge')
  t.same(ports.map((l) => l.linkinfo?.info_slave_data?.hairpin), [true, true, true], 'hairpin mode on every port')
  t.match(tool('ip', ['-o', 'addr', 'show', 'dev', node.bridge]), new RegExp(`inet ${gateway.replace(/\./g, '\\.')}/24 `), 'the gateway on the bridge')
  const netns = lines(tool('ip', ['netns', 'list'])).map((l) => l.split(' ')[0])
  t.same(names.filter((n) => netns.includes(n)), names, 'one netns per pod')
  t.match(tool('ip', ['-n', b.name, '-o', 'addr', 'show', 'dev', 'eth0']), /inet 10\.244\.0\.11\/24 /, "b's address on its eth0")
  t.match(tool('ip', ['-n', b.name, 'route', 'show', 'default']), /^default via 10\.244\.0\.1 dev eth0/, "b's default route")
  t.ok(node.brNetfilter, 'the box loads br_netfilter')
  t.equal(readKey('net.bridge.bridge-nf-call-iptables'), '1')
  t.equal(readKey('net.ipv4.ip_forward'), '1')
  t.ok(names.every((n) => node.isRunning(n)), 'every agent runs')
})

t.test('pod to pod over HTTP, by IP', async (t) => {
  t.same(await node.request(a.name, { host: b.ip, port: 8080 }), { ok: true, status: 200, body: b.name })
  t.same(await node.request(b.name, { host: c.ip, port: 8080 }), { ok: true, status: 200, body: c.name })
  const who = await node.request(c.name, { host: a.ip, port: 8080, path: '/whoami' })
  t.match(who, { ok: true, body: /^10\.244\.0\.12:\d+$/ }, 'a sees c by its own address')
  t.match(await node.request(a.name, { host: '10.244.0.99', port: 8080, timeoutMs: 1000 }), { ok: false, error: /ETIMEDOUT|EHOSTUNREACH/ }, 'no such pod')
})

t.test('node to pod', async (t) => {
  for (const p of [a, b, c]) t.same(await node.request('node', { host: p.ip, port: 8080 }), { ok: true, status: 200, body: p.name })
  t.match(await node.request('node', { host: a.ip, port: 8080, path: '/whoami' }), { ok: true, body: /^10\.244\.0\.1:\d+$/ }, 'the node comes from the gateway address')
  t.match(await node.request('node', { host: a.ip, port: 8081, timeoutMs: 1000 }), { ok: false, error: 'ECONNREFUSED' }, 'a closed port')
})

t.test('UDP echo', async (t) => {
  t.same(await node.request(a.name, { proto: 'udp', host: b.ip, port: 5353 }), { ok: true, body: b.name })
  t.same(await node.request('node', { proto: 'udp', host: c.ip, port: 5353 }), { ok: true, body: c.name })
  t.match(await node.request(b.name, { proto: 'udp', host: a.ip, port: 5353, payload: 'whoami' }), { ok: true, body: /^10\.244\.0\.11:\d+$/ })
})

t.test('a stopped pod refuses connections; started again, it answers', async (t) => {
  await node.stopPod(b.name)
  t.notOk(node.isRunning(b.name))
  t.match(await node.request(a.name, { host: b.ip, port: 8080, timeoutMs: 1000 }), { ok: false, error: 'ECONNREFUSED' })
  t.match(await node.request(b.name, { host: a.ip, port: 8080 }), { ok: false, error: /not running/ }, 'and makes no requests')
  await node.startPod(b.name)
  t.same(await node.request(a.name, { host: b.ip, port: 8080 }), { ok: true, status: 200, body: b.name })
  t.same(await node.request(b.name, { host: a.ip, port: 8080 }), { ok: true, status: 200, body: a.name })
})

t.test('IPVS virtual services, programmed through the API', async (t) => {
  sh(`ip link add kube-ipvs0 type dummy
      ${[web, others, selfOnly].map((s) => `ip addr add ${s.address}/32 dev kube-ipvs0`).join('\n')}
      ip link set kube-ipvs0 up`)
  await addCniServices(t, ipvs, { web, dns, others, selfOnly }, [a, b, c], (p) => p.ip)
})

t.test('node to the VIP reaches all three pods, round robin', (t) => roundRobin(t, node, { web, dns, others, selfOnly }, [a, b, c]))

t.test('pod to the VIP of other pods', async (t) => {
  const r = await node.requestMany(a.name, { host: others.address, port: others.port }, 4)
  t.same(r.errors, [])
  t.same(r.counts, { [b.name]: 2, [c.name]: 2 })
  // the answer comes back from the VIP although it goes straight over the bridge:
  // br_netfilter hands the bridged reply to IPVS
  t.match(await node.request(a.name, { host: others.address, port: others.port, path: '/whoami' }), { ok: true, body: /^10\.244\.0\.10:\d+$/ }, 'not masqueraded')
})

t.test('hairpin: a pod reaches itself through a VIP once masqueraded', async (t) => {
  t.equal(vsConntrackBefore, 0, 'vs.conntrack off to begin with')
  const before = await node.request(a.name, { host: selfOnly.address, port: selfOnly.port, timeoutMs: 1500 })
  t.match(before, { ok: false, error: /ETIMEDOUT/ }, 'without the fix: the pod drops its own source address')

  await setSysctl('net.ipv4.vs.conntrack', 1)
  await ipset.create({ name: LOOP, type: 'hash:ip,port,ip' })
  for (const p of [a, b, c]) await ipset.add(LOOP, { ip: p.ip, protocol: 'tcp', port: 8080, ip2: p.ip })
  const tx = iptables.begin('nat')
  tx.appendRule('POSTROUTING', masquerade)
  await tx.commit()

  t.equal(readKey('net.ipv4.vs.conntrack'), '1', 'oracle: /proc/sys')
  const saved = lines(tool('ipset', ['save', LOOP]))
  t.match(saved[0], new RegExp(`^create ${LOOP} hash:ip,port,ip family inet `), 'oracle: ipset save')
  t.same(saved.slice(1).sort(), [a, b, c].map((p) => `add ${LOOP} ${p.ip},tcp:8080,${p.ip}`), 'oracle: ipset save')
  t.ok(lines(tool('iptables-legacy-save', ['-t', 'nat'])).includes(`-A POSTROUTING -m set --match-set ${LOOP} dst,dst,src -j MASQUERADE`), 'oracle: iptables-legacy-save')

  const after = await node.request(a.name, { host: selfOnly.address, port: selfOnly.port, path: '/whoami' })
  t.match(after, { ok: true, body: /^10\.244\.0\.1:\d+$/ }, 'now it answers, seeing the gateway as the client')
  await hairpinSpread(t, node, web, [a, b, c])
  t.match(await node.request(a.name, { host: others.address, port: others.port, path: '/whoami' }), { ok: true, body: /^10\.244\.0\.10:\d+$/ }, 'to other pods still not masqueraded')
})

t.test('everything made is gone again', async (t) => {
  await cleanUp()
  checkGone(t, names)
  t.equal(readKey('net.bridge.bridge-nf-call-iptables'), brnfBefore, 'bridge-nf-call-iptables as it was')
  t.equal(readKey('net.ipv4.ip_forward'), forwardBefore, 'ip_forward as it was')
  t.equal(readKey('net.ipv4.vs.conntrack'), String(vsConntrackBefore), 'vs.conntrack as it was')
  t.ok(node.pods.every((p) => !node.isRunning(p.name)), 'the node knows its agents are gone')
})
