// lib/ipset input validation and batch logic, on the host: every refusal is a
// ValidationError naming the operation and the field, and nothing reaches the
// socket. Valid input becomes the wire operations whose bytes
// test/unit/ipset-fixtures.test.ts pins.
//
// Two ways in, without a kernel:
//  - ipsetEntryWire (lib/ipset.ts entryWire): one entry of a described set ->
//    its wire form, or a ValidationError.
//  - a real IpSet, opened by IpSet.open() over a fake native handle
//    (test/support/fake-netlink.ts) that records each batch, checks
//    native.encode accepts it, and answers as told
//    (a fake at the message level: the replies are what native/ipset decodes).
import t, { type Test } from 'tap'
import { IpSet, NetlinkError, ValidationError, ipsetEntryKey, ipsetEntryWire, ipsetErrorText } from '../../dist/index.js'
import type { IpSetEntry, SetInfo } from '../../dist/index.js'
import { native } from '../../dist/native.js'
import type { NativeOp, NativeResult } from '../../dist/native.js'
import { openAfterHandshake } from '../support/fake-netlink.js'
import { checkRefusal, type Want } from '../support/refusal.js'

// ---- helpers ------------------------------------------------------------------------------

const info = (type: string, more: Partial<SetInfo> = {}): SetInfo => ({
  type,
  ...(type.startsWith('hash:') ? { family: 'inet' as const } : {}),
  timeout: false,
  counters: false,
  comment: false,
  skbinfo: false,
  ...more,
})

function refused(t: Test, set: SetInfo, entry: unknown, want: Omit<Want, 'op'> & { op?: string }, cmd: 'add' | 'del' | 'test' = 'add'): void {
  let e: unknown
  const op = want.op ?? `ipset.${cmd}`
  try {
    ipsetEntryWire({ op }, set, entry, cmd)
  } catch (err) {
    e = err
  }
  checkRefusal(t, e, { ...want, op })
}

/** A set the fake kernel knows, as native/ipset decodes its header. */
interface FakeSet {
  typename: string
  family: number
  header?: Record<string, number>
  members?: Record<string, unknown>[]
}

interface Sent {
  family: number
  ops: NativeOp[]
}
type Answer = (op: NativeOp, sets: Map<string, FakeSet>) => NativeResult | undefined

/**
 * An IpSet over a fake handle. Header lookups (list + IPSET_FLAG_LIST_HEADER)
 * are answered from `sets`; everything else by `answer` (default: success).
 */
async function fakeIpSet(sets: Record<string, FakeSet> = {}, answer: Answer = () => undefined): Promise<{ ipset: IpSet; sent: Sent[]; adds: () => NativeOp[] }> {
  const known = new Map(Object.entries(sets))
  const sent: Sent[] = []
  const handle = {
    portId: 0xabcd,
    async execute(codec: string, family: number, ops: NativeOp[]) {
      sent.push({ family, ops: structuredClone(ops) })
      native.encode(codec, family, ops, 1) // throws if the native codec would refuse it
      return ops.map((op) => {
        const custom = answer(op, known)
        if (custom) return custom
        if (op.cmd === 'type') return { error: 0, records: [{ kind: 'type', typename: op.typename, family: op.family, revision: 99, revisionMin: 0 }] }
        if (op.cmd === 'list' && op.name !== undefined) {
          const s = known.get(op.name as string)
          if (!s) return { error: 2, records: [] }
          const rec = { kind: 'set', name: op.name, typename: s.typename, family: s.family, revision: 1, header: s.header ?? {} }
          return { error: 0, records: [rec] }
        }
        return { error: 0, records: [] }
      })
    },
    async close() {},
  }
  const ipset = await openAfterHandshake(handle, () => IpSet.open())
  const adds = (): NativeOp[] => sent.flatMap((s) => s.ops).filter((o) => o.cmd === 'add' || o.cmd === 'del')
  return { ipset, sent, adds }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  )
}

const IPPI: FakeSet = { typename: 'hash:ip,port,ip', family: 2 }
const entry = (i: number): IpSetEntry => ({ ip: `10.0.0.${i}`, protocol: 'tcp', port: 80, ip2: `10.0.0.${i}` })

// =========================================================================================
// entryWire: the checks
// =========================================================================================

t.test('each type takes its own fields, and they become the wire fields', async (t) => {
  const w = (type: string, e: unknown, more: Partial<SetInfo> = {}): unknown => ipsetEntryWire({ op: 'ipset.add' }, info(type, more), e)
  t.strictSame(w('hash:ip', { ip: '10.0.0.1' }), { af: 2, ip: '10.0.0.1' })
  t.strictSame(w('hash:ip,port', { ip: '10.0.0.1', port: 80 }), { af: 2, ip: '10.0.0.1', proto: 6, port: 80 }, 'protocol defaults to tcp, as the ipset tool')
  t.strictSame(w('hash:ip,port,ip', { ip: '10.0.0.1', protocol: 'udp', port: 53, ip2: '10.0.0.2' }), { af: 2, ip: '10.0.0.1', proto: 17, port: 53, ip2: '10.0.0.2' })
  t.strictSame(w('hash:ip,port,net', { ip: '10.0.0.1', protocol: 'sctp', port: 9, net: '10.1.0.0/16' }), { af: 2, ip: '10.0.0.1', proto: 132, port: 9, ip2: '10.1.0.0', cidr2: 16 })
  t.strictSame(w('hash:net', { net: '10.1.0.0/16' }), { af: 2, ip: '10.1.0.0', cidr: 16 })
  t.strictSame(w('hash:net', { net: '10.1.2.3' }), { af: 2, ip: '10.1.2.3', cidr: 32 }, 'a bare address is a host')
  t.strictSame(w('hash:net,port', { net: 'fd00::/64', protocol: 'udplite', port: 1 }, { family: 'inet6' }), { af: 10, ip: 'fd00::', cidr: 64, proto: 136, port: 1 })
  t.strictSame(w('bitmap:port', { port: 30080 }, { range: [30000, 32767] }), { af: 2, port: 30080 })
  t.strictSame(w('list:set', { set: 'KUBE-X' }), { af: 2, name: 'KUBE-X' })
  t.strictSame(w('hash:net', { net: '10.0.0.0/8', nomatch: true }), { af: 2, ip: '10.0.0.0', cidr: 8, flags: 4 }, 'nomatch is IPSET_FLAG_NOMATCH')
  t.strictSame(w('hash:ip,port', { ip: '10.0.0.1', protocol: 'icmp', port: 0x0800 }), { af: 2, ip: '10.0.0.1', proto: 1, port: 0x0800 }, 'icmp: the port is type << 8 | code')
})

