// Fuzzing the decoders: every netlink codec (IPVS, genl, ipset, rtnetlink,
// conntrack, nf_tables), the core's receive loop (errors, extack, DONE,
// multipart) and lib/iptables' entry decoder, fed mutated captured replies
// (test/support/netlink-fuzz.mjs says how). It runs in a child process: a crash
// of the addon fails this test with the seed and the input, and the runner lives.
//
// Seeded: TSPROXY_FUZZ_SEED=<n> replays a run (the seed is printed);
// TSPROXY_FUZZ_MS (default 4000) and TSPROXY_FUZZ_CASES bound it. One case
// alone: TSPROXY_FUZZ_SEED=<n> TSPROXY_FUZZ_FROM=<i> TSPROXY_FUZZ_TO=<i+1>
// TSPROXY_FUZZ_TRACE=1 node test/support/netlink-fuzz.mjs
// Under AddressSanitizer (an addon built apart, in a scratch directory):
// TSPROXY_FUZZ_CASES=300000 TSPROXY_FUZZ_MS=3000000 test/support/fuzz-asan.sh
//
// Below the run: what it found, each as its minimal input, fixed.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Conntrack, IpSet, Ipvs, NetlinkError, Rtnl, iptablesDecodeRule, iptablesEncodeRule } from '../../dist/index.js'
import { NetlinkSocket, resolveGenlFamily } from '../../dist/netlink/socket.js'
import { native } from '../../dist/native.js'
import type { NativeOp, NativeResult } from '../../dist/native.js'
import { openAfterHandshake, openOver, type FakeHandle } from '../support/fake-netlink.js'
import { nlmsg } from '../support/nlmsg.mjs'

const script = fileURLToPath(new URL('../support/netlink-fuzz.mjs', import.meta.url))
const seed = process.env.TSPROXY_FUZZ_SEED ?? String(0x7e57)
const budgetMs = process.env.TSPROXY_FUZZ_MS ?? '4000'
const EBADMSG = 74

