// iproute2 as the independent oracle for the rtnetlink kernel tests: `ip -j`
// output read into our record shapes. (Tests may run the standard tools; the
// library never does.)
import { execFileSync, spawnSync } from 'node:child_process'

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Runs ip and returns its exit status and stderr instead of throwing. */
export function ipTry(...args: string[]): { status: number; stderr: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' })
  return { status: r.status ?? -1, stderr: r.stderr.trim() }
}

export interface IpLink {
  ifindex: number
  ifname: string
  flags: string[]
  mtu: number
  operstate: string
  link_type: string
  address?: string
  master?: string
  linkinfo?: { info_kind?: string }
}

export interface IpAddrInfo {
  family: 'inet' | 'inet6'
  local: string
  prefixlen: number
  scope: string
  label?: string
  noprefixroute?: boolean
  nodad?: boolean
  tentative?: boolean
  address?: string
  valid_life_time?: number
  preferred_life_time?: number
}

/** `ip -j -d link show [dev]`. */
export function ipLinks(dev?: string): IpLink[] {
  return JSON.parse(ip('-j', '-d', 'link', 'show', ...(dev ? ['dev', dev] : []))) as IpLink[]
}

/** `ip -j addr show [dev]`, one row per address with its link's name and index. */
export function ipAddrs(dev?: string): (IpAddrInfo & { ifname: string; ifindex: number })[] {
  const links = JSON.parse(ip('-j', 'addr', 'show', ...(dev ? ['dev', dev] : []))) as { ifname: string; ifindex: number; addr_info: IpAddrInfo[] }[]
  return links.flatMap((l) => l.addr_info.map((a) => ({ ...a, ifname: l.ifname, ifindex: l.ifindex })))
}

/** The kernel can make links of this kind in this network namespace (the host's may lack dummy, veth). */
export function canMake(kind: string): boolean {
  const name = `probe${process.pid % 100000}`
  if (ipTry('link', 'add', name, 'type', kind).status !== 0) return false
  ipTry('link', 'del', name)
  return true
}

/**
 * The flags as `ip` prints them from ours: upper case, RUNNING left out (ip
 * never prints it), NO-CARRIER for a link that is up without a carrier.
 */
export function ipFlags(flags: string[]): string[] {
  const out = flags.filter((f) => f !== 'running').map((f) => f.toUpperCase().replace('-', '_'))
  if (flags.includes('up') && !flags.includes('running')) out.unshift('NO-CARRIER')
  return out.sort()
}
