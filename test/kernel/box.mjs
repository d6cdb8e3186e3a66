#!/usr/bin/env node
// The kernel test bed: a real Linux kernel (Debian's user-mode-linux, 6.1, with
// IPVS/ipset/iptables as modules) run as an ordinary process on the host, with
// the host's / mounted read-write as its root (hostfs). See
// /work/shared/kernel/TESTBED.md for the recipe this follows.
//
// Library:  const { code, stdout, stderr, bootMs } =
//             await runInBox({ script: 'ipvsadm -Ln', env: { X: '1' } })
// CLI:      node test/kernel/box.mjs [--timeout S] [-e NAME[=VALUE]]... -- cmd [args...]
//
// Plain JavaScript on purpose: it must run without a build step.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { StringDecoder } from 'node:string_decoder'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '../..')
const UML_MODULES = '/usr/lib/uml/modules'

// Modules the project needs. Names not shipped by the installed kernel are
// dropped (see wantedModules), so optional ones cannot abort the boot.
const MODULES = [
  'ip_vs', /^ip_vs_/, // the core, every scheduler, ip_vs_ftp, ip_vs_pe_sip
  'nf_conntrack', 'nf_conntrack_netlink', 'nf_nat',
  'ip_set', /^ip_set_/, // every set type
  'ip_tables', 'iptable_nat', 'iptable_filter', 'iptable_mangle', 'iptable_raw',
  'ip6_tables', 'ip6table_nat', 'ip6table_filter', 'ip6table_mangle', 'ip6table_raw',
  'xt_statistic', 'xt_set', 'xt_MASQUERADE', 'xt_comment', 'xt_mark', 'xt_multiport',
  'xt_addrtype', 'xt_conntrack', 'xt_recent', 'xt_physdev', 'xt_nat', 'xt_REJECT',
  'ipt_REJECT', 'ip6t_REJECT', 'xt_LOG', 'xt_tcpudp', 'xt_ipvs', 'xt_state', 'xt_CT',
  'xt_NOTRACK', 'xt_connmark', 'xt_limit', 'xt_sctp',
  'veth', 'bridge', 'br_netfilter', 'dummy', 'ipip', 'ip_gre', 'fou', 'fou6',
]

function boxError(code, message, extra = {}) {
  return Object.assign(new Error(message), extra, { code })
}

function which(cmd) {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : null
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', cmd)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {}
  }
  return null
}

// The guest's release, e.g. "6.1.176"; its modules live in UML_MODULES/<release>.
function umlRelease(uml) {
  const out = execFileSync(uml, ['--version'], { encoding: 'utf8' }).trim()
  return out.split(/\s+/).pop()
}

// Intersect MODULES with what modules.dep of that release lists.
function wantedModules(release) {
  const dep = fs.readFileSync(path.join(UML_MODULES, release, 'modules.dep'), 'utf8')
  const shipped = new Set()
  for (const line of dep.split('\n')) {
    const m = /([^/\s:]+)\.ko(?:\.\w+)?:/.exec(line)
    if (m) shipped.add(m[1].replace(/-/g, '_'))
  }
  const out = new Set()
  for (const want of MODULES) {
    if (typeof want === 'string') {
      if (shipped.has(want)) out.add(want)
    } else {
      for (const name of [...shipped].sort()) if (want.test(name)) out.add(name)
    }
  }
  return [...out]
}

// On AMX CPUs Debian's linux.uml 6.1 cannot switch to user space without the
// ptrace shim (see uml-xstate-shim.c). Build it once per source version.
function xstateShim() {
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8')
  if (!/^flags\s*:.*\bamx_tile\b/m.test(flags)) return null
  const src = path.join(here, 'uml-xstate-shim.c')
  const hash = createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 12)
  // not in the shared /tmp: anyone could plant a library there for us to preload as root
  const cache = path.join(repoRoot, 'node_modules', '.cache', 'tsproxy-box')
  const so = path.join(cache, `uml-xstate-shim-${hash}.so`)
  if (fs.existsSync(so)) return so
  fs.mkdirSync(cache, { recursive: true })
  const cc = which(process.env.CC || 'cc')
  if (!cc) {
    throw boxError('ENOBOX', 'this CPU has AMX, so linux.uml needs a small ptrace shim ' +
      'compiled from test/kernel/uml-xstate-shim.c, but there is no C compiler: ' +
      'apt-get install gcc')
  }
  const tmp = `${so}.${process.pid}.tmp`
  const r = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-o', tmp, src, '-ldl'], { encoding: 'utf8' })
  if (r.status !== 0) throw boxError('ENOBOX', `building the UML ptrace shim failed:\n${r.stderr}`)
  fs.renameSync(tmp, so) // atomic: concurrent builders cannot see half a file
  return so
}

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return e.code === 'EPERM'
  }
}

