// Byte fixtures for every ipset message tsproxy sends or parses, commented
// field by field from <linux/netlink.h>, <linux/netfilter/nfnetlink.h> and
// <linux/netfilter/ipset/ip_set.h>. Requests: encode(op) must equal the bytes.
// Replies: decode(bytes) must equal the record; and both ways where the layouts
// agree: our own request for the same values decodes to the same record.
//
// The replies (and the requests marked "as ipset 7.17 sends it") are real:
// captured with `strace -e read=3 -e write=3` from the ipset tool talking to
// Linux 6.18, only sequence numbers and port ids rewritten for readability.
//
// Numbers: netlink headers and attribute headers are host order (little-endian
// here). ipset wants every multi-byte value big-endian AND flagged
// NLA_F_NET_BYTEORDER (0x4000 in nla_type; the kernel refuses it unflagged),
// except IPSET_ATTR_PROTOCOL / _REVISION / _FAMILY / CIDRs / PROTO (u8).
// nlmsg_type = NFNL_SUBSYS_IPSET (6) << 8 | command, so bytes "<cmd> 06".
import t, { type Test } from 'tap'
import { native } from '../../dist/native.js'
import { decodes as decodesAs, encoder, plain, refusesMalformed, rows } from '../support/fixtures.js'

const AF_INET = 2

const encodes = encoder('ipset', AF_INET)
const decodes = (t: Test, bytes: number[], records: unknown[]): void => decodesAs(t, 'ipset', bytes, records)

/** The common head of every request: nfgenmsg, then IPSET_ATTR_PROTOCOL = 7. */
const NFGEN_AND_PROTOCOL = [
  0x02, 0x00, 0x00, 0x00, // nfgenmsg: nfgen_family = AF_INET, version = NFNETLINK_V0, res_id = 0 (big-endian)
  0x05, 0x00, 0x01, 0x00, // nla_len = 5, IPSET_ATTR_PROTOCOL
  0x07, 0x00, 0x00, 0x00, //   7 (u8), 3 pad
]

// =========================================================================================
// Requests
// =========================================================================================

t.test('protocol: negotiate the protocol version', async (t) => {
  encodes(t, { cmd: 'protocol', protocol: 7 }, [
    0x1c, 0x00, 0x00, 0x00, // nlmsg_len = 28
    0x01, 0x06, //             nlmsg_type = IPSET_CMD_PROTOCOL (1) | NFNL_SUBSYS_IPSET << 8
    0x05, 0x00, //             nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK
    0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
    ...NFGEN_AND_PROTOCOL, //  nfgenmsg, IPSET_ATTR_PROTOCOL = 7 (the version we speak)
  ])
})

t.test('every request carries the protocol the handle agreed on (6 here)', async (t) => {
  const b = native.encode('ipset', AF_INET, [{ cmd: 'flush', protocol: 6 }], 1)
  t.strictSame([...b.subarray(20, 28)], [0x05, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00], 'IPSET_ATTR_PROTOCOL = 6')
})

t.test('type: the revisions of a set type the kernel knows', async (t) => {
  encodes(t, { cmd: 'type', typename: 'hash:ip,port,ip', family: 2 }, [
    0x38, 0x00, 0x00, 0x00, // nlmsg_len = 56
    0x0d, 0x06, //             IPSET_CMD_TYPE (13)
    0x05, 0x00, //             NLM_F_REQUEST | NLM_F_ACK
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x14, 0x00, 0x03, 0x00, // nla_len = 20, IPSET_ATTR_TYPENAME
    0x68, 0x61, 0x73, 0x68, //   "hash"
    0x3a, 0x69, 0x70, 0x2c, //   ":ip,"
    0x70, 0x6f, 0x72, 0x74, //   "port"
    0x2c, 0x69, 0x70, 0x00, //   ",ip\0"
    0x05, 0x00, 0x05, 0x00, // nla_len = 5, IPSET_ATTR_FAMILY
    0x02, 0x00, 0x00, 0x00, //   NFPROTO_IPV4, 3 pad
  ])
})

// As ipset 7.17 sends `ipset create N6 hash:net family inet6 hashsize 4096
// maxelem 100000 timeout 600 counters comment skbinfo`, byte for byte.
const createN6 = [
  0x68, 0x00, 0x00, 0x00, // nlmsg_len = 104
  0x02, 0x06, //             IPSET_CMD_CREATE (2)
  0x05, 0x06, //             NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL (0x200) | NLM_F_CREATE (0x400)
  0x01, 0x00, 0x00, 0x00, // seq
  0x00, 0x00, 0x00, 0x00, // pid
  ...NFGEN_AND_PROTOCOL,
  0x07, 0x00, 0x02, 0x00, // nla_len = 7, IPSET_ATTR_SETNAME
  0x4e, 0x36, 0x00, 0x00, //   "N6\0", 1 pad
  0x0d, 0x00, 0x03, 0x00, // nla_len = 13, IPSET_ATTR_TYPENAME
  0x68, 0x61, 0x73, 0x68, //   "hash"
  0x3a, 0x6e, 0x65, 0x74, //   ":net"
  0x00, 0x00, 0x00, 0x00, //   "\0", 3 pad
  0x05, 0x00, 0x04, 0x00, // nla_len = 5, IPSET_ATTR_REVISION
  0x07, 0x00, 0x00, 0x00, //   7
  0x05, 0x00, 0x05, 0x00, // nla_len = 5, IPSET_ATTR_FAMILY
  0x0a, 0x00, 0x00, 0x00, //   NFPROTO_IPV6
  0x24, 0x00, 0x07, 0x80, // nla_len = 36, IPSET_ATTR_DATA | NLA_F_NESTED
  0x08, 0x00, 0x06, 0x40, //   nla_len = 8, IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER
  0x00, 0x00, 0x02, 0x58, //     600 s, big-endian
  0x08, 0x00, 0x08, 0x40, //   nla_len = 8, IPSET_ATTR_CADT_FLAGS | NLA_F_NET_BYTEORDER
  0x00, 0x00, 0x00, 0x58, //     WITH_COUNTERS (0x08) | WITH_COMMENT (0x10) | WITH_SKBINFO (0x40)
  0x08, 0x00, 0x12, 0x40, //   nla_len = 8, IPSET_ATTR_HASHSIZE | NLA_F_NET_BYTEORDER
  0x00, 0x00, 0x10, 0x00, //     4096
  0x08, 0x00, 0x13, 0x40, //   nla_len = 8, IPSET_ATTR_MAXELEM | NLA_F_NET_BYTEORDER
  0x00, 0x01, 0x86, 0xa0, //     100000
]

t.test('create: hash:net, inet6, every option (as ipset 7.17 sends it)', async (t) => {
  encodes(t, {
    cmd: 'create', name: 'N6', typename: 'hash:net', revision: 7, family: 10,
    data: { hashsize: 4096, maxelem: 100000, timeout: 600, flags: 0x58 },
  }, createN6)
})

