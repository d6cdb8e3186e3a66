// The dataplane contract: scenarios on the IpvsDataplane the IPVS proxier uses,
// each with the read-back it must give. test/unit/dataplane-contract.test.ts
// runs them on the in-memory kernel (fake-dataplane.ts), and
// test/kernel/dataplane-contract.ktest.ts on the real kernel in the box
// (openDataplane), so the fake cannot drift from the kernel unseen.
//
// Everything here uses names of its own (VIPs 10.96.77.x, link tsp-contract0,
// sets and chains TSP-CONTRACT-*) and cleanUp() removes them through the same
// interface, so the box's other state is neither read nor touched.
import type { IpvsDataplane } from '../../dist/proxy/ipvs/dataplane.js'
import type { TableSpec } from '../../dist/proxy/chains.js'
import type { IpvsOp, Outcome, ServiceRecord } from '../../dist/ipvs.js'
import type { Rule } from '../../dist/iptables.js'

export interface Scenario {
  name: string
  /** Does the steps and returns what they showed, in order. */
  run(dp: IpvsDataplane): Promise<unknown>
  want: unknown
}

const PREFIX = '10.96.77.'
const LINK = 'tsp-contract0'
const SET = 'TSP-CONTRACT-SVC'
const SET2 = 'TSP-CONTRACT-NODE'
const CHAIN_A = 'TSP-CONTRACT-A'
const CHAIN_B = 'TSP-CONTRACT-B'

const web = { protocol: 'tcp' as const, address: `${PREFIX}1`, port: 80 }
const dns = { protocol: 'udp' as const, address: `${PREFIX}2`, port: 53 }
const dest = (address: string, weight = 1) => ({ address, port: 8080, weight, forward: 'masq' as const })

// ---- what is compared ------------------------------------------------------------------------

/** An error as the proxier looks at it. */
function failure(e: unknown): unknown {
  if (!(e instanceof Error)) return { thrown: String(e) }
  const x = e as Error & { errno?: number; code?: string; op?: string; index?: number; field?: string }
  return { name: x.name, ...(x.errno === undefined ? {} : { errno: x.errno }), code: x.code, op: x.op, ...(x.index === undefined ? {} : { index: x.index }), ...(x.field === undefined ? {} : { field: x.field }) }
}

const outcomes = (rs: readonly Outcome[]): unknown[] => rs.map((r) => (r.ok ? { ok: true, ...('unchanged' in r && r.unchanged ? { unchanged: true } : {}) } : { ok: false, error: failure(r.error) }))

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => ({ resolved: v }),
    (e: unknown) => failure(e),
  )
}

