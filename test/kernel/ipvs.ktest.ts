// IPVS against a real kernel (the UML box), with ipvsadm as the oracle both
// ways: what we write reads back exactly in `ipvsadm -Sn`, and what ipvsadm
// writes reads back through our listings.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { connect } from 'node:net'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { Ipvs, NetlinkError, SCHEDULERS, keyOf, type ServiceKey, type ServiceRecord } from '../../dist/index.js'
import { rejects } from './support/assert.js'
import { ipvsadm, lines, run, saved, table, toSaveLines } from './support/ipvsadm.js'

const distIndex = fileURLToPath(new URL('../../dist/index.js', import.meta.url))
const ipvs = await Ipvs.open()
t.teardown(() => ipvs.close())
t.beforeEach(async () => {
  await ipvs.flush()
})

const web: ServiceKey = { protocol: 'tcp', address: '10.96.0.10', port: 80 }

async function listAll(): Promise<ServiceRecord[]> {
  return ipvs.listServices({ destinations: true })
}

/** Our full listing rendered as ipvsadm would save it equals what ipvsadm saves. */
async function sameAsIpvsadm(t: Test, what: string): Promise<void> {
  t.same(toSaveLines(await listAll()), saved(), what)
}

// ---- info -----------------------------------------------------------------------------------

t.test('open finds IPVS; getInfo agrees with ipvsadm', async (t) => {
  const info = await ipvs.getInfo()
  t.ok(ipvs.familyId >= 16, 'a generic netlink family id')
  const header = ipvsadm('-Ln').split('\n')[0]
  t.equal(header, `IP Virtual Server version ${info.version} (size=${info.connTableSize})`)
})

// ---- services -------------------------------------------------------------------------------

t.test('a tcp service reads back exactly in ipvsadm -Sn', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  t.same(saved(), ['-A -t 10.96.0.10:80 -s rr'])
  await sameAsIpvsadm(t, 'and our listing renders the same')
})

t.test('every scheduler the kernel ships', async (t) => {
  for (const [i, scheduler] of SCHEDULERS.entries()) {
    await ipvs.addService({ protocol: 'tcp', address: `10.96.1.${i + 1}`, port: 80, scheduler })
  }
  t.same(saved(), lines(SCHEDULERS.map((s, i) => `-A -t 10.96.1.${i + 1}:80 -s ${s}`).join('\n')))
  t.same((await ipvs.listServices()).map((s) => s.scheduler).sort(), [...SCHEDULERS].sort())
})

t.test('udp, sctp and IPv6 services', async (t) => {
  await ipvs.addService({ protocol: 'udp', address: '10.96.0.53', port: 53, scheduler: 'rr' })
  await ipvs.addService({ protocol: 'sctp', address: '10.96.0.7', port: 9, scheduler: 'nq' })
  await ipvs.addService({ protocol: 'tcp', address: 'fd00::10', port: 443, scheduler: 'wrr' })
  t.same(saved(), lines('-A -u 10.96.0.53:53 -s rr\n-A --sctp-service 10.96.0.7:9 -s nq\n-A -t [fd00::10]:443 -s wrr'))
  const v6 = await ipvs.getService({ protocol: 'tcp', address: 'fd00::10', port: 443 })
  t.match(v6, { family: 'inet6', protocol: 'tcp', address: 'fd00::10', port: 443, scheduler: 'wrr' })
})

t.test('firewall-mark services, IPv4 and IPv6', async (t) => {
  await ipvs.addService({ fwmark: 7, scheduler: 'lc' })
  await ipvs.addService({ fwmark: 8, family: 'inet6', scheduler: 'lc' })
  t.same(saved(), lines('-A -f 7 -s lc\n-A -f 8 -6 -s lc'))
  t.match(await ipvs.getService({ fwmark: 8, family: 'inet6' }), { fwmark: 8, family: 'inet6' })
  t.equal(await ipvs.getService({ fwmark: 8 }), undefined, 'fwmark 8 is IPv6 only')
})

