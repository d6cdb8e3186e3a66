// lib/route on the host, without a kernel: every refusal is a ValidationError
// naming the operation and the field, with nothing sent; valid calls become the
// wire operations whose bytes test/unit/route-fixtures.test.ts pins; the
// kernel's "already there" / "already gone" answers become what the API
// promises. A real Rtnl runs over a real NetlinkSocket over a fake native handle
// that records each batch, checks native.encode accepts it, and answers as told.
import t, { type Test } from 'tap'
import { NetlinkError, Rtnl, ValidationError, alreadyExists, alreadyGone } from '../../dist/index.js'
import type { NativeOp, NativeResult } from '../../dist/native.js'
import { openRecording } from '../support/fake-netlink.js'
import { outcome } from '../support/outcome.js'

const EEXIST = 17
const ENODEV = 19
const EPERM = 1
const EADDRNOTAVAIL = 99

type Answer = (op: NativeOp) => NativeResult
const ok: NativeResult = { error: 0, records: [] }

/** Links the fake kernel knows, by name. */
const links: Record<string, { index: number; kind?: string; flags?: number; mtu?: number }> = {
  lo: { index: 1, flags: 0x10049, mtu: 65536 },
  'kube-ipvs0': { index: 5, kind: 'dummy', flags: 0x82, mtu: 1500 },
  eth0: { index: 2, kind: 'veth', flags: 0x11043, mtu: 1500 },
}
function linkRaw(name: string): Record<string, unknown> {
  const l = links[name]!
  return { kind: 'link', index: l.index, name, type: name === 'lo' ? 772 : 1, flags: l.flags ?? 0, mtu: l.mtu, operState: 0, ...(l.kind ? { linkKind: l.kind } : {}) }
}

/** The default kernel: knows the links above, accepts every change. */
const kernel: Answer = (op) => {
  if (op.cmd === 'getLink') {
    const name = op.name as string | undefined
    return name && links[name] ? { error: 0, records: [linkRaw(name) as never] } : { error: ENODEV, records: [] }
  }
  if (op.cmd === 'listLinks') return { error: 0, records: Object.keys(links).map(linkRaw) as never[] }
  return ok
}

// Rtnl.open() runs against the default kernel; the test's answers and record start after it.
async function fake(answer: Answer = kernel): Promise<{ rtnl: Rtnl; sent: NativeOp[][] }> {
  const { handle: rtnl, sent } = await openRecording(t, 'route', () => Rtnl.open(), kernel, answer)
  return { rtnl, sent }
}

interface Want {
  op: string
  field: string
  value?: unknown
  index?: number
}

async function refused(t: Test, call: (r: Rtnl) => Promise<unknown>, want: Want): Promise<void> {
  const { rtnl, sent } = await fake()
  const e = await outcome(call(rtnl))
  if (!(e instanceof ValidationError)) {
    t.fail(`expected a ValidationError on ${want.field}, got ${JSON.stringify(e)}`)
    return
  }
  t.equal(e.op, want.op, `op ${want.op}`)
  t.equal(e.field, want.field, `field ${want.field}`)
  if ('value' in want) t.strictSame(e.value, want.value, 'value is the offending input')
  t.equal(e.index, want.index)
  t.equal(sent.length, 0, 'nothing was sent')
}

// =========================================================================================
// Refusals
// =========================================================================================

t.test('link names: the kernel rules (1..15 bytes, no / : or space, not . or ..)', async (t) => {
  for (const name of ['', 'a'.repeat(16), 'a/b', 'a b', 'eth0:1', '.', '..', 'tab\there', 7, undefined]) {
    await refused(t, (r) => r.addDummy(name as string), { op: 'route.addDummy', field: 'name', value: name })
  }
  await refused(t, (r) => r.deleteLink('x'.repeat(16)), { op: 'route.deleteLink', field: 'link' })
  await refused(t, (r) => r.getLink(''), { op: 'route.getLink', field: 'link', value: '' })
  for (const index of [0, -1, 1.5, 2 ** 31, NaN]) await refused(t, (r) => r.setLink(index, { up: true }), { op: 'route.setLink', field: 'link', value: index })
  await refused(t, (r) => r.getLink({} as never), { op: 'route.getLink', field: 'link' })
})