function runFuzz(env: Record<string, string>, timeout = 40_000): { lines: string[]; status: number | null; signal: string | null; stderr: string } {
  const r = spawnSync(process.execPath, [script], {
    env: { ...process.env, TSPROXY_FUZZ_SEED: seed, TSPROXY_FUZZ_MS: budgetMs, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    timeout, // a decoder that hangs is killed, and reported as a death
  })
  return { lines: (r.stdout ?? '').split('\n').filter(Boolean), status: r.status, signal: r.signal, stderr: r.stderr ?? '' }
}

t.test(`fuzzed replies through every decoder (seed ${seed}, ${budgetMs} ms)`, async (t) => {
  t.comment(`TSPROXY_FUZZ_SEED=${seed}`)
  const run = runFuzz({})
  const done = run.lines.find((l) => l.startsWith('done '))
  if (!done) {
    // A crash: find the case from the last progress mark, replaying that stretch traced.
    const last = run.lines.filter((l) => l.startsWith('progress ')).pop()
    const at = last ? Number(last.split(' ')[1]) : 0
    const replay = runFuzz({ TSPROXY_FUZZ_FROM: String(at), TSPROXY_FUZZ_TO: String(at + 64), TSPROXY_FUZZ_TRACE: '1', TSPROXY_FUZZ_MS: '10000' }, 12_000)
    const input = replay.lines.filter((l) => l.startsWith('case ')).pop()
    t.fail(`the fuzzer died (${run.signal ?? `exit ${run.status}`}) at seed ${seed}, near case ${at}; replayed: ${replay.signal ?? `exit ${replay.status}`}; ` +
      `last input: ${input?.slice(0, 4000)}; stderr: ${run.stderr.slice(-2000)}`)
    return
  }
  const summary = JSON.parse(done.slice(5)) as { cases: number; failed: number; ms: number; corpus: Record<string, number>; iptables: number }
  t.comment(`${summary.cases} cases in ${summary.ms} ms; corpus ${JSON.stringify(summary.corpus)}, ${summary.iptables} iptables entries`)
  t.ok(summary.cases >= 1000, `at least 1000 cases ran (${summary.cases})`)
  for (const [codec, n] of Object.entries(summary.corpus)) t.ok(n >= 2, `corpus for ${codec}: ${n} messages`)
  const failures = run.lines.filter((l) => l.startsWith('failure ')).map((l) => JSON.parse(l.slice(8)) as { i: number; what: string; hex: string; fails: string[] })
  for (const f of failures.slice(0, 10)) {
    t.fail(`case ${f.i} (seed ${seed}): ${f.fails.slice(0, 4).join('; ')} — ${f.what}; input ${f.hex.slice(0, 1500)}`)
  }
  t.equal(summary.failed, 0, `cases with a failed check: ${summary.failed} of ${summary.cases}`)
})

// ---- what it found ------------------------------------------------------------------------


t.test('an NLMSG_ERROR or DONE whose error field is no errno is EBADMSG, never a negative errno', async (t) => {
  // struct nlmsgerr { int error = +17; struct nlmsghdr msg (the request's header) }
  const request = nlmsg(0x24, 5, 1000, 0x4d2, Buffer.alloc(4)).subarray(0, 16)
  for (const error of [17, 1, 0x7fffffff, -0x80000000]) {
    const e = Buffer.alloc(4)
    e.writeInt32LE(error)
    const out = native.collect('ipvs', [false], 0x4d2, 1000, [nlmsg(2, 0x100, 1000, 0x4d2, Buffer.concat([e, request]))])
    t.equal(out.complete, true, `error field ${error}: answered`)
    t.equal(out.results[0]!.error, EBADMSG, `error field ${error}: EBADMSG`)
    const done = native.collect('ipvs', [true], 0x4d2, 1000, [nlmsg(3, 2, 1000, 0x4d2, e)])
    t.equal(done.results[0]!.error, EBADMSG, `DONE with ${error}: EBADMSG`)
  }
  const e = Buffer.alloc(4)
  e.writeInt32LE(-17)
  t.equal(native.collect('ipvs', [false], 0x4d2, 1000, [nlmsg(2, 0x100, 1000, 0x4d2, Buffer.concat([e, request]))]).results[0]!.error, 17, 'a real errno is kept')
  e.writeInt32LE(-4103)
  t.equal(native.collect('ipset', [false], 0x4d2, 1000, [nlmsg(2, 0x100, 1000, 0x4d2, Buffer.concat([e, request]))]).results[0]!.error, 4103, "and so is ipset's own (IPSET_ERR_EXIST)")
})

/** A fake native handle whose every operation (after the handshake) is answered with `result`. */
function answering(result: NativeResult): FakeHandle {
  return {
    async execute(_codec: string, _family: number, ops: NativeOp[]): Promise<NativeResult[]> {
      return ops.map(() => result)
    },
    async close() {},
  }
}

/**
 * What the native receive loop makes of `reply` (seq 1) answering one request:
 * a dump's, ended by NLMSG_DONE, or another's, ended by its ACK.
 */
function received(codec: string, reply: Buffer, dump: boolean): NativeResult {
  const end = dump ? nlmsg(3, 2, 1, 0, Buffer.alloc(4)) : nlmsg(2, 0x100, 1, 0, Buffer.concat([Buffer.alloc(4), reply.subarray(0, 16)]))
  const out = native.collect(codec, [dump], 0, 1, [Buffer.concat([reply, end])])
  return out.results[0]!
}

t.test('an IPVS service without address or fwmark is malformed: the decoder fails the listing with EBADMSG', async (t) => {
  // NEW_SERVICE: genlmsghdr, IPVS_CMD_ATTR_SERVICE { AF = 2, PROTOCOL = 6, PORT = 80, SCHED_NAME = "rr" }: no ADDR.
  const reply = nlmsg(0x24, 2, 1, 0, Buffer.from([
    0x01, 0x01, 0x00, 0x00, //                genlmsghdr: IPVS_CMD_NEW_SERVICE, version 1
    0x24, 0x00, 0x01, 0x80, //                nla_len = 36, IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED
    0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, //   IPVS_SVC_ATTR_AF = AF_INET
    0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, //   IPVS_SVC_ATTR_PROTOCOL = TCP
    0x06, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00, //   IPVS_SVC_ATTR_PORT = 80
    0x07, 0x00, 0x06, 0x00, 0x72, 0x72, 0x00, 0x00, //   IPVS_SVC_ATTR_SCHED_NAME = "rr"
  ]))
  t.throws(() => native.decode('ipvs', reply), { errno: EBADMSG, code: 'EBADMSG', message: /malformed reply: a service record/ }, 'decode refuses it')
  const result = received('ipvs', reply, true)
  t.strictSame(result, { error: EBADMSG, extack: 'malformed reply: a service record the decoder could not read whole', records: [] }, 'the request fails natively, no record')
  const ipvs = await openAfterHandshake(answering(result), () => Ipvs.open())
  const err = await ipvs.listServices().then(() => null, (e: unknown) => e)
  t.ok(err instanceof NetlinkError, 'listServices rejects with a NetlinkError')
  t.match(err, { errno: EBADMSG, code: 'EBADMSG', op: 'ipvs.listServices', message: /malformed.*service/ })
})

function attr(type: number, payload: Buffer, lie?: number): Buffer {
  const b = Buffer.alloc((4 + payload.length + 3) & ~3)
  b.writeUInt16LE(lie ?? 4 + payload.length, 0)
  b.writeUInt16LE(type, 2)
  payload.copy(b, 4)
  return b
}
const be32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255])
const NESTED = 0x8000

