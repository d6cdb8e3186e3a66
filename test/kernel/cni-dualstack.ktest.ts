// The fake CNI of test/support/cni.mjs made dual-stack (gateway6 and the pods'
// ip6), end to end in the box: IPv6 traffic between pods and from the node
// (HTTP and UDP, the same agents still answering IPv4), then IPv6 IPVS virtual
// services programmed through the library (VIPs on a dummy kube-ipvs0), and
// the IPv6 hairpin case, which works once the inet6 ipset + ip6tables
// MASQUERADE rule and net.ipv4.vs.conntrack=1 (one key for both families) are
// in place. ipvsadm, ipset, ip6tables-legacy-save and ip are the oracles;
// everything IPVS/ipset/ip6tables is written through the API.
import t from 'tap'
import { getSysctl, setSysctl, type Rule, type ServiceKey } from '../../dist/index.js'
import { makeNode, sh, tool, type FakeNode } from '../support/cni.mjs'
import { addCniServices, cniBox, hairpinSpread, roundRobin } from './support/cni-box.js'
import { lines, readKey } from './support/shell.js'

const re = (s: string): string => s.replace(/[.[\]]/g, '\\$&')

const gateway6 = 'fd00:10:244::1'
const [a, b, c] = [
  { name: 'ds-a', ip: '10.244.0.10', ip6: 'fd00:10:244::a' },
  { name: 'ds-b', ip: '10.244.0.11', ip6: 'fd00:10:244::b' },
  { name: 'ds-c', ip: '10.244.0.12', ip6: 'fd00:10:244::c' },
] as const
const d = { name: 'ds-d', ip: '10.244.0.13' } as const // IPv4 only, on the same node
const names = [a.name, b.name, c.name, d.name]

const web: ServiceKey = { protocol: 'tcp', address: 'fd00:10:96::a', port: 80 } // a, b, c
const dns: ServiceKey = { protocol: 'udp', address: 'fd00:10:96::a', port: 53 } // a, b, c, UDP echo
const others: ServiceKey = { protocol: 'tcp', address: 'fd00:10:96::b', port: 80 } // b and c, not a
const selfOnly: ServiceKey = { protocol: 'tcp', address: 'fd00:10:96::c', port: 80 } // a only
const LOOP = 'KUBE-LOOP-BACK6'
const masquerade: Rule = { matches: [{ match: 'set', matchSet: LOOP, flags: ['dst', 'dst', 'src'] }], target: { target: 'MASQUERADE' } }

const forward6Before = readKey('net.ipv6.conf.all.forwarding')
const forwardBefore = readKey('net.ipv4.ip_forward')
const vsConntrackBefore = await getSysctl('net.ipv4.vs.conntrack')

const started = Date.now()
const node: FakeNode = await makeNode({ gateway6, pods: [a, b, c, d] })
t.comment(`makeNode, 4 pods dual-stack: ${Date.now() - started} ms (links and netns ${node.timings.setupMs} ms, agents ${node.timings.agentsMs} ms)`)

const { ipvs, ipset, iptables: ip6tables, cleanUp, checkGone } = await cniBox(t, node, { family: 'inet6', loop: LOOP, vsConntrackBefore })