t.test('an entry that does not fit the type: missing and foreign fields', async (t) => {
  refused(t, info('hash:ip,port,ip'), { ip: '10.0.0.1', port: 80 }, { field: 'entry.ip2', value: undefined })
  refused(t, info('hash:ip,port'), { ip: '10.0.0.1' }, { field: 'entry.port', value: undefined })
  refused(t, info('hash:ip'), { ip: '10.0.0.1', port: 80 }, { field: 'entry.port', value: 80 })
  refused(t, info('hash:ip'), { net: '10.0.0.0/8' }, { field: 'entry.net', value: '10.0.0.0/8' })
  refused(t, info('hash:net'), { ip: '10.0.0.1' }, { field: 'entry.ip', value: '10.0.0.1' })
  refused(t, info('bitmap:port', { range: [0, 65535] }), { ip: '10.0.0.1', port: 1 }, { field: 'entry.ip' })
  refused(t, info('list:set'), { name: 'X' }, { field: 'entry.name', value: 'X' })
  refused(t, info('hash:ip'), 'not an object', { field: 'entry', value: 'not an object' })
  refused(t, info('hash:ip'), null, { field: 'entry', value: null })
  refused(t, info('hash:ip'), { ip: '10.0.0.1', nomatch: true }, { field: 'entry.nomatch' })
  refused(t, info('hash:mac'), { mac: '00:11:22:33:44:55' }, { field: 'set', value: 'hash:mac' })
})

t.test('ports out of range, and bitmap:port entries outside the set\'s range', async (t) => {
  for (const port of [65536, -1, 1.5, '80', NaN]) refused(t, info('hash:ip,port'), { ip: '10.0.0.1', port }, { field: 'entry.port', value: port })
  refused(t, info('bitmap:port', { range: [30000, 32767] }), { port: 29999 }, { field: 'entry.port', value: 29999 })
  refused(t, info('bitmap:port', { range: [30000, 32767] }), { port: 32768 }, { field: 'entry.port', value: 32768 })
  t.strictSame(ipsetEntryWire({ op: 'x' }, info('bitmap:port', { range: [30000, 32767] }), { port: 32767 }), { af: 2, port: 32767 }, 'the last port of the range is in')
})

t.test('an IPv6 entry in an inet set, and the reverse; malformed addresses and networks', async (t) => {
  refused(t, info('hash:ip'), { ip: 'fd00::1' }, { field: 'entry.ip', value: 'fd00::1' })
  refused(t, info('hash:ip', { family: 'inet6' }), { ip: '10.0.0.1' }, { field: 'entry.ip', value: '10.0.0.1' })
  refused(t, info('hash:ip,port,ip'), { ip: '10.0.0.1', port: 1, ip2: 'fd00::2' }, { field: 'entry.ip2', value: 'fd00::2' })
  refused(t, info('hash:ip,port,net'), { ip: '10.0.0.1', port: 1, net: 'fd00::/64' }, { field: 'entry.net', value: 'fd00::/64' })
  for (const ip of ['10.0.0.256', '10.0.0', 'example.com', '', '10.0.0.1/32', 7]) refused(t, info('hash:ip'), { ip }, { field: 'entry.ip', value: ip })
  refused(t, info('hash:ip', { family: 'inet6' }), { ip: 'fe80::1%eth0' }, { field: 'entry.ip' })
  for (const net of ['10.0.0.0/33', '10.0.0.0/0', '10.0.0.0/', '10.0.0.0/x', 'fd00::/129', 42]) {
    const set = typeof net === 'string' && net.includes(':') ? info('hash:net', { family: 'inet6' }) : info('hash:net')
    refused(t, set, { net }, { field: 'entry.net', value: net })
  }
})

t.test('protocols: unknown ones, icmp in an inet6 set, icmpv6 in an inet set', async (t) => {
  for (const protocol of ['gre', 'TCP', 6, '']) refused(t, info('hash:ip,port'), { ip: '10.0.0.1', protocol, port: 1 }, { field: 'entry.protocol', value: protocol })
  refused(t, info('hash:ip,port', { family: 'inet6' }), { ip: 'fd00::1', protocol: 'icmp', port: 0 }, { field: 'entry.protocol', value: 'icmp' })
  refused(t, info('hash:ip,port'), { ip: '10.0.0.1', protocol: 'icmpv6', port: 0 }, { field: 'entry.protocol', value: 'icmpv6' })
})

