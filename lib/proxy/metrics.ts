// A small Prometheus registry: counters, gauges and histograms with labels,
// rendered in the text exposition format 0.0.4, which is what kube-proxy's
// /metrics serves and every scraper reads. Families come out sorted by name and
// series by label values, as Prometheus' own client orders them, so two scrapes
// of the same state are byte-identical.
//
// kubeProxyMetrics() registers kube-proxy's metric names, help texts and bucket
// layouts (pkg/proxy/metrics), so dashboards and alerts written for kube-proxy
// keep working, plus tsproxy's own counters.

/** A metric or label refused: names the metric. */
export class MetricError extends Error {
  override name = 'MetricError'
  readonly metric: string

  constructor(metric: string, reason: string) {
    super(`metric ${metric}: ${reason}`)
    this.metric = metric
  }
}

export type Labels<L extends string = string> = { readonly [K in L]: string | number }
export type MetricType = 'counter' | 'gauge' | 'histogram'

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * A number as Prometheus' Go client writes it (strconv 'g', shortest): `+Inf`,
 * `NaN`, `3` not `3.0`, and exponent form outside 1e-4 <= |v| < 1e6 (`2.4576e+07`).
 */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  if (Object.is(v, -0)) return '-0'
  // toExponential() without digits gives the shortest round-trip digits, as Go does.
  const [mantissa, e] = v.toExponential().split('e') as [string, string]
  const exp = Number(e)
  if (exp >= -4 && exp < 6) return String(v)
  return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

interface Series<V> {
  readonly values: readonly string[]
  readonly data: V
}

abstract class Metric<L extends string, V> {
  abstract readonly type: MetricType
  readonly name: string
  readonly help: string
  readonly labelNames: readonly L[]
  /** Label names in the order they are written (sorted, as Prometheus does). */
  readonly #sorted: readonly string[]
  readonly #series = new Map<string, Series<V>>()

  constructor(name: string, help: string, labelNames: readonly L[], reserved: readonly string[]) {
    if (!METRIC_NAME.test(name)) throw new MetricError(name, 'the name must match [a-zA-Z_:][a-zA-Z0-9_:]*')
    const seen = new Set<string>()
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l)) throw new MetricError(name, `label ${JSON.stringify(l)} must match [a-zA-Z_][a-zA-Z0-9_]*`)
      if (l.startsWith('__')) throw new MetricError(name, `label ${l}: names starting with __ are reserved`)
      if (reserved.includes(l)) throw new MetricError(name, `label ${l} is reserved for this metric type`)
      if (seen.has(l)) throw new MetricError(name, `label ${l} given twice`)
      seen.add(l)
    }
    this.name = name
    this.help = help
    this.labelNames = [...labelNames]
    this.#sorted = [...labelNames].sort()
  }

  protected abstract fresh(): V

  /** The series for these labels, created on first use. */
  protected series(labels: Labels<L> | undefined): V {
    const given = labels ?? ({} as Labels<L>)
    const keys = Object.keys(given)
    if (keys.length !== this.#sorted.length || !keys.every((k) => this.#sorted.includes(k))) {
      throw new MetricError(this.name, `labels {${keys.sort().join(', ')}} do not match its label names {${this.#sorted.join(', ')}}`)
    }
    const values = this.#sorted.map((k) => String(given[k as L]))
    const key = JSON.stringify(values)
    let s = this.#series.get(key)
    if (!s) {
      s = { values, data: this.fresh() }
      this.#series.set(key, s)
    }
    return s.data
  }

  /** Sample lines of one series, with its label set already rendered. */
  protected abstract samples(data: V, labelPairs: string[]): string[]

  /** The HELP, TYPE and sample lines; empty while a labelled metric has no series (as Prometheus omits it). */
  render(): string {
    if (this.#series.size === 0) return ''
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`]
    const all = [...this.#series.values()].sort((a, b) => compareValues(a.values, b.values))
    for (const s of all) {
      const pairs = s.values.map((v, i) => `${this.#sorted[i]}="${escapeLabelValue(v)}"`)
      lines.push(...this.samples(s.data, pairs))
    }
    return `${lines.join('\n')}\n`
  }

  /** Starts the unlabelled series at zero, so it shows before its first change (Prometheus' behaviour). */
  protected init(): void {
    if (this.labelNames.length === 0) this.series(undefined)
  }
}

