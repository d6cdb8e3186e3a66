// lib/ipvs input validation, on the host: every refusal is a ValidationError
// naming the operation and the field, and nothing reaches the socket. Valid input
// becomes the wire operations whose bytes test/unit/ipvs-fixtures.test.ts pins.
//
// Two ways in, without a kernel:
//  - ipvsWire (lib/ipvs.ts toWire): one API operation -> its wire operation, or a
//    ValidationError. Most cases go through it.
//  - the Ipvs methods themselves, for what toWire does not cover (getService,
//    listDestinations, setTimeouts, batch, reading records back): a real Ipvs,
//    opened by Ipvs.open() over a fake native handle (test/support/fake-netlink.ts)
//    that records each batch, checks native.encode accepts it, and answers as told.
import t, { type Test } from 'tap'
import { Ipvs, NetlinkError, ValidationError, ipvsWire } from '../../dist/index.js'
import type { IpvsOp } from '../../dist/index.js'
import { native } from '../../dist/native.js'
import type { NativeOp, NativeRecord, NativeResult } from '../../dist/native.js'
import { openAfterHandshake } from '../support/fake-netlink.js'
import { checkRefusal as checkShared, type Want } from '../support/refusal.js'
import { SERVICE_V4_RECORD, ZERO_STATS } from '../support/fixtures.js'

const IPVS = 0x24

// ---- helpers ------------------------------------------------------------------------------

/** As every refusal, and a ValidationError is a TypeError. */
function checkRefusal(t: Test, e: unknown, want: Want): void {
  if (e instanceof ValidationError) t.ok(e instanceof TypeError, 'a ValidationError is a TypeError')
  checkShared(t, e, want)
}

/** ipvsWire(op) must throw a ValidationError as described. */
function refused(t: Test, op: unknown, want: Want, index?: number): void {
  let e: unknown
  try {
    ipvsWire(op as IpvsOp, index)
  } catch (err) {
    e = err
  }
  checkRefusal(t, e, want)
}

/** ipvsWire(op), checked to be encodable by native/ipvs as it is. */
function wire(op: IpvsOp): NativeOp {
  const w = ipvsWire(op)
  native.encode('ipvs', IPVS, [w], 1)
  return w
}

interface Sent {
  codec: string
  family: number
  ops: NativeOp[]
}
type Answer = (ops: NativeOp[]) => NativeResult[]
const allOk: Answer = (ops) => ops.map(() => ({ error: 0, records: [] }))

async function fakeIpvs(answer: Answer = allOk): Promise<{ ipvs: Ipvs; sent: Sent[] }> {
  const sent: Sent[] = []
  const handle = {
    portId: 0xabcd,
    async execute(codec: string, family: number, ops: NativeOp[]) {
      sent.push({ codec, family, ops: structuredClone(ops) })
      native.encode(codec, family, ops, 1) // throws if the native codec would refuse it
      return answer(ops)
    },
    async close() {},
  }
  const ipvs = await openAfterHandshake(handle, () => Ipvs.open())
  return { ipvs, sent }
}

/** An Ipvs method call must reject with a ValidationError as described, having sent nothing. */
async function refusedCall(t: Test, call: (ipvs: Ipvs) => Promise<unknown>, want: Want): Promise<void> {
  const { ipvs, sent } = await fakeIpvs()
  const e = await call(ipvs).then(
    () => undefined,
    (err: unknown) => err,
  )
  checkRefusal(t, e, want)
  t.equal(sent.length, 0, 'nothing was sent')
}

const svc = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const
const v6svc = { protocol: 'tcp', address: '2001:db8::1', port: 80 } as const
const dst = { address: '10.1.0.5', port: 8080 }
const add = (service: unknown): unknown => ({ op: 'addService', service })
const addDest = (destination: unknown, service: unknown = svc): unknown => ({ op: 'addDestination', service, destination })

// =========================================================================================
// ipvsWire: the checks
// =========================================================================================

