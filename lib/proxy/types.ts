// The contracts of the proxy core, whatever the mode (as kube-proxy's
// pkg/proxy/types.go): what the daemon asks of a proxier, what a proxier reads
// and reports, the log it writes to. Modes (ipvs/, iptables/, nftables/) and the daemon
// depend on this file; it depends on no mode.
import type { ServiceRecord } from '../ipvs.js'
import type { Family } from '../validate.js'
import type { StaleEndpoint } from './changes.js'
import type { Endpoint } from './model/endpoints.js'
import type { ServicePort } from './model/serviceport.js'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type Log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void

/** What a proxier reads from the change trackers. */
export interface ProxyState {
  readonly ports: ReadonlyMap<string, ServicePort>
  endpoints(servicePort: string): readonly Endpoint[]
}

/** Cleanup hints from the trackers, for UDP conntrack entries that went stale. */
export interface StaleConntrack {
  deletedUDPClusterIPs?: Iterable<string>
  deletedUDPEndpoints?: Iterable<StaleEndpoint>
  newlyActiveUDPServices?: Iterable<string>
}

export interface SyncOptions {
  full?: boolean
  stale?: StaleConntrack
}

export interface SyncReport {
  readonly full: boolean
  /** Service ports recomputed. */
  readonly ports: number
  /** Kernel operations sent, by subsystem. */
  readonly ops: { ipvs: number; ipset: number; rtnl: number; iptables: number; conntrack: number; /** nftables mode: edits sent (absent in other modes). */ nftables?: number }
  /** Operations the kernel refused; a refused operation asks for a full sync. */
  readonly errors: readonly Error[]
  /** Objects a full sync found wrong in the kernel and fixed, by subsystem. */
  readonly repaired: { ipvs: number; ipset: number; rtnl: number; iptables: number; /** nftables mode: objects repaired (absent in other modes). */ nftables?: number }
  readonly noLocalEndpoints: { internal: number; external: number }
  /** Service ports left without an address:port they ask for, owned by another (claims.ts). */
  readonly conflicts: number
  /** iptables mode: rules appended or inserted by the commits that went through, by table. */
  readonly rulesWritten: { nat: number; filter: number }
  /**
   * iptables and nftables modes: table commits that failed (nothing of them applied): of a
   * full sync's rewrite (`full`), or of incremental edits (`partial`).
   */
  readonly commitFailures: { full: number; partial: number }
}

/** A sync report being filled in. */
export type Report = { -readonly [K in keyof SyncReport]: SyncReport[K] } & { errors: Error[] }

/** An IPVS virtual server programmed for a service port, with live statistics. */
export interface ServerStatus {
  servicePort: string
  server: ServiceRecord
  /** Service ports that ask for the same address:port and lost it (claims.ts). */
  ignored?: string[]
}

/** A service port's iptables chains, with the counters of the rules that lead into them. */
export interface ChainStatus {
  servicePort: string
  chains: string[]
  packets: number
  bytes: number
}

/** One programmed service port, for `tsproxy status`. */
export type StatusRecord = ServerStatus | ChainStatus

/** What the daemon asks of a proxier, whatever the mode. One instance per address family. */
export interface Proxier {
  readonly family: Family
  /** Whether a full sync has completed (and nothing failed since). */
  readonly synced: boolean
  /** Real servers waiting for their connections to end (IPVS mode only; 0 otherwise). */
  readonly draining: number
  /** Node settings the mode needs; resolves the keys changed. */
  setup(): Promise<string[]>
  sync(state: ProxyState, changed: Iterable<string>, options?: SyncOptions): Promise<SyncReport>
  /** Finishes graceful terminations that are due; resolves how many are still draining. */
  drain(): Promise<number>
  /** Removes everything this mode made. */
  cleanup(): Promise<object>
  status(): Promise<StatusRecord[]>
}
