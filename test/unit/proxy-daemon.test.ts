// The daemon's wiring on the in-memory kernel: manifests in, kernel state out,
// the metrics and health it reports, bad manifests counted and skipped, the
// HTTP endpoints, and a stop that leaves the kernel as it is.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Daemon } from '../../dist/proxy/daemon.js'
import { defaultConfig, type KubeProxyConfiguration } from '../../dist/proxy/config.js'
import type { Log } from '../../dist/proxy/types.js'
import { FakeDataplane } from '../support/fake-dataplane.js'
import { FakeIptables } from '../support/fake-iptables.js'
import { FakeNftables } from '../support/fake-nftables.js'

const service = (name: string, ip: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: default }\nspec: { clusterIP: ${ip}, ports: [{ name: http, port: 80, targetPort: 8080 }] }\n`
const slice = (svc: string, ips: string[]) =>
  `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: ${svc}-x, namespace: default, labels: { kubernetes.io/service-name: ${svc} } }\naddressType: IPv4\nports: [{ name: http, port: 8080 }]\nendpoints:\n${ips.map((ip) => `  - { addresses: [${ip}], nodeName: n1 }`).join('\n')}\n`

function config(over: Partial<KubeProxyConfiguration> = {}): KubeProxyConfiguration {
  return { ...defaultConfig(), mode: 'ipvs', healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0', ...over }
}

/** /proc/sys in memory: the host's own settings are never touched by these tests. */
function memSysctl(values: Record<string, number> = {}) {
  const v = new Map(Object.entries(values))
  return {
    values: v,
    get: async (k: string) => {
      const n = v.get(k)
      if (n === undefined) throw Object.assign(new Error(`ENOENT: ${k}`), { errno: 2, code: 'ENOENT' })
      return n
    },
    set: async (k: string, n: number) => {
      if (k === 'net.netfilter.nf_conntrack_max' && v.get('readonly-max')) throw Object.assign(new Error('EACCES'), { errno: 13, code: 'EACCES' })
      v.set(k, n)
    },
  }
}

function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-daemon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
  const log: Log = (level, msg, fields) => void lines.push({ level, msg, ...(fields ? { fields } : {}) })
  const fake = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10', prefix: 24 }] })
  return { dir, lines, log, fake }
}

t.test('manifests to kernel, metrics, health, status, and a stop that keeps the kernel state', async (t) => {
  const { dir, lines, log, fake } = setup(t)
  writeFileSync(join(dir, 'web.yaml'), `${service('web', '10.96.0.10')}---\n${slice('web', ['10.244.0.11', '10.244.0.12'])}`)
  const d = new Daemon({ config: config(), manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  t.same(fake.dests('tcp/10.96.0.10:80'), ['10.244.0.11:8080 w1 masq', '10.244.0.12:8080 w1 masq'], 'the service is programmed')
  t.ok(lines.some((l) => l.msg === 'full sync'), 'the first sync is logged as a full sync')
  t.equal(d.metrics.syncProxyRulesDuration.get().count, 1, 'one sync observed')
  t.equal(d.metrics.syncFullProxyRulesDuration.get().count, 1, 'and it was full')
  t.equal(d.health.status().healthy, true, 'healthy after the first sync')

  const healthz = await fetch(`http://127.0.0.1:${d.ports.healthz}/healthz`)
  t.equal(healthz.status, 200, '/healthz answers 200')
  t.match(await healthz.json(), { nodeEligible: true }, '/healthz body as kube-proxy writes it')
  const metrics = await (await fetch(`http://127.0.0.1:${d.ports.metrics}/metrics`)).text()
  t.match(metrics, /^kubeproxy_sync_proxy_rules_duration_seconds_count 1$/m, '/metrics has kube-proxy\'s sync histogram')
  t.match(metrics, /^tsproxy_kernel_operations_total\{result="ok",subsystem="ipvs"\} 3$/m, 'and the kernel operations sent (1 service + 2 real servers)')
  t.equal(await (await fetch(`http://127.0.0.1:${d.ports.metrics}/proxyMode`)).text(), 'ipvs', '/proxyMode')
  const status = (await (await fetch(`http://127.0.0.1:${d.ports.metrics}/status`)).json()) as { service: string; vip: string; endpoints: { address: string }[] }[]
  t.same(
    status.map((s) => [s.service, s.vip, s.endpoints.map((e) => e.address).sort()]),
    [['default/web:http', '10.96.0.10:80', ['10.244.0.11:8080', '10.244.0.12:8080']]],
    '/status names the service port, its VIP and endpoints',
  )

  // One endpoint goes: one partial sync, one IPVS operation (weight 0: graceful).
  // It still carries a connection, so the drain checks keep it (without one, a
  // drain check may delete it before the test looks: a race on a busy machine).
  fake.setConns('tcp/10.96.0.10:80', '10.244.0.12:8080', 1)
  fake.clearCalls()
  writeFileSync(join(dir, 'web.yaml'), `${service('web', '10.96.0.10')}---\n${slice('web', ['10.244.0.11'])}`)
  await d.settled()
  t.same(fake.writes('ipvs'), ['updateDestination tcp/10.96.0.10:80 10.244.0.12:8080 w0 masq'], 'only the removed endpoint is touched')
  t.equal(d.metrics.syncPartialProxyRulesDuration.get().count, 1, 'a partial sync')
  t.ok(d.metrics.endpointChangesTotal.get() >= 2, 'endpoint changes counted')

  await d.stop()
  t.same(fake.dests('tcp/10.96.0.10:80'), ['10.244.0.11:8080 w1 masq', '10.244.0.12:8080 w0 masq'], 'stopping leaves the kernel as it is')
})