t.test('a reply the decoder cannot read whole fails the call with EBADMSG in every family, never half a record', async (t) => {
  const NETLINK_GENERIC = 16
  // [codec, record kind, reply, a dump?, the call]
  const cases: [string, string, Buffer, boolean, (h: FakeHandle) => Promise<unknown>][] = [
    // RTM_NEWADDR, ifaddrmsg { AF_INET, /32, index 5 }, IFA_LOCAL 10.96.0.10, IFA_LABEL whose nla_len (200) runs past the message.
    ['route', 'address', nlmsg(20, 2, 1, 0, Buffer.concat([Buffer.from([2, 32, 0, 0, 5, 0, 0, 0]), attr(2, Buffer.from([10, 96, 0, 10])), attr(3, Buffer.from('kube-ipvs0\0'), 200)])), true,
      async (h) => (await openAfterHandshake(h, () => Rtnl.open())).listAddresses()],
    // IPCTNL_MSG_CT_NEW with CTA_STATUS only: no tuples, nothing to match or delete by.
    ['conntrack', 'entry', nlmsg(0x100, 2, 1, 0, Buffer.concat([Buffer.from([2, 0, 0, 0]), attr(3, be32(8))])), true,
      async (h) => (await openAfterHandshake(h, () => Conntrack.open())).list()],
    // IPSET_CMD_LIST of set "X" whose one member's CIDR attribute claims 200 bytes.
    ['ipset', 'set', nlmsg(0x607, 2, 1, 0, Buffer.concat([Buffer.from([2, 0, 0, 0]), attr(1, Buffer.from([7])), attr(2, Buffer.from('X\0')),
      attr(8 | NESTED, attr(7 | NESTED, attr(3, Buffer.from([24]), 200)))])), true,
      async (h) => (await openAfterHandshake(h, () => IpSet.open())).listAll()],
    // CTRL_CMD_NEWFAMILY naming IPVS without CTRL_ATTR_FAMILY_ID.
    ['genl', 'reply', nlmsg(0x10, 0, 1, 0, Buffer.concat([Buffer.from([1, 2, 0, 0]), attr(2, Buffer.from('IPVS\0'))])), false,
      async (h) => resolveGenlFamily(await openOver(h, async () => NetlinkSocket.open(NETLINK_GENERIC, 'ipvs.open')), 'IPVS', 'ipvs.open')],
    // IPVS_CMD_NEW_DEST whose destination has no address.
    ['ipvs', 'destination', nlmsg(0x24, 2, 1, 0, Buffer.concat([Buffer.from([5, 1, 0, 0]), attr(2 | NESTED, Buffer.concat([attr(3, Buffer.from([0x1f, 0x90])), attr(5, Buffer.from([1, 0, 0, 0]))]))])), true,
      async (h) => (await openAfterHandshake(h, () => Ipvs.open())).listDestinations({ protocol: 'tcp', address: '10.0.0.1', port: 80 })],
  ]
  for (const [codec, kind, bytes, dump, call] of cases) {
    const text = `malformed reply: a ${kind} record the decoder could not read whole`
    t.throws(() => native.decode(codec, bytes), { errno: EBADMSG, code: 'EBADMSG', message: text }, `${codec}: decode refuses it`)
    const result = received(codec, bytes, dump)
    t.strictSame(result, { error: EBADMSG, extack: text, records: [] }, `${codec}: the request fails natively, no record`)
    const err = await call(answering(result)).then(() => null, (e: unknown) => e)
    t.ok(err instanceof NetlinkError, `${codec}: the call rejects with a NetlinkError`)
    t.match(err, { errno: EBADMSG, message: new RegExp(`malformed reply: a ${kind} record`) }, `${codec}: EBADMSG, naming the record`)
  }
})

