// The ipset and iptables-legacy features the proxy relies on, checked with the
// standard tools. Named *.host.ktest.ts, so test/kernel.test.ts runs it both in
// the box and on the host (the host kernel has ipset/iptables, not IPVS), each
// time as root in a fresh network namespace.
import t from 'tap'
import { lines, run } from './support/shell.js'


t.test('a fresh network namespace: only lo, up', async (t) => {
  t.same(lines(run('ip', '-o', 'link', 'show')).map((l) => l.split(': ')[1]), ['lo'])
  t.match(run('ip', '-o', 'addr', 'show', 'dev', 'lo'), /inet 127\.0\.0\.1\/8/)
  t.equal(run('ipset', 'list', '-n'), '', 'no ipsets yet')
})

t.test('every ipset type the proxy uses', async (t) => {
  const sets: [string, string, string][] = [
    ['T-IP', 'hash:ip', '10.0.0.1'],
    ['T-IPPORT', 'hash:ip,port', '10.0.0.1,tcp:80'],
    ['T-IPPORTIP', 'hash:ip,port,ip', '10.0.0.1,tcp:80,10.0.0.1'],
    ['T-IPPORTNET', 'hash:ip,port,net', '10.0.0.1,udp:53,10.0.0.0/24'],
    ['T-NET', 'hash:net', '10.0.0.0/24'],
    ['T-PORT', 'bitmap:port range 0-65535', '30000'],
  ]
  for (const [name, type, member] of sets) {
    run('ipset', 'create', name, ...type.split(' '))
    run('ipset', 'add', name, member)
    t.doesNotThrow(() => run('ipset', 'test', name, member), `${type}: ${member} is a member`)
  }
  run('ipset', 'create', 'T-LIST', 'list:set')
  run('ipset', 'add', 'T-LIST', 'T-IP')
  t.match(run('ipset', 'save', 'T-LIST'), /^add T-LIST T-IP$/m, 'list:set holds a set')
  run('ipset', 'destroy', 'T-LIST') // first: it holds a reference to T-IP
  run('ipset', 'destroy')
  t.equal(run('ipset', 'list', '-n'), '', 'all destroyed')
})

t.test('iptables-legacy nat chains with the matches the proxy uses', async (t) => {
  run('ipset', 'create', 'T-LOOP', 'hash:ip,port,ip')
  const ipt = (...a: string[]): string => run('iptables-legacy', '-w', '-t', 'nat', ...a)
  ipt('-N', 'T-SVC')
  ipt('-A', 'T-SVC', '-m', 'comment', '--comment', 'hairpin', '-m', 'set', '--match-set', 'T-LOOP',
    'dst,dst,src', '-j', 'MASQUERADE')
  ipt('-A', 'T-SVC', '-m', 'statistic', '--mode', 'random', '--probability', '0.5', '-j', 'RETURN')
  const saved = lines(run('iptables-legacy-save', '-t', 'nat'))
  t.ok(saved.includes(':T-SVC - [0:0]'), 'chain listed')
  t.ok(saved.includes('-A T-SVC -m comment --comment hairpin -m set --match-set T-LOOP dst,dst,src -j MASQUERADE'),
    'set match rule reads back')
  t.ok(saved.some((l) => /^-A T-SVC -m statistic --mode random --probability 0\.5\d* -j RETURN$/.test(l)),
    'statistic rule reads back')
  ipt('-F', 'T-SVC')
  ipt('-X', 'T-SVC')
  run('ipset', 'destroy', 'T-LOOP')
})
