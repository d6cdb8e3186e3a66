// The typed nftables API without a kernel: every expression through the real
// codec and back to the same record, the key and user-data layouts, refusals
// naming the field and the edit's index, and what commit sends (one batch,
// whole, framed by begin/end and a GETGEN) and how it reads the answers (the
// failing edit by index, a stale generation), over a fake socket.
import t from 'tap'
import { Nftables, NetlinkError, ValidationError, nftData as d, type NftExpr } from '../../dist/index.js'
import { native, type NativeOp, type NativeResult } from '../../dist/native.js'
import { fromWireExpr, toWireExpr } from '../../dist/nftables/expr.js'
import { openOver } from '../support/fake-netlink.js'

const at = { op: 'test' }

/** An expression through toWireExpr, the native encoder, the native decoder and fromWireExpr. */
function roundTrip(e: NftExpr): unknown {
  const wire = toWireExpr(at, 'e', e, (name) => (name === 'new-set' ? 7 : undefined))
  const bytes = native.encode('nftables', 2, [{ cmd: 'newRule', table: 't', chain: 'c', expressions: [wire] } as unknown as NativeOp])
  const [rec] = native.decode('nftables', bytes) as unknown as { expressions: unknown[] }[]
  return JSON.parse(JSON.stringify(fromWireExpr(rec!.expressions[0] as never), (_k, v) => (v instanceof Uint8Array || v?.type === 'Buffer' ? [...(v.data ?? v)] : v)))
}
const plain = (e: unknown): unknown => JSON.parse(JSON.stringify(e, (_k, v) => (v instanceof Uint8Array ? [...v] : v)))

t.test('every expression reads back as written', async (t) => {
  const exprs: NftExpr[] = [
    { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 1 },
    { type: 'payload-set', base: 'transport', offset: 2, len: 2, sreg: 1, csumType: 1, csumOffset: 16, csumFlags: 0 },
    { type: 'meta', key: 'l4proto', dreg: 9 },
    { type: 'meta-set', key: 'mark', sreg: 1 },
    { type: 'cmp', op: 'neq', sreg: 1, data: d.ipv4('10.0.0.1') },
    { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(0xffffbfff), xor: d.u32(0x4000) },
    { type: 'shift', op: 'lshift', sreg: 1, dreg: 2, len: 4, data: d.u32(8) },
    { type: 'lookup', set: 'service-ips', sreg: 1, dreg: 0 },
    { type: 'lookup', set: 'cidrs', sreg: 1, invert: true },
    { type: 'immediate', dreg: 2, data: d.port(80) },
    { type: 'verdict', verdict: 'goto', chain: 'svc' },
    { type: 'verdict', verdict: 'accept' },
    { type: 'ct', key: 'state', dreg: 1 },
    { type: 'ct', key: 'proto-dst', dreg: 1, direction: 'original' },
    { type: 'ct-set', key: 'mark', sreg: 1 },
    { type: 'fib', result: 'addrtype', flags: ['daddr', 'iif'], dreg: 1 },
    { type: 'numgen', mode: 'random', modulus: 3, dreg: 1 },
    { type: 'numgen', mode: 'incremental', modulus: 3, offset: 1, dreg: 1 },
    { type: 'nat', nat: 'dnat', family: 'ip', addrMin: 1, protoMin: 2, flags: ['map-ips', 'proto-specified'] },
    { type: 'nat', nat: 'snat', family: 'ip6', addrMin: 1, addrMax: 2, flags: ['map-ips'] },
    { type: 'masq', flags: ['random-fully'] },
    { type: 'masq' },
    { type: 'reject', reject: 'icmp-unreach', code: 3 },
    { type: 'reject', reject: 'tcp-rst' },
    { type: 'counter', packets: 0, bytes: 0 },
    { type: 'range', op: 'eq', sreg: 1, from: d.port(30000), to: d.port(32767) },
    { type: 'limit', rate: 10, unit: 1, burst: 5 },
    { type: 'limit', rate: 1000, unit: 60, bytes: true, invert: true },
    { type: 'dynset', set: 'aff', op: 'update', sregKey: 1, timeout: 10800000 },
  ]
  for (const e of exprs) t.strictSame(roundTrip(e), plain(e), `${e.type} ${JSON.stringify(plain(e))}`)
  // A nat with an address is flagged map-ips by the kernel: written without it, it is sent with it.
  t.strictSame(roundTrip({ type: 'nat', nat: 'dnat', family: 'ip', addrMin: 1 }), { type: 'nat', nat: 'dnat', family: 'ip', addrMin: 1, flags: ['map-ips'] })
  // A set added earlier in the transaction is referred to by its batch id too.
  t.match(toWireExpr(at, 'e', { type: 'lookup', set: 'new-set', sreg: 1 }, () => 7), { set: 'new-set', setId: 7 })
  t.strictSame(fromWireExpr({ name: 'quota' }), { type: 'unknown', name: 'quota' }, 'an expression not modelled reads back as its name')
})

