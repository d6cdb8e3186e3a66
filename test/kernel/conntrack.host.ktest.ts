// Conntrack against real kernels (the UML box's 6.1, and the host's in a fresh
// network namespace), with conntrack-tools as the oracle both ways: entries
// the tool inserts are listed and deleted through our API, and what we list and
// delete is what `conntrack -L` shows. Then the case kube-proxy deletes entries
// for: real UDP traffic through a DNAT to an endpoint (in a peer network
// namespace over veth where the kernel has veth, else on lo), the endpoint
// changes, the stale entry keeps the client on the old one until we delete it.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { Conntrack, NetlinkError, Rtnl, ValidationError, type ConntrackFilter } from '../../dist/index.js'
import { conntrack, ctCount, ctRows, ourRows, peerNetns, udpClient, udpServer, type Peer } from './support/conntrack.js'
import { canMake, ip, ipTry } from './support/iproute.js'
import { run } from './support/shell.js'

const ct = await Conntrack.open()
const rtnl = await Rtnl.open()
t.teardown(async () => {
  await ct.close()
  await rtnl.close()
})


t.beforeEach(() => {
  conntrack('-F')
  conntrack('-F', '-f', 'ipv6')
})

/** Inserts an entry with the conntrack tool (the other writer). */
function insert(proto: string, src: string, dst: string, sport: number, dport: number, ...more: string[]): void {
  conntrack('-I', '-p', proto, '-s', src, '-d', dst, '--sport', String(sport), '--dport', String(dport), '-t', '300', ...more)
}

/** The table every test of the first part starts from: VIPs, NodePorts, NATed entries, both families. */
function fill(): void {
  insert('udp', '10.0.0.1', '10.96.0.10', 40000, 53)
  insert('udp', '10.0.0.2', '10.96.0.10', 40001, 53)
  insert('udp', '10.0.0.1', '10.96.0.10', 40002, 5353)
  insert('udp', '10.0.0.1', '10.96.0.11', 40003, 53)
  insert('tcp', '10.0.0.1', '10.96.0.10', 40004, 53, '--state', 'ESTABLISHED')
  insert('udp', '10.0.0.3', '192.168.1.1', 40005, 30053, '-r', '10.244.1.5', '-q', '10.0.0.3', '--reply-port-src', '53', '--reply-port-dst', '40005')
  insert('udp', '10.0.0.4', '10.96.0.12', 40006, 53, '-r', '10.244.1.5', '-q', '10.0.0.4', '--reply-port-src', '53', '--reply-port-dst', '40006')
  insert('udp', 'fd00::1', 'fd00::10', 40000, 53)
  insert('udp', 'fd00::2', 'fd00::10', 40001, 5353)
  insert('udp', 'fd00::1', 'fd00::11', 40002, 53)
  insert('udp', 'fd00::3', 'fd00::99', 40003, 30053)
  conntrack('-I', '-p', 'icmp', '-s', '10.0.0.1', '-d', '10.0.0.2', '--icmp-type', '8', '--icmp-code', '0', '--icmp-id', '77', '-t', '30')
}

async function rejects(t: Test, p: Promise<unknown>, cls: typeof NetlinkError | typeof ValidationError, fields: object): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof cls, `a ${cls.name} (${(err as Error)?.message})`)
  t.match(err, fields)
}

// ---- the tool writes, we read; we delete, the tool reads ------------------------------------

t.test('count equals conntrack -C; list equals conntrack -L, entry for entry, both families', async (t) => {
  t.equal(await ct.count(), 0, 'a fresh table')
  fill()
  t.equal(await ct.count(), ctCount(), 'count = conntrack -C')
  t.equal(await ct.count(), 12)
  const all = await ct.list()
  t.strictSame(ourRows(all), ctRows(), 'every tuple and id as conntrack -L shows them')
  t.match(all.find((e) => e.protocol === 'tcp'), { state: 'ESTABLISHED', family: 'inet' })
  t.match(all.find((e) => e.protocol === 'icmp')?.original, { icmpType: 8, icmpCode: 0, icmpId: 77 })
  t.ok(all.every((e) => e.status.includes('confirmed') && e.timeout! > 0), 'confirmed, with time left')
})

