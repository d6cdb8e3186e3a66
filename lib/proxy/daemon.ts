// The tsproxy daemon: a source feeds the change trackers, the runner decides
// when to sync, the proxier turns each sync into kernel batches, and two small
// HTTP servers tell the world how it goes (/healthz, /livez; /metrics, /status).
import { applyChanges, EndpointsChangeTracker, ServiceChangeTracker, type ChangeSink } from './changes.js'
import { clusterCIDRs, ipvsScheduler, nodeName as nodeNameOf, type KubeProxyConfiguration } from './config.js'
import { ProxyHealth } from './health.js'
import { healthRoutes, metricsRoutes, startServer, type RunningServer } from './http.js'
import { openDataplane, type IpvsDataplane } from './ipvs/dataplane.js'
import { IpvsProxier } from './ipvs/proxier.js'
import type { Log, Proxier, SyncReport } from './types.js'
import { IptablesProxier } from './iptables/proxier.js'
import { openIptablesDataplane, type IptablesDataplane } from './iptables/dataplane.js'
import { NftablesProxier } from './nftables/proxier.js'
import { noFamilySupport, openNftablesDataplane, type NftablesDataplane } from './nftables/dataplane.js'
import { TABLE as NFT_TABLE } from './nftables/desired.js'
import { Nftables } from '../nftables.js'
import { DUMMY_LINK } from './ipvs/netfilter.js'
import { Iptables } from '../iptables.js'
import { Rtnl } from '../route.js'
import { followCounter, kubeProxyMetrics, processMetrics, Registry, type KubeProxyMetrics } from './metrics.js'
import { servicePortNameString } from './model/serviceport.js'
import { SyncRunner } from './runner.js'
import { applyConntrackSettings, conntrackSettings, type SysctlIO } from './conntrack-settings.js'
import { getSysctl, setSysctl } from '../sysctl.js'
import { tuneMalloc, type MallocThresholds } from '../memory.js'
import { availableParallelism } from 'node:os'
import { ServiceHealthServer, type ServiceHealth } from './servicehealth.js'
import { ManifestSource, type ReloadResult } from './sources/manifests.js'
import { KubernetesSource } from './sources/kube/source.js'
import type { KubeApi } from './sources/kube/client.js'
import { joinHostPort } from './model/fields.js'
import { inFamily } from '../address.js'
import type { Family } from '../validate.js'

export interface DaemonOptions {
  config: KubeProxyConfiguration
  /** The manifest file or directory (tsproxy's own source); or: */
  manifests?: string
  /** The Kubernetes API (list/watch of Services, EndpointSlices and this Node). */
  kubernetes?: KubeApi
  log: Log
  /** The kernel, per address family; the real one when not given. */
  dataplane?: IpvsDataplane | ((family: Family) => IpvsDataplane)
  /** The same for iptables mode. */
  iptablesDataplane?: (family: Family) => IptablesDataplane
  /** The same for nftables mode. */
  nftablesDataplane?: (family: Family) => NftablesDataplane
  /** This node's name; from the config (hostnameOverride) or the host name when not given. */
  nodeName?: string
  /** Where the conntrack settings are read and written (/proc/sys when not given). */
  sysctl?: SysctlIO
  /**
   * malloc's thresholds, set process-wide at start; false or not given leaves them
   * to glibc (main.ts passes mallocThresholdsFromEnv's choice: TSPROXY_MALLOC_TUNING=on).
   */
  malloc?: MallocThresholds | false
}

const MIB = 1024 * 1024

/**
 * The daemon's malloc thresholds (benchmarks/README.md, ipvs-bulk "malloc"): a
 * batch's native buffers (an encoded IPVS batch is ~100 bytes per operation:
 * 2 MB at 20k) stay in the heap instead of each getting a mapping that free()
 * unmaps and the next sync faults in again, page by page; and up to 32 MiB
 * freed at the top of a heap stays for the next sync instead of going back to
 * the kernel after every batch. iptables mode's tables go back as before:
 * native/iptc calls malloc_trim(0), which ignores the trim threshold, and a
 * table blob above 4 MiB still gets (and loses) a mapping of its own.
 */
