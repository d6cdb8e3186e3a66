// The conntrack codec's wire forms (native/conntrack): dumps (with the
// kernel-side filter), deletes by tuple, the count, and the records back.

export interface RawTuple {
  src?: string
  dst?: string
  proto: number
  sport?: number
  dport?: number
  icmpType?: number
  icmpCode?: number
  icmpId?: number
  zone?: number
}

export interface RawEntry {
  kind: 'entry'
  family: number
  orig: RawTuple
  reply: RawTuple
  status: number
  timeout?: number
  mark?: number
  id?: number
  use?: number
  zone?: number
  tcpState?: number
}

export interface RawStats {
  kind: 'stats'
  entries: number
  maxEntries?: number
}

export type ConntrackRawRecord = RawEntry | RawStats

export type ConntrackWireOp =
  | { cmd: 'list'; family: number; orig?: Partial<RawTuple>; reply?: Partial<RawTuple> }
  | { cmd: 'delete'; family: number; orig: Partial<RawTuple>; zone?: number; id?: number }
  | { cmd: 'count' }
