// Byte fixtures for the entries lib/iptables lays out, commented field by field
// from <linux/netfilter_ipv4/ip_tables.h>, <linux/netfilter_ipv6/ip6_tables.h>
// and the match / target headers. encode(rule) must equal the bytes; decode of
// the bytes as libiptc hands them back (a standard target's name cleared, its
// label beside it) must equal the record.
//
// The match and target data are real: what iptables-legacy 1.8.9 wrote for the
// same rule, read back from Linux 6.18 (the kernel tests check the same both
// ways through iptables-legacy-save, in a real kernel).
//
// x_tables structs are host order (little-endian here), except the ports of the
// NAT ranges, which are network order. Every match / target starts with a
// 32-byte header: u16 size, char name[29], u8 revision.
import t, { type Test } from 'tap'
import { rows as rowsOf } from '../support/fixtures.js'
import { iptablesDecodeRule, iptablesEncodeRule, type Rule, type RuleRecord } from '../../dist/index.js'

type Patch = [offset: number, hex: string, what: string]

/** A zeroed buffer of `size` with the patches written in: the fixture's bytes. */
function bytes(size: number, patches: Patch[]): Buffer {
  const b = Buffer.alloc(size)
  for (const [o, hex] of patches) Buffer.from(hex.replace(/\s+/g, ''), 'hex').copy(b, o)
  return b
}
const name = (s: string): string => Buffer.from(s, 'latin1').toString('hex')
const u16 = (n: number): string => Buffer.from([n & 0xff, n >> 8]).toString('hex')

/** 8-byte rows with their offset, so a mismatch points at the field. */
const rows = (b: Buffer): string[] => rowsOf(b, 8)

const at = { op: 'iptables.appendRule' }

function encodes(t: Test, rule: Rule, expected: Buffer, ctx: { family?: 'inet' | 'inet6'; table?: 'nat' | 'filter' } = {}): void {
  const e = iptablesEncodeRule(at, rule, { family: ctx.family ?? 'inet', table: ctx.table ?? 'nat' })
  t.strictSame(rows(e.entry), rows(expected), 'encode(rule) equals the fixture')
}

/** As libiptc hands a standard target back: name "" (XT_STANDARD_TARGET), the label apart. */
function kernelForm(b: Buffer, targetOffset: number): Buffer {
  const c = Buffer.from(b)
  c.fill(0, targetOffset + 2, targetOffset + 31)
  return c
}

function decodes(t: Test, b: Buffer, label: string | undefined, record: Rule, family: 'inet' | 'inet6' = 'inet', sets = {}): void {
  const r: RuleRecord = iptablesDecodeRule(b, family, label, sets)
  const { counters, ...rest } = r
  t.strictSame(counters, { packets: 0, bytes: 0 })
  t.strictSame(rest, record, 'decode(bytes) equals the record')
}

// struct ipt_entry: ipt_ip (src 0, dst 4, smsk 8, dmsk 12, iniface 16, outiface 32,
// iniface_mask 48, outiface_mask 64, proto 80, flags 82, invflags 83), nfcache 84,
// target_offset 88, next_offset 90, comefrom 92, counters 96 (pcnt, bcnt), elems 112.

t.test('KUBE-SERVICES: -d 10.96.0.10/32 -p tcp -m comment -m tcp --dport 53 -j KUBE-SVC-…', async (t) => {
  const rule: Rule = {
    destination: '10.96.0.10/32',
    protocol: 'tcp',
    matches: [{ match: 'comment', comment: 'kube-system/kube-dns:dns-tcp cluster IP' }, { match: 'tcp', dport: 53 }],
    target: { jump: 'KUBE-SVC-ERIFXISQEP7F7OF4' },
  }
  const b = bytes(488, [
    [4, '0a60000a', 'ip.dst = 10.96.0.10'],
    [12, 'ffffffff', 'ip.dmsk = /32'],
    [80, '0600', 'ip.proto = IPPROTO_TCP'],
    [88, u16(448), 'target_offset: after the entry (112), comment (288) and tcp (48)'],
    [90, u16(488), 'next_offset: + the standard target (40)'],
    [112, u16(288), 'comment: match_size = 32 + XT_ALIGN(sizeof(xt_comment_info) = 256)'],
    [114, name('comment'), '  name; revision 0'],
    [144, name('kube-system/kube-dns:dns-tcp cluster IP'), '  comment[256], NUL padded'],
    [400, u16(48), 'tcp: match_size = 32 + XT_ALIGN(sizeof(xt_tcp) = 12)'],
    [402, name('tcp'), '  name; revision 0'],
    [432, '0000 ffff 3500 3500 00 00 00 00', '  spts = 0:65535, dpts = 53:53, option, flg_mask, flg_cmp, invflags'],
    [448, u16(40), 'target: target_size = 32 + XT_ALIGN(sizeof(int))'],
    [450, name('KUBE-SVC-ERIFXISQEP7F7OF4'), '  the chain, as iptables names it (libiptc makes it a jump); verdict 0'],
  ])
  encodes(t, rule, b)
  decodes(t, kernelForm(b, 448), 'KUBE-SVC-ERIFXISQEP7F7OF4', rule)
})