export const DAEMON_MALLOC_THRESHOLDS: Readonly<MallocThresholds> = Object.freeze({ trimThreshold: 32 * MIB, mmapThreshold: 4 * MIB })

/**
 * The daemon's malloc choice from its environment. Off by default: the tuning
 * makes big batches faster (fewer page faults) but costs RSS (+14 MB at 10k
 * services), and on a node memory is what is watched. TSPROXY_MALLOC_TUNING=on
 * (1, true) is DAEMON_MALLOC_THRESHOLDS, unless GLIBC_TUNABLES names either
 * threshold (the operator chose); off, 0, false or unset leave glibc's.
 * Anything else throws, naming the variable.
 */
export function mallocThresholdsFromEnv(env: Readonly<Record<string, string | undefined>>): MallocThresholds | false {
  const v = (env.TSPROXY_MALLOC_TUNING ?? '').trim().toLowerCase()
  if (v === '' || v === 'off' || v === '0' || v === 'false') return false
  if (v !== 'on' && v !== '1' && v !== 'true') throw new Error(`TSPROXY_MALLOC_TUNING=${JSON.stringify(env.TSPROXY_MALLOC_TUNING)}: use "on" to set the daemon's malloc thresholds, or "off" (the default) to leave them to glibc`)
  if (/glibc\.malloc\.(trim|mmap)_threshold=/.test(env.GLIBC_TUNABLES ?? '')) return false
  return { ...DAEMON_MALLOC_THRESHOLDS }
}

/** The order in which a start removes the other modes' state (as each mode did it before this list). */
const LEAVE_ORDER = ['ipvs', 'iptables', 'nftables'] as const

/** The families to proxy: those of the cluster CIDRs (IPv4 when none is configured). */
export function families(cidrs: readonly string[]): Family[] {
  const fams = new Set(cidrs.map((c): Family => (inFamily(c, 'inet6') ? 'inet6' : 'inet')))
  if (fams.size === 0) fams.add('inet')
  return (['inet', 'inet6'] as const).filter((f) => fams.has(f))
}

function mergeReports(reports: readonly SyncReport[]): SyncReport {
  const sum = <K extends string>(pick: (r: SyncReport) => Partial<Record<K, number>>): Record<K, number> => {
    const out = {} as Record<K, number>
    for (const r of reports) for (const [k, v] of Object.entries(pick(r)) as [K, number][]) out[k] = (out[k] ?? 0) + v
    return out
  }
  if (reports.length === 1) return reports[0]!
  return {
    full: reports.some((r) => r.full),
    ports: Math.max(0, ...reports.map((r) => r.ports)),
    ops: sum((r) => r.ops) as SyncReport['ops'],
    errors: reports.flatMap((r) => r.errors),
    repaired: sum((r) => r.repaired) as SyncReport['repaired'],
    noLocalEndpoints: sum((r) => r.noLocalEndpoints) as SyncReport['noLocalEndpoints'],
    conflicts: reports.reduce((n, r) => n + r.conflicts, 0),
    rulesWritten: sum((r) => r.rulesWritten) as SyncReport['rulesWritten'],
    commitFailures: sum((r) => r.commitFailures) as SyncReport['commitFailures'],
  }
}

