// Connection tracking over nfnetlink: list entries, delete the ones a filter
// names (kube-proxy removes stale UDP entries when a service's endpoints go),
// count them. Input is validated here (errors name the field); native/conntrack
// only names the kernel's attributes.
//
// How a filtered delete works, and why: the kernel deletes one entry per
// request, named by its whole original tuple; a delete without a tuple flushes
// the table, and a filtered flush (CTA_FILTER on delete) is EOPNOTSUPP. So we
// dump and delete:
//  1. one dump per family, with CTA_FILTER (Linux 5.9+) asking the kernel for
//     the entries of that protocol, destination port and IPv4 destination
//     only, so a large table is not copied out to find a few entries. IPv6
//     addresses are left out of the kernel's filter: its IPv6 test is inverted
//     (ctnetlink_filter_match_tuple: asked for fd00::10, Linux 6.1 and 6.18
//     send every other address). Older kernels ignore CTA_FILTER altogether:
//     every entry is checked against the whole filter here either way;
//  2. one delete per match, all in one burst, each by its original tuple and
//     its id (CTA_ID): an entry that expired in between is ENOENT, not counted.
//     (The id is a hash of the entry's address and tuple: one made again under
//     the same tuple is most often another id, and left alone, but may reuse
//     the memory and so the id; deleting that one is harmless.)
import type { ConntrackWireOp, RawEntry, RawTuple } from './native/conntrack.js'
import { NETLINK_NETFILTER } from './native.js'
import { NetlinkError } from './errors.js'
import { NetlinkSocket, toError } from './netlink/socket.js'
import { addressKey } from './address.js'
import * as v from './validate.js'
import type { Family, Where } from './validate.js'

export type { Family } from './validate.js'

export type ConntrackProtocol = 'tcp' | 'udp' | 'sctp' | 'udplite' | 'dccp' | 'icmp' | 'icmpv6' | 'gre'

/**
 * Which entries: every field given must match. Addresses and ports are those
 * of the original direction (the packet as the client sent it), except
 * `replySource`, the source of the reply direction (after DNAT: the endpoint
 * that answered).
 */
export interface ConntrackFilter {
  /** Needed when no address says it; without one, both families. */
  family?: Family
  protocol?: ConntrackProtocol
  /** Original destination address: the service VIP, node or external IP the client used. */
  destination?: string
  /** Original destination port (tcp, udp, sctp, udplite, dccp). */
  port?: number
  /** Original source address: the client. */
  source?: string
  /** Reply source address: the endpoint the connection was NATed to. */
  replySource?: string
}

export interface ConntrackTuple {
  source: string
  destination: string
  sourcePort?: number
  destinationPort?: number
  icmpType?: number
  icmpCode?: number
  icmpId?: number
}

/** IPS_* status bits, in the conntrack tool's words, lower case. */
export type ConntrackStatus =
  | 'expected'
  | 'seen-reply'
  | 'assured'
  | 'confirmed'
  | 'src-nat'
  | 'dst-nat'
  | 'seq-adjust'
  | 'src-nat-done'
  | 'dst-nat-done'
  | 'dying'
  | 'fixed-timeout'
  | 'template'
  | 'nat-clash'
  | 'helper'
  | 'offload'
  | 'hw-offload'

export interface ConntrackEntry {
  family: Family
  /** A name, or the protocol number for others. */
  protocol: ConntrackProtocol | number
  original: ConntrackTuple
  reply: ConntrackTuple
  status: ConntrackStatus[]
  /** Seconds left. */
  timeout?: number
  mark?: number
  /** The kernel's id of the entry. */
  id?: number
  /** Conntrack zone, when not the default 0. */
  zone?: number
  /** TCP state ('ESTABLISHED', 'TIME_WAIT', ...), as conntrack -L prints it. */
  state?: string
}

// ---- kernel numbers -----------------------------------------------------------------------