t.test('extensions need the set to have them; their values are checked', async (t) => {
  refused(t, info('hash:ip'), { ip: '10.0.0.1', timeout: 5 }, { field: 'entry.timeout', value: 5 })
  refused(t, info('hash:ip'), { ip: '10.0.0.1', comment: 'x' }, { field: 'entry.comment', value: 'x' })
  refused(t, info('hash:ip'), { ip: '10.0.0.1', packets: 1 }, { field: 'entry.packets', value: 1 })
  refused(t, info('hash:ip'), { ip: '10.0.0.1', skbmark: 1 }, { field: 'entry.skbmark', value: 1 })
  const all = info('hash:ip', { timeout: true, comment: true, counters: true, skbinfo: true })
  refused(t, all, { ip: '10.0.0.1', timeout: 2147484 }, { field: 'entry.timeout', value: 2147484 })
  refused(t, all, { ip: '10.0.0.1', comment: 'x'.repeat(256) }, { field: 'entry.comment' })
  refused(t, all, { ip: '10.0.0.1', comment: 'a\0b' }, { field: 'entry.comment' })
  refused(t, all, { ip: '10.0.0.1', bytes: 2 ** 53 }, { field: 'entry.bytes' })
  refused(t, all, { ip: '10.0.0.1', skbqueue: 65536 }, { field: 'entry.skbqueue', value: 65536 })
  refused(t, all, { ip: '10.0.0.1', skbmarkmask: 1 }, { field: 'entry.skbmarkmask', value: 1 })
  refused(t, all, { ip: '10.0.0.1', timeout: 5 }, { field: 'entry.timeout', value: 5 }, 'del')
  refused(t, all, { ip: '10.0.0.1', comment: 'x' }, { field: 'entry.comment' }, 'test')
  t.strictSame(ipsetEntryWire({ op: 'x' }, all, { ip: '10.0.0.1', timeout: 0, comment: 'é'.repeat(127), packets: 1, bytes: 2, skbmark: 1, skbmarkmask: 0xff, skbprio: 0x10002, skbqueue: 3 }), {
    af: 2, ip: '10.0.0.1', timeout: 0, comment: 'é'.repeat(127), packets: 1, bytes: 2, skbmark: 1, skbmarkmask: 0xff, skbprio: 0x10002, skbqueue: 3,
  }, 'timeout 0 (permanent), a 254-byte comment, every extension')
})

t.test('entry keys compare as the kernel compares entries', async (t) => {
  const key = (type: string, e: unknown, family: 'inet' | 'inet6' = 'inet'): string => ipsetEntryKey(ipsetEntryWire({ op: 'x' }, info(type, { family, timeout: true, comment: true }), e))
  t.equal(key('hash:ip', { ip: 'fd00::1' }, 'inet6'), key('hash:ip', { ip: 'fd00:0:0::0001' }, 'inet6'), 'two spellings of one IPv6 address')
  t.equal(key('hash:ip', { ip: '::ffff:10.0.0.1' }, 'inet6'), key('hash:ip', { ip: '::ffff:a00:1' }, 'inet6'), 'an embedded IPv4 tail')
  t.equal(key('hash:net', { net: '10.1.2.3/16' }), key('hash:net', { net: '10.1.0.0/16' }), 'a network is its masked address')
  t.not(key('hash:net', { net: '10.1.0.0/16' }), key('hash:net', { net: '10.1.0.0/17' }), 'another prefix is another entry')
  t.equal(key('hash:ip', { ip: '10.0.0.1', timeout: 5, comment: 'a' }), key('hash:ip', { ip: '10.0.0.1' }), 'extensions are not identity')
  t.not(key('hash:ip,port', { ip: '10.0.0.1', protocol: 'tcp', port: 80 }), key('hash:ip,port', { ip: '10.0.0.1', protocol: 'udp', port: 80 }), 'protocol is identity')
})

// =========================================================================================
// The IpSet methods: nothing sent on bad input
// =========================================================================================

async function refusedCall(t: Test, call: (ipset: IpSet) => Promise<unknown>, want: Want, sets: Record<string, FakeSet> = { S: IPPI }): Promise<void> {
  const { ipset, sent } = await fakeIpSet(sets)
  const e = await rejection(call(ipset))
  checkRefusal(t, e, want)
  t.equal(sent.flatMap((s) => s.ops).filter((o) => o.cmd !== 'list').length, 0, 'nothing but header lookups was sent')
}

t.test('set names longer than 31 bytes, empty, or with NUL are refused by every method', async (t) => {
  const long = 'K'.repeat(32)
  await refusedCall(t, (s) => s.create({ name: long, type: 'hash:ip' }), { op: 'ipset.create', field: 'spec.name', value: long })
  await refusedCall(t, (s) => s.add(long, { ip: '10.0.0.1' }), { op: 'ipset.add', field: 'name', value: long })
  await refusedCall(t, (s) => s.del('', { ip: '10.0.0.1' }), { op: 'ipset.del', field: 'name', value: '' })
  await refusedCall(t, (s) => s.test('a\0b', { ip: '10.0.0.1' }), { op: 'ipset.test', field: 'name' })
  await refusedCall(t, (s) => s.destroy(long), { op: 'ipset.destroy', field: 'name', value: long })
  await refusedCall(t, (s) => s.flush(long), { op: 'ipset.flush', field: 'name', value: long })
  await refusedCall(t, (s) => s.rename('S', long), { op: 'ipset.rename', field: 'to', value: long })
  await refusedCall(t, (s) => s.swap(long, 'S'), { op: 'ipset.swap', field: 'a', value: long })
  await refusedCall(t, (s) => s.list(long), { op: 'ipset.list', field: 'name', value: long })
  await refusedCall(t, (s) => s.batch([{ op: 'add', set: long, entry: {} }]), { op: 'ipset.add', field: 'set', value: long, index: 0 })
  await refusedCall(t, (s) => s.create({ name: 'é'.repeat(16), type: 'hash:ip' }), { op: 'ipset.create', field: 'spec.name' })
  const { ipset, sent } = await fakeIpSet()
  await ipset.create({ name: 'K'.repeat(31), type: 'hash:ip' })
  t.equal(sent.at(-1)!.ops[0]!.name, 'K'.repeat(31), '31 bytes is the longest name')
})

t.test('create: the options each type has, and their ranges', async (t) => {
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:mac' as 'hash:ip' }), { op: 'ipset.create', field: 'spec.type', value: 'hash:mac' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'bitmap:port', family: 'inet', range: [1, 2] }), { op: 'ipset.create', field: 'spec.family', value: 'inet' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'bitmap:port' }), { op: 'ipset.create', field: 'spec.range', value: undefined })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'bitmap:port', range: [2, 1] }), { op: 'ipset.create', field: 'spec.range' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'bitmap:port', range: [0, 65536] }), { op: 'ipset.create', field: 'spec.range' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:ip', range: [1, 2] }), { op: 'ipset.create', field: 'spec.range' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:ip', size: 8 }), { op: 'ipset.create', field: 'spec.size', value: 8 })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'list:set', hashsize: 8 }), { op: 'ipset.create', field: 'spec.hashsize', value: 8 })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:ip', family: 'ipv4' as 'inet' }), { op: 'ipset.create', field: 'spec.family', value: 'ipv4' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:ip', hashsize: 0 }), { op: 'ipset.create', field: 'spec.hashsize', value: 0 })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:ip', maxelem: 2 ** 32 }), { op: 'ipset.create', field: 'spec.maxelem' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:ip', timeout: -1 }), { op: 'ipset.create', field: 'spec.timeout', value: -1 })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'hash:ip', counters: 'yes' as unknown as boolean }), { op: 'ipset.create', field: 'spec.counters', value: 'yes' })
  await refusedCall(t, (s) => s.create({ name: 'X', type: 'bitmap:port', range: [1, 2], forceadd: true }), { op: 'ipset.create', field: 'spec.forceadd', value: true })
})

