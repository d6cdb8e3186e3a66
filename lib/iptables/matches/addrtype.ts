// --src-type / --dst-type: the route type of an address (LOCAL, UNICAST, ...).
import type { Where } from '../../validate.js'
import * as v from '../../validate.js'
import { ext, type ExtFamily, not, unwrap, yes } from '../fields.js'
import { EXT } from '../layout.js'
import type { AddrType, Match } from '../model.js'

const ADDRTYPES: AddrType[] = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE']

function addrTypeBits(at: Where, field: string, value: unknown): number {
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0) v.fail(at, field, value, 'must name at least one address type')
  let bits = 0
  list.forEach((t, i) => (bits |= 1 << ADDRTYPES.indexOf(v.oneOf(at, Array.isArray(value) ? `${field}[${i}]` : field, t, ADDRTYPES))))
  return bits
}

export const addrtype: ExtFamily<Match> = {
  spec: () => EXT.addrtype,
  plan(at, field, m) {
    v.only(at, field, m, ['match', 'srcType', 'dstType', 'limitIfaceIn', 'limitIfaceOut'])
    const s = unwrap(m.srcType)
    const d = unwrap(m.dstType)
    const src = s.value === undefined ? 0 : addrTypeBits(at, `${field}.srcType`, s.value)
    const dst = d.value === undefined ? 0 : addrTypeBits(at, `${field}.dstType`, d.value)
    const inIf = yes(at, `${field}.limitIfaceIn`, m.limitIfaceIn)
    const outIf = yes(at, `${field}.limitIfaceOut`, m.limitIfaceOut)
    if (inIf && outIf) v.fail(at, `${field}.limitIfaceOut`, true, 'cannot go with limitIfaceIn')
    if (!src && !dst) v.fail(at, field, m, 'needs srcType or dstType')
    const flags = (s.not ? 1 : 0) | (d.not ? 2 : 0) | (inIf ? 4 : 0) | (outIf ? 8 : 0)
    return ext('addrtype', EXT.addrtype, (b, o) => {
      b.writeUInt16LE(src, o)
      b.writeUInt16LE(dst, o + 2)
      b.writeUInt32LE(flags, o + 4)
    })
  },
  decode(b, d) {
    const types = (x: number): AddrType | AddrType[] => {
      const l = ADDRTYPES.filter((_, i) => x & (1 << i))
      return l.length === 1 ? l[0]! : l
    }
    const src = b.readUInt16LE(d), dst = b.readUInt16LE(d + 2), flags = b.readUInt32LE(d + 4)
    return {
      match: 'addrtype',
      ...(src ? { srcType: not(types(src), flags & 1) } : {}),
      ...(dst ? { dstType: not(types(dst), flags & 2) } : {}),
      ...(flags & 4 ? { limitIfaceIn: true as const } : {}),
      ...(flags & 8 ? { limitIfaceOut: true as const } : {}),
    }
  },
}
