// Expressions: the typed NftExpr checked and turned into the kernel's
// attributes (native/nftables' NftWireExpr), and read back the other way.
import type { NftRawExpr, NftWireExpr } from '../native/nftables.js'
import { fail, object, only, type Where } from '../validate.js'
import {
  BITWISE_OPS,
  CMP_OPS,
  CT_DIRECTIONS,
  CT_KEYS,
  DYNSET_OPS,
  FAMILIES,
  FIB_FLAGS,
  FIB_RESULTS,
  META_KEYS,
  NAT_FLAGS,
  NAT_TYPES,
  type Names,
  NUMGEN_TYPES,
  PAYLOAD_BASES,
  RANGE_OPS,
  REJECT_TYPES,
  validRegister,
  VERDICTS,
} from './kernel.js'
import type { NftExpr, NftVerdict } from './types.js'

/** NFT_LOOKUP_F_INV; NFT_LIMIT_F_INV. */
const LOOKUP_INVERT = 1
const LIMIT_INVERT = 1

const FIELDS: Record<NftExpr['type'], readonly string[]> = {
  payload: ['base', 'offset', 'len', 'dreg'],
  'payload-set': ['base', 'offset', 'len', 'sreg', 'csumType', 'csumOffset', 'csumFlags'],
  meta: ['key', 'dreg'],
  'meta-set': ['key', 'sreg'],
  cmp: ['op', 'sreg', 'data'],
  bitwise: ['sreg', 'dreg', 'len', 'mask', 'xor'],
  shift: ['op', 'sreg', 'dreg', 'len', 'data'],
  lookup: ['set', 'sreg', 'dreg', 'invert'],
  immediate: ['dreg', 'data'],
  verdict: ['verdict', 'chain'],
  ct: ['key', 'dreg', 'direction'],
  'ct-set': ['key', 'sreg', 'direction'],
  fib: ['result', 'flags', 'dreg'],
  numgen: ['mode', 'modulus', 'offset', 'dreg'],
  nat: ['nat', 'family', 'addrMin', 'addrMax', 'protoMin', 'protoMax', 'flags'],
  masq: ['flags', 'protoMin', 'protoMax'],
  reject: ['reject', 'code'],
  counter: ['packets', 'bytes'],
  range: ['op', 'sreg', 'from', 'to'],
  limit: ['rate', 'unit', 'burst', 'bytes', 'invert'],
  dynset: ['set', 'op', 'sregKey', 'sregData', 'timeout'],
}

/** Resolves a set named in an expression to the id of a set added earlier in the same transaction. */
export type SetIdOf = (name: string) => number | undefined

class Reader {
  constructor(
    readonly at: Where,
    readonly field: string,
    readonly o: Record<string, unknown>,
  ) {}
  name<N extends string>(key: string, names: Names<N>): number {
    const v = this.o[key]
    if (!names.has(v)) fail(this.at, `${this.field}.${key}`, v, `must be one of ${names.names.join(', ')}`)
    return names.number(v)
  }
  reg(key: string, optional = false): number | undefined {
    const v = this.o[key]
    if (v === undefined && optional) return undefined
    if (!validRegister(v)) fail(this.at, `${this.field}.${key}`, v, 'must be a register: 0 (verdict), 1..4 or 8..23')
    return v
  }
  uint(key: string, max: number, optional = false): number | undefined {
    const v = this.o[key]
    if (v === undefined && optional) return undefined
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(this.at, `${this.field}.${key}`, v, `must be an integer from 0 to ${max}`)
    return v
  }
  bytes(key: string, optional = false): Uint8Array | undefined {
    const v = this.o[key]
    if (v === undefined && optional) return undefined
    if (!(v instanceof Uint8Array) || v.length < 1 || v.length > 64) fail(this.at, `${this.field}.${key}`, v, 'must be a Uint8Array of 1 to 64 bytes')
    return v
  }
  str(key: string): string {
    const v = this.o[key]
    if (typeof v !== 'string' || v.length === 0 || v.length > 255 || v.includes('\0')) fail(this.at, `${this.field}.${key}`, v, 'must be a name of 1 to 255 characters')
    return v
  }
  bool(key: string): boolean {
    const v = this.o[key]
    if (v !== undefined && typeof v !== 'boolean') fail(this.at, `${this.field}.${key}`, v, 'must be a boolean')
    return v === true
  }
  bits<N extends string>(key: string, names: Names<N>): number | undefined {
    const v = this.o[key]
    if (v === undefined) return undefined
    if (!Array.isArray(v)) fail(this.at, `${this.field}.${key}`, v, `must be a list of ${names.names.join(', ')}`)
    let bits = 0
    v.forEach((f, i) => {
      if (!names.has(f)) fail(this.at, `${this.field}.${key}[${i}]`, f, `must be one of ${names.names.join(', ')}`)
      bits |= names.number(f)
    })
    return bits
  }
}

