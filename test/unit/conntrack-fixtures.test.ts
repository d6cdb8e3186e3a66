// Byte fixtures for every ctnetlink message tsproxy sends or parses, commented
// field by field from <linux/netlink.h>, <linux/netfilter/nfnetlink.h> and
// <linux/netfilter/nfnetlink_conntrack.h>. Requests: encode(op) must equal the
// bytes. Replies (recorded from Linux 6.18 as they came): decode(bytes) must
// equal the record, and a delete built from that record must carry the very
// CTA_TUPLE_ORIG bytes the kernel sent: what we read is what we send back.
//
// Numbers: netlink headers and attribute headers are host order
// (little-endian here); every ctnetlink value is big-endian, without
// NLA_F_NET_BYTEORDER (the kernel's own replies do not set it either). Nests
// carry NLA_F_NESTED, on both sides.
import t, { type Test } from 'tap'
import { native } from '../../dist/native.js'
import { DONE_MESSAGE, encoder, refusesMalformed, rows } from '../support/fixtures.js'

const encodes = encoder('conntrack', 0)

// =========================================================================================
// Requests
// =========================================================================================

t.test('list: a dump of one family, no filter', async (t) => {
  encodes(t, { cmd: 'list', family: 2 }, [
    0x14, 0x00, 0x00, 0x00, // nlmsg_len = 20
    0x01, 0x01, //             nlmsg_type = NFNL_SUBSYS_CTNETLINK (1) << 8 | IPCTNL_MSG_CT_GET (1)
    0x01, 0x03, //             nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x00, 0x00, 0x00, // nfgenmsg: nfgen_family = AF_INET (the kernel sends IPv4 entries only), version 0, res_id 0
  ])
})

t.test('list: the kernel filters on protocol, destination port and IPv4 destination (CTA_FILTER)', async (t) => {
  encodes(t, { cmd: 'list', family: 2, orig: { dst: '10.96.0.10', proto: 17, dport: 53 } }, [
    0x44, 0x00, 0x00, 0x00, // nlmsg_len = 68
    0x01, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_GET
    0x01, 0x03, //             nlmsg_flags = REQUEST | DUMP
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET
    0x24, 0x00, 0x01, 0x80, // nla_len = 36, CTA_TUPLE_ORIG | NLA_F_NESTED: the values to match ...
    0x0c, 0x00, 0x01, 0x80, //   nla_len = 12, CTA_TUPLE_IP | NLA_F_NESTED
    0x08, 0x00, 0x02, 0x00, //     nla_len = 8, CTA_IP_V4_DST
    0x0a, 0x60, 0x00, 0x0a, //       10.96.0.10
    0x14, 0x00, 0x02, 0x80, //   nla_len = 20, CTA_TUPLE_PROTO | NLA_F_NESTED
    0x05, 0x00, 0x01, 0x00, //     nla_len = 5, CTA_PROTO_NUM
    0x11, 0x00, 0x00, 0x00, //       IPPROTO_UDP, 3 pad
    0x06, 0x00, 0x03, 0x00, //     nla_len = 6, CTA_PROTO_DST_PORT
    0x00, 0x35, 0x00, 0x00, //       53, 2 pad
    0x0c, 0x00, 0x19, 0x80, // nla_len = 12, CTA_FILTER (25) | NLA_F_NESTED: ... and which of them count
    0x08, 0x00, 0x01, 0x00, //   nla_len = 8, CTA_FILTER_ORIG_FLAGS
    0x2a, 0x00, 0x00, 0x00, //     IP_DST (1 << 1) | PROTO_NUM (1 << 3) | PROTO_DST_PORT (1 << 5), host order
  ])
})