/** One service port's programmed state, for `tsproxy status`. */
export interface StatusEntry {
  service: string
  protocol: string
  vip: string
  scheduler: string
  persistent?: number
  connections: number
  /** iptables mode: packets through the service's rules (there is no per-connection count). */
  packets?: number
  endpoints: { address: string; weight: number; active: number; inactive: number }[]
  /** IPVS mode: other service ports asking for this VIP, left out (lib/proxy/claims.ts). */
  ignored?: string[]
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
  readonly #manifests: string | undefined
  readonly #dataplaneOption: DaemonOptions['dataplane']
  readonly #malloc: MallocThresholds | false
  readonly #iptablesDataplaneOption: DaemonOptions['iptablesDataplane']
  readonly #nftablesDataplaneOption: DaemonOptions['nftablesDataplane']
  readonly #sysctl: SysctlIO | undefined
  #dataplanes: { close(): Promise<void> }[] = []
  /** One proxier per address family the cluster uses (kube-proxy's dual-stack meta-proxier). */
  #proxiers: Proxier[] = []
  #source: ManifestSource | undefined
  #kube: KubernetesSource | undefined
  readonly #kubeApi: KubeApi | undefined
  #runner: SyncRunner | undefined
  #servers: RunningServer[] = []
  readonly #serviceHealth: ServiceHealthServer
  /** Service ports with a healthCheckNodePort. */
  readonly #hcPorts = new Set<string>()
  #drainTimer: NodeJS.Timeout | undefined
  #stopped = false
  /** Ends the wait for an unreadable source at start. */
  #wake: (() => void) | undefined
  /** The last sync's report. */
  lastSync: (SyncReport & { at: Date; ms: number }) | undefined

  constructor(options: DaemonOptions) {
    this.config = options.config
    this.#log = options.log
    if ((options.manifests === undefined) === (options.kubernetes === undefined)) throw new Error('Daemon: give exactly one source, manifests or kubernetes')
    this.#manifests = options.manifests
    this.#kubeApi = options.kubernetes
    this.#dataplaneOption = options.dataplane
    this.#iptablesDataplaneOption = options.iptablesDataplane
    this.#nftablesDataplaneOption = options.nftablesDataplane
    this.#sysctl = options.sysctl
    this.#malloc = options.malloc ?? false
    this.nodeName = options.nodeName ?? nodeNameOf(options.config)
    this.endpoints = new EndpointsChangeTracker({ nodeName: this.nodeName })
    this.metrics = kubeProxyMetrics(this.registry, { mode: options.config.mode })
    processMetrics(this.registry)
    // kube-proxy: unhealthy when an update waited more than twice the sync period.
    this.health = new ProxyHealth({ healthTimeout: 2 * this.#periods.max })
    this.#serviceHealth = new ServiceHealthServer(this.#log)
  }

  /** Before the first kernel buffer is allocated; logged when asked for (the default, glibc's, says nothing). */
  #tuneMalloc(): void {
    const m = this.#malloc
    if (m === false) return
    if (tuneMalloc(m)) this.#log('info', 'malloc thresholds set', { trimThreshold: m.trimThreshold, mmapThreshold: m.mmapThreshold })
    else this.#log('info', 'malloc thresholds left to glibc (not glibc, or it refused them)', { trimThreshold: m.trimThreshold, mmapThreshold: m.mmapThreshold })
  }

  /** The mode's sync periods (ipvs.*, iptables.* or nftables.*). */
  get #periods(): { min: number; max: number } {
    const p = this.config.mode === 'iptables' ? this.config.iptables : this.config.mode === 'nftables' ? this.config.nftables : this.config.ipvs
    return { min: p.minSyncPeriod, max: p.syncPeriod }
  }

