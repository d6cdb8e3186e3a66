// close() on every handle over a netlink socket (Ipvs, IpSet, Rtnl, Conntrack),
// on the host: a call started before close() makes all of its requests and
// resolves, even those that await before sending (a set header first, a batch
// in slices, a dump per service); the native socket closes after the last of
// them; a call started after close() rejects with EBADF naming its operation.
// The kernel side is in test/kernel/ipvs.ktest.ts and ipset.host.ktest.ts.
import t, { type Test } from 'tap'
import { Conntrack, IpSet, Ipvs, NetlinkError, Rtnl } from '../../dist/index.js'
import type { NativeOp, NativeRecord, NativeResult } from '../../dist/native.js'
import { openOver } from '../support/fake-netlink.js'
import { callsInFlight, manyAdds } from '../support/ipset-calls.js'

/** Plausible answers, one turn of the event loop later, as the thread pool answers. */
function answer(codec: string, op: NativeOp): NativeResult {
  const ok = (records: unknown[] = []): NativeResult => ({ error: 0, records: records as NativeRecord[] })
  switch (`${codec}:${String(op.cmd)}`) {
    case 'genl:getFamily':
      return ok([{ kind: 'family', id: 0x24, name: 'IPVS', version: 1, maxAttr: 9 }])
    case 'ipset:protocol':
      return ok([{ kind: 'protocol', protocol: 7, protocolMin: 6 }])
    case 'ipvs:listServices':
      return ok([1, 2].map((i) => ({ kind: 'service', af: 2, protocol: 6, address: `10.0.0.${i}`, port: 80, scheduler: 'rr', flags: 0, timeout: 0, netmask: 32, stats: {} })))
    case 'ipset:list':
      return ok([{ kind: 'set', name: op.name ?? 'S', typename: 'hash:ip', family: 2, revision: 1, header: {} }])
    case 'ipset:type':
      return ok([{ kind: 'type', typename: op.typename, family: op.family, revision: 6, revisionMin: 0 }])
    case 'route:getLink':
      return ok([{ kind: 'link', index: 7, name: op.name ?? 'x', type: 1, flags: 0, linkKind: 'dummy' }])
    case 'conntrack:list':
      return ok([{ kind: 'entry', family: 2, orig: { src: '10.1.0.1', dst: '10.96.0.10', proto: 17, sport: 5, dport: 53 }, reply: { src: '10.2.0.1', dst: '10.1.0.1', proto: 17 }, status: 0, id: 1 }])
    case 'conntrack:count':
      return ok([{ kind: 'stats', entries: 1 }])
    default:
      return ok()
  }
}

interface Fake {
  /** Opens a handle (Ipvs.open(), ...) over this fake socket. */
  open<H>(fn: () => Promise<H>): Promise<H>
  log: string[]
}

function fakeSocket(): Fake {
  const log: string[] = []
  let closed = false
  const handle = {
    portId: 1,
    async execute(codec: string, _family: number, ops: NativeOp[]) {
      if (closed) throw Object.assign(new Error('EBADF: native socket closed'), { errno: 9 })
      log.push(`${codec}:${ops.length}`)
      await new Promise((resolve) => setImmediate(resolve))
      return ops.map((op) => answer(codec, op))
    },
    async close() {
      closed = true
      log.push('close')
    },
  }
  return { open: (fn) => openOver(handle, fn), log }
}

interface Handle {
  close(): Promise<void>
}

async function closeAfter<H extends Handle>(t: Test, h: H, log: string[], started: Promise<unknown>[], late: { call: (h: H) => Promise<unknown>; op: string }[]): Promise<void> {
  let closeDone = false
  const closing = h.close().then(() => (closeDone = true))
  const lates = late.map((l) => l.call(h).then(() => undefined, (e: unknown) => e))
  const results = await Promise.allSettled(started)
  const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [`#${i}: ${String(r.reason)}`] : []))
  t.strictSame(rejected, [], `all ${started.length} calls started before close() resolved`)
  await closing
  t.ok(closeDone, 'close() resolved')
  t.equal(log[log.length - 1], 'close', 'the native socket closed after the last request')
  t.equal(log.filter((x) => x === 'close').length, 1, 'closed once')
  for (const [i, e] of (await Promise.all(lates)).entries()) {
    t.ok(e instanceof NetlinkError, `${late[i]!.op} after close(): a NetlinkError`)
    t.match(e, { errno: 9, code: 'EBADF', op: late[i]!.op })
  }
  await h.close() // again: nothing more
  t.equal(log.filter((x) => x === 'close').length, 1, 'a second close() closes nothing')
}

