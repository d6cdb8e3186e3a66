// The planner: a rule validated (a ValidationError names the field) into a
// plan, measured, and laid out as the kernel's entry (struct ipt_entry or
// ip6t_entry, each match and target at the revision iptables-legacy 1.8
// writes, byte for byte), with the mask `iptables -D` compares with.
import type { Where } from '../validate.js'
import * as v from '../validate.js'
import { cidr, type ExtPlan, iface, protocolNumber, type RuleContext, type RulePlan, unwrap, writeIface, yes } from './fields.js'
import { ENTRY4, ENTRY6, type EntryLayout, INV_DSTIP, INV_FRAG, INV_PROTO, INV_SRCIP, INV_VIA_IN, INV_VIA_OUT, IP6T_F_PROTO, IPT_F_FRAG, SET, XT_HEADER } from './layout.js'
import { matchPlan } from './matches/index.js'
import { targetPlan } from './targets/index.js'

/** A rule laid out: the entry's bytes, the mask `iptables -D` would compare with, the set names to resolve. */
export interface EncodedRule {
  entry: Buffer
  mask: Buffer
  /** Offsets in `entry` of u16 ipset indexes, and the set to look up for each. */
  sets: { offset: number; name: string }[]
}

const RULE_KEYS = ['source', 'destination', 'inInterface', 'outInterface', 'protocol', 'fragment', 'matches', 'target', 'counters']

function rulePlan(at: Where, value: unknown, ctx: RuleContext): RulePlan {
  const r = v.object(at, 'rule', value)
  v.only(at, 'rule', r, RULE_KEYS)
  const family = ctx.family
  const plan: RulePlan = { family, proto: 0, flags: 0, invflags: 0, matches: [], target: undefined as unknown as ExtPlan }
  if (r.source !== undefined) {
    const { value: s, not } = unwrap(r.source)
    const c = cidr(at, 'rule.source', s, family, true)
    plan.src = { bytes: c.bytes, mask: c.mask }
    if (not) plan.invflags |= INV_SRCIP
  }
  if (r.destination !== undefined) {
    const { value: d, not } = unwrap(r.destination)
    const c = cidr(at, 'rule.destination', d, family, true)
    plan.dst = { bytes: c.bytes, mask: c.mask }
    if (not) plan.invflags |= INV_DSTIP
  }
  if (r.inInterface !== undefined) {
    const { value: i, not } = unwrap(r.inInterface)
    plan.iniface = iface(at, 'rule.inInterface', i)
    if (not) plan.invflags |= INV_VIA_IN
  }
  if (r.outInterface !== undefined) {
    const { value: i, not } = unwrap(r.outInterface)
    plan.outiface = iface(at, 'rule.outInterface', i)
    if (not) plan.invflags |= INV_VIA_OUT
  }
  if (r.protocol !== undefined) {
    const { value: p, not } = unwrap(r.protocol)
    plan.proto = protocolNumber(at, 'rule.protocol', p)
    if (not) {
      if (plan.proto === 0) v.fail(at, 'rule.protocol', r.protocol, "cannot negate 'all'")
      plan.invflags |= INV_PROTO
    }
    if (family === 'inet6' && plan.proto !== 0) plan.flags |= IP6T_F_PROTO
  }
  if (r.fragment !== undefined) {
    if (family !== 'inet') v.fail(at, 'rule.fragment', r.fragment, 'is IPv4 only')
    const { value: f, not } = unwrap(r.fragment)
    yes(at, 'rule.fragment', f)
    plan.flags |= IPT_F_FRAG
    if (not) plan.invflags |= INV_FRAG
  }
  if (r.matches !== undefined) {
    if (!Array.isArray(r.matches)) v.fail(at, 'rule.matches', r.matches, 'must be an array of matches')
    r.matches.forEach((m, i) => plan.matches.push(matchPlan(at, `rule.matches[${i}]`, m, plan, ctx)))
  }
  plan.target = targetPlan(at, r.target, plan, ctx)
  return plan
}

