// lib/lock: the instance lock is flock(2), so it is held per open file and
// dropped by the kernel when its holder dies, however it dies. Two real
// processes: a child takes the lock, we find it held (with the child's pid),
// SIGKILL the child, and the lock is ours.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { acquireLock, LockError, LockHeldError, NetlinkError, tryLock, ValidationError } from '../../dist/index.js'

const dir = mkdtempSync(join(tmpdir(), 'tsproxy-lock-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const LOCK = new URL('../../dist/lock.js', import.meta.url).href

/** A child process that takes the lock, says "locked", and sleeps until killed. */
async function holder(path: string): Promise<{ pid: number; kill: (s: NodeJS.Signals) => Promise<void> }> {
  const script = `import { tryLock } from ${JSON.stringify(LOCK)}; tryLock(${JSON.stringify(path)}); process.stdout.write('locked\\n'); setInterval(() => {}, 1e6)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((r) => child.on('exit', () => r()))
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('locked') && resolve())
    child.on('exit', (code) => reject(new Error(`the holder exited (${code}) before locking`)))
  })
  return { pid: child.pid!, kill: async (s) => (child.kill(s), exited) }
}

t.test('a second process gets LockHeldError naming the file and the holder; after SIGKILL the lock is free', async (t) => {
  const path = join(dir, 'a.lock')
  const h = await holder(path)
  t.equal(readFileSync(path, 'utf8'), `${h.pid}\n`, 'the holder wrote its pid into the file')
  const e = t.throws(() => tryLock(path)) as LockHeldError
  t.ok(e instanceof LockHeldError && e instanceof LockError && e instanceof NetlinkError, 'typed: LockHeldError, a LockError, a NetlinkError')
  t.match(e, { errno: 11, code: 'EWOULDBLOCK', op: 'lock', path, pid: h.pid })
  t.equal(e.message, `lock: ${path}: EWOULDBLOCK: held by another process (pid ${h.pid})`)
  await h.kill('SIGKILL')
  const mine = tryLock(path)
  t.equal(readFileSync(path, 'utf8'), `${process.pid}\n`, 'the dead holder\'s pid is replaced by ours')
  mine.release()
})

t.test('within one process: a second open is refused too, release frees it, release twice is harmless', async (t) => {
  const path = join(dir, 'b.lock')
  const a = tryLock(path)
  t.throws(() => tryLock(path), LockHeldError)
  a.release()
  a.release()
  const b = tryLock(path)
  b.release()
})

t.test('acquireLock waits while the lock is held, and takes it when the holder goes', async (t) => {
  const path = join(dir, 'c.lock')
  const h = await holder(path)
  const waits: LockHeldError[] = []
  const got = acquireLock(path, { waitMs: 20_000, pollMs: 20, onWait: (e) => waits.push(e) })
  await new Promise((r) => setTimeout(r, 200))
  t.equal(waits.length, 1, 'onWait once, at the first refusal')
  t.equal(waits[0]?.pid, h.pid)
  await h.kill('SIGTERM')
  const lock = await got
  t.equal(lock.path, path)
  lock.release()
})

t.test('acquireLock gives up after waitMs with the LockHeldError', async (t) => {
  const path = join(dir, 'd.lock')
  const h = await holder(path)
  t.teardown(() => h.kill('SIGKILL'))
  await t.rejects(acquireLock(path, { waitMs: 150, pollMs: 20 }), { name: 'LockHeldError', pid: h.pid })
  await t.rejects(acquireLock(path), { name: 'LockHeldError' }, 'waitMs 0: one try')
})

t.test('a file that cannot be opened is a LockError with its errno, not LockHeldError', async (t) => {
  const e = t.throws(() => tryLock(join(dir, 'no-such-dir', 'x.lock'))) as LockError
  t.ok(e instanceof LockError && !(e instanceof LockHeldError))
  t.match(e, { errno: 2, code: 'ENOENT', op: 'lock', path: join(dir, 'no-such-dir', 'x.lock') })
  if (process.getuid?.() !== 0) {
    const ro = mkdtempSync(join(dir, 'ro-'))
    chmodSync(ro, 0o500)
    t.match(t.throws(() => tryLock(join(ro, 'x.lock'))), { name: 'LockError', code: 'EACCES' })
  }
})

t.test('bad input: ValidationError naming the field', async (t) => {
  t.throws(() => tryLock(''), ValidationError)
  await t.rejects(acquireLock(join(dir, 'e.lock'), { waitMs: -1 }), { name: 'ValidationError', field: 'waitMs' })
})
