// The netlink core's receive loop (native/netlink/socket.cc, class Collector),
// driven through native.collect with hand-written datagrams: how ACKs, errors,
// extended ACKs, multipart dumps and stray messages are matched to the requests
// of one chunk. No kernel, no root.
import t from 'tap'
import { native } from '../../dist/native.js'
import { ZERO_STATS } from '../support/fixtures.js'

// ---- wire constants (linux/netlink.h, linux/genetlink.h, linux/ip_vs.h) --------------------

const NLMSG_NOOP = 1
const NLMSG_ERROR = 2
const NLMSG_DONE = 3
const NLM_F_REQUEST = 0x01
const NLM_F_MULTI = 0x02
const NLM_F_ACK = 0x04
const NLM_F_DUMP_INTR = 0x10
const NLM_F_CAPPED = 0x100
const NLM_F_ACK_TLVS = 0x200
const NLMSGERR_ATTR_MSG = 1
const NLMSGERR_ATTR_OFFS = 2
const GENL_ID_CTRL = 0x10
const CTRL_CMD_NEWFAMILY = 1
const IPVS_CMD_NEW_SERVICE = 1
const IPVS_CMD_GET_SERVICE = 4
const NLA_F_NESTED = 0x8000

const EINVAL = 22
const EEXIST = 17
const EBUSY = 16
const EBADMSG = 74

/** Our socket's port id and the first sequence number of the chunk under test. */
const PORT = 0x0000abcd
const FIRST = 1000
/** The generic netlink id the kernel gave IPVS (any value >= NLMSG_MIN_TYPE). */
const IPVS = 0x24

// ---- a tiny assembler: netlink is host byte order (little-endian here) --------------------

/** A `size`-byte buffer holding v, written by `write`. */
const field =
  (size: number, write: (b: Buffer, v: number) => unknown) =>
  (v: number): Buffer => {
    const b = Buffer.alloc(size)
    write(b, v)
    return b
  }