t.test('create: bitmap:port with its range, no family (as ipset 7.17 sends it)', async (t) => {
  encodes(t, { cmd: 'create', name: 'P', typename: 'bitmap:port', revision: 3, family: 0, data: { portFrom: 30000, portTo: 32767 } }, [
    0x58, 0x00, 0x00, 0x00, // nlmsg_len = 88
    0x02, 0x06, //             IPSET_CMD_CREATE
    0x05, 0x06, //             REQUEST | ACK | EXCL | CREATE
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
    0x50, 0x00, 0x00, 0x00, //   "P\0", 2 pad
    0x10, 0x00, 0x03, 0x00, // nla_len = 16, IPSET_ATTR_TYPENAME
    0x62, 0x69, 0x74, 0x6d, //   "bitm"
    0x61, 0x70, 0x3a, 0x70, //   "ap:p"
    0x6f, 0x72, 0x74, 0x00, //   "ort\0"
    0x05, 0x00, 0x04, 0x00, // nla_len = 5, IPSET_ATTR_REVISION
    0x03, 0x00, 0x00, 0x00, //   3
    0x05, 0x00, 0x05, 0x00, // nla_len = 5, IPSET_ATTR_FAMILY
    0x00, 0x00, 0x00, 0x00, //   NFPROTO_UNSPEC: bitmap:port has no address family
    0x14, 0x00, 0x07, 0x80, // nla_len = 20, IPSET_ATTR_DATA | NLA_F_NESTED
    0x06, 0x00, 0x04, 0x40, //   nla_len = 6, IPSET_ATTR_PORT (from) | NLA_F_NET_BYTEORDER
    0x75, 0x30, 0x00, 0x00, //     30000 big-endian, 2 pad
    0x06, 0x00, 0x05, 0x40, //   nla_len = 6, IPSET_ATTR_PORT_TO | NLA_F_NET_BYTEORDER
    0x7f, 0xff, 0x00, 0x00, //     32767
  ])
})

t.test('create: list:set with its size (as ipset 7.17 sends it)', async (t) => {
  encodes(t, { cmd: 'create', name: 'L', typename: 'list:set', revision: 3, family: 0, data: { size: 16 } }, [
    0x50, 0x00, 0x00, 0x00, // nlmsg_len = 80
    0x02, 0x06, //             IPSET_CMD_CREATE
    0x05, 0x06, //             REQUEST | ACK | EXCL | CREATE
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
    0x4c, 0x00, 0x00, 0x00, //   "L\0"
    0x0d, 0x00, 0x03, 0x00, // nla_len = 13, IPSET_ATTR_TYPENAME
    0x6c, 0x69, 0x73, 0x74, //   "list"
    0x3a, 0x73, 0x65, 0x74, //   ":set"
    0x00, 0x00, 0x00, 0x00, //   "\0", 3 pad
    0x05, 0x00, 0x04, 0x00, // nla_len = 5, IPSET_ATTR_REVISION
    0x03, 0x00, 0x00, 0x00, //   3
    0x05, 0x00, 0x05, 0x00, // nla_len = 5, IPSET_ATTR_FAMILY
    0x00, 0x00, 0x00, 0x00, //   NFPROTO_UNSPEC
    0x0c, 0x00, 0x07, 0x80, // nla_len = 12, IPSET_ATTR_DATA | NLA_F_NESTED
    0x08, 0x00, 0x17, 0x40, //   nla_len = 8, IPSET_ATTR_SIZE | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x10, //     16
  ])
})

t.test('create with exist: no NLM_F_EXCL, and an empty DATA nest when nothing is set', async (t) => {
  encodes(t, { cmd: 'create', name: 'K', typename: 'hash:ip', revision: 6, family: 2, exist: true }, [
    0x44, 0x00, 0x00, 0x00, // nlmsg_len = 68
    0x02, 0x06, //             IPSET_CMD_CREATE
    0x05, 0x04, //             REQUEST | ACK | NLM_F_CREATE: no EXCL, so the kernel accepts an identical existing set
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
    0x4b, 0x00, 0x00, 0x00, //   "K\0"
    0x0c, 0x00, 0x03, 0x00, // nla_len = 12, IPSET_ATTR_TYPENAME
    0x68, 0x61, 0x73, 0x68, //   "hash"
    0x3a, 0x69, 0x70, 0x00, //   ":ip\0"
    0x05, 0x00, 0x04, 0x00, // nla_len = 5, IPSET_ATTR_REVISION
    0x06, 0x00, 0x00, 0x00, //   6
    0x05, 0x00, 0x05, 0x00, // nla_len = 5, IPSET_ATTR_FAMILY
    0x02, 0x00, 0x00, 0x00, //   NFPROTO_IPV4
    0x04, 0x00, 0x07, 0x80, // nla_len = 4, IPSET_ATTR_DATA | NLA_F_NESTED, empty: the kernel's defaults
  ])
})

t.test('create: forceadd travels as a CADT flag, after the timeout', async (t) => {
  const b = native.encode('ipset', AF_INET, [{ cmd: 'create', name: 'H', typename: 'hash:ip,port', revision: 7, family: 2, data: { hashsize: 64, maxelem: 10, flags: 0x30 } }], 1)
  t.strictSame(rows(b.subarray(b.length - 28)), rows([
    0x1c, 0x00, 0x07, 0x80, // nla_len = 28, IPSET_ATTR_DATA | NLA_F_NESTED
    0x08, 0x00, 0x08, 0x40, //   IPSET_ATTR_CADT_FLAGS | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x30, //     WITH_COMMENT (0x10) | WITH_FORCEADD (0x20)
    0x08, 0x00, 0x12, 0x40, //   IPSET_ATTR_HASHSIZE
    0x00, 0x00, 0x00, 0x40, //     64
    0x08, 0x00, 0x13, 0x40, //   IPSET_ATTR_MAXELEM
    0x00, 0x00, 0x00, 0x0a, //     10
  ]), 'the DATA nest, as ipset 7.17 writes `hashsize 64 maxelem 10 forceadd comment`')
})

t.test('destroy: one set (as ipset 7.17 sends it); with exist; every set', async (t) => {
  encodes(t, { cmd: 'destroy', name: 'B' }, [
    0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
    0x03, 0x06, //             IPSET_CMD_DESTROY (3)
    0x05, 0x02, //             REQUEST | ACK | NLM_F_EXCL: a missing set is an error
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
    0x42, 0x00, 0x00, 0x00, //   "B\0"
  ])
  encodes(t, { cmd: 'destroy', name: 'NOPE', exist: true }, [
    0x28, 0x00, 0x00, 0x00, // nlmsg_len = 40
    0x03, 0x06, //             IPSET_CMD_DESTROY
    0x05, 0x00, //             REQUEST | ACK, no EXCL: a missing set is no error (Linux 6.8+)
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x09, 0x00, 0x02, 0x00, // nla_len = 9, IPSET_ATTR_SETNAME
    0x4e, 0x4f, 0x50, 0x45, //   "NOPE"
    0x00, 0x00, 0x00, 0x00, //   "\0", 3 pad
  ], 'with exist')
  encodes(t, { cmd: 'destroy' }, [
    0x1c, 0x00, 0x00, 0x00, // nlmsg_len = 28
    0x03, 0x06, //             IPSET_CMD_DESTROY
    0x05, 0x02, //             REQUEST | ACK | EXCL
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL, //  no IPSET_ATTR_SETNAME: every set
  ], 'every set')
})

t.test('flush: one set (as ipset 7.17 sends it); every set', async (t) => {
  encodes(t, { cmd: 'flush', name: 'B' }, [
    0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
    0x04, 0x06, //             IPSET_CMD_FLUSH (4)
    0x05, 0x00, //             REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
    0x42, 0x00, 0x00, 0x00, //   "B\0"
  ])
  encodes(t, { cmd: 'flush' }, [
    0x1c, 0x00, 0x00, 0x00, // nlmsg_len = 28
    0x04, 0x06, //             IPSET_CMD_FLUSH
    0x05, 0x00, //             REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL, //  no name: every set
  ], 'every set')
})

t.test('rename and swap: the second name is IPSET_ATTR_SETNAME2 (as ipset 7.17 sends them)', async (t) => {
  encodes(t, { cmd: 'rename', name: 'A', name2: 'A2' }, [
    0x2c, 0x00, 0x00, 0x00, // nlmsg_len = 44
    0x05, 0x06, //             IPSET_CMD_RENAME (5)
    0x05, 0x00, //             REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
    0x41, 0x00, 0x00, 0x00, //   "A\0"
    0x07, 0x00, 0x03, 0x00, // nla_len = 7, IPSET_ATTR_SETNAME2 (= IPSET_ATTR_TYPENAME, 3)
    0x41, 0x32, 0x00, 0x00, //   "A2\0"
  ])
  encodes(t, { cmd: 'swap', name: 'A2', name2: 'B' }, [
    0x2c, 0x00, 0x00, 0x00, // nlmsg_len = 44
    0x06, 0x06, //             IPSET_CMD_SWAP (6)
    0x05, 0x00, //             REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x07, 0x00, 0x02, 0x00, // nla_len = 7, IPSET_ATTR_SETNAME
    0x41, 0x32, 0x00, 0x00, //   "A2\0"
    0x06, 0x00, 0x03, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME2
    0x42, 0x00, 0x00, 0x00, //   "B\0"
  ], 'swap')
})

