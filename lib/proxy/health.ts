// The proxier's health, as kube-proxy judges it (pkg/proxy/healthcheck): the
// proxy is unhealthy when an update has been waiting for a sync longer than the
// health timeout (kube-proxy uses 2 x syncPeriod). Only the oldest waiting
// update counts: later ones ride on the same sync.
//
// Until the first sync completes the proxy counts as healthy, however long an
// update waits: kube-proxy judges only proxiers that have synced once, so a
// slow start (informers, a large first sync) does not fail the probes.
//
// Node eligibility (the node is being deleted, or tainted by the cluster
// autoscaler for deletion) fails /healthz only, not /livez: a node on its way
// out should leave load balancers, not get its proxy restarted.

export interface HealthStatus {
  healthy: boolean
  /** When the last sync finished; undefined before the first. */
  lastUpdated: Date | undefined
  currentTime: Date
  /** When the oldest update still waiting for a sync arrived. */
  oldestPendingQueued?: Date
}

export interface ProxyHealthOptions {
  /** Milliseconds an update may wait for a sync before the proxy is unhealthy. */
  healthTimeout: number
  /** Milliseconds since the epoch (default Date.now). */
  now?: () => number
}

export class ProxyHealth {
  readonly healthTimeout: number
  /** False when the node is being removed: /healthz fails, /livez does not. Starts true, as kube-proxy's did. */
  nodeEligible = true
  readonly #now: () => number
  #lastUpdated: number | undefined
  #oldestPendingQueued: number | undefined

  constructor(options: ProxyHealthOptions) {
    this.healthTimeout = options.healthTimeout
    this.#now = options.now ?? Date.now
  }

  /** A change arrived that needs a sync. Keeps the oldest waiting time. */
  queued(): void {
    this.#oldestPendingQueued ??= this.#now()
  }

  /** A sync finished: everything queued so far is in the kernel. */
  updated(): void {
    this.#oldestPendingQueued = undefined
    this.#lastUpdated = this.#now()
  }

  status(now: Date | number = this.#now()): HealthStatus {
    const current = typeof now === 'number' ? now : now.getTime()
    const pending = this.#oldestPendingQueued
    const healthy = this.#lastUpdated === undefined || pending === undefined || current - pending < this.healthTimeout
    const s: HealthStatus = {
      healthy,
      lastUpdated: this.#lastUpdated === undefined ? undefined : new Date(this.#lastUpdated),
      currentTime: new Date(current),
    }
    if (pending !== undefined) s.oldestPendingQueued = new Date(pending)
    return s
  }
}
