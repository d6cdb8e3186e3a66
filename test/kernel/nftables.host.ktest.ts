// nf_tables against the host kernel, in a fresh network namespace, with nft as
// the oracle both ways: a table in kube-proxy's nftables shape written in one
// transaction reads back in `nft list table` / `nft -j list ruleset` as kube-proxy's
// would, and through our list functions as the records we wrote; what nft
// writes reads back through our records; a failing transaction leaves the
// ruleset exactly as it was and names the failing edit. The UML box's kernel
// has no nf_tables ip/ip6/inet families: there every test is skipped, saying so.
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { Nftables, ValidationError, nftData as d, type NftExpr, type NftTransaction } from '../../dist/index.js'
import { rejection, rejects } from './support/assert.js'
import { nftablesUnsupported } from './support/nftables.js'
import { run } from './support/shell.js'

const nft = await Nftables.open()
t.teardown(() => nft.close())

const skip = await nftablesUnsupported()

const nftCli = (...args: string[]): string => run('nft', ...args)
const F = 'ip'
const T = 'kube-proxy'

t.beforeEach(() => {
  if (!skip) nftCli('flush', 'ruleset')
})

// ---- kube-proxy's shape ---------------------------------------------------------------------

/** `ip daddr . meta l4proto . th dport`: a concatenation in 32-bit registers 1 (NFT_REG32_00 = 8), 9, 10, as nft loads it. */
const DADDR_PROTO_PORT: NftExpr[] = [
  { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 1 },
  { type: 'meta', key: 'l4proto', dreg: 9 },
  { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 10 },
]

