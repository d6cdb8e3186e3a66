// lib/iptables input validation, on the host without root: every refusal is a
// ValidationError naming the operation and the field, thrown by the edit
// itself, and nothing is queued (the transaction stays open, nothing reaches
// libiptc: a transaction touches the kernel only when it reads or commits).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Iptables, IptablesTransaction, LibiptcMissingError, ValidationError, iptablesEncodeRule, type Rule } from '../../dist/index.js'
import { OpWriter } from '../../dist/iptables/wire.js'
import { planRule } from '../../dist/iptables/planner.js'

const ipt4 = await Iptables.open()
const ipt6 = await Iptables.open({ family: 'inet6' })

function refused(t: Test, fn: () => unknown, op: string, field: string, reason?: RegExp): void {
  try {
    fn()
  } catch (e) {
    if (!(e instanceof ValidationError)) {
      t.fail(`expected a ValidationError on ${field}, got ${String(e)}`)
      return
    }
    t.equal(e.code, 'ERR_TSPROXY_INVALID')
    t.equal(e.op, op, `op ${op}`)
    t.equal(e.field, field, `field ${field}: ${e.message}`)
    if (reason) t.match(e.message, reason)
    return
  }
  t.fail(`no error; a ValidationError on ${field} expected`)
}

/** The rule refused in appendRule, naming `field`; the transaction takes a good edit after it. */
function badRule(t: Test, rule: unknown, field: string, opts: { family?: 'inet' | 'inet6'; table?: 'nat' | 'filter'; reason?: RegExp } = {}): void {
  const tx: IptablesTransaction = (opts.family === 'inet6' ? ipt6 : ipt4).begin(opts.table ?? 'nat')
  refused(t, () => tx.appendRule('X', rule as Rule), 'iptables.appendRule', field, opts.reason)
  t.equal(tx.state, 'open', 'the transaction is still open')
  t.equal(tx.appendRule('X', {}), 0, 'the next good edit gets index 0: nothing was queued')
  void tx.abort()
}

t.test('rule header: addresses, networks, interfaces, protocol, fragment', async (t) => {
  badRule(t, { source: '10.0.0.0/33' }, 'rule.source', { reason: /prefix length outside 0\.\.32/ })
  badRule(t, { source: '10.0.0.256' }, 'rule.source')
  badRule(t, { destination: 'fd00::1' }, 'rule.destination', { reason: /not an IPv4/ })
  badRule(t, { destination: '10.0.0.1' }, 'rule.destination', { family: 'inet6' })
  badRule(t, { source: { not: '10.0.0.0/x' } }, 'rule.source')
  badRule(t, { inInterface: 'a-name-longer-than-15' }, 'rule.inInterface', { reason: /IFNAMSIZ/ })
  badRule(t, { outInterface: 'eth 0' }, 'rule.outInterface')
  badRule(t, { protocol: 'tcpp' }, 'rule.protocol')
  badRule(t, { protocol: 256 }, 'rule.protocol')
  badRule(t, { protocol: { not: 'all' } }, 'rule.protocol')
  badRule(t, { fragment: true }, 'rule.fragment', { family: 'inet6', reason: /IPv4 only/ })
  badRule(t, { sauce: '10.0.0.0/8' }, 'rule.sauce', { reason: /not a known field/ })
  badRule(t, 'not a rule', 'rule')
})

