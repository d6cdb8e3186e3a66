// Two rules every entry point of the library keeps, table-driven over all of
// them (Ipvs, IpSet, Rtnl, Conntrack, Iptables), on the host:
//  1. a string looked up in a table (protocols, forwarding methods, tunnel
//     types, flags, set types, families, scopes, tables, matches, targets, ...)
//     never finds Object.prototype: '__proto__', 'constructor', 'toString',
//     'hasOwnProperty' and 'valueOf' are refused like any unknown name, with a
//     ValidationError naming the field (and the index in a batch);
//  2. a record with a field the API does not know is refused, naming the field,
//     and nothing is sent (in a batch: nothing of the batch).
// Names the kernel owns (set names, link names, schedulers) are not looked up
// here: such strings are valid names and reach the kernel as they are.
import t, { type Test } from 'tap'
import { Conntrack, IpSet, Iptables, Ipvs, Rtnl, ValidationError, iptablesEncodeRule } from '../../dist/index.js'
import { native } from '../../dist/native.js'
import type { NativeOp, NativeResult } from '../../dist/native.js'
import { openAfterHandshake, type FakeHandle } from '../support/fake-netlink.js'

const PROTO_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']

// ---- handles over a fake native socket ------------------------------------------------------

const SETS: Record<string, { typename: string; family: number; header?: Record<string, number> }> = {
  S: { typename: 'hash:ip,port,ip', family: 2 },
  B: { typename: 'bitmap:port', family: 0, header: { portFrom: 0, portTo: 65535 } },
  constructor: { typename: 'hash:ip', family: 2 },
}

function answer(codec: string, op: NativeOp): NativeResult {
  const ok = (records: unknown[] = []): NativeResult => ({ error: 0, records } as unknown as NativeResult)
  if (codec === 'ipset' && op.cmd === 'list' && op.name !== undefined) {
    const s = SETS[op.name as string]
    return s ? ok([{ kind: 'set', name: op.name, typename: s.typename, family: s.family, revision: 1, header: s.header ?? {} }]) : { error: 2, records: [] }
  }
  if (codec === 'ipset' && op.cmd === 'type') return ok([{ kind: 'type', typename: op.typename, family: op.family, revision: 6, revisionMin: 0 }])
  if (codec === 'route' && op.cmd === 'getLink') return ok([{ kind: 'link', index: 7, name: op.name, type: 1, flags: 0, linkKind: 'dummy' }])
  if (codec === 'conntrack' && op.cmd === 'count') return ok([{ kind: 'stats', entries: 0 }])
  return ok()
}

interface Handles {
  ipvs: Ipvs
  ipset: IpSet
  rtnl: Rtnl
  ct: Conntrack
  /** Requests sent, but ipset's reads (set headers, types, a listing syncMembers compares with). */
  sent: NativeOp[]
}

async function handles(): Promise<Handles> {
  const sent: NativeOp[] = []
  const handle: FakeHandle = {
    async execute(codec: string, family: number, ops: NativeOp[]) {
      native.encode(codec, family, ops, 1) // the native codec takes it as it is
      for (const op of ops) if (!(codec === 'ipset' && (op.cmd === 'type' || op.cmd === 'list'))) sent.push(op)
      return ops.map((op) => answer(codec, op))
    },
    async close() {},
  }
  return {
    ipvs: await openAfterHandshake(handle, () => Ipvs.open()),
    ipset: await openAfterHandshake(handle, () => IpSet.open()),
    rtnl: await openAfterHandshake(handle, () => Rtnl.open()),
    ct: await openAfterHandshake(handle, () => Conntrack.open()),
    sent,
  }
}

const ipt4 = await Iptables.open()

/** An entry point called with one value put in; what it should refuse. */
interface Case {
  /** e.g. 'ipvs.addService service.protocol' */
  name: string
  call: (h: Handles, x: unknown) => unknown
  /** The operation the error names (a batch names each operation by the op it gives). */
  op: string | ((x: unknown) => string)
  field: string
  index?: number
}