t.test('list: a dump of every set; of names only; of one header', async (t) => {
  encodes(t, { cmd: 'list' }, [
    0x1c, 0x00, 0x00, 0x00, // nlmsg_len = 28
    0x07, 0x06, //             IPSET_CMD_LIST (7)
    0x01, 0x03, //             NLM_F_REQUEST | NLM_F_DUMP (0x300): ends with NLMSG_DONE
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
  ])
  encodes(t, { cmd: 'list', flags: 2 }, [
    0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
    0x07, 0x06, //             IPSET_CMD_LIST
    0x01, 0x03, //             REQUEST | DUMP
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x08, 0x00, 0x06, 0x40, // nla_len = 8, IPSET_ATTR_FLAGS | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x02, //   IPSET_FLAG_LIST_SETNAME: names only (`ipset list -n`)
  ], 'names only')
  encodes(t, { cmd: 'list', name: 'N6', flags: 4 }, [
    0x2c, 0x00, 0x00, 0x00, // nlmsg_len = 44
    0x07, 0x06, //             IPSET_CMD_LIST
    0x01, 0x03, //             REQUEST | DUMP
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x07, 0x00, 0x02, 0x00, // nla_len = 7, IPSET_ATTR_SETNAME
    0x4e, 0x36, 0x00, 0x00, //   "N6\0"
    0x08, 0x00, 0x06, 0x40, // nla_len = 8, IPSET_ATTR_FLAGS | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x04, //   IPSET_FLAG_LIST_HEADER: header only (`ipset list -t N6`)
  ], 'one header')
})

t.test('header: a set\'s type, family and revision', async (t) => {
  encodes(t, { cmd: 'header', name: 'N6' }, [
    0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
    0x0c, 0x06, //             IPSET_CMD_HEADER (12)
    0x05, 0x00, //             REQUEST | ACK
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x07, 0x00, 0x02, 0x00, // nla_len = 7, IPSET_ATTR_SETNAME
    0x4e, 0x36, 0x00, 0x00, //   "N6\0"
  ])
})

// One hash:ip,port,ip entry with a timeout and a comment.
const addIpPortIp = [
  0x60, 0x00, 0x00, 0x00, // nlmsg_len = 96
  0x09, 0x06, //             IPSET_CMD_ADD (9)
  0x05, 0x02, //             REQUEST | ACK | NLM_F_EXCL: an existing entry is an error
  0x01, 0x00, 0x00, 0x00, // seq
  0x00, 0x00, 0x00, 0x00, // pid
  ...NFGEN_AND_PROTOCOL,
  0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
  0x58, 0x00, 0x00, 0x00, //   "X\0"
  0x3c, 0x00, 0x07, 0x80, // nla_len = 60, IPSET_ATTR_DATA | NLA_F_NESTED: one entry
  0x0c, 0x00, 0x01, 0x80, //   nla_len = 12, IPSET_ATTR_IP | NLA_F_NESTED
  0x08, 0x00, 0x01, 0x40, //     nla_len = 8, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER
  0x0a, 0x00, 0x00, 0x01, //       10.0.0.1
  0x06, 0x00, 0x04, 0x40, //   nla_len = 6, IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER
  0x00, 0x50, 0x00, 0x00, //     80 big-endian, 2 pad
  0x05, 0x00, 0x07, 0x00, //   nla_len = 5, IPSET_ATTR_PROTO
  0x06, 0x00, 0x00, 0x00, //     IPPROTO_TCP, 3 pad
  0x0c, 0x00, 0x14, 0x80, //   nla_len = 12, IPSET_ATTR_IP2 (20) | NLA_F_NESTED
  0x08, 0x00, 0x01, 0x40, //     nla_len = 8, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER
  0x0a, 0x00, 0x00, 0x02, //       10.0.0.2
  0x08, 0x00, 0x06, 0x40, //   nla_len = 8, IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER
  0x00, 0x00, 0x00, 0x05, //     5 s
  0x07, 0x00, 0x1a, 0x00, //   nla_len = 7, IPSET_ATTR_COMMENT (26)
  0x68, 0x69, 0x00, 0x00, //     "hi\0"
]
const ipPortIp = { af: 2, ip: '10.0.0.1', port: 80, proto: 6, ip2: '10.0.0.2', timeout: 5, comment: 'hi' }

t.test('add: one hash:ip,port,ip entry in IPSET_ATTR_DATA', async (t) => {
  encodes(t, { cmd: 'add', name: 'X', entry: ipPortIp }, addIpPortIp)
})

t.test('add with exist: the same message without NLM_F_EXCL', async (t) => {
  const expected = [...addIpPortIp]
  expected[7] = 0x00 // nlmsg_flags = REQUEST | ACK: an existing entry is replaced (timeout reset)
  encodes(t, { cmd: 'add', name: 'X', exist: true, entry: ipPortIp }, expected)
})

t.test('test: hash:net inet6 entry, an address and its CIDR (as ipset 7.17 sends it)', async (t) => {
  encodes(t, { cmd: 'test', name: 'N6', entry: { af: 10, ip: 'fd00::', cidr: 64 } }, [
    0x48, 0x00, 0x00, 0x00, // nlmsg_len = 72
    0x0b, 0x06, //             IPSET_CMD_TEST (11)
    0x05, 0x00, //             REQUEST | ACK (an absent entry answers IPSET_ERR_EXIST)
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x07, 0x00, 0x02, 0x00, // nla_len = 7, IPSET_ATTR_SETNAME
    0x4e, 0x36, 0x00, 0x00, //   "N6\0"
    0x24, 0x00, 0x07, 0x80, // nla_len = 36, IPSET_ATTR_DATA | NLA_F_NESTED
    0x18, 0x00, 0x01, 0x80, //   nla_len = 24, IPSET_ATTR_IP | NLA_F_NESTED
    0x14, 0x00, 0x02, 0x40, //     nla_len = 20, IPSET_ATTR_IPADDR_IPV6 | NLA_F_NET_BYTEORDER
    0xfd, 0x00, 0x00, 0x00, //       fd00::
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x03, 0x00, //   nla_len = 5, IPSET_ATTR_CIDR
    0x40, 0x00, 0x00, 0x00, //     /64
  ])
})

t.test('del: hash:ip,port,net entry; the network is IP2 + CIDR2', async (t) => {
  encodes(t, { cmd: 'del', name: 'IPN', entry: { af: 2, ip: '10.0.0.1', port: 53, proto: 17, ip2: '10.1.0.0', cidr2: 16 } }, [
    0x58, 0x00, 0x00, 0x00, // nlmsg_len = 88
    0x0a, 0x06, //             IPSET_CMD_DEL (10)
    0x05, 0x02, //             REQUEST | ACK | EXCL: a missing entry is an error
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x08, 0x00, 0x02, 0x00, // nla_len = 8, IPSET_ATTR_SETNAME
    0x49, 0x50, 0x4e, 0x00, //   "IPN\0"
    0x34, 0x00, 0x07, 0x80, // nla_len = 52, IPSET_ATTR_DATA | NLA_F_NESTED
    0x0c, 0x00, 0x01, 0x80, //   IPSET_ATTR_IP | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x40, //     IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER
    0x0a, 0x00, 0x00, 0x01, //       10.0.0.1
    0x06, 0x00, 0x04, 0x40, //   IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER
    0x00, 0x35, 0x00, 0x00, //     53
    0x05, 0x00, 0x07, 0x00, //   IPSET_ATTR_PROTO
    0x11, 0x00, 0x00, 0x00, //     IPPROTO_UDP
    0x0c, 0x00, 0x14, 0x80, //   IPSET_ATTR_IP2 | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x40, //     IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER
    0x0a, 0x01, 0x00, 0x00, //       10.1.0.0
    0x05, 0x00, 0x15, 0x00, //   nla_len = 5, IPSET_ATTR_CIDR2 (21)
    0x10, 0x00, 0x00, 0x00, //     /16
  ])
})