t.test('list with a filter equals conntrack -L with the same filter', async (t) => {
  fill()
  const cases: [ConntrackFilter, string[]][] = [
    [{ protocol: 'udp', destination: '10.96.0.10' }, ['-f', 'ipv4', '-p', 'udp', '-d', '10.96.0.10']],
    [{ protocol: 'udp', destination: '10.96.0.10', port: 53 }, ['-f', 'ipv4', '-p', 'udp', '-d', '10.96.0.10', '--dport', '53']],
    [{ destination: '10.96.0.10' }, ['-f', 'ipv4', '-d', '10.96.0.10']],
    [{ protocol: 'udp', destination: 'fd00::10' }, ['-f', 'ipv6', '-p', 'udp', '-d', 'fd00::10']],
    [{ protocol: 'udp', destination: 'fd00::10', port: 53 }, ['-f', 'ipv6', '-p', 'udp', '-d', 'fd00::10', '--dport', '53']],
    [{ family: 'inet', protocol: 'udp', port: 30053 }, ['-f', 'ipv4', '-p', 'udp', '--dport', '30053']],
    [{ protocol: 'udp', replySource: '10.244.1.5' }, ['-f', 'ipv4', '-p', 'udp', '-r', '10.244.1.5']],
    [{ protocol: 'udp', source: 'fd00::1' }, ['-f', 'ipv6', '-p', 'udp', '-s', 'fd00::1']],
  ]
  for (const [filter, args] of cases) {
    const rows = ctRows(...args)
    t.ok(rows.length > 0, `${args.join(' ')}: the tool finds some`)
    t.strictSame(ourRows(await ct.list(filter)), rows, `${JSON.stringify(filter)} = conntrack -L ${args.join(' ')}`)
  }
  t.strictSame(ourRows(await ct.list({ protocol: 'udp', port: 53 })), [...ctRows('-f', 'ipv4', '-p', 'udp', '--dport', '53'), ...ctRows('-f', 'ipv6', '-p', 'udp', '--dport', '53')].sort(), 'no family: both')
})

t.test('delete by protocol and VIP: exactly what conntrack -L listed goes, the rest stays', async (t) => {
  fill()
  const doomed = ctRows('-f', 'ipv4', '-p', 'udp', '-d', '10.96.0.10')
  const before = ctRows()
  t.equal(doomed.length, 2 + 1, 'three UDP entries to 10.96.0.10 (two on port 53, one on 5353)')
  t.equal(await ct.delete({ protocol: 'udp', destination: '10.96.0.10' }), doomed.length, 'resolves how many it deleted')
  t.strictSame(ctRows(), before.filter((r) => !doomed.includes(r)), 'conntrack -L: those gone, the TCP one to the same VIP and all others kept')
  t.equal(await ct.delete({ protocol: 'udp', destination: '10.96.0.10' }), 0, 'again: 0')
})

t.test('delete by VIP and port, IPv6', async (t) => {
  fill()
  const doomed = ctRows('-f', 'ipv6', '-p', 'udp', '-d', 'fd00::10', '--dport', '53')
  const before = ctRows()
  t.equal(await ct.delete({ protocol: 'udp', destination: 'fd00:0::10', port: 53 }), 1)
  t.strictSame(ctRows(), before.filter((r) => !doomed.includes(r)), 'only fd00::10 port 53 went; port 5353 stayed')
})