t.test('link options: up and exist are booleans, MTU 68..65535', async (t) => {
  await refused(t, (r) => r.addDummy('d0', { up: 'yes' as never }), { op: 'route.addDummy', field: 'options.up', value: 'yes' })
  await refused(t, (r) => r.addDummy('d0', { exist: 1 as never }), { op: 'route.addDummy', field: 'exist', value: 1 })
  for (const mtu of [67, 65536, '1500', 1500.5])
    await refused(t, (r) => r.addDummy('d0', { mtu: mtu as number }), { op: 'route.addDummy', field: 'options.mtu', value: mtu })
  await refused(t, (r) => r.setLink('d0', { mtu: 10 }), { op: 'route.setLink', field: 'change.mtu', value: 10 })
  await refused(t, (r) => r.setLink('d0', { up: 0 as never }), { op: 'route.setLink', field: 'change.up', value: 0 })
  await refused(t, (r) => r.setLink('d0', null as never), { op: 'route.setLink', field: 'change' })
  await refused(t, (r) => r.deleteLink('d0', { exist: 'true' as never }), { op: 'route.deleteLink', field: 'exist' })
})

t.test('addresses: malformed, prefixes past the family, flags that do not apply', async (t) => {
  for (const address of ['10.0.0.256', '10.0.0.1/32', 'example.com', '', 'fe80::1%eth0'])
    await refused(t, (r) => r.addAddress('lo', address), { op: 'route.addAddress', field: 'address.address', value: address })
  await refused(t, (r) => r.addAddress('lo', { address: '10.0.0.1', prefix: 33 }), { op: 'route.addAddress', field: 'address.prefix', value: 33 })
  await refused(t, (r) => r.addAddress('lo', { address: 'fd00::1', prefix: 129 }), { op: 'route.addAddress', field: 'address.prefix', value: 129 })
  await refused(t, (r) => r.addAddress('lo', { address: 'fd00::1', prefix: -1 }), { op: 'route.addAddress', field: 'address.prefix', value: -1 })
  await refused(t, (r) => r.addAddress('lo', { address: '10.0.0.1', nodad: true }), { op: 'route.addAddress', field: 'address.nodad', value: true })
  await refused(t, (r) => r.addAddress('lo', { address: '10.0.0.1', noPrefixRoute: 'yes' as never }), { op: 'route.addAddress', field: 'address.noPrefixRoute' })
  await refused(t, (r) => r.addAddress('lo', { address: '10.0.0.1', scope: 'universe' as never }), { op: 'route.addAddress', field: 'address.scope', value: 'universe' })
  await refused(t, (r) => r.addAddress('lo', { address: '10.0.0.1', peer: 'fd00::2' }), { op: 'route.addAddress', field: 'address.peer', value: 'fd00::2' })
  await refused(t, (r) => r.addAddress('lo', 42 as never), { op: 'route.addAddress', field: 'address' })
  await refused(t, (r) => r.addAddress('no such', '10.0.0.1'), { op: 'route.addAddress', field: 'link', value: 'no such' })
  await refused(t, (r) => r.deleteAddress('lo', { address: '10.0.0.1', prefix: 40 }), { op: 'route.deleteAddress', field: 'address.prefix', value: 40 })
  await refused(t, (r) => r.bindAddress('kube-ipvs0', '10.96.0.300'), { op: 'route.bindAddress', field: 'address', value: '10.96.0.300' })
  await refused(t, (r) => r.unbindAddress('kube-ipvs0', 'x'), { op: 'route.unbindAddress', field: 'address', value: 'x' })
  await refused(t, (r) => r.listAddresses({ family: 'ipv4' as never }), { op: 'route.listAddresses', field: 'filter.family', value: 'ipv4' })
  await refused(t, (r) => r.listAddresses({ link: 0 }), { op: 'route.listAddresses', field: 'filter.link', value: 0 })
})

t.test('batch: every operation checked first; a bad one names its index and nothing is sent', async (t) => {
  const good = { op: 'addAddress', link: 'kube-ipvs0', address: '10.96.0.1' } as const
  await refused(t, (r) => r.batch([good, good, { op: 'addAddress', link: 'kube-ipvs0', address: { address: '10.96.0.3', prefix: 64 } }]), {
    op: 'route.addAddress',
    field: 'address.prefix',
    value: 64,
    index: 2,
  })
  await refused(t, (r) => r.batch([good, { op: 'flushAddresses', link: 'lo' } as never]), { op: 'route.flushAddresses', field: 'op', value: 'flushAddresses', index: 1 })
  await refused(t, (r) => r.batch([null as never]), { op: 'route.batch', field: 'op', index: 0 })
  await refused(t, (r) => r.batch('ops' as never), { op: 'route.batch', field: 'ops', value: 'ops' })
})

