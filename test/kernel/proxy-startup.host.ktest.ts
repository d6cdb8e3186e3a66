// What the daemon does before it touches the kernel, on real kernels (the box,
// and the host in a fresh netns): one writer per node (the instance lock, a
// flock on TSPROXY_LOCK_FILE, /run/tsproxy.lock by default), and one clear line
// when it cannot run at all (no CAP_NET_ADMIN / CAP_NET_RAW, no IPVS in the
// kernel: the host's case). iptables mode, which both kernels have.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sh } from '../support/cni.mjs'
import { startDaemon, type RunningDaemon } from '../support/daemon.mjs'

const MAIN = fileURLToPath(new URL('../../dist/proxy/main.js', import.meta.url))
const MANIFESTS = fileURLToPath(new URL('../fixtures/manifests/nginx-basic.yaml', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'tsproxy-startup-'))
const LOCK = join(dir, 'tsproxy.lock')
const env = { TSPROXY_LOCK_FILE: LOCK }
const running: RunningDaemon[] = []
t.teardown(async () => {
  for (const d of running) await d.stop('SIGKILL')
  sh(`TSPROXY_LOCK_FILE=${LOCK} node dist/proxy/main.js cleanup >/dev/null 2>&1 || true`)
  rmSync(dir, { recursive: true, force: true })
})

let port = 21000
const daemon = async (options: { waitSynced?: boolean } = {}): Promise<RunningDaemon> => {
  port += 2
  const d = await startDaemon({ manifests: MANIFESTS, args: ['--proxy-mode=iptables'], healthz: `127.0.0.1:${port}`, metrics: `127.0.0.1:${port + 1}`, env, ...options })
  running.push(d)
  return d
}

/** A one-shot run of tsproxy (behind `prefix`, e.g. setpriv): exit code and its stderr lines. */
function once(prefix: string[], args: string[], timeout = 60_000): { code: number | null; lines: string[] } {
  // `env -i`: tap's hooks follow spawned processes through their environment
  // and write under .tap/, which nobody may not.
  const vars = Object.entries({ PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }).map(([k, v]) => `${k}=${v}`)
  const r = spawnSync('env', ['-i', ...vars, ...prefix, process.execPath, MAIN, ...args], { encoding: 'utf8', timeout })
  return { code: r.status, lines: r.stderr.split('\n').filter((l) => l !== '') }
}
const msgOf = (line: string | undefined): string => {
  try {
    return String((JSON.parse(line ?? '') as { msg: string }).msg)
  } catch {
    return line ?? ''
  }
}
const run = ['--proxy-mode=iptables', `--manifests=${MANIFESTS}`, '--healthz-bind-address=127.0.0.1:20990', '--metrics-bind-address=127.0.0.1:20991']