t.test('KUBE-SVC: -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-…', async (t) => {
  const p = 0.33333333349
  const b = bytes(208, [
    [88, u16(168), 'target_offset'],
    [90, u16(208), 'next_offset'],
    [112, u16(56), 'statistic: 32 + XT_ALIGN(sizeof(xt_statistic_info) = 24)'],
    [114, name('statistic'), '  revision 0'],
    // mode RANDOM (0), flags 0, probability = lround(2^31 * p) = 0x2aaaaaab,
    // packet 0, count = every - packet (iptables computes it in any mode), master 0
    [144, '0000 0000 abaaaa2a 00000000 abaaaa2a 0000000000000000', '  xt_statistic_info'],
    [168, u16(40), 'target'],
    [170, name('KUBE-SEP-BEMSLTMJA26ZCLYL'), '  a jump'],
  ])
  encodes(t, { matches: [{ match: 'statistic', mode: 'random', probability: p }], target: { jump: 'KUBE-SEP-BEMSLTMJA26ZCLYL' } }, b)
  decodes(t, kernelForm(b, 168), 'KUBE-SEP-BEMSLTMJA26ZCLYL', {
    matches: [{ match: 'statistic', mode: 'random', probability: 0x2aaaaaab / 2 ** 31 }],
    target: { jump: 'KUBE-SEP-BEMSLTMJA26ZCLYL' },
  })
  const mask = iptablesEncodeRule(at, { matches: [{ match: 'statistic', mode: 'random', probability: p }] }, { family: 'inet', table: 'nat' }).mask
  t.strictSame(rows(mask), rows(bytes(208, [
    [0, 'ff'.repeat(112), 'the entry is compared whole'],
    [112, 'ff'.repeat(32 + 12), 'statistic: header + userspacesize = offsetof(u.nth.count): count and master are the kernel\'s'],
    [168, 'ff'.repeat(32 + 4), 'standard target: header + the verdict'],
  ])), 'the mask iptables -D compares with')
})

t.test('KUBE-SEP: -p tcp -m tcp -j DNAT --to-destination 192.168.0.7:80 (DNAT revision 2, nf_nat_range2)', async (t) => {
  const rule: Rule = { protocol: 'tcp', matches: [{ match: 'tcp' }], target: { target: 'DNAT', toDestination: '192.168.0.7:80' } }
  const b = bytes(240, [
    [80, '0600', 'ip.proto = tcp'],
    [88, u16(160), 'target_offset'],
    [90, u16(240), 'next_offset'],
    [112, u16(48), 'tcp'],
    [114, name('tcp'), ''],
    [144, '0000 ffff 0000 ffff', '  any port either way'],
    [160, u16(80), 'DNAT: 32 + XT_ALIGN(sizeof(nf_nat_range2) = 44)'],
    [162, name('DNAT'), ''],
    [191, '02', '  revision 2'],
    [192, '03000000', '  flags = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED'],
    [196, 'c0a80007', '  min_addr = 192.168.0.7 (union nf_inet_addr, 16 bytes)'],
    [212, 'c0a80007', '  max_addr'],
    [228, '0050 0050', '  min_proto, max_proto = 80 (network order); base_proto 0'],
  ])
  encodes(t, rule, b)
  decodes(t, b, undefined, rule)
})

t.test('KUBE-POSTROUTING: -j MASQUERADE --random-fully (revision 0, nf_nat_ipv4_multi_range_compat)', async (t) => {
  const b = bytes(168, [
    [88, u16(112), 'target_offset: no matches'],
    [90, u16(168), 'next_offset'],
    [112, u16(56), 'MASQUERADE: 32 + XT_ALIGN(20)'],
    [114, name('MASQUERADE'), '  revision 0'],
    [144, '01000000', '  rangesize = 1'],
    [148, '10000000', '  range[0].flags = NF_NAT_RANGE_PROTO_RANDOM_FULLY; no addresses, no ports'],
  ])
  encodes(t, { target: { target: 'MASQUERADE', randomFully: true } }, b)
  decodes(t, b, undefined, { target: { target: 'MASQUERADE', randomFully: true } })
})

