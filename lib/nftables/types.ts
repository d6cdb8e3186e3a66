// The public shapes of the nftables API: what a transaction takes and what the
// list functions give back (the same records, plus the kernel's handles).
import type {
  NftBitwiseOp,
  NftChainType,
  NftCmpOp,
  NftCtDirection,
  NftCtKey,
  NftDatatype,
  NftDynsetOp,
  NftFamily,
  NftFibFlag,
  NftFibResult,
  NftHook,
  NftMetaKey,
  NftNatFlag,
  NftNatType,
  NftNumgenType,
  NftPayloadBase,
  NftPolicy,
  NftRangeOp,
  NftRejectType,
  NftSetFlag,
  NftVerdictCode,
} from './kernel.js'

export type {
  NftBitwiseOp,
  NftChainType,
  NftCmpOp,
  NftCtDirection,
  NftCtKey,
  NftDatatype,
  NftDynsetOp,
  NftFamily,
  NftFibFlag,
  NftFibResult,
  NftHook,
  NftMetaKey,
  NftNatFlag,
  NftNatType,
  NftNumgenType,
  NftPayloadBase,
  NftPolicy,
  NftRangeOp,
  NftRejectType,
  NftSetFlag,
  NftVerdictCode,
}

/** A verdict: `jump` and `goto` name their chain. */
export interface NftVerdict {
  verdict: NftVerdictCode
  chain?: string
}

/**
 * A register: 0 is the verdict register, 1..4 the 16-byte registers, 8..23
 * the 4-byte ones (NFT_REG32_00..15; a concatenation loads its fields into
 * consecutive ones, as nft does).
 */
export type NftRegister = number

/**
 * One expression of a rule, as the kernel runs it (what `nft --debug=netlink`
 * prints): data as bytes in the order the kernel compares them (network order
 * for addresses and ports, host order for marks and meta integers).
 */
export type NftExpr =
  | { type: 'payload'; base: NftPayloadBase; offset: number; len: number; dreg: NftRegister }
  | { type: 'payload-set'; base: NftPayloadBase; offset: number; len: number; sreg: NftRegister; csumType?: number; csumOffset?: number; csumFlags?: number }
  | { type: 'meta'; key: NftMetaKey; dreg: NftRegister }
  | { type: 'meta-set'; key: NftMetaKey; sreg: NftRegister }
  | { type: 'cmp'; op: NftCmpOp; sreg: NftRegister; data: Uint8Array }
  | { type: 'bitwise'; sreg: NftRegister; dreg: NftRegister; len: number; mask: Uint8Array; xor: Uint8Array }
  | { type: 'shift'; op: 'lshift' | 'rshift'; sreg: NftRegister; dreg: NftRegister; len: number; data: Uint8Array }
  /** Matches when the key in `sreg` is in the set (or, `invert`, is not); a map with `dreg` loads its data there (0: a verdict map). */
  | { type: 'lookup'; set: string; sreg: NftRegister; dreg?: NftRegister; invert?: boolean }
  | { type: 'immediate'; dreg: NftRegister; data: Uint8Array }
  | { type: 'verdict'; verdict: NftVerdictCode; chain?: string }
  | { type: 'ct'; key: NftCtKey; dreg: NftRegister; direction?: NftCtDirection }
  | { type: 'ct-set'; key: NftCtKey; sreg: NftRegister; direction?: NftCtDirection }
  | { type: 'fib'; result: NftFibResult; flags: NftFibFlag[]; dreg: NftRegister }
  | { type: 'numgen'; mode: NftNumgenType; modulus: number; offset?: number; dreg: NftRegister }
  | {
      type: 'nat'
      nat: NftNatType
      /** The address family translated to: 'ip' or 'ip6'. */
      family: 'ip' | 'ip6'
      addrMin?: NftRegister
      addrMax?: NftRegister
      protoMin?: NftRegister
      protoMax?: NftRegister
      flags?: NftNatFlag[]
    }
  | { type: 'masq'; flags?: NftNatFlag[]; protoMin?: NftRegister; protoMax?: NftRegister }
  | { type: 'reject'; reject: NftRejectType; code?: number }
  | { type: 'counter'; packets?: number; bytes?: number }
  | { type: 'range'; op: NftRangeOp; sreg: NftRegister; from: Uint8Array; to: Uint8Array }
  | { type: 'limit'; rate: number; unit: number; burst?: number; bytes?: boolean; invert?: boolean }
  /** Adds or updates the key in `sregKey` in a dynamic set (affinity), with a timeout in ms. */
  | { type: 'dynset'; set: string; op: NftDynsetOp; sregKey: NftRegister; sregData?: NftRegister; timeout?: number }

export interface NftTableSpec {
  family: NftFamily
  name: string
  comment?: string
}

export interface NftTableRecord extends NftTableSpec {
  handle: number
  /** The kernel's use count: how many chains and named sets (and other objects) it holds. */
  use: number
}

/** What makes a chain a base chain: where it hooks in and its default verdict. */
export interface NftBaseChain {
  type: NftChainType
  hook: NftHook
  /** Lower runs first: nat's dstnat is -100, srcnat 100, filter 0. */
  priority: number
  policy?: NftPolicy
}

export interface NftChainSpec {
  family: NftFamily
  table: string
  name: string
  base?: NftBaseChain
  comment?: string
}

export interface NftChainRecord extends NftChainSpec {
  handle: number
}

export interface NftRuleSpec {
  family: NftFamily
  table: string
  chain: string
  expressions: NftExpr[]
  comment?: string
}

export interface NftRuleRecord extends NftRuleSpec {
  handle: number
}

export interface NftSetSpec {
  family: NftFamily
  table: string
  /**
   * The set's name; an anonymous set (`flags: ['anonymous', 'constant']`, as
   * nft makes for `vmap { ... }` in a rule) is named with '%d', which the
   * kernel replaces ('__map%d' -> '__map0'), and is referred to by that name
   * inside the transaction that adds it.
   */
  name: string
  /** The key's datatype; a list is a concatenation (`['ipv4_addr', 'inet_proto', 'inet_service']`). */
  key: NftDatatype | NftDatatype[]
  /** A map: what each key maps to ('verdict' for a verdict map). */
  data?: NftDatatype
  flags?: NftSetFlag[]
  /** Default element timeout, ms ('timeout' flag). */
  timeout?: number
  /** Expected number of elements (NFTA_SET_DESC_SIZE), a hint for the kernel's choice of backend. */
  size?: number
  comment?: string
}

export interface NftSetRecord extends NftSetSpec {
  handle: number
}

/**
 * One element. The key (and a map's data) as bytes in the set's layout: build
 * them with nftData (ipv4, port, concat ...). In an interval set, a range is
 * two elements: its first key, and the key after its last with `intervalEnd`.
 */
export interface NftElement {
  key: Uint8Array
  /** A map's value, when its data is not a verdict. */
  data?: Uint8Array
  /** A verdict map's value. */
  verdict?: NftVerdict
  intervalEnd?: boolean
  /** ms, in a set with the 'timeout' flag. */
  timeout?: number
  comment?: string
}

export interface NftElementsSpec {
  family: NftFamily
  table: string
  set: string
  elements: NftElement[]
}

export interface NftElementRecord extends NftElement {
  /** ms left before a timed element expires. */
  expires?: number
}

/** The outcome of a commit: the ruleset's generation after it. */
export interface NftCommitResult {
  generation: number
  /** Messages sent in the kernel batch (besides its begin and end). */
  messages: number
}
