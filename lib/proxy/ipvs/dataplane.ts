// The kernel as the IPVS proxier sees it: the narrow parts of tsproxy's own
// APIs it calls, so proxier logic runs against an in-memory fake on the host
// and against the real kernel in the box with the same code.
import { Conntrack } from '../../conntrack.js'
import { IpSet } from '../../ipset.js'
import { Iptables } from '../../iptables.js'
import { Ipvs } from '../../ipvs.js'
import { Rtnl } from '../../route.js'
import { ensureSysctl } from '../../sysctl.js'
import type { Family } from '../../validate.js'
import { tableWriter, type TableWriter } from '../chains.js'

export interface IpvsDataplane {
  readonly ipvs: Pick<Ipvs, 'listServices' | 'listDestinations' | 'batch' | 'setTimeouts'>
  readonly ipset: Pick<IpSet, 'create' | 'header' | 'batch' | 'syncMembers' | 'replaceMembers' | 'destroy' | 'listNames'>
  readonly rtnl: Pick<Rtnl, 'addDummy' | 'deleteLink' | 'getLink' | 'listAddresses' | 'batch'>
  readonly tables: TableWriter
  readonly conntrack: Pick<Conntrack, 'delete'>
  /** Sets a sysctl when it differs; resolves whether it was changed. */
  ensureSysctl(key: string, value: number): Promise<boolean>
  close(): Promise<void>
}

/** The real kernel: one socket per subsystem, libiptc for the tables. */
export async function openDataplane(family: Family = 'inet'): Promise<IpvsDataplane> {
  const iptables = await Iptables.open({ family })
  const [ipvs, ipset, rtnl, conntrack] = await Promise.all([Ipvs.open(), IpSet.open(), Rtnl.open(), Conntrack.open()])
  return {
    ipvs,
    ipset,
    rtnl,
    tables: tableWriter(iptables),
    conntrack,
    ensureSysctl: (key, value) => ensureSysctl(key, value),
    async close() {
      await Promise.all([ipvs.close(), ipset.close(), rtnl.close(), conntrack.close()])
    },
  }
}
