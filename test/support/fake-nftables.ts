// An in-memory nf_tables for the nftables proxier's host tests: the
// NftablesDataplane surface over tables of chains, rules, sets and elements,
// with the kernel's refusals the proxier could meet (a missing chain or set,
// a chain still in use or not empty, an element already there with other
// data, or missing), all or nothing per commit, and every commit recorded.
import type { NftablesDataplane, NftEdit } from '../../dist/proxy/nftables/dataplane.js'
import type { NftChainRecord, NftElementRecord, NftExpr, NftRuleRecord, NftSetRecord, NftTableContents, NftElement } from '../../dist/nftables.js'
import { NetlinkError } from '../../dist/errors.js'

interface FakeTable {
  comment?: string
  chains: Map<string, Omit<NftChainRecord, 'handle'> & { rules: Omit<NftRuleRecord, 'handle'>[] }>
  sets: Map<string, Omit<NftSetRecord, 'handle'> & { elements: Map<string, NftElement> }>
  anon: number
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fail = (code: string, errno: number, op: string, message: string): never => {
  throw new NetlinkError({ errno, code, op, message: `${code}: ${message}` })
}

export class FakeNftables implements NftablesDataplane {
  tables = new Map<string, FakeTable>()
  /** Every commit that went through, its edits in order. */
  readonly commits: NftEdit[][] = []
  /** Reads of the table. */
  reads = 0
  /** The next commit fails with this (nothing applied). */
  failNext: Error | undefined
  readonly conntrack = { delete: async () => 0 }
  addresses: { family: 'inet' | 'inet6'; address: string; prefixLen: number; index: number; label?: string }[] = []

  async listTable(family: string, table: string): Promise<NftTableContents | undefined> {
    this.reads++
    const t = this.tables.get(`${family} ${table}`)
    if (!t) return undefined
    let handle = 1
    const chains: NftChainRecord[] = []
    const rules: NftRuleRecord[] = []
    for (const c of t.chains.values()) {
      const { rules: rs, ...rec } = c
      chains.push({ ...rec, handle: handle++ })
      for (const r of rs) rules.push({ ...r, handle: handle++ })
    }
    const sets: NftSetRecord[] = []
    const elements: Record<string, NftElementRecord[]> = {}
    for (const s of t.sets.values()) {
      const { elements: els, ...rec } = s
      sets.push({ ...rec, handle: handle++ })
      elements[s.name] = [...els.values()].map((e) => ({ ...e }))
    }
    return { table: { family: family as 'ip', name: table, ...(t.comment ? { comment: t.comment } : {}), handle: 0, use: chains.length + sets.length }, chains, rules, sets, elements }
  }

  async listAddresses() {
    return this.addresses as never
  }

  async close(): Promise<void> {}

  /** The edits of every commit, flattened, as 'op name' strings. */
  get ops(): string[] {
    return this.commits.flat().map(describe)
  }

  async commit(edits: readonly NftEdit[]): Promise<void> {
    if (this.failNext) {
      const e = this.failNext
      this.failNext = undefined
      throw e
    }
    const copy = clone(this.tables)
    const names = new Map<string, string>() // '__map%d' -> the name given in this transaction
    edits.forEach((e, i) => apply(copy, e, names, `nftables.commit[${i}] ${e.op}`))
    this.tables = copy
    this.commits.push([...edits])
  }

  /** A chain's rules as nft-ish text: expressions' types and verdicts. */
  chain(family: string, name: string): Omit<NftRuleRecord, 'handle'>[] | undefined {
    return this.tables.get(`${family} kube-proxy`)?.chains.get(name)?.rules
  }

