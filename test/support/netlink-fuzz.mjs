// The netlink decoders under fuzzed input, in a process of its own
// (test/unit/netlink-fuzz.test.ts runs it: a crash of the addon is then a
// failed test naming the seed and the input, not a dead test runner).
//
// The corpus is the captured replies of the byte-fixture tests
// (test/unit/*-fixtures.test.ts, read from their source), our own encoded
// requests, and hand-built core messages (NLMSG_ERROR with extack, capped,
// DONE, multipart). Each case takes one or two of them and mutates them: bit
// flips, truncation, nlmsg_len and nla_len lies, nesting flags and types
// flipped, bytes inserted or cut, random bytes, splices of two messages. Then:
//   - native.decode(codec, bytes) through every codec: records must be
//     well-formed (each field of the type its codec gives it, nothing else),
//     or the decode refused with EBADMSG naming a record of that codec;
//   - native.collect(codec, ...) (the receive loop: errors, extack, DONE,
//     multipart, sequence matching): results line up, errnos are positive, a
//     request failed as malformed carries no record;
//   - the typed API over those records and results (a fake socket answering
//     with them): a typed error (NetlinkError) or records without holes,
//     never a plain TypeError / RangeError;
//   - lib/iptables' entry decoder (iptablesDecodeRule) on mutated entries.
//
// Case i is generated from (seed, i) alone, so one case replays by itself.
//
//   node netlink-fuzz.mjs                      env: TSPROXY_FUZZ_SEED, TSPROXY_FUZZ_MS, TSPROXY_FUZZ_CASES,
//                                              TSPROXY_FUZZ_FROM / _TO (a range), TSPROXY_FUZZ_TRACE=1
// Prints `progress <next case>` lines as it goes, `failure <json>` per failed
// check, and `done <json>` at the end; with TRACE, `case <i> <what> <hex>` before each.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { nlmsg } from './nlmsg.mjs'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const dist = (p) => import(path.join(repoRoot, 'dist', p))
const { native } = await dist('native.js')
const api = await dist('index.js')
const { NetlinkSocket } = await dist('netlink/socket.js')

const seed = Number(process.env.TSPROXY_FUZZ_SEED ?? 0x7e57) >>> 0
const budgetMs = Number(process.env.TSPROXY_FUZZ_MS ?? 4000)
const maxCases = Number(process.env.TSPROXY_FUZZ_CASES ?? 1e9)
const from = Number(process.env.TSPROXY_FUZZ_FROM ?? 0)
const to = Number(process.env.TSPROXY_FUZZ_TO ?? Infinity)
const trace = process.env.TSPROXY_FUZZ_TRACE === '1'

// ---- PRNG: mulberry32, one stream per case ---------------------------------------------------

