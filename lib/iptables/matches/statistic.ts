// --mode random --probability p, or --mode nth --every n --packet k: which
// share of packets match (kube-proxy's load balancing over endpoints).
import * as v from '../../validate.js'
import { ext, type ExtFamily, not, U32, unwrap } from '../fields.js'
import { EXT, STATISTIC } from '../layout.js'
import type { Match } from '../model.js'

export const statistic: ExtFamily<Match> = {
  spec: () => EXT.statistic,
  plan(at, field, m) {
    if (m.mode === 'random') {
      v.only(at, field, m, ['match', 'mode', 'probability'])
      const { value: p, not } = unwrap(m.probability)
      if (typeof p !== 'number' || !(p >= 0 && p <= 1)) v.fail(at, `${field}.probability`, p, 'must be a number from 0 to 1')
      // As iptables: lround(0x80000000 * p), read back as bits / 2^31.
      const bits = Math.round(0x80000000 * p)
      return ext('statistic', EXT.statistic, (b, o) => {
        b.writeUInt16LE(0, o + STATISTIC.mode)
        b.writeUInt16LE(not ? 1 : 0, o + STATISTIC.flags)
        b.writeUInt32LE(bits, o + STATISTIC.every)
        b.writeUInt32LE(bits, o + STATISTIC.count) // iptables: count = every - packet, whatever the mode
      })
    }
    if (m.mode === 'nth') {
      v.only(at, field, m, ['match', 'mode', 'every', 'packet'])
      const { value: e, not } = unwrap(m.every)
      const every = v.integer(at, `${field}.every`, e, 1, U32)
      const packet = m.packet === undefined ? 0 : v.integer(at, `${field}.packet`, m.packet, 0, every - 1)
      return ext('statistic', EXT.statistic, (b, o) => {
        b.writeUInt16LE(1, o + STATISTIC.mode)
        b.writeUInt16LE(not ? 1 : 0, o + STATISTIC.flags)
        b.writeUInt32LE(every - 1, o + STATISTIC.every)
        b.writeUInt32LE(packet, o + STATISTIC.packet)
        b.writeUInt32LE(every - 1 - packet, o + STATISTIC.count)
      })
    }
    return v.fail(at, `${field}.mode`, m.mode, "must be 'random' or 'nth'")
  },
  decode(b, d) {
    const mode = b.readUInt16LE(d + STATISTIC.mode)
    const inv = b.readUInt16LE(d + STATISTIC.flags) & 1
    if (mode === 0) return { match: 'statistic', mode: 'random', probability: not(b.readUInt32LE(d + STATISTIC.every) / 0x80000000, inv) }
    if (mode === 1) {
      const every = b.readUInt32LE(d + STATISTIC.every) + 1
      const packet = b.readUInt32LE(d + STATISTIC.packet)
      return { match: 'statistic', mode: 'nth', every: not(every, inv), ...(packet ? { packet } : {}) }
    }
    return undefined
  },
}
