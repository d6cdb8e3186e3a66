// The tsproxy daemon in IPVS mode against a real kernel, with real TCP and UDP:
// a fake CNI (bridge, three pod namespaces serving HTTP and UDP) and the daemon
// reading a manifest directory. Everything the daemon does goes through its own
// netlink/libiptc code; ipvsadm, ipset and iptables-legacy-save are only read
// here, as oracles, and the traffic itself is the final judge.
import t from 'tap'
import { mkdtempSync, renameSync, rmSync, writeFileSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNode, numberedPods, sh, tool, type FakeNode } from '../support/cni.mjs'
import { startDaemon, until, writeManifest, type RunningDaemon } from '../support/daemon.mjs'

const NODE = 'node1'
const OTHER = 'node2'
const pods = numberedPods('p', 11)
const NODE_IP = '192.168.50.10'
const EXTERNAL_IP = '192.168.60.1'

type Ep = { ip: string; node?: string; ready?: boolean; serving?: boolean; terminating?: boolean }

function service(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec }
}

function slice(svc: string, eps: Ep[], port = { name: 'http', protocol: 'TCP', port: 8080 }): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abc12`, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [port],
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.serving ?? true, terminating: e.terminating ?? false },
      nodeName: e.node ?? NODE,
    })),
  }
}

const all: Ep[] = pods.map((p) => ({ ip: p.ip }))
const http = (port: number, extra: Record<string, unknown> = {}) => [{ name: 'http', protocol: 'TCP', port, targetPort: 8080, ...extra }]

const dir = mkdtempSync(join(tmpdir(), 'tsproxy-ktest-'))
const write = (file: string, ...items: object[]): void => writeManifest(dir, file, items)

write('web.json', service('web', { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: http(80) }), slice('web', all))
write('web-np.json', service('web-np', { type: 'NodePort', clusterIP: '10.96.0.11', ports: http(80, { nodePort: 30080 }) }), slice('web-np', all))
write(
  'sticky.json',
  service('sticky', { type: 'ClusterIP', clusterIP: '10.96.0.12', ports: http(80), sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
  slice('sticky', all),
)
write(
  'local.json',
  service('local', { type: 'NodePort', clusterIP: '10.96.0.13', ports: http(80, { nodePort: 30081 }), externalTrafficPolicy: 'Local' }),
  slice('local', [{ ip: pods[0]!.ip }, { ip: pods[1]!.ip, node: OTHER }, { ip: pods[2]!.ip, node: OTHER }]),
)
write('ext.json', service('ext', { type: 'ClusterIP', clusterIP: '10.96.0.14', externalIPs: [EXTERNAL_IP], ports: http(80) }), slice('ext', all))
write(
  'dns.json',
  service('dns', { type: 'ClusterIP', clusterIP: '10.96.0.15', ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }] }),
  slice('dns', all, { name: 'dns', protocol: 'UDP', port: 5353 }),
)
write('drain.json', service('drain', { type: 'ClusterIP', clusterIP: '10.96.0.16', ports: http(80) }), slice('drain', [{ ip: pods[1]!.ip }]))

let node: FakeNode
let daemon: RunningDaemon
const daemonArgs = [`--hostname-override=${NODE}`, '--cluster-cidr=10.244.0.0/16', '--ipvs-sync-period=2s', '--ipvs-min-sync-period=0s']

t.before(async () => {
  sh(`ip link set lo up; ip link add eth0 type dummy; ip addr add ${NODE_IP}/24 dev eth0; ip link set eth0 up`)
  node = await makeNode({ pods })
  // A KUBE-CLUSTER-IP too small for these services (as 65536 is for 100k service ports): the
  // daemon keeps it, and the first sync replaces it by one with room, swapped in atomically.
  sh('ipset create KUBE-CLUSTER-IP hash:ip,port maxelem 4')
  daemon = await startDaemon({ manifests: dir, args: daemonArgs })
})

t.teardown(async () => {
  await daemon?.stop()
  await node?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

const get = (from: string, host: string, port = 80, path = '/') => node.request(from, { host, port, path, timeoutMs: 3000 })
const many = (from: string, host: string, n: number, port = 80) => node.requestMany(from, { host, port, timeoutMs: 3000 }, n)

t.test('what the daemon programmed reads back in ipvsadm, ipset and iptables-legacy-save', async (t) => {
  const saved = tool('ipvsadm', ['-Sn'])
  for (const line of [
    '-A -t 10.96.0.10:80 -s rr',
    '-a -t 10.96.0.10:80 -r 10.244.0.11:8080 -m -w 1',
    '-a -t 10.96.0.10:80 -r 10.244.0.12:8080 -m -w 1',
    '-a -t 10.96.0.10:80 -r 10.244.0.13:8080 -m -w 1',
    '-A -t 10.96.0.12:80 -s rr -p 60',
    `-A -t ${NODE_IP}:30080 -s rr`,
    `-A -t ${EXTERNAL_IP}:80 -s rr`,
    '-A -u 10.96.0.15:53 -s rr',
    '-a -u 10.96.0.15:53 -r 10.244.0.11:5353 -m -w 1',
  ])
    t.ok(saved.split('\n').includes(line), `ipvsadm -Sn has ${line}`)
  // ETP Local: the node port has only this node's endpoint, the cluster IP all three.
  const localNP = saved.split('\n').filter((l) => l.startsWith(`-a -t ${NODE_IP}:30081 `))
  t.same(localNP, [`-a -t ${NODE_IP}:30081 -r 10.244.0.11:8080 -m -w 1`], 'ETP Local node port: only the local endpoint')
  t.equal(saved.split('\n').filter((l) => l.startsWith('-a -t 10.96.0.13:80 ')).length, 3, 'ETP Local cluster IP: every endpoint')

  const sets = tool('ipset', ['save'])
  for (const line of [
    'add KUBE-CLUSTER-IP 10.96.0.10,tcp:80',
    'add KUBE-CLUSTER-IP 10.96.0.15,udp:53',
    'add KUBE-LOOP-BACK 10.244.0.11,tcp:8080,10.244.0.11',
    'add KUBE-NODE-PORT-TCP 30080',
    'add KUBE-NODE-PORT-LOCAL-TCP 30081',
    `add KUBE-EXTERNAL-IP ${EXTERNAL_IP},tcp:80`,
    'add KUBE-IPVS-IPS 10.96.0.10',
  ])
    t.ok(sets.split('\n').includes(line), `ipset save has ${line}`)
  t.ok(sets.split('\n').includes('add KUBE-LOOP-BACK 10.244.0.13,tcp:8080,10.244.0.13'), 'every local endpoint hairpins')
  t.match(sets, /^create KUBE-CLUSTER-IP hash:ip,port family inet hashsize \d+ maxelem 65536 /m, 'the too small KUBE-CLUSTER-IP grew')
  t.equal(sets.split('\n').filter((l) => l.startsWith('add KUBE-CLUSTER-IP ')).length, 7, 'with every cluster IP:port in it')
  t.ok(daemon.logs.some((r) => r.msg === 'ipset grown' && r.set === 'KUBE-CLUSTER-IP' && r.maxelem === 65536), 'the daemon says so')

  const nat = tool('iptables-legacy-save', ['-t', 'nat'])
  for (const line of [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE',
    '-A KUBE-SERVICES ! -s 10.244.0.0/16 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
  ])
    t.ok(nat.split('\n').includes(line), `iptables-legacy-save -t nat has ${line}`)
  for (const [key, value] of [
    ['net.ipv4.vs.conntrack', '1'],
    ['net.ipv4.vs.expire_nodest_conn', '1'],
    ['net.ipv4.vs.expire_quiescent_template', '1'],
    ['net.ipv4.ip_forward', '1'],
    ['net.netfilter.nf_conntrack_tcp_timeout_established', '86400'],
    ['net.netfilter.nf_conntrack_tcp_timeout_close_wait', '3600'],
  ])
    t.equal(tool('sysctl', ['-n', key]).trim(), value, `sysctl ${key} = ${value}`)
  const addrs = tool('ip', ['-4', '-o', 'addr', 'show', 'dev', 'kube-ipvs0'])
  for (const ip of ['10.96.0.10', '10.96.0.15', EXTERNAL_IP]) t.match(addrs, `inet ${ip}/32`, `${ip} bound on kube-ipvs0`)
})

t.test('ClusterIP from the node reaches every pod', async (t) => {
  const r = await many('node', '10.96.0.10', 9)
  t.same(r.errors, [], 'no failed request')
  t.same(Object.keys(r.counts).sort(), ['p1', 'p2', 'p3'], 'all three pods answered')
})

t.test('ClusterIP from each pod, including a pod reaching itself (hairpin)', async (t) => {
  for (const p of pods) {
    const r = await many(p.name, '10.96.0.10', 6)
    t.same(r.errors, [], `${p.name}: no failed request`)
    t.ok((r.counts[p.name] ?? 0) > 0, `${p.name} reached itself through the VIP`)
    t.equal(Object.keys(r.counts).length, 3, `${p.name} reached all three pods`)
  }
  // A hairpinned connection arrives masqueraded (from the bridge's address), or
  // the pod would answer itself directly and drop its own reply; traffic from a
  // pod to another pod keeps its source (it is inside the cluster CIDR).
  const whoami = await node.requestMany('p1', { host: '10.96.0.10', port: 80, path: '/whoami', timeoutMs: 3000 }, 6)
  t.same(whoami.errors, [], 'no failed /whoami')
  const sources = new Set(whoami.bodies.map((b) => b.split(':')[0]))
  t.same([...sources].sort(), ['10.244.0.1', '10.244.0.11'], 'sources seen: masqueraded when hairpinned, the pod itself otherwise')
})

t.test('NodePort on a node address, from the node and from a pod', async (t) => {
  const fromNode = await many('node', NODE_IP, 6, 30080)
  t.same(fromNode.errors, [], 'from the node')
  t.equal(Object.keys(fromNode.counts).length, 3, 'balanced over three pods')
  const fromPod = await many('p2', NODE_IP, 3, 30080)
  t.same(fromPod.errors, [], 'from a pod')
})

t.test('externalIP', async (t) => {
  const r = await many('node', EXTERNAL_IP, 6)
  t.same(r.errors, [], 'no failed request')
  t.equal(Object.keys(r.counts).length, 3, 'all three pods answered')
})

t.test('ClientIP affinity sticks', async (t) => {
  const r = await many('node', '10.96.0.12', 8)
  t.same(r.errors, [], 'no failed request')
  t.equal(Object.keys(r.counts).length, 1, `one pod answered every request (${JSON.stringify(r.counts)})`)
})

t.test('externalTrafficPolicy Local: the node port goes to this node\'s endpoint only', async (t) => {
  const np = await many('node', NODE_IP, 6, 30081)
  t.same(np.errors, [], 'no failed request')
  t.same(np.counts, { p1: 6 }, 'only p1 (the local endpoint)')
  const cip = await many('node', '10.96.0.13', 6)
  t.equal(Object.keys(cip.counts).length, 3, 'the cluster IP still reaches all three')
})

t.test('UDP through a ClusterIP', async (t) => {
  const r = await node.requestMany('node', { host: '10.96.0.15', port: 53, proto: 'udp', timeoutMs: 3000 }, 3)
  t.same(r.errors, [], 'no lost datagram')
  t.ok(r.bodies.every((b) => ['p1', 'p2', 'p3'].includes(b)), `answers from pods: ${r.bodies.join(' ')}`)

  // UDP has no end of connection: when an endpoint goes, the conntrack entries
  // that lead to it are deleted, or its clients would keep sending into the void.
  const toward = (ip: string): boolean =>
    tool('conntrack', ['-L', '-p', 'udp', '--orig-dst', '10.96.0.15'])
      .split('\n')
      .some((l) => /^.*?src=\S+ dst=\S+ .*?src=(\S+)/.exec(l)?.[1] === ip) // the reply direction's source
  t.ok(toward('10.244.0.11'), 'before: a conntrack entry answered by p1')
  t.ok(toward('10.244.0.12'), 'before: a conntrack entry answered by p2')
  write(
    'dns.json',
    service('dns', { type: 'ClusterIP', clusterIP: '10.96.0.15', ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }] }),
    slice('dns', all.slice(1), { name: 'dns', protocol: 'UDP', port: 5353 }),
  )
  await until(() => !tool('ipvsadm', ['-Ln', '-u', '10.96.0.15:53']).includes('10.244.0.11:5353'), { what: 'p1 out of the UDP service' })
  await until(() => !toward('10.244.0.11'), { what: 'the entries toward p1 deleted' })
  t.pass('after: no conntrack entry toward the removed endpoint')
  t.ok(toward('10.244.0.12'), 'entries toward the remaining endpoints stay')
})

t.test('an endpoint removed while a connection is open: it finishes, new ones go elsewhere', async (t) => {
  const slow = node.request('node', { host: '10.96.0.16', port: 80, path: '/slow?ms=4000', timeoutMs: 20_000 })
  await until(() => tool('ipvsadm', ['-Ln', '-t', '10.96.0.16:80']).match(/10\.244\.0\.12:8080\s+Masq\s+1\s+1\s/), { what: 'the open connection' })
  write('drain.json', service('drain', { type: 'ClusterIP', clusterIP: '10.96.0.16', ports: http(80) }), slice('drain', [{ ip: pods[2]!.ip }]))
  await until(() => /10\.244\.0\.12:8080\s+Masq\s+0\s+1\s/.test(tool('ipvsadm', ['-Ln', '-t', '10.96.0.16:80'])), { what: 'weight 0 on the old endpoint' })
  const fresh = await many('node', '10.96.0.16', 3)
  t.same(fresh.counts, { p3: 3 }, 'new connections go to the new endpoint')
  const done = await slow
  t.same(done, { ok: true, body: 'p2', status: 200 }, 'the open connection finished on the old endpoint')
  await until(() => !tool('ipvsadm', ['-Ln', '-t', '10.96.0.16:80']).includes('10.244.0.12:8080'), { what: 'the drained endpoint deleted' })
  t.pass('the drained endpoint was deleted once its connection ended')
})

t.test('two manifests on one cluster IP:port: the first by name owns it, the other takes over when it goes', async (t) => {
  const dests = () => tool('ipvsadm', ['-Sn']).split('\n').filter((l) => l.startsWith('-a -t 10.96.0.18:80 ')).sort()
  const only = (...ps: string[]) => ps.map((ip) => `-a -t 10.96.0.18:80 -r ${ip}:8080 -m -w 1`)
  write('dup-a.json', service('dup-a', { type: 'ClusterIP', clusterIP: '10.96.0.18', ports: http(80) }), slice('dup-a', [{ ip: pods[0]!.ip }]))
  await until(() => dests().length === 1, { what: 'dup-a programmed' })
  const from = daemon.logs.length
  // dup-b's second port (no conflict) shows when its sync has run.
  const ports = [...http(80), { name: 'alt', protocol: 'TCP', port: 81, targetPort: 8080 }]
  write('dup-b.json', service('dup-b', { type: 'ClusterIP', clusterIP: '10.96.0.18', ports }), slice('dup-b', [{ ip: pods[1]!.ip }, { ip: pods[2]!.ip }]))
  await until(() => tool('ipvsadm', ['-Sn']).includes('-A -t 10.96.0.18:81 '), { what: 'dup-b\'s other port programmed' })
  t.same(dests(), only(pods[0]!.ip), 'ipvsadm: exactly dup-a\'s real server, though dup-b came last')
  t.same((await many('node', '10.96.0.18', 4)).counts, { p1: 4 }, 'only dup-a\'s pod answers')
  const warned = daemon.logs.slice(from).filter((r) => r.msg === 'services conflict: the same virtual server')
  t.equal(warned.length, 1, 'the conflict is logged once')
  t.match(warned[0], { level: 'warn', servers: ['tcp/10.96.0.18:80'], owner: 'default/dup-a:http/TCP', ignored: ['default/dup-b:http/TCP'] }, 'naming both services and the address:port')
  await until(async () => (await daemon.metric('tsproxy_service_conflicts')) === 1, { what: 'tsproxy_service_conflicts 1', timeoutMs: 5000 })
  t.pass('and counted in tsproxy_service_conflicts')
  t.match(sh('node dist/proxy/main.js status'), /default\/dup-a:http\s+TCP 10\.96\.0\.18:80 .*\n\s+\(also asked for by default\/dup-b:http: ignored/, 'tsproxy status shows the owner and the ignored one')

  unlinkSync(join(dir, 'dup-a.json'))
  await until(() => JSON.stringify(dests()) === JSON.stringify(only(pods[1]!.ip, pods[2]!.ip)), { what: 'exactly dup-b\'s real servers', timeoutMs: 15_000 })
  t.pass('dup-a deleted: ipvsadm shows exactly dup-b\'s real servers')
  const r = await many('node', '10.96.0.18', 6)
  t.same(r.errors, [])
  t.same(Object.keys(r.counts).sort(), ['p2', 'p3'], 'dup-b\'s pods answer')
  await until(async () => (await daemon.metric('tsproxy_service_conflicts')) === 0, { what: 'tsproxy_service_conflicts 0', timeoutMs: 5000 })
  t.pass('no conflict left')
  unlinkSync(join(dir, 'dup-b.json'))
  await until(() => !tool('ipvsadm', ['-Sn']).includes('10.96.0.18:'), { what: 'dup-b gone' })
})

t.test('bad manifests are logged, counted and skipped; the rest keeps working', async (t) => {
  const from = daemon.logs.length
  write(
    'bad.json',
    service('bad-ip', { type: 'ClusterIP', clusterIP: '10.96.0.300', ports: http(80) }),
    { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default' }, spec: { ports: http(80) } },
    service('good', { type: 'ClusterIP', clusterIP: '10.96.0.17', ports: http(80) }),
    slice('good', [{ ip: pods[0]!.ip }]),
  )
  const logged = await daemon.waitLog((r) => r.level === 'error' || r.level === 'warn', { from })
  t.match(JSON.stringify(logged), /bad\.json/, `the refusal names the file: ${logged.msg}`)
  await until(async () => ((await daemon.metric('tsproxy_manifest_errors_total')) ?? 0) >= 2, { what: 'tsproxy_manifest_errors_total >= 2' })
  t.pass('tsproxy_manifest_errors_total counts both bad documents')
  const good = await until(async () => {
    const r = await get('node', '10.96.0.17')
    return r.ok ? r : undefined
  }, { what: 'the good service in the same file' })
  t.equal(good.body, 'p1', 'a good service next to the bad ones works')
  const web = await many('node', '10.96.0.10', 3)
  t.same(web.errors, [], 'the other services keep working')
  unlinkSync(join(dir, 'bad.json'))
})

t.test('kube-proxy leniency: a leading-zero cluster IP, a bad endpoint, a NodePort without a node port', async (t) => {
  // Leading zeros are decimal, as kube-proxy's ParseIPSloppy reads them: 021 is 21 (not octal 17, the 'good' service's).
  const raw = slice('sloppy', [{ ip: '10.244.0.011' }, { ip: pods[1]!.ip }, { ip: pods[2]!.ip }]) as { endpoints: { nodeName: string }[] }
  raw.endpoints[1]!.nodeName = 'Node_B' // not a DNS name: this endpoint alone is left out
  const from = daemon.logs.length
  write('sloppy.json', service('sloppy', { type: 'NodePort', clusterIP: '10.96.0.021', ports: http(80) }), raw)
  const dests = () => tool('ipvsadm', ['-Sn']).split('\n').filter((l) => l.startsWith('-a -t 10.96.0.21:80 ')).sort()
  await until(() => dests().length > 0, { what: 'sloppy programmed' })
  const saved = tool('ipvsadm', ['-Sn'])
  t.ok(saved.includes('-A -t 10.96.0.21:80 -s rr'), 'ipvsadm -Sn: the canonical cluster IP')
  t.same(dests(), ['-a -t 10.96.0.21:80 -r 10.244.0.11:8080 -m -w 1', '-a -t 10.96.0.21:80 -r 10.244.0.13:8080 -m -w 1'], 'ipvsadm -Sn: the good endpoints, canonical')
  t.same(saved.split('\n').filter((l) => l.startsWith(`-A -t ${NODE_IP}:`)).sort(), [`-A -t ${NODE_IP}:30080 -s rr`, `-A -t ${NODE_IP}:30081 -s rr`], 'no node port for it')
  const logged = await daemon.waitLog((r) => r.level === 'warn' && r.msg === 'manifest object partly applied', { from })
  t.match(JSON.stringify(logged), /endpoints\[1\]\.nodeName/, 'the left-out endpoint is logged with its field')
  const r = await many('node', '10.96.0.21', 6)
  t.same(r.errors, [], 'no failed request')
  t.same(Object.keys(r.counts).sort(), ['p1', 'p3'], 'p1 and p3 answer')
  unlinkSync(join(dir, 'sloppy.json'))
  await until(() => !tool('ipvsadm', ['-Sn']).includes('10.96.0.21:'), { what: 'sloppy gone' })
})

t.test('drift is repaired by the periodic resync: ipvsadm -C, a set member deleted, a VIP removed', async (t) => {
  const before = (await daemon.metric('tsproxy_drift_repairs_total{subsystem="ipvs"}')) ?? 0
  tool('ipvsadm', ['-C'])
  tool('ipset', ['del', 'KUBE-LOOP-BACK', '10.244.0.11,tcp:8080,10.244.0.11'])
  tool('ip', ['addr', 'del', '10.96.0.12/32', 'dev', 'kube-ipvs0'])
  await until(() => tool('ipvsadm', ['-Sn']).includes('-A -t 10.96.0.10:80 -s rr'), { what: 'the virtual servers back', timeoutMs: 15_000 })
  await until(() => tool('ipset', ['save', 'KUBE-LOOP-BACK']).includes('add KUBE-LOOP-BACK 10.244.0.11,tcp:8080,10.244.0.11'), { what: 'the set member back' })
  await until(() => tool('ip', ['-4', '-o', 'addr', 'show', 'dev', 'kube-ipvs0']).includes('inet 10.96.0.12/32'), { what: 'the VIP back' })
  const after = (await daemon.metric('tsproxy_drift_repairs_total{subsystem="ipvs"}')) ?? 0
  t.ok(after > before, `tsproxy_drift_repairs_total{subsystem="ipvs"} grew (${before} -> ${after})`)
  const r = await many('p1', '10.96.0.10', 6)
  t.same(r.errors, [], 'traffic works again, hairpin included')
})

t.test('the manifest directory renamed away: every rule stays through full resyncs, /healthz fails, and what changed meanwhile applies after', async (t) => {
  await until(() => !tool('ipvsadm', ['-Sn']).includes('10.96.0.17'), { what: 'bad.json\'s good service gone' })
  const saved = tool('ipvsadm', ['-Sn'])
  const from = daemon.logs.length
  renameSync(dir, `${dir}.away`)
  t.teardown(() => rmSync(`${dir}.away`, { recursive: true, force: true }))
  await daemon.waitLog((r) => r.level === 'warn' && String(r.msg).startsWith('cannot read the manifest source'), { from })
  await daemon.waitLog((r) => r.msg === 'full sync', { from: daemon.logs.length })
  t.equal(tool('ipvsadm', ['-Sn']), saved, 'ipvsadm -Sn unchanged after a full resync without the source')
  t.same((await many('node', '10.96.0.10', 3)).errors, [], 'traffic flows')
  // 2 x --ipvs-sync-period (2s): 503 once the outage lasts 4 s.
  const bad = await until(async () => {
    const r = await daemon.get('/healthz', '127.0.0.1:10256')
    return r.status === 503 ? r : undefined
  }, { what: '/healthz 503', timeoutMs: 15_000 })
  t.match(bad.text, /"sourceError":"manifests: ENOENT/, '/healthz says why')
  t.ok(((await daemon.metric('tsproxy_source_errors_total{reason="ENOENT",source="manifests"}')) ?? 0) >= 1, 'counted')
  unlinkSync(join(`${dir}.away`, 'drain.json'))
  renameSync(`${dir}.away`, dir)
  await until(() => !tool('ipvsadm', ['-Sn']).includes('10.96.0.16'), { what: 'the service removed meanwhile gone' })
  t.equal(tool('ipvsadm', ['-Sn']).split('\n').filter((l) => !l.includes('10.96.0.16')).join('\n'), saved.split('\n').filter((l) => !l.includes('10.96.0.16')).join('\n'), 'and nothing else changed')
  await until(async () => (await daemon.get('/healthz', '127.0.0.1:10256')).status === 200, { what: '/healthz 200 again' })
  t.pass('/healthz is 200 again')
})

t.test('a daemon restart under a steady request loop fails no request and rewrites nothing', async (t) => {
  let stop = false
  let ok = 0
  const failures: string[] = []
  const loop = (async () => {
    while (!stop) {
      const r = await get('node', '10.96.0.10')
      if (r.ok) ok++
      else failures.push(r.error)
    }
  })()
  await until(() => ok >= 5, { what: 'the loop running' })
  const exit = await daemon.stop('SIGTERM')
  t.equal(exit.code, 0, 'the daemon exits 0 on SIGTERM')
  const during = ok
  await until(() => ok >= during + 5, { what: 'requests served with no daemon running' })
  // The same settings, this time from a KubeProxyConfiguration file (YAML 1.1 booleans, Go durations).
  const configFile = join(tmpdir(), `tsproxy-ktest-config-${process.pid}.yaml`)
  writeFileSync(
    configFile,
    `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nhostnameOverride: ${NODE}\nclusterCIDR: 10.244.0.0/16\n` +
      `ipvs:\n  syncPeriod: 2s\n  minSyncPeriod: 0s\n  strictARP: no\n`,
  )
  t.teardown(() => rmSync(configFile, { force: true }))
  daemon = await startDaemon({ manifests: dir, args: [`--config=${configFile}`] })
  const first = await daemon.waitLog((r) => r.msg === 'full sync')
  const ops = first.ops as Record<string, number>
  t.same({ ipvs: ops.ipvs, ipset: ops.ipset, rtnl: ops.rtnl, iptables: ops.iptables }, { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0 }, 'the new daemon adopted the kernel state: no write')
  const after = ok
  await until(() => ok >= after + 5, { what: 'requests after the restart' })
  stop = true
  await loop
  t.same(failures, [], `zero failed requests out of ${ok + failures.length}`)
})

t.test('tsproxy status names services, VIPs and endpoints with weights and connections', async (t) => {
  const s = await daemon.status()
  const web = s.find((e) => e.vip === '10.96.0.10:80')
  t.ok(web, 'the web VIP is listed')
  t.equal(web?.service, 'default/web:http', 'with its Kubernetes name')
  t.same(web?.endpoints.map((e) => `${e.address} w${e.weight}`).sort(), ['10.244.0.11:8080 w1', '10.244.0.12:8080 w1', '10.244.0.13:8080 w1'])
  const out = sh('node dist/proxy/main.js status')
  t.match(out, /default\/web:http\s+TCP 10\.96\.0\.10:80\s+rr/, 'the CLI prints the service line')
  t.match(out, /-> 10\.244\.0\.11:8080\s+weight 1\s+active \d+\s+inactive \d+/, 'and its endpoints')
})

t.test('tsproxy cleanup removes what it made and nothing else', async (t) => {
  await daemon.stop()
  tool('ipvsadm', ['-A', '-t', '192.168.99.1:80', '-s', 'wlc'])
  sh('iptables-legacy -t nat -N OTHER-CHAIN')
  const out = sh('node dist/proxy/main.js cleanup 2>&1')
  t.match(out, /cleaned up/, 'it says so')
  const saved = tool('ipvsadm', ['-Sn'])
  t.equal(saved.trim(), '-A -t 192.168.99.1:80 -s wlc', 'only the foreign virtual server is left')
  const nat = tool('iptables-legacy-save', ['-t', 'nat'])
  t.notMatch(nat, /KUBE-/, 'no KUBE chain or jump in nat')
  t.match(nat, /:OTHER-CHAIN/, 'the foreign chain stays')
  t.notMatch(tool('iptables-legacy-save', ['-t', 'filter']), /KUBE-/, 'none in filter')
  t.notMatch(tool('ipset', ['list', '-n']), /KUBE-/, 'no KUBE set')
  t.notMatch(tool('ip', ['-o', 'link']), /kube-ipvs0/, 'no kube-ipvs0')
})