function rng(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const caseRng = (i) => rng((Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) | 0)

// ---- corpus ------------------------------------------------------------------------------------

/** Every `const name = [ numbers… ]` of a fixture test, spreads of earlier ones resolved. */
function fixtureArrays(file) {
  const text = fs.readFileSync(path.join(repoRoot, 'test/unit', file), 'utf8')
  const out = new Map()
  const re = /^(\s*)const (\w+)(?:: number\[\])? = \[\n([\s\S]*?)^\1\]/gm
  for (let m; (m = re.exec(text));) {
    const items = m[3].replace(/\/\/.*$/gm, '').split(',').map((s) => s.trim()).filter(Boolean)
    const bytes = []
    let ok = true
    for (const it of items) {
      if (/^(0x[0-9a-f]+|\d+)$/i.test(it)) bytes.push(Number(it))
      else if (it.startsWith('...') && out.has(it.slice(3))) bytes.push(...out.get(it.slice(3)))
      else ok = false
    }
    if (ok && bytes.every((b) => b >= 0 && b < 256)) out.set(m[2], bytes)
  }
  return out
}

/** Only whole netlink messages (nlmsg_len at offset 0 equal to the length, or a chain of them). */
function messages(bytes) {
  const b = Buffer.from(bytes)
  let o = 0
  while (o + 16 <= b.length) {
    const len = b.readUInt32LE(o)
    if (len < 16 || o + len > b.length) return null
    o += (len + 3) & ~3
  }
  return o >= b.length && b.length >= 16 ? b : null
}

const corpus = { ipvs: [], genl: [], ipset: [], route: [], conntrack: [], nftables: [] }
for (const [file, codec] of [['ipvs-fixtures.test.ts', 'ipvs'], ['ipset-fixtures.test.ts', 'ipset'], ['route-fixtures.test.ts', 'route'], ['conntrack-fixtures.test.ts', 'conntrack']]) {
  for (const bytes of fixtureArrays(file).values()) {
    const b = messages(bytes)
    if (b) corpus[codec].push(b)
  }
}

// Our own requests: the same attribute layouts, and what the kernel echoes with an error.
const enc = (codec, family, ops) => {
  try {
    return native.encode(codec, family, ops, 1)
  } catch {
    return null
  }
}
const svc = { af: 2, protocol: 6, address: '10.0.0.1', port: 80, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff }
for (const [codec, b] of [
  ['ipvs', enc('ipvs', 0x24, [{ cmd: 'newService', service: svc }])],
  ['ipvs', enc('ipvs', 0x24, [{ cmd: 'newDest', service: svc, dest: { af: 2, address: '10.1.0.1', port: 8080, forward: 0, weight: 1, upperThreshold: 0, lowerThreshold: 0 } }])],
  ['genl', enc('genl', 0x10, [{ cmd: 'getFamily', name: 'IPVS' }])],
  ['route', enc('route', 0, [{ cmd: 'listLinks' }])],
  ['conntrack', enc('conntrack', 0, [{ cmd: 'count' }])],
  ['nftables', enc('nftables', 0, [{ cmd: 'getTables' }, { cmd: 'getChains' }])],
]) if (b) corpus[codec].push(b)

// nf_tables replies: NEWTABLE / NEWCHAIN (subsystem 10), as the kernel dumps them.
function attr(type, payload) {
  const b = Buffer.alloc((4 + payload.length + 3) & ~3)
  b.writeUInt16LE(4 + payload.length, 0)
  b.writeUInt16LE(type, 2)
  payload.copy(b, 4)
  return b
}
const str = (s) => Buffer.from(`${s}\0`, 'latin1')
const be32 = (n) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
const nfgen = (family) => Buffer.from([family, 0, 0, 0])
const NEST = 0x8000
corpus.nftables.push(
  nlmsg((10 << 8) | 0, 2, 1, 0, Buffer.concat([nfgen(2), attr(1, str('nat')), attr(3, be32(4))])),
  nlmsg((10 << 8) | 3, 2, 1, 0, Buffer.concat([nfgen(2), attr(1, str('nat')), attr(3, str('KUBE-SERVICES'))])),
  nlmsg((10 << 8) | 3, 2, 1, 0, Buffer.concat([nfgen(10), attr(1, str('filter')), attr(3, str('INPUT')), attr(4 | NEST, Buffer.concat([attr(1, be32(1)), attr(2, be32(0))]))])),
)
// Kernel replies recorded from Linux 6.18 (test/unit/nftables-fixtures.test.ts has them commented).
for (const hex of [
  // a rule: payload, cmp, jump
  'cc000000060a020800000000f973000002000002060001007400000007000200723100000c00030000000000000000079c000400340001000c0001007061796c6f6164002400020008000100000000010800020000000001080003000000001008000400000000042c00010008000100636d700020000200080001000000000108000200000000000c000300080001000a000001380001000e000100696d6d656469617465000000240002000800010000000000180002001400020008000100fffffffd0700020065700000',
  // a rule: meta, cmp, immediate data, nat, a comment
  '38010000060a020800000000f973000002000002060001007400000007000200723100000c00030000000000000000090c0006000000000000000008f400040024000100090001006d6574610000000014000200080002000000001008000100000000012c00010008000100636d700020000200080001000000000108000200000000000c00030005000100060000002c0001000e000100696d6d6564696174650000001800020008000100000000010c000200080001000a0000012c0001000e000100696d6d6564696174650000001800020008000100000000020c000200060001000050000048000100080001006e6174003c00020008000100000000010800020000000002080003000000000108000400000000010800050000000002080006000000000208000700000000030800070000027800',
  // a rule: numgen, lookup of an anonymous map
  'ac000000060a020800000000f973000002000002060001007400000007000200723100000c000300000000000000000b0c000600000000000000000970000400340001000b0001006e756d67656e0000240002000800010000000001080002000000000208000300000000010800040000000000380001000b0001006c6f6f6b75700000280002000b0001005f5f6d6170300000080002000000000108000300000000000800050000000000',
  // a verdict map
  'a8000000090a020000000000f973000002000002060001007400000008000200737663000c00100000000000000000040800030000000008080004000000730d080005000000000c08000600ffffff0008000700000000102a000d00000400000000010400000000030800040d00000001000604000000000708737663206d6170000000040009001700130030786666666666666666383235303837343000000800140000000001',
  // interval elements
  '280000000c0a020000000000f9730000020000020600010074000000080002007376630004000300',
  // a verdict map element with a comment
  '600000000c0a020000000000f973000002000002060001007400000008000200737663003c0003003800010014000100100001000a0000010600000000500000180002001400020008000100fffffffc07000200657000000800060000026500',
  // the generation
  '2c0000000f0a000000000000f973000000000002080001000000000208000200000073f9080003006e667400',
]) corpus.nftables.push(Buffer.from(hex, 'hex'))
corpus.genl.push(nlmsg(0x10, 0, 1, 0, Buffer.concat([Buffer.from([1, 2, 0, 0]), attr(1, Buffer.from([0x24, 0])), attr(2, str('IPVS')), attr(3, Buffer.from([1, 0, 0, 0])), attr(5, Buffer.from([6, 0, 0, 0]))])))

// The core's own messages: ACKs, errors with extack, capped, DONE (with an error, extack), multipart.
const NLMSG_ERROR = 2
const NLMSG_DONE = 3
const F_MULTI = 2
const F_CAPPED = 0x100
const F_ACK_TLVS = 0x200
const F_DUMP_INTR = 0x10
function errorMsg(seq, pid, errno, { request = null, capped = false, extack = null, offset = null } = {}) {
  const req = request ?? nlmsg(0x24, 5, seq, pid, Buffer.alloc(4))
  const echoed = capped ? req.subarray(0, 16) : req
  const tlvs = []
  if (extack !== null) tlvs.push(attr(1, str(extack)))
  if (offset !== null) tlvs.push(attr(2, Buffer.from(new Uint32Array([offset]).buffer)))
  const e = Buffer.alloc(4)
  e.writeInt32LE(errno)
  return nlmsg(NLMSG_ERROR, (capped ? F_CAPPED : 0) | (tlvs.length ? F_ACK_TLVS : 0), seq, pid, Buffer.concat([e, echoed, ...tlvs]))
}
function doneMsg(seq, pid, errno = 0, extack = null, flags = F_MULTI) {
  const e = Buffer.alloc(4)
  e.writeInt32LE(errno)
  return nlmsg(NLMSG_DONE, flags | (extack ? F_ACK_TLVS : 0), seq, pid, Buffer.concat([e, ...(extack ? [attr(1, str(extack))] : [])]))
}
/** A data message of `codec` rewritten to (seq, pid), multipart. */
function data(b, seq, pid, flags = F_MULTI) {
  const c = Buffer.from(b.subarray(0, Math.min(b.length, b.readUInt32LE(0))))
  c.writeUInt16LE(c.readUInt16LE(6) | flags, 6)
  c.writeUInt32LE(seq, 8)
  c.writeUInt32LE(pid, 12)
  return c
}
const PORT = 0x4d2
const SEQ = 1000

const CODECS = Object.keys(corpus)
for (const c of CODECS) if (corpus[c].length === 0) throw new Error(`no corpus for ${c}: the fixture files changed shape?`)

// ---- mutations -----------------------------------------------------------------------------------

function mutate(r, input, other) {
  let b = Buffer.from(input)
  const n = 1 + Math.floor(r() * 3)
  const done = []
  const int = (k) => Math.floor(r() * k)
  for (let k = 0; k < n; k++) {
    const m = int(10)
    if (b.length === 0 && m !== 8) continue
    switch (m) {
      case 0: { // bit flips
        const flips = 1 + int(8)
        for (let f = 0; f < flips; f++) b[int(b.length)] ^= 1 << int(8)
        done.push(`flip${flips}`)
        break
      }
      case 1: // truncation
        b = b.subarray(0, int(b.length))
        done.push(`cut${b.length}`)
        break
      case 2: { // an nlmsg_len lie
        if (b.length < 4) break
        const v = [0, 15, 16, 17, b.length + 4, b.length - 4, 0xffffffff, int(b.length * 2)][int(8)] >>> 0
        b.writeUInt32LE(v, 0)
        done.push(`nlmsg_len=${v}`)
        break
      }
      case 3: // an nla_len lie at an aligned offset past the headers
      case 4: {
        if (b.length < 24) break
        const o = 16 + 4 * int((b.length - 18) / 4)
        const cur = b.readUInt16LE(o)
        const v = [0, 3, 4, 5, cur + 4, cur - 4, 0xffff, int(0x10000), b.length - o + 4][int(9)] & 0xffff
        b.writeUInt16LE(v, o)
        done.push(`nla_len@${o}=${v}`)
        break
      }
      case 5: { // nesting flag or type flipped
        if (b.length < 24) break
        const o = 16 + 4 * int((b.length - 20) / 4) + 2
        const v = r() < 0.5 ? b.readUInt16LE(o) ^ NEST : int(0x10000)
        b.writeUInt16LE(v & 0xffff, o)
        done.push(`nla_type@${o}=${v & 0xffff}`)
        break
      }
      case 6: { // bytes inserted
        const at = int(b.length + 1)
        const ins = Buffer.from(Array.from({ length: 1 + int(12) }, () => int(256)))
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)])
        done.push(`ins${ins.length}@${at}`)
        break
      }
      case 7: { // bytes cut out
        const at = int(b.length)
        const len = 1 + int(12)
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)])
        done.push(`del${len}@${at}`)
        break
      }
      case 8: { // random bytes, sometimes behind a plausible header
        const rnd = Buffer.from(Array.from({ length: int(300) }, () => int(256)))
        if (rnd.length >= 16 && r() < 0.6) {
          rnd.writeUInt32LE(rnd.length, 0)
          if (b.length >= 8) b.copy(rnd, 4, 4, 8) // the type and flags of the input
        }
        b = rnd
        done.push(`random${rnd.length}`)
        break
      }
      case 9: { // a splice of two messages
        const a = int(b.length + 1)
        const c = int(other.length + 1)
        b = r() < 0.5 ? Buffer.concat([b.subarray(0, a), other.subarray(c)]) : Buffer.concat([b, other])
        done.push(`splice@${a}/${c}`)
        break
      }
    }
  }
  return { bytes: b, how: done.join(',') || 'none' }
}