t.test('persistence with timeout and an IPv4 netmask', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'wlc', persistent: true, timeout: 120, netmask: 24 })
  t.same(saved(), ['-A -t 10.96.0.10:80 -s wlc -p 120 -M 255.255.255.0'])
  const rec = await ipvs.getService(web)
  t.match(rec, { persistent: true, timeout: 120, netmask: 24 })
  t.same(rec!.flags, ['persistent'])
})

t.test('persistence with an IPv6 netmask, and the default timeout', async (t) => {
  await ipvs.addService({ protocol: 'udp', address: 'fd00::53', port: 53, scheduler: 'rr', persistent: true, netmask: 64 })
  t.same(saved(), ['-A -u [fd00::53]:53 -s rr -p 360 -M 64'])
})

t.test('a persistent service on port 0 (all ports)', async (t) => {
  await ipvs.addService({ protocol: 'tcp', address: '10.96.0.11', port: 0, scheduler: 'rr', persistent: true, timeout: 60 })
  t.same(saved(), ['-A -t 10.96.0.11:0 -s rr -p 60'])
})

t.test('one-packet scheduling and the sip persistence engine', async (t) => {
  await ipvs.addService({ protocol: 'udp', address: '10.96.0.12', port: 5060, scheduler: 'rr', persistent: true, timeout: 30, pe: 'sip', flags: ['one-packet'] })
  t.same(saved(), ['-A -u 10.96.0.12:5060 -s rr -p 30 --pe sip -o'])
  const rec = await ipvs.getService({ protocol: 'udp', address: '10.96.0.12', port: 5060 })
  t.equal(rec!.pe, 'sip')
  t.same(rec!.flags, ['persistent', 'one-packet'])
})

t.test('sh and mh scheduler flags', async (t) => {
  await ipvs.addService({ protocol: 'tcp', address: '10.96.0.13', port: 80, scheduler: 'sh', flags: ['sh-fallback', 'sh-port'] })
  await ipvs.addService({ protocol: 'tcp', address: '10.96.0.14', port: 80, scheduler: 'mh', flags: ['mh-port'] })
  t.same(saved(), lines('-A -t 10.96.0.13:80 -s sh -b sh-fallback,sh-port\n-A -t 10.96.0.14:80 -s mh -b mh-port'))
  await sameAsIpvsadm(t, 'listing renders the same flags')
})

t.test('updateService replaces scheduler and persistence', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr', persistent: true, timeout: 100 })
  await ipvs.updateService({ ...web, scheduler: 'wrr' })
  t.same(saved(), ['-A -t 10.96.0.10:80 -s wrr'])
  await ipvs.updateService({ ...web, scheduler: 'sh', persistent: true, timeout: 10, flags: ['sh-port'] })
  t.same(saved(), ['-A -t 10.96.0.10:80 -s sh -p 10 -b sh-port'])
})

t.test('a record read back can be written again unchanged (round trip)', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'sh', persistent: true, timeout: 50, netmask: 16, flags: ['sh-port', 'one-packet'] })
  const before = saved()
  const rec = await ipvs.getService(web)
  await ipvs.flush()
  await ipvs.addService(rec!)
  t.same(saved(), before)
})

t.test('an IPv6 tunnel destination in an IPv4 service can be deleted', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await ipvs.addDestination(web, { address: 'fd00::7', port: 80, forward: 'tunnel' })
  t.equal(saved().length, 2)
  await ipvs.deleteDestination(web, { address: 'fd00::7', port: 80 })
  t.same(saved(), ['-A -t 10.96.0.10:80 -s rr'])
})

t.test('deleteService removes it and leaves the others', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await ipvs.addService({ fwmark: 3, scheduler: 'rr' })
  await ipvs.deleteService(web)
  t.same(saved(), ['-A -f 3 -s rr'])
  await ipvs.deleteService({ fwmark: 3 })
  t.same(saved(), [])
})

