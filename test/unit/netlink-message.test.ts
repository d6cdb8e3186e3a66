// The message builder of the netlink core (native/netlink/message.cc), seen
// through native.encode: headers, attribute padding, nests, byte order, flags and
// sequence numbers, as the kernel's netlink.h and genetlink.h define them.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { native } from '../../dist/native.js'
import type { NativeOp } from '../../dist/native.js'

const IPVS = 0x24 // the generic netlink id given to IPVS (any id works for encoding)
const GENL_ID_CTRL = 0x10
const NLM_F_REQUEST = 0x01
const NLM_F_ACK = 0x04
const NLM_F_DUMP = 0x300 // NLM_F_ROOT | NLM_F_MATCH
const NLA_F_NESTED = 0x8000

// ---- a strict reader for what encode returns ----------------------------------------------

interface Msg {
  offset: number
  len: number
  type: number
  flags: number
  seq: number
  pid: number
  cmd: number
  version: number
  reserved: number
  /** The attributes after nlmsghdr + genlmsghdr. */
  body: Buffer
}

/** Splits a batch into messages; throws if any length is inconsistent. */
function messages(buf: Buffer): Msg[] {
  const out: Msg[] = []
  let off = 0
  while (off < buf.length) {
    const len = buf.readUInt32LE(off)
    if (len < 20 || off + len > buf.length) throw new Error(`bad nlmsg_len ${len} at ${off}`)
    out.push({
      offset: off,
      len,
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      cmd: buf[off + 16]!,
      version: buf[off + 17]!,
      reserved: buf.readUInt16LE(off + 18),
      body: buf.subarray(off + 20, off + len),
    })
    off += (len + 3) & ~3
  }
  return out
}

interface Attr {
  /** nla_type with its flag bits. */
  type: number
  len: number
  payload: Buffer
  /** The padding bytes after the payload. */
  padding: Buffer
  /** The whole attribute as encoded: header, payload, padding. */
  raw: Buffer
}

/** Splits one attribute level; throws if an attribute overruns it. */
function attrs(buf: Buffer): Attr[] {
  const out: Attr[] = []
  let off = 0
  while (off < buf.length) {
    if (buf.length - off < 4) throw new Error(`stray ${buf.length - off} bytes at ${off}`)
    const len = buf.readUInt16LE(off)
    const aligned = (len + 3) & ~3
    if (len < 4 || off + aligned > buf.length) throw new Error(`bad nla_len ${len} at ${off}`)
    out.push({
      type: buf.readUInt16LE(off + 2),
      len,
      payload: buf.subarray(off + 4, off + len),
      padding: buf.subarray(off + len, off + aligned),
      raw: buf.subarray(off, off + aligned),
    })
    off += aligned
  }
  return out
}

/** The attribute of `type` (flag bits ignored) at one level. */
function attr(level: Attr[], type: number): Attr {
  const a = level.find((x) => (x.type & 0x3fff) === type)
  if (!a) throw new Error(`no attribute ${type}`)
  return a
}

const v4Service = { af: 2, protocol: 6, address: '10.0.0.1', port: 80 }
const v4Dest = { af: 2, address: '10.1.0.5', port: 8080 }
const encode1 = (op: NativeOp, seq = 1): Buffer => native.encode('ipvs', IPVS, [op], seq)

// Every command we send, once.
const everyOp: NativeOp[] = [
  { cmd: 'newService', service: { ...v4Service, scheduler: 'rr' } },
  { cmd: 'setService', service: { ...v4Service, scheduler: 'wlc' } },
  { cmd: 'delService', service: v4Service },
  { cmd: 'getService', service: v4Service },
  { cmd: 'listServices' },
  { cmd: 'newDest', service: v4Service, dest: v4Dest },
  { cmd: 'setDest', service: v4Service, dest: v4Dest },
  { cmd: 'delDest', service: v4Service, dest: v4Dest },
  { cmd: 'listDests', service: v4Service },
  { cmd: 'getInfo' },
  { cmd: 'getConfig' },
  { cmd: 'setConfig', timeouts: { tcp: 900 } },
  { cmd: 'zero' },
  { cmd: 'flush' },
]
// linux/ip_vs.h: enum IPVS_CMD_*.
const expectedCmd = [1, 2, 3, 4, 4, 5, 6, 7, 8, 15, 13, 12, 16, 17]
const isDump = [false, false, false, false, true, false, false, false, true, false, false, false, false, false]

// ---- attributes ---------------------------------------------------------------------------