t.test('Ipvs: listServices with destinations and a batch in slices finish; then EBADF', async (t) => {
  const { open, log } = fakeSocket()
  const ipvs = await open(() => Ipvs.open())
  const svc = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const
  const ops = Array.from({ length: 5000 }, (_, i) => ({ op: 'addDestination' as const, service: svc, destination: { address: `10.1.${i >> 8}.${i & 0xff}`, port: 8080 } }))
  const started = [ipvs.batch(ops), ipvs.listServices({ destinations: true }), ipvs.addService({ ...svc, scheduler: 'rr' }), ipvs.getService(svc)]
  await closeAfter(t, ipvs, log, started, [
    { call: (h) => h.addService(svc), op: 'ipvs.addService' },
    { call: (h) => h.listServices({ destinations: true }), op: 'ipvs.listServices' },
    { call: (h) => h.batch(ops.slice(0, 3)), op: 'ipvs.batch' },
  ])
  t.equal((await started[0]!) .length, 5000)
  t.equal(((await started[1]!) as { destinations?: unknown[] }[]).filter((s) => s.destinations).length, 2, 'both services got their destinations')
  t.ok(log.filter((x) => x.startsWith('ipvs:')).length >= 5, `every request went out (${log.join(' ')})`)
})

t.test('IpSet: every call (header read first, batches, sync, replace) finishes; then EBADF', async (t) => {
  const { open, log } = fakeSocket()
  const ipset = await open(() => IpSet.open())
  const many = manyAdds('S', 5000)
  const started = [
    ...callsInFlight(ipset, { set: 'S', add: '10.0.0.1', del: '10.0.0.1', batch: many, create: 'N', sync: ['10.0.0.2'] }),
    ipset.replaceMembers('S', [{ ip: '10.0.0.3' }]),
    ipset.destroy('X'),
  ]
  await closeAfter(t, ipset, log, started, [
    { call: (h) => h.add('S', { ip: '10.0.0.1' }), op: 'ipset.add' },
    { call: (h) => h.test('S', { ip: '10.0.0.1' }), op: 'ipset.test' },
    { call: (h) => h.batch(many.slice(0, 2)), op: 'ipset.batch' },
    { call: (h) => h.create({ name: 'M', type: 'hash:ip' }), op: 'ipset.create' },
    { call: (h) => h.listNames(), op: 'ipset.listNames' },
  ])
  t.equal(((await started[3]!) as { ok: boolean }[]).filter((o) => o.ok).length, 5000)
})

t.test('Rtnl: addDummy with exist, address operations and batches finish; then EBADF', async (t) => {
  const { open, log } = fakeSocket()
  const rtnl = await open(() => Rtnl.open())
  const started = [
    rtnl.addDummy('kube-ipvs0', { exist: true, up: true }),
    rtnl.addAddress('kube-ipvs0', '10.96.0.1'),
    rtnl.bindAddress('kube-ipvs0', '10.96.0.2'),
    rtnl.unbindAddress('kube-ipvs0', '10.96.0.3'),
    rtnl.batch(Array.from({ length: 3000 }, (_, i) => ({ op: 'addAddress' as const, link: 'kube-ipvs0', address: `10.97.${i >> 8}.${i & 0xff}` }))),
    rtnl.listAddresses(),
  ]
  await closeAfter(t, rtnl, log, started, [
    { call: (h) => h.addAddress('kube-ipvs0', '10.96.0.9'), op: 'route.addAddress' },
    { call: (h) => h.batch([]), op: 'route.batch' },
    { call: (h) => h.listLinks(), op: 'route.listLinks' },
  ])
})

t.test('Conntrack: a delete (a dump, then the deletes) finishes; then EBADF', async (t) => {
  const { open, log } = fakeSocket()
  const ct = await open(() => Conntrack.open())
  const started = [ct.delete({ protocol: 'udp', destination: '10.96.0.10' }), ct.list(), ct.count()]
  await closeAfter(t, ct, log, started, [
    { call: (h) => h.delete({ protocol: 'udp', port: 53 }), op: 'conntrack.delete' },
    { call: (h) => h.count(), op: 'conntrack.count' },
  ])
  t.equal(await started[0], 1, 'the dumped entry was deleted')
})
