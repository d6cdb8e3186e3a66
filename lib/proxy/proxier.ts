// What the daemon asks of a proxier, whatever the mode: IPVS (ipvs/proxier.ts)
// or iptables (iptables/proxier.ts). One instance per address family.
import type { ServiceRecord } from '../ipvs.js'
import type { Family } from '../validate.js'
import type { ProxyState, StaleConntrack, SyncReport } from './ipvs/proxier.js'

export type { ProxyState, StaleConntrack, SyncReport } from './ipvs/proxier.js'

/** One programmed service port, for `tsproxy status`: an IPVS virtual server, or iptables chains with counters. */
export type StatusRecord =
  | { servicePort: string; server: ServiceRecord; ignored?: string[] }
  | { servicePort: string; chains: string[]; packets: number; bytes: number }

export interface Proxier {
  readonly family: Family
  /** Whether a full sync has completed (and nothing failed since). */
  readonly synced: boolean
  /** Real servers waiting for their connections to end (IPVS mode only; 0 otherwise). */
  readonly draining: number
  /** Node settings the mode needs; resolves the keys changed. */
  setup(): Promise<string[]>
  sync(state: ProxyState, changed: Iterable<string>, options?: { full?: boolean; stale?: StaleConntrack }): Promise<SyncReport>
  /** Finishes graceful terminations that are due; resolves how many are still draining. */
  drain(): Promise<number>
  /** Removes everything this mode made. */
  cleanup(): Promise<object>
  status(): Promise<StatusRecord[]>
}
