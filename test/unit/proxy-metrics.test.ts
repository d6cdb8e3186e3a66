// lib/proxy/metrics.ts: the Prometheus text format 0.0.4 (HELP/TYPE, escaping,
// cumulative buckets, Go's number format, ordering), validation naming the
// metric, kube-proxy's metric set against a fixture written from kube-proxy's
// bucket definitions, and the process metrics read at exposition time.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { MetricError, Registry, exponentialBuckets, followCounter, formatNumber, kubeProxyMetrics, linearBuckets, processMetrics } from '../../dist/proxy/metrics.js'

const FIXTURE = fileURLToPath(new URL('../fixtures/metrics/kubeproxy.prom', import.meta.url))

t.test('numbers as Prometheus writes them', async (t) => {
  const cases: [number, string][] = [
    [0, '0'],
    [1, '1'],
    [-1, '-1'],
    [3, '3'],
    [0.5, '0.5'],
    [-3.5, '-3.5'],
    [16.384, '16.384'],
    [0.1 + 0.2, '0.30000000000000004'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [1.5e-7, '1.5e-07'],
    [999999, '999999'],
    [1e6, '1e+06'],
    [24576000, '2.4576e+07'],
    [123456789, '1.23456789e+08'],
    [1700000000.5, '1.7000000005e+09'],
    [1e100, '1e+100'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
    [-0, '-0'],
  ]
  for (const [v, s] of cases) t.equal(formatNumber(v), s, `${v} -> ${s}`)
})

t.test('the exposition: HELP/TYPE, sorted families and series, escaping, buckets', async (t) => {
  const r = new Registry({ now: () => 1700000000250 })
  // Declared out of order: written sorted by name, as Prometheus does.
  const requests = r.counter('app_requests_total', 'Requests served', ['method', 'code'])
  requests.inc({ method: 'GET', code: 200 })
  requests.inc({ code: '200', method: 'GET' }, 2)
  requests.inc({ method: 'POST', code: 200 })
  requests.inc({ method: 'GET', code: 503 })
  r.gauge('app_temperature', 'A "quoted" help\\with a backslash\nand a newline').set(-3.5)
  const h = r.histogram('app_duration_seconds', 'Durations', [0.125, 1, 10])
  for (const v of [0.0625, 0.125, 5, 20]) h.observe(v)
  r.counter('app_unused_total', 'labelled and never used: absent', ['x'])
  r.gauge('app_last_seconds', 'now').setToCurrentTime()
  const paths = r.gauge('app_paths', 'label values escaped', ['path'])
  paths.set(1, { path: 'a\\b' })
  paths.set(2, { path: 'say "hi"' })
  paths.set(3, { path: 'two\nlines' })
  r.counter('app_zero_total', 'unlabelled: shows at 0 before its first change')

  t.equal(
    r.exposition(),
    `# HELP app_duration_seconds Durations
# TYPE app_duration_seconds histogram
app_duration_seconds_bucket{le="0.125"} 2
app_duration_seconds_bucket{le="1"} 2
app_duration_seconds_bucket{le="10"} 3
app_duration_seconds_bucket{le="+Inf"} 4
app_duration_seconds_sum 25.1875
app_duration_seconds_count 4
# HELP app_last_seconds now
# TYPE app_last_seconds gauge
app_last_seconds 1.70000000025e+09
# HELP app_paths label values escaped
# TYPE app_paths gauge
app_paths{path="a\\\\b"} 1
app_paths{path="say \\"hi\\""} 2
app_paths{path="two\\nlines"} 3
# HELP app_requests_total Requests served
# TYPE app_requests_total counter
app_requests_total{code="200",method="GET"} 3
app_requests_total{code="200",method="POST"} 1
app_requests_total{code="503",method="GET"} 1
# HELP app_temperature A "quoted" help\\\\with a backslash\\nand a newline
# TYPE app_temperature gauge
app_temperature -3.5
# HELP app_zero_total unlabelled: shows at 0 before its first change
# TYPE app_zero_total counter
app_zero_total 0
`,
  )
})

t.test('labelled histograms: le last, per series', async (t) => {
  const r = new Registry()
  const h = r.histogram('op_seconds', 'ops', [1, 2], ['op'])
  h.observe(1.5, { op: 'b' })
  h.observe(0.5, { op: 'a' })
  h.observe(3, { op: 'a' })
  t.equal(
    r.exposition(),
    `# HELP op_seconds ops
# TYPE op_seconds histogram
op_seconds_bucket{op="a",le="1"} 1
op_seconds_bucket{op="a",le="2"} 1
op_seconds_bucket{op="a",le="+Inf"} 2
op_seconds_sum{op="a"} 3.5
op_seconds_count{op="a"} 2
op_seconds_bucket{op="b",le="1"} 0
op_seconds_bucket{op="b",le="2"} 1
op_seconds_bucket{op="b",le="+Inf"} 1
op_seconds_sum{op="b"} 1.5
op_seconds_count{op="b"} 1
`,
  )
  t.same(h.get({ op: 'a' }), { count: 2, sum: 3.5 })
})

t.test('gauges go both ways; counters only up', async (t) => {
  const r = new Registry()
  const g = r.gauge('pending', 'p')
  g.inc()
  g.inc(undefined, 4)
  g.dec(undefined, 2)
  g.dec()
  t.equal(g.get(), 2)
  const c = r.counter('done_total', 'd')
  c.inc(undefined, 0)
  c.inc(undefined, 2.5)
  t.equal(c.get(), 2.5)
  t.throws(() => c.inc(undefined, -1), { name: 'MetricError', metric: 'done_total', message: /cannot go down/ })
  t.throws(() => g.set(NaN), { name: 'MetricError', metric: 'pending' })
  t.equal(c.get(), 2.5, 'a refused change changes nothing')
})

t.test('refusals name the metric', async (t) => {
  const r = new Registry()
  const refused = (fn: () => unknown, metric: string, reason: RegExp) => {
    try {
      fn()
      t.fail(`expected a MetricError for ${metric}`)
    } catch (err) {
      t.ok(err instanceof MetricError, 'a MetricError')
      t.equal((err as MetricError).metric, metric)
      t.match((err as Error).message, metric)
      t.match((err as Error).message, reason)
    }
  }
  refused(() => r.counter('1abc', 'h'), '1abc', /must match/)
  refused(() => r.counter('with-dash', 'h'), 'with-dash', /must match/)
  refused(() => r.counter('ok_total', 'h', ['bad-label']), 'ok_total', /bad-label/)
  refused(() => r.counter('ok_total', 'h', ['__reserved']), 'ok_total', /reserved/)
  refused(() => r.counter('ok_total', 'h', ['a', 'a']), 'ok_total', /twice/)
  refused(() => r.histogram('h_seconds', 'h', [1], ['le']), 'h_seconds', /reserved/)
  refused(() => r.histogram('h_seconds', 'h', [2, 1]), 'h_seconds', /increase/)
  refused(() => r.histogram('h_seconds', 'h', [1, 1]), 'h_seconds', /increase/)
  refused(() => r.histogram('h_seconds', 'h', [NaN]), 'h_seconds', /finite/)
  r.counter('dup_total', 'h')
  refused(() => r.gauge('dup_total', 'h'), 'dup_total', /already registered/)
  r.histogram('lat', 'h', [1])
  refused(() => r.counter('lat_count', 'h'), 'lat_count', /already registered/)
  const c = r.counter('codes_total', 'h', ['code'])
  refused(() => c.inc(), 'codes_total', /do not match/)
  refused(() => c.inc({ code: 200, extra: 'x' } as never), 'codes_total', /do not match/)
  refused(() => c.inc({ other: 1 } as never), 'codes_total', /do not match/)
  t.equal(r.exposition().includes('codes_total'), false, 'no series was created by a refused call')
})

t.test('a trailing +Inf bucket is the implicit one', async (t) => {
  const r = new Registry()
  const h = r.histogram('x_seconds', 'x', [1, Infinity])
  t.same(h.buckets, [1])
  h.observe(2)
  t.equal(r.exposition().match(/le="\+Inf"/g)?.length, 1)
})

t.test('bucket helpers compute as Go does', async (t) => {
  t.same(exponentialBuckets(0.001, 2, 4), [0.001, 0.002, 0.004, 0.008])
  t.same(linearBuckets(60, 5, 3), [60, 65, 70])
  t.same(linearBuckets(0.25, 0.25, 2), [0.25, 0.5])
})

t.test("kube-proxy's metrics: names, help, buckets (fixture)", async (t) => {
  const r = new Registry({ now: () => 1700000000250 })
  const m = kubeProxyMetrics(r)
  m.syncProxyRulesDuration.observe(0.003)
  m.syncFullProxyRulesDuration.observe(0.003)
  m.networkProgrammingDuration.observe(1.5)
  m.syncProxyRulesLastTimestamp.set(1700000000.5)
  m.syncProxyRulesLastQueuedTimestamp.setToCurrentTime()
  m.endpointChangesPending.set(3)
  m.endpointChangesTotal.inc(undefined, 7)
  m.serviceChangesTotal.inc()
  m.syncProxyRulesNoLocalEndpointsTotal.set(1, { traffic_policy: 'internal' })
  m.syncProxyRulesNoLocalEndpointsTotal.set(0, { traffic_policy: 'external' })
  m.proxyHealthzTotal.inc({ code: 200 })
  m.proxyHealthzTotal.inc({ code: 200 })
  m.proxyHealthzTotal.inc({ code: 503 })
  m.proxyLivezTotal.inc({ code: 200 })
  m.kernelOperationsTotal.inc({ subsystem: 'ipvs', result: 'ok' }, 12)
  m.kernelOperationsTotal.inc({ subsystem: 'ipset', result: 'error' })
  m.driftRepairsTotal.inc({ subsystem: 'ipvs' })
  m.manifestErrorsTotal.inc()
  m.sourceObjectsPartialTotal.inc({ source: 'manifests' }, 2)
  t.equal(r.exposition(), readFileSync(FIXTURE, 'utf8'))
  t.throws(() => kubeProxyMetrics(r), { name: 'MetricError', message: /already registered/ }, 'registering twice is refused')
})

t.test('iptables mode: kube-proxy\'s iptables families, names, help and types as kube-proxy serves them', async (t) => {
  const r = new Registry()
  const m = kubeProxyMetrics(r, { mode: 'iptables' })
  const ipt = m.iptables!
  ipt.restoreFailuresTotal.inc()
  ipt.partialRestoreFailuresTotal.inc(undefined, 2)
  ipt.rulesTotal.set(19, { table: 'nat' })
  ipt.rulesTotal.set(4, { table: 'filter' })
  ipt.rulesLast.set(0, { table: 'filter' })
  ipt.rulesLast.set(3, { table: 'nat' })
  ipt.ctStateInvalidDroppedPacketsTotal.inc(undefined, 5)
  const families = r
    .exposition()
    .split(/(?=^# HELP )/m)
    .filter((f) => /^# HELP kubeproxy_(sync_proxy_rules_iptables|iptables)_/.test(f))
    .join('')
  t.equal(
    families,
    `# HELP kubeproxy_iptables_ct_state_invalid_dropped_packets_total [ALPHA] packets dropped by iptables to work around conntrack problems
# TYPE kubeproxy_iptables_ct_state_invalid_dropped_packets_total counter
kubeproxy_iptables_ct_state_invalid_dropped_packets_total 5
# HELP kubeproxy_sync_proxy_rules_iptables_last [ALPHA] Number of iptables rules written by kube-proxy in last sync
# TYPE kubeproxy_sync_proxy_rules_iptables_last gauge
kubeproxy_sync_proxy_rules_iptables_last{table="filter"} 0
kubeproxy_sync_proxy_rules_iptables_last{table="nat"} 3
# HELP kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total [ALPHA] Cumulative proxy iptables partial restore failures
# TYPE kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total counter
kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total 2
# HELP kubeproxy_sync_proxy_rules_iptables_restore_failures_total [ALPHA] Cumulative proxy iptables restore failures
# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter
kubeproxy_sync_proxy_rules_iptables_restore_failures_total 1
# HELP kubeproxy_sync_proxy_rules_iptables_total [ALPHA] Total number of iptables rules owned by kube-proxy
# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge
kubeproxy_sync_proxy_rules_iptables_total{table="filter"} 4
kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 19
`,
  )
  t.equal(kubeProxyMetrics(new Registry()).iptables, undefined, 'not registered without the mode')
  t.equal(m.iptablesRestoreFailuresTotal, ipt.restoreFailuresTotal, 'one counter, reachable both ways')
})

t.test('IPVS mode: only kubeproxy_sync_proxy_rules_iptables_restore_failures_total of the iptables families (kube-proxy\'s RegisterMetrics)', async (t) => {
  const r = new Registry()
  const m = kubeProxyMetrics(r, { mode: 'ipvs' })
  t.equal(m.iptables, undefined)
  m.iptablesRestoreFailuresTotal!.inc()
  const families = r.exposition().split(/(?=^# HELP )/m).filter((f) => /^# HELP kubeproxy_(sync_proxy_rules_iptables|iptables)_/.test(f))
  t.same(families, [
    `# HELP kubeproxy_sync_proxy_rules_iptables_restore_failures_total [ALPHA] Cumulative proxy iptables restore failures
# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter
kubeproxy_sync_proxy_rules_iptables_restore_failures_total 1
`,
  ])
  t.equal(kubeProxyMetrics(new Registry(), { mode: 'nftables' }).iptablesRestoreFailuresTotal, undefined, 'nor in other modes')
})

t.test('followCounter: a kernel counter that restarts from zero keeps the metric going up', async (t) => {
  const r = new Registry()
  const c = r.counter('dropped_total', 'drops')
  const feed = followCounter(c)
  feed(0)
  t.equal(c.get(), 0)
  feed(10)
  feed(10)
  t.equal(c.get(), 10, 'growth only')
  feed(4)
  t.equal(c.get(), 14, 'a reading below the last: the counter restarted, all 4 are new')
  feed(6)
  t.equal(c.get(), 16)
})

t.test('scrape(): the async hooks run (together) before the exposition; one that rejects leaves its metric', async (t) => {
  const r = new Registry()
  const g = r.gauge('read_at_scrape', 'read')
  const h = r.gauge('broken_read', 'read')
  let n = 0
  r.collectAsync(async () => {
    await new Promise((resolve) => setTimeout(resolve, 1))
    g.set(++n)
  })
  h.set(7)
  r.collectAsync(async () => {
    throw new Error('EPERM')
  })
  t.match(await r.scrape(), /^read_at_scrape 1$/m)
  t.match(await r.scrape(), /^read_at_scrape 2$/m)
  t.match(r.exposition(), /^read_at_scrape 2$/m, 'exposition() alone runs no async hook')
  t.match(await r.scrape(), /^broken_read 7$/m)
})

t.test('process metrics: read at each exposition through the collect hook', async (t) => {
  let rss = 24576000
  let cpu = 1.5
  const r = new Registry()
  processMetrics(r, { rss: () => rss, cpuSeconds: () => cpu, startTime: 1700000000.25 })
  const expected = (rssText: string, cpuText: string) => `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total ${cpuText}
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes ${rssText}
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.70000000025e+09
`
  t.equal(r.exposition(), expected('2.4576e+07', '1.5'))
  rss = 20000000
  cpu = 2.25
  t.equal(r.exposition(), expected('2e+07', '2.25'), 'values follow the process')
})

t.test('process metrics from the real process', async (t) => {
  const r = new Registry()
  processMetrics(r)
  const text = r.exposition()
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])
  t.ok(value('process_resident_memory_bytes') > 0, 'rss')
  t.ok(value('process_cpu_seconds_total') > 0, 'cpu time')
  t.ok(value('process_start_time_seconds') > 1.6e9, 'a start time after 2020')
  t.ok(value('process_start_time_seconds') <= Date.now() / 1000, 'and not in the future')
  // The heap, under prom-client's name: what a soak run watches for growth.
  const heap = value('nodejs_heap_size_used_bytes')
  t.ok(heap > 0 && heap < value('process_resident_memory_bytes'), `heap used ${heap} bytes, below the RSS`)
})
