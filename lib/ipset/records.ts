// What the kernel's dumps say, as typed records: a set's header and its
// members (read from native/ipset's columns), and what validation keeps of it.
import type { Family } from '../validate.js'
import { CADT_NOMATCH, CADT_WITH_COMMENT, CADT_WITH_COUNTERS, CADT_WITH_FORCEADD, CADT_WITH_SKBINFO, NFPROTO, PROTO_NAMES, TYPES, U32_MAX } from './kernel.js'
import type { IpSetEntry, IpSetRecord, SetInfo, SetType } from './types.js'
import type { RawColumns, RawHeader, RawSet, WireEntry } from './wire.js'

function familyOf(nfproto: number | undefined): Family | undefined {
  return nfproto === NFPROTO.inet ? 'inet' : nfproto === NFPROTO.inet6 ? 'inet6' : undefined
}

export function infoOf(type: string, nfproto: number | undefined, h: RawHeader): SetInfo {
  const flags = h.flags ?? 0
  const family = familyOf(nfproto)
  return {
    type,
    ...(family && TYPES[type as SetType]?.kind === 'hash' ? { family } : {}),
    timeout: h.timeout !== undefined,
    counters: (flags & CADT_WITH_COUNTERS) !== 0,
    comment: (flags & CADT_WITH_COMMENT) !== 0,
    skbinfo: (flags & CADT_WITH_SKBINFO) !== 0,
    ...(h.portFrom !== undefined && h.portTo !== undefined ? { range: [h.portFrom, h.portTo] as [number, number] } : {}),
  }
}

function recordOf(first: RawSet, members: IpSetEntry[] | undefined): IpSetRecord {
  const h = first.header ?? {}
  const type = first.typename ?? ''
  const flags = h.flags ?? 0
  const family = TYPES[type as SetType]?.kind === 'hash' || !TYPES[type as SetType] ? familyOf(first.family) : undefined
  const r: IpSetRecord = {
    name: first.name,
    type,
    ...(family ? { family } : {}),
    revision: first.revision ?? 0,
    ...(h.hashsize !== undefined ? { hashsize: h.hashsize } : {}),
    ...(h.maxelem !== undefined ? { maxelem: h.maxelem } : {}),
    ...(h.bucketsize !== undefined ? { bucketsize: h.bucketsize } : {}),
    ...(h.initval !== undefined ? { initval: h.initval } : {}),
    ...(h.netmask !== undefined ? { netmask: h.netmask } : {}),
    ...(h.portFrom !== undefined && h.portTo !== undefined ? { range: [h.portFrom, h.portTo] as [number, number] } : {}),
    ...(h.size !== undefined ? { size: h.size } : {}),
    ...(h.timeout !== undefined ? { timeout: h.timeout } : {}),
    counters: (flags & CADT_WITH_COUNTERS) !== 0,
    comment: (flags & CADT_WITH_COMMENT) !== 0,
    skbinfo: (flags & CADT_WITH_SKBINFO) !== 0,
    forceadd: (flags & CADT_WITH_FORCEADD) !== 0,
    references: h.references ?? 0,
    memsize: h.memsize ?? 0,
    entries: h.elements ?? 0,
  }
  if (members) r.members = members
  return r
}

/**
 * Dump messages to records: a set's first message has its header, every
 * message some members. Each record comes with what validation keeps of its set.
 */
export function recordsOf(raws: RawSet[], withMembers: boolean): { record: IpSetRecord; info: SetInfo }[] {
  const out: { record: IpSetRecord; info: SetInfo }[] = []
  let cur: { first: RawSet; members: IpSetEntry[] } | undefined
  const flush = (): void => {
    if (!cur) return
    out.push({
      record: recordOf(cur.first, withMembers ? cur.members : undefined),
      info: infoOf(cur.first.typename ?? '', cur.first.family, cur.first.header ?? {}),
    })
  }
  for (const raw of raws) {
    if (raw.kind !== 'set') continue
    if (raw.typename !== undefined) {
      flush()
      cur = { first: raw, members: [] }
    }
    if (cur && raw.members && raw.name === cur.first.name) membersOf(cur.first.typename ?? '', raw.members, cur.members)
  }
  flush()
  return out
}

