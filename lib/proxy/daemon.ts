// The tsproxy daemon: a source feeds the change trackers, the runner decides
// when to sync, the proxier turns each sync into kernel batches, and two small
// HTTP servers tell the world how it goes (/healthz, /livez; /metrics, /status).
import { applyChanges, EndpointsChangeTracker, ServiceChangeTracker, type ChangeSink } from './changes.js'
import { clusterCIDRs, ipvsScheduler, nodeName as nodeNameOf, type KubeProxyConfiguration } from './config.js'
import { ProxyHealth } from './health.js'
import { healthRoutes, metricsRoutes, startServer, type RunningServer } from './http.js'
import { openDataplane, type IpvsDataplane } from './ipvs/dataplane.js'
import { IpvsProxier, type SyncReport } from './ipvs/proxier.js'
import { kubeProxyMetrics, processMetrics, Registry, type KubeProxyMetrics } from './metrics.js'
import { servicePortNameString } from './model/serviceport.js'
import { SyncRunner } from './runner.js'
import { ManifestSource, type Log } from './sources/manifests.js'
import { ipFamilyOf } from './model/fields.js'

export interface DaemonOptions {
  config: KubeProxyConfiguration
  /** The manifest file or directory (tsproxy's source). */
  manifests: string
  log: Log
  /** The kernel; the real one when not given. */
  dataplane?: IpvsDataplane
  /** This node's name; from the config (hostnameOverride) or the host name when not given. */
  nodeName?: string
}

/** One service port's programmed state, for `tsproxy status`. */
export interface StatusEntry {
  service: string
  protocol: string
  vip: string
  scheduler: string
  persistent?: number
  connections: number
  endpoints: { address: string; weight: number; active: number; inactive: number }[]
}

export class Daemon {
  readonly config: KubeProxyConfiguration
  readonly nodeName: string
  readonly registry = new Registry()
  readonly metrics: KubeProxyMetrics
  readonly health: ProxyHealth
  readonly services = new ServiceChangeTracker()
  readonly endpoints: EndpointsChangeTracker
  readonly #log: Log
  readonly #manifests: string
  #dataplane: IpvsDataplane | undefined
  #proxier: IpvsProxier | undefined
  #source: ManifestSource | undefined
  #runner: SyncRunner | undefined
  #servers: RunningServer[] = []
  #drainTimer: NodeJS.Timeout | undefined
  /** The last sync's report. */
  lastSync: (SyncReport & { at: Date; ms: number }) | undefined

  constructor(options: DaemonOptions) {
    this.config = options.config
    this.#log = options.log
    this.#manifests = options.manifests
    this.#dataplane = options.dataplane
    this.nodeName = options.nodeName ?? nodeNameOf(options.config)
    this.endpoints = new EndpointsChangeTracker({ nodeName: this.nodeName })
    this.metrics = kubeProxyMetrics(this.registry)
    processMetrics(this.registry)
    // kube-proxy: unhealthy when an update waited more than twice the sync period.
    this.health = new ProxyHealth({ healthTimeout: 2 * this.config.ipvs.syncPeriod })
  }

  get proxier(): IpvsProxier | undefined {
    return this.#proxier
  }

