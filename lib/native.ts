// Exactly what the native addon exports (native/addon.cc). Everything a user
// touches is built on these few verbs in lib/.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ConntrackRawRecord, ConntrackWireOp } from './native/conntrack.js'
import type { GenlRawFamily, GenlWireOp } from './native/genl.js'
import type { IpsetRawRecord, IpsetWireOp } from './native/ipset.js'
import type { IpvsRawRecord, IpvsWireOp } from './native/ipvs.js'
import type { NftRawRecord, NftWireOp } from './native/nftables.js'
import type { RouteRawRecord, RouteWireOp } from './native/route.js'

/** One request's outcome, as the netlink core reports it. */
export interface NativeResult<R = NativeRecord> {
  /** 0, or a positive errno from the kernel or the socket (EBADMSG: a reply the decoder could not read whole). */
  error: number
  /** The kernel's extended ACK text. */
  extack?: string
  extackOffset?: number
  /** A dump stayed inconsistent (NLM_F_DUMP_INTR) after every retry. */
  interrupted?: boolean
  /** Decoded reply messages. */
  records: R[]
  /**
   * What the family's codec read from the request the kernel echoed whole with
   * its error (ipset: `{ line }`, the entry of a batch message that failed).
   */
  echo?: { [field: string]: unknown }
}

/**
 * Each codec of native/ with the requests it encodes and the records it
 * decodes (the wire forms, in lib/native/): NetlinkSocket.execute is typed by it.
 */
export interface Codecs {
  ipvs: { op: IpvsWireOp; record: IpvsRawRecord }
  genl: { op: GenlWireOp; record: GenlRawFamily }
  route: { op: RouteWireOp; record: RouteRawRecord }
  conntrack: { op: ConntrackWireOp; record: ConntrackRawRecord }
  ipset: { op: IpsetWireOp; record: IpsetRawRecord }
  nftables: { op: NftWireOp; record: NftRawRecord }
}

export type Codec = keyof Codecs

/** A decoded reply message, whatever the codec (the Codecs map narrows it). */
export interface NativeRecord {
  kind: string
  [field: string]: unknown
}

/** A wire-level operation: already validated and normalized by lib/. */
export interface NativeOp {
  cmd: string
  [field: string]: unknown
}

export interface NativeSocket {
  readonly portId: number
  execute<C extends Codec>(codec: C, family: number, ops: Codecs[C]['op'][]): Promise<NativeResult<Codecs[C]['record']>[]>
  close(): Promise<void>
}

export interface CollectOutcome {
  complete: boolean
  results: NativeResult[]
  retries: { index: number; reason: 'busy' | 'interrupted' }[]
}

export interface NativeAddon {
  NetlinkSocket: new (protocol: number) => NativeSocket
  /** The bytes a batch would send (sequence numbers from firstSeq). */
  encode(codec: string, family: number, ops: NativeOp[], firstSeq?: number): Buffer
  /**
   * Records of every data message in a buffer of replies. A message the codec
   * cannot read whole throws an Error with errno EBADMSG (74) naming its record,
   * as a socket's result for it would be `{ error: 74, extack: 'malformed reply: ...' }`.
   */
  decode(codec: string, replies: Buffer): NativeRecord[]
  /** The receive loop's matching of recorded datagrams to requests. */
  /** With ackSlot, only that request asked for an ACK, as a burst is sent. */
  collect(codec: string, dumps: boolean[], portId: number, firstSeq: number, datagrams: Buffer[], ackSlot?: number): CollectOutcome
  /** native/iptc: libiptc transactions; libip4tc / libip6tc are dlopen()ed on first use. */
  iptc: NativeIptc
  /**
   * native/lock: open(O_CREAT|O_CLOEXEC) + flock(LOCK_EX|LOCK_NB); on success the
   * file holds our pid. Held, `errno` is EWOULDBLOCK (11) with the holder's `pid` when it wrote one.
   */
  lockFile(path: string): { fd: number } | { errno: number; pid?: number }
  /** Closes the descriptor lockFile gave, which drops the lock. */
  unlockFile(fd: number): void
  /**
   * native/malloc: mallopt(M_MMAP_THRESHOLD) then mallopt(M_TRIM_THRESHOLD), process-wide;
   * true when glibc took both, false without glibc (nothing set) or when it refused one.
   */
  setMallocThresholds(trimThreshold: number, mmapThreshold: number): boolean
}