t.test('add: list:set member by name; bitmap:port member; a nomatch network', async (t) => {
  encodes(t, { cmd: 'add', name: 'L', entry: { name: 'P' } }, [
    0x30, 0x00, 0x00, 0x00, // nlmsg_len = 48
    0x09, 0x06, //             IPSET_CMD_ADD
    0x05, 0x02, //             REQUEST | ACK | EXCL
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
    0x4c, 0x00, 0x00, 0x00, //   "L\0"
    0x0c, 0x00, 0x07, 0x80, // nla_len = 12, IPSET_ATTR_DATA | NLA_F_NESTED
    0x06, 0x00, 0x12, 0x00, //   nla_len = 6, IPSET_ATTR_NAME (18): the member set
    0x50, 0x00, 0x00, 0x00, //     "P\0"
  ], 'list:set')
  encodes(t, { cmd: 'add', name: 'P', entry: { port: 30080 } }, [
    0x30, 0x00, 0x00, 0x00, // nlmsg_len = 48
    0x09, 0x06, //             IPSET_CMD_ADD
    0x05, 0x02, //             REQUEST | ACK | EXCL
    0x01, 0x00, 0x00, 0x00, // seq
    0x00, 0x00, 0x00, 0x00, // pid
    ...NFGEN_AND_PROTOCOL,
    0x06, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
    0x50, 0x00, 0x00, 0x00, //   "P\0"
    0x0c, 0x00, 0x07, 0x80, // nla_len = 12, IPSET_ATTR_DATA | NLA_F_NESTED
    0x06, 0x00, 0x04, 0x40, //   IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER
    0x75, 0x80, 0x00, 0x00, //     30080
  ], 'bitmap:port')
  const b = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'N', entry: { af: 2, ip: '10.2.0.0', cidr: 24, flags: 4 } }], 1)
  t.strictSame(rows(b.subarray(36)), rows([
    0x20, 0x00, 0x07, 0x80, // nla_len = 32, IPSET_ATTR_DATA | NLA_F_NESTED
    0x0c, 0x00, 0x01, 0x80, //   IPSET_ATTR_IP | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x40, //     IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER
    0x0a, 0x02, 0x00, 0x00, //       10.2.0.0
    0x05, 0x00, 0x03, 0x00, //   IPSET_ATTR_CIDR
    0x18, 0x00, 0x00, 0x00, //     /24
    0x08, 0x00, 0x08, 0x40, //   IPSET_ATTR_CADT_FLAGS | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x04, //     IPSET_FLAG_NOMATCH
  ]), 'hash:net nomatch')
})

t.test('add: counters and skbinfo extensions', async (t) => {
  const entry = { af: 10, ip: 'fd00::', cidr: 64, packets: 5, bytes: 1000, skbmark: 7, skbmarkmask: 0xff, skbprio: 0x10002, skbqueue: 3 }
  const b = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'N6', entry }], 1)
  t.strictSame(rows(b.subarray(36)), rows([
    0x58, 0x00, 0x07, 0x80, // nla_len = 88, IPSET_ATTR_DATA | NLA_F_NESTED
    0x18, 0x00, 0x01, 0x80, //   IPSET_ATTR_IP | NLA_F_NESTED
    0x14, 0x00, 0x02, 0x40, //     IPSET_ATTR_IPADDR_IPV6 | NLA_F_NET_BYTEORDER
    0xfd, 0x00, 0x00, 0x00, //       fd00::
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x03, 0x00, //   IPSET_ATTR_CIDR
    0x40, 0x00, 0x00, 0x00, //     /64
    0x0c, 0x00, 0x19, 0x40, //   nla_len = 12, IPSET_ATTR_PACKETS (25) | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x00, //     5, 64-bit big-endian
    0x00, 0x00, 0x00, 0x05,
    0x0c, 0x00, 0x18, 0x40, //   nla_len = 12, IPSET_ATTR_BYTES (24) | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x00, //     1000
    0x00, 0x00, 0x03, 0xe8,
    0x0c, 0x00, 0x1b, 0x40, //   nla_len = 12, IPSET_ATTR_SKBMARK (27) | NLA_F_NET_BYTEORDER
    0x00, 0x00, 0x00, 0x07, //     mark 7 ...
    0x00, 0x00, 0x00, 0xff, //     ... above its mask 0xff
    0x08, 0x00, 0x1c, 0x40, //   IPSET_ATTR_SKBPRIO (28) | NLA_F_NET_BYTEORDER
    0x00, 0x01, 0x00, 0x02, //     1:2 (major << 16 | minor)
    0x06, 0x00, 0x1d, 0x40, //   IPSET_ATTR_SKBQUEUE (29) | NLA_F_NET_BYTEORDER
    0x00, 0x03, 0x00, 0x00, //     3
  ]))
})

// As `ipset restore` sends four adds to the hash:ip set X, but for the
// top-level line number (the tool's is its input line; ours is 0, rewritten by
// the kernel only on failure).
const adtAddX = [
  0x90, 0x00, 0x00, 0x00, // nlmsg_len = 144
  0x09, 0x06, //             IPSET_CMD_ADD
  0x05, 0x02, //             REQUEST | ACK | EXCL
  0x01, 0x00, 0x00, 0x00, // seq
  0x00, 0x00, 0x00, 0x00, // pid
  ...NFGEN_AND_PROTOCOL,
  0x06, 0x00, 0x02, 0x00, // nla_len = 6, IPSET_ATTR_SETNAME
  0x58, 0x00, 0x00, 0x00, //   "X\0"
  0x08, 0x00, 0x09, 0x40, // nla_len = 8, IPSET_ATTR_LINENO | NLA_F_NET_BYTEORDER: asks for
  0x00, 0x00, 0x00, 0x00, //   the failing entry's number back; 0 until the kernel rewrites it
  0x64, 0x00, 0x08, 0x80, // nla_len = 100, IPSET_ATTR_ADT | NLA_F_NESTED: many entries
  0x18, 0x00, 0x07, 0x80, //   nla_len = 24, IPSET_ATTR_DATA | NLA_F_NESTED: entry 1
  0x0c, 0x00, 0x01, 0x80, //     IPSET_ATTR_IP | NLA_F_NESTED
  0x08, 0x00, 0x01, 0x40, //       IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER
  0x0a, 0x00, 0x00, 0x01, //         10.0.0.1
  0x08, 0x00, 0x09, 0x40, //     IPSET_ATTR_LINENO | NLA_F_NET_BYTEORDER
  0x00, 0x00, 0x00, 0x01, //       1
  0x18, 0x00, 0x07, 0x80, //   entry 2
  0x0c, 0x00, 0x01, 0x80,
  0x08, 0x00, 0x01, 0x40,
  0x0a, 0x00, 0x00, 0x02, //         10.0.0.2
  0x08, 0x00, 0x09, 0x40,
  0x00, 0x00, 0x00, 0x02, //       line 2
  0x18, 0x00, 0x07, 0x80, //   entry 3
  0x0c, 0x00, 0x01, 0x80,
  0x08, 0x00, 0x01, 0x40,
  0x0a, 0x00, 0x00, 0x01, //         10.0.0.1 again: fails IPSET_ERR_EXIST
  0x08, 0x00, 0x09, 0x40,
  0x00, 0x00, 0x00, 0x03, //       line 3
  0x18, 0x00, 0x07, 0x80, //   entry 4
  0x0c, 0x00, 0x01, 0x80,
  0x08, 0x00, 0x01, 0x40,
  0x0a, 0x00, 0x00, 0x03, //         10.0.0.3 (not tried: the kernel stops at line 3)
  0x08, 0x00, 0x09, 0x40,
  0x00, 0x00, 0x00, 0x04, //       line 4
]
const fourIps = ['10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.3']

