// The fixed half of kube-proxy's iptables mode (pkg/proxy/iptables/proxier.go,
// as its documented behaviour): chain names, per-port chain hashes, the fixed
// chains and the jumps from the built-in chains. Every rule is written in the
// canonical form the kernel reads back (lib/iptables/), so that "equal" means
// "nothing to do". Pure: no kernel access here.
import { hash } from 'node:crypto'
import type { Rule } from '../../iptables.js'
import type { Family } from '../../validate.js'
import { cidrContains } from '../../address.js'
import { servicePortNameString, type ServicePort } from '../model/serviceport.js'

export type Table = 'nat' | 'filter'

/** Chains every service port adds rules to, by table; the order is the order they are created in. */
export const SHARED_CHAINS = {
  nat: ['KUBE-SERVICES', 'KUBE-NODEPORTS'],
  filter: ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'],
} as const satisfies Record<Table, readonly string[]>

/**
 * Chains whose rules never depend on the services. KUBE-FIREWALL is kubelet's
 * chain too (it may hold the same rule): kube-proxy makes it and its jumps
 * whatever the settings, and fills it only when it serves localhost node ports.
 */
export const STATIC_CHAINS = {
  nat: ['KUBE-POSTROUTING', 'KUBE-MARK-MASQ'],
  filter: ['KUBE-FORWARD', 'KUBE-FIREWALL'],
} as const satisfies Record<Table, readonly string[]>

/**
 * kubelet's chains that kube-proxy also makes (and fills with the same rule):
 * kube-proxy's cleanup leaves them, their rules and the jumps to them alone.
 */
export function isKubeletChain(table: Table, chain: string): boolean {
  return table === 'filter' && chain === 'KUBE-FIREWALL'
}

/** Prefixes of the per-service-port nat chains. */
export const PORT_CHAIN_PREFIXES = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-'] as const

/** Whether a chain of `table` is one this mode makes (fixed name, or a per-port chain in nat). */
export function isOurChain(table: Table, chain: string): boolean {
  if ((SHARED_CHAINS[table] as readonly string[]).includes(chain) || (STATIC_CHAINS[table] as readonly string[]).includes(chain)) return true
  return table === 'nat' && PORT_CHAIN_PREFIXES.some((p) => chain.startsWith(p))
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 base32 (standard alphabet, no padding needed for the first 16 characters). */
function base32(bytes: Uint8Array, chars: number): string {
  let out = ''
  let bits = 0
  let acc = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31]
      bits -= 5
      if (out.length === chars) return out
    }
    acc &= (1 << bits) - 1
  }
  return out
}

/** kube-proxy's portProtoHash: the first 16 base32 characters of sha256 of the concatenated parts. */
export function chainHash(...parts: string[]): string {
  return base32(sha256(parts.join('')), 16)
}

// A one-shot digest (crypto.hash, in every Node of package.json's engines): no Hash object per chain name (111 000 at 10k services).
const sha256 = (text: string): Uint8Array => hash('sha256', text, 'buffer')

/** The per-port chain names: prefix + hash of 'ns/name:port' + lowercase protocol. */
export function portChains(port: ServicePort): { svc: string; svl: string; ext: string; fw: string } {
  const h = chainHash(servicePortNameString(port.name), port.protocol.toLowerCase())
  return { svc: `KUBE-SVC-${h}`, svl: `KUBE-SVL-${h}`, ext: `KUBE-EXT-${h}`, fw: `KUBE-FW-${h}` }
}

/** KUBE-SEP-: hash of 'ns/name:port' + protocol + the endpoint 'ip:port' ('[ip]:port' for IPv6). */
export function endpointChain(port: ServicePort, endpoint: string): string {
  return `KUBE-SEP-${chainHash(servicePortNameString(port.name), port.protocol.toLowerCase(), endpoint)}`
}

export interface FixedOptions {
  family: Family
  masqueradeBit: number
  /**
   * Node ports served on 127.0.0.1 (IPv4 only; false for IPv6 whatever is
   * asked). When false, the node-ports jump keeps 127.0.0.0/8 (IPv6: ::1/128
   * always) out, and KUBE-FIREWALL is made but left as it is.
   */
  localhostNodePorts?: boolean
  /**
   * net.netfilter.nf_conntrack_tcp_be_liberal was non-zero when the proxier
   * started: conntrack marks only out-of-window RSTs INVALID, and kube-proxy
   * then leaves out filter KUBE-FORWARD's ctstate INVALID drop.
   */
  conntrackTCPLiberal?: boolean
}

export const comment = (text: string): { match: 'comment'; comment: string } => ({ match: 'comment', comment: text })
const newConn = { match: 'conntrack' as const, ctstate: ['NEW' as const] }

export const NODEPORTS_COMMENT = 'kubernetes service nodeports; NOTE: this must be the last rule in this chain'

const LOOPBACK4 = '127.0.0.0/8'
const isLoopback = (ip: string): boolean => ip === '::1' || cidrContains(LOOPBACK4, ip)

/**
 * The rules that must stay last in nat KUBE-SERVICES: one jump for every
 * local destination, or (`addresses`: the node-port addresses when
 * nodePortAddresses selects some) one per address. Loopback addresses only
 * when localhost node ports are served.
 */