/** A rule validated and measured: what writeEntry / writeMask lay out. */
export interface PlannedRule {
  plan: RulePlan
  layout: EntryLayout
  size: number
  targetOffset: number
  /** How many set matches need an index resolved. */
  nsets: number
}

/** Validates `rule` (a ValidationError names the field) and measures its entry. */
export function planRule(at: Where, rule: unknown, ctx: RuleContext): PlannedRule {
  const plan = rulePlan(at, rule, ctx)
  const layout: EntryLayout = ctx.family === 'inet' ? ENTRY4 : ENTRY6
  let size = layout.size
  let nsets = 0
  for (const m of plan.matches) {
    size += XT_HEADER + m.size
    if (m.set !== undefined) nsets++
  }
  const targetOffset = size
  size += XT_HEADER + plan.target.size
  if (size > 0xffff) v.fail(at, 'rule', rule, 'is larger than an entry can be (64 KiB)')
  return { plan, layout, size, targetOffset, nsets }
}

/**
 * Writes the entry at `o` of `b` (zeroed there): struct ipt_entry / ip6t_entry,
 * each match, the target. Calls `set(offset, name)` (offset from the entry's
 * start) for each set match whose u16 index native code fills in.
 */
export function writeEntry(p: PlannedRule, b: Buffer, o: number, set?: (offset: number, name: string) => void): void {
  const L = p.layout
  writeHead(b, o, L, p.plan)
  u16(b, o + L.targetOffset, p.targetOffset)
  u16(b, o + L.nextOffset, p.size)
  let at = o + L.size
  const n = p.plan.matches.length
  for (let i = 0; i <= n; i++) {
    const m = i < n ? p.plan.matches[i]! : p.plan.target
    const total = XT_HEADER + m.size
    u16(b, at, total)
    b.write(m.name, at + 2, 'latin1')
    b[at + 31] = m.revision
    m.write(b, at + XT_HEADER)
    if (m.set !== undefined && set) set(at - o + XT_HEADER + SET.index, m.set)
    at += total
  }
}

/** A u16 in host (little-endian) order, without Buffer's argument checks. */
function u16(b: Buffer, o: number, v: number): void {
  b[o] = v & 0xff
  b[o + 1] = v >>> 8
}

/** The mask iptables -D compares with (make_delete_mask): the entry, then each header and its userspacesize. */
export function writeMask(p: PlannedRule, b: Buffer, o: number): void {
  b.fill(0xff, o, o + p.layout.size)
  let at = o + p.layout.size
  for (const m of [...p.plan.matches, p.plan.target]) {
    b.fill(0xff, at, at + XT_HEADER + m.user)
    at += XT_HEADER + m.size
  }
}

/** Validates `rule` and lays it out as the kernel's entry (and the mask iptables -D would compare with). */
export function encodeRule(at: Where, rule: unknown, ctx: RuleContext): EncodedRule {
  const p = planRule(at, rule, ctx)
  const entry = Buffer.alloc(p.size)
  const mask = Buffer.alloc(p.size)
  const sets: { offset: number; name: string }[] = []
  writeEntry(p, entry, 0, (offset, name) => sets.push({ offset, name }))
  writeMask(p, mask, 0)
  return { entry, mask, sets }
}

function writeHead(b: Buffer, o: number, L: EntryLayout, p: RulePlan): void {
  if (p.src) {
    b.set(p.src.bytes, o + L.src)
    b.set(p.src.mask, o + L.smsk)
  }
  if (p.dst) {
    b.set(p.dst.bytes, o + L.dst)
    b.set(p.dst.mask, o + L.dmsk)
  }
  if (p.iniface !== undefined) writeIface(b, o + L.iniface, o + L.inifaceMask, p.iniface)
  if (p.outiface !== undefined) writeIface(b, o + L.outiface, o + L.outifaceMask, p.outiface)
  u16(b, o + L.proto, p.proto)
  b[o + L.flags] = p.flags
  b[o + L.invflags] = p.invflags
}