t.test('KUBE-MARK-MASQ: -j MARK --or-mark 0x4000 is set-xmark 0x4000/0x4000 (revision 2)', async (t) => {
  const b = bytes(152, [
    [88, u16(112), 'target_offset'],
    [90, u16(152), 'next_offset'],
    [112, u16(40), 'MARK: 32 + sizeof(xt_mark_tginfo2)'],
    [114, name('MARK'), ''],
    [143, '02', '  revision 2'],
    [144, '00400000 00400000', '  mark, mask'],
  ])
  encodes(t, { target: { target: 'MARK', op: 'or', value: 0x4000 } }, b)
  decodes(t, b, undefined, { target: { target: 'MARK', op: 'set-xmark', value: 0x4000, mask: 0x4000 } })
})

t.test('hairpin: -m set --match-set KUBE-LOOP-BACK dst,dst,src (revision 4), the index filled in by native code', async (t) => {
  const rule: Rule = { matches: [{ match: 'set', matchSet: 'KUBE-LOOP-BACK', flags: ['dst', 'dst', 'src'] }], target: { target: 'MASQUERADE' } }
  const b = bytes(248, [
    [88, u16(192), 'target_offset'],
    [90, u16(248), 'next_offset'],
    [112, u16(80), 'set: 32 + sizeof(xt_set_info_match_v4) = 48'],
    [114, name('set'), ''],
    [143, '04', '  revision 4'],
    [144, '0000 03 08', '  index (0 until resolved), dim = 3, flags: bit 3 = the third direction is src'],
    [192, u16(56), 'MASQUERADE'],
    [194, name('MASQUERADE'), ''],
    [224, '01000000', '  rangesize = 1'],
  ])
  const e = iptablesEncodeRule(at, rule, { family: 'inet', table: 'nat' })
  t.strictSame(rows(e.entry), rows(b), 'encode(rule) equals the fixture')
  t.strictSame(e.sets, [{ offset: 144, name: 'KUBE-LOOP-BACK' }], 'native code writes the set index at 144')
  const readBack = Buffer.from(b)
  readBack.writeUInt16LE(3, 144)
  decodes(t, readBack, undefined, rule, 'inet', { 3: 'KUBE-LOOP-BACK' })
  const unknown = iptablesDecodeRule(readBack, 'inet', undefined, {})
  t.match(unknown.matches, [{ match: 'raw', name: 'set', revision: 4 }], 'an index no set has reads back raw')
})

t.test('recent --set --name KUBE: the rest of "DEFAULT" stays behind the NUL, as iptables leaves it', async (t) => {
  const rule: Rule = { matches: [{ match: 'recent', command: 'set', name: 'KUBE' }] }
  const b = bytes(416, [
    [88, u16(376), 'target_offset'],
    [90, u16(416), 'next_offset'],
    [112, u16(264), 'recent: 32 + XT_ALIGN(sizeof(xt_recent_mtinfo_v1) = 228)'],
    [114, name('recent'), ''],
    [143, '01', '  revision 1'],
    [144, '00000000 00000000 02 00', '  seconds, hit_count, check_set = XT_RECENT_SET, invert'],
    [154, name('KUBE') + '00' + name('LT'), '  name[200]: "KUBE" over "DEFAULT"'],
    [354, '00', '  side = XT_RECENT_SOURCE'],
    [356, 'ff'.repeat(16), '  mask: all ones (recent_init)'],
    [376, u16(40), 'standard target, no label: fall through'],
  ])
  encodes(t, rule, b, { table: 'filter' })
  decodes(t, kernelForm(b, 376), '', rule)
})

