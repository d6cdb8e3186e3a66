// The ipset tool as the independent oracle for the ipset kernel tests: our
// records rendered as `ipset save` prints them, and `ipset save` read back into
// records of our shape. (Tests may run the standard tools; the library never does.)
import { execFileSync, spawnSync } from 'node:child_process'
import type { IpSetEntry, IpSetRecord } from '../../../dist/index.js'

export function ipsetCli(...args: string[]): string {
  return execFileSync('ipset', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
}

/** Runs the tool and returns its exit status and stderr instead of throwing. */
export function ipsetTry(...args: string[]): { status: number; stderr: string } {
  const r = spawnSync('ipset', args, { encoding: 'utf8' })
  return { status: r.status ?? -1, stderr: r.stderr.trim() }
}

export function restore(lines: string[]): void {
  execFileSync('ipset', ['restore'], { input: lines.join('\n') + '\n', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
}

/** `ipset save [name]`, one line a line, sorted so member order does not matter. */
export function saved(name?: string): string[] {
  return sortLines(ipsetCli('save', ...(name ? [name] : [])))
}

export function sortLines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).sort()
}

const NET_TYPES: Record<string, 'first' | 'last' | undefined> = { 'hash:net': 'first', 'hash:net,port': 'first', 'hash:ip,port,net': 'last' }

/** A network as ipset prints it: no prefix for a host. */
function netText(net: string): string {
  const [addr, prefix] = net.split('/') as [string, string]
  return Number(prefix) === (addr.includes(':') ? 128 : 32) ? addr : net
}

export function elementText(type: string, e: IpSetEntry): string {
  const pp = `${e.protocol}:${e.port}`
  switch (type) {
    case 'hash:ip':
      return e.ip!
    case 'hash:ip,port':
      return `${e.ip},${pp}`
    case 'hash:ip,port,ip':
      return `${e.ip},${pp},${e.ip2}`
    case 'hash:ip,port,net':
      return `${e.ip},${pp},${netText(e.net!)}`
    case 'hash:net':
      return netText(e.net!)
    case 'hash:net,port':
      return `${netText(e.net!)},${pp}`
    case 'bitmap:port':
      return String(e.port)
    case 'list:set':
      return e.set!
    default:
      throw new Error(`no save form for ${type}`)
  }
}

const hex = (n: number): string => `0x${n.toString(16)}`

/**
 * One set as `ipset save` prints it (header line, then members), with every
 * member timeout replaced by `timeout ~` (it counts down between two reads;
 * compare the numbers with timeoutsOf()).
 */
export function toSaveLines(sets: IpSetRecord[]): string[] {
  const out: string[] = []
  for (const s of sets) {
    let head = `create ${s.name} ${s.type}`
    if (s.family) head += ` family ${s.family}`
    if (s.range) head += ` range ${s.range[0]}-${s.range[1]}`
    if (s.hashsize !== undefined) head += ` hashsize ${s.hashsize}`
    if (s.maxelem !== undefined) head += ` maxelem ${s.maxelem}`
    if (s.size !== undefined) head += ` size ${s.size}`
    if (s.timeout !== undefined) head += ` timeout ${s.timeout}`
    if (s.counters) head += ' counters'
    if (s.comment) head += ' comment'
    if (s.skbinfo) head += ' skbinfo'
    // (forceadd: the kernel reports it, ipset 7.17 does not print it)
    if (s.bucketsize !== undefined) head += ` bucketsize ${s.bucketsize}`
    if (s.initval !== undefined) head += ` initval 0x${s.initval.toString(16).padStart(8, "0")}`
    out.push(head)
    for (const m of s.members ?? []) {
      let line = `add ${s.name} ${elementText(s.type, m)}`
      if (m.timeout !== undefined) line += ' timeout ~'
      if (m.nomatch) line += ' nomatch'
      if (m.packets !== undefined) line += ` packets ${m.packets}`
      if (m.bytes !== undefined) line += ` bytes ${m.bytes}`
      if (m.comment !== undefined) line += ` comment "${m.comment}"`
      if (m.skbmark !== undefined) line += ` skbmark ${hex(m.skbmark)}${m.skbmarkmask !== undefined ? `/${hex(m.skbmarkmask)}` : ''}`
      if (m.skbprio !== undefined) line += ` skbprio ${hex(m.skbprio >>> 16).slice(2)}:${hex(m.skbprio & 0xffff).slice(2)}`
      if (m.skbqueue !== undefined) line += ` skbqueue ${m.skbqueue}`
      out.push(line)
    }
  }
  return out.sort()
}

/** `ipset save` lines with member timeouts as `timeout ~`. */
export function savedLines(name?: string): string[] {
  return saved(name).map((l) => (l.startsWith('add ') ? l.replace(/ timeout \d+/, ' timeout ~') : l)).sort()
}

/** Member timeouts by element, from `ipset save`. */
export function timeoutsOf(name?: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const l of saved(name)) {
    const m = /^add (\S+) (\S+) .*timeout (\d+)/.exec(l)
    if (m) out.set(`${m[1]} ${m[2]}`, Number(m[3]))
  }
  return out
}