function compareValues(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

function line(name: string, pairs: string[], value: number): string {
  return pairs.length === 0 ? `${name} ${formatNumber(value)}` : `${name}{${pairs.join(',')}} ${formatNumber(value)}`
}

function checkNumber(metric: string, what: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new MetricError(metric, `${what} must be a number (got ${String(v)})`)
}

/** Only goes up (a restart resets it; rate() handles that). */
export class Counter<L extends string = never> extends Metric<L, { v: number }> {
  readonly type = 'counter'

  constructor(name: string, help: string, labelNames: readonly L[] = []) {
    super(name, help, labelNames, [])
    this.init()
  }

  protected fresh(): { v: number } {
    return { v: 0 }
  }

  inc(labels?: Labels<L>, by = 1): void {
    checkNumber(this.name, 'the increment', by)
    if (by < 0) throw new MetricError(this.name, `a counter cannot go down (inc by ${by})`)
    this.series(labels).v += by
  }

  get(labels?: Labels<L>): number {
    return this.series(labels).v
  }

  protected samples(data: { v: number }, pairs: string[]): string[] {
    return [line(this.name, pairs, data.v)]
  }
}

export class Gauge<L extends string = never> extends Metric<L, { v: number }> {
  readonly type = 'gauge'
  readonly #now: () => number

  constructor(name: string, help: string, labelNames: readonly L[] = [], now: () => number = Date.now) {
    super(name, help, labelNames, [])
    this.#now = now
    this.init()
  }

  protected fresh(): { v: number } {
    return { v: 0 }
  }

  set(value: number, labels?: Labels<L>): void {
    checkNumber(this.name, 'the value', value)
    this.series(labels).v = value
  }

  inc(labels?: Labels<L>, by = 1): void {
    checkNumber(this.name, 'the increment', by)
    this.series(labels).v += by
  }

  dec(labels?: Labels<L>, by = 1): void {
    this.inc(labels, -by)
  }

  /** Seconds since the epoch, as the *_timestamp_seconds gauges want. */
  setToCurrentTime(labels?: Labels<L>): void {
    this.set(this.#now() / 1000, labels)
  }

  get(labels?: Labels<L>): number {
    return this.series(labels).v
  }

  protected samples(data: { v: number }, pairs: string[]): string[] {
    return [line(this.name, pairs, data.v)]
  }
}

interface HistogramData {
  /** Per bucket, not cumulative: cumulated at render time. */
  readonly counts: number[]
  sum: number
  count: number
}

export class Histogram<L extends string = never> extends Metric<L, HistogramData> {
  readonly type = 'histogram'
  /** Upper bounds, increasing, without the implicit +Inf. */
  readonly buckets: readonly number[]

  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly L[] = []) {
    super(name, help, labelNames, ['le'])
    const b = buckets.at(-1) === Infinity ? buckets.slice(0, -1) : [...buckets]
    b.forEach((v, i) => {
      if (!Number.isFinite(v)) throw new MetricError(name, `bucket ${i} must be finite (got ${String(v)}); +Inf is implicit`)
      if (i > 0 && v <= b[i - 1]!) throw new MetricError(name, `buckets must increase (${b[i - 1]} then ${v})`)
    })
    this.buckets = b
    this.init()
  }

  protected fresh(): HistogramData {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 }
  }

  observe(seconds: number, labels?: Labels<L>): void {
    checkNumber(this.name, 'the observation', seconds)
    const d = this.series(labels)
    const i = this.buckets.findIndex((upper) => seconds <= upper)
    if (i >= 0) d.counts[i]!++
    d.sum += seconds
    d.count++
  }

  /** Count and sum of one series (for tests and status pages). */
  get(labels?: Labels<L>): { count: number; sum: number } {
    const d = this.series(labels)
    return { count: d.count, sum: d.sum }
  }

  protected samples(data: HistogramData, pairs: string[]): string[] {
    const out: string[] = []
    let cumulative = 0
    this.buckets.forEach((upper, i) => {
      cumulative += data.counts[i]!
      out.push(line(`${this.name}_bucket`, [...pairs, `le="${formatNumber(upper)}"`], cumulative))
    })
    out.push(line(`${this.name}_bucket`, [...pairs, 'le="+Inf"'], data.count))
    out.push(line(`${this.name}_sum`, pairs, data.sum))
    out.push(line(`${this.name}_count`, pairs, data.count))
    return out
  }
}