t.test('list: a reply-direction filter (the endpoint a connection was NATed to)', async (t) => {
  encodes(t, { cmd: 'list', family: 2, orig: { proto: 17 }, reply: { src: '10.244.1.5' } }, [
    0x48, 0x00, 0x00, 0x00, // nlmsg_len = 72
    0x01, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_GET
    0x01, 0x03, //             nlmsg_flags = REQUEST | DUMP
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET
    0x10, 0x00, 0x01, 0x80, // nla_len = 16, CTA_TUPLE_ORIG | NLA_F_NESTED
    0x0c, 0x00, 0x02, 0x80, //   nla_len = 12, CTA_TUPLE_PROTO | NLA_F_NESTED
    0x05, 0x00, 0x01, 0x00, //     nla_len = 5, CTA_PROTO_NUM
    0x11, 0x00, 0x00, 0x00, //       IPPROTO_UDP
    0x10, 0x00, 0x02, 0x80, // nla_len = 16, CTA_TUPLE_REPLY | NLA_F_NESTED
    0x0c, 0x00, 0x01, 0x80, //   nla_len = 12, CTA_TUPLE_IP | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x00, //     nla_len = 8, CTA_IP_V4_SRC
    0x0a, 0xf4, 0x01, 0x05, //       10.244.1.5
    0x14, 0x00, 0x19, 0x80, // nla_len = 20, CTA_FILTER | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x00, //   nla_len = 8, CTA_FILTER_ORIG_FLAGS
    0x08, 0x00, 0x00, 0x00, //     PROTO_NUM
    0x08, 0x00, 0x02, 0x00, //   nla_len = 8, CTA_FILTER_REPLY_FLAGS
    0x01, 0x00, 0x00, 0x00, //     IP_SRC
  ])
})

t.test('list: IPv6, protocol and port only (lib/conntrack keeps IPv6 addresses out of the kernel filter)', async (t) => {
  encodes(t, { cmd: 'list', family: 10, orig: { proto: 17, dport: 53 } }, [
    0x38, 0x00, 0x00, 0x00, // nlmsg_len = 56
    0x01, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_GET
    0x01, 0x03, //             nlmsg_flags = REQUEST | DUMP
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x0a, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET6
    0x18, 0x00, 0x01, 0x80, // nla_len = 24, CTA_TUPLE_ORIG | NLA_F_NESTED
    0x14, 0x00, 0x02, 0x80, //   nla_len = 20, CTA_TUPLE_PROTO | NLA_F_NESTED
    0x05, 0x00, 0x01, 0x00, //     nla_len = 5, CTA_PROTO_NUM
    0x11, 0x00, 0x00, 0x00, //       IPPROTO_UDP
    0x06, 0x00, 0x03, 0x00, //     nla_len = 6, CTA_PROTO_DST_PORT
    0x00, 0x35, 0x00, 0x00, //       53
    0x0c, 0x00, 0x19, 0x80, // nla_len = 12, CTA_FILTER | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x00, //   nla_len = 8, CTA_FILTER_ORIG_FLAGS
    0x28, 0x00, 0x00, 0x00, //     PROTO_NUM | PROTO_DST_PORT
  ])
})

t.test('delete: an ICMP echo entry (id, type, code in the kernel order)', async (t) => {
  encodes(t, { cmd: 'delete', family: 2, orig: { src: '10.0.0.1', dst: '10.0.0.2', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 0x1234 } }, [
    0x50, 0x00, 0x00, 0x00, // nlmsg_len = 80
    0x02, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_DELETE (2)
    0x05, 0x00, //             nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET
    0x3c, 0x00, 0x01, 0x80, // nla_len = 60, CTA_TUPLE_ORIG | NLA_F_NESTED
    0x14, 0x00, 0x01, 0x80, //   nla_len = 20, CTA_TUPLE_IP | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x00, //     nla_len = 8, CTA_IP_V4_SRC
    0x0a, 0x00, 0x00, 0x01, //       10.0.0.1
    0x08, 0x00, 0x02, 0x00, //     nla_len = 8, CTA_IP_V4_DST
    0x0a, 0x00, 0x00, 0x02, //       10.0.0.2
    0x24, 0x00, 0x02, 0x80, //   nla_len = 36, CTA_TUPLE_PROTO | NLA_F_NESTED
    0x05, 0x00, 0x01, 0x00, //     nla_len = 5, CTA_PROTO_NUM
    0x01, 0x00, 0x00, 0x00, //       IPPROTO_ICMP
    0x06, 0x00, 0x04, 0x00, //     nla_len = 6, CTA_PROTO_ICMP_ID
    0x12, 0x34, 0x00, 0x00, //       0x1234
    0x05, 0x00, 0x05, 0x00, //     nla_len = 5, CTA_PROTO_ICMP_TYPE
    0x08, 0x00, 0x00, 0x00, //       8 (echo request)
    0x05, 0x00, 0x06, 0x00, //     nla_len = 5, CTA_PROTO_ICMP_CODE
    0x00, 0x00, 0x00, 0x00, //       0
  ])
})