t.test('getService: the record, or undefined when missing', async (t) => {
  t.equal(await ipvs.getService(web), undefined)
  await ipvs.addService({ ...web, scheduler: 'rr' })
  const s = await ipvs.getService(web)
  t.match(s, { family: 'inet', protocol: 'tcp', address: '10.96.0.10', port: 80, scheduler: 'rr', persistent: false, timeout: 0, netmask: 32 })
  t.same(Object.keys(s!.stats).sort(), ['conns', 'cps', 'inBps', 'inBytes', 'inPackets', 'inPps', 'outBps', 'outBytes', 'outPackets', 'outPps'])
})

t.test('services ipvsadm wrote read back as typed records', async (t) => {
  run('ipvsadm', ['-R'], [
    '-A -t 10.1.0.1:80 -s rr',
    '-A -u 10.1.0.4:53 -s wlc -p 120 -M 255.255.255.0 -o',
    '-A -t 10.1.0.2:80 -s sh -b sh-fallback,sh-port',
    '-A -f 10 -6 -s lc -p 10 -M 96',
    '-A --sctp-service 10.1.0.7:9 -s nq',
  ].join('\n') + '\n')
  const byKey = new Map((await ipvs.listServices()).map((s) => [s.fwmark ?? `${s.protocol} ${s.address}:${s.port}`, s]))
  t.match(byKey.get('tcp 10.1.0.1:80'), { scheduler: 'rr', persistent: false })
  t.same(byKey.get('tcp 10.1.0.1:80')!.flags, [])
  t.match(byKey.get('udp 10.1.0.4:53'), { scheduler: 'wlc', persistent: true, timeout: 120, netmask: 24 })
  t.same(byKey.get('udp 10.1.0.4:53')!.flags, ['persistent', 'one-packet'])
  t.match(byKey.get('tcp 10.1.0.2:80'), { scheduler: 'sh' })
  t.same(byKey.get('tcp 10.1.0.2:80')!.flags, ['sh-fallback', 'sh-port'])
  t.match(byKey.get(10), { family: 'inet6', fwmark: 10, scheduler: 'lc', persistent: true, timeout: 10, netmask: 96 })
  t.match(byKey.get('sctp 10.1.0.7:9'), { scheduler: 'nq' })
  t.equal(byKey.size, 5)
})

// ---- destinations ---------------------------------------------------------------------------

t.test('a masq destination with a weight', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'wrr' })
  await ipvs.addDestination(web, { address: '10.0.0.11', port: 8080, weight: 3, forward: 'masq' })
  t.same(saved(), lines('-A -t 10.96.0.10:80 -s wrr\n-a -t 10.96.0.10:80 -r 10.0.0.11:8080 -m -w 3'))
  t.match(await ipvs.listDestinations(web), [{ address: '10.0.0.11', port: 8080, weight: 3, forward: 'masq', activeConns: 0, inactiveConns: 0 }])
})

t.test('direct routing, and weight 0', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await ipvs.addDestination(web, { address: '10.0.0.12', port: 80, forward: 'route', weight: 0 })
  t.same(saved(), lines('-A -t 10.96.0.10:80 -s rr\n-a -t 10.96.0.10:80 -r 10.0.0.12:80 -g -w 0'))
  t.match(await ipvs.listDestinations(web), [{ forward: 'route', weight: 0 }])
})

t.test('tunnels: ipip, gue with port and checksum, gre', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await ipvs.addDestination(web, { address: '10.0.0.21', port: 80, forward: 'tunnel' })
  await ipvs.addDestination(web, { address: '10.0.0.22', port: 80, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelFlags: 'csum' })
  await ipvs.addDestination(web, { address: '10.0.0.23', port: 80, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6081, tunnelFlags: 'remcsum' })
  await ipvs.addDestination(web, { address: '10.0.0.24', port: 80, forward: 'tunnel', tunnelType: 'gre', tunnelFlags: 'csum' })
  t.same(saved(), lines([
    '-A -t 10.96.0.10:80 -s rr',
    '-a -t 10.96.0.10:80 -r 10.0.0.21:80 -i -w 1 --tun-type ipip',
    '-a -t 10.96.0.10:80 -r 10.0.0.22:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
    '-a -t 10.96.0.10:80 -r 10.0.0.23:80 -i -w 1 --tun-type gue --tun-port 6081 --tun-remcsum',
    '-a -t 10.96.0.10:80 -r 10.0.0.24:80 -i -w 1 --tun-type gre --tun-csum',
  ].join('\n')))
  await sameAsIpvsadm(t, 'listing renders the same tunnels')
})

