// What `tsproxy` checks before it touches the kernel: the capabilities every
// kernel write needs, and the instance lock (one writer per node).
import { INSTANCE_LOCK_FILE } from '../lock.js'

/** <linux/capability.h> bit numbers. */
const CAPABILITIES = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13 } as const

/**
 * The capabilities tsproxy needs that the CapEff line of /proc/<pid>/status
 * lacks: CAP_NET_ADMIN for every netlink write (and most reads), CAP_NET_RAW for
 * libiptc's raw socket. Empty when the text has no CapEff line (nothing to tell).
 */
export function missingCapabilities(status: string): string[] {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status)
  if (!m) return []
  const eff = BigInt(`0x${m[1]}`)
  return Object.entries(CAPABILITIES)
    .filter(([, bit]) => (eff & (1n << BigInt(bit))) === 0n)
    .map(([name]) => name)
}

/** The one line a process without them exits with. */
export function capabilityMessage(missing: readonly string[]): string {
  return `tsproxy needs CAP_NET_ADMIN and CAP_NET_RAW (missing: ${missing.join(', ')}): run it as root or grant them`
}

/** The instance lock file: TSPROXY_LOCK_FILE (tests, several netns on one host), else /run/tsproxy.lock. */
export function lockFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.TSPROXY_LOCK_FILE || INSTANCE_LOCK_FILE
}
