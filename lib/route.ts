// rtnetlink: the links and addresses a service proxy touches (a dummy
// kube-ipvs0 holding the virtual IPs, the node's own addresses for NodePorts).
// Input is validated here (errors name the field); native/route only names the
// kernel's attributes.
//
// "Already there" and "already gone" keep the kernel's own words, so a caller
// can tell them from real failures: adding an existing link or address is
// EEXIST; deleting a missing link, or an address on a missing link, ENODEV; a
// missing address EADDRNOTAVAIL. `alreadyExists(e)` / `alreadyGone(e)` test for
// them, and `{ exist: true }` turns them into a quiet `false`.
import type { NativeResult } from './native.js'
import type { RawAddr, RawLink, RouteRawRecord, RouteWireOp, WireAddr, WireLinkRef } from './native/route.js'
import { NetlinkError } from './errors.js'
import { NetlinkSocket, SLICE, toError, yieldToLoop } from './netlink/socket.js'
import * as v from './validate.js'
import type { Family, Where } from './validate.js'

const NETLINK_ROUTE = 0
const EEXIST = 17
const ENODEV = 19
const EADDRNOTAVAIL = 99

/** A link by name ('kube-ipvs0') or by interface index. */
export type LinkRef = string | number

/** Interface flags (IFF_*) in iproute2's words, lower case. */
export type LinkFlag =
  | 'up'
  | 'broadcast'
  | 'debug'
  | 'loopback'
  | 'pointopoint'
  | 'notrailers'
  | 'running'
  | 'noarp'
  | 'promisc'
  | 'allmulti'
  | 'master'
  | 'slave'
  | 'multicast'
  | 'portsel'
  | 'automedia'
  | 'dynamic'
  | 'lower-up'
  | 'dormant'
  | 'echo'

/** RFC 2863 operational state (IFLA_OPERSTATE). */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up'

export interface LinkRecord {
  index: number
  name: string
  /** The driver kind of a virtual link ('dummy', 'veth', 'bridge', ...); absent for physical ones and lo. */
  kind?: string
  /** The link layer as `ip link` prints it after "link/": 'ether', 'loopback', 'none', ... */
  type: string
  flags: LinkFlag[]
  /** Administratively up (IFF_UP). */
  up: boolean
  mtu?: number
  /** Hardware address, 'aa:bb:cc:dd:ee:ff'. */
  mac?: string
  operState: OperState
  /** Index of the bridge or bond the link is enslaved to. */
  master?: number
}

export type AddressScope = 'global' | 'site' | 'link' | 'host' | 'nowhere'

/** Address flags (IFA_F_*) in iproute2's words. */
export type AddressFlag =
  | 'secondary'
  | 'nodad'
  | 'optimistic'
  | 'dadfailed'
  | 'homeaddress'
  | 'deprecated'
  | 'tentative'
  | 'permanent'
  | 'managetempaddr'
  | 'noprefixroute'
  | 'mcautojoin'
  | 'stable-privacy'

export interface AddressSpec {
  address: string
  /** Prefix length; default the host's (32 / 128), as a virtual IP is bound. */
  prefix?: number
  /** No route for the prefix (IFA_F_NOPREFIXROUTE): the address is only made local. */
  noPrefixRoute?: boolean
  /** IPv6 only: no duplicate address detection (the address is usable at once). */
  nodad?: boolean
  /** Default 'global'. */
  scope?: 'global' | 'site' | 'link' | 'host'
  /** The other end of a point-to-point link. */
  peer?: string
}

/** What names an address on a link: the address and its prefix length (default the host's). */
export interface AddressKey {
  address: string
  prefix?: number
}

export interface AddressRecord {
  family: Family
  address: string
  prefix: number
  /** The link's index and name. */
  index: number
  link: string
  scope: AddressScope
  flags: AddressFlag[]
  /** IPv4 label ('eth0', 'eth0:1'). */
  label?: string
  peer?: string
  /** Seconds; 4294967295 is forever. */
  validLifetime?: number
  preferredLifetime?: number
}

export type RtnlOp =
  | { op: 'addAddress'; link: LinkRef; address: AddressSpec | string; exist?: boolean }
  | { op: 'deleteAddress'; link: LinkRef; address: AddressKey | string; exist?: boolean }

/**
 * One operation's outcome in a batch. `unchanged`: with `exist: true`, the
 * address was already there (add) or already gone (delete).
 */