// The CPU to pin the box to: TSPROXY_BOX_CPU (a number, or "none"), else one
// this process may use that no other box on this machine has claimed (a
// claim is a pid file in the temp dir, stale once that pid is gone), taken
// from the last CPU down; if all are claimed, the boxes share the last one.
function claimCpu() {
  const none = { cpu: null, release() {} }
  const want = process.env.TSPROXY_BOX_CPU
  if (want === 'none') return none
  if (want) return { cpu: Number(want), release() {} }
  const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  if (!m) return none
  const cpus = m[1].trim().split(',').flatMap((r) => {
    const [a, b = a] = r.split('-').map(Number)
    return Array.from({ length: b - a + 1 }, (_, i) => a + i)
  })
  for (const cpu of cpus.reverse()) {
    const claim = path.join(os.tmpdir(), `tsproxy-box-cpu${cpu}.pid`)
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(claim, String(process.pid), { flag: 'wx' })
        return { cpu, release: () => fs.rmSync(claim, { force: true }) }
      } catch {
        let pid = 0
        try { pid = Number(fs.readFileSync(claim, 'utf8')) } catch {}
        if (!(pid > 0) || alive(pid)) break // claimed (or being claimed) by a live box
        fs.rmSync(claim, { force: true }) // stale
      }
    }
  }
  return { cpu: cpus[0] ?? null, release() {} }
}

// bash, run by runInBox: starts "$@" (the kernel) and exits with its status.
// Its stdin is a pipe from runInBox that is never written; a watchdog waits
// for EOF there (runInBox closed it, or the node process died, however) and
// then kills the kernel with everything it forked. UML makes itself a session
// leader at start, so its process group id is its pid.
const SUPERVISE = `
exec 3<&0
"$@" 3<&- </dev/null &
uml=$!
(read -r _ <&3; kill -KILL -- -$uml 0) 2>/dev/null &
wait $uml
`

const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`

// Find linux.uml and everything needed to boot it; throws ENOBOX if missing.
function prepare() {
  const uml = which(process.env.TSPROXY_UML || 'linux.uml')
  if (!uml) {
    throw boxError('ENOBOX', 'linux.uml not found: apt-get install user-mode-linux kmod ' +
      '(Debian/Ubuntu package "user-mode-linux")')
  }
  if (!which('modprobe') && !fs.existsSync('/usr/sbin/modprobe') && !fs.existsSync('/sbin/modprobe')) {
    throw boxError('ENOBOX', 'modprobe not found: apt-get install kmod')
  }
  const release = umlRelease(uml)
  if (!fs.existsSync(path.join(UML_MODULES, release, 'modules.dep'))) {
    throw boxError('ENOBOX', `no modules for linux.uml ${release} in ${UML_MODULES}: ` +
      'reinstall user-mode-linux')
  }
  return { uml, modules: wantedModules(release), shim: xstateShim() }
}

// The guest's PID 1. $D is the run's temp dir on the host, seen through hostfs.
function initScript(dir, modules, cwd) {
  return `#!/bin/sh