async function refusedWith(t: Test, c: Case, x: unknown, field = c.field): Promise<void> {
  const h = await handles()
  let e: unknown
  try {
    await c.call(h, x)
  } catch (err) {
    e = err
  }
  if (!(e instanceof ValidationError)) {
    t.fail(`${c.name} = ${JSON.stringify(x)}: expected a ValidationError on ${field}, got ${e === undefined ? 'success' : String(e)}`)
    return
  }
  t.equal(e.op, typeof c.op === 'string' ? c.op : c.op(x), `${c.name}: op`)
  t.equal(e.field, field, `${c.name} = ${JSON.stringify(x)}: field (${e.message})`)
  t.equal(e.index, c.index, `${c.name}: index`)
  t.strictSame(h.sent, [], `${c.name}: nothing sent`)
}

// ---- 1. string look-ups ------------------------------------------------------------------------

const svc = { protocol: 'tcp', address: '10.0.0.1', port: 80 }
const dst = { address: '10.1.0.1', port: 8080 }
const tunnel = { ...dst, forward: 'tunnel' }
const ippi = { ip: '10.0.0.1', protocol: 'tcp', port: 80, ip2: '10.0.0.2' }
const encode = (rule: unknown, table: 'nat' | 'filter' = 'filter'): unknown => iptablesEncodeRule({ op: 'iptables.appendRule' }, rule, { family: 'inet', table })
const match = (m: Record<string, unknown>): Record<string, unknown> => ({ matches: [m] })

