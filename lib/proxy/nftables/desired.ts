// What kube-proxy's nftables mode asks of the kernel (pkg/proxy/nftables, as
// its documented behaviour and test goldens): the fixed part of the table
// (base chains, jumps, helper chains, sets and maps) and, per service port,
// its elements in the shared maps and its own chains
// (`service-<HASH>-ns/name/proto/port`, `external-`, `local-`,
// `endpoint-<HASH>-ns/name/proto/port__ip/port`). Pure.
import { hash } from 'node:crypto'
import { inFamily } from '../../address.js'
import { nftData as d, type NftBaseChain, type NftDatatype, type NftElement, type NftVerdict } from '../../nftables.js'
import type { Family } from '../../validate.js'
import type { Endpoint } from '../model/endpoints.js'
import { servicePortNameString, type ServicePort } from '../model/serviceport.js'
import { categorizeEndpoints, portPolicy, type TopologyOptions } from '../model/topology.js'
import * as r from './rules.js'
import type { Proto, RuleSpec } from './rules.js'

export const TABLE = 'kube-proxy'
export const TABLE_COMMENT = 'rules for kube-proxy'

export const SERVICES = 'services'
export const SERVICE_IPS = 'service-ips'
export const SERVICE_NODEPORTS = 'service-nodeports'
export const CLUSTER_IPS = 'cluster-ips'
export const NODEPORT_IPS = 'nodeport-ips'
export const NO_ENDPOINT_SERVICES = 'no-endpoint-services'
export const NO_ENDPOINT_NODEPORTS = 'no-endpoint-nodeports'
export const FIREWALL_IPS = 'firewall-ips'
export const REJECT_CHAIN = 'reject-chain'
export const MARK_MASQ = 'mark-for-masquerade'
export const MASQUERADING = 'masquerading'
export const CLUSTER_IPS_CHECK = 'cluster-ips-check'
export const SERVICE_ENDPOINTS_CHECK = 'service-endpoints-check'
export const NODEPORT_ENDPOINTS_CHECK = 'nodeport-endpoints-check'
export const FIREWALL_CHECK = 'firewall-check'

/** The sets and maps of the table, with their shapes. */
export interface SetShape {
  readonly name: string
  readonly key: NftDatatype | NftDatatype[]
  readonly data?: 'verdict'
  readonly comment: string
}

export interface ChainShape {
  readonly name: string
  readonly base?: NftBaseChain
  readonly comment?: string
  readonly rules: readonly RuleSpec[]
}

export interface FixedLayout {
  readonly sets: readonly SetShape[]
  readonly chains: readonly ChainShape[]
}

export interface FixedOptions {
  readonly family: Family
  readonly masqueradeBit: number
  /** Node addresses that take node ports; undefined: every local address (`fib daddr type local`). */
  readonly nodePortAddresses?: readonly string[]
}

