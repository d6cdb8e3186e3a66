// Byte fixtures for every rtnetlink message tsproxy sends or parses, commented
// field by field from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>
// and <linux/if_addr.h>. Requests: encode(op) must equal the bytes. Replies:
// decode(bytes) must equal the record (the address replies are recorded from
// Linux 6.18 as they came; the link reply is trimmed from a recording, keeping
// attributes we skip); and our own requests, which share the reply's message
// type (RTM_NEWLINK, RTM_NEWADDR), decode to the same record.
//
// Numbers: netlink headers and rtnetlink attributes are host order
// (little-endian here); addresses are network order, 4 or 16 bytes.
import t, { type Test } from 'tap'
import { native } from '../../dist/native.js'
import { DONE_MESSAGE, encoder, refusesMalformed, rows } from '../support/fixtures.js'

const encodes = encoder('route', 0)

// =========================================================================================
// Links
// =========================================================================================

t.test('newLink: a dummy, down (ip link add kube-ipvs0 type dummy)', async (t) => {
  encodes(t, { cmd: 'newLink', name: 'kube-ipvs0', kind: 'dummy' }, [
    0x40, 0x00, 0x00, 0x00, // nlmsg_len = 64
    0x10, 0x00, //             nlmsg_type = RTM_NEWLINK (16)
    0x05, 0x06, //             nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL (0x200) | NLM_F_CREATE (0x400)
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: ifi_family = AF_UNSPEC, pad, ifi_type = 0
    0x00, 0x00, 0x00, 0x00, //   ifi_index = 0 (the kernel picks one)
    0x00, 0x00, 0x00, 0x00, //   ifi_flags = 0: created down
    0x00, 0x00, 0x00, 0x00, //   ifi_change = 0
    0x0f, 0x00, 0x03, 0x00, // nla_len = 15, IFLA_IFNAME
    0x6b, 0x75, 0x62, 0x65, //   "kube"
    0x2d, 0x69, 0x70, 0x76, //   "-ipv"
    0x73, 0x30, 0x00, 0x00, //   "s0\0", 1 pad
    0x10, 0x00, 0x12, 0x80, // nla_len = 16, IFLA_LINKINFO | NLA_F_NESTED
    0x0a, 0x00, 0x01, 0x00, //   nla_len = 10, IFLA_INFO_KIND
    0x64, 0x75, 0x6d, 0x6d, //     "dumm"
    0x79, 0x00, 0x00, 0x00, //     "y\0", 2 pad
  ])
})

t.test('newLink: up, with an MTU', async (t) => {
  encodes(t, { cmd: 'newLink', name: 'kube-ipvs0', kind: 'dummy', up: true, mtu: 1500 }, [
    0x48, 0x00, 0x00, 0x00, // nlmsg_len = 72
    0x10, 0x00, //             nlmsg_type = RTM_NEWLINK
    0x05, 0x06, //             nlmsg_flags = REQUEST | ACK | EXCL | CREATE
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC, ifi_type 0
    0x00, 0x00, 0x00, 0x00, //   ifi_index = 0
    0x01, 0x00, 0x00, 0x00, //   ifi_flags = IFF_UP
    0x01, 0x00, 0x00, 0x00, //   ifi_change = IFF_UP: only that bit is set from ifi_flags
    0x0f, 0x00, 0x03, 0x00, // nla_len = 15, IFLA_IFNAME
    0x6b, 0x75, 0x62, 0x65, //   "kube-ipvs0\0"
    0x2d, 0x69, 0x70, 0x76,
    0x73, 0x30, 0x00, 0x00,
    0x08, 0x00, 0x04, 0x00, // nla_len = 8, IFLA_MTU
    0xdc, 0x05, 0x00, 0x00, //   1500
    0x10, 0x00, 0x12, 0x80, // nla_len = 16, IFLA_LINKINFO | NLA_F_NESTED
    0x0a, 0x00, 0x01, 0x00, //   nla_len = 10, IFLA_INFO_KIND
    0x64, 0x75, 0x6d, 0x6d, //     "dummy\0"
    0x79, 0x00, 0x00, 0x00,
  ])
})

