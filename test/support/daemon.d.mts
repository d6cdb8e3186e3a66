// Types for daemon.mjs.
import type { ChildProcess } from 'node:child_process'

export interface LogRecord {
  ts?: string
  level: string
  msg: string
  [field: string]: unknown
}

export interface RunningDaemon {
  proc: ChildProcess
  /** Every log line so far, parsed. */
  logs: LogRecord[]
  waitLog(test: (r: LogRecord) => boolean, options?: { from?: number; timeoutMs?: number }): Promise<LogRecord>
  get(path: string, base?: string): Promise<{ status: number; text: string }>
  metric(sample: string): Promise<number | undefined>
  status(): Promise<{ service: string; protocol: string; vip: string; scheduler: string; persistent?: number; connections: number; endpoints: { address: string; weight: number; active: number; inactive: number }[] }[]>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export declare function startDaemon(options: {
  /** Without it, the daemon's own source choice applies (give --kubeconfig in args). */
  manifests?: string
  args?: string[]
  healthz?: string
  metrics?: string
  echo?: boolean
  waitSynced?: boolean
  timeoutMs?: number
  /** Added to the test's environment (e.g. TSPROXY_LOCK_FILE). */
  env?: Record<string, string>
}): Promise<RunningDaemon>

export declare function until<T>(check: () => T | Promise<T>, options?: { timeoutMs?: number; everyMs?: number; what?: string }): Promise<T>

/** Writes `items` as one manifest file (a v1 List) into the daemon's --manifests directory. */
export declare function writeManifest(dir: string, file: string, items: readonly object[]): void
