// The typed rule model of tsproxy's iptables API: what a caller writes and what
// a dump reads back (the same shape, in canonical form, with counters).
// Extensions we do not model read back as { match: 'raw' } / { target: 'raw' }
// and write back unchanged.

export const TABLES = ['nat', 'filter', 'mangle', 'raw'] as const
export type IptablesTable = (typeof TABLES)[number]
export const BUILTIN_CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const

/** A criterion, or its negation (iptables' `!`). */
export type Not<T> = T | { not: T }

/** A port, or an inclusive range [first, last]. */
export type PortRange = number | readonly [number, number]

export type IptablesProtocol = 'tcp' | 'udp' | 'udplite' | 'sctp' | 'dccp' | 'icmp' | 'icmpv6' | 'esp' | 'ah' | 'gre' | number

export type TcpFlag = 'FIN' | 'SYN' | 'RST' | 'PSH' | 'ACK' | 'URG'
export type SetDirection = 'src' | 'dst'
export type AddrType =
  | 'UNSPEC' | 'UNICAST' | 'LOCAL' | 'BROADCAST' | 'ANYCAST' | 'MULTICAST'
  | 'BLACKHOLE' | 'UNREACHABLE' | 'PROHIBIT' | 'THROW' | 'NAT' | 'XRESOLVE'
export type CtState = 'INVALID' | 'ESTABLISHED' | 'RELATED' | 'NEW' | 'SNAT' | 'DNAT' | 'UNTRACKED'
export type CtStatus = 'EXPECTED' | 'SEEN_REPLY' | 'ASSURED' | 'CONFIRMED'
export type RecentCommand = 'set' | 'rcheck' | 'update' | 'remove'
export type RejectWith =
  | 'icmp-net-unreachable' | 'icmp-host-unreachable' | 'icmp-proto-unreachable' | 'icmp-port-unreachable'
  | 'icmp-net-prohibited' | 'icmp-host-prohibited' | 'icmp-admin-prohibited' | 'tcp-reset'
  | 'icmp6-no-route' | 'icmp6-adm-prohibited' | 'icmp6-addr-unreachable' | 'icmp6-port-unreachable'
  | 'icmp6-policy-fail' | 'icmp6-reject-route'

/** An extension we do not model: its name, revision and data bytes (hex), kept as they are. */
export interface RawExtension {
  name: string
  revision: number
  data: string
}

export type Match =
  | { match: 'comment'; comment: string }
  | { match: 'tcp'; sport?: Not<PortRange>; dport?: Not<PortRange>; tcpFlags?: Not<{ mask: TcpFlag[]; set: TcpFlag[] }> }
  | { match: 'udp'; sport?: Not<PortRange>; dport?: Not<PortRange> }
  | { match: 'sctp'; sport?: Not<PortRange>; dport?: Not<PortRange> }
  /** One of sports, dports, ports (either direction); up to 15 ports, a range counting two. */
  | { match: 'multiport'; sports?: Not<PortRange[]>; dports?: Not<PortRange[]>; ports?: Not<PortRange[]> }
  | { match: 'statistic'; mode: 'random'; probability: Not<number> }
  /** Every `every`-th packet, starting with packet number `packet` (0-based, default 0). */
  | { match: 'statistic'; mode: 'nth'; every: Not<number>; packet?: number }
  /** `--match-set NAME dst,dst,src`: one direction per dimension of the set. */
  | { match: 'set'; matchSet: Not<string>; flags: SetDirection[]; returnNomatch?: true }
  | { match: 'mark'; mark: Not<number>; mask?: number }
  | { match: 'addrtype'; srcType?: Not<AddrType | AddrType[]>; dstType?: Not<AddrType | AddrType[]>; limitIfaceIn?: true; limitIfaceOut?: true }
  | ConntrackMatch
  | {
      match: 'recent'
      command: Not<RecentCommand>
      /** The list's name, default 'DEFAULT'. */
      name?: string
      seconds?: number
      /** `--hitcount`. */
      hitcount?: number
      rttl?: true
      reap?: true
      /** Which address is remembered: 'source' (the default, --rsource) or 'dest' (--rdest). */
      side?: 'source' | 'dest'
      /** A netmask address applied before remembering (default all ones). */
      mask?: string
    }
  | {
      match: 'physdev'
      physdevIn?: Not<string>
      physdevOut?: Not<string>
      physdevIsIn?: Not<true>
      physdevIsOut?: Not<true>
      physdevIsBridged?: Not<true>
    }
  | ({ match: 'raw' } & RawExtension)

export interface ConntrackMatch {
  match: 'conntrack'
  ctstate?: Not<CtState[]>
  ctproto?: Not<IptablesProtocol>
  /** An address, or a network 'address/prefix'. */
  ctorigsrc?: Not<string>
  ctorigdst?: Not<string>
  ctreplsrc?: Not<string>
  ctrepldst?: Not<string>
  ctorigsrcport?: Not<PortRange>
  ctorigdstport?: Not<PortRange>
  ctreplsrcport?: Not<PortRange>
  ctrepldstport?: Not<PortRange>
  ctstatus?: Not<CtStatus[]>
  /** Remaining lifetime in seconds, or a range. */
  ctexpire?: Not<PortRange>
  ctdir?: 'ORIGINAL' | 'REPLY'
}

export type Verdict = 'ACCEPT' | 'DROP' | 'RETURN' | 'QUEUE'
export type MarkOp = 'set-xmark' | 'set-mark' | 'and' | 'or' | 'xor'

export type Target =
  | { jump: string }
  | { goto: string }
  | { target: Verdict }
  | { target: 'REJECT'; rejectWith?: RejectWith }
  /** toDestination as iptables writes it: '10.0.0.1', '10.0.0.1:8080', '10.0.0.1-10.0.0.9:80-90', '[fd00::1]:80', ':8080'. */
  | { target: 'DNAT'; toDestination: string; random?: true; persistent?: true }
  | { target: 'SNAT'; toSource: string; random?: true; randomFully?: true; persistent?: true }
  | { target: 'MASQUERADE'; toPorts?: PortRange; random?: true; randomFully?: true }
  /**
   * The kernel keeps one form, mark = (mark & ~mask) ^ value: every op reads
   * back as 'set-xmark' (set-mark v/m is value v, mask m|v; or v: v/v;
   * and v: 0/~v; xor v: v/0). The mask defaults to 0xffffffff.
   */
  | { target: 'MARK'; op: MarkOp; value: number; mask?: number }
  | { target: 'LOG'; prefix?: string; level?: number; tcpSequence?: true; tcpOptions?: true; ipOptions?: true; uid?: true; macDecode?: true }
  | ({ target: 'raw' } & RawExtension)

export interface Rule {
  /** An address or network: '10.0.0.0/8', '10.1.2.3' (read back as '10.1.2.3/32'). */
  source?: Not<string>
  destination?: Not<string>
  /** An interface name; a trailing '+' matches every name with that prefix. */
  inInterface?: Not<string>
  outInterface?: Not<string>
  protocol?: Not<IptablesProtocol>
  /** IPv4 only: second and further fragments (-f). */
  fragment?: Not<true>
  /** In order: iptables-save prints them in this order. */
  matches?: Match[]
  /** Without a target the rule only counts (and falls through). */
  target?: Target
}

export interface Counters {
  packets: number
  bytes: number
}

/** A rule as read back from the kernel: the same shape, in canonical form, with its counters. */
export interface RuleRecord extends Rule {
  counters: Counters
}
