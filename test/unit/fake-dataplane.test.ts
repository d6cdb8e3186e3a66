// test/support/fake-dataplane.ts on its own: each kernel answer it claims to
// give, and its helpers (call log, refusals, drift behind the proxier's back).
// Where the kernel's answer is the question, test/support/contract.ts holds the
// scenario and test/kernel/dataplane-contract.ktest.ts checks it in the box.
import t from 'tap'
import { FakeDataplane, entryText, ipvsDetail, vsKey } from '../support/fake-dataplane.js'
import { NetlinkError, ValidationError } from '../../dist/errors.js'
import type { Outcome } from '../../dist/ipvs.js'

const web = { protocol: 'tcp' as const, address: '10.96.0.1', port: 80 }
const codes = (rs: readonly Outcome[]): string[] => rs.map((r) => (r.ok ? 'ok' : `${r.error.code} ${r.error.op} ${(r.error as NetlinkError).index}`))

// ---- IPVS ------------------------------------------------------------------------------------

t.test('IPVS: a second add is EEXIST, for services and destinations', async (t) => {
  const dp = new FakeDataplane()
  const add = { op: 'addService' as const, service: web }
  const dest = { op: 'addDestination' as const, service: web, destination: { address: '10.0.0.1', port: 8080 } }
  t.strictSame(codes(await dp.ipvs.batch([add, add, dest, dest])), ['ok', 'EEXIST ipvs.addService 1', 'ok', 'EEXIST ipvs.addDestination 3'])
})

t.test('IPVS: a missing service is ESRCH, a missing destination ENOENT', async (t) => {
  const dp = new FakeDataplane()
  const destination = { address: '10.0.0.1', port: 8080 }
  t.strictSame(
    codes(await dp.ipvs.batch([
      { op: 'updateService', service: web },
      { op: 'deleteService', service: web },
      { op: 'addDestination', service: web, destination },
      { op: 'addService', service: web },
      { op: 'updateDestination', service: web, destination },
      { op: 'deleteDestination', service: web, destination },
    ])),
    ['ESRCH ipvs.updateService 0', 'ESRCH ipvs.deleteService 1', 'ESRCH ipvs.addDestination 2', 'ok', 'ENOENT ipvs.updateDestination 4', 'ENOENT ipvs.deleteDestination 5'],
  )
})

t.test('IPVS: one result per op, in order; a refused op leaves the others applied', async (t) => {
  const dp = new FakeDataplane()
  const rs = await dp.ipvs.batch([
    { op: 'addService', service: web },
    { op: 'addService', service: web },
    { op: 'addService', service: { ...web, port: 443 } },
  ])
  t.equal(rs.length, 3)
  t.ok(!rs[1]!.ok && rs[1]!.error instanceof NetlinkError && rs[1]!.error.errno === 17, 'the refusal is a NetlinkError with the errno')
  t.strictSame([...dp.services.keys()].sort(), ['tcp/10.96.0.1:443', 'tcp/10.96.0.1:80'])
})

t.test('IPVS: records read back in lib/ipvs shapes, with the kernel defaults', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipvs.batch([
    { op: 'addService', service: web },
    { op: 'addService', service: { protocol: 'udp', address: 'fd00::1', port: 53, scheduler: 'rr', persistent: true } },
    { op: 'addDestination', service: web, destination: { address: '10.0.0.1', port: 8080, weight: 3 } },
  ])
  const stats = { conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 }
  const dest = { family: 'inet', address: '10.0.0.1', port: 8080, forward: 'masq', weight: 3, upperThreshold: 0, lowerThreshold: 0, activeConns: 0, inactiveConns: 0, persistConns: 0, stats }
  t.strictSame(await dp.ipvs.listServices({ destinations: true }), [
    { family: 'inet', protocol: 'tcp', address: '10.96.0.1', port: 80, scheduler: 'wlc', persistent: false, timeout: 0, netmask: 32, flags: [], stats, destinations: [dest] },
    { family: 'inet6', protocol: 'udp', address: 'fd00::1', port: 53, scheduler: 'rr', persistent: true, timeout: 360, netmask: 128, flags: ['persistent'], stats, destinations: [] },
  ])
  t.notOk('destinations' in (await dp.ipvs.listServices())[0]!, 'no destinations unless asked')
  t.strictSame(await dp.ipvs.listDestinations(web), [dest])
  t.strictSame(await dp.ipvs.listDestinations({ ...web, port: 1 }), [], 'a missing service has no destinations (no error)')
})