t.test('malformed addresses', async (t) => {
  for (const address of ['10.0.0.256', '10.0.0', 'example.com', '', '2001:db8:::1', '10.0.0.1/24', ' 10.0.0.1']) {
    refused(t, add({ ...svc, address }), { op: 'ipvs.addService', field: 'service.address', value: address })
    refused(t, addDest({ ...dst, address }), { op: 'ipvs.addDestination', field: 'destination.address', value: address })
  }
  refused(t, add({ ...svc, address: 0x0a000001 }), { op: 'ipvs.addService', field: 'service.address', value: 0x0a000001 })
  refused(t, { op: 'deleteService', service: { ...svc, address: '300.1.1.1' } }, { op: 'ipvs.deleteService', field: 'service.address' })
  refused(t, { op: 'deleteDestination', service: svc, destination: { ...dst, address: '10.1.0.5.6' } }, {
    op: 'ipvs.deleteDestination',
    field: 'destination.address',
  })
})

t.test('ports: 0 (outside persistent / fwmark services), 65536, 1.5, "80"', async (t) => {
  for (const port of [65536, 1.5, '80', -1, NaN, undefined]) {
    refused(t, add({ ...svc, port }), { op: 'ipvs.addService', field: 'service.port', value: port })
    refused(t, addDest({ ...dst, port }), { op: 'ipvs.addDestination', field: 'destination.port', value: port })
  }
  refused(t, add({ ...svc, port: 0 }), { op: 'ipvs.addService', field: 'service.port', value: 0 })
  refused(t, { op: 'updateService', service: { ...svc, port: 0, persistent: false } }, { op: 'ipvs.updateService', field: 'service.port', value: 0 })
  refused(t, addDest({ ...dst, port: 0 }), { op: 'ipvs.addDestination', field: 'destination.port', value: 0 })
  refused(t, { op: 'updateDestination', service: svc, destination: { ...dst, port: 0 } }, {
    op: 'ipvs.updateDestination',
    field: 'destination.port',
    value: 0,
  })
  refused(t, { op: 'deleteDestination', service: svc, destination: { ...dst, port: 70000 } }, {
    op: 'ipvs.deleteDestination',
    field: 'destination.port',
    value: 70000,
  })
  refused(t, addDest({ ...dst, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 0 }), {
    op: 'ipvs.addDestination',
    field: 'destination.tunnelPort',
    value: 0,
  })
})

t.test('port 0 is allowed where the kernel allows it: persistent services, fwmark destinations', async (t) => {
  t.strictSame(wire({ op: 'addService', service: { ...svc, port: 0, persistent: true } }), {
    cmd: 'newService',
    service: { af: 2, protocol: 6, address: '10.0.0.1', port: 0, scheduler: 'wlc', flags: 1, timeout: 360, netmask: 32 },
  })
  t.strictSame(wire({ op: 'addDestination', service: { fwmark: 7 }, destination: { ...dst, port: 0 } }), {
    cmd: 'newDest',
    service: { af: 2, fwmark: 7 },
    dest: { af: 2, address: '10.1.0.5', port: 0, forward: 0, weight: 1, upperThreshold: 0, lowerThreshold: 0 },
  })
})

t.test('unknown protocol', async (t) => {
  for (const protocol of ['icmp', 'TCP', 6, undefined])
    refused(t, add({ ...svc, protocol }), { op: 'ipvs.addService', field: 'service.protocol', value: protocol })
  refused(t, { op: 'zero', service: { ...svc, protocol: 'udplite' } }, { op: 'ipvs.zero', field: 'service.protocol', value: 'udplite' })
})

t.test('unknown forwarding method', async (t) => {
  for (const forward of ['nat', 'dr', 'MASQ', 0])
    refused(t, addDest({ ...dst, forward }), { op: 'ipvs.addDestination', field: 'destination.forward', value: forward })
})

t.test('weights and thresholds', async (t) => {
  for (const weight of [-1, 1.5, 0x80000000, '1'])
    refused(t, addDest({ ...dst, weight }), { op: 'ipvs.addDestination', field: 'destination.weight', value: weight })
  refused(t, { op: 'updateDestination', service: svc, destination: { ...dst, upperThreshold: -5 } }, {
    op: 'ipvs.updateDestination',
    field: 'destination.upperThreshold',
    value: -5,
  })
  refused(t, addDest({ ...dst, lowerThreshold: 2 ** 32 }), { op: 'ipvs.addDestination', field: 'destination.lowerThreshold' })
  t.equal((wire({ op: 'addDestination', service: svc, destination: { ...dst, weight: 0x7fffffff } }).dest as { weight: number }).weight, 0x7fffffff, 'INT_MAX is the largest weight')
})