// =========================================================================================
// Wire forms and answers
// =========================================================================================

t.test('bindAddress: a host address, noprefixroute, IPv6 nodad; the link looked up by name first', async (t) => {
  const { rtnl, sent } = await fake()
  t.equal(await rtnl.bindAddress('kube-ipvs0', '10.96.0.10'), true, 'bound now')
  t.equal(await rtnl.bindAddress('kube-ipvs0', 'fd00::10'), true)
  t.strictSame(sent, [
    [{ cmd: 'getLink', name: 'kube-ipvs0' }],
    [{ cmd: 'newAddr', family: 2, prefix: 32, address: '10.96.0.10', flags: 0x200, scope: 0, index: 5 }],
    [{ cmd: 'getLink', name: 'kube-ipvs0' }],
    [{ cmd: 'newAddr', family: 10, prefix: 128, address: 'fd00::10', flags: 0x202, scope: 0, index: 5 }],
  ])
})

t.test('addAddress: EEXIST is an error naming the operation, or false with exist; an index skips the lookup', async (t) => {
  const { rtnl, sent } = await fake((op) => (op.cmd === 'newAddr' ? { error: EEXIST, extack: 'ipv4: Address already assigned', records: [] } : kernel(op)))
  const e = await outcome(rtnl.addAddress(5, { address: '10.96.0.10', prefix: 24, scope: 'host' }))
  t.ok(e instanceof NetlinkError, 'a NetlinkError')
  t.match(e, { errno: EEXIST, code: 'EEXIST', op: 'route.addAddress', extack: 'ipv4: Address already assigned' })
  t.equal((e as NetlinkError).index, undefined, 'no batch index outside a batch')
  t.ok(alreadyExists(e) && !alreadyGone(e), 'alreadyExists says so')
  t.equal(await rtnl.addAddress(5, '10.96.0.10', { exist: true }), false, 'exist: false, not an error')
  t.equal(await rtnl.bindAddress(5, '10.96.0.10'), false, 'bindAddress: already bound')
  t.strictSame(sent[0], [{ cmd: 'newAddr', family: 2, prefix: 24, address: '10.96.0.10', flags: 0, scope: 254, index: 5 }], 'no getLink for an index')
})

t.test('deleteAddress: EADDRNOTAVAIL and a missing link are "already gone"', async (t) => {
  const { rtnl, sent } = await fake((op) => (op.cmd === 'delAddr' ? { error: EADDRNOTAVAIL, records: [] } : kernel(op)))
  const e = await outcome(rtnl.deleteAddress('kube-ipvs0', '10.96.0.10'))
  t.match(e, { errno: EADDRNOTAVAIL, code: 'EADDRNOTAVAIL', op: 'route.deleteAddress' })
  t.ok(alreadyGone(e) && !alreadyExists(e), 'alreadyGone says so')
  t.equal(await rtnl.deleteAddress('kube-ipvs0', '10.96.0.10', { exist: true }), false)
  t.equal(await rtnl.unbindAddress('kube-ipvs0', 'fd00::10'), false)
  sent.length = 0
  const gone = await outcome(rtnl.deleteAddress('kube-ipvs1', '10.96.0.10'))
  t.match(gone, { errno: ENODEV, code: 'ENODEV', op: 'route.deleteAddress', message: 'route.deleteAddress: ENODEV: no link named "kube-ipvs1"' })
  t.ok(alreadyGone(gone), 'a missing link is already gone too')
  t.equal(await rtnl.unbindAddress('kube-ipvs1', '10.96.0.10'), false, 'unbind from a missing link: false')
  t.strictSame(sent, [[{ cmd: 'getLink', name: 'kube-ipvs1' }], [{ cmd: 'getLink', name: 'kube-ipvs1' }]], 'no delete was sent for a link that is not there')
  const add = await outcome(rtnl.addAddress('kube-ipvs1', '10.96.0.10', { exist: true }))
  t.match(add, { errno: ENODEV, op: 'route.addAddress' }, 'adding to a missing link stays an error, exist or not')
})

