#!/usr/bin/env node
// `tsproxy`: kube-proxy's flags and config file, tsproxy's manifest source.
//   tsproxy --proxy-mode=ipvs --manifests DIR [--config FILE] [flags]   run the proxy
//   tsproxy cleanup   (or --cleanup)                                     remove what it made, then exit
//   tsproxy status                                                       each service -> VIP -> endpoints
import { readFileSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { clusterCIDRs, loadConfig, usage, type KubeProxyConfiguration } from './config.js'
import { splitHostPort } from '../address.js'
import { Daemon, families, formatStatus, mallocThresholdsFromEnv, type StatusEntry } from './daemon.js'
import { applyConntrackSettings, conntrackSettings } from './conntrack-settings.js'
import { getSysctl, setSysctl } from '../sysctl.js'
import { availableParallelism } from 'node:os'
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks'
import { openDataplane } from './ipvs/dataplane.js'
import { IpvsProxier } from './ipvs/proxier.js'
import { IptablesProxier } from './iptables/proxier.js'
import { openIptablesDataplane } from './iptables/dataplane.js'
import { NftablesProxier } from './nftables/proxier.js'
import { openNftablesDataplane } from './nftables/dataplane.js'
import { makeLogger } from './log.js'
import { acquireLock, INSTANCE_LOCK_FILE, LockHeldError, type InstanceLock } from '../lock.js'
import { capabilityMessage, lockFilePath, missingCapabilities } from './preflight.js'
import { KubeClient, resolveConnection } from './sources/kube/client.js'
import type { Log } from './types.js'

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string }

async function main(argv: string[]): Promise<number> {
  let loaded
  try {
    loaded = await loadConfig(argv, { readFile: (p) => readFile(p, 'utf8') })
  } catch (e) {
    process.stderr.write(`tsproxy: ${(e as Error).message}\n`)
    return 2
  }
  const { config, options, warnings } = loaded
  if (options.help) {
    process.stdout.write(`${usage()}\n\nCommands: tsproxy cleanup | tsproxy status\nEnvironment: TSPROXY_LOCK_FILE   the instance lock (default ${INSTANCE_LOCK_FILE})\n             TSPROXY_MALLOC_TUNING=on   set malloc's trim and mmap thresholds (faster big batches, more RSS; README "Memory")\n`)
    return 0
  }
  if (options.version) {
    process.stdout.write(`tsproxy ${version}\n`)
    return 0
  }
  const log = makeLogger({ format: config.logging.format === 'text' ? 'text' : 'json', verbosity: config.logging.verbosity })
  if (process.env.TSPROXY_BENCH_GC === '1') logGcPauses(log)
  for (const w of warnings) log('warn', w)
  let malloc: ReturnType<typeof mallocThresholdsFromEnv> = false
  const command = options.args[0] ?? (options.cleanup ? 'cleanup' : options.initOnly ? 'init-only' : 'run')
  if (options.args.length > 1) return fail(`unexpected arguments: ${options.args.slice(1).join(' ')}`)
  switch (command) {
    case 'cleanup':
      // No wait: an operator cleaning up under a running daemon must stop it first.
      return (await takeNode(log, 0)) ?? cleanup(log)
    case 'status':
      return status(config)
    case 'init-only': {
      const bad = await runProblem(config, undefined)
      if (bad) return fail(bad)
      return capable(log) ?? initOnly(config, log)
    }
    case 'run': {
      // Every check of the configuration before the node is taken or the kernel touched.
      const bad = await runProblem(config, options.manifests)
      if (bad) return fail(bad)
      try {
        malloc = mallocThresholdsFromEnv(process.env)
      } catch (e) {
        return fail((e as Error).message)
      }
      const refused = await takeNode(log, LOCK_WAIT_MS)
      if (refused !== undefined) return refused
      break
    }
    default:
      return fail(`unknown command "${command}" (commands: cleanup, status)`)
  }
  // The source: manifests when given; else the API server, from --kubeconfig
  // (and --master), or --master alone, or in-cluster, as kube-proxy chooses.
  let source: { manifests: string } | { kubernetes: KubeClient }
  if (options.manifests) source = { manifests: options.manifests }
  else {
    try {
      const kubeconfig = config.clientConnection.kubeconfig || undefined
      const connection = resolveConnection({ ...(kubeconfig ? { kubeconfig } : {}), ...(options.master ? { master: options.master } : {}) })
      source = { kubernetes: new KubeClient(connection, { qps: config.clientConnection.qps, burst: config.clientConnection.burst }) }
      log('info', 'Kubernetes API', { server: connection.server, auth: connection.token || connection.tokenFile ? 'token' : connection.cert ? 'client certificate' : 'none' })
    } catch (e) {
      return fail(`${(e as Error).message} (give --kubeconfig, --master, or --manifests <file|dir>)`)
    }
  }
  if (config.clientConnection.contentType && config.clientConnection.contentType !== 'application/json')
    log('debug', 'clientConnection.contentType is not spoken: requests are JSON', { contentType: config.clientConnection.contentType })

  const daemon = new Daemon({ config, log, malloc, ...source })
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log('info', 'stopping; kernel state is kept', { signal })
    void daemon.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  try {
    await daemon.start()
  } catch (e) {
    log('error', 'start failed', { error: e })
    await daemon.stop().catch(() => undefined)
    return 1
  }
  log('info', 'tsproxy running', { version, mode: config.mode, node: daemon.nodeName, healthz: config.healthzBindAddress, metrics: config.metricsBindAddress })
  return -1 // keep running
}