t.test('delete by port (a NodePort: any destination, both families) and by endpoint (reply source)', async (t) => {
  fill()
  let before = ctRows()
  const nodePort = [...ctRows('-f', 'ipv4', '-p', 'udp', '--dport', '30053'), ...ctRows('-f', 'ipv6', '-p', 'udp', '--dport', '30053')]
  t.equal(nodePort.length, 2)
  t.equal(await ct.delete({ protocol: 'udp', port: 30053 }), 2, 'one IPv4, one IPv6')
  t.strictSame(ctRows(), before.filter((r) => !nodePort.includes(r)))
  before = ctRows()
  const endpoint = ctRows('-f', 'ipv4', '-p', 'udp', '-r', '10.244.1.5')
  t.equal(await ct.delete({ protocol: 'udp', replySource: '10.244.1.5' }), endpoint.length)
  t.strictSame(ctRows(), before.filter((r) => !endpoint.includes(r)), 'the entries NATed to the endpoint went')
})

t.test('deleteEntries: what we listed, deleted; an entry deleted behind our back is not counted', async (t) => {
  fill()
  const entries = await ct.list({ protocol: 'icmp' })
  t.equal(entries.length, 1)
  t.equal(await ct.deleteEntries(entries), 1)
  t.strictSame(ctRows('-f', 'ipv4', '-p', 'icmp'), [], 'conntrack -L: gone')
  const udp = await ct.list({ protocol: 'udp', destination: '10.96.0.11' })
  conntrack('-D', '-p', 'udp', '-d', '10.96.0.11')
  t.equal(await ct.deleteEntries(udp), 0, 'already deleted by the tool: ENOENT, not counted, not an error')
  t.strictSame(ctRows('-f', 'ipv4', '-p', 'udp', '-d', '10.96.0.11'), [])
})

t.test('refusals: no table-wide deletes, nothing sent', async (t) => {
  fill()
  await rejects(t, ct.delete({ protocol: 'udp' }), ValidationError, { field: 'filter.destination', op: 'conntrack.delete' })
  await rejects(t, ct.delete({ destination: '10.96.0.10' } as ConntrackFilter), ValidationError, { field: 'filter.protocol' })
  t.equal(ctCount(), 12, 'nothing deleted')
})

// ---- real traffic ------------------------------------------------------------------------------

const HAS_VETH = canMake('veth')

interface Bed {
  /** Where the endpoints' servers run. */
  start: (cmd: string, args: string[]) => ChildProcess
  close: () => void
}