const U32 = 0xffffffff
const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** A verdict checked: jump and goto need a chain, the others take none. */
export function verdictWire(at: Where, field: string, value: unknown): { code: number; chain?: string } {
  const v = object(at, field, value)
  only(at, field, v, ['verdict', 'chain'])
  const r = new Reader(at, field, v)
  const code = r.name('verdict', VERDICTS)
  const needsChain = v.verdict === 'jump' || v.verdict === 'goto'
  if (needsChain) return { code, chain: r.str('chain') }
  if (v.chain !== undefined) fail(at, `${field}.chain`, v.chain, `is only for jump and goto (verdict is ${String(v.verdict)})`)
  return { code }
}

export function toWireExpr(at: Where, field: string, value: unknown, setId: SetIdOf): NftWireExpr {
  const o = object(at, field, value)
  const type = o.type as NftExpr['type']
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(FIELDS, type))
    fail(at, `${field}.type`, o.type, `must be one of ${Object.keys(FIELDS).join(', ')}`)
  only(at, field, o, ['type', ...FIELDS[type]])
  const r = new Reader(at, field, o)
  const opt = <T>(k: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [k]: v })
  const set = (): { set: string; setId?: number } => {
    const name = r.str('set')
    const id = setId(name)
    return id === undefined ? { set: name } : { set: name, setId: id }
  }
  switch (type) {
    case 'payload':
      return { name: 'payload', dreg: r.reg('dreg')!, base: r.name('base', PAYLOAD_BASES), offset: r.uint('offset', 0xffff)!, len: r.uint('len', 64)! }
    case 'payload-set':
      return {
        name: 'payload',
        sreg: r.reg('sreg')!,
        base: r.name('base', PAYLOAD_BASES),
        offset: r.uint('offset', 0xffff)!,
        len: r.uint('len', 64)!,
        ...opt('csumType', r.uint('csumType', U32, true)),
        ...opt('csumOffset', r.uint('csumOffset', U32, true)),
        ...opt('csumFlags', r.uint('csumFlags', U32, true)),
      }
    case 'meta':
      return { name: 'meta', dreg: r.reg('dreg')!, key: r.name('key', META_KEYS) }
    case 'meta-set':
      return { name: 'meta', key: r.name('key', META_KEYS), sreg: r.reg('sreg')! }
    case 'cmp':
      return { name: 'cmp', sreg: r.reg('sreg')!, op: r.name('op', CMP_OPS), data: r.bytes('data')! }
    case 'bitwise': {
      const len = r.uint('len', 64)!
      const mask = r.bytes('mask')!
      const xor = r.bytes('xor')!
      if (mask.length !== len) fail(at, `${field}.mask`, mask, `must be len (${len}) bytes long`)
      if (xor.length !== len) fail(at, `${field}.xor`, xor, `must be len (${len}) bytes long`)
      return { name: 'bitwise', sreg: r.reg('sreg')!, dreg: r.reg('dreg')!, op: 0, len, mask, xor }
    }
    case 'shift':
      return { name: 'bitwise', sreg: r.reg('sreg')!, dreg: r.reg('dreg')!, len: r.uint('len', 64)!, op: r.name('op', BITWISE_OPS), data: r.bytes('data')! }
    case 'lookup': {
      const invert = r.bool('invert')
      const dreg = r.reg('dreg', true)
      if (invert && dreg !== undefined) fail(at, `${field}.invert`, true, 'cannot be set on a map lookup (dreg)')
      return { name: 'lookup', ...set(), sreg: r.reg('sreg')!, ...opt('dreg', dreg), ...(invert ? { flags: LOOKUP_INVERT } : {}) }
    }
    case 'immediate': {
      const dreg = r.reg('dreg')!
      if (dreg === 0) fail(at, `${field}.dreg`, dreg, 'must not be the verdict register (use a verdict expression)')
      return { name: 'immediate', dreg, data: r.bytes('data')! }
    }
    case 'verdict':
      return { name: 'immediate', dreg: 0, verdict: verdictWire(at, field, { verdict: o.verdict, chain: o.chain }) }
    case 'ct':
      return { name: 'ct', dreg: r.reg('dreg')!, key: r.name('key', CT_KEYS), ...opt('direction', o.direction === undefined ? undefined : r.name('direction', CT_DIRECTIONS)) }
    case 'ct-set':
      return { name: 'ct', key: r.name('key', CT_KEYS), sreg: r.reg('sreg')!, ...opt('direction', o.direction === undefined ? undefined : r.name('direction', CT_DIRECTIONS)) }
    case 'fib': {
      const flags = r.bits('flags', FIB_FLAGS)
      if (flags === undefined) fail(at, `${field}.flags`, undefined, 'must be a list of fib flags')
      return { name: 'fib', dreg: r.reg('dreg')!, result: r.name('result', FIB_RESULTS), flags }
    }
    case 'numgen': {
      const modulus = r.uint('modulus', U32)!
      if (modulus === 0) fail(at, `${field}.modulus`, 0, 'must be at least 1')
      return { name: 'numgen', dreg: r.reg('dreg')!, modulus, type: r.name('mode', NUMGEN_TYPES), ...opt('offset', r.uint('offset', U32, true)) }
    }
    case 'nat': {
      if (o.family !== 'ip' && o.family !== 'ip6') fail(at, `${field}.family`, o.family, "must be 'ip' or 'ip6'")
      // The kernel flags a nat with an address 'map-ips' itself (and reads it back so): said here, a round trip is exact.
      const flags = o.addrMin === undefined ? r.bits('flags', NAT_FLAGS) : (r.bits('flags', NAT_FLAGS) ?? 0) | NAT_FLAGS.number('map-ips')
      return {
        name: 'nat',
        type: r.name('nat', NAT_TYPES),
        family: FAMILIES.number(o.family),
        ...opt('addrMin', r.reg('addrMin', true)),
        ...opt('addrMax', r.reg('addrMax', true)),
        ...opt('protoMin', r.reg('protoMin', true)),
        ...opt('protoMax', r.reg('protoMax', true)),
        ...opt('flags', flags),
      }
    }
    case 'masq':
      return { name: 'masq', ...opt('flags', r.bits('flags', NAT_FLAGS)), ...opt('protoMin', r.reg('protoMin', true)), ...opt('protoMax', r.reg('protoMax', true)) }
    case 'reject':
      return { name: 'reject', type: r.name('reject', REJECT_TYPES), ...opt('code', r.uint('code', 0xff, true)) }
    case 'counter':
      return { name: 'counter', ...opt('packets', r.uint('packets', MAX_SAFE, true)), ...opt('bytes', r.uint('bytes', MAX_SAFE, true)) }
    case 'range':
      return { name: 'range', sreg: r.reg('sreg')!, op: r.name('op', RANGE_OPS), from: r.bytes('from')!, to: r.bytes('to')! }
    case 'limit': {
      const flags = r.bool('invert') ? LIMIT_INVERT : 0
      return {
        name: 'limit',
        rate: r.uint('rate', MAX_SAFE)!,
        unit: r.uint('unit', MAX_SAFE)!,
        ...opt('burst', r.uint('burst', U32, true)),
        type: r.bool('bytes') ? 1 : 0,
        ...(flags ? { flags } : {}),
      }
    }
    case 'dynset':
      return {
        name: 'dynset',
        ...set(),
        op: r.name('op', DYNSET_OPS),
        sregKey: r.reg('sregKey')!,
        ...opt('sregData', r.reg('sregData', true)),
        ...opt('timeout', r.uint('timeout', MAX_SAFE, true)),
      }
  }
}

