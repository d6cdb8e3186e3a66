// kube-proxy's iptables-mode metrics as tsproxy computes them, on the in-memory
// nat/filter (test/support/fake-iptables.ts): rules in our chains after each
// sync (_iptables_total), rules written by the last one (_iptables_last),
// failed commits counted as full or partial restore failures, the ctstate
// INVALID drop rule's counter; then the daemon serving them on /metrics, and
// partly applied objects counted for both sources.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { IptablesProxier } from '../../dist/proxy/iptables/proxier.js'
import { Daemon } from '../../dist/proxy/daemon.js'
import { defaultConfig, type KubeProxyConfiguration } from '../../dist/proxy/config.js'
import { KubeClient, loadKubeconfig } from '../../dist/proxy/sources/kube/client.js'
import { FakeIptables } from '../support/fake-iptables.js'
import { FakeApiServer } from '../support/fake-apiserver.js'
import { changeFeed, service, slice } from '../support/builders.js'

const NODE = 'node-a'
const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])

/** Rules in the fake's non-built-in chains: what iptables-save shows as `-A KUBE-...` lines. */
function ourRules(fake: FakeIptables): { nat: number; filter: number } {
  const out = { nat: 0, filter: 0 }
  for (const table of ['nat', 'filter'] as const) for (const [chain, rules] of fake.tables[table]) if (!BUILTIN.has(chain)) out[table] += rules.length
  return out
}

function harness() {
  const fake = new FakeIptables()
  const feed = changeFeed(NODE)
  const proxier = new IptablesProxier(fake, { clusterCIDR: '10.244.0.0/16' })
  return {
    fake,
    proxier,
    put: feed.put,
    deleteService: feed.deleteService,
    sync(full = false) {
      const { servicePorts, stale } = feed.pending()
      fake.clear()
      return proxier.sync(feed.state, servicePorts, { full, stale })
    },
  }
}

t.test('_iptables_total follows the rules in our chains through partial and full syncs; _last is what each sync wrote', async (t) => {
  const h = harness()
  t.same(h.proxier.ruleCounts(), { nat: 0, filter: 0 }, 'nothing before the first sync')
  h.put(service('web', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), slice('web-a', 'web', ['10.244.0.5', '10.244.0.6']))
  let r = await h.sync()
  t.same(r.errors, [])
  const first = ourRules(h.fake)
  t.ok(first.nat > 0 && first.filter > 0)
  t.same(h.proxier.ruleCounts(), first, 'after the first sync: every rule of our chains')
  t.same(r.rulesWritten, first, 'the first sync wrote all of them (the jumps from built-in chains not counted)')

  // Partial: one endpoint more is two KUBE-SEP- rules and one KUBE-SVC- rule more, and the chain is refilled.
  h.put(slice('web-a', 'web', ['10.244.0.5', '10.244.0.6', '10.244.0.7']))
  r = await h.sync()
  t.equal(r.full, false)
  t.same(h.proxier.ruleCounts(), ourRules(h.fake), 'a partial sync keeps the count')
  t.equal(h.proxier.ruleCounts().nat, first.nat + 3)
  t.equal(r.rulesWritten.filter, 0, 'filter untouched')
  t.ok(r.rulesWritten.nat > 0 && r.rulesWritten.nat < h.proxier.ruleCounts().nat, `only the changed chains written (${r.rulesWritten.nat})`)

  // A hundred services at once: the shared chains are rewritten in one flush and refill.
  for (let i = 0; i < 100; i++) h.put(service(`s${i}`, { clusterIP: `10.96.1.${i + 1}` }), slice(`s${i}-a`, `s${i}`, ['10.244.1.5']))
  r = await h.sync()
  t.same(h.proxier.ruleCounts(), ourRules(h.fake), 'after many ports at once')
  h.deleteService('web')
  r = await h.sync()
  t.same(h.proxier.ruleCounts(), ourRules(h.fake), 'after a deletion')

  r = await h.sync(true)
  t.same(r.rulesWritten, { nat: 0, filter: 0 }, 'a full sync that finds nothing to do writes nothing')
  t.same(h.proxier.ruleCounts(), ourRules(h.fake))

  // Drift: a flushed KUBE-SERVICES is refilled by the next full sync.
  const services = h.fake.tables.nat.get('KUBE-SERVICES')!.length
  h.fake.tables.nat.set('KUBE-SERVICES', [])
  r = await h.sync(true)
  t.equal(r.rulesWritten.nat, services, 'the repair wrote the chain again')
  t.same(h.proxier.ruleCounts(), ourRules(h.fake))

  await h.proxier.cleanup()
  t.same(h.proxier.ruleCounts(), { nat: 0, filter: 0 }, 'none after cleanup')
})

