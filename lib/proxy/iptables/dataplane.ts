// The kernel as the iptables proxier sees it: libiptc transactions on nat and
// filter, conntrack for stale UDP entries, sysctls, the node's addresses. A
// fake implements the same for host tests (test/support/fake-iptables.ts).
import { Conntrack } from '../../conntrack.js'
import { Iptables, type Rule, type RuleRecord } from '../../iptables.js'
import { Rtnl, type AddressRecord } from '../../route.js'
import { ensureSysctl } from '../../sysctl.js'
import type { Family } from '../../validate.js'
import type { Table } from './tables.js'

/** The part of IptablesTransaction the proxier uses (edits apply in order at commit). */
export interface TableTransaction {
  readTable(): Promise<{ name: string; builtin: boolean; ruleList: (Rule | RuleRecord)[] }[]>
  createChain(chain: string): unknown
  deleteChain(chain: string): unknown
  flushChain(chain: string): unknown
  appendRule(chain: string, rule: Rule): unknown
  insertRule(chain: string, rule: Rule, index?: number): unknown
  deleteRule(chain: string, rule: Rule | number): unknown
  commit(): Promise<unknown>
  abort(): Promise<void>
}

export interface IptablesDataplane {
  begin(table: Table): TableTransaction
  /** The table read now, with current counters (a transaction may start from a snapshot taken after the last commit). */
  readFresh(table: Table): Promise<{ name: string; builtin: boolean; ruleList: RuleRecord[] }[]>
  /** One chain read now, with current counters (rejects with code ENOENT when there is no such chain). */
  readChain(table: Table, chain: string): Promise<RuleRecord[]>
  readonly conntrack: Pick<Conntrack, 'delete'>
  /** Sets a sysctl when it differs; resolves whether it was changed. */
  ensureSysctl(key: string, value: number): Promise<boolean>
  /** The addresses of every link (nodePortAddresses other than all). */
  listAddresses(family: Family): Promise<AddressRecord[]>
  close(): Promise<void>
}

/** Tables up to this size (≈ 3 000 services × 10 endpoints in nat) keep libiptc's snapshot between transactions. */
export const SNAPSHOT_MAX_BYTES = 64 * 2 ** 20

/** The real kernel: libiptc for the tables, a conntrack socket. */
export async function openIptablesDataplane(family: Family = 'inet'): Promise<IptablesDataplane> {
  // libiptc's parsed copy of a table is kept between transactions (no read per
  // change) only while the table is small: at 10k services × 10 endpoints nat
  // is ≈ 190 MB, and so would be the copy; larger, each change reads the table
  // afresh, as kube-proxy's iptables-restore does on every sync.
  const iptables = await Iptables.open({ family, snapshotMaxBytes: SNAPSHOT_MAX_BYTES })
  const fresh = await Iptables.open({ family, reuseSnapshots: false })
  const conntrack = await Conntrack.open()
  return {
    begin: (table) => iptables.begin(table),
    readFresh: (table) => fresh.readTable(table),
    readChain: (table, chain) => fresh.listRules(table, chain),
    conntrack,
    ensureSysctl: (key, value) => ensureSysctl(key, value),
    async listAddresses(f) {
      // Opened for the one read: only a nodePortAddresses other than all asks, once a full sync.
      const rtnl = await Rtnl.open()
      try {
        return await rtnl.listAddresses({ family: f })
      } finally {
        await rtnl.close()
      }
    },
    async close() {
      await conntrack.close()
    },
  }
}