t.test('one string attribute, padded: "IPVS\\0" is 5 bytes, nla_len 9, then 3 zero bytes', async (t) => {
  const buf = native.encode('genl', 0, [{ cmd: 'getFamily', name: 'IPVS' }], 1)
  t.strictSame(
    [...buf.subarray(20)],
    [
      0x09, 0x00, // nla_len = 9: 4 header + 5 payload, padding not counted
      0x02, 0x00, // nla_type = CTRL_ATTR_FAMILY_NAME
      0x49, 0x50, 0x56, 0x53, 0x00, // "IPVS\0"
      0x00, 0x00, 0x00, // padding to 4
    ],
  )
  t.equal(buf.readUInt32LE(0), 32, 'nlmsg_len counts the padding of the last attribute')
})

t.test('string attributes of every length pad to 4 with zeros', async (t) => {
  // name length -> nla_len (n + NUL + 4) and padding
  const table: [string, number, number][] = [
    ['', 5, 3],
    ['A', 6, 2],
    ['AB', 7, 1],
    ['ABC', 8, 0],
    ['ABCD', 9, 3],
    ['nlctrl', 11, 1],
    ['x'.repeat(16), 21, 3],
  ]
  for (const [name, nlaLen, pad] of table) {
    const buf = native.encode('genl', 0, [{ cmd: 'getFamily', name }], 1)
    const [m] = messages(buf)
    const [a] = attrs(m!.body)
    t.equal(a!.len, nlaLen, `"${name}": nla_len`)
    t.equal(a!.padding.length, pad, `"${name}": ${pad} pad bytes`)
    t.ok(a!.padding.every((b) => b === 0), `"${name}": pad bytes are zero`)
    t.equal(a!.payload.toString('latin1'), `${name}\0`, `"${name}": NUL-terminated`)
    t.equal(m!.len, 20 + nlaLen + pad, `"${name}": nlmsg_len`)
  }
})

t.test('a scheduler name inside a nest pads the same way', async (t) => {
  for (const [scheduler, bytes] of [
    ['rr', [0x07, 0x00, 0x06, 0x00, 0x72, 0x72, 0x00, 0x00]], // len 7, SCHED_NAME, "rr\0", 1 pad
    ['wlc', [0x08, 0x00, 0x06, 0x00, 0x77, 0x6c, 0x63, 0x00]], // len 8, "wlc\0", no pad
    ['lblcr', [0x0a, 0x00, 0x06, 0x00, 0x6c, 0x62, 0x6c, 0x63, 0x72, 0x00, 0x00, 0x00]], // len 10, 2 pad
  ] as const) {
    const [m] = messages(encode1({ cmd: 'newService', service: { ...v4Service, scheduler } }))
    const svc = attrs(attr(attrs(m!.body), 1).payload)
    t.strictSame([...attr(svc, 6).raw], [...bytes], scheduler)
  }
})

t.test('nests carry NLA_F_NESTED; leaf attributes do not; a nest spans exactly its children', async (t) => {
  const [m] = messages(
    encode1({
      cmd: 'newDest',
      service: v4Service,
      dest: { ...v4Dest, forward: 2, tunType: 1, tunPort: 6080, tunFlags: 1 },
    }),
  )
  const top = attrs(m!.body)
  t.strictSame(
    top.map((a) => a.type),
    [0x8001, 0x8002],
    'IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, IPVS_CMD_ATTR_DEST | NLA_F_NESTED',
  )
  for (const nest of top) {
    const kids = attrs(nest.payload)
    t.ok(kids.length > 0, 'nest has children')
    t.ok(kids.every((k) => (k.type & NLA_F_NESTED) === 0), 'children are leaves, flag clear')
    t.equal(nest.len, 4 + kids.reduce((n, k) => n + ((k.len + 3) & ~3), 0), 'nla_len = header + children')
    t.equal(nest.padding.length, 0, 'a nest needs no padding of its own')
  }
  t.equal(m!.body.length, top.reduce((n, a) => n + a.len, 0), 'the nests end the message')

  const set = messages(encode1({ cmd: 'setConfig', timeouts: { tcp: 1, tcpFin: 2, udp: 3 } }))[0]!
  t.strictSame(
    attrs(set.body).map((a) => a.type),
    [4, 5, 6],
    'top-level leaves (timeouts) have no nest flag',
  )
})

