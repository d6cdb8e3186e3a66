// Host side of the kernel tests. Finds test/kernel/**/*.ktest.ts, boots the
// box (test/kernel/box.mjs) ONCE and runs every file inside it, sequentially,
// each as root in a fresh network namespace; then replays each file's TAP here
// as a subtest, so every test inside counts in the host run.
// Files named *.host.ktest.ts (ipset/iptables: the host kernel has those) run
// on the host too, each in a fresh netns (`unshare -n`, needs root).
// Each file runs in a process group of its own; whatever it leaves running
// (and, in the box, whoever still holds the xtables lock) is killed before
// the next file starts, and reported as a failure of that file.
//
// TSPROXY_KERNEL_TESTS=smoke,ipvs  or  ='test/kernel/**/ipvs*'  selects files:
// comma/space separated; an entry with * or ? is a glob on the repo-relative
// path, anything else a substring of it.
// If the box cannot run (no linux.uml): a skip naming the reason, or a
// failure when CI is set.
import t, { TapFile } from 'tap'
import ts from 'typescript'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { repoRoot, runInBox } from './kernel/box.mjs'
import { ktestScript } from './kernel/ktest-script.mjs'
import { transpileTree } from './kernel/ts-hooks.mjs'

// The whole suite shares one boot; the box is slow per process and syscall.
// (In a test file run by tap, this also raises the runner's timeout for it.)
const SUITE_TIMEOUT_S = Number(process.env.TSPROXY_KERNEL_TIMEOUT || 1800)
const FILE_TIMEOUT_S = Number(process.env.TSPROXY_KERNEL_FILE_TIMEOUT || 600)
t.setTimeout(SUITE_TIMEOUT_S * 1000)

const kernelDir = path.join(repoRoot, 'test/kernel')
const register = path.join(kernelDir, 'ts-register.mjs')
const CI = /^(?!0$|false$|no$)./i.test(process.env.CI ?? '')
const nFiles = (n: number): string => `${n} file${n === 1 ? '' : 's'}`
const log = (msg: string): void => void process.stderr.write(`kernel: ${msg}\n`)

function discover(dir: string): string[] {
  const out: string[] = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...discover(p))
    else if (e.name.endsWith('.ktest.ts')) out.push(path.relative(repoRoot, p))
  }
  return out.sort()
}

function selected(rel: string): boolean {
  const sel = (process.env.TSPROXY_KERNEL_TESTS ?? '').split(/[\s,]+/).filter(Boolean)
  if (!sel.length) return true
  return sel.some((s) => {
    if (!/[*?]/.test(s)) return rel.includes(s)
    const re = s.replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*\*\/?/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')
      .replace(/\0/g, '(?:.*/)?')
    return new RegExp(`^${re}$`).test(rel)
  })
}

// What the ktest processes see: no tap-runner plumbing from our own parent
// (they are stand-alone tap files printing raw TAP), TS served precompiled.
function childEnv(work: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(TAP|_TAPJS|NODE_OPTIONS$|NODE_V8_COVERAGE$)/.test(k)) env[k] = v
  }
  env.TSPROXY_TS_CACHE = path.join(work, 'ts')
  env.TAP_TIMEOUT = String(FILE_TIMEOUT_S) // tap's own per-file timeout inside the child
  return env
}

const nodeArgs = ['--enable-source-maps', '--import', register]

// One finished ktest run: its TAP as a subtest; a non-zero exit that the TAP
// does not already explain (or that left stderr behind) as a failure of its own.
async function replay(t: Tap, name: string, base: string): Promise<void> {
  const read = (ext: string): string => {
    try { return fs.readFileSync(`${base}.${ext}`, 'utf8') } catch { return '' }
  }
  const status = read('status').trim()
  const stderr = read('err')
  const left = read('left').trim()
  const p = t.sub(TapFile, { filename: `${base}.tap`, name, cwd: repoRoot, at: null, stack: '' })
  await p
  const tapOk = p.subtest?.results?.ok !== false
  if (status !== '0' && (tapOk || stderr.trim())) {
    const why = status === '124' ? `was killed: still running ${FILE_TIMEOUT_S} + 30 s after it started`
      : `exited with status ${status || '(none)'}`
    t.fail(`${name} ${why}`, { stderr: stderr.split('\n').slice(-60).join('\n'), ...(left ? { killedAfter: left } : {}), at: null, stack: '' })
  } else if (left) {
    // (after a kill, leftovers are expected: the kill is the failure)
    t.fail(`${name} left processes running, killed after it`, { left, at: null, stack: '' })
  }
}
type Tap = typeof t