t.test('count: IPCTNL_MSG_CT_GET_STATS, a header and nothing else', async (t) => {
  encodes(t, { cmd: 'count' }, [
    0x14, 0x00, 0x00, 0x00, // nlmsg_len = 20
    0x05, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_GET_STATS (5)
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK: one reply, then the ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // nfgenmsg: AF_UNSPEC
  ])
})

// =========================================================================================
// Replies, and the deletes built from them
// =========================================================================================

// A UDP entry of one dump (`conntrack -L`: udp 17 29 src=127.0.0.1 dst=127.0.0.1
// sport=40000 dport=5353 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5353
// dport=40000 mark=0 use=1 id=1684094259), as Linux 6.18 sent it.
const udpReply = [
  0xa4, 0x00, 0x00, 0x00, // nlmsg_len = 164
  0x00, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_NEW (0): an entry
  0x22, 0x00, //             nlmsg_flags = NLM_F_MULTI | NLM_F_DUMP_FILTERED (0x20: the kernel applied a filter, here the family)
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0xa2, 0x57, 0x00, 0x00, // nlmsg_pid
  0x02, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET, version 0, res_id 0
  0x34, 0x00, 0x01, 0x80, // nla_len = 52, CTA_TUPLE_ORIG | NLA_F_NESTED
  0x14, 0x00, 0x01, 0x80, //   nla_len = 20, CTA_TUPLE_IP
  0x08, 0x00, 0x01, 0x00, //     nla_len = 8, CTA_IP_V4_SRC
  0x7f, 0x00, 0x00, 0x01, //       127.0.0.1
  0x08, 0x00, 0x02, 0x00, //     nla_len = 8, CTA_IP_V4_DST
  0x7f, 0x00, 0x00, 0x01, //       127.0.0.1
  0x1c, 0x00, 0x02, 0x80, //   nla_len = 28, CTA_TUPLE_PROTO
  0x05, 0x00, 0x01, 0x00, //     nla_len = 5, CTA_PROTO_NUM
  0x11, 0x00, 0x00, 0x00, //       IPPROTO_UDP
  0x06, 0x00, 0x02, 0x00, //     nla_len = 6, CTA_PROTO_SRC_PORT
  0x9c, 0x40, 0x00, 0x00, //       40000
  0x06, 0x00, 0x03, 0x00, //     nla_len = 6, CTA_PROTO_DST_PORT
  0x14, 0xe9, 0x00, 0x00, //       5353
  0x34, 0x00, 0x02, 0x80, // nla_len = 52, CTA_TUPLE_REPLY | NLA_F_NESTED
  0x14, 0x00, 0x01, 0x80, //   nla_len = 20, CTA_TUPLE_IP
  0x08, 0x00, 0x01, 0x00, //     CTA_IP_V4_SRC
  0x7f, 0x00, 0x00, 0x01, //       127.0.0.1
  0x08, 0x00, 0x02, 0x00, //     CTA_IP_V4_DST
  0x7f, 0x00, 0x00, 0x01, //       127.0.0.1
  0x1c, 0x00, 0x02, 0x80, //   nla_len = 28, CTA_TUPLE_PROTO
  0x05, 0x00, 0x01, 0x00, //     CTA_PROTO_NUM
  0x11, 0x00, 0x00, 0x00, //       IPPROTO_UDP
  0x06, 0x00, 0x02, 0x00, //     CTA_PROTO_SRC_PORT
  0x14, 0xe9, 0x00, 0x00, //       5353
  0x06, 0x00, 0x03, 0x00, //     CTA_PROTO_DST_PORT
  0x9c, 0x40, 0x00, 0x00, //       40000
  0x08, 0x00, 0x03, 0x00, // nla_len = 8, CTA_STATUS
  0x00, 0x00, 0x00, 0x08, //   IPS_CONFIRMED (no IPS_SEEN_REPLY: [UNREPLIED])
  0x08, 0x00, 0x08, 0x00, // nla_len = 8, CTA_MARK
  0x00, 0x00, 0x00, 0x00, //   0
  0x08, 0x00, 0x0c, 0x00, // nla_len = 8, CTA_ID
  0x64, 0x61, 0x3d, 0x33, //   1684094259
  0x08, 0x00, 0x0b, 0x00, // nla_len = 8, CTA_USE
  0x00, 0x00, 0x00, 0x01, //   1
  0x08, 0x00, 0x07, 0x00, // nla_len = 8, CTA_TIMEOUT
  0x00, 0x00, 0x00, 0x1d, //   29 seconds left
]

