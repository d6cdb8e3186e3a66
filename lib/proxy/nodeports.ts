// nodePortAddresses (--nodeport-addresses), as kube-proxy reads it for one
// family: the CIDRs of that family, or every node address when there are none
// (even if the other family has some), or 'primary' (the node's primary
// address). Shared by the IPVS and iptables modes; pure but for the address
// records handed in.
import { cidrContains, inFamily } from '../address.js'
import type { AddressRecord } from '../route.js'
import type { Family } from '../validate.js'

export interface NodePortSelection {
  /** Every node address (no CIDR of this family was given). */
  readonly all: boolean
  /** 'primary': the node's primary address only. */
  readonly primary: boolean
  /** The CIDRs of this family (empty when all or primary). */
  readonly cidrs: readonly string[]
  /** Whether 127.0.0.1 is among the selected (IPv4: all, or a CIDR holding 127.0.0.0): localhost node ports are possible. */
  readonly loopback: boolean
}

const ZERO = new Set(['0.0.0.0/0', '::/0'])

/** The selection of `family`'s node-port addresses from the configured list ([] is all). */
export function nodePortSelection(want: readonly string[], family: Family): NodePortSelection {
  if (want.includes('primary')) return { all: false, primary: true, cidrs: [], loopback: false }
  const cidrs = want.filter((c) => inFamily(c, family))
  const ipv4 = family === 'inet'
  if (cidrs.length === 0 || cidrs.some((c) => ZERO.has(c))) return { all: true, primary: false, cidrs: [], loopback: ipv4 }
  return { all: false, primary: false, cidrs, loopback: ipv4 && cidrs.some((c) => cidrContains(c, '127.0.0.0')) }
}

/** The node's own addresses of `family`: not on `excludeLinks` or lo, not host scope, not IPv6 link-local. */
export function nodeAddresses(records: readonly AddressRecord[], family: Family, excludeLinks: readonly string[] = []): string[] {
  const out = records.filter(
    (a) => a.family === family && a.link !== 'lo' && !excludeLinks.includes(a.link) && a.scope !== 'host' && !(family === 'inet6' && a.scope === 'link'),
  )
  return [...new Set(out.map((a) => a.address))]
}

/**
 * The addresses node ports open on: every candidate (all), the primary one,
 * or the candidates in the CIDRs (CIDR by CIDR, in the candidates' order,
 * each once: kube-proxy's order).
 */
export function selectNodePortAddresses(sel: NodePortSelection, candidates: readonly string[], primary: string | undefined): string[] {
  if (sel.all) return [...new Set(candidates)]
  if (sel.primary) return primary === undefined ? [] : [primary]
  const out = new Set<string>()
  for (const c of sel.cidrs) for (const ip of candidates) if (cidrContains(c, ip)) out.add(ip)
  return [...out]
}