/** Endpoints 10.77.0.2 / fd77::2 with UDP servers on 5353 ("one") and 5354 ("two"); VIPs 10.96.0.53 / fd96::53. */
async function testBed(): Promise<Bed> {
  const servers: ChildProcess[] = []
  let peer: Peer | undefined
  let start: Bed['start']
  if (HAS_VETH) {
    // The endpoints in a peer network namespace, over veth (as a pod is).
    peer = await peerNetns()
    ip('link', 'add', 'veth-c', 'type', 'veth', 'peer', 'name', 'veth-s', 'netns', String(peer.pid))
    ip('addr', 'add', '10.77.0.1/24', 'dev', 'veth-c')
    ip('addr', 'add', 'fd77::1/64', 'dev', 'veth-c', 'nodad')
    ip('link', 'set', 'veth-c', 'up')
    peer.run('ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'veth-s')
    peer.run('ip', 'addr', 'add', 'fd77::2/64', 'dev', 'veth-s', 'nodad')
    peer.run('ip', 'link', 'set', 'veth-s', 'up')
    peer.run('ip', 'link', 'set', 'lo', 'up')
    // The VIPs lead out of the veth; the DNAT below rewrites them to the endpoint.
    ip('route', 'add', '10.96.0.0/24', 'dev', 'veth-c')
    ip('-6', 'route', 'add', 'fd96::/64', 'dev', 'veth-c')
    start = peer.spawn
  } else {
    // No veth in this kernel: endpoints and VIPs on lo, bound through our own API.
    for (const a of ['10.77.0.2', 'fd77::2', '10.96.0.53', 'fd96::53']) await rtnl.bindAddress('lo', a)
    start = (cmd, args) => spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  }
  for (const [addr, port, tag] of [['10.77.0.2', 5353, 'one'], ['10.77.0.2', 5354, 'two'], ['fd77::2', 5353, 'one'], ['fd77::2', 5354, 'two']] as const)
    servers.push(await udpServer(start, addr, port, tag))
  return {
    start,
    close: () => {
      for (const s of servers) s.kill('SIGKILL')
      if (peer) {
        peer.close()
        ipTry('link', 'del', 'veth-c')
      } else {
        for (const a of ['10.77.0.2', 'fd77::2', '10.96.0.53', 'fd96::53']) ipTry('addr', 'del', a.includes(':') ? `${a}/128` : `${a}/32`, 'dev', 'lo')
      }
    },
  }
}

/** The service: VIP:53/udp DNATed to endpoint:port (kube-proxy's iptables mode does this; IPVS mode has its own NAT, the same entries). */
function dnat(family: 'inet' | 'inet6', port: number, replace: boolean): void {
  const tool = family === 'inet' ? 'iptables-legacy' : 'ip6tables-legacy'
  const [vip, ep] = family === 'inet' ? ['10.96.0.53', `10.77.0.2:${port}`] : ['fd96::53', `[fd77::2]:${port}`]
  run(tool, '-t', 'nat', ...(replace ? ['-R', 'OUTPUT', '1'] : ['-A', 'OUTPUT']), '-d', vip, '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', ep)
}

async function staleEntry(t: Test, family: 'inet' | 'inet6', filter: ConntrackFilter): Promise<void> {
  const bed = await testBed()
  const client = await udpClient(family, family === 'inet' ? 41000 : 41001)
  t.teardown(() => {
    client.close()
    bed.close()
    run(family === 'inet' ? 'iptables-legacy' : 'ip6tables-legacy', '-t', 'nat', '-F', 'OUTPUT')
  })
  const vip = family === 'inet' ? '10.96.0.53' : 'fd96::53'
  const ep = family === 'inet' ? '10.77.0.2' : 'fd77::2'
  dnat(family, 5353, false)
  t.equal(await client.ask(vip, 53), 'one', 'the service answers from endpoint one')
  const cli = ctRows('-f', family === 'inet' ? 'ipv4' : 'ipv6', '-p', 'udp', '-d', vip)
  t.equal(cli.length, 1, 'conntrack -L: the kernel made one entry for the flow')
  const ours = await ct.list({ protocol: 'udp', destination: vip })
  t.strictSame(ourRows(ours), cli, 'and we list the same one')
  t.match(ours[0], { original: { destination: vip, destinationPort: 53, sourcePort: family === 'inet' ? 41000 : 41001 }, reply: { source: ep, sourcePort: 5353 } }, 'original to the VIP, reply from the endpoint')
  t.ok(ours[0]!.status.includes('seen-reply'), 'answered')

  dnat(family, 5354, true) // the endpoint changes: the service now leads to "two"
  t.equal(await client.ask(vip, 53), 'one', 'the stale entry still sends the client to the old endpoint')
  t.equal(await ct.delete(filter), 1, 'we delete it')
  t.strictSame(ctRows('-f', family === 'inet' ? 'ipv4' : 'ipv6', '-p', 'udp', '-d', vip), [], 'conntrack -L: gone')
  t.equal(await client.ask(vip, 53), 'two', 'the next datagram goes to the new endpoint')
  t.match(await ct.list({ protocol: 'udp', destination: vip }), [{ reply: { source: ep, sourcePort: 5354 } }], 'through a new entry')
}

t.test(`real UDP traffic, IPv4 (${HAS_VETH ? 'a peer netns over veth' : 'on lo'}): a stale entry, deleted by VIP`, async (t) => {
  await staleEntry(t, 'inet', { protocol: 'udp', destination: '10.96.0.53' })
})

t.test(`real UDP traffic, IPv6 (${HAS_VETH ? 'a peer netns over veth' : 'on lo'}): a stale entry, deleted by VIP and port`, async (t) => {
  await staleEntry(t, 'inet6', { protocol: 'udp', destination: 'fd96::53', port: 53 })
})

t.test('real UDP traffic: deleted by the endpoint that went away (reply source)', async (t) => {
  await staleEntry(t, 'inet', { protocol: 'udp', replySource: '10.77.0.2' })
})