export type RtnlOutcome = { ok: true; unchanged?: true } | { ok: false; error: NetlinkError }

// ---- kernel numbers -----------------------------------------------------------------------

const LINK_FLAGS: [LinkFlag, number][] = [
  ['up', 0x1],
  ['broadcast', 0x2],
  ['debug', 0x4],
  ['loopback', 0x8],
  ['pointopoint', 0x10],
  ['notrailers', 0x20],
  ['running', 0x40],
  ['noarp', 0x80],
  ['promisc', 0x100],
  ['allmulti', 0x200],
  ['master', 0x400],
  ['slave', 0x800],
  ['multicast', 0x1000],
  ['portsel', 0x2000],
  ['automedia', 0x4000],
  ['dynamic', 0x8000],
  ['lower-up', 0x10000],
  ['dormant', 0x20000],
  ['echo', 0x40000],
]
const OPER_STATES: OperState[] = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up']
/** ARPHRD_* as iproute2 names them (lib/ll_types.c). */
const LINK_TYPES: Record<number, string> = {
  1: 'ether',
  24: 'ieee1394',
  32: 'infiniband',
  512: 'ppp',
  768: 'ipip',
  769: 'tunnel6',
  772: 'loopback',
  776: 'sit',
  778: 'gre',
  823: 'gre6',
  65534: 'none',
  65535: 'void',
}
const ADDRESS_FLAGS: [AddressFlag, number][] = [
  ['secondary', 0x01],
  ['nodad', 0x02],
  ['optimistic', 0x04],
  ['dadfailed', 0x08],
  ['homeaddress', 0x10],
  ['deprecated', 0x20],
  ['tentative', 0x40],
  ['permanent', 0x80],
  ['managetempaddr', 0x100],
  ['noprefixroute', 0x200],
  ['mcautojoin', 0x400],
  ['stable-privacy', 0x800],
]
const IFA_F_NODAD = 0x02
const IFA_F_NOPREFIXROUTE = 0x200
const SCOPES = v.table<AddressScope, number>({ global: 0, site: 200, link: 253, host: 254, nowhere: 255 })
const SPEC_SCOPES = ['global', 'site', 'link', 'host'] as const

// ---- validation ---------------------------------------------------------------------------

function linkRef(at: Where, field: string, value: unknown): LinkRef {
  if (typeof value === 'number') return v.integer(at, field, value, 1, 0x7fffffff)
  if (typeof value !== 'string') v.fail(at, field, value, 'must be a link name or an interface index')
  return v.linkName(at, field, value)
}

function hostPrefix(f: Family): number {
  return f === 'inet' ? 32 : 128
}

const ADDRESS_FIELDS = ['address', 'prefix', 'noPrefixRoute', 'nodad', 'scope', 'peer']
const OP_FIELDS = ['op', 'link', 'address', 'exist']

/**
 * What an AddressSpec and an AddressKey share: a bare address or an object
 * with an address and a prefix (the host prefix by default). A key may be a
 * whole AddressSpec: its other fields are known, and not part of the key.
 */
function addressFields(at: Where, value: unknown): { s: Record<string, unknown>; family: Family; key: WireAddr } {
  const s = typeof value === 'string' ? { address: value } : v.object(at, 'address', value)
  v.only(at, 'address', s, ADDRESS_FIELDS)
  const family = v.address(at, 'address.address', s.address)
  const max = hostPrefix(family)
  const prefix = s.prefix === undefined ? max : v.integer(at, 'address.prefix', s.prefix, 0, max)
  return { s, family, key: { family: v.familyOf(family), prefix, address: s.address as string } }
}

function addressSpec(at: Where, value: unknown): WireAddr {
  const { s, family, key } = addressFields(at, value)
  let flags = 0
  if (s.noPrefixRoute !== undefined && v.boolean(at, 'address.noPrefixRoute', s.noPrefixRoute)) flags |= IFA_F_NOPREFIXROUTE
  if (s.nodad !== undefined && v.boolean(at, 'address.nodad', s.nodad)) {
    if (family !== 'inet6') v.fail(at, 'address.nodad', s.nodad, 'applies to IPv6 addresses only')
    flags |= IFA_F_NODAD
  }
  const scope = s.scope === undefined ? 'global' : v.oneOf(at, 'address.scope', s.scope, SPEC_SCOPES)
  const wire: WireAddr = { ...key, flags, scope: SCOPES[scope] }
  if (s.peer !== undefined) {
    v.address(at, 'address.peer', s.peer, family)
    wire.peer = s.peer as string
  }
  return wire
}

