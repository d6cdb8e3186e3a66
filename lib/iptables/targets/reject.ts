// REJECT --reject-with: an ICMP / ICMPv6 error or a TCP reset instead of a
// silent drop. The codes are indexes into the kernel's enums (ipt_reject_with,
// ip6t_reject_with), two of which iptables does not offer.
import * as v from '../../validate.js'
import { ext, type ExtFamily } from '../fields.js'
import { EXT, INV_PROTO } from '../layout.js'
import type { RejectWith, Target } from '../model.js'

const REJECT4: RejectWith[] = ['icmp-net-unreachable', 'icmp-host-unreachable', 'icmp-proto-unreachable', 'icmp-port-unreachable', 'echo-reply' as RejectWith, 'icmp-net-prohibited', 'icmp-host-prohibited', 'tcp-reset', 'icmp-admin-prohibited']
const REJECT6: RejectWith[] = ['icmp6-no-route', 'icmp6-adm-prohibited', 'not-neighbour' as RejectWith, 'icmp6-addr-unreachable', 'icmp6-port-unreachable', 'echo-reply' as RejectWith, 'tcp-reset', 'icmp6-policy-fail', 'icmp6-reject-route']
const unusable = (w: RejectWith): boolean => (w as string) === 'echo-reply' || (w as string) === 'not-neighbour'

export const reject: ExtFamily<Target> = {
  spec: () => EXT.REJECT,
  plan(at, field, t, plan, ctx) {
    v.only(at, field, t, ['target', 'rejectWith'])
    if (ctx.table !== 'filter' && ctx.table !== 'mangle' && ctx.table !== 'raw')
      v.fail(at, `${field}.target`, 'REJECT', `works in the filter, mangle and raw tables only (this is ${ctx.table})`)
    const names = plan.family === 'inet' ? REJECT4 : REJECT6
    const dflt = plan.family === 'inet' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'
    const usable = names.filter((n) => !unusable(n))
    const w = t.rejectWith === undefined ? dflt : v.oneOf(at, `${field}.rejectWith`, t.rejectWith, usable)
    if (w === 'tcp-reset' && (plan.proto !== 6 || plan.invflags & INV_PROTO))
      v.fail(at, `${field}.rejectWith`, w, "needs the rule's protocol to be tcp")
    const code = names.indexOf(w)
    return ext('REJECT', EXT.REJECT, (b, o) => void b.writeUInt32LE(code, o))
  },
  decode(b, d, family) {
    const w = (family === 'inet' ? REJECT4 : REJECT6)[b.readUInt32LE(d)]
    if (!w || unusable(w)) return undefined
    const dflt = family === 'inet' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'
    return { target: 'REJECT', ...(w === dflt ? {} : { rejectWith: w }) }
  },
}