t.test('upper and lower thresholds read back in ipvsadm --thresholds', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await ipvs.addDestination(web, { address: '10.0.0.11', port: 8080, upperThreshold: 100, lowerThreshold: 10 })
  t.same(table('--thresholds').get('TCP 10.96.0.10:80 -> 10.0.0.11:8080'), [100, 10, 0, 0])
  t.match(await ipvs.listDestinations(web), [{ upperThreshold: 100, lowerThreshold: 10 }])
})

t.test('IPv6 destinations, and an IPv4 tunnel destination in an IPv6 service', async (t) => {
  const v6: ServiceKey = { protocol: 'tcp', address: 'fd00::1', port: 443 }
  await ipvs.addService({ ...v6, scheduler: 'rr' })
  await ipvs.addDestination(v6, { address: 'fd00::2', port: 8443 })
  await ipvs.addDestination(v6, { address: '10.2.0.7', port: 443, forward: 'tunnel' })
  t.same(saved(), lines('-A -t [fd00::1]:443 -s rr\n-a -t [fd00::1]:443 -r [fd00::2]:8443 -m -w 1\n-a -t [fd00::1]:443 -r 10.2.0.7:443 -i -w 1 --tun-type ipip'))
  const dests = await ipvs.listDestinations(v6)
  t.same(dests.map((d) => d.family).sort(), ['inet', 'inet6'])
})

t.test('a firewall-mark service with a port-0 destination', async (t) => {
  await ipvs.addService({ fwmark: 9, scheduler: 'lc' })
  await ipvs.addDestination({ fwmark: 9 }, { address: '10.2.0.9', port: 0 })
  t.same(saved(), lines('-A -f 9 -s lc\n-a -f 9 -r 10.2.0.9:0 -m -w 1'))
})

t.test('updateDestination changes weight and forwarding', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'wrr' })
  await ipvs.addDestination(web, { address: '10.0.0.11', port: 8080, weight: 1 })
  await ipvs.updateDestination(web, { address: '10.0.0.11', port: 8080, weight: 7, forward: 'route' })
  t.same(saved(), lines('-A -t 10.96.0.10:80 -s wrr\n-a -t 10.96.0.10:80 -r 10.0.0.11:8080 -g -w 7'))
})

t.test('deleteDestination removes one destination', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await ipvs.addDestination(web, { address: '10.0.0.11', port: 8080 })
  await ipvs.addDestination(web, { address: '10.0.0.12', port: 8080 })
  await ipvs.deleteDestination(web, { address: '10.0.0.11', port: 8080 })
  t.same(saved(), lines('-A -t 10.96.0.10:80 -s rr\n-a -t 10.96.0.10:80 -r 10.0.0.12:8080 -m -w 1'))
})

t.test('destinations ipvsadm wrote read back as typed records', async (t) => {
  run('ipvsadm', ['-R'], [
    '-A -t 10.1.0.1:80 -s wrr',
    '-a -t 10.1.0.1:80 -r 10.2.0.1:8080 -m -w 3 -x 100 -y 10',
    '-a -t 10.1.0.1:80 -r 10.2.0.2:80 -g -w 0',
    '-a -t 10.1.0.1:80 -r 10.2.0.4:80 -i -w 2 --tun-type gue --tun-port 6080 --tun-csum',
  ].join('\n') + '\n')
  const dests = new Map((await ipvs.listDestinations({ protocol: 'tcp', address: '10.1.0.1', port: 80 })).map((d) => [d.address, d]))
  t.match(dests.get('10.2.0.1'), { port: 8080, forward: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 10 })
  t.match(dests.get('10.2.0.2'), { port: 80, forward: 'route', weight: 0 })
  t.match(dests.get('10.2.0.4'), { forward: 'tunnel', weight: 2, tunnelType: 'gue', tunnelPort: 6080, tunnelFlags: 'csum' })
  t.equal(dests.size, 3)
})