export function nodePortsJumps(o: FixedOptions, addresses?: readonly string[]): Rule[] {
  const localhost = o.family === 'inet' && !!o.localhostNodePorts
  if (addresses === undefined) {
    const r: Rule = { matches: [comment(NODEPORTS_COMMENT), { match: 'addrtype', dstType: 'LOCAL' }], target: { jump: 'KUBE-NODEPORTS' } }
    if (!localhost) r.destination = { not: o.family === 'inet' ? LOOPBACK4 : '::1/128' }
    return [r]
  }
  const host = o.family === 'inet' ? 32 : 128
  return addresses
    .filter((ip) => localhost || !isLoopback(ip))
    .map((ip) => ({ destination: `${ip}/${host}`, matches: [comment(NODEPORTS_COMMENT)], target: { jump: 'KUBE-NODEPORTS' } }))
}

/** filter KUBE-FIREWALL's one rule (IPv4, localhost node ports): route_localnet lets the world reach 127.0.0.0/8; this drops it. */
export const LOCALNET_DROP: Rule = {
  source: { not: LOOPBACK4 },
  destination: LOOPBACK4,
  matches: [comment('block incoming localnet connections'), { match: 'conntrack', ctstate: { not: ['ESTABLISHED', 'RELATED', 'DNAT'] } }],
  target: { target: 'DROP' },
}

/** filter KUBE-FORWARD's first rule, unless conntrack is liberal: packets conntrack calls INVALID never reach a NAT rule (a stray one would be answered with a RST). */
export const INVALID_DROP: Rule = { matches: [{ match: 'conntrack', ctstate: ['INVALID'] }], target: { target: 'DROP' } }

export interface Jump {
  readonly chain: string
  readonly rule: Rule
}

/** The fixed chains' rules and the jumps from the built-in chains, by table. */
export function fixedRules(o: FixedOptions): Record<Table, { chains: Map<string, Rule[]>; kept: string[]; jumps: Jump[] }> {
  const localhost = o.family === 'inet' && !!o.localhostNodePorts
  const mark = (1 << o.masqueradeBit) >>> 0
  const j = (chain: string, text: string, to: string, ctNew: boolean): Jump => ({
    chain,
    rule: { matches: [...(ctNew ? [newConn] : []), comment(text)], target: { jump: to } },
  })
  return {
    nat: {
      chains: new Map<string, Rule[]>([
        [
          'KUBE-POSTROUTING',
          [
            { matches: [{ match: 'mark', mark: { not: mark }, mask: mark }], target: { target: 'RETURN' } },
            { target: { target: 'MARK', op: 'set-xmark', value: mark, mask: 0 } },
            { matches: [comment('kubernetes service traffic requiring SNAT')], target: { target: 'MASQUERADE', randomFully: true } },
          ],
        ],
        ['KUBE-MARK-MASQ', [{ target: { target: 'MARK', op: 'set-xmark', value: mark, mask: mark } }]],
      ]),
      kept: [],
      jumps: [
        j('PREROUTING', 'kubernetes service portals', 'KUBE-SERVICES', false),
        j('OUTPUT', 'kubernetes service portals', 'KUBE-SERVICES', false),
        j('POSTROUTING', 'kubernetes postrouting rules', 'KUBE-POSTROUTING', false),
      ],
    },
    filter: {
      chains: new Map<string, Rule[]>([
        [
          'KUBE-FORWARD',
          [
            ...(o.conntrackTCPLiberal ? [] : [INVALID_DROP]),
            { matches: [comment('kubernetes forwarding rules'), { match: 'mark', mark, mask: mark }], target: { target: 'ACCEPT' } },
            { matches: [comment('kubernetes forwarding conntrack rule'), { match: 'conntrack', ctstate: ['ESTABLISHED', 'RELATED'] }], target: { target: 'ACCEPT' } },
          ],
        ],
        ...(localhost ? [['KUBE-FIREWALL', [LOCALNET_DROP]] as [string, Rule[]]] : []),
      ]),
      // Made, never filled nor flushed: kubelet's rule may be there.
      kept: localhost ? [] : ['KUBE-FIREWALL'],
      jumps: [
        // Plain jumps, first in INPUT and OUTPUT (kube-proxy prepends them after its own).
        { chain: 'INPUT', rule: { target: { jump: 'KUBE-FIREWALL' } } },
        { chain: 'OUTPUT', rule: { target: { jump: 'KUBE-FIREWALL' } } },
        j('INPUT', 'kubernetes load balancer firewall', 'KUBE-PROXY-FIREWALL', true),
        j('INPUT', 'kubernetes health check service ports', 'KUBE-NODEPORTS', false),
        j('INPUT', 'kubernetes externally-visible service portals', 'KUBE-EXTERNAL-SERVICES', true),
        j('FORWARD', 'kubernetes load balancer firewall', 'KUBE-PROXY-FIREWALL', true),
        j('FORWARD', 'kubernetes forwarding rules', 'KUBE-FORWARD', false),
        j('FORWARD', 'kubernetes service portals', 'KUBE-SERVICES', true),
        j('FORWARD', 'kubernetes externally-visible service portals', 'KUBE-EXTERNAL-SERVICES', true),
        j('OUTPUT', 'kubernetes load balancer firewall', 'KUBE-PROXY-FIREWALL', true),
        j('OUTPUT', 'kubernetes service portals', 'KUBE-SERVICES', true),
      ],
    },
  }
}