t.test('-s 10.0.0.0/8 ! -o veth+ -p udp -m multiport ! --dports 53,8000:8080 -j ACCEPT', async (t) => {
  const rule: Rule = {
    source: '10.0.0.0/8',
    outInterface: { not: 'veth+' },
    protocol: 'udp',
    matches: [{ match: 'multiport', dports: { not: [53, [8000, 8080]] } }],
    target: { target: 'ACCEPT' },
  }
  const b = bytes(232, [
    [0, '0a000000', 'ip.src = 10.0.0.0'],
    [8, 'ff000000', 'ip.smsk = /8'],
    [32, name('veth+'), 'ip.outiface, the + kept'],
    [64, 'ffffffff', 'ip.outiface_mask: the 4 bytes before the +'],
    [80, '1100 00 02', 'proto = udp, flags 0, invflags = IPT_INV_VIA_OUT'],
    [88, u16(192), 'target_offset'],
    [90, u16(232), 'next_offset'],
    [112, u16(80), 'multiport: 32 + sizeof(xt_multiport_v1) = 48'],
    [114, name('multiport'), ''],
    [143, '01', '  revision 1'],
    [144, '01 03 3500 401f 901f', '  flags = XT_MULTIPORT_DESTINATION, count 3, ports 53, 8000, 8080'],
    [176, '00 01 00', '  pflags: ports[1] starts a range'],
    [191, '01', '  invert'],
    [192, u16(40), 'target'],
    [194, name('ACCEPT'), '  libiptc makes it verdict -NF_ACCEPT - 1'],
  ])
  encodes(t, rule, b, { table: 'filter' })
  decodes(t, kernelForm(b, 192), 'ACCEPT', rule)
})

t.test('IPv6: -p tcp -j SNAT --to-source [fd00::9]:1000-2000 (revision 1, nf_nat_range) in an ip6t_entry', async (t) => {
  // struct ip6t_entry: src 0, dst 16, smsk 32, dmsk 48, ifaces 64..128, proto 128,
  // tos 130, flags 131, invflags 132, nfcache 136, target_offset 140, next_offset 142,
  // comefrom 144, counters 152, elems 168.
  const rule: Rule = { protocol: 'tcp', target: { target: 'SNAT', toSource: '[fd00::9]:1000-2000' } }
  const b = bytes(240, [
    [128, '0600 00 01', 'proto = tcp, tos, flags = IP6T_F_PROTO (ip6tables sets it with -p)'],
    [140, u16(168), 'target_offset'],
    [142, u16(240), 'next_offset'],
    [168, u16(72), 'SNAT: 32 + sizeof(nf_nat_range) = 40'],
    [170, name('SNAT'), ''],
    [199, '01', '  revision 1'],
    [200, '03000000 fd000000000000000000000000000009 fd000000000000000000000000000009 03e8 07d0', '  flags, min_addr, max_addr, ports 1000-2000 (network order)'],
  ])
  encodes(t, rule, b, { family: 'inet6' })
  decodes(t, b, undefined, rule, 'inet6')
})

t.test('goto sets IPT_F_GOTO (IPv4) and IP6T_F_GOTO (IPv6)', async (t) => {
  const v4 = iptablesEncodeRule(at, { target: { goto: 'X' } }, { family: 'inet', table: 'filter' }).entry
  const v6 = iptablesEncodeRule(at, { target: { goto: 'X' } }, { family: 'inet6', table: 'filter' }).entry
  t.equal(v4[82], 0x02, 'ipt_ip.flags')
  t.equal(v6[131], 0x04, 'ip6t_ip6.flags')
  decodes(t, kernelForm(v4, 112), 'X', { target: { goto: 'X' } })
  decodes(t, kernelForm(v6, 168), 'X', { target: { goto: 'X' } }, 'inet6')
  decodes(t, kernelForm(v4, 112), 'X', { target: { goto: 'X' } })
  const jump = kernelForm(v4, 112)
  jump[82] = 0
  decodes(t, jump, 'X', { target: { jump: 'X' } })
})

/** libiptc's label of a standard target (verdict, chain, '' for none); undefined for extensions. */
function labelOf(rule: Rule): string | undefined {
  const tg = rule.target
  if (tg === undefined) return ''
  if ('jump' in tg) return tg.jump
  if ('goto' in tg) return tg.goto
  return ['ACCEPT', 'DROP', 'RETURN', 'QUEUE'].includes(tg.target) ? tg.target : undefined
}

function roundTrip(t: Test, rule: Rule, family: 'inet' | 'inet6', what: string): void {
  const table = rule.target && 'target' in rule.target && rule.target.target === 'REJECT' ? 'filter' : 'nat'
  const e = iptablesEncodeRule(at, rule, { family, table })
  const label = labelOf(rule)
  const to = e.entry.readUInt16LE(family === 'inet' ? 88 : 140)
  const { counters: _c, ...back } = iptablesDecodeRule(label === undefined ? e.entry : kernelForm(e.entry, to), family, label, {})
  t.same(back, rule, what)
}

