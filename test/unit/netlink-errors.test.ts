// What the kernel says besides the errno reaches the NetlinkError: the extended
// ACK offset (NLMSGERR_ATTR_OFFS) next to its text, and a dump that stayed
// inconsistent (NLM_F_DUMP_INTR) after every retry (native/netlink/socket.cc
// gives it as EINTR + interrupted). Over a fake native socket (test/support/fake-netlink.ts).
import t from 'tap'
import { Conntrack, IpSet, NetlinkError, Rtnl } from '../../dist/index.js'
import type { NativeOp, NativeResult } from '../../dist/native.js'
import { openOver } from '../support/fake-netlink.js'

const EINVAL = 22
const EINTR = 4

function handle(answer: (codec: string, op: NativeOp) => NativeResult | undefined) {
  return {
    async execute(codec: string, _family: number, ops: NativeOp[]): Promise<NativeResult[]> {
      return ops.map((op) => answer(codec, op) ?? { error: 0, records: [] })
    },
    async close() {},
  }
}

async function thrown(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (e: unknown) => e)
}

t.test('route: the extack offset and text', async (t) => {
  const rtnl = await openOver(handle((_c, op) => (op.cmd === 'newAddr' ? { error: EINVAL, extack: 'Invalid prefix', extackOffset: 24, records: [] } : undefined)), () => Rtnl.open())
  const e = await thrown(rtnl.addAddress(7, '10.96.0.1'))
  t.ok(e instanceof NetlinkError)
  t.match(e, { errno: EINVAL, op: 'route.addAddress', extack: 'Invalid prefix', extackOffset: 24 })
  t.notOk((e as NetlinkError).interrupted)
  const [o] = await rtnl.batch([{ op: 'addAddress', link: 7, address: '10.96.0.2' }])
  t.match(o, { ok: false, error: { errno: EINVAL, extackOffset: 24, index: 0 } }, 'and in a batch outcome')
})

t.test('ipset: the extack offset', async (t) => {
  const ipset = await openOver(handle((_c, op) => {
    if (op.cmd === 'protocol') return { error: 0, records: [{ kind: 'protocol', protocol: 7, protocolMin: 6 }] }
    if (op.cmd === 'type') return { error: 0, records: [{ kind: 'type', typename: op.typename, family: op.family, revision: 6, revisionMin: 0 }] }
    if (op.cmd === 'create') return { error: EINVAL, extack: 'bad attribute', extackOffset: 40, records: [] }
    return undefined
  }), () => IpSet.open())
  t.match(await thrown(ipset.create({ name: 'S', type: 'hash:ip' })), { errno: EINVAL, op: 'ipset.create', extackOffset: 40 })
})

t.test('conntrack: a dump that stayed interrupted', async (t) => {
  let opened = false
  const ct = await openOver(handle((_c, op) => {
    if (op.cmd === 'count') return { error: 0, records: [{ kind: 'stats', entries: 1 }] }
    if (op.cmd === 'list' && opened) return { error: EINTR, interrupted: true, records: [] }
    return undefined
  }), () => Conntrack.open())
  opened = true
  const e = await thrown(ct.list())
  t.ok(e instanceof NetlinkError)
  t.match(e, { errno: EINTR, code: 'EINTR', op: 'conntrack.list', interrupted: true, message: /NLM_F_DUMP_INTR/ })
  t.equal((e as NetlinkError).extackOffset, undefined, 'no offset when the kernel gave none')
})