const udpRecord = {
  kind: 'entry',
  family: 2,
  orig: { src: '127.0.0.1', dst: '127.0.0.1', proto: 17, sport: 40000, dport: 5353 },
  reply: { src: '127.0.0.1', dst: '127.0.0.1', proto: 17, sport: 5353, dport: 40000 },
  status: 8,
  timeout: 29,
  mark: 0,
  id: 1684094259,
  use: 1,
}

t.test('IPCTNL_MSG_CT_NEW: an IPv4 UDP entry, and the delete that names it', async (t) => {
  t.equal(udpReply.length, 164, 'fixture length matches its nlmsg_len')
  t.strictSame(native.decode('conntrack', Buffer.from(udpReply)), [udpRecord])
  const del = encodes(t, { cmd: 'delete', family: 2, orig: udpRecord.orig, id: udpRecord.id }, [
    0x50, 0x00, 0x00, 0x00, // nlmsg_len = 80
    0x02, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_DELETE
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET
    0x34, 0x00, 0x01, 0x80, // nla_len = 52, CTA_TUPLE_ORIG | NLA_F_NESTED: the whole tuple
    0x14, 0x00, 0x01, 0x80, //   nla_len = 20, CTA_TUPLE_IP
    0x08, 0x00, 0x01, 0x00, //     CTA_IP_V4_SRC
    0x7f, 0x00, 0x00, 0x01, //       127.0.0.1
    0x08, 0x00, 0x02, 0x00, //     CTA_IP_V4_DST
    0x7f, 0x00, 0x00, 0x01, //       127.0.0.1
    0x1c, 0x00, 0x02, 0x80, //   nla_len = 28, CTA_TUPLE_PROTO
    0x05, 0x00, 0x01, 0x00, //     CTA_PROTO_NUM
    0x11, 0x00, 0x00, 0x00, //       IPPROTO_UDP
    0x06, 0x00, 0x02, 0x00, //     CTA_PROTO_SRC_PORT
    0x9c, 0x40, 0x00, 0x00, //       40000
    0x06, 0x00, 0x03, 0x00, //     CTA_PROTO_DST_PORT
    0x14, 0xe9, 0x00, 0x00, //       5353
    0x08, 0x00, 0x0c, 0x00, // nla_len = 8, CTA_ID: only the entry that was listed
    0x64, 0x61, 0x3d, 0x33, //   1684094259
  ])
  t.strictSame(rows(del.subarray(20, 72)), rows(udpReply.slice(20, 72)), 'CTA_TUPLE_ORIG: the same 52 bytes both ways')
})