t.test('every model reads back as itself: encode then decode, both families', async (t) => {
  const v4: Rule[] = [
    { source: { not: '192.168.0.0/16' }, destination: '10.105.250.129/32', inInterface: 'eth0', protocol: { not: 'udp' }, fragment: true },
    { protocol: 'tcp', matches: [{ match: 'tcp', sport: [1, 1023], dport: { not: 80 }, tcpFlags: { not: { mask: ['SYN', 'ACK'], set: ['SYN'] } } }] },
    { protocol: 'udp', matches: [{ match: 'udp', sport: { not: 53 } }] },
    { protocol: 'sctp', matches: [{ match: 'multiport', ports: [1, [5, 9]] }] },
    { matches: [{ match: 'statistic', mode: 'nth', every: { not: 7 }, packet: 3 }] },
    { matches: [{ match: 'mark', mark: { not: 0x10 }, mask: 0xf0 }, { match: 'comment', comment: 'two' }] },
    { matches: [{ match: 'addrtype', srcType: ['LOCAL', 'BROADCAST'], dstType: { not: 'UNICAST' }, limitIfaceOut: true }] },
    { matches: [{ match: 'conntrack', ctstate: ['NEW', 'DNAT'], ctproto: { not: 'udp' }, ctorigsrc: '10.0.0.0/8', ctorigdst: { not: '10.96.0.1' }, ctreplsrc: '10.1.0.0/16', ctorigsrcport: [1, 2], ctorigdstport: 443, ctreplsrcport: { not: 8 }, ctrepldstport: 9, ctstatus: { not: ['ASSURED'] }, ctexpire: 30, ctdir: 'ORIGINAL' }] },
    { matches: [{ match: 'recent', command: { not: 'rcheck' }, name: 'A-LONGER-NAME', seconds: 5, hitcount: 2, rttl: true, reap: true, side: 'dest', mask: '255.255.0.0' }] },
    { matches: [{ match: 'physdev', physdevIn: { not: 'br+' }, physdevOut: 'veth0', physdevIsIn: true, physdevIsOut: { not: true }, physdevIsBridged: true }] },
    { matches: [{ match: 'raw', name: 'owner', revision: 1, data: '0000000000000000' }], target: { target: 'raw', name: 'CT', revision: 2, data: '00'.repeat(40) } },
    { target: { target: 'REJECT', rejectWith: 'icmp-host-prohibited' } },
    { target: { target: 'LOG', prefix: 'p', level: 7, uid: true } },
    { target: { target: 'RETURN' } },
  ]
  for (const [i, rule] of v4.entries()) roundTrip(t, rule, 'inet', `v4 #${i}`)
  const v6: Rule[] = [
    { source: 'fd00::/8', destination: { not: '::1/128' }, outInterface: 'lo', protocol: 'icmpv6' },
    { matches: [{ match: 'conntrack', ctorigdst: 'fd00::/64', ctrepldst: '2001:db8::1' }, { match: 'recent', command: 'update', seconds: 3, mask: 'ffff:ffff::' }] },
    { protocol: 'tcp', target: { target: 'DNAT', toDestination: '[fd00::1-fd00::3]:80-81', random: true } },
    { target: { target: 'MASQUERADE', randomFully: true } },
    { target: { target: 'REJECT', rejectWith: 'icmp6-addr-unreachable' } },
  ]
  for (const [i, rule] of v6.entries()) roundTrip(t, rule, 'inet6', `v6 #${i}`)
})

t.test('counters and IPv6 addresses read back as the kernel and inet_ntop give them', async (t) => {
  const e = iptablesEncodeRule(at, { source: '::ffff:10.0.0.1/128', destination: '2001:db8:0:0:1:0:0:1/128' }, { family: 'inet6', table: 'filter' }).entry
  e.writeBigUInt64LE(12345678901n, 152)
  e.writeBigUInt64LE(98765432109876n, 160)
  const r = iptablesDecodeRule(kernelForm(e, 168), 'inet6', '', {})
  t.strictSame(r.counters, { packets: 12345678901, bytes: 98765432109876 })
  t.equal(r.source, '::ffff:10.0.0.1/128', 'an IPv4-mapped address keeps its dotted tail')
  t.equal(r.destination, '2001:db8::1:0:0:1/128', 'the first longest run of zeros is the one compressed')
})