t.test('listDestinations of a missing service is empty (the kernel does not complain)', async (t) => {
  t.same(await ipvs.listDestinations(web), [])
})

// ---- kernel errors --------------------------------------------------------------------------

t.test('a duplicate service is EEXIST, with errno, code and op', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await rejects(t, ipvs.addService({ ...web, scheduler: 'rr' }), { errno: 17, code: 'EEXIST', op: 'ipvs.addService' })
})

t.test('deleting or editing a missing service is ESRCH (the kernel\'s word for it)', async (t) => {
  await rejects(t, ipvs.deleteService(web), { errno: 3, code: 'ESRCH', op: 'ipvs.deleteService' })
  await rejects(t, ipvs.updateService({ ...web, scheduler: 'rr' }), { code: 'ESRCH', op: 'ipvs.updateService' })
  await rejects(t, ipvs.addDestination(web, { address: '10.0.0.1', port: 80 }), { code: 'ESRCH', op: 'ipvs.addDestination' })
})

t.test('a missing destination is ENOENT; a duplicate one EEXIST', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await rejects(t, ipvs.deleteDestination(web, { address: '10.0.0.1', port: 80 }), { errno: 2, code: 'ENOENT', op: 'ipvs.deleteDestination' })
  await ipvs.addDestination(web, { address: '10.0.0.1', port: 80 })
  await rejects(t, ipvs.addDestination(web, { address: '10.0.0.1', port: 80 }), { errno: 17, code: 'EEXIST', op: 'ipvs.addDestination' })
})

t.test('an unknown scheduler or persistence engine is refused by the kernel', async (t) => {
  await rejects(t, ipvs.addService({ ...web, scheduler: 'nosuch' }), { code: 'ENOENT', op: 'ipvs.addService' })
  await rejects(t, ipvs.addService({ ...web, scheduler: 'rr', persistent: true, pe: 'nosuch' }), { code: 'ENOENT' })
  t.same(saved(), [], 'nothing was added')
})

// ---- batches --------------------------------------------------------------------------------

t.test('a batch with a bad operation in the middle reports its index and applies the rest', async (t) => {
  const results = await ipvs.batch([
    { op: 'addService', service: { ...web, scheduler: 'rr' } },
    { op: 'addDestination', service: web, destination: { address: '10.0.0.11', port: 8080 } },
    { op: 'addDestination', service: web, destination: { address: '10.0.0.11', port: 8080 } },
    { op: 'deleteDestination', service: web, destination: { address: '10.0.0.99', port: 1 } },
    { op: 'addDestination', service: web, destination: { address: '10.0.0.12', port: 8080, weight: 2 } },
  ])
  t.same(results.map((r) => r.ok), [true, true, false, false, true])
  const [, , dup, missing] = results
  t.match(!dup!.ok && dup!.error, { code: 'EEXIST', index: 2, op: 'ipvs.addDestination' })
  t.match(!missing!.ok && missing!.error, { code: 'ENOENT', index: 3, op: 'ipvs.deleteDestination' })
  t.same(saved(), lines('-A -t 10.96.0.10:80 -s rr\n-a -t 10.96.0.10:80 -r 10.0.0.11:8080 -m -w 1\n-a -t 10.96.0.10:80 -r 10.0.0.12:8080 -m -w 2'))
})

function bulk(services: number, dests: number): Parameters<Ipvs['batch']>[0] {
  const ops: Parameters<Ipvs['batch']>[0] = []
  for (let i = 0; i < services; i++) {
    const service: ServiceKey = { protocol: i % 2 ? 'udp' : 'tcp', address: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: 80 }
    ops.push({ op: 'addService', service: { ...service, scheduler: 'rr' } })
    for (let d = 0; d < dests; d++) ops.push({ op: 'addDestination', service, destination: { address: `172.16.${d}.${(i % 250) + 1}`, port: 8080 + d } })
  }
  return ops
}

