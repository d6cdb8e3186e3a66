// Input checks, per set type: an entry, a create spec, a batch's operations,
// each refused with a ValidationError naming the field, or turned into the
// wire form native/ipset encodes.
import { isIPv4Text, splitNetwork } from '../address.js'
import type { IpsetWireOp } from '../native/ipset.js'
import * as v from '../validate.js'
import type { Family, Where } from '../validate.js'
import {
  CADT_NOMATCH, CADT_WITH_COMMENT, CADT_WITH_COUNTERS, CADT_WITH_FORCEADD, CADT_WITH_SKBINFO, EXTENSIONS, MAX_COMMENT, MAX_TIMEOUT,
  NAME_SIZE, NFPROTO, PROTO_NUMBERS, TYPES, U32_MAX, type TypeInfo,
} from './kernel.js'
import { ENTRY_PROTOCOLS, SET_TYPES, type CreateSpec, type IpSetOp, type ResizeOptions, type SetInfo, type SetType } from './types.js'
import type { WireEntry } from './wire.js'

function typeInfo(at: Where, field: string, type: string): TypeInfo {
  const t = TYPES[type as SetType]
  if (!t) v.fail(at, field, type, `is a ${type} set; tsproxy handles ${SET_TYPES.join(', ')}`)
  return t
}

/** Refuses a set type this code does not handle (naming `field`). */
export function handledType(at: Where, field: string, type: string): void {
  typeInfo(at, field, type)
}

export function setName(at: Where, field: string, value: unknown): string {
  return v.name(at, field, value, NAME_SIZE)
}

/** A network 'address/prefix' (or a bare address: a host) of `family`. */
function network(at: Where, field: string, value: unknown, family: Family | undefined): { address: string; prefix: number } {
  if (typeof value !== 'string') v.fail(at, field, value, "must be a network string 'address/prefix'")
  const { address, prefix } = splitNetwork(value)
  let f: Family
  try {
    f = v.address(at, field, address, family)
  } catch (e) {
    // The same refusal, naming the whole network as given.
    v.fail(at, field, value, (e as Error).message.replace(/^.*?: \S+ (.*) \(got .*\)$/s, '$1'))
  }
  const max = f === 'inet' ? 32 : 128
  if (prefix === undefined) return { address, prefix: max }
  if (!(prefix >= 1 && prefix <= max)) v.fail(at, field, value, `has a prefix outside 1..${max}`)
  return { address, prefix }
}

/** An address of the set's family (the common IPv4 case checked with one test). */
function ipOf(at: Where, field: string, name: string, value: unknown, family: Family | undefined): string {
  if (typeof value === 'string' && family !== 'inet6' && isIPv4Text(value)) return value
  v.address(at, `${field}.${name}`, value, family) // refuses a zone index too: the kernel's addresses have none
  return value as string
}

const ADD_ONLY: readonly string[] = [...EXTENSIONS, 'nomatch']
/** Per type and command: the fields an entry may have (built once per type). */
const ALLOWED = new WeakMap<TypeInfo, { add: Set<string>; other: Set<string> }>()
function allowedFields(t: TypeInfo, cmd: string): Set<string> {
  let sets = ALLOWED.get(t)
  if (!sets) {
    const add = new Set<string>([...t.fields, ...EXTENSIONS, ...(t.net ? ['nomatch'] : [])])
    sets = { add, other: new Set<string>(t.fields) }
    ALLOWED.set(t, sets)
  }
  return cmd === 'add' ? sets.add : sets.other
}

/**
 * The wire form of one entry of a set described by `info`; throws
 * ValidationError naming the field. Exported so input checks are testable
 * without a kernel. (On the path of every batched entry: kept lean, no string
 * is built unless something is refused.)
 */