t.test('makeNode with gateway6: IPv6 on the bridge and on the pods that have an ip6', async (t) => {
  t.equal(node.gateway6, gateway6)
  t.equal(node.prefix6, 64, 'prefix6 defaults to 64')
  t.same(node.pods.map((p) => [p.name, p.ip, p.ip6]), [[a.name, a.ip, a.ip6], [b.name, b.ip, b.ip6], [c.name, c.ip, c.ip6], [d.name, d.ip, undefined]])
  t.notOk('ip6' in node.pod(d.name), 'no ip6 key on a v4-only pod')
  t.match(tool('ip', ['-o', 'addr', 'show', 'dev', node.bridge]), new RegExp(`inet6 ${re(gateway6)}/64 scope global nodad`), 'the gateway6 on the bridge')
  t.match(tool('ip', ['-n', b.name, '-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet6 ${re(b.ip6)}/64 scope global nodad`), "b's ip6 on its eth0")
  t.match(tool('ip', ['-n', b.name, '-6', 'route', 'show', 'default']), new RegExp(`^default via ${re(gateway6)} dev eth0`), "b's default IPv6 route")
  t.match(tool('ip', ['-n', b.name, '-4', 'route', 'show', 'default']), /^default via 10\.244\.0\.1 dev eth0/, 'and its IPv4 one')
  t.notMatch(tool('ip', ['-n', d.name, '-o', 'addr', 'show', 'dev', 'eth0']), /inet6 \S+ scope global/, 'd: no global IPv6 address')
  t.equal(tool('ip', ['-n', d.name, '-6', 'route', 'show', 'default']), '', 'd: no default IPv6 route')
  t.equal(readKey('net.ipv6.conf.all.forwarding'), '1')
  t.equal(readKey('net.ipv4.ip_forward'), '1')
  t.ok(node.brNetfilter, 'the box loads br_netfilter')
  t.equal(readKey('net.bridge.bridge-nf-call-ip6tables'), '1')
  t.equal(readKey('net.bridge.bridge-nf-call-iptables'), '1')
})

t.test('pod to pod over IPv6 (HTTP), and the same agents over IPv4', async (t) => {
  t.same(await node.request(a.name, { host: b.ip6, port: 8080 }), { ok: true, status: 200, body: b.name })
  t.same(await node.request(b.name, { host: `[${c.ip6}]`, port: 8080 }), { ok: true, status: 200, body: c.name }, 'host in brackets')
  t.match(await node.request(c.name, { host: a.ip6, port: 8080, path: '/whoami' }), { ok: true, body: new RegExp(`^\\[${re(c.ip6)}\\]:\\d+$`) }, 'a sees c as [ip6]:port')
  t.match(await node.request(c.name, { host: a.ip, port: 8080, path: '/whoami' }), { ok: true, body: /^10\.244\.0\.12:\d+$/ }, 'over IPv4 still a.b.c.d:port, not ::ffff:')
  t.same(await node.request(d.name, { host: a.ip, port: 8080 }), { ok: true, status: 200, body: a.name }, 'the v4-only pod over IPv4')
  t.match(await node.request(d.name, { host: a.ip6, port: 8080, timeoutMs: 1000 }), { ok: false, error: /ENETUNREACH|EHOSTUNREACH|ETIMEDOUT/ }, 'the v4-only pod has no IPv6 route')
  t.match(await node.request(a.name, { host: 'fd00:10:244::99', port: 8080, timeoutMs: 1000 }), { ok: false, error: /ETIMEDOUT|EHOSTUNREACH/ }, 'no such pod')
})

t.test('node to pod over IPv6', async (t) => {
  for (const p of [a, b, c]) t.same(await node.request('node', { host: p.ip6, port: 8080 }), { ok: true, status: 200, body: p.name })
  t.match(await node.request('node', { host: a.ip6, port: 8080, path: '/whoami' }), { ok: true, body: new RegExp(`^\\[${re(gateway6)}\\]:\\d+$`) }, 'the node comes from gateway6')
  t.match(await node.request('node', { host: a.ip6, port: 8081, timeoutMs: 1000 }), { ok: false, error: 'ECONNREFUSED' }, 'a closed port')
})

t.test('UDP echo over IPv6 (and IPv4 on the same socket)', async (t) => {
  t.same(await node.request(a.name, { proto: 'udp', host: b.ip6, port: 5353 }), { ok: true, body: b.name })
  t.same(await node.request('node', { proto: 'udp', host: c.ip6, port: 5353 }), { ok: true, body: c.name })
  t.same(await node.request('node', { proto: 'udp', host: `[${c.ip6}]`, port: 5353 }), { ok: true, body: c.name }, 'host in brackets')
  t.match(await node.request(b.name, { proto: 'udp', host: a.ip6, port: 5353, payload: 'whoami' }), { ok: true, body: new RegExp(`^\\[${re(b.ip6)}\\]:\\d+$`) })
  t.match(await node.request('node', { proto: 'udp', host: a.ip6, port: 5353, payload: 'whoami' }), { ok: true, body: new RegExp(`^\\[${re(gateway6)}\\]:\\d+$`) })
  t.match(await node.request(b.name, { proto: 'udp', host: a.ip, port: 5353, payload: 'whoami' }), { ok: true, body: /^10\.244\.0\.11:\d+$/ }, 'IPv4 sender, no ::ffff:')
  t.match(await node.request('node', { proto: 'udp', host: a.ip6, port: 5354, timeoutMs: 1000 }), { ok: false, error: 'ECONNREFUSED' }, 'a closed port')
})

t.test('IPv6 IPVS virtual services, programmed through the API', async (t) => {
  sh(`ip link add kube-ipvs0 type dummy
      ${[web, others, selfOnly].map((s) => `ip -6 addr add ${s.address}/128 dev kube-ipvs0 nodad`).join('\n')}
      ip link set kube-ipvs0 up`)
  await addCniServices(t, ipvs, { web, dns, others, selfOnly }, [a, b, c], (p) => p.ip6)
})

t.test('node to the IPv6 VIP reaches all three pods, round robin', (t) => roundRobin(t, node, { web, dns, others, selfOnly }, [a, b, c]))

t.test('pod to the IPv6 VIP of other pods', async (t) => {
  const r = await node.requestMany(a.name, { host: others.address, port: others.port }, 4)
  t.same(r.errors, [])
  t.same(r.counts, { [b.name]: 2, [c.name]: 2 })
  // the bridged reply is un-NATed by IPVS through br_netfilter's ip6tables hooks
  t.match(await node.request(a.name, { host: others.address, port: others.port, path: '/whoami' }), { ok: true, body: new RegExp(`^\\[${re(a.ip6)}\\]:\\d+$`) }, 'not masqueraded')
})

t.test('IPv6 hairpin: a pod reaches itself through a v6 VIP once masqueraded', async (t) => {
  t.equal(vsConntrackBefore, 0, 'vs.conntrack off to begin with')
  const before = await node.request(a.name, { host: selfOnly.address, port: selfOnly.port, timeoutMs: 1500 })
  t.match(before, { ok: false }, 'without the fix it fails')
  t.comment(`without the fix: ${JSON.stringify(before)}`)

  await setSysctl('net.ipv4.vs.conntrack', 1)
  await ipset.create({ name: LOOP, type: 'hash:ip,port,ip', family: 'inet6' })
  for (const p of [a, b, c]) {
    await ipset.add(LOOP, { ip: p.ip6, protocol: 'tcp', port: 8080, ip2: p.ip6 })
    await ipset.add(LOOP, { ip: p.ip6, protocol: 'udp', port: 5353, ip2: p.ip6 })
  }
  const tx = ip6tables.begin('nat')
  tx.appendRule('POSTROUTING', masquerade)
  await tx.commit()

  t.equal(readKey('net.ipv4.vs.conntrack'), '1', 'oracle: /proc/sys')
  const saved = lines(tool('ipset', ['save', LOOP]))
  t.match(saved[0], new RegExp(`^create ${LOOP} hash:ip,port,ip family inet6 `), 'oracle: ipset save')
  t.same(saved.slice(1).sort(), [a, b, c].flatMap((p) => [`add ${LOOP} ${p.ip6},tcp:8080,${p.ip6}`, `add ${LOOP} ${p.ip6},udp:5353,${p.ip6}`]).sort(), 'oracle: ipset save')
  t.ok(lines(tool('ip6tables-legacy-save', ['-t', 'nat'])).includes(`-A POSTROUTING -m set --match-set ${LOOP} dst,dst,src -j MASQUERADE`), 'oracle: ip6tables-legacy-save')

  const after = await node.request(a.name, { host: selfOnly.address, port: selfOnly.port, path: '/whoami' })
  t.match(after, { ok: true, body: new RegExp(`^\\[${re(gateway6)}\\]:\\d+$`) }, 'now it answers, seeing gateway6 as the client')
  await hairpinSpread(t, node, web, [a, b, c])
  const u = await node.requestMany(b.name, { proto: 'udp', host: dns.address, port: dns.port }, 6)
  t.same(u.errors, [], 'UDP: b through the VIP of all three, itself included')
  t.same(u.counts, { [a.name]: 2, [b.name]: 2, [c.name]: 2 }, 'UDP')
  t.match(await node.request(c.name, { proto: 'udp', host: dns.address, port: dns.port, payload: 'whoami' }), { ok: true, body: /^\[fd00:10:244::(1|c)\]:\d+$/ }, 'UDP whoami through the VIP')
  t.match(await node.request(a.name, { host: others.address, port: others.port, path: '/whoami' }), { ok: true, body: new RegExp(`^\\[${re(a.ip6)}\\]:\\d+$`) }, 'to other pods still not masqueraded')
})

t.test('everything made is gone again', async (t) => {
  await cleanUp()
  checkGone(t, names)
  t.equal(readKey('net.ipv6.conf.all.forwarding'), forward6Before, 'ipv6 forwarding as it was')
  t.equal(readKey('net.ipv4.ip_forward'), forwardBefore, 'ip_forward as it was')
  t.equal(readKey('net.ipv4.vs.conntrack'), String(vsConntrackBefore), 'vs.conntrack as it was')
})
