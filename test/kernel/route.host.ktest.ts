// rtnetlink against real kernels (the UML box's 6.1, and the host's in a fresh
// network namespace), with iproute2 as the oracle both ways: what we write
// reads back in `ip -j -d link` / `ip -j addr`, and what `ip` writes reads back
// through our records. The host kernel may lack the dummy driver: the tests
// that need a dummy link say so and skip there (the box has it); the address
// tests then use lo.
import t, { type Test } from 'tap'
import { Rtnl, alreadyExists, alreadyGone, type AddressRecord, type LinkRecord } from '../../dist/index.js'
import { rejects } from './support/assert.js'
import { canMake, ip, ipAddrs, ipFlags, ipLinks, ipTry } from './support/iproute.js'

const rtnl = await Rtnl.open()
t.teardown(() => rtnl.close())

const HAS_DUMMY = canMake('dummy')
const noDummy = HAS_DUMMY ? false : "this kernel has no dummy links (the box's has)"
/** Where the address tests bind: kube-ipvs0 (a dummy, as kube-proxy's) where the kernel has dummies, else lo. */
const VIPS = HAS_DUMMY ? 'kube-ipvs0' : 'lo'

t.beforeEach(async () => {
  // Every test starts from: lo with its own addresses only, no other links, kube-ipvs0 if dummies exist.
  for (const l of ipLinks()) if (l.ifname !== 'lo') ipTry('link', 'del', l.ifname)
  for (const a of ipAddrs('lo'))
    if (a.local !== '127.0.0.1' && a.local !== '::1') ip('addr', 'del', `${a.local}/${a.prefixlen}`, ...(a.address ? ['peer', a.address] : []), 'dev', 'lo')
  ip('link', 'set', 'lo', 'up')
  if (HAS_DUMMY) ip('link', 'add', 'kube-ipvs0', 'type', 'dummy')
})

/** Our link record and ip's row for it say the same things. (M-DOWN is ip's own: the peer of a veth is down.) */
function sameLink(t: Test, ours: LinkRecord | undefined, theirs: ReturnType<typeof ipLinks>[number] | undefined, what: string): void {
  t.ok(ours && theirs, `${what}: both see the link`)
  if (!ours || !theirs) return
  t.strictSame(
    { index: ours.index, name: ours.name, mtu: ours.mtu, type: ours.type, mac: ours.mac, kind: ours.kind, flags: ipFlags(ours.flags), operState: ours.operState.toUpperCase() },
    { index: theirs.ifindex, name: theirs.ifname, mtu: theirs.mtu, type: theirs.link_type, mac: theirs.address, kind: theirs.linkinfo?.info_kind, flags: theirs.flags.filter((f) => f !== 'M-DOWN').sort(), operState: theirs.operstate },
    `${what}: index, name, mtu, type, MAC, kind, flags and operstate agree with ip -d link`,
  )
}

/** Addresses as comparable rows: ours and ip's. */
function ourRows(as: AddressRecord[]): string[] {
  return as.map((a) => `${a.link} ${a.family} ${a.address}/${a.prefix} ${a.scope}${a.flags.includes('noprefixroute') ? ' noprefixroute' : ''}${a.flags.includes('nodad') ? ' nodad' : ''}`).sort()
}
function ipRows(dev?: string): string[] {
  return ipAddrs(dev)
    .map((a) => `${a.ifname} ${a.family} ${a.local}/${a.prefixlen} ${a.scope}${a.noprefixroute ? ' noprefixroute' : ''}${a.nodad ? ' nodad' : ''}`)
    .sort()
}

// ---- links ----------------------------------------------------------------------------------

t.test('listLinks equals ip -d link, link for link', async (t) => {
  const ours = await rtnl.listLinks()
  const theirs = ipLinks()
  t.strictSame(ours.map((l) => l.name), theirs.map((l) => l.ifname), 'the same links, in index order')
  for (const l of theirs) sameLink(t, ours.find((o) => o.index === l.ifindex), l, l.ifname)
  t.match(ours.find((l) => l.name === 'lo'), { type: 'loopback', up: true, mac: '00:00:00:00:00:00' })
})

t.test('addDummy: a dummy kube-ipvs0 as kube-proxy makes it, down', { skip: noDummy }, async (t) => {
  ip('link', 'del', 'kube-ipvs0')
  t.equal(await rtnl.addDummy('kube-ipvs0'), true, 'created')
  const [link] = ipLinks('kube-ipvs0')
  t.equal(link?.linkinfo?.info_kind, 'dummy', 'ip -d link: a dummy')
  t.strictSame(link?.flags.sort(), ['BROADCAST', 'NOARP'], 'down, NOARP as a dummy is')
  t.equal(link?.operstate, 'DOWN')
  sameLink(t, await rtnl.getLink('kube-ipvs0'), link, 'getLink')
})