t.test('keys: concatenations in 4-byte fields, key types as nft numbers them', async (t) => {
  t.strictSame([...d.concat(d.ipv4('172.30.0.41'), d.proto('tcp'), d.port(80))], [172, 30, 0, 41, 6, 0, 0, 0, 0, 80, 0, 0])
  t.strictSame(d.keyLayout(['ipv4_addr', 'inet_proto', 'inet_service']), { type: (7 << 12) | (12 << 6) | 13, len: 12, fields: [4, 1, 2] })
  t.strictSame(d.keyLayout('ipv6_addr'), { type: 8, len: 16, fields: [16] })
  t.strictSame(d.keyTypes(0x730d), ['ipv4_addr', 'inet_proto', 'inet_service'])
  t.equal(d.keyTypes(63), undefined, 'a type not named here')
  t.strictSame([...d.u32(0x4000)], [0x00, 0x40, 0, 0], 'host order (little-endian here), as meta mark is compared')
  t.strictSame([...d.be32(0x4000)], [0, 0, 0x40, 0x00])
  t.strictSame([...d.ifname('eth0')].slice(0, 5), [0x65, 0x74, 0x68, 0x30, 0])
  t.throws(() => d.port(65536), ValidationError)
  t.throws(() => d.ipv4('::1'), ValidationError)
})

t.test('cidr: a network as an interval set holds it', async (t) => {
  const rows = (n: string): unknown => d.cidr(n).map((e) => [[...e.key].join(e.key.length === 4 ? '.' : ':'), e.intervalEnd ?? false])
  t.strictSame(rows('10.0.0.0/8'), [['10.0.0.0', false], ['11.0.0.0', true]])
  t.strictSame(rows('10.1.2.3/16'), [['10.1.0.0', false], ['10.2.0.0', true]], 'host bits cleared, as the kernel compares')
  t.strictSame(rows('192.168.1.7'), [['192.168.1.7', false], ['192.168.1.8', true]], 'an address is one host')
  t.strictSame(rows('10.255.255.255/32'), [['10.255.255.255', false], ['11.0.0.0', true]], 'the end carries')
  t.strictSame(rows('0.0.0.0/0'), [['0.0.0.0', false]], 'no end past the top of the address space')
  t.strictSame(d.cidr('fd00::/8').map((e) => e.key[0]), [0xfd, 0xfe])
  t.throws(() => d.cidr('10.0.0.0/33'), ValidationError)
  t.throws(() => d.cidr('10.0.0.0/x'), ValidationError)
})

t.test("user data: nft's TLVs", async (t) => {
  const u = d.udata([{ type: 0, value: 'hi' }, { type: 7, value: Uint8Array.of(1, 2) }])
  t.strictSame([...u], [0, 3, 0x68, 0x69, 0, 7, 2, 1, 2])
  const parsed = d.parseUdata(u)
  t.equal(d.udataString(parsed.get(0)), 'hi')
  t.strictSame([...parsed.get(7)!], [1, 2])
  t.equal(d.parseUdata(Uint8Array.of(0, 9, 1)).size, 0, 'a truncated TLV is left out')
})

