// The conntrack tool (conntrack-tools) as the independent oracle for the
// conntrack kernel tests, and the plumbing for real UDP traffic: a peer network
// namespace over veth (where the kernel has veth), UDP echo servers, a client.
// (Tests may run the standard tools; the library never does.)
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { readlinkSync } from 'node:fs'
import type { ConntrackEntry } from '../../../dist/index.js'

export function conntrack(...args: string[]): string {
  const r = spawnSync('conntrack', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`conntrack ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`)
  return r.stdout
}

/** `conntrack -C`. */
export function ctCount(): number {
  return Number(conntrack('-C').trim())
}

/**
 * `conntrack -L [args] -o id` (every family unless args say), one comparable
 * row per entry: "ipv4 udp 10.0.0.1:1000>10.96.0.10:53 | 10.96.0.10:53>10.0.0.1:1000 id=123".
 */
export function ctRows(...args: string[]): string[] {
  const families = args.includes('-f') ? [[]] : [['-f', 'ipv4'], ['-f', 'ipv6']]
  return families.flatMap((f) => conntrack('-L', ...f, ...args, '-o', 'extended,id').split('\n').filter(Boolean).map(cliRow)).sort()
}

function cliRow(line: string): string {
  const tokens = line.trim().split(/\s+/)
  const [family, , proto] = tokens
  const pairs = tokens.filter((x) => x.includes('=')).map((x) => x.split('=') as [string, string])
  // The first src= opens the original tuple, the second the reply tuple; the
  // last id= (after use=) is the entry's (an ICMP tuple has an id= of its own).
  const second = pairs.findIndex(([k], i) => k === 'src' && i > 0)
  const tuple = (ps: [string, string][]): string => {
    const m = new Map(ps)
    const ports = m.has('sport') ? [`:${m.get('sport')}`, `:${m.get('dport')}`] : m.has('type') ? [`/${m.get('type')}/${m.get('code')}/${m.get('id')}`, ''] : ['', '']
    return `${m.get('src')}${ports[0]}>${m.get('dst')}${ports[1]}`
  }
  const useAt = pairs.findIndex(([k]) => k === 'use')
  const id = pairs.slice(useAt).find(([k]) => k === 'id')?.[1]
  return `${family} ${proto} ${tuple(pairs.slice(0, second))} | ${tuple(pairs.slice(second, pairs.findIndex(([k], i) => i > second && (k === 'mark' || k === 'use' || k === 'zone'))))} id=${id}`
}

/** Our entries as the same rows. */
export function ourRows(entries: ConntrackEntry[]): string[] {
  const tuple = (t: ConntrackEntry['original']): string =>
    t.sourcePort !== undefined
      ? `${t.source}:${t.sourcePort}>${t.destination}:${t.destinationPort}`
      : t.icmpType !== undefined
        ? `${t.source}/${t.icmpType}/${t.icmpCode}/${t.icmpId}>${t.destination}`
        : `${t.source}>${t.destination}`
  return entries.map((e) => `${e.family === 'inet' ? 'ipv4' : 'ipv6'} ${e.protocol} ${tuple(e.original)} | ${tuple(e.reply)} id=${e.id}`).sort()
}

// ---- traffic ----------------------------------------------------------------------------------

/** A second network namespace, held by a `sleep` we started (and end by its pid). */
export interface Peer {
  pid: number
  /** Runs a command inside the peer namespace. */
  run(cmd: string, ...args: string[]): string
  spawn(cmd: string, args: string[]): ChildProcess
  close(): void
}

export async function peerNetns(): Promise<Peer> {
  const holder = spawn('unshare', ['-n', 'sleep', '3600'], { stdio: 'ignore' })
  const pid = holder.pid!
  const ours = readlinkSync('/proc/self/ns/net')
  for (let i = 0; i < 200; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) !== ours) break
    } catch {}
    await new Promise((r) => setTimeout(r, 10))
  }
  const children: ChildProcess[] = []
  return {
    pid,
    run: (cmd, ...args) => execFileSync('nsenter', ['-t', String(pid), '-n', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    spawn: (cmd, args) => {
      const c = spawn('nsenter', ['-t', String(pid), '-n', cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
      children.push(c)
      return c
    },
    close: () => {
      for (const c of children) c.kill('SIGKILL')
      holder.kill('SIGKILL')
    },
  }
}

const SERVER = `
const dgram = require('node:dgram')
const [address, port, tag] = process.argv.slice(1)
const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4')
s.on('message', (m, r) => s.send(tag, r.port, r.address))
s.bind(Number(port), address, () => console.log('ready'))
`

/** A UDP server answering every datagram with `tag`; resolves once it listens. */
export async function udpServer(start: (cmd: string, args: string[]) => ChildProcess, address: string, port: number, tag: string): Promise<ChildProcess> {
  const child = start(process.execPath, ['-e', SERVER, address, String(port), tag])
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`udp server ${address}:${port} did not start`)), 10_000)
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('exit', (code) => reject(new Error(`udp server ${address}:${port} exited ${code}`)))
  })
  return child
}

/** A UDP client on a fixed source port: each ask() sends one datagram and resolves the answer's text. */
export async function udpClient(family: 'inet' | 'inet6', port: number): Promise<{ ask(address: string, port: number): Promise<string>; close(): void; socket: Socket }> {
  const socket = createSocket(family === 'inet' ? 'udp4' : 'udp6')
  await new Promise<void>((resolve) => socket.bind(port, resolve))
  return {
    socket,
    ask: (address, dport) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer from ${address}:${dport}`)), 5000)
        socket.once('message', (m) => {
          clearTimeout(timer)
          resolve(m.toString())
        })
        socket.send('ping', dport, address)
      }),
    close: () => socket.close(),
  }
}
