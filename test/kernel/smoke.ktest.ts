// Sanity of the kernel test bed itself: runs inside the box (test/kernel.test.ts),
// as root, in a network namespace of its own. If this fails, every other kernel
// test result is suspect.
import t from 'tap'
import { readFileSync, readlinkSync } from 'node:fs'
import { lines, run } from './support/shell.js'


t.test('runs as root', async (t) => {
  t.equal(process.getuid?.(), 0)
})

t.test('has a network namespace of its own, with only lo, up', async (t) => {
  t.not(readlinkSync('/proc/self/ns/net'), readlinkSync('/proc/1/ns/net'), 'not the init netns')
  const links = lines(run('ip', '-o', 'link', 'show')).map((l) => l.split(': ')[1])
  t.same(links, ['lo'])
  t.match(run('ip', '-o', 'addr', 'show', 'dev', 'lo'), /inet 127\.0\.0\.1\/8/, 'lo is up')
})

t.test('IPVS works, and its table is per netns', async (t) => {
  t.equal(run('ipvsadm', '-Sn'), '', 'starts empty')
  run('ipvsadm', '-A', '-t', '10.0.0.1:80', '-s', 'rr')
  t.same(lines(run('ipvsadm', '-Sn')), ['-A -t 10.0.0.1:80 -s rr'])
  run('ipvsadm', '-C')
  t.equal(run('ipvsadm', '-Sn'), '', 'empty after -C')
})

t.test('ipset works', async (t) => {
  run('ipset', 'create', 'x', 'hash:ip')
  run('ipset', 'add', 'x', '10.0.0.1')
  t.match(run('ipset', 'save'), /^create x hash:ip family inet .*\nadd x 10\.0\.0\.1$/m)
  t.doesNotThrow(() => run('ipset', 'test', 'x', '10.0.0.1'), 'member found')
  t.throws(() => run('ipset', 'test', 'x', '10.0.0.2'), 'non-member not found')
  run('ipset', 'destroy', 'x')
})

t.test('iptables-legacy works', async (t) => {
  run('iptables-legacy', '-t', 'nat', '-N', 'X')
  t.ok(lines(run('iptables-legacy-save', '-t', 'nat')).includes(':X - [0:0]'), 'chain X listed')
  run('iptables-legacy', '-t', 'nat', '-X', 'X')
  t.notOk(lines(run('iptables-legacy-save', '-t', 'nat')).includes(':X - [0:0]'), 'chain X gone')
})

// Every module is loaded at boot (box.mjs); an autoload attempt could only
// fork a modprobe that finds nothing, ~50 ms each, and every IPv4 iptables
// sockopt makes one (for "bpfilter").
t.test('module autoloading is off', async (t) => {
  t.equal(readFileSync('/proc/sys/kernel/modprobe', 'utf8').trim(), '', 'kernel.modprobe is empty')
})