function addressKey(at: Where, value: unknown): WireAddr {
  return addressFields(at, value).key
}

function exist(at: Where, value: unknown): boolean {
  return value === undefined ? false : v.boolean(at, 'exist', value)
}

/** `{ exist }`, the options of deleteLink, addAddress and deleteAddress. */
function existOption(at: Where, options: unknown): boolean {
  const o = v.object(at, 'options', options)
  v.only(at, 'options', o, ['exist'])
  return exist(at, o.exist)
}

// ---- records ------------------------------------------------------------------------------

function bitNames<T extends string>(bits: number, table: [T, number][]): T[] {
  const out: T[] = []
  for (const [name, bit] of table) if (bits & bit) out.push(name)
  return out
}

function linkRecord(r: RawLink): LinkRecord {
  const rec: LinkRecord = {
    index: r.index,
    name: r.name,
    type: LINK_TYPES[r.type] ?? String(r.type),
    flags: bitNames(r.flags, LINK_FLAGS),
    up: (r.flags & 0x1) !== 0,
    operState: OPER_STATES[r.operState ?? 0] ?? 'unknown',
  }
  if (r.linkKind !== undefined) rec.kind = r.linkKind
  if (r.mtu !== undefined) rec.mtu = r.mtu
  if (r.mac && r.mac.length) rec.mac = [...r.mac].map((b) => b.toString(16).padStart(2, '0')).join(':')
  if (r.master !== undefined) rec.master = r.master
  return rec
}

function scopeName(n: number): AddressScope {
  return (Object.keys(SCOPES) as AddressScope[]).find((k) => SCOPES[k] === n) ?? 'nowhere'
}

function addressRecord(r: RawAddr, names: Map<number, string>): AddressRecord {
  const rec: AddressRecord = {
    family: v.familyName(r.family),
    address: r.address ?? '',
    prefix: r.prefix,
    index: r.index,
    link: names.get(r.index) ?? r.label ?? '',
    scope: scopeName(r.scope),
    flags: bitNames(r.flags, ADDRESS_FLAGS),
  }
  if (r.label !== undefined) rec.label = r.label
  if (r.peer !== undefined) rec.peer = r.peer
  if (r.validLifetime !== undefined) rec.validLifetime = r.validLifetime
  if (r.preferredLifetime !== undefined) rec.preferredLifetime = r.preferredLifetime
  return rec
}

// ---- "already" --------------------------------------------------------------------------

/** The kernel said the link or address is already there. */
export function alreadyExists(e: unknown): boolean {
  return e instanceof NetlinkError && e.errno === EEXIST
}

/** The kernel said the link, or the address, or the link an address was on, is already gone. */
export function alreadyGone(e: unknown): boolean {
  return e instanceof NetlinkError && (e.errno === ENODEV || e.errno === EADDRNOTAVAIL)
}

function noSuchLink(op: string, link: LinkRef, index?: number): NetlinkError {
  return new NetlinkError({
    errno: ENODEV,
    op,
    ...(index === undefined ? {} : { index }),
    message: `ENODEV: no link ${typeof link === 'number' ? `with index ${link}` : `named "${link}"`}`,
  })
}

// ---- the handle ---------------------------------------------------------------------------

/** listAddresses on a socket opened for the one read and closed after it (a caller that reads rarely). */
export async function listAddressesOnce(filter: { link?: LinkRef; family?: Family } = {}): Promise<AddressRecord[]> {
  const rtnl = await Rtnl.open()
  try {
    return await rtnl.listAddresses(filter)
  } finally {
    await rtnl.close()
  }
}

export class Rtnl {
  readonly #sock: NetlinkSocket

  private constructor(sock: NetlinkSocket) {
    this.#sock = sock
  }

  /** Opens a rtnetlink socket. Changing links and addresses needs CAP_NET_ADMIN; reading does not. */
  static async open(): Promise<Rtnl> {
    return new Rtnl(NetlinkSocket.open(NETLINK_ROUTE, 'route.open'))
  }

