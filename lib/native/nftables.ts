// The nf_tables codec (native/nftables): the requests of one transaction
// (batchBegin, writes, batchEnd, then getGen as the batch's end marker), the
// dumps, and the records they decode to. A record carries the fields of the
// write that makes it (the round trip): the kernel's numbers, unnamed; what they
// mean is lib/nftables/.

/** A verdict as the kernel holds it: NF_ACCEPT 1, NF_DROP 0, NFT_CONTINUE -1, NFT_BREAK -2, NFT_JUMP -3, NFT_GOTO -4, NFT_RETURN -5. */
export interface NftWireVerdict {
  code: number
  chain?: string
}

/** One expression: `name` and its attributes, registers and enums as numbers, data as bytes. */
export type NftWireExpr =
  | { name: 'payload'; dreg?: number; base: number; offset: number; len: number; sreg?: number; csumType?: number; csumOffset?: number; csumFlags?: number }
  | { name: 'meta'; key: number; dreg?: number; sreg?: number }
  | { name: 'cmp'; sreg: number; op: number; data: Uint8Array }
  | { name: 'bitwise'; sreg: number; dreg: number; len: number; mask?: Uint8Array; xor?: Uint8Array; op?: number; data?: Uint8Array }
  | { name: 'lookup'; set: string; sreg: number; dreg?: number; setId?: number; flags?: number }
  | { name: 'immediate'; dreg: number; data?: Uint8Array; verdict?: NftWireVerdict }
  | { name: 'ct'; key: number; dreg?: number; sreg?: number; direction?: number }
  | { name: 'fib'; dreg: number; result: number; flags: number }
  | { name: 'numgen'; dreg: number; modulus: number; type: number; offset?: number }
  | { name: 'nat'; type: number; family: number; addrMin?: number; addrMax?: number; protoMin?: number; protoMax?: number; flags?: number }
  | { name: 'masq'; flags?: number; protoMin?: number; protoMax?: number }
  | { name: 'reject'; type: number; code?: number }
  | { name: 'counter'; bytes?: number; packets?: number }
  | { name: 'range'; sreg: number; op: number; from: Uint8Array; to: Uint8Array }
  | { name: 'limit'; rate: number; unit: number; burst?: number; type?: number; flags?: number }
  | { name: 'dynset'; set: string; setId?: number; op: number; sregKey: number; sregData?: number; timeout?: number; expr?: NftWireExpr; flags?: number }

export interface NftWireElement {
  key?: Uint8Array
  keyEnd?: Uint8Array
  data?: Uint8Array
  verdict?: NftWireVerdict
  /** NFT_SET_ELEM_INTERVAL_END = 1. */
  flags?: number
  /** Milliseconds. */
  timeout?: number
  userdata?: Uint8Array
}

interface Common {
  /** NFPROTO_*: overrides the family execute() was given. */
  family?: number
}

export type NftWireOp =
  | { cmd: 'batchBegin'; genid?: number }
  | { cmd: 'batchEnd' }
  | { cmd: 'getGen' }
  | (Common & { cmd: 'getTables' | 'getChains' })
  | (Common & { cmd: 'getRules'; table?: string; chain?: string })
  | (Common & { cmd: 'getSets'; table?: string })
  | (Common & { cmd: 'getElements'; table: string; set: string })
  | (Common & { cmd: 'newTable'; name: string; flags?: number; userdata?: Uint8Array; exclusive?: boolean })
  | (Common & { cmd: 'delTable'; name?: string; handle?: number })
  | (Common & {
      cmd: 'newChain'
      table: string
      name: string
      hook?: number
      priority?: number
      type?: string
      policy?: number
      userdata?: Uint8Array
      exclusive?: boolean
    })
  | (Common & { cmd: 'delChain'; table: string; name?: string; handle?: number })
  | (Common & { cmd: 'newRule'; table: string; chain: string; expressions: NftWireExpr[]; userdata?: Uint8Array; position?: number; insert?: boolean })
  /** Without handle: every rule of the chain (flush chain); without chain either: of the table (flush table). */
  | (Common & { cmd: 'delRule'; table: string; chain?: string; handle?: number })
  | (Common & {
      cmd: 'newSet'
      table: string
      name: string
      id: number
      flags: number
      keyType: number
      keyLen: number
      dataType?: number
      dataLen?: number
      timeout?: number
      userdata?: Uint8Array
      size?: number
      /** Byte length of each field of a concatenated key. */
      concat?: number[]
      exclusive?: boolean
    })
  | (Common & { cmd: 'delSet'; table: string; name?: string; handle?: number })
  | (Common & { cmd: 'newElements'; table: string; set: string; setId?: number; elements: NftWireElement[]; exclusive?: boolean })
  /** Without elements: every element of the set (flush set). */
  | (Common & { cmd: 'delElements'; table: string; set: string; elements?: NftWireElement[] })

export interface NftRawTable {
  kind: 'table'
  family: number
  name: string
  /** NFTA_TABLE_USE: how many objects (chains, named sets, ...) it holds. */
  use: number
  flags: number
  handle: number
  userdata?: Buffer
}

export interface NftRawChain {
  kind: 'chain'
  family: number
  table: string
  name: string
  handle: number
  /** Hooked into the stack (a base chain: hook, priority, type and policy are set). */
  base: boolean
  hook?: number
  priority?: number
  device?: string
  type?: string
  policy?: number
  flags?: number
  /** NFTA_CHAIN_USE: how many rules jump to it. */
  use?: number
  userdata?: Buffer
}

/** Decoded expressions carry the fields their write had (data as Buffer). */
export type NftRawExpr = NftWireExpr | { name: string }

export interface NftRawRule {
  kind: 'rule'
  family: number
  table: string
  chain: string
  handle: number
  position?: number
  expressions: NftRawExpr[]
  userdata?: Buffer
}

export interface NftRawSet {
  kind: 'set'
  family: number
  table: string
  name: string
  handle: number
  flags: number
  keyType: number
  keyLen: number
  dataType?: number
  dataLen?: number
  policy?: number
  id?: number
  timeout?: number
  gcInterval?: number
  userdata?: Buffer
  size?: number
  concat?: number[]
}

export interface NftRawElements {
  kind: 'elements'
  family: number
  table: string
  set: string
  elements: (NftWireElement & { expiration?: number })[]
}

export interface NftRawGen {
  kind: 'gen'
  id: number
}

export type NftRawRecord = NftRawTable | NftRawChain | NftRawRule | NftRawSet | NftRawElements | NftRawGen
