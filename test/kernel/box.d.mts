// Types for box.mjs (plain JavaScript so that it runs without a build step).
export declare const repoRoot: string

export interface BoxResult {
  /** the script's exit status */
  code: number
  stdout: string
  stderr: string
  /** ms from spawning the kernel to the script starting (boot + modprobe) */
  bootMs: number | null
  /** the part of bootMs spent loading modules */
  modprobeMs: number | null
  /** ms from spawning the kernel to its exit */
  totalMs: number
  /** stderr of the module loading in the guest ('' when all loaded) */
  modprobeLog: string
  /** the kernel's console */
  console: string
}

export interface BoxOptions {
  /** a bash script body, run as root in the guest */
  script: string
  /** extra environment for the script (the guest does not inherit the host's) */
  env?: Record<string, string>
  /** default 600 000 */
  timeoutMs?: number
  /** the script's output, live */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void
  /** default: the repo root */
  cwd?: string
  /** guest memory, default '1G' */
  mem?: string
  signal?: AbortSignal
}

/**
 * Boot the box and run `script` in it. Throws an Error with `.code` ENOBOX
 * (cannot start: the message names the package to install), ETIMEDOUT,
 * ABORT_ERR or EBOXCRASH (no exit status came back); those carry the
 * BoxResult fields there are.
 */
export declare function runInBox(options: BoxOptions): Promise<BoxResult>
