// The quick-start demo, run inside the kernel box by `npm run demo`: plays the
// CNI (a bridge and two pod namespaces serving HTTP), then programs a virtual
// service through tsproxy's Ipvs API and shows traffic balance and follow.
// The `ip` commands stand in for the CNI; everything IPVS goes through the API.
import { execFileSync, spawn } from 'node:child_process'
import { request } from 'node:http'
import { Ipvs } from '../../dist/index.js'

const sh = (script) => execFileSync('sh', ['-ec', script], { stdio: ['ignore', 'pipe', 'inherit'] })
const pods = [
  { name: 'nginx-1', ip: '10.0.0.11' },
  { name: 'nginx-2', ip: '10.0.0.12' },
  { name: 'nginx-3', ip: '10.0.0.13' },
]
const vip = { protocol: 'tcp', address: '10.96.0.10', port: 80 }

console.log('== the node: a bridge, three pods, a dummy kube-ipvs0 holding the VIP')
sh(`ip link add br0 type bridge; ip addr add 10.0.0.1/24 dev br0; ip link set br0 up
    ip link add kube-ipvs0 type dummy; ip addr add ${vip.address}/32 dev kube-ipvs0; ip link set kube-ipvs0 up`)
const servers = []
for (const [i, pod] of pods.entries()) {
  sh(`ip netns add ${pod.name}; ip link add veth${i} type veth peer name eth0 netns ${pod.name}
      ip link set veth${i} master br0 up
      ip -n ${pod.name} link set lo up; ip -n ${pod.name} addr add ${pod.ip}/24 dev eth0; ip -n ${pod.name} link set eth0 up
      ip -n ${pod.name} route add default via 10.0.0.1`)
  const server = spawn('ip', ['netns', 'exec', pod.name, process.execPath, '-e',
    `require('http').createServer((q, s) => s.end('${pod.name}')).listen(8080, () => console.log('ready'))`],
  { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve) => server.stdout.once('data', resolve))
  servers.push(server)
  console.log(`   pod ${pod.name} ${pod.ip}:8080 serving HTTP`)
}

const ipvs = await Ipvs.open()
const info = await ipvs.getInfo()
console.log(`\n== IPVS ${info.version} (connection table ${info.connTableSize}) via generic netlink; one batch:`)
const results = await ipvs.batch([
  { op: 'addService', service: { ...vip, scheduler: 'rr' } },
  ...pods.map((p) => ({ op: 'addDestination', service: vip, destination: { address: p.ip, port: 8080, forward: 'masq' } })),
])
console.log(`   ${results.length} operations, ${results.filter((r) => r.ok).length} ok: ${vip.address}:${vip.port} rr -> ${pods.map((p) => p.ip).join(', ')}`)

async function get() {
  return new Promise((resolve, reject) => {
    const q = request({ host: vip.address, port: vip.port, agent: false }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d)).on('end', () => resolve(body))
    })
    q.on('error', reject).end()
  })
}

async function traffic(n) {
  const seen = []
  for (let i = 0; i < n; i++) seen.push(await get())
  console.log(`   ${n} requests to http://${vip.address}/ answered by: ${seen.join(' ')}`)
}

async function show() {
  await new Promise((r) => setTimeout(r, 2100)) // the kernel folds its counters every 2 s
  for (const s of await ipvs.listServices({ destinations: true })) {
    console.log(`   ${s.protocol.toUpperCase()} ${s.address}:${s.port} ${s.scheduler}  conns=${s.stats.conns}`)
    for (const d of s.destinations) {
      const pod = pods.find((p) => p.ip === d.address)?.name ?? '?'
      console.log(`     -> ${d.address}:${d.port} (${pod}) ${d.forward} weight=${d.weight} conns=${d.stats.conns} active=${d.activeConns} inactive=${d.inactiveConns}`)
    }
  }
}

console.log('\n== traffic from the node through the VIP')
await traffic(9)
await show()

console.log(`\n== ${pods[1].name} goes away: one deleteDestination`)
await ipvs.deleteDestination(vip, { address: pods[1].ip, port: 8080 })
await ipvs.zero()
await traffic(6)
await show()

await ipvs.close()
for (const s of servers) s.kill()
console.log('\n(the same API lists, edits and deletes everything ipvsadm does; see README)')