t.test('scheduler and persistence-engine names fit IP_VS_SCHEDNAME_MAXLEN / IP_VS_PENAME_MAXLEN (16, NUL included)', async (t) => {
  refused(t, add({ ...svc, scheduler: 'abcdefghijklmnop' }), { op: 'ipvs.addService', field: 'service.scheduler', value: 'abcdefghijklmnop' })
  refused(t, { op: 'updateService', service: { ...svc, scheduler: '' } }, { op: 'ipvs.updateService', field: 'service.scheduler', value: '' })
  refused(t, add({ ...svc, scheduler: 'r\0r' }), { op: 'ipvs.addService', field: 'service.scheduler' })
  refused(t, add({ ...svc, scheduler: 'é'.repeat(8) }), { op: 'ipvs.addService', field: 'service.scheduler' }) // 16 bytes in UTF-8
  refused(t, add({ ...svc, persistent: true, pe: 'p'.repeat(16) }), { op: 'ipvs.addService', field: 'service.pe' })

  const w = wire({ op: 'addService', service: { ...svc, scheduler: 'abcdefghijklmno' } })
  t.equal((w.service as { scheduler: string }).scheduler, 'abcdefghijklmno', '15 bytes + NUL fit')
})

t.test('an IPv4 destination in an IPv6 service needs tunnel forwarding', async (t) => {
  for (const forward of [undefined, 'masq', 'route', 'local'])
    refused(t, addDest({ ...dst, forward }, v6svc), { op: 'ipvs.addDestination', field: 'destination.address', value: '10.1.0.5' })
  refused(t, addDest({ address: '2001:db8::5', port: 80 }), { op: 'ipvs.addDestination', field: 'destination.address', value: '2001:db8::5' })

  t.strictSame(wire({ op: 'addDestination', service: v6svc, destination: { ...dst, forward: 'tunnel' } }), {
    cmd: 'newDest',
    service: { af: 10, protocol: 6, address: '2001:db8::1', port: 80 },
    dest: { af: 2, address: '10.1.0.5', port: 8080, forward: 2, weight: 1, upperThreshold: 0, lowerThreshold: 0 },
  })
})

t.test('a mixed-family tunnel destination can be updated and deleted as it was added', async (t) => {
  const v6dst = { address: '2001:db8::5', port: 80 }
  t.doesNotThrow(() => wire({ op: 'addDestination', service: svc, destination: { ...v6dst, forward: 'tunnel' } }), 'added')
  t.doesNotThrow(() => wire({ op: 'updateDestination', service: svc, destination: { ...v6dst, forward: 'tunnel', weight: 0 } }), 'updated')
  // The kernel checks the family only on add and edit (ip_vs_genl_set_cmd:
  // `udest.af != svc->af && cmd != IPVS_CMD_DEL_DEST`); a delete names no forwarding method.
  let e: unknown
  try {
    wire({ op: 'deleteDestination', service: svc, destination: v6dst })
  } catch (err) {
    e = err
  }
  t.equal(e, undefined, 'deleteDestination accepts it (the kernel does not check families on delete)')
})