export interface RegistryOptions {
  /** Milliseconds since the epoch, for setToCurrentTime() (default Date.now). */
  now?: () => number
}

export class Registry {
  readonly #metrics = new Map<string, Metric<string, unknown>>()
  readonly #hooks: (() => void)[] = []
  readonly #asyncHooks: (() => Promise<void>)[] = []
  readonly #now: () => number

  constructor(options: RegistryOptions = {}) {
    this.#now = options.now ?? Date.now
  }

  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Counter<L> {
    return this.#add(new Counter(name, help, labelNames))
  }

  gauge<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Gauge<L> {
    return this.#add(new Gauge(name, help, labelNames, this.#now))
  }

  histogram<L extends string = never>(name: string, help: string, buckets: readonly number[], labelNames?: readonly L[]): Histogram<L> {
    return this.#add(new Histogram(name, help, buckets, labelNames))
  }

  /** Runs `hook` before every exposition: for values read when scraped (memory, CPU time). */
  collect(hook: () => void): void {
    this.#hooks.push(hook)
  }

  /**
   * Runs `hook` before every scrape(): for values that need I/O to read (a
   * kernel counter). A hook that rejects leaves its metrics as they were.
   */
  collectAsync(hook: () => Promise<void>): void {
    this.#asyncHooks.push(hook)
  }