t.test('bad manifests are logged, counted and skipped; good ones next to them apply', async (t) => {
  const { dir, lines, log, fake } = setup(t)
  writeFileSync(join(dir, 'web.yaml'), `${service('web', '10.96.0.10')}---\n${slice('web', ['10.244.0.11'])}`)
  const d = new Daemon({ config: config(), manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  writeFileSync(join(dir, 'bad.yaml'), `${service('bad', '10.96.0.300')}---\nkind: Service\napiVersion: v1\nspec: {}\n---\n${service('good', '10.96.0.11')}---\n${slice('good', ['10.244.0.13'])}`)
  await d.settled()
  t.equal(d.metrics.manifestErrorsTotal.get(), 2, 'two refused documents counted')
  const refused = lines.filter((l) => l.level === 'error' && l.msg === 'manifest document refused')
  t.equal(refused.length, 2, 'each logged')
  t.match(refused[0]?.fields, { file: /bad\.yaml$/, field: 'spec.clusterIP' }, 'naming the file and the field')
  t.same(fake.dests('tcp/10.96.0.11:80'), ['10.244.0.13:8080 w1 masq'], 'the good service in the same file is programmed')
  t.same(fake.dests('tcp/10.96.0.10:80'), ['10.244.0.11:8080 w1 masq'], 'the others are untouched')
  t.equal(fake.service('tcp/10.96.0.300:80'), undefined, 'nothing of the bad one')
})

t.test('nftables mode: the same daemon drives the nftables proxier; status names the service port', async (t) => {
  const { dir, log, fake } = setup(t)
  writeFileSync(join(dir, 'web.yaml'), `${service('web', '10.96.0.10')}---\n${slice('web', ['10.244.0.11', '10.244.0.12'])}`)
  const nft = new FakeNftables()
  const d = new Daemon({ config: config({ mode: 'nftables' }), manifests: dir, log, nftablesDataplane: () => nft, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  t.same(fake.writes(), [], 'nothing written through the IPVS dataplane')
  const chains = [...nft.tables.get('ip kube-proxy')!.chains.keys()]
  t.equal(chains.filter((c) => c.startsWith('service-') && c.includes('/')).length, 1, 'a service chain was made')
  t.equal(chains.filter((c) => c.startsWith('endpoint-')).length, 2, 'and an endpoint chain per endpoint')
  t.equal(nft.commits.length, 1, 'in one transaction')
  const status = await d.status()
  t.same(status.map((s) => [s.service, s.vip, s.scheduler, s.endpoints.map((e) => e.address)]), [['default/web:http', '10.96.0.10:80', 'random', ['10.244.0.11:8080', '10.244.0.12:8080']]])
  t.ok((d.lastSync?.ops.nftables ?? 0) > 0, 'its edits counted as nftables operations')
  const text = await d.registry.scrape()
  t.match(text, /^kubeproxy_sync_proxy_rules_nftables_sync_failures_total 0$/m, "kube-proxy's nftables-mode counters")
  t.match(text, /^kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total 0$/m)
  t.notMatch(text, /kubeproxy_sync_proxy_rules_iptables_restore_failures_total/, 'not the iptables ones')
})

t.test('iptables mode: the same daemon drives the iptables proxier; status names the service port', async (t) => {
  const { dir, log } = setup(t)
  writeFileSync(join(dir, 'web.yaml'), `${service('web', '10.96.0.10')}---\n${slice('web', ['10.244.0.11', '10.244.0.12'])}`)
  const ipt = new FakeIptables()
  const d = new Daemon({ config: config({ mode: 'iptables' }), manifests: dir, log, iptablesDataplane: () => ipt, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  const svcChain = [...ipt.tables.nat.keys()].find((c) => c.startsWith('KUBE-SVC-'))
  t.ok(svcChain, 'a KUBE-SVC chain was made')
  t.equal(ipt.tables.nat.get(svcChain!)!.filter((r) => JSON.stringify(r).includes('KUBE-SEP-')).length, 2, 'with a rule per endpoint')
  const status = await d.status()
  t.same(status.map((s) => [s.service, s.vip, s.scheduler, s.endpoints.map((e) => e.address)]), [['default/web:http', '10.96.0.10:80', 'random', ['10.244.0.11:8080', '10.244.0.12:8080']]])
  t.equal(typeof status[0]!.packets, 'number', 'counted in packets')
})

t.test('iptables mode, conntrack.tcpBeLiberal: the sysctl set first, then read: no ctstate INVALID drop; its metric stays at 0', async (t) => {
  const { dir, log } = setup(t)
  writeFileSync(join(dir, 'web.yaml'), `${service('web', '10.96.0.10')}---\n${slice('web', ['10.244.0.11'])}`)
  const io = memSysctl({ 'net.netfilter.nf_conntrack_tcp_be_liberal': 0 })
  const ipt = new FakeIptables()
  // One /proc/sys for both, as on a node: the daemon's conntrack settings, the proxier's read.
  ipt.getSysctl = (k: string) => io.get(k)
  const c = config({ mode: 'iptables' })
  const d = new Daemon({ config: { ...c, conntrack: { ...c.conntrack, tcpBeLiberal: true } }, manifests: dir, log, iptablesDataplane: () => ipt, nodeName: 'n1', sysctl: io })
  t.teardown(() => d.stop())
  await d.start()
  t.equal(io.values.get('net.netfilter.nf_conntrack_tcp_be_liberal'), 1, 'set from the conntrack section')
  const forward = ipt.tables.filter.get('KUBE-FORWARD')!
  t.equal(forward.length, 2, 'KUBE-FORWARD: the two ACCEPT rules')
  t.notOk(JSON.stringify(forward).includes('INVALID'), 'no INVALID drop')
  const metrics = await (await fetch(`http://127.0.0.1:${d.ports.metrics}/metrics`)).text()
  t.match(metrics, /^kubeproxy_iptables_ct_state_invalid_dropped_packets_total 0$/m, 'the counter is served, at 0 (kube-proxy\'s nfacct counter exists, nothing feeds it)')
  t.match(metrics, /^kubeproxy_sync_proxy_rules_iptables_restore_failures_total 0$/m)
  t.match(metrics, /^kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total 0$/m)
})

t.test('IPVS mode: a failed commit of its iptables chains counts in kubeproxy_sync_proxy_rules_iptables_restore_failures_total', async (t) => {
  const { dir, log, fake } = setup(t)
  writeFileSync(join(dir, 'web.yaml'), `${service('web', '10.96.0.10')}---\n${slice('web', ['10.244.0.11'])}`)
  fake.refuse('tables', 'sync filter', { errno: 22 })
  const d = new Daemon({ config: config(), manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  t.equal(d.metrics.iptablesRestoreFailuresTotal?.get(), 1, 'the refused filter commit, once')
  t.ok(d.metrics.syncErrorsTotal.get() >= 1, 'that sync failed')
  t.ok(fake.changes('tables').some((c) => c.startsWith('tables sync filter KUBE-FORWARD')), 'a full sync wrote the chains after it')
  t.same(fake.dests('tcp/10.96.0.10:80'), ['10.244.0.11:8080 w1 masq'], 'the service is programmed all the same')
  t.equal(d.metrics.iptables, undefined, 'no other iptables-mode metric')
  const metrics = await (await fetch(`http://127.0.0.1:${d.ports.metrics}/metrics`)).text()
  t.match(metrics, /^kubeproxy_sync_proxy_rules_iptables_restore_failures_total 1$/m)
  t.notMatch(metrics, /partial_restore_failures|kubeproxy_sync_proxy_rules_iptables_total/, 'kube-proxy registers only this one in IPVS mode')
})

t.test('dual stack: a proxier per family of the cluster CIDRs, one sync feeding both', async (t) => {
  const { dir, log, fake } = setup(t)
  writeFileSync(
    join(dir, 'web.yaml'),
    `apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\nspec:\n  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, "fd00:96::10"]\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n---\n${slice('web', ['10.244.0.11'])}---\n` +
      `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: web-6, namespace: default, labels: { kubernetes.io/service-name: web } }\naddressType: IPv6\nports: [{ name: http, port: 8080 }]\nendpoints:\n  - { addresses: ["fd00:244::11"], nodeName: n1 }\n`,
  )
  const d = new Daemon({ config: config({ clusterCIDR: '10.244.0.0/16,fd00:244::/56' }), manifests: dir, log, dataplane: (f) => (f === 'inet' ? fake : fake.inet6View()), nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  t.same(d.proxiers.map((p) => p.family), ['inet', 'inet6'], 'both families')
  t.same(fake.dests('tcp/10.96.0.10:80'), ['10.244.0.11:8080 w1 masq'], 'the IPv4 cluster IP with the IPv4 endpoint')
  t.same(fake.dests('tcp/[fd00:96::10]:80'), ['[fd00:244::11]:8080 w1 masq'], 'the IPv6 cluster IP with the IPv6 endpoint')
  const status = await d.status()
  t.same(status.map((s) => [s.vip, s.endpoints.map((e) => e.address)]).sort(), [['10.96.0.10:80', ['10.244.0.11:8080']], ['[fd00:96::10]:80', ['[fd00:244::11]:8080']]], 'status lists both, IPv6 in brackets')
  t.same(fake.heldTables6.get('nat') !== undefined, true, 'the inet6 proxier wrote its own (ip6tables) nat table')
})

t.test('a LoadBalancer with externalTrafficPolicy Local gets kube-proxy\'s health check on its healthCheckNodePort', async (t) => {
  const { dir, log, fake } = setup(t)
  // A free port to stand for the node port the API server would have allocated.
  const { createServer } = await import('node:net')
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()))
  const hc = (probe.address() as { port: number }).port
  await new Promise<void>((r) => probe.close(() => r()))
  const lb = (eps: { ip: string; node: string }[]) =>
    `apiVersion: v1\nkind: Service\nmetadata: { name: lb, namespace: shop }\nspec: { type: LoadBalancer, clusterIP: 10.96.0.20, externalTrafficPolicy: Local, healthCheckNodePort: ${hc}, ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30090 }] }\n---\n` +
    `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: lb-x, namespace: shop, labels: { kubernetes.io/service-name: lb } }\naddressType: IPv4\nports: [{ name: http, port: 8080 }]\nendpoints:\n${eps.map((e) => `  - { addresses: [${e.ip}], nodeName: ${e.node} }`).join('\n')}\n`
  writeFileSync(join(dir, 'lb.yaml'), lb([{ ip: '10.244.0.11', node: 'n1' }, { ip: '10.244.0.12', node: 'n1' }, { ip: '10.244.1.5', node: 'n2' }]))
  const d = new Daemon({ config: config(), manifests: dir, log, dataplane: fake, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  const res = await fetch(`http://127.0.0.1:${hc}/`)
  t.equal(res.status, 200, 'local endpoints: 200')
  t.same(await res.json(), { service: { namespace: 'shop', name: 'lb' }, localEndpoints: 2, serviceProxyHealthy: true }, 'kube-proxy\'s body: this node\'s endpoints only')
  t.equal(res.headers.get('x-load-balancing-endpoint-weight'), '2')

  writeFileSync(join(dir, 'lb.yaml'), lb([{ ip: '10.244.1.5', node: 'n2' }]))
  await d.settled()
  const none = await fetch(`http://127.0.0.1:${hc}/`)
  t.equal(none.status, 503, 'no local endpoint: 503, the load balancer steers away')
  t.match(await none.json(), { localEndpoints: 0 })

  writeFileSync(join(dir, 'lb.yaml'), '')
  await d.settled()
  await t.rejects(fetch(`http://127.0.0.1:${hc}/`), 'the service gone: the port is closed')
})

t.test('conntrack settings: kube-proxy\'s keys from the conntrack section, the table size only raised', async (t) => {
  const { conntrackSettings, applyConntrackSettings } = await import('../../dist/proxy/conntrack-settings.js')
  const c = defaultConfig().conntrack
  t.same(conntrackSettings(c, 4), [
    { key: 'net.netfilter.nf_conntrack_max', value: 131072, raiseOnly: true },
    { key: 'net.netfilter.nf_conntrack_tcp_timeout_established', value: 86400 },
    { key: 'net.netfilter.nf_conntrack_tcp_timeout_close_wait', value: 3600 },
  ], 'defaults on 4 cores: max(32768 x 4, 131072), 24 h, 1 h')
  t.same(conntrackSettings({ ...c, maxPerCore: 65536, tcpBeLiberal: true, udpTimeout: 30_000, udpStreamTimeout: 120_000 }, 8).map((s) => `${s.key}=${s.value}`), [
    'net.netfilter.nf_conntrack_max=524288',
    'net.netfilter.nf_conntrack_tcp_timeout_established=86400',
    'net.netfilter.nf_conntrack_tcp_timeout_close_wait=3600',
    'net.netfilter.nf_conntrack_tcp_be_liberal=1',
    'net.netfilter.nf_conntrack_udp_timeout=30',
    'net.netfilter.nf_conntrack_udp_timeout_stream=120',
  ])
  t.same(conntrackSettings({ ...c, maxPerCore: 0, tcpEstablishedTimeout: 0, tcpCloseWaitTimeout: 0 }, 4), [], 'zeros leave every key alone')

  const io = memSysctl({ 'net.netfilter.nf_conntrack_max': 262144, 'net.netfilter.nf_conntrack_tcp_timeout_established': 432000, 'net.netfilter.nf_conntrack_tcp_timeout_close_wait': 3600 })
  const logged: string[] = []
  const changed = await applyConntrackSettings(conntrackSettings(c, 4), io, (level, msg) => void logged.push(`${level} ${msg}`))
  t.same(changed, ['net.netfilter.nf_conntrack_tcp_timeout_established'], 'a larger table stays; the timeout is set; an equal value is not rewritten')
  t.equal(io.values.get('net.netfilter.nf_conntrack_max'), 262144)
  t.equal(io.values.get('net.netfilter.nf_conntrack_tcp_timeout_established'), 86400)

  const ro = memSysctl({ 'readonly-max': 1, 'net.netfilter.nf_conntrack_max': 65536, 'net.netfilter.nf_conntrack_tcp_timeout_established': 86400, 'net.netfilter.nf_conntrack_tcp_timeout_close_wait': 3600 })
  logged.length = 0
  t.same(await applyConntrackSettings(conntrackSettings(c, 4), ro, (level, msg) => void logged.push(`${level} ${msg}`)), [], 'nothing changed')
  t.same(logged, ['warn cannot apply a conntrack setting'], 'a read-only key (outside the initial netns) is a warning, not a failure')
})
