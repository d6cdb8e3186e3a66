// --physdev-in / --physdev-out / --physdev-is-*: the bridge port a bridged
// packet came in or goes out by.
import * as v from '../../validate.js'
import { cstr, ext, type ExtFamily, iface, not, unwrap, writeIface, yes } from '../fields.js'
import { EXT, IFNAMSIZ, PHYSDEV } from '../layout.js'
import type { Match } from '../model.js'

const PHYSDEV_OP = { in: 1, out: 2, bridged: 4, isIn: 8, isOut: 16 }

export const physdev: ExtFamily<Match> = {
  spec: () => EXT.physdev,
  plan(at, field, m) {
    v.only(at, field, m, ['match', 'physdevIn', 'physdevOut', 'physdevIsIn', 'physdevIsOut', 'physdevIsBridged'])
    let bitmask = 0
    let invert = 0
    const names: [number, number, string][] = []
    const named = (key: string, op: number, nameAt: number, maskAt: number): void => {
      if (m[key] === undefined) return
      const { value: n, not } = unwrap(m[key])
      names.push([nameAt, maskAt, iface(at, `${field}.${key}`, n)])
      bitmask |= op
      if (not) invert |= op
    }
    const flag = (key: string, op: number): void => {
      if (m[key] === undefined) return
      const { value: x, not } = unwrap(m[key])
      yes(at, `${field}.${key}`, x)
      bitmask |= op
      if (not) invert |= op
    }
    named('physdevIn', PHYSDEV_OP.in, PHYSDEV.in, PHYSDEV.inMask)
    named('physdevOut', PHYSDEV_OP.out, PHYSDEV.out, PHYSDEV.outMask)
    flag('physdevIsIn', PHYSDEV_OP.isIn)
    flag('physdevIsOut', PHYSDEV_OP.isOut)
    flag('physdevIsBridged', PHYSDEV_OP.bridged)
    if (!bitmask) v.fail(at, field, m, 'needs at least one physdev option')
    return ext('physdev', EXT.physdev, (b, o) => {
      for (const [n, k, name] of names) writeIface(b, o + n, o + k, name)
      b[o + PHYSDEV.invert] = invert
      b[o + PHYSDEV.bitmask] = bitmask
    })
  },
  decode(b, d) {
    const bm = b[d + PHYSDEV.bitmask]!
    const inv = b[d + PHYSDEV.invert]!
    const out: Record<string, unknown> = { match: 'physdev' }
    if (bm & PHYSDEV_OP.in) out.physdevIn = not(cstr(b, d + PHYSDEV.in, d + PHYSDEV.in + IFNAMSIZ), inv & PHYSDEV_OP.in)
    if (bm & PHYSDEV_OP.out) out.physdevOut = not(cstr(b, d + PHYSDEV.out, d + PHYSDEV.out + IFNAMSIZ), inv & PHYSDEV_OP.out)
    if (bm & PHYSDEV_OP.isIn) out.physdevIsIn = not(true, inv & PHYSDEV_OP.isIn)
    if (bm & PHYSDEV_OP.isOut) out.physdevIsOut = not(true, inv & PHYSDEV_OP.isOut)
    if (bm & PHYSDEV_OP.bridged) out.physdevIsBridged = not(true, inv & PHYSDEV_OP.bridged)
    return out as Match
  },
}