t.test('setLink: up by name (ip link set kube-ipvs0 up)', async (t) => {
  encodes(t, { cmd: 'setLink', name: 'kube-ipvs0', up: true }, [
    0x30, 0x00, 0x00, 0x00, // nlmsg_len = 48
    0x10, 0x00, //             nlmsg_type = RTM_NEWLINK: without NLM_F_CREATE it changes a link
    0x05, 0x00, //             nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC
    0x00, 0x00, 0x00, 0x00, //   ifi_index = 0: the kernel finds the link by IFLA_IFNAME
    0x01, 0x00, 0x00, 0x00, //   ifi_flags = IFF_UP
    0x01, 0x00, 0x00, 0x00, //   ifi_change = IFF_UP
    0x0f, 0x00, 0x03, 0x00, // nla_len = 15, IFLA_IFNAME
    0x6b, 0x75, 0x62, 0x65, //   "kube-ipvs0\0"
    0x2d, 0x69, 0x70, 0x76,
    0x73, 0x30, 0x00, 0x00,
  ])
})

t.test('setLink: down by index, and an MTU', async (t) => {
  encodes(t, { cmd: 'setLink', index: 7, up: false, mtu: 9000 }, [
    0x28, 0x00, 0x00, 0x00, // nlmsg_len = 40
    0x10, 0x00, //             nlmsg_type = RTM_NEWLINK
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC
    0x07, 0x00, 0x00, 0x00, //   ifi_index = 7
    0x00, 0x00, 0x00, 0x00, //   ifi_flags = 0: IFF_UP cleared ...
    0x01, 0x00, 0x00, 0x00, //   ifi_change = IFF_UP: ... because it is named here
    0x08, 0x00, 0x04, 0x00, // nla_len = 8, IFLA_MTU
    0x28, 0x23, 0x00, 0x00, //   9000
  ])
})

t.test('setLink: MTU only leaves the flags alone', async (t) => {
  encodes(t, { cmd: 'setLink', index: 7, mtu: 1400 }, [
    0x28, 0x00, 0x00, 0x00, // nlmsg_len = 40
    0x10, 0x00, //             nlmsg_type = RTM_NEWLINK
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC
    0x07, 0x00, 0x00, 0x00, //   ifi_index = 7
    0x00, 0x00, 0x00, 0x00, //   ifi_flags = 0
    0x00, 0x00, 0x00, 0x00, //   ifi_change = 0: no flag changes
    0x08, 0x00, 0x04, 0x00, // nla_len = 8, IFLA_MTU
    0x78, 0x05, 0x00, 0x00, //   1400
  ])
})

t.test('delLink by name, and by index', async (t) => {
  encodes(t, { cmd: 'delLink', name: 'kube-ipvs0' }, [
    0x30, 0x00, 0x00, 0x00, // nlmsg_len = 48
    0x11, 0x00, //             nlmsg_type = RTM_DELLINK (17)
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC
    0x00, 0x00, 0x00, 0x00, //   ifi_index = 0: by name
    0x00, 0x00, 0x00, 0x00, //   ifi_flags
    0x00, 0x00, 0x00, 0x00, //   ifi_change
    0x0f, 0x00, 0x03, 0x00, // nla_len = 15, IFLA_IFNAME
    0x6b, 0x75, 0x62, 0x65, //   "kube-ipvs0\0"
    0x2d, 0x69, 0x70, 0x76,
    0x73, 0x30, 0x00, 0x00,
  ])
  encodes(t, { cmd: 'delLink', index: 300 }, [
    0x20, 0x00, 0x00, 0x00, // nlmsg_len = 32
    0x11, 0x00, //             nlmsg_type = RTM_DELLINK
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC
    0x2c, 0x01, 0x00, 0x00, //   ifi_index = 300, no attributes
    0x00, 0x00, 0x00, 0x00, //   ifi_flags
    0x00, 0x00, 0x00, 0x00, //   ifi_change
  ])
})