t.test('ports are big-endian; families, fwmarks and other numbers host order', async (t) => {
  const [m] = messages(
    encode1({
      cmd: 'newDest',
      service: { af: 2, protocol: 6, address: '10.0.0.1', port: 0x1234 },
      dest: { af: 2, address: '10.1.0.5', port: 443, forward: 2, weight: 0x01020304, tunType: 1, tunPort: 6080 },
    }),
  )
  const [svcNest, destNest] = attrs(m!.body)
  const svc = attrs(svcNest!.payload)
  const dst = attrs(destNest!.payload)
  t.strictSame([...attr(svc, 4).payload], [0x12, 0x34], 'IPVS_SVC_ATTR_PORT 0x1234: 12 34')
  t.strictSame([...attr(svc, 4).padding], [0, 0], 'a u16 attribute pads 2 bytes')
  t.strictSame([...attr(dst, 2).payload], [0x01, 0xbb], 'IPVS_DEST_ATTR_PORT 443: 01 bb')
  t.strictSame([...attr(dst, 14).payload], [0x17, 0xc0], 'IPVS_DEST_ATTR_TUN_PORT 6080: 17 c0')
  t.strictSame([...attr(svc, 1).payload], [0x02, 0x00], 'IPVS_SVC_ATTR_AF 2: 02 00')
  t.strictSame([...attr(svc, 2).payload], [0x06, 0x00], 'IPVS_SVC_ATTR_PROTOCOL 6: 06 00')
  t.strictSame([...attr(dst, 4).payload], [0x04, 0x03, 0x02, 0x01], 'IPVS_DEST_ATTR_WEIGHT: little-endian u32')
  t.strictSame([...attr(dst, 13).payload], [0x01], 'IPVS_DEST_ATTR_TUN_TYPE: one byte')
  t.strictSame([...attr(dst, 13).padding], [0, 0, 0], 'a u8 attribute pads 3 bytes')

  const fw = messages(encode1({ cmd: 'delService', service: { af: 2, fwmark: 0x01020304 } }))[0]!
  t.strictSame([...attr(attrs(attr(attrs(fw.body), 1).payload), 5).payload], [0x04, 0x03, 0x02, 0x01], 'IPVS_SVC_ATTR_FWMARK: host order')

  const max = messages(encode1({ cmd: 'delService', service: { ...v4Service, port: 65535 } }))[0]!
  t.strictSame([...attr(attrs(attr(attrs(max.body), 1).payload), 4).payload], [0xff, 0xff], 'port 65535')
})

// ---- headers ------------------------------------------------------------------------------

t.test('genlmsghdr: the command, version 1, reserved 0', async (t) => {
  const ms = messages(native.encode('ipvs', IPVS, everyOp, 1))
  t.equal(ms.length, everyOp.length, 'one message per operation')
  t.strictSame(
    ms.map((m) => m.cmd),
    expectedCmd,
  )
  t.ok(ms.every((m) => m.version === 1 && m.reserved === 0), 'version 1, reserved 0 everywhere')
  t.ok(ms.every((m) => m.type === IPVS), 'nlmsg_type is the family id given to encode')

  const [ctrl] = messages(native.encode('genl', 0, [{ cmd: 'getFamily', name: 'IPVS' }], 1))
  t.equal(ctrl!.type, GENL_ID_CTRL, 'the controller always answers on GENL_ID_CTRL')
  t.equal(ctrl!.cmd, 3, 'CTRL_CMD_GETFAMILY')
  t.equal(ctrl!.version, 1)
})

t.test('nlmsg_flags: REQUEST|ACK for commands, REQUEST|DUMP for dumps', async (t) => {
  const ms = messages(native.encode('ipvs', IPVS, everyOp, 1))
  ms.forEach((m, i) => {
    const want = isDump[i] ? NLM_F_REQUEST | NLM_F_DUMP : NLM_F_REQUEST | NLM_F_ACK
    t.equal(m.flags, want, `${everyOp[i]!.cmd}: 0x${want.toString(16).padStart(4, '0')}`)
  })
  t.equal(messages(native.encode('genl', 0, [{ cmd: 'getFamily', name: 'IPVS' }]))[0]!.flags, 0x0005)
})

t.test('sequence numbers start at firstSeq and rise by one per message; pid is 0', async (t) => {
  const ms = messages(native.encode('ipvs', IPVS, everyOp, 500))
  t.strictSame(
    ms.map((m) => m.seq),
    everyOp.map((_, i) => 500 + i),
  )
  t.ok(ms.every((m) => m.pid === 0), 'nlmsg_pid 0: the kernel fills in ours')

  const dflt = messages(native.encode('ipvs', IPVS, [{ cmd: 'flush' }, { cmd: 'flush' }]))
  t.strictSame(
    dflt.map((m) => m.seq),
    [1, 2],
    'firstSeq defaults to 1',
  )

  const wrap = messages(native.encode('ipvs', IPVS, [{ cmd: 'flush' }, { cmd: 'flush' }, { cmd: 'flush' }], 0xfffffffe))
  t.strictSame(
    wrap.map((m) => m.seq),
    [0xfffffffe, 0xffffffff, 0],
    'wraps at 2^32',
  )
})