t.test('scheduler flags belong to their scheduler', async (t) => {
  refused(t, add({ ...svc, scheduler: 'rr', flags: ['sh-port'] }), { op: 'ipvs.addService', field: 'service.flags', value: 'sh-port' })
  refused(t, add({ ...svc, flags: ['mh-fallback'] }), { op: 'ipvs.addService', field: 'service.flags', value: 'mh-fallback' })
  refused(t, add({ ...svc, flags: ['sticky'] }), { op: 'ipvs.addService', field: 'service.flags', value: 'sticky' })
  refused(t, add({ ...svc, flags: 'persistent' }), { op: 'ipvs.addService', field: 'service.flags', value: 'persistent' })
  refused(t, add({ ...svc, persistent: 'yes' }), { op: 'ipvs.addService', field: 'service.persistent', value: 'yes' })

  t.strictSame(
    wire({ op: 'addService', service: { ...svc, scheduler: 'sh', flags: ['sh-port', 'sh-fallback', 'one-packet', 'hashed'] } }),
    { cmd: 'newService', service: { af: 2, protocol: 6, address: '10.0.0.1', port: 80, scheduler: 'sh', flags: 0x1c, timeout: 0, netmask: 32 } },
    'sh-port 0x10 | sh-fallback 0x08 | one-packet 0x04; hashed is never sent',
  )
  t.equal(
    (wire({ op: 'addService', service: { ...svc, flags: ['persistent'], persistent: false } }).service as { flags: number }).flags,
    0,
    'persistent: false wins over the flag',
  )
})

t.test('tunnel settings need forward: "tunnel"; GUE needs a port', async (t) => {
  refused(t, addDest({ ...dst, tunnelPort: 6080 }), { op: 'ipvs.addDestination', field: 'destination.tunnelPort', value: 6080 })
  refused(t, addDest({ ...dst, forward: 'route', tunnelType: 'ipip' }), { op: 'ipvs.addDestination', field: 'destination.tunnelType', value: 'ipip' })
  refused(t, { op: 'updateDestination', service: svc, destination: { ...dst, forward: 'masq', tunnelFlags: 'csum' } }, {
    op: 'ipvs.updateDestination',
    field: 'destination.tunnelFlags',
    value: 'csum',
  })
  refused(t, addDest({ ...dst, forward: 'tunnel', tunnelType: 'gue' }), { op: 'ipvs.addDestination', field: 'destination.tunnelPort', value: undefined })
  refused(t, addDest({ ...dst, forward: 'tunnel', tunnelType: 'vxlan' }), { op: 'ipvs.addDestination', field: 'destination.tunnelType', value: 'vxlan' })
  refused(t, addDest({ ...dst, forward: 'tunnel', tunnelFlags: 'fast' }), { op: 'ipvs.addDestination', field: 'destination.tunnelFlags', value: 'fast' })

  const w = wire({
    op: 'addDestination',
    service: svc,
    destination: { ...dst, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelFlags: 'remcsum' },
  })
  t.strictSame(w.dest, {
    af: 2, address: '10.1.0.5', port: 8080, forward: 2, weight: 1, upperThreshold: 0, lowerThreshold: 0, tunType: 1, tunPort: 6080, tunFlags: 2,
  })
})

t.test('firewall marks', async (t) => {
  for (const fwmark of [0, -1, 2 ** 32, 1.5, '1'])
    refused(t, add({ fwmark }), { op: 'ipvs.addService', field: 'service.fwmark', value: fwmark })
  refused(t, { op: 'zero', service: { fwmark: 1, family: 'ipv6' } }, { op: 'ipvs.zero', field: 'service.family', value: 'ipv6' })

  t.strictSame(
    wire({ op: 'addService', service: { fwmark: 42, family: 'inet6', scheduler: 'sh', persistent: true, timeout: 60, netmask: 64, pe: 'sip' } }),
    { cmd: 'newService', service: { af: 10, fwmark: 42, scheduler: 'sh', flags: 1, timeout: 60, netmask: 64, peName: 'sip' } },
  )
  t.strictSame(wire({ op: 'deleteService', service: { fwmark: 42, family: 'inet6' } }), { cmd: 'delService', service: { af: 10, fwmark: 42 } })
  t.strictSame(wire({ op: 'zero', service: { fwmark: 0xffffffff } }), { cmd: 'zero', service: { af: 2, fwmark: 0xffffffff } }, 'the largest mark')
})