D=${shq(dir)}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb
# the host's node first, wherever it is installed (nvm, /usr/local, ...)
PATH=${shq(path.dirname(process.execPath))}:$PATH
ip link set lo up
# no fallback tunnel devices (tunl0, gre0, ...) in any netns: a new netns then has only lo
echo 2 >/proc/sys/net/core/fb_tunnels_only_for_init_net
# modules sit in ${UML_MODULES}/<release>, not /lib/modules: give modprobe a
# root (-d) whose lib/modules/<release> points there; it follows modules.dep.
mkdir -p /run/mods/lib/modules
ln -s ${UML_MODULES}/$(uname -r) /run/mods/lib/modules/$(uname -r)
date +%s%3N >"$D/modprobe.start"
modprobe -a -d /run/mods ${modules.join(' ')} 2>"$D/modprobe.log"
# No module autoloading after boot: the kernel's modprobe (/sbin/modprobe,
# without -d) finds nothing here anyway, and every attempt forks it, ~50 ms in
# UML. Every IPv4 iptables get/setsockopt asks for "bpfilter" first, so a
# single iptables command paid for 3-5 of them. Load what a test needs above.
echo >/proc/sys/kernel/modprobe
date +%s%3N >"$D/started"
. "$D/env.sh"
(cd ${shq(cwd)} && exec /bin/bash "$D/script.sh") >"$D/stdout" 2>"$D/stderr" </dev/null
echo $? >"$D/status"
sync
halt -f
`
}

/**
 * Boot the box, run `script` (a bash script body) as root with cwd = `cwd`
 * (the repo root by default), and return { code, stdout, stderr, bootMs }.
 * bootMs is the time from spawning the kernel to the script starting (kernel
 * boot + module loading). `onOutput(chunk, 'stdout'|'stderr')` gets the
 * script's output while it runs. Throws ENOBOX if the box cannot be started,
 * ETIMEDOUT after `timeoutMs`, EBOXCRASH if the kernel stopped without the
 * script's exit status; those errors carry whatever stdout/stderr/console
 * there is.
 */
export async function runInBox({
  script, env = {}, timeoutMs = 600_000, onOutput, cwd = repoRoot, mem = '1G', signal,
} = {}) {
  if (typeof script !== 'string') throw new TypeError('runInBox: script must be a string')
  const { uml, modules, shim } = prepare()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsproxy-box-'))
  const file = (name) => path.join(dir, name)
  fs.writeFileSync(file('script.sh'), script)
  fs.writeFileSync(file('env.sh'), Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new TypeError(`runInBox: bad env name ${k}`)
    return `export ${k}=${shq(v)}\n`
  }).join(''))
  fs.writeFileSync(file('init'), initScript(dir, modules, cwd), { mode: 0o755 })
  for (const f of ['stdout', 'stderr']) fs.writeFileSync(file(f), '')

  const args = [
    'mem=' + mem, 'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'rw',
    'init=' + file('init'), 'con=null', 'con0=null,fd:2',
  ]
  // taskset: UML and the host processes it ptraces ping-pong on every guest
  // syscall and page fault; kept on one CPU that is 2-4x faster and far
  // steadier than letting the host scheduler move them apart.
  let argv = [uml, ...args]
  const { cpu, release: releaseCpu } = claimCpu()
  if (cpu !== null && which('taskset')) argv = ['taskset', '-c', String(cpu), ...argv]
  const consoleFd = fs.openSync(file('console'), 'w')
  const started = Date.now()
  const child = spawn('/bin/bash', ['-c', SUPERVISE, 'supervise', ...argv], {
    detached: true, // not in our process group: a ^C is for us to handle
    stdio: ['pipe', consoleFd, consoleFd],
    env: { ...process.env, ...(shim ? { LD_PRELOAD: shim } : {}) },
  })
  fs.closeSync(consoleFd)

  // Live output: the script writes to files on the host; follow them.
  const tails = ['stdout', 'stderr'].map((name) => ({ name, pos: 0, dec: new StringDecoder('utf8') }))
  const poll = (final) => {
    if (!onOutput) return
    for (const t of tails) {
      let fd
      try {
        fd = fs.openSync(file(t.name), 'r')
        const buf = Buffer.alloc(1 << 16)
        let n
        while ((n = fs.readSync(fd, buf, 0, buf.length, t.pos)) > 0) {
          t.pos += n
          const s = t.dec.write(buf.subarray(0, n))
          if (s) onOutput(s, t.name)
        }
        if (final) {
          const s = t.dec.end()
          if (s) onOutput(s, t.name)
        }
      } catch {} finally {
        if (fd !== undefined) fs.closeSync(fd)
      }
    }
  }
  const kill = () => child.stdin.destroy() // the watchdog in SUPERVISE does it
  let why = null
  const timer = setTimeout(() => { why = 'timeout'; kill() }, timeoutMs)
  const ticker = onOutput ? setInterval(poll, 200) : null
  const onAbort = () => { why = 'aborted'; kill() }
  signal?.addEventListener('abort', onAbort)
  const exit = await new Promise((resolve) => {
    child.on('error', (err) => resolve({ err }))
    child.on('exit', (code, sig) => resolve({ code, sig }))
  })
  clearTimeout(timer)
  if (ticker) clearInterval(ticker)
  signal?.removeEventListener('abort', onAbort)
  kill() // UML helpers left behind, if any, and the watchdog
  releaseCpu()
  poll(true)

  const read = (name) => { try { return fs.readFileSync(file(name), 'utf8') } catch { return null } }
  const result = {
    code: null,
    stdout: read('stdout') ?? '',
    stderr: read('stderr') ?? '',
    bootMs: Number(read('started')) ? Number(read('started')) - started : null,
    modprobeMs: Number(read('started')) - Number(read('modprobe.start')) || null,
    totalMs: Date.now() - started,
    modprobeLog: read('modprobe.log') ?? '',
    console: read('console') ?? '',
  }
  const status = read('status')
  if (process.env.TSPROXY_BOX_KEEP) process.stderr.write(`box: kept ${dir}\n`)
  else fs.rmSync(dir, { recursive: true, force: true })

  if (exit.err) throw boxError('ENOBOX', `cannot start ${uml}: ${exit.err.message}`, result)
  if (why === 'timeout') throw boxError('ETIMEDOUT', `box timed out after ${timeoutMs} ms`, result)
  if (why === 'aborted') throw boxError('ABORT_ERR', 'box aborted', result)
  if (status === null || status.trim() === '') {
    const tail = result.console.split('\n').filter((l) => !/^\s*\[<\w+>\]/.test(l)).slice(-25).join('\n')
    throw boxError('EBOXCRASH', `the box stopped (exit ${exit.code ?? exit.sig}) without ` +
      `the script's exit status; kernel console tail:\n${tail}`, result)
  }
  result.code = Number(status.trim())
  return result
}