// ---- what a well-formed record is ---------------------------------------------------------------

const U = 'u' // an unsigned integer
const I = 'i' // an integer
const S = 's'
const B = 'b'
const opt = (t) => `${t}?`
const STATS = { conns: U, inPackets: U, outPackets: U, inBytes: U, outBytes: U, cps: U, inPps: U, outPps: U, inBps: U, outBps: U }
const TUPLE = { src: opt(S), dst: opt(S), proto: U, sport: opt(U), dport: opt(U), icmpId: opt(U), icmpType: opt(U), icmpCode: opt(U), zone: opt(U) }
const SCHEMAS = {
  ipvs: {
    service: { kind: S, af: U, fwmark: opt(U), address: opt(S), protocol: opt(U), port: opt(U), scheduler: S, peName: opt(S), flags: U, timeout: U, netmask: U, stats: STATS },
    destination: { kind: S, af: U, address: opt(S), port: U, forward: U, weight: U, upperThreshold: U, lowerThreshold: U, activeConns: U, inactiveConns: U, persistConns: U, tunType: opt(U), tunPort: opt(U), tunFlags: opt(U), stats: STATS },
    info: { kind: S, version: U, connTableSize: U },
    config: { kind: S, tcp: U, tcpFin: U, udp: U },
  },
  genl: { undefined: { id: U, name: S, version: U, maxAttr: U } },
  ipset: {
    protocol: { kind: S, protocol: U, protocolMin: opt(U) },
    type: { kind: S, typename: S, family: U, revision: U, revisionMin: U },
    header: { kind: S, name: S, typename: S, family: U, revision: U },
    set: { kind: S, name: S, typename: opt(S), family: opt(U), revision: opt(U), index: opt(U), header: opt('header'), members: opt('members') },
  },
  route: {
    link: { kind: S, index: I, name: S, type: U, flags: U, mtu: opt(U), operState: opt(U), master: opt(U), link: opt(U), mac: opt('buffer'), linkKind: opt(S) },
    address: { kind: S, family: U, prefix: U, index: U, scope: U, flags: U, address: opt(S), peer: opt(S), label: opt(S), validLifetime: opt(U), preferredLifetime: opt(U) },
  },
  conntrack: {
    entry: { kind: S, family: U, orig: TUPLE, reply: TUPLE, status: U, timeout: opt(U), mark: opt(U), id: opt(U), use: opt(U), zone: opt(U), tcpState: opt(U), sctpState: opt(U) },
    stats: { kind: S, entries: U, maxEntries: opt(U) },
  },
  nftables: {
    table: { kind: S, family: U, name: S, use: U, flags: opt(U), handle: opt(U), userdata: opt('buffer') },
    chain: {
      kind: S, family: U, table: S, name: S, base: B, handle: opt(U), hook: opt(U), priority: opt(I), device: opt(S), type: opt(S),
      policy: opt(U), flags: opt(U), use: opt(U), userdata: opt('buffer'),
    },
    rule: { kind: S, family: U, table: S, chain: S, handle: opt(U), position: opt(U), userdata: opt('buffer'), expressions: 'exprs' },
    set: {
      kind: S, family: U, table: S, name: S, handle: opt(U), flags: opt(U), keyType: opt(U), keyLen: opt(U), dataType: opt(U), dataLen: opt(U),
      policy: opt(U), id: opt(U), timeout: opt(U), gcInterval: opt(U), userdata: opt('buffer'), size: opt(U), concat: opt('uints'),
    },
    elements: { kind: S, family: U, table: S, set: S, setId: opt(U), elements: 'elements' },
    gen: { kind: S, id: U },
  },
}
const VERDICT = { code: I, chain: opt(S) }
const ELEMENT = { key: opt('buffer'), keyEnd: opt('buffer'), data: opt('buffer'), verdict: opt('verdict'), flags: opt(U), timeout: opt(U), expiration: opt(U), userdata: opt('buffer') }
/** An expression: its name, numbers, data as Buffers, a verdict, dynset's one expression. */
function checkExpr(e, at, out) {
  if (e === null || typeof e !== 'object' || typeof e.name !== 'string') return out.push(`${at}: not an expression`)
  for (const [k, x] of Object.entries(e)) {
    if (k === 'name') continue
    if (k === 'verdict') check(x, VERDICT, `${at}.${k}`, out)
    else if (k === 'expr') checkExpr(x, `${at}.${k}`, out)
    else if (k === 'set') {
      if (typeof x !== 'string') out.push(`${at}.${k}: not a string`)
    } else if (!(Buffer.isBuffer(x) || (Number.isInteger(x) && x >= 0))) out.push(`${at}.${k}: neither a number nor a Buffer`)
  }
}
const SET_HEADER = Object.fromEntries(['hashsize', 'maxelem', 'netmask', 'bucketsize', 'initval', 'portFrom', 'portTo', 'size', 'timeout', 'flags', 'elements', 'references', 'memsize'].map((k) => [k, opt(U)]))
const MEMBER_TEXT = new Set(['ip', 'ip2', 'name', 'comment'])
const MEMBER_NUM = new Set(['cidr', 'port', 'proto', 'cidr2', 'nameref', 'timeout', 'packets', 'bytes', 'skbmark', 'skbmarkmask', 'skbprio', 'skbqueue', 'flags'])

