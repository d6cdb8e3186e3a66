// --mark value[/mask]: the packet's fwmark.
import * as v from '../../validate.js'
import { ext, type ExtFamily, not, U32, unwrap } from '../fields.js'
import { EXT } from '../layout.js'
import type { Match } from '../model.js'

export const mark: ExtFamily<Match> = {
  spec: () => EXT.mark,
  plan(at, field, m) {
    v.only(at, field, m, ['match', 'mark', 'mask'])
    const { value: mark, not } = unwrap(m.mark)
    const value = v.integer(at, `${field}.mark`, mark, 0, U32)
    const mask = m.mask === undefined ? U32 : v.integer(at, `${field}.mask`, m.mask, 0, U32)
    return ext('mark', EXT.mark, (b, o) => {
      b.writeUInt32LE(value, o)
      b.writeUInt32LE(mask, o + 4)
      b[o + 8] = not ? 1 : 0
    })
  },
  decode(b, d) {
    const mask = b.readUInt32LE(d + 4)
    return { match: 'mark', mark: not(b.readUInt32LE(d), b[d + 8]!), ...(mask === U32 ? {} : { mask }) }
  },
}
