// LOG: the packet's headers to the kernel log, with a prefix and a level.
import * as v from '../../validate.js'
import { cstr, ext, type ExtFamily, str, yes } from '../fields.js'
import { EXT } from '../layout.js'
import type { Target } from '../model.js'

const LOG_FLAGS = { tcpSequence: 0x01, tcpOptions: 0x02, ipOptions: 0x04, uid: 0x08, macDecode: 0x20 } as const
const LOG_PREFIX_SIZE = 30

export const log: ExtFamily<Target> = {
  spec: () => EXT.LOG,
  plan(at, field, t) {
    v.only(at, field, t, ['target', 'prefix', 'level', ...Object.keys(LOG_FLAGS)])
    const prefix = t.prefix === undefined ? '' : str(at, `${field}.prefix`, t.prefix, LOG_PREFIX_SIZE)
    const level = t.level === undefined ? 4 : v.integer(at, `${field}.level`, t.level, 0, 7)
    let flags = 0
    for (const [k, bit] of Object.entries(LOG_FLAGS)) if (yes(at, `${field}.${k}`, t[k])) flags |= bit
    return ext('LOG', EXT.LOG, (b, o) => {
      b[o] = level
      b[o + 1] = flags
      b.write(prefix, o + 2, 'utf8')
    })
  },
  decode(b, d) {
    const level = b[d]!
    const flags = b[d + 1]!
    if (level > 7 || flags & ~0x2f) return undefined
    const prefix = cstr(b, d + 2, d + 2 + LOG_PREFIX_SIZE, 'utf8')
    const out: Record<string, unknown> = { target: 'LOG' }
    if (prefix) out.prefix = prefix
    if (level !== 4) out.level = level
    for (const [k, bit] of Object.entries(LOG_FLAGS)) if (flags & bit) out[k] = true
    return out as Target
  },
}