/** Problems of `v` against `schema`, as `path: what` strings. */
function check(v, schema, at, out) {
  if (typeof schema === 'string') {
    const optional = schema.endsWith('?')
    const t = optional ? schema.slice(0, -1) : schema
    if (v === undefined) {
      if (!optional) out.push(`${at}: missing`)
      return
    }
    if (t === U && !(typeof v === 'number' && Number.isInteger(v) && v >= 0)) out.push(`${at}: ${String(v)} is not an unsigned integer`)
    else if (t === I && !(typeof v === 'number' && Number.isInteger(v))) out.push(`${at}: ${String(v)} is not an integer`)
    else if (t === S && typeof v !== 'string') out.push(`${at}: not a string`)
    else if (t === B && typeof v !== 'boolean') out.push(`${at}: not a boolean`)
    else if (t === 'buffer' && !Buffer.isBuffer(v)) out.push(`${at}: not a Buffer`)
    else if (t === 'header') check(v, SET_HEADER, at, out)
    else if (t === 'uints') {
      if (!Array.isArray(v) || v.some((x) => !(Number.isInteger(x) && x >= 0))) out.push(`${at}: not a list of unsigned integers`)
    } else if (t === 'exprs') {
      if (!Array.isArray(v)) out.push(`${at}: not a list`)
      else v.forEach((e, i) => checkExpr(e, `${at}[${i}]`, out))
    } else if (t === 'elements') {
      if (!Array.isArray(v)) out.push(`${at}: not a list`)
      else v.forEach((e, i) => check(e, ELEMENT, `${at}[${i}]`, out))
    } else if (t === 'verdict') check(v, VERDICT, at, out)
    else if (t === 'expr') checkExpr(v, at, out)
    else if (t === 'members') checkMembers(v, at, out)
    return
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    out.push(`${at}: not an object`)
    return
  }
  for (const k of Object.keys(v)) if (!(k in schema)) out.push(`${at}.${k}: not a field of this record`)
  for (const [k, s] of Object.entries(schema)) check(v[k], s, `${at}.${k}`, out)
}