/** Our virtual servers, with their real servers, sorted; whole records (stats included). */
async function ours(dp: IpvsDataplane): Promise<ServiceRecord[]> {
  const all = await dp.ipvs.listServices({ destinations: true })
  return all
    .filter((s) => s.address?.startsWith(PREFIX))
    .map((s) => ({ ...s, destinations: [...(s.destinations ?? [])].sort((a, b) => a.address.localeCompare(b.address)) }))
    .sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`))
}

const ZERO = { conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 }

function serviceRec(s: { protocol: string; address: string; port: number }, scheduler: string, dests: { address: string; weight: number }[], extra: Partial<ServiceRecord> = {}): unknown {
  return {
    family: 'inet',
    protocol: s.protocol,
    address: s.address,
    port: s.port,
    scheduler,
    persistent: false,
    timeout: 0,
    netmask: 32,
    flags: [],
    stats: ZERO,
    ...extra,
    destinations: dests.map((d) => ({
      family: 'inet', address: d.address, port: 8080, forward: 'masq', weight: d.weight,
      upperThreshold: 0, lowerThreshold: 0, activeConns: 0, inactiveConns: 0, persistConns: 0, stats: ZERO,
    })),
  }
}

const ok = { ok: true }
const ipvsErr = (op: string, index: number, errno: number, code: string) => ({ ok: false, error: { name: 'NetlinkError', errno, code, op: `ipvs.${op}`, index } })

// ---- scenarios -------------------------------------------------------------------------------

const addWeb: IpvsOp[] = [
  { op: 'addService', service: { ...web, scheduler: 'rr' } },
  { op: 'addDestination', service: web, destination: dest(`${PREFIX}101`) },
  { op: 'addDestination', service: web, destination: dest(`${PREFIX}102`) },
]

export const scenarios: Scenario[] = [
  {
    name: 'IPVS: a service with two endpoints reads back as added',
    run: async (dp) => [outcomes(await dp.ipvs.batch(addWeb)), await ours(dp)],
    want: [[ok, ok, ok], [serviceRec(web, 'rr', [{ address: `${PREFIX}101`, weight: 1 }, { address: `${PREFIX}102`, weight: 1 }])]],
  },
  {
    name: 'IPVS: a changed weight, then a removed endpoint, then the removed service',
    run: async (dp) => {
      await dp.ipvs.batch(addWeb)
      const steps: unknown[] = []
      steps.push(outcomes(await dp.ipvs.batch([{ op: 'updateDestination', service: web, destination: dest(`${PREFIX}101`, 0) }])), await ours(dp))
      steps.push(outcomes(await dp.ipvs.batch([{ op: 'deleteDestination', service: web, destination: dest(`${PREFIX}102`) }])), await ours(dp))
      steps.push(await dp.ipvs.listDestinations(web))
      steps.push(outcomes(await dp.ipvs.batch([{ op: 'deleteService', service: web }])), await ours(dp))
      return steps
    },
    want: [
      [ok], [serviceRec(web, 'rr', [{ address: `${PREFIX}101`, weight: 0 }, { address: `${PREFIX}102`, weight: 1 }])],
      [ok], [serviceRec(web, 'rr', [{ address: `${PREFIX}101`, weight: 0 }])],
      (serviceRec(web, 'rr', [{ address: `${PREFIX}101`, weight: 0 }]) as { destinations: unknown }).destinations,
      [ok], [],
    ],
  },
  {
    name: 'IPVS: EEXIST on a second add; the rest of the batch still applies',
    run: async (dp) => [
      outcomes(await dp.ipvs.batch([...addWeb, addWeb[0]!, addWeb[1]!, { op: 'addService', service: { ...dns, scheduler: 'wlc' } }])),
      (await ours(dp)).map((s) => `${s.protocol}/${s.address}:${s.port} ${s.scheduler} ${s.destinations!.length}`),
    ],
    want: [
      [ok, ok, ok, ipvsErr('addService', 3, 17, 'EEXIST'), ipvsErr('addDestination', 4, 17, 'EEXIST'), ok],
      [`tcp/${PREFIX}1:80 rr 2`, `udp/${PREFIX}2:53 wlc 0`],
    ],
  },
  {
    name: 'IPVS: ESRCH for a missing service, ENOENT for a missing endpoint; no destinations listed for a missing service',
    run: async (dp) => [
      outcomes(await dp.ipvs.batch([
        { op: 'updateService', service: { ...dns, scheduler: 'rr' } },
        { op: 'deleteService', service: dns },
        { op: 'addDestination', service: dns, destination: dest(`${PREFIX}101`) },
        { op: 'addService', service: { ...dns, scheduler: 'rr' } },
        { op: 'updateDestination', service: dns, destination: dest(`${PREFIX}101`) },
        { op: 'deleteDestination', service: dns, destination: dest(`${PREFIX}101`) },
      ])),
      await rejection(dp.ipvs.listDestinations(web)),
    ],
    want: [
      [
        ipvsErr('updateService', 0, 3, 'ESRCH'), ipvsErr('deleteService', 1, 3, 'ESRCH'), ipvsErr('addDestination', 2, 3, 'ESRCH'),
        ok, ipvsErr('updateDestination', 4, 2, 'ENOENT'), ipvsErr('deleteDestination', 5, 2, 'ENOENT'),
      ],
      { resolved: [] },
    ],
  },
  {
    name: 'IPVS: a persistent service and its update back to none',
    run: async (dp) => {
      const steps: unknown[] = []
      steps.push(outcomes(await dp.ipvs.batch([{ op: 'addService', service: { ...web, scheduler: 'rr', persistent: true, timeout: 10800 } }])), await ours(dp))
      steps.push(outcomes(await dp.ipvs.batch([{ op: 'updateService', service: { ...web, scheduler: 'sh' } }])), await ours(dp))
      return steps
    },
    want: [
      [ok], [serviceRec(web, 'rr', [], { persistent: true, timeout: 10800, flags: ['persistent'] })],
      [ok], [serviceRec(web, 'sh', [])],
    ],
  },
  {
    name: 'ipset: create (exist), members added once, deleted once, synced',
    run: async (dp) => {
      const a = { ip: `${PREFIX}1`, protocol: 'tcp' as const, port: 80 }
      const b = { ip: `${PREFIX}2`, protocol: 'udp' as const, port: 53 }
      const c = { ip: `${PREFIX}3`, protocol: 'tcp' as const, port: 443 }
      const steps: unknown[] = []
      await dp.ipset.create({ name: SET, type: 'hash:ip,port' })
      steps.push(await rejection(dp.ipset.create({ name: SET, type: 'hash:ip,port', exist: true })))
      steps.push(await rejection(dp.ipset.create({ name: SET, type: 'hash:ip', exist: true })))
      steps.push(await rejection(dp.ipset.create({ name: SET, type: 'hash:ip,port' })))
      steps.push(outcomes(await dp.ipset.batch([
        { op: 'add', set: SET, entry: a },
        { op: 'add', set: SET, entry: b },
        { op: 'add', set: SET, entry: a },
        { op: 'add', set: SET, entry: a, exist: true },
        { op: 'del', set: SET, entry: c },
        { op: 'del', set: SET, entry: c, exist: true },
        { op: 'add', set: SET2, entry: a },
      ])))
      const sync = async (entries: (typeof a)[]) => {
        const r = await dp.ipset.syncMembers(SET, entries)
        return { ...r, errors: r.errors.map(failure) }
      }
      steps.push(await sync([a, c]), await sync([c, a]), await sync([]))
      steps.push((await dp.ipset.listNames()).filter((n) => n.startsWith('TSP-CONTRACT-')))
      await dp.ipset.destroy(SET)
      steps.push((await dp.ipset.listNames()).filter((n) => n.startsWith('TSP-CONTRACT-')))
      steps.push(await rejection(dp.ipset.destroy(SET)), await rejection(dp.ipset.destroy(SET, { exist: true })))
      steps.push(await rejection(dp.ipset.syncMembers(SET, [a])))
      return steps
    },
    want: [
      { resolved: undefined },
      { name: 'NetlinkError', errno: 17, code: 'EEXIST', op: 'ipset.create' },
      { name: 'NetlinkError', errno: 17, code: 'EEXIST', op: 'ipset.create' },
      [
        ok, ok,
        { ok: false, error: { name: 'NetlinkError', errno: 4103, code: 'IPSET_ERR_EXIST', op: 'ipset.add', index: 2 } },
        ok,
        { ok: false, error: { name: 'NetlinkError', errno: 4103, code: 'IPSET_ERR_EXIST', op: 'ipset.del', index: 4 } },
        ok,
        { ok: false, error: { name: 'NetlinkError', errno: 2, code: 'ENOENT', op: 'ipset.add', index: 6 } },
      ],
      { added: 1, deleted: 1, unchanged: 1, errors: [] },
      { added: 0, deleted: 0, unchanged: 2, errors: [] },
      { added: 0, deleted: 2, unchanged: 0, errors: [] },
      [SET],
      [],
      { name: 'NetlinkError', errno: 2, code: 'ENOENT', op: 'ipset.destroy' },
      { resolved: undefined },
      { name: 'NetlinkError', errno: 2, code: 'ENOENT', op: 'ipset.syncMembers' },
    ],
  },
  {
    name: 'ipset: an entry that does not fit the set type is refused whole, naming the field',
    run: async (dp) => {
      await dp.ipset.create({ name: SET, type: 'hash:ip,port' })
      const steps: unknown[] = []
      steps.push(await rejection(dp.ipset.batch([
        { op: 'add', set: SET, entry: { ip: `${PREFIX}1`, protocol: 'tcp', port: 80 } },
        { op: 'add', set: SET, entry: { ip: `${PREFIX}2` } },
      ])))
      const r = await dp.ipset.syncMembers(SET, [])
      steps.push(r.deleted, 'nothing was added before the refusal')
      return steps
    },
    want: [{ name: 'ValidationError', code: 'ERR_TSPROXY_INVALID', op: 'ipset.add', index: 1, field: 'entry.port' }, 0, 'nothing was added before the refusal'],
  },
  {
    name: 'ipset: maxelem is fixed at create; a full set refuses adds; replaceMembers with resize grows it',
    run: async (dp) => {
      const e = (i: number) => ({ ip: `${PREFIX}${i}`, protocol: 'tcp' as const, port: 80 })
      const head = async () => {
        const h = await dp.ipset.header(SET)
        return { type: h.type, family: h.family, maxelem: h.maxelem, entries: h.entries }
      }
      const steps: unknown[] = []
      steps.push(await rejection(dp.ipset.header(SET)))
      await dp.ipset.create({ name: SET, type: 'hash:ip,port', maxelem: 2 })
      steps.push(await head())
      steps.push(await rejection(dp.ipset.create({ name: SET, type: 'hash:ip,port', exist: true })), 'another maxelem is another set')
      steps.push(await rejection(dp.ipset.create({ name: SET, type: 'hash:ip,port', maxelem: 2, exist: true })))
      steps.push(outcomes(await dp.ipset.batch([1, 2, 3].map((i) => ({ op: 'add' as const, set: SET, entry: e(i), exist: true })))))
      steps.push(await rejection(dp.ipset.replaceMembers(SET, [1, 2, 3].map(e))), await head())
      steps.push(await rejection(dp.ipset.replaceMembers(SET, [1, 2, 3, 4, 5].map(e), { maxelem: 8 })), await head())
      const r = await dp.ipset.syncMembers(SET, [2, 3, 4, 5, 6].map(e))
      steps.push({ ...r, errors: r.errors.map(failure) })
      return steps
    },
    want: [
      { name: 'NetlinkError', errno: 2, code: 'ENOENT', op: 'ipset.header' },
      { type: 'hash:ip,port', family: 'inet', maxelem: 2, entries: 0 },
      { name: 'NetlinkError', errno: 17, code: 'EEXIST', op: 'ipset.create' }, 'another maxelem is another set',
      { resolved: undefined },
      [ok, ok, { ok: false, error: { name: 'NetlinkError', errno: 4352, code: 'IPSET_ERR_HASH_FULL', op: 'ipset.add', index: 2 } }],
      { name: 'NetlinkError', errno: 4352, code: 'IPSET_ERR_HASH_FULL', op: 'ipset.add', index: 2 },
      { type: 'hash:ip,port', family: 'inet', maxelem: 2, entries: 2 },
      { resolved: undefined },
      { type: 'hash:ip,port', family: 'inet', maxelem: 8, entries: 5 },
      { added: 1, deleted: 1, unchanged: 4, errors: [] },
    ],
  },
  {
    name: 'rtnetlink: a dummy link, an address on it, both removed; exist semantics',
    run: async (dp) => {
      const v = { address: `${PREFIX}1`, prefix: 32, noPrefixRoute: true }
      const addrs = async () => (await dp.rtnl.listAddresses({ link: LINK, family: 'inet' })).map((a) => ({ address: a.address, prefix: a.prefix, family: a.family, link: a.link, scope: a.scope, flags: [...a.flags].sort() }))
      const link = async () => {
        const l = await dp.rtnl.getLink(LINK)
        return l && { name: l.name, kind: l.kind }
      }
      const steps: unknown[] = []
      steps.push(await dp.rtnl.addDummy(LINK), await dp.rtnl.addDummy(LINK, { exist: true }), await rejection(dp.rtnl.addDummy(LINK)), await link())
      steps.push(outcomes(await dp.rtnl.batch([
        { op: 'addAddress', link: LINK, address: v },
        { op: 'addAddress', link: LINK, address: v },
        { op: 'addAddress', link: LINK, address: v, exist: true },
        { op: 'addAddress', link: 'tsp-contract9', address: v },
      ])))
      steps.push(await addrs())
      steps.push(outcomes(await dp.rtnl.batch([
        { op: 'deleteAddress', link: LINK, address: v },
        { op: 'deleteAddress', link: LINK, address: v },
        { op: 'deleteAddress', link: LINK, address: v, exist: true },
      ])))
      steps.push(await addrs())
      steps.push(await dp.rtnl.deleteLink(LINK), await dp.rtnl.deleteLink(LINK, { exist: true }), await rejection(dp.rtnl.deleteLink(LINK)), await link())
      steps.push(await rejection(dp.rtnl.listAddresses({ link: LINK })))
      return steps
    },
    want: [
      true, false, { name: 'NetlinkError', errno: 17, code: 'EEXIST', op: 'route.addDummy' }, { name: LINK, kind: 'dummy' },
      [
        ok,
        { ok: false, error: { name: 'NetlinkError', errno: 17, code: 'EEXIST', op: 'route.addAddress', index: 1 } },
        { ok: true, unchanged: true },
        { ok: false, error: { name: 'NetlinkError', errno: 19, code: 'ENODEV', op: 'route.addAddress', index: 3 } },
      ],
      [{ address: `${PREFIX}1`, prefix: 32, family: 'inet', link: LINK, scope: 'global', flags: ['noprefixroute', 'permanent'] }],
      [
        ok,
        { ok: false, error: { name: 'NetlinkError', errno: 99, code: 'EADDRNOTAVAIL', op: 'route.deleteAddress', index: 1 } },
        { ok: true, unchanged: true },
      ],
      [],
      true, false, { name: 'NetlinkError', errno: 19, code: 'ENODEV', op: 'route.deleteLink' }, undefined,
      { name: 'NetlinkError', errno: 19, code: 'ENODEV', op: 'route.listAddresses' },
    ],
  },
  {
    name: 'tables: chains and jumps synced, kept, repaired, removed',
    run: async (dp) => {
      const rule = (to: string, comment: string): Rule => ({ matches: [{ match: 'comment', comment }], target: { jump: to } })
      const spec = (aRules: Rule[]): TableSpec => ({
        chains: new Map([[CHAIN_A, aRules], [CHAIN_B, []]]),
        jumps: [{ chain: 'PREROUTING', rule: rule(CHAIN_A, 'tsp contract pre') }, { chain: 'OUTPUT', rule: rule(CHAIN_A, 'tsp contract out') }],
      })
      const first = spec([rule(CHAIN_B, 'to b')])
      const steps: unknown[] = []
      steps.push(await dp.tables.sync('nat', first))
      steps.push(await dp.tables.sync('nat', first))
      steps.push(await dp.tables.sync('nat', spec([rule(CHAIN_B, 'to b, changed'), { target: { target: 'RETURN' } }])))
      steps.push(await dp.tables.remove('nat', first))
      steps.push(await dp.tables.remove('nat', first))
      return steps
    },
    want: [
      { repaired: [CHAIN_A, CHAIN_B, 'OUTPUT jump', 'PREROUTING jump'], committed: true },
      { repaired: [], committed: false },
      { repaired: [CHAIN_A], committed: true },
      { repaired: ['PREROUTING jump', 'OUTPUT jump', CHAIN_A, CHAIN_B], committed: true },
      { repaired: [], committed: false },
    ],
  },
  {
    name: 'conntrack: deleting what is not there deletes nothing',
    run: async (dp) => [await dp.conntrack.delete({ family: 'inet', protocol: 'udp', destination: `${PREFIX}2`, port: 53 })],
    want: [0],
  },
]

/** Removes everything the scenarios make (through the dataplane itself, exist semantics). */
export async function cleanUp(dp: IpvsDataplane): Promise<void> {
  const svcs = (await dp.ipvs.listServices()).filter((s) => s.address?.startsWith(PREFIX))
  if (svcs.length) await dp.ipvs.batch(svcs.map((s) => ({ op: 'deleteService' as const, service: { protocol: s.protocol!, address: s.address!, port: s.port! } })))
  for (const n of await dp.ipset.listNames()) if (n.startsWith('TSP-CONTRACT-')) await dp.ipset.destroy(n, { exist: true })
  await dp.rtnl.deleteLink(LINK, { exist: true })
  await dp.tables.remove('nat', {
    chains: new Map([[CHAIN_A, []], [CHAIN_B, []]]),
    jumps: [
      { chain: 'PREROUTING', rule: { matches: [{ match: 'comment', comment: 'tsp contract pre' }], target: { jump: CHAIN_A } } },
      { chain: 'OUTPUT', rule: { matches: [{ match: 'comment', comment: 'tsp contract out' }], target: { jump: CHAIN_A } } },
    ],
  })
}
