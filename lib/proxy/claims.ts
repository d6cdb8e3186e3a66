// Who owns an address:port that two service ports ask for: the same cluster IP
// in two manifests, two Services sharing an external IP or a load-balancer IP
// (the API allows both), the same node port. The kernel has room for one.
// kube-proxy leaves it to Go map order (IPVS mode: whichever service port is
// synced last programs the shared virtual server; iptables mode: whichever
// rule comes first in KUBE-SERVICES), so the winner can change at any resync
// or restart. Here one rule decides, whatever the order of arrival: the oldest
// Service (metadata.creationTimestamp; none, as in most manifests, ranks after
// any), then namespace, name and port name. The others get nothing in the
// kernel for that address:port (they keep their other ones) and the next in
// rank takes it over, in the same sync, when the owner goes.
import type { Log } from './types.js'
import type { ServicePort } from './model/serviceport.js'
import { joinHostPort } from './model/fields.js'

export type Claimant = Pick<ServicePort, 'key' | 'name' | 'created'>

/** Whether `a` owns an address:port that `b` also claims. */
export function outranks(a: Claimant, b: Claimant): boolean {
  const ca = a.created ?? Infinity
  const cb = b.created ?? Infinity
  if (ca !== cb) return ca < cb
  for (const f of ['namespace', 'name', 'port'] as const) if (a.name[f] !== b.name[f]) return a.name[f] < b.name[f]
  return a.key < b.key
}

/** The claim on an address:port (an IPVS virtual server's key): 'tcp/10.96.0.10:80', 'tcp/[fd00::1]:80'. */
export function serverKey(protocol: string, address: string, port: number): string {
  return `${protocol}/${joinHostPort(address, port)}`
}

/** The node-port claim of a port: every node address at once (iptables' KUBE-NODEPORTS rules, IPVS' node-port sets). */
export function nodePortClaim(protocol: string, nodePort: number): string {
  return `${protocol}/*:${nodePort}`
}

/**
 * Claims of service ports on keys ('tcp/10.96.0.10:80', 'tcp/*:30080'). The
 * work of a change is proportional to the claims of the port that changed.
 */
export class Claims {
  /** Claimants of each key, the owner first. */
  readonly #claimants = new Map<string, Claimant[]>()
  /** The keys each port claims. */
  readonly #of = new Map<string, readonly string[]>()
  /** Ports that own less than they claim: how many of their keys another owns. */
  readonly #lost = new Map<string, number>()
  readonly #log: Log

  constructor(log: Log) {
    this.#log = log
  }

  /** The port key that owns `key`, if any claims it. */
  owner(key: string): string | undefined {
    return this.#claimants.get(key)?.[0]!.key
  }

  /** The ports that claim `key` but do not own it, in rank order. */
  ignored(key: string): string[] {
    return (this.#claimants.get(key) ?? []).slice(1).map((c) => c.key)
  }

  /** Service ports left without some address:port they ask for. */
  get conflicts(): number {
    return this.#lost.size
  }

  /** The keys `port` claims and another owns; undefined when it owns all it claims. */
  lost(port: string): ReadonlySet<string> | undefined {
    if (!this.#lost.has(port)) return undefined
    return new Set(this.#of.get(port)!.filter((k) => this.owner(k) !== port))
  }

  /**
   * Sets the keys `port` claims ([] when it is gone). Resolves the keys whose
   * owner changed, with the owner before (undefined: none). Logs each conflict
   * that starts, changes owner or ends.
   */
  set(port: string, claimant: Claimant | undefined, keys: readonly string[]): Map<string, string | undefined> {
    const before = this.#of.get(port) ?? []
    const changed = new Map<string, string | undefined>()
    if (before.length === 0 && keys.length === 0) return changed
    const had = new Set(before)
    const now = new Set(keys)
    const all = new Set([...before, ...keys])
    const started = new Map<string, { owner: string; ignored: string[]; servers: string[] }>()
    const ended = new Map<string, string[]>()
    for (const key of all) {
      const list = this.#claimants.get(key) ?? []
      const was = list[0]?.key
      const wasContested = list.length > 1
      this.#count(list, -1)
      const i = list.findIndex((c) => c.key === port)
      if (i >= 0) list.splice(i, 1)
      if (now.has(key)) {
        let j = 0
        while (j < list.length && outranks(list[j]!, claimant!)) j++
        list.splice(j, 0, claimant!)
      }
      this.#count(list, 1)
      if (list.length === 0) this.#claimants.delete(key)
      else this.#claimants.set(key, list)
      const owner = list[0]?.key
      if (owner !== was) changed.set(key, was)
      // Logged once per change: a port joining or leaving, or the owner changing; not a recompute.
      const membership = !had.has(key) || !now.has(key)
      if (list.length > 1 && (membership || owner !== was)) {
        const ignored = list.slice(1).map((c) => c.key)
        const group = `${owner} ${ignored.join(' ')}`
        let g = started.get(group)
        if (!g) started.set(group, (g = { owner: owner!, ignored, servers: [] }))
        g.servers.push(key)
      } else if (list.length === 1 && wasContested) {
        let g = ended.get(owner!)
        if (!g) ended.set(owner!, (g = []))
        g.push(key)
      }
    }
    if (keys.length === 0) this.#of.delete(port)
    else this.#of.set(port, keys)
    for (const g of started.values()) this.#log('warn', 'services conflict: the same virtual server', { servers: g.servers, owner: g.owner, ignored: g.ignored })
    for (const [owner, servers] of ended) this.#log('info', 'services conflict ended', { servers, owner })
    return changed
  }

  clear(): void {
    this.#claimants.clear()
    this.#of.clear()
    this.#lost.clear()
  }

  /** Adds `d` to the lost count of every claimant of `list` but its owner. */
  #count(list: readonly Claimant[], d: number): void {
    for (let i = 1; i < list.length; i++) {
      const k = list[i]!.key
      const n = (this.#lost.get(k) ?? 0) + d
      if (n > 0) this.#lost.set(k, n)
      else this.#lost.delete(k)
    }
  }
}
