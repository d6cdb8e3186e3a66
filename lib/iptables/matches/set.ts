// --match-set NAME dst,src,...: membership in an ipset. The set goes by its
// index, which native code resolves from the name at commit (ExtPlan.set) and
// a dump maps back to the name (SetNames).
import * as v from '../../validate.js'
import { ext, type ExtFamily, not, str, unwrap, yes } from '../fields.js'
import { EXT, SET } from '../layout.js'
import type { Match, SetDirection } from '../model.js'

const SET_NAME_SIZE = 32 // IPSET_MAXNAMELEN
const RETURN_NOMATCH = 1 << 7 // IPSET_FLAG_RETURN_NOMATCH

export const set: ExtFamily<Match> = {
  spec: () => EXT.set,
  plan(at, field, m) {
    v.only(at, field, m, ['match', 'matchSet', 'flags', 'returnNomatch'])
    const { value: name, not } = unwrap(m.matchSet)
    const set = str(at, `${field}.matchSet`, name, SET_NAME_SIZE)
    if (!Array.isArray(m.flags) || m.flags.length < 1 || m.flags.length > 6)
      v.fail(at, `${field}.flags`, m.flags, "must be 1 to 6 of 'src' / 'dst', one per dimension of the set")
    let flags = not ? 1 : 0 // IPSET_INV_MATCH
    m.flags.forEach((d, i) => {
      if (v.oneOf(at, `${field}.flags[${i}]`, d, ['src', 'dst'] as const) === 'src') flags |= 1 << (i + 1)
    })
    const dim = m.flags.length
    const nomatch = yes(at, `${field}.returnNomatch`, m.returnNomatch)
    return ext('set', EXT.set, (b, o) => {
      b[o + SET.dim] = dim
      b[o + SET.flags] = flags
      if (nomatch) b.writeUInt32LE(RETURN_NOMATCH, o + SET.matchFlags)
    }, set)
  },
  decode(b, d, _family, sets) {
    const index = b.readUInt16LE(d + SET.index)
    const setName = sets[String(index)]
    const mflags = b.readUInt32LE(d + SET.matchFlags)
    if (!setName || b[d + SET.packetsOp] || b[d + SET.bytesOp] || mflags & ~RETURN_NOMATCH) return undefined
    const dim = b[d + SET.dim]!
    const f = b[d + SET.flags]!
    const flags: SetDirection[] = []
    for (let i = 1; i <= dim; i++) flags.push(f & (1 << i) ? 'src' : 'dst')
    return { match: 'set', matchSet: not(setName, f & 1), flags, ...(mflags & RETURN_NOMATCH ? { returnNomatch: true as const } : {}) }
  },
}