// ---- transactions over a fake socket --------------------------------------------------------

interface Sent {
  ops: NativeOp[]
}

/** A socket answering each batch with `answer(ops)` (default: every op ok, generation 42). */
async function fakeNft(answer?: (ops: NativeOp[]) => NativeResult[]): Promise<{ nft: Nftables; sent: Sent[] }> {
  const sent: Sent[] = []
  const ok = (ops: NativeOp[]): NativeResult[] => ops.map((o) => (o.cmd === 'getGen' ? { error: 0, records: [{ kind: 'gen', id: 42 }] } : { error: 0, records: [] }))
  const nft = await openOver(
    {
      execute: async (_codec, _family, ops) => {
        sent.push({ ops })
        return (answer ?? ok)(ops).map((r, i) => (ops[i]!.cmd === 'getGen' && r.error === 0 && r.records.length === 0 ? ok([ops[i]!])[0]! : r))
      },
      close: async () => {},
    },
    () => Nftables.open(),
  )
  return { nft, sent }
}

t.test('commit sends one batch: begin (with the generation), the edits, end, then GETGEN', async (t) => {
  const { nft, sent } = await fakeNft()
  const res = await nft
    .transaction()
    .addTable({ family: 'ip', name: 'kp', comment: 'c' })
    .addChain({ family: 'ip', table: 'kp', name: 'pre', base: { type: 'nat', hook: 'prerouting', priority: -100 } })
    .commit({ generation: 41 })
  t.strictSame(res, { generation: 42, messages: 2 })
  t.equal(sent.length, 1, 'one call into the socket')
  t.strictSame(sent[0]!.ops.map((o) => o.cmd), ['batchBegin', 'newTable', 'newChain', 'batchEnd', 'getGen'])
  t.match(sent[0]!.ops[0], { genid: 41 })
  t.match(sent[0]!.ops[1], { family: 2, name: 'kp', userdata: Uint8Array.of(0, 2, 0x63, 0) })
  t.match(sent[0]!.ops[2], { family: 2, table: 'kp', name: 'pre', type: 'nat', hook: 0, priority: -100 })
  await nft.close()
})

t.test('flushes and deletes: their wire requests', async (t) => {
  const { nft, sent } = await fakeNft()
  await nft
    .transaction()
    .flushTable({ family: 'ip6', name: 'kp' })
    .flushChain({ family: 'ip', table: 'kp', name: 'c' })
    .flushSet({ family: 'inet', table: 'kp', name: 's' })
    .deleteRule({ family: 'ip', table: 'kp', chain: 'c', handle: 12 })
    .deleteElements({ family: 'ip', table: 'kp', set: 's', elements: [{ key: d.ipv4('10.0.0.0') }, { key: d.ipv4('11.0.0.0'), intervalEnd: true }] })
    .deleteSet({ family: 'ip', table: 'kp', name: 's' })
    .deleteChain({ family: 'ip', table: 'kp', name: 'c' })
    .deleteTable({ family: 'ip', name: 'kp' })
    .commit()
  t.strictSame(plain(sent[0]!.ops.slice(1, -2)), plain([
    { cmd: 'delRule', family: 10, table: 'kp' },
    { cmd: 'delRule', family: 2, table: 'kp', chain: 'c' },
    { cmd: 'delElements', family: 1, table: 'kp', set: 's' },
    { cmd: 'delRule', family: 2, table: 'kp', chain: 'c', handle: 12 },
    { cmd: 'delElements', family: 2, table: 'kp', set: 's', elements: [{ key: d.ipv4('10.0.0.0') }, { key: d.ipv4('11.0.0.0'), flags: 1 }] },
    { cmd: 'delSet', family: 2, table: 'kp', name: 's' },
    { cmd: 'delChain', family: 2, table: 'kp', name: 'c' },
    { cmd: 'delTable', family: 2, name: 'kp' },
  ]))
  await nft.close()
})

