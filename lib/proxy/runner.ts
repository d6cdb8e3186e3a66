// When syncs run, as kube-proxy's bounded-frequency runner decides it: a change
// asks for a sync; syncs never overlap; after a short burst they are at least
// minInterval apart (so a storm of changes becomes a few batched syncs); and a
// full resync runs maxInterval after the last full sync ended, whatever happens.
// Counted from the end, as kube-proxy resets its timer after each run: a full
// sync that takes longer than maxInterval (30k services on a loaded node) is not
// followed by another straight away, forever.
export interface SyncRunnerOptions {
  /** The sync itself; `full` for the periodic resync (or when asked for one). */
  run: (full: boolean) => Promise<void>
  /** minSyncPeriod, ms (0: no limit). */
  minInterval: number
  /** syncPeriod, ms: the full resync period. */
  maxInterval: number
  /** Syncs allowed back to back before minInterval applies (kube-proxy: 2). */
  burst?: number
  /** Called with an error a sync threw (the runner retries after minInterval, at least 1 s). */
  onError?: (e: unknown) => void
  now?: () => number
}

export class SyncRunner {
  readonly #o: Required<SyncRunnerOptions>
  #tokens: number
  #lastRefill: number
  #running: Promise<void> | undefined
  #pending = false
  #pendingFull = false
  #timer: NodeJS.Timeout | undefined
  #periodic: NodeJS.Timeout | undefined
  #periodicOn = false
  /** A full sync is running: the periodic one is re-armed when it ends. */
  #runningFull = false
  #stopped = false

  constructor(options: SyncRunnerOptions) {
    this.#o = { burst: 2, onError: () => undefined, now: Date.now, ...options }
    this.#tokens = this.#o.burst
    this.#lastRefill = this.#o.now()
  }

  /** Starts the periodic full resync (the first sync is the caller's to request). */
  start(): void {
    this.#periodicOn = true
    if (!this.#runningFull) this.#armPeriodic()
  }

  /** The next periodic full resync, maxInterval from now (replacing the one armed). */
  #armPeriodic(): void {
    clearTimeout(this.#periodic)
    this.#periodic = undefined
    if (!this.#periodicOn || this.#stopped) return
    this.#periodic = setTimeout(() => {
      this.#periodic = undefined
      this.request(true)
    }, this.#o.maxInterval)
    this.#periodic.unref()
  }

  /** Asks for a sync (a full one with `full`); many requests before it runs make one sync. */
  request(full = false): void {
    if (this.#stopped) return
    this.#pending = true
    if (full) this.#pendingFull = true
    this.#schedule()
  }

  /** Resolves when no sync is running or pending. */
  async idle(): Promise<void> {
    // A pending sync waiting for its timer has no promise yet: wait for it to start.
    while (this.#running || (this.#pending && !this.#stopped)) await (this.#running ?? new Promise<void>((r) => this.#started.push(r)))
  }

  /** Resolved when the next sync starts, or the runner stops. */
  #started: (() => void)[] = []

  #wake(): void {
    for (const r of this.#started.splice(0)) r()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#periodic)
    clearTimeout(this.#timer)
    this.#wake()
    await this.#running
  }

  #refill(): void {
    const min = this.#o.minInterval
    if (min <= 0) {
      this.#tokens = this.#o.burst
      return
    }
    const now = this.#o.now()
    const earned = Math.floor((now - this.#lastRefill) / min)
    if (earned > 0) {
      this.#tokens = Math.min(this.#o.burst, this.#tokens + earned)
      this.#lastRefill += earned * min
    }
  }

  #schedule(delay?: number): void {
    if (this.#running || this.#timer || this.#stopped) return
    this.#refill()
    const wait = delay ?? (this.#tokens > 0 ? 0 : this.#lastRefill + this.#o.minInterval - this.#o.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#fire()
    }, Math.max(0, wait))
  }

  #fire(): void {
    if (!this.#pending || this.#stopped) return
    this.#refill()
    if (this.#tokens <= 0) return this.#schedule()
    if (this.#o.minInterval > 0) this.#tokens--
    const full = this.#pendingFull
    this.#pending = false
    this.#pendingFull = false
    let failed = false
    if (full) {
      // No periodic tick while it runs: the next one counts from its end.
      this.#runningFull = true
      clearTimeout(this.#periodic)
      this.#periodic = undefined
    }
    this.#running = this.#o
      .run(full)
      .catch((e: unknown) => {
        failed = true
        this.#pending = true
        this.#pendingFull = true
        this.#o.onError(e)
      })
      .finally(() => {
        this.#running = undefined
        if (full) {
          this.#runningFull = false
          this.#armPeriodic()
        }
        if (this.#pending) this.#schedule(failed ? Math.max(1000, this.#o.minInterval) : undefined)
      })
    this.#wake()
  }
}