const PROTOCOLS = v.table<ConntrackProtocol, number>({ tcp: 6, udp: 17, sctp: 132, udplite: 136, dccp: 33, icmp: 1, icmpv6: 58, gre: 47 })
const PROTOCOL_NAMES = Object.keys(PROTOCOLS) as ConntrackProtocol[]
const WITH_PORTS = new Set([6, 17, 132, 136, 33])
const STATUS: ConntrackStatus[] = [
  'expected',
  'seen-reply',
  'assured',
  'confirmed',
  'src-nat',
  'dst-nat',
  'seq-adjust',
  'src-nat-done',
  'dst-nat-done',
  'dying',
  'fixed-timeout',
  'template',
  'nat-clash', // bit 12: IPS_UNTRACKED once, IPS_NAT_CLASH since 5.6
  'helper',
  'offload',
  'hw-offload',
]
const TCP_STATES = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2']
const ENOENT = 2
const FAMILIES = ['inet', 'inet6'] as const
/** A ConntrackEntry as listed: deleteEntries uses family, protocol, original, id and zone; the rest is known, and ignored. */
const ENTRY_FIELDS = ['family', 'protocol', 'original', 'reply', 'status', 'timeout', 'mark', 'id', 'zone', 'state']

// ---- validation ---------------------------------------------------------------------------

interface Checked {
  families: Family[]
  proto?: number
  destination?: string
  port?: number
  source?: string
  replySource?: string
}

function checkFilter(at: Where, value: unknown, forDelete: boolean): Checked {
  const f = v.object(at, 'filter', value)
  v.only(at, 'filter', f, ['family', 'protocol', 'destination', 'port', 'source', 'replySource'])
  let family: Family | undefined = f.family === undefined ? undefined : v.oneOf(at, 'filter.family', f.family, FAMILIES)
  const out: Checked = { families: [] }
  for (const key of ['destination', 'source', 'replySource'] as const) {
    if (f[key] === undefined) continue
    const fam = v.address(at, `filter.${key}`, f[key], family)
    family ??= fam
    out[key] = f[key] as string
  }
  if (f.protocol !== undefined) out.proto = PROTOCOLS[v.oneOf(at, 'filter.protocol', f.protocol, PROTOCOL_NAMES)]
  if (f.port !== undefined) {
    if (out.proto === undefined) v.fail(at, 'filter.port', f.port, 'needs a protocol (tcp, udp, sctp, udplite or dccp)')
    if (!WITH_PORTS.has(out.proto)) v.fail(at, 'filter.port', f.port, `does not apply to ${f.protocol as string}`)
    out.port = v.port(at, 'filter.port', f.port)
  }
  if (out.proto === 1 && family === 'inet6') v.fail(at, 'filter.protocol', f.protocol, 'is icmp in an IPv6 filter (use icmpv6)')
  if (out.proto === 58 && family === 'inet') v.fail(at, 'filter.protocol', f.protocol, 'is icmpv6 in an IPv4 filter (use icmp)')
  if (forDelete) {
    // Deleting by protocol alone would empty the table of a protocol: never what is meant.
    if (out.proto === undefined) v.fail(at, 'filter.protocol', f.protocol, 'is required to delete')
    if (out.destination === undefined && out.port === undefined && out.replySource === undefined)
      v.fail(at, 'filter.destination', f.destination, 'is required to delete, unless port or replySource is given')
  }
  out.families = family ? [family] : [...FAMILIES]
  return out
}

/** What the kernel is asked to filter on (see the top of this file). */
function listWire(c: Checked, family: Family): ConntrackWireOp {
  const wire: ConntrackWireOp & { cmd: 'list' } = { cmd: 'list', family: v.familyOf(family) }
  const orig: Partial<RawTuple> = {}
  if (c.proto !== undefined) orig.proto = c.proto
  if (c.port !== undefined) orig.dport = c.port
  if (family === 'inet') {
    if (c.destination !== undefined) orig.dst = c.destination
    if (c.source !== undefined) orig.src = c.source
    if (c.replySource !== undefined) wire.reply = { src: c.replySource }
  }
  if (Object.keys(orig).length) wire.orig = orig
  return wire
}

// ---- records ------------------------------------------------------------------------------

function same(a: string | undefined, b: string): boolean {
  return a !== undefined && (a === b || addressKey(a) === addressKey(b))
}

