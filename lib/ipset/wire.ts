// What crosses to native/ipset and back: entries as it encodes them, records
// as it decodes them, and the bytes an entry takes in a message. The calls into
// the native codec are here and nowhere else in lib/ipset/.
import type { NativeResult } from '../native.js'
import type { IpsetRawRecord, IpsetWireOp, RawProtocol, WireEntry } from '../native/ipset.js'
import type { NetlinkSocket } from '../netlink/socket.js'
import { IPSET_PROTOCOL, NFPROTO } from './kernel.js'

export { TEXT_FIELDS, WIRE_FIELDS } from '../native/ipset.js'
export type { RawColumns, RawHeader, RawSet, WireEntry, WireField } from '../native/ipset.js'

// ---- the bytes of an entry -----------------------------------------------------------------
// These repeat native/ipset/ipset.cc putEntry() (and putAddr()): an attribute
// per field, in a DATA nest numbered by LINENO. test/unit/ipset-wire.test.ts
// measures them against the encoder's output.

const attrSize = (payload: number): number => 4 + ((payload + 3) & ~3)

/** Bytes an entry takes inside IPSET_ATTR_ADT (DATA nest, LINENO included). */
export function wireSize(w: WireEntry): number {
  const addr = w.af === NFPROTO.inet6 ? 4 + 20 : 4 + 8 // an IP nest of one IPADDR_IPV6 / _IPV4
  let n = 12 // DATA header, LINENO
  if (w.ip !== undefined) n += addr
  if (w.ip2 !== undefined) n += addr
  if (w.cidr !== undefined) n += 8
  if (w.port !== undefined) n += 8
  if (w.proto !== undefined) n += 8
  if (w.cidr2 !== undefined) n += 8
  if (w.timeout !== undefined || w.packets !== undefined || w.bytes !== undefined || w.comment !== undefined || w.name !== undefined ||
    w.skbmark !== undefined || w.skbprio !== undefined || w.skbqueue !== undefined || w.flags !== undefined) {
    for (const k of ['timeout', 'skbprio', 'skbqueue', 'flags'] as const) if (w[k] !== undefined) n += 8
    // skbmarkmask travels inside SKBMARK (mark << 32 | mask): no bytes of its own.
    for (const k of ['packets', 'bytes', 'skbmark'] as const) if (w[k] !== undefined) n += 12
    if (w.name !== undefined) n += attrSize(Buffer.byteLength(w.name) + 1)
    if (w.comment !== undefined) n += attrSize(Buffer.byteLength(w.comment) + 1)
  }
  return n
}

/** Entries per ADT message: at most this many bytes of DATA nests (the nest's own limit is 64 KiB). */
export const ADT_BUDGET = 32 * 1024

// ---- the calls into native/ipset -----------------------------------------------------------

/** IPSET_CMD_PROTOCOL, offering ours: the kernel's answer says which versions it speaks. */
export async function negotiate(sock: NetlinkSocket, op: string): Promise<NativeResult<RawProtocol>> {
  const [r] = await sock.execute('ipset', NFPROTO.inet, [{ cmd: 'protocol', protocol: IPSET_PROTOCOL }], op)
  return { ...r!, records: r!.records.filter((x): x is RawProtocol => x.kind === 'protocol') }
}

/** Requests in one burst, each carrying the protocol agreed with the kernel; one result per request, in order. */
export function execute(sock: NetlinkSocket, protocol: number, wires: IpsetWireOp[], op: string): Promise<NativeResult<IpsetRawRecord>[]> {
  return sock.execute('ipset', NFPROTO.inet, wires.map((w) => ({ ...w, protocol })), op)
}