/** A chain as native/iptc dumps it. */
export interface NativeChain {
  name: string
  builtin: boolean
  policy?: string
  packets?: number
  bytes?: number
  references: number
  rules: number
  /** dump(…, survey): the chain's hash, counters aside ('' when it has a set match). */
  hash?: string
}

export interface NativeDump {
  chains: NativeChain[]
  /** RuleHeader + entry per rule, chain after chain (native/iptc/table.h). */
  rules: Buffer
  /** ipset index -> name, for the set matches in `rules`. */
  sets: Record<string, string>
  /** dump(…, survey): the cached snapshot hashed otherwise than the kernel's table, and was read again. */
  reread?: boolean
}

export interface NativeCommitInfo {
  snapshotReused: boolean
  replayed: boolean
  lockMs: number
  loadMs: number
  applyMs: number
  commitMs: number
  entries: number
  bytes: number
}

/**
 * One table transaction; every method runs on the thread pool. `ops`: buffers
 * of operation records (native/iptc/table.h). Failures reject with
 * { errno, index, kind, chain, detail }.
 */
export interface NativeIptcTransaction {
  apply(ops: Buffer[] | null): Promise<void>
  /** `chain`: one chain, the chains listed (table order), or every chain; `survey`: every chain with its hash, read from the kernel now (no rules). */
  dump(chain: string | readonly string[] | null, rules: boolean, survey?: boolean): Promise<NativeDump>
  commit(ops: Buffer[] | null): Promise<NativeCommitInfo>
  release(): Promise<void>
}

export interface NativeIptc {
  Transaction: new (family: 4 | 6, table: string, options: { reuseSnapshots: boolean; lockTimeoutMs: number }) => NativeIptcTransaction
  load(family: 4 | 6): { ok: true; path: string } | { ok: false; error: string }
  prefetch(family: 4 | 6, table: string): Promise<void>
  dropSnapshot(family: 4 | 6, table: string): Promise<void>
  tableInfo(family: 4 | 6, table: string):
    | { entries: number; size: number; validHooks: number; hookEntry: number[]; underflow: number[] }
    | { errno: number }
  /** sizeof / offsetof from the kernel headers, for the layout tests. */
  layout(): Record<string, number>
}

const require = createRequire(import.meta.url)

/** The package root: dist/native.js lives one level below it. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..')

let loaded: NativeAddon | undefined
let injected: NativeAddon | undefined

/** The addon, loaded on first use: the pure layers (model, trackers, config) import without the binary. */
function binding(): NativeAddon {
  return injected ?? loadNativeBinding()
}

/**
 * Test seam: every later call into the addon (new sockets, codecs, iptc, locks)
 * goes to `fake` instead; a socket already open keeps its handle. A fake may
 * spread `loadNativeBinding()` to keep the real codecs. Undo with useNativeBinding().
 */
export function setBinding(fake: NativeAddon): void {
  injected = fake
}

/** Back to the real addon after setBinding(). */
export function useNativeBinding(): void {
  injected = undefined
}

/** The real addon, loading it now (a fake spreads it to keep the real codecs). */
export function loadNativeBinding(): NativeAddon {
  loaded ??= (require('node-gyp-build') as (dir: string) => unknown)(packageRoot) as NativeAddon
  return loaded
}

/** The addon's exports, each looked up at the call: the real addon, or the one setBinding() gave. */
export const native: NativeAddon = {
  get NetlinkSocket() {
    return binding().NetlinkSocket
  },
  get iptc() {
    return binding().iptc
  },
  encode: (codec, family, ops, firstSeq) => binding().encode(codec, family, ops, firstSeq),
  decode: (codec, replies) => binding().decode(codec, replies),
  collect: (codec, dumps, portId, firstSeq, datagrams, ackSlot) => binding().collect(codec, dumps, portId, firstSeq, datagrams, ackSlot),
  lockFile: (path) => binding().lockFile(path),
  unlockFile: (fd) => binding().unlockFile(fd),
  setMallocThresholds: (trim, mmap) => binding().setMallocThresholds(trim, mmap),
}

export const NETLINK_GENERIC = 16
export const NETLINK_NETFILTER = 12