function matches(e: RawEntry, c: Checked): boolean {
  if (c.proto !== undefined && e.orig.proto !== c.proto) return false
  if (c.port !== undefined && e.orig.dport !== c.port) return false
  if (c.destination !== undefined && !same(e.orig.dst, c.destination)) return false
  if (c.source !== undefined && !same(e.orig.src, c.source)) return false
  if (c.replySource !== undefined && !same(e.reply.src, c.replySource)) return false
  return true
}

function tuple(t: RawTuple): ConntrackTuple {
  const out: ConntrackTuple = { source: t.src ?? '', destination: t.dst ?? '' }
  if (t.sport !== undefined) out.sourcePort = t.sport
  if (t.dport !== undefined) out.destinationPort = t.dport
  if (t.icmpType !== undefined) out.icmpType = t.icmpType
  if (t.icmpCode !== undefined) out.icmpCode = t.icmpCode
  if (t.icmpId !== undefined) out.icmpId = t.icmpId
  return out
}

function entry(r: RawEntry): ConntrackEntry {
  const status: ConntrackStatus[] = []
  STATUS.forEach((name, bit) => {
    if (r.status & (1 << bit)) status.push(name)
  })
  const e: ConntrackEntry = {
    family: v.familyName(r.family),
    protocol: PROTOCOL_NAMES.find((p) => PROTOCOLS[p] === r.orig.proto) ?? r.orig.proto,
    original: tuple(r.orig),
    reply: tuple(r.reply),
    status,
  }
  if (r.timeout !== undefined) e.timeout = r.timeout
  if (r.mark !== undefined) e.mark = r.mark
  if (r.id !== undefined) e.id = r.id
  if (r.zone !== undefined) e.zone = r.zone
  if (r.tcpState !== undefined) e.state = TCP_STATES[r.tcpState] ?? String(r.tcpState)
  return e
}

/** The delete request for an entry: its whole original tuple, zone and id. */
function deleteWire(family: number, t: RawTuple, id?: number, zone?: number): ConntrackWireOp {
  const orig: Partial<RawTuple> = { src: t.src, dst: t.dst, proto: t.proto }
  for (const k of ['sport', 'dport', 'icmpType', 'icmpCode', 'icmpId'] as const) if (t[k] !== undefined) orig[k] = t[k]
  const wire: ConntrackWireOp & { cmd: 'delete' } = { cmd: 'delete', family, orig }
  if (zone !== undefined) wire.zone = zone
  if (id !== undefined) wire.id = id
  return wire
}

// ---- the handle ---------------------------------------------------------------------------

export class Conntrack {
  readonly #sock: NetlinkSocket

  private constructor(sock: NetlinkSocket) {
    this.#sock = sock
  }

  /** Opens a netfilter netlink socket; rejects when the kernel has no conntrack netlink interface. */
  static async open(): Promise<Conntrack> {
    const op = 'conntrack.open'
    const sock = NetlinkSocket.open(NETLINK_NETFILTER, op)
    try {
      const ct = new Conntrack(sock)
      await ct.count(op)
      return ct
    } catch (e) {
      await sock.close()
      if (e instanceof NetlinkError && (e.errno === 95 /* EOPNOTSUPP */ || e.errno === 93 /* EPROTONOSUPPORT */))
        throw new NetlinkError({ errno: ENOENT, op, message: 'ENOENT: the kernel has no conntrack netlink (load the module: modprobe nf_conntrack_netlink)' })
      throw e
    }
  }