t.test('create asks the kernel for the type\'s revisions once, and uses the newest both know', async (t) => {
  const { ipset, sent } = await fakeIpSet({}, (op) => (op.cmd === 'type' ? { error: 0, records: [{ kind: 'type', typename: op.typename as string, family: 2, revision: 9, revisionMin: 0 }] } : undefined))
  await ipset.create({ name: 'A', type: 'hash:ip,port,ip', hashsize: 64, timeout: 10, comment: true, forceadd: true })
  await ipset.create({ name: 'B', type: 'hash:ip,port,ip' })
  const ops = sent.flatMap((s) => s.ops)
  t.strictSame(ops.map((o) => o.cmd), ['type', 'create', 'create'], 'one TYPE request for two creates')
  t.match(ops[1], { cmd: 'create', name: 'A', typename: 'hash:ip,port,ip', family: 2, revision: 6, protocol: 7, data: { hashsize: 64, timeout: 10, flags: 0x30 } }, 'revision 6: ipset 7.17\'s newest, below the kernel\'s 9')
  t.notOk('exist' in ops[1]!, 'no exist unless asked')
})

t.test('each method refuses bad entries before sending', async (t) => {
  await refusedCall(t, (s) => s.add('S', { ip: '10.0.0.1', port: 70000, ip2: '10.0.0.1' }), { op: 'ipset.add', field: 'entry.port', value: 70000 })
  await refusedCall(t, (s) => s.del('S', { ip: 'fd00::1', port: 1, ip2: '10.0.0.1' }), { op: 'ipset.del', field: 'entry.ip', value: 'fd00::1' })
  await refusedCall(t, (s) => s.test('S', { ip: '10.0.0.1', port: 1 }), { op: 'ipset.test', field: 'entry.ip2', value: undefined })
  await refusedCall(t, (s) => s.add('P', { port: 80 }), { op: 'ipset.add', field: 'entry.port', value: 80 }, { P: { typename: 'bitmap:port', family: 0, header: { portFrom: 30000, portTo: 32767 } } })
  await refusedCall(t, (s) => s.add('S', { ...entry(1), timeout: 5 }), { op: 'ipset.add', field: 'entry.timeout', value: 5 })
  await refusedCall(t, (s) => s.replaceMembers('S', [entry(1), { ip: '10.0.0.1' }]), { op: 'ipset.replaceMembers', field: 'entry.port', index: 1 })
  await refusedCall(t, (s) => s.syncMembers('S', [entry(1), 'x' as unknown as IpSetEntry]), { op: 'ipset.syncMembers', field: 'entry', value: 'x', index: 1 })
})

t.test('a set\'s header is read once and kept; its extensions come from the header', async (t) => {
  const { ipset, sent } = await fakeIpSet({ T: { typename: 'hash:ip', family: 10, header: { timeout: 300, flags: 0x10 } } })
  await ipset.add('T', { ip: 'fd00::1', timeout: 5, comment: 'x' })
  await ipset.add('T', { ip: 'fd00::2' })
  await ipset.del('T', { ip: 'fd00::2' })
  const ops = sent.flatMap((s) => s.ops)
  t.strictSame(ops.map((o) => o.cmd), ['list', 'add', 'add', 'del'], 'one header lookup')
  t.match(ops[0], { cmd: 'list', name: 'T', flags: 4 }, 'IPSET_FLAG_LIST_HEADER')
  t.match(ops[1], { cmd: 'add', name: 'T', entry: { af: 10, ip: 'fd00::1', timeout: 5, comment: 'x' } })
  const e = await rejection(ipset.add('T', { ip: 'fd00::3', packets: 1 }))
  t.match(e, { name: 'ValidationError', field: 'entry.packets' }, 'no counters in that header')
})

t.test('a set that does not exist: ENOENT in the ipset tool\'s words, nothing but the lookup sent', async (t) => {
  const { ipset, sent } = await fakeIpSet()
  const e = await rejection(ipset.add('NOPE', { ip: '10.0.0.1' }))
  t.ok(e instanceof NetlinkError)
  t.match(e, { errno: 2, code: 'ENOENT', op: 'ipset.add', message: 'ipset.add: ENOENT: The set with the given name does not exist' })
  t.strictSame(sent.flatMap((s) => s.ops).map((o) => o.cmd), ['list'])
})

// =========================================================================================
// Errors
// =========================================================================================

