// The decoder: an entry as libiptc holds it read back into the typed record
// of model.ts, in the canonical form a rule written by the planner has. Each
// match and target reads back through its family (matches/, targets/).
import { NetlinkError } from '../errors.js'
import type { Family } from '../validate.js'
import { cidrText, ifaceText, not, protocolName, type SetNames } from './fields.js'
import { ENTRY4, ENTRY6, type EntryLayout, INV_DSTIP, INV_FRAG, INV_PROTO, INV_SRCIP, INV_VIA_IN, INV_VIA_OUT, IP6T_F_GOTO, IPT_F_FRAG, IPT_F_GOTO, XT_HEADER } from './layout.js'
import { decodeMatch } from './matches/index.js'
import type { Match, RuleRecord } from './model.js'
import { decodeTarget } from './targets/index.js'

const EBADMSG = 74

/**
 * The entry's own offsets stay inside it: the matches tile the bytes from the
 * entry header to the target, the target fits. What libiptc hands back always
 * does; anything else would be read past its end, so it is refused whole.
 */
function checkEntry(b: Buffer, L: EntryLayout): void {
  const bad = (why: string): never => {
    throw new NetlinkError({ errno: EBADMSG, op: 'iptables.decodeRule', message: `EBADMSG: malformed entry (${b.length} bytes): ${why}` })
  }
  if (b.length < L.size + XT_HEADER) bad(`shorter than the entry header and a target (${L.size + XT_HEADER})`)
  const targetOffset = b.readUInt16LE(L.targetOffset)
  if (targetOffset < L.size || targetOffset + XT_HEADER > b.length) bad(`target_offset ${targetOffset} outside ${L.size}..${b.length - XT_HEADER}`)
  for (let o = L.size; o < targetOffset;) {
    const size = o + XT_HEADER <= targetOffset ? b.readUInt16LE(o) : 0
    if (size < XT_HEADER || o + size > targetOffset) bad(`the match at ${o} (size ${size}) overruns target_offset ${targetOffset}`)
    o += size
  }
  const tsize = b.readUInt16LE(targetOffset)
  if (tsize < XT_HEADER || targetOffset + tsize > b.length) bad(`the target at ${targetOffset} (size ${tsize}) overruns the entry`)
}

/**
 * Reads an entry back (as libiptc holds it) into a typed record. `label` is
 * libiptc's reading of a standard target (verdict, chain, '' for none), or
 * undefined when the target is an extension.
 */
export function decodeRule(b: Buffer, family: Family, label: string | undefined, sets: SetNames): RuleRecord {
  const L: EntryLayout = family === 'inet' ? ENTRY4 : ENTRY6
  checkEntry(b, L)
  const n = L.addrLen
  const flags = b[L.flags]!
  const inv = b[L.invflags]!
  const rule: RuleRecord = { counters: { packets: 0, bytes: 0 } }
  const smsk = b.subarray(L.smsk, L.smsk + n)
  const dmsk = b.subarray(L.dmsk, L.dmsk + n)
  if (!smsk.every((x) => x === 0) || inv & INV_SRCIP) rule.source = not(cidrText(b.subarray(L.src, L.src + n), smsk), inv & INV_SRCIP)
  if (!dmsk.every((x) => x === 0) || inv & INV_DSTIP) rule.destination = not(cidrText(b.subarray(L.dst, L.dst + n), dmsk), inv & INV_DSTIP)
  const inIf = ifaceText(b, L.iniface, L.inifaceMask)
  if (inIf !== undefined) rule.inInterface = not(inIf, inv & INV_VIA_IN)
  const outIf = ifaceText(b, L.outiface, L.outifaceMask)
  if (outIf !== undefined) rule.outInterface = not(outIf, inv & INV_VIA_OUT)
  const proto = b.readUInt16LE(L.proto)
  if (proto !== 0 || inv & INV_PROTO) rule.protocol = not(protocolName(proto, family), inv & INV_PROTO)
  if (family === 'inet' && flags & IPT_F_FRAG) rule.fragment = not(true, inv & INV_FRAG)
  const targetOffset = b.readUInt16LE(L.targetOffset)
  const matches: Match[] = []
  for (let o = L.size; o + XT_HEADER <= targetOffset;) {
    const size = b.readUInt16LE(o)
    if (size < XT_HEADER) break
    matches.push(decodeMatch(b, o, size, family, sets))
    o += size
  }
  if (matches.length) rule.matches = matches
  const tsize = b.readUInt16LE(targetOffset)
  const goto = (flags & (family === 'inet' ? IPT_F_GOTO : IP6T_F_GOTO)) !== 0
  const target = decodeTarget(b, targetOffset, tsize, family, label, goto)
  if (target) rule.target = target
  // counters last, as in the record type: { packets, bytes }
  const c = L.counters
  rule.counters = { packets: Number(b.readBigUInt64LE(c)), bytes: Number(b.readBigUInt64LE(c + 8)) }
  return rule
}

