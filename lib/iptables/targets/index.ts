// The target of a rule: the standard target (a verdict, a jump or goto to a
// chain, or none), or an extension target by name through its family. A
// target of another name, revision or size reads back as a raw extension.
import type { Family, Where } from '../../validate.js'
import * as v from '../../validate.js'
import { chainName, ext, type ExtFamily, type ExtPlan, isBuiltin, rawOf, rawPlan, readExt, type RuleContext, type RulePlan, TARGET_NAMES } from '../fields.js'
import { EXT, IP6T_F_GOTO, IPT_F_GOTO } from '../layout.js'
import type { Target, Verdict } from '../model.js'
import { log } from './log.js'
import { markTarget } from './mark.js'
import { dnat, masquerade, snat } from './nat.js'
import { reject } from './reject.js'

const VERDICTS: Verdict[] = ['ACCEPT', 'DROP', 'RETURN', 'QUEUE']
const TARGETS = new Map<string, ExtFamily<Target>>([
  ['REJECT', reject], ['DNAT', dnat], ['SNAT', snat], ['MASQUERADE', masquerade], ['MARK', markTarget], ['LOG', log],
])

export function targetPlan(at: Where, value: unknown, plan: RulePlan, ctx: RuleContext): ExtPlan {
  const field = 'rule.target'
  // As iptables: the standard target named by its label (a verdict, a chain
  // or '' for none); libiptc turns the label into a verdict or a jump.
  const standard = (label: string): ExtPlan => ext(label, EXT.standard, () => {})
  if (value === undefined) return standard('')
  const t = v.object(at, field, value)
  if ('jump' in t || 'goto' in t) {
    const key = 'jump' in t ? 'jump' : 'goto'
    v.only(at, field, t, [key])
    const chain = chainName(at, `${field}.${key}`, t[key])
    if (isBuiltin(chain)) v.fail(at, `${field}.${key}`, chain, 'is a built-in chain: rules cannot jump to one')
    if (key === 'goto') plan.flags |= plan.family === 'inet' ? IPT_F_GOTO : IP6T_F_GOTO
    return standard(chain)
  }
  if ((VERDICTS as unknown[]).includes(t.target)) {
    v.only(at, field, t, ['target'])
    return standard(t.target as Verdict)
  }
  if (t.target === 'raw') return rawPlan(at, field, t)
  const family = TARGETS.get(t.target as string)
  if (!family) return v.fail(at, `${field}.target`, t.target, `must be one of ${TARGET_NAMES.join(', ')} (or give jump / goto)`)
  return family.plan(at, field, t, plan, ctx)
}

/**
 * `label` is libiptc's reading of a standard target (a verdict, a chain, ''
 * for none), undefined when the target is an extension.
 */
export function decodeTarget(b: Buffer, o: number, size: number, family: Family, label: string | undefined, goto: boolean): Target | undefined {
  if (label !== undefined) {
    if (label === '') return undefined
    if ((VERDICTS as string[]).includes(label)) return { target: label as Verdict }
    return goto ? { goto: label } : { jump: label }
  }
  return readExt(TARGETS, b, o, size, family, {}) ?? { target: 'raw', ...rawOf(b, o, size) }
}