t.test('ipset\'s private errnos: names and the ipset tool\'s words, per command and kind of set', async (t) => {
  t.strictSame(ipsetErrorText(4103, 'add'), { code: 'IPSET_ERR_EXIST', text: "Element cannot be added to the set: it's already added" })
  t.strictSame(ipsetErrorText(4103, 'del'), { code: 'IPSET_ERR_EXIST', text: "Element cannot be deleted from the set: it's not added" })
  t.strictSame(ipsetErrorText(4101, 'swap'), { code: 'IPSET_ERR_EXIST_SETNAME2', text: 'Sets cannot be swapped: the second set does not exist' })
  t.strictSame(ipsetErrorText(4101, 'rename'), { code: 'IPSET_ERR_EXIST_SETNAME2', text: 'Set cannot be renamed: a set with the new name already exists' })
  t.strictSame(ipsetErrorText(4352, 'add', 'hash'), { code: 'IPSET_ERR_HASH_FULL', text: 'Hash is full, cannot add more elements' })
  t.strictSame(ipsetErrorText(4352, 'add', 'bitmap'), { code: 'IPSET_ERR_BITMAP_RANGE', text: 'Element is out of the range of the set' })
  t.strictSame(ipsetErrorText(4352, 'add', 'list'), { code: 'IPSET_ERR_NAME', text: 'Set to be added/deleted/tested as element does not exist.' })
  t.strictSame(ipsetErrorText(4353, 'add', 'list'), { code: 'IPSET_ERR_LOOP', text: 'Sets with list:set type cannot be added to the set.' })
  t.strictSame(ipsetErrorText(4360, 'add'), { code: 'IPSET_ERR_TYPE_SPECIFIC_8' }, 'an unknown type-specific code keeps its number')
  t.strictSame(ipsetErrorText(17, 'create'), { text: 'Set cannot be created: set with the same name already exists' }, 'EEXIST keeps its kernel name')
  t.strictSame(ipsetErrorText(16, 'add'), {}, 'other errnos: the kernel\'s own name only')
})

t.test('kernel errors keep errno, code, op; the message has the ipset words', async (t) => {
  const { ipset } = await fakeIpSet({ S: IPPI }, (op) => (op.cmd === 'add' ? { error: 4103, records: [] } : op.cmd === 'destroy' ? { error: 4100, records: [] } : undefined))
  const e = await rejection(ipset.add('S', entry(1)))
  t.ok(e instanceof NetlinkError)
  t.match(e, { errno: 4103, code: 'IPSET_ERR_EXIST', op: 'ipset.add', message: "ipset.add: IPSET_ERR_EXIST: Element cannot be added to the set: it's already added" })
  t.match(await rejection(ipset.destroy('S')), { errno: 4100, code: 'IPSET_ERR_BUSY', op: 'ipset.destroy', message: /in use by a kernel component/ })
})

t.test('test(): IPSET_ERR_EXIST is false, success true, anything else throws', async (t) => {
  let answer = 0
  const { ipset } = await fakeIpSet({ S: IPPI }, (op) => (op.cmd === 'test' ? { error: answer, records: [] } : undefined))
  t.equal(await ipset.test('S', entry(1)), true)
  answer = 4103
  t.equal(await ipset.test('S', entry(1)), false)
  answer = 4097
  t.match(await rejection(ipset.test('S', entry(1))), { errno: 4097, code: 'IPSET_ERR_PROTOCOL', op: 'ipset.test' })
})

// =========================================================================================
// Batches
// =========================================================================================

t.test('a batch with one bad operation throws with its index and sends nothing', async (t) => {
  const { ipset, sent } = await fakeIpSet({ S: IPPI })
  const e = await rejection(ipset.batch([{ op: 'add', set: 'S', entry: entry(1) }, { op: 'add', set: 'S', entry: { ...entry(2), port: -1 } }]))
  checkRefusal(t, e, { op: 'ipset.add', field: 'entry.port', value: -1, index: 1 })
  t.equal(sent.flatMap((s) => s.ops).filter((o) => o.cmd === 'add').length, 0)
  const e2 = await rejection(ipset.batch([{ op: 'add', set: 'S', entry: entry(1) }, { op: 'test' as 'add', set: 'S', entry: entry(1) }]))
  checkRefusal(t, e2, { op: 'ipset.test', field: 'op', value: 'test', index: 1 })
  checkRefusal(t, await rejection(ipset.batch('x' as unknown as [])), { op: 'ipset.batch', field: 'ops', value: 'x' })
})

t.test('consecutive operations on one set go as one ADT message, in columns', async (t) => {
  const { ipset, adds } = await fakeIpSet({ S: IPPI, T: { typename: 'hash:ip', family: 2 } })
  const outcomes = await ipset.batch([
    { op: 'add', set: 'S', entry: entry(1) },
    { op: 'add', set: 'S', entry: entry(2) },
    { op: 'del', set: 'S', entry: entry(3) },
    { op: 'add', set: 'T', entry: { ip: '10.0.0.9' }, exist: true },
  ])
  t.strictSame(outcomes, [{ ok: true }, { ok: true }, { ok: true }, { ok: true }])
  const ops = adds()
  t.equal(ops.length, 3, 'add S x2, del S, add T: three messages')
  t.match(ops[0], { cmd: 'add', name: 'S', entries: { count: 2, af: 2, ip: '10.0.0.1\n10.0.0.2', ip2: '10.0.0.1\n10.0.0.2' } }, 'complete address columns travel joined by newlines')
  t.ok((ops[0]!.entries as { port: unknown }).port instanceof Float64Array, 'a number column every entry has is a Float64Array')
  t.match(ops[1], { cmd: 'del', name: 'S', entries: { count: 1 } })
  t.match(ops[2], { cmd: 'add', name: 'T', exist: true, entries: { count: 1, ip: '10.0.0.9' } })
})

t.test('messages stay within 32 KiB of entries', async (t) => {
  const { ipset, adds } = await fakeIpSet({ S: IPPI })
  const n = 2000
  const outcomes = await ipset.batch(Array.from({ length: n }, (_, i) => ({ op: 'add' as const, set: 'S', entry: { ip: `10.0.${i >> 8}.${i & 255}`, port: 1, ip2: '10.1.0.1' } })))
  t.equal(outcomes.filter((o) => o.ok).length, n)
  const counts = adds().map((o) => (o.entries as { count: number }).count)
  t.equal(counts.reduce((a, b) => a + b, 0), n, 'every entry sent once')
  t.ok(counts.length >= 4, `${counts.length} messages`)
  t.ok(counts.every((c) => c * 52 <= 32 * 1024), 'each within budget (52 bytes an entry)')
})

/**
 * A fake kernel for ADT: fails entries whose ip is in `bad` with IPSET_ERR_EXIST,
 * answering as the kernel does (stop there, report the entry's number).
 */
