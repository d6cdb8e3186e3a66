// lib/conntrack on the host, without a kernel: refusals name the field and send
// nothing; a filter becomes the dumps and kernel-side filters of
// native/conntrack (pinned byte for byte in conntrack-fixtures.test.ts), every
// entry that comes back is checked again here, and deletes go by tuple and id
// and are counted. A real Conntrack over a real NetlinkSocket over a fake
// native handle that records each batch, checks native.encode accepts it, and
// answers as told.
import t, { type Test } from 'tap'
import { Conntrack, NetlinkError, ValidationError, type ConntrackFilter } from '../../dist/index.js'
import type { NativeOp, NativeResult } from '../../dist/native.js'
import { openRecording } from '../support/fake-netlink.js'
import { outcome } from '../support/outcome.js'

const ENOENT = 2
const EPERM = 1

interface Raw {
  family: number
  orig: Record<string, unknown>
  reply: Record<string, unknown>
  status?: number
  id?: number
  zone?: number
  tcpState?: number
  timeout?: number
}

function udp(family: number, src: string, dst: string, sport: number, dport: number, id: number, replySrc = dst, replyPort = dport): Raw {
  return {
    family,
    orig: { src, dst, proto: 17, sport, dport },
    reply: { src: replySrc, dst: src, proto: 17, sport: replyPort, dport: sport },
    status: 0x8,
    id,
    timeout: 30,
  }
}

/** The table the fake kernel dumps, whatever the filter (as a kernel without CTA_FILTER would). */
const table: Raw[] = [
  udp(2, '10.0.0.1', '10.96.0.10', 40000, 53, 1, '10.244.1.5', 5353),
  udp(2, '10.0.0.1', '10.96.0.10', 40001, 5353, 2),
  udp(2, '10.0.0.2', '10.96.0.11', 40002, 53, 3),
  { ...udp(2, '10.0.0.3', '10.96.0.10', 40003, 53, 4), zone: 7 },
  { family: 2, orig: { src: '10.0.0.1', dst: '10.96.0.10', proto: 6, sport: 41000, dport: 53 }, reply: { src: '10.96.0.10', dst: '10.0.0.1', proto: 6, sport: 53, dport: 41000 }, status: 0xe, id: 5, tcpState: 3 },
  udp(10, 'fd00::1', 'fd00::10', 40000, 53, 6),
  udp(10, 'fd00::1', 'fd00::11', 40001, 53, 7),
  { family: 2, orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 99 }, reply: { src: '10.0.0.2', dst: '10.0.0.1', proto: 1, icmpType: 0, icmpCode: 0, icmpId: 99 }, status: 0xa, id: 8 },
]

type Answer = (op: NativeOp) => NativeResult
const kernel: Answer = (op) => {
  if (op.cmd === 'list') return { error: 0, records: table.filter((e) => e.family === op.family).map((e) => ({ kind: 'entry', ...structuredClone(e) })) as never[] }
  if (op.cmd === 'count') return { error: 0, records: [{ kind: 'stats', entries: table.length, maxEntries: 65536 } as never] }
  return { error: 0, records: [] }
}

// Conntrack.open() runs against the default kernel; the test's answers and record start after it.
async function fake(answer: Answer = kernel): Promise<{ ct: Conntrack; sent: NativeOp[][] }> {
  const { handle: ct, sent } = await openRecording(t, 'conntrack', () => Conntrack.open(), kernel, answer)
  return { ct, sent }
}

async function refused(t: Test, call: (c: Conntrack) => Promise<unknown>, op: string, field: string, value?: unknown, index?: number): Promise<void> {
  const { ct, sent } = await fake()
  const e = await outcome(call(ct))
  if (!(e instanceof ValidationError)) {
    t.fail(`expected a ValidationError on ${field}, got ${JSON.stringify(e)}`)
    return
  }
  t.equal(e.op, op)
  t.equal(e.field, field, `field ${field}`)
  if (arguments.length > 4) t.strictSame(e.value, value)
  t.equal(e.index, index)
  t.equal(sent.length, 0, 'nothing was sent')
}

// =========================================================================================
// Refusals
// =========================================================================================