/** The table's fixed part, in the order kube-proxy creates it. */
export function fixedLayout(o: FixedOptions): FixedLayout {
  const f = r.familyLayout(o.family)
  const mark = (1 << o.masqueradeBit) >>> 0
  const triple: NftDatatype[] = [f.addrType, 'inet_proto', 'inet_service']
  const all = o.nodePortAddresses === undefined
  const sets: SetShape[] = [
    { name: CLUSTER_IPS, key: f.addrType, comment: 'Active ClusterIPs' },
    ...(all ? [] : [{ name: NODEPORT_IPS, key: f.addrType, comment: 'IPs that accept NodePort traffic' }]),
    { name: NO_ENDPOINT_SERVICES, key: triple, data: 'verdict', comment: 'vmap to drop or reject packets to services with no endpoints' },
    { name: NO_ENDPOINT_NODEPORTS, key: ['inet_proto', 'inet_service'], data: 'verdict', comment: 'vmap to drop or reject packets to service nodeports with no endpoints' },
    { name: FIREWALL_IPS, key: triple, data: 'verdict', comment: 'destinations that are subject to LoadBalancerSourceRanges' },
    { name: SERVICE_IPS, key: triple, data: 'verdict', comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic' },
    { name: SERVICE_NODEPORTS, key: ['inet_proto', 'inet_service'], data: 'verdict', comment: 'NodePort traffic' },
  ]
  const base = (type: 'filter' | 'nat', hook: NftBaseChain['hook'], priority: number): NftBaseChain => ({ type, hook, priority, policy: 'accept' })
  const newJump = (c: string): RuleSpec => r.rule([...r.ctStateNew, r.jump(c)])
  const nodePortsMatch = all ? [...r.fibLocal('daddr'), ...r.notLocalhost(o.family)] : r.addrInSet(o.family, 'daddr', NODEPORT_IPS)
  const chains: ChainShape[] = [
    { name: 'filter-prerouting', base: base('filter', 'prerouting', -110), rules: [newJump(FIREWALL_CHECK)] },
    { name: 'filter-input', base: base('filter', 'input', -110), rules: [newJump(NODEPORT_ENDPOINTS_CHECK), newJump(SERVICE_ENDPOINTS_CHECK)] },
    { name: 'filter-forward', base: base('filter', 'forward', -110), rules: [newJump(SERVICE_ENDPOINTS_CHECK), newJump(CLUSTER_IPS_CHECK)] },
    { name: 'filter-output', base: base('filter', 'output', -110), rules: [newJump(SERVICE_ENDPOINTS_CHECK), newJump(FIREWALL_CHECK)] },
    { name: 'filter-output-post-dnat', base: base('filter', 'output', -90), rules: [newJump(CLUSTER_IPS_CHECK)] },
    { name: 'nat-prerouting', base: base('nat', 'prerouting', -100), rules: [r.rule([r.jump(SERVICES)])] },
    { name: 'nat-output', base: base('nat', 'output', -100), rules: [r.rule([r.jump(SERVICES)])] },
    { name: 'nat-postrouting', base: base('nat', 'postrouting', 100), rules: [r.rule([r.jump(MASQUERADING)])] },
    {
      name: CLUSTER_IPS_CHECK,
      rules: [r.rule([...r.addrInSet(o.family, 'daddr', CLUSTER_IPS), r.reject(o.family)], 'Reject traffic to invalid ports of ClusterIPs')],
    },
    { name: FIREWALL_CHECK, rules: [r.rule(r.daddrProtoPortVmap(o.family, FIREWALL_IPS))] },
    { name: MARK_MASQ, rules: [r.rule(r.markOr(mark))] },
    { name: MASQUERADING, rules: [r.rule([...r.markClear(mark), r.ret]), r.rule(r.markXor(mark)), r.rule([r.masqueradeFullyRandom])] },
    { name: NODEPORT_ENDPOINTS_CHECK, rules: [r.rule([...nodePortsMatch, ...r.protoPortVmap(NO_ENDPOINT_NODEPORTS)])] },
    { name: REJECT_CHAIN, comment: 'helper for @no-endpoint-services / @no-endpoint-nodeports', rules: [r.rule([r.reject(o.family)])] },
    { name: SERVICE_ENDPOINTS_CHECK, rules: [r.rule(r.daddrProtoPortVmap(o.family, NO_ENDPOINT_SERVICES))] },
    { name: SERVICES, rules: [r.rule(r.daddrProtoPortVmap(o.family, SERVICE_IPS)), r.rule([...nodePortsMatch, ...r.protoPortVmap(SERVICE_NODEPORTS)])] },
  ]
  return { sets, chains }
}

/** The elements of the fixed sets that do not depend on services (nodeport-ips). */
export function fixedElements(o: FixedOptions): Map<string, NftElement[]> {
  const out = new Map<string, NftElement[]>()
  if (o.nodePortAddresses !== undefined) out.set(NODEPORT_IPS, o.nodePortAddresses.map((ip) => ({ key: r.addrBytes(ip) })))
  return out
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** kube-proxy's hashAndTruncate: the first 8 base32 characters of sha256(name), '-', the name (240 bytes at most). */
export function hashAndTruncate(name: string): string {
  const bytes = hash('sha256', name, 'buffer')
  let out = ''
  let bits = 0
  let acc = 0
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff
    bits += 8
    while (bits >= 5 && out.length < 8) {
      out += B32[(acc >>> (bits - 5)) & 31]
      bits -= 5
    }
    if (out.length === 8) break
  }
  const full = `${out}-${name}`
  return full.length > 240 ? `${full.slice(0, 237)}...` : full
}

export interface PortChains {
  readonly base: string
  readonly svc: string
  readonly local: string
  readonly ext: string
  readonly fw: string
}

/** A port's chain names: prefix + hash + 'ns/name/proto/port'. */
export function portChains(port: ServicePort): PortChains {
  const p = port.protocol.toLowerCase()
  const base = hashAndTruncate(`${port.name.namespace}/${port.name.name}/${p}/${port.name.port}`)
  return { base, svc: `service-${base}`, local: `local-${base}`, ext: `external-${base}`, fw: `firewall-${base}` }
}

/** An endpoint's chain name ('endpoint-HASH-ns/name/proto/port__ip/port'; an IPv6 address with dots for colons). */
export function endpointChain(port: ServicePort, e: Endpoint): string {
  const p = port.protocol.toLowerCase()
  const ip = e.ip.replaceAll(':', '.')
  return `endpoint-${hashAndTruncate(`${port.name.namespace}/${port.name.name}/${p}/${port.name.port}__${ip}/${e.port}`)}`
}

/** An endpoint's affinity set ('affinity-HASH-...', the endpoint chain's base). */
export function affinitySet(port: ServicePort, e: Endpoint): string {
  return `affinity-${endpointChain(port, e).slice('endpoint-'.length)}`
}

/** Whether a set is a port's affinity set. */
export const isAffinitySet = (name: string): boolean => name.startsWith('affinity-')

/** Whether a chain is one of a service port's (kube-proxy: its name holds a '/'). */
export const isServiceChain = (name: string): boolean => name.includes('/')

/** One element a port asks for in a shared set or map. */
export interface PortElement {
  readonly set: string
  readonly key: Uint8Array
  readonly verdict?: NftVerdict
  readonly comment?: string
}

/** A port's own set: ClientIP affinity, one per endpoint (source addresses, timing out after the affinity timeout). */
export interface PortSet {
  readonly name: string
  readonly key: 'ipv4_addr' | 'ipv6_addr'
  /** ms. */
  readonly timeout: number
}

export interface PortDesired {
  readonly elements: readonly PortElement[]
  /** Its own sets (affinity), made before its chains. */
  readonly sets: readonly PortSet[]
  /** Its own chains, in creation order. */
  readonly chains: ReadonlyMap<string, readonly RuleSpec[]>
  readonly noLocalEndpoints: readonly ('internal' | 'external')[]
}

export const EMPTY_PORT: PortDesired = Object.freeze({ elements: [], sets: [], chains: new Map(), noLocalEndpoints: [] })

export interface PortContext {
  readonly family: Family
  readonly masqueradeAll: boolean
  /** The pod network of this family; '' when unknown. */
  readonly clusterCIDR: string
  readonly nodeIP?: string
  readonly topology?: TopologyOptions
}

/** What one service port asks of the kernel, as kube-proxy's syncProxyRules writes it. */
export function desiredOf(port: ServicePort, endpoints: readonly Endpoint[], ctx: PortContext): PortDesired {
  const family = ctx.family
  const clusterIP = port.clusterIPs.find((ip) => inFamily(ip, family))
  if (clusterIP === undefined) return EMPTY_PORT
  const proto = port.protocol.toLowerCase() as Proto
  const spn = servicePortNameString(port.name)
  const names = portChains(port)
  const eps = endpoints.filter((e) => inFamily(e.ip, family))
  const cat = categorizeEndpoints(eps, port, ctx.topology)
  const elements: PortElement[] = []
  const chains = new Map<string, RuleSpec[]>()
  const add = (chain: string, ...rules: RuleSpec[]): void => {
    let l = chains.get(chain)
    if (!l) chains.set(chain, (l = []))
    l.push(...rules)
  }
  const triple = (ip: string, p: number): Uint8Array => d.concat(r.addrBytes(ip), d.proto(proto), d.port(p))
  const goto = (chain: string): NftVerdict => ({ verdict: 'goto', chain })
  const { hasEndpoints, usesClusterPolicyChain, usesLocalPolicyChain, hasInternalEndpoints, hasExternalEndpoints, usesExternalChain, externalIPs, lbIPs, sourceRanges, noLocalEndpoints } =
    portPolicy(port, family, cat)
  const internalChain = port.internalPolicyLocal ? names.local : names.svc
  const externalPolicyChain = port.externalPolicyLocal ? names.local : names.svc
  const usesFWChain = lbIPs.length > 0 && sourceRanges.length > 0

  let internalVerdict: NftVerdict | undefined
  let externalVerdict: NftVerdict | undefined
  if (!hasEndpoints) internalVerdict = externalVerdict = goto(REJECT_CHAIN)
  else {
    if (!hasInternalEndpoints) internalVerdict = { verdict: 'drop' }
    if (!hasExternalEndpoints) externalVerdict = { verdict: 'drop' }
  }

  // Every cluster IP is in cluster-ips (cluster-ips-check rejects its other ports).
  elements.push({ set: CLUSTER_IPS, key: r.addrBytes(clusterIP) })
  if (hasInternalEndpoints) elements.push({ set: SERVICE_IPS, key: triple(clusterIP, port.port), verdict: goto(internalChain) })
  else elements.push({ set: NO_ENDPOINT_SERVICES, key: triple(clusterIP, port.port), verdict: internalVerdict!, comment: spn })

  for (const ip of externalIPs) {
    if (hasEndpoints) elements.push({ set: SERVICE_IPS, key: triple(ip, port.port), verdict: goto(names.ext) })
    if (!hasExternalEndpoints) elements.push({ set: NO_ENDPOINT_SERVICES, key: triple(ip, port.port), verdict: externalVerdict!, comment: spn })
  }
  if (usesFWChain) {
    const sources = [...sourceRanges]
    if (ctx.nodeIP && sourceRanges.some((c) => cidrHas(c, ctx.nodeIP!))) sources.push(...lbIPs)
    add(names.fw, sourceRangesDrop(family, sources))
  }
  for (const ip of lbIPs) {
    if (hasEndpoints) elements.push({ set: SERVICE_IPS, key: triple(ip, port.port), verdict: goto(names.ext) })
    if (usesFWChain) elements.push({ set: FIREWALL_IPS, key: triple(ip, port.port), verdict: goto(names.fw), comment: spn })
  }
  if (!hasExternalEndpoints) for (const ip of lbIPs) elements.push({ set: NO_ENDPOINT_SERVICES, key: triple(ip, port.port), verdict: externalVerdict!, comment: spn })
  if (port.nodePort !== 0) {
    const key = d.concat(d.proto(proto), d.port(port.nodePort))
    if (hasEndpoints) elements.push({ set: SERVICE_NODEPORTS, key, verdict: goto(names.ext) })
    if (!hasExternalEndpoints) elements.push({ set: NO_ENDPOINT_NODEPORTS, key, verdict: externalVerdict!, comment: spn })
  }

  // The chains. Endpoint chains first exist (as kube-proxy creates them), then the policy chains.
  const epChain = new Map<Endpoint, string>()
  for (const e of cat.allReachableEndpoints) {
    const c = endpointChain(port, e)
    epChain.set(e, c)
    chains.set(c, [])
  }
  if (usesClusterPolicyChain) chains.set(names.svc, [])
  if (usesLocalPolicyChain) chains.set(names.local, [])
  if (usesExternalChain) chains.set(names.ext, [])
  if (usesFWChain && chains.has(names.fw)) {
    const fw = chains.get(names.fw)!
    chains.delete(names.fw)
    chains.set(names.fw, fw)
  }

  if (hasInternalEndpoints) {
    const head = [...r.addrMatch(family, 'daddr', clusterIP), ...r.protoDport(proto, port.port)]
    if (ctx.masqueradeAll) add(internalChain, r.rule([...head, r.jump(MARK_MASQ)]))
    else if (ctx.clusterCIDR) add(internalChain, r.rule([...head, ...r.addrMatch(family, 'saddr', ctx.clusterCIDR, true), r.jump(MARK_MASQ)]))
  }
  if (usesExternalChain) {
    if (!port.externalPolicyLocal) add(names.ext, r.rule([r.jump(MARK_MASQ)]))
    else {
      if (ctx.clusterCIDR) add(names.ext, r.rule([...r.addrMatch(family, 'saddr', ctx.clusterCIDR), r.goTo(names.svc)], 'short-circuit pod traffic'))
      add(names.ext, r.rule([...r.fibLocal('saddr'), r.jump(MARK_MASQ)], 'masquerade local traffic'))
      add(names.ext, r.rule([...r.fibLocal('saddr'), r.goTo(names.svc)], 'short-circuit local traffic'))
    }
    if (hasExternalEndpoints) add(names.ext, r.rule([r.goTo(externalPolicyChain)]))
  }
  const sticky = port.stickyMaxAgeSeconds > 0
  const sets: PortSet[] = []
  if (sticky) for (const e of cat.allReachableEndpoints) sets.push({ name: affinitySet(port, e), key: r.familyLayout(family).addrType, timeout: port.stickyMaxAgeSeconds * 1000 })
  const toEndpoints = (chain: string, list: readonly Endpoint[]): void => {
    // ClientIP affinity first: a source seen lately goes to the endpoint it went to.
    if (sticky) for (const e of list) add(chain, r.rule([...r.addrInSet(family, 'saddr', affinitySet(port, e)), r.goTo(epChain.get(e)!)]))
    add(chain, r.numgenVmap(list.map((e) => epChain.get(e)!)))
  }
  if (usesClusterPolicyChain) toEndpoints(names.svc, cat.clusterEndpoints)
  if (usesLocalPolicyChain) toEndpoints(names.local, cat.localEndpoints)
  for (const e of cat.allReachableEndpoints) {
    const c = epChain.get(e)!
    add(c, r.rule([...r.addrMatch(family, 'saddr', e.ip), r.jump(MARK_MASQ)]))
    if (sticky) add(c, r.rule(r.updateSource(family, affinitySet(port, e))))
    add(c, r.rule(r.dnat(family, proto, e.ip, e.port)))
  }
  return { elements, sets, chains, noLocalEndpoints }
}

function cidrHas(cidr: string, ip: string): boolean {
  const { address, prefix } = { address: cidr.split('/')[0]!, prefix: Number(cidr.split('/')[1] ?? 128) }
  const a = r.addrBytes(address)
  const b = r.addrBytes(ip)
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8))
    const m = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff
    if ((a[i]! & m) !== (b[i]! & m)) return false
  }
  return true
}

/** `ip saddr != { ranges } drop`: an anonymous interval set. */
function sourceRangesDrop(family: Family, sources: readonly string[]): RuleSpec {
  const f = r.familyLayout(family)
  const host = f.len * 8
  const elements: { key: Uint8Array; intervalEnd?: boolean }[] = []
  for (const s of sources) for (const e of d.cidr(s.includes('/') ? s : `${s}/${host}`)) elements.push(e)
  return {
    exprs: [{ type: 'payload', base: 'network', offset: f.saddr, len: f.len, dreg: 1 }, { type: 'lookup', set: '__set%d', sreg: 1, invert: true }, r.drop],
    anon: { name: '__set%d', key: f.addrType, verdict: false, interval: true, elements },
  }
}