t.test('IPVS: records are copies; updates change weight and forwarding only', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipvs.batch([{ op: 'addService', service: web }, { op: 'addDestination', service: web, destination: { address: '10.0.0.1', port: 8080 } }])
  const [s] = await dp.ipvs.listServices({ destinations: true })
  s!.destinations![0]!.weight = 99
  t.strictSame(dp.dests(vsKey(web)), ['10.0.0.1:8080 w1 masq'], 'editing a record edits no kernel state')
  await dp.ipvs.batch([{ op: 'updateDestination', service: web, destination: { address: '10.0.0.1', port: 8080, weight: 0, forward: 'tunnel' } }])
  t.strictSame(dp.dests(vsKey(web)), ['10.0.0.1:8080 w0 tunnel'])
})

t.test('IPVS: flush empties the table; fwmark services are refused (EINVAL)', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipvs.batch([{ op: 'addService', service: web }])
  t.strictSame(codes(await dp.ipvs.batch([{ op: 'flush' }, { op: 'addService', service: { fwmark: 1 } }])), ['ok', 'EINVAL ipvs.addService 1'])
  t.equal(dp.services.size, 0)
})

// ---- ipset -----------------------------------------------------------------------------------

t.test('ipset: members are added once and deleted once (IPSET_ERR_EXIST) unless exist', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipset.create({ name: 'S', type: 'hash:ip,port' })
  const e = { ip: '10.0.0.1', protocol: 'tcp' as const, port: 80 }
  const rs = await dp.ipset.batch([
    { op: 'add', set: 'S', entry: e },
    { op: 'add', set: 'S', entry: e },
    { op: 'add', set: 'S', entry: e, exist: true },
    { op: 'del', set: 'S', entry: { ...e, port: 81 } },
    { op: 'del', set: 'S', entry: { ...e, port: 81 }, exist: true },
    { op: 'add', set: 'T', entry: e },
  ])
  t.strictSame(codes(rs), ['ok', 'IPSET_ERR_EXIST ipset.add 1', 'ok', 'IPSET_ERR_EXIST ipset.del 3', 'ok', 'ENOENT ipset.add 5'])
  t.strictSame(dp.members('S'), ['10.0.0.1,tcp:80'])
})

t.test('ipset: create is EEXIST for a set that exists, unless exist and the same type and family', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipset.create({ name: 'S', type: 'hash:ip' })
  await t.resolves(dp.ipset.create({ name: 'S', type: 'hash:ip', exist: true }))
  await t.rejects(dp.ipset.create({ name: 'S', type: 'hash:ip' }), { name: 'NetlinkError', code: 'EEXIST', op: 'ipset.create' })
  await t.rejects(dp.ipset.create({ name: 'S', type: 'hash:net', exist: true }), { code: 'EEXIST' })
  await t.rejects(dp.ipset.create({ name: 'S', type: 'hash:ip', family: 'inet6', exist: true }), { code: 'EEXIST' })
  await t.rejects(dp.ipset.create({ name: 'B', type: 'bitmap:port' }), { name: 'ValidationError', field: 'range' })
})

t.test('ipset: entries must fit the set type, family and range; a batch is checked whole first', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipset.create({ name: 'S', type: 'hash:ip,port' })
  await dp.ipset.create({ name: 'P', type: 'bitmap:port', range: [30000, 32767] })
  const good = { op: 'add' as const, set: 'S', entry: { ip: '10.0.0.1', protocol: 'tcp' as const, port: 80 } }
  await t.rejects(dp.ipset.batch([good, { op: 'add', set: 'S', entry: { ip: '10.0.0.2' } }]), { name: 'ValidationError', field: 'entry.port', index: 1 })
  await t.rejects(dp.ipset.batch([{ op: 'add', set: 'S', entry: { ip: '10.0.0.2', port: 1, net: '10.0.0.0/8' } }]), { name: 'ValidationError', field: 'entry.net' })
  await t.rejects(dp.ipset.batch([{ op: 'add', set: 'S', entry: { ip: 'fd00::1', port: 1 } }]), { name: 'ValidationError', field: 'entry' })
  await t.rejects(dp.ipset.batch([{ op: 'add', set: 'P', entry: { port: 80 } }]), { name: 'ValidationError', field: 'entry.port' })
  t.strictSame(dp.members('S'), [], 'nothing of a refused batch applied')
  t.ok((await dp.ipset.batch([{ op: 'add', set: 'P', entry: { port: 30080 } }]))[0]!.ok)
})

