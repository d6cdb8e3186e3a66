// lib/sysctl on the host, on a tree of plain files shaped like /proc/sys (the
// `root` option): keys to paths, reads, writes, ensure, and the errors, each
// naming the key. The real /proc/sys is the kernel tests' (sysctl.host.ktest.ts).
import t from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetlinkError, SYSCTL, SysctlError, ValidationError, ensureSysctl, getSysctl, readSysctl, setSysctl, writeSysctl } from '../../dist/index.js'
import { outcome } from '../support/outcome.js'

const root = mkdtempSync(join(tmpdir(), 'tsproxy-sysctl-'))
t.teardown(() => rmSync(root, { recursive: true, force: true }))
const at = { root }

function file(rel: string, text: string): string {
  const p = join(root, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, text)
  return p
}
file('net/ipv4/ip_forward', '0\n')
file('net/ipv4/vs/conntrack', '0\n')
file('net/ipv4/conf/all/arp_ignore', '0\n')
file('net/ipv4/conf/eth0.100/arp_announce', '0\n')
file('net/ipv4/ip_local_port_range', '32768\t60999\n')

t.test('keys: dotted as sysctl(8) writes them, or a path when a part holds a dot', async (t) => {
  t.equal(await getSysctl('net.ipv4.ip_forward', at), 0)
  t.equal(await getSysctl('net/ipv4/ip_forward', at), 0, 'the same key as a path')
  t.equal(SYSCTL.arpAnnounce('eth0.100'), 'net/ipv4/conf/eth0.100/arp_announce')
  t.equal(SYSCTL.arpIgnore(), 'net/ipv4/conf/all/arp_ignore')
  t.equal(await getSysctl(SYSCTL.arpAnnounce('eth0.100'), at), 0, 'a VLAN interface, by path')
  t.equal(await readSysctl('net.ipv4.ip_local_port_range', at), '32768\t60999', 'text as it is, without the newline')
})

t.test('set, get and ensure write the file the kernel would read', async (t) => {
  await setSysctl(SYSCTL.ipForward, 1, at)
  t.equal(readFileSync(join(root, 'net/ipv4/ip_forward'), 'utf8'), '1\n')
  t.equal(await getSysctl(SYSCTL.ipForward, at), 1)
  t.equal(await ensureSysctl(SYSCTL.ipvsConntrack, 1, at), true, 'changed')
  t.equal(await ensureSysctl(SYSCTL.ipvsConntrack, 1, at), false, 'already so: not written')
  t.equal(readFileSync(join(root, 'net/ipv4/vs/conntrack'), 'utf8'), '1\n')
  await writeSysctl('net.ipv4.ip_local_port_range', '1024\t65000', at)
  t.equal(await readSysctl('net.ipv4.ip_local_port_range', at), '1024\t65000')
  await writeSysctl(SYSCTL.arpIgnore('all'), 1, at)
  t.equal(await getSysctl(SYSCTL.arpIgnore('all'), at), 1)
})

t.test('a missing key is ENOENT naming the key and the file; never created', async (t) => {
  const e = await outcome(setSysctl(SYSCTL.expireNodestConn, 1, at))
  t.ok(e instanceof SysctlError, 'a SysctlError')
  t.ok(e instanceof NetlinkError, 'and so the one kernel error type, NetlinkError')
  t.match(e, {
    errno: 2,
    code: 'ENOENT',
    op: 'sysctl.set',
    key: 'net.ipv4.vs.expire_nodest_conn',
    path: join(root, 'net/ipv4/vs/expire_nodest_conn'),
    message: `sysctl.set: net.ipv4.vs.expire_nodest_conn: ENOENT: no such sysctl (${join(root, 'net/ipv4/vs/expire_nodest_conn')}); the ip_vs module is not loaded`,
  })
  t.throws(() => readFileSync(join(root, 'net/ipv4/vs/expire_nodest_conn')), 'the write did not create it')
  t.match(await outcome(getSysctl('net.ipv4.conf.kube-ipvs0.arp_ignore', at)), { code: 'ENOENT', op: 'sysctl.get', key: 'net.ipv4.conf.kube-ipvs0.arp_ignore', message: /no such sysctl \([^)]*\)$/ })
  t.match(await outcome(readSysctl('net.ipv4', at)), { code: 'EISDIR', key: 'net.ipv4', message: /is a directory of keys/ })
})

t.test('a value that is not an integer reads as EINVAL, naming the key', async (t) => {
  const e = await outcome(getSysctl('net.ipv4.ip_local_port_range', at))
  t.ok(e instanceof SysctlError)
  t.match(e, { errno: 22, code: 'EINVAL', op: 'sysctl.get', key: 'net.ipv4.ip_local_port_range', message: /not an integer sysctl \("1024\\t65000"\)/ })
})

t.test('refusals name the field: keys that leave the tree, values the kernel would refuse', async (t) => {
  const refusal = async (p: Promise<unknown>, field: string, value: unknown): Promise<void> => {
    const e = await outcome(p)
    t.ok(e instanceof ValidationError, `a ValidationError (${(e as Error).message})`)
    t.match(e, { field, value })
  }
  for (const key of ['', 'net..ipv4', 'net/../../etc/passwd', '../x', 'net.ipv4.ip forward', 'a\0b', 7])
    await refusal(getSysctl(key as string, at), 'key', key)
  await refusal(setSysctl(SYSCTL.ipForward, 2, at), 'value', 2)
  await refusal(setSysctl(SYSCTL.ipvsConntrack, -1, at), 'value', -1)
  await refusal(setSysctl(SYSCTL.arpIgnore('eth0'), 9, at), 'value', 9)
  await refusal(setSysctl(SYSCTL.arpAnnounce(), 3, at), 'value', 3)
  await refusal(setSysctl('net.core.somaxconn', 1.5, at), 'value', 1.5)
  await refusal(setSysctl('net.core.somaxconn', '4096' as never, at), 'value', '4096')
  await refusal(ensureSysctl(SYSCTL.expireQuiescentTemplate, 5, at), 'value', 5)
  await refusal(writeSysctl('net.core.somaxconn', 'a\nb', at), 'value', 'a\nb')
  await refusal(getSysctl(SYSCTL.ipForward, { root: '' }), 'options.root', '')
  t.throws(() => SYSCTL.arpIgnore('eth0/1'), { name: 'ValidationError', field: 'iface' })
  t.throws(() => SYSCTL.arpAnnounce('x'.repeat(16)), { name: 'ValidationError', field: 'iface' })
  t.match(await outcome(setSysctl('net.ipv4.conf.all.arp_ignore', 8, at)), { value: undefined }, 'the range applies to the key however it is spelt: 8 is fine')
  t.match(await outcome(setSysctl('net.ipv4.conf.all.arp_ignore', 9, at)), { field: 'value', value: 9 }, 'and 9 is not, dotted')
})
