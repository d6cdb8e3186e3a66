// Types for cni.mjs (plain JavaScript so that .mjs demos and .ts tests both import it).

/** Runs a standard tool (ipvsadm, ipset, iptables-legacy-save, ip, ...) and returns its stdout; throws with its stderr. */
export declare function tool(cmd: string, args?: readonly string[], options?: { input?: string }): string

/** Runs a shell script (`sh -ec`) and returns its stdout; throws with its stderr. */
export declare function sh(script: string): string

export interface PodSpec {
  /** The netns name and the agent's answer: a DNS label, up to 32 characters. */
  name: string
  /** IPv4, inside gateway/prefix. */
  ip: string
  /** IPv6, inside gateway6/prefix6 (only with gateway6): on eth0 (nodad), with a default route via gateway6. */
  ip6?: string
}

/**
 * Pods named `${letter}1`, `${letter}2`, ... at 10.244.0.<first>, <first + 1>, ...
 * (count default 3); dualStack: each also at fd00:10:244::<the same digits>.
 */
export declare function numberedPods(letter: string, first: number, options?: { count?: number; dualStack?: false }): { name: string; ip: string }[]
export declare function numberedPods(letter: string, first: number, options: { count?: number; dualStack: true }): { name: string; ip: string; ip6: string }[]

export interface Pod extends PodSpec {
  /** The bridge side of its veth pair, `<bridge>-<index>` (eth0 in the pod). */
  veth: string
}

export interface NodeOptions {
  /** default 'cbr0' */
  bridge?: string
  /** The bridge's address and the pods' default route; default '10.244.0.1'. */
  gateway?: string
  /** default 24 */
  prefix?: number
  /**
   * Makes the node dual-stack: the bridge's IPv6 address (nodad) and the default
   * IPv6 route of every pod with an ip6, e.g. 'fd00:10:244::1'. Also sets
   * net.ipv6.conf.all.forwarding=1 and, with br_netfilter, bridge-nf-call-ip6tables=1.
   */
  gateway6?: string
  /** default 64 (8-126) */
  prefix6?: number
  pods: PodSpec[]
  /** Hairpin mode on each pod's bridge port; default true. */
  hairpin?: boolean
  /** How long each agent may take to say ready; default 60 000. */
  readyTimeoutMs?: number
}

export interface RequestOptions {
  /** IPv4 or IPv6 ('fd00::a' or '[fd00::a]'); the family of the address picks the socket's. */
  host: string
  /** default 8080 for http, 5353 for udp */
  port?: number
  /**
   * http only; default '/'. The agents answer '/slow?ms=N' after N ms and '/whoami'
   * with the client's address as they see it: 'a.b.c.d:port' or '[v6]:port'.
   */
  path?: string
  /** default 3000 */
  timeoutMs?: number
  /** default 'http' (GET on a fresh connection) */
  proto?: 'http' | 'udp'
  /** udp only: the datagram (default 'ping'); the agents answer 'whoami' with the sender's address, as '/whoami' does. */
  payload?: string
}

export type RequestResult =
  | { ok: true; body: string; /** http only */ status?: number }
  | { ok: false; error: string }

export interface ManyResult {
  /** Every result, in the order the requests were started. */
  results: RequestResult[]
  /** The bodies of those that succeeded, in order. */
  bodies: string[]
  /** The errors of those that failed, in order. */
  errors: string[]
  /** How many times each body came back. */
  counts: Record<string, number>
}

export interface FakeNode {
  readonly bridge: string
  readonly gateway: string
  readonly prefix: number
  /** Only on a dual-stack node (gateway6 given). */
  readonly gateway6?: string
  /** Only on a dual-stack node (gateway6 given). */
  readonly prefix6?: number
  readonly hairpin: boolean
  readonly pods: readonly Pod[]
  /** br_netfilter was loaded, so bridge-nf-call-iptables (and, dual-stack, bridge-nf-call-ip6tables) was set to 1. */
  readonly brNetfilter: boolean
  /** ms spent making links and namespaces, and starting the agents (in parallel). */
  readonly timings: { setupMs: number; agentsMs: number }
  pod(name: string): Pod
  isRunning(name: string): boolean
  /** From a pod (its agent) or from 'node' (this process), over IPv4 or IPv6 as the host is. Never rejects. */
  request(from: string, opts: RequestOptions): Promise<RequestResult>
  /** n requests, at most `concurrency` (default 1) at a time. Never rejects. */
  requestMany(from: string, opts: RequestOptions, n: number, options?: { concurrency?: number }): Promise<ManyResult>
  /** Kills the pod's agent (SIGKILL): its ports are closed, its connections reset. */
  stopPod(name: string): Promise<void>
  /** Starts the pod's agent again; resolves once it serves. */
  startPod(name: string, options?: { readyTimeoutMs?: number }): Promise<void>
  /** Removes agents, veths, bridge, namespaces; restores the sysctls. Goes on past failures, then throws. Idempotent. */
  destroy(): Promise<void>
}

/**
 * Builds the node: bridge with the gateway address, one netns per pod with a
 * veth into the bridge, ip_forward=1, bridge-nf-call-iptables=1 when
 * br_netfilter is loaded, and one agent per pod (started in parallel).
 * With gateway6, also IPv6: see NodeOptions.gateway6 and PodSpec.ip6.
 * On failure it undoes what it made and rejects.
 */
export declare function makeNode(options: NodeOptions): Promise<FakeNode>
