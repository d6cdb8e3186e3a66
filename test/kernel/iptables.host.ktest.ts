// iptables (legacy x_tables through libiptc) against real kernels: the host's,
// in a fresh network namespace, and the UML box's 6.1. iptables-legacy and
// iptables-legacy-save are the oracle both ways: a rule written through our API
// is printed by iptables-legacy-save exactly as the same rule written with
// iptables-legacy, and a rule the CLI wrote reads back through our API as the
// equal typed record.
import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { connect, createServer } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import {
  Iptables,
  IptablesTransaction,
  ValidationError,
  type IptablesTable,
  type Rule,
  type RuleRecord,
} from '../../dist/index.js'
import { rejects } from './support/assert.js'
import { chainRules, cliTry, type Fam, ipt, prob, resetAll, restore, restoreLine, rulesOf, run, saved } from './support/iptables.js'

// A lock file of our own: on the host, /run/xtables.lock is shared with every
// other network namespace, and another process taking it would (rightly) make
// our snapshots stale. The library and iptables both honour XTABLES_LOCKFILE;
// set before the first use (native code reads it once), inherited by the CLI.
// In /run: the box's own tmpfs there (its /tmp is the host's, over hostfs).
const LOCK = (process.env.XTABLES_LOCKFILE = `/run/tsproxy-ktest-xtables-${process.pid}.lock`)
t.teardown(() => rmSync(LOCK, { force: true }))

const ipt4 = await Iptables.open()
const ipt6 = await Iptables.open({ family: 'inet6' })
const api = (f: Fam): Iptables => (f === 'inet' ? ipt4 : ipt6)

t.beforeEach(() => {
  resetAll()
})

const strip = (r: RuleRecord): Rule => {
  const { counters: _c, ...rest } = r
  return rest
}

function refused(t: Test, fn: () => unknown, field: string): ValidationError | undefined {
  try {
    fn()
  } catch (e) {
    t.ok(e instanceof ValidationError, `a ValidationError (${(e as Error).message})`)
    t.equal((e as ValidationError).field, field, `names ${field}`)
    return e as ValidationError
  }
  t.fail(`no error, ValidationError on ${field} expected`)
  return undefined
}

/** [iptables arguments, our rule, the record it reads back as (default: the rule)] */
type Case = [string[], Rule, Rule?]

/**
 * Every case both ways: the CLI appends its words to chain CLI, we append the
 * typed rule to chain OURS (one transaction); iptables-legacy-save prints both
 * chains' rules identically, and both read back as the expected record.
 * The CLI's commands go through one iptables-legacy-restore (the parser of
 * iptables-legacy, one process instead of one per rule: in the box each
 * process costs 50-100 ms); the other tests use iptables-legacy itself.
 */
async function bothWays(t: Test, table: IptablesTable, cases: Case[], family: Fam = 'inet', setup: string[][] = []): Promise<void> {
  restore(table, [['-N', 'CLI'], ['-N', 'T2'], ...setup, ...cases.map(([args]) => ['-A', 'CLI', ...args])].map(restoreLine), family)
  const tx = api(family).begin(table)
  tx.createChain('OURS')
  for (const [, rule] of cases) tx.appendRule('OURS', rule)
  await tx.commit()
  const lines = saved(table, family)
  const theirs = rulesOf(lines, 'CLI')
  const ours = rulesOf(lines, 'OURS')
  t.equal(theirs.length, cases.length, `${cases.length} rules of the CLI in save`)
  t.equal(ours.length, cases.length, `${cases.length} rules of ours in ${family === 'inet' ? 'iptables' : 'ip6tables'}-legacy-save`)
  cases.forEach(([args], i) => t.equal(ours[i], theirs[i], `save prints ours as the CLI's: ${args.join(' ')}`))
  const readCli = (await api(family).listRules(table, 'CLI')).map(strip)
  const readOurs = (await api(family).listRules(table, 'OURS')).map(strip)
  cases.forEach(([args, rule, want], i) => {
    t.same(readCli[i], want ?? rule, `the CLI's rule reads back as the record: ${args.join(' ')}`)
    t.same(readOurs[i], want ?? rule, `ours reads back as the record: ${args.join(' ')}`)
  })
}

// ---- tables and chains ------------------------------------------------------------------------

t.test('a fresh table lists its built-in chains and policies as iptables-legacy-save does', async (t) => {
  for (const table of ['nat', 'filter', 'mangle', 'raw'] as const) {
    const chains = await ipt4.listChains(table)
    const lines = saved(table).filter((l) => l.startsWith(':'))
    t.same(chains.map((c) => `:${c.name} ${c.policy} [${c.counters!.packets}:${c.counters!.bytes}]`), lines, `${table}: chains and policies`)
    t.ok(chains.every((c) => c.builtin && c.rules === 0 && c.references === 0), `${table}: built-in, empty`)
  }
})

t.test('createChain and the CLI see each other; references and rule counts', async (t) => {
  ipt('nat', '-N', 'THEIRS')
  const tx = ipt4.begin('nat')
  tx.createChain('KUBE-SERVICES')
  tx.appendRule('OUTPUT', { target: { jump: 'KUBE-SERVICES' } })
  tx.appendRule('PREROUTING', { target: { jump: 'KUBE-SERVICES' } })
  tx.appendRule('KUBE-SERVICES', { target: { jump: 'THEIRS' } })
  await tx.commit()
  const lines = saved('nat')
  t.ok(lines.includes(':KUBE-SERVICES - [0:0]'), 'our chain in save')
  t.ok(lines.includes('-A PREROUTING -j KUBE-SERVICES') && lines.includes('-A OUTPUT -j KUBE-SERVICES'), 'our jumps in save')
  const chains = await ipt4.listChains('nat')
  t.match(chains.find((c) => c.name === 'KUBE-SERVICES'), { builtin: false, references: 2, rules: 1 })
  t.match(chains.find((c) => c.name === 'THEIRS'), { builtin: false, references: 1, rules: 0 })
  t.notOk('policy' in chains.find((c) => c.name === 'THEIRS')!, 'user chains have no policy')
})

t.test('renameChain, flushChain and deleteChain read back in save', async (t) => {
  ipt('filter', '-N', 'OLD')
  ipt('filter', '-A', 'OLD', '-j', 'ACCEPT')
  ipt('filter', '-N', 'GONE')
  ipt('filter', '-A', 'GONE', '-j', 'DROP')
  const tx = ipt4.begin('filter')
  tx.renameChain('OLD', 'NEW')
  tx.flushChain('GONE')
  tx.deleteChain('GONE')
  await tx.commit()
  const lines = saved('filter')
  t.ok(lines.includes(':NEW - [0:0]') && lines.includes('-A NEW -j ACCEPT'), 'renamed with its rule')
  t.notOk(lines.some((l) => l.includes('OLD') || l.includes('GONE')), 'old name and deleted chain gone')
})

t.test('setPolicy reads back in save; a policy the CLI set reads back through us', async (t) => {
  const tx = ipt4.begin('filter')
  tx.setPolicy('FORWARD', 'DROP')
  await tx.commit()
  t.ok(saved('filter').includes(':FORWARD DROP [0:0]'), 'FORWARD DROP in save')
  ipt('filter', '-P', 'INPUT', 'DROP')
  ipt('filter', '-P', 'FORWARD', 'ACCEPT')
  const chains = await ipt4.listChains('filter')
  t.same(chains.map((c) => [c.name, c.policy]), [['INPUT', 'DROP'], ['FORWARD', 'ACCEPT'], ['OUTPUT', 'ACCEPT']])
})