// An IPv6 TCP entry in TIME_WAIT (`conntrack -L -f ipv6`: tcp 6 119 TIME_WAIT
// src=::1 dst=::1 sport=40001 dport=8080 src=::1 dst=::1 sport=8080 dport=40001
// [ASSURED] mark=0 use=1 id=3897107896), as Linux 6.18 sent it.
const tcp6Reply = [
  0x04, 0x01, 0x00, 0x00, // nlmsg_len = 260
  0x00, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_NEW
  0x22, 0x00, //             nlmsg_flags = NLM_F_MULTI | NLM_F_DUMP_FILTERED
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0x38, 0x5e, 0x00, 0x00, // nlmsg_pid
  0x0a, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET6
  0x4c, 0x00, 0x01, 0x80, // nla_len = 76, CTA_TUPLE_ORIG | NLA_F_NESTED
  0x2c, 0x00, 0x01, 0x80, //   nla_len = 44, CTA_TUPLE_IP
  0x14, 0x00, 0x03, 0x00, //     nla_len = 20, CTA_IP_V6_SRC
  0x00, 0x00, 0x00, 0x00, //       ::1
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01,
  0x14, 0x00, 0x04, 0x00, //     nla_len = 20, CTA_IP_V6_DST
  0x00, 0x00, 0x00, 0x00, //       ::1
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01,
  0x1c, 0x00, 0x02, 0x80, //   nla_len = 28, CTA_TUPLE_PROTO
  0x05, 0x00, 0x01, 0x00, //     CTA_PROTO_NUM
  0x06, 0x00, 0x00, 0x00, //       IPPROTO_TCP
  0x06, 0x00, 0x02, 0x00, //     CTA_PROTO_SRC_PORT
  0x9c, 0x41, 0x00, 0x00, //       40001
  0x06, 0x00, 0x03, 0x00, //     CTA_PROTO_DST_PORT
  0x1f, 0x90, 0x00, 0x00, //       8080
  0x4c, 0x00, 0x02, 0x80, // nla_len = 76, CTA_TUPLE_REPLY | NLA_F_NESTED
  0x2c, 0x00, 0x01, 0x80, //   nla_len = 44, CTA_TUPLE_IP
  0x14, 0x00, 0x03, 0x00, //     CTA_IP_V6_SRC
  0x00, 0x00, 0x00, 0x00, //       ::1
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01,
  0x14, 0x00, 0x04, 0x00, //     CTA_IP_V6_DST
  0x00, 0x00, 0x00, 0x00, //       ::1
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01,
  0x1c, 0x00, 0x02, 0x80, //   nla_len = 28, CTA_TUPLE_PROTO
  0x05, 0x00, 0x01, 0x00, //     CTA_PROTO_NUM
  0x06, 0x00, 0x00, 0x00, //       IPPROTO_TCP
  0x06, 0x00, 0x02, 0x00, //     CTA_PROTO_SRC_PORT
  0x1f, 0x90, 0x00, 0x00, //       8080
  0x06, 0x00, 0x03, 0x00, //     CTA_PROTO_DST_PORT
  0x9c, 0x41, 0x00, 0x00, //       40001
  0x08, 0x00, 0x03, 0x00, // nla_len = 8, CTA_STATUS
  0x00, 0x00, 0x00, 0x0e, //   IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED
  0x08, 0x00, 0x08, 0x00, // nla_len = 8, CTA_MARK
  0x00, 0x00, 0x00, 0x00, //   0
  0x08, 0x00, 0x0c, 0x00, // nla_len = 8, CTA_ID
  0xe8, 0x49, 0x25, 0xb8, //   3897107896
  0x08, 0x00, 0x0b, 0x00, // nla_len = 8, CTA_USE
  0x00, 0x00, 0x00, 0x01, //   1
  0x08, 0x00, 0x07, 0x00, // nla_len = 8, CTA_TIMEOUT
  0x00, 0x00, 0x00, 0x77, //   119 seconds
  0x30, 0x00, 0x04, 0x80, // nla_len = 48, CTA_PROTOINFO | NLA_F_NESTED
  0x2c, 0x00, 0x01, 0x80, //   nla_len = 44, CTA_PROTOINFO_TCP | NLA_F_NESTED
  0x05, 0x00, 0x01, 0x00, //     nla_len = 5, CTA_PROTOINFO_TCP_STATE
  0x07, 0x00, 0x00, 0x00, //       TCP_CONNTRACK_TIME_WAIT (7)
  0x05, 0x00, 0x02, 0x00, //     nla_len = 5, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL (skipped)
  0x0a, 0x00, 0x00, 0x00, //       10
  0x05, 0x00, 0x03, 0x00, //     nla_len = 5, CTA_PROTOINFO_TCP_WSCALE_REPLY (skipped)
  0x0a, 0x00, 0x00, 0x00, //       10
  0x06, 0x00, 0x04, 0x00, //     nla_len = 6, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL (skipped)
  0x23, 0x00, 0x00, 0x00, //       struct nf_ct_tcp_flags { flags, mask }
  0x06, 0x00, 0x05, 0x00, //     nla_len = 6, CTA_PROTOINFO_TCP_FLAGS_REPLY (skipped)
  0x27, 0x00, 0x00, 0x00, //       { flags, mask }
]

