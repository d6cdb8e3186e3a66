// lib/ipset/wire.ts wireSize() repeats native/ipset/ipset.cc putEntry(): the
// bytes of one entry's DATA nest in an IPSET_ATTR_ADT message, which decide how
// many entries a message carries (ADT_BUDGET). Here each size is measured
// against the encoder itself: a message of the entry twice is one entry's
// bytes longer than a message of it once.
import t from 'tap'
import { ipsetEntryWire } from '../../dist/index.js'
import type { IpSetEntry, SetInfo, WireEntry } from '../../dist/index.js'
import { native } from '../../dist/native.js'
import { wireSize } from '../../dist/ipset/wire.js'

const info = (type: string, family?: 'inet' | 'inet6'): SetInfo => ({
  type,
  ...(family ? { family } : {}),
  timeout: true,
  counters: true,
  comment: true,
  skbinfo: true,
})

/** The bytes native/ipset encodes for an ADT message holding `w` `times` times. */
function encoded(w: WireEntry, times: number): number {
  const entries: Record<string, unknown> = { count: times, af: w.af }
  for (const [k, x] of Object.entries(w)) if (k !== 'af') entries[k] = Array<unknown>(times).fill(x)
  return native.encode('ipset', 2, [{ cmd: 'add', name: 'S', protocol: 7, entries }], 1).length
}

const cases: [string, SetInfo, IpSetEntry][] = [
  ['hash:ip', info('hash:ip', 'inet'), { ip: '10.0.0.1' }],
  ['hash:ip inet6', info('hash:ip', 'inet6'), { ip: 'fd00::1' }],
  ['hash:ip,port', info('hash:ip,port', 'inet'), { ip: '10.0.0.1', protocol: 'udp', port: 53 }],
  ['hash:ip,port,ip', info('hash:ip,port,ip', 'inet'), { ip: '10.0.0.1', port: 8080, ip2: '10.0.0.1' }],
  ['hash:ip,port,ip inet6', info('hash:ip,port,ip', 'inet6'), { ip: 'fd00::1', port: 8080, ip2: 'fd00::2' }],
  ['hash:ip,port,net', info('hash:ip,port,net', 'inet'), { ip: '10.0.0.1', port: 1, net: '10.1.0.0/16' }],
  ['hash:net', info('hash:net', 'inet'), { net: '10.1.0.0/16' }],
  ['hash:net, a host', info('hash:net', 'inet'), { net: '10.1.0.1' }],
  ['hash:net,port inet6', info('hash:net,port', 'inet6'), { net: 'fd00::/64', protocol: 'sctp', port: 9 }],
  ['bitmap:port', info('bitmap:port'), { port: 80 }],
  ...['a', 'ab', 'abc', 'abcd', 'x'.repeat(31)].map((set): [string, SetInfo, IpSetEntry] => [`list:set, a name of ${set.length}`, info('list:set'), { set }]),
  ['timeout', info('hash:ip', 'inet'), { ip: '10.0.0.1', timeout: 60 }],
  ['counters', info('hash:ip', 'inet'), { ip: '10.0.0.1', packets: 1, bytes: 2 }],
  ['packets only', info('hash:ip', 'inet'), { ip: '10.0.0.1', packets: 1 }],
  ...['', 'c', 'co', 'com', 'comm', 'é', 'x'.repeat(255)].map((comment): [string, SetInfo, IpSetEntry] => [`a comment of ${Buffer.byteLength(comment)} bytes`, info('hash:ip', 'inet'), { ip: '10.0.0.1', comment }]),
  ['skbmark', info('hash:ip', 'inet'), { ip: '10.0.0.1', skbmark: 5 }],
  ['skbmark with its mask (one attribute)', info('hash:ip', 'inet'), { ip: '10.0.0.1', skbmark: 5, skbmarkmask: 0xff }],
  ['skbprio, skbqueue', info('hash:ip', 'inet'), { ip: '10.0.0.1', skbprio: 0x10002, skbqueue: 3 }],
  ['nomatch (CADT_FLAGS)', info('hash:net', 'inet'), { net: '10.0.0.0/8', nomatch: true }],
  ['every extension', info('hash:ip,port,net', 'inet6'), { ip: 'fd00::1', protocol: 'icmpv6', port: 0x8000, net: 'fd00::/48', timeout: 1, packets: 1, bytes: 1, comment: 'hello', skbmark: 1, skbmarkmask: 1, skbprio: 1, skbqueue: 1, nomatch: true }],
]

t.test('wireSize() is the bytes native/ipset encodes per entry', async (t) => {
  for (const [what, set, entry] of cases) {
    const w = ipsetEntryWire({ op: 'test' }, set, entry, 'add')
    t.equal(wireSize(w), encoded(w, 2) - encoded(w, 1), what)
  }
})

t.test('an ADT message is its head plus the sizes of its entries', async (t) => {
  const w = ipsetEntryWire({ op: 'test' }, info('hash:ip,port,ip', 'inet'), { ip: '10.0.0.1', port: 8080, ip2: '10.0.0.1', comment: 'abc' }, 'add')
  const head = encoded(w, 1) - wireSize(w)
  t.equal(encoded(w, 100), head + 100 * wireSize(w), '100 entries')
})
