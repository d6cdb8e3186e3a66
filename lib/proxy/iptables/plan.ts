// One table's edits in a sync, in the order libiptc needs them: every chain
// exists before a rule jumps to it and is empty before it is deleted; and a
// transaction that counts the rules it writes (kube-proxy's iptables_total).
import type { TableTransaction } from './dataplane.js'
import type { Rule } from '../../iptables.js'

const BUILTIN_CHAINS: ReadonlySet<string> = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])

/** Edits of one table, grouped so that every chain exists before a rule jumps to it and is empty before it is deleted. */
export class Plan {
  readonly creates: string[] = []
  /** Ports whose own chains are written: each computes its rules when applied, so only one port's rules exist at a time. */
  readonly ports: ((tx: TableTransaction) => number)[] = []
  readonly fills: [string, readonly Rule[]][] = []
  readonly shared: ((tx: TableTransaction) => number)[] = []
  readonly removals: string[] = []
  readonly after: (() => void)[] = []
  edits = 0

  get empty(): boolean {
    return this.creates.length + this.ports.length + this.fills.length + this.shared.length + this.removals.length === 0
  }

  /** Sends the edits; resolves how many there were. */
  apply(tx: TableTransaction): number {
    let n = 0
    const fresh = new Set(this.creates)
    for (const c of this.creates) {
      tx.createChain(c)
      n++
    }
    for (const f of this.ports) n += f(tx)
    for (const [c, rules] of this.fills) {
      if (!fresh.has(c)) {
        tx.flushChain(c)
        n++
      }
      for (const r of rules) tx.appendRule(c, r)
      n += rules.length
    }
    for (const f of this.shared) n += f(tx)
    for (const c of this.removals) tx.flushChain(c)
    for (const c of this.removals) tx.deleteChain(c)
    return n + 2 * this.removals.length
  }
}

/** `tx` counting the rules it is asked to append or insert in chains of ours (not the jumps from built-in chains, as kube-proxy counts). */
export function countingRules(tx: TableTransaction): { tx: TableTransaction; rules: () => number } {
  let n = 0
  const count = (chain: string): void => {
    if (!BUILTIN_CHAINS.has(chain)) n++
  }
  return {
    rules: () => n,
    tx: {
      readTable: () => tx.readTable(),
      ...(tx.surveyTable ? { surveyTable: () => tx.surveyTable!() } : {}),
      ...(tx.readChains ? { readChains: (c: readonly string[]) => tx.readChains!(c) } : {}),
      createChain: (c) => tx.createChain(c),
      deleteChain: (c) => tx.deleteChain(c),
      flushChain: (c) => tx.flushChain(c),
      appendRule: (c, r) => (count(c), tx.appendRule(c, r)),
      insertRule: (c, r, i) => (count(c), tx.insertRule(c, r, i)),
      deleteRule: (c, r) => tx.deleteRule(c, r),
      commit: () => tx.commit(),
      abort: () => tx.abort(),
    },
  }
}