t.test('batch: one lookup per distinct link name, one outcome per operation, in order', async (t) => {
  const { rtnl, sent } = await fake((op) => {
    if (op.cmd === 'newAddr' && op.address === '10.96.0.2') return { error: EEXIST, records: [] }
    if (op.cmd === 'delAddr' && op.address === '10.96.0.9') return { error: EADDRNOTAVAIL, records: [] }
    if (op.cmd === 'newAddr' && op.address === '10.96.0.4') return { error: EPERM, records: [] }
    return kernel(op)
  })
  const out = await rtnl.batch([
    { op: 'addAddress', link: 'kube-ipvs0', address: '10.96.0.1' },
    { op: 'addAddress', link: 'kube-ipvs0', address: '10.96.0.2', exist: true },
    { op: 'addAddress', link: 'kube-ipvs0', address: '10.96.0.2' },
    { op: 'deleteAddress', link: 'kube-ipvs0', address: '10.96.0.9', exist: true },
    { op: 'addAddress', link: 'gone0', address: '10.96.0.3' },
    { op: 'deleteAddress', link: 'gone0', address: '10.96.0.3', exist: true },
    { op: 'addAddress', link: 1, address: { address: '10.96.0.4', noPrefixRoute: true } },
  ])
  t.strictSame(sent[0], [{ cmd: 'getLink', name: 'kube-ipvs0' }, { cmd: 'getLink', name: 'gone0' }], 'each name once, in one call')
  t.equal(sent[1]!.length, 5, 'one call for every operation on a link that exists')
  t.strictSame(out[0], { ok: true })
  t.strictSame(out[1], { ok: true, unchanged: true })
  t.match(out[2], { ok: false, error: { code: 'EEXIST', op: 'route.addAddress', index: 2 } })
  t.strictSame(out[3], { ok: true, unchanged: true })
  t.match(out[4], { ok: false, error: { code: 'ENODEV', op: 'route.addAddress', index: 4 } })
  t.strictSame(out[5], { ok: true, unchanged: true })
  t.match(out[6], { ok: false, error: { code: 'EPERM', op: 'route.addAddress', index: 6 } })
  t.strictSame(await rtnl.batch([]), [], 'an empty batch sends nothing')
  t.equal(sent.length, 2)
})

t.test('addDummy: created; EEXIST; with exist an existing dummy is fine (and set up), another kind is not', async (t) => {
  const { rtnl, sent } = await fake((op) => (op.cmd === 'newLink' ? { error: op.name === 'new0' ? 0 : EEXIST, records: [] } : kernel(op)))
  t.equal(await rtnl.addDummy('new0', { up: true, mtu: 1400 }), true, 'created')
  t.strictSame(sent[0], [{ cmd: 'newLink', name: 'new0', kind: 'dummy', up: true, mtu: 1400 }])
  t.match(await outcome(rtnl.addDummy('kube-ipvs0')), { errno: EEXIST, code: 'EEXIST', op: 'route.addDummy' })
  sent.length = 0
  t.equal(await rtnl.addDummy('kube-ipvs0', { exist: true }), false, 'an existing dummy: false')
  t.strictSame(sent.flat().map((o) => o.cmd), ['newLink', 'getLink'], 'looked at, not changed')
  sent.length = 0
  t.equal(await rtnl.addDummy('kube-ipvs0', { exist: true, up: true }), false)
  t.strictSame(sent.flat().map((o) => o.cmd), ['newLink', 'getLink', 'setLink'], 'an existing dummy that is down is set up')
  t.strictSame(sent[2], [{ cmd: 'setLink', name: 'kube-ipvs0', up: true }])
  const other = await outcome(rtnl.addDummy('eth0', { exist: true }))
  t.match(other, { errno: EEXIST, op: 'route.addDummy', message: 'route.addDummy: EEXIST: "eth0" exists and is a veth link, not a dummy' })
  t.match(await outcome(rtnl.addDummy('lo', { exist: true })), { message: /"lo" exists and is not a virtual link, not a dummy/ })
})