t.test('ipset: syncMembers adds what is missing, deletes what is extra, counts the rest', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipset.create({ name: 'S', type: 'hash:ip' })
  t.strictSame(await dp.ipset.syncMembers('S', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }]), { added: 2, deleted: 0, unchanged: 0, errors: [] })
  t.strictSame(await dp.ipset.syncMembers('S', [{ ip: '10.0.0.2' }, { ip: '10.0.0.3' }]), { added: 1, deleted: 1, unchanged: 1, errors: [] })
  t.strictSame(dp.members('S'), ['10.0.0.2', '10.0.0.3'])
  await t.rejects(dp.ipset.syncMembers('T', []), { code: 'ENOENT', op: 'ipset.syncMembers' })
})

t.test('ipset: destroy and listNames', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipset.create({ name: 'S', type: 'hash:ip' })
  t.strictSame(await dp.ipset.listNames(), ['S'])
  await dp.ipset.destroy('S')
  t.strictSame(await dp.ipset.listNames(), [])
  await t.rejects(dp.ipset.destroy('S'), { code: 'ENOENT', op: 'ipset.destroy' })
  await t.resolves(dp.ipset.destroy('S', { exist: true }))
})

t.test('entryText: entries as ipset save prints them', async (t) => {
  t.equal(entryText({ ip: '10.0.0.1' }), '10.0.0.1')
  t.equal(entryText({ port: 80 }), '80')
  t.equal(entryText({ ip: '10.0.0.1', protocol: 'tcp', port: 80 }), '10.0.0.1,tcp:80')
  t.equal(entryText({ ip: '10.0.0.1', protocol: 'tcp', port: 80, ip2: '10.0.0.1' }), '10.0.0.1,tcp:80,10.0.0.1')
  t.equal(entryText({ ip: '10.0.0.1', protocol: 'tcp', port: 80, net: '10.0.0.0/8' }), '10.0.0.1,tcp:80,10.0.0.0/8')
  t.equal(entryText({ net: '10.0.0.0/8' }), '10.0.0.0/8')
})

// ---- rtnetlink --------------------------------------------------------------------------------

t.test('rtnetlink: lo and the node addresses exist from the start', async (t) => {
  const dp = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10', prefix: 24 }] })
  t.strictSame(
    (await dp.rtnl.listAddresses({ family: 'inet' })).map((a) => `${a.link} ${a.address}/${a.prefix} ${a.scope}`),
    ['lo 127.0.0.1/8 host', 'eth0 192.168.1.10/24 global'],
  )
  t.match(await dp.rtnl.getLink('lo'), { index: 1, name: 'lo', type: 'loopback' })
  t.match(await dp.rtnl.getLink(2), { name: 'eth0' }, 'by index too')
  t.equal(await dp.rtnl.getLink('nope'), undefined)
})

t.test('rtnetlink: addDummy is EEXIST for a link that exists unless exist (and a dummy)', async (t) => {
  const dp = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10' }] })
  t.equal(await dp.rtnl.addDummy('kube-ipvs0'), true)
  t.equal(await dp.rtnl.addDummy('kube-ipvs0', { exist: true }), false)
  await t.rejects(dp.rtnl.addDummy('kube-ipvs0'), { code: 'EEXIST', op: 'route.addDummy' })
  await t.rejects(dp.rtnl.addDummy('eth0', { exist: true }), { code: 'EEXIST' }, 'exist does not make a non-dummy fit')
  t.match(await dp.rtnl.getLink('kube-ipvs0'), { name: 'kube-ipvs0', kind: 'dummy' })
})