t.test('a large transaction is one socket call, its elements split in messages under 64 KiB', async (t) => {
  const { nft, sent } = await fakeNft()
  const tx = nft.transaction().addSet({ family: 'ip', table: 'kp', name: 'm', key: ['ipv4_addr', 'inet_proto', 'inet_service'], data: 'verdict' })
  const elements = Array.from({ length: 5000 }, (_, i) => ({ key: d.concat(d.ipv4(`10.0.${i >> 8}.${i & 255}`), d.proto('tcp'), d.port(80)), verdict: { verdict: 'goto' as const, chain: 'c' } }))
  tx.addElements({ family: 'ip', table: 'kp', set: 'm', elements })
  const res = await tx.commit()
  t.equal(sent.length, 1, 'one call: a batch is never sliced')
  const msgs = sent[0]!.ops.filter((o) => o.cmd === 'newElements') as unknown as { setId: number; elements: unknown[] }[]
  t.ok(msgs.length > 1, `${msgs.length} element messages`)
  t.equal(msgs.reduce((n, m) => n + m.elements.length, 0), 5000, 'every element once')
  t.ok(msgs.every((m) => m.setId === 1), 'each names the set added in the same batch by its id')
  for (const m of msgs) t.ok(native.encode('nftables', 2, [m as unknown as NativeOp]).length < 65536, 'each message encodes (its nest under 64 KiB)')
  t.equal(res.messages, 1 + msgs.length)
  await nft.close()
})

t.test("a kernel error names the edit (not the message) by index; the batch's own error has none", async (t) => {
  // The third message fails: it is the second message of edit 1 (addElements, split in two).
  const { nft } = await fakeNft((ops) => ops.map((o, i) => (i === 3 ? { error: 2, extack: 'no such set', records: [] } : o.cmd === 'getGen' ? { error: 0, records: [{ kind: 'gen', id: 7 }] } : { error: 0, records: [] })))
  const tx = nft.transaction().addTable({ family: 'ip', name: 'kp' })
  const elements = Array.from({ length: 3000 }, (_, i) => ({ key: d.ipv4(`10.0.${i >> 8}.${i & 255}`), comment: 'x'.repeat(20) }))
  tx.addElements({ family: 'ip', table: 'kp', set: 's', elements })
  tx.addTable({ family: 'ip6', name: 'kp' })
  const err = await tx.commit().catch((e: unknown) => e)
  t.ok(err instanceof NetlinkError)
  t.match(err, { errno: 2, code: 'ENOENT', op: 'nftables.addElements', index: 1, extack: 'no such set' })
  t.match((err as Error).message, 'nftables.addElements (batch index 1): ENOENT: no such set')

  const stale = await fakeNft((ops) => ops.map((o, i) => (i === 0 ? { error: 85, records: [] } : o.cmd === 'getGen' ? { error: 0, records: [{ kind: 'gen', id: 9 }] } : { error: 0, records: [] })))
  const e2 = await stale.nft.transaction().addTable({ family: 'ip', name: 'kp' }).commit({ generation: 8 }).catch((e: unknown) => e)
  t.match(e2, { errno: 85, code: 'ERESTART', op: 'nftables.commit', index: undefined })
  t.match((e2 as Error).message, /no longer at generation 8/)
  await nft.close()
  await stale.nft.close()
})