const lookups: Case[] = [
  // IPVS
  { name: 'ipvs.addService service.protocol', op: 'ipvs.addService', field: 'service.protocol', call: (h, x) => h.ipvs.addService({ ...svc, protocol: x } as never) },
  { name: 'ipvs.updateService service.protocol', op: 'ipvs.updateService', field: 'service.protocol', call: (h, x) => h.ipvs.updateService({ ...svc, protocol: x } as never) },
  { name: 'ipvs.deleteService service.protocol', op: 'ipvs.deleteService', field: 'service.protocol', call: (h, x) => h.ipvs.deleteService({ ...svc, protocol: x } as never) },
  { name: 'ipvs.getService service.protocol', op: 'ipvs.getService', field: 'service.protocol', call: (h, x) => h.ipvs.getService({ ...svc, protocol: x } as never) },
  { name: 'ipvs.listDestinations service.protocol', op: 'ipvs.listDestinations', field: 'service.protocol', call: (h, x) => h.ipvs.listDestinations({ ...svc, protocol: x } as never) },
  { name: 'ipvs.zero service.protocol', op: 'ipvs.zero', field: 'service.protocol', call: (h, x) => h.ipvs.zero({ ...svc, protocol: x } as never) },
  { name: 'ipvs.addService service.family (fwmark)', op: 'ipvs.addService', field: 'service.family', call: (h, x) => h.ipvs.addService({ fwmark: 1, family: x } as never) },
  { name: 'ipvs.addService service.family', op: 'ipvs.addService', field: 'service.family', call: (h, x) => h.ipvs.addService({ ...svc, family: x } as never) },
  { name: 'ipvs.addService service.flags', op: 'ipvs.addService', field: 'service.flags', call: (h, x) => h.ipvs.addService({ ...svc, flags: [x] } as never) },
  { name: 'ipvs.addDestination service.protocol', op: 'ipvs.addDestination', field: 'service.protocol', call: (h, x) => h.ipvs.addDestination({ ...svc, protocol: x } as never, dst) },
  { name: 'ipvs.addDestination destination.forward', op: 'ipvs.addDestination', field: 'destination.forward', call: (h, x) => h.ipvs.addDestination(svc as never, { ...dst, forward: x } as never) },
  { name: 'ipvs.updateDestination destination.forward', op: 'ipvs.updateDestination', field: 'destination.forward', call: (h, x) => h.ipvs.updateDestination(svc as never, { ...dst, forward: x } as never) },
  { name: 'ipvs.addDestination destination.tunnelType', op: 'ipvs.addDestination', field: 'destination.tunnelType', call: (h, x) => h.ipvs.addDestination(svc as never, { ...tunnel, tunnelType: x } as never) },
  { name: 'ipvs.addDestination destination.tunnelFlags', op: 'ipvs.addDestination', field: 'destination.tunnelFlags', call: (h, x) => h.ipvs.addDestination(svc as never, { ...tunnel, tunnelFlags: x } as never) },
  { name: 'ipvs.deleteDestination service.protocol', op: 'ipvs.deleteDestination', field: 'service.protocol', call: (h, x) => h.ipvs.deleteDestination({ ...svc, protocol: x } as never, dst) },
  { name: 'ipvs.batch op', op: (x) => `ipvs.${String(x)}`, field: 'op', index: 1, call: (h, x) => h.ipvs.batch([{ op: 'flush' }, { op: x }] as never) },
  { name: 'ipvs.batch service.protocol', op: 'ipvs.addService', field: 'service.protocol', index: 1, call: (h, x) => h.ipvs.batch([{ op: 'flush' }, { op: 'addService', service: { ...svc, protocol: x } }] as never) },
  { name: 'ipvs.batch destination.forward', op: 'ipvs.addDestination', field: 'destination.forward', index: 1, call: (h, x) => h.ipvs.batch([{ op: 'flush' }, { op: 'addDestination', service: svc, destination: { ...dst, forward: x } }] as never) },
  // ipset
  { name: 'ipset.create spec.type', op: 'ipset.create', field: 'spec.type', call: (h, x) => h.ipset.create({ name: 'N', type: x } as never) },
  { name: 'ipset.create spec.family', op: 'ipset.create', field: 'spec.family', call: (h, x) => h.ipset.create({ name: 'N', type: 'hash:ip', family: x } as never) },
  { name: 'ipset.add entry.protocol', op: 'ipset.add', field: 'entry.protocol', call: (h, x) => h.ipset.add('S', { ...ippi, protocol: x } as never) },
  { name: 'ipset.del entry.protocol', op: 'ipset.del', field: 'entry.protocol', call: (h, x) => h.ipset.del('S', { ...ippi, protocol: x } as never) },
  { name: 'ipset.test entry.protocol', op: 'ipset.test', field: 'entry.protocol', call: (h, x) => h.ipset.test('S', { ...ippi, protocol: x } as never) },
  { name: 'ipset.batch op', op: (x) => `ipset.${String(x)}`, field: 'op', index: 1, call: (h, x) => h.ipset.batch([{ op: 'add', set: 'S', entry: ippi }, { op: x, set: 'S', entry: ippi }] as never) },
  { name: 'ipset.batch entry.protocol', op: 'ipset.add', field: 'entry.protocol', index: 1, call: (h, x) => h.ipset.batch([{ op: 'add', set: 'S', entry: ippi }, { op: 'add', set: 'S', entry: { ...ippi, protocol: x } }] as never) },
  { name: 'ipset.syncMembers entry.protocol', op: 'ipset.syncMembers', field: 'entry.protocol', index: 1, call: (h, x) => h.ipset.syncMembers('S', [ippi, { ...ippi, protocol: x }] as never) },
  { name: 'ipset.replaceMembers entry.protocol', op: 'ipset.replaceMembers', field: 'entry.protocol', index: 1, call: (h, x) => h.ipset.replaceMembers('S', [ippi, { ...ippi, protocol: x }] as never) },
  // rtnetlink
  { name: 'route.addAddress address.scope', op: 'route.addAddress', field: 'address.scope', call: (h, x) => h.rtnl.addAddress('d0', { address: '10.0.0.1', scope: x } as never) },
  { name: 'route.listAddresses filter.family', op: 'route.listAddresses', field: 'filter.family', call: (h, x) => h.rtnl.listAddresses({ family: x } as never) },
  { name: 'route.batch op', op: (x) => `route.${String(x)}`, field: 'op', index: 1, call: (h, x) => h.rtnl.batch([{ op: 'addAddress', link: 'd0', address: '10.0.0.1' }, { op: x, link: 'd0', address: '10.0.0.2' }] as never) },
  { name: 'route.batch address.scope', op: 'route.addAddress', field: 'address.scope', index: 1, call: (h, x) => h.rtnl.batch([{ op: 'addAddress', link: 'd0', address: '10.0.0.1' }, { op: 'addAddress', link: 'd0', address: { address: '10.0.0.2', scope: x } }] as never) },
  // conntrack
  { name: 'conntrack.list filter.protocol', op: 'conntrack.list', field: 'filter.protocol', call: (h, x) => h.ct.list({ protocol: x } as never) },
  { name: 'conntrack.list filter.family', op: 'conntrack.list', field: 'filter.family', call: (h, x) => h.ct.list({ family: x } as never) },
  { name: 'conntrack.delete filter.protocol', op: 'conntrack.delete', field: 'filter.protocol', call: (h, x) => h.ct.delete({ protocol: x, destination: '10.96.0.1' } as never) },
  { name: 'conntrack.deleteEntries entry.family', op: 'conntrack.deleteEntries', field: 'entry.family', index: 0, call: (h, x) => h.ct.deleteEntries([{ family: x, protocol: 'udp', original: { source: '10.0.0.1', destination: '10.0.0.2' } }] as never) },
  { name: 'conntrack.deleteEntries entry.protocol', op: 'conntrack.deleteEntries', field: 'entry.protocol', index: 0, call: (h, x) => h.ct.deleteEntries([{ family: 'inet', protocol: x, original: { source: '10.0.0.1', destination: '10.0.0.2' } }] as never) },
  // iptables
  { name: 'iptables.open family', op: 'iptables.open', field: 'family', call: (_h, x) => Iptables.open({ family: x } as never) },
  { name: 'iptables.begin table', op: 'iptables.begin', field: 'table', call: (_h, x) => ipt4.begin(x as never) },
  { name: 'rule.protocol', op: 'iptables.appendRule', field: 'rule.protocol', call: (_h, x) => encode({ protocol: x }) },
  { name: 'rule.protocol negated', op: 'iptables.appendRule', field: 'rule.protocol', call: (_h, x) => encode({ protocol: { not: x } }) },
  { name: 'match', op: 'iptables.appendRule', field: 'rule.matches[0].match', call: (_h, x) => encode(match({ match: x })) },
  { name: 'tcp tcpFlags.mask', op: 'iptables.appendRule', field: 'rule.matches[0].tcpFlags.mask[0]', call: (_h, x) => encode({ protocol: 'tcp', ...match({ match: 'tcp', tcpFlags: { mask: [x], set: [] } }) }) },
  { name: 'multiport', op: 'iptables.appendRule', field: 'rule.matches[0].dports[0]', call: (_h, x) => encode({ protocol: 'tcp', ...match({ match: 'multiport', dports: [x] }) }) },
  { name: 'statistic mode', op: 'iptables.appendRule', field: 'rule.matches[0].mode', call: (_h, x) => encode(match({ match: 'statistic', mode: x })) },
  { name: 'set flags', op: 'iptables.appendRule', field: 'rule.matches[0].flags[0]', call: (_h, x) => encode(match({ match: 'set', matchSet: 'S', flags: [x] })) },
  { name: 'addrtype srcType', op: 'iptables.appendRule', field: 'rule.matches[0].srcType[0]', call: (_h, x) => encode(match({ match: 'addrtype', srcType: [x] })) },
  { name: 'conntrack ctstate', op: 'iptables.appendRule', field: 'rule.matches[0].ctstate[0]', call: (_h, x) => encode(match({ match: 'conntrack', ctstate: [x] })) },
  { name: 'conntrack ctstatus', op: 'iptables.appendRule', field: 'rule.matches[0].ctstatus[0]', call: (_h, x) => encode(match({ match: 'conntrack', ctstatus: [x] })) },
  { name: 'conntrack ctproto', op: 'iptables.appendRule', field: 'rule.matches[0].ctproto', call: (_h, x) => encode(match({ match: 'conntrack', ctproto: x })) },
  { name: 'conntrack ctdir', op: 'iptables.appendRule', field: 'rule.matches[0].ctdir', call: (_h, x) => encode(match({ match: 'conntrack', ctdir: x })) },
  { name: 'recent command', op: 'iptables.appendRule', field: 'rule.matches[0].command', call: (_h, x) => encode(match({ match: 'recent', command: x })) },
  { name: 'recent side', op: 'iptables.appendRule', field: 'rule.matches[0].side', call: (_h, x) => encode(match({ match: 'recent', command: 'set', side: x })) },
  { name: 'target', op: 'iptables.appendRule', field: 'rule.target.target', call: (_h, x) => encode({ target: { target: x } }) },
  { name: 'REJECT rejectWith', op: 'iptables.appendRule', field: 'rule.target.rejectWith', call: (_h, x) => encode({ target: { target: 'REJECT', rejectWith: x } }) },
  { name: 'MARK op', op: 'iptables.appendRule', field: 'rule.target.op', call: (_h, x) => encode({ target: { target: 'MARK', op: x, value: 1 } }, 'nat') },
]

