// Sysctls against real kernels (the UML box's 6.1, and the host's in a fresh
// network namespace: the net.* keys are the namespace's own), with sysctl(8)
// as the oracle both ways: what we write `sysctl -n` reads, what `sysctl -w`
// writes we read. The host kernel has no IPVS: there the net.ipv4.vs keys must
// fail as ENOENT naming the key; in the box they must work.
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { SYSCTL, SysctlError, ValidationError, ensureSysctl, getSysctl, readSysctl, setSysctl, writeSysctl } from '../../dist/index.js'
import { canMake, ip } from './support/iproute.js'

const sysctl = (...args: string[]): string => execFileSync('sysctl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
const HAS_IPVS = existsSync('/proc/sys/net/ipv4/vs')

async function fails(t: Test, p: Promise<unknown>, cls: typeof SysctlError | typeof ValidationError, fields: object): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof cls, `a ${cls.name} (${(err as Error)?.message})`)
  t.match(err, fields)
}

t.test('ip_forward: we write, sysctl reads; sysctl writes, we read', async (t) => {
  await setSysctl(SYSCTL.ipForward, 1)
  t.equal(sysctl('-n', 'net.ipv4.ip_forward'), '1')
  sysctl('-w', 'net.ipv4.ip_forward=0')
  t.equal(await getSysctl(SYSCTL.ipForward), 0)
  t.equal(await ensureSysctl(SYSCTL.ipForward, 1), true, 'ensure: changed')
  t.equal(await ensureSysctl(SYSCTL.ipForward, 1), false, 'ensure: already so')
  t.equal(sysctl('-n', 'net.ipv4.ip_forward'), '1')
})

t.test('arp_ignore / arp_announce, for all and per interface (a name with a dot too)', async (t) => {
  await setSysctl(SYSCTL.arpIgnore(), 1)
  await setSysctl(SYSCTL.arpAnnounce('all'), 2)
  t.equal(sysctl('-n', 'net.ipv4.conf.all.arp_ignore'), '1')
  t.equal(sysctl('-n', 'net.ipv4.conf.all.arp_announce'), '2')
  const kind = canMake('dummy') ? 'dummy' : 'veth'
  ip('link', 'add', 'kube.ipvs0', 'type', kind)
  t.teardown(() => void ip('link', 'del', 'kube.ipvs0'))
  t.equal(SYSCTL.arpIgnore('kube.ipvs0'), 'net/ipv4/conf/kube.ipvs0/arp_ignore')
  await setSysctl(SYSCTL.arpIgnore('kube.ipvs0'), 1)
  await setSysctl(SYSCTL.arpAnnounce('kube.ipvs0'), 2)
  // sysctl(8) spells a dot inside a part as '/'
  t.equal(sysctl('-n', 'net.ipv4.conf.kube/ipvs0.arp_ignore'), '1')
  t.equal(sysctl('-n', 'net.ipv4.conf.kube/ipvs0.arp_announce'), '2')
  sysctl('-w', 'net.ipv4.conf.kube/ipvs0.arp_ignore=0')
  t.equal(await getSysctl(SYSCTL.arpIgnore('kube.ipvs0')), 0)
  t.equal(await getSysctl('net.ipv4.conf.lo.arp_announce'), Number(sysctl('-n', 'net.ipv4.conf.lo.arp_announce')), 'lo, dotted')
  await fails(t, getSysctl(SYSCTL.arpIgnore('nosuch0')), SysctlError, { errno: 2, code: 'ENOENT', op: 'sysctl.get', key: 'net/ipv4/conf/nosuch0/arp_ignore', path: '/proc/sys/net/ipv4/conf/nosuch0/arp_ignore' })
  await fails(t, setSysctl(SYSCTL.arpAnnounce('kube.ipvs0'), 3), ValidationError, { field: 'value', value: 3 })
  t.equal(sysctl('-n', 'net.ipv4.conf.kube/ipvs0.arp_announce'), '2', 'nothing written')
})

t.test('the IPVS sysctls kube-proxy sets', { skip: HAS_IPVS ? false : 'this kernel has no IPVS (see the next test)' }, async (t) => {
  for (const key of [SYSCTL.ipvsConntrack, SYSCTL.expireNodestConn, SYSCTL.expireQuiescentTemplate]) {
    await setSysctl(key, 1)
    t.equal(sysctl('-n', key), '1', `${key}: sysctl reads 1`)
    sysctl('-w', `${key}=0`)
    t.equal(await getSysctl(key), 0, `${key}: we read sysctl's 0`)
    t.equal(await ensureSysctl(key, 1), true)
  }
})

t.test('without IPVS, its keys are ENOENT naming the key and why', { skip: HAS_IPVS ? 'this kernel has IPVS (see the previous test)' : false }, async (t) => {
  await fails(t, setSysctl(SYSCTL.ipvsConntrack, 1), SysctlError, {
    errno: 2,
    code: 'ENOENT',
    op: 'sysctl.set',
    key: 'net.ipv4.vs.conntrack',
    message: 'sysctl.set: net.ipv4.vs.conntrack: ENOENT: no such sysctl (/proc/sys/net/ipv4/vs/conntrack); the ip_vs module is not loaded',
  })
  await fails(t, getSysctl(SYSCTL.expireNodestConn), SysctlError, { code: 'ENOENT', op: 'sysctl.get', key: 'net.ipv4.vs.expire_nodest_conn' })
})

t.test('text sysctls; values the kernel refuses are EINVAL naming the key', async (t) => {
  t.equal(await readSysctl('net.ipv4.ip_local_port_range'), sysctl('-n', 'net.ipv4.ip_local_port_range'), 'two numbers, as sysctl prints them')
  await writeSysctl('net.ipv4.ip_local_port_range', '20000\t40000')
  t.match(sysctl('-n', 'net.ipv4.ip_local_port_range'), /^20000\s+40000$/)
  await fails(t, getSysctl('net.ipv4.ip_local_port_range'), SysctlError, { code: 'EINVAL', key: 'net.ipv4.ip_local_port_range', message: /not an integer sysctl/ })
  await fails(t, writeSysctl(SYSCTL.ipForward, 'yes'), SysctlError, {
    errno: 22,
    code: 'EINVAL',
    op: 'sysctl.set',
    key: 'net.ipv4.ip_forward',
    message: 'sysctl.set: net.ipv4.ip_forward: EINVAL: the kernel refused the value',
  })
  await fails(t, writeSysctl('net.ipv4.ip_local_port_range', '40000\t20000'), SysctlError, { code: 'EINVAL', key: 'net.ipv4.ip_local_port_range' })
})