  set(family: string, name: string): Map<string, NftElement> | undefined {
    return this.tables.get(`${family} kube-proxy`)?.sets.get(name)?.elements
  }
}

export function describe(e: NftEdit): string {
  switch (e.op) {
    case 'addTable':
    case 'deleteTable':
      return `${e.op} ${e.name}`
    case 'addChain':
    case 'addSet':
      return `${e.op} ${e.spec.name}`
    case 'addRule':
      return `addRule ${e.spec.chain}`
    case 'flushChain':
    case 'deleteChain':
    case 'deleteSet':
      return `${e.op} ${e.name}`
    case 'addElements':
    case 'deleteElements':
      return `${e.op} ${e.set} ${e.elements.length}`
  }
}

function clone(tables: Map<string, FakeTable>): Map<string, FakeTable> {
  const out = new Map<string, FakeTable>()
  for (const [k, t] of tables)
    out.set(k, {
      ...(t.comment ? { comment: t.comment } : {}),
      anon: t.anon,
      chains: new Map([...t.chains].map(([n, c]) => [n, { ...c, rules: [...c.rules] }])),
      sets: new Map([...t.sets].map(([n, s]) => [n, { ...s, elements: new Map(s.elements) }])),
    })
  return out
}

/** Chains a table's rules and map elements refer to, with how often. */
function references(t: FakeTable): Map<string, number> {
  const refs = new Map<string, number>()
  const add = (c: string | undefined): void => {
    if (c !== undefined) refs.set(c, (refs.get(c) ?? 0) + 1)
  }
  for (const c of t.chains.values()) for (const r of c.rules) for (const x of r.expressions) if (x.type === 'verdict') add(x.chain)
  for (const s of t.sets.values()) for (const e of s.elements.values()) add(e.verdict?.chain)
  return refs
}

function apply(tables: Map<string, FakeTable>, e: NftEdit, names: Map<string, string>, op: string): void {
  const fam = 'family' in e ? e.family : e.spec.family
  const tname = e.op === 'addTable' || e.op === 'deleteTable' ? e.name : 'table' in e ? e.table : e.spec.table
  const key = `${fam} ${tname}`
  if (e.op === 'addTable') {
    if (!tables.has(key)) tables.set(key, { ...(e.comment ? { comment: e.comment } : {}), chains: new Map(), sets: new Map(), anon: 0 })
    return
  }
  const t = tables.get(key) ?? fail('ENOENT', 2, op, `no table ${key}`)
  const setName = (n: string): string => names.get(n) ?? n
  switch (e.op) {
    case 'deleteTable':
      tables.delete(key)
      return
    case 'addChain':
      if (!t.chains.has(e.spec.name)) t.chains.set(e.spec.name, { ...e.spec, rules: [] })
      return
    case 'flushChain': {
      const c = t.chains.get(e.name) ?? fail('ENOENT', 2, op, `no chain ${e.name}`)
      // Anonymous sets go with the rules that hold them.
      for (const r of c.rules) for (const x of r.expressions) if (x.type === 'lookup' && x.set.startsWith('__')) t.sets.delete(x.set)
      c.rules = []
      return
    }
    case 'deleteChain': {
      const c = t.chains.get(e.name) ?? fail('ENOENT', 2, op, `no chain ${e.name}`)
      if (c.rules.length > 0 || (references(t).get(e.name) ?? 0) > 0) fail('EBUSY', 16, op, `chain ${e.name} in use`)
      t.chains.delete(e.name)
      return
    }
    case 'addRule': {
      const c = t.chains.get(e.spec.chain) ?? fail('ENOENT', 2, op, `no chain ${e.spec.chain}`)
      const expressions: NftExpr[] = e.spec.expressions.map((x) => {
        if (x.type === 'lookup' || x.type === 'dynset') {
          const s = setName(x.set)
          if (!t.sets.has(s)) fail('ENOENT', 2, op, `no set ${s}`)
          return { ...x, set: s }
        }
        if (x.type === 'verdict' && x.chain !== undefined && !t.chains.has(x.chain)) fail('ENOENT', 2, op, `no chain ${x.chain}`)
        return x
      })
      c.rules.push({ family: e.spec.family, table: e.spec.table, chain: e.spec.chain, expressions, ...(e.spec.comment === undefined ? {} : { comment: e.spec.comment }) })
      return
    }
    case 'addSet': {
      let name = e.spec.name
      if (name.includes('%d')) {
        const real = name.replace('%d', String(t.anon++))
        names.set(name, real)
        name = real
      }
      if (!t.sets.has(name)) t.sets.set(name, { ...e.spec, name, elements: new Map() })
      return
    }
    case 'deleteSet':
      if (!t.sets.has(e.name)) fail('ENOENT', 2, op, `no set ${e.name}`)
      for (const c of t.chains.values())
        for (const r of c.rules) for (const x of r.expressions) if ((x.type === 'lookup' || x.type === 'dynset') && x.set === e.name) fail('EBUSY', 16, op, `set ${e.name} in use`)
      t.sets.delete(e.name)
      return
    case 'addElements': {
      const s = t.sets.get(setName(e.set)) ?? fail('ENOENT', 2, op, `no set ${e.set}`)
      for (const el of e.elements) {
        if (el.verdict?.chain !== undefined && !t.chains.has(el.verdict.chain)) fail('ENOENT', 2, op, `no chain ${el.verdict.chain}`)
        const k = hex(el.key) + (el.intervalEnd ? '/end' : '')
        const had = s.elements.get(k)
        if (had && JSON.stringify(had.verdict) !== JSON.stringify(el.verdict)) fail('EEXIST', 17, op, `element ${k} exists with other data`)
        s.elements.set(k, { ...el })
      }
      return
    }
    case 'deleteElements': {
      const s = t.sets.get(setName(e.set)) ?? fail('ENOENT', 2, op, `no set ${e.set}`)
      for (const el of e.elements) if (!s.elements.delete(hex(el.key) + (el.intervalEnd ? '/end' : ''))) fail('ENOENT', 2, op, `no element ${hex(el.key)}`)
      return
    }
  }
}