t.test('addDummy up with an MTU; an existing name is EEXIST, or false with exist', { skip: noDummy }, async (t) => {
  t.equal(await rtnl.addDummy('dummy1', { up: true, mtu: 1400 }), true)
  const [link] = ipLinks('dummy1')
  t.ok(link?.flags.includes('UP'), 'ip: UP')
  t.equal(link?.mtu, 1400, 'ip: mtu 1400')
  t.equal(link?.operstate, 'UNKNOWN', 'a dummy that is up has no carrier state to report')
  const e = await rejects(t, rtnl.addDummy('kube-ipvs0'), { errno: 17, code: 'EEXIST', op: 'route.addDummy' })
  t.ok(alreadyExists(e), 'alreadyExists')
  t.equal(await rtnl.addDummy('kube-ipvs0', { exist: true }), false, 'exist: false, not an error')
  t.notOk(ipLinks('kube-ipvs0')[0]?.flags.includes('UP'), 'and left as it was (down)')
  t.equal(await rtnl.addDummy('kube-ipvs0', { exist: true, up: true }), false)
  t.ok(ipLinks('kube-ipvs0')[0]?.flags.includes('UP'), 'up: true sets an existing dummy up')
})

t.test('addDummy with exist refuses a link of another kind of that name', async (t) => {
  await rejects(t, rtnl.addDummy('lo', { exist: true }), { errno: 17, code: 'EEXIST', message: 'route.addDummy: EEXIST: "lo" exists and is not a virtual link, not a dummy' })
  if (!canMake('veth')) return
  ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1')
  await rejects(t, rtnl.addDummy('veth0', { exist: true }), { code: 'EEXIST', message: /"veth0" exists and is a veth link, not a dummy/ })
  t.equal(ipLinks('veth0')[0]?.linkinfo?.info_kind, 'veth', 'untouched')
})

t.test('a kernel without the dummy driver says so in its own words', { skip: HAS_DUMMY ? 'this kernel has dummy links' : false }, async (t) => {
  await rejects(t, rtnl.addDummy('kube-ipvs0'), { errno: 95, op: 'route.addDummy', extack: 'Unknown device type' })
})

t.test('setLink down and up, MTU; ip sees it, and we see what ip set', async (t) => {
  const dev = HAS_DUMMY ? 'kube-ipvs0' : 'lo'
  await rtnl.setLink(dev, { up: true })
  t.ok(ipLinks(dev)[0]?.flags.includes('UP'), 'ip: up')
  await rtnl.setLink(dev, { up: false })
  t.notOk(ipLinks(dev)[0]?.flags.includes('UP'), 'ip: down')
  t.equal((await rtnl.getLink(dev))?.up, false)
  ip('link', 'set', dev, 'up')
  t.equal((await rtnl.getLink(dev))?.up, true, 'ip link set up: we read it up')
  const index = ipLinks(dev)[0]!.ifindex
  await rtnl.setLink(index, { mtu: 1280 })
  t.equal(ipLinks(dev)[0]?.mtu, 1280, 'by index: mtu 1280')
  ip('link', 'set', dev, 'mtu', '1500')
  t.equal((await rtnl.getLink(index))?.mtu, 1500, 'ip set 1500: we read it')
  sameLink(t, await rtnl.getLink(dev), ipLinks(dev)[0], 'after the changes')
  await rejects(t, rtnl.setLink('nosuch0', { up: true }), { errno: 19, code: 'ENODEV', op: 'route.setLink' })
})

t.test('deleteLink: gone in ip; deleting again is ENODEV (already gone), or false with exist', { skip: noDummy }, async (t) => {
  t.equal(await rtnl.deleteLink('kube-ipvs0'), true)
  t.strictSame(ipLinks().map((l) => l.ifname), ['lo'], 'ip: only lo left')
  const e = await rejects(t, rtnl.deleteLink('kube-ipvs0'), { errno: 19, code: 'ENODEV', op: 'route.deleteLink' })
  t.ok(alreadyGone(e), 'alreadyGone')
  t.equal(await rtnl.deleteLink('kube-ipvs0', { exist: true }), false)
  t.equal(await rtnl.getLink('kube-ipvs0'), undefined, 'getLink: undefined')
  ip('link', 'add', 'd2', 'type', 'dummy')
  t.equal(await rtnl.deleteLink(ipLinks('d2')[0]!.ifindex), true, 'by index')
  t.strictSame(ipLinks().map((l) => l.ifname), ['lo'])
})