t.test('matches: each refusal names the match and its field', async (t) => {
  badRule(t, { matches: {} }, 'rule.matches')
  badRule(t, { matches: [{ match: 'nope' }] }, 'rule.matches[0].match', { reason: /must be one of comment, tcp/ })
  badRule(t, { matches: [{ match: 'comment', comment: 'x'.repeat(256) }] }, 'rule.matches[0].comment', { reason: /255 bytes/ })
  badRule(t, { protocol: 'tcp', matches: [{ match: 'tcp', dport: 65536 }] }, 'rule.matches[0].dport')
  badRule(t, { protocol: 'tcp', matches: [{ match: 'tcp', sport: [20, 10] }] }, 'rule.matches[0].sport', { reason: /first <= last/ })
  badRule(t, { matches: [{ match: 'tcp', dport: 80 }] }, 'rule.matches[0].match', { reason: /-p tcp/ })
  badRule(t, { protocol: 'udp', matches: [{ match: 'tcp', dport: 80 }] }, 'rule.matches[0].match')
  badRule(t, { protocol: 'tcp', matches: [{ match: 'tcp', tcpFlags: { mask: ['SYN', 'XMAS'], set: [] } }] }, 'rule.matches[0].tcpFlags.mask[1]')
  badRule(t, { protocol: 'tcp', matches: [{ match: 'multiport', dports: [80], sports: [1] }] }, 'rule.matches[0]', { reason: /exactly one/ })
  badRule(t, { matches: [{ match: 'multiport', dports: [80] }] }, 'rule.matches[0].dports', { reason: /protocol/ })
  badRule(t, { protocol: 'tcp', matches: [{ match: 'multiport', dports: Array.from({ length: 8 }, (_, i) => [i, i + 1]) }] }, 'rule.matches[0].dports', { reason: /more than 15/ })
  badRule(t, { matches: [{ match: 'statistic', mode: 'random', probability: 1.5 }] }, 'rule.matches[0].probability', { reason: /0 to 1/ })
  badRule(t, { matches: [{ match: 'statistic', mode: 'random', probability: -0.1 }] }, 'rule.matches[0].probability')
  badRule(t, { matches: [{ match: 'statistic', mode: 'nth', every: 3, packet: 3 }] }, 'rule.matches[0].packet')
  badRule(t, { matches: [{ match: 'statistic', mode: 'rr' }] }, 'rule.matches[0].mode')
  badRule(t, { matches: [{ match: 'set', matchSet: 'S', flags: ['dst', 'up'] }] }, 'rule.matches[0].flags[1]')
  badRule(t, { matches: [{ match: 'set', matchSet: 'S', flags: [] }] }, 'rule.matches[0].flags')
  badRule(t, { matches: [{ match: 'set', matchSet: 'x'.repeat(32), flags: ['dst'] }] }, 'rule.matches[0].matchSet', { reason: /31 bytes/ })
  badRule(t, { matches: [{ match: 'mark', mark: 2 ** 32 }] }, 'rule.matches[0].mark')
  badRule(t, { matches: [{ match: 'addrtype' }] }, 'rule.matches[0]', { reason: /srcType or dstType/ })
  badRule(t, { matches: [{ match: 'addrtype', dstType: 'LOCALE' }] }, 'rule.matches[0].dstType')
  badRule(t, { matches: [{ match: 'addrtype', dstType: 'LOCAL', limitIfaceIn: true, limitIfaceOut: true }] }, 'rule.matches[0].limitIfaceOut')
  badRule(t, { matches: [{ match: 'conntrack' }] }, 'rule.matches[0]', { reason: /at least one/ })
  badRule(t, { matches: [{ match: 'conntrack', ctstate: ['NEW', 'OLD'] }] }, 'rule.matches[0].ctstate[1]')
  badRule(t, { matches: [{ match: 'conntrack', ctorigdst: '10.96.0.1/40' }] }, 'rule.matches[0].ctorigdst')
  badRule(t, { matches: [{ match: 'conntrack', ctdir: 'UP' }] }, 'rule.matches[0].ctdir')
  badRule(t, { matches: [{ match: 'recent', command: 'check' }] }, 'rule.matches[0].command')
  badRule(t, { matches: [{ match: 'recent', command: 'set', seconds: 10 }] }, 'rule.matches[0].seconds', { reason: /rcheck/ })
  badRule(t, { matches: [{ match: 'recent', command: 'rcheck', reap: true }] }, 'rule.matches[0].reap', { reason: /seconds/ })
  badRule(t, { matches: [{ match: 'recent', command: 'set', name: 'a/b' }] }, 'rule.matches[0].name')
  badRule(t, { matches: [{ match: 'physdev' }] }, 'rule.matches[0]')
  badRule(t, { matches: [{ match: 'physdev', physdevIsIn: false }] }, 'rule.matches[0].physdevIsIn')
  badRule(t, { matches: [{ match: 'raw', name: 'owner', revision: 1, data: 'abc' }] }, 'rule.matches[0].data')
  badRule(t, { matches: [{ match: 'raw', name: 'owner', revision: 1, data: 'ab' }] }, 'rule.matches[0].data', { reason: /multiple of 8/ })
})