function checkMembers(m, at, out) {
  if (typeof m !== 'object' || m === null) return out.push(`${at}: not an object`)
  if (!(Number.isInteger(m.count) && m.count >= 0)) out.push(`${at}.count: not a count`)
  for (const [k, v] of Object.entries(m)) {
    if (k === 'count') continue
    if (MEMBER_TEXT.has(k)) {
      if (!Array.isArray(v) || v.length !== m.count || v.some((x) => x !== undefined && typeof x !== 'string')) out.push(`${at}.${k}: not ${m.count} strings`)
    } else if (MEMBER_NUM.has(k)) {
      // NaN marks a member without the field.
      if (!(v instanceof Float64Array) || v.length !== m.count || v.some((x) => !Number.isNaN(x) && !(Number.isInteger(x) && x >= 0))) out.push(`${at}.${k}: not ${m.count} numbers`)
    } else out.push(`${at}.${k}: not a member field`)
  }
}

function checkRecords(codec, records, at, out) {
  if (!Array.isArray(records)) return out.push(`${at}: not an array`)
  records.forEach((rec, i) => {
    const schema = SCHEMAS[codec][rec?.kind]
    if (!schema) return out.push(`${at}[${i}]: unknown kind ${JSON.stringify(rec?.kind)} for ${codec}`)
    check(rec, schema, `${at}[${i}]`, out)
  })
}