function failing(bad: Set<string>, log: string[][]): Answer {
  return (op) => {
    if (op.cmd !== 'add' && op.cmd !== 'del') return undefined
    if (op.entry) {
      const ip = (op.entry as { ip: string }).ip
      log.push([ip])
      return { error: bad.has(ip) ? 4103 : 0, records: [] }
    }
    const ips = (op.entries as { ip: string }).ip.split('\n')
    log.push([...ips])
    const i = ips.findIndex((ip) => bad.has(ip))
    return i < 0 ? { error: 0, records: [] } : { error: 4103, echo: { line: i + 1 }, records: [] }
  }
}

t.test('one result per entry: the failing entry gets the error, the rest of its message goes again', async (t) => {
  const log: string[][] = []
  const { ipset } = await fakeIpSet({ S: IPPI }, failing(new Set(['10.0.0.3']), log))
  const outcomes = await ipset.batch([1, 2, 3, 4, 5].map((i) => ({ op: 'add' as const, set: 'S', entry: entry(i) })))
  t.strictSame(outcomes.map((o) => (o.ok ? 'ok' : o.error.code)), ['ok', 'ok', 'IPSET_ERR_EXIST', 'ok', 'ok'])
  t.match(outcomes[2], { ok: false, error: { errno: 4103, op: 'ipset.add', index: 2, message: /ipset\.add \(batch index 2\): IPSET_ERR_EXIST: Element cannot be added/ } })
  t.strictSame(log, [['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'], ['10.0.0.4', '10.0.0.5']], 'entries 4 and 5 sent again, as a batch')
})

t.test('many failures in one message: twice as a batch, then one message per entry', async (t) => {
  const log: string[][] = []
  const bad = new Set(['10.0.0.2', '10.0.0.4', '10.0.0.6'])
  const { ipset } = await fakeIpSet({ S: IPPI }, failing(bad, log))
  const outcomes = await ipset.batch([1, 2, 3, 4, 5, 6, 7].map((i) => ({ op: 'add' as const, set: 'S', entry: entry(i) })))
  t.strictSame(outcomes.map((o) => o.ok), [true, false, true, false, true, false, true])
  t.strictSame(log, [
    ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'],
    ['10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'],
    ['10.0.0.5'], ['10.0.0.6'], ['10.0.0.7'],
  ], 'round 1 and 2 as batches, round 3 entry by entry')
})

t.test('every "hash full" refusal of a batch is IPSET_ERR_HASH_FULL with its message, not only the first', async (t) => {
  // A hash set that holds 3: the kernel refuses each later add with 4352, which
  // is IPSET_ERR_HASH_FULL only for hash types (bitmap and list number their own).
  let held = 0
  const { ipset } = await fakeIpSet({ S: IPPI }, (op) => {
    if (op.cmd !== 'add') return undefined
    const n = op.entry ? 1 : (op.entries as { count: number }).count
    for (let i = 0; i < n; i++) {
      if (held === 3) return op.entry ? { error: 4352, records: [] } : { error: 4352, echo: { line: i + 1 }, records: [] }
      held++
    }
    return { error: 0, records: [] }
  })
  const outcomes = await ipset.batch([1, 2, 3, 4, 5, 6, 7, 8].map((i) => ({ op: 'add' as const, set: 'S', entry: entry(i) })))
  t.strictSame(outcomes.map((o) => o.ok), [true, true, true, false, false, false, false, false])
  for (const [i, o] of outcomes.entries()) {
    if (o.ok) continue
    t.match(o.error, { errno: 4352, code: 'IPSET_ERR_HASH_FULL', op: 'ipset.add', index: i, message: `ipset.add (batch index ${i}): IPSET_ERR_HASH_FULL: Hash is full, cannot add more elements` }, `entry ${i}`)
  }
  // And single adds after it: still the set's own words.
  const e = await rejection(ipset.add('S', entry(9)))
  t.match(e, { errno: 4352, code: 'IPSET_ERR_HASH_FULL', message: /Hash is full/ })
})

t.test('an error without a line (no such set) fails the whole message', async (t) => {
  const { ipset } = await fakeIpSet({ S: IPPI }, (op) => (op.cmd === 'add' ? { error: 2, records: [] } : undefined))
  const outcomes = await ipset.batch([1, 2].map((i) => ({ op: 'add' as const, set: 'S', entry: entry(i) })))
  t.strictSame(outcomes.map((o) => (o.ok ? 'ok' : `${o.error.code} ${o.error.index}`)), ['ENOENT 0', 'ENOENT 1'])
})

t.test('operations on a missing set fail with ENOENT without being sent; the rest go', async (t) => {
  const { ipset, adds } = await fakeIpSet({ S: IPPI })
  const outcomes = await ipset.batch([
    { op: 'add', set: 'NOPE', entry: { anything: 1 } as IpSetEntry },
    { op: 'add', set: 'S', entry: entry(1) },
  ])
  t.match(outcomes[0], { ok: false, error: { errno: 2, code: 'ENOENT', op: 'ipset.add', index: 0 } })
  t.strictSame(outcomes[1], { ok: true })
  t.equal(adds().length, 1)
})

t.test('an entry repeated in a batch splits it: the second waits for the first', async (t) => {
  const log: string[][] = []
  const { ipset, sent } = await fakeIpSet({ S: IPPI }, failing(new Set(), log))
  await ipset.batch([
    { op: 'add', set: 'S', entry: entry(1) },
    { op: 'add', set: 'S', entry: entry(2) },
    { op: 'del', set: 'S', entry: entry(1) },
    { op: 'add', set: 'S', entry: entry(3) },
  ])
  const bursts = sent.filter((s) => s.ops.some((o) => o.cmd === 'add' || o.cmd === 'del'))
  t.equal(bursts.length, 2, 'two bursts')
  t.strictSame(bursts[1]!.ops.map((o) => o.cmd), ['del', 'add'], 'the delete of the repeated entry goes in the second')
})