t.test('a name looked up in a table never finds Object.prototype', async (t) => {
  for (const c of lookups) for (const x of PROTO_NAMES) await refusedWith(t, c, x)
})

t.test('transaction edits: chain names and policies that are Object.prototype names', async (t) => {
  for (const x of PROTO_NAMES) {
    const tx = ipt4.begin('filter')
    let e: unknown
    try {
      tx.setPolicy('INPUT', x as never)
    } catch (err) {
      e = err
    }
    t.match(e, { name: 'ValidationError', op: 'iptables.setPolicy', field: 'policy' }, `setPolicy ${x}`)
    t.equal(tx.state, 'open')
    // A chain may be called so: it is a name, not a look-up.
    t.equal(tx.createChain(x), 0, `createChain ${x}: a valid chain name`)
    void tx.abort()
  }
})

t.test('names the kernel owns may be Object.prototype names: they are names, not look-ups', async (t) => {
  const h = await handles()
  await h.ipset.add('constructor', { ip: '10.0.0.1' })
  t.match(h.sent.at(-1), { cmd: 'add', name: 'constructor' }, 'a set named constructor')
  const outcomes = await h.ipset.batch([{ op: 'add', set: 'constructor', entry: { ip: '10.0.0.2' } }, { op: 'add', set: '__proto__', entry: { ip: '10.0.0.3' } }])
  t.match(outcomes, [{ ok: true }, { ok: false, error: { code: 'ENOENT', index: 1 } }], 'a set named __proto__ that does not exist: ENOENT')
  await h.ipvs.addService({ ...svc, scheduler: 'constructor' } as never)
  t.match(h.sent.at(-1), { cmd: 'newService', service: { scheduler: 'constructor' } }, 'a scheduler name goes to the kernel, which knows its modules')
  await h.rtnl.addAddress('toString', '10.0.0.1')
  t.match(h.sent.at(-1), { cmd: 'newAddr', index: 7 }, 'a link named toString')
})

