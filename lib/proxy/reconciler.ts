// The sync skeleton every mode shares. A mode supplies what one service port
// asks of the kernel (its desired.ts, `desiredOf`) and how to apply a
// difference (`applyChanges`, `applyAll`); the reconciler decides which to run
// and does the rest the same way for every mode:
//
// - kernel work runs one job at a time (each reads what the last wrote);
// - a sync is partial (the changed ports only) unless asked for a full one or
//   no full sync has succeeded yet (or something failed since);
// - before a full sync that follows an earlier one, the pending changes are
//   applied first, so that whatever the full sync then finds to fix is drift
//   (someone else's doing), and the mode counts it as repaired;
// - the report: set up, the claim conflicts and no-local-endpoint counts filled
//   in, stale UDP conntrack entries deleted (stale-conntrack.ts), and any
//   refused operation asks for a full sync next time.
import type { Conntrack } from '../conntrack.js'
import { Serial } from '../serial.js'
import type { Family } from '../validate.js'
import { Claims } from './claims.js'
import { deleteStaleConntrack, staleConntrackFilters } from './stale-conntrack.js'
import type { Log, ProxyState, Report, SyncOptions, SyncReport } from './types.js'

export type PolicyKind = 'internal' | 'external'

export function newReport(): Report {
  return {
    full: false,
    ports: 0,
    ops: { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0, conntrack: 0 },
    errors: [],
    repaired: { ipvs: 0, ipset: 0, rtnl: 0, iptables: 0 },
    noLocalEndpoints: { internal: 0, external: 0 },
    conflicts: 0,
    rulesWritten: { nat: 0, filter: 0 },
    commitFailures: { full: 0, partial: 0 },
  }
}

/**
 * The core of a proxier: a mode extends it and supplies how to apply a
 * difference (`applyChanges`, `applyAll`); it brings what one port asks of the
 * kernel from its desired.ts.
 */
export abstract class Reconciler {
  readonly family: Family
  protected readonly log: Log
  /** Who owns an address:port two ports ask for. */
  protected readonly claims: Claims
  readonly #dp: { readonly conntrack: Pick<Conntrack, 'delete'> }
  /** Kernel work of syncs, drain checks, status and cleanup runs one at a time: each reads what the last wrote. */
  readonly #serial = new Serial()
  /** Service ports with no local endpoint for their Local traffic policy, kept as ports are recomputed. */
  readonly #noLocal = { internal: 0, external: 0 }
  #synced = false
  /** A full sync has completed once: later full syncs count what they fix as drift. */
  #everSynced = false

  constructor(dataplane: { readonly conntrack: Pick<Conntrack, 'delete'> }, options: { family?: Family; log?: Log }) {
    this.#dp = dataplane
    this.family = options.family ?? 'inet'
    this.log = options.log ?? (() => undefined)
    this.claims = new Claims(this.log)
  }

  /** Recomputes the `changed` service ports and applies what differs from what the kernel holds as far as the mode knows. */
  protected abstract applyChanges(state: ProxyState, changed: Iterable<string>, report: Report): Promise<void>

  /**
   * Re-reads the kernel and applies every difference. `repairing`: a full sync
   * has completed before, so what this one fixes is drift (report.repaired).
   * Resolves whether it completed without a refused operation.
   */
  protected abstract applyAll(state: ProxyState, report: Report, repairing: boolean): Promise<boolean>

  /** Whether a full sync has completed (and nothing failed since). */
  get synced(): boolean {
    return this.#synced
  }

  /**
   * Brings the kernel to `state`: recomputes the `changed` service ports and
   * applies what differs. With `full` (and always until a full sync has
   * succeeded), then re-reads the kernel and repairs whatever else differs.
   */
  sync(state: ProxyState, changed: Iterable<string>, options: SyncOptions = {}): Promise<SyncReport> {
    return this.exclusive(() => this.#sync(state, changed, options))
  }

  protected exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.#serial.run(job)
  }

  async #sync(state: ProxyState, changed: Iterable<string>, options: SyncOptions): Promise<SyncReport> {
    const report = newReport()
    const resync = options.full === true || !this.#synced
    if (resync && this.#everSynced) await this.applyChanges(state, changed, report)
    if (resync) {
      report.full = true
      if (await this.applyAll(state, report, this.#everSynced)) {
        this.#synced = true
        this.#everSynced = true
      }
    } else await this.applyChanges(state, changed, report)
    report.noLocalEndpoints.internal = this.#noLocal.internal
    report.noLocalEndpoints.external = this.#noLocal.external
    report.conflicts = this.claims.conflicts
    report.ops.conntrack += await deleteStaleConntrack(this.#dp.conntrack, staleConntrackFilters(this.family, state, options.stale ?? {}), this.log)
    if (report.errors.length > 0) this.#synced = false
    return report
  }

  /** A port's desired state changed from `before` to `after`: its policies without local endpoints, counted. */
  protected countNoLocal(before: readonly PolicyKind[], after: readonly PolicyKind[]): void {
    for (const p of before) this.#noLocal[p]--
    for (const p of after) this.#noLocal[p]++
  }

  /** Forgets the desired state's claims and counts; the next sync is a full one. */
  protected reset(): void {
    this.claims.clear()
    this.#noLocal.internal = 0
    this.#noLocal.external = 0
    this.#synced = false
  }

  /** Also forgets that a full sync ever completed: the next one counts nothing as drift. */
  protected forgetHistory(): void {
    this.#everSynced = false
  }
}
