// lib/iptables lays out kernel structs by offset; native/iptc compiles sizeof
// and offsetof from the kernel headers. They must agree, number for number.
import t from 'tap'
import { native } from '../../dist/native.js'
import {
  CONNTRACK,
  ENTRY4,
  ENTRY6,
  EXT,
  MULTIPORT,
  NAT_RANGE,
  OP_HEADER,
  PHYSDEV,
  RECENT,
  RULE_HEADER,
  SCTP,
  SET,
  SET_FIXUP,
  STATISTIC,
  XT_HEADER,
} from '../../dist/iptables/layout.js'

const L = native.iptc.layout()
const align8 = (n: number): number => (n + 7) & ~7

t.test('struct ipt_entry', async (t) => {
  t.equal(ENTRY4.size, L['sizeof ipt_entry'])
  for (const [k, f] of Object.entries({ src: 'ip.src', dst: 'ip.dst', smsk: 'ip.smsk', dmsk: 'ip.dmsk', iniface: 'ip.iniface', outiface: 'ip.outiface', inifaceMask: 'ip.iniface_mask', outifaceMask: 'ip.outiface_mask', proto: 'ip.proto', flags: 'ip.flags', invflags: 'ip.invflags', nfcache: 'nfcache', targetOffset: 'target_offset', nextOffset: 'next_offset', comefrom: 'comefrom', counters: 'counters' }))
    t.equal(ENTRY4[k as keyof typeof ENTRY4], L[`offsetof ipt_entry.${f}`], f)
})

t.test('struct ip6t_entry', async (t) => {
  t.equal(ENTRY6.size, L['sizeof ip6t_entry'])
  for (const [k, f] of Object.entries({ src: 'ipv6.src', dst: 'ipv6.dst', smsk: 'ipv6.smsk', dmsk: 'ipv6.dmsk', iniface: 'ipv6.iniface', outiface: 'ipv6.outiface', inifaceMask: 'ipv6.iniface_mask', outifaceMask: 'ipv6.outiface_mask', proto: 'ipv6.proto', tos: 'ipv6.tos', flags: 'ipv6.flags', invflags: 'ipv6.invflags', nfcache: 'nfcache', targetOffset: 'target_offset', nextOffset: 'next_offset', comefrom: 'comefrom', counters: 'counters' }))
    t.equal(ENTRY6[k as keyof typeof ENTRY6], L[`offsetof ip6t_entry.${f}`], f)
})

t.test('match and target headers, and the XT_ALIGN\'d size of every revision we write', async (t) => {
  t.equal(XT_HEADER, L['sizeof xt_entry_match'])
  t.equal(XT_HEADER, L['sizeof xt_entry_target'])
  const sizes: [keyof typeof EXT, string][] = [
    ['comment', 'xt_comment_info'], ['tcp', 'xt_tcp'], ['udp', 'xt_udp'], ['sctp', 'xt_sctp_info'], ['multiport', 'xt_multiport_v1'],
    ['statistic', 'xt_statistic_info'], ['set', 'xt_set_info_match_v4'], ['mark', 'xt_mark_mtinfo1'],
    ['addrtype', 'xt_addrtype_info_v1'], ['conntrack', 'xt_conntrack_mtinfo3'], ['recent', 'xt_recent_mtinfo_v1'],
    ['physdev', 'xt_physdev_info'], ['DNAT', 'nf_nat_range2'], ['SNAT4', 'nf_nat_ipv4_multi_range_compat'],
    ['SNAT6', 'nf_nat_range'], ['MASQUERADE4', 'nf_nat_ipv4_multi_range_compat'], ['MASQUERADE6', 'nf_nat_range'],
    ['MARK', 'xt_mark_tginfo2'], ['REJECT', 'ipt_reject_info'], ['LOG', 'xt_log_info'],
  ]
  for (const [k, struct] of sizes) t.equal(EXT[k].size, align8(L[`sizeof ${struct}`]!), `${k}: XT_ALIGN(sizeof ${struct})`)
  t.equal(EXT.standard.size + XT_HEADER, L['sizeof xt_standard_target'], 'xt_standard_target')
  t.equal(EXT.REJECT.size, align8(L['sizeof ip6t_reject_info']!), 'ip6t_reject_info')
  t.equal(EXT.statistic.user, L['offsetof xt_statistic_info.u.nth.count'], 'statistic userspacesize = offsetof(u.nth.count)')
})

t.test('offsets inside match and target data', async (t) => {
  t.equal(STATISTIC.count, L['offsetof xt_statistic_info.u.nth.count'])
  t.equal(MULTIPORT.ports, L['offsetof xt_multiport_v1.ports'])
  t.equal(MULTIPORT.pflags, L['offsetof xt_multiport_v1.pflags'])
  t.equal(MULTIPORT.invert, L['offsetof xt_multiport_v1.invert'])
  t.equal(SET.packetsOp, L['offsetof xt_set_info_match_v4.packets'])
  t.equal(SET.bytesOp, L['offsetof xt_set_info_match_v4.bytes'])
  t.equal(SET.matchFlags, L['offsetof xt_set_info_match_v4.flags'])
  t.equal(CONNTRACK.expiresMin, L['offsetof xt_conntrack_mtinfo3.expires_min'])
  t.equal(CONNTRACK.l4proto, L['offsetof xt_conntrack_mtinfo3.l4proto'])
  t.equal(CONNTRACK.matchFlags, L['offsetof xt_conntrack_mtinfo3.match_flags'])
  t.equal(CONNTRACK.stateMask, L['offsetof xt_conntrack_mtinfo3.state_mask'])
  t.equal(CONNTRACK.origsrcPortHigh, L['offsetof xt_conntrack_mtinfo3.origsrc_port_high'])
  t.equal(RECENT.name, L['offsetof xt_recent_mtinfo_v1.name'])
  t.equal(RECENT.side, L['offsetof xt_recent_mtinfo_v1.side'])
  t.equal(RECENT.mask, L['offsetof xt_recent_mtinfo_v1.mask'])
  t.equal(PHYSDEV.inMask, L['offsetof xt_physdev_info.in_mask'])
  t.equal(PHYSDEV.bitmask, L['offsetof xt_physdev_info.bitmask'])
  t.equal(NAT_RANGE.baseProto, L['offsetof nf_nat_range2.base_proto'])
  for (const [k, f] of Object.entries({ dpts: 'dpts', spts: 'spts', chunkmap: 'chunkmap', chunkMatchType: 'chunk_match_type', flagInfo: 'flag_info', flagCount: 'flag_count', flags: 'flags', invflags: 'invflags' }))
    t.equal(SCTP[k as keyof typeof SCTP], L[`offsetof xt_sctp_info.${f}`], `xt_sctp_info.${f}`)
  t.equal(SCTP.flagCount - SCTP.flagInfo, 3 * SCTP.flagSlots, 'flag_info: XT_NUM_SCTP_FLAGS slots of 3 bytes')
})

t.test('the records shared with native/iptc (table.h)', async (t) => {
  t.equal(OP_HEADER.size, L['sizeof OpHeader'])
  t.equal(SET_FIXUP.size, L['sizeof SetFixup'])
  t.equal(RULE_HEADER.size, L['sizeof RuleHeader'])
})