t.test('rtnetlink: addresses: EEXIST twice, EADDRNOTAVAIL when missing, ENODEV without the link; exist makes them unchanged', async (t) => {
  const dp = new FakeDataplane()
  await dp.rtnl.addDummy('kube-ipvs0')
  const a = { address: '10.96.0.1', noPrefixRoute: true }
  const rs = await dp.rtnl.batch([
    { op: 'addAddress', link: 'kube-ipvs0', address: a },
    { op: 'addAddress', link: 'kube-ipvs0', address: a },
    { op: 'addAddress', link: 'kube-ipvs0', address: a, exist: true },
    { op: 'addAddress', link: 'nope', address: a },
    { op: 'deleteAddress', link: 'kube-ipvs0', address: '10.96.0.2' },
    { op: 'deleteAddress', link: 'kube-ipvs0', address: '10.96.0.2', exist: true },
  ])
  t.strictSame(codes(rs), ['ok', 'EEXIST route.addAddress 1', 'ok', 'ENODEV route.addAddress 3', 'EADDRNOTAVAIL route.deleteAddress 4', 'ok'])
  t.strictSame([rs[2], rs[5]], [{ ok: true, unchanged: true }, { ok: true, unchanged: true }])
  t.strictSame(await dp.rtnl.listAddresses({ link: 'kube-ipvs0' }), [
    { family: 'inet', address: '10.96.0.1', prefix: 32, index: 2, link: 'kube-ipvs0', scope: 'global', flags: ['permanent', 'noprefixroute'] },
  ])
  await t.rejects(dp.rtnl.listAddresses({ link: 'nope' }), { code: 'ENODEV' })
})

t.test('rtnetlink: deleteLink takes its addresses along; ENODEV when missing unless exist', async (t) => {
  const dp = new FakeDataplane()
  await dp.rtnl.addDummy('kube-ipvs0')
  await dp.rtnl.batch([{ op: 'addAddress', link: 'kube-ipvs0', address: '10.96.0.1' }])
  t.equal(await dp.rtnl.deleteLink('kube-ipvs0'), true)
  t.strictSame(dp.addressesOf('kube-ipvs0'), [])
  t.equal(await dp.rtnl.deleteLink('kube-ipvs0', { exist: true }), false)
  await t.rejects(dp.rtnl.deleteLink('kube-ipvs0'), { code: 'ENODEV', op: 'route.deleteLink' })
})

// ---- tables, conntrack, sysctl -------------------------------------------------------------------

t.test('tables: sync writes what differs; jumps go on top in spec order; remove takes both away', async (t) => {
  const dp = new FakeDataplane()
  const jump = (to: string) => ({ target: { jump: to } })
  const spec = { chains: new Map([['KUBE-A', [jump('KUBE-B')]], ['KUBE-B', []]]), jumps: [{ chain: 'PREROUTING', rule: jump('KUBE-A') }, { chain: 'PREROUTING', rule: jump('KUBE-B') }] }
  t.strictSame(await dp.tables.sync('nat', spec), { repaired: ['KUBE-A', 'KUBE-B', 'PREROUTING jump', 'PREROUTING jump'], committed: true })
  t.strictSame(await dp.tables.sync('nat', spec), { repaired: [], committed: false }, 'nothing to write: no commit')
  t.strictSame([...dp.chains('nat')!.keys()], ['KUBE-A', 'KUBE-B'])
  t.strictSame(dp.heldTables.get('nat')!.jumps.map((j) => j.rule.target), [{ jump: 'KUBE-A' }, { jump: 'KUBE-B' }])
  dp.dropChain('nat', 'KUBE-B')
  t.strictSame(await dp.tables.sync('nat', spec), { repaired: ['KUBE-B'], committed: true }, 'a dropped chain is repaired alone')
  t.strictSame(await dp.tables.remove('nat', spec), { repaired: ['PREROUTING jump', 'PREROUTING jump', 'KUBE-A', 'KUBE-B'], committed: true })
  t.strictSame([...dp.chains('nat')!.keys()], [])
})

t.test('tables: an inet6 view shares the kernel but holds its own tables', async (t) => {
  const dp = new FakeDataplane()
  const v6 = dp.inet6View()
  t.equal(v6.ipvs, dp.ipvs)
  t.equal(v6.ipset, dp.ipset)
  await v6.tables.sync('nat', { chains: new Map([['KUBE-X', []]]), jumps: [] })
  t.equal(dp.chains('nat'), undefined, 'not in the inet tables')
  t.strictSame([...dp.heldTables6.get('nat')!.chains.keys()], ['KUBE-X'])
  t.strictSame(dp.writes('tables'), ['ip6 sync nat KUBE-X'])
})

t.test('conntrack and sysctl: deletes recorded; ensureSysctl says whether it changed', async (t) => {
  const dp = new FakeDataplane()
  t.equal(await dp.conntrack.delete({ protocol: 'udp', destination: '10.96.0.10' }), 0)
  t.strictSame(dp.conntrackDeletes, [{ protocol: 'udp', destination: '10.96.0.10' }])
  t.equal(await dp.ensureSysctl('net.ipv4.vs.conntrack', 1), true)
  t.equal(await dp.ensureSysctl('net.ipv4.vs.conntrack', 1), false)
  await dp.close()
  t.equal(dp.closed, true)
})

