// The fixed netfilter half of kube-proxy's IPVS mode: the ipsets the proxier
// fills per service, and the few nat/filter rules that match those sets. The
// rules never change with the number of services (that is the point of ipset),
// so they are written only when they differ from what the kernel holds.
// Names, set types and comments are kube-proxy's (pkg/proxy/ipvs/ipset.go,
// proxier.go), so an operator's iptables-save and ipset list read the same.
import type { Family } from '../../validate.js'
import type { CreateSpec, SetType } from '../../ipset.js'
import type { Rule } from '../../iptables.js'
import type { TableSpec } from '../chains.js'

export const DUMMY_LINK = 'kube-ipvs0'

export interface SetDef {
  /** The IPv4 name; IPv6 sets insert '6-' after 'KUBE-' (KUBE-6-CLUSTER-IP), cut at 31 characters. */
  readonly name: string
  readonly type: SetType
  readonly comment: string
}

const def = (name: string, type: SetType, comment: string): SetDef => ({ name, type, comment })

/** Every set of IPVS mode, by role. */
export const SETS = {
  loopBack: def('KUBE-LOOP-BACK', 'hash:ip,port,ip', 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose'),
  clusterIP: def('KUBE-CLUSTER-IP', 'hash:ip,port', 'Kubernetes service cluster ip + port for masquerade purpose'),
  externalIP: def('KUBE-EXTERNAL-IP', 'hash:ip,port', 'Kubernetes service external ip + port for masquerade and filter purpose'),
  externalIPLocal: def('KUBE-EXTERNAL-IP-LOCAL', 'hash:ip,port', 'Kubernetes service external ip + port with externalTrafficPolicy=local'),
  loadBalancer: def('KUBE-LOAD-BALANCER', 'hash:ip,port', 'Kubernetes service lb portal'),
  loadBalancerFW: def('KUBE-LOAD-BALANCER-FW', 'hash:ip,port', 'Kubernetes service load balancer ip + port for load balancer with sourceRange'),
  loadBalancerLocal: def('KUBE-LOAD-BALANCER-LOCAL', 'hash:ip,port', 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local'),
  loadBalancerSourceIP: def('KUBE-LOAD-BALANCER-SOURCE-IP', 'hash:ip,port,ip', 'Kubernetes service load balancer ip + port + source IP for packet filter purpose'),
  loadBalancerSourceCIDR: def('KUBE-LOAD-BALANCER-SOURCE-CIDR', 'hash:ip,port,net', 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose'),
  nodePortTCP: def('KUBE-NODE-PORT-TCP', 'bitmap:port', 'Kubernetes nodeport TCP port for masquerade purpose'),
  nodePortLocalTCP: def('KUBE-NODE-PORT-LOCAL-TCP', 'bitmap:port', 'Kubernetes nodeport TCP port with externalTrafficPolicy=local'),
  nodePortUDP: def('KUBE-NODE-PORT-UDP', 'bitmap:port', 'Kubernetes nodeport UDP port for masquerade purpose'),
  nodePortLocalUDP: def('KUBE-NODE-PORT-LOCAL-UDP', 'bitmap:port', 'Kubernetes nodeport UDP port with externalTrafficPolicy=local'),
  nodePortSCTP: def('KUBE-NODE-PORT-SCTP-HASH', 'hash:ip,port', 'Kubernetes nodeport SCTP port for masquerade purpose with type \'hash ip:port\''),
  nodePortLocalSCTP: def('KUBE-NODE-PORT-LOCAL-SCTP-HASH', 'hash:ip,port', 'Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type \'hash ip:port\''),
  healthCheckNodePort: def('KUBE-HEALTH-CHECK-NODE-PORT', 'bitmap:port', 'Kubernetes health check node port'),
  ipvsIPs: def('KUBE-IPVS-IPS', 'hash:ip', 'Kubernetes service IP'),
} as const

export type SetRole = keyof typeof SETS

/**
 * The kernel name of a set in a family. IPv6 names insert '6-' and, like
 * kube-proxy's, are cut at ipset's 31 characters (KUBE-6-LOAD-BALANCER-SOURCE-CID).
 */
export function setName(role: SetRole, family: Family): string {
  const n = SETS[role].name
  return family === 'inet' ? n : `KUBE-6-${n.slice('KUBE-'.length)}`.slice(0, 31)
}

/** The create spec of a set (bitmap:port sets cover every port, as kube-proxy's). */
export function setSpec(role: SetRole, family: Family): CreateSpec {
  const d = SETS[role]
  const spec: CreateSpec = { name: setName(role, family), type: d.type, exist: true }
  if (d.type === 'bitmap:port') spec.range = [0, 65535]
  else spec.family = family
  return spec
}

export const SET_ROLES = Object.keys(SETS) as SetRole[]

/** The kernel's maxelem for a hash set created without one (kube-proxy creates every set with it). */
export const DEFAULT_MAXELEM = 65536

/**
 * The maxelem a hash set is given when `need` entries no longer fit in it
 * (KUBE-CLUSTER-IP past 65536 service ports, kube-proxy's hard limit): the
 * next power of two at least twice the need, so that it grows rarely. The
 * kernel fixes maxelem at create; the set is replaced by a bigger one.
 */
export function grownMaxelem(need: number): number {
  let m = DEFAULT_MAXELEM
  while (m < 2 * need) m *= 2
  return m
}

/** Chains of IPVS mode, by table. Only these (and the jumps into them) are ever touched. */
export const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-NODE-PORT', 'KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ'] as const
export const FILTER_CHAINS = ['KUBE-FORWARD', 'KUBE-NODE-PORT', 'KUBE-PROXY-FIREWALL', 'KUBE-SOURCE-RANGES-FIREWALL', 'KUBE-IPVS-FILTER', 'KUBE-IPVS-OUT-FILTER'] as const

export interface RuleOptions {
  family: Family
  /** iptables.masqueradeAll: masquerade all traffic to cluster IPs. */
  masqueradeAll: boolean
  /** The bit of the masquerade mark (iptables.masqueradeBit, 14: 0x4000). */
  masqueradeBit: number
  /** The pod network of this family ('' when unknown: then only masqueradeAll masquerades cluster IP traffic). */
  clusterCIDR: string
}

const comment = (text: string): { match: 'comment'; comment: string } => ({ match: 'comment', comment: text })

/**
 * The nat and filter tables' KUBE-* chains of IPVS mode, in the canonical form
 * the kernel reads back (so "equal" means "nothing to do").
 */
export function ipvsTables(o: RuleOptions): { nat: TableSpec; filter: TableSpec } {
  const set = (role: SetRole, ...flags: ('src' | 'dst')[]) => ({ match: 'set' as const, matchSet: setName(role, o.family), flags })
  const mark = (1 << o.masqueradeBit) >>> 0
  const markMasq: Rule['target'] = { jump: 'KUBE-MARK-MASQ' }
  const cidr = o.clusterCIDR

  const services: Rule[] = []
  if (o.masqueradeAll) services.push({ matches: [comment(SETS.clusterIP.comment), set('clusterIP', 'dst', 'dst')], target: markMasq })
  else if (cidr) services.push({ source: { not: cidr }, matches: [comment(SETS.clusterIP.comment), set('clusterIP', 'dst', 'dst')], target: markMasq })
  services.push(
    // External IPs: masquerade, then accept what comes from off the node (not
    // from a bridge port, not from a local process) or is for a local address.
    { matches: [comment(SETS.externalIP.comment), set('externalIP', 'dst', 'dst')], target: markMasq },
    {
      matches: [comment(SETS.externalIP.comment), set('externalIP', 'dst', 'dst'), { match: 'physdev', physdevIsIn: { not: true } }, { match: 'addrtype', srcType: { not: 'LOCAL' } }],
      target: { target: 'ACCEPT' },
    },
    { matches: [comment(SETS.externalIP.comment), set('externalIP', 'dst', 'dst'), { match: 'addrtype', dstType: 'LOCAL' }], target: { target: 'ACCEPT' } },
    {
      matches: [comment(SETS.externalIPLocal.comment), set('externalIPLocal', 'dst', 'dst'), { match: 'physdev', physdevIsIn: { not: true } }, { match: 'addrtype', srcType: { not: 'LOCAL' } }],
      target: { target: 'ACCEPT' },
    },
    { matches: [comment(SETS.externalIPLocal.comment), set('externalIPLocal', 'dst', 'dst'), { match: 'addrtype', dstType: 'LOCAL' }], target: { target: 'ACCEPT' } },
    { matches: [comment(SETS.loadBalancer.comment), set('loadBalancer', 'dst', 'dst')], target: { jump: 'KUBE-LOAD-BALANCER' } },
    { matches: [{ match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODE-PORT' } },
    // Accept traffic to virtual servers in case later rules would drop it.
    { matches: [set('clusterIP', 'dst', 'dst')], target: { target: 'ACCEPT' } },
    { matches: [set('loadBalancer', 'dst', 'dst')], target: { target: 'ACCEPT' } },
  )

  const nodePort: Rule[] = []
  for (const [proto, local, all] of [
    ['tcp', 'nodePortLocalTCP', 'nodePortTCP'],
    ['udp', 'nodePortLocalUDP', 'nodePortUDP'],
  ] as const) {
    nodePort.push(
      { protocol: proto, matches: [comment(SETS[local].comment), set(local, 'dst')], target: { target: 'RETURN' } },
      { protocol: proto, matches: [comment(SETS[all].comment), set(all, 'dst')], target: markMasq },
    )
  }
  nodePort.push(
    { protocol: 'sctp', matches: [comment(SETS.nodePortLocalSCTP.comment), set('nodePortLocalSCTP', 'dst', 'dst')], target: { target: 'RETURN' } },
    { protocol: 'sctp', matches: [comment(SETS.nodePortSCTP.comment), set('nodePortSCTP', 'dst', 'dst')], target: markMasq },
  )

  const nat: TableSpec = {
    chains: new Map<string, Rule[]>([
      ['KUBE-SERVICES', services],
      [
        'KUBE-POSTROUTING',
        [
          { matches: [comment(SETS.loopBack.comment), set('loopBack', 'dst', 'dst', 'src')], target: { target: 'MASQUERADE' } },
          { matches: [{ match: 'mark', mark: { not: mark }, mask: mark }], target: { target: 'RETURN' } },
          { target: { target: 'MARK', op: 'set-xmark', value: mark, mask: 0 } },
          { matches: [comment('kubernetes service traffic requiring SNAT')], target: { target: 'MASQUERADE', randomFully: true } },
        ],
      ],
      ['KUBE-NODE-PORT', nodePort],
      [
        'KUBE-LOAD-BALANCER',
        [
          { matches: [comment(SETS.loadBalancerLocal.comment), set('loadBalancerLocal', 'dst', 'dst')], target: { target: 'RETURN' } },
          { target: markMasq },
        ],
      ],
      ['KUBE-MARK-MASQ', [{ target: { target: 'MARK', op: 'set-xmark', value: mark, mask: mark } }]],
    ]),
    jumps: [
      { chain: 'PREROUTING', rule: { matches: [comment('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } } },
      { chain: 'OUTPUT', rule: { matches: [comment('kubernetes service portals')], target: { jump: 'KUBE-SERVICES' } } },
      { chain: 'POSTROUTING', rule: { matches: [comment('kubernetes postrouting rules')], target: { jump: 'KUBE-POSTROUTING' } } },
    ],
  }

  const accept: Rule['target'] = { target: 'RETURN' }
  const filter: TableSpec = {
    chains: new Map<string, Rule[]>([
      [
        'KUBE-FORWARD',
        [
          { matches: [comment('kubernetes forwarding rules'), { match: 'mark', mark, mask: mark }], target: { target: 'ACCEPT' } },
          { matches: [comment('kubernetes forwarding conntrack rule'), { match: 'conntrack', ctstate: ['ESTABLISHED', 'RELATED'] }], target: { target: 'ACCEPT' } },
          { matches: [{ match: 'conntrack', ctstate: ['INVALID'] }], target: { target: 'DROP' } },
        ],
      ],
      ['KUBE-NODE-PORT', [{ matches: [comment(SETS.healthCheckNodePort.comment), set('healthCheckNodePort', 'dst')], target: { target: 'ACCEPT' } }]],
      [
        'KUBE-PROXY-FIREWALL',
        [{ matches: [comment(SETS.loadBalancerFW.comment), set('loadBalancerFW', 'dst', 'dst')], target: { jump: 'KUBE-SOURCE-RANGES-FIREWALL' } }],
      ],
      [
        'KUBE-SOURCE-RANGES-FIREWALL',
        [
          { matches: [set('loadBalancerSourceCIDR', 'dst', 'dst', 'src')], target: { target: 'RETURN' } },
          { matches: [set('loadBalancerSourceIP', 'dst', 'dst', 'src')], target: { target: 'RETURN' } },
          { target: { target: 'DROP' } },
        ],
      ],
      [
        'KUBE-IPVS-FILTER',
        [
          // Traffic to a virtual server passes; anything else new to a VIP is refused
          // (a VIP answers only on its service ports).
          { matches: [set('loadBalancer', 'dst', 'dst')], target: accept },
          { matches: [set('clusterIP', 'dst', 'dst')], target: accept },
          { matches: [set('externalIP', 'dst', 'dst')], target: accept },
          { matches: [set('externalIPLocal', 'dst', 'dst')], target: accept },
          { matches: [set('healthCheckNodePort', 'dst')], target: accept },
          { matches: [{ match: 'conntrack', ctstate: ['NEW'] }, set('ipvsIPs', 'dst')], target: { target: 'REJECT' } },
        ],
      ],
      ['KUBE-IPVS-OUT-FILTER', []],
    ]),
    jumps: [
      { chain: 'INPUT', rule: { matches: [comment('kubernetes ipvs access filter')], target: { jump: 'KUBE-IPVS-FILTER' } } },
      { chain: 'INPUT', rule: { matches: [comment('kube-proxy firewall rules')], target: { jump: 'KUBE-PROXY-FIREWALL' } } },
      { chain: 'INPUT', rule: { matches: [comment('kubernetes health check rules')], target: { jump: 'KUBE-NODE-PORT' } } },
      { chain: 'FORWARD', rule: { matches: [comment('kube-proxy firewall rules')], target: { jump: 'KUBE-PROXY-FIREWALL' } } },
      { chain: 'FORWARD', rule: { matches: [comment('kubernetes forwarding rules')], target: { jump: 'KUBE-FORWARD' } } },
      { chain: 'OUTPUT', rule: { matches: [comment('kubernetes ipvs access filter')], target: { jump: 'KUBE-IPVS-OUT-FILTER' } } },
    ],
  }
  return { nat, filter }
}