t.test('rule and policy counters equal iptables-legacy-save -c; zeroCounters zeroes them', async (t) => {
  ipt('filter', '-A', 'OUTPUT', '-o', 'lo', '-p', 'tcp', '-j', 'ACCEPT')
  const server = createServer((s) => s.end('hi'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const c = connect(port, '127.0.0.1', () => c.end())
      c.resume()
      c.on('close', () => resolve())
      c.on('error', reject)
    })
  }
  server.close()
  const [rule] = await ipt4.listRules('filter', 'OUTPUT')
  t.ok(rule!.counters.packets >= 6, `packets counted (${rule!.counters.packets})`)
  const line = saved('filter', 'inet', true).find((l) => l.includes('-A OUTPUT'))!
  t.equal(line, `[${rule!.counters.packets}:${rule!.counters.bytes}] -A OUTPUT -o lo -p tcp -j ACCEPT`, 'the same counters in save -c')
  const chains = await ipt4.listChains('filter')
  const input = saved('filter', 'inet', true).find((l) => l.startsWith(':INPUT'))!
  const c = chains.find((x) => x.name === 'INPUT')!.counters!
  t.equal(input, `:INPUT ACCEPT [${c.packets}:${c.bytes}]`, 'policy counters as save -c')
  t.ok(c.packets > 0, 'INPUT policy counted the loopback traffic')
  const tx = ipt4.begin('filter')
  tx.zeroCounters('OUTPUT')
  await tx.commit()
  t.same((await ipt4.listRules('filter', 'OUTPUT'))[0]!.counters, { packets: 0, bytes: 0 }, 'zeroed')
})

t.test('commit keeps the counters of rules it did not touch', async (t) => {
  ipt('filter', '-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT', '-c', '7', '700')
  const tx = ipt4.begin('filter')
  tx.appendRule('OUTPUT', { target: { target: 'ACCEPT' } })
  await tx.commit()
  const rules = await ipt4.listRules('filter', 'OUTPUT')
  t.same(rules[0]!.counters, { packets: 7, bytes: 700 }, 'the old rule keeps its counters')
  t.same(rules[1]!.counters, { packets: 0, bytes: 0 }, 'the new one starts at zero')
})

// ---- every match and target, both ways --------------------------------------------------------

t.test('rule header: addresses, networks, interfaces, protocol, each negated', async (t) => {
  await bothWays(t, 'filter', [
    [['-s', '10.0.0.0/8', '-d', '10.1.2.3/32'], { source: '10.0.0.0/8', destination: '10.1.2.3/32' }],
    [['!', '-s', '192.168.0.0/16', '!', '-d', '10.96.0.0/12'], { source: { not: '192.168.0.0/16' }, destination: { not: '10.96.0.0/12' } }],
    [['-s', '10.1.2.3'], { source: '10.1.2.3' }, { source: '10.1.2.3/32' }],
    [['-i', 'eth0', '-o', 'veth+'], { inInterface: 'eth0', outInterface: 'veth+' }],
    [['!', '-i', 'lo', '!', '-o', 'docker0'], { inInterface: { not: 'lo' }, outInterface: { not: 'docker0' } }],
    [['-p', 'udp'], { protocol: 'udp' }],
    [['!', '-p', 'tcp'], { protocol: { not: 'tcp' } }],
    [['-p', 'sctp'], { protocol: 'sctp' }],
    [['-p', '47'], { protocol: 47 }, { protocol: 'gre' }],
    [['-f'], { fragment: true }],
    [['!', '-f', '-s', '10.0.0.0/24'], { source: '10.0.0.0/24', fragment: { not: true } }],
  ], 'inet', [['-N', 'X']])
})

t.test('a network with host bits is stored masked, as iptables stores it', async (t) => {
  await bothWays(t, 'filter', [[['-s', '10.1.2.3/8'], { source: '10.1.2.3/8' }, { source: '10.0.0.0/8' }]])
})

t.test('comment: spaces, quotes, UTF-8 and the 255-byte maximum', async (t) => {
  const long = 'x'.repeat(255)
  await bothWays(t, 'nat', [
    [['-m', 'comment', '--comment', 'kubernetes service portals', '-j', 'RETURN'], { matches: [{ match: 'comment', comment: 'kubernetes service portals' }], target: { target: 'RETURN' } }],
    [['-m', 'comment', '--comment', 'default/nginx-basic:http -> 192.168.0.7:80'], { matches: [{ match: 'comment', comment: 'default/nginx-basic:http -> 192.168.0.7:80' }] }],
    [['-m', 'comment', '--comment', 'say "hi"'], { matches: [{ match: 'comment', comment: 'say "hi"' }] }],
    [['-m', 'comment', '--comment', 'naïve café'], { matches: [{ match: 'comment', comment: 'naïve café' }] }],
    [['-m', 'comment', '--comment', long], { matches: [{ match: 'comment', comment: long }] }],
  ])
})

t.test('tcp: ports, ranges, negation, flags (--syn)', async (t) => {
  await bothWays(t, 'filter', [
    [['-p', 'tcp', '-m', 'tcp', '--dport', '80'], { protocol: 'tcp', matches: [{ match: 'tcp', dport: 80 }] }],
    [['-p', 'tcp', '-m', 'tcp', '--sport', '1024:65535', '!', '--dport', '22'], { protocol: 'tcp', matches: [{ match: 'tcp', sport: [1024, 65535], dport: { not: 22 } }] }],
    [['-p', 'tcp', '-m', 'tcp', '!', '--sport', '10:20'], { protocol: 'tcp', matches: [{ match: 'tcp', sport: { not: [10, 20] } }] }],
    [['-p', 'tcp', '-m', 'tcp'], { protocol: 'tcp', matches: [{ match: 'tcp' }] }],
    [['-p', 'tcp', '-m', 'tcp', '--syn'], { protocol: 'tcp', matches: [{ match: 'tcp', tcpFlags: { mask: ['FIN', 'SYN', 'RST', 'ACK'], set: ['SYN'] } }] }],
    [['-p', 'tcp', '-m', 'tcp', '!', '--tcp-flags', 'SYN,ACK', 'ACK'], { protocol: 'tcp', matches: [{ match: 'tcp', tcpFlags: { not: { mask: ['SYN', 'ACK'], set: ['ACK'] } } }] }],
  ])
})

t.test('udp: ports, ranges, negation', async (t) => {
  await bothWays(t, 'nat', [
    [['-p', 'udp', '-m', 'udp', '--dport', '53'], { protocol: 'udp', matches: [{ match: 'udp', dport: 53 }] }],
    [['-p', 'udp', '-m', 'udp', '--sport', '30000:32767', '!', '--dport', '53'], { protocol: 'udp', matches: [{ match: 'udp', sport: [30000, 32767], dport: { not: 53 } }] }],
    [['-p', 'udp', '-m', 'udp'], { protocol: 'udp', matches: [{ match: 'udp' }] }],
  ])
})

t.test('sctp: ports, ranges, negation; written byte for byte as the CLI writes it; chunk types read back raw', async (t) => {
  const cases: Case[] = [
    [['-p', 'sctp', '-m', 'sctp', '--dport', '9'], { protocol: 'sctp', matches: [{ match: 'sctp', dport: 9 }] }],
    [['-p', 'sctp', '-m', 'sctp', '--sport', '1000:2000', '!', '--dport', '9'], { protocol: 'sctp', matches: [{ match: 'sctp', sport: [1000, 2000], dport: { not: 9 } }] }],
    [['-p', 'sctp', '-m', 'sctp', '!', '--sport', '7'], { protocol: 'sctp', matches: [{ match: 'sctp', sport: { not: 7 } }] }],
    [['-p', 'sctp', '-m', 'sctp'], { protocol: 'sctp', matches: [{ match: 'sctp' }] }],
  ]
  await bothWays(t, 'nat', cases)
  // libiptc deletes by comparing the bytes (up to userspacesize): each record finds the CLI's rule.
  const tx = ipt4.begin('nat')
  for (const [, rule] of [...cases].reverse()) tx.deleteRule('CLI', rule)
  await tx.commit()
  t.same(await ipt4.listRules('nat', 'CLI'), [], 'every CLI rule deleted through its record')
  ipt('nat', '-A', 'CLI', '-p', 'sctp', '-m', 'sctp', '--dport', '9', '--chunk-types', 'any', 'INIT')
  t.match((await ipt4.listRules('nat', 'CLI'))[0]!.matches, [{ match: 'raw', name: 'sctp' }], '--chunk-types: raw')
  t.throws(() => ipt4.begin('nat').appendRule('CLI', { protocol: 'tcp', matches: [{ match: 'sctp', dport: 9 }] }), { message: /protocol to be sctp/ }, 'needs -p sctp')
})