t.test('a batch of 3000 operations spans several bursts and all apply', async (t) => {
  const results = await ipvs.batch(bulk(500, 5))
  t.equal(results.filter((r) => r.ok).length, 3000)
  const save = saved()
  t.equal(save.length, 3000)
  t.same(toSaveLines(await listAll()), save, 'listing with destinations equals ipvsadm -Sn')
})

t.test('listing a service with 400 destinations next to small ones (dumps that meet: EBUSY retried)', async (t) => {
  const ops = bulk(30, 2)
  for (let d = 0; d < 400; d++) ops.push({ op: 'addDestination', service: { protocol: 'tcp', address: '10.100.0.0', port: 80 }, destination: { address: `192.168.${d >> 8}.${d & 255}`, port: 80 } })
  t.ok((await ipvs.batch(ops)).every((r) => r.ok))
  const listed = await listAll()
  t.equal(listed.reduce((n, s) => n + s.destinations!.length, 0), 460)
  t.same(toSaveLines(listed), saved())
})

t.test('a 2500-service dump spans many messages and equals ipvsadm -Sn', async (t) => {
  t.ok((await ipvs.batch(bulk(2500, 0))).every((r) => r.ok))
  const services = await ipvs.listServices()
  t.equal(services.length, 2500)
  t.same(toSaveLines(services), saved())
})

// ---- statistics, with real traffic ------------------------------------------------------------

