// ipset against real kernels (the host's, in a fresh network namespace, and the
// UML box's 6.1), with the ipset tool as the oracle both ways: what we write
// reads back exactly in `ipset save` / `ipset list`, and what the tool writes
// reads back through our listings as equal typed records.
import t, { type Test } from 'tap'
import { IpSet, NetlinkError, ValidationError, type IpSetEntry, type IpSetRecord } from '../../dist/index.js'
import { callsInFlight, manyAdds } from '../support/ipset-calls.js'
import { rejection, rejects } from './support/assert.js'
import { comparable, ipsetCli, ipsetTry, listHeader, parseSave, restore, saved, savedLines, sortLines, timeoutsOf, toSaveLines } from './support/ipset.js'

const ipset = await IpSet.open()
t.teardown(() => ipset.close())
t.beforeEach(async () => {
  // list:set members hold references: empty every set first, then destroy all.
  await ipset.flushAll()
  await ipset.destroyAll()
  ipset.forget()
})

/** Both ways at once: our listing rendered as `ipset save` equals the tool's, and the tool's save read back equals our listing. */
async function sameAsCli(t: Test, what: string): Promise<IpSetRecord[]> {
  const ours = await ipset.listAll()
  t.same(toSaveLines(ours), savedLines(), `${what}: ipset save reads what we hold`)
  t.same(comparable(ours), comparable(parseSave()), `${what}: we read what ipset save says`)
  return ours
}

async function refused(t: Test, p: Promise<unknown>, field: string): Promise<void> {
  const err = await rejection(p)
  t.ok(err instanceof ValidationError, `a ValidationError (${(err as Error)?.message})`)
  t.equal((err as ValidationError).field, field, `names ${field}`)
}

