// The digest the iptables proxier keeps per chain: equal rules (as samePlain
// compares them, counters left out) give equal digests, any difference another.
import t from 'tap'
import { chainDigest, digestRules } from '../../dist/proxy/iptables/digest.js'
import type { Rule } from '../../dist/iptables.js'

const dnat = (to: string): Rule => ({ protocol: 'tcp', matches: [{ match: 'comment', comment: 'ns/web:http' }, { match: 'tcp' }], target: { target: 'DNAT', toDestination: to } })

t.test('chain digests: equal rules, equal digests; counters, key order and undefined keys do not count', async (t) => {
  const a = [dnat('10.0.0.1:80'), { source: '10.0.0.1/32', matches: [{ match: 'comment', comment: 'ns/web:http' }], target: { jump: 'KUBE-MARK-MASQ' } } as Rule]
  const b = [
    { ...dnat('10.0.0.1:80'), counters: { packets: 5, bytes: 300 } } as Rule,
    { target: { jump: 'KUBE-MARK-MASQ' }, matches: [{ comment: 'ns/web:http', match: 'comment' }], source: '10.0.0.1/32', destination: undefined } as Rule,
  ]
  t.equal(chainDigest(a), chainDigest(b))
  t.equal(digestRules(chainDigest(a)), 2)
  t.equal(digestRules(chainDigest([])), 0)
  t.equal(chainDigest([{ matches: [{ match: 'x', a: [1, 2], b: { y: true, x: null } }] } as unknown as Rule]), chainDigest([{ matches: [{ b: { x: null, y: true }, a: [1, 2], match: 'x' }] } as unknown as Rule]), 'nested keys in any order')
})

t.test('chain digests: any difference, another digest', async (t) => {
  const base = [dnat('10.0.0.1:80'), dnat('10.0.0.2:80')]
  const d = chainDigest(base)
  t.not(chainDigest([dnat('10.0.0.1:80'), dnat('10.0.0.3:80')]), d, 'another endpoint')
  t.not(chainDigest([dnat('10.0.0.2:80'), dnat('10.0.0.1:80')]), d, 'another order')
  t.not(chainDigest([dnat('10.0.0.1:80')]), d, 'a rule less')
  t.not(chainDigest([dnat('10.0.0.1:80'), dnat('10.0.0.2:80'), dnat('10.0.0.2:80')]), d, 'a rule more')
  // A rule split differently between two rules must not collide: the separator counts.
  t.not(chainDigest([{ matches: [{ match: 'x', a: [1, 2] }] } as unknown as Rule]), chainDigest([{ matches: [{ match: 'x', a: [2, 1] }] } as unknown as Rule]), 'array order counts')
  t.not(chainDigest([{ matches: [{ match: 'x', a: 1 }] } as unknown as Rule]), chainDigest([{ matches: [{ match: 'x', a: '1' }] } as unknown as Rule]), 'a number is not its text')
  t.not(chainDigest([{ matches: [{ match: 'x', a: 'b' }] } as unknown as Rule]), chainDigest([{ matches: [{ match: 'x', b: 'a' }] } as unknown as Rule]), 'keys and values do not swap')
  t.not(chainDigest([{ matches: [{ match: 'comment', comment: 'a' }] }, { matches: [{ match: 'comment', comment: 'b' }] }]), chainDigest([{ matches: [{ match: 'comment', comment: 'ab' }] }]))
})