  /**
   * Switching modes removes the other mode's state, as kube-proxy does: IPVS
   * mode's virtual servers, sets, kube-ipvs0 and chains, or iptables mode's
   * per-service chains, or nftables mode's table. Looked for first (read
   * only), so a restart in the same mode touches nothing.
   */
  async #leaveMode(other: (typeof LEAVE_ORDER)[number], family: Family): Promise<void> {
    try {
      if (other === 'nftables') {
        const nft = await Nftables.open()
        const fam = family === 'inet6' ? 'ip6' : 'ip'
        const there = await nft
          .listTables(fam)
          .then((ts) => ts.some((t) => t.name === NFT_TABLE))
          .catch((e: unknown) => {
            // A kernel without nf_tables for this family has no table of ours.
            if (noFamilySupport(e)) return false
            throw e
          })
          .finally(() => nft.close())
        if (!there) return
        const dp = await openNftablesDataplane()
        try {
          this.#log('info', 'removing nftables-mode state (the mode changed)', { family, removed: await new NftablesProxier(dp, { family, log: this.#log }).cleanup() })
        } finally {
          await dp.close()
        }
      } else if (other === 'iptables') {
        const ipt = await Iptables.open({ family })
        const chains = await ipt.listChains('nat')
        if (!chains.some((ch) => /^KUBE-(SVC|SEP|EXT|SVL|FW)-|^KUBE-NODEPORTS$/.test(ch.name))) return
        const dp = await openIptablesDataplane(family)
        try {
          this.#log('info', 'removing iptables-mode state (the mode changed)', { family, removed: await new IptablesProxier(dp, { family, log: this.#log }).cleanup() })
        } finally {
          await dp.close()
        }
      } else {
        const rtnl = await Rtnl.open()
        const link = await rtnl.getLink(DUMMY_LINK).finally(() => rtnl.close())
        if (!link) return
        const dp = await openDataplane(family)
        try {
          this.#log('info', 'removing IPVS-mode state (the mode changed)', { family, removed: await new IpvsProxier(dp, { family, log: this.#log }).cleanup() })
        } finally {
          await dp.close()
        }
      }
    } catch (e) {
      this.#log('warn', `could not remove the ${other} mode's state`, { family, error: e })
    }
  }

  /** The proxier of each family in use ('inet' first). */
  get proxiers(): readonly Proxier[] {
    return this.#proxiers
  }

  /** The ports the health and metrics servers listen on (the real ones when the config asked for port 0). */
  readonly ports: { healthz?: number; metrics?: number } = {}

  /** Loads the manifests, programs the kernel (adopting what is there), starts watching and serving. */
  async start(): Promise<void> {
    const c = this.config
    if (c.mode !== 'ipvs' && c.mode !== 'iptables' && c.mode !== 'nftables') throw new Error(`proxy mode "${c.mode}" is not implemented; run with --proxy-mode=ipvs, iptables or nftables`)
    // The kernel's interfaces first: a missing module (ip_vs, ip_set, conntrack
    // netlink) is one error before anything is written, served or loaded.
    const cidrs = clusterCIDRs(c)
    this.#tuneMalloc()
    const opened = new Map<Family, IpvsDataplane | IptablesDataplane | NftablesDataplane>()
    for (const family of families(cidrs)) {
      let dp: IpvsDataplane | IptablesDataplane | NftablesDataplane
      if (c.mode === 'ipvs') {
        const given = this.#dataplaneOption
        dp = given === undefined ? await openDataplane(family) : typeof given === 'function' ? given(family) : given
      } else if (c.mode === 'nftables') {
        const given = this.#nftablesDataplaneOption
        dp = given ? given(family) : await openNftablesDataplane()
      } else {
        const given = this.#iptablesDataplaneOption
        dp = given ? given(family) : await openIptablesDataplane(family)
      }
      this.#dataplanes.push(dp)
      opened.set(family, dp)
    }
    const sink = this.#sink()
    // Serving first: /healthz and /metrics answer while the source loads.
    await this.#serve()
    let nodeZone: string | undefined
    // The source in use shows its partial count from the start, at 0.
    this.metrics.sourceObjectsPartialTotal.inc({ source: this.#kubeApi ? 'kubernetes' : 'manifests' }, 0)
    if (this.#kubeApi) {
      this.#kube = new KubernetesSource({
        client: this.#kubeApi,
        sink,
        nodeName: this.nodeName,
        log: this.#log,
        onError: (e) => {
          if (e.kind === 'refused') this.metrics.sourceObjectsRefusedTotal.inc()
          if (e.kind === 'partial') this.metrics.sourceObjectsPartialTotal.inc({ source: 'kubernetes' })
          if (e.kind === 'list' || e.kind === 'watch') {
            this.metrics.sourceErrorsTotal.inc({ source: 'kubernetes', reason: e.kind })
            this.health.sourceFailed(`kubernetes ${e.resource}`, `${e.kind}: ${e.error.message}`)
          }
        },
        onRecovered: (resource) => this.health.sourceRecovered(`kubernetes ${resource}`),
        onNode: (_previous, node) => {
          // A node on its way out fails /healthz (not /livez): load balancers leave it.
          this.health.nodeEligible = !node?.deleting
          if (node?.zone !== nodeZone && this.#runner) this.#log('warn', 'the node\'s zone changed; topology hints use the zone read at start until a restart', { zone: node?.zone })
        },
      })
      this.#kube.start()
      this.#log('info', 'waiting for the API server', { node: this.nodeName })
      // Nothing is written before the first lists: a daemon that cannot reach
      // the API server leaves the kernel as it found it.
      await this.#kube.synced()
      nodeZone = this.#kube.node?.zone
      const st = this.#kube.stats
      this.#log('info', 'API lists loaded', { services: st.services, endpointSlices: st.endpointSlices, refused: st.refused, zone: nodeZone })
    } else {
      // The source's own count is the truth: the metric follows it, so a refusal is counted once (load is a reload too).
      let counted = 0
      let countedPartial = 0
      const count = (): void => {
        const n = this.#source!.stats.errorsTotal - counted
        if (n > 0) this.metrics.manifestErrorsTotal.inc(undefined, n)
        counted += n
        const p = this.#source!.stats.partialTotal - countedPartial
        if (p > 0) this.metrics.sourceObjectsPartialTotal.inc({ source: 'manifests' }, p)
        countedPartial += p
      }
      this.#source = new ManifestSource({
        path: this.#manifests!,
        sink,
        log: this.#log,
        onReload: count,
        onReadError: (e) => {
          this.metrics.sourceErrorsTotal.inc({ source: 'manifests', reason: e.reason })
          if (e.scope === 'source') this.health.sourceFailed('manifests', e.message)
        },
        onReadable: () => this.health.sourceRecovered('manifests'),
      })
      const loaded = await this.#loadManifests(this.#source)
      count()
      this.#log('info', 'manifests loaded', { path: this.#source.path, services: this.#source.stats.services, endpointSlices: this.#source.stats.endpointSlices, errors: loaded.errors.length })
    }

    // The first kernel write: after the source has been read, so a daemon that
    // waits for its source (or fails before) leaves the node as it found it.
    const io = this.#sysctl ?? { get: (k: string) => getSysctl(k), set: (k: string, v: number) => setSysctl(k, v) }
    const ct = await applyConntrackSettings(conntrackSettings(c.conntrack, availableParallelism()), io, this.#log)
    if (ct.length > 0) this.#log('info', 'conntrack settings applied', { keys: ct })

    const cidrOf = (family: Family): string => cidrs.find((x) => inFamily(x, family)) ?? ''
    // The other modes' state goes (unless a test gave this mode's dataplane: then the kernel is not ours).
    const injected = { nftables: this.#nftablesDataplaneOption, ipvs: this.#dataplaneOption, iptables: this.#iptablesDataplaneOption }[c.mode]
    for (const family of families(cidrs)) {
      if (injected === undefined) for (const other of LEAVE_ORDER) if (other !== c.mode) await this.#leaveMode(other, family)
      let proxier: Proxier
      if (c.mode === 'nftables') {
        proxier = new NftablesProxier(opened.get(family) as NftablesDataplane, {
          family,
          masqueradeAll: c.nftables.masqueradeAll,
          masqueradeBit: c.nftables.masqueradeBit,
          clusterCIDR: cidrOf(family),
          nodePortAddresses: c.nodePortAddresses,
          log: this.#log,
          ...(nodeZone ? { nodeZone } : {}),
        })
      } else if (c.mode === 'ipvs') {
        proxier = new IpvsProxier(opened.get(family) as IpvsDataplane, {
          family,
          scheduler: ipvsScheduler(c),
          excludeCIDRs: c.ipvs.excludeCIDRs,
          nodePortAddresses: c.nodePortAddresses,
          masqueradeAll: c.iptables.masqueradeAll,
          masqueradeBit: c.iptables.masqueradeBit,
          clusterCIDR: cidrOf(family),
          strictARP: c.ipvs.strictARP,
          timeouts: { tcp: c.ipvs.tcpTimeout / 1000, tcpFin: c.ipvs.tcpFinTimeout / 1000, udp: c.ipvs.udpTimeout / 1000 },
          log: this.#log,
          ...(nodeZone ? { nodeZone } : {}),
        })
      } else {
        proxier = new IptablesProxier(opened.get(family) as IptablesDataplane, {
          family,
          masqueradeAll: c.iptables.masqueradeAll,
          masqueradeBit: c.iptables.masqueradeBit,
          clusterCIDR: cidrOf(family),
          localhostNodePorts: c.iptables.localhostNodePorts,
          nodePortAddresses: c.nodePortAddresses,
          log: this.#log,
          ...(nodeZone ? { nodeZone } : {}),
        })
      }
      this.#proxiers.push(proxier)
      if (proxier instanceof IptablesProxier) this.#followCtStateInvalid(proxier)
      const changed = await proxier.setup()
      if (changed.length > 0) this.#log('info', 'sysctls set', { family, keys: changed })
    }

    this.#runner = new SyncRunner({
      run: (full) => this.#sync(full),
      minInterval: this.#periods.min,
      maxInterval: this.#periods.max,
      onError: (e) => {
        this.metrics.syncErrorsTotal.inc()
        this.#log('error', 'sync failed; retrying', { error: e })
      },
    })
    this.health.queued()
    this.#runner.request(true)
    this.#source?.watch()
    this.#runner.start()
    await this.#runner.idle()
  }

  /**
   * The first read of the manifests. A source that cannot be read is waited for,
   * as kube-proxy waits for its informers' first lists: no rule is written
   * before it reads (a first sync from nothing would remove every service).
   */
  async #loadManifests(source: ManifestSource): Promise<ReloadResult> {
    let last = ''
    for (;;) {
      try {
        const r = await source.load()
        this.health.sourceRecovered('manifests')
        return r
      } catch (e) {
        if (this.#stopped) throw new Error('stopped before the manifests could be read')
        const reason = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN'
        const message = e instanceof Error ? e.message : String(e)
        this.metrics.sourceErrorsTotal.inc({ source: 'manifests', reason })
        this.health.sourceFailed('manifests', message)
        if (message !== last) this.#log('warn', 'cannot read the manifests; waiting for them, no rule is written before they read', { path: source.path, error: message })
        last = message
        await new Promise<void>((wake) => {
          const timer = setTimeout(wake, 1000)
          this.#wake = () => {
            clearTimeout(timer)
            wake()
          }
        })
      }
    }
  }

  /** Stops watching, serving and syncing; the kernel state stays (connections survive a restart). */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#wake?.()
    clearTimeout(this.#drainTimer)
    await this.#source?.close()
    await this.#kube?.stop()
    ;(this.#kubeApi as { close?: () => void } | undefined)?.close?.()
    await this.#runner?.stop()
    await Promise.all(this.#servers.map((s) => s.close()))
    await this.#serviceHealth.close()
    this.#servers = []
    await Promise.all(this.#dataplanes.map((d) => d.close()))
    this.#dataplanes = []
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
    const out: StatusEntry[] = []
    for (const p of this.#proxiers) {
      for (const rec of await p.status()) {
        const port = this.services.ports.get(rec.servicePort)
        const service = port ? servicePortNameString(port.name) : rec.servicePort
        if ('server' in rec) {
          const s = rec.server
          const entry: StatusEntry = {
            service,
            protocol: s.protocol!,
            vip: joinHostPort(s.address!, s.port!),
            scheduler: s.scheduler,
            connections: s.stats.conns,
            endpoints: (s.destinations ?? []).map((d) => ({ address: joinHostPort(d.address, d.port), weight: d.weight, active: d.activeConns, inactive: d.inactiveConns })),
          }
          if (s.persistent) entry.persistent = s.timeout
          if (rec.ignored) entry.ignored = rec.ignored.map((k) => {
            const other = this.services.ports.get(k)
            return other ? servicePortNameString(other.name) : k
          })
          out.push(entry)
        } else if (port) {
          // iptables mode: the cluster IP of this family, the endpoints as the
          // rules choose them (equal odds), packets through the service's rules.
          const ip = port.clusterIPs.find((a) => (p.family === 'inet') === !a.includes(':')) ?? port.clusterIPs[0]!
          const entry: StatusEntry = {
            service,
            protocol: port.protocol.toLowerCase(),
            vip: joinHostPort(ip, port.port),
            scheduler: 'random',
            connections: 0,
            packets: rec.packets,
            endpoints: this.endpoints.endpoints(rec.servicePort).filter((e) => e.ready && (p.family === 'inet') === !e.ip.includes(':')).map((e) => ({ address: e.key, weight: 1, active: 0, inactive: 0 })),
          }
          if (port.stickyMaxAgeSeconds > 0) entry.persistent = port.stickyMaxAgeSeconds
          out.push(entry)
        }
      }
    }
    return out.sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : a.vip < b.vip ? -1 : 1))
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
    const start = performance.now()
    const changes = applyChanges(this.services, this.endpoints)
    this.metrics.serviceChangesPending.set(0)
    this.metrics.endpointChangesPending.set(0)
    const endpoints = this.endpoints
    const state = { ports: this.services.ports, endpoints: (k: string) => endpoints.endpoints(k) }
    const stale = {
      deletedUDPClusterIPs: changes.services.deletedUDPClusterIPs,
      deletedUDPEndpoints: changes.endpoints.deletedUDPEndpoints,
      newlyActiveUDPServices: changes.endpoints.newlyActiveUDPServices,
    }
    const reports: SyncReport[] = []
    for (const p of this.#proxiers) reports.push(await p.sync(state, changes.servicePorts, { full, stale }))
    const report = mergeReports(reports)
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
    m.serviceConflicts.set(report.conflicts)
    // kube-proxy counts a failed restore as partial or full by the sync it was in; so do we, by commit.
    // IPVS mode rewrites its chains in full syncs only: full failures, no partial metric (as kube-proxy).
    m.iptablesRestoreFailuresTotal?.inc(undefined, report.commitFailures.full)
    m.nftables?.syncFailuresTotal.inc(undefined, report.commitFailures.full + report.commitFailures.partial)
    if (m.iptables) {
      m.iptables.partialRestoreFailuresTotal.inc(undefined, report.commitFailures.partial)
      const total = { nat: 0, filter: 0 }
      for (const p of this.#proxiers) {
        if (!(p instanceof IptablesProxier)) continue
        const c = p.ruleCounts()
        total.nat += c.nat
        total.filter += c.filter
      }
      for (const table of ['filter', 'nat'] as const) {
        m.iptables.rulesTotal.set(total[table], { table })
        m.iptables.rulesLast.set(report.rulesWritten[table], { table })
      }
    }
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
    this.#log('info', report.full ? 'full sync' : 'sync', {
      ports: report.ports,
      ops: report.ops,
      ...(repaired > 0 ? { repaired: report.repaired } : {}),
      ms: Math.round(seconds * 1e4) / 10,
    })
    if (this.#proxiers.some((p) => p.draining > 0)) this.#scheduleDrain()
    // Only ports that have (or had) a health check: no pass over every port per sync.
    let hcChanged = false
    for (const key of changes.servicePorts) {
      const had = this.#hcPorts.delete(key)
      if ((this.services.ports.get(key)?.healthCheckNodePort ?? 0) !== 0) this.#hcPorts.add(key)
      hcChanged ||= had || this.#hcPorts.has(key)
    }
    if (hcChanged || (report.full && this.#hcPorts.size > 0)) await this.#serviceHealth.sync(this.#healthChecks())
  }

  /**
   * kube-proxy's ct_state_invalid_dropped counter, read from the INVALID drop
   * rule's packet counter at each scrape (kube-proxy reads an nfacct object
   * that rule feeds). The rule's counter restarts when the rule is rewritten
   * (drift repair); the metric keeps counting up from there.
   */
  #followCtStateInvalid(proxier: IptablesProxier): void {
    const counter = this.metrics.iptables?.ctStateInvalidDroppedPacketsTotal
    if (!counter) return
    const feed = followCounter(counter)
    let lastError = ''
    this.registry.collectAsync(async () => {
      try {
        const packets = await proxier.ctStateInvalidDropped()
        if (packets !== undefined) feed(packets)
        lastError = ''
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e)
        if (message !== lastError) this.#log('warn', 'cannot read the ctstate INVALID drop counter', { family: proxier.family, error: e })
        lastError = message
      }
    })
  }

  /** healthCheckNodePort -> the service and its ready endpoints on this node. */
  #healthChecks(): Map<number, ServiceHealth> {
    const out = new Map<number, ServiceHealth & { ips: Set<string> }>()
    for (const key of this.#hcPorts) {
      const port = this.services.ports.get(key)
      if (!port) continue
      let h = out.get(port.healthCheckNodePort)
      if (!h) out.set(port.healthCheckNodePort, (h = { namespace: port.name.namespace, name: port.name.name, localEndpoints: 0, ips: new Set() }))
      for (const e of this.endpoints.endpoints(key)) if (e.isLocal && e.ready) h.ips.add(e.ip)
    }
    return new Map([...out].map(([p, h]) => [p, { namespace: h.namespace, name: h.name, localEndpoints: h.ips.size }]))
  }

  #scheduleDrain(): void {
    if (this.#drainTimer) return
    const tick = async (): Promise<void> => {
      this.#drainTimer = undefined
      // Drain checks share the kernel with syncs: run between them.
      await this.#runner?.idle()
      let left = 0
      for (const p of this.#proxiers) {
        left += await p.drain().catch((e: unknown) => {
          this.#log('warn', 'drain check failed', { family: p.family, error: e })
          return 1
        })
      }
      if (left > 0) this.#drainTimer = setTimeout(() => void tick(), 1000)
    }
    this.#drainTimer = setTimeout(() => void tick(), 0)
  }

  async #serve(): Promise<void> {
    const c = this.config
    const routes = { ...healthRoutes(this.health, this.metrics) }
    const status = { '/status': async () => ({ status: 200, type: 'application/json', body: JSON.stringify(await this.status()) }) }
    if (c.healthzBindAddress) {
      const s = await startServer({ address: c.healthzBindAddress, routes, log: this.#log })
      this.#servers.push(s)
      this.ports.healthz = s.port
    }
    if (c.metricsBindAddress) {
      const s = await startServer({ address: c.metricsBindAddress, routes: { ...metricsRoutes(this.registry, { proxyMode: c.mode }), ...status }, log: this.#log })
      this.#servers.push(s)
      this.ports.metrics = s.port
    }
  }
}

/** service -> VIP -> endpoints, with weights and connection counts, one block per virtual server. */
export function formatStatus(entries: StatusEntry[]): string {
  if (entries.length === 0) return 'no services programmed\n'
  const lines: string[] = []
  for (const e of entries) {
    const sticky = e.persistent ? ` sticky ${e.persistent}s` : ''
    const load = e.packets !== undefined ? `${e.packets} packets` : `${e.connections} connections`
    lines.push(`${e.service}  ${e.protocol.toUpperCase()} ${e.vip}  ${e.scheduler}${sticky}  ${load}`)
    if (e.ignored) lines.push(`    (also asked for by ${e.ignored.join(', ')}: ignored, this service ranks first)`)
    if (e.endpoints.length === 0) lines.push('    (no endpoints)')
    for (const d of e.endpoints) {
      const note = d.weight === 0 ? '  draining' : ''
      lines.push(`    -> ${d.address.padEnd(22)} weight ${d.weight}  active ${d.active}  inactive ${d.inactive}${note}`)
    }
  }
  return `${lines.join('\n')}\n`
}