t.test('a failed commit: full in a full sync, partial in a partial one; nothing counted as written', async (t) => {
  const h = harness()
  h.put(service('web'), slice('web-a', 'web', ['10.244.0.5']))
  h.fake.failNext = new Error('EAGAIN')
  let r = await h.sync()
  t.equal(r.full, true)
  t.same(r.commitFailures, { full: 1, partial: 0 }, 'the first (full) sync\'s nat commit failed')
  t.same(r.rulesWritten.nat, 0)
  t.ok(r.rulesWritten.filter > 0, 'filter went through')
  t.equal(h.proxier.ruleCounts().nat, 0, 'nat: nothing known written')
  r = await h.sync()
  t.same(r.commitFailures, { full: 0, partial: 0 })
  t.same(h.proxier.ruleCounts(), ourRules(h.fake))

  h.put(slice('web-a', 'web', ['10.244.0.5', '10.244.0.6']))
  const before = h.proxier.ruleCounts()
  h.fake.failNext = new Error('EAGAIN')
  r = await h.sync()
  t.equal(r.full, false)
  t.same(r.commitFailures, { full: 0, partial: 1 }, 'the partial sync\'s commit failed')
  t.same(r.rulesWritten, { nat: 0, filter: 0 })
  t.same(h.proxier.ruleCounts(), before, 'the count stays with what the kernel holds')
  r = await h.sync()
  t.equal(r.full, true, 'the next sync is a full one')
  t.same(r.commitFailures, { full: 0, partial: 0 })
  t.same(h.proxier.ruleCounts(), ourRules(h.fake))
})

t.test('the ctstate INVALID drop counter is the packet counter of that rule of filter KUBE-FORWARD', async (t) => {
  const h = harness()
  t.equal(await h.proxier.ctStateInvalidDropped(), undefined, 'no KUBE-FORWARD yet')
  await h.sync()
  const i = h.fake.tables.filter.get('KUBE-FORWARD')!.findIndex((r) => JSON.stringify(r.matches ?? []).includes('"INVALID"'))
  t.ok(i >= 0, 'the rule is there')
  t.equal(await h.proxier.ctStateInvalidDropped(), 0)
  h.fake.packets.set(`filter KUBE-FORWARD ${i}`, 42)
  // Another rule's counter is not it.
  h.fake.packets.set(`filter KUBE-FORWARD ${i + 1}`, 7)
  t.equal(await h.proxier.ctStateInvalidDropped(), 42)
})

// ---- the daemon ---------------------------------------------------------------------------------

