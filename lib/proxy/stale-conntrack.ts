// UDP has no end of connection: conntrack entries toward an endpoint that went
// away (or that blackholed a service with no endpoint) keep steering packets
// wrong. After each sync both proxiers delete them, as kube-proxy does.
import type { Conntrack, ConntrackFilter } from '../conntrack.js'
import type { Family } from '../validate.js'
import type { Log, ProxyState, StaleConntrack } from './types.js'

/** The conntrack deletions `stale` asks for, in one family. */
export function staleConntrackFilters(family: Family, state: ProxyState, stale: StaleConntrack): ConntrackFilter[] {
  const filters: ConntrackFilter[] = []
  const fam = (ip: string): boolean => (family === 'inet') === !ip.includes(':')
  const vips = (key: string) => {
    const port = state.ports.get(key)
    return port ? { port, ips: [...port.clusterIPs, ...port.externalIPs, ...port.loadBalancerVIPs].filter(fam) } : undefined
  }
  for (const ip of stale.deletedUDPClusterIPs ?? []) if (fam(ip)) filters.push({ family, protocol: 'udp', destination: ip })
  for (const key of stale.newlyActiveUDPServices ?? []) {
    const v = vips(key)
    if (!v) continue
    for (const ip of v.ips) filters.push({ family, protocol: 'udp', destination: ip, port: v.port.port })
    if (v.port.nodePort) filters.push({ family, protocol: 'udp', port: v.port.nodePort })
  }
  for (const ep of stale.deletedUDPEndpoints ?? []) {
    if (!fam(ep.ip)) continue
    const v = vips(ep.servicePort)
    if (!v) continue
    for (const ip of v.ips) filters.push({ family, protocol: 'udp', destination: ip, port: v.port.port, replySource: ep.ip })
    if (v.port.nodePort) filters.push({ family, protocol: 'udp', port: v.port.nodePort, replySource: ep.ip })
  }
  return filters
}

/** Deletes what the filters match; a failure is logged, not fatal. Resolves how many deletions were sent. */
export async function deleteStaleConntrack(conntrack: Pick<Conntrack, 'delete'>, filters: readonly ConntrackFilter[], log: Log): Promise<number> {
  let sent = 0
  for (const f of filters) {
    try {
      await conntrack.delete(f)
      sent++
    } catch (e) {
      log('warn', 'conntrack cleanup failed', { error: e, filter: f })
    }
  }
  return sent
}
