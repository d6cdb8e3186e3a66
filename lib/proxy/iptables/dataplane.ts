// The kernel as the iptables proxier sees it: libiptc transactions on nat and
// filter, conntrack for stale UDP entries, sysctls, the node's addresses. A
// fake implements the same for host tests (test/support/fake-iptables.ts).
import { Conntrack } from '../../conntrack.js'
import { Iptables, type Rule, type RuleRecord } from '../../iptables.js'
import { listAddressesOnce, type AddressRecord } from '../../route.js'
import { ensureSysctl, getSysctl } from '../../sysctl.js'
import type { Family } from '../../validate.js'
import type { Table } from './tables.js'

/** The part of IptablesTransaction the proxier uses (edits apply in order at commit). */
export interface TableTransaction {
  readTable(): Promise<{ name: string; builtin: boolean; ruleList: (Rule | RuleRecord)[] }[]>
  /** Every chain with a hash of its rules read from the kernel now (equal hashes, equal rules; '' unknown); reads after it see the same table. */
  surveyTable?(): Promise<{ chains: { name: string; builtin: boolean; hash: string }[]; snapshotReread: boolean }>
  /** readTable's chains of those named. */
  readChains?(chains: readonly string[]): Promise<{ name: string; builtin: boolean; ruleList: (Rule | RuleRecord)[] }[]>
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
  /** An integer sysctl's value (rejects when the key cannot be read, e.g. nf_conntrack not loaded). */
  getSysctl(key: string): Promise<number>
  /** The addresses of every link (nodePortAddresses other than all). */
  listAddresses(family: Family): Promise<AddressRecord[]>
  close(): Promise<void>
}

/** The real kernel: libiptc for the tables, a conntrack socket. */
export async function openIptablesDataplane(family: Family = 'inet'): Promise<IptablesDataplane> {
  // libiptc's parsed copy of each table is kept between transactions, whatever
  // its size (≈ 210 MB for nat at 10k services × 10 endpoints): a change then
  // edits it without reading the table again (without the copy, at 10k every
  // change and every resync would read and parse a 190 MB nat table).
  const iptables = await Iptables.open({ family })
  const fresh = await Iptables.open({ family, reuseSnapshots: false })
  const conntrack = await Conntrack.open()
  return {
    begin: (table) => iptables.begin(table),
    readFresh: (table) => fresh.readTable(table),
    readChain: (table, chain) => fresh.listRules(table, chain),
    conntrack,
    ensureSysctl: (key, value) => ensureSysctl(key, value),
    getSysctl: (key) => getSysctl(key),
    // Opened for the one read: only a nodePortAddresses other than all asks, once a full sync.
    listAddresses: (f) => listAddressesOnce({ family: f }),
    async close() {
      await conntrack.close()
    },
  }
}
