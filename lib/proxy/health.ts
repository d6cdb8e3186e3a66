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
//
// A source that cannot be read (a manifest directory that cannot be listed, an
// API server that refuses lists and watches) keeps its last good state, so no
// sync ever waits on it: the proxy would look healthy while serving stale
// rules. A source failing for the health timeout makes the proxy unhealthy
// for /healthz (load balancers leave the node) but not for /livez (a restart
// mends neither an API outage nor a missing directory, and every node's proxy
// restarting while the API server is down helps nobody), from the start too (waiting for an unreadable source is not a slow start),
// until it reads again. The same timeout: a change made to the source when it
// started failing has waited that long. Sources report every failed retry; a
// failure not repeated within the timeout (and at least a minute, longer than
// any source waits between retries: polls 1 s, API backoff up to 30 s) is stale:
// an API watch that broke once, then reconnected to a quiet stream that has not
// said so yet.

export interface HealthStatus {
  /** Syncs keep up and every source reads: /healthz. */
  healthy: boolean
  /** Syncs keep up (sources aside): /livez. A restart does not mend a source that cannot be read. */
  syncing: boolean
  /** When the last sync finished; undefined before the first. */
  lastUpdated: Date | undefined
  currentTime: Date
  /** When the oldest update still waiting for a sync arrived. */
  oldestPendingQueued?: Date
  /** The longest-failing source, while one cannot be read. */
  sourceError?: { source: string; message: string; since: Date }
}

export interface ProxyHealthOptions {
  /** Milliseconds an update may wait for a sync before the proxy is unhealthy. */
  healthTimeout: number
  /** Milliseconds since the epoch (default Date.now). */
  now?: () => number
}

/** A source failure not repeated for max(health timeout, this) is stale. */
export const SOURCE_RETRY_MS = 60_000

export class ProxyHealth {
  readonly healthTimeout: number
  /** False when the node is being removed: /healthz fails, /livez does not. Starts true, as kube-proxy's did. */
  nodeEligible = true
  readonly #now: () => number
  #lastUpdated: number | undefined
  #oldestPendingQueued: number | undefined
  readonly #sourceErrors = new Map<string, { message: string; since: number; last: number }>()

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

  /** `source` (a name) failed to read; the first failure's time is kept until it reads again. */
  sourceFailed(source: string, message: string): void {
    const now = this.#now()
    const was = this.#sourceErrors.get(source)
    const stale = was !== undefined && now - was.last >= Math.max(this.healthTimeout, SOURCE_RETRY_MS)
    this.#sourceErrors.set(source, { message, since: was && !stale ? was.since : now, last: now })
  }

  sourceRecovered(source: string): void {
    this.#sourceErrors.delete(source)
  }

  status(now: Date | number = this.#now()): HealthStatus {
    const current = typeof now === 'number' ? now : now.getTime()
    const pending = this.#oldestPendingQueued
    let failing: [string, { message: string; since: number }] | undefined
    const fresh = Math.max(this.healthTimeout, SOURCE_RETRY_MS)
    for (const e of this.#sourceErrors) if (current - e[1].last < fresh && (!failing || e[1].since < failing[1].since)) failing = e
    const syncing = this.#lastUpdated === undefined || pending === undefined || current - pending < this.healthTimeout
    const healthy = syncing && (failing === undefined || current - failing[1].since < this.healthTimeout)
    const s: HealthStatus = {
      healthy,
      syncing,
      lastUpdated: this.#lastUpdated === undefined ? undefined : new Date(this.#lastUpdated),
      currentTime: new Date(current),
    }
    if (pending !== undefined) s.oldestPendingQueued = new Date(pending)
    if (failing) s.sourceError = { source: failing[0], message: failing[1].message, since: new Date(failing[1].since) }
    return s
  }
}