t.test('filters: malformed or mixed addresses, unknown protocols, ports that do not apply', async (t) => {
  const list = (f: unknown) => (c: Conntrack) => c.list(f as ConntrackFilter)
  await refused(t, list({ family: 'ipv4' }), 'conntrack.list', 'filter.family', 'ipv4')
  await refused(t, list({ destination: '10.96.0.300' }), 'conntrack.list', 'filter.destination', '10.96.0.300')
  await refused(t, list({ destination: '10.96.0.10:53' }), 'conntrack.list', 'filter.destination', '10.96.0.10:53')
  await refused(t, list({ family: 'inet6', destination: '10.96.0.10' }), 'conntrack.list', 'filter.destination', '10.96.0.10')
  await refused(t, list({ destination: '10.96.0.10', replySource: 'fd00::1' }), 'conntrack.list', 'filter.replySource', 'fd00::1')
  await refused(t, list({ source: 'fd00::1', replySource: '10.0.0.1' }), 'conntrack.list', 'filter.replySource', '10.0.0.1')
  await refused(t, list({ protocol: 'http' }), 'conntrack.list', 'filter.protocol', 'http')
  await refused(t, list({ port: 53 }), 'conntrack.list', 'filter.port', 53)
  await refused(t, list({ protocol: 'icmp', port: 53 }), 'conntrack.list', 'filter.port', 53)
  for (const port of [0, 65536, '53', 5.5]) await refused(t, list({ protocol: 'udp', port }), 'conntrack.list', 'filter.port', port)
  await refused(t, list({ protocol: 'icmp', destination: 'fd00::1' }), 'conntrack.list', 'filter.protocol', 'icmp')
  await refused(t, list({ protocol: 'icmpv6', family: 'inet' }), 'conntrack.list', 'filter.protocol', 'icmpv6')
  await refused(t, list('udp'), 'conntrack.list', 'filter', 'udp')
})

t.test('delete: a protocol and a destination, port or replySource are required (no table-wide deletes)', async (t) => {
  const del = (f: unknown) => (c: Conntrack) => c.delete(f as ConntrackFilter)
  await refused(t, del({ destination: '10.96.0.10' }), 'conntrack.delete', 'filter.protocol', undefined)
  await refused(t, del({ protocol: 'udp' }), 'conntrack.delete', 'filter.destination', undefined)
  await refused(t, del({ protocol: 'udp', family: 'inet', source: '10.0.0.1' }), 'conntrack.delete', 'filter.destination', undefined)
  await refused(t, del(undefined), 'conntrack.delete', 'filter', undefined)
})

t.test('deleteEntries: each entry checked, naming its index', async (t) => {
  const good = { family: 'inet', protocol: 'udp', original: { source: '10.0.0.1', destination: '10.96.0.10', sourcePort: 1, destinationPort: 53 }, reply: { source: '', destination: '' }, status: [] }
  const del = (es: unknown) => (c: Conntrack) => c.deleteEntries(es as never)
  await refused(t, del([good, { ...good, family: 'ipx' }]), 'conntrack.deleteEntries', 'entry.family', 'ipx', 1)
  await refused(t, del([{ ...good, original: { ...good.original, destination: 'fd00::1' } }]), 'conntrack.deleteEntries', 'entry.original.destination', 'fd00::1', 0)
  await refused(t, del([{ ...good, protocol: 'quic' }]), 'conntrack.deleteEntries', 'entry.protocol', 'quic', 0)
  await refused(t, del([{ ...good, protocol: 256 }]), 'conntrack.deleteEntries', 'entry.protocol', 256, 0)
  await refused(t, del([{ ...good, original: { ...good.original, sourcePort: 70000 } }]), 'conntrack.deleteEntries', 'entry.original.sourcePort', 70000, 0)
  await refused(t, del([{ ...good, id: -1 }]), 'conntrack.deleteEntries', 'entry.id', -1, 0)
  await refused(t, del(good), 'conntrack.deleteEntries', 'entries')
})

// =========================================================================================
// Dumps and the kernel's filter
// =========================================================================================

t.test('one dump per family; the kernel filters on protocol, port and IPv4 addresses, never IPv6 ones', async (t) => {
  const { ct, sent } = await fake()
  await ct.list({ protocol: 'udp', destination: '10.96.0.10', port: 53 })
  await ct.list({ protocol: 'udp', destination: 'fd00::10', port: 53 })
  await ct.list({ protocol: 'udp', port: 53 })
  await ct.list({ protocol: 'udp', destination: '10.96.0.10', replySource: '10.244.1.5', source: '10.0.0.1' })
  await ct.list({ family: 'inet6', protocol: 'udp', replySource: 'fd00::10' })
  await ct.list()
  t.strictSame(sent, [
    [{ cmd: 'list', family: 2, orig: { proto: 17, dport: 53, dst: '10.96.0.10' } }],
    [{ cmd: 'list', family: 10, orig: { proto: 17, dport: 53 } }],
    [
      { cmd: 'list', family: 2, orig: { proto: 17, dport: 53 } },
      { cmd: 'list', family: 10, orig: { proto: 17, dport: 53 } },
    ],
    [{ cmd: 'list', family: 2, orig: { proto: 17, dst: '10.96.0.10', src: '10.0.0.1' }, reply: { src: '10.244.1.5' } }],
    [{ cmd: 'list', family: 10, orig: { proto: 17 } }],
    [{ cmd: 'list', family: 2 }, { cmd: 'list', family: 10 }],
  ])
})