t.test('add, many entries: IPSET_ATTR_ADT of numbered DATA nests, from columns', async (t) => {
  encodes(t, { cmd: 'add', name: 'X', entries: { count: 4, af: 2, ip: fourIps } }, adtAddX)
})

t.test('ADT columns: an address column joined by newlines encodes as the array', async (t) => {
  const joined = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entries: { count: 4, af: 2, ip: fourIps.join('\n') } }], 1)
  t.strictSame(rows(joined), rows(adtAddX))
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entries: { count: 5, af: 2, ip: fourIps.join('\n') } }], 1), /column too short: ip/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entries: { count: 2, af: 2, ip: '10.0.0.1\n10.0.0.x' } }], 1), /not an IPv4 address in entry\.ip: 10\.0\.0\.x/)
})

t.test('ADT columns: typed arrays and plain arrays encode alike; holes leave a field out', async (t) => {
  const typed = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'P', entries: { count: 2, port: new Uint16Array([80, 443]) } }], 1)
  const arrays = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'P', entries: { count: 2, port: [80, 443] } }], 1)
  const f64 = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'P', entries: { count: 2, port: new Float64Array([80, 443]) } }], 1)
  t.strictSame(rows(typed), rows(arrays), 'Uint16Array = Array')
  t.strictSame(rows(f64), rows(arrays), 'Float64Array = Array')
  const holes = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'C', entries: { count: 2, af: 2, ip: ['10.0.0.1', '10.0.0.2'], comment: ['a', undefined] } }], 1)
  t.strictSame(rows(holes.subarray(44)), rows([
    0x3c, 0x00, 0x08, 0x80, // nla_len = 60, IPSET_ATTR_ADT | NLA_F_NESTED
    0x20, 0x00, 0x07, 0x80, //   entry 1 (nla_len = 32)
    0x0c, 0x00, 0x01, 0x80,
    0x08, 0x00, 0x01, 0x40,
    0x0a, 0x00, 0x00, 0x01, //       10.0.0.1
    0x06, 0x00, 0x1a, 0x00, //     IPSET_ATTR_COMMENT
    0x61, 0x00, 0x00, 0x00, //       "a\0"
    0x08, 0x00, 0x09, 0x40,
    0x00, 0x00, 0x00, 0x01, //     line 1
    0x18, 0x00, 0x07, 0x80, //   entry 2 (nla_len = 24): no comment
    0x0c, 0x00, 0x01, 0x80,
    0x08, 0x00, 0x01, 0x40,
    0x0a, 0x00, 0x00, 0x02, //       10.0.0.2
    0x08, 0x00, 0x09, 0x40,
    0x00, 0x00, 0x00, 0x02, //     line 2
  ]))
})

t.test('a bad operation rejects the whole batch, naming what is wrong', async (t) => {
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entry: { af: 2, ip: '10.0.0.300' } }]), /not an IPv4 address in entry\.ip: 10\.0\.0\.300/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entries: { count: 2, af: 2, ip: ['10.0.0.1', 7] } }]), /entries\.ip\[1\] is not a string/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'P', entries: { count: 3, port: [1, 2] } }]), /column too short: port/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'P', entries: { count: 1, port: [70000] } }]), /entries\.port\[0\] out of range/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'test', name: 'P', entries: { count: 1, port: [1] } }]), /test takes one entry/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entry: { af: 7, ip: '10.0.0.1' } }]), /af must be AF_INET or AF_INET6/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'nope' }]), /unknown cmd nope/)
  t.throws(() => native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entries: { count: 3000, af: 2, ip: Array(3000).fill('10.0.0.1') } }]), /nested attribute longer than 65535 bytes/, 'an ADT nest over 64 KiB is refused, not truncated')
})

// =========================================================================================
// Replies
// =========================================================================================

// The kernel's answer to IPSET_CMD_PROTOCOL (Linux 6.18).
const protocolReply = [
  0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
  0x01, 0x06, //             IPSET_CMD_PROTOCOL
  0x00, 0x00, //             flags 0
  0x01, 0x00, 0x00, 0x00, // seq
  0x98, 0x10, 0x00, 0x00, // our port id
  0x02, 0x00, 0x00, 0x00, // nfgenmsg
  0x05, 0x00, 0x01, 0x00, // nla_len = 5, IPSET_ATTR_PROTOCOL
  0x07, 0x00, 0x00, 0x00, //   7: the newest the kernel speaks
  0x05, 0x00, 0x0a, 0x00, // nla_len = 5, IPSET_ATTR_PROTOCOL_MIN (10)
  0x06, 0x00, 0x00, 0x00, //   6: the oldest
]

t.test('PROTOCOL reply: the versions the kernel speaks', async (t) => {
  decodes(t, protocolReply, [{ kind: 'protocol', protocol: 7, protocolMin: 6 }])
  const ours = native.encode('ipset', AF_INET, [{ cmd: 'protocol', protocol: 7 }], 1)
  t.strictSame([...ours.subarray(16, 28)], protocolReply.slice(16, 28), 'nfgenmsg and PROTOCOL: the same bytes as our request')
})

t.test('TYPE reply: name, family, newest and oldest revision', async (t) => {
  decodes(t, [
    0x44, 0x00, 0x00, 0x00, // nlmsg_len = 68
    0x0d, 0x06, //             IPSET_CMD_TYPE
    0x00, 0x00, //             flags
    0x01, 0x00, 0x00, 0x00, // seq
    0x98, 0x10, 0x00, 0x00, // port id
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x05, 0x00, 0x01, 0x00, // IPSET_ATTR_PROTOCOL
    0x07, 0x00, 0x00, 0x00, //   7
    0x0d, 0x00, 0x03, 0x00, // nla_len = 13, IPSET_ATTR_TYPENAME
    0x68, 0x61, 0x73, 0x68, //   "hash"
    0x3a, 0x6e, 0x65, 0x74, //   ":net"
    0x00, 0x00, 0x00, 0x00, //   "\0"
    0x05, 0x00, 0x05, 0x00, // IPSET_ATTR_FAMILY
    0x02, 0x00, 0x00, 0x00, //   NFPROTO_IPV4
    0x05, 0x00, 0x04, 0x00, // IPSET_ATTR_REVISION: the newest
    0x07, 0x00, 0x00, 0x00, //   7
    0x05, 0x00, 0x0a, 0x00, // IPSET_ATTR_REVISION_MIN (= PROTOCOL_MIN, 10): the oldest
    0x00, 0x00, 0x00, 0x00, //   0
  ], [{ kind: 'type', typename: 'hash:net', family: 2, revision: 7, revisionMin: 0 }])
})

t.test('HEADER reply: the set\'s name, type, family, revision', async (t) => {
  decodes(t, [
    0x44, 0x00, 0x00, 0x00, // nlmsg_len = 68
    0x0c, 0x06, //             IPSET_CMD_HEADER
    0x00, 0x00, //             flags
    0x01, 0x00, 0x00, 0x00, // seq
    0xa5, 0x10, 0x00, 0x00, // port id
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x05, 0x00, 0x01, 0x00, // IPSET_ATTR_PROTOCOL
    0x07, 0x00, 0x00, 0x00, //   7
    0x07, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
    0x4e, 0x36, 0x00, 0x00, //   "N6\0"
    0x0d, 0x00, 0x03, 0x00, // IPSET_ATTR_TYPENAME
    0x68, 0x61, 0x73, 0x68, //   "hash"
    0x3a, 0x6e, 0x65, 0x74, //   ":net"
    0x00, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x05, 0x00, // IPSET_ATTR_FAMILY
    0x0a, 0x00, 0x00, 0x00, //   NFPROTO_IPV6
    0x05, 0x00, 0x04, 0x00, // IPSET_ATTR_REVISION
    0x07, 0x00, 0x00, 0x00, //   7
  ], [{ kind: 'header', name: 'N6', typename: 'hash:net', family: 10, revision: 7 }])
})