// ---- 2. unknown fields --------------------------------------------------------------------------

/** Where a record goes in: the call with the record, and the record's field name. */
interface RecordCase {
  name: string
  call: (h: Handles, extra: Record<string, unknown>) => unknown
  op: string
  field: string
  index?: number
}

const withExtra = <T extends object>(base: T, extra: Record<string, unknown>): T => ({ ...base, ...extra })
const ct = { family: 'inet', protocol: 'udp', original: { source: '10.0.0.1', destination: '10.0.0.2' } }

const records: RecordCase[] = [
  // IPVS
  { name: 'ipvs.addService service', op: 'ipvs.addService', field: 'service', call: (h, x) => h.ipvs.addService(withExtra({ ...svc, scheduler: 'rr' }, x) as never) },
  { name: 'ipvs.addService fwmark service', op: 'ipvs.addService', field: 'service', call: (h, x) => h.ipvs.addService(withExtra({ fwmark: 7 }, x) as never) },
  { name: 'ipvs.updateService service', op: 'ipvs.updateService', field: 'service', call: (h, x) => h.ipvs.updateService(withExtra(svc, x) as never) },
  { name: 'ipvs.deleteService service', op: 'ipvs.deleteService', field: 'service', call: (h, x) => h.ipvs.deleteService(withExtra(svc, x) as never) },
  { name: 'ipvs.getService service', op: 'ipvs.getService', field: 'service', call: (h, x) => h.ipvs.getService(withExtra(svc, x) as never) },
  { name: 'ipvs.listDestinations service', op: 'ipvs.listDestinations', field: 'service', call: (h, x) => h.ipvs.listDestinations(withExtra(svc, x) as never) },
  { name: 'ipvs.zero service', op: 'ipvs.zero', field: 'service', call: (h, x) => h.ipvs.zero(withExtra(svc, x) as never) },
  { name: 'ipvs.addDestination destination', op: 'ipvs.addDestination', field: 'destination', call: (h, x) => h.ipvs.addDestination(svc as never, withExtra(dst, x)) },
  { name: 'ipvs.addDestination service', op: 'ipvs.addDestination', field: 'service', call: (h, x) => h.ipvs.addDestination(withExtra(svc, x) as never, dst) },
  { name: 'ipvs.updateDestination destination', op: 'ipvs.updateDestination', field: 'destination', call: (h, x) => h.ipvs.updateDestination(svc as never, withExtra(dst, x)) },
  { name: 'ipvs.deleteDestination destination', op: 'ipvs.deleteDestination', field: 'destination', call: (h, x) => h.ipvs.deleteDestination(svc as never, withExtra(dst, x)) },
  { name: 'ipvs.setTimeouts timeouts', op: 'ipvs.setTimeouts', field: 'timeouts', call: (h, x) => h.ipvs.setTimeouts(withExtra({ tcp: 900 }, x)) },
  { name: 'ipvs.listServices options', op: 'ipvs.listServices', field: 'options', call: (h, x) => h.ipvs.listServices(withExtra({ destinations: true }, x)) },
  { name: 'ipvs.batch op', op: 'ipvs.addService', field: 'op', index: 1, call: (h, x) => h.ipvs.batch([{ op: 'flush' }, withExtra({ op: 'addService', service: svc }, x)] as never) },
  { name: 'ipvs.batch flush op', op: 'ipvs.flush', field: 'op', index: 1, call: (h, x) => h.ipvs.batch([{ op: 'flush' }, withExtra({ op: 'flush' }, x)] as never) },
  { name: 'ipvs.batch service', op: 'ipvs.addService', field: 'service', index: 1, call: (h, x) => h.ipvs.batch([{ op: 'flush' }, { op: 'addService', service: withExtra(svc, x) }] as never) },
  { name: 'ipvs.batch destination', op: 'ipvs.addDestination', field: 'destination', index: 1, call: (h, x) => h.ipvs.batch([{ op: 'flush' }, { op: 'addDestination', service: svc, destination: withExtra(dst, x) }] as never) },
  // ipset
  { name: 'ipset.create spec', op: 'ipset.create', field: 'spec', call: (h, x) => h.ipset.create(withExtra({ name: 'N', type: 'hash:ip' }, x) as never) },
  { name: 'ipset.create bitmap spec', op: 'ipset.create', field: 'spec', call: (h, x) => h.ipset.create(withExtra({ name: 'N', type: 'bitmap:port', range: [1, 2] }, x) as never) },
  { name: 'ipset.add entry', op: 'ipset.add', field: 'entry', call: (h, x) => h.ipset.add('S', withExtra(ippi, x)) },
  { name: 'ipset.add options', op: 'ipset.add', field: 'options', call: (h, x) => h.ipset.add('S', ippi, withExtra({ exist: true }, x)) },
  { name: 'ipset.del entry', op: 'ipset.del', field: 'entry', call: (h, x) => h.ipset.del('S', withExtra(ippi, x)) },
  { name: 'ipset.del options', op: 'ipset.del', field: 'options', call: (h, x) => h.ipset.del('S', ippi, withExtra({}, x)) },
  { name: 'ipset.test entry', op: 'ipset.test', field: 'entry', call: (h, x) => h.ipset.test('S', withExtra(ippi, x)) },
  { name: 'ipset.destroy options', op: 'ipset.destroy', field: 'options', call: (h, x) => h.ipset.destroy('S', withExtra({ exist: true }, x)) },
  { name: 'ipset.batch op', op: 'ipset.add', field: 'op', index: 1, call: (h, x) => h.ipset.batch([{ op: 'add', set: 'S', entry: ippi }, withExtra({ op: 'add', set: 'S', entry: ippi }, x)] as never) },
  { name: 'ipset.batch op (first of its set)', op: 'ipset.add', field: 'op', index: 0, call: (h, x) => h.ipset.batch([withExtra({ op: 'add', set: 'S', entry: ippi }, x)] as never) },
  { name: 'ipset.batch entry', op: 'ipset.add', field: 'entry', index: 1, call: (h, x) => h.ipset.batch([{ op: 'add', set: 'S', entry: ippi }, { op: 'add', set: 'S', entry: withExtra(ippi, x) }]) },
  { name: 'ipset.batch bitmap entry', op: 'ipset.del', field: 'entry', index: 1, call: (h, x) => h.ipset.batch([{ op: 'add', set: 'B', entry: { port: 1 } }, { op: 'del', set: 'B', entry: withExtra({ port: 1 }, x) }]) },
  { name: 'ipset.syncMembers entry', op: 'ipset.syncMembers', field: 'entry', index: 0, call: (h, x) => h.ipset.syncMembers('S', [withExtra(ippi, x)]) },
  { name: 'ipset.replaceMembers entry', op: 'ipset.replaceMembers', field: 'entry', index: 0, call: (h, x) => h.ipset.replaceMembers('S', [withExtra(ippi, x)]) },
  // rtnetlink
  { name: 'route.addDummy options', op: 'route.addDummy', field: 'options', call: (h, x) => h.rtnl.addDummy('d0', withExtra({ up: true }, x)) },
  { name: 'route.deleteLink options', op: 'route.deleteLink', field: 'options', call: (h, x) => h.rtnl.deleteLink('d0', withExtra({}, x)) },
  { name: 'route.setLink change', op: 'route.setLink', field: 'change', call: (h, x) => h.rtnl.setLink('d0', withExtra({ up: true }, x)) },
  { name: 'route.addAddress address', op: 'route.addAddress', field: 'address', call: (h, x) => h.rtnl.addAddress('d0', withExtra({ address: '10.0.0.1' }, x)) },
  { name: 'route.addAddress options', op: 'route.addAddress', field: 'options', call: (h, x) => h.rtnl.addAddress('d0', '10.0.0.1', withExtra({ exist: true }, x)) },
  { name: 'route.deleteAddress address', op: 'route.deleteAddress', field: 'address', call: (h, x) => h.rtnl.deleteAddress('d0', withExtra({ address: '10.0.0.1' }, x)) },
  { name: 'route.deleteAddress options', op: 'route.deleteAddress', field: 'options', call: (h, x) => h.rtnl.deleteAddress('d0', '10.0.0.1', withExtra({}, x)) },
  { name: 'route.listAddresses filter', op: 'route.listAddresses', field: 'filter', call: (h, x) => h.rtnl.listAddresses(withExtra({ family: 'inet' }, x)) },
  { name: 'route.batch op', op: 'route.addAddress', field: 'op', index: 1, call: (h, x) => h.rtnl.batch([{ op: 'addAddress', link: 'd0', address: '10.0.0.1' }, withExtra({ op: 'addAddress', link: 'd0', address: '10.0.0.2' }, x)] as never) },
  { name: 'route.batch address', op: 'route.deleteAddress', field: 'address', index: 1, call: (h, x) => h.rtnl.batch([{ op: 'addAddress', link: 'd0', address: '10.0.0.1' }, { op: 'deleteAddress', link: 'd0', address: withExtra({ address: '10.0.0.2' }, x) }]) },
  // conntrack
  { name: 'conntrack.list filter', op: 'conntrack.list', field: 'filter', call: (h, x) => h.ct.list(withExtra({ protocol: 'udp' }, x)) },
  { name: 'conntrack.delete filter', op: 'conntrack.delete', field: 'filter', call: (h, x) => h.ct.delete(withExtra({ protocol: 'udp', destination: '10.96.0.1' }, x) as never) },
  { name: 'conntrack.deleteEntries entry', op: 'conntrack.deleteEntries', field: 'entry', index: 1, call: (h, x) => h.ct.deleteEntries([ct, withExtra(ct, x)] as never) },
  { name: 'conntrack.deleteEntries entry.original', op: 'conntrack.deleteEntries', field: 'entry.original', index: 0, call: (h, x) => h.ct.deleteEntries([{ ...ct, original: withExtra(ct.original, x) }] as never) },
  // iptables
  { name: 'iptables.open options', op: 'iptables.open', field: 'options', call: (_h, x) => Iptables.open(withExtra({ family: 'inet' }, x) as never) },
  { name: 'rule', op: 'iptables.appendRule', field: 'rule', call: (_h, x) => encode(withExtra({ protocol: 'tcp' }, x)) },
  { name: 'rule match', op: 'iptables.appendRule', field: 'rule.matches[0]', call: (_h, x) => encode({ protocol: 'tcp', matches: [withExtra({ match: 'tcp', dport: 80 }, x)] }) },
  { name: 'rule tcpFlags', op: 'iptables.appendRule', field: 'rule.matches[0].tcpFlags', call: (_h, x) => encode({ protocol: 'tcp', matches: [{ match: 'tcp', tcpFlags: withExtra({ mask: ['SYN'], set: ['SYN'] }, x) }] }) },
  { name: 'rule target', op: 'iptables.appendRule', field: 'rule.target', call: (_h, x) => encode({ target: withExtra({ target: 'ACCEPT' }, x) }) },
  { name: 'rule jump', op: 'iptables.appendRule', field: 'rule.target', call: (_h, x) => encode({ target: withExtra({ jump: 'KUBE-X' }, x) }) },
]