t.test('every entry is checked here too (a kernel without CTA_FILTER sends them all); records in conntrack words', async (t) => {
  const { ct } = await fake()
  const ids = async (f: ConntrackFilter): Promise<number[]> => (await ct.list(f)).map((e) => e.id!)
  t.strictSame(await ids({ protocol: 'udp', destination: '10.96.0.10', port: 53 }), [1, 4])
  t.strictSame(await ids({ protocol: 'udp', destination: '10.96.0.10' }), [1, 2, 4])
  t.strictSame(await ids({ destination: '10.96.0.10' }), [1, 2, 4, 5], 'any protocol')
  t.strictSame(await ids({ protocol: 'udp', port: 53 }), [1, 3, 4, 6, 7], 'both families')
  t.strictSame(await ids({ protocol: 'udp', destination: 'fd00:0:0::10' }), [6], 'IPv6 compared as bytes, not text')
  t.strictSame(await ids({ replySource: '10.244.1.5' }), [1], 'by the endpoint that answered')
  t.strictSame(await ids({ source: '10.0.0.2' }), [3])
  t.strictSame(await ids({ protocol: 'icmp' }), [8])
  t.equal((await ct.list()).length, table.length)
  const [tcp] = await ct.list({ protocol: 'tcp' })
  t.strictSame(tcp, {
    family: 'inet',
    protocol: 'tcp',
    original: { source: '10.0.0.1', destination: '10.96.0.10', sourcePort: 41000, destinationPort: 53 },
    reply: { source: '10.96.0.10', destination: '10.0.0.1', sourcePort: 53, destinationPort: 41000 },
    status: ['seen-reply', 'assured', 'confirmed'],
    id: 5,
    state: 'ESTABLISHED',
  })
  const [icmp] = await ct.list({ protocol: 'icmp' })
  t.strictSame(icmp!.original, { source: '10.0.0.1', destination: '10.0.0.2', icmpType: 8, icmpCode: 0, icmpId: 99 })
  t.strictSame((await ct.list({ destination: '10.96.0.10', protocol: 'udp', port: 53 }))[1]!.zone, 7)
})

// =========================================================================================
// Deletes
// =========================================================================================

t.test('delete: one request per match, by whole tuple, id and zone, in one call; counts what went', async (t) => {
  const { ct, sent } = await fake()
  t.equal(await ct.delete({ protocol: 'udp', destination: '10.96.0.10', port: 53 }), 2)
  t.strictSame(sent[1], [
    { cmd: 'delete', family: 2, orig: { src: '10.0.0.1', dst: '10.96.0.10', proto: 17, sport: 40000, dport: 53 }, id: 1 },
    { cmd: 'delete', family: 2, orig: { src: '10.0.0.3', dst: '10.96.0.10', proto: 17, sport: 40003, dport: 53 }, zone: 7, id: 4 },
  ])
  sent.length = 0
  t.equal(await ct.delete({ protocol: 'udp', destination: '10.96.0.99' }), 0, 'nothing matches: 0')
  t.equal(sent.length, 1, 'and no delete was sent')
})

t.test('delete: an entry gone in between (ENOENT) is not counted; another refusal throws after the rest', async (t) => {
  const { ct, sent } = await fake((op) => (op.cmd === 'delete' ? { error: op.id === 1 ? ENOENT : op.id === 6 ? EPERM : 0, records: [] } : kernel(op)))
  t.equal(await ct.delete({ protocol: 'udp', destination: '10.96.0.10' }), 2, 'ids 2 and 4; 1 expired meanwhile')
  const e = await outcome(ct.delete({ protocol: 'udp', port: 53 }))
  t.ok(e instanceof NetlinkError)
  t.match(e, { errno: EPERM, code: 'EPERM', op: 'conntrack.delete', index: 3 })
  t.equal(sent.at(-1)!.length, 5, 'every delete was still tried')
})

t.test('deleteEntries: what list gave back, deleted as it was listed', async (t) => {
  const { ct, sent } = await fake()
  const entries = await ct.list({ protocol: 'icmp' })
  t.equal(await ct.deleteEntries(entries), 1)
  t.strictSame(sent.at(-1), [{ cmd: 'delete', family: 2, orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 99 }, id: 8 }])
  t.equal(await ct.deleteEntries([]), 0)
})

t.test('count, and dump errors keep errno and op', async (t) => {
  t.equal(await (await fake()).ct.count(), table.length)
  const { ct } = await fake(() => ({ error: EPERM, records: [] }))
  t.match(await outcome(ct.list()), { errno: EPERM, op: 'conntrack.list' })
  t.match(await outcome(ct.delete({ protocol: 'udp', port: 53 })), { errno: EPERM, op: 'conntrack.delete' })
  t.match(await outcome(ct.count()), { errno: EPERM, op: 'conntrack.count' })
})
