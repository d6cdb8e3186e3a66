// The ipset codec's wire forms (native/ipset): the requests lib/ipset sends,
// entries as the encoder takes them, and the records the decoder gives back.

/** An entry as native/ipset encodes it (a type, not an interface: batch.ts reads and writes its fields by name). */
export type WireEntry = {
  af: number
  ip?: string
  cidr?: number
  port?: number
  proto?: number
  ip2?: string
  cidr2?: number
  name?: string
  timeout?: number
  packets?: number
  bytes?: number
  comment?: string
  skbmark?: number
  skbmarkmask?: number
  skbprio?: number
  skbqueue?: number
  flags?: number
}

export const WIRE_FIELDS = ['ip', 'cidr', 'port', 'proto', 'ip2', 'cidr2', 'name', 'timeout', 'packets', 'bytes', 'comment', 'skbmark', 'skbmarkmask', 'skbprio', 'skbqueue', 'flags'] as const
export type WireField = (typeof WIRE_FIELDS)[number]
/** The fields native/ipset reads as strings (the rest are numbers). */
export const TEXT_FIELDS: ReadonlySet<string> = new Set(['ip', 'ip2', 'name', 'comment'])

export interface RawHeader {
  hashsize?: number
  maxelem?: number
  netmask?: number
  bucketsize?: number
  initval?: number
  portFrom?: number
  portTo?: number
  size?: number
  timeout?: number
  flags?: number
  elements?: number
  references?: number
  memsize?: number
}

/** Members of one dump message, a column per field (NaN / hole where a member lacks it). */
export type RawColumns = { count: number } & { [K in WireField]?: ArrayLike<number | string | undefined> }

export interface RawSet {
  kind: 'set'
  name: string
  typename?: string
  family?: number
  revision?: number
  header?: RawHeader
  members?: RawColumns
}

export interface RawProtocol {
  kind: 'protocol'
  protocol: number
  protocolMin?: number
}

export interface RawType {
  kind: 'type'
  typename: string
  family: number
  revision: number
  revisionMin: number
}

/** IPSET_CMD_HEADER's answer (lib asks for headers through list instead). */
export interface RawSetHeader {
  kind: 'header'
  name: string
  typename: string
  family: number
  revision: number
}

export type IpsetRawRecord = RawSet | RawProtocol | RawType | RawSetHeader

/** A batch message's entries, a column per field (ip/ip2 may come joined by newlines). */
export type WireColumns = { count: number; af: number } & { [K in WireField]?: ArrayLike<number | string | undefined> | string }

/** One request; lib/ipset/wire.ts execute() adds the protocol agreed with the kernel. */
export type IpsetWireOp = { protocol?: number } & (
  | { cmd: 'protocol' }
  | { cmd: 'type'; typename: string; family: number }
  | { cmd: 'create'; name: string; typename: string; family: number; data: Record<string, unknown>; exist?: boolean; revision?: number }
  | { cmd: 'destroy' | 'flush'; name?: string; exist?: boolean }
  | { cmd: 'rename' | 'swap'; name: string; name2: string }
  | { cmd: 'list'; name?: string; flags?: number }
  | { cmd: 'add' | 'del' | 'test'; name: string; entry?: WireEntry; entries?: WireColumns; exist?: boolean }
)
