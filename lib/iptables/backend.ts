// Which iptables backend holds a node's rules. Linux has two: x_tables
// ("legacy": iptables-legacy, libiptc, what tsproxy drives) and nf_tables
// (iptables-nft, the default of most distributions since 2020, whose tables are
// nf_tables tables named nat, filter, ... in the ip and ip6 families). Both can
// hold rules at once and neither sees the other's: kube-proxy and the kubelet
// must agree with us on one, so we look at both and say where KUBE-* chains are.
import { readFile } from 'node:fs/promises'
import { native, NETLINK_NETFILTER } from '../native.js'
import type { NftRawChain } from '../native/nftables.js'
import { NetlinkSocket } from '../netlink/socket.js'
import type { Family } from '../validate.js'
import { enqueue } from './queue.js'

export interface BackendTable {
  family: Family
  table: string
  chains: number
  /** Chains named KUBE-* (kube-proxy's, and the kubelet's KUBE-IPTABLES-HINT / KUBE-KUBELET-CANARY). */
  kubeChains: string[]
}

export interface BackendReport {
  /** x_tables tables that exist in this network namespace (/proc/net/ip{,6}_tables_names). */
  legacy: { tables: BackendTable[]; error?: string }
  /** nf_tables tables that iptables-nft made (families ip and ip6, iptables' table names). */
  nft: { available: boolean; tables: BackendTable[]; error?: string }
  /** Where KUBE-* chains are. */
  kube: 'legacy' | 'nft' | 'both' | 'none'
  /** True when iptables rules exist in nf_tables: this library (legacy x_tables) does not see them. */
  nftInUse: boolean
  summary: string
}

const IPTABLES_TABLES = new Set(['nat', 'filter', 'mangle', 'raw', 'security'])
const NFPROTO_IPV4 = 2
const NFPROTO_IPV6 = 10

async function legacyTables(): Promise<{ tables: BackendTable[]; error?: string }> {
  const tables: BackendTable[] = []
  let error: string | undefined
  for (const [family, file] of [['inet', '/proc/net/ip_tables_names'], ['inet6', '/proc/net/ip6_tables_names']] as const) {
    let names: string[] = []
    try {
      names = (await readFile(file, 'utf8')).split('\n').filter(Boolean)
    } catch {
      continue // no x_tables for this family at all
    }
    // Only tables that exist: reading one that does not would make the kernel create it.
    for (const table of names) {
      if (!IPTABLES_TABLES.has(table)) continue
      const f = family === 'inet' ? 4 : 6
      if (!native.iptc.load(f).ok) {
        error = `libip${f}tc is not installed: chains of existing legacy tables not read`
        tables.push({ family, table, chains: -1, kubeChains: [] })
        continue
      }
      const tx = new native.iptc.Transaction(f, table, { reuseSnapshots: true, lockTimeoutMs: 0 })
      try {
        const d = await enqueue(f, () => tx.dump(null, false))
        const user = d.chains.filter((c) => !c.builtin)
        tables.push({ family, table, chains: user.length, kubeChains: user.map((c) => c.name).filter((n) => n.startsWith('KUBE-')) })
      } catch (e) {
        error = `${family} ${table}: ${(e as Error).message}`
      } finally {
        await enqueue(f, () => tx.release())
      }
    }
  }
  return error === undefined ? { tables } : { tables, error }
}

async function nftTables(): Promise<{ available: boolean; tables: BackendTable[]; error?: string }> {
  let socket: NetlinkSocket
  try {
    socket = NetlinkSocket.open(NETLINK_NETFILTER, 'iptables.detectBackend')
  } catch (e) {
    return { available: false, tables: [], error: (e as Error).message }
  }
  try {
    const [tables, chains] = await socket.execute('nftables', 0, [{ cmd: 'getTables' }, { cmd: 'getChains' }], 'iptables.detectBackend')
    if (tables!.error) return { available: false, tables: [], error: `nf_tables: errno ${tables!.error}` }
    const out: BackendTable[] = []
    for (const t of tables!.records) {
      if (t.kind !== 'table') continue
      if ((t.family !== NFPROTO_IPV4 && t.family !== NFPROTO_IPV6) || !IPTABLES_TABLES.has(t.name)) continue
      const mine = (chains!.error ? [] : chains!.records).filter((c): c is NftRawChain => c.kind === 'chain' && c.family === t.family && c.table === t.name)
      // iptables-nft's built-in chains are base chains; the rest are user chains.
      const user = mine.filter((c) => !c.base)
      out.push({
        family: t.family === NFPROTO_IPV4 ? 'inet' : 'inet6',
        table: t.name,
        chains: user.length,
        kubeChains: user.map((c) => c.name).filter((n) => n.startsWith('KUBE-')),
      })
    }
    return { available: true, tables: out }
  } catch (e) {
    return { available: false, tables: [], error: (e as Error).message }
  } finally {
    await socket.close()
  }
}

/** Looks at both backends of this network namespace; changes nothing. */
export async function detectBackend(): Promise<BackendReport> {
  const [legacy, nft] = await Promise.all([legacyTables(), nftTables()])
  const inLegacy = legacy.tables.some((t) => t.kubeChains.length > 0)
  const inNft = nft.tables.some((t) => t.kubeChains.length > 0)
  const kube = inLegacy && inNft ? 'both' : inLegacy ? 'legacy' : inNft ? 'nft' : 'none'
  const nftInUse = nft.tables.length > 0
  const list = (ts: BackendTable[]): string => ts.map((t) => `${t.family === 'inet' ? '' : 'ip6 '}${t.table}`).join(', ')
  let summary: string
  if (kube === 'nft') summary = `KUBE-* chains live in nf_tables (iptables-nft: ${list(nft.tables)}); tsproxy writes legacy x_tables, which the kernel evaluates as well but kube components on this node will not see: switch the node to iptables-legacy or do not use the iptables API here`
  else if (kube === 'both') summary = 'KUBE-* chains exist in both x_tables (legacy) and nf_tables (nft): two writers disagree; clean one backend up'
  else if (nftInUse) summary = `iptables-nft tables exist (${list(nft.tables)}) next to ${legacy.tables.length ? 'legacy ones' : 'no legacy ones'}; tsproxy drives legacy x_tables only`
  else if (kube === 'legacy') summary = 'KUBE-* chains live in legacy x_tables: the backend tsproxy drives'
  else summary = 'no KUBE-* chains in either backend'
  return {
    legacy,
    nft,
    kube,
    nftInUse,
    summary,
  }
}