// ---- the typed API over the decoded records --------------------------------------------------------

function fakeSocket(answer) {
  const handle = {
    portId: PORT,
    async execute(codec, family, ops) {
      return ops.map((op) => answer(codec, op))
    },
    async close() {},
  }
  return new NetlinkSocket(handle)
}
const wrap = (Cls, ...args) => new Cls(...args)

/** No holes in what the API returns: no undefined field, no NaN, recursively. */
function holes(v, at, out, depth = 0) {
  if (depth > 6 || v === null) return
  if (typeof v === 'number' && Number.isNaN(v)) out.push(`${at}: NaN`)
  if (typeof v !== 'object' || Buffer.isBuffer(v)) return
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) out.push(`${at}.${k}: undefined`)
    else holes(x, `${at}.${k}`, out, depth + 1)
  }
}

// Each call over a socket that answers every request with `res`.
const APIS = {
  ipvs: [['listServices', (res) => wrap(api.Ipvs, fakeSocket(() => res), 0x24).listServices({ destinations: true })],
    ['getService', (res) => wrap(api.Ipvs, fakeSocket(() => res), 0x24).getService({ protocol: 'tcp', address: '10.0.0.1', port: 80 })]],
  ipset: [['listAll', (res) => wrap(api.IpSet, fakeSocket(() => res), 7).listAll()],
    ['listNames', (res) => wrap(api.IpSet, fakeSocket(() => res), 7).listNames()]],
  route: [['listLinks', (res) => wrap(api.Rtnl, fakeSocket(() => res)).listLinks()],
    ['listAddresses', (res) => wrap(api.Rtnl, fakeSocket(() => res)).listAddresses()]],
  conntrack: [['list', (res) => wrap(api.Conntrack, fakeSocket(() => res)).list()],
    ['count', (res) => wrap(api.Conntrack, fakeSocket(() => res)).count()]],
}
// The constructors are private in TypeScript, not at run time.

const EBADMSG = 74
const MALFORMED = /^malformed reply: a (\w+) record the decoder could not read whole$/

async function throughApi(codec, res, out) {
  for (const [name, call] of APIS[codec] ?? []) {
    try {
      const v = await call(res)
      holes(v, `${codec}.${name}()`, out)
      // A failed request is an error or, for a lookup, nothing found (getService: ESRCH); never records.
      if (res.error !== 0 && v !== undefined) out.push(`${codec}.${name}(): a failed request (errno ${res.error}) became records`)
    } catch (e) {
      if (!(e instanceof api.NetlinkError)) out.push(`${codec}.${name}(): threw ${e?.name}: ${e?.message}`.slice(0, 300))
    }
  }
}

/** A kind `codec` decodes ('reply': genl's family record, which has none). */
const kindOf = (codec, kind) => (codec === 'genl' ? kind === 'reply' : kind in SCHEMAS[codec])

// ---- lib/iptables' entry decoder -------------------------------------------------------------------