const tcp6Record = {
  kind: 'entry',
  family: 10,
  orig: { src: '::1', dst: '::1', proto: 6, sport: 40001, dport: 8080 },
  reply: { src: '::1', dst: '::1', proto: 6, sport: 8080, dport: 40001 },
  status: 0x0e,
  timeout: 119,
  mark: 0,
  id: 3897107896,
  use: 1,
  tcpState: 7,
}

t.test('IPCTNL_MSG_CT_NEW: an IPv6 TCP entry with its state; the delete names its zone too', async (t) => {
  t.equal(tcp6Reply.length, 260, 'fixture length matches its nlmsg_len')
  t.strictSame(native.decode('conntrack', Buffer.from(tcp6Reply)), [tcp6Record])
  const del = encodes(t, { cmd: 'delete', family: 10, orig: tcp6Record.orig, zone: 7, id: tcp6Record.id }, [
    0x70, 0x00, 0x00, 0x00, // nlmsg_len = 112
    0x02, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_DELETE
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x0a, 0x00, 0x00, 0x00, // nfgenmsg: AF_INET6
    0x4c, 0x00, 0x01, 0x80, // nla_len = 76, CTA_TUPLE_ORIG | NLA_F_NESTED
    0x2c, 0x00, 0x01, 0x80, //   nla_len = 44, CTA_TUPLE_IP
    0x14, 0x00, 0x03, 0x00, //     CTA_IP_V6_SRC
    0x00, 0x00, 0x00, 0x00, //       ::1
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01,
    0x14, 0x00, 0x04, 0x00, //     CTA_IP_V6_DST
    0x00, 0x00, 0x00, 0x00, //       ::1
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01,
    0x1c, 0x00, 0x02, 0x80, //   nla_len = 28, CTA_TUPLE_PROTO
    0x05, 0x00, 0x01, 0x00, //     CTA_PROTO_NUM
    0x06, 0x00, 0x00, 0x00, //       IPPROTO_TCP
    0x06, 0x00, 0x02, 0x00, //     CTA_PROTO_SRC_PORT
    0x9c, 0x41, 0x00, 0x00, //       40001
    0x06, 0x00, 0x03, 0x00, //     CTA_PROTO_DST_PORT
    0x1f, 0x90, 0x00, 0x00, //       8080
    0x06, 0x00, 0x12, 0x00, // nla_len = 6, CTA_ZONE (18)
    0x00, 0x07, 0x00, 0x00, //   7, big-endian, 2 pad
    0x08, 0x00, 0x0c, 0x00, // nla_len = 8, CTA_ID
    0xe8, 0x49, 0x25, 0xb8, //   3897107896
  ])
  t.strictSame(rows(del.subarray(20, 96)), rows(tcp6Reply.slice(20, 96)), 'CTA_TUPLE_ORIG: the same 76 bytes both ways')
})