t.test('multiport: dports, sports, ports, ranges, negation, fifteen ports', async (t) => {
  const fifteen = Array.from({ length: 15 }, (_, i) => 1000 + i)
  await bothWays(t, 'filter', [
    [['-p', 'tcp', '-m', 'multiport', '--dports', '80,443,8000:8080'], { protocol: 'tcp', matches: [{ match: 'multiport', dports: [80, 443, [8000, 8080]] }] }],
    [['-p', 'udp', '-m', 'multiport', '!', '--sports', '53,123'], { protocol: 'udp', matches: [{ match: 'multiport', sports: { not: [53, 123] } }] }],
    [['-p', 'tcp', '-m', 'multiport', '--ports', '22'], { protocol: 'tcp', matches: [{ match: 'multiport', ports: [22] }] }],
    [['-p', 'tcp', '-m', 'multiport', '--dports', fifteen.join(',')], { protocol: 'tcp', matches: [{ match: 'multiport', dports: fifteen }] }],
  ])
})

t.test('statistic random: the probabilities kube-proxy writes, and negation', async (t) => {
  const cases: Case[] = [0.33333333349, 0.5, 0.25, 0.1, 0.00001, 1].map((p) => [
    ['-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'T2'],
    { matches: [{ match: 'statistic', mode: 'random', probability: p }], target: { jump: 'T2' } },
    { matches: [{ match: 'statistic', mode: 'random', probability: prob(p) }], target: { jump: 'T2' } },
  ])
  cases.push([['-m', 'statistic', '--mode', 'random', '!', '--probability', '0.5'], { matches: [{ match: 'statistic', mode: 'random', probability: { not: 0.5 } }] }])
  await bothWays(t, 'nat', cases)
  t.ok(chainRules('nat', 'OURS')[0]!.includes('--probability 0.33333333349'), 'printed with the 11 digits kube-proxy uses')
})

t.test('statistic nth: every and packet', async (t) => {
  await bothWays(t, 'nat', [
    [['-m', 'statistic', '--mode', 'nth', '--every', '3', '--packet', '1', '-j', 'T2'], { matches: [{ match: 'statistic', mode: 'nth', every: 3, packet: 1 }], target: { jump: 'T2' } }],
    [['-m', 'statistic', '--mode', 'nth', '--every', '2', '--packet', '0'], { matches: [{ match: 'statistic', mode: 'nth', every: 2 }] }],
    [['-m', 'statistic', '--mode', 'nth', '!', '--every', '5', '--packet', '4'], { matches: [{ match: 'statistic', mode: 'nth', every: { not: 5 }, packet: 4 }] }],
  ])
})

t.test('set: --match-set with one to three directions, negation, return-nomatch', async (t) => {
  run('ipset', ['create', 'KUBE-LOOP-BACK', 'hash:ip,port,ip'])
  run('ipset', ['create', 'KUBE-CLUSTER-IP', 'hash:ip,port'])
  run('ipset', ['create', 'KUBE-NODE-IP', 'hash:ip'])
  try {
    await bothWays(t, 'nat', [
      [['-m', 'set', '--match-set', 'KUBE-LOOP-BACK', 'dst,dst,src', '-j', 'MASQUERADE'], { matches: [{ match: 'set', matchSet: 'KUBE-LOOP-BACK', flags: ['dst', 'dst', 'src'] }], target: { target: 'MASQUERADE' } }],
      [['-m', 'set', '--match-set', 'KUBE-CLUSTER-IP', 'dst,dst', '-j', 'ACCEPT'], { matches: [{ match: 'set', matchSet: 'KUBE-CLUSTER-IP', flags: ['dst', 'dst'] }], target: { target: 'ACCEPT' } }],
      [['-m', 'set', '!', '--match-set', 'KUBE-NODE-IP', 'src'], { matches: [{ match: 'set', matchSet: { not: 'KUBE-NODE-IP' }, flags: ['src'] }] }],
      [['-m', 'set', '--match-set', 'KUBE-NODE-IP', 'dst', '--return-nomatch'], { matches: [{ match: 'set', matchSet: 'KUBE-NODE-IP', flags: ['dst'], returnNomatch: true }] }],
    ])
  } finally {
    resetAll()
    run('ipset', ['destroy'])
  }
})

t.test('set: a missing ipset fails the edit (ENOENT, its index), nothing committed', async (t) => {
  const before = saved('nat')
  const tx = ipt4.begin('nat')
  tx.createChain('KEEP-OUT')
  const i = tx.appendRule('KEEP-OUT', { matches: [{ match: 'set', matchSet: 'NO-SUCH-SET', flags: ['dst'] }] })
  const e = await rejects(t, tx.commit(), { errno: 2, code: 'ENOENT', op: 'iptables.appendRule', index: i })
  t.match(e?.message, /NO-SUCH-SET/, 'names the set')
  t.same(saved('nat'), before, 'the table is as it was')
})

t.test('mark: value, value/mask, negation', async (t) => {
  await bothWays(t, 'nat', [
    [['-m', 'mark', '--mark', '0x1'], { matches: [{ match: 'mark', mark: 1 }] }],
    [['-m', 'mark', '!', '--mark', '0x4000/0x4000', '-j', 'RETURN'], { matches: [{ match: 'mark', mark: { not: 0x4000 }, mask: 0x4000 }], target: { target: 'RETURN' } }],
    [['-m', 'mark', '--mark', '0x0/0xffff0000'], { matches: [{ match: 'mark', mark: 0, mask: 0xffff0000 }] }],
  ])
})

t.test('addrtype: src and dst types, lists, negation, limit-iface-in / -out', async (t) => {
  await bothWays(t, 'nat', [
    [['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'T2'], { matches: [{ match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'T2' } }],
    [['-m', 'addrtype', '!', '--src-type', 'LOCAL', '--limit-iface-in'], { matches: [{ match: 'addrtype', srcType: { not: 'LOCAL' }, limitIfaceIn: true }] }],
    [['-m', 'addrtype', '--src-type', 'LOCAL', '--dst-type', 'UNICAST,BROADCAST', '--limit-iface-out'], { matches: [{ match: 'addrtype', srcType: 'LOCAL', dstType: ['UNICAST', 'BROADCAST'], limitIfaceOut: true }] }],
  ])
})

t.test('conntrack: ctstate, ctstatus, ctproto, ctdir, ctexpire', async (t) => {
  await bothWays(t, 'filter', [
    [['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'], { matches: [{ match: 'conntrack', ctstate: ['ESTABLISHED', 'RELATED'] }], target: { target: 'ACCEPT' } }],
    [['-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'], { matches: [{ match: 'conntrack', ctstate: ['INVALID'] }], target: { target: 'DROP' } }],
    [['-m', 'conntrack', '!', '--ctstate', 'NEW,DNAT,UNTRACKED'], { matches: [{ match: 'conntrack', ctstate: { not: ['NEW', 'DNAT', 'UNTRACKED'] } }] }],
    [['-m', 'conntrack', '--ctstatus', 'ASSURED,CONFIRMED', '--ctproto', 'tcp'], { matches: [{ match: 'conntrack', ctproto: 'tcp', ctstatus: ['ASSURED', 'CONFIRMED'] }] }],
    [['-m', 'conntrack', '--ctdir', 'REPLY', '!', '--ctexpire', '10:60'], { matches: [{ match: 'conntrack', ctexpire: { not: [10, 60] }, ctdir: 'REPLY' }] }],
  ])
})

t.test('conntrack: original and reply addresses, networks and ports', async (t) => {
  await bothWays(t, 'filter', [
    [['-m', 'conntrack', '--ctorigdst', '10.96.0.1', '--ctorigdstport', '443'], { matches: [{ match: 'conntrack', ctorigdst: '10.96.0.1', ctorigdstport: 443 }] }],
    [['-m', 'conntrack', '!', '--ctorigsrc', '10.244.0.0/16', '--ctreplsrcport', '8000:8080'], { matches: [{ match: 'conntrack', ctorigsrc: { not: '10.244.0.0/16' }, ctreplsrcport: [8000, 8080] }] }],
    [['-m', 'conntrack', '--ctreplsrc', '10.0.0.5', '--ctrepldst', '192.168.1.0/24', '!', '--ctrepldstport', '53'], { matches: [{ match: 'conntrack', ctreplsrc: '10.0.0.5', ctrepldst: '192.168.1.0/24', ctrepldstport: { not: 53 } }] }],
  ])
})

t.test('recent: set, rcheck, update, remove; names, seconds, hitcount, reap, rttl, rdest, mask', async (t) => {
  await bothWays(t, 'filter', [
    [['-m', 'recent', '--set', '--name', 'KUBE'], { matches: [{ match: 'recent', command: 'set', name: 'KUBE' }] }],
    [['-m', 'recent', '--rcheck', '--seconds', '10', '--reap', '--name', 'KUBE'], { matches: [{ match: 'recent', command: 'rcheck', name: 'KUBE', seconds: 10, reap: true }] }],
    [['-m', 'recent', '!', '--update', '--seconds', '60', '--hitcount', '4', '--rttl', '--name', 'SSH-ATTEMPTS'], { matches: [{ match: 'recent', command: { not: 'update' }, name: 'SSH-ATTEMPTS', seconds: 60, hitcount: 4, rttl: true }] }],
    [['-m', 'recent', '--remove', '--rdest'], { matches: [{ match: 'recent', command: 'remove', side: 'dest' }] }],
    [['-m', 'recent', '--set', '--name', 'N', '--mask', '255.255.255.0'], { matches: [{ match: 'recent', command: 'set', name: 'N', mask: '255.255.255.0' }] }],
  ])
})

t.test('physdev: in/out names with wildcards, is-in, is-out, is-bridged, negation', async (t) => {
  await bothWays(t, 'filter', [
    [['-m', 'physdev', '--physdev-in', 'veth1', '--physdev-is-bridged'], { matches: [{ match: 'physdev', physdevIn: 'veth1', physdevIsBridged: true }] }],
    [['-m', 'physdev', '!', '--physdev-out', 'veth+', '--physdev-is-out'], { matches: [{ match: 'physdev', physdevOut: { not: 'veth+' }, physdevIsOut: true }] }],
    [['-m', 'physdev', '!', '--physdev-is-in', '!', '--physdev-is-bridged'], { matches: [{ match: 'physdev', physdevIsIn: { not: true }, physdevIsBridged: { not: true } }] }],
  ])
})

t.test('several matches keep their order', async (t) => {
  await bothWays(t, 'nat', [
    [['-d', '10.96.0.10/32', '-p', 'tcp', '-m', 'comment', '--comment', 'kube-system/kube-dns:dns-tcp cluster IP', '-m', 'tcp', '--dport', '53', '-j', 'T2'],
      { destination: '10.96.0.10/32', protocol: 'tcp', matches: [{ match: 'comment', comment: 'kube-system/kube-dns:dns-tcp cluster IP' }, { match: 'tcp', dport: 53 }], target: { jump: 'T2' } }],
    [['-p', 'tcp', '-m', 'tcp', '--dport', '53', '-m', 'comment', '--comment', 'after', '-m', 'mark', '--mark', '0x2'],
      { protocol: 'tcp', matches: [{ match: 'tcp', dport: 53 }, { match: 'comment', comment: 'after' }, { match: 'mark', mark: 2 }] }],
  ])
})

t.test('targets: jump, goto, ACCEPT, DROP, RETURN, none', async (t) => {
  await bothWays(t, 'filter', [
    [['-j', 'T2'], { target: { jump: 'T2' } }],
    [['-g', 'T2'], { target: { goto: 'T2' } }],
    [['-j', 'ACCEPT'], { target: { target: 'ACCEPT' } }],
    [['-j', 'DROP'], { target: { target: 'DROP' } }],
    [['-j', 'RETURN'], { target: { target: 'RETURN' } }],
    [['-s', '10.0.0.1/32'], { source: '10.0.0.1/32' }],
  ])
})

t.test('REJECT: every IPv4 type and the default', async (t) => {
  const types = ['icmp-net-unreachable', 'icmp-host-unreachable', 'icmp-proto-unreachable', 'icmp-net-prohibited', 'icmp-host-prohibited', 'icmp-admin-prohibited'] as const
  await bothWays(t, 'filter', [
    [['-j', 'REJECT'], { target: { target: 'REJECT' } }],
    [['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'], { target: { target: 'REJECT', rejectWith: 'icmp-port-unreachable' } }, { target: { target: 'REJECT' } }],
    ...types.map((w): Case => [['-j', 'REJECT', '--reject-with', w], { target: { target: 'REJECT', rejectWith: w } }]),
    [['-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'], { protocol: 'tcp', target: { target: 'REJECT', rejectWith: 'tcp-reset' } }],
  ])
})

t.test('DNAT: address, address:port, ranges, random, persistent', async (t) => {
  await bothWays(t, 'nat', [
    [['-p', 'tcp', '-m', 'tcp', '-j', 'DNAT', '--to-destination', '192.168.0.7:80'], { protocol: 'tcp', matches: [{ match: 'tcp' }], target: { target: 'DNAT', toDestination: '192.168.0.7:80' } }],
    [['-j', 'DNAT', '--to-destination', '10.0.0.1'], { target: { target: 'DNAT', toDestination: '10.0.0.1' } }],
    [['-j', 'DNAT', '--to-destination', '10.0.0.1-10.0.0.5'], { target: { target: 'DNAT', toDestination: '10.0.0.1-10.0.0.5' } }],
    [['-p', 'udp', '-j', 'DNAT', '--to-destination', '10.0.0.1-10.0.0.5:5000-5010', '--random', '--persistent'], { protocol: 'udp', target: { target: 'DNAT', toDestination: '10.0.0.1-10.0.0.5:5000-5010', random: true, persistent: true } }],
    [['-p', 'tcp', '-j', 'DNAT', '--to-destination', ':8080'], { protocol: 'tcp', target: { target: 'DNAT', toDestination: ':8080' } }],
  ])
})

t.test('SNAT: address, port ranges, random, random-fully, persistent', async (t) => {
  await bothWays(t, 'nat', [
    [['-j', 'SNAT', '--to-source', '1.2.3.4'], { target: { target: 'SNAT', toSource: '1.2.3.4' } }],
    [['-j', 'SNAT', '--to-source', '1.2.3.4-1.2.3.10', '--random-fully'], { target: { target: 'SNAT', toSource: '1.2.3.4-1.2.3.10', randomFully: true } }],
    [['-p', 'tcp', '-j', 'SNAT', '--to-source', '1.2.3.4:1024-2048', '--random', '--persistent'], { protocol: 'tcp', target: { target: 'SNAT', toSource: '1.2.3.4:1024-2048', random: true, persistent: true } }],
  ])
})

t.test('MASQUERADE: plain, random-fully, to-ports, random', async (t) => {
  await bothWays(t, 'nat', [
    [['-j', 'MASQUERADE'], { target: { target: 'MASQUERADE' } }],
    [['-s', '192.168.0.0/16', '!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE', '--random-fully'], { source: '192.168.0.0/16', destination: { not: '224.0.0.0/4' }, target: { target: 'MASQUERADE', randomFully: true } }],
    [['-p', 'tcp', '-j', 'MASQUERADE', '--to-ports', '1024-2048', '--random'], { protocol: 'tcp', target: { target: 'MASQUERADE', toPorts: [1024, 2048], random: true } }],
    [['-p', 'udp', '-j', 'MASQUERADE', '--to-ports', '5000'], { protocol: 'udp', target: { target: 'MASQUERADE', toPorts: 5000 } }],
  ])
})

t.test('MARK: set-xmark, set-mark, or, and, xor all read back as the set-xmark the kernel keeps', async (t) => {
  const x = (value: number, mask: number): Rule => ({ target: { target: 'MARK', op: 'set-xmark', value, mask } })
  await bothWays(t, 'nat', [
    [['-j', 'MARK', '--set-xmark', '0x4000/0x4000'], x(0x4000, 0x4000)],
    [['-j', 'MARK', '--set-xmark', '0x8000'], { target: { target: 'MARK', op: 'set-xmark', value: 0x8000 } }, x(0x8000, 0xffffffff)],
    [['-j', 'MARK', '--set-mark', '0x1/0xff'], { target: { target: 'MARK', op: 'set-mark', value: 1, mask: 0xff } }, x(1, 0xff)],
    [['-j', 'MARK', '--or-mark', '0x4000'], { target: { target: 'MARK', op: 'or', value: 0x4000 } }, x(0x4000, 0x4000)],
    [['-j', 'MARK', '--and-mark', '0xffffbfff'], { target: { target: 'MARK', op: 'and', value: 0xffffbfff } }, x(0, 0x4000)],
    [['-j', 'MARK', '--xor-mark', '0x4000'], { target: { target: 'MARK', op: 'xor', value: 0x4000 } }, x(0x4000, 0)],
  ])
})

t.test('LOG: prefix, level, flags', async (t) => {
  await bothWays(t, 'filter', [
    [['-j', 'LOG'], { target: { target: 'LOG' } }],
    [['-j', 'LOG', '--log-prefix', 'kube: ', '--log-level', '6'], { target: { target: 'LOG', prefix: 'kube: ', level: 6 } }],
    [['-j', 'LOG', '--log-tcp-sequence', '--log-tcp-options', '--log-ip-options', '--log-uid', '--log-macdecode'], { target: { target: 'LOG', tcpSequence: true, tcpOptions: true, ipOptions: true, uid: true, macDecode: true } }],
    [['-j', 'LOG', '--log-prefix', 'x'.repeat(29), '--log-level', '0'], { target: { target: 'LOG', prefix: 'x'.repeat(29), level: 0 } }],
  ])
})

t.test('extensions we do not model read back as raw and write back unchanged', async (t) => {
  ipt('mangle', '-N', 'CLI')
  ipt('mangle', '-A', 'CLI', '-m', 'connmark', '--mark', '0x1/0xff', '-j', 'CONNMARK', '--set-xmark', '0x2/0xff')
  ipt('mangle', '-A', 'CLI', '-m', 'limit', '--limit', '5/sec', '--limit-burst', '7', '-j', 'ACCEPT')
  const theirs = await ipt4.listRules('mangle', 'CLI')
  t.match(theirs[0], { matches: [{ match: 'raw', name: 'connmark' }], target: { target: 'raw', name: 'CONNMARK' } }, 'connmark and CONNMARK are raw')
  t.match(theirs[1]!.matches, [{ match: 'raw', name: 'limit' }], 'limit is raw')
  const tx = ipt4.begin('mangle')
  tx.createChain('OURS')
  for (const r of theirs) tx.appendRule('OURS', strip(r))
  await tx.commit()
  t.same(chainRules('mangle', 'OURS'), chainRules('mangle', 'CLI'), 'the raw rules print as the CLI wrote them')
})

// ---- IPv6 ------------------------------------------------------------------------------------

t.test('IPv6: header fields, negation, goto', async (t) => {
  await bothWays(t, 'filter', [
    [['-s', 'fd00::/64', '!', '-d', 'fd00::1/128', '-p', 'tcp', '-j', 'T2'], { source: 'fd00::/64', destination: { not: 'fd00::1/128' }, protocol: 'tcp', target: { jump: 'T2' } }],
    [['!', '-p', 'udp', '-i', 'eth0', '-j', 'RETURN'], { inInterface: 'eth0', protocol: { not: 'udp' }, target: { target: 'RETURN' } }],
    [['-p', 'ipv6-icmp', '-j', 'ACCEPT'], { protocol: 'icmpv6', target: { target: 'ACCEPT' } }],
    [['-g', 'T2'], { target: { goto: 'T2' } }],
  ], 'inet6')
})

t.test('IPv6: DNAT, SNAT, MASQUERADE with brackets and ranges', async (t) => {
  await bothWays(t, 'nat', [
    [['-p', 'tcp', '-j', 'DNAT', '--to-destination', '[fd00::1]:8080'], { protocol: 'tcp', target: { target: 'DNAT', toDestination: '[fd00::1]:8080' } }],
    [['-j', 'DNAT', '--to-destination', 'fd00::1-fd00::5'], { target: { target: 'DNAT', toDestination: 'fd00::1-fd00::5' } }],
    [['-p', 'tcp', '-j', 'SNAT', '--to-source', '[fd00::9]:1000-2000'], { protocol: 'tcp', target: { target: 'SNAT', toSource: '[fd00::9]:1000-2000' } }],
    [['-j', 'SNAT', '--to-source', '2001:db8::1', '--random-fully'], { target: { target: 'SNAT', toSource: '2001:db8::1', randomFully: true } }],
    [['-j', 'MASQUERADE', '--random-fully'], { target: { target: 'MASQUERADE', randomFully: true } }],
  ], 'inet6')
})

t.test('IPv6: REJECT types, conntrack networks, recent, addrtype, set', async (t) => {
  run('ipset', ['create', 'V6', 'hash:ip', 'family', 'inet6'])
  try {
    await bothWays(t, 'filter', [
      [['-j', 'REJECT'], { target: { target: 'REJECT' } }],
      [['-j', 'REJECT', '--reject-with', 'icmp6-adm-prohibited'], { target: { target: 'REJECT', rejectWith: 'icmp6-adm-prohibited' } }],
      [['-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'], { protocol: 'tcp', target: { target: 'REJECT', rejectWith: 'tcp-reset' } }],
      [['-m', 'conntrack', '--ctorigdst', 'fd00::/64', '--ctorigsrc', 'fd00::7'], { matches: [{ match: 'conntrack', ctorigsrc: 'fd00::7', ctorigdst: 'fd00::/64' }] }],
      [['-m', 'recent', '--set', '--name', 'V6', '--mask', 'ffff:ffff::'], { matches: [{ match: 'recent', command: 'set', name: 'V6', mask: 'ffff:ffff::' }] }],
      [['-m', 'addrtype', '--dst-type', 'LOCAL'], { matches: [{ match: 'addrtype', dstType: 'LOCAL' }] }],
      [['-m', 'set', '--match-set', 'V6', 'src'], { matches: [{ match: 'set', matchSet: 'V6', flags: ['src'] }] }],
    ], 'inet6')
  } finally {
    resetAll()
    run('ipset', ['destroy'])
  }
})

t.test('an IPv4 ipset in an IPv6 rule is refused (EAFNOSUPPORT), nothing committed', async (t) => {
  run('ipset', ['create', 'V4ONLY', 'hash:ip'])
  try {
    const tx = ipt6.begin('filter')
    tx.appendRule('INPUT', { matches: [{ match: 'set', matchSet: 'V4ONLY', flags: ['src'] }] })
    await rejects(t, tx.commit(), { errno: 97, op: 'iptables.appendRule', index: 0 })
    t.same(saved('filter', 'inet6').filter((l) => l.startsWith('-A')), [])
  } finally {
    run('ipset', ['destroy', 'V4ONLY'])
  }
})

// ---- rule positions: insert, replace, delete ---------------------------------------------------

t.test('insertRule, replaceRule, deleteRule by index land where the CLI puts them', async (t) => {
  const r = (n: number): Rule => ({ source: `10.0.0.${n}/32`, target: { target: 'ACCEPT' } })
  ipt('filter', '-N', 'CLI')
  for (const n of [1, 2, 3]) ipt('filter', '-A', 'CLI', '-s', `10.0.0.${n}/32`, '-j', 'ACCEPT')
  ipt('filter', '-I', 'CLI', '1', '-s', '10.0.0.9/32', '-j', 'ACCEPT')
  ipt('filter', '-I', 'CLI', '3', '-s', '10.0.0.8/32', '-j', 'ACCEPT')
  ipt('filter', '-R', 'CLI', '5', '-s', '10.0.0.7/32', '-j', 'ACCEPT')
  ipt('filter', '-D', 'CLI', '2')
  const tx = ipt4.begin('filter')
  tx.createChain('OURS')
  for (const n of [1, 2, 3]) tx.appendRule('OURS', r(n))
  tx.insertRule('OURS', r(9), 0)
  tx.insertRule('OURS', r(8), 2)
  tx.replaceRule('OURS', 4, r(7))
  tx.deleteRule('OURS', 1)
  t.same((await tx.listRules('OURS')).map((x) => x.source), ['10.0.0.9/32', '10.0.0.8/32', '10.0.0.2/32', '10.0.0.7/32'], 'the transaction sees its edits')
  await tx.commit()
  t.same(chainRules('filter', 'OURS'), chainRules('filter', 'CLI'), 'same order as the CLI made')
})

t.test('deleteRule by spec removes a rule the CLI wrote; iptables -D removes one of ours', async (t) => {
  run('ipset', ['create', 'S', 'hash:ip'])
  try {
    const rules: [string[], Rule][] = [
      [['-p', 'tcp', '-m', 'comment', '--comment', 'x', '-m', 'tcp', '--dport', '80', '-j', 'ACCEPT'], { protocol: 'tcp', matches: [{ match: 'comment', comment: 'x' }, { match: 'tcp', dport: 80 }], target: { target: 'ACCEPT' } }],
      [['-m', 'statistic', '--mode', 'nth', '--every', '4', '--packet', '0', '-j', 'RETURN'], { matches: [{ match: 'statistic', mode: 'nth', every: 4 }], target: { target: 'RETURN' } }],
      [['-m', 'set', '--match-set', 'S', 'src', '-j', 'DROP'], { matches: [{ match: 'set', matchSet: 'S', flags: ['src'] }], target: { target: 'DROP' } }],
      [['-m', 'recent', '--set', '--name', 'AB'], { matches: [{ match: 'recent', command: 'set', name: 'AB' }] }],
    ]
    ipt('filter', '-N', 'X')
    for (const [args] of rules) ipt('filter', '-A', 'X', ...args)
    const tx = ipt4.begin('filter')
    for (const [, rule] of rules) tx.deleteRule('X', rule)
    for (const [, rule] of rules) tx.appendRule('X', rule)
    await tx.commit()
    t.equal(chainRules('filter', 'X').length, rules.length, 'ours replaced theirs')
    for (const [args] of rules) ipt('filter', '-D', 'X', ...args)
    t.same(chainRules('filter', 'X'), [], 'iptables -D found every rule of ours')
  } finally {
    resetAll()
    run('ipset', ['destroy'])
  }
})

// ---- the kube-proxy layout ---------------------------------------------------------------------

t.test('the nginx-basic layout of the reference reads back line for line', async (t) => {
  const svc = 'KUBE-SVC-WWRFY3PZ7W3FGMQW'
  const seps = [['KUBE-SEP-BEMSLTMJA26ZCLYL', '192.168.0.7', 0.33333333349], ['KUBE-SEP-UF65ZV4QBOPNRP6O', '192.168.1.3', 0.5], ['KUBE-SEP-WQR67ZLSTPDXXME4', '192.168.1.4', undefined]] as const
  const name = 'default/nginx-basic:http'
  const c = (comment: string) => ({ match: 'comment' as const, comment })
  const tx = ipt4.begin('nat')
  for (const ch of ['KUBE-MARK-DROP', 'KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-SERVICES', svc, ...seps.map((s) => s[0])]) tx.createChain(ch)
  tx.appendRule('PREROUTING', { matches: [c('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } })
  tx.appendRule('OUTPUT', { matches: [c('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } })
  tx.appendRule('POSTROUTING', { matches: [c('kubernetes postrouting rules')], target: { jump: 'KUBE-POSTROUTING' } })
  tx.appendRule('KUBE-MARK-DROP', { target: { target: 'MARK', op: 'or', value: 0x8000 } })
  tx.appendRule('KUBE-MARK-MASQ', { target: { target: 'MARK', op: 'or', value: 0x4000 } })
  tx.appendRule('KUBE-POSTROUTING', { matches: [{ match: 'mark', mark: { not: 0x4000 }, mask: 0x4000 }], target: { target: 'RETURN' } })
  tx.appendRule('KUBE-POSTROUTING', { target: { target: 'MARK', op: 'xor', value: 0x4000 } })
  tx.appendRule('KUBE-POSTROUTING', { matches: [c('kubernetes service traffic requiring SNAT')], target: { target: 'MASQUERADE', randomFully: true } })
  tx.appendRule('KUBE-SERVICES', { destination: '10.105.250.129/32', protocol: 'tcp', matches: [c(`${name} cluster IP`), { match: 'tcp', dport: 80 }], target: { jump: svc } })
  tx.appendRule('KUBE-SERVICES', { matches: [c('kubernetes service nodeports; NOTE: this must be the last rule in this chain'), { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODEPORTS' } })
  tx.appendRule(svc, { source: { not: '192.168.0.0/16' }, destination: '10.105.250.129/32', protocol: 'tcp', matches: [c(`${name} cluster IP`), { match: 'tcp', dport: 80 }], target: { jump: 'KUBE-MARK-MASQ' } })
  for (const [sep, ip, p] of seps) {
    tx.appendRule(svc, { matches: [c(`${name} -> ${ip}:80`), ...(p === undefined ? [] : [{ match: 'statistic' as const, mode: 'random' as const, probability: p }])], target: { jump: sep } })
    tx.appendRule(sep, { source: `${ip}/32`, matches: [c(name)], target: { jump: 'KUBE-MARK-MASQ' } })
    tx.appendRule(sep, { protocol: 'tcp', matches: [c(name), { match: 'tcp' }], target: { target: 'DNAT', toDestination: `${ip}:80` } })
  }
  await tx.commit()
  const expected = `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-BEMSLTMJA26ZCLYL -s 192.168.0.7/32 -m comment --comment "default/nginx-basic:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-BEMSLTMJA26ZCLYL -p tcp -m comment --comment "default/nginx-basic:http" -m tcp -j DNAT --to-destination 192.168.0.7:80
-A KUBE-SEP-UF65ZV4QBOPNRP6O -s 192.168.1.3/32 -m comment --comment "default/nginx-basic:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-UF65ZV4QBOPNRP6O -p tcp -m comment --comment "default/nginx-basic:http" -m tcp -j DNAT --to-destination 192.168.1.3:80
-A KUBE-SEP-WQR67ZLSTPDXXME4 -s 192.168.1.4/32 -m comment --comment "default/nginx-basic:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-WQR67ZLSTPDXXME4 -p tcp -m comment --comment "default/nginx-basic:http" -m tcp -j DNAT --to-destination 192.168.1.4:80
-A KUBE-SERVICES -d 10.105.250.129/32 -p tcp -m comment --comment "default/nginx-basic:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WWRFY3PZ7W3FGMQW
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-WWRFY3PZ7W3FGMQW ! -s 192.168.0.0/16 -d 10.105.250.129/32 -p tcp -m comment --comment "default/nginx-basic:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-WWRFY3PZ7W3FGMQW -m comment --comment "default/nginx-basic:http -> 192.168.0.7:80" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-BEMSLTMJA26ZCLYL
-A KUBE-SVC-WWRFY3PZ7W3FGMQW -m comment --comment "default/nginx-basic:http -> 192.168.1.3:80" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-UF65ZV4QBOPNRP6O
-A KUBE-SVC-WWRFY3PZ7W3FGMQW -m comment --comment "default/nginx-basic:http -> 192.168.1.4:80" -j KUBE-SEP-WQR67ZLSTPDXXME4`
  t.same(saved('nat').filter((l) => l.startsWith('-A')), expected.split('\n'), 'iptables-legacy-save prints the reference layout')
  // and the other way: the reference restored by the CLI reads back as what we wrote
  const ours = await ipt4.readTable('nat')
  resetAll()
  restore('nat', [...ours.filter((x) => !x.builtin).map((x) => `:${x.name} - [0:0]`), ...expected.split('\n')])
  const theirs = await ipt4.readTable('nat')
  t.same(theirs.map((x) => ({ ...x, ruleList: x.ruleList.map(strip) })), ours.map((x) => ({ ...x, ruleList: x.ruleList.map(strip) })), 'the restored layout reads back equal')
})

// ---- failures: atomic, with errno, code, op ----------------------------------------------------

t.test('a commit that fails (jump to a missing chain) leaves the table as it was: ENOENT, iptables.commit', async (t) => {
  ipt('nat', '-N', 'KEEP')
  ipt('nat', '-A', 'KEEP', '-j', 'RETURN')
  const before = saved('nat', 'inet', true)
  const tx = ipt4.begin('nat')
  tx.createChain('NEW-CHAIN')
  tx.flushChain('KEEP')
  tx.appendRule('NEW-CHAIN', { target: { jump: 'KUBE-MISSING' } })
  const e = await rejects(t, tx.commit(), { errno: 2, code: 'ENOENT', op: 'iptables.commit' })
  t.match(e?.message, /nothing was committed/)
  t.equal(tx.state, 'failed')
  t.same(saved('nat', 'inet', true), before, 'the table and its counters are as they were')
  t.throws(() => tx.appendRule('KEEP', {}), { code: 'EBADF' }, 'a failed transaction takes no more edits')
})

t.test('a commit that would loop fails with ELOOP and changes nothing', async (t) => {
  const before = saved('filter')
  const tx = ipt4.begin('filter')
  tx.createChain('A')
  tx.createChain('B')
  tx.appendRule('A', { target: { jump: 'B' } })
  tx.appendRule('B', { target: { jump: 'A' } })
  tx.appendRule('INPUT', { target: { jump: 'A' } })
  await rejects(t, tx.commit(), { errno: 40, code: 'ELOOP', op: 'iptables.commit' })
  t.same(saved('filter'), before)
})

t.test('a target in the wrong chain fails the commit with EINVAL', async (t) => {
  const tx = ipt4.begin('nat')
  tx.appendRule('POSTROUTING', { target: { target: 'DNAT', toDestination: '10.0.0.1' } })
  await rejects(t, tx.commit(), { errno: 22, code: 'EINVAL', op: 'iptables.commit' })
  t.same(chainRules('nat', 'POSTROUTING'), [])
})

t.test('a failing edit names its index and op; the edits before it are not committed', async (t) => {
  ipt('filter', '-N', 'FULL')
  ipt('filter', '-A', 'FULL', '-j', 'ACCEPT')
  ipt('filter', '-N', 'TAKEN')
  const before = saved('filter')
  const cases: [(tx: IptablesTransaction) => number, Record<string, unknown>][] = [
    [(tx) => tx.deleteChain('FULL'), { errno: 39, code: 'ENOTEMPTY', op: 'iptables.deleteChain' }],
    [(tx) => tx.createChain('TAKEN'), { errno: 17, code: 'EEXIST', op: 'iptables.createChain' }],
    [(tx) => tx.appendRule('NOPE', {}), { errno: 2, code: 'ENOENT', op: 'iptables.appendRule' }],
    [(tx) => tx.deleteRule('FULL', { target: { target: 'DROP' } }), { errno: 2, code: 'ENOENT', op: 'iptables.deleteRule' }],
    [(tx) => tx.deleteRule('FULL', 5), { errno: 7, code: 'E2BIG', op: 'iptables.deleteRuleAt' }],
    [(tx) => tx.insertRule('FULL', {}, 9), { errno: 7, code: 'E2BIG', op: 'iptables.insertRule' }],
  ]
  for (const [edit, want] of cases) {
    const tx = ipt4.begin('filter')
    tx.createChain('FIRST')
    tx.appendRule('INPUT', { target: { jump: 'FIRST' } })
    const index = edit(tx)
    await rejects(t, tx.commit(), { ...want, index })
    t.same(saved('filter'), before, `${want.op}: nothing committed`)
  }
  const tx = ipt4.begin('filter')
  tx.deleteChain('TAKEN')
  tx.deleteChain('TAKEN')
  await rejects(t, tx.listChains(), { errno: 2, op: 'iptables.deleteChain', index: 1 })
  t.equal(tx.state, 'failed', 'a read that applies a failing edit fails the transaction')
})

t.test('bad input is a ValidationError naming the field; nothing queued, the transaction goes on', async (t) => {
  const before = saved('nat')
  const tx = ipt4.begin('nat')
  tx.createChain('GOOD')
  refused(t, () => tx.appendRule('GOOD', { source: '10.0.0.0/33' }), 'rule.source')
  refused(t, () => tx.appendRule('GOOD', { destination: '300.1.1.1' }), 'rule.destination')
  refused(t, () => tx.appendRule('GOOD', { source: 'fd00::1' }), 'rule.source')
  refused(t, () => tx.appendRule('GOOD', { protocol: 'tcp', matches: [{ match: 'tcp', dport: 70000 }] }), 'rule.matches[0].dport')
  refused(t, () => tx.appendRule('GOOD', { matches: [{ match: 'udp', dport: 53 }] }), 'rule.matches[0].match')
  refused(t, () => tx.appendRule('GOOD', { matches: [{ match: 'statistic', mode: 'random', probability: 1.5 }] }), 'rule.matches[0].probability')
  refused(t, () => tx.createChain('KUBE-SEP-ABCDEFGHIJKLMNOPQRSTU'), 'chain')
  refused(t, () => tx.appendRule('GOOD', { target: { target: 'NOPE' } } as unknown as Rule), 'rule.target.target')
  refused(t, () => tx.appendRule('GOOD', { target: { jump: 'INPUT' } }), 'rule.target.jump')
  refused(t, () => tx.appendRule('GOOD', { target: { target: 'DNAT', toDestination: '10.0.0.1:80' } }), 'rule.target.toDestination')
  refused(t, () => tx.appendRule('GOOD', { matches: [{ match: 'comment', comment: 'x'.repeat(256) }] }), 'rule.matches[0].comment')
  refused(t, () => tx.setPolicy('GOOD', 'DROP'), 'chain')
  t.equal(tx.state, 'open', 'still open')
  t.same(saved('nat'), before, 'nothing reached the kernel')
  tx.appendRule('GOOD', { target: { target: 'RETURN' } })
  await tx.commit()
  t.same(chainRules('nat', 'GOOD'), ['-j RETURN'], 'only the valid edits were committed')
})

// ---- transactions, snapshots, concurrency ---------------------------------------------------------

t.test('edits are invisible to others until commit; abort drops them', async (t) => {
  const tx = ipt4.begin('filter')
  tx.createChain('PENDING')
  t.ok((await tx.listChains()).some((c) => c.name === 'PENDING'), 'the transaction sees its chain')
  t.notOk((await ipt4.listChains('filter')).some((c) => c.name === 'PENDING'), 'another reader does not')
  t.notOk(saved('filter').includes(':PENDING - [0:0]'), 'nor does the CLI')
  await tx.abort()
  t.equal(tx.state, 'aborted')
  t.notOk(saved('filter').includes(':PENDING - [0:0]'), 'aborted: never committed')
  await rejects(t, tx.commit().catch((e) => Promise.reject(e)), { errno: 9, code: 'EBADF' })
})

t.test('the next commit reuses the snapshot read after the last one, and not after another writer', async (t) => {
  const first = ipt4.begin('filter')
  first.createChain('SNAP')
  await first.commit()
  await ipt4.listChains('filter') // lets the prefetch that follows a commit finish
  const second = ipt4.begin('filter')
  second.appendRule('SNAP', { target: { target: 'ACCEPT' } })
  const s2 = await second.commit()
  t.equal(s2.snapshotReused, true, 'nothing changed: the snapshot was reused')
  await ipt4.listChains('filter')
  ipt('filter', '-A', 'SNAP', '-j', 'DROP') // another writer
  const third = ipt4.begin('filter')
  third.appendRule('SNAP', { target: { target: 'RETURN' } })
  const s3 = await third.commit()
  t.equal(s3.snapshotReused, false, 'after the CLI wrote, the table was read again')
  t.same(chainRules('filter', 'SNAP'), ['-j ACCEPT', '-j DROP', '-j RETURN'], "the CLI's rule survives our commit")
  await ipt4.listChains('filter')
  ipt('filter', '-R', 'SNAP', '2', '-j', 'REJECT') // same size and count: only the lock file shows it
  const fourth = ipt4.begin('filter')
  fourth.appendRule('SNAP', { target: { target: 'ACCEPT' } })
  t.equal((await fourth.commit()).snapshotReused, false, 'a same-size change by the CLI is seen too')
  t.same(chainRules('filter', 'SNAP'), ['-j ACCEPT', '-j REJECT --reject-with icmp-port-unreachable', '-j RETURN', '-j ACCEPT'])
})

t.test('a transaction whose table changed after it read it re-applies its edits to the new table', async (t) => {
  const tx = ipt4.begin('nat')
  tx.createChain('MINE')
  t.equal((await tx.listChains()).length, 5, 'read: 4 built-ins and ours')
  ipt('nat', '-N', 'THEIRS')
  ipt('nat', '-A', 'OUTPUT', '-j', 'THEIRS')
  tx.appendRule('OUTPUT', { target: { jump: 'MINE' } })
  const stats = await tx.commit()
  t.equal(stats.replayed, true, 'replayed on a fresh read')
  t.same(chainRules('nat', 'OUTPUT'), ['-j THEIRS', '-j MINE'], 'both writers kept')
})

t.test('concurrent transactions on one table both commit, one after the other', async (t) => {
  const a = ipt4.begin('filter')
  const b = ipt4.begin('filter')
  await a.listChains()
  await b.listChains()
  a.createChain('FROM-A')
  b.createChain('FROM-B')
  const [sa, sb] = await Promise.all([a.commit(), b.commit()])
  t.ok(!sa.replayed && sb.replayed, 'the second saw the first and re-applied its edits')
  const names = (await ipt4.listChains('filter')).map((c) => c.name)
  t.ok(names.includes('FROM-A') && names.includes('FROM-B'), 'both chains exist')
})

t.test('commit waits for the xtables lock and gives up after lockTimeoutMs', async (t) => {
  const holder = spawn('flock', [LOCK, 'sleep', '1.5'], { stdio: 'ignore' })
  const exited = new Promise((r) => holder.on('exit', r))
  await new Promise((r) => setTimeout(r, 300))
  const quick = await Iptables.open({ lockTimeoutMs: 200 })
  const tx = quick.begin('filter')
  tx.createChain('LATE')
  const e = await rejects(t, tx.commit(), { errno: 110, code: 'ETIMEDOUT', op: 'iptables.commit' })
  t.ok(e?.message.includes(LOCK), 'names the lock file')
  t.notOk(saved('filter').includes(':LATE - [0:0]'), 'nothing committed')
  const patient = ipt4.begin('filter') // 5 s: waits for the holder
  patient.createChain('LATE')
  await patient.commit()
  t.ok(saved('filter').includes(':LATE - [0:0]'), 'committed once the lock was free')
  await exited
})

t.test('the event loop keeps running while a big table is committed', async (t) => {
  const tx = ipt4.begin('nat')
  tx.createChain('BIG')
  for (let i = 0; i < 50000; i++) tx.appendRule('BIG', { destination: `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`, protocol: 'tcp', matches: [{ match: 'tcp', dport: 80 }], target: { target: 'RETURN' } })
  // While the commit runs on the thread pool the event loop is idle: its
  // utilization over the commit stays low (a commit on the loop would be ~1).
  // The garbage of laying out 50000 rules is collected first, so that the
  // collector's own work does not count against the commit.
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  const before = performance.eventLoopUtilization()
  const started = performance.now()
  await tx.commit()
  const elu = performance.eventLoopUtilization(before)
  const ms = performance.now() - started
  clearInterval(timer)
  t.ok(elu.utilization < 0.5, `event loop busy ${(elu.utilization * 100).toFixed(1)}% of a ${ms.toFixed(0)} ms commit`)
  t.ok(ticks >= 1, `${ticks} timer ticks during the commit`)
  t.equal(Number(execFileSync('sh', ['-c', 'iptables-legacy-save -t nat | grep -c "^-A BIG"'], { encoding: 'utf8' }).trim()), 50000, '50000 rules in save')
})

t.test('IPv4 and IPv6 tables are separate; ip6tables-legacy-save agrees', async (t) => {
  const t4 = ipt4.begin('filter')
  const t6 = ipt6.begin('filter')
  t4.createChain('ONLY-V4')
  t6.createChain('ONLY-V6')
  t6.appendRule('ONLY-V6', { source: 'fd00::/8', target: { target: 'ACCEPT' } })
  await Promise.all([t4.commit(), t6.commit()])
  t.ok(saved('filter').includes(':ONLY-V4 - [0:0]') && !saved('filter').includes(':ONLY-V6 - [0:0]'))
  t.same(chainRules('filter', 'ONLY-V6', 'inet6'), ['-s fd00::/8 -j ACCEPT'])
  t.same((await ipt6.listRules('filter', 'ONLY-V6')).map(strip), [{ source: 'fd00::/8', target: { target: 'ACCEPT' } }])
  await rejects(t, ipt6.listRules('filter', 'ONLY-V4'), { errno: 2, op: 'iptables.listRules' })
})

// ---- the backends -----------------------------------------------------------------------------

t.test('detectBackend: legacy KUBE-* chains, and iptables-nft ones when the kernel has nf_tables', async (t) => {
  let r = await Iptables.detectBackend()
  t.equal(r.kube, 'none', 'none yet')
  ipt('nat', '-N', 'KUBE-SERVICES')
  r = await Iptables.detectBackend()
  t.equal(r.kube, 'legacy')
  t.same(r.legacy.tables.find((x) => x.table === 'nat' && x.family === 'inet')?.kubeChains, ['KUBE-SERVICES'])
  const nft = cliTry('inet', 'mangle', '--version')
  t.ok(nft.status === 0, 'iptables-legacy runs')
  const made = (() => {
    try {
      execFileSync('iptables-nft', ['-t', 'mangle', '-N', 'KUBE-IPTABLES-HINT'], { stdio: 'pipe' })
      return true
    } catch {
      return false
    }
  })()
  r = await Iptables.detectBackend()
  if (made) {
    t.equal(r.nft.available, true)
    t.equal(r.kube, 'both', 'KUBE-* chains in both backends')
    t.ok(r.nftInUse, 'nf_tables in use')
    t.same(r.nft.tables.find((x) => x.table === 'mangle')?.kubeChains, ['KUBE-IPTABLES-HINT'])
    execFileSync('iptables-nft', ['-t', 'mangle', '-X', 'KUBE-IPTABLES-HINT'])
  } else {
    t.equal(r.kube, 'legacy', 'no nf_tables here: only legacy')
    t.equal(r.nftInUse, false)
  }
})

t.test('listRules of a chain that does not exist: ENOENT, the transaction goes on', async (t) => {
  const tx = ipt4.begin('raw')
  await rejects(t, tx.listRules('NOPE'), { errno: 2, code: 'ENOENT', op: 'iptables.listRules' })
  t.equal(tx.state, 'open')
  tx.createChain('NOPE')
  t.same(await tx.listRules('NOPE'), [])
  await tx.commit()
  t.ok(saved('raw').includes(':NOPE - [0:0]'))
})

t.test('worker threads: transactions from a worker and the main thread both commit', async (t) => {
  const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url))
  const worker = new Worker(`
    const { parentPort } = require('node:worker_threads')
    import(${JSON.stringify(dist)}).then(async ({ Iptables }) => {
      const ipt = await Iptables.open()
      for (let i = 0; i < 5; i++) {
        const tx = ipt.begin('filter')
        tx.createChain('FROM-WORKER-' + i)
        await tx.commit()
      }
      parentPort.postMessage((await ipt.listChains('filter')).length)
    }).catch((e) => parentPort.postMessage(String(e)))`, { eval: true })
  const fromWorker = new Promise((resolve) => worker.once('message', resolve))
  for (let i = 0; i < 5; i++) {
    const tx = ipt4.begin('filter')
    tx.createChain(`FROM-MAIN-${i}`)
    await tx.commit()
  }
  const n = await fromWorker
  await worker.terminate()
  t.equal(typeof n, 'number', `the worker committed and listed (${n})`)
  const names = saved('filter').filter((l) => l.startsWith(':FROM-'))
  t.equal(names.length, 10, 'all ten chains, five from each thread')
})