const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}

/**
 * Benchmark-only, off unless TSPROXY_BENCH_GC=1: every garbage collection the
 * runtime reports (perf_hooks 'gc' entries) becomes a `gc` log line with its
 * kind, its pause (ms) and when it began (`at`, ms since the epoch), so a
 * benchmark can count the pauses inside a timed window (benchmarks/README.md).
 */
function logGcPauses(log: Log): void {
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0
      log('info', 'gc', { kind: GC_KINDS[kind] ?? String(kind), ms: Math.round(e.duration * 1000) / 1000, at: Math.round((performance.timeOrigin + e.startTime) * 1000) / 1000 })
    }
  })
  obs.observe({ entryTypes: ['gc'] })
}

/**
 * Why the daemon cannot run with this configuration, or undefined. A --manifests
 * path that does not exist at start is a typo (kube-proxy would not start either);
 * one that disappears later is waited for (the daemon keeps its rules).
 */
async function runProblem(config: KubeProxyConfiguration, manifests: string | undefined): Promise<string | undefined> {
  if (config.mode !== 'ipvs' && config.mode !== 'iptables' && config.mode !== 'nftables')
    return `proxy mode "${config.mode}" is not implemented; run with --proxy-mode=ipvs, iptables or nftables`
  if (manifests !== undefined) {
    if (manifests === '') return '--manifests needs a file or directory'
    try {
      await stat(manifests)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return `--manifests ${manifests}: no such file or directory`
    }
  }
  return undefined
}

/**
 * A starting daemon waits this long for the instance lock: in a rolling
 * restart the old pod may still be stopping (it exits within moments of
 * SIGTERM, and a dead process holds nothing). Longer than that, another
 * writer really runs, and two would undo each other's repairs forever, so it
 * refuses; the kubelet restarts it with backoff.
 */
const LOCK_WAIT_MS = 5000

/** Held until the process exits: nothing releases it before. */
let instanceLock: InstanceLock | undefined

/**
 * Before any kernel write (sysctls included): the capabilities, then the
 * instance lock, held until the process exits. An exit code when the process
 * must not go on, after one line saying why.
 */
function capable(log: Log): number | undefined {
  let status = ''
  try {
    status = readFileSync('/proc/self/status', 'utf8')
  } catch {
    // no /proc: the kernel will tell
  }
  const missing = missingCapabilities(status)
  if (missing.length > 0) {
    log('error', capabilityMessage(missing), { missing })
    return 1
  }
  return undefined
}

async function takeNode(log: Log, waitMs: number): Promise<number | undefined> {
  const refused = capable(log)
  if (refused !== undefined) return refused
  const path = lockFilePath()
  const holder = (e: LockHeldError): string => `another tsproxy holds the instance lock ${path}${e.pid ? ` (pid ${e.pid})` : ''}`
  try {
    instanceLock = await acquireLock(path, {
      waitMs,
      onWait: (e) => log('info', `${holder(e)}; waiting up to ${waitMs / 1000}s for it to exit`, { lock: path, ...(e.pid ? { pid: e.pid } : {}) }),
    })
  } catch (e) {
    if (e instanceof LockHeldError) log('error', `${holder(e)}: one writer per node; stop it first`, { lock: path, ...(e.pid ? { pid: e.pid } : {}) })
    else log('error', `cannot take the instance lock: ${(e as Error).message}`, { lock: path })
    return 1
  }
  return undefined
}

/** Uses a dataplane once it is open and closes it, whether `use` succeeds or throws. */
async function closing<D extends { close(): Promise<void> }, T>(opening: Promise<D>, use: (d: D) => Promise<T>): Promise<T> {
  const d = await opening
  try {
    return await use(d)
  } finally {
    await d.close()
  }
}

