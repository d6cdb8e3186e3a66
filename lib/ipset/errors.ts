// ipset's errors: the kernel's errnos and ipset's private ones (>= 4096), by
// name, in the ipset tool's words.
import { NetlinkError } from '../errors.js'
import type { NativeResult } from '../native.js'
import { kernelDetail } from '../netlink/socket.js'
import type { SetKind } from './kernel.js'

export const ENOENT = 2
export const EEXIST = 17
export const IPSET_ERR_EXIST = 4103
/** From here each kind of set numbers its own errors. */
export const IPSET_ERR_TYPE_SPECIFIC = 4352

export type Cmd = 'create' | 'destroy' | 'flush' | 'rename' | 'swap' | 'list' | 'add' | 'del' | 'test' | 'header' | 'type' | 'protocol'

const CORE_ERRORS: Record<number, [string, string]> = {
  4097: ['IPSET_ERR_PROTOCOL', 'Kernel error received: ipset protocol error'],
  4098: ['IPSET_ERR_FIND_TYPE', 'Kernel error received: set type not supported'],
  4099: ['IPSET_ERR_MAX_SETS', 'Kernel error received: maximal number of sets reached, cannot create more.'],
  4100: ['IPSET_ERR_BUSY', 'Set cannot be destroyed: it is in use by a kernel component'],
  4101: ['IPSET_ERR_EXIST_SETNAME2', 'Set cannot be renamed: a set with the new name already exists'],
  4102: ['IPSET_ERR_TYPE_MISMATCH', 'The sets cannot be swapped: their type does not match'],
  4103: ['IPSET_ERR_EXIST', "Element cannot be added to the set: it's already added"],
  4104: ['IPSET_ERR_INVALID_CIDR', 'The value of the CIDR parameter of the IP address is invalid'],
  4105: ['IPSET_ERR_INVALID_NETMASK', 'The value of the netmask parameter is invalid'],
  4106: ['IPSET_ERR_INVALID_FAMILY', 'Protocol family not supported by the set type'],
  4107: ['IPSET_ERR_TIMEOUT', 'Timeout cannot be used: set was created without timeout support'],
  4108: ['IPSET_ERR_REFERENCED', 'Set cannot be renamed: it is in use by another system'],
  4109: ['IPSET_ERR_IPADDR_IPV4', 'An IPv4 address is expected, but not received'],
  4110: ['IPSET_ERR_IPADDR_IPV6', 'An IPv6 address is expected, but not received'],
  4111: ['IPSET_ERR_COUNTER', 'Packet/byte counters cannot be used: set was created without counter support'],
  4112: ['IPSET_ERR_COMMENT', 'Comment cannot be used: set was created without comment support'],
  4113: ['IPSET_ERR_INVALID_MARKMASK', 'The value of the markmask parameter is invalid'],
  4114: ['IPSET_ERR_SKBINFO', 'Skbinfo mapping cannot be used: set was created without skbinfo support'],
}
/** Words that depend on the command, as the ipset tool has them. */
const CMD_ERRORS: Partial<Record<Cmd, Record<number, string>>> = {
  create: { [EEXIST]: 'Set cannot be created: set with the same name already exists' },
  del: { [IPSET_ERR_EXIST]: "Element cannot be deleted from the set: it's not added" },
  test: { [IPSET_ERR_EXIST]: 'Element is not in the set' },
  swap: { 4101: 'Sets cannot be swapped: the second set does not exist' },
}
/** From 4352 (IPSET_ERR_TYPE_SPECIFIC) each kind of set numbers its own. */
const TYPE_ERRORS: Record<SetKind, [string, string][]> = {
  hash: [
    ['IPSET_ERR_HASH_FULL', 'Hash is full, cannot add more elements'],
    ['IPSET_ERR_HASH_ELEM', 'Null-valued element, cannot be stored in a hash type of set'],
    ['IPSET_ERR_INVALID_PROTO', 'Invalid protocol specified'],
    ['IPSET_ERR_MISSING_PROTO', 'Protocol missing, but must be specified'],
    ['IPSET_ERR_HASH_RANGE_UNSUPPORTED', 'Range is not supported in the "net" component of the element'],
    ['IPSET_ERR_HASH_RANGE', 'Invalid range, covers the whole address space'],
  ],
  bitmap: [
    ['IPSET_ERR_BITMAP_RANGE', 'Element is out of the range of the set'],
    ['IPSET_ERR_BITMAP_RANGE_SIZE', 'The range you specified exceeds the size limit of the set type'],
  ],
  list: [
    ['IPSET_ERR_NAME', 'Set to be added/deleted/tested as element does not exist.'],
    ['IPSET_ERR_LOOP', 'Sets with list:set type cannot be added to the set.'],
    ['IPSET_ERR_BEFORE', 'No reference set specified.'],
    ['IPSET_ERR_NAMEREF', "The set to which you referred with 'before' or 'after' does not exist."],
    ['IPSET_ERR_LIST_FULL', 'The set is full, more elements cannot be added.'],
    ['IPSET_ERR_REF_EXIST', "The set to which you referred with 'before' or 'after' is not added to the set."],
  ],
}

/** The code name and the ipset tool's message for an errno (kernel or ipset-private). */
export function ipsetErrorText(errno: number, cmd?: string, kind?: SetKind): { code?: string; text?: string } {
  const byCmd = cmd ? CMD_ERRORS[cmd as Cmd]?.[errno] : undefined
  if (errno >= IPSET_ERR_TYPE_SPECIFIC) {
    const e = kind ? TYPE_ERRORS[kind][errno - IPSET_ERR_TYPE_SPECIFIC] : undefined
    return e ? { code: e[0], text: e[1] } : { code: `IPSET_ERR_TYPE_SPECIFIC_${errno - IPSET_ERR_TYPE_SPECIFIC}` }
  }
  if (errno >= 4096) {
    const e = CORE_ERRORS[errno]
    return { code: e?.[0] ?? `IPSET_ERR_${errno}`, text: byCmd ?? e?.[1] }
  }
  if (errno === ENOENT && cmd && cmd !== 'protocol' && cmd !== 'type') return { text: 'The set with the given name does not exist' }
  return byCmd ? { text: byCmd } : {}
}

/** A kernel refusal as a NetlinkError with ipset's code and words (and, in a batch, its index). */
export function ipsetError(result: NativeResult<unknown>, op: string, cmd: Cmd, kind?: SetKind, index?: number): NetlinkError {
  const { code, text } = ipsetErrorText(result.error, cmd, kind)
  const init: ConstructorParameters<typeof NetlinkError>[0] = { errno: result.error, op }
  if (code) init.code = code
  Object.assign(init, kernelDetail(result))
  if (index !== undefined) init.index = index
  if (text) init.message = `${code ?? new NetlinkError({ errno: result.error, op }).code}: ${text}`
  return new NetlinkError(init)
}

/** The kernel's "no such set", said without asking it. */
export function noSuchSet(op: string, cmd: Cmd, kind?: SetKind, index?: number): NetlinkError {
  return ipsetError({ error: ENOENT, records: [] }, op, cmd, kind, index)
}

/**
 * Whether a refusal says the handle's picture of the set is wrong (read it
 * again next time). 4352 is a bitmap's "out of range", a stale range; for hash
 * sets it is "full", and says nothing of the picture.
 */
export function staleInfo(errno: number, kind: SetKind): boolean {
  return errno === ENOENT || errno === 4097 /* IPSET_ERR_PROTOCOL */ || errno === 4102 || (errno >= 4107 && errno <= 4114) || (errno === IPSET_ERR_TYPE_SPECIFIC && kind === 'bitmap')
}
