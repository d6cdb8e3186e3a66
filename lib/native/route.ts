// The rtnetlink codec's wire forms (native/route): links and addresses, the
// requests lib/route.ts sends and the records the decoder gives back.

export interface WireAddr {
  family: number
  prefix: number
  address: string
  flags?: number
  scope?: number
  peer?: string
}

/** A link by index or by name. */
export type WireLinkRef = { index: number } | { name: string }

export type RouteWireOp =
  | { cmd: 'newLink'; name: string; kind: 'dummy'; up?: boolean; mtu?: number }
  | (WireLinkRef & { cmd: 'setLink'; up?: boolean; mtu?: number })
  | (WireLinkRef & { cmd: 'delLink' | 'getLink' })
  | { cmd: 'listLinks' }
  | { cmd: 'listAddrs'; family: number }
  | (WireAddr & { cmd: 'newAddr' | 'delAddr'; index?: number })

export interface RawLink {
  kind: 'link'
  index: number
  name: string
  type: number
  flags: number
  mtu?: number
  operState?: number
  master?: number
  mac?: Buffer
  linkKind?: string
}

export interface RawAddr {
  kind: 'address'
  family: number
  prefix: number
  index: number
  scope: number
  flags: number
  address?: string
  peer?: string
  label?: string
  validLifetime?: number
  preferredLifetime?: number
}

export type RouteRawRecord = RawLink | RawAddr