const u8 = (b: unknown): Uint8Array => new Uint8Array(b as Uint8Array)

function flagsOf<N extends string>(bits: number, names: Names<N>): N[] {
  return names.names.filter((n) => (bits & names.number(n)) !== 0)
}

/**
 * A decoded expression as NftExpr. One this API does not model (another
 * module's, or a shape nft writes and we do not) comes back as
 * `{ type: 'unknown', name }` so a read-back never fails on it.
 */
export function fromWireExpr(w: NftRawExpr): NftExpr | { type: 'unknown'; name: string } {
  const x = w as Record<string, unknown> & { name: string }
  const n = <T>(k: string): T => x[k] as T
  const named = <N extends string>(k: string, names: Names<N>): N => names.name(n<number>(k)) as N
  const opt = <T>(k: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [k]: v })
  switch (x.name) {
    case 'payload':
      if (x.sreg !== undefined)
        return {
          type: 'payload-set',
          base: named('base', PAYLOAD_BASES),
          offset: n('offset'),
          len: n('len'),
          sreg: n('sreg'),
          ...opt('csumType', n<number | undefined>('csumType')),
          ...opt('csumOffset', n<number | undefined>('csumOffset')),
          ...opt('csumFlags', n<number | undefined>('csumFlags')),
        }
      return { type: 'payload', base: named('base', PAYLOAD_BASES), offset: n('offset'), len: n('len'), dreg: n('dreg') }
    case 'meta':
      return x.sreg !== undefined ? { type: 'meta-set', key: named('key', META_KEYS), sreg: n('sreg') } : { type: 'meta', key: named('key', META_KEYS), dreg: n('dreg') }
    case 'cmp':
      return { type: 'cmp', op: named('op', CMP_OPS), sreg: n('sreg'), data: u8(x.data) }
    case 'bitwise':
      if (x.op !== undefined && x.op !== 0) return { type: 'shift', op: named('op', BITWISE_OPS) as 'lshift', sreg: n('sreg'), dreg: n('dreg'), len: n('len'), data: u8(x.data) }
      return { type: 'bitwise', sreg: n('sreg'), dreg: n('dreg'), len: n('len'), mask: u8(x.mask), xor: u8(x.xor) }
    case 'lookup':
      return { type: 'lookup', set: n('set'), sreg: n('sreg'), ...opt('dreg', n<number | undefined>('dreg')), ...((n<number>('flags') ?? 0) & LOOKUP_INVERT ? { invert: true } : {}) }
    case 'immediate': {
      const v = x.verdict as { code: number; chain?: string } | undefined
      if (v) return { type: 'verdict', ...verdictOf(v) }
      return { type: 'immediate', dreg: n('dreg'), data: u8(x.data) }
    }
    case 'ct': {
      const dir = x.direction === undefined ? {} : { direction: named('direction', CT_DIRECTIONS) }
      return x.sreg !== undefined ? { type: 'ct-set', key: named('key', CT_KEYS), sreg: n('sreg'), ...dir } : { type: 'ct', key: named('key', CT_KEYS), dreg: n('dreg'), ...dir }
    }
    case 'fib':
      return { type: 'fib', result: named('result', FIB_RESULTS), flags: flagsOf(n('flags'), FIB_FLAGS), dreg: n('dreg') }
    case 'numgen':
      return { type: 'numgen', mode: named('type', NUMGEN_TYPES), modulus: n('modulus'), ...(n<number>('offset') ? { offset: n<number>('offset') } : {}), dreg: n('dreg') }
    case 'nat':
      return {
        type: 'nat',
        nat: named('type', NAT_TYPES),
        family: FAMILIES.name(n('family')) as 'ip',
        // The kernel copies an unset max register from the min one: left out again.
        ...opt('addrMin', n<number | undefined>('addrMin')),
        ...opt('addrMax', x.addrMax === x.addrMin ? undefined : n<number | undefined>('addrMax')),
        ...opt('protoMin', n<number | undefined>('protoMin')),
        ...opt('protoMax', x.protoMax === x.protoMin ? undefined : n<number | undefined>('protoMax')),
        ...(x.flags === undefined ? {} : { flags: flagsOf(n('flags'), NAT_FLAGS) }),
      }
    case 'masq':
      return {
        type: 'masq',
        ...(x.flags === undefined || x.flags === 0 ? {} : { flags: flagsOf(n('flags'), NAT_FLAGS) }),
        ...opt('protoMin', n<number | undefined>('protoMin')),
        ...opt('protoMax', n<number | undefined>('protoMax')),
      }
    case 'reject':
      return { type: 'reject', reject: named('type', REJECT_TYPES), ...opt('code', n<number | undefined>('code')) }
    case 'counter':
      return { type: 'counter', packets: n<number>('packets') ?? 0, bytes: n<number>('bytes') ?? 0 }
    case 'range':
      return { type: 'range', op: named('op', RANGE_OPS), sreg: n('sreg'), from: u8(x.from), to: u8(x.to) }
    case 'limit':
      return {
        type: 'limit',
        rate: n('rate'),
        unit: n('unit'),
        ...opt('burst', n<number | undefined>('burst')),
        ...(n<number>('type') === 1 ? { bytes: true } : {}),
        ...((n<number>('flags') ?? 0) & LIMIT_INVERT ? { invert: true } : {}),
      }
    case 'dynset':
      return {
        type: 'dynset',
        set: n('set'),
        op: named('op', DYNSET_OPS),
        sregKey: n('sregKey'),
        ...opt('sregData', n<number | undefined>('sregData')),
        ...(n<number>('timeout') ? { timeout: n<number>('timeout') } : {}),
      }
    default:
      return { type: 'unknown', name: x.name }
  }
}

export function verdictOf(v: { code: number; chain?: string }): NftVerdict {
  const name = VERDICTS.name(v.code)
  return { verdict: name as NftVerdict['verdict'], ...(v.chain === undefined ? {} : { chain: v.chain }) }
}