  async #run(wires: RouteWireOp[], op: string): Promise<NativeResult<RouteRawRecord>[]> {
    return this.#sock.execute('route', 0, wires, op)
  }

  // ---- links ----

  /**
   * Creates a dummy link (`ip link add NAME type dummy`), down unless `up`.
   * Resolves true when created. An existing link is EEXIST; with `exist: true`
   * an existing *dummy* of that name resolves false instead (and is set up when
   * `up` asks for it), while a link of another kind is still EEXIST.
   */
  async addDummy(name: string, options: { up?: boolean; mtu?: number; exist?: boolean } = {}): Promise<boolean> {
    return this.#sock.call('route.addDummy', async () => {
      const at = { op: 'route.addDummy' }
      v.linkName(at, 'name', name)
      const o = v.object(at, 'options', options)
      v.only(at, 'options', o, ['up', 'mtu', 'exist'])
      const wire: RouteWireOp & { cmd: 'newLink' } = { cmd: 'newLink', name, kind: 'dummy' }
      if (o.up !== undefined) wire.up = v.boolean(at, 'options.up', o.up)
      if (o.mtu !== undefined) wire.mtu = v.integer(at, 'options.mtu', o.mtu, 68, 65535)
      const quiet = exist(at, o.exist)
      const [r] = await this.#run([wire], at.op)
      if (r!.error === 0) return true
      if (r!.error !== EEXIST || !quiet) throw toError(r!, at.op)
      const link = await this.#getLink(name)
      if (!link) throw toError(r!, at.op) // gone again in between: report what the kernel said
      if (link.kind !== 'dummy')
        throw new NetlinkError({ errno: EEXIST, op: at.op, message: `EEXIST: "${name}" exists and is ${link.kind ? `a ${link.kind}` : 'not a virtual'} link, not a dummy` })
      const change: { up?: boolean; mtu?: number } = {}
      if (wire.up === true && !link.up) change.up = true
      if (wire.mtu !== undefined && link.mtu !== wire.mtu) change.mtu = wire.mtu
      if (Object.keys(change).length) await this.#setLink(name, change)
      return false
    })
  }

  /** Deletes a link. Resolves true when deleted; a missing link is ENODEV, or false with `exist: true`. */
  async deleteLink(link: LinkRef, options: { exist?: boolean } = {}): Promise<boolean> {
    return this.#sock.call('route.deleteLink', async () => {
      const at = { op: 'route.deleteLink' }
      const ref = linkRef(at, 'link', link)
      const quiet = existOption(at, options)
      const [r] = await this.#run([{ cmd: 'delLink', ...refWire(ref) }], at.op)
      if (r!.error === 0) return true
      if (r!.error === ENODEV && quiet) return false
      throw toError(r!, at.op)
    })
  }

  /** Sets a link up or down (`ip link set NAME up|down`) and/or its MTU. A missing link is ENODEV. */
  async setLink(link: LinkRef, change: { up?: boolean; mtu?: number }): Promise<void> {
    return this.#sock.call('route.setLink', () => this.#setLink(link, change))
  }

  async #setLink(link: LinkRef, change: { up?: boolean; mtu?: number }): Promise<void> {
    const at = { op: 'route.setLink' }
    const ref = linkRef(at, 'link', link)
    const c = v.object(at, 'change', change)
    v.only(at, 'change', c, ['up', 'mtu'])
    const wire: RouteWireOp & { cmd: 'setLink' } = { cmd: 'setLink', ...refWire(ref) }
    if (c.up !== undefined) wire.up = v.boolean(at, 'change.up', c.up)
    if (c.mtu !== undefined) wire.mtu = v.integer(at, 'change.mtu', c.mtu, 68, 65535)
    const [r] = await this.#run([wire], at.op)
    if (r!.error) throw toError(r!, at.op)
  }

  /** One link by name or index; undefined when there is none. */
  async getLink(link: LinkRef): Promise<LinkRecord | undefined> {
    return this.#sock.call('route.getLink', () => this.#getLink(link))
  }

  async #getLink(link: LinkRef): Promise<LinkRecord | undefined> {
    const at = { op: 'route.getLink' }
    const ref = linkRef(at, 'link', link)
    const [r] = await this.#run([{ cmd: 'getLink', ...refWire(ref) }], at.op)
    if (r!.error === ENODEV) return undefined
    if (r!.error) throw toError(r!, at.op)
    const raw = r!.records.find((x) => x.kind === 'link')
    return raw && linkRecord(raw)
  }

  /** Every link of the network namespace, by index. */
  async listLinks(): Promise<LinkRecord[]> {
    return this.#sock.call('route.listLinks', async () => {
      const op = 'route.listLinks'
      const [r] = await this.#run([{ cmd: 'listLinks' }], op)
      if (r!.error) throw toError(r!, op)
      return r!.records.filter((x) => x.kind === 'link').map(linkRecord)
    })
  }

  // ---- addresses ----

  /**
   * Adds an address to a link (`ip addr add`). Resolves true when added; an
   * address already there is EEXIST, or false with `exist: true`. A bare string
   * is a host address (/32, /128).
   */
  async addAddress(link: LinkRef, address: AddressSpec | string, options: { exist?: boolean } = {}): Promise<boolean> {
    return this.#one({ op: 'addAddress', link, address }, options)
  }

  /**
   * Deletes an address from a link (`ip addr del`). Resolves true when
   * deleted; a missing address is EADDRNOTAVAIL and a missing link ENODEV, or
   * false for either with `exist: true`.
   */
  async deleteAddress(link: LinkRef, address: AddressKey | string, options: { exist?: boolean } = {}): Promise<boolean> {
    return this.#one({ op: 'deleteAddress', link, address }, options)
  }

  /** addAddress or deleteAddress: a batch of one, its errors named by the method; true when done, false when unchanged. */
  async #one(op: RtnlOp, options: { exist?: boolean }): Promise<boolean> {
    const at = { op: `route.${op.op}` }
    return this.#sock.call(at.op, async () => {
      const quiet = existOption(at, options)
      const [o] = await this.#apply([{ ...op, exist: quiet }], at.op)
      if (!o!.ok) throw o!.error
      return !o!.unchanged
    })
  }

  /**
   * Binds a virtual IP to a link as kube-proxy does on kube-ipvs0: a host
   * address (/32, /128) with no prefix route (the address is made local and
   * nothing else), IPv6 without duplicate address detection. Resolves true when
   * bound now, false when it already was.
   */
  async bindAddress(link: LinkRef, address: string): Promise<boolean> {
    const family = v.address({ op: 'route.bindAddress' }, 'address', address)
    return this.addAddress(link, { address, noPrefixRoute: true, ...(family === 'inet6' ? { nodad: true } : {}) }, { exist: true })
  }

  /** Removes a virtual IP bound by bindAddress. Resolves true when removed, false when it was not there. */
  async unbindAddress(link: LinkRef, address: string): Promise<boolean> {
    v.address({ op: 'route.unbindAddress' }, 'address', address)
    return this.deleteAddress(link, address, { exist: true })
  }

  /**
   * Addresses, of every link or of one, of both families or of one. With no
   * filter: the node's addresses (for nodePortAddresses). Records name their
   * link; a `link` that does not exist is ENODEV.
   */
  async listAddresses(filter: { link?: LinkRef; family?: Family } = {}): Promise<AddressRecord[]> {
    return this.#sock.call('route.listAddresses', async () => {
      const at = { op: 'route.listAddresses' }
      const f = v.object(at, 'filter', filter)
      v.only(at, 'filter', f, ['link', 'family'])
      const ref = f.link === undefined ? undefined : linkRef(at, 'filter.link', f.link)
      const family = f.family === undefined ? undefined : v.oneOf(at, 'filter.family', f.family, ['inet', 'inet6'] as const)
      // Links and addresses in one call: two dumps, one after the other, no
      // round trip through JavaScript between them.
      const [links, addrs] = await this.#run([{ cmd: 'listLinks' }, { cmd: 'listAddrs', family: family ? v.familyOf(family) : 0 }], at.op)
      if (links!.error) throw toError(links!, at.op)
      if (addrs!.error) throw toError(addrs!, at.op)
      const names = new Map<number, string>()
      for (const l of links!.records) if (l.kind === 'link') names.set(l.index, (l as RawLink).name)
      let index: number | undefined
      if (ref !== undefined) {
        index = typeof ref === 'number' ? ref : [...names].find(([, n]) => n === ref)?.[0]
        if (index === undefined || !names.has(index)) throw noSuchLink(at.op, ref)
      }
      const out: AddressRecord[] = []
      for (const a of addrs!.records) {
        if (a.kind !== 'address') continue
        const raw = a as RawAddr
        if (index !== undefined && raw.index !== index) continue
        if (family && raw.family !== v.familyOf(family)) continue
        out.push(addressRecord(raw, names))
      }
      return out
    })
  }

  // ---- batches ----

  /**
   * Many address operations in one burst (the virtual IPs of a sync). Every
   * operation is validated first (a bad one throws ValidationError with its
   * index and nothing is sent); links named by name are looked up once each;
   * then each operation gets its own outcome, in order.
   */
  async batch(ops: RtnlOp[]): Promise<RtnlOutcome[]> {
    return this.#sock.call('route.batch', async () => {
      return this.#apply(ops, 'route.batch')
    })
  }

  /** batch(), or one operation of the named method (errors name that method, without a batch index). */
  async #apply(ops: RtnlOp[], opName: string): Promise<RtnlOutcome[]> {
    if (!Array.isArray(ops)) v.fail({ op: opName }, 'ops', ops, 'must be an array')
    interface Planned {
      op: string
      ref: LinkRef
      wire: WireAddr & { cmd: 'newAddr' | 'delAddr' }
      exist: boolean
    }
    const planned: Planned[] = new Array(ops.length)
    const names = new Set<string>()
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i] as unknown
      const at: Where = { op: opName === 'route.batch' ? `route.${(o as { op?: unknown })?.op ?? 'batch'}` : opName, ...(opName === 'route.batch' ? { index: i } : {}) }
      const op = v.object(at, 'op', o)
      v.only(at, 'op', op, OP_FIELDS)
      const ref = linkRef(at, 'link', op.link)
      let wire: WireAddr & { cmd: 'newAddr' | 'delAddr' }
      if (op.op === 'addAddress') wire = { cmd: 'newAddr', ...addressSpec(at, op.address) }
      else if (op.op === 'deleteAddress') wire = { cmd: 'delAddr', ...addressKey(at, op.address) }
      else v.fail(at, 'op', op.op, 'must be addAddress or deleteAddress')
      planned[i] = { op: at.op, ref, wire, exist: exist(at, op.exist) }
      if (typeof ref === 'string') names.add(ref)
      if (i % SLICE === SLICE - 1) await yieldToLoop()
    }
    if (!planned.length) return []

    // Names to indices, one request per distinct name, all in one call.
    const indices = new Map<string, number | undefined>()
    if (names.size) {
      const list = [...names]
      const results = await this.#run(list.map((name) => ({ cmd: 'getLink', name })), opName)
      results.forEach((r, i) => {
        if (r.error && r.error !== ENODEV) throw toError(r, opName)
        indices.set(list[i]!, r.records.find((x) => x.kind === 'link')?.index)
      })
    }

    const out: RtnlOutcome[] = new Array(planned.length)
    const send: RouteWireOp[] = []
    const slots: number[] = []
    planned.forEach((p, i) => {
      const index = typeof p.ref === 'number' ? p.ref : indices.get(p.ref)
      if (index === undefined) {
        out[i] = p.exist && p.wire.cmd === 'delAddr' ? UNCHANGED : { ok: false, error: noSuchLink(p.op, p.ref, opName === 'route.batch' ? i : undefined) }
        return
      }
      send.push({ ...p.wire, index })
      slots.push(i)
    })
    const results = send.length ? await this.#run(send, opName) : []
    results.forEach((r, k) => {
      const i = slots[k]!
      const p = planned[i]!
      if (r.error === 0) out[i] = DONE
      else if (p.exist && (p.wire.cmd === 'newAddr' ? r.error === EEXIST : r.error === EADDRNOTAVAIL || r.error === ENODEV)) out[i] = UNCHANGED
      else out[i] = { ok: false, error: toError(r, p.op, opName === 'route.batch' ? i : undefined) }
    })
    return out
  }

  /** Every call started before it finishes first (all of its requests); later calls reject with EBADF. */
  async close(): Promise<void> {
    await this.#sock.close()
  }
}

const DONE: RtnlOutcome = Object.freeze({ ok: true as const })
const UNCHANGED: RtnlOutcome = Object.freeze({ ok: true as const, unchanged: true as const })

function refWire(ref: LinkRef): WireLinkRef {
  return typeof ref === 'number' ? { index: ref } : { name: ref }
}