// One message of `ipset save`: the hash:net inet6 set N6 (timeout 600,
// counters, comment, skbinfo) with its only member.
const listN6 = [
  0x04, 0x01, 0x00, 0x00, // nlmsg_len = 260
  0x07, 0x06, //             IPSET_CMD_LIST
  0x02, 0x00, //             NLM_F_MULTI
  0x01, 0x00, 0x00, 0x00, // seq
  0x98, 0x10, 0x00, 0x00, // port id
  0x02, 0x00, 0x00, 0x00, // nfgenmsg
  0x05, 0x00, 0x01, 0x00, // IPSET_ATTR_PROTOCOL
  0x07, 0x00, 0x00, 0x00, //   7
  0x07, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
  0x4e, 0x36, 0x00, 0x00, //   "N6\0"
  0x0d, 0x00, 0x03, 0x00, // IPSET_ATTR_TYPENAME: only in a set's first message
  0x68, 0x61, 0x73, 0x68, //   "hash"
  0x3a, 0x6e, 0x65, 0x74, //   ":net"
  0x00, 0x00, 0x00, 0x00,
  0x05, 0x00, 0x05, 0x00, // IPSET_ATTR_FAMILY
  0x0a, 0x00, 0x00, 0x00, //   NFPROTO_IPV6
  0x05, 0x00, 0x04, 0x00, // IPSET_ATTR_REVISION
  0x07, 0x00, 0x00, 0x00, //   7
  0x06, 0x00, 0x0b, 0x40, // nla_len = 6, IPSET_ATTR_INDEX (11) | NLA_F_NET_BYTEORDER
  0x00, 0x00, 0x00, 0x00, //   0: the set's slot in the kernel
  0x4c, 0x00, 0x07, 0x80, // nla_len = 76, IPSET_ATTR_DATA | NLA_F_NESTED: the header
  0x08, 0x00, 0x12, 0x40, //   IPSET_ATTR_HASHSIZE | NLA_F_NET_BYTEORDER
  0x00, 0x00, 0x04, 0x00, //     1024
  0x08, 0x00, 0x13, 0x40, //   IPSET_ATTR_MAXELEM
  0x00, 0x01, 0x00, 0x00, //     65536
  0x05, 0x00, 0x15, 0x00, //   IPSET_ATTR_BUCKETSIZE (21), u8
  0x0c, 0x00, 0x00, 0x00, //     12
  0x08, 0x00, 0x11, 0x40, //   IPSET_ATTR_INITVAL (17)
  0x0a, 0x7f, 0xa9, 0x59, //     0x0a7fa959 (the hash seed)
  0x08, 0x00, 0x19, 0x40, //   IPSET_ATTR_REFERENCES (25)
  0x00, 0x00, 0x00, 0x00, //     0
  0x08, 0x00, 0x1a, 0x40, //   IPSET_ATTR_MEMSIZE (26)
  0x00, 0x00, 0x05, 0x9b, //     1435 bytes
  0x08, 0x00, 0x18, 0x40, //   IPSET_ATTR_ELEMENTS (24)
  0x00, 0x00, 0x00, 0x01, //     1
  0x08, 0x00, 0x06, 0x40, //   IPSET_ATTR_TIMEOUT: the set's default
  0x00, 0x00, 0x02, 0x58, //     600
  0x08, 0x00, 0x08, 0x40, //   IPSET_ATTR_CADT_FLAGS
  0x00, 0x00, 0x00, 0x58, //     WITH_COUNTERS | WITH_COMMENT | WITH_SKBINFO
  0x6c, 0x00, 0x08, 0x80, // nla_len = 108, IPSET_ATTR_ADT | NLA_F_NESTED: members
  0x68, 0x00, 0x07, 0x80, //   nla_len = 104, IPSET_ATTR_DATA | NLA_F_NESTED: one member
  0x18, 0x00, 0x01, 0x80, //     IPSET_ATTR_IP | NLA_F_NESTED
  0x14, 0x00, 0x02, 0x00, //       IPSET_ATTR_IPADDR_IPV6 (the kernel does not flag its own)
  0xfd, 0x00, 0x00, 0x00, //         fd00::
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x05, 0x00, 0x03, 0x00, //     IPSET_ATTR_CIDR
  0x40, 0x00, 0x00, 0x00, //       /64
  0x08, 0x00, 0x06, 0x40, //     IPSET_ATTR_TIMEOUT: seconds left
  0x00, 0x00, 0x01, 0x2b, //       299
  0x0c, 0x00, 0x18, 0x40, //     IPSET_ATTR_BYTES
  0x00, 0x00, 0x00, 0x00, //       1000
  0x00, 0x00, 0x03, 0xe8,
  0x0c, 0x00, 0x19, 0x40, //     IPSET_ATTR_PACKETS
  0x00, 0x00, 0x00, 0x00, //       5
  0x00, 0x00, 0x00, 0x05,
  0x07, 0x00, 0x1a, 0x00, //     IPSET_ATTR_COMMENT
  0x68, 0x69, 0x00, 0x00, //       "hi\0"
  0x0c, 0x00, 0x1b, 0x40, //     IPSET_ATTR_SKBMARK
  0x00, 0x00, 0x00, 0x07, //       mark 0x7
  0x00, 0x00, 0x00, 0xff, //       mask 0xff
  0x08, 0x00, 0x1c, 0x40, //     IPSET_ATTR_SKBPRIO
  0x00, 0x01, 0x00, 0x02, //       1:2
  0x06, 0x00, 0x1d, 0x40, //     IPSET_ATTR_SKBQUEUE
  0x00, 0x03, 0x00, 0x00, //       3
]

const n6Header = {
  hashsize: 1024, maxelem: 65536, bucketsize: 12, initval: 0x0a7fa959, timeout: 600, flags: 0x58,
  elements: 1, references: 0, memsize: 1435,
}

t.test('LIST message: header and a member with every extension, as columns', async (t) => {
  decodes(t, listN6, [{
    kind: 'set', name: 'N6', typename: 'hash:net', family: 10, revision: 7, index: 0,
    header: n6Header,
    members: {
      count: 1, ip: ['fd00::'], cidr: [64], timeout: [299], packets: [5], bytes: [1000], comment: ['hi'],
      skbmark: [7], skbmarkmask: [0xff], skbprio: [0x10002], skbqueue: [3],
    },
  }])
})

t.test('the header the kernel lists is laid out as our create writes it', async (t) => {
  // TIMEOUT, CADT_FLAGS, HASHSIZE, MAXELEM of the create above, attribute by attribute.
  const attr = (bytes: number[], type: number): string => {
    for (let i = 0; i < bytes.length; i += 4) if (bytes[i + 2] === type && bytes[i + 3] === 0x40) return rows(bytes.slice(i, i + 8)).join(' ')
    return 'absent'
  }
  const header = listN6.slice(76, 152)
  const ours = [...native.encode('ipset', AF_INET, [{ cmd: 'create', name: 'N6', typename: 'hash:net', revision: 7, family: 10, data: { hashsize: 1024, maxelem: 65536, timeout: 600, flags: 0x58 } }], 1)]
  for (const type of [0x06, 0x08, 0x12, 0x13]) t.equal(attr(ours, type), attr(header, type), `attribute ${type}`)
})