t.test('a second daemon refuses while the first runs, naming the lock file and the holder', async (t) => {
  const a = await daemon()
  const aHealthz = `127.0.0.1:${port}`
  const b = await daemon({ waitSynced: false })
  const exit = await Promise.race([b.exit, new Promise((r) => setTimeout(() => r('still running'), 20_000))])
  t.same(exit, { code: 1, signal: null }, 'the second daemon exits 1')
  t.match(b.logs.at(-1)?.msg, `another tsproxy holds the instance lock ${LOCK} (pid ${a.proc.pid})`, 'its last line names the lock file and the first daemon\'s pid')
  t.ok(b.logs.some((l) => /waiting up to 5s/.test(l.msg)), 'after saying it waits for it')
  t.notOk(b.logs.some((l) => /sync|conntrack settings|sysctls set/.test(l.msg)), 'it wrote nothing to the kernel')
  t.equal(readFileSync(LOCK, 'utf8'), `${a.proc.pid}\n`, 'the lock file names the holder')
  t.equal((await a.get('/healthz', aHealthz)).status, 200, 'the first daemon is still healthy')
  t.equal(a.proc.exitCode, null, 'and running')

  const c = once([], ['cleanup'])
  t.equal(c.code, 1, 'tsproxy cleanup refuses too, at once')
  t.match(msgOf(c.lines.at(-1)), `another tsproxy holds the instance lock ${LOCK} (pid ${a.proc.pid})`)
  t.match(sh('iptables-legacy-save -t nat'), /-A KUBE-SERVICES .*default\/nginx/, 'the first daemon\'s rules are still there')

  // A rolling restart: the new daemon starts while the old one is still stopping.
  const next = await daemon({ waitSynced: false })
  await next.waitLog((l) => /waiting up to 5s/.test(l.msg))
  t.same(await a.stop('SIGTERM'), { code: 0, signal: null }, 'the old one stops')
  await next.waitLog((l) => l.msg === 'tsproxy running')
  t.pass('the waiting daemon takes over once the old one is gone')

  // kill -9: the kernel drops the flock with the process.
  t.same(await next.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
  const after = await daemon()
  t.notOk(after.logs.some((l) => /waiting/.test(l.msg)), 'a daemon after a SIGKILLed one starts without waiting')
  await after.stop()
})

t.test('without CAP_NET_ADMIN / CAP_NET_RAW: exit 1 with one line saying what is missing', async (t) => {
  const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
  const ipvs = ['--proxy-mode=ipvs', ...run.slice(1)]
  for (const [what, args] of [['the daemon', run], ['the daemon in IPVS mode', ipvs], ['cleanup', ['cleanup']]] as const) {
    const r = once(nobody, [...args])
    t.equal(r.code, 1, `${what}, as nobody: exit 1`)
    t.equal(r.lines.length, 1, `${what}: exactly one line (${r.lines.join(' | ')})`)
    t.equal(msgOf(r.lines[0]), 'tsproxy needs CAP_NET_ADMIN and CAP_NET_RAW (missing: CAP_NET_ADMIN, CAP_NET_RAW): run it as root or grant them')
  }
  if (spawnSync('capsh', ['--version']).status === 0) {
    const lock = join(dir, 'noraw.lock')
    const r = once(['env', `TSPROXY_LOCK_FILE=${lock}`, 'capsh', '--drop=cap_net_raw', '--', '-c', 'exec "$@"', 'sh'], run)
    t.equal(r.code, 1, 'root without CAP_NET_RAW: exit 1')
    t.same(r.lines.map(msgOf), ['tsproxy needs CAP_NET_ADMIN and CAP_NET_RAW (missing: CAP_NET_RAW): run it as root or grant them'])
    t.notOk(existsSync(lock), 'refused before it took the lock (or touched anything)')
  }
})

t.test('IPVS mode on a kernel without IPVS: exit 1 with one line naming the module', { skip: existsSync('/proc/net/ip_vs') ? 'this kernel has IPVS (the box)' : false }, async (t) => {
  const r = once([], ['--proxy-mode=ipvs', ...run.slice(1)])
  t.equal(r.code, 1, 'exit 1')
  t.equal(r.lines.length, 1, `exactly one line: no warnings, nothing written before it (${r.lines.join(' | ')})`)
  t.match(r.lines[0], /the kernel has no IPVS \(load the ip_vs module: modprobe ip_vs\)/)
})

t.test('bad arguments: exit 2 with the reason, and not one sysctl written', async (t) => {
  // Values tsproxy's defaults would change (24h established, 1h close-wait).
  const keys = ['net.netfilter.nf_conntrack_tcp_timeout_established', 'net.netfilter.nf_conntrack_tcp_timeout_close_wait', 'net.ipv4.ip_forward']
  sh('sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_established=1234 net.netfilter.nf_conntrack_tcp_timeout_close_wait=77 net.ipv4.ip_forward=0')
  const read = (): string => sh(`sysctl -n ${keys.join(' ')}`)
  const before = read()
  const ports = run.slice(2)
  const cases: [string, string[], RegExp][] = [
    ['a --manifests path that does not exist', ['--proxy-mode=iptables', '--manifests=/nonexistent', ...ports], /--manifests \/nonexistent: no such file or directory/],
    ['a bad cluster CIDR', ['--proxy-mode=iptables', '--cluster-cidr=10.0.0.0/99', `--manifests=${MANIFESTS}`, ...ports], /cluster-cidr/],
    ['a bad bind address', ['--proxy-mode=iptables', `--manifests=${MANIFESTS}`, '--healthz-bind-address=nowhere', '--metrics-bind-address=127.0.0.1:20991'], /healthz-bind-address/],
    ['a bad scheduler', ['--proxy-mode=ipvs', '--ipvs-scheduler=fastest', `--manifests=${MANIFESTS}`, ...ports], /ipvs-scheduler/],
    ['a config file that does not exist', ['--config=/nonexistent.yaml', `--manifests=${MANIFESTS}`], /nonexistent\.yaml/],
  ]
  for (const [what, args, reason] of cases) {
    const r = once([], args, 15_000)
    t.equal(r.code, 2, `${what}: exit 2 (${r.lines.join(' | ')})`)
    t.match(r.lines.join('\n'), reason, `${what}: the line says why`)
    t.equal(read(), before, `${what}: no sysctl changed`)
  }
})

t.test('tsproxy --init-only: the daemon\'s sysctls, no rule, exit 0', async (t) => {
  const mode = existsSync('/proc/net/ip_vs') ? 'ipvs' : 'iptables'
  once([], ['cleanup']) // a node without tsproxy's state first
  const keys = ['net.netfilter.nf_conntrack_tcp_timeout_established', 'net.ipv4.ip_forward', ...(mode === 'ipvs' ? ['net.ipv4.vs.conntrack', 'net.ipv4.vs.expire_nodest_conn'] : [])]
  sh(`sysctl -qw ${keys.map((k) => `${k}=${k.endsWith('established') ? 1234 : 0}`).join(' ')}`)
  const rules = (): string => sh('iptables-legacy-save -t nat; iptables-legacy-save -t filter').split('\n').filter((l) => !l.startsWith('#')).join('\n') + (mode === 'ipvs' ? sh('ipvsadm -Sn; ipset save') : '')
  const before = rules()
  const r = once([], ['--init-only', `--proxy-mode=${mode}`, '--conntrack-tcp-timeout-established=2h'])
  t.equal(r.code, 0, `exit 0 (${r.lines.join(' | ')})`)
  t.equal(msgOf(r.lines.at(-1)), 'node ready')
  t.same(sh(`sysctl -n ${keys.join(' ')}`).trim().split('\n').map(Number), keys.map((k) => (k.endsWith('established') ? 7200 : 1)), `${mode} mode: ${keys.join(', ')} as the daemon sets them`)
  t.equal(rules(), before, 'no rule, set or virtual server written')
  // kubelet's KUBE-FIREWALL (and its INPUT/OUTPUT jumps) outlive `tsproxy cleanup`, as kube-proxy's cleanup leaves them
  const ours = before.split('\n').filter((l) => !l.includes('KUBE-FIREWALL')).join('\n')
  t.notMatch(ours, /KUBE-/, 'and there was none of tsproxy\'s before (kubelet\'s KUBE-FIREWALL aside)')
})