t.test('deleteLink, setLink, getLink: by name or index; ENODEV distinguishable', async (t) => {
  const { rtnl, sent } = await fake((op) => (op.cmd === 'delLink' || op.cmd === 'setLink' ? { error: op.name === 'gone0' ? ENODEV : 0, records: [] } : kernel(op)))
  t.equal(await rtnl.deleteLink('kube-ipvs0'), true)
  t.equal(await rtnl.deleteLink(9), true)
  const e = await outcome(rtnl.deleteLink('gone0'))
  t.match(e, { errno: ENODEV, code: 'ENODEV', op: 'route.deleteLink' })
  t.ok(alreadyGone(e))
  t.equal(await rtnl.deleteLink('gone0', { exist: true }), false)
  await rtnl.setLink('kube-ipvs0', { up: false })
  await rtnl.setLink(5, { mtu: 9000 })
  t.match(await outcome(rtnl.setLink('gone0', { up: true })), { code: 'ENODEV', op: 'route.setLink' })
  t.strictSame(sent.slice(0, 2).concat(sent.slice(4, 6)), [
    [{ cmd: 'delLink', name: 'kube-ipvs0' }],
    [{ cmd: 'delLink', index: 9 }],
    [{ cmd: 'setLink', name: 'kube-ipvs0', up: false }],
    [{ cmd: 'setLink', index: 5, mtu: 9000 }],
  ])
  t.equal(await rtnl.getLink('gone0'), undefined, 'getLink of a missing link: undefined')
  t.strictSame(await rtnl.getLink('kube-ipvs0'), { index: 5, name: 'kube-ipvs0', type: 'ether', flags: ['broadcast', 'noarp'], up: false, operState: 'unknown', kind: 'dummy', mtu: 1500 })
})

t.test('listLinks and listAddresses: records in iproute2 words; addresses name their link and filter', async (t) => {
  const addrs = [
    { kind: 'address', family: 2, prefix: 8, index: 1, scope: 254, flags: 0x80, address: '127.0.0.1', label: 'lo', validLifetime: 0xffffffff, preferredLifetime: 0xffffffff },
    { kind: 'address', family: 10, prefix: 128, index: 5, scope: 0, flags: 0x282, address: 'fd00::10' },
    { kind: 'address', family: 2, prefix: 32, index: 5, scope: 0, flags: 0x280, address: '10.96.0.10', label: 'kube-ipvs0' },
    { kind: 'address', family: 10, prefix: 64, index: 2, scope: 253, flags: 0x80, address: 'fe80::1' },
  ]
  const { rtnl, sent } = await fake((op) => (op.cmd === 'listAddrs' ? { error: 0, records: addrs as never[] } : kernel(op)))
  const ls = await rtnl.listLinks()
  t.strictSame(ls.map((l) => [l.index, l.name, l.type, l.kind, l.up, l.flags.join(',')]), [
    [1, 'lo', 'loopback', undefined, true, 'up,loopback,running,lower-up'],
    [5, 'kube-ipvs0', 'ether', 'dummy', false, 'broadcast,noarp'],
    [2, 'eth0', 'ether', 'veth', true, 'up,broadcast,running,multicast,lower-up'],
  ])
  const all = await rtnl.listAddresses()
  t.strictSame(sent.at(-1), [{ cmd: 'listLinks' }, { cmd: 'listAddrs', family: 0 }], 'links and addresses in one call')
  t.strictSame(all[1], { family: 'inet6', address: 'fd00::10', prefix: 128, index: 5, link: 'kube-ipvs0', scope: 'global', flags: ['nodad', 'permanent', 'noprefixroute'] })
  t.strictSame(all[0], { family: 'inet', address: '127.0.0.1', prefix: 8, index: 1, link: 'lo', scope: 'host', flags: ['permanent'], label: 'lo', validLifetime: 0xffffffff, preferredLifetime: 0xffffffff })
  t.equal(all[3]!.scope, 'link')
  t.strictSame((await rtnl.listAddresses({ link: 'kube-ipvs0' })).map((a) => a.address), ['fd00::10', '10.96.0.10'])
  t.strictSame((await rtnl.listAddresses({ link: 5, family: 'inet' })).map((a) => a.address), ['10.96.0.10'])
  t.strictSame(sent.at(-1), [{ cmd: 'listLinks' }, { cmd: 'listAddrs', family: 2 }], 'one family: the kernel is asked for that one')
  t.match(await outcome(rtnl.listAddresses({ link: 'gone0' })), { errno: ENODEV, op: 'route.listAddresses', message: /no link named "gone0"/ })
  t.match(await outcome(rtnl.listAddresses({ link: 77 })), { errno: ENODEV, message: /no link with index 77/ })
})

t.test('kernel errors on reads keep errno and op', async (t) => {
  const { rtnl } = await fake(() => ({ error: EPERM, records: [] }))
  t.match(await outcome(rtnl.listLinks()), { errno: EPERM, code: 'EPERM', op: 'route.listLinks' })
  t.match(await outcome(rtnl.getLink('lo')), { errno: EPERM, op: 'route.getLink' })
  t.match(await outcome(rtnl.batch([{ op: 'addAddress', link: 'lo', address: '10.0.0.1' }])), { errno: EPERM, op: 'route.batch' }, 'a failed name lookup fails the batch')
})