  /** The async hooks (together), then the exposition: what /metrics serves. */
  async scrape(): Promise<string> {
    await Promise.all(this.#asyncHooks.map((h) => h().catch(() => undefined)))
    return this.exposition()
  }

  /** The text format 0.0.4 (Content-Type `text/plain; version=0.0.4`); the async hooks do not run. */
  exposition(): string {
    for (const hook of this.#hooks) hook()
    const names = [...this.#metrics.keys()].sort()
    return names.map((n) => this.#metrics.get(n)!.render()).join('')
  }

  #add<M extends Metric<string, unknown>>(m: M): M {
    // A histogram owns name_bucket, name_sum and name_count too.
    const owned = (x: Metric<string, unknown>) => (x.type === 'histogram' ? [x.name, `${x.name}_bucket`, `${x.name}_sum`, `${x.name}_count`] : [x.name])
    const mine = owned(m)
    for (const other of this.#metrics.values()) {
      if (owned(other).some((n) => mine.includes(n))) throw new MetricError(m.name, `already registered (as ${other.name})`)
    }
    this.#metrics.set(m.name, m)
    return m
  }
}

/** prometheus' ExponentialBuckets: start, start*factor, ... (count bounds), by repeated multiplication as Go computes them. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = []
  for (let v = start; out.length < count; v *= factor) out.push(v)
  return out
}

/** prometheus' LinearBuckets: start, start+width, ... (count bounds). */
export function linearBuckets(start: number, width: number, count: number): number[] {
  const out: number[] = []
  for (let v = start; out.length < count; v += width) out.push(v)
  return out
}

const SYNC_BUCKETS = exponentialBuckets(0.001, 2, 15)
// kube-proxy merges its ranges with component-base's MergeBuckets, which starts
// the list with a 0 bound: the first bucket is le="0".
const NETWORK_PROGRAMMING_BUCKETS = [
  0,
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
]

// component-base prefixes the help of every alpha metric with its stability
// level, and kube-proxy's are all alpha: scrapes show '[ALPHA] ...'.
const alpha = (help: string) => `[ALPHA] ${help}`

export interface KubeProxyMetrics {
  /** Every sync, full or partial. */
  syncProxyRulesDuration: Histogram
  syncFullProxyRulesDuration: Histogram
  syncPartialProxyRulesDuration: Histogram
  /** From the object's change (the endpoints-last-change-trigger-time annotation) to its rules in the kernel. */
  networkProgrammingDuration: Histogram
  syncProxyRulesLastTimestamp: Gauge
  syncProxyRulesLastQueuedTimestamp: Gauge
  endpointChangesPending: Gauge
  endpointChangesTotal: Counter
  serviceChangesPending: Gauge
  serviceChangesTotal: Counter
  /** A gauge despite its name (kube-proxy's): services with a Local policy and no local endpoint, by 'internal' / 'external'. */
  syncProxyRulesNoLocalEndpointsTotal: Gauge<'traffic_policy'>
  proxyHealthzTotal: Counter<'code'>
  proxyLivezTotal: Counter<'code'>
  manifestErrorsTotal: Counter
  /** Objects from the API server that failed to parse, skipped. */
  sourceObjectsRefusedTotal: Counter
  /** Parts of objects left out while the rest applies (an EndpointSlice's bad endpoint), by source (manifests, kubernetes). */
  sourceObjectsPartialTotal: Counter<'source'>
  /** Reads of the source that failed (what it held stays), by source and reason. */
  sourceErrorsTotal: Counter<'source' | 'reason'>
  kernelOperationsTotal: Counter<'subsystem' | 'result'>
  driftRepairsTotal: Counter<'subsystem'>
  syncErrorsTotal: Counter
  /** Service ports left without an address:port that an older service also asks for: a state, not events. */
  serviceConflicts: Gauge
  /**
   * A commit of a table's full rewrite failed (kube-proxy: a failed iptables-restore);
   * registered in iptables and IPVS modes, as kube-proxy does (its IPVS mode
   * restores its iptables rules too). The same counter as iptables.restoreFailuresTotal.
   */
  iptablesRestoreFailuresTotal?: Counter
  /** iptables mode only (kube-proxy registers them in that mode). */
  iptables?: IptablesMetrics
  /** nftables mode only (kube-proxy registers them in that mode). */
  nftables?: NftablesMetrics
}

/** kube-proxy's nftables-mode metrics. */
export interface NftablesMetrics {
  /** A sync's transaction failed (nothing of it applied). */
  syncFailuresTotal: Counter
  /**
   * Failed deletions of stale chains: kube-proxy deletes them in a later
   * transaction; tsproxy deletes them in the sync's own, so this stays 0 (a
   * failure there is a sync failure).
   */
  cleanupFailuresTotal: Counter
}

/** kube-proxy's iptables-mode metrics, as tsproxy's libiptc commits give them meaning. */
export interface IptablesMetrics {
  /** A full sync's commit of a table failed (kube-proxy: an iptables-restore of every table failed). */
  restoreFailuresTotal: Counter
  /** A commit of incremental edits failed (kube-proxy: a partial restore); the next sync is a full one. */
  partialRestoreFailuresTotal: Counter
  /** Rules in the chains of this mode after the last sync, by table (nat, filter); the jumps from built-in chains excluded. */
  rulesTotal: Gauge<'table'>
  /** Rules written (appended or inserted) by the last sync's commits, by table. */
  rulesLast: Gauge<'table'>
  /** Packets of filter KUBE-FORWARD's `-m conntrack --ctstate INVALID -j DROP` rule, read when scraped. */
  ctStateInvalidDroppedPacketsTotal: Counter
}

export interface KubeProxyMetricsOptions {
  /** The proxy mode: 'iptables' adds kube-proxy's iptables-mode metrics; 'ipvs' its restore-failure counter; 'nftables' its two nftables counters. */
  mode?: string
}

/** Registers kube-proxy's metrics (names, help, buckets as kube-proxy has them) and tsproxy's own. */
export function kubeProxyMetrics(registry: Registry, options: KubeProxyMetricsOptions = {}): KubeProxyMetrics {
  const m: KubeProxyMetrics = {
    syncProxyRulesDuration: registry.histogram('kubeproxy_sync_proxy_rules_duration_seconds', alpha('SyncProxyRules latency in seconds'), SYNC_BUCKETS),
    syncFullProxyRulesDuration: registry.histogram('kubeproxy_sync_full_proxy_rules_duration_seconds', alpha('SyncProxyRules latency in seconds for full resyncs'), SYNC_BUCKETS),
    syncPartialProxyRulesDuration: registry.histogram('kubeproxy_sync_partial_proxy_rules_duration_seconds', alpha('SyncProxyRules latency in seconds for partial resyncs'), SYNC_BUCKETS),
    networkProgrammingDuration: registry.histogram('kubeproxy_network_programming_duration_seconds', alpha('In Cluster Network Programming Latency in seconds'), NETWORK_PROGRAMMING_BUCKETS),
    syncProxyRulesLastTimestamp: registry.gauge('kubeproxy_sync_proxy_rules_last_timestamp_seconds', alpha('The last time proxy rules were successfully synced')),
    syncProxyRulesLastQueuedTimestamp: registry.gauge('kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', alpha('The last time a sync of proxy rules was queued')),
    endpointChangesPending: registry.gauge('kubeproxy_sync_proxy_rules_endpoint_changes_pending', alpha('Pending proxy rules Endpoint changes')),
    endpointChangesTotal: registry.counter('kubeproxy_sync_proxy_rules_endpoint_changes_total', alpha('Cumulative proxy rules Endpoint changes')),
    serviceChangesPending: registry.gauge('kubeproxy_sync_proxy_rules_service_changes_pending', alpha('Pending proxy rules Service changes')),
    serviceChangesTotal: registry.counter('kubeproxy_sync_proxy_rules_service_changes_total', alpha('Cumulative proxy rules Service changes')),
    syncProxyRulesNoLocalEndpointsTotal: registry.gauge('kubeproxy_sync_proxy_rules_no_local_endpoints_total', alpha('Number of services with a Local traffic policy and no endpoints'), ['traffic_policy']),
    proxyHealthzTotal: registry.counter('kubeproxy_proxy_healthz_total', alpha('Cumulative proxy healthz HTTP status'), ['code']),
    proxyLivezTotal: registry.counter('kubeproxy_proxy_livez_total', alpha('Cumulative proxy livez HTTP status'), ['code']),
    manifestErrorsTotal: registry.counter('tsproxy_manifest_errors_total', 'Manifest documents refused (bad YAML, invalid objects)'),
    sourceObjectsRefusedTotal: registry.counter('tsproxy_source_objects_refused_total', 'Objects from the API server refused (invalid), skipped'),
    sourceObjectsPartialTotal: registry.counter(
      'tsproxy_source_objects_partial_total',
      'Parts of objects left out while the rest of the object applies (an EndpointSlice endpoint refused), counted each time the object is read; by source (manifests, kubernetes)',
      ['source'],
    ),
    sourceErrorsTotal: registry.counter(
      'tsproxy_source_errors_total',
      'Reads of the source that failed, each retry counted; what it held stays applied. By source (manifests, kubernetes) and reason (errno code; list or watch)',
      ['source', 'reason'],
    ),
    kernelOperationsTotal: registry.counter('tsproxy_kernel_operations_total', 'Kernel operations sent, by subsystem (ipvs, ipset, iptables, nftables, route, conntrack, sysctl) and result (ok, error)', ['subsystem', 'result']),
    driftRepairsTotal: registry.counter('tsproxy_drift_repairs_total', 'Kernel objects found changed behind our back and put back, by subsystem', ['subsystem']),
    syncErrorsTotal: registry.counter('tsproxy_sync_errors_total', 'Syncs that failed and will be retried'),
    serviceConflicts: registry.gauge('tsproxy_service_conflicts', 'Service ports denied an address:port (cluster IP, external IP, load-balancer IP or node port) that a service ranking first also asks for'),
  }
  if (options.mode === 'iptables' || options.mode === 'ipvs') {
    m.iptablesRestoreFailuresTotal = registry.counter('kubeproxy_sync_proxy_rules_iptables_restore_failures_total', alpha('Cumulative proxy iptables restore failures'))
    if (options.mode === 'iptables') m.iptables = iptablesMetrics(registry, m.iptablesRestoreFailuresTotal)
  }
  if (options.mode === 'nftables')
    m.nftables = {
      syncFailuresTotal: registry.counter('kubeproxy_sync_proxy_rules_nftables_sync_failures_total', alpha('Cumulative proxy nftables sync failures')),
      cleanupFailuresTotal: registry.counter('kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total', alpha('Cumulative proxy nftables cleanup failures')),
    }
  return m
}

// kube-proxy's help texts for these say "restore": there is no iptables-restore
// here, a libiptc commit replaces the table the same way (all or nothing).
function iptablesMetrics(registry: Registry, restoreFailuresTotal: Counter): IptablesMetrics {
  return {
    restoreFailuresTotal,
    partialRestoreFailuresTotal: registry.counter('kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total', alpha('Cumulative proxy iptables partial restore failures')),
    rulesTotal: registry.gauge('kubeproxy_sync_proxy_rules_iptables_total', alpha('Total number of iptables rules owned by kube-proxy'), ['table']),
    rulesLast: registry.gauge('kubeproxy_sync_proxy_rules_iptables_last', alpha('Number of iptables rules written by kube-proxy in last sync'), ['table']),
    ctStateInvalidDroppedPacketsTotal: registry.counter('kubeproxy_iptables_ct_state_invalid_dropped_packets_total', alpha('packets dropped by iptables to work around conntrack problems')),
  }
}

/**
 * Feeds a counter from a kernel counter that may restart from zero (a rule
 * rewritten): growth is added; a reading below the last one counts from zero.
 * Returns the function that takes each new reading.
 */
export function followCounter(counter: Counter): (reading: number) => void {
  let last = 0
  return (reading) => {
    const grown = reading >= last ? reading - last : reading
    if (grown > 0) counter.inc(undefined, grown)
    last = reading
  }
}

/** What the process metrics read; injectable so tests see fixed values. */
export interface ProcessStats {
  /** Resident set size, bytes. */
  rss(): number
  /** User plus system CPU time so far, seconds. */
  cpuSeconds(): number
  /** Process start, seconds since the epoch. */
  startTime: number
  /** V8 heap in use, bytes (exposed only when given). */
  heapUsed?(): number
}

const nodeProcess: ProcessStats = {
  rss: () => process.memoryUsage.rss(),
  cpuSeconds: () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1e6
  },
  startTime: performance.timeOrigin / 1000,
  heapUsed: () => process.memoryUsage().heapUsed,
}

/** The process_* metrics a Go daemon's /metrics has (kube-proxy's included), read at each exposition. */
export function processMetrics(registry: Registry, stats: ProcessStats = nodeProcess): void {
  const rss = registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.')
  const start = registry.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.')
  const cpu = registry.counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.')
  // prom-client's name, so dashboards for Node daemons find it.
  const heap = stats.heapUsed && registry.gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.')
  start.set(stats.startTime)
  registry.collect(() => {
    rss.set(stats.rss())
    if (heap) heap.set(stats.heapUsed!())
    // The source is monotonic; feeding the counter its growth keeps it a counter.
    const grown = stats.cpuSeconds() - cpu.get()
    if (grown > 0) cpu.inc(undefined, grown)
  })
}