export function entryWire(at: Where, info: SetInfo, value: unknown, cmd: 'add' | 'del' | 'test' = 'add', field = 'entry'): WireEntry {
  const t = typeInfo(at, 'set', info.type)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) v.object(at, field, value)
  const e = value as Record<string, unknown>
  const k = v.unknownField(e, allowedFields(t, cmd))
  if (k !== undefined) {
    const why = ADD_ONLY.includes(k)
      ? cmd === 'add' ? `is not available in ${info.type} sets` : `applies only to add`
      : `is not a field of ${info.type} entries (they have ${t.fields.join(', ')})`
    v.fail(at, `${field}.${k}`, e[k], why)
  }

  const family = info.family
  const w: WireEntry = { af: family === 'inet6' ? NFPROTO.inet6 : NFPROTO.inet }
  const fields = t.fields
  for (let i = 0; i < fields.length; i++) {
    const k = fields[i]!
    const x = e[k]
    if (x === undefined && k !== 'protocol') v.fail(at, `${field}.${k}`, undefined, `is required in ${info.type} entries`)
    switch (k) {
      case 'ip':
        w.ip = ipOf(at, field, 'ip', x, family)
        break
      case 'ip2':
        w.ip2 = ipOf(at, field, 'ip2', x, family)
        break
      case 'net': {
        const n = network(at, `${field}.net`, x, family)
        if (t.net === 'ip') {
          w.ip = n.address
          w.cidr = n.prefix
        } else {
          w.ip2 = n.address
          w.cidr2 = n.prefix
        }
        break
      }
      case 'protocol': {
        const p = x === undefined ? 'tcp' : x
        const n = p === 'tcp' ? 6 : p === 'udp' ? 17 : typeof p === 'string' && (ENTRY_PROTOCOLS as readonly string[]).includes(p) ? PROTO_NUMBERS[p] : undefined
        if (n === undefined) v.oneOf(at, `${field}.protocol`, p, ENTRY_PROTOCOLS)
        if ((p === 'icmp' && family === 'inet6') || (p === 'icmpv6' && family !== 'inet6'))
          v.fail(at, `${field}.protocol`, x, `does not belong to an ${family ?? 'inet'} set`)
        w.proto = n
        break
      }
      case 'port': {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 65535) v.port(at, `${field}.port`, x, 0)
        const port = x as number
        if (info.range && (port < info.range[0] || port > info.range[1]))
          v.fail(at, `${field}.port`, x, `is outside the set's range ${info.range[0]}-${info.range[1]}`)
        w.port = port
        break
      }
      case 'set':
        w.name = setName(at, `${field}.set`, x)
        break
    }
  }
  if (cmd === 'add' && (e.timeout !== undefined || e.comment !== undefined || e.packets !== undefined || e.bytes !== undefined || e.skbmark !== undefined ||
    e.skbmarkmask !== undefined || e.skbprio !== undefined || e.skbqueue !== undefined || e.nomatch !== undefined)) extensions(at, info, e, w, field)
  return w
}

/** The per-entry extensions of an add: each needs the set to have it. */
function extensions(at: Where, info: SetInfo, e: Record<string, unknown>, w: WireEntry, field: string): void {
  const need = (k: string, ok: boolean, what: string): void => {
    if (!ok) v.fail(at, `${field}.${k}`, e[k], `needs a set created with ${what}`)
  }
  if (e.timeout !== undefined) {
    need('timeout', info.timeout, 'timeout')
    w.timeout = v.integer(at, `${field}.timeout`, e.timeout, 0, MAX_TIMEOUT)
  }
  if (e.comment !== undefined) {
    need('comment', info.comment, 'comment')
    if (typeof e.comment !== 'string') v.fail(at, `${field}.comment`, e.comment, 'must be a string')
    if (Buffer.byteLength(e.comment) > MAX_COMMENT) v.fail(at, `${field}.comment`, e.comment, `is longer than ${MAX_COMMENT} bytes`)
    if (e.comment.includes('\0')) v.fail(at, `${field}.comment`, e.comment, 'must not contain NUL')
    w.comment = e.comment
  }
  if (e.packets !== undefined || e.bytes !== undefined) {
    for (const k of ['packets', 'bytes'] as const) {
      if (e[k] === undefined) continue
      need(k, info.counters, 'counters')
      w[k] = v.integer(at, `${field}.${k}`, e[k], 0, Number.MAX_SAFE_INTEGER)
    }
  }
  if (e.skbmark !== undefined || e.skbmarkmask !== undefined || e.skbprio !== undefined || e.skbqueue !== undefined) {
    if (e.skbmarkmask !== undefined && e.skbmark === undefined) v.fail(at, `${field}.skbmarkmask`, e.skbmarkmask, 'needs skbmark')
    for (const [k, max] of [['skbmark', U32_MAX], ['skbmarkmask', U32_MAX], ['skbprio', U32_MAX], ['skbqueue', 0xffff]] as const) {
      if (e[k] === undefined) continue
      need(k, info.skbinfo, 'skbinfo')
      w[k] = v.integer(at, `${field}.${k}`, e[k], 0, max)
    }
  }
  if (e.nomatch !== undefined && v.boolean(at, `${field}.nomatch`, e.nomatch)) w.flags = CADT_NOMATCH
}

const CREATE_FIELDS: ReadonlySet<string> = new Set(['name', 'type', 'family', 'hashsize', 'maxelem', 'range', 'size', 'timeout', 'counters', 'comment', 'skbinfo', 'forceadd', 'exist'])
const OP_FIELDS: ReadonlySet<string> = new Set(['op', 'set', 'entry', 'exist'])

/** `{ exist }`, the options of add, del and destroy. */
export function existOption(at: Where, options: unknown): boolean {
  const o = v.object(at, 'options', options)
  v.only(at, 'options', o, ['exist'])
  return o.exist === undefined ? false : v.boolean(at, 'options.exist', o.exist)
}

/** replaceMembers' `resize`: a new maxelem and/or hashsize for a hash set. */
export function resizeOptions(at: Where, resize: unknown): ResizeOptions {
  const o = v.object(at, 'resize', resize)
  v.only(at, 'resize', o, ['maxelem', 'hashsize'])
  const r: ResizeOptions = {}
  if (o.maxelem !== undefined) r.maxelem = v.integer(at, 'resize.maxelem', o.maxelem, 1, U32_MAX)
  if (o.hashsize !== undefined) r.hashsize = v.integer(at, 'resize.hashsize', o.hashsize, 1, 0x80000000)
  return r
}

