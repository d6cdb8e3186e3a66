// tsproxy's library: typed, async access to the kernel's load-balancing and
// filtering state, through one native netlink core.
export { NetlinkError, ValidationError, errnoCode } from './errors.js'
export type { NetlinkErrorInit } from './errors.js'
export { Ipvs, SCHEDULERS, keyOf, toWire as ipvsWire } from './ipvs.js'
export type {
  DestinationKey,
  DestinationRecord,
  DestinationSpec,
  Family,
  ForwardMethod,
  IpvsInfo,
  IpvsOp,
  IpvsProtocol,
  IpvsStats,
  IpvsTimeouts,
  Outcome,
  ServiceFlag,
  ServiceKey,
  ServiceRecord,
  ServiceSpec,
  TunnelFlag,
  TunnelType,
} from './ipvs.js'
export { IpSet, SET_TYPES, ENTRY_PROTOCOLS, entryWire as ipsetEntryWire, entryKey as ipsetEntryKey, ipsetErrorText } from './ipset.js'
export type {
  CreateSpec,
  EntryOptions,
  EntryProtocol,
  IpSetEntry,
  IpSetOp,
  IpSetRecord,
  SetInfo,
  SetType,
  SyncResult,
  WireEntry,
} from './ipset.js'
export { Iptables, IptablesTransaction, LibiptcMissingError, IPTABLES_TABLES, iptablesEncodeRule, iptablesDecodeRule } from './iptables.js'
export type { CommitStats, IptablesOptions } from './iptables.js'
export type * from './iptables/model.js'
export { Nftables, NftTransaction, nftData, NFT_DATATYPES, NFT_HOOKS } from './nftables.js'
export type * from './nftables/types.js'
export type { NftTableContents } from './nftables.js'
export { Rtnl, alreadyExists, alreadyGone } from './route.js'
export type { AddressFlag, AddressKey, AddressRecord, AddressScope, AddressSpec, LinkFlag, LinkRecord, LinkRef, OperState, RtnlOp, RtnlOutcome } from './route.js'
export { Conntrack } from './conntrack.js'
export type { ConntrackEntry, ConntrackFilter, ConntrackProtocol, ConntrackStatus, ConntrackTuple } from './conntrack.js'
export { SYSCTL, SysctlError, ensureSysctl, getSysctl, readSysctl, setSysctl, writeSysctl } from './sysctl.js'
export type { SysctlErrorInit, SysctlOptions } from './sysctl.js'
export { INSTANCE_LOCK_FILE, LockError, LockHeldError, acquireLock, tryLock } from './lock.js'
export type { AcquireOptions, InstanceLock } from './lock.js'
export { MAX_MMAP_THRESHOLD, MAX_TRIM_THRESHOLD, tuneMalloc } from './memory.js'
export type { MallocThresholds } from './memory.js'
export * as proxy from './proxy/index.js'