const ruleCorpus = []
for (const [rule, family, table] of [
  [{ destination: '10.96.0.10/32', protocol: 'tcp', matches: [{ match: 'comment', comment: 'kube-dns' }, { match: 'tcp', dport: 53 }], target: { jump: 'KUBE-SVC-X' } }, 'inet', 'nat'],
  [{ protocol: 'tcp', matches: [{ match: 'statistic', mode: 'random', probability: 0.5 }], target: { target: 'DNAT', toDestination: '10.244.0.5:8080' } }, 'inet', 'nat'],
  [{ matches: [{ match: 'mark', mark: 0x4000, mask: 0x4000 }], target: { target: 'MASQUERADE', randomFully: true } }, 'inet', 'nat'],
  [{ matches: [{ match: 'set', name: 'KUBE-CLUSTER-IP', flags: ['dst', 'dst'] }], target: { target: 'MARK', op: 'set-xmark', value: 0x4000, mask: 0x4000 } }, 'inet', 'nat'],
  [{ source: 'fd00::/64', protocol: 'udp', matches: [{ match: 'conntrack', ctstate: ['INVALID'] }], target: { target: 'DROP' } }, 'inet6', 'filter'],
  [{ protocol: 'tcp', matches: [{ match: 'multiport', dports: [80, 443] }, { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODE-PORT' } }, 'inet', 'nat'],
]) {
  try {
    const e = api.iptablesEncodeRule({ op: 'fuzz' }, rule, { family, table })
    ruleCorpus.push({ entry: e.entry, family })
  } catch {
    // a rule the encoder refuses is simply not in the corpus
  }
}
if (ruleCorpus.length < 3) throw new Error(`only ${ruleCorpus.length} iptables entries in the corpus`)

// ---- one case -------------------------------------------------------------------------------------

const pick = (r, xs) => xs[Math.floor(r() * xs.length)]

/** Case i: what it is, and the failed checks. */
async function runCase(i) {
  const r = caseRng(i)
  const kind = r()
  const fails = []
  if (kind < 0.55) {
    // A family reply, decoded by every codec, then through the API of its own.
    const codec = pick(r, CODECS)
    const { bytes, how } = mutate(r, pick(r, corpus[codec]), pick(r, corpus[pick(r, CODECS)]))
    if (trace) process.stdout.write(`case ${i} decode:${codec} ${how} ${bytes.toString('hex')}\n`)
    for (const c of CODECS) {
      let recs
      try {
        recs = native.decode(c, bytes)
      } catch (e) {
        // A message the codec cannot read whole: refused with EBADMSG, naming a record of its own.
        const kind = MALFORMED.exec(e?.message ?? '')?.[1]
        if (!(e?.errno === EBADMSG && e?.code === 'EBADMSG' && kind !== undefined && kindOf(c, kind))) fails.push(`decode(${c}) threw ${e?.name}: ${e?.message}`)
        continue
      }
      checkRecords(c, recs, `decode(${c})`, fails)
      if (c === codec) await throughApi(c, { error: 0, records: recs }, fails)
    }
    return { i, what: `decode:${codec} ${how}`, hex: bytes.toString('hex'), fails }
  }
  if (kind < 0.85) {
    // The receive loop: a batch of 1–3 requests and the datagrams that answer it.
    const codec = pick(r, CODECS)
    const n = 1 + Math.floor(r() * 3)
    const dumps = Array.from({ length: n }, () => r() < 0.5)
    const msgs = []
    for (let k = 0; k < n; k++) {
      const seq = SEQ + k
      if (dumps[k]) {
        for (let d = Math.floor(r() * 3); d > 0; d--) msgs.push(data(pick(r, corpus[codec]), seq, PORT, F_MULTI | (r() < 0.1 ? F_DUMP_INTR : 0)))
        msgs.push(r() < 0.8 ? doneMsg(seq, PORT, r() < 0.2 ? -[1, 16, 22][Math.floor(r() * 3)] : 0, r() < 0.3 ? 'dump failed here' : null) : errorMsg(seq, PORT, -16))
      } else {
        if (r() < 0.3) msgs.push(data(pick(r, corpus[codec]), seq, PORT, 0))
        const errno = r() < 0.5 ? 0 : -[1, 2, 17, 22, 95][Math.floor(r() * 5)]
        const request = r() < 0.5 ? data(pick(r, corpus[codec]), seq, PORT, 0) : null
        msgs.push(errorMsg(seq, PORT, errno, { request, capped: r() < 0.5, extack: r() < 0.5 ? 'Attribute failed policy validation' : null, offset: r() < 0.3 ? 20 : null }))
      }
    }
    const whole = Buffer.concat(msgs)
    const { bytes, how } = mutate(r, whole, pick(r, corpus[codec]))
    // Cut into 1–3 datagrams, each in a buffer of its own: aligned as a
    // receive buffer is (a view at an odd offset would only test misalignment).
    const grams = []
    let rest = bytes
    for (let g = Math.floor(r() * 3); g > 0 && rest.length > 0; g--) {
      const at = Math.floor(r() * rest.length)
      grams.push(Buffer.from(rest.subarray(0, at)))
      rest = rest.subarray(at)
    }
    grams.push(Buffer.from(rest))
    const ackSlot = r() < 0.3 ? Math.floor(r() * n) : undefined
    const port = r() < 0.2 ? 0 : PORT
    if (trace) process.stdout.write(`case ${i} collect:${codec} dumps=${JSON.stringify(dumps)} ackSlot=${ackSlot} port=${port} ${how} ${grams.map((g) => g.toString('hex')).join('|')}\n`)
    let out
    try {
      out = ackSlot === undefined ? native.collect(codec, dumps, port, SEQ, grams) : native.collect(codec, dumps, port, SEQ, grams, ackSlot)
    } catch (e) {
      fails.push(`collect threw ${e?.name}: ${e?.message}`)
    }
    if (out) {
      if (typeof out.complete !== 'boolean') fails.push('collect: complete is not a boolean')
      if (!Array.isArray(out.results) || out.results.length !== n) fails.push(`collect: ${out.results?.length} results for ${n} requests`)
      for (const [k, res] of (out.results ?? []).entries()) {
        const at = `collect.results[${k}]`
        if (!(Number.isInteger(res.error) && res.error >= 0)) fails.push(`${at}.error: ${res.error} is not an errno (0 or positive)`)
        if (res.extack !== undefined && typeof res.extack !== 'string') fails.push(`${at}.extack: not a string`)
        if (res.extackOffset !== undefined && !(Number.isInteger(res.extackOffset) && res.extackOffset >= 0)) fails.push(`${at}.extackOffset: ${res.extackOffset}`)
        if (res.echo !== undefined && !(Number.isInteger(res.echo.line) && res.echo.line >= 0)) fails.push(`${at}.echo: ${JSON.stringify(res.echo)}`)
        checkRecords(codec, res.records, `${at}.records`, fails)
        const kind = MALFORMED.exec(res.extack ?? '')?.[1]
        if (kind !== undefined) {
          if (res.error !== EBADMSG) fails.push(`${at}: malformed, with errno ${res.error}`)
          if (!kindOf(codec, kind)) fails.push(`${at}: malformed names a ${kind} record, not one of ${codec}`)
          if (res.records?.length) fails.push(`${at}: malformed, with ${res.records.length} records`)
        }
        await throughApi(codec, res, fails)
      }
      for (const rt of out.retries ?? []) if (!(Number.isInteger(rt.index) && rt.index < n && ['busy', 'interrupted'].includes(rt.reason))) fails.push(`collect.retries: ${JSON.stringify(rt)}`)
    }
    return { i, what: `collect:${codec} dumps=${JSON.stringify(dumps)} ackSlot=${ackSlot} port=${port} ${how}`, hex: grams.map((g) => g.toString('hex')).join('|'), fails }
  }
  // An iptables entry as libiptc hands it back.
  const { entry, family } = pick(r, ruleCorpus)
  const other = pick(r, ruleCorpus).entry
  const { bytes, how } = mutate(r, entry, other)
  const label = r() < 0.5 ? undefined : pick(r, ['', 'ACCEPT', 'DROP', 'RETURN', 'KUBE-SVC-X'])
  if (trace) process.stdout.write(`case ${i} iptables:${family} label=${label} ${how} ${bytes.toString('hex')}\n`)
  try {
    const rec = api.iptablesDecodeRule(bytes, family, label, { 3: 'KUBE-CLUSTER-IP' })
    holes(rec, 'iptablesDecodeRule()', fails)
  } catch (e) {
    if (!(e instanceof api.NetlinkError)) fails.push(`iptablesDecodeRule threw ${e?.name}: ${e?.message}`.slice(0, 300))
  }
  return { i, what: `iptables:${family} label=${label} ${how}`, hex: bytes.toString('hex'), fails }
}

// ---- the loop -------------------------------------------------------------------------------------

const t0 = Date.now()
let i = from
let failed = 0
const seen = new Set()
for (; i < to && i - from < maxCases && Date.now() - t0 < budgetMs; i++) {
  if ((i - from) % 64 === 0) process.stdout.write(`progress ${i}\n`)
  const res = await runCase(i)
  if (res.fails.length) {
    failed++
    // One report per distinct problem (the first few of each).
    const key = res.fails.map((f) => f.replace(/-?\d+/g, 'N')).join(';')
    if (!seen.has(key) || failed <= 3) {
      seen.add(key)
      process.stdout.write(`failure ${JSON.stringify(res)}\n`)
    }
  }
}
process.stdout.write(`done ${JSON.stringify({ seed, from, cases: i - from, failed, ms: Date.now() - t0, corpus: Object.fromEntries(Object.entries(corpus).map(([k, v]) => [k, v.length])), iptables: ruleCorpus.length })}\n`)
