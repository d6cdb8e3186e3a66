// The generic netlink controller codec (native/netlink genl): a family's id by its name.

export interface GenlWireOp {
  cmd: 'getFamily'
  name: string
}

export interface GenlRawFamily {
  kind: string
  id: number
  name: string
  version: number
  maxAttr: number
}
