// Keeping a proxier's own iptables chains as specified, in one transaction per
// table: read the table, compare each of our chains with its spec, rewrite only
// the chains that differ, add missing jumps from the built-in chains, commit only
// when something changed. Chains and rules of anyone else are never touched.
import type { Iptables, IptablesTable, IptablesTransaction, Rule, RuleRecord } from '../iptables.js'
import { samePlain } from './model/fields.js'

/** A proxier's chains in one table, rules in canonical (read-back) form, and the jumps into them. */
export interface TableSpec {
  readonly chains: ReadonlyMap<string, readonly Rule[]>
  /** Rules in built-in chains; each is inserted at the top when missing. */
  readonly jumps: readonly { readonly chain: string; readonly rule: Rule }[]
}

export interface TableSyncResult {
  /** Chains (or 'CHAIN jump' for jumps) created or rewritten. */
  readonly repaired: string[]
  /** Whether a commit was made. */
  readonly committed: boolean
}

/** The part of Iptables a table sync uses (a fake implements it for proxier tests). */
export interface TableWriter {
  sync(table: IptablesTable, spec: TableSpec): Promise<TableSyncResult>
  remove(table: IptablesTable, spec: TableSpec): Promise<TableSyncResult>
}

function withoutCounters(r: RuleRecord): Rule {
  const { counters: _, ...rule } = r
  return rule
}

const sameRules = (a: readonly Rule[], b: readonly Rule[]): boolean => samePlain(a, b)

/**
 * Of `ours` (to be flushed), the chains nothing else still jumps to, once the
 * `dropped` rules are deleted too. The IPVS and iptables modes share chain
 * names (KUBE-SERVICES, KUBE-MARK-MASQ, ...): a chain the other mode's rules
 * still use stays (flushed), for that mode's cleanup or next sync.
 */
export function deletable(
  tables: ReadonlyMap<string, readonly Rule[]>,
  ours: ReadonlySet<string>,
  dropped: (chain: string, rule: Rule) => boolean,
): string[] {
  const used = new Set<string>()
  for (const [chain, rules] of tables) {
    if (ours.has(chain)) continue
    for (const r of rules) {
      const t = r.target
      const to = t && 'jump' in t ? t.jump : t && 'goto' in t ? t.goto : undefined
      if (to !== undefined && ours.has(to) && !dropped(chain, r)) used.add(to)
    }
  }
  return [...ours].filter((c) => !used.has(c))
}

/** Commits when there is something to commit. */
async function finish(tx: IptablesTransaction, repaired: string[]): Promise<TableSyncResult> {
  if (repaired.length === 0) {
    await tx.abort()
    return { repaired, committed: false }
  }
  await tx.commit()
  return { repaired, committed: true }
}

/** A TableWriter over libiptc transactions. */
export function tableWriter(iptables: Iptables): TableWriter {
  return {
    async sync(table, spec) {
      const tx = iptables.begin(table)
      const repaired: string[] = []
      try {
        const have = new Map((await tx.readTable()).map((c) => [c.name, c.ruleList.map(withoutCounters)]))
        // Every chain exists before any rule jumps to it.
        for (const chain of spec.chains.keys()) if (!have.has(chain)) tx.createChain(chain)
        for (const [chain, rules] of spec.chains) {
          const now = have.get(chain)
          if (now && sameRules(now, rules)) continue
          if (now) tx.flushChain(chain)
          for (const r of rules) tx.appendRule(chain, r)
          repaired.push(chain)
        }
        // Missing jumps go on top, last first, so they end up in spec order.
        const missing = spec.jumps.filter((j) => !(have.get(j.chain) ?? []).some((r) => samePlain(r, j.rule)))
        for (const j of [...missing].reverse()) {
          tx.insertRule(j.chain, j.rule, 0)
          repaired.push(`${j.chain} jump`)
        }
        return await finish(tx, repaired)
      } catch (e) {
        await tx.abort().catch(() => undefined)
        throw e
      }
    },

    async remove(table, spec) {
      const tx = iptables.begin(table)
      const repaired: string[] = []
      try {
        const have = new Map((await tx.readTable()).map((c) => [c.name, c.ruleList.map(withoutCounters)]))
        for (const j of spec.jumps) {
          const rules = have.get(j.chain) ?? []
          for (const r of rules) {
            if (!samePlain(r, j.rule)) continue
            tx.deleteRule(j.chain, j.rule)
            repaired.push(`${j.chain} jump`)
          }
        }
        // Flush every chain first: they may jump to each other.
        const ours = new Set([...spec.chains.keys()].filter((c) => have.has(c)))
        for (const c of ours) tx.flushChain(c)
        const dropped = (chain: string, rule: Rule): boolean => spec.jumps.some((j) => j.chain === chain && samePlain(rule, j.rule))
        for (const c of deletable(have, ours, dropped)) {
          tx.deleteChain(c)
          repaired.push(c)
        }
        return await finish(tx, repaired)
      } catch (e) {
        await tx.abort().catch(() => undefined)
        throw e
      }
    },
  }
}