// ---- CLI ----------------------------------------------------------------------
async function main(argv) {
  const usage = 'usage: node test/kernel/box.mjs [--timeout S] [-e NAME[=VALUE]]... -- command [args...]'
  let timeoutMs = 600_000
  const env = {}
  let i = 0
  for (; i < argv.length && argv[i] !== '--'; i++) {
    const a = argv[i]
    if (a === '--timeout') timeoutMs = Number(argv[++i]) * 1000
    else if (a === '-e' || a === '--env') {
      const [k, ...v] = String(argv[++i]).split('=')
      env[k] = v.length ? v.join('=') : (process.env[k] ?? '')
    } else if (a === '-h' || a === '--help') {
      console.log(usage)
      return 0
    } else break
  }
  if (argv[i] === '--') i++
  const cmd = argv.slice(i)
  if (!cmd.length || !(timeoutMs > 0)) {
    console.error(usage)
    return 2
  }
  const ac = new AbortController()
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => ac.abort())
  try {
    const r = await runInBox({
      script: 'exec ' + cmd.map(shq).join(' ') + '\n',
      env,
      timeoutMs,
      signal: ac.signal,
      onOutput: (chunk, stream) => (stream === 'stderr' ? process.stderr : process.stdout).write(chunk),
    })
    if (process.env.TSPROXY_BOX_VERBOSE) {
      process.stderr.write(`box: boot ${r.bootMs} ms (of which modprobe ${r.modprobeMs} ms), ` +
        `total ${r.totalMs} ms\n${r.modprobeLog}`)
    }
    return r.code
  } catch (e) {
    process.stderr.write(`box: ${e.message}\n`)
    // 124 like timeout(1); 125 for "the box itself failed", like env(1)/docker
    return e.code === 'ETIMEDOUT' ? 124 : e.code === 'ABORT_ERR' ? 130 : 125
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2))
}