const serviceYaml = (name: string, ip: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: default }\nspec: { clusterIP: ${ip}, ports: [{ name: http, port: 80, targetPort: 8080 }] }\n`
const sliceYaml = (svc: string, addresses: string[]) =>
  `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: ${svc}-x, namespace: default, labels: { kubernetes.io/service-name: ${svc} } }\naddressType: IPv4\nports: [{ name: http, port: 8080 }]\nendpoints:\n${addresses.map((a) => `  - { addresses: [${a}], nodeName: n1 }`).join('\n')}\n`

function config(over: Partial<KubeProxyConfiguration> = {}): KubeProxyConfiguration {
  const base = defaultConfig()
  return { ...base, mode: 'iptables', healthzBindAddress: '', metricsBindAddress: '127.0.0.1:0', iptables: { ...base.iptables, minSyncPeriod: 0 }, ...over }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within 10 s: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const memSysctl = () => {
  const v = new Map<string, number>()
  return { get: async (k: string) => v.get(k) ?? 0, set: async (k: string, n: number) => void v.set(k, n) }
}

async function scrape(d: Daemon): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${d.ports.metrics}/metrics`)
  return res.text()
}

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-ipt-metrics-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the daemon in iptables mode serves the iptables families; a bad endpoint counts as partial, not refused', async (t) => {
  const dir = tempDir(t)
  // pod-2 is no address: that endpoint is left out, the slice applies.
  writeFileSync(join(dir, 'web.yaml'), `${serviceYaml('web', '10.96.0.10')}---\n${sliceYaml('web', ['10.244.0.11', 'pod-2'])}`)
  const ipt = new FakeIptables()
  const d = new Daemon({ config: config(), manifests: dir, log: () => undefined, iptablesDataplane: () => ipt, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  const counts = ourRules(ipt)
  let text = await scrape(d)
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}'), counts.nat)
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="filter"}'), counts.filter)
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_last{table="nat"}'), counts.nat, 'the first sync wrote every rule')
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total'), 0)
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total'), 0)
  t.equal(value(text, 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total'), 0)
  t.match(text, /^# HELP kubeproxy_sync_proxy_rules_iptables_total \[ALPHA\] Total number of iptables rules owned by kube-proxy$/m)
  t.equal(value(text, 'tsproxy_source_objects_partial_total{source="manifests"}'), 1, 'the endpoint left out')
  t.equal(value(text, 'tsproxy_manifest_errors_total'), 0, 'no document refused')

  // The drop counter is read at each scrape; a rewritten rule (its counter back at 0) keeps the metric going up.
  const i = ipt.tables.filter.get('KUBE-FORWARD')!.findIndex((r) => JSON.stringify(r.matches ?? []).includes('"INVALID"'))
  ipt.packets.set(`filter KUBE-FORWARD ${i}`, 5)
  t.equal(value(await scrape(d), 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total'), 5)
  ipt.packets.set(`filter KUBE-FORWARD ${i}`, 2)
  t.equal(value(await scrape(d), 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total'), 7, 'counted from 0 again')

  // A partial sync whose commit fails, then the full sync that follows, which fails too.
  ipt.failNext = new Error('EAGAIN')
  writeFileSync(join(dir, 'db.yaml'), `${serviceYaml('db', '10.96.0.20')}---\n${sliceYaml('db', ['10.244.0.12'])}`)
  await d.settled([join(dir, 'db.yaml')]).catch(() => undefined)
  text = await scrape(d)
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total'), 1)
  // The retry (a full sync) goes through.
  await until(() => d.proxiers[0]!.synced, 'the full sync after the failure')
  await d.settled()
  text = await scrape(d)
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total'), 0)
  t.equal(value(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}'), ourRules(ipt).nat, 'the total follows')

  // The same file read again (edited): its partial object is counted again, as the document is read again.
  writeFileSync(join(dir, 'web.yaml'), `${serviceYaml('web', '10.96.0.10')}---\n${sliceYaml('web', ['10.244.0.11', 'pod-2', 'pod-3'])}`)
  await d.settled([join(dir, 'web.yaml')])
  t.equal(value(await scrape(d), 'tsproxy_source_objects_partial_total{source="manifests"}'), 3)
})

t.test('IPVS mode has none of the iptables-mode families but the restore-failure counter (kube-proxy registers that one in IPVS mode)', async (t) => {
  const { kubeProxyMetrics, Registry } = await import('../../dist/proxy/metrics.js')
  const r = new Registry()
  const m = kubeProxyMetrics(r, { mode: 'ipvs' })
  t.equal(m.iptables, undefined)
  t.same(r.exposition().split('\n').filter((l) => /iptables/.test(l) && !l.startsWith('#')), ['kubeproxy_sync_proxy_rules_iptables_restore_failures_total 0'])
})

t.test('the daemon with the API as its source counts an EndpointSlice\'s bad endpoint as partial', async (t) => {
  const s = await FakeApiServer.start()
  t.teardown(() => s.close())
  s.create('Service', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } })
  s.create('EndpointSlice', {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [
      { addresses: ['10.244.0.11'], conditions: { ready: true }, nodeName: 'n1' },
      { addresses: ['10.244.0.12'], conditions: { ready: true }, nodeName: 'Node_B' },
    ],
  })
  const dir = await mkdtemp(join(tmpdir(), 'tsproxy-ipt-metrics-kube-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const client = new KubeClient(loadKubeconfig(s.kubeconfig(join(dir, 'kubeconfig'))))
  const ipt = new FakeIptables()
  const d = new Daemon({ config: config(), kubernetes: client, log: () => undefined, iptablesDataplane: () => ipt, nodeName: 'n1', sysctl: memSysctl() })
  t.teardown(() => d.stop())
  await d.start()
  const text = await scrape(d)
  t.equal(value(text, 'tsproxy_source_objects_partial_total{source="kubernetes"}'), 1, 'the endpoint left out')
  t.equal(value(text, 'tsproxy_source_objects_refused_total'), 0, 'nothing refused')
  t.equal(value(text, 'tsproxy_source_objects_partial_total{source="manifests"}'), undefined, 'no manifests series')
})