// ---- the other way: `ipset save` read into records ---------------------------------------

function splitArgs(s: string): string[] {
  const out: string[] = []
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g
  let m: RegExpExecArray | null
  while ((m = re.exec(s))) out.push(m[1] ?? m[2]!)
  return out
}

function hostNet(text: string): string {
  return text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`
}

function protoPort(text: string): { protocol: string; port: number } {
  const [protocol, port] = text.split(':') as [string, string]
  return { protocol, port: Number(port) }
}

function parseElement(type: string, text: string): IpSetEntry {
  const p = text.split(',')
  switch (type) {
    case 'hash:ip':
      return { ip: p[0]! }
    case 'hash:ip,port':
      return { ip: p[0]!, ...protoPort(p[1]!) }
    case 'hash:ip,port,ip':
      return { ip: p[0]!, ...protoPort(p[1]!), ip2: p[2]! }
    case 'hash:ip,port,net':
      return { ip: p[0]!, ...protoPort(p[1]!), net: hostNet(p[2]!) }
    case 'hash:net':
      return { net: hostNet(p[0]!) }
    case 'hash:net,port':
      return { net: hostNet(p[0]!), ...protoPort(p[1]!) }
    case 'bitmap:port':
      return { port: Number(p[0]) }
    case 'list:set':
      return { set: p[0]! }
    default:
      throw new Error(`cannot parse ${type} elements`)
  }
}

/** What a record says that `ipset save` also says (no revision, references, sizes, forceadd). */
export type SavedSet = Omit<IpSetRecord, 'revision' | 'references' | 'memsize' | 'entries' | 'forceadd'>

/** `ipset save` as records of our shape, members in the tool's order; member timeouts kept. */
export function parseSave(text: string = ipsetCli('save')): SavedSet[] {
  const sets: SavedSet[] = []
  const byName = new Map<string, SavedSet>()
  for (const line of text.split('\n')) {
    const a = splitArgs(line)
    if (a[0] === 'create') {
      const s: SavedSet = { name: a[1]!, type: a[2]!, counters: false, comment: false, skbinfo: false }
      for (let i = 3; i < a.length; i++) {
        const k = a[i]!
        const val = a[i + 1]
        if (k === 'family') (s.family = val as 'inet' | 'inet6'), i++
        else if (k === 'range') (s.range = val!.split('-').map(Number) as [number, number]), i++
        else if (k === 'initval') (s.initval = Number(val)), i++
        else if (['hashsize', 'maxelem', 'size', 'timeout', 'bucketsize', 'netmask'].includes(k)) ((s as unknown as Record<string, number>)[k] = Number(val)), i++
        else if (k === 'counters' || k === 'comment' || k === 'skbinfo') s[k] = true
        else throw new Error(`unknown create option ${k} in: ${line}`)
      }
      s.members = []
      sets.push(s)
      byName.set(s.name, s)
    } else if (a[0] === 'add') {
      const s = byName.get(a[1]!)!
      const e = parseElement(s.type, a[2]!)
      for (let i = 3; i < a.length; i++) {
        const k = a[i]!
        const val = a[i + 1]
        if (k === 'nomatch') e.nomatch = true
        else if (k === 'comment') (e.comment = val!), i++
        else if (k === 'skbmark') {
          const [mark, mask] = val!.split('/')
          e.skbmark = Number(mark)
          if (mask !== undefined) e.skbmarkmask = Number(mask)
          i++
        } else if (k === 'skbprio') {
          const [maj, min] = val!.split(':').map((x) => parseInt(x, 16)) as [number, number]
          e.skbprio = ((maj << 16) | min) >>> 0
          i++
        } else if (['timeout', 'packets', 'bytes', 'skbqueue'].includes(k)) ((e as Record<string, number>)[k] = Number(val)), i++
        else throw new Error(`unknown add option ${k} in: ${line}`)
      }
      s.members!.push(e)
    }
  }
  return sets
}

/** Our records reduced to what `ipset save` shows, members sorted, timeouts left out. */
export function comparable(sets: (IpSetRecord | SavedSet)[]): SavedSet[] {
  return sets
    .map((s) => {
      const { revision: _r, references: _f, memsize: _m, entries: _e, forceadd: _a, ...rest } = s as IpSetRecord
      const members = (s.members ?? []).map((m) => {
        const { timeout: _t, ...mm } = m
        return mm
      })
      members.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))
      return { ...rest, members }
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
}

/** `ipset list -t NAME` header fields: References, Number of entries, Size in memory, the Header line. */
export function listHeader(name: string): { references: number; entries: number; memsize: number; header: string; revision: number } {
  const text = ipsetCli('list', '-t', name)
  const field = (k: string): string => new RegExp(`^${k}: (.*)$`, 'm').exec(text)?.[1] ?? ''
  return {
    references: Number(field('References')),
    entries: Number(field('Number of entries')),
    memsize: Number(field('Size in memory')),
    header: field('Header'),
    revision: Number(field('Revision')),
  }
}
