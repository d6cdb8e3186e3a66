// ipset, the kernel's sets of addresses, ports and networks, over nfnetlink:
// what the ipset tool does for the set types the proxy uses, without the tool.
// Input is validated in lib/ipset/ (errors name the field); native/ipset only
// names the kernel's attributes. This file is the entry: the public API.
export type { Outcome } from './netlink/socket.js'
export type { Family } from './validate.js'
export { SET_TYPES, ENTRY_PROTOCOLS } from './ipset/types.js'
export type { SetType, EntryProtocol, EntryOptions, IpSetEntry, CreateSpec, IpSetRecord, IpSetOp, SyncResult, SetInfo, ResizeOptions } from './ipset/types.js'
export type { WireEntry } from './ipset/wire.js'
export { ipsetErrorText } from './ipset/errors.js'
export { entryWire, setName } from './ipset/validate.js'
export { entryKey } from './ipset/identity.js'
export { IpSet } from './ipset/handle.js'
