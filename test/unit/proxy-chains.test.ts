// deletable(): which of a mode's chains a cleanup may delete when the other
// mode's chains (same names, KUBE-MARK-MASQ, KUBE-SERVICES) still use some.
import t from 'tap'
import { deletable } from '../../dist/proxy/chains.js'
import type { Rule } from '../../dist/iptables.js'

const jump = (to: string): Rule => ({ target: { jump: to } })

t.test('a chain still jumped to from outside the removed set stays; the rest go', async (t) => {
  const tables = new Map<string, Rule[]>([
    ['PREROUTING', [jump('KUBE-SERVICES'), jump('OTHER')]],
    ['KUBE-SERVICES', [jump('KUBE-MARK-MASQ')]],
    ['KUBE-MARK-MASQ', [{ target: { target: 'MARK', op: 'set-xmark', value: 0x4000, mask: 0x4000 } }]],
    ['KUBE-SEP-ABC', [jump('KUBE-MARK-MASQ')]], // the other mode's
    ['OTHER', [{ target: { goto: 'KUBE-POSTROUTING' } }]],
    ['KUBE-POSTROUTING', []],
  ])
  const ours = new Set(['KUBE-SERVICES', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING'])
  const dropped = (chain: string, r: Rule): boolean => chain === 'PREROUTING' && JSON.stringify(r) === JSON.stringify(jump('KUBE-SERVICES'))
  t.same(deletable(tables, ours, dropped), ['KUBE-SERVICES'], 'KUBE-MARK-MASQ (used by KUBE-SEP-ABC) and KUBE-POSTROUTING (goto from OTHER) stay')
  t.same(deletable(tables, ours, () => false), [], 'with the jump from PREROUTING kept, KUBE-SERVICES stays too')
  tables.delete('KUBE-SEP-ABC')
  tables.delete('OTHER')
  t.same(deletable(tables, ours, dropped).sort(), ['KUBE-MARK-MASQ', 'KUBE-POSTROUTING', 'KUBE-SERVICES'], 'nothing else uses them: all go')
})
