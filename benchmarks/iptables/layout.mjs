// The kube-proxy iptables-mode layout of the nat table (as in
// ../shared/reference: KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-*, statistic
// probabilities, KUBE-MARK-MASQ, KUBE-POSTROUTING), for N services of E
// endpoints, in two forms from one model: typed rules for tsproxy, and the
// iptables-save text iptables-legacy-restore reads. Both must build the same
// table (run.js checks the kernel's entry count and size after each).
import { createHash } from 'node:crypto'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
/** kube-proxy's chain suffix: 16 base32 characters of a SHA-256. */
function hash16(s) {
  const h = createHash('sha256').update(s).digest()
  let out = ''
  for (let i = 0; i < 16; i++) out += BASE32[h[i] & 31]
  return out
}

export const vip = (i) => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
export const podIp = (k) => `10.${244 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`
export const svcChain = (i) => `KUBE-SVC-${hash16(`svc/${i}`)}`
export const sepChain = (k) => `KUBE-SEP-${hash16(`sep/${k}`)}`
const svcName = (i) => `ns-${i % 50}/svc-${i}:http`
const CLUSTER_CIDR = '10.244.0.0/16'

/** kube-proxy writes 1/(n-i) with 11 digits; the kernel keeps 31 bits of it. */
const probability = (left) => Number((1 / left).toFixed(11))

/** The endpoint rules of one KUBE-SEP chain (also what an endpoint change rewrites). */
export function sepRules(i, ip, port = 8080) {
  const c = { match: 'comment', comment: svcName(i) }
  return [
    { source: `${ip}/32`, matches: [c], target: { jump: 'KUBE-MARK-MASQ' } },
    { protocol: 'tcp', matches: [c, { match: 'tcp' }], target: { target: 'DNAT', toDestination: `${ip}:${port}` } },
  ]
}

export function sepLines(chain, i, ip, port = 8080) {
  const c = `-m comment --comment "${svcName(i)}"`
  return [`-A ${chain} -s ${ip}/32 ${c} -j KUBE-MARK-MASQ`, `-A ${chain} -p tcp ${c} -m tcp -j DNAT --to-destination ${ip}:${port}`]
}

/**
 * { chains, rules: [chain, rule][], text } for `services` services of
 * `endpoints` endpoints. `text` is a whole *nat section for iptables-legacy-restore.
 */
export function kubeLayout({ services, endpoints }) {
  const chains = ['KUBE-MARK-DROP', 'KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-SERVICES']
  const rules = []
  const lines = []
  const cm = (text) => ({ match: 'comment', comment: text })
  const add = (chain, rule, line) => {
    rules.push([chain, rule])
    lines.push(line)
  }
  add('PREROUTING', { matches: [cm('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } }, '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
  add('OUTPUT', { matches: [cm('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } }, '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
  add('POSTROUTING', { matches: [cm('kubernetes postrouting rules')], target: { jump: 'KUBE-POSTROUTING' } }, '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')
  add('KUBE-MARK-DROP', { target: { target: 'MARK', op: 'set-xmark', value: 0x8000, mask: 0x8000 } }, '-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000')
  add('KUBE-MARK-MASQ', { target: { target: 'MARK', op: 'set-xmark', value: 0x4000, mask: 0x4000 } }, '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000')
  add('KUBE-POSTROUTING', { matches: [{ match: 'mark', mark: { not: 0x4000 }, mask: 0x4000 }], target: { target: 'RETURN' } }, '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN')
  add('KUBE-POSTROUTING', { target: { target: 'MARK', op: 'xor', value: 0x4000 } }, '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000')
  add('KUBE-POSTROUTING', { matches: [cm('kubernetes service traffic requiring SNAT')], target: { target: 'MASQUERADE', randomFully: true } }, '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully')
  for (let i = 0; i < services; i++) {
    const svc = svcChain(i)
    const name = svcName(i)
    chains.push(svc)
    add('KUBE-SERVICES', { destination: `${vip(i)}/32`, protocol: 'tcp', matches: [cm(`${name} cluster IP`), { match: 'tcp', dport: 80 }], target: { jump: svc } },
      `-A KUBE-SERVICES -d ${vip(i)}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j ${svc}`)
    add(svc, { source: { not: CLUSTER_CIDR }, destination: `${vip(i)}/32`, protocol: 'tcp', matches: [cm(`${name} cluster IP`), { match: 'tcp', dport: 80 }], target: { jump: 'KUBE-MARK-MASQ' } },
      `-A ${svc} ! -s ${CLUSTER_CIDR} -d ${vip(i)}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`)
    for (let e = 0; e < endpoints; e++) {
      const k = i * endpoints + e
      const sep = sepChain(k)
      const ip = podIp(k)
      chains.push(sep)
      const left = endpoints - e
      const stat = left > 1 ? [{ match: 'statistic', mode: 'random', probability: probability(left) }] : []
      const statText = left > 1 ? ` -m statistic --mode random --probability ${probability(left).toFixed(11)}` : ''
      add(svc, { matches: [cm(`${name} -> ${ip}:8080`), ...stat], target: { jump: sep } }, `-A ${svc} -m comment --comment "${name} -> ${ip}:8080"${statText} -j ${sep}`)
      const [r1, r2] = sepRules(i, ip)
      const [l1, l2] = sepLines(sep, i, ip)
      add(sep, r1, l1)
      add(sep, r2, l2)
    }
  }
  add('KUBE-SERVICES', { matches: [cm('kubernetes service nodeports; NOTE: this must be the last rule in this chain'), { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODEPORTS' } },
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
  const text = ['*nat', ...chains.map((c) => `:${c} - [0:0]`), ...lines, 'COMMIT', ''].join('\n')
  return { chains, rules, text }
}