t.test('a reply the kernel failed keeps its errno; a malformed record is left out of it, the rest still read', async (t) => {
  const good = nlmsg(0x24, 2, 1, 0, Buffer.concat([Buffer.from([5, 1, 0, 0]), attr(2 | NESTED, Buffer.concat([attr(1, Buffer.from([10, 0, 0, 2, ...Array(12).fill(0)])), attr(2, Buffer.from([0x1f, 0x90]))]))]))
  const bad = nlmsg(0x24, 2, 1, 0, Buffer.concat([Buffer.from([5, 1, 0, 0]), attr(2 | NESTED, attr(2, Buffer.from([0x1f, 0x90])))]))
  const e = Buffer.alloc(4)
  e.writeInt32LE(-16) // EBUSY, as a dump's DONE
  const out = native.collect('ipvs', [true], 0, 1, [Buffer.concat([bad, good, nlmsg(3, 2, 1, 0, e)])])
  const r = out.results[0]!
  t.equal(r.error, 16, "the kernel's errno, not EBADMSG")
  t.equal(r.extack, undefined, 'no malformed text over it')
  t.match(r.records, [{ kind: 'destination', address: '10.0.0.2', port: 8080 }], 'the record after the malformed one')
  t.equal(r.records.length, 1)
  t.throws(() => native.decode('ipvs', Buffer.concat([good, bad])), { errno: EBADMSG, message: /a destination record/ }, 'decode of both: refused')
})

t.test('a malformed iptables entry is a NetlinkError (EBADMSG), not a RangeError', async (t) => {
  const { entry } = iptablesEncodeRule({ op: 'test' }, { protocol: 'tcp', matches: [{ match: 'tcp', dport: 53 }], target: { jump: 'KUBE-SVC-X' } }, { family: 'inet', table: 'nat' })
  t.strictSame(iptablesDecodeRule(entry, 'inet', 'KUBE-SVC-X', {}).target, { jump: 'KUBE-SVC-X' }, 'the entry itself decodes')
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['shorter than struct ipt_entry', entry.subarray(0, 50)],
    ['cut inside the target', entry.subarray(0, entry.length - 20)],
    ['target_offset past the end', (() => { const b = Buffer.from(entry); b.writeUInt16LE(entry.length + 8, 88); return b })()],
    ['target_offset inside struct ipt_entry', (() => { const b = Buffer.from(entry); b.writeUInt16LE(40, 88); return b })()],
    ['a match size past target_offset', (() => { const b = Buffer.from(entry); b.writeUInt16LE(0x400, 112); return b })()],
    ['a target size past the end', (() => { const b = Buffer.from(entry); b.writeUInt16LE(0x400, b.readUInt16LE(88)); return b })()],
  ]
  for (const [what, b] of cases) {
    t.throws(() => iptablesDecodeRule(b, 'inet', undefined, {}), { name: 'NetlinkError', errno: EBADMSG, message: /malformed entry/ }, what)
  }
})
