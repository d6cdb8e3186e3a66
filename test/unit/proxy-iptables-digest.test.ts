// The digest the iptables proxier keeps per chain: equal rules (as samePlain
// compares them, counters left out) give equal digests, any difference another.
import t from 'tap'
import { canonical, chainDigest, digestRules } from '../../dist/proxy/iptables/digest.js'
import type { Rule } from '../../dist/iptables.js'

const dnat = (to: string): Rule => ({ protocol: 'tcp', matches: [{ match: 'comment', comment: 'ns/web:http' }, { match: 'tcp' }], target: { target: 'DNAT', toDestination: to } })

t.test('canonical text: keys sorted, undefined left out, arrays in order', async (t) => {
  t.equal(canonical({ b: 1, a: 'x', c: undefined }), '{"a":"x","b":1}')
  t.equal(canonical({ a: [2, 1] }), '{"a":[2,1]}')
  t.not(canonical({ a: [1, 2] }), canonical({ a: [2, 1] }))
  t.equal(canonical({ a: { y: true, x: null } }), '{"a":{"x":null,"y":true}}')
})

t.test('chain digests: equal rules, equal digests; counters, key order and undefined keys do not count', async (t) => {
  const a = [dnat('10.0.0.1:80'), { source: '10.0.0.1/32', matches: [{ match: 'comment', comment: 'ns/web:http' }], target: { jump: 'KUBE-MARK-MASQ' } } as Rule]
  const b = [
    { ...dnat('10.0.0.1:80'), counters: { packets: 5, bytes: 300 } } as Rule,
    { target: { jump: 'KUBE-MARK-MASQ' }, matches: [{ comment: 'ns/web:http', match: 'comment' }], source: '10.0.0.1/32', destination: undefined } as Rule,
  ]
  t.equal(chainDigest(a), chainDigest(b))
  t.equal(digestRules(chainDigest(a)), 2)
  t.equal(digestRules(chainDigest([])), 0)
})

t.test('chain digests: any difference, another digest', async (t) => {
  const base = [dnat('10.0.0.1:80'), dnat('10.0.0.2:80')]
  const d = chainDigest(base)
  t.not(chainDigest([dnat('10.0.0.1:80'), dnat('10.0.0.3:80')]), d, 'another endpoint')
  t.not(chainDigest([dnat('10.0.0.2:80'), dnat('10.0.0.1:80')]), d, 'another order')
  t.not(chainDigest([dnat('10.0.0.1:80')]), d, 'a rule less')
  t.not(chainDigest([dnat('10.0.0.1:80'), dnat('10.0.0.2:80'), dnat('10.0.0.2:80')]), d, 'a rule more')
  // A rule split differently between two rules must not collide: the separator counts.
  t.not(chainDigest([{ matches: [{ match: 'comment', comment: 'a' }] }, { matches: [{ match: 'comment', comment: 'b' }] }]), chainDigest([{ matches: [{ match: 'comment', comment: 'ab' }] }]))
})