t.test('the kernel\'s ADT echo drives the batch end to end through native.collect', async (t) => {
  // The real receive loop and codec: a captured-shape error datagram for the
  // batch the library built, answered by the kernel's rules.
  const { ipset } = await fakeIpSet({ X: { typename: 'hash:ip', family: 2 } }, (op) => {
    if (op.cmd !== 'add' || !op.entries) return undefined
    const req = native.encode('ipset', 2, [op], 1)
    const lineAt = req.indexOf(Buffer.from([0x08, 0x00, 0x09, 0x40])) + 4
    req.writeUInt32BE(2, lineAt)
    const head = Buffer.alloc(20)
    head.writeUInt32LE(20 + req.length, 0)
    head.writeUInt16LE(2, 4)
    head.writeUInt32LE(1, 8)
    head.writeUInt32LE(0xabcd, 12)
    head.writeInt32LE(-4103, 16)
    return native.collect('ipset', [false], 0xabcd, 1, [Buffer.concat([head, req])]).results[0]!
  })
  const outcomes = await ipset.batch(['10.0.0.1', '10.0.0.2'].map((ip) => ({ op: 'add' as const, set: 'X', entry: { ip } })))
  t.strictSame(outcomes.map((o) => o.ok), [true, false])
})

// =========================================================================================
// Records, sync, replace
// =========================================================================================

const dump = (name: string, typename: string, family: number, header: Record<string, number>, ...members: Record<string, unknown>[]): NativeResult => ({
  error: 0,
  records: [
    { kind: 'set', name, typename, family, revision: 6, index: 0, header, members: members[0] },
    ...members.slice(1).map((m) => ({ kind: 'set', name, members: m })),
  ],
})

t.test('list(): the messages of one set become one typed record', async (t) => {
  const { ipset } = await fakeIpSet({}, (op) => op.cmd === 'list' && op.flags === undefined
    ? dump('S', 'hash:ip,port,net', 2, { hashsize: 1024, maxelem: 65536, bucketsize: 12, initval: 7, elements: 3, references: 1, memsize: 500, timeout: 60, flags: 0x4c },
      { count: 2, ip: ['10.0.0.1', '10.0.0.2'], port: new Float64Array([53, 80]), proto: new Float64Array([17, 6]), ip2: ['10.1.0.0', '10.2.0.0'], cidr2: new Float64Array([16, 24]), timeout: new Float64Array([50, 40]), packets: new Float64Array([1, 2]), bytes: new Float64Array([3, 4]), flags: new Float64Array([4, NaN]) },
      { count: 1, ip: ['10.0.0.3'], port: new Float64Array([1]), proto: new Float64Array([132]), ip2: ['10.3.0.0'], cidr2: new Float64Array([8]), timeout: new Float64Array([30]), packets: new Float64Array([0]), bytes: new Float64Array([0]), skbmark: new Float64Array([5]), skbmarkmask: new Float64Array([0xffffffff]), skbprio: new Float64Array([0x10002]), skbqueue: new Float64Array([3]) })
    : undefined)
  t.strictSame(await ipset.list('S'), {
    name: 'S', type: 'hash:ip,port,net', family: 'inet', revision: 6,
    hashsize: 1024, maxelem: 65536, bucketsize: 12, initval: 7, timeout: 60,
    counters: true, comment: false, skbinfo: true, forceadd: false, references: 1, memsize: 500, entries: 3,
    members: [
      { ip: '10.0.0.1', protocol: 'udp', port: 53, net: '10.1.0.0/16', timeout: 50, packets: 1, bytes: 3, nomatch: true },
      { ip: '10.0.0.2', protocol: 'tcp', port: 80, net: '10.2.0.0/24', timeout: 40, packets: 2, bytes: 4 },
      { ip: '10.0.0.3', protocol: 'sctp', port: 1, net: '10.3.0.0/8', timeout: 30, packets: 0, bytes: 0, skbmark: 5, skbprio: 0x10002, skbqueue: 3 },
    ],
  })
})

t.test('bitmap:port and list:set records: range and size, no family', async (t) => {
  const { ipset } = await fakeIpSet({}, (op) => op.cmd !== 'list' ? undefined
    : op.name === 'P' ? dump('P', 'bitmap:port', 0, { portFrom: 30000, portTo: 32767, elements: 1, references: 0, memsize: 9 }, { count: 1, port: new Float64Array([30080]) })
      : dump('L', 'list:set', 0, { size: 8, elements: 1, references: 0, memsize: 9 }, { count: 1, name: ['P'] }))
  t.match(await ipset.list('P'), { type: 'bitmap:port', range: [30000, 32767], members: [{ port: 30080 }] })
  t.notOk('family' in (await ipset.list('P')), 'no family')
  t.match(await ipset.list('L'), { type: 'list:set', size: 8, members: [{ set: 'P' }] })
})

t.test('listNames(): the names of a names-only dump', async (t) => {
  const { ipset, sent } = await fakeIpSet({}, (op) => (op.cmd === 'list' ? { error: 0, records: [{ kind: 'set', name: 'A' }, { kind: 'set', name: 'B' }] } : undefined))
  t.strictSame(await ipset.listNames(), ['A', 'B'])
  t.match(sent[0]!.ops[0], { cmd: 'list', flags: 2 })
})

t.test('syncMembers: one listing, then deletes of the extra and adds of the missing', async (t) => {
  const { ipset, sent } = await fakeIpSet({ S: { typename: 'hash:net', family: 2 } }, (op) => op.cmd === 'list' && op.flags === undefined
    ? dump('S', 'hash:net', 2, { elements: 3 }, { count: 3, ip: ['10.1.0.0', '10.2.0.0', '10.3.0.0'], cidr: new Float64Array([16, 16, 16]) })
    : undefined)
  const r = await ipset.syncMembers('S', [{ net: '10.1.9.9/16' }, { net: '10.3.0.0/16' }, { net: '10.4.0.0/16' }, { net: '10.4.0.0/16' }])
  t.strictSame(r, { added: 1, deleted: 1, unchanged: 2, errors: [] }, '10.1.9.9/16 is 10.1.0.0/16; a duplicate counts once')
  const changes = sent.flatMap((s) => s.ops).filter((o) => o.cmd === 'add' || o.cmd === 'del')
  t.match(changes, [
    { cmd: 'del', name: 'S', exist: true, entries: { count: 1, ip: '10.2.0.0' } },
    { cmd: 'add', name: 'S', exist: true, entries: { count: 1, ip: '10.4.0.0' } },
  ])
})

