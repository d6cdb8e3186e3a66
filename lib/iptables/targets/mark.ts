// MARK: sets bits of the packet's fwmark (kube-proxy's masquerade mark).
import * as v from '../../validate.js'
import { ext, type ExtFamily, U32 } from '../fields.js'
import { EXT } from '../layout.js'
import type { Target } from '../model.js'

export const markTarget: ExtFamily<Target> = {
  spec: () => EXT.MARK,
  plan(at, field, t) {
    v.only(at, field, t, ['target', 'op', 'value', 'mask'])
    const op = v.oneOf(at, `${field}.op`, t.op, ['set-xmark', 'set-mark', 'and', 'or', 'xor'] as const)
    const val = v.integer(at, `${field}.value`, t.value, 0, U32)
    if (t.mask !== undefined && op !== 'set-xmark' && op !== 'set-mark') v.fail(at, `${field}.mask`, t.mask, `does not go with op '${op}'`)
    const mask = t.mask === undefined ? U32 : v.integer(at, `${field}.mask`, t.mask, 0, U32)
    // libxt_MARK, revision 2: every op as (mark, mask).
    const [mark, msk] = op === 'set-xmark' ? [val, mask] : op === 'set-mark' ? [val, (mask | val) >>> 0]
      : op === 'and' ? [0, ~val >>> 0] : op === 'or' ? [val, val] : [val, 0]
    return ext('MARK', EXT.MARK, (b, o) => {
      b.writeUInt32LE(mark, o)
      b.writeUInt32LE(msk, o + 4)
    })
  },
  decode: (b, d) => ({ target: 'MARK', op: 'set-xmark', value: b.readUInt32LE(d), mask: b.readUInt32LE(d + 4) }),
}