const u16 = field(2, (b, v) => b.writeUInt16LE(v))
const u32 = field(4, (b, v) => b.writeUInt32LE(v))
const i32 = field(4, (b, v) => b.writeInt32LE(v))
/** Network byte order, as IPVS ports travel. */
const be16 = field(2, (b, v) => b.writeUInt16BE(v))
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`)
const pad4 = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)])

interface Header {
  type: number
  flags?: number
  seq: number
  /** Defaults to our port: the kernel addresses replies to it. */
  pid?: number
}

/** struct nlmsghdr (16 bytes) + payload, padded to 4; nlmsg_len counts the payload unpadded. */
function nlmsg(h: Header, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload)
  return pad4(
    Buffer.concat([
      u32(16 + body.length), // nlmsg_len
      u16(h.type), // nlmsg_type
      u16(h.flags ?? 0), // nlmsg_flags
      u32(h.seq), // nlmsg_seq
      u32(h.pid ?? PORT), // nlmsg_pid
      body,
    ]),
  )
}

/** struct nlattr: nla_len (header + payload, unpadded), nla_type, payload, padding. */
function nla(type: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload)
  return pad4(Buffer.concat([u16(4 + body.length), u16(type), body]))
}

/** struct genlmsghdr: cmd, version, reserved. */
const genl = (cmd: number): Buffer => Buffer.from([cmd, 1, 0, 0])

/** The header of the request the kernel echoes inside an NLMSG_ERROR (a 20-byte command). */
const echoedHeader = (seq: number, len = 20, flags = NLM_F_REQUEST | NLM_F_ACK): Buffer =>
  Buffer.concat([
    u32(len), // nlmsg_len of our request
    u16(IPVS), // nlmsg_type: the IPVS family
    u16(flags), // nlmsg_flags as we sent them
    u32(seq), // nlmsg_seq as we sent it
    u32(0), // nlmsg_pid: 0 in requests
  ])

/** NLMSG_ERROR: struct nlmsgerr { int error; struct nlmsghdr msg; } (+ echoed payload, + TLVs). */
function ack(seq: number, error = 0, opts: { pid?: number; flags?: number; after?: Buffer[] } = {}): Buffer {
  return nlmsg(
    { type: NLMSG_ERROR, flags: opts.flags ?? NLM_F_CAPPED, seq, pid: opts.pid ?? PORT },
    i32(error), // error: 0 or a negative errno
    echoedHeader(seq), // msg: our request's header
    ...(opts.after ?? []),
  )
}

/** NLMSG_DONE of a dump: an int error (0 or negative), maybe followed by extack TLVs. */
function done(seq: number, error = 0, flags = NLM_F_MULTI, ...tlvs: Buffer[]): Buffer {
  return nlmsg({ type: NLMSG_DONE, flags, seq }, i32(error), ...tlvs)
}

/** One IPVS service (IPVS_CMD_NEW_SERVICE), tcp 10.0.0.1:<port>, rr, as the kernel reports it. */
function service(seq: number, port: number, flags = NLM_F_MULTI, pid = PORT): Buffer {
  return nlmsg(
    { type: IPVS, flags, seq, pid },
    genl(IPVS_CMD_NEW_SERVICE),
    nla(
      1 | NLA_F_NESTED, // IPVS_CMD_ATTR_SERVICE
      nla(1, u16(2)), // IPVS_SVC_ATTR_AF: AF_INET
      nla(2, u16(6)), // IPVS_SVC_ATTR_PROTOCOL: TCP
      nla(3, Buffer.from([10, 0, 0, 1]), Buffer.alloc(12)), // IPVS_SVC_ATTR_ADDR: union nf_inet_addr
      nla(4, be16(port)), // IPVS_SVC_ATTR_PORT: big-endian
      nla(6, cstr('rr')), // IPVS_SVC_ATTR_SCHED_NAME
      nla(7, u32(2), u32(0xffffffff)), // IPVS_SVC_ATTR_FLAGS: { flags: HASHED, mask }
      nla(8, u32(0)), // IPVS_SVC_ATTR_TIMEOUT
      nla(9, Buffer.from([0xff, 0xff, 0xff, 0xff])), // IPVS_SVC_ATTR_NETMASK: /32 as a mask
    ),
  )
}

const zeroStats = ZERO_STATS

/** The record native decodes from service(seq, port). */
const serviceRecord = (port: number) => ({
  kind: 'service',
  af: 2,
  address: '10.0.0.1',
  protocol: 6,
  port,
  scheduler: 'rr',
  flags: 2,
  timeout: 0,
  netmask: 32,
  stats: zeroStats,
})

const collect = (dumps: boolean[], grams: Buffer[], port = PORT, first = FIRST) =>
  native.collect('ipvs', dumps, port, first, grams)

// ---- the assembler itself, checked against bytes written out ------------------------------

t.test('the test assembler lays out an ACK as the kernel does', async (t) => {
  t.strictSame(
    [...ack(FIRST)],
    [
      0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
      0x02, 0x00, // nlmsg_type = NLMSG_ERROR
      0x00, 0x01, // nlmsg_flags = NLM_F_CAPPED
      0xe8, 0x03, 0x00, 0x00, // nlmsg_seq = 1000
      0xcd, 0xab, 0x00, 0x00, // nlmsg_pid = our port 0xabcd
      0x00, 0x00, 0x00, 0x00, // error = 0
      0x14, 0x00, 0x00, 0x00, // echoed nlmsg_len = 20
      0x24, 0x00, // echoed nlmsg_type = IPVS
      0x05, 0x00, // echoed nlmsg_flags = REQUEST | ACK
      0xe8, 0x03, 0x00, 0x00, // echoed nlmsg_seq = 1000
      0x00, 0x00, 0x00, 0x00, // echoed nlmsg_pid = 0
    ],
  )
  t.strictSame(
    [...nla(NLMSGERR_ATTR_MSG, cstr('bad'))],
    [
      0x08, 0x00, // nla_len = 8 (4 + "bad\0")
      0x01, 0x00, // nla_type = NLMSGERR_ATTR_MSG
      0x62, 0x61, 0x64, 0x00, // "bad\0"
    ],
  )
})

// ---- ACKs and errors ----------------------------------------------------------------------

t.test('a plain ACK (NLMSG_ERROR, error 0) completes a request', async (t) => {
  const before = collect([false], [])
  t.equal(before.complete, false, 'nothing received: still waiting')

  const out = collect([false], [ack(FIRST, 0)])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: 0, records: [] }])
  t.strictSame(out.retries, [])
})

t.test('an error ACK with NLM_F_ACK_TLVS | NLM_F_CAPPED gives errno, extack and offset', async (t) => {
  const gram = ack(FIRST, -EEXIST, {
    flags: NLM_F_CAPPED | NLM_F_ACK_TLVS,
    after: [
      nla(NLMSGERR_ATTR_MSG, cstr('Service already exists')), // nla_len 27, 1 pad byte
      nla(NLMSGERR_ATTR_OFFS, u32(28)), // the bad attribute sits 28 bytes into our request
    ],
  })
  t.equal(gram.length, 16 + 4 + 16 + 28 + 8, 'header, error, echoed header, two TLVs')
  const out = collect([false], [gram])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: EEXIST, extack: 'Service already exists', extackOffset: 28, records: [] }])
})

t.test('an error ACK without NLM_F_ACK_TLVS carries no extack even if bytes follow', async (t) => {
  const out = collect([false], [ack(FIRST, -EINVAL, { after: [nla(NLMSGERR_ATTR_MSG, cstr('ignored'))] })])
  t.strictSame(out.results, [{ error: EINVAL, records: [] }])
})

t.test('an error without NLM_F_CAPPED echoes the whole request; the TLVs after it are still found', async (t) => {
  // What the kernel echoes when NETLINK_CAP_ACK is off: our whole request.
  const request = native.encode(
    'ipvs',
    IPVS,
    [{ cmd: 'newService', service: { af: 2, protocol: 6, address: '10.0.0.1', port: 80, scheduler: 'rr' } }],
    FIRST,
  )
  t.equal(request.length, 104, 'a 104-byte request is echoed')
  const gram = nlmsg(
    { type: NLMSG_ERROR, flags: NLM_F_ACK_TLVS, seq: FIRST }, // no NLM_F_CAPPED
    i32(-EINVAL), // error
    request, // msg: the request, whole
    nla(NLMSGERR_ATTR_MSG, cstr('Invalid scheduler')),
    nla(NLMSGERR_ATTR_OFFS, u32(68)),
  )
  const out = collect([false], [gram])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: EINVAL, extack: 'Invalid scheduler', extackOffset: 68, records: [] }])

  // The same bytes flagged CAPPED would be read at the wrong place: proves the flag is honoured.
  const capped = Buffer.from(gram)
  capped.writeUInt16LE(NLM_F_ACK_TLVS | NLM_F_CAPPED, 6)
  const wrong = collect([false], [capped])
  t.equal(wrong.results[0]!.error, EINVAL)
  t.not(wrong.results[0]!.extack, 'Invalid scheduler', 'TLVs are not looked for right after the header')
})

t.test('an NLMSG_ERROR too short for struct nlmsgerr fails the request with EBADMSG', async (t) => {
  const gram = nlmsg({ type: NLMSG_ERROR, seq: FIRST }, i32(0)) // 4 bytes of a 20-byte nlmsgerr
  const out = collect([false], [gram])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: EBADMSG, records: [] }])
})

t.test('only the first answer counts: a second ACK for the same request is ignored', async (t) => {
  const out = collect([false], [Buffer.concat([ack(FIRST, -EEXIST), ack(FIRST, 0)])])
  t.strictSame(out.results, [{ error: EEXIST, records: [] }])
})

// ---- dumps --------------------------------------------------------------------------------

t.test('a multipart dump over two datagrams collects every record in order', async (t) => {
  const gram1 = Buffer.concat([service(FIRST, 80), service(FIRST, 81)])
  const gram2 = Buffer.concat([service(FIRST, 82), done(FIRST)])

  const half = collect([true], [gram1])
  t.equal(half.complete, false, 'no NLMSG_DONE yet')

  const out = collect([true], [gram1, gram2])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: 0, records: [serviceRecord(80), serviceRecord(81), serviceRecord(82)] }])
  t.strictSame(out.retries, [])
})

t.test('an ACK does not end a dump and NLMSG_DONE does not end a command', async (t) => {
  // A dump is ended by NLMSG_DONE only; a stray DONE for a command is ignored.
  const cmd = collect([false], [done(FIRST)])
  t.equal(cmd.complete, false, 'NLMSG_DONE ignored for a non-dump request')
  const noop = collect([true], [nlmsg({ type: NLMSG_NOOP, seq: FIRST }), service(FIRST, 80)])
  t.equal(noop.complete, false, 'NLMSG_NOOP and data leave the dump open')
  t.strictSame(noop.results[0]!.records, [serviceRecord(80)], 'NLMSG_NOOP is not a record')
})

t.test('NLMSG_DONE carrying a negative error fails the dump, with its extack', async (t) => {
  const out = collect([true], [Buffer.concat([service(FIRST, 80), done(FIRST, -EINVAL)])])
  t.equal(out.complete, true)
  t.equal(out.results[0]!.error, EINVAL)
  t.strictSame(out.retries, [])

  const withText = collect(
    [true],
    [done(FIRST, -EINVAL, NLM_F_MULTI | NLM_F_ACK_TLVS, nla(NLMSGERR_ATTR_MSG, cstr('dump failed')))],
  )
  t.strictSame(withText.results, [{ error: EINVAL, extack: 'dump failed', records: [] }])
})

t.test('NLM_F_DUMP_INTR on a data message: retry "interrupted", records dropped', async (t) => {
  const gram = Buffer.concat([
    service(FIRST, 80),
    service(FIRST, 81, NLM_F_MULTI | NLM_F_DUMP_INTR), // the table changed mid-dump
    service(FIRST, 82),
    done(FIRST),
  ])
  const out = collect([true], [gram])
  t.equal(out.complete, true, 'the chunk is finished: the retry is the verdict')
  t.strictSame(out.retries, [{ index: 0, reason: 'interrupted' }])
  t.strictSame(out.results, [{ error: 0, records: [] }], 'a partial, inconsistent dump is not kept')
})

t.test('NLM_F_DUMP_INTR on NLMSG_DONE alone also asks for a retry', async (t) => {
  const out = collect([true], [Buffer.concat([service(FIRST, 80), done(FIRST, 0, NLM_F_MULTI | NLM_F_DUMP_INTR)])])
  t.strictSame(out.retries, [{ index: 0, reason: 'interrupted' }])
  t.strictSame(out.results[0]!.records, [])
})

t.test('a dump answered EBUSY is retried ("busy"); a command answered EBUSY just fails', async (t) => {
  const out = collect([false, true], [Buffer.concat([ack(FIRST, 0), ack(FIRST + 1, -EBUSY)])])
  t.equal(out.complete, true)
  t.strictSame(out.retries, [{ index: 1, reason: 'busy' }])
  t.strictSame(out.results, [
    { error: 0, records: [] },
    { error: 0, records: [] },
  ])

  const cmd = collect([false], [ack(FIRST, -EBUSY)])
  t.strictSame(cmd.retries, [])
  t.equal(cmd.results[0]!.error, EBUSY)
})

// ---- what is not ours ---------------------------------------------------------------------

t.test('replies to another port id are ignored', async (t) => {
  const other = collect([false], [ack(FIRST, -EEXIST, { pid: PORT + 1 })])
  t.equal(other.complete, false)
  t.strictSame(other.results, [{ error: 0, records: [] }])

  const dump = collect([true], [Buffer.concat([service(FIRST, 79, NLM_F_MULTI, 77), service(FIRST, 80), done(FIRST)])])
  t.strictSame(dump.results[0]!.records, [serviceRecord(80)], "another port's data message is not collected")

  const then = collect([false], [ack(FIRST, -EEXIST, { pid: PORT + 1 }), ack(FIRST, 0)])
  t.equal(then.complete, true, 'our own ACK still completes it')
  t.equal(then.results[0]!.error, 0)
})

t.test('port id 0 (collector not bound to a port) accepts any sender', async (t) => {
  const out = collect([false], [ack(FIRST, -EEXIST, { pid: 4242 })], 0)
  t.equal(out.complete, true)
  t.equal(out.results[0]!.error, EEXIST)
})

t.test('replies with a stale or unknown sequence number are ignored', async (t) => {
  const stale = [
    ack(FIRST - 1, -EEXIST), // the previous chunk's
    ack(FIRST + 2, -EEXIST), // beyond this chunk (two requests: FIRST, FIRST + 1)
    ack(0xffffffff, -EEXIST), // wraps to a huge slot
    service(FIRST - 5, 80, 0), // an old data message
  ]
  const out = collect([false, false], stale)
  t.equal(out.complete, false)
  t.strictSame(out.results, [
    { error: 0, records: [] },
    { error: 0, records: [] },
  ])
})

t.test('several requests of one batch answered out of order are each matched by sequence', async (t) => {
  // 0: getService (data then ACK), 1: a dump, 2: a command that fails, 3: a command that succeeds.
  const grams = [
    Buffer.concat([ack(FIRST + 3, 0), service(FIRST + 1, 443), ack(FIRST + 2, -EEXIST)]),
    Buffer.concat([service(FIRST, 80, 0), service(FIRST + 1, 444)]),
    Buffer.concat([done(FIRST + 1), ack(FIRST, 0)]),
  ]
  const partial = collect([false, true, false, false], grams.slice(0, 2))
  t.equal(partial.complete, false, 'requests 0 and 1 still open after two datagrams')

  const out = collect([false, true, false, false], grams)
  t.equal(out.complete, true)
  t.strictSame(out.results, [
    { error: 0, records: [serviceRecord(80)] },
    { error: 0, records: [serviceRecord(443), serviceRecord(444)] },
    { error: EEXIST, records: [] },
    { error: 0, records: [] },
  ])
  t.strictSame(out.retries, [])
})

t.test('sequence numbers that wrap past 2^32 inside a chunk still match', async (t) => {
  const first = 0xffffffff
  const out = collect([false, false], [Buffer.concat([ack(0, -EEXIST), ack(0xffffffff, 0)])], PORT, first)
  t.equal(out.complete, true)
  t.strictSame(
    out.results.map((r) => r.error),
    [0, EEXIST],
  )
})

// ---- damaged input ------------------------------------------------------------------------

t.test('a truncated datagram does not crash and leaves the request incomplete', async (t) => {
  const whole = ack(FIRST, -EEXIST)
  for (const cut of [0, 3, 15, 16, 20, whole.length - 1]) {
    const out = collect([false], [whole.subarray(0, cut)])
    t.equal(out.complete, false, `cut at ${cut} bytes`)
    t.equal(out.results[0]!.error, 0)
  }
  const lying = Buffer.from(whole)
  lying.writeUInt32LE(8, 0) // nlmsg_len shorter than a header
  t.equal(collect([false], [lying]).complete, false, 'nlmsg_len < 16 is ignored')

  // A good message followed by a truncated one: the good one counts.
  const out = collect([false, false], [Buffer.concat([ack(FIRST, 0), ack(FIRST + 1, 0).subarray(0, 30)])])
  t.equal(out.complete, false)
  t.equal(out.results[0]!.error, 0)
  const again = collect([false, false], [Buffer.concat([ack(FIRST, 0), ack(FIRST + 1, 0).subarray(0, 30)]), ack(FIRST + 1, -EINVAL)])
  t.equal(again.complete, true, 'a later datagram still completes the rest')
  t.equal(again.results[1]!.error, EINVAL)
})

t.test('a truncated data message inside a dump is dropped without harm', async (t) => {
  const cut = service(FIRST, 81).subarray(0, 60)
  const out = collect([true], [Buffer.concat([service(FIRST, 80), cut]), done(FIRST)])
  t.equal(out.complete, true)
  t.strictSame(out.results[0]!.records, [serviceRecord(80)])
})

// ---- get replies --------------------------------------------------------------------------

t.test('a get (non-dump) reply followed by its ACK keeps the data record', async (t) => {
  const out = collect([false], [service(FIRST, 8080, 0), ack(FIRST, 0)])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: 0, records: [serviceRecord(8080)] }])

  const same = collect([false], [Buffer.concat([service(FIRST, 8080, 0), ack(FIRST, 0)])])
  t.strictSame(same.results, out.results, 'one datagram or two: the same outcome')
})

t.test('the controller (genl codec) decodes its family reply through the same loop', async (t) => {
  const reply = nlmsg(
    { type: GENL_ID_CTRL, seq: FIRST },
    genl(CTRL_CMD_NEWFAMILY),
    nla(2, cstr('IPVS')), // CTRL_ATTR_FAMILY_NAME
    nla(1, u16(0x24)), // CTRL_ATTR_FAMILY_ID
    nla(3, u32(1)), // CTRL_ATTR_VERSION
    nla(4, u32(0)), // CTRL_ATTR_HDRSIZE
    nla(5, u32(6)), // CTRL_ATTR_MAXATTR
  )
  const out = native.collect('genl', [false], PORT, FIRST, [reply, ack(FIRST, 0)])
  t.equal(out.complete, true)
  t.strictSame(out.results, [{ error: 0, records: [{ id: 0x24, name: 'IPVS', version: 1, maxAttr: 6 }] }])

  const missing = native.collect('genl', [false], PORT, FIRST, [ack(FIRST, -2)])
  t.strictSame(missing.results, [{ error: 2, records: [] }], 'ENOENT: no such family')
})

t.test('an unknown IPVS command in a reply is not a record', async (t) => {
  const get = nlmsg({ type: IPVS, seq: FIRST }, genl(IPVS_CMD_GET_SERVICE)) // a request echo, not a reply
  const out = collect([false], [get, ack(FIRST, 0)])
  t.strictSame(out.results, [{ error: 0, records: [] }])
})

// ---- a burst where only the last request asks for an ACK (how Socket sends batches) ---------

t.test('burst: the last request\'s ACK completes the earlier ones that got no error', async (t) => {
  const first = native.collect('ipvs', [false, false, false, false], PORT, FIRST, [ack(FIRST + 1, -EEXIST)], 3)
  t.equal(first.complete, false, 'an error alone does not end the burst')
  t.equal(first.results[1]!.error, EEXIST, 'the failed request has its error at once')
  const r = native.collect('ipvs', [false, false, false, false], PORT, FIRST, [ack(FIRST + 1, -EEXIST), ack(FIRST + 3)], 3)
  t.equal(r.complete, true)
  t.same(r.results.map((x) => x.error), [0, EEXIST, 0, 0], 'silent requests before the ACK succeeded')
})

t.test('burst: a get\'s reply before the final ACK is kept; a dump is not completed by it', async (t) => {
  const r = native.collect('ipvs', [false, true, false], PORT, FIRST, [service(FIRST, 80, 0), ack(FIRST + 2)], 2)
  t.equal(r.complete, false, 'the dump still waits for its NLMSG_DONE')
  t.same(r.results[0]!.records, [serviceRecord(80)], 'the get kept its reply')
  t.equal(r.results[2]!.error, 0)
  const done2 = native.collect('ipvs', [false, true, false], PORT, FIRST, [service(FIRST, 80, 0), ack(FIRST + 2), service(FIRST + 1, 81), done(FIRST + 1)], 2)
  t.equal(done2.complete, true)
  t.same(done2.results[1]!.records, [serviceRecord(81)])
})

t.test('burst: without its ACK nothing silent counts as done', async (t) => {
  const r = native.collect('ipvs', [false, false, false], PORT, FIRST, [], 2)
  t.equal(r.complete, false)
  const other = native.collect('ipvs', [false, false, false], PORT, FIRST, [ack(FIRST + 1)], 2)
  t.equal(other.complete, false, 'an ACK of another slot does not end the burst')
})