  /** Loads the manifests, programs the kernel (adopting what is there), starts watching and serving. */
  async start(): Promise<void> {
    const c = this.config
    if (c.mode !== 'ipvs') throw new Error(`proxy mode "${c.mode}" is not implemented yet; run with --proxy-mode=ipvs`)
    this.#dataplane ??= await openDataplane('inet')
    const cidr = clusterCIDRs(c).find((x) => ipFamilyOf(x.split('/')[0]!) === 'IPv4') ?? ''
    this.#proxier = new IpvsProxier(this.#dataplane, {
      family: 'inet',
      scheduler: ipvsScheduler(c),
      excludeCIDRs: c.ipvs.excludeCIDRs,
      nodePortAddresses: c.nodePortAddresses,
      masqueradeAll: c.iptables.masqueradeAll,
      masqueradeBit: c.iptables.masqueradeBit,
      clusterCIDR: cidr,
      strictARP: c.ipvs.strictARP,
      timeouts: { tcp: c.ipvs.tcpTimeout / 1000, tcpFin: c.ipvs.tcpFinTimeout / 1000, udp: c.ipvs.udpTimeout / 1000 },
      log: this.#log,
    })
    const changed = await this.#proxier.setup()
    if (changed.length > 0) this.#log('info', 'sysctls set', { keys: changed })

    const sink = this.#sink()
    this.#source = new ManifestSource({
      path: this.#manifests,
      sink,
      log: this.#log,
      onReload: (r) => {
        if (r.errors.length > 0) this.metrics.manifestErrorsTotal.inc(undefined, r.errors.length)
      },
    })
    this.#runner = new SyncRunner({
      run: (full) => this.#sync(full),
      minInterval: c.ipvs.minSyncPeriod,
      maxInterval: c.ipvs.syncPeriod,
      onError: (e) => {
        this.metrics.syncErrorsTotal.inc()
        this.#log('error', 'sync failed; retrying', { error: e })
      },
    })
    const loaded = await this.#source.load()
    if (loaded.errors.length > 0) this.metrics.manifestErrorsTotal.inc(undefined, loaded.errors.length)
    this.#log('info', 'manifests loaded', { path: this.#source.path, services: this.#source.stats.services, endpointSlices: this.#source.stats.endpointSlices, errors: loaded.errors.length })
    // Serving first: /healthz tells whether the first sync is late.
    await this.#serve()
    this.health.queued()
    this.#runner.request(true)
    this.#source.watch()
    this.#runner.start()
    await this.#runner.idle()
  }

  /** Stops watching, serving and syncing; the kernel state stays (connections survive a restart). */
  async stop(): Promise<void> {
    clearTimeout(this.#drainTimer)
    await this.#source?.close()
    await this.#runner?.stop()
    await Promise.all(this.#servers.map((s) => s.close()))
    this.#servers = []
    await this.#dataplane?.close()
  }

  /**
   * Waits until every change seen so far is in the kernel (tests, benchmarks);
   * `files`: manifest files known to have changed, read now without waiting for
   * the watcher or the poll.
   */
  async settled(files?: Iterable<string>): Promise<void> {
    await this.#source?.flush(files)
    await this.#runner?.idle()
  }

  /** Each programmed virtual server, named by its Kubernetes service port, with live counters. */
  async status(): Promise<StatusEntry[]> {
    const p = this.#proxier
    if (!p) return []
    return (await p.status()).map(({ servicePort, server: s }) => {
      const port = this.services.ports.get(servicePort)
      const entry: StatusEntry = {
        service: port ? servicePortNameString(port.name) : servicePort,
        protocol: s.protocol!,
        vip: `${s.address!.includes(':') ? `[${s.address}]` : s.address}:${s.port}`,
        scheduler: s.scheduler,
        connections: s.stats.conns,
        endpoints: (s.destinations ?? []).map((d) => ({ address: `${d.address}:${d.port}`, weight: d.weight, active: d.activeConns, inactive: d.inactiveConns })),
      }
      if (s.persistent) entry.persistent = s.timeout
      return entry
    })
  }

  #sink(): ChangeSink {
    // A reload feeds its events in one go: one clock read for all of them (a
    // system call where the clock has no vDSO, as in user-mode Linux).
    let stamping = false
    const queued = (): void => {
      this.health.queued()
      if (!stamping) {
        stamping = true
        queueMicrotask(() => {
          stamping = false
          this.metrics.syncProxyRulesLastQueuedTimestamp.setToCurrentTime()
        })
      }
      this.#runner?.request()
    }
    return {
      service: (previous, current) => {
        if (this.services.update(previous, current)) queued()
        this.metrics.serviceChangesTotal.inc()
        this.metrics.serviceChangesPending.set(this.services.pending)
      },
      endpointSlice: (previous, current) => {
        if (this.endpoints.update(previous, current)) queued()
        this.metrics.endpointChangesTotal.inc()
        this.metrics.endpointChangesPending.set(this.endpoints.pending)
      },
    }
  }

  async #sync(full: boolean): Promise<void> {
    const proxier = this.#proxier!
    const start = performance.now()
    const changes = applyChanges(this.services, this.endpoints)
    this.metrics.serviceChangesPending.set(0)
    this.metrics.endpointChangesPending.set(0)
    const endpoints = this.endpoints
    const report = await proxier.sync(
      { ports: this.services.ports, endpoints: (k) => endpoints.endpoints(k) },
      changes.servicePorts,
      {
        full,
        stale: {
          deletedUDPClusterIPs: changes.services.deletedUDPClusterIPs,
          deletedUDPEndpoints: changes.endpoints.deletedUDPEndpoints,
          newlyActiveUDPServices: changes.endpoints.newlyActiveUDPServices,
        },
      },
    )
    const seconds = (performance.now() - start) / 1000
    this.lastSync = { ...report, at: new Date(), ms: seconds * 1000 }
    const m = this.metrics
    m.syncProxyRulesDuration.observe(seconds)
    ;(report.full ? m.syncFullProxyRulesDuration : m.syncPartialProxyRulesDuration).observe(seconds)
    for (const [subsystem, n] of Object.entries(report.ops)) if (n > 0) m.kernelOperationsTotal.inc({ subsystem, result: 'ok' }, n)
    if (report.errors.length > 0) m.kernelOperationsTotal.inc({ subsystem: 'all', result: 'error' }, report.errors.length)
    for (const [subsystem, n] of Object.entries(report.repaired)) if (n > 0) m.driftRepairsTotal.inc({ subsystem }, n)
    m.syncProxyRulesNoLocalEndpointsTotal.set(report.noLocalEndpoints.internal, { traffic_policy: 'internal' })
    m.syncProxyRulesNoLocalEndpointsTotal.set(report.noLocalEndpoints.external, { traffic_policy: 'external' })
    const now = Date.now()
    for (const at of changes.endpoints.triggerTimes.values()) if (now >= at) m.networkProgrammingDuration.observe((now - at) / 1000)
    if (report.errors.length > 0) {
      // Some operation was refused: the next sync re-reads the kernel.
      this.#runner?.request(true)
      throw new Error(`${report.errors.length} kernel operations failed (first: ${report.errors[0]!.message})`)
    }
    m.syncProxyRulesLastTimestamp.setToCurrentTime()
    this.health.updated()
    const repaired = Object.values(report.repaired).reduce((a, b) => a + b, 0)
    this.#log(report.full || repaired > 0 ? 'info' : 'debug', report.full ? 'full sync' : 'sync', {
      ports: report.ports,
      ops: report.ops,
      ...(repaired > 0 ? { repaired: report.repaired } : {}),
      ms: Math.round(seconds * 1e4) / 10,
    })
    if (proxier.draining > 0) this.#scheduleDrain()
  }

  #scheduleDrain(): void {
    if (this.#drainTimer) return
    const tick = async (): Promise<void> => {
      this.#drainTimer = undefined
      // Drain checks share the kernel with syncs: run between them.
      await this.#runner?.idle()
      const left = await this.#proxier!.drain().catch((e: unknown) => {
        this.#log('warn', 'drain check failed', { error: e })
        return 1
      })
      if (left > 0) this.#drainTimer = setTimeout(() => void tick(), 1000)
    }
    this.#drainTimer = setTimeout(() => void tick(), 0)
  }

  async #serve(): Promise<void> {
    const c = this.config
    const routes = { ...healthRoutes(this.health, this.metrics) }
    const status = { '/status': async () => ({ status: 200, type: 'application/json', body: JSON.stringify(await this.status()) }) }
    if (c.healthzBindAddress) this.#servers.push(await startServer({ address: c.healthzBindAddress, routes, log: this.#log }))
    if (c.metricsBindAddress) this.#servers.push(await startServer({ address: c.metricsBindAddress, routes: { ...metricsRoutes(this.registry, { proxyMode: c.mode }), ...status }, log: this.#log }))
  }
}

/** service -> VIP -> endpoints, with weights and connection counts, one block per virtual server. */
export function formatStatus(entries: StatusEntry[]): string {
  if (entries.length === 0) return 'no services programmed\n'
  const lines: string[] = []
  for (const e of entries) {
    const sticky = e.persistent ? ` sticky ${e.persistent}s` : ''
    lines.push(`${e.service}  ${e.protocol.toUpperCase()} ${e.vip}  ${e.scheduler}${sticky}  ${e.connections} connections`)
    if (e.endpoints.length === 0) lines.push('    (no endpoints)')
    for (const d of e.endpoints) {
      const note = d.weight === 0 ? '  draining' : ''
      lines.push(`    -> ${d.address.padEnd(22)} weight ${d.weight}  active ${d.active}  inactive ${d.inactive}${note}`)
    }
  }
  return `${lines.join('\n')}\n`
}