t.test('links made by ip read back through getLink and listLinks', { skip: noDummy }, async (t) => {
  ip('link', 'add', 'd3', 'mtu', '1400', 'type', 'dummy')
  ip('link', 'set', 'd3', 'address', '02:00:00:00:00:03', 'up')
  const link = await rtnl.getLink('d3')
  t.match(link, { name: 'd3', kind: 'dummy', mtu: 1400, mac: '02:00:00:00:00:03', up: true, type: 'ether' })
  sameLink(t, link, ipLinks('d3')[0], 'd3')
  if (canMake('veth')) {
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb')
    ip('link', 'add', 'br0', 'type', 'bridge')
    ip('link', 'set', 'va', 'master', 'br0')
    const ours = await rtnl.listLinks()
    const va = ours.find((l) => l.name === 'va')
    t.equal(va?.kind, 'veth')
    t.equal(va?.master, ours.find((l) => l.name === 'br0')?.index, 'a bridge port names its bridge')
    for (const l of ipLinks()) sameLink(t, ours.find((o) => o.index === l.ifindex), l, l.ifname)
  }
})

// ---- addresses ------------------------------------------------------------------------------

t.test(`bindAddress: VIPs on ${VIPS} as kube-proxy binds them, read back by ip`, async (t) => {
  t.equal(await rtnl.bindAddress(VIPS, '10.96.0.10'), true, 'bound')
  t.equal(await rtnl.bindAddress(VIPS, 'fd00::10'), true)
  const v4 = ipAddrs(VIPS).find((a) => a.local === '10.96.0.10')
  const v6 = ipAddrs(VIPS).find((a) => a.local === 'fd00::10')
  t.match(v4, { family: 'inet', prefixlen: 32, scope: 'global', noprefixroute: true }, 'ip: 10.96.0.10/32 noprefixroute')
  t.match(v6, { family: 'inet6', prefixlen: 128, scope: 'global', noprefixroute: true, nodad: true }, 'ip: fd00::10/128 nodad noprefixroute')
  t.notOk(v6?.tentative, 'IPv6 usable at once: not tentative')
  t.match(ip('route', 'get', '10.96.0.10'), /^local 10\.96\.0\.10 dev lo /, 'the VIP is local to the node')
  t.match(ip('-6', 'route', 'get', 'fd00::10'), /^local fd00::10 /, 'the IPv6 VIP too')
  t.equal(await rtnl.bindAddress(VIPS, '10.96.0.10'), false, 'bound again: false, already bound')
  t.equal(await rtnl.bindAddress(VIPS, 'fd00::10'), false)
  t.strictSame(ourRows(await rtnl.listAddresses({ link: VIPS })), ipRows(VIPS), 'listAddresses equals ip addr show')
})

t.test('unbindAddress, deleteAddress: gone in ip; a missing address is EADDRNOTAVAIL (already gone)', async (t) => {
  ip('addr', 'add', '10.96.0.11/32', 'dev', VIPS)
  ip('addr', 'add', 'fd00::11/128', 'dev', VIPS, 'nodad')
  t.equal(await rtnl.unbindAddress(VIPS, '10.96.0.11'), true, 'unbound')
  t.equal(await rtnl.deleteAddress(VIPS, { address: 'fd00::11', prefix: 128 }), true)
  t.notOk(ipAddrs(VIPS).some((a) => a.local === '10.96.0.11' || a.local === 'fd00::11'), 'ip: both gone')
  t.equal(await rtnl.unbindAddress(VIPS, '10.96.0.11'), false, 'unbind again: false')
  const e4 = await rejects(t, rtnl.deleteAddress(VIPS, '10.96.0.11'), { errno: 99, code: 'EADDRNOTAVAIL', op: 'route.deleteAddress' })
  t.ok(alreadyGone(e4), 'alreadyGone (IPv4)')
  const e6 = await rejects(t, rtnl.deleteAddress(VIPS, 'fd00::11'), { code: 'EADDRNOTAVAIL' })
  t.ok(alreadyGone(e6), 'alreadyGone (IPv6)')
  const gone = await rejects(t, rtnl.deleteAddress('nosuch0', '10.96.0.11'), { errno: 19, code: 'ENODEV' })
  t.ok(alreadyGone(gone), 'a missing link: already gone too')
})