  async #dump(c: Checked, op: string): Promise<RawEntry[]> {
    const results = await this.#sock.execute('conntrack', 0, c.families.map((f) => listWire(c, f)), op)
    const out: RawEntry[] = []
    for (const r of results) {
      if (r.error) throw toError(r, op)
      for (const e of r.records) if (e.kind === 'entry' && matches(e, c)) out.push(e)
    }
    return out
  }

  /** The entries a filter names (every entry without one), as `conntrack -L` lists them. */
  async list(filter: ConntrackFilter = {}): Promise<ConntrackEntry[]> {
    return this.#sock.call('conntrack.list', async () => {
      const op = 'conntrack.list'
      return (await this.#dump(checkFilter({ op }, filter, false), op)).map(entry)
    })
  }

  /**
   * Deletes the entries a filter names and resolves how many it deleted. A
   * protocol and a destination, port or replySource are required, e.g.
   * `{ protocol: 'udp', destination: '10.96.0.10' }` or
   * `{ protocol: 'udp', destination: 'fd00::10', port: 53 }`. Entries that
   * expire on their own meanwhile are not counted; any other refusal throws
   * (after the rest were tried).
   */
  async delete(filter: ConntrackFilter): Promise<number> {
    return this.#sock.call('conntrack.delete', async () => {
      const op = 'conntrack.delete'
      const raws = await this.#dump(checkFilter({ op }, filter, true), op)
      return this.#delete(raws.map((e) => deleteWire(e.family, e.orig, e.id, e.zone)), op)
    })
  }

  /** Deletes the given entries (as listed) and resolves how many it deleted. */
  async deleteEntries(entries: ConntrackEntry[]): Promise<number> {
    return this.#sock.call('conntrack.deleteEntries', async () => {
      const op = 'conntrack.deleteEntries'
      if (!Array.isArray(entries)) v.fail({ op }, 'entries', entries, 'must be an array')
      const wires = entries.map((e, index) => {
        const at = { op, index }
        const o = v.object(at, 'entry', e)
      v.only(at, 'entry', o, ENTRY_FIELDS)
        const family = v.oneOf(at, 'entry.family', o.family, FAMILIES)
        const t = v.object(at, 'entry.original', o.original)
      v.only(at, 'entry.original', t, ['source', 'destination', 'sourcePort', 'destinationPort', 'icmpType', 'icmpCode', 'icmpId'])
        v.address(at, 'entry.original.source', t.source, family)
        v.address(at, 'entry.original.destination', t.destination, family)
        const proto = typeof o.protocol === 'number' ? v.integer(at, 'entry.protocol', o.protocol, 0, 255) : PROTOCOLS[v.oneOf(at, 'entry.protocol', o.protocol, PROTOCOL_NAMES)]
        const raw: RawTuple = { src: t.source as string, dst: t.destination as string, proto }
        if (t.sourcePort !== undefined) raw.sport = v.port(at, 'entry.original.sourcePort', t.sourcePort, 0)
        if (t.destinationPort !== undefined) raw.dport = v.port(at, 'entry.original.destinationPort', t.destinationPort, 0)
        if (t.icmpType !== undefined) raw.icmpType = v.integer(at, 'entry.original.icmpType', t.icmpType, 0, 255)
        if (t.icmpCode !== undefined) raw.icmpCode = v.integer(at, 'entry.original.icmpCode', t.icmpCode, 0, 255)
        if (t.icmpId !== undefined) raw.icmpId = v.integer(at, 'entry.original.icmpId', t.icmpId, 0, 65535)
        const id = o.id === undefined ? undefined : v.integer(at, 'entry.id', o.id, 0, 0xffffffff)
        const zone = o.zone === undefined ? undefined : v.integer(at, 'entry.zone', o.zone, 0, 65535)
        return deleteWire(v.familyOf(family), raw, id, zone)
      })
      return this.#delete(wires, op)
    })
  }

  async #delete(wires: ConntrackWireOp[], op: string): Promise<number> {
    if (!wires.length) return 0
    const results = await this.#sock.execute('conntrack', 0, wires, op)
    let deleted = 0
    let first: NetlinkError | undefined
    results.forEach((r, i) => {
      if (r.error === 0) deleted++
      else if (r.error !== ENOENT) first ??= toError(r, op, i)
    })
    if (first) throw first
    return deleted
  }

  /** How many entries the table holds (`conntrack -C`). */
  async count(op = 'conntrack.count'): Promise<number> {
    return this.#sock.call(op, async () => {
      const [r] = await this.#sock.execute('conntrack', 0, [{ cmd: 'count' }], op)
      if (r!.error) throw toError(r!, op)
      const stats = r!.records.find((x) => x.kind === 'stats')
      if (!stats) throw new NetlinkError({ errno: 74 /* EBADMSG */, op, message: 'EBADMSG: the kernel sent no statistics' })
      return stats.entries
    })
  }

  /** Every call started before it finishes first (all of its requests); later calls reject with EBADF. */
  async close(): Promise<void> {
    await this.#sock.close()
  }
}