/**
 * The daemon's kernel settings, without its rules: the init container's step
 * (it is privileged, the daemon need not be). Opening the mode's interfaces
 * has the kernel load the modules behind them (IPVS, ipset, conntrack netlink,
 * the iptables tables) with its own modprobe; the sysctls and IPVS timeouts
 * are the proxier's setup() and the conntrack section, as the daemon writes them.
 */
async function initOnly(config: KubeProxyConfiguration, log: Log): Promise<number> {
  const c = config
  try {
    for (const family of families(clusterCIDRs(c))) {
      let keys: string[]
      if (c.mode === 'ipvs') {
        const timeouts = { tcp: c.ipvs.tcpTimeout / 1000, tcpFin: c.ipvs.tcpFinTimeout / 1000, udp: c.ipvs.udpTimeout / 1000 }
        keys = await closing(openDataplane(family), (dp) => new IpvsProxier(dp, { family, strictARP: c.ipvs.strictARP, timeouts, log }).setup())
      } else if (c.mode === 'nftables') {
        // nftables mode sets no sysctl; opening nfnetlink has the kernel load nf_tables.
        keys = await closing(openNftablesDataplane(), (dp) => new NftablesProxier(dp, { family, log }).setup())
      } else {
        const o = { family, localhostNodePorts: c.iptables.localhostNodePorts, nodePortAddresses: c.nodePortAddresses, log }
        keys = await closing(openIptablesDataplane(family), (dp) => new IptablesProxier(dp, o).setup())
      }
      log('info', 'sysctls set', { family, keys })
    }
    const io = { get: (k: string) => getSysctl(k), set: (k: string, v: number) => setSysctl(k, v) }
    const keys = await applyConntrackSettings(conntrackSettings(c.conntrack, availableParallelism()), io, log)
    log('info', 'node ready', { mode: c.mode, conntrack: keys })
    return 0
  } catch (e) {
    log('error', 'node setup failed', { error: e })
    return 1
  }
}

async function cleanup(log: Log): Promise<number> {
  // Both families and every mode, whatever the config says: cleanup removes what
  // any earlier run made. A chain name both modes use stays while the other
  // mode's rules still jump to it, and goes with the second pass.
  let failed = false
  for (const family of ['inet6', 'inet'] as const) {
    const modes = {
      iptables: () => closing(openIptablesDataplane(family), (ipt) => new IptablesProxier(ipt, { family, log }).cleanup()),
      ipvs: () => closing(openDataplane(family), (dp) => new IpvsProxier(dp, { family, log }).cleanup()),
      nftables: () => closing(openNftablesDataplane(), (dp) => new NftablesProxier(dp, { family, log }).cleanup()),
    }
    for (const [mode, clean] of Object.entries(modes)) {
      try {
        log('info', 'cleaned up', { family, mode, ...(await clean()) })
      } catch (e) {
        // A kernel without nf_tables at all (no nfnetlink subsystem), or without
        // IPVS (the ip_vs genetlink family missing), holds nothing of that mode.
        const { code = '', op = '' } = e as { code?: string; op?: string }
        if ((mode === 'nftables' && ['EPROTONOSUPPORT', 'ENOENT'].includes(code)) || (mode === 'ipvs' && code === 'ENOENT' && op === 'ipvs.open')) {
          log('debug', `no ${mode} in this kernel: nothing to clean up`, { family, mode, code })
          continue
        }
        log(family === 'inet' ? 'error' : 'warn', 'cleanup failed', { family, mode, error: e })
        failed ||= family === 'inet'
      }
    }
  }
  return failed ? 1 : 0
}

async function status(config: KubeProxyConfiguration): Promise<number> {
  const at = splitHostPort(config.metricsBindAddress)
  if (!at) return fail('status needs --metrics-bind-address (where the daemon serves /status)')
  const host = at.host === '0.0.0.0' ? '127.0.0.1' : at.host === '::' ? '::1' : at.host
  let entries: StatusEntry[]
  try {
    const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${at.port}/status`)
    if (!res.ok) return fail(`the daemon answered ${res.status}`)
    entries = (await res.json()) as StatusEntry[]
  } catch (e) {
    return fail(`no daemon at ${config.metricsBindAddress}: ${(e as Error).message}`)
  }
  process.stdout.write(formatStatus(entries))
  return 0
}

function fail(message: string): number {
  process.stderr.write(`tsproxy: ${message}\n`)
  return 2
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code)
  },
  (e: unknown) => {
    process.stderr.write(`tsproxy: ${(e as Error).stack ?? String(e)}\n`)
    process.exit(1)
  },
)
