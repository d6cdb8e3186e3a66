// The helpers of the byte-fixture tests (test/unit/*-fixtures.test.ts): bytes
// compared as rows with their offset, so a mismatch points at the field, and
// encode/decode checks through the native codecs.
import type { Test } from 'tap'
import { native } from '../../dist/native.js'
import type { NativeOp, NativeRecord } from '../../dist/native.js'

/** `width`-byte rows with their offset ('0004: 24 00 05 00'). */
export function rows(buf: Buffer | number[], width = 4): string[] {
  const b = Buffer.from(buf)
  const out: string[] = []
  for (let i = 0; i < b.length; i += width)
    out.push(`${i.toString().padStart(4, '0')}: ${[...b.subarray(i, i + width)].map((x) => x.toString(16).padStart(2, '0')).join(' ')}`)
  return out
}

/** encode(op) with `codec` and `family` (sequence 1) must equal the fixture; the bytes encoded. */
export function encodesWith(t: Test, codec: string, family: number, op: NativeOp, expected: number[], what = 'encode(op) equals the fixture'): Buffer {
  const bytes = native.encode(codec, family, [op], 1)
  t.strictSame(rows(bytes), rows(expected), what)
  return bytes
}

/** encodesWith bound to one codec and family: a fixture file's `encodes`. */
export function encoder(codec: string, family: number) {
  return (t: Test, op: NativeOp, expected: number[], what?: string): Buffer => encodesWith(t, codec, family, op, expected, what)
}

/** Column arrays (Float64Array / Array) as plain arrays, for comparing records. */
export function plain(rec: NativeRecord): unknown {
  return JSON.parse(JSON.stringify(rec, (_k, v) => (v instanceof Float64Array ? [...v].map((x) => (Number.isNaN(x) ? null : x)) : v)))
}

/** The fixture is one whole message (its nlmsg_len is its length) and decodes to `records`. */
export function decodes(t: Test, codec: string, bytes: number[], records: unknown[]): void {
  t.equal(bytes.length, Buffer.from(bytes).readUInt32LE(0), 'fixture length matches its nlmsg_len')
  t.strictSame(native.decode(codec, Buffer.from(bytes)).map(plain), records, 'decode(bytes) equals the record')
}

/** decode(bad) refuses the whole message, EBADMSG, naming the kind of record it could not read whole. */
export function refusesMalformed(t: Test, codec: string, bad: Buffer, kind: string): void {
  t.throws(() => native.decode(codec, bad), { errno: 74, code: 'EBADMSG', message: `malformed reply: a ${kind} record the decoder could not read whole` }, 'refused, naming the record')
}

/** NLMSG_DONE closing a dump (sequence 1, port id 0xabcd): a control message every decoder skips. */
export const DONE_MESSAGE = [
  0x14, 0x00, 0x00, 0x00, // nlmsg_len = 20
  0x03, 0x00, //             nlmsg_type = NLMSG_DONE
  0x02, 0x00, //             nlmsg_flags = NLM_F_MULTI
  0x01, 0x00, 0x00, 0x00, // nlmsg_seq = 1
  0xcd, 0xab, 0x00, 0x00, // nlmsg_pid
  0x00, 0x00, 0x00, 0x00, // error = 0
]

/**
 * The IPv4 virtual service of the IPVS fixtures, 10.0.0.1:80 TCP round robin,
 * as the codec decodes it, but for its stats. flags 2: IP_VS_SVC_F_HASHED, set
 * by the kernel on every service in its table.
 */
export const SERVICE_V4_RECORD = {
  kind: 'service',
  af: 2,
  address: '10.0.0.1',
  protocol: 6,
  port: 80,
  scheduler: 'rr',
  flags: 2,
  timeout: 0,
  netmask: 32,
}

/** struct ip_vs_stats as decoded where the kernel (or our request) sends none or zeros. */
export const ZERO_STATS = {
  conns: 0,
  inPackets: 0,
  outPackets: 0,
  inBytes: 0,
  outBytes: 0,
  cps: 0,
  inPps: 0,
  outPps: 0,
  inBps: 0,
  outBps: 0,
}
