// nf_tables over nfnetlink, without the nft tool: tables, chains, rules and
// their expressions, sets, maps and elements, written as one kernel
// transaction (all or nothing) and read back as the same records. Input is
// checked in lib/nftables/ (errors name the field and the edit's index);
// native/nftables only names the kernel's attributes. This file is the entry.
export { Nftables, NftTransaction } from './nftables/handle.js'
export type { NftTableContents } from './nftables/handle.js'
export * as nftData from './nftables/data.js'
export { DATATYPES as NFT_DATATYPES, HOOKS as NFT_HOOKS } from './nftables/kernel.js'
export type * from './nftables/types.js'