// *.host.ktest.ts on the host, each in a new netns.
async function runOnHost(files: string[], work: string): Promise<void> {
  const env = childEnv(work)
  for (const [i, rel] of files.entries()) {
    const base = path.join(work, `host-${i}`)
    const out = fs.openSync(`${base}.tap`, 'w')
    const err = fs.openSync(`${base}.err`, 'w')
    const started = Date.now()
    // detached: a process group of its own, so that a kill reaches the
    // file's children too (an iptables child could outlive it, holding the lock)
    const child = spawn('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
      process.execPath, ...nodeArgs, rel], { cwd: repoRoot, env, stdio: ['ignore', out, err], detached: true })
    fs.closeSync(out)
    fs.closeSync(err)
    const killGroup = (): void => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} }
    let killed = false
    const timer = setTimeout(() => { killed = true; killGroup() }, FILE_TIMEOUT_S * 1000)
    process.once('exit', killGroup) // not in our group any more: ^C would miss it
    const status = await new Promise<number>((resolve) => {
      child.on('error', () => resolve(127))
      child.on('exit', (code) => resolve(killed ? 124 : code ?? 128))
    })
    clearTimeout(timer)
    process.off('exit', killGroup)
    if (child.pid) {
      const left = spawnSync('pgrep', ['-a', '-g', String(child.pid)], { encoding: 'utf8' }).stdout ?? ''
      killGroup()
      fs.writeFileSync(`${base}.left`, left)
    }
    fs.writeFileSync(`${base}.status`, String(status))
    log(`host  ${rel}: exit ${status}, ${Date.now() - started} ms`)
    await replay(t, `host: ${rel}`, base)
  }
}

async function runInTheBox(files: string[], work: string): Promise<void> {
  let box: Awaited<ReturnType<typeof runInBox>> | undefined
  try {
    box = await runInBox({
      // a little later than tap's own TAP_TIMEOUT, which reports more
      script: ktestScript({ files, work, command: [process.execPath, ...nodeArgs], timeoutS: FILE_TIMEOUT_S + 30 }),
      // the guest does not inherit our environment; pass what the files need
      env: {
        TSPROXY_TS_CACHE: path.join(work, 'ts'),
        TAP_TIMEOUT: String(FILE_TIMEOUT_S),
        ...(CI ? { CI: 'true' } : {}),
      },
      timeoutMs: (SUITE_TIMEOUT_S - 30) * 1000,
      onOutput: (chunk: string, stream: string) => {
        if (stream === 'stdout') for (const l of chunk.split('\n')) if (l.startsWith('ktest-done ')) log(`box   ${l.slice(11)}`)
      },
    })
  } catch (e) {
    const err = e as Error & { code?: string; stdout?: string; stderr?: string; console?: string }
    if (err.code === 'ENOBOX') {
      if (CI) t.fail(`kernel tests cannot run (CI is set): ${err.message}`)
      else t.pass(`kernel tests in the box (${nFiles(files.length)})`, { skip: err.message })
      return
    }
    // a box that timed out or crashed: report it, then whatever files did finish
    const notRun = files.filter((_, i) => !fs.existsSync(path.join(work, `box-${i}.status`)))
    t.fail(`the box failed: ${err.message}`, {
      notRun,
      stdout: (err.stdout ?? '').slice(-4000),
      stderr: (err.stderr ?? '').slice(-4000),
      at: null,
      stack: '',
    })
  }
  if (box) log(`box booted in ${box.bootMs} ms (kernel + modules), ran ${nFiles(files.length)} in ${box.totalMs - (box.bootMs ?? 0)} ms`)
  for (const [i, rel] of files.entries()) {
    const base = path.join(work, `box-${i}`)
    if (fs.existsSync(`${base}.status`)) await replay(t, `box: ${rel}`, base)
  }
}

const files = discover(kernelDir).filter(selected)
if (!files.length) {
  t.pass('kernel tests', { skip: `no files selected (TSPROXY_KERNEL_TESTS=${process.env.TSPROXY_KERNEL_TESTS ?? ''})` })
} else {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsproxy-ktest-'))
  // (not t.teardown: a teardown makes tap end the root test as soon as it is
  // idle, which it is while the box runs)
  try {
    // ~1 s here saves ~3 s per file in the box (see ts-hooks.mjs)
    transpileTree(repoRoot, path.join(work, 'ts'), ts)

    const hostFiles = files.filter((f) => f.endsWith('.host.ktest.ts'))
    if (hostFiles.length && process.getuid?.() !== 0) {
      t.pass(`host runs of ${nFiles(hostFiles.length)} *.host.ktest.ts`, { skip: 'need root for unshare -n' })
    } else if (hostFiles.length) {
      await runOnHost(hostFiles, work)
    }
    await runInTheBox(files, work)
  } finally {
    if (!process.env.TSPROXY_BOX_KEEP) fs.rmSync(work, { recursive: true, force: true })
  }
}