// ---- the helpers ---------------------------------------------------------------------------------

t.test('refuse: the next matching ops fail with the errno, as many times as asked', async (t) => {
  const dp = new FakeDataplane()
  dp.refuse('ipvs', 'addService', { times: 2 })
  dp.refuse('conntrack', /udp/, { errno: 1 })
  const add = { op: 'addService' as const, service: web }
  t.strictSame(codes(await dp.ipvs.batch([add, add, add])), ['ENOMEM ipvs.addService 0', 'ENOMEM ipvs.addService 1', 'ok'])
  await t.rejects(dp.conntrack.delete({ protocol: 'udp' }), { code: 'EPERM', op: 'conntrack.delete' })
  t.strictSame(dp.conntrackDeletes, [], 'a refused delete deletes nothing')
})

t.test('the call log: reads, ensures and writes, and whether each changed anything', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipvs.listServices()
  await dp.ipset.create({ name: 'S', type: 'hash:ip' })
  await dp.ipvs.batch([{ op: 'addService', service: web }, { op: 'addService', service: web }])
  t.strictSame(dp.calls.map((c) => `${c.sub} ${c.kind} ${c.changed}${c.error ? ` ${c.error}` : ''}`), ['ipvs read false', 'ipset ensure true', 'ipvs write true', 'ipvs write false EEXIST'])
  t.strictSame(dp.writes(), ['ipvs addService tcp/10.96.0.1:80 wlc', 'ipvs addService tcp/10.96.0.1:80 wlc'])
  t.strictSame(dp.changes(), ['ipset create S', 'ipvs addService tcp/10.96.0.1:80 wlc'])
  dp.clearCalls()
  t.strictSame(dp.calls, [])
})

t.test('drift helpers: the kernel changed behind the proxier\'s back', async (t) => {
  const dp = new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10' }] })
  dp.addForeignService({ ...web, scheduler: 'rr' }, ['10.0.0.1:80'])
  t.strictSame(dp.dests(vsKey(web)), ['10.0.0.1:80 w1 masq'])
  dp.setConns(vsKey(web), '10.0.0.1:80', 3, 1)
  t.match((await dp.ipvs.listDestinations(web))[0], { activeConns: 3, inactiveConns: 1 })
  t.throws(() => dp.setConns(vsKey(web), '10.0.0.9:80', 1), /no destination/)
  dp.flushIpvs()
  t.equal(dp.services.size, 0)
  await dp.ipset.create({ name: 'S', type: 'hash:ip' })
  await dp.ipset.batch([{ op: 'add', set: 'S', entry: { ip: '10.0.0.1' } }])
  dp.deleteSetMember('S', '10.0.0.1')
  t.strictSame(dp.members('S'), [])
  t.throws(() => dp.deleteSetMember('S', '10.0.0.1'), /no member/)
  dp.bindAddress('kube-ipvs0', '10.96.0.1')
  t.match(await dp.rtnl.getLink('kube-ipvs0'), { kind: 'dummy' }, 'binding to kube-ipvs0 makes the dummy')
  t.strictSame(dp.addressRecord('kube-ipvs0', '10.96.0.1')?.flags, ['noprefixroute', 'permanent'])
  dp.removeAddress('eth0', '192.168.1.10')
  t.strictSame(dp.addressesOf('eth0'), [])
  t.throws(() => dp.removeAddress('eth0', '192.168.1.10'), /no 192.168.1.10/)
  t.throws(() => dp.dropChain('nat', 'KUBE-X'), /no chain/)
  t.equal(ipvsDetail({ op: 'addDestination', service: web, destination: { address: 'fd00::1', port: 80, weight: 2 } }), 'addDestination tcp/10.96.0.1:80 [fd00::1]:80 w2 masq')
})

t.test('a ValidationError from the fake is the library\'s own class', async (t) => {
  const dp = new FakeDataplane()
  await dp.ipset.create({ name: 'S', type: 'hash:ip' })
  const e = await dp.ipset.batch([{ op: 'add', set: 'S', entry: { port: 1 } }]).catch((x: unknown) => x)
  t.ok(e instanceof ValidationError)
})
