// nodePortAddresses as kube-proxy reads it per family (lib/proxy/nodeports.ts),
// shared by the IPVS and iptables modes.
import t from 'tap'
import { nodeAddresses, nodePortSelection, selectNodePortAddresses } from '../../dist/proxy/nodeports.js'
import type { AddressRecord } from '../../dist/route.js'

const rec = (link: string, address: string, scope: AddressRecord['scope'] = 'global'): AddressRecord =>
  ({ family: address.includes(':') ? 'inet6' : 'inet', address, prefix: 24, index: 1, link, scope, flags: [] }) as AddressRecord

t.test('the selection of one family', async (t) => {
  t.same(nodePortSelection([], 'inet'), { all: true, primary: false, cidrs: [], loopback: true }, 'empty: all, 127.0.0.1 in')
  t.same(nodePortSelection([], 'inet6'), { all: true, primary: false, cidrs: [], loopback: false }, 'never loopback for IPv6')
  t.same(nodePortSelection(['10.0.0.0/8', 'fd00::/64'], 'inet'), { all: false, primary: false, cidrs: ['10.0.0.0/8'], loopback: false })
  t.same(nodePortSelection(['10.0.0.0/8'], 'inet6').all, true, 'no CIDR of this family: all (kube-proxy)')
  t.same(nodePortSelection(['10.0.0.0/8', '0.0.0.0/0'], 'inet').all, true, 'a zero CIDR: all')
  t.same(nodePortSelection(['127.0.0.0/8'], 'inet').loopback, true)
  t.same(nodePortSelection(['127.0.0.1/32'], 'inet').loopback, false, 'kube-proxy asks for 127.0.0.0 in the CIDR')
  t.same(nodePortSelection(['0.0.0.0/1'], 'inet').loopback, true)
  t.same(nodePortSelection(['primary'], 'inet'), { all: false, primary: true, cidrs: [], loopback: false })
})

t.test('node addresses and the selected ones', async (t) => {
  const recs = [rec('lo', '127.0.0.1', 'host'), rec('eth0', '192.168.1.10'), rec('kube-ipvs0', '10.96.0.10'), rec('eth1', '10.1.0.5'), rec('eth0', 'fe80::1', 'link'), rec('eth0', 'fd00::10'), rec('eth2', '192.168.1.10')]
  t.same(nodeAddresses(recs, 'inet', ['kube-ipvs0']), ['192.168.1.10', '10.1.0.5'], 'not lo, not excluded links, once each')
  t.same(nodeAddresses(recs, 'inet6'), ['fd00::10'], 'no link-local')
  const all = ['127.0.0.1', '192.168.1.10', '10.1.0.5', '192.168.2.1']
  t.same(selectNodePortAddresses(nodePortSelection(['192.168.0.0/16', '127.0.0.0/8', '10.1.0.0/16'], 'inet'), all, undefined), ['192.168.1.10', '192.168.2.1', '127.0.0.1', '10.1.0.5'], 'CIDR by CIDR')
  t.same(selectNodePortAddresses(nodePortSelection(['172.16.0.0/12'], 'inet'), all, undefined), [], 'none in the CIDRs')
  t.same(selectNodePortAddresses(nodePortSelection([], 'inet'), all, undefined), all)
  t.same(selectNodePortAddresses(nodePortSelection(['primary'], 'inet'), all, '10.1.0.5'), ['10.1.0.5'])
  t.same(selectNodePortAddresses(nodePortSelection(['primary'], 'inet'), all, undefined), [])
})