t.test('nlmsg_len is each message exactly; messages sit back to back, 4-aligned', async (t) => {
  const buf = native.encode('ipvs', IPVS, everyOp, 1)
  const ms = messages(buf)
  let off = 0
  ms.forEach((m, i) => {
    const name = everyOp[i]!.cmd
    t.equal(m.offset, off, `${name}: starts where the previous ended`)
    t.equal(m.len % 4, 0, `${name}: length is a multiple of 4`)
    t.equal(m.len, 20 + attrs(m.body).reduce((n, a) => n + ((a.len + 3) & ~3), 0), `${name}: header + genl + attributes`)
    off += m.len
  })
  t.equal(off, buf.length, 'no trailing bytes')

  // Batches are the concatenation of single encodings (only the sequence differs).
  const singles = everyOp.map((op, i) => encode1(op, 1 + i))
  t.strictSame([...buf], [...Buffer.concat(singles)], 'batch = concatenation of its messages')
})

t.test('every encoded message parses strictly, down to the last nested attribute', async (t) => {
  const buf = native.encode('ipvs', IPVS, everyOp, 1)
  messages(buf).forEach((m, i) => {
    t.doesNotThrow(() => {
      for (const a of attrs(m.body)) if (a.type & NLA_F_NESTED) attrs(a.payload)
    }, everyOp[i]!.cmd)
  })
})

// ---- refusals -----------------------------------------------------------------------------

t.test('a bad operation rejects the whole batch, naming what is wrong', async (t) => {
  t.throws(() => native.encode('ipvs', IPVS, [{ cmd: 'flush' }, { cmd: 'explode' }]), { message: /unknown cmd explode/ })
  t.throws(() => native.encode('ipvs', IPVS, [{ cmd: 'newService' }]), { message: /missing field: service/ })
  t.throws(() => native.encode('ipvs', IPVS, [{ cmd: 'delService', service: { af: 2, protocol: 6, port: 80 } }]), {
    message: /missing field: address/,
  })
  t.throws(
    () => native.encode('ipvs', IPVS, [{ cmd: 'delService', service: { ...v4Service, address: '10.0.0.300' } }]),
    { message: /not an IPv4 address in service\.address: 10\.0\.0\.300/ },
  )
  t.throws(() => native.encode('ipvs', IPVS, [{ cmd: 'delService', service: { ...v4Service, address: '::1' } }]), {
    message: /not an IPv4 address/,
  })
  t.throws(() => native.encode('ipvs', IPVS, [{ cmd: 'delService', service: { ...v4Service, port: 1.5 } }]), {
    name: 'RangeError',
    message: /port/,
  })
  t.throws(() => native.encode('ipvs', IPVS, [{ cmd: 'delService', service: { ...v4Service, port: '80' } }]), {
    name: 'TypeError',
    message: /not a number: port/,
  })
  t.throws(() => native.encode('ipvs', IPVS, [42 as unknown as NativeOp]), { message: /operation 0 is not an object/ })
  t.throws(() => native.encode('nope', IPVS, []), { message: /unknown codec nope/ })
})

t.test('an attribute over 64 KiB is refused with an exception, not a crashed process', async (t) => {
  // Builder::put throws nl::EncodeError (a std::runtime_error); the binding must turn
  // it into a JavaScript exception, or the process would abort (std::terminate).
  const script = `
    const { native } = await import(${JSON.stringify(new URL('../../dist/native.js', import.meta.url).href)})
    try {
      native.encode('ipvs', 36, [{ cmd: 'newService', service: { af: 2, protocol: 6, address: '10.0.0.1', port: 80, scheduler: 'x'.repeat(70000) } }], 1)
      console.log('encoded')
    } catch (e) {
      console.log('threw: ' + e.message)
    }`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10000 })
  t.equal(r.signal, null, 'the process is not killed by a signal')
  t.match(r.stdout, /threw: .*65535/, 'encode throws a JavaScript error')
  t.notMatch(r.stdout, /encoded/, 'an oversized attribute is never encoded')
})
