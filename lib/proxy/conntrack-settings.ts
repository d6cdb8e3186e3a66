// The node's connection-tracking settings kube-proxy applies at start from the
// `conntrack` section of its configuration: the table size (nf_conntrack_max,
// from connections per core, never lowered) and the TCP and UDP timeouts.
import type { KubeProxyConfiguration } from './config.js'
import type { Log } from './types.js'

export interface ConntrackSetting {
  readonly key: string
  readonly value: number
  /** Only ever raised: an operator's larger value stays. */
  readonly raiseOnly?: boolean
}

const seconds = (ms: number): number => Math.floor(ms / 1000)

/** What `conntrack` asks of a node with `cpus` cores (zero values leave a key alone, as kube-proxy). */
export function conntrackSettings(c: KubeProxyConfiguration['conntrack'], cpus: number): ConntrackSetting[] {
  const out: ConntrackSetting[] = []
  if (c.maxPerCore > 0) out.push({ key: 'net.netfilter.nf_conntrack_max', value: Math.max(c.maxPerCore * cpus, c.min), raiseOnly: true })
  if (c.tcpEstablishedTimeout > 0) out.push({ key: 'net.netfilter.nf_conntrack_tcp_timeout_established', value: seconds(c.tcpEstablishedTimeout) })
  if (c.tcpCloseWaitTimeout > 0) out.push({ key: 'net.netfilter.nf_conntrack_tcp_timeout_close_wait', value: seconds(c.tcpCloseWaitTimeout) })
  if (c.tcpBeLiberal) out.push({ key: 'net.netfilter.nf_conntrack_tcp_be_liberal', value: 1 })
  if (c.udpTimeout > 0) out.push({ key: 'net.netfilter.nf_conntrack_udp_timeout', value: seconds(c.udpTimeout) })
  if (c.udpStreamTimeout > 0) out.push({ key: 'net.netfilter.nf_conntrack_udp_timeout_stream', value: seconds(c.udpStreamTimeout) })
  return out
}

export interface SysctlIO {
  get(key: string): Promise<number>
  set(key: string, value: number): Promise<void>
}

/**
 * Applies the settings; a key that cannot be written (nf_conntrack_max is
 * read-only outside the initial network namespace) is logged and skipped.
 * Resolves the keys changed.
 */
export async function applyConntrackSettings(settings: readonly ConntrackSetting[], io: SysctlIO, log: Log): Promise<string[]> {
  const changed: string[] = []
  for (const s of settings) {
    try {
      const now = await io.get(s.key)
      if (now === s.value || (s.raiseOnly && now > s.value)) continue
      await io.set(s.key, s.value)
      changed.push(s.key)
    } catch (e) {
      log('warn', 'cannot apply a conntrack setting', { key: s.key, value: s.value, error: e })
    }
  }
  return changed
}
