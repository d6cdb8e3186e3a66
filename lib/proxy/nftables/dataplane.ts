// The kernel as the nftables proxier sees it: one table read back whole, a
// list of edits committed as one nf_tables transaction, conntrack for stale
// UDP entries, the node's addresses. A fake implements the same for host tests
// (test/support/fake-nftables.ts).
import { Conntrack } from '../../conntrack.js'
import { Nftables, type NftChainSpec, type NftElement, type NftFamily, type NftRuleSpec, type NftSetSpec, type NftTableContents } from '../../nftables.js'
import { listAddressesOnce, type AddressRecord } from '../../route.js'
import type { Family } from '../../validate.js'

/** One edit of a transaction, in the order the kernel applies them. */
export type NftEdit =
  | { op: 'addTable'; family: NftFamily; name: string; comment?: string }
  | { op: 'deleteTable'; family: NftFamily; name: string }
  | { op: 'addChain'; spec: NftChainSpec }
  | { op: 'flushChain'; family: NftFamily; table: string; name: string }
  | { op: 'deleteChain'; family: NftFamily; table: string; name: string }
  | { op: 'addRule'; spec: NftRuleSpec }
  | { op: 'addSet'; spec: NftSetSpec }
  | { op: 'deleteSet'; family: NftFamily; table: string; name: string }
  | { op: 'addElements'; family: NftFamily; table: string; set: string; elements: NftElement[] }
  | { op: 'deleteElements'; family: NftFamily; table: string; set: string; elements: Pick<NftElement, 'key' | 'intervalEnd'>[] }

export interface NftablesDataplane {
  /** One table whole; undefined when it does not exist. */
  listTable(family: NftFamily, table: string): Promise<NftTableContents | undefined>
  /** Applies the edits as one transaction: all or nothing. */
  commit(edits: readonly NftEdit[]): Promise<void>
  readonly conntrack: Pick<Conntrack, 'delete'>
  listAddresses(family: Family): Promise<AddressRecord[]>
  close(): Promise<void>
}

/**
 * Whether a refused read says this kernel has no nf_tables for the family
 * (the UML box's kernel answers a dump of family ip with EINVAL): then it
 * holds no table of ours.
 */
export function noFamilySupport(e: unknown): boolean {
  const code = (e as { code?: string } | undefined)?.code ?? ''
  return ['EINVAL', 'EAFNOSUPPORT', 'EOPNOTSUPP', 'ENOTSUP', 'EPROTONOSUPPORT'].includes(code)
}

/** Queues `edits` in a transaction of `nft`. */
export function queue(nft: Nftables, edits: readonly NftEdit[]) {
  const tx = nft.transaction()
  for (const e of edits) {
    switch (e.op) {
      case 'addTable':
        tx.addTable({ family: e.family, name: e.name, ...(e.comment === undefined ? {} : { comment: e.comment }) })
        break
      case 'deleteTable':
        tx.deleteTable({ family: e.family, name: e.name })
        break
      case 'addChain':
        tx.addChain(e.spec)
        break
      case 'flushChain':
        tx.flushChain({ family: e.family, table: e.table, name: e.name })
        break
      case 'deleteChain':
        tx.deleteChain({ family: e.family, table: e.table, name: e.name })
        break
      case 'addRule':
        tx.addRule(e.spec)
        break
      case 'addSet':
        tx.addSet(e.spec)
        break
      case 'deleteSet':
        tx.deleteSet({ family: e.family, table: e.table, name: e.name })
        break
      case 'addElements':
        tx.addElements({ family: e.family, table: e.table, set: e.set, elements: e.elements })
        break
      case 'deleteElements':
        tx.deleteElements({ family: e.family, table: e.table, set: e.set, elements: e.elements })
        break
    }
  }
  return tx
}

/** The real kernel: one nfnetlink socket for nf_tables, one for conntrack. */
export async function openNftablesDataplane(): Promise<NftablesDataplane> {
  const nft = await Nftables.open()
  const conntrack = await Conntrack.open()
  return {
    listTable: (family, table) => nft.listTable(family, table),
    async commit(edits) {
      if (edits.length > 0) await queue(nft, edits).commit()
    },
    conntrack,
    listAddresses: (f) => listAddressesOnce({ family: f }),
    async close() {
      await conntrack.close()
      await nft.close()
    },
  }
}