t.test('LIST message: bitmap:port header (range) and member', async (t) => {
  decodes(t, [
    0x88, 0x00, 0x00, 0x00, // nlmsg_len = 136
    0x07, 0x06, //             IPSET_CMD_LIST
    0x02, 0x00, //             NLM_F_MULTI
    0x01, 0x00, 0x00, 0x00, // seq
    0x98, 0x10, 0x00, 0x00, // port id
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x05, 0x00, 0x01, 0x00, // IPSET_ATTR_PROTOCOL
    0x07, 0x00, 0x00, 0x00, //   7
    0x06, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
    0x50, 0x00, 0x00, 0x00, //   "P\0"
    0x10, 0x00, 0x03, 0x00, // IPSET_ATTR_TYPENAME
    0x62, 0x69, 0x74, 0x6d, //   "bitm"
    0x61, 0x70, 0x3a, 0x70, //   "ap:p"
    0x6f, 0x72, 0x74, 0x00, //   "ort\0"
    0x05, 0x00, 0x05, 0x00, // IPSET_ATTR_FAMILY
    0x00, 0x00, 0x00, 0x00, //   NFPROTO_UNSPEC
    0x05, 0x00, 0x04, 0x00, // IPSET_ATTR_REVISION
    0x03, 0x00, 0x00, 0x00, //   3
    0x06, 0x00, 0x0b, 0x40, // IPSET_ATTR_INDEX
    0x00, 0x01, 0x00, 0x00, //   1
    0x2c, 0x00, 0x07, 0x80, // IPSET_ATTR_DATA | NLA_F_NESTED: header
    0x06, 0x00, 0x04, 0x40, //   IPSET_ATTR_PORT (range from)
    0x75, 0x30, 0x00, 0x00, //     30000
    0x06, 0x00, 0x05, 0x40, //   IPSET_ATTR_PORT_TO
    0x7f, 0xff, 0x00, 0x00, //     32767
    0x08, 0x00, 0x19, 0x40, //   IPSET_ATTR_REFERENCES
    0x00, 0x00, 0x00, 0x01, //     1 (the list:set L holds it)
    0x08, 0x00, 0x1a, 0x40, //   IPSET_ATTR_MEMSIZE
    0x00, 0x00, 0x01, 0xa8, //     424
    0x08, 0x00, 0x18, 0x40, //   IPSET_ATTR_ELEMENTS
    0x00, 0x00, 0x00, 0x01, //     1
    0x10, 0x00, 0x08, 0x80, // IPSET_ATTR_ADT | NLA_F_NESTED
    0x0c, 0x00, 0x07, 0x80, //   IPSET_ATTR_DATA | NLA_F_NESTED
    0x06, 0x00, 0x04, 0x40, //     IPSET_ATTR_PORT
    0x75, 0x80, 0x00, 0x00, //       30080
  ], [{
    kind: 'set', name: 'P', typename: 'bitmap:port', family: 0, revision: 3, index: 1,
    header: { portFrom: 30000, portTo: 32767, elements: 1, references: 1, memsize: 424 },
    members: { count: 1, port: [30080] },
  }])
})

t.test('LIST message: hash:ip,port,net member with nomatch', async (t) => {
  decodes(t, [
    0xd0, 0x00, 0x00, 0x00, // nlmsg_len = 208
    0x07, 0x06, //             IPSET_CMD_LIST
    0x02, 0x00, //             NLM_F_MULTI
    0x01, 0x00, 0x00, 0x00, // seq
    0x98, 0x10, 0x00, 0x00, // port id
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x05, 0x00, 0x01, 0x00, // IPSET_ATTR_PROTOCOL
    0x07, 0x00, 0x00, 0x00, //   7
    0x08, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
    0x49, 0x50, 0x4e, 0x00, //   "IPN\0"
    0x15, 0x00, 0x03, 0x00, // nla_len = 21, IPSET_ATTR_TYPENAME
    0x68, 0x61, 0x73, 0x68, //   "hash"
    0x3a, 0x69, 0x70, 0x2c, //   ":ip,"
    0x70, 0x6f, 0x72, 0x74, //   "port"
    0x2c, 0x6e, 0x65, 0x74, //   ",net"
    0x00, 0x00, 0x00, 0x00, //   "\0"
    0x05, 0x00, 0x05, 0x00, // IPSET_ATTR_FAMILY
    0x02, 0x00, 0x00, 0x00, //   NFPROTO_IPV4
    0x05, 0x00, 0x04, 0x00, // IPSET_ATTR_REVISION
    0x08, 0x00, 0x00, 0x00, //   8
    0x06, 0x00, 0x0b, 0x40, // IPSET_ATTR_INDEX
    0x00, 0x02, 0x00, 0x00, //   2
    0x3c, 0x00, 0x07, 0x80, // IPSET_ATTR_DATA | NLA_F_NESTED: header
    0x08, 0x00, 0x12, 0x40, //   HASHSIZE
    0x00, 0x00, 0x04, 0x00, //     1024
    0x08, 0x00, 0x13, 0x40, //   MAXELEM
    0x00, 0x01, 0x00, 0x00, //     65536
    0x05, 0x00, 0x15, 0x00, //   BUCKETSIZE
    0x0c, 0x00, 0x00, 0x00, //     12
    0x08, 0x00, 0x11, 0x40, //   INITVAL
    0xdc, 0x2f, 0x35, 0x6e, //     0xdc2f356e
    0x08, 0x00, 0x19, 0x40, //   REFERENCES
    0x00, 0x00, 0x00, 0x00, //     0
    0x08, 0x00, 0x1a, 0x40, //   MEMSIZE
    0x00, 0x00, 0x02, 0x08, //     520
    0x08, 0x00, 0x18, 0x40, //   ELEMENTS
    0x00, 0x00, 0x00, 0x01, //     1
    0x40, 0x00, 0x08, 0x80, // IPSET_ATTR_ADT | NLA_F_NESTED
    0x3c, 0x00, 0x07, 0x80, //   IPSET_ATTR_DATA | NLA_F_NESTED
    0x0c, 0x00, 0x01, 0x80, //     IPSET_ATTR_IP | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x00, //       IPSET_ATTR_IPADDR_IPV4
    0x0a, 0x00, 0x00, 0x01, //         10.0.0.1
    0x0c, 0x00, 0x14, 0x80, //     IPSET_ATTR_IP2 | NLA_F_NESTED
    0x08, 0x00, 0x01, 0x00, //       IPSET_ATTR_IPADDR_IPV4
    0x0a, 0x01, 0x00, 0x00, //         10.1.0.0
    0x06, 0x00, 0x04, 0x40, //     IPSET_ATTR_PORT
    0x00, 0x35, 0x00, 0x00, //       53
    0x05, 0x00, 0x15, 0x00, //     IPSET_ATTR_CIDR2
    0x10, 0x00, 0x00, 0x00, //       /16
    0x05, 0x00, 0x07, 0x00, //     IPSET_ATTR_PROTO
    0x11, 0x00, 0x00, 0x00, //       IPPROTO_UDP
    0x08, 0x00, 0x08, 0x40, //     IPSET_ATTR_CADT_FLAGS
    0x00, 0x00, 0x00, 0x04, //       IPSET_FLAG_NOMATCH
  ], [{
    kind: 'set', name: 'IPN', typename: 'hash:ip,port,net', family: 2, revision: 8, index: 2,
    header: { hashsize: 1024, maxelem: 65536, bucketsize: 12, initval: 0xdc2f356e, elements: 1, references: 0, memsize: 520 },
    members: { count: 1, ip: ['10.0.0.1'], port: [53], proto: [17], ip2: ['10.1.0.0'], cidr2: [16], flags: [4] },
  }])
})