function protocolName(n: number): string {
  return PROTO_NAMES.get(n) ?? String(n)
}

/** Column f's value for member i: undefined where the member lacks it (a hole, or NaN in a numeric column). */
function num(c: RawColumns, f: keyof RawColumns, i: number): number | undefined {
  const x = (c[f] as ArrayLike<number | undefined> | undefined)?.[i]
  return x === undefined || Number.isNaN(x) ? undefined : x
}
function str(c: RawColumns, f: keyof RawColumns, i: number): string | undefined {
  return (c[f] as ArrayLike<string | undefined> | undefined)?.[i]
}

/** Typed entries from the columns of one dump message. */
function membersOf(type: string, c: RawColumns, out: IpSetEntry[]): void {
  const t = TYPES[type as SetType]
  for (let i = 0; i < c.count; i++) {
    const e: IpSetEntry = {}
    const fields = t?.fields ?? []
    const ipText = str(c, 'ip', i)
    const ip2Text = str(c, 'ip2', i)
    if (!t) {
      // A type tsproxy does not handle: the raw fields, so nothing is hidden.
      const port = num(c, 'port', i)
      const proto = num(c, 'proto', i)
      const set = str(c, 'name', i)
      if (ipText !== undefined) e.ip = ipText
      if (port !== undefined) e.port = port
      if (proto !== undefined) e.protocol = protocolName(proto)
      if (ip2Text !== undefined) e.ip2 = ip2Text
      if (set !== undefined) e.set = set
    }
    for (const f of fields) {
      switch (f) {
        case 'ip':
          e.ip = ipText!
          break
        case 'ip2':
          e.ip2 = ip2Text!
          break
        case 'net':
          e.net = t!.net === 'ip' ? `${ipText}/${num(c, 'cidr', i)}` : `${ip2Text}/${num(c, 'cidr2', i)}`
          break
        case 'protocol':
          e.protocol = protocolName(num(c, 'proto', i) ?? 0)
          break
        case 'port':
          e.port = num(c, 'port', i) ?? 0
          break
        case 'set':
          e.set = str(c, 'name', i) ?? ''
          break
      }
    }
    extensionsOf(c, i, e)
    out.push(e)
  }
}

/** Member i's extensions, as an add would give them (a mask left out when it is the default). */
function extensionsOf(c: RawColumns, i: number, e: IpSetEntry): void {
  for (const f of ['timeout', 'packets', 'bytes'] as const) {
    const x = num(c, f, i)
    if (x !== undefined) e[f] = x
  }
  const comment = str(c, 'comment', i)
  if (comment !== undefined) e.comment = comment
  const skbmark = num(c, 'skbmark', i)
  if (skbmark !== undefined) {
    e.skbmark = skbmark
    const mask = num(c, 'skbmarkmask', i)
    if (mask !== undefined && mask !== U32_MAX) e.skbmarkmask = mask
  }
  for (const f of ['skbprio', 'skbqueue'] as const) {
    const x = num(c, f, i)
    if (x !== undefined) e[f] = x
  }
  if ((num(c, 'flags', i) ?? 0) & CADT_NOMATCH) e.nomatch = true
}

/** The key fields of member i of a dump's columns, as a wire entry (no validation: the kernel's own data). */
export function memberWire(c: RawColumns, i: number, af: number): WireEntry {
  const w: WireEntry = { af }
  for (const f of ['ip', 'ip2', 'name'] as const) {
    const x = str(c, f, i)
    if (x !== undefined) w[f] = x
  }
  for (const f of ['cidr', 'port', 'proto', 'cidr2'] as const) {
    const x = num(c, f, i)
    if (x !== undefined) w[f] = x
  }
  return w
}
