// -m sctp: source and destination port ranges (xt_sctp_info, revision 0).
// Chunk-type matching (--chunk-types) is not modelled: such a rule reads back
// as a raw extension.
import * as v from '../../validate.js'
import { ext, type ExtFamily, not, portRange, range, unwrap } from '../fields.js'
import { EXT, INV_PROTO, SCTP } from '../layout.js'
import type { Match, Not, PortRange } from '../model.js'

// XT_SCTP_SRC_PORTS, XT_SCTP_DEST_PORTS, XT_SCTP_CHUNK_TYPES (xt_sctp.h).
const SRC = 0x01
const DST = 0x02
const CHUNKS = 0x04

export const sctp: ExtFamily<Match> = {
  spec: () => EXT.sctp,
  plan(at, field, m, plan) {
    v.only(at, field, m, ['match', 'sport', 'dport'])
    if (plan.proto !== 132 || plan.invflags & INV_PROTO) v.fail(at, `${field}.match`, m.match, 'needs the rule\'s protocol to be sctp (iptables: -p sctp)')
    const sp = unwrap(m.sport)
    const dp = unwrap(m.dport)
    // As iptables writes it: a port left out is [0, 0] and not flagged.
    const sports = sp.value === undefined ? [0, 0] : portRange(at, `${field}.sport`, sp.value)
    const dports = dp.value === undefined ? [0, 0] : portRange(at, `${field}.dport`, dp.value)
    const flags = (sp.value === undefined ? 0 : SRC) | (dp.value === undefined ? 0 : DST)
    const inv = (sp.not ? SRC : 0) | (dp.not ? DST : 0)
    return ext('sctp', EXT.sctp, (b, o) => {
      b.writeUInt16LE(dports[0]!, o + SCTP.dpts)
      b.writeUInt16LE(dports[1]!, o + SCTP.dpts + 2)
      b.writeUInt16LE(sports[0]!, o + SCTP.spts)
      b.writeUInt16LE(sports[1]!, o + SCTP.spts + 2)
      // iptables' init: every flag_info slot's chunk type is -1 (none).
      for (let i = 0; i < SCTP.flagSlots; i++) b[o + SCTP.flagInfo + 3 * i] = 0xff
      b.writeUInt32LE(flags, o + SCTP.flags)
      b.writeUInt32LE(inv, o + SCTP.invflags)
    })
  },
  decode(b, d) {
    const flags = b.readUInt32LE(d + SCTP.flags)
    const inv = b.readUInt32LE(d + SCTP.invflags)
    if (flags & ~(SRC | DST) || inv & ~flags || flags & CHUNKS) return undefined // chunk types: not modelled
    const out: { match: 'sctp'; sport?: Not<PortRange>; dport?: Not<PortRange> } = { match: 'sctp' }
    if (flags & SRC) out.sport = not(range(b.readUInt16LE(d + SCTP.spts), b.readUInt16LE(d + SCTP.spts + 2)), inv & SRC)
    if (flags & DST) out.dport = not(range(b.readUInt16LE(d + SCTP.dpts), b.readUInt16LE(d + SCTP.dpts + 2)), inv & DST)
    return out
  },
}