t.test('targets: unknown names, jumps, tables, NAT ranges, MARK, LOG, REJECT', async (t) => {
  badRule(t, { target: { target: 'ACCEPTED' } }, 'rule.target.target', { reason: /must be one of ACCEPT/ })
  badRule(t, { target: {} }, 'rule.target.target')
  badRule(t, { target: { jump: 'PREROUTING' } }, 'rule.target.jump', { reason: /built-in/ })
  badRule(t, { target: { jump: 'A-CHAIN-NAME-OF-TWENTY-NINE-B' } }, 'rule.target.jump', { reason: /28 bytes/ })
  badRule(t, { target: { goto: 'has space' } }, 'rule.target.goto')
  badRule(t, { target: { target: 'DNAT', toDestination: '10.0.0.1' } }, 'rule.target.target', { table: 'filter', reason: /nat table only/ })
  badRule(t, { target: { target: 'DNAT', toDestination: '10.0.0.1:80' } }, 'rule.target.toDestination', { reason: /protocol/ })
  badRule(t, { protocol: 'tcp', target: { target: 'DNAT', toDestination: '10.0.0.9-10.0.0.1' } }, 'rule.target.toDestination', { reason: /above its last/ })
  badRule(t, { protocol: 'tcp', target: { target: 'DNAT', toDestination: '10.0.0.1:http' } }, 'rule.target.toDestination')
  badRule(t, { protocol: 'tcp', target: { target: 'DNAT', toDestination: '[fd00::1]:80' } }, 'rule.target.toDestination')
  badRule(t, { protocol: 'tcp', target: { target: 'DNAT', toDestination: '[fd00::1]' } }, 'rule.target.toDestination', { family: 'inet6', reason: /brackets/ })
  badRule(t, { target: { target: 'SNAT', toSource: '' } }, 'rule.target.toSource')
  badRule(t, { target: { target: 'MASQUERADE', toPorts: 80 } }, 'rule.target.toPorts', { reason: /protocol/ })
  badRule(t, { target: { target: 'MASQUERADE', randomFully: 'yes' } }, 'rule.target.randomFully')
  badRule(t, { target: { target: 'MARK', op: 'add', value: 1 } }, 'rule.target.op')
  badRule(t, { target: { target: 'MARK', op: 'or', value: 1, mask: 1 } }, 'rule.target.mask', { reason: /does not go/ })
  badRule(t, { target: { target: 'LOG', level: 8 } }, 'rule.target.level', { table: 'filter' })
  badRule(t, { target: { target: 'LOG', prefix: 'x'.repeat(30) } }, 'rule.target.prefix', { table: 'filter' })
  badRule(t, { target: { target: 'REJECT' } }, 'rule.target.target', { reason: /filter, mangle and raw/ })
  badRule(t, { target: { target: 'REJECT', rejectWith: 'tcp-reset' } }, 'rule.target.rejectWith', { table: 'filter', reason: /tcp/ })
  badRule(t, { target: { target: 'REJECT', rejectWith: 'icmp6-no-route' } }, 'rule.target.rejectWith', { table: 'filter' })
  badRule(t, { target: { target: 'REJECT', rejectWith: 'icmp-host-unreachable' } }, 'rule.target.rejectWith', { table: 'filter', family: 'inet6' })
})

t.test('chains, policies, indexes and tables', async (t) => {
  const tx = ipt4.begin('filter')
  refused(t, () => tx.createChain(''), 'iptables.createChain', 'chain')
  refused(t, () => tx.createChain('KUBE-SEP-ABCDEFGHIJKLMNOPQRST'), 'iptables.createChain', 'chain', /28 bytes/)
  refused(t, () => tx.createChain('-X'), 'iptables.createChain', 'chain')
  refused(t, () => tx.createChain('DROP'), 'iptables.createChain', 'chain', /target/)
  refused(t, () => tx.createChain('INPUT'), 'iptables.createChain', 'chain', /built-in/)
  refused(t, () => tx.deleteChain('FORWARD'), 'iptables.deleteChain', 'chain', /built-in/)
  refused(t, () => tx.renameChain('X', 'OUTPUT'), 'iptables.renameChain', 'newName')
  refused(t, () => tx.setPolicy('X', 'DROP'), 'iptables.setPolicy', 'chain', /built-in/)
  refused(t, () => tx.setPolicy('INPUT', 'REJECT' as 'DROP'), 'iptables.setPolicy', 'policy')
  refused(t, () => tx.flushChain('x'.repeat(32)), 'iptables.flushChain', 'chain')
  refused(t, () => tx.insertRule('X', {}, -1), 'iptables.insertRule', 'index')
  refused(t, () => tx.replaceRule('X', 1.5, {}), 'iptables.replaceRule', 'index')
  refused(t, () => tx.deleteRule('X', -2), 'iptables.deleteRuleAt', 'index')
  refused(t, () => ipt4.begin('security' as 'nat'), 'iptables.begin', 'table')
  t.equal(tx.state, 'open')
  await tx.abort()
  t.throws(() => tx.createChain('LATE'), { code: 'EBADF', op: 'iptables.createChain' }, 'an aborted transaction takes no edits')
  await t.rejects(Iptables.open({ family: 'inet4' as 'inet' }), { name: 'ValidationError', field: 'family' })
  await t.rejects(Iptables.open({ lockTimeoutMs: -1 }), { name: 'ValidationError', field: 'lockTimeoutMs' })
})

