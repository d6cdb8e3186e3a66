// ipvsadm as the independent oracle for the IPVS kernel tests: our records
// rendered in `ipvsadm -Sn` form, and ipvsadm's own output read back.
// (Tests may run the standard tools; the library never does.)
import { execFileSync } from 'node:child_process'
import type { DestinationRecord, ServiceRecord } from '../../../dist/index.js'

export function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] })
}

export function ipvsadm(...args: string[]): string {
  return run('ipvsadm', args)
}

/** `ipvsadm -Sn`, one rule a line, sorted so the order of listings does not matter. */
export function saved(): string[] {
  return lines(ipvsadm('-Sn'))
}

export function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).sort()
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

export function serviceArg(s: ServiceRecord): string {
  if (s.fwmark !== undefined) return `-f ${s.fwmark}${s.family === 'inet6' ? ' -6' : ''}`
  const flag = s.protocol === 'tcp' ? '-t' : s.protocol === 'udp' ? '-u' : '--sctp-service'
  return `${flag} ${hostPort(s.address!, s.port!)}`
}

function dotted(prefix: number): string {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  return [24, 16, 8, 0].map((sh) => (mask >>> sh) & 0xff).join('.')
}

/** A service and its destinations as `ipvsadm -Sn` prints them (sorted lines). */
export function toSaveLines(services: ServiceRecord[]): string[] {
  const out: string[] = []
  for (const s of services) {
    let line = `-A ${serviceArg(s)} -s ${s.scheduler}`
    if (s.persistent) {
      line += ` -p ${s.timeout}`
      const full = s.family === 'inet' ? 32 : 128
      if (s.netmask !== full) line += ` -M ${s.family === 'inet' ? dotted(s.netmask) : s.netmask}`
    }
    if (s.pe) line += ` --pe ${s.pe}`
    if (s.flags.includes('one-packet')) line += ' -o'
    const sched = s.flags.filter((f) => /^(sh|mh)-|^flag-/.test(f))
    if (sched.length) line += ` -b ${sched.join(',')}`
    out.push(line)
    for (const d of s.destinations ?? []) out.push(destLine(s, d))
  }
  return out.sort()
}

export function destLine(s: ServiceRecord, d: DestinationRecord): string {
  const fwd = d.forward === 'masq' ? '-m' : d.forward === 'tunnel' ? '-i' : '-g'
  let line = `-a ${serviceArg(s)} -r ${hostPort(d.address, d.port)} ${fwd} -w ${d.weight}`
  if (d.forward === 'tunnel') {
    line += ` --tun-type ${d.tunnelType}`
    if (d.tunnelType === 'gue') line += ` --tun-port ${d.tunnelPort}`
    if (d.tunnelFlags === 'csum') line += ' --tun-csum'
    if (d.tunnelFlags === 'remcsum') line += ' --tun-remcsum'
  }
  return line
}

/** Rows of an `ipvsadm -Ln <option> --exact` table: address -> numbers, services and destinations alike. */
export function table(...options: string[]): Map<string, number[]> {
  const rows = new Map<string, number[]>()
  let service = ''
  for (const raw of ipvsadm('-Ln', '--exact', ...options).split('\n')) {
    const m = /^(TCP|UDP|SCTP|FWM)\s+(\S+)(?:\s+IPv6)?\s+(.*)$/.exec(raw)
    const d = /^\s+->\s+(\S+)\s+(.*)$/.exec(raw)
    if (m) {
      service = `${m[1]} ${m[2]}`
      rows.set(service, numbers(m[3]!))
    } else if (d && d[1] !== 'RemoteAddress:Port') {
      rows.set(`${service} -> ${d[1]}`, numbers(d[2]!))
    }
  }
  return rows
}

function numbers(s: string): number[] {
  return s.trim().split(/\s+/).filter((w) => /^\d+$/.test(w)).map(Number)
}
