// The IpSet calls the close() tests (unit/netlink-close over a fake socket,
// kernel/ipset.host against the kernel) start before closing a handle.
import type { IpSet, IpSetOp } from '../../dist/index.js'

/** `size` adds of 10.8.x.y to `set`: a batch sent in more than one slice. */
export function manyAdds(set: string, size: number): IpSetOp[] {
  return Array.from({ length: size }, (_, i) => ({ op: 'add' as const, set, entry: { ip: `10.8.${i >> 8}.${i & 0xff}` } }))
}

/**
 * One call of each kind that waits before its first request (for a set's
 * header, or between the slices of a batch), all started at once: close()
 * must let each finish. add, del, test, syncMembers and list go to `set`;
 * index 3 is `batch`; `create` names a new hash:ip set.
 */
export function callsInFlight(h: IpSet, o: { set: string; add: string; del: string; batch: IpSetOp[]; create: string; sync: string[] }): Promise<unknown>[] {
  return [
    h.add(o.set, { ip: o.add }),
    h.del(o.set, { ip: o.del }),
    h.test(o.set, { ip: o.add }),
    h.batch(o.batch),
    h.create({ name: o.create, type: 'hash:ip' }),
    h.syncMembers(o.set, o.sync.map((ip) => ({ ip }))),
    h.list(o.set),
  ]
}