t.test('LIST message: list:set header (size) and member (a set name)', async (t) => {
  decodes(t, [
    0x80, 0x00, 0x00, 0x00, // nlmsg_len = 128
    0x07, 0x06, //             IPSET_CMD_LIST
    0x02, 0x00, //             NLM_F_MULTI
    0x01, 0x00, 0x00, 0x00, // seq
    0x98, 0x10, 0x00, 0x00, // port id
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x05, 0x00, 0x01, 0x00, // IPSET_ATTR_PROTOCOL
    0x07, 0x00, 0x00, 0x00, //   7
    0x06, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
    0x4c, 0x00, 0x00, 0x00, //   "L\0"
    0x0d, 0x00, 0x03, 0x00, // IPSET_ATTR_TYPENAME
    0x6c, 0x69, 0x73, 0x74, //   "list"
    0x3a, 0x73, 0x65, 0x74, //   ":set"
    0x00, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x05, 0x00, // IPSET_ATTR_FAMILY
    0x00, 0x00, 0x00, 0x00, //   NFPROTO_UNSPEC
    0x05, 0x00, 0x04, 0x00, // IPSET_ATTR_REVISION
    0x03, 0x00, 0x00, 0x00, //   3
    0x06, 0x00, 0x0b, 0x40, // IPSET_ATTR_INDEX
    0x00, 0x03, 0x00, 0x00, //   3
    0x24, 0x00, 0x07, 0x80, // IPSET_ATTR_DATA | NLA_F_NESTED: header
    0x08, 0x00, 0x17, 0x40, //   IPSET_ATTR_SIZE (23)
    0x00, 0x00, 0x00, 0x08, //     8
    0x08, 0x00, 0x19, 0x40, //   REFERENCES
    0x00, 0x00, 0x00, 0x00, //     0
    0x08, 0x00, 0x1a, 0x40, //   MEMSIZE
    0x00, 0x00, 0x00, 0x80, //     128
    0x08, 0x00, 0x18, 0x40, //   ELEMENTS
    0x00, 0x00, 0x00, 0x01, //     1
    0x10, 0x00, 0x08, 0x80, // IPSET_ATTR_ADT | NLA_F_NESTED
    0x0c, 0x00, 0x07, 0x80, //   IPSET_ATTR_DATA | NLA_F_NESTED
    0x06, 0x00, 0x12, 0x00, //     IPSET_ATTR_NAME
    0x50, 0x00, 0x00, 0x00, //       "P\0"
  ], [{
    kind: 'set', name: 'L', typename: 'list:set', family: 0, revision: 3, index: 3,
    header: { size: 8, elements: 1, references: 0, memsize: 128 },
    members: { count: 1, name: ['P'] },
  }])
})

t.test('LIST message of a names-only dump: just the name', async (t) => {
  decodes(t, [
    0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
    0x07, 0x06, //             IPSET_CMD_LIST
    0x02, 0x00, //             NLM_F_MULTI
    0x01, 0x00, 0x00, 0x00, // seq
    0x9c, 0x10, 0x00, 0x00, // port id
    0x02, 0x00, 0x00, 0x00, // nfgenmsg
    0x05, 0x00, 0x01, 0x00, // IPSET_ATTR_PROTOCOL
    0x07, 0x00, 0x00, 0x00, //   7
    0x07, 0x00, 0x02, 0x00, // IPSET_ATTR_SETNAME
    0x4e, 0x36, 0x00, 0x00, //   "N6\0"
  ], [{ kind: 'set', name: 'N6' }])
})

t.test('both ways: our ADT request, read as a dump message, gives back its columns', async (t) => {
  // The kernel's member nests and our entry nests share their layout (but for
  // NLA_F_NET_BYTEORDER on the address, which readers mask off).
  const cols = { count: 3, af: 2, ip: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], port: [80, 443, 8080], proto: [6, 17, 132], ip2: ['10.1.0.1', '10.1.0.2', '10.1.0.3'], timeout: [10, 20, 30] }
  const b = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entries: cols }], 1)
  b.writeUInt16LE(0x0607, 4) // nlmsg_type = IPSET_CMD_LIST
  const [rec] = native.decode('ipset', b).map(plain) as [{ members: unknown }]
  const { af: _, ...members } = cols
  t.strictSame(rec.members, members, 'the same columns (the per-entry line numbers are not members)')
})

t.test('a continuation message (members only, no header) and a malformed member', async (t) => {
  const cont = native.encode('ipset', AF_INET, [{ cmd: 'add', name: 'X', entries: { count: 2, af: 10, ip: ['fd00::1', 'fd00::2'] } }], 1)
  cont.writeUInt16LE(0x0607, 4)
  t.strictSame(native.decode('ipset', cont).map(plain), [{ kind: 'set', name: 'X', members: { count: 2, ip: ['fd00::1', 'fd00::2'] } }], 'no typename: not a set\'s first message')
  // Entry 2's IP nest claims 0xff bytes: the whole message is refused, not given with one member missing.
  const bad = Buffer.from(cont)
  const second = bad.indexOf(Buffer.from([0x18, 0x00, 0x01, 0x80]), bad.indexOf(Buffer.from([0x18, 0x00, 0x01, 0x80])) + 4)
  bad.writeUInt16LE(0xff, second)
  refusesMalformed(t, 'ipset', bad, 'set')
})

t.test('decode skips other subsystems, control messages and commands it does not parse', async (t) => {
  const done = [0x14, 0x00, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x98, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
  const ctnetlink = [...protocolReply]
  ctnetlink[5] = 0x01 // NFNL_SUBSYS_CTNETLINK
  const addEcho = [...protocolReply]
  addEcho[4] = 0x09 // IPSET_CMD_ADD: never a reply
  t.strictSame(native.decode('ipset', Buffer.from([...done, ...ctnetlink, ...addEcho, ...protocolReply])), [{ kind: 'protocol', protocol: 7, protocolMin: 6 }])
})

// The kernel's answer to the ADT request above: entry 3 (10.0.0.1 again)
// failed, entries 1 and 2 went in, entry 4 was not tried. ipset sends its own
// NLMSG_ERROR, never capped: the whole request, its LINENO rewritten to 3.
const adtError = [
  0xa4, 0x00, 0x00, 0x00, // nlmsg_len = 164
  0x02, 0x00, //             NLMSG_ERROR
  0x00, 0x00, //             flags 0: not NLM_F_CAPPED, the request follows whole
  0x01, 0x00, 0x00, 0x00, // seq = the request's
  0xcd, 0xab, 0x00, 0x00, // our port id
  0xf9, 0xef, 0xff, 0xff, // error = -4103 (-IPSET_ERR_EXIST)
  ...adtAddX.slice(0, 40), // the request's header, nfgenmsg, PROTOCOL, SETNAME, LINENO header
  0x00, 0x00, 0x00, 0x03, //   LINENO = 3: the failing entry
  ...adtAddX.slice(44), //   the ADT nest as sent
]

t.test('ADT error: the echoed request carries the failing entry\'s number', async (t) => {
  const out = native.collect('ipset', [false], 0xabcd, 1, [Buffer.from(adtError)])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: 4103, echo: { line: 3 }, records: [] }], 'errno IPSET_ERR_EXIST, line 3')
})

t.test('an ordinary (capped) error has no echo; neither has one without LINENO', async (t) => {
  const capped = [
    0x24, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, // nlmsg_len = 36, NLMSG_ERROR, NLM_F_CAPPED
    0x01, 0x00, 0x00, 0x00, 0xcd, 0xab, 0x00, 0x00, // seq 1, port id
    0xfe, 0xff, 0xff, 0xff, //                         -ENOENT
    ...addIpPortIp.slice(0, 16), //                    the request's header only
  ]
  t.strictSame(native.collect('ipset', [false], 0xabcd, 1, [Buffer.from(capped)]).results, [{ error: 2, records: [] }])
  const whole = [0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xcd, 0xab, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, ...addIpPortIp]
  Buffer.from([whole.length, 0, 0, 0]).forEach((x, i) => (whole[i] = x))
  t.strictSame(native.collect('ipset', [false], 0xabcd, 1, [Buffer.from(whole)]).results, [{ error: 2, records: [] }], 'a single DATA add echoed whole: no line to read')
})
