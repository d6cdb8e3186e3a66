// The matches a rule can carry, by name: the planner validates each through
// its family, the decoder reads each back through the same family. A match
// of another name, or of another revision or size, is a raw extension.
import type { Family, Where } from '../../validate.js'
import * as v from '../../validate.js'
import { type ExtFamily, type ExtPlan, rawOf, rawPlan, readExt, type RuleContext, type RulePlan, type SetNames } from '../fields.js'
import type { Match } from '../model.js'
import { addrtype } from './addrtype.js'
import { comment } from './comment.js'
import { conntrack } from './conntrack.js'
import { mark } from './mark.js'
import { multiport, tcp, udp } from './ports.js'
import { physdev } from './physdev.js'
import { recent } from './recent.js'
import { sctp } from './sctp.js'
import { set } from './set.js'
import { statistic } from './statistic.js'

const MATCHES = new Map<string, ExtFamily<Match>>([
  ['comment', comment], ['tcp', tcp], ['udp', udp], ['sctp', sctp], ['multiport', multiport], ['statistic', statistic], ['set', set],
  ['mark', mark], ['addrtype', addrtype], ['conntrack', conntrack], ['recent', recent], ['physdev', physdev],
])

export function matchPlan(at: Where, field: string, value: unknown, plan: RulePlan, ctx: RuleContext): ExtPlan {
  const m = v.object(at, field, value)
  if (m.match === 'raw') return rawPlan(at, field, m)
  const family = MATCHES.get(m.match as string)
  if (!family) return v.fail(at, `${field}.match`, m.match, `must be one of ${[...MATCHES.keys(), 'raw'].join(', ')}`)
  return family.plan(at, field, m, plan, ctx)
}

export function decodeMatch(b: Buffer, o: number, size: number, family: Family, sets: SetNames): Match {
  return readExt(MATCHES, b, o, size, family, sets) ?? { match: 'raw', ...rawOf(b, o, size) }
}