const initval = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`

// ---- protocol, names ------------------------------------------------------------------------

t.test('open agrees on the protocol the ipset tool speaks; no sets in a fresh netns', async (t) => {
  const version = ipsetCli('version')
  t.match(version, new RegExp(`protocol version: ${ipset.protocol}\\b`), `protocol ${ipset.protocol}`)
  t.strictSame(await ipset.listNames(), [])
  t.equal(ipsetCli('list', '-n'), '')
})

t.test('listNames equals `ipset list -n`, sets made by either side', async (t) => {
  await ipset.create({ name: 'OURS', type: 'hash:ip' })
  ipsetCli('create', 'THEIRS', 'hash:net')
  await ipset.create({ name: 'LIST', type: 'list:set' })
  t.strictSame(await ipset.listNames(), ipsetCli('list', '-n').split('\n').filter(Boolean))
  t.strictSame((await ipset.listNames()).sort(), ['LIST', 'OURS', 'THEIRS'])
})

// ---- create: each type, each family, each option -------------------------------------------

t.test('create: every hash type in both families reads back in ipset save', async (t) => {
  const types = ['hash:ip', 'hash:ip,port', 'hash:ip,port,ip', 'hash:ip,port,net', 'hash:net', 'hash:net,port'] as const
  for (const [i, type] of types.entries()) {
    await ipset.create({ name: `V4-${i}`, type })
    ipsetCli('create', `V6-${i}`, type, 'family', 'inet6')
  }
  const lines = saved()
  for (const [i, type] of types.entries()) {
    t.ok(lines.some((l) => l.startsWith(`create V4-${i} ${type} family inet hashsize 1024 maxelem 65536`)), `${type} inet, ours`)
    t.ok(lines.some((l) => l.startsWith(`create V6-${i} ${type} family inet6 hashsize 1024 maxelem 65536`)), `${type} inet6, theirs`)
  }
  const ours = await sameAsCli(t, 'twelve sets')
  t.equal(ours.filter((s) => s.family === 'inet6').length, 6)
})

t.test('create: hashsize, maxelem, timeout, counters, comment, skbinfo', async (t) => {
  await ipset.create({ name: 'OPTS', type: 'hash:ip,port', family: 'inet6', hashsize: 4096, maxelem: 100000, timeout: 600, counters: true, comment: true, skbinfo: true })
  const rec = await ipset.header('OPTS')
  t.match(saved('OPTS')[0], new RegExp(`^create OPTS hash:ip,port family inet6 hashsize 4096 maxelem 100000 timeout 600 counters comment skbinfo bucketsize 12 initval ${initval(rec.initval!)}$`))
  ipsetCli('create', 'OPTS2', 'hash:net', 'hashsize', '100', 'maxelem', '7', 'timeout', '0', 'counters')
  const theirs = await ipset.header('OPTS2')
  t.match(theirs, { hashsize: 128, maxelem: 7, timeout: 0, counters: true, comment: false, skbinfo: false }, 'the kernel rounds hashsize up to a power of 2')
  await sameAsCli(t, 'options')
})

t.test('create: bitmap:port with its range and list:set with its size have no family', async (t) => {
  await ipset.create({ name: 'KUBE-NODE-PORT-TCP', type: 'bitmap:port', range: [0, 65535] })
  await ipset.create({ name: 'PORTS', type: 'bitmap:port', range: [30000, 32767], timeout: 60, counters: true, comment: true })
  await ipset.create({ name: 'LISTS', type: 'list:set', size: 16 })
  ipsetCli('create', 'THEIR-LIST', 'list:set', 'timeout', '5')
  t.same(saved().filter((l) => l.startsWith('create')), [
    'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
    'create LISTS list:set size 16',
    'create PORTS bitmap:port range 30000-32767 timeout 60 counters comment',
    'create THEIR-LIST list:set size 8 timeout 5',
  ])
  t.match(await ipset.header('THEIR-LIST'), { type: 'list:set', size: 8, timeout: 5 })
  t.notOk('family' in (await ipset.header('PORTS')), 'bitmap:port: no family')
  await sameAsCli(t, 'bitmap and list sets')
})

t.test('create: the same name again is EEXIST; with exist, an identical set is fine and a different one still not', async (t) => {
  await ipset.create({ name: 'DUP', type: 'hash:ip', maxelem: 100 })
  await rejects(t, ipset.create({ name: 'DUP', type: 'hash:ip', maxelem: 100 }), { errno: 17, code: 'EEXIST', op: 'ipset.create', message: /Set cannot be created: set with the same name already exists/ })
  await ipset.create({ name: 'DUP', type: 'hash:ip', maxelem: 100, exist: true })
  await rejects(t, ipset.create({ name: 'DUP', type: 'hash:net', exist: true }), { errno: 17, code: 'EEXIST' })
  t.equal(ipsetTry('-exist', 'create', 'DUP', 'hash:net').status, 1, 'the tool agrees: a different set under that name is an error')
  t.match(saved('DUP')[0], /^create DUP hash:ip family inet hashsize 1024 maxelem 100 /, 'the first set is untouched')
})

t.test('header(): type, revision and counts agree with `ipset list -t`', async (t) => {
  await ipset.create({ name: 'H', type: 'hash:ip,port,ip', timeout: 100 })
  await ipset.batch([1, 2, 3].map((i) => ({ op: 'add' as const, set: 'H', entry: { ip: `10.0.0.${i}`, port: 80, ip2: '10.0.0.9' } })))
  ipsetCli('create', 'L', 'list:set')
  ipsetCli('add', 'L', 'H')
  const h = await ipset.header('H')
  const cli = listHeader('H')
  t.match(h, { type: 'hash:ip,port,ip', revision: cli.revision, references: cli.references, entries: cli.entries, memsize: cli.memsize })
  t.equal(h.references, 1, 'the list:set holds it')
  t.equal(h.entries, 3)
  t.equal(cli.header, `family inet hashsize 1024 maxelem 65536 timeout 100 bucketsize 12 initval ${initval(h.initval!)}`)
  await rejects(t, ipset.header('NOPE'), { errno: 2, code: 'ENOENT', op: 'ipset.header' })
})

// ---- entries of every type --------------------------------------------------------------------

t.test('hash:ip, IPv4 and IPv6: our adds in ipset save, the tool\'s adds in our list', async (t) => {
  await ipset.create({ name: 'IP4', type: 'hash:ip' })
  await ipset.create({ name: 'IP6', type: 'hash:ip', family: 'inet6' })
  await ipset.add('IP4', { ip: '10.0.0.1' })
  await ipset.add('IP6', { ip: 'fd00:0:0::1' })
  ipsetCli('add', 'IP4', '192.168.1.1')
  ipsetCli('add', 'IP6', '::ffff:10.0.0.1')
  t.same(saved().filter((l) => l.startsWith('add')), ['add IP4 10.0.0.1', 'add IP4 192.168.1.1', 'add IP6 ::ffff:10.0.0.1', 'add IP6 fd00::1'])
  t.same((await ipset.list('IP6')).members!.map((m) => m.ip).sort(), ['::ffff:10.0.0.1', 'fd00::1'], 'theirs and ours, as the kernel prints them')
  await sameAsCli(t, 'hash:ip')
})

t.test('hash:ip,port: tcp, udp, sctp, udplite, the default tcp', async (t) => {
  await ipset.create({ name: 'IPP', type: 'hash:ip,port' })
  await ipset.add('IPP', { ip: '10.0.0.1', port: 80 })
  await ipset.add('IPP', { ip: '10.0.0.1', protocol: 'udp', port: 53 })
  await ipset.add('IPP', { ip: '10.0.0.1', protocol: 'sctp', port: 9 })
  await ipset.add('IPP', { ip: '10.0.0.1', protocol: 'udplite', port: 0 })
  ipsetCli('add', 'IPP', '10.0.0.2,udp:5353')
  t.same(saved('IPP').filter((l) => l.startsWith('add')), [
    'add IPP 10.0.0.1,sctp:9', 'add IPP 10.0.0.1,tcp:80', 'add IPP 10.0.0.1,udp:53', 'add IPP 10.0.0.1,udplite:0', 'add IPP 10.0.0.2,udp:5353',
  ])
  t.ok((await ipset.list('IPP')).members!.some((m) => m.ip === '10.0.0.2' && m.protocol === 'udp' && m.port === 5353), 'theirs, typed')
  await sameAsCli(t, 'hash:ip,port')
})

t.test('hash:ip,port,ip: the issue\'s KUBE-LOOP-BACK example', async (t) => {
  await ipset.create({ name: 'KUBE-LOOP-BACK', type: 'hash:ip,port,ip', family: 'inet', hashsize: 1024, maxelem: 65536 })
  await ipset.add('KUBE-LOOP-BACK', { ip: '10.0.0.11', protocol: 'tcp', port: 8080, ip2: '10.0.0.11' })
  ipsetCli('add', 'KUBE-LOOP-BACK', '10.0.0.12,udp:53,10.0.0.12')
  t.same(saved('KUBE-LOOP-BACK').filter((l) => l.startsWith('add')), ['add KUBE-LOOP-BACK 10.0.0.11,tcp:8080,10.0.0.11', 'add KUBE-LOOP-BACK 10.0.0.12,udp:53,10.0.0.12'])
  t.same((await ipset.list('KUBE-LOOP-BACK')).members!.find((m) => m.port === 53), { ip: '10.0.0.12', protocol: 'udp', port: 53, ip2: '10.0.0.12' })
  await sameAsCli(t, 'hash:ip,port,ip')
})

t.test('hash:ip,port,net: networks and hosts, nomatch', async (t) => {
  await ipset.create({ name: 'IPN', type: 'hash:ip,port,net' })
  await ipset.add('IPN', { ip: '10.0.0.1', protocol: 'udp', port: 53, net: '10.1.0.0/16' })
  await ipset.add('IPN', { ip: '10.0.0.1', protocol: 'udp', port: 53, net: '10.2.3.4' })
  await ipset.add('IPN', { ip: '10.0.0.1', protocol: 'tcp', port: 1, net: '10.3.0.0/24', nomatch: true })
  ipsetCli('add', 'IPN', '10.0.0.2,tcp:443,192.168.0.0/16', 'nomatch')
  t.same(saved('IPN').filter((l) => l.startsWith('add')), [
    'add IPN 10.0.0.1,tcp:1,10.3.0.0/24 nomatch', 'add IPN 10.0.0.1,udp:53,10.1.0.0/16', 'add IPN 10.0.0.1,udp:53,10.2.3.4', 'add IPN 10.0.0.2,tcp:443,192.168.0.0/16 nomatch',
  ])
  t.ok((await ipset.list('IPN')).members!.some((m) => m.net === '192.168.0.0/16' && m.nomatch === true), 'theirs, nomatch')
  await sameAsCli(t, 'hash:ip,port,net')
})

t.test('hash:net: IPv4 and IPv6 networks, stored masked; nomatch', async (t) => {
  await ipset.create({ name: 'N4', type: 'hash:net' })
  await ipset.create({ name: 'N6', type: 'hash:net', family: 'inet6' })
  await ipset.add('N4', { net: '10.1.2.3/16' })
  await ipset.add('N4', { net: '10.9.9.9' })
  await ipset.add('N6', { net: 'fd00:1::/48', nomatch: true })
  ipsetCli('add', 'N6', 'fd00:2::1/64')
  t.same(saved().filter((l) => l.startsWith('add')), ['add N4 10.1.0.0/16', 'add N4 10.9.9.9', 'add N6 fd00:1::/48 nomatch', 'add N6 fd00:2::/64'])
  t.same((await ipset.list('N4')).members!.map((m) => m.net).sort(), ['10.1.0.0/16', '10.9.9.9/32'])
  await sameAsCli(t, 'hash:net')
})

t.test('hash:net,port: networks with protocol and port', async (t) => {
  await ipset.create({ name: 'NP', type: 'hash:net,port' })
  await ipset.add('NP', { net: '10.0.0.0/8', protocol: 'tcp', port: 80 })
  await ipset.add('NP', { net: '10.0.0.0/8', protocol: 'udp', port: 80 })
  ipsetCli('add', 'NP', '192.168.1.0/24,sctp:7')
  t.same(saved('NP').filter((l) => l.startsWith('add')), ['add NP 10.0.0.0/8,tcp:80', 'add NP 10.0.0.0/8,udp:80', 'add NP 192.168.1.0/24,sctp:7'])
  await sameAsCli(t, 'hash:net,port')
})

t.test('bitmap:port: ports in the range; outside it a ValidationError, nothing sent', async (t) => {
  await ipset.create({ name: 'KUBE-NODE-PORT-TCP', type: 'bitmap:port', range: [30000, 32767] })
  await ipset.add('KUBE-NODE-PORT-TCP', { port: 30080 })
  ipsetCli('add', 'KUBE-NODE-PORT-TCP', '32767')
  await refused(t, ipset.add('KUBE-NODE-PORT-TCP', { port: 29999 }), 'entry.port')
  t.equal(ipsetTry('add', 'KUBE-NODE-PORT-TCP', '29999').status, 1, 'the tool refuses it too (the kernel says out of range)')
  t.same(saved('KUBE-NODE-PORT-TCP'), ['add KUBE-NODE-PORT-TCP 30080', 'add KUBE-NODE-PORT-TCP 32767', 'create KUBE-NODE-PORT-TCP bitmap:port range 30000-32767'])
  await sameAsCli(t, 'bitmap:port')
})

t.test('list:set: sets as members; the members\' reference counts', async (t) => {
  await ipset.create({ name: 'A', type: 'hash:ip' })
  await ipset.create({ name: 'B', type: 'hash:net' })
  await ipset.create({ name: 'U', type: 'list:set' })
  await ipset.add('U', { set: 'A' })
  ipsetCli('add', 'U', 'B')
  t.same(saved('U'), ['add U A', 'add U B', 'create U list:set size 8'])
  t.same((await ipset.list('U')).members, [{ set: 'A' }, { set: 'B' }], 'in the list\'s order')
  t.equal((await ipset.header('A')).references, listHeader('A').references)
  t.equal((await ipset.header('A')).references, 1)
  await rejects(t, ipset.add('U', { set: 'NOPE' }), { errno: 4352, code: 'IPSET_ERR_NAME', message: /Set to be added\/deleted\/tested as element does not exist/ })
  await rejects(t, ipset.add('U', { set: 'U' }), { errno: 4353, code: 'IPSET_ERR_LOOP' })
  await sameAsCli(t, 'list:set')
})

// ---- extensions -------------------------------------------------------------------------------

t.test('entry timeouts: ours count down in ipset save, the tool\'s read back', async (t) => {
  await ipset.create({ name: 'TO', type: 'hash:ip', timeout: 600 })
  await ipset.add('TO', { ip: '10.0.0.1', timeout: 300 })
  await ipset.add('TO', { ip: '10.0.0.2' })
  await ipset.add('TO', { ip: '10.0.0.3', timeout: 0 })
  ipsetCli('add', 'TO', '10.0.0.4', 'timeout', '100')
  const cli = timeoutsOf('TO')
  const ours = new Map((await ipset.list('TO')).members!.map((m) => [`TO ${m.ip}`, m.timeout!]))
  for (const [k, want] of [['TO 10.0.0.1', 300], ['TO 10.0.0.2', 600], ['TO 10.0.0.3', 0], ['TO 10.0.0.4', 100]] as const) {
    t.ok(cli.get(k)! <= want && cli.get(k)! >= want - 3, `${k}: ipset save says ${cli.get(k)}, set ${want}`)
    t.ok(Math.abs(ours.get(k)! - cli.get(k)!) <= 2, `${k}: we read ${ours.get(k)}`)
  }
  await sameAsCli(t, 'timeouts')
})

t.test('comments: spaces, quotes-free text, UTF-8; the tool\'s comments read back', async (t) => {
  await ipset.create({ name: 'CM', type: 'hash:ip,port,ip', comment: true })
  await ipset.add('CM', { ip: '10.0.0.1', port: 80, ip2: '10.0.0.1', comment: 'default/kubernetes:https' })
  await ipset.add('CM', { ip: '10.0.0.2', port: 80, ip2: '10.0.0.2', comment: 'two words, ümlaut' })
  ipsetCli('add', 'CM', '10.0.0.3,tcp:80,10.0.0.3', 'comment', 'their comment')
  t.same(saved('CM').filter((l) => l.startsWith('add')), [
    'add CM 10.0.0.1,tcp:80,10.0.0.1 comment "default/kubernetes:https"',
    'add CM 10.0.0.2,tcp:80,10.0.0.2 comment "two words, ümlaut"',
    'add CM 10.0.0.3,tcp:80,10.0.0.3 comment "their comment"',
  ])
  t.equal((await ipset.list('CM')).members!.find((m) => m.ip === '10.0.0.3')!.comment, 'their comment')
  await sameAsCli(t, 'comments')
})

t.test('counters: packets and bytes set on add, both ways', async (t) => {
  await ipset.create({ name: 'CT', type: 'hash:net', counters: true })
  await ipset.add('CT', { net: '10.0.0.0/24', packets: 5, bytes: 2 ** 40 })
  ipsetCli('add', 'CT', '10.1.0.0/24', 'packets', '7', 'bytes', '700')
  t.same(saved('CT').filter((l) => l.startsWith('add')), ['add CT 10.0.0.0/24 packets 5 bytes 1099511627776', 'add CT 10.1.0.0/24 packets 7 bytes 700'])
  t.match((await ipset.list('CT')).members!.find((m) => m.net === '10.1.0.0/24'), { packets: 7, bytes: 700 })
  await sameAsCli(t, 'counters')
})

t.test('skbinfo: mark with and without a mask, priority, queue, both ways', async (t) => {
  await ipset.create({ name: 'SK', type: 'hash:ip', skbinfo: true })
  await ipset.add('SK', { ip: '10.0.0.1', skbmark: 7, skbmarkmask: 0xff, skbprio: 0x10002, skbqueue: 3 })
  await ipset.add('SK', { ip: '10.0.0.2', skbmark: 0x4000 })
  ipsetCli('add', 'SK', '10.0.0.3', 'skbmark', '0x10/0xf0', 'skbprio', 'a:b', 'skbqueue', '9')
  t.same(saved('SK').filter((l) => l.startsWith('add')), [
    'add SK 10.0.0.1 skbmark 0x7/0xff skbprio 1:2 skbqueue 3',
    'add SK 10.0.0.2 skbmark 0x4000',
    'add SK 10.0.0.3 skbmark 0x10/0xf0 skbprio a:b skbqueue 9',
  ])
  t.match((await ipset.list('SK')).members!.find((m) => m.ip === '10.0.0.3'), { skbmark: 0x10, skbmarkmask: 0xf0, skbprio: 0xa000b, skbqueue: 9 })
  await sameAsCli(t, 'skbinfo')
})

t.test('extensions a set lacks are refused before sending; the kernel agrees', async (t) => {
  await ipset.create({ name: 'PLAIN', type: 'hash:ip' })
  await refused(t, ipset.add('PLAIN', { ip: '10.0.0.1', timeout: 5 }), 'entry.timeout')
  await refused(t, ipset.add('PLAIN', { ip: '10.0.0.1', comment: 'x' }), 'entry.comment')
  await refused(t, ipset.add('PLAIN', { ip: '10.0.0.1', packets: 1 }), 'entry.packets')
  t.match(ipsetTry('add', 'PLAIN', '10.0.0.1', 'timeout', '5').stderr, /set was created without timeout support/, 'the tool: the kernel says no')
  t.same(saved('PLAIN'), [saved('PLAIN')[0]!], 'nothing added')
  await sameAsCli(t, 'nothing added')
})

// ---- add, del, test, exist ----------------------------------------------------------------

t.test('add twice: IPSET_ERR_EXIST; with exist: replaced (the timeout starts over)', async (t) => {
  await ipset.create({ name: 'EX', type: 'hash:ip', timeout: 1000 })
  await ipset.add('EX', { ip: '10.0.0.1', timeout: 10 })
  const err = await rejects(t, ipset.add('EX', { ip: '10.0.0.1' }), { errno: 4103, code: 'IPSET_ERR_EXIST', op: 'ipset.add' })
  t.equal(err?.message, "ipset.add: IPSET_ERR_EXIST: Element cannot be added to the set: it's already added")
  t.match(ipsetTry('add', 'EX', '10.0.0.1').stderr, /Element cannot be added to the set: it's already added/, 'the tool\'s words')
  await ipset.add('EX', { ip: '10.0.0.1', timeout: 500 }, { exist: true })
  const left = timeoutsOf('EX').get('EX 10.0.0.1')!
  t.ok(left > 400 && left <= 500, `timeout now ${left}`)
  await sameAsCli(t, 'exist')
})

t.test('del: removes; a missing entry is IPSET_ERR_EXIST unless exist', async (t) => {
  await ipset.create({ name: 'D', type: 'hash:ip,port' })
  ipsetCli('add', 'D', '10.0.0.1,tcp:80')
  ipsetCli('add', 'D', '10.0.0.2,tcp:80')
  await ipset.del('D', { ip: '10.0.0.1', protocol: 'tcp', port: 80 })
  t.same(saved('D').filter((l) => l.startsWith('add')), ['add D 10.0.0.2,tcp:80'])
  await rejects(t, ipset.del('D', { ip: '10.0.0.1', port: 80 }), { errno: 4103, code: 'IPSET_ERR_EXIST', message: /Element cannot be deleted from the set: it's not added/ })
  await ipset.del('D', { ip: '10.0.0.1', port: 80 }, { exist: true })
  t.equal(ipsetTry('-exist', 'del', 'D', '10.0.0.1,tcp:80').status, 0, 'the tool agrees')
  await sameAsCli(t, 'del')
})

t.test('test() agrees with `ipset test`, hash:net testing exact networks', async (t) => {
  await ipset.create({ name: 'T', type: 'hash:net' })
  await ipset.add('T', { net: '10.0.0.0/24' })
  const cases: [IpSetEntry, string][] = [[{ net: '10.0.0.0/24' }, '10.0.0.0/24'], [{ net: '10.0.0.7/24' }, '10.0.0.7/24'], [{ net: '10.0.1.0/24' }, '10.0.1.0/24'], [{ net: '10.0.0.0/25' }, '10.0.0.0/25']]
  for (const [entry, text] of cases) {
    const cli = ipsetTry('test', 'T', text).status === 0
    t.equal(await ipset.test('T', entry), cli, `${text}: ${cli}`)
  }
  t.equal(await ipset.test('T', { net: '10.0.0.0/24' }), true)
  t.equal(await ipset.test('T', { net: '10.0.1.0/24' }), false)
  await rejects(t, ipset.test('NOPE', { ip: '10.0.0.1' }), { errno: 2, code: 'ENOENT', op: 'ipset.test' })
})

t.test('a set that does not exist: ENOENT with op and the tool\'s words', async (t) => {
  await rejects(t, ipset.add('NOPE', { ip: '10.0.0.1' }), { errno: 2, code: 'ENOENT', op: 'ipset.add', message: 'ipset.add: ENOENT: The set with the given name does not exist' })
  await rejects(t, ipset.flush('NOPE'), { errno: 2, code: 'ENOENT', op: 'ipset.flush' })
  await rejects(t, ipset.list('NOPE'), { errno: 2, code: 'ENOENT', op: 'ipset.list' })
  t.match(ipsetTry('flush', 'NOPE').stderr, /The set with the given name does not exist/)
})

t.test('hash full: IPSET_ERR_HASH_FULL at maxelem', async (t) => {
  await ipset.create({ name: 'FULL', type: 'hash:ip', maxelem: 2 })
  await ipset.add('FULL', { ip: '10.0.0.1' })
  await ipset.add('FULL', { ip: '10.0.0.2' })
  await rejects(t, ipset.add('FULL', { ip: '10.0.0.3' }), { errno: 4352, code: 'IPSET_ERR_HASH_FULL', message: /Hash is full, cannot add more elements/ })
  t.match(ipsetTry('add', 'FULL', '10.0.0.4').stderr, /Hash is full, cannot add more elements/)
  t.equal(listHeader('FULL').entries, 2)
})

t.test('hash full in a batch: every refused entry is IPSET_ERR_HASH_FULL with the words, not only the first', async (t) => {
  await ipset.create({ name: 'FULL8', type: 'hash:ip', maxelem: 8 })
  const entries = Array.from({ length: 200 }, (_, i) => ({ ip: `10.1.${i >> 8}.${i & 0xff}` }))
  const outcomes = await ipset.batch(entries.map((entry) => ({ op: 'add' as const, set: 'FULL8', entry })))
  const inSet = new Set(saved('FULL8').filter((l) => l.startsWith('add ')).map((l) => l.split(' ')[2]))
  t.equal(inSet.size, 8, 'ipset save: the set holds maxelem entries')
  t.strictSame(new Set(entries.filter((_, i) => outcomes[i]!.ok).map((e) => e.ip)), inSet, 'the ok outcomes are exactly what ipset save shows')
  const refused = outcomes.flatMap((o, i) => (o.ok ? [] : [[i, o.error] as const]))
  t.equal(refused.length, 192)
  const wrong = refused.filter(([i, e]) => e.errno !== 4352 || e.code !== 'IPSET_ERR_HASH_FULL' || e.index !== i || !/: IPSET_ERR_HASH_FULL: Hash is full, cannot add more elements$/.test(e.message))
  t.strictSame(wrong.map(([i, e]) => `${i}: ${e.code} ${e.message}`), [], 'every refusal: IPSET_ERR_HASH_FULL, its index, the tool\'s words')
})

// ---- set-level commands -----------------------------------------------------------------------

t.test('flush: members gone, the header stays; flushAll', async (t) => {
  await ipset.create({ name: 'F1', type: 'hash:ip', hashsize: 64 })
  await ipset.create({ name: 'F2', type: 'bitmap:port', range: [1, 10] })
  ipsetCli('add', 'F1', '10.0.0.1')
  ipsetCli('add', 'F2', '5')
  await ipset.flush('F1')
  t.equal(listHeader('F1').entries, 0)
  t.equal(listHeader('F2').entries, 1)
  await ipset.flushAll()
  t.equal(listHeader('F2').entries, 0)
  t.same(saved().filter((l) => l.startsWith('add')), [])
  await sameAsCli(t, 'flushed')
})

t.test('rename: the tool sees the new name; onto an existing name IPSET_ERR_EXIST_SETNAME2', async (t) => {
  await ipset.create({ name: 'OLD', type: 'hash:ip' })
  await ipset.add('OLD', { ip: '10.0.0.1' })
  await ipset.rename('OLD', 'NEW')
  t.same(sortLines(ipsetCli('list', '-n')), ['NEW'])
  await ipset.add('NEW', { ip: '10.0.0.2' }) // the handle follows the rename
  ipsetCli('create', 'OTHER', 'hash:ip')
  await rejects(t, ipset.rename('NEW', 'OTHER'), { errno: 4101, code: 'IPSET_ERR_EXIST_SETNAME2', message: /Set cannot be renamed: a set with the new name already exists/ })
  await rejects(t, ipset.rename('GONE', 'X'), { errno: 2, code: 'ENOENT' })
  t.same(saved('NEW').filter((l) => l.startsWith('add')), ['add NEW 10.0.0.1', 'add NEW 10.0.0.2'])
  await sameAsCli(t, 'rename')
})

t.test('swap: contents exchange; other types IPSET_ERR_TYPE_MISMATCH; a missing second set', async (t) => {
  await ipset.create({ name: 'S1', type: 'hash:ip' })
  ipsetCli('create', 'S2', 'hash:ip', 'maxelem', '10')
  await ipset.add('S1', { ip: '10.0.0.1' })
  ipsetCli('add', 'S2', '10.0.0.2')
  await ipset.swap('S1', 'S2')
  t.same(saved().filter((l) => l.startsWith('add')), ['add S1 10.0.0.2', 'add S2 10.0.0.1'])
  t.match(saved('S1')[1], /maxelem 10 /, 'headers travel with contents')
  ipsetCli('create', 'NETS', 'hash:net')
  await rejects(t, ipset.swap('S1', 'NETS'), { errno: 4102, code: 'IPSET_ERR_TYPE_MISMATCH', message: /their type does not match/ })
  await rejects(t, ipset.swap('S1', 'NOPE'), { errno: 4101, code: 'IPSET_ERR_EXIST_SETNAME2', message: /Sets cannot be swapped: the second set does not exist/ })
  await ipset.add('S2', { ip: '10.0.0.3' }) // the handle follows the swap
  await sameAsCli(t, 'swap')
})

t.test('destroy: gone; in use IPSET_ERR_BUSY; missing ENOENT; with exist as the tool\'s -exist', async (t) => {
  await ipset.create({ name: 'GONE', type: 'hash:ip' })
  await ipset.destroy('GONE')
  t.equal(ipsetCli('list', '-n'), '')
  await ipset.create({ name: 'INNER', type: 'hash:ip' })
  await ipset.create({ name: 'OUTER', type: 'list:set' })
  await ipset.add('OUTER', { set: 'INNER' })
  await rejects(t, ipset.destroy('INNER'), { errno: 4100, code: 'IPSET_ERR_BUSY', message: /it is in use by a kernel component/ })
  await rejects(t, ipset.destroyAll(), { errno: 4100, code: 'IPSET_ERR_BUSY' })
  await rejects(t, ipset.destroy('NOPE'), { errno: 2, code: 'ENOENT', op: 'ipset.destroy' })
  // Linux 6.8 taught destroy the exist flag: follow whatever this kernel tells the tool.
  const cliOk = ipsetTry('-exist', 'destroy', 'NOPE').status === 0
  const ours = await ipset.destroy('NOPE', { exist: true }).then(() => true, () => false)
  t.equal(ours, cliOk, `destroy -exist of a missing set: ${cliOk ? 'fine' : 'ENOENT'} on this kernel, for both`)
  t.same(sortLines(ipsetCli('list', '-n')), ['INNER', 'OUTER'])
  await sameAsCli(t, 'destroy')
})

// ---- listing in bulk --------------------------------------------------------------------------

t.test('listAll equals ipset save for a set of every type at once', async (t) => {
  restore([
    'create A hash:ip family inet6 timeout 100 comment',
    'add A fd00::1 timeout 50 comment "a"',
    'create B hash:ip,port counters',
    'add B 10.0.0.1,udp:53 packets 1 bytes 2',
    'create C hash:ip,port,ip',
    'add C 10.0.0.1,tcp:80,10.0.0.2',
    'create D hash:ip,port,net skbinfo',
    'add D 10.0.0.1,tcp:80,10.1.0.0/16 skbmark 0x1',
    'create E hash:net',
    'add E 10.0.0.0/8',
    'add E 10.1.0.0/16 nomatch',
    'create F hash:net,port family inet6',
    'add F fd00::/64,tcp:443',
    'create G bitmap:port range 1000-2000 counters',
    'add G 1500 packets 3 bytes 4',
    'create H list:set size 4',
    'add H E',
  ])
  const all = await sameAsCli(t, 'every type')
  t.equal(all.length, 8)
  t.equal(all.at(-1)!.type, 'list:set', 'list:set last, as the kernel dumps it')
  t.same(all.map((s) => s.entries), all.map((s) => listHeader(s.name).entries), 'entry counts as ipset list says')
})

t.test('a large set: 20000 entries written by ipset restore read back whole', async (t) => {
  const lines = ['create BIG hash:ip,port,ip hashsize 16384 maxelem 100000']
  for (let i = 0; i < 20000; i++) lines.push(`add BIG 10.${i >> 16}.${(i >> 8) & 255}.${i & 255},tcp:${1 + (i % 1000)},10.200.0.1`)
  restore(lines)
  const rec = await ipset.list('BIG')
  t.equal(rec.members!.length, 20000)
  t.equal(rec.entries, 20000)
  const want = new Set(lines.slice(1).map((l) => l.slice('add BIG '.length)))
  t.ok(rec.members!.every((m) => want.has(`${m.ip},${m.protocol}:${m.port},${m.ip2}`)), 'every member is one the tool wrote')
  t.same(toSaveLines([rec]), savedLines('BIG'), 'and renders as ipset save prints it')
})

// ---- batches ------------------------------------------------------------------------------

t.test('batch: 5000 adds in one call, one result each, exactly what ipset save shows', async (t) => {
  await ipset.create({ name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', hashsize: 4096 })
  const ops = Array.from({ length: 5000 }, (_, i) => ({ op: 'add' as const, set: 'KUBE-CLUSTER-IP', entry: { ip: `10.96.${i >> 8}.${i & 255}`, protocol: (i % 2 ? 'udp' : 'tcp') as 'tcp' | 'udp', port: 53 } }))
  const outcomes = await ipset.batch(ops)
  t.equal(outcomes.length, 5000)
  t.ok(outcomes.every((o) => o.ok), 'all applied')
  t.same(saved('KUBE-CLUSTER-IP').filter((l) => l.startsWith('add')), ops.map((o) => `add KUBE-CLUSTER-IP ${o.entry.ip},${o.entry.protocol}:53`).sort())
})

t.test('batch with failures: exactly the entries the kernel refused fail, the rest are applied', async (t) => {
  await ipset.create({ name: 'MIX', type: 'hash:ip' })
  ipsetCli('add', 'MIX', '10.0.0.3')
  ipsetCli('add', 'MIX', '10.0.0.7')
  const ips = Array.from({ length: 10 }, (_, i) => `10.0.0.${i}`)
  const outcomes = await ipset.batch([
    ...ips.map((ip) => ({ op: 'add' as const, set: 'MIX', entry: { ip } })),
    { op: 'del', set: 'MIX', entry: { ip: '10.9.9.9' } },
    { op: 'add', set: 'NOPE', entry: { ip: '10.0.0.1' } },
  ])
  t.strictSame(outcomes.map((o) => (o.ok ? 'ok' : o.error.code)), [
    'ok', 'ok', 'ok', 'IPSET_ERR_EXIST', 'ok', 'ok', 'ok', 'IPSET_ERR_EXIST', 'ok', 'ok', 'IPSET_ERR_EXIST', 'ENOENT',
  ])
  t.match(outcomes[3], { ok: false, error: { errno: 4103, op: 'ipset.add', index: 3 } })
  t.match(outcomes[10], { ok: false, error: { op: 'ipset.del', index: 10, message: /not added/ } })
  t.same(saved('MIX').filter((l) => l.startsWith('add')), ips.map((ip) => `add MIX ${ip}`).sort())
  await sameAsCli(t, 'mixed batch')
})

t.test('batch order holds for a repeated entry: add, del, add leaves it there; and across sets', async (t) => {
  await ipset.create({ name: 'O1', type: 'hash:ip' })
  await ipset.create({ name: 'O2', type: 'hash:ip', family: 'inet6' })
  const outcomes = await ipset.batch([
    { op: 'add', set: 'O1', entry: { ip: '10.0.0.1' } },
    { op: 'add', set: 'O2', entry: { ip: 'fd00::1' } },
    { op: 'del', set: 'O1', entry: { ip: '10.0.0.1' } },
    { op: 'del', set: 'O2', entry: { ip: 'fd00:0::1' } },
    { op: 'add', set: 'O1', entry: { ip: '10.0.0.1' } },
    { op: 'add', set: 'O1', entry: { ip: '10.0.0.2' } },
  ])
  t.ok(outcomes.every((o) => o.ok), 'each step valid in order')
  t.same(saved().filter((l) => l.startsWith('add')), ['add O1 10.0.0.1', 'add O1 10.0.0.2'])
  await sameAsCli(t, 'ordered batch')
})

t.test('batch with exist: re-adding everything is no error', async (t) => {
  await ipset.create({ name: 'RE', type: 'hash:net' })
  const ops = Array.from({ length: 300 }, (_, i) => ({ op: 'add' as const, set: 'RE', entry: { net: `10.${i >> 8}.${i & 255}.0/24` }, exist: true }))
  t.ok((await ipset.batch(ops)).every((o) => o.ok))
  t.ok((await ipset.batch(ops)).every((o) => o.ok), 'the second time too')
  const again = await ipset.batch(ops.map((o) => ({ ...o, exist: false })))
  t.equal(again.filter((o) => !o.ok).length, 300, 'without exist every one fails, one result each')
  t.equal(listHeader('RE').entries, 300)
})

// ---- replace and sync -------------------------------------------------------------------------

t.test('replaceMembers: atomic swap-in; references, header and name kept; no temporary set left', async (t) => {
  await ipset.create({ name: 'SVC', type: 'hash:ip,port', timeout: 600, comment: true, hashsize: 2048 })
  await ipset.create({ name: 'ALL', type: 'list:set' })
  await ipset.add('ALL', { set: 'SVC' })
  ipsetCli('add', 'SVC', '10.0.0.1,tcp:80')
  ipsetCli('add', 'SVC', '10.0.0.2,tcp:80')
  const before = saved('SVC').find((l) => l.startsWith('create'))!
  await ipset.replaceMembers('SVC', [{ ip: '10.0.0.2', port: 80, comment: 'kept' }, { ip: '10.0.0.3', port: 443 }])
  t.same(savedLines('SVC').filter((l) => l.startsWith('add')), ['add SVC 10.0.0.2,tcp:80 timeout ~ comment "kept"', 'add SVC 10.0.0.3,tcp:443 timeout ~'])
  t.same(sortLines(ipsetCli('list', '-n')), ['ALL', 'SVC'], 'no temporary set left')
  t.equal(listHeader('SVC').references, 1, 'the list:set still holds it')
  t.match(saved('SVC').find((l) => l.startsWith('create')), before.replace(/initval \S+/, ''), 'same header')
  await sameAsCli(t, 'replaced')
})

t.test('replaceMembers: a refused entry leaves the set as it was', async (t) => {
  await ipset.create({ name: 'SMALL', type: 'hash:ip', maxelem: 2 })
  await ipset.add('SMALL', { ip: '10.0.0.1' })
  const err = await rejects(t, ipset.replaceMembers('SMALL', [{ ip: '10.0.0.5' }, { ip: '10.0.0.6' }, { ip: '10.0.0.7' }]), { errno: 4352, code: 'IPSET_ERR_HASH_FULL', index: 2 })
  t.ok(err)
  t.same(saved().filter((l) => l.startsWith('add')), ['add SMALL 10.0.0.1'], 'unchanged')
  t.same(sortLines(ipsetCli('list', '-n')), ['SMALL'], 'no temporary set left')
})

t.test('replaceMembers with resize: a full set grows, atomically, references kept', async (t) => {
  await ipset.create({ name: 'FULL', type: 'hash:ip,port', maxelem: 2 })
  await ipset.create({ name: 'HOLDER', type: 'list:set' })
  await ipset.add('HOLDER', { set: 'FULL' })
  await ipset.add('FULL', { ip: '10.0.0.1', port: 80 })
  await ipset.add('FULL', { ip: '10.0.0.2', port: 80 })
  await rejects(t, ipset.add('FULL', { ip: '10.0.0.3', port: 80 }), { code: 'IPSET_ERR_HASH_FULL' })
  const want = [1, 2, 3, 4, 5].map((i) => ({ ip: `10.0.0.${i}`, port: 80 }))
  await ipset.replaceMembers('FULL', want, { maxelem: 8 })
  t.match(saved('FULL').find((l) => l.startsWith('create')), /^create FULL hash:ip,port family inet hashsize \d+ maxelem 8\b/, 'ipset save shows the new maxelem')
  t.equal(savedLines('FULL').filter((l) => l.startsWith('add')).length, 5)
  t.equal(listHeader('FULL').references, 1, 'the list:set still holds it')
  t.same(sortLines(ipsetCli('list', '-n')), ['FULL', 'HOLDER'], 'no temporary set left')
  t.match(await ipset.header('FULL'), { maxelem: 8, entries: 5 })
  await ipset.add('FULL', { ip: '10.0.0.6', port: 80 })
  await sameAsCli(t, 'grown')
})

t.test('syncMembers: only the difference travels; the result is what ipset save shows', async (t) => {
  await ipset.create({ name: 'SYNC', type: 'hash:ip,port,net' })
  restore(['add SYNC 10.0.0.1,tcp:80,10.1.0.0/16', 'add SYNC 10.0.0.2,tcp:80,10.2.0.0/16', 'add SYNC 10.0.0.3,udp:53,10.3.3.3'])
  const r = await ipset.syncMembers('SYNC', [
    { ip: '10.0.0.1', protocol: 'tcp', port: 80, net: '10.1.7.7/16' },
    { ip: '10.0.0.3', protocol: 'udp', port: 53, net: '10.3.3.3/32' },
    { ip: '10.0.0.4', protocol: 'tcp', port: 8080, net: '10.4.0.0/24' },
  ])
  t.strictSame(r, { added: 1, deleted: 1, unchanged: 2, errors: [] })
  t.same(saved('SYNC').filter((l) => l.startsWith('add')), ['add SYNC 10.0.0.1,tcp:80,10.1.0.0/16', 'add SYNC 10.0.0.3,udp:53,10.3.3.3', 'add SYNC 10.0.0.4,tcp:8080,10.4.0.0/24'])
  t.strictSame(await ipset.syncMembers('SYNC', [{ ip: '10.0.0.4', protocol: 'tcp', port: 8080, net: '10.4.0.0/24' }]), { added: 0, deleted: 2, unchanged: 1, errors: [] })
  await sameAsCli(t, 'synced')
})

// ---- a stale picture of a set -------------------------------------------------------------

t.test('a set re-created by another program: the kernel\'s refusal makes the handle read it again', async (t) => {
  await ipset.create({ name: 'STALE', type: 'hash:ip', timeout: 60 })
  await ipset.add('STALE', { ip: '10.0.0.1', timeout: 5 })
  ipsetCli('destroy', 'STALE')
  ipsetCli('create', 'STALE', 'hash:ip') // no timeouts now
  await rejects(t, ipset.add('STALE', { ip: '10.0.0.2', timeout: 5 }), { errno: 4107, code: 'IPSET_ERR_TIMEOUT', message: /set was created without timeout support/ })
  await refused(t, ipset.add('STALE', { ip: '10.0.0.2', timeout: 5 }), 'entry.timeout')
  await ipset.add('STALE', { ip: '10.0.0.2' })
  t.same(saved('STALE').filter((l) => l.startsWith('add')), ['add STALE 10.0.0.2'])
})

t.test('close() lets every call started before it finish; calls after it fail with EBADF', async (t) => {
  await ipset.create({ name: 'CL', type: 'hash:ip' })
  await ipset.create({ name: 'CL2', type: 'hash:ip' })
  await ipset.add('CL', { ip: '10.9.0.1' })
  const h = await IpSet.open()
  // Each of these waits for a set header or yields between slices before its first request.
  const started = callsInFlight(h, { set: 'CL', add: '10.9.0.2', del: '10.9.0.1', batch: manyAdds('CL2', 4200), create: 'CL3', sync: ['10.9.0.2', '10.9.0.3'] })
  const closed = h.close()
  const late = await rejection(h.add('CL', { ip: '10.9.0.9' }))
  const results = await Promise.allSettled(started)
  t.strictSame(results.map((r) => r.status), started.map(() => 'fulfilled'), `every call started before close() resolved (${results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : [])).join('; ')})`)
  const outcomes = (results[3] as PromiseFulfilledResult<{ ok: boolean }[]>).value
  t.equal(outcomes.filter((o) => o.ok).length, 4200, 'the batch: 4200 ok')
  await closed
  t.match(late, { errno: 9, code: 'EBADF', op: 'ipset.add' }, 'a call after close(): EBADF')
  t.ok(late instanceof NetlinkError)
  t.match(await rejection(h.list('CL')), { errno: 9, code: 'EBADF', op: 'ipset.list' })
  t.strictSame(saved('CL').filter((l) => l.startsWith('add ')).sort(), ['add CL 10.9.0.2', 'add CL 10.9.0.3'], 'ipset save: CL as the calls left it')
  t.equal(listHeader('CL2').entries, 4200, 'ipset: the batch is in')
  t.ok(ipsetCli('list', '-n').split('\n').includes('CL3'), 'ipset: the created set is there')
})

t.test('concurrent calls on one handle run in order', async (t) => {
  await ipset.create({ name: 'CC', type: 'hash:ip' })
  const ps = Array.from({ length: 50 }, (_, i) => ipset.add('CC', { ip: `10.0.0.${i}` }))
  ps.push(ipset.del('CC', { ip: '10.0.0.0' }))
  await Promise.all(ps)
  t.equal(listHeader('CC').entries, 49)
  t.equal(await ipset.test('CC', { ip: '10.0.0.0' }), false)
})
