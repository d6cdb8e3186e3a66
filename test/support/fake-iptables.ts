// An in-memory nat and filter table behind the IptablesDataplane interface:
// edits are recorded (as 'op chain' strings) and applied at commit, with the
// checks libiptc makes (chain exists, no jump to a missing chain, a deleted
// chain empty and unreferenced, a deleted rule present). All or nothing.
import type { Rule } from '../../dist/iptables.js'
import type { AddressRecord } from '../../dist/route.js'
import type { IptablesDataplane, TableTransaction } from '../../dist/proxy/iptables/dataplane.js'
import { samePlain } from '../../dist/proxy/model/fields.js'

type Table = 'nat' | 'filter'
const BUILTIN: Record<Table, string[]> = { nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], filter: ['INPUT', 'FORWARD', 'OUTPUT'] }

export class FakeIptables implements IptablesDataplane {
  readonly tables: Record<Table, Map<string, Rule[]>> = {
    nat: new Map(BUILTIN.nat.map((c) => [c, []])),
    filter: new Map(BUILTIN.filter.map((c) => [c, []])),
  }
  /** Every committed transaction's edits, in order. */
  readonly commits: { table: Table; ops: string[] }[] = []
  readonly sysctls = new Map<string, number>()
  readonly conntrackDeletes: unknown[] = []
  /** Make the next commit fail with this error. */
  failNext?: Error
  /** Whether transactions offer surveyTable/readChains (the hash: the rules' JSON). */
  surveys = true
  /** The chains each readChains asked for, in order. */
  readonly decoded: { table: Table; chains: string[] }[] = []
  /** Packet counters that reads give, by 'table chain index' (0 when absent). */
  readonly packets = new Map<string, number>()

  readonly conntrack = {
    delete: async (f: unknown) => {
      this.conntrackDeletes.push(f)
      return 0
    },
  } as unknown as IptablesDataplane['conntrack']

  async ensureSysctl(key: string, value: number): Promise<boolean> {
    if (this.sysctls.get(key) === value) return false
    this.sysctls.set(key, value)
    return true
  }

  /** A sysctl never set here cannot be read (as a key of a module not loaded): rejects with ENOENT. */
  async getSysctl(key: string): Promise<number> {
    const v = this.sysctls.get(key)
    if (v === undefined) throw Object.assign(new Error(`${key}: ENOENT`), { code: 'ENOENT', errno: 2, op: 'sysctl.get' })
    return v
  }

  /** What listAddresses answers (the node's addresses, every link). */
  addresses: AddressRecord[] = []

  async listAddresses(family: 'inet' | 'inet6'): Promise<AddressRecord[]> {
    return this.addresses.filter((a) => a.family === family)
  }

  async close(): Promise<void> {}

  clear(): void {
    this.commits.length = 0
    this.conntrackDeletes.length = 0
  }

  /** The ops of every commit since clear(), one list. */
  ops(): string[] {
    return this.commits.flatMap((c) => c.ops.map((o) => `${c.table} ${o}`))
  }

  chain(table: Table, chain: string): Rule[] | undefined {
    return this.tables[table].get(chain)
  }

  readFresh(table: Table) {
    return this.begin(table).readTable() as ReturnType<IptablesDataplane['readFresh']>
  }

  async readChain(table: Table, chain: string) {
    const found = (await this.readFresh(table)).find((c) => c.name === chain)
    if (!found) throw Object.assign(new Error(`no chain ${chain}`), { code: 'ENOENT' })
    return found.ruleList
  }

  begin(table: Table): TableTransaction {
    const edits: [string, (t: Map<string, Rule[]>) => void][] = []
    const get = (t: Map<string, Rule[]>, c: string): Rule[] => {
      const l = t.get(c)
      if (!l) throw Object.assign(new Error(`no chain ${c}`), { code: 'ENOENT' })
      return l
    }
    const checkJump = (t: Map<string, Rule[]>, r: Rule): void => {
      const tg = r.target
      if (tg && 'jump' in tg && !t.has(tg.jump)) throw Object.assign(new Error(`jump to missing chain ${tg.jump}`), { code: 'ENOENT' })
    }
    const self = this
    const read = (only?: Set<string>) =>
      [...self.tables[table]]
        .filter(([name]) => !only || only.has(name))
        .map(([name, rules]) => ({
          name,
          builtin: BUILTIN[table].includes(name),
          ruleList: rules.map((r, i) => ({ ...structuredClone(r), counters: { packets: self.packets.get(`${table} ${name} ${i}`) ?? 0, bytes: 0 } })),
        }))
    const surveys = this.surveys
      ? {
          async surveyTable() {
            const chains = [...self.tables[table]].map(([name, rules]) => ({ name, builtin: BUILTIN[table].includes(name), hash: JSON.stringify(rules) }))
            return { chains, snapshotReread: false }
          },
          async readChains(chains: readonly string[]) {
            self.decoded.push({ table, chains: [...chains] })
            return read(new Set(chains))
          },
        }
      : {}
    return {
      ...surveys,
      async readTable() {
        return read()
      },
      createChain: (c) =>
        edits.push([`createChain ${c}`, (t) => {
          if (t.has(c)) throw Object.assign(new Error(`chain ${c} exists`), { code: 'EEXIST' })
          t.set(c, [])
        }]),
      deleteChain: (c) =>
        edits.push([`deleteChain ${c}`, (t) => {
          if (get(t, c).length > 0) throw Object.assign(new Error(`chain ${c} not empty`), { code: 'ENOTEMPTY' })
          for (const [n, rules] of t) for (const r of rules) if (r.target && 'jump' in r.target && r.target.jump === c) throw Object.assign(new Error(`chain ${c} referenced from ${n}`), { code: 'EMLINK' })
          t.delete(c)
        }]),
      flushChain: (c) => edits.push([`flushChain ${c}`, (t) => void get(t, c).splice(0)]),
      appendRule: (c, r) =>
        edits.push([`appendRule ${c}`, (t) => {
          checkJump(t, r)
          get(t, c).push(structuredClone(r))
        }]),
      insertRule: (c, r, i = 0) =>
        edits.push([`insertRule ${c} ${i}`, (t) => {
          checkJump(t, r)
          const l = get(t, c)
          if (i > l.length) throw Object.assign(new Error('index past the end'), { code: 'E2BIG' })
          l.splice(i, 0, structuredClone(r))
        }]),
      deleteRule: (c, r) =>
        edits.push([typeof r === 'number' ? `deleteRule ${c} ${r}` : `deleteRule ${c}`, (t) => {
          const l = get(t, c)
          const i = typeof r === 'number' ? r : l.findIndex((x) => samePlain(x, r))
          if (i < 0 || i >= l.length) throw Object.assign(new Error(`no such rule in ${c}`), { code: 'ENOENT' })
          l.splice(i, 1)
        }]),
      async commit() {
        if (self.failNext) {
          const e = self.failNext
          self.failNext = undefined
          throw e
        }
        const copy = new Map([...self.tables[table]].map(([k, v]) => [k, [...v]]))
        for (const [, f] of edits) f(copy)
        self.tables[table] = copy
        self.commits.push({ table, ops: edits.map(([s]) => s) })
      },
      async abort() {},
    }
  }
}
