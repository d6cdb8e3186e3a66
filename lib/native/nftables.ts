// The nf_tables codec (native/nftables): only what telling the iptables
// backends apart needs, the tables and chains that exist.

export interface NftWireOp {
  cmd: 'getTables' | 'getChains'
}

export interface NftRawTable {
  kind: 'table'
  family: number
  name: string
  chains: number
}

export interface NftRawChain {
  kind: 'chain'
  family: number
  table: string
  name: string
  /** Hooked into the stack (iptables-nft's built-in chains). */
  base: boolean
}

export type NftRawRecord = NftRawTable | NftRawChain