t.test('replaceMembers: a temporary set of the same kind, filled, swapped in, destroyed', async (t) => {
  const header = { hashsize: 2048, maxelem: 1000, timeout: 30, flags: 0x18 }
  const { ipset, sent } = await fakeIpSet({ S: { typename: 'hash:ip', family: 10, header } }, (op) => (op.cmd === 'type' ? { error: 0, records: [{ kind: 'type', typename: 'hash:ip', family: 10, revision: 5, revisionMin: 0 }] } : undefined))
  await ipset.replaceMembers('S', [{ ip: 'fd00::1', comment: 'a' }, { ip: 'fd00::2' }])
  const ops = sent.flatMap((s) => s.ops)
  t.strictSame(ops.map((o) => o.cmd), ['list', 'type', 'create', 'add', 'swap', 'destroy'])
  const tmp = ops[2]!.name as string
  t.match(tmp, /^tsproxy-tmp-[0-9a-f]{12}$/)
  t.ok(Buffer.byteLength(tmp) <= 31)
  t.match(ops[2], { typename: 'hash:ip', family: 10, revision: 5, data: { hashsize: 2048, maxelem: 1000, timeout: 30, flags: 0x18 } }, 'the same header')
  t.match(ops[3], { name: tmp, exist: true, entries: { count: 2, ip: 'fd00::1\nfd00::2', comment: ['a', undefined] } }, 'an incomplete column keeps its holes')
  t.match(ops[4], { cmd: 'swap', name: tmp, name2: 'S' })
  t.match(ops[5], { cmd: 'destroy', name: tmp })
})

t.test('replaceMembers with resize: the temporary set gets the new maxelem and hashsize, the rest of the header kept', async (t) => {
  const header = { hashsize: 1024, maxelem: 65536, flags: 0x10 }
  const { ipset, sent } = await fakeIpSet({ S: { typename: 'hash:ip', family: 2, header } }, (op) => (op.cmd === 'type' ? { error: 0, records: [{ kind: 'type', typename: 'hash:ip', family: 2, revision: 5, revisionMin: 0 }] } : undefined))
  await ipset.replaceMembers('S', [{ ip: '10.0.0.1' }], { maxelem: 131072 })
  const create = sent.flatMap((s) => s.ops).find((o) => o.cmd === 'create')
  t.match(create, { typename: 'hash:ip', family: 2, data: { hashsize: 1024, maxelem: 131072, flags: 0x10 } })
  await ipset.replaceMembers('S', [{ ip: '10.0.0.1' }], { hashsize: 4096 })
  t.match(sent.flatMap((s) => s.ops).filter((o) => o.cmd === 'create').at(-1), { data: { hashsize: 4096, maxelem: 65536 } })
})

t.test('replaceMembers refuses a bad resize before sending anything that changes the kernel', async (t) => {
  await refusedCall(t, (s) => s.replaceMembers('S', [], { maxelem: 0 }), { op: 'ipset.replaceMembers', field: 'resize.maxelem', value: 0 })
  await refusedCall(t, (s) => s.replaceMembers('S', [], { hashsize: 1.5 }), { op: 'ipset.replaceMembers', field: 'resize.hashsize', value: 1.5 })
  await refusedCall(t, (s) => s.replaceMembers('S', [], { size: 3 } as never), { op: 'ipset.replaceMembers', field: 'resize.size' })
  await refusedCall(t, (s) => s.replaceMembers('P', [], { maxelem: 10 }), { op: 'ipset.replaceMembers', field: 'resize' }, { P: { typename: 'bitmap:port', family: 0, header: { portFrom: 1, portTo: 2 } } })
})

t.test('replaceMembers: a refused entry leaves the set alone and throws with its index', async (t) => {
  const { ipset, sent } = await fakeIpSet({ S: { typename: 'hash:ip', family: 2 } }, (op) => {
    if (op.cmd === 'type') return { error: 0, records: [{ kind: 'type', typename: 'hash:ip', family: 2, revision: 5, revisionMin: 0 }] }
    if (op.cmd === 'add') return { error: 4352, echo: { line: 2 }, records: [] }
    return undefined
  })
  const e = await rejection(ipset.replaceMembers('S', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }]))
  t.match(e, { name: 'NetlinkError', errno: 4352, code: 'IPSET_ERR_HASH_FULL', index: 1 })
  const cmds = sent.flatMap((s) => s.ops).map((o) => o.cmd)
  t.notOk(cmds.includes('swap'), 'no swap')
  t.equal(cmds.at(-1), 'destroy', 'the temporary set is destroyed')
})

t.test('close: later calls reject with EBADF', async (t) => {
  const { ipset } = await fakeIpSet({ S: IPPI })
  await ipset.close()
  t.match(await rejection(ipset.add('S', entry(1))), { name: 'NetlinkError', errno: 9 })
})

t.test('the hand-written IPv4 check agrees with node:net isIPv4', async (t) => {
  const { isIPv4 } = await import('node:net')
  const { isIPv4Text } = await import('../../dist/address.js')
  const cases = ['0.0.0.0', '255.255.255.255', '256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', '1..2.3', '.1.2.3', '1.2.3.',
    'a.b.c.d', '10.0.0.1', '1.2.3.4 ', '1.2.3.-4', '0.00.0.0', '1.2.3.4/32', '', '1234.1.1.1', '::1', '１.2.3.4']
  for (const c of cases) t.equal(isIPv4Text(c), isIPv4(c), JSON.stringify(c))
  let seed = 42
  const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n)
  let disagree = 0
  for (let i = 0; i < 50000; i++) {
    const s = [0, 1, 2, 3].map(() => (rnd(10) === 0 ? `0${rnd(99)}` : String(rnd(10) === 0 ? rnd(400) : rnd(256)))).join(rnd(50) === 0 ? '..' : '.')
    if (isIPv4Text(s) !== isIPv4(s)) disagree++
  }
  t.equal(disagree, 0, '50000 generated addresses')
})