t.test('netmask and timeout', async (t) => {
  refused(t, add({ ...svc, netmask: 33 }), { op: 'ipvs.addService', field: 'service.netmask', value: 33 })
  refused(t, add({ ...svc, netmask: 0 }), { op: 'ipvs.addService', field: 'service.netmask', value: 0 })
  refused(t, add({ ...v6svc, netmask: 129 }), { op: 'ipvs.addService', field: 'service.netmask', value: 129 })
  refused(t, add({ ...svc, timeout: -1 }), { op: 'ipvs.addService', field: 'service.timeout', value: -1 })

  t.strictSame(
    wire({ op: 'addService', service: { ...v6svc, netmask: 64, persistent: true } }),
    { cmd: 'newService', service: { af: 10, protocol: 6, address: '2001:db8::1', port: 80, scheduler: 'wlc', flags: 1, timeout: 360, netmask: 64 } },
    'persistent without a timeout takes 360 s (ipvsadm 1.31); netmask stays a prefix length for native',
  )
})

t.test('not objects, not operations', async (t) => {
  refused(t, add(null), { op: 'ipvs.addService', field: 'service', value: null })
  refused(t, add([svc]), { op: 'ipvs.addService', field: 'service' })
  refused(t, addDest('10.1.0.5:80'), { op: 'ipvs.addDestination', field: 'destination', value: '10.1.0.5:80' })
  refused(t, { op: 'explode' }, { op: 'ipvs.explode', field: 'op', value: 'explode' })
  refused(t, { op: 'addDestination', service: svc, destination: { ...dst, port: 0 } }, {
    op: 'ipvs.addDestination',
    field: 'destination.port',
    index: 4,
  }, 4)

  let e: unknown
  try {
    ipvsWire(null as unknown as IpvsOp, 2)
  } catch (err) {
    e = err
  }
  t.ok(e instanceof TypeError, 'null is refused')
  t.ok(e instanceof ValidationError, 'as a ValidationError')
  t.equal((e as { index?: number } | undefined)?.index, 2, 'with its index')
})

// =========================================================================================
// The Ipvs methods: they validate before sending
// =========================================================================================

t.test('the fake wiring works: a valid call goes through to native.encode', async (t) => {
  const { ipvs, sent } = await fakeIpvs()
  t.equal(ipvs.familyId, IPVS)
  await ipvs.addService(svc)
  await ipvs.flush()
  t.strictSame(sent, [
    { codec: 'ipvs', family: IPVS, ops: [wire({ op: 'addService', service: svc })] },
    { codec: 'ipvs', family: IPVS, ops: [{ cmd: 'flush' }] },
  ])
})

t.test('each method refuses bad input before sending', async (t) => {
  await refusedCall(t, (i) => i.addService({ ...svc, address: '10.0.0.256' }), { op: 'ipvs.addService', field: 'service.address' })
  await refusedCall(t, (i) => i.updateService({ ...svc, scheduler: 'x'.repeat(16) }), { op: 'ipvs.updateService', field: 'service.scheduler' })
  await refusedCall(t, (i) => i.deleteService({ fwmark: 0 }), { op: 'ipvs.deleteService', field: 'service.fwmark', value: 0 })
  await refusedCall(t, (i) => i.addDestination(svc, { ...dst, weight: -1 }), { op: 'ipvs.addDestination', field: 'destination.weight', value: -1 })
  await refusedCall(t, (i) => i.updateDestination(svc, { ...dst, tunnelPort: 1 }), { op: 'ipvs.updateDestination', field: 'destination.tunnelPort' })
  await refusedCall(t, (i) => i.deleteDestination(svc, { ...dst, port: 0 }), { op: 'ipvs.deleteDestination', field: 'destination.port' })
  await refusedCall(t, (i) => i.getService({ ...svc, address: 'nope' }), { op: 'ipvs.getService', field: 'service.address', value: 'nope' })
  await refusedCall(t, (i) => i.listDestinations({ ...svc, port: 65536 }), { op: 'ipvs.listDestinations', field: 'service.port', value: 65536 })
  await refusedCall(t, (i) => i.zero({ ...v6svc, address: '::g' }), { op: 'ipvs.zero', field: 'service.address' })
  await refusedCall(t, (i) => i.setTimeouts({ tcp: -1 }), { op: 'ipvs.setTimeouts', field: 'timeouts.tcp', value: -1 })
  await refusedCall(t, (i) => i.setTimeouts({ udp: 2 ** 32 }), { op: 'ipvs.setTimeouts', field: 'timeouts.udp' })
  await refusedCall(t, (i) => i.setTimeouts(null as unknown as { tcp: number }), { op: 'ipvs.setTimeouts', field: 'timeouts', value: null })
})

