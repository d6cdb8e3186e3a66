// What the fake-CNI tests in the box (cni*.ktest.ts) share: the IPVS / ipset /
// iptables handles with one clean-up that the last test calls and the
// teardown calls again (a failure on the way still leaves the box clean).
import type { Test } from 'tap'
import { Iptables, IpSet, Ipvs, setSysctl } from '../../../dist/index.js'
import { sh, type FakeNode } from '../../support/cni.mjs'

export interface CniBoxOptions {
  /** Whose iptables (iptables or ip6tables) the hairpin rule goes in. */
  family: 'inet' | 'inet6'
  /** The hairpin set. */
  loop: string
  /** net.ipv4.vs.conntrack as it was, to put back. */
  vsConntrackBefore: number
}

export async function cniBox(t: Test, node: FakeNode, o: CniBoxOptions) {
  const ipvs = await Ipvs.open()
  const ipset = await IpSet.open()
  const iptables = await Iptables.open({ family: o.family })
  let cleaned = false
  async function cleanUp(): Promise<void> {
    if (cleaned) return
    cleaned = true
    await ipvs.flush()
    const tx = iptables.begin('nat')
    if ((await tx.listRules('POSTROUTING')).length) tx.flushChain('POSTROUTING')
    await tx.commit()
    await ipset.destroy(o.loop, { exist: true })
    await setSysctl('net.ipv4.vs.conntrack', o.vsConntrackBefore)
    await node.destroy()
    sh('if ip link show dev kube-ipvs0 >/dev/null 2>&1; then ip link del kube-ipvs0; fi')
  }
  t.teardown(async () => {
    try {
      await cleanUp()
    } finally {
      await ipvs.close()
      await ipset.close()
    }
  })
  return { ipvs, ipset, iptables, cleanUp }
}