// The reply to IPCTNL_MSG_CT_GET_STATS (`conntrack -C`), as Linux 6.18 sent it.
const statsReply = [
  0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
  0x05, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_GET_STATS
  0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0x61, 0x5e, 0x00, 0x00, // nlmsg_pid
  0x00, 0x00, 0x00, 0x00, // nfgenmsg: AF_UNSPEC
  0x08, 0x00, 0x01, 0x00, // nla_len = 8, CTA_STATS_GLOBAL_ENTRIES
  0x00, 0x00, 0x00, 0x01, //   1 (this network namespace's table)
  0x08, 0x00, 0x02, 0x00, // nla_len = 8, CTA_STATS_GLOBAL_MAX_ENTRIES
  0x00, 0x04, 0x00, 0x00, //   262144 (nf_conntrack_max)
]

t.test('IPCTNL_MSG_CT_GET_STATS reply: entries and the table limit', async (t) => {
  t.equal(statsReply.length, 36, 'fixture length matches its nlmsg_len')
  t.strictSame(native.decode('conntrack', Buffer.from(statsReply)), [{ kind: 'stats', entries: 1, maxEntries: 262144 }])
})

t.test('decode skips control messages, other subsystems and commands it does not parse', async (t) => {
  const noise = [
    ...DONE_MESSAGE,
    0x14, 0x00, 0x00, 0x00, // nlmsg_len = 20
    0x00, 0x06, //             nlmsg_type = NFNL_SUBSYS_IPSET (6) << 8: not conntrack
    0x02, 0x00, //             nlmsg_flags
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq
    0xcd, 0xab, 0x00, 0x00, // nlmsg_pid
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x14, 0x00, 0x00, 0x00, // nlmsg_len = 20
    0x00, 0x02, //             nlmsg_type = NFNL_SUBSYS_CTNETLINK_EXP (2) << 8 | IPCTNL_MSG_EXP_NEW: expectations, not ours
    0x02, 0x00, //             nlmsg_flags
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq
    0xcd, 0xab, 0x00, 0x00, // nlmsg_pid
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x14, 0x00, 0x00, 0x00, // nlmsg_len = 20
    0x00, 0x01, //             nlmsg_type = CTNETLINK | IPCTNL_MSG_CT_NEW ...
    0x02, 0x00, //             nlmsg_flags
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq
    0xcd, 0xab, 0x00, 0x00, // nlmsg_pid
    0x07, 0x00, 0x00, 0x00, // ... of nfgen_family NFPROTO_BRIDGE (7): not an IP entry
  ]
  t.strictSame(native.decode('conntrack', Buffer.from([...noise, ...statsReply])), [{ kind: 'stats', entries: 1, maxEntries: 262144 }])
})

t.test('a malformed attribute refuses the message with EBADMSG instead of breaking the decoder', async (t) => {
  const bad = Buffer.from(udpReply)
  bad.writeUInt16LE(200, 124) // CTA_STATUS's nla_len: past the end of the message
  refusesMalformed(t, 'conntrack', bad, 'entry')
  t.strictSame(native.decode('conntrack', Buffer.from(udpReply).subarray(0, 100)), [], 'a message longer than the buffer is not decoded')
})

t.test('the codec refuses a delete that would flush the table, and what lib/conntrack never sends', async (t) => {
  t.throws(() => native.encode('conntrack', 0, [{ cmd: 'delete', family: 2 }]), /without one the kernel flushes every entry/)
  t.throws(() => native.encode('conntrack', 0, [{ cmd: 'delete', family: 2, orig: { dst: '10.0.0.1', proto: 17 } }]), /needs src, dst and proto/)
  t.throws(() => native.encode('conntrack', 0, [{ cmd: 'list', family: 0 }]), /AF_INET or AF_INET6/)
  t.throws(() => native.encode('conntrack', 0, [{ cmd: 'list', family: 2, orig: { dst: 'fd00::1' } }]), /not an IPv4 address in tuple.dst/)
  t.throws(() => native.encode('conntrack', 0, [{ cmd: 'flush' }]), /unknown cmd flush/)
})