t.test('setTimeouts sends only the timeouts given', async (t) => {
  const { ipvs, sent } = await fakeIpvs()
  await ipvs.setTimeouts({ udp: 60 })
  t.strictSame(sent[0]!.ops, [{ cmd: 'setConfig', timeouts: { udp: 60 } }])
})

// ---- batches ------------------------------------------------------------------------------

const good: IpvsOp = { op: 'addService', service: svc }

t.test('a batch with one bad operation throws with its index and sends nothing', async (t) => {
  await refusedCall(t, (i) => i.batch([good, addDest({ ...dst, port: 0 }) as IpvsOp, { op: 'flush' }]), {
    op: 'ipvs.addDestination',
    field: 'destination.port',
    value: 0,
    index: 1,
  })
  await refusedCall(t, (i) => i.batch([good, good, { op: 'deleteService', service: { ...svc, address: 'x' } }]), {
    op: 'ipvs.deleteService',
    field: 'service.address',
    index: 2,
  })
  await refusedCall(t, (i) => i.batch([{ op: 'explode' } as unknown as IpvsOp]), { op: 'ipvs.explode', field: 'op', value: 'explode', index: 0 })
  await refusedCall(t, (i) => i.batch('flush' as unknown as IpvsOp[]), { op: 'ipvs.batch', field: 'ops', value: 'flush' })
})

t.test('a valid batch is one execute; kernel errors come back per operation', async (t) => {
  const { ipvs, sent } = await fakeIpvs((ops) =>
    ops.map((_, i) => (i === 1 ? { error: 17, extack: 'Destination already exists', records: [] } : { error: 0, records: [] })),
  )
  const ops: IpvsOp[] = [good, { op: 'addDestination', service: svc, destination: dst }, { op: 'zero' }]
  const outcomes = await ipvs.batch(ops)
  t.equal(sent.length, 1, 'one burst')
  t.strictSame(sent[0]!.ops, ops.map((op) => wire(op)))
  t.strictSame(
    outcomes.map((o) => o.ok),
    [true, false, true],
  )
  const err = (outcomes[1] as { ok: false; error: NetlinkError }).error
  t.ok(err instanceof NetlinkError)
  t.equal(err.errno, 17)
  t.equal(err.code, 'EEXIST')
  t.equal(err.op, 'ipvs.addDestination')
  t.equal(err.index, 1)
  t.equal(err.extack, 'Destination already exists')
  t.strictSame(await ipvs.batch([]), [], 'an empty batch...')
  t.equal(sent.length, 1, '...sends nothing')
})

// ---- the other direction: what the lib makes of kernel answers ---------------------------

const rawService = { ...SERVICE_V4_RECORD, stats: ZERO_STATS }

t.test('getService: ESRCH is "no such service", other errors throw NetlinkError', async (t) => {
  const missing = await fakeIpvs((ops) => ops.map(() => ({ error: 3, records: [] })))
  t.equal(await missing.ipvs.getService(svc), undefined, 'ESRCH -> undefined')

  const denied = await fakeIpvs((ops) => ops.map(() => ({ error: 1, extack: 'no', records: [] })))
  await t.rejects(denied.ipvs.getService(svc), { name: 'NetlinkError', errno: 1, code: 'EPERM', op: 'ipvs.getService', extack: 'no' })
  await t.rejects(denied.ipvs.flush(), { name: 'NetlinkError', errno: 1, code: 'EPERM', op: 'ipvs.flush' })
})

t.test('getService maps the raw record; the kernel-internal HASHED bit is not a user flag', async (t) => {
  const { ipvs } = await fakeIpvs((ops) => ops.map(() => ({ error: 0, records: [rawService as NativeRecord] })))
  const rec = await ipvs.getService(svc)
  t.match(rec, { family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr', persistent: false, timeout: 0, netmask: 32 })
  // addService strips 'hashed' and never sends it, so a record read back does not
  // carry it either, or desired-vs-kernel comparisons would never match.
  t.strictSame(rec?.flags, [], 'flags of a plain service read back')
})