t.test('refusals name the field and the edit index; nothing is queued', async (t) => {
  const { nft } = await fakeNft()
  const tx = nft.transaction().addTable({ family: 'ip', name: 'kp' })
  const cases: [() => unknown, string, string][] = [
    [() => tx.addTable({ family: 'ipx' as never, name: 'kp' }), 'nftables.addTable', 'table.family'],
    [() => tx.addTable({ family: 'ip', name: '' }), 'nftables.addTable', 'table.name'],
    [() => tx.addTable({ family: 'ip', name: 'kp', extra: 1 } as never), 'nftables.addTable', 'table.extra'],
    [() => tx.addTable({ family: 'ip', name: 'kp', comment: 'x'.repeat(129) }), 'nftables.addTable', 'table.comment'],
    [() => tx.addChain({ family: 'ip', table: 'kp', name: 'c', base: { type: 'nat', hook: 'sideways' as never, priority: 0 } }), 'nftables.addChain', 'chain.base.hook'],
    [() => tx.addChain({ family: 'ip', table: 'kp', name: 'c', base: { type: 'nat', hook: 'input', priority: 2 ** 31 } }), 'nftables.addChain', 'chain.base.priority'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'payload', base: 'network', offset: 0, len: 4, dreg: 5 }] }), 'nftables.addRule', 'rule.expressions[0].dreg'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'verdict', verdict: 'jump' }] }), 'nftables.addRule', 'rule.expressions[0].chain'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'verdict', verdict: 'accept', chain: 'x' }] }), 'nftables.addRule', 'rule.expressions[0].chain'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'meta', key: 'nope' as never, dreg: 1 }] }), 'nftables.addRule', 'rule.expressions[0].key'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(1), xor: d.port(1) }] }), 'nftables.addRule', 'rule.expressions[0].xor'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'fib', result: 'oif', flags: ['sideways' as never], dreg: 1 }] }), 'nftables.addRule', 'rule.expressions[0].flags[0]'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'numgen', mode: 'random', modulus: 0, dreg: 1 }] }), 'nftables.addRule', 'rule.expressions[0].modulus'],
    [() => tx.addRule({ family: 'ip', table: 'kp', chain: 'c', expressions: [{ type: 'nope' } as never] }), 'nftables.addRule', 'rule.expressions[0].type'],
    [() => tx.addSet({ family: 'ip', table: 'kp', name: 's', key: 'verdict' }), 'nftables.addSet', 'set.key'],
    [() => tx.addSet({ family: 'ip', table: 'kp', name: 's', key: ['ipv4_addr', 'bogus' as never] }), 'nftables.addSet', 'set.key[1]'],
    [() => tx.addSet({ family: 'ip', table: 'kp', name: 's', key: 'ipv4_addr', timeout: 1000 }), 'nftables.addSet', 'set.timeout'],
    [() => tx.addSet({ family: 'ip', table: 'kp', name: '__map', key: 'integer', flags: ['anonymous'] }), 'nftables.addSet', 'set.name'],
    [() => tx.addSet({ family: 'ip', table: 'kp', name: 'a%d', key: 'integer' }), 'nftables.addSet', 'set.name'],
    [() => tx.addElements({ family: 'ip', table: 'kp', set: 's', elements: [] }), 'nftables.addElements', 'elements.elements'],
    [() => tx.deleteRule({ family: 'ip', table: 'kp', chain: 'c', handle: 0 }), 'nftables.deleteRule', 'rule.handle'],
  ]
  for (const [fn, op, field] of cases) {
    let e: unknown
    try {
      fn()
    } catch (x) {
      e = x
    }
    t.ok(e instanceof ValidationError, `${field}: a ValidationError (${String(e)})`)
    t.match(e, { op, field, index: 1 }, field)
  }
  t.equal(tx.size, 1, 'only the good edit is queued')
  // Elements of a set added in the same transaction are checked against its layout.
  tx.addSet({ family: 'ip', table: 'kp', name: 'm', key: ['ipv4_addr', 'inet_service'], data: 'verdict' })
  t.throws(() => tx.addElements({ family: 'ip', table: 'kp', set: 'm', elements: [{ key: d.ipv4('1.2.3.4'), verdict: { verdict: 'accept' } }] }), { field: 'elements.elements[0].key', index: 2 })
  t.throws(() => tx.addElements({ family: 'ip', table: 'kp', set: 'm', elements: [{ key: d.concat(d.ipv4('1.2.3.4'), d.port(1)) }] }), { field: 'elements.elements[0].verdict', index: 2 })
  await tx.commit()
  t.throws(() => tx.addTable({ family: 'ip', name: 'again' }), { op: 'nftables.addTable', message: /already committed/ })
  await nft.close()
})