t.test('traffic through a VIP: statistics and connection counts match ipvsadm', async (t) => {
  const ns = `ipvs-pod-${process.pid}`
  const sh = (cmd: string) => run('sh', ['-c', cmd])
  sh(`ip netns add ${ns}
      ip link add v-host type veth peer name v-pod
      ip link set v-pod netns ${ns}
      ip addr add 10.9.0.1/24 dev v-host && ip link set v-host up
      ip netns exec ${ns} sh -c 'ip link set lo up; ip addr add 10.9.0.2/24 dev v-pod; ip link set v-pod up; ip route add default via 10.9.0.1'
      ip addr add 10.96.5.5/32 dev lo`)
  const server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `require('net').createServer(s => s.on('data', d => s.end('pong:' + d))).listen(8080, '10.9.0.2', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    server.kill()
    spawnSync('sh', ['-c', `ip netns del ${ns}; ip link del v-host; ip addr del 10.96.5.5/32 dev lo`])
  })
  await new Promise((resolve) => server.stdout!.once('data', resolve))

  const vip: ServiceKey = { protocol: 'tcp', address: '10.96.5.5', port: 80 }
  await ipvs.addService({ ...vip, scheduler: 'rr' })
  await ipvs.addDestination(vip, { address: '10.9.0.2', port: 8080 })
  for (let i = 0; i < 5; i++) {
    const reply = await new Promise<string>((resolve, reject) => {
      const c = connect(80, '10.96.5.5', () => c.write(`ping${i}`))
      let got = ''
      c.on('data', (d) => (got += d))
      c.on('end', () => resolve(got))
      c.on('error', reject)
    })
    t.equal(reply, `pong:ping${i}`, `request ${i} answered through the VIP`)
  }
  // The kernel folds per-CPU counters into what it reports every 2 s (the
  // estimator): wait until ipvsadm sees the five connections, then compare.
  const key = 'TCP 10.96.5.5:80'
  const deadline = Date.now() + 10_000
  while (table('--stats').get(key)?.[0] !== 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  const svc = await ipvs.getService(vip)
  const [dest] = await ipvs.listDestinations(vip)
  const stats = table('--stats')
  const s = svc!.stats
  t.equal(s.conns, 5, 'five connections counted')
  t.ok(s.inPackets >= 15 && s.inBytes > 0 && s.outBytes > 0, 'packets and bytes both ways')
  t.same([s.conns, s.inPackets, s.outPackets, s.inBytes, s.outBytes], stats.get(key), 'service counters equal ipvsadm --stats --exact')
  const d = dest!.stats
  t.same([d.conns, d.inPackets, d.outPackets, d.inBytes, d.outBytes], stats.get(`${key} -> 10.9.0.2:8080`), 'destination counters equal ipvsadm')
  t.same([dest!.weight, dest!.activeConns, dest!.inactiveConns], table().get('TCP 10.96.5.5:80 -> 10.9.0.2:8080'), 'weight and connection counts')
  t.equal(dest!.activeConns + dest!.inactiveConns, 5, 'five connections known to IPVS')

  await ipvs.zero(vip)
  t.match(await ipvs.getService(vip), { stats: { conns: 0, inPackets: 0, inBytes: 0 } }, 'zeroed one service')
  t.same(table('--stats').get('TCP 10.96.5.5:80'), [0, 0, 0, 0, 0])
})

t.test('zero() clears every service\'s counters', async (t) => {
  await ipvs.addService({ ...web, scheduler: 'rr' })
  await ipvs.zero()
  t.same(table('--stats').get('TCP 10.96.0.10:80'), [0, 0, 0, 0, 0])
  await rejects(t, ipvs.zero({ protocol: 'tcp', address: '10.96.0.99', port: 1 }), { code: 'ESRCH', op: 'ipvs.zero' })
})

// ---- timeouts, flush ------------------------------------------------------------------------

t.test('timeouts: ours and ipvsadm --set / -L --timeout agree both ways', async (t) => {
  const show = () => ipvsadm('-L', '--timeout').trim()
  const before = await ipvs.getTimeouts()
  t.equal(show(), `Timeout (tcp tcpfin udp): ${before.tcp} ${before.tcpFin} ${before.udp}`)
  await ipvs.setTimeouts({ tcp: 1000, tcpFin: 60, udp: 200 })
  t.equal(show(), 'Timeout (tcp tcpfin udp): 1000 60 200')
  await ipvs.setTimeouts({ udp: 33 })
  t.equal(show(), 'Timeout (tcp tcpfin udp): 1000 60 33', 'unset timeouts stay as they were')
  ipvsadm('--set', '900', '120', '300')
  t.same(await ipvs.getTimeouts(), { tcp: 900, tcpFin: 120, udp: 300 })
})

t.test('flush empties the table', async (t) => {
  t.ok((await ipvs.batch(bulk(20, 2))).every((r) => r.ok))
  t.equal(saved().length, 60)
  await ipvs.flush()
  t.same(saved(), [])
  t.same(await ipvs.listServices(), [])
})

// ---- lifecycle ------------------------------------------------------------------------------

t.test('close with operations in flight: they complete, later calls fail with EBADF', async (t) => {
  const own = await Ipvs.open()
  const pending = Array.from({ length: 50 }, (_, i) => own.addService({ protocol: 'tcp', address: `10.97.0.${i + 1}`, port: 80, scheduler: 'rr' }))
  const closed = own.close()
  const settled = await Promise.allSettled(pending)
  await closed
  t.equal(settled.filter((s) => s.status === 'fulfilled').length, 50, 'every queued operation completed')
  t.equal(saved().length, 50)
  await rejects(t, own.addService({ ...web, scheduler: 'rr' }), { errno: 9, code: 'EBADF' })
})

t.test('close() right after a batch of 2100 and a listing with destinations: both finish first', async (t) => {
  const before: ServiceKey = { protocol: 'tcp', address: '10.99.0.1', port: 80 }
  await ipvs.addService({ ...before, scheduler: 'rr' })
  await ipvs.addDestination(before, { address: '172.17.0.1', port: 8080 })
  const own = await Ipvs.open()
  const batch = own.batch(bulk(350, 5)) // 2100 operations: checked in slices, the loop let through between them
  const listing = own.listServices({ destinations: true }) // a dump, then one per service
  const closed = own.close()
  const late = own.listServices().then(() => undefined, (e: unknown) => e) // after close(), while the two above are still going
  const [b, l] = await Promise.allSettled([batch, listing])
  t.equal(b.status, 'fulfilled', `the batch resolved (${b.status === 'rejected' ? String(b.reason) : 'ok'})`)
  t.equal(l.status, 'fulfilled', `the listing resolved (${l.status === 'rejected' ? String(l.reason) : 'ok'})`)
  await closed
  const e = await late
  t.ok(e instanceof NetlinkError, 'a call after close(): a NetlinkError')
  t.match(e, { errno: 9, code: 'EBADF', op: 'ipvs.listServices' })
  if (b.status === 'fulfilled') t.equal(b.value.filter((r) => r.ok).length, 2100, 'every operation of the batch applied')
  const save = saved()
  t.equal(save.length, 2 + 2100, 'ipvsadm -Sn: what was there and the whole batch')
  if (l.status === 'fulfilled') {
    t.equal(l.value.filter((s) => s.destinations).length, l.value.length, 'every listed service has its destinations')
    t.ok(l.value.some((s) => s.address === '10.99.0.1' && s.destinations!.length === 1), 'with the service that was there before')
  }
})

t.test('usable from a worker thread', async (t) => {
  const worker = new Worker(
    `import(${JSON.stringify(distIndex)}).then(async ({ Ipvs }) => {
       const { parentPort } = await import('node:worker_threads')
       const ipvs = await Ipvs.open()
       await ipvs.addService({ protocol: 'tcp', address: '10.98.0.1', port: 80, scheduler: 'rr' })
       await ipvs.addDestination({ protocol: 'tcp', address: '10.98.0.1', port: 80 }, { address: '10.0.0.5', port: 80 })
       const listed = await ipvs.listServices({ destinations: true })
       await ipvs.close()
       parentPort.postMessage(listed.map((s) => s.address + ' ' + s.destinations.length))
     })`,
    { eval: true },
  )
  const message = await new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  t.same(message, ['10.98.0.1 1'])
  t.same(saved(), lines('-A -t 10.98.0.1:80 -s rr\n-a -t 10.98.0.1:80 -r 10.0.0.5:80 -m -w 1'))
})

t.test('process exit with a batch in flight exits cleanly', async (t) => {
  const script = `
    const { Ipvs } = await import(${JSON.stringify(distIndex)})
    const ipvs = await Ipvs.open()
    const ops = Array.from({ length: 5000 }, (_, k) => ({ op: 'addService', service: { protocol: 'tcp', address: '10.99.' + (k >> 8) + '.' + (k & 255), port: 80, scheduler: 'rr' } }))
    ipvs.batch(ops)
    setTimeout(() => process.exit(7), 5)`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  t.equal(r.signal, null, 'no crash')
  t.equal(r.status, 7, 'exited with its own status')
  const left = saved()
  t.ok(left.length <= 5000 && left.every((l) => /^-A -t 10\.99\.\d+\.\d+:80 -s rr$/.test(l)), `the table is consistent (${left.length} services made it)`)
})

t.test('the event loop turns while a large batch is checked, encoded and in the kernel', async (t) => {
  // Counted in turns of the loop, not milliseconds: a 10k batch is checked and
  // sent in slices of 2048 with the loop let through between them, and the
  // kernel work runs on the thread pool.
  let turns = 0
  let stop = false
  const tick = () => {
    turns++
    if (!stop) setImmediate(tick)
  }
  setImmediate(tick)
  const results = await ipvs.batch(bulk(10000, 0))
  stop = true
  t.ok(results.every((r) => r.ok))
  t.equal(saved().length, 10000)
  t.ok(turns >= 8, `the loop turned ${turns} times during the batch (4 checking slices + 4 sending slices at least)`)
})

t.test('two handles work side by side', async (t) => {
  const other = await Ipvs.open()
  t.teardown(() => other.close())
  await Promise.all([ipvs.addService({ ...web, scheduler: 'rr' }), other.addService({ fwmark: 5, scheduler: 'rr' })])
  const keys = (await other.listServices()).map((s) => JSON.stringify(keyOf(s))).sort()
  t.same(keys, [JSON.stringify({ fwmark: 5, family: 'inet' }), JSON.stringify(web)].sort())
})