t.test('getLink by name; listLinks is a dump of every link', async (t) => {
  encodes(t, { cmd: 'getLink', name: 'lo' }, [
    0x28, 0x00, 0x00, 0x00, // nlmsg_len = 40
    0x12, 0x00, //             nlmsg_type = RTM_GETLINK (18)
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK: one RTM_NEWLINK reply, then the ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC
    0x00, 0x00, 0x00, 0x00, //   ifi_index = 0
    0x00, 0x00, 0x00, 0x00, //   ifi_flags
    0x00, 0x00, 0x00, 0x00, //   ifi_change
    0x07, 0x00, 0x03, 0x00, // nla_len = 7, IFLA_IFNAME
    0x6c, 0x6f, 0x00, 0x00, //   "lo\0", 1 pad
  ])
  encodes(t, { cmd: 'listLinks' }, [
    0x20, 0x00, 0x00, 0x00, // nlmsg_len = 32
    0x12, 0x00, //             nlmsg_type = RTM_GETLINK
    0x01, 0x03, //             nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP (0x300): ends with NLMSG_DONE
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC (every link)
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
  ])
})

// A dummy link as the kernel describes it (RTM_NEWLINK, in a dump), trimmed
// from a recording: the attributes we read, and some we skip (IFLA_TXQLEN,
// IFLA_LINKMODE, IFLA_GROUP, IFLA_BROADCAST, and one above IFLA_MAX).
const dummyReply = [
  0x88, 0x00, 0x00, 0x00, // nlmsg_len = 136
  0x10, 0x00, //             nlmsg_type = RTM_NEWLINK
  0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI (a dump's message)
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0xcd, 0xab, 0x00, 0x00, // nlmsg_pid = our port
  0x00, 0x00, 0x01, 0x00, // ifinfomsg: ifi_family = AF_UNSPEC, pad, ifi_type = ARPHRD_ETHER (1)
  0x05, 0x00, 0x00, 0x00, //   ifi_index = 5
  0xc3, 0x00, 0x01, 0x00, //   ifi_flags = UP | BROADCAST | RUNNING | NOARP | LOWER_UP (0x100c3)
  0x00, 0x00, 0x00, 0x00, //   ifi_change = 0
  0x0f, 0x00, 0x03, 0x00, // nla_len = 15, IFLA_IFNAME
  0x6b, 0x75, 0x62, 0x65, //   "kube-ipvs0\0"
  0x2d, 0x69, 0x70, 0x76,
  0x73, 0x30, 0x00, 0x00,
  0x08, 0x00, 0x0d, 0x00, // nla_len = 8, IFLA_TXQLEN (skipped)
  0xe8, 0x03, 0x00, 0x00, //   1000
  0x05, 0x00, 0x10, 0x00, // nla_len = 5, IFLA_OPERSTATE
  0x00, 0x00, 0x00, 0x00, //   IF_OPER_UNKNOWN (0): a dummy has no carrier to report, 3 pad
  0x05, 0x00, 0x11, 0x00, // nla_len = 5, IFLA_LINKMODE (skipped)
  0x00, 0x00, 0x00, 0x00, //   0, 3 pad
  0x08, 0x00, 0x04, 0x00, // nla_len = 8, IFLA_MTU
  0xdc, 0x05, 0x00, 0x00, //   1500
  0x08, 0x00, 0x1b, 0x00, // nla_len = 8, IFLA_GROUP (skipped)
  0x00, 0x00, 0x00, 0x00, //   0
  0x0a, 0x00, 0x01, 0x00, // nla_len = 10, IFLA_ADDRESS (the MAC)
  0x9e, 0x3c, 0x11, 0x22, //   9e:3c:11:22:33:44
  0x33, 0x44, 0x00, 0x00, //   2 pad
  0x0a, 0x00, 0x02, 0x00, // nla_len = 10, IFLA_BROADCAST (skipped)
  0xff, 0xff, 0xff, 0xff, //   ff:ff:ff:ff:ff:ff
  0xff, 0xff, 0x00, 0x00,
  0x10, 0x00, 0x12, 0x00, // nla_len = 16, IFLA_LINKINFO (the kernel nests it without NLA_F_NESTED)
  0x0a, 0x00, 0x01, 0x00, //   nla_len = 10, IFLA_INFO_KIND
  0x64, 0x75, 0x6d, 0x6d, //     "dummy\0", 2 pad
  0x79, 0x00, 0x00, 0x00,
  0x08, 0x00, 0xff, 0x7f, // nla_len = 8, type 0x7fff: above IFLA_MAX, from a newer kernel
  0x01, 0x02, 0x03, 0x04, //   ignored
]

const dummyRecord = {
  kind: 'link',
  index: 5,
  name: 'kube-ipvs0',
  type: 1,
  flags: 0x100c3,
  mtu: 1500,
  operState: 0,
  mac: Buffer.from([0x9e, 0x3c, 0x11, 0x22, 0x33, 0x44]),
  linkKind: 'dummy',
}

t.test('RTM_NEWLINK reply: a dummy link; attributes we skip or do not know are ignored', async (t) => {
  t.equal(dummyReply.length, 136, 'fixture length matches its nlmsg_len')
  t.strictSame(native.decode('route', Buffer.from(dummyReply)), [dummyRecord])
  // Our create request is an RTM_NEWLINK too: it reads back as the link it asks for.
  const ours = native.encode('route', 0, [{ cmd: 'newLink', name: 'kube-ipvs0', kind: 'dummy', up: true, mtu: 1500 }], 1)
  t.strictSame(native.decode('route', ours), [{ kind: 'link', index: 0, name: 'kube-ipvs0', type: 0, flags: 1, mtu: 1500, linkKind: 'dummy' }], 'our request decodes to its own link')
  // The LINKINFO nest: ours says NLA_F_NESTED, the kernel's does not; both read the same.
  const kernelNest = Buffer.from(dummyReply).subarray(112, 128)
  const ourNest = ours.subarray(56, 72)
  t.strictSame(rows(ourNest.subarray(4)), rows(kernelNest.subarray(4)), 'the same IFLA_INFO_KIND both ways')
  t.equal(ourNest.readUInt16LE(2), 0x8012, 'ours: IFLA_LINKINFO | NLA_F_NESTED')
  t.equal(kernelNest.readUInt16LE(2), 0x0012, "the kernel's: IFLA_LINKINFO")
})

// lo, from a dump: no IFLA_LINKINFO (not a virtual link of a kind), MAC all zero.
const loReply = [
  0x3c, 0x00, 0x00, 0x00, // nlmsg_len = 60
  0x10, 0x00, //             nlmsg_type = RTM_NEWLINK
  0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0xcd, 0xab, 0x00, 0x00, // nlmsg_pid
  0x00, 0x00, 0x04, 0x03, // ifinfomsg: AF_UNSPEC, pad, ifi_type = ARPHRD_LOOPBACK (772)
  0x01, 0x00, 0x00, 0x00, //   ifi_index = 1
  0x49, 0x00, 0x01, 0x00, //   ifi_flags = UP | LOOPBACK | RUNNING | LOWER_UP (0x10049)
  0x00, 0x00, 0x00, 0x00, //   ifi_change
  0x07, 0x00, 0x03, 0x00, // nla_len = 7, IFLA_IFNAME
  0x6c, 0x6f, 0x00, 0x00, //   "lo\0"
  0x08, 0x00, 0x04, 0x00, // nla_len = 8, IFLA_MTU
  0x00, 0x00, 0x01, 0x00, //   65536
  0x0a, 0x00, 0x01, 0x00, // nla_len = 10, IFLA_ADDRESS
  0x00, 0x00, 0x00, 0x00, //   00:00:00:00:00:00
  0x00, 0x00, 0x00, 0x00,
]

t.test('RTM_NEWLINK reply: lo, no link kind, no operstate', async (t) => {
  t.equal(loReply.length, 60, 'fixture length matches its nlmsg_len')
  t.strictSame(native.decode('route', Buffer.from(loReply)), [
    { kind: 'link', index: 1, name: 'lo', type: 772, flags: 0x10049, mtu: 65536, mac: Buffer.alloc(6) },
  ])
})

// =========================================================================================
// Addresses
// =========================================================================================

t.test('newAddr: an IPv4 VIP, /32 noprefixroute (bindAddress)', async (t) => {
  encodes(t, { cmd: 'newAddr', family: 2, index: 5, prefix: 32, address: '10.96.0.10', flags: 0x200, scope: 0 }, [
    0x30, 0x00, 0x00, 0x00, // nlmsg_len = 48
    0x14, 0x00, //             nlmsg_type = RTM_NEWADDR (20)
    0x05, 0x06, //             nlmsg_flags = REQUEST | ACK | EXCL | CREATE: an address already there is EEXIST
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x20, 0x00, 0x00, // ifaddrmsg: ifa_family = AF_INET, ifa_prefixlen = 32, ifa_flags = 0 (low 8 bits), ifa_scope = RT_SCOPE_UNIVERSE
    0x05, 0x00, 0x00, 0x00, //   ifa_index = 5
    0x08, 0x00, 0x02, 0x00, // nla_len = 8, IFA_LOCAL: the address
    0x0a, 0x60, 0x00, 0x0a, //   10.96.0.10
    0x08, 0x00, 0x01, 0x00, // nla_len = 8, IFA_ADDRESS: the peer, the address again (as iproute2)
    0x0a, 0x60, 0x00, 0x0a, //   10.96.0.10
    0x08, 0x00, 0x08, 0x00, // nla_len = 8, IFA_FLAGS (u32: room for bits past 8)
    0x00, 0x02, 0x00, 0x00, //   IFA_F_NOPREFIXROUTE (0x200)
  ])
})

t.test('newAddr: an IPv6 VIP, /128 nodad noprefixroute', async (t) => {
  encodes(t, { cmd: 'newAddr', family: 10, index: 5, prefix: 128, address: 'fd00::10', flags: 0x202, scope: 0 }, [
    0x48, 0x00, 0x00, 0x00, // nlmsg_len = 72
    0x14, 0x00, //             nlmsg_type = RTM_NEWADDR
    0x05, 0x06, //             nlmsg_flags = REQUEST | ACK | EXCL | CREATE
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x0a, 0x80, 0x02, 0x00, // ifaddrmsg: AF_INET6, prefixlen 128, ifa_flags = IFA_F_NODAD (the low 8 bits), scope universe
    0x05, 0x00, 0x00, 0x00, //   ifa_index = 5
    0x14, 0x00, 0x02, 0x00, // nla_len = 20, IFA_LOCAL
    0xfd, 0x00, 0x00, 0x00, //   fd00::10
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x10,
    0x14, 0x00, 0x01, 0x00, // nla_len = 20, IFA_ADDRESS
    0xfd, 0x00, 0x00, 0x00, //   fd00::10
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x10,
    0x08, 0x00, 0x08, 0x00, // nla_len = 8, IFA_FLAGS
    0x02, 0x02, 0x00, 0x00, //   IFA_F_NODAD | IFA_F_NOPREFIXROUTE (0x202)
  ])
})

t.test('newAddr: a /24 with a peer and link scope, no flags (no IFA_FLAGS attribute)', async (t) => {
  encodes(t, { cmd: 'newAddr', family: 2, index: 3, prefix: 24, address: '192.168.7.1', peer: '192.168.7.2', flags: 0, scope: 253 }, [
    0x28, 0x00, 0x00, 0x00, // nlmsg_len = 40
    0x14, 0x00, //             nlmsg_type = RTM_NEWADDR
    0x05, 0x06, //             nlmsg_flags = REQUEST | ACK | EXCL | CREATE
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x18, 0x00, 0xfd, // ifaddrmsg: AF_INET, prefixlen 24, ifa_flags 0, ifa_scope = RT_SCOPE_LINK (253)
    0x03, 0x00, 0x00, 0x00, //   ifa_index = 3
    0x08, 0x00, 0x02, 0x00, // nla_len = 8, IFA_LOCAL
    0xc0, 0xa8, 0x07, 0x01, //   192.168.7.1
    0x08, 0x00, 0x01, 0x00, // nla_len = 8, IFA_ADDRESS: the peer
    0xc0, 0xa8, 0x07, 0x02, //   192.168.7.2
  ])
})

t.test('delAddr: IPv4 and IPv6, the key only (no flags, no scope)', async (t) => {
  encodes(t, { cmd: 'delAddr', family: 2, index: 5, prefix: 32, address: '10.96.0.10', flags: 0x200, scope: 254 }, [
    0x28, 0x00, 0x00, 0x00, // nlmsg_len = 40
    0x15, 0x00, //             nlmsg_type = RTM_DELADDR (21)
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x02, 0x20, 0x00, 0x00, // ifaddrmsg: AF_INET, prefixlen 32 (must match), flags 0, scope 0
    0x05, 0x00, 0x00, 0x00, //   ifa_index = 5
    0x08, 0x00, 0x02, 0x00, // nla_len = 8, IFA_LOCAL
    0x0a, 0x60, 0x00, 0x0a, //   10.96.0.10
    0x08, 0x00, 0x01, 0x00, // nla_len = 8, IFA_ADDRESS
    0x0a, 0x60, 0x00, 0x0a, //   10.96.0.10
  ])
  encodes(t, { cmd: 'delAddr', family: 10, index: 5, prefix: 128, address: 'fd00::10' }, [
    0x40, 0x00, 0x00, 0x00, // nlmsg_len = 64
    0x15, 0x00, //             nlmsg_type = RTM_DELADDR
    0x05, 0x00, //             nlmsg_flags = REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x0a, 0x80, 0x00, 0x00, // ifaddrmsg: AF_INET6, prefixlen 128
    0x05, 0x00, 0x00, 0x00, //   ifa_index = 5
    0x14, 0x00, 0x02, 0x00, // nla_len = 20, IFA_LOCAL
    0xfd, 0x00, 0x00, 0x00, //   fd00::10
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x10,
    0x14, 0x00, 0x01, 0x00, // nla_len = 20, IFA_ADDRESS
    0xfd, 0x00, 0x00, 0x00, //   fd00::10
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x10,
  ])
})

t.test('listAddrs: one dump for every family, or one', async (t) => {
  encodes(t, { cmd: 'listAddrs', family: 0 }, [
    0x18, 0x00, 0x00, 0x00, // nlmsg_len = 24
    0x16, 0x00, //             nlmsg_type = RTM_GETADDR (22)
    0x01, 0x03, //             nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x00, 0x00, 0x00, 0x00, // ifaddrmsg: ifa_family = AF_UNSPEC (IPv4 and IPv6), the rest 0
    0x00, 0x00, 0x00, 0x00, //   ifa_index = 0
  ])
  encodes(t, { cmd: 'listAddrs', family: 10 }, [
    0x18, 0x00, 0x00, 0x00, // nlmsg_len = 24
    0x16, 0x00, //             nlmsg_type = RTM_GETADDR
    0x01, 0x03, //             nlmsg_flags = REQUEST | DUMP
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    0x0a, 0x00, 0x00, 0x00, // ifaddrmsg: ifa_family = AF_INET6
    0x00, 0x00, 0x00, 0x00,
  ])
})

// Three RTM_NEWADDR messages of one dump, recorded from Linux 6.18 (`ip addr
// add 10.96.0.10/32 dev lo noprefixroute` in a fresh netns), as they came.
const loV4Reply = [
  0x4c, 0x00, 0x00, 0x00, // nlmsg_len = 76
  0x14, 0x00, //             nlmsg_type = RTM_NEWADDR
  0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0x5c, 0x57, 0x00, 0x00, // nlmsg_pid
  0x02, 0x08, 0x80, 0xfe, // ifaddrmsg: AF_INET, prefixlen 8, ifa_flags = IFA_F_PERMANENT, scope = RT_SCOPE_HOST (254)
  0x01, 0x00, 0x00, 0x00, //   ifa_index = 1
  0x08, 0x00, 0x01, 0x00, // nla_len = 8, IFA_ADDRESS (the kernel sends it first)
  0x7f, 0x00, 0x00, 0x01, //   127.0.0.1
  0x08, 0x00, 0x02, 0x00, // nla_len = 8, IFA_LOCAL
  0x7f, 0x00, 0x00, 0x01, //   127.0.0.1
  0x07, 0x00, 0x03, 0x00, // nla_len = 7, IFA_LABEL
  0x6c, 0x6f, 0x00, 0x00, //   "lo\0"
  0x08, 0x00, 0x08, 0x00, // nla_len = 8, IFA_FLAGS
  0x80, 0x00, 0x00, 0x00, //   IFA_F_PERMANENT
  0x14, 0x00, 0x06, 0x00, // nla_len = 20, IFA_CACHEINFO (struct ifa_cacheinfo)
  0xff, 0xff, 0xff, 0xff, //   ifa_prefered = forever
  0xff, 0xff, 0xff, 0xff, //   ifa_valid = forever
  0xe5, 0x32, 0x08, 0x00, //   cstamp (hundredths of a second since boot)
  0xe5, 0x32, 0x08, 0x00, //   tstamp
]
const vipReply = [
  0x4c, 0x00, 0x00, 0x00, // nlmsg_len = 76
  0x14, 0x00, //             nlmsg_type = RTM_NEWADDR
  0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0x5c, 0x57, 0x00, 0x00, // nlmsg_pid
  0x02, 0x20, 0x80, 0x00, // ifaddrmsg: AF_INET, prefixlen 32, ifa_flags = IFA_F_PERMANENT, scope universe
  0x01, 0x00, 0x00, 0x00, //   ifa_index = 1
  0x08, 0x00, 0x01, 0x00, // nla_len = 8, IFA_ADDRESS
  0x0a, 0x60, 0x00, 0x0a, //   10.96.0.10
  0x08, 0x00, 0x02, 0x00, // nla_len = 8, IFA_LOCAL
  0x0a, 0x60, 0x00, 0x0a, //   10.96.0.10
  0x07, 0x00, 0x03, 0x00, // nla_len = 7, IFA_LABEL
  0x6c, 0x6f, 0x00, 0x00, //   "lo\0"
  0x08, 0x00, 0x08, 0x00, // nla_len = 8, IFA_FLAGS
  0x80, 0x02, 0x00, 0x00, //   IFA_F_PERMANENT | IFA_F_NOPREFIXROUTE (0x280): the header's u8 cannot say the second
  0x14, 0x00, 0x06, 0x00, // nla_len = 20, IFA_CACHEINFO
  0xff, 0xff, 0xff, 0xff, //   ifa_prefered = forever
  0xff, 0xff, 0xff, 0xff, //   ifa_valid = forever
  0xeb, 0x32, 0x08, 0x00, //   cstamp
  0xeb, 0x32, 0x08, 0x00, //   tstamp
]
const loV6Reply = [
  0x50, 0x00, 0x00, 0x00, // nlmsg_len = 80
  0x14, 0x00, //             nlmsg_type = RTM_NEWADDR
  0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0x5c, 0x57, 0x00, 0x00, // nlmsg_pid
  0x0a, 0x80, 0x80, 0xfe, // ifaddrmsg: AF_INET6, prefixlen 128, IFA_F_PERMANENT, RT_SCOPE_HOST
  0x01, 0x00, 0x00, 0x00, //   ifa_index = 1
  0x14, 0x00, 0x01, 0x00, // nla_len = 20, IFA_ADDRESS: IPv6 sends no IFA_LOCAL without a peer
  0x00, 0x00, 0x00, 0x00, //   ::1
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01,
  0x14, 0x00, 0x06, 0x00, // nla_len = 20, IFA_CACHEINFO
  0xff, 0xff, 0xff, 0xff, //   ifa_prefered = forever
  0xff, 0xff, 0xff, 0xff, //   ifa_valid = forever
  0xe5, 0x32, 0x08, 0x00, //   cstamp
  0xe5, 0x32, 0x08, 0x00, //   tstamp
  0x08, 0x00, 0x08, 0x00, // nla_len = 8, IFA_FLAGS
  0x80, 0x00, 0x00, 0x00, //   IFA_F_PERMANENT
  0x05, 0x00, 0x0b, 0x00, // nla_len = 5, IFA_PROTO (6.0+; skipped)
  0x01, 0x00, 0x00, 0x00, //   IFAPROT_KERNEL_LO, 3 pad
]

const forever = 0xffffffff
const loV4Record = { kind: 'address', family: 2, prefix: 8, index: 1, scope: 254, flags: 0x80, address: '127.0.0.1', label: 'lo', validLifetime: forever, preferredLifetime: forever }
const vipRecord = { kind: 'address', family: 2, prefix: 32, index: 1, scope: 0, flags: 0x280, address: '10.96.0.10', label: 'lo', validLifetime: forever, preferredLifetime: forever }
const loV6Record = { kind: 'address', family: 10, prefix: 128, index: 1, scope: 254, flags: 0x80, address: '::1', validLifetime: forever, preferredLifetime: forever }

t.test('RTM_NEWADDR replies: IPv4 (LOCAL, ADDRESS, LABEL, FLAGS past 8 bits) and IPv6 (ADDRESS alone)', async (t) => {
  t.equal(loV4Reply.length + vipReply.length + loV6Reply.length, 76 + 76 + 80, 'fixture lengths match their nlmsg_lens')
  t.strictSame(native.decode('route', Buffer.from([...loV4Reply, ...vipReply, ...loV6Reply])), [loV4Record, vipRecord, loV6Record])
})

t.test('our RTM_NEWADDR requests read back as the addresses they add', async (t) => {
  const v4 = native.encode('route', 0, [{ cmd: 'newAddr', family: 2, index: 1, prefix: 32, address: '10.96.0.10', flags: 0x200, scope: 0 }], 1)
  t.strictSame(native.decode('route', v4), [{ kind: 'address', family: 2, prefix: 32, index: 1, scope: 0, flags: 0x200, address: '10.96.0.10' }])
  // The kernel's own IFA_ADDRESS / IFA_LOCAL attributes and ours: the same 16 bytes, in the other order.
  const kernel = Buffer.from(vipReply).subarray(24, 40)
  t.strictSame(rows(Buffer.concat([v4.subarray(32, 40), v4.subarray(24, 32)])), rows(kernel), 'IFA_ADDRESS + IFA_LOCAL: the same bytes both ways')
  const v6 = native.encode('route', 0, [{ cmd: 'newAddr', family: 10, index: 1, prefix: 128, address: 'fd00::10', flags: 0x202, scope: 0 }], 1)
  t.strictSame(native.decode('route', v6), [{ kind: 'address', family: 10, prefix: 128, index: 1, scope: 0, flags: 0x202, address: 'fd00::10' }])
  const peer = native.encode('route', 0, [{ cmd: 'newAddr', family: 2, index: 3, prefix: 24, address: '192.168.7.1', peer: '192.168.7.2', scope: 253 }], 1)
  t.strictSame(native.decode('route', peer), [{ kind: 'address', family: 2, prefix: 24, index: 3, scope: 253, flags: 0, address: '192.168.7.1', peer: '192.168.7.2' }], 'a peer differs from the local address: both read')
})

t.test('decode skips control messages, other families and types it does not parse', async (t) => {
  const noise = [
    ...DONE_MESSAGE,
    0x1c, 0x00, 0x00, 0x00, // nlmsg_len = 28
    0x18, 0x00, //             nlmsg_type = RTM_NEWROUTE (24): not ours to parse
    0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq
    0xcd, 0xab, 0x00, 0x00, // nlmsg_pid
    0x02, 0x20, 0x00, 0x00, // rtmsg ...
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x18, 0x00, 0x00, 0x00, // nlmsg_len = 24
    0x14, 0x00, //             nlmsg_type = RTM_NEWADDR ...
    0x02, 0x00, //             nlmsg_flags
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq
    0xcd, 0xab, 0x00, 0x00, // nlmsg_pid
    0x07, 0x00, 0x00, 0x00, // ... of family AF_BRIDGE (7): not an IP address
    0x01, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x00, 0x00, // nlmsg_len = 16: an RTM_NEWLINK too short for its ifinfomsg
    0x10, 0x00, //             nlmsg_type = RTM_NEWLINK
    0x02, 0x00,
    0x01, 0x00, 0x00, 0x00,
    0xcd, 0xab, 0x00, 0x00,
  ]
  t.strictSame(native.decode('route', Buffer.from([...noise, ...loV6Reply])), [loV6Record])
})

t.test('a malformed attribute refuses the message with EBADMSG instead of breaking the decoder', async (t) => {
  const bad = Buffer.from(vipReply)
  bad.writeUInt16LE(200, 40) // IFA_LABEL's nla_len: past the end of the message
  refusesMalformed(t, 'route', bad, 'address')
  t.strictSame(native.decode('route', Buffer.from(vipReply).subarray(0, 40)), [], 'a message longer than the buffer is not decoded')
})

t.test('the codec refuses what lib/route never sends', async (t) => {
  t.throws(() => native.encode('route', 0, [{ cmd: 'newRoute' }]), /unknown cmd newRoute/)
  t.throws(() => native.encode('route', 0, [{ cmd: 'newAddr', family: 7, index: 1, address: '10.0.0.1' }]), /AF_INET or AF_INET6/)
  t.throws(() => native.encode('route', 0, [{ cmd: 'newAddr', family: 2, index: 1, prefix: 32, address: 'fd00::1' }]), /not an IPv4 address in address/)
  t.throws(() => native.encode('route', 0, [{ cmd: 'newAddr', family: 2, index: 1, prefix: 33, address: '10.0.0.1' }]), /out of range: prefix/)
  t.throws(() => native.encode('route', 0, [{ cmd: 'newLink', kind: 'dummy' }]), /missing field: name/)
})
