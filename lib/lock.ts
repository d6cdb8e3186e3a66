// The instance lock: at most one process per node writes the proxy's kernel
// state. flock(2) (native/lock), not a pid file: the kernel drops it when the
// holder dies, SIGKILL included, so a stale lock is impossible.
import { NetlinkError, ValidationError } from './errors.js'
import { native } from './native.js'

/** Where the daemon and `tsproxy cleanup` take the lock (kube-proxy has none; iptables has /run/xtables.lock). */
export const INSTANCE_LOCK_FILE = '/run/tsproxy.lock'

const EWOULDBLOCK = 11

/** The lock file could not be opened or locked: errno, code, op 'lock', and the path. */
export class LockError extends NetlinkError {
  override name = 'LockError'
  readonly path: string

  constructor(init: { errno: number; path: string; message?: string; code?: string }) {
    super({ errno: init.errno, op: 'lock', message: `${init.path}: ${init.message ?? init.code ?? ''}`, ...(init.code ? { code: init.code } : {}) })
    this.path = init.path
  }
}

/** Another process holds the lock; `pid` is the one it wrote into the file (as its pid namespace numbers it). */
export class LockHeldError extends LockError {
  override name = 'LockHeldError'
  readonly pid?: number

  constructor(path: string, pid?: number) {
    super({ errno: EWOULDBLOCK, code: 'EWOULDBLOCK', path, message: `EWOULDBLOCK: held by another process${pid ? ` (pid ${pid})` : ''}` })
    if (pid) this.pid = pid
  }
}

export interface InstanceLock {
  readonly path: string
  /** Drops the lock (it also goes when the process exits, however it exits). */
  release(): void
}

/** Takes the lock now or throws LockHeldError (held) / LockError (cannot open: EACCES, ENOENT, EROFS, ...). */
export function tryLock(path: string = INSTANCE_LOCK_FILE): InstanceLock {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) throw new ValidationError('lock', 'path', path, 'must be a file path')
  const r = native.lockFile(path)
  if ('fd' in r) {
    let fd: number | undefined = r.fd
    return {
      path,
      release() {
        if (fd !== undefined) native.unlockFile(fd)
        fd = undefined
      },
    }
  }
  if (r.errno === EWOULDBLOCK) throw new LockHeldError(path, r.pid)
  const e = new NetlinkError({ errno: r.errno, op: 'lock' })
  throw new LockError({ errno: r.errno, path, message: `${e.code}: cannot open or lock it${r.errno === 13 || r.errno === 1 ? ' (not permitted: run as root)' : ''}` })
}

export interface AcquireOptions {
  /** How long to retry while another process holds it (ms; 0: once). */
  waitMs?: number
  /** Between tries (ms). */
  pollMs?: number
  /** Called once, at the first refusal, when waiting. */
  onWait?: (held: LockHeldError) => void
}

/** tryLock, retried every pollMs for up to waitMs while the lock is held; then the last LockHeldError. */
export async function acquireLock(path: string = INSTANCE_LOCK_FILE, options: AcquireOptions = {}): Promise<InstanceLock> {
  const waitMs = options.waitMs ?? 0
  const pollMs = options.pollMs ?? 100
  if (!Number.isInteger(waitMs) || waitMs < 0) throw new ValidationError('lock', 'waitMs', waitMs, 'must be an integer of 0 or more')
  if (!Number.isInteger(pollMs) || pollMs < 1) throw new ValidationError('lock', 'pollMs', pollMs, 'must be a positive integer')
  const deadline = Date.now() + waitMs
  for (let first = true; ; first = false) {
    try {
      return tryLock(path)
    } catch (e) {
      if (!(e instanceof LockHeldError) || Date.now() >= deadline) throw e
      if (first) options.onWait?.(e)
    }
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, deadline - Date.now()))))
  }
}