t.test('a record with a field the API does not know is refused, naming it; nothing is sent', async (t) => {
  for (const c of records) {
    for (const extra of [{ foo: 1 }, { Protocol: 'tcp' }, ...PROTO_NAMES.map((k) => JSON.parse(`{"${k}": 1}`) as Record<string, unknown>)]) {
      const key = Object.keys(extra)[0]!
      await refusedWith(t, { ...c, field: `${c.field}.${key}` }, extra)
    }
  }
})

t.test('the same records without the extra field are accepted (the cases above test only the extra field)', async (t) => {
  for (const c of records) {
    const h = await handles()
    let e: unknown
    try {
      await c.call(h, {})
    } catch (err) {
      e = err
    }
    t.equal(e, undefined, `${c.name}: accepted${e ? ` (${String(e)})` : ''}`)
  }
})

t.test('a record read back is written again: its read-only fields are known', async (t) => {
  const h = await handles()
  const stats = { conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 }
  await h.ipvs.addService({ family: 'inet', ...svc, scheduler: 'rr', persistent: false, timeout: 0, netmask: 32, flags: [], stats, destinations: [] } as never)
  await h.ipvs.addDestination(svc as never, { family: 'inet', ...dst, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0, activeConns: 3, inactiveConns: 0, persistConns: 0, stats } as never)
  t.match(h.sent, [{ cmd: 'newService' }, { cmd: 'newDest' }])
  await refusedWith(t, { name: 'family against address', op: 'ipvs.addService', field: 'service.family', call: (hh, x) => hh.ipvs.addService({ ...svc, family: x } as never) }, 'inet6')
})