t.test('edits get consecutive indexes and become 8-byte aligned records, rules laid out in place', async (t) => {
  const w = new OpWriter()
  const rule = planRule({ op: 'x' }, { matches: [{ match: 'set', matchSet: 'S', flags: ['src'] }] }, { family: 'inet', table: 'nat' })
  const encoded = iptablesEncodeRule({ op: 'x' }, { matches: [{ match: 'set', matchSet: 'S', flags: ['src'] }] }, { family: 'inet', table: 'nat' })
  w.add('createChain', 0, 'A')
  w.add('deleteRule', 1, 'A', { rule, withMask: true })
  w.add('insertRule', 2, 'A', { rule, rulenum: 7 })
  const chunks = w.take()!
  t.equal(chunks.length, 1, 'one chunk')
  t.equal(w.take(), null, 'taken: the writer starts afresh')
  const b = chunks[0]!
  const recs: { length: number; kind: number; nsets: number; index: number; rulenum: number; chain: string; entryLen: number; maskLen: number }[] = []
  for (let o = 0; o < b.length;) {
    const length = b.readUInt32LE(o)
    recs.push({ length, kind: b.readUInt16LE(o + 4), nsets: b.readUInt16LE(o + 6), index: b.readUInt32LE(o + 8), rulenum: b.readUInt32LE(o + 12), chain: b.toString('latin1', o + 16, o + 17), entryLen: b.readUInt32LE(o + 80), maskLen: b.readUInt32LE(o + 84) })
    o += length
  }
  const n = rule.size
  t.same(recs, [
    { length: 88, kind: 1, nsets: 0, index: 0, rulenum: 0, chain: 'A', entryLen: 0, maskLen: 0 },
    { length: 88 + 2 * n + 40, kind: 11, nsets: 1, index: 1, rulenum: 0, chain: 'A', entryLen: n, maskLen: n },
    { length: 88 + n + 40, kind: 8, nsets: 1, index: 2, rulenum: 7, chain: 'A', entryLen: n, maskLen: 0 },
  ])
  t.ok(recs.every((r) => r.length % 8 === 0), 'every record a multiple of 8')
  const second = 88
  t.same(b.subarray(second + 88, second + 88 + n), encoded.entry, 'the entry as encodeRule lays it out')
  t.same(b.subarray(second + 88 + n, second + 88 + 2 * n), encoded.mask, 'then its mask')
  t.equal(b.readUInt32LE(second + 88 + 2 * n), encoded.sets[0]!.offset, 'then the fixup: the offset of the set index')
  t.equal(b.toString('latin1', second + 88 + 2 * n + 4, second + 88 + 2 * n + 5), 'S', 'and the set')
})

t.test('without libip4tc the addon still loads; the iptables API says what to install', async (t) => {
  const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url))
  const script = `
    const m = await import(${JSON.stringify(dist)})
    const out = { ipvsWire: typeof m.ipvsWire({ op: 'flush' }), library: m.Iptables.library() }
    try { await m.Iptables.open(); out.opened = true } catch (e) { out.name = e.name; out.code = e.code; out.message = e.message }
    console.log(JSON.stringify(out))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TSPROXY_LIBIP4TC: '/nonexistent/libip4tc.so.2' }, encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.equal(out.ipvsWire, 'object', 'the addon loaded: IPVS works')
  t.equal(out.library.ok, false)
  t.equal(out.name, 'LibiptcMissingError')
  t.equal(out.code, 'ERR_TSPROXY_NO_LIBIPTC')
  t.match(out.message, /libip4tc.*apt-get install libip4tc2/, 'says what to install')
  t.ok(LibiptcMissingError.prototype instanceof Error)
  const ldd = spawnSync('ldd', [fileURLToPath(new URL('../../build/Release/tsproxy.node', import.meta.url))], { encoding: 'utf8' })
  if (ldd.status === 0) t.notMatch(ldd.stdout, /libip[46]tc/, 'the addon does not link libip4tc / libip6tc')
  else t.pass('no ldd here', { skip: ldd.stderr })
})