function kubeProxyShape(tx: NftTransaction): NftTransaction {
  const at = { family: F, table: T } as const
  tx.addTable({ family: F, name: T, comment: 'rules for kube-proxy' })
  tx.addChain({ ...at, name: 'nat-prerouting', base: { type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' } })
  tx.addChain({ ...at, name: 'nat-output', base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' } })
  tx.addChain({ ...at, name: 'nat-postrouting', base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' } })
  for (const c of ['services', 'mark-for-masquerade', 'masquerading']) tx.addChain({ ...at, name: c })
  tx.addSet({ ...at, name: 'cluster-ips', key: 'ipv4_addr', comment: 'Active ClusterIPs' })
  tx.addSet({ ...at, name: 'service-ips', key: ['ipv4_addr', 'inet_proto', 'inet_service'], data: 'verdict', comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic' })
  tx.addRule({ ...at, chain: 'nat-prerouting', expressions: [{ type: 'verdict', verdict: 'jump', chain: 'services' }] })
  tx.addRule({ ...at, chain: 'nat-output', expressions: [{ type: 'verdict', verdict: 'jump', chain: 'services' }] })
  tx.addRule({ ...at, chain: 'nat-postrouting', expressions: [{ type: 'verdict', verdict: 'jump', chain: 'masquerading' }] })
  tx.addRule({ ...at, chain: 'services', expressions: [...DADDR_PROTO_PORT, { type: 'lookup', set: 'service-ips', sreg: 1, dreg: 0 }] })
  tx.addRule({
    ...at,
    chain: 'mark-for-masquerade',
    expressions: [
      { type: 'meta', key: 'mark', dreg: 1 },
      { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(0xffffbfff), xor: d.u32(0x4000) },
      { type: 'meta-set', key: 'mark', sreg: 1 },
    ],
  })
  tx.addRule({
    ...at,
    chain: 'masquerading',
    expressions: [
      { type: 'meta', key: 'mark', dreg: 1 },
      { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(0x4000), xor: d.u32(0) },
      { type: 'cmp', op: 'eq', sreg: 1, data: d.u32(0) },
      { type: 'verdict', verdict: 'return' },
    ],
  })
  tx.addRule({ ...at, chain: 'masquerading', expressions: [{ type: 'masq', flags: ['random-fully'] }] })
  // Two endpoints of ns1/svc1:p80, each hairpin-marking its own traffic and DNATing.
  const eps = [
    ['endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80', '10.180.0.1'],
    ['endpoint-A2F5NB6D-ns1/svc1/tcp/p80__10.180.0.2/80', '10.180.0.2'],
  ] as const
  for (const [name, ip] of eps) {
    tx.addChain({ ...at, name })
    tx.addRule({
      ...at,
      chain: name,
      expressions: [
        { type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 },
        { type: 'cmp', op: 'eq', sreg: 1, data: d.ipv4(ip) },
        { type: 'verdict', verdict: 'jump', chain: 'mark-for-masquerade' },
      ],
    })
    tx.addRule({
      ...at,
      chain: name,
      expressions: [
        { type: 'meta', key: 'l4proto', dreg: 1 },
        { type: 'cmp', op: 'eq', sreg: 1, data: d.proto('tcp') },
        { type: 'immediate', dreg: 1, data: d.ipv4(ip) },
        { type: 'immediate', dreg: 2, data: d.port(80) },
        { type: 'nat', nat: 'dnat', family: 'ip', addrMin: 1, protoMin: 2, flags: ['proto-specified'] },
      ],
    })
  }
  const svc = 'service-ULMVA6XW-ns1/svc1/tcp/p80'
  tx.addChain({ ...at, name: svc })
  tx.addRule({
    ...at,
    chain: svc,
    expressions: [
      ...DADDR_PROTO_PORT.slice(0, 1).map((e) => ({ ...e, offset: 12 })),
      { type: 'lookup', set: 'cluster-ips', sreg: 1, invert: true },
      ...DADDR_PROTO_PORT.slice(0, 1),
      { type: 'cmp', op: 'eq', sreg: 1, data: d.ipv4('172.30.0.41') },
      { type: 'verdict', verdict: 'jump', chain: 'mark-for-masquerade' },
    ] as NftExpr[],
  })
  tx.addSet({ ...at, name: '__map%d', key: 'integer', data: 'verdict', flags: ['anonymous', 'constant'] })
  tx.addElements({
    ...at,
    set: '__map%d',
    elements: eps.map(([name], i) => ({ key: d.u32(i), verdict: { verdict: 'goto', chain: name } })),
  })
  tx.addRule({ ...at, chain: svc, comment: 'ns1/svc1:p80', expressions: [{ type: 'numgen', mode: 'random', modulus: 2, dreg: 1 }, { type: 'lookup', set: '__map%d', sreg: 1, dreg: 0 }] })
  tx.addElements({ ...at, set: 'cluster-ips', elements: [{ key: d.ipv4('172.30.0.41') }] })
  tx.addElements({
    ...at,
    set: 'service-ips',
    elements: [{ key: d.concat(d.ipv4('172.30.0.41'), d.proto('tcp'), d.port(80)), verdict: { verdict: 'goto', chain: svc }, comment: 'ns1/svc1:p80' }],
  })
  return tx
}

const KUBE_PROXY_TEXT = `table ip kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv4_addr
		comment "Active ClusterIPs"
		elements = { 172.30.0.41 }
	}

	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}

	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain masquerading {
		meta mark & 0x00004000 == 0x00000000 return
		masquerade fully-random
	}

	chain endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 {
		ip saddr 10.180.0.1 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.1:80
	}

	chain endpoint-A2F5NB6D-ns1/svc1/tcp/p80__10.180.0.2/80 {
		ip saddr 10.180.0.2 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.180.0.2:80
	}

	chain service-ULMVA6XW-ns1/svc1/tcp/p80 {
		ip saddr != @cluster-ips ip daddr 172.30.0.41 jump mark-for-masquerade
		numgen random mod 2 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80, 1 : goto endpoint-A2F5NB6D-ns1/svc1/tcp/p80__10.180.0.2/80 } comment "ns1/svc1:p80"
	}
}
`

t.test("kube-proxy's shape in one transaction reads back in nft list as kube-proxy's would", { skip }, async (t) => {
  const before = await nft.generation()
  const res = await kubeProxyShape(nft.transaction()).commit({ generation: before })
  t.equal(res.generation, before + 1, 'one transaction: the generation moved by one')
  t.equal(await nft.generation(), res.generation, 'and generation() agrees')
  t.equal(nftCli('list', 'table', 'ip', T), KUBE_PROXY_TEXT, 'nft list table ip kube-proxy')
  const json = JSON.parse(nftCli('-j', 'list', 'ruleset')) as { nftables: Record<string, Record<string, unknown>>[] }
  const items = json.nftables
  t.match(items.find((i) => i.table)?.table, { family: 'ip', name: T }, 'nft -j: the table')
  t.match(items.find((i) => i.map)?.map, { name: 'service-ips', type: ['ipv4_addr', 'inet_proto', 'inet_service'], map: 'verdict' }, 'nft -j: the verdict map')
  t.match(items.find((i) => i.chain && (i.chain as { name: string }).name === 'nat-prerouting')?.chain, { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' }, 'nft -j: a base chain')
  t.equal(items.filter((i) => i.rule).length, 13, 'nft -j: every rule')
})

t.test('our list functions read back the records we wrote', { skip }, async (t) => {
  const written: { chain: string; expressions: NftExpr[]; comment?: string }[] = []
  const tx = nft.transaction()
  const addRule = tx.addRule.bind(tx)
  tx.addRule = (r) => (written.push(r), addRule(r))
  await kubeProxyShape(tx).commit()
  const tables = await nft.listTables()
  t.match(tables, [{ family: 'ip', name: T, comment: 'rules for kube-proxy', use: 11 }], 'use: 9 chains and 2 named sets')
  const chains = await nft.listChains(F, T)
  t.strictSame(
    chains.filter((c) => c.base).map(({ handle: _h, ...c }) => c),
    [
      { family: F, table: T, name: 'nat-prerouting', base: { type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' } },
      { family: F, table: T, name: 'nat-output', base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' } },
      { family: F, table: T, name: 'nat-postrouting', base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' } },
    ],
  )
  const sets = await nft.listSets(F, T)
  t.strictSame(
    sets.map(({ handle: _h, ...s }) => s),
    [
      { family: F, table: T, name: 'cluster-ips', key: 'ipv4_addr', comment: 'Active ClusterIPs' },
      { family: F, table: T, name: 'service-ips', key: ['ipv4_addr', 'inet_proto', 'inet_service'], data: 'verdict', comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic' },
      { family: F, table: T, name: '__map0', key: 'integer', data: 'verdict', flags: ['anonymous', 'constant'] },
    ],
  )
  t.strictSame(await nft.listElements(F, T, 'service-ips'), [
    { key: d.concat(d.ipv4('172.30.0.41'), d.proto('tcp'), d.port(80)), verdict: { verdict: 'goto', chain: 'service-ULMVA6XW-ns1/svc1/tcp/p80' }, comment: 'ns1/svc1:p80' },
  ])
  // Rules come back as written, expression for expression (with the kernel's handles).
  const rules = await nft.listRules(F, T)
  t.equal(rules.length, written.length, 'every rule')
  for (const w of written) {
    const got = rules.filter((r) => r.chain === w.chain)
    const i = written.filter((x) => x.chain === w.chain).indexOf(w)
    const expressions = w.expressions.map((e) => (e.type === 'lookup' && e.set === '__map%d' ? { ...e, set: '__map0' } : e.type === 'nat' ? { ...e, flags: ['map-ips', ...(e.flags ?? [])] } : e))
    t.strictSame({ expressions: got[i]?.expressions, comment: got[i]?.comment }, { expressions, comment: w.comment }, `${w.chain} rule ${i + 1}`)
  }
})

t.test("what nft writes reads back through our records", { skip }, async (t) => {
  run('sh', '-c', `nft -f - <<'EOF'
table ip f {
  set aff { type ipv4_addr; flags dynamic,timeout; timeout 3h; }
  set cidrs { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 } }
  chain c {
    ct state new counter accept
    fib daddr type local return
    th dport 30000-30010 reject with icmp type host-unreachable
    update @aff { ip saddr timeout 3h }
    ip saddr != @cidrs drop comment "outside"
  }
}
EOF`)
  const rules = await nft.listRules(F, 'f', 'c')
  t.strictSame(
    rules.map((r) => [r.expressions, r.comment]),
    [
      [[{ type: 'ct', key: 'state', dreg: 1 }, { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: d.u32(8), xor: d.u32(0) }, { type: 'cmp', op: 'neq', sreg: 1, data: d.u32(0) }, { type: 'counter', packets: 0, bytes: 0 }, { type: 'verdict', verdict: 'accept' }], undefined],
      [[{ type: 'fib', result: 'addrtype', flags: ['daddr'], dreg: 1 }, { type: 'cmp', op: 'eq', sreg: 1, data: d.u32(2) }, { type: 'verdict', verdict: 'return' }], undefined],
      [[{ type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 1 }, { type: 'cmp', op: 'gte', sreg: 1, data: d.port(30000) }, { type: 'cmp', op: 'lte', sreg: 1, data: d.port(30010) }, { type: 'reject', reject: 'icmp-unreach', code: 1 }], undefined],
      [[{ type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 }, { type: 'dynset', set: 'aff', op: 'update', sregKey: 1, timeout: 10800000 }], undefined],
      [[{ type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 }, { type: 'lookup', set: 'cidrs', sreg: 1, invert: true }, { type: 'verdict', verdict: 'drop' }], 'outside'],
    ],
  )
  t.match(await nft.listSets(F, 'f'), [{ name: 'aff', key: 'ipv4_addr', flags: ['timeout', 'dynamic'], timeout: 10800000 }, { name: 'cidrs', key: 'ipv4_addr', flags: ['interval'] }])
  t.strictSame(
    (await nft.listElements(F, 'f', 'cidrs')).map((e) => [[...e.key].join('.'), e.intervalEnd ?? false]),
    [['11.0.0.0', true], ['10.0.0.0', false], ['0.0.0.0', true]],
    "nft's interval elements: the range's start, the end after it, the leading 0.0.0.0 end (the kernel's tree lists them high to low)",
  )
})

t.test('an interval set filled with nftData.cidr reads in nft as the networks', { skip }, async (t) => {
  await nft
    .transaction()
    .addTable({ family: F, name: T })
    .addSet({ family: F, table: T, name: 'cidrs', key: 'ipv4_addr', flags: ['interval'] })
    .addElements({ family: F, table: T, set: 'cidrs', elements: [...d.cidr('10.0.0.0/8'), ...d.cidr('192.168.1.7'), ...d.cidr('172.16.0.0/12')] })
    .commit()
  t.match(nftCli('list', 'set', 'ip', T, 'cidrs'), 'elements = { 10.0.0.0/8, 172.16.0.0/12,\n\t\t\t     192.168.1.7 }')
})

t.test('a failing transaction leaves the ruleset exactly as before, and names the failing edit', { skip }, async (t) => {
  await kubeProxyShape(nft.transaction()).commit()
  const before = nftCli('list', 'ruleset')
  const gen = await nft.generation()
  const tx = nft.transaction()
  tx.addChain({ family: F, table: T, name: 'new-chain' })
  tx.addRule({ family: F, table: T, chain: 'no-such-chain', expressions: [{ type: 'counter' }] })
  tx.addElements({ family: F, table: T, set: 'cluster-ips', elements: [{ key: d.ipv4('172.30.0.42') }] })
  const err = await rejects(t, tx.commit(), { errno: 2, code: 'ENOENT', op: 'nftables.addRule', index: 1 })
  t.match(err?.message, /^nftables\.addRule \(batch index 1\): ENOENT/)
  t.equal(nftCli('list', 'ruleset'), before, 'the ruleset is as it was: the new chain and element were not applied either')
  t.equal(await nft.generation(), gen, 'and the generation did not move')
  await rejects(t, tx.commit(), { op: 'nftables.commit' })
})

t.test('a stale generation: the kernel refuses the batch whole (ERESTART), nothing applied', { skip }, async (t) => {
  const gen = await nft.generation()
  nftCli('add', 'table', 'ip', 'someone-else')
  await rejects(t, nft.transaction().addTable({ family: F, name: 'mine' }).commit({ generation: gen }), { errno: 85, code: 'ERESTART', op: 'nftables.commit', index: undefined })
  t.notMatch(nftCli('list', 'tables'), /mine/, 'table mine was not made')
  const res = await nft.transaction().addTable({ family: F, name: 'mine' }).commit({ generation: gen + 1 })
  t.equal(res.generation, gen + 2, 'at the current generation it goes through')
})

t.test('flush chain, flush set, delete elements, rule, set, chain, table', { skip }, async (t) => {
  await kubeProxyShape(nft.transaction()).commit()
  const at = { family: F, table: T } as const
  const svc = 'service-ULMVA6XW-ns1/svc1/tcp/p80'
  const [first] = await nft.listRules(F, T, 'masquerading')
  await nft
    .transaction()
    .flushChain({ ...at, name: svc })
    .deleteElements({ ...at, set: 'service-ips', elements: [{ key: d.concat(d.ipv4('172.30.0.41'), d.proto('tcp'), d.port(80)) }] })
    .flushSet({ ...at, name: 'cluster-ips' })
    .deleteRule({ ...at, chain: 'masquerading', handle: first!.handle })
    .commit()
  const text = nftCli('list', 'table', 'ip', T)
  t.match(text, `chain ${svc} {\n\t}`, 'the service chain is empty')
  t.notMatch(text, /elements = /, 'no elements left in either set')
  t.match(text, 'chain masquerading {\n\t\tmasquerade fully-random\n\t}', 'the first masquerading rule is gone')
  t.equal((await nft.listSets(F, T)).length, 2, 'the anonymous map went with the rule that held it')
  await nft.transaction().deleteChain({ ...at, name: svc }).deleteSet({ ...at, name: 'cluster-ips' }).commit()
  t.notMatch(nftCli('list', 'table', 'ip', T), /cluster-ips|service-ULMVA6XW/)
  await nft.transaction().deleteTable({ family: F, name: T }).commit()
  t.equal(nftCli('list', 'tables'), '', 'no table left')
})

t.test('listTable reads a table whole; flushTable empties every chain, chains and sets stay', { skip }, async (t) => {
  await kubeProxyShape(nft.transaction()).commit()
  const all = await nft.listTable(F, T)
  t.equal(all?.table.name, T)
  t.equal(all?.chains.length, 9, 'every chain')
  t.equal(all?.rules.length, 13, 'every rule')
  t.strictSame(Object.keys(all?.elements ?? {}), ['cluster-ips', 'service-ips', '__map0'], "each set's elements, the anonymous map's too")
  t.equal(all?.elements['__map0']?.length, 2)
  t.equal(await nft.listTable(F, 'no-such-table'), undefined, 'a table that does not exist')
  await nft.transaction().flushTable({ family: F, name: T }).commit()
  const after = await nft.listTable(F, T)
  t.equal(after?.rules.length, 0, 'no rule left')
  t.equal(after?.chains.length, 9, 'the chains stay')
  t.strictSame(after?.sets.map((s) => s.name), ['cluster-ips', 'service-ips'], 'the named sets stay, with their elements; the anonymous map went with its rule')
  t.equal(after?.elements['service-ips']?.length, 1)
})

t.test('a large transaction: 30000 map elements in one kernel batch (many messages, one sendmsg)', { skip }, async (t) => {
  const tx = nft.transaction()
  tx.addTable({ family: F, name: T })
  tx.addChain({ family: F, table: T, name: 'svc' })
  tx.addSet({ family: F, table: T, name: 'service-ips', key: ['ipv4_addr', 'inet_proto', 'inet_service'], data: 'verdict' })
  const elements = Array.from({ length: 30000 }, (_, i) => ({
    key: d.concat(d.ipv4(`172.30.${i >> 8}.${i & 255}`), d.proto('tcp'), d.port(80)),
    verdict: { verdict: 'goto' as const, chain: 'svc' },
  }))
  tx.addElements({ family: F, table: T, set: 'service-ips', elements })
  const res = await tx.commit()
  t.ok(res.messages > 4, `the elements went in ${res.messages - 3} messages`)
  t.equal((await nft.listElements(F, T, 'service-ips')).length, 30000, 'every element is there')
  const listed = execFileSync('nft', ['-j', 'list', 'map', 'ip', T, 'service-ips'], { encoding: 'utf8', maxBuffer: 1 << 28 })
  const map = (JSON.parse(listed) as { nftables: { map?: { elem: unknown[] } }[] }).nftables.find((i) => i.map)?.map
  t.equal(map?.elem.length, 30000, 'nft counts the same')
})

t.test('validation: a bad edit is refused before anything is queued, naming the field and the index', { skip }, async (t) => {
  const tx = nft.transaction().addTable({ family: F, name: T })
  const e = await rejection(Promise.resolve().then(() => tx.addRule({ family: F, table: T, chain: 'c', expressions: [{ type: 'cmp', op: 'eq', sreg: 1, data: new Uint8Array(0) }] })))
  t.ok(e instanceof ValidationError)
  t.match(e, { op: 'nftables.addRule', field: 'rule.expressions[0].data', index: 1 })
  t.equal(tx.size, 1, 'nothing of the bad edit was queued')
  await tx.commit()
  t.match(nftCli('list', 'tables'), 'table ip kube-proxy')
})