/** A resize names a hash set (only they have maxelem and hashsize). */
export function resizeFits(at: Where, r: ResizeOptions, type: string, name: string): void {
  if ((r.maxelem !== undefined || r.hashsize !== undefined) && TYPES[type as SetType]?.kind !== 'hash') v.fail(at, 'resize', r, `applies only to hash types, not ${type} (${name})`)
}

/** The entries of replaceMembers / syncMembers: an array (each entry is checked against the set). */
export function entryList(at: Where, entries: unknown): void {
  if (!Array.isArray(entries)) v.fail(at, 'entries', entries, 'must be an array')
}

/**
 * The operations of a batch, as far as they can be checked without the sets'
 * types (their entries are checked against them later); returns the sets named.
 */
export function batchSets(at: Where, ops: IpSetOp[]): Set<string> {
  if (!Array.isArray(ops)) v.fail(at, 'ops', ops, 'must be an array')
  const names = new Set<string>()
  for (let index = 0; index < ops.length; index++) {
    const o = ops[index]!
    // The common case in one test: a well-formed operation on a set already named.
    if (typeof o === 'object' && o !== null && (o.op === 'add' || o.op === 'del') && names.has(o.set) && (o.exist === undefined || typeof o.exist === 'boolean') &&
      v.unknownField(o as unknown as Record<string, unknown>, OP_FIELDS) === undefined) continue
    const where = { op: `ipset.${(o as { op?: string })?.op ?? 'batch'}`, index }
    v.only(where, 'op', v.object(where, 'op', o), OP_FIELDS)
    v.oneOf(where, 'op', o.op, ['add', 'del'] as const)
    names.add(setName(where, 'set', o.set))
    if (o.exist !== undefined) v.boolean(where, 'exist', o.exist)
  }
  return names
}

export function createWire(at: Where, spec: CreateSpec): { wire: IpsetWireOp & { cmd: 'create' }; info: SetInfo } {
  const s = v.object(at, 'spec', spec)
  v.only(at, 'spec', s, CREATE_FIELDS)
  const name = setName(at, 'spec.name', s.name)
  const type = v.oneOf(at, 'spec.type', s.type, SET_TYPES)
  const t = TYPES[type]
  const only = (k: string, ok: boolean, kinds: string): void => {
    if (s[k] !== undefined && !ok) v.fail(at, `spec.${k}`, s[k], `applies only to ${kinds}, not ${type}`)
  }
  only('family', t.kind === 'hash', 'hash types')
  only('hashsize', t.kind === 'hash', 'hash types')
  only('maxelem', t.kind === 'hash', 'hash types')
  only('forceadd', t.kind === 'hash', 'hash types')
  only('range', t.kind === 'bitmap', 'bitmap:port')
  only('size', t.kind === 'list', 'list:set')
  const family = t.kind === 'hash' ? (s.family === undefined ? 'inet' : v.oneOf(at, 'spec.family', s.family, ['inet', 'inet6'] as const)) : undefined
  const data: Record<string, number> = {}
  if (s.hashsize !== undefined) data.hashsize = v.integer(at, 'spec.hashsize', s.hashsize, 1, 0x80000000)
  if (s.maxelem !== undefined) data.maxelem = v.integer(at, 'spec.maxelem', s.maxelem, 1, U32_MAX)
  if (s.size !== undefined) data.size = v.integer(at, 'spec.size', s.size, 1, U32_MAX)
  let range: [number, number] | undefined
  if (t.kind === 'bitmap') {
    if (!Array.isArray(s.range) || s.range.length !== 2) v.fail(at, 'spec.range', s.range, 'must be [first, last] ports')
    const lo = v.port(at, 'spec.range', s.range[0], 0)
    const hi = v.port(at, 'spec.range', s.range[1], 0)
    if (lo > hi) v.fail(at, 'spec.range', s.range, 'must not end before it starts')
    range = [lo, hi]
    data.portFrom = lo
    data.portTo = hi
  }
  if (s.timeout !== undefined) data.timeout = v.integer(at, 'spec.timeout', s.timeout, 0, MAX_TIMEOUT)
  let flags = 0
  const flag = (k: string, bit: number): boolean => {
    if (s[k] === undefined || !v.boolean(at, `spec.${k}`, s[k])) return false
    flags |= bit
    return true
  }
  const info: SetInfo = {
    type,
    ...(family ? { family } : {}),
    timeout: s.timeout !== undefined,
    counters: flag('counters', CADT_WITH_COUNTERS),
    comment: flag('comment', CADT_WITH_COMMENT),
    skbinfo: flag('skbinfo', CADT_WITH_SKBINFO),
    ...(range ? { range } : {}),
  }
  flag('forceadd', CADT_WITH_FORCEADD)
  if (flags) data.flags = flags
  const exist = s.exist !== undefined && v.boolean(at, 'spec.exist', s.exist)
  return {
    wire: { cmd: 'create', name, typename: type, family: family ? NFPROTO[family] : 0, data, ...(exist ? { exist } : {}) },
    info,
  }
}