t.test('addAddress: a duplicate is EEXIST; a /24 gets its prefix route unless noPrefixRoute', async (t) => {
  const dev = HAS_DUMMY ? 'kube-ipvs0' : 'lo'
  ip('link', 'set', dev, 'up')
  t.equal(await rtnl.addAddress(dev, { address: '10.20.0.1', prefix: 24 }), true)
  t.equal(await rtnl.addAddress(dev, { address: '10.21.0.1', prefix: 24, noPrefixRoute: true }), true)
  const e = await rejects(t, rtnl.addAddress(dev, { address: '10.20.0.1', prefix: 24 }), { errno: 17, code: 'EEXIST', op: 'route.addAddress' })
  t.ok(alreadyExists(e), 'alreadyExists')
  t.equal(await rtnl.addAddress(dev, { address: '10.20.0.1', prefix: 24 }, { exist: true }), false)
  // (on lo the prefix route is a local one, in table local)
  const routes = ip('route', 'show', 'table', 'all', 'dev', dev)
  t.match(routes, /^(local )?10\.20\.0\.0\/24 .*proto kernel .*src 10\.20\.0\.1/m, 'ip route: the /24 has its prefix route')
  t.notMatch(routes, /10\.21\.0\.0\/24/, 'the noPrefixRoute /24 has none')
  t.equal(await rtnl.addAddress(dev, { address: 'fd00:20::1', prefix: 64, nodad: true, scope: 'global' }), true)
  t.match(ipAddrs(dev).find((a) => a.local === 'fd00:20::1'), { prefixlen: 64, nodad: true })
  t.match(ip('-6', 'route', 'show', 'dev', dev), /^fd00:20::\/64 proto kernel/m, 'IPv6 /64: its prefix route')
  t.equal(await rtnl.deleteAddress(dev, { address: '10.20.0.1', prefix: 24 }), true)
  t.equal(await rtnl.deleteAddress(dev, { address: 'fd00:20::1', prefix: 64 }), true)
  await rejects(t, rtnl.deleteAddress(dev, { address: '10.21.0.1', prefix: 32 }), { code: 'EADDRNOTAVAIL' }, )
  t.ok(ipAddrs(dev).some((a) => a.local === '10.21.0.1'), 'a delete naming another prefix length leaves the address')
})

t.test('addresses made by ip read back through listAddresses: a link, and the whole node', async (t) => {
  ip('addr', 'add', '10.1.2.3/24', 'dev', 'lo', 'label', 'lo:vip')
  ip('addr', 'add', '10.1.2.4/32', 'dev', VIPS, 'noprefixroute')
  ip('addr', 'add', 'fd00:1::5/64', 'dev', VIPS, 'nodad')
  ip('addr', 'add', '192.168.9.1', 'peer', '192.168.9.2', 'dev', 'lo')
  const all = await rtnl.listAddresses()
  t.strictSame(ourRows(all), ipRows(), 'every address of the node, as ip addr shows them')
  t.match(all.find((a) => a.address === '10.1.2.3'), { label: 'lo:vip', link: 'lo', prefix: 24 })
  t.match(all.find((a) => a.address === '192.168.9.1'), { peer: '192.168.9.2', prefix: 32 })
  const lo = await rtnl.listAddresses({ link: 'lo', family: 'inet' })
  t.strictSame(ourRows(lo), ipRows('lo').filter((r) => r.includes(' inet ')), 'one link, one family')
  t.ok(lo.every((a) => a.family === 'inet' && a.link === 'lo'))
  t.match(lo.find((a) => a.address === '127.0.0.1'), { scope: 'host', flags: ['permanent'], validLifetime: 0xffffffff })
  await rejects(t, rtnl.listAddresses({ link: 'nosuch0' }), { errno: 19, code: 'ENODEV', op: 'route.listAddresses' })
})

t.test('batch: 200 VIPs bound in one burst, then unbound; outcomes per address', async (t) => {
  const vips = Array.from({ length: 200 }, (_, i) => (i % 2 ? `fd00::${(i + 1).toString(16)}` : `10.96.${i >> 8}.${(i & 0xff) + 1}`))
  const add = await rtnl.batch(vips.map((address) => ({ op: 'addAddress', link: VIPS, address: { address, noPrefixRoute: true, ...(address.includes(':') ? { nodad: true } : {}) } })))
  t.ok(add.every((o) => o.ok && !('unchanged' in o)), 'all 200 added')
  const bound = new Set(ipAddrs(VIPS).map((a) => a.local))
  t.ok(vips.every((v) => bound.has(v)), 'ip shows all 200')
  const again = await rtnl.batch([
    { op: 'addAddress', link: VIPS, address: vips[0]!, exist: true },
    { op: 'addAddress', link: VIPS, address: vips[1]! },
    { op: 'deleteAddress', link: VIPS, address: '10.99.99.99' },
    { op: 'addAddress', link: 'nosuch0', address: '10.99.99.98' },
  ])
  t.strictSame(again[0], { ok: true, unchanged: true })
  t.match(again[1], { ok: false, error: { code: 'EEXIST', index: 1 } })
  t.match(again[2], { ok: false, error: { code: 'EADDRNOTAVAIL', index: 2 } })
  t.match(again[3], { ok: false, error: { code: 'ENODEV', index: 3 } })
  const del = await rtnl.batch(vips.map((address) => ({ op: 'deleteAddress', link: VIPS, address })))
  t.ok(del.every((o) => o.ok), 'all 200 deleted')
  const left = new Set(ipAddrs(VIPS).map((a) => a.local))
  t.notOk(vips.some((v) => left.has(v)), 'ip shows none of them')
})
