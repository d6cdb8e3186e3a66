// --set / --rcheck / --update / --remove: the recent match's lists of
// addresses (what kube-proxy's ClientIP session affinity is built on).
import { formatAddress } from '../../address.js'
import * as v from '../../validate.js'
import { addressOf, cstr, ext, type ExtFamily, not, str, U32, unwrap, yes } from '../fields.js'
import { EXT, RECENT } from '../layout.js'
import type { Match, RecentCommand } from '../model.js'

const RECENT_CMD = v.table<RecentCommand, number>({ rcheck: 1, set: 2, update: 4, remove: 8 })
const RECENT_TTL = 16
const RECENT_REAP = 32

export const recent: ExtFamily<Match> = {
  spec: () => EXT.recent,
  plan(at, field, m, plan) {
    v.only(at, field, m, ['match', 'command', 'name', 'seconds', 'hitcount', 'rttl', 'reap', 'side', 'mask'])
    const { value: cmd, not } = unwrap(m.command)
    const command = v.oneOf(at, `${field}.command`, cmd, ['set', 'rcheck', 'update', 'remove'] as const)
    const name = m.name === undefined ? undefined : str(at, `${field}.name`, m.name, RECENT.nameLen)
    if (name !== undefined && name.includes('/')) v.fail(at, `${field}.name`, name, "must not contain '/' (it names a file under /proc)")
    const seconds = m.seconds === undefined ? 0 : v.integer(at, `${field}.seconds`, m.seconds, 1, U32)
    const hitcount = m.hitcount === undefined ? 0 : v.integer(at, `${field}.hitcount`, m.hitcount, 1, U32)
    const timed = command === 'rcheck' || command === 'update'
    if ((seconds || hitcount) && !timed) v.fail(at, `${field}.${seconds ? 'seconds' : 'hitcount'}`, seconds || hitcount, "goes with command 'rcheck' or 'update' only")
    const rttl = yes(at, `${field}.rttl`, m.rttl)
    const reap = yes(at, `${field}.reap`, m.reap)
    if (reap && !seconds) v.fail(at, `${field}.reap`, true, 'needs seconds')
    const side = m.side === undefined ? 'source' : v.oneOf(at, `${field}.side`, m.side, ['source', 'dest'] as const)
    const mask = m.mask === undefined ? undefined : addressOf(at, `${field}.mask`, m.mask, plan.family)
    const checkSet = RECENT_CMD[command] | (rttl ? RECENT_TTL : 0) | (reap ? RECENT_REAP : 0)
    return ext('recent', EXT.recent, (b, o) => {
      b.writeUInt32LE(seconds, o + RECENT.seconds)
      b.writeUInt32LE(hitcount, o + RECENT.hitCount)
      b[o + RECENT.checkSet] = checkSet
      b[o + RECENT.invert] = not ? 1 : 0
      // As iptables: "DEFAULT" first, then the name and its NUL over it
      // (a short name leaves the rest of "DEFAULT" behind the NUL).
      b.write('DEFAULT', o + RECENT.name, 'latin1')
      if (name !== undefined) {
        const n = b.write(name, o + RECENT.name, 'utf8')
        b[o + RECENT.name + n] = 0
      }
      b[o + RECENT.side] = side === 'dest' ? 1 : 0
      if (mask) b.set(mask, o + RECENT.mask)
      else b.fill(0xff, o + RECENT.mask, o + RECENT.mask + 16)
    })
  },
  decode(b, d, family) {
    const cs = b[d + RECENT.checkSet]!
    const cmds = (Object.keys(RECENT_CMD) as RecentCommand[]).filter((k) => cs & RECENT_CMD[k])
    if (cmds.length !== 1 || cs & ~0x3f) return undefined
    const name = cstr(b, d + RECENT.name, d + RECENT.name + RECENT.nameLen, 'utf8')
    const seconds = b.readUInt32LE(d + RECENT.seconds)
    const hitcount = b.readUInt32LE(d + RECENT.hitCount)
    const maskAll = b.subarray(d + RECENT.mask, d + RECENT.mask + 16).every((x) => x === 0xff)
    const maskLen = family === 'inet' ? 4 : 16
    return {
      match: 'recent',
      command: not(cmds[0]!, b[d + RECENT.invert]!),
      ...(name === 'DEFAULT' ? {} : { name }),
      ...(seconds ? { seconds } : {}),
      ...(hitcount ? { hitcount } : {}),
      ...(cs & RECENT_TTL ? { rttl: true as const } : {}),
      ...(cs & RECENT_REAP ? { reap: true as const } : {}),
      ...(b[d + RECENT.side] === 1 ? { side: 'dest' as const } : {}),
      ...(maskAll ? {} : { mask: formatAddress(b.subarray(d + RECENT.mask, d + RECENT.mask + maskLen)) }),
    }
  },
}
