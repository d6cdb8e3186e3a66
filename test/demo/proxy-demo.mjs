// The quick-start demo, run inside the kernel box by `npm run demo`: plays the
// CNI (a bridge and three pod namespaces serving HTTP), runs the tsproxy daemon
// in IPVS mode on a manifest directory (the nginx-basic example of the
// reference walk-through, plus a NodePort service), sends traffic from the node
// and from every pod, then drops one endpoint and shows traffic follow.
// The `ip` commands behind makeNode stand in for the CNI; everything the proxy
// does goes through tsproxy's own netlink and libiptc code.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNode, sh, tool } from '../support/cni.mjs'
import { startDaemon, until } from '../support/daemon.mjs'

const NODE = 'node01'
const NODE_IP = '192.168.50.10'
const CLUSTER_IP = '10.96.115.68'
const NODE_PORT = 30080
const pods = [
  { name: 'nginx-1', ip: '10.244.0.11' },
  { name: 'nginx-2', ip: '10.244.0.12' },
  { name: 'nginx-3', ip: '10.244.0.13' },
]

const dir = mkdtempSync(join(tmpdir(), 'tsproxy-demo-'))
function manifests(endpoints) {
  const slice = (svc) => `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${svc}-7xk2p, labels: { kubernetes.io/service-name: ${svc} } }
addressType: IPv4
ports: [{ name: http, protocol: TCP, port: 8080 }]
endpoints:
${endpoints.map((p) => `  - { addresses: ["${p.ip}"], conditions: { ready: true }, nodeName: ${NODE}, targetRef: { kind: Pod, name: ${p.name} } }`).join('\n')}
`
  writeFileSync(join(dir, 'nginx-basic.yaml'), `# The nginx-basic example: a ClusterIP service over 3 nginx replicas.
apiVersion: v1
kind: Service
metadata: { name: nginx-basic }
spec:
  type: ClusterIP
  clusterIP: ${CLUSTER_IP}
  ports: [{ name: http, protocol: TCP, port: 80, targetPort: 8080 }]
${slice('nginx-basic')}`)
  writeFileSync(join(dir, 'nginx-nodeport.yaml'), `apiVersion: v1
kind: Service
metadata: { name: nginx-nodeport }
spec:
  type: NodePort
  clusterIP: 10.96.200.10
  ports: [{ name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: ${NODE_PORT} }]
${slice('nginx-nodeport')}`)
}

const line = (s = '') => console.log(s)
const bar = (counts, names) => names.map((n) => `${n} ${'#'.repeat(counts[n] ?? 0).padEnd(9)} ${String(counts[n] ?? 0).padStart(2)}`).join('   ')

let node
let daemon
try {
  line('== the node: a bridge cbr0 (10.244.0.1/24) and three pods, as a CNI would make them')
  sh(`ip link set lo up; ip link add eth0 type dummy; ip addr add ${NODE_IP}/24 dev eth0; ip link set eth0 up`)
  node = await makeNode({ pods })
  for (const p of pods) line(`   pod ${p.name.padEnd(8)} ${p.ip}:8080  HTTP server answering its name`)

  line('\n== tsproxy --proxy-mode=ipvs --manifests <dir>: nginx-basic (ClusterIP, 3 replicas) + a NodePort service')
  manifests(pods)
  const t0 = Date.now()
  daemon = await startDaemon({ manifests: dir, args: [`--hostname-override=${NODE}`, '--cluster-cidr=10.244.0.0/16'] })
  const first = daemon.logs.find((r) => r.msg === 'full sync')
  line(`   programmed in ${first?.ms} ms (${Object.entries(first?.ops ?? {}).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ')} operations), running after ${Date.now() - t0} ms`)
  line('\n   ipvsadm -Ln (the kernel, read by the standard tool):')
  for (const l of tool('ipvsadm', ['-Ln']).trim().split('\n').slice(2)) line(`     ${l}`)

  const names = pods.map((p) => p.name)
  const show = async (from, host, port, label) => {
    const r = await node.requestMany(from, { host, port, timeoutMs: 3000 }, 9)
    const failed = r.errors.length ? `   FAILED ${r.errors.length}: ${r.errors[0]}` : ''
    line(`   ${label.padEnd(34)} ${bar(r.counts, names)}${failed}`)
    return r
  }
  line(`\n== 9 requests each, answered by:`)
  await show('node', CLUSTER_IP, 80, `node -> ${CLUSTER_IP}:80`)
  for (const p of pods) {
    const r = await show(p.name, CLUSTER_IP, 80, `${p.name} -> ${CLUSTER_IP}:80`)
    if ((r.counts[p.name] ?? 0) > 0 && r.errors.length === 0) line(`${''.padEnd(37)}(${p.name} reached itself through the VIP: hairpin, masqueraded via KUBE-LOOP-BACK)`)
  }
  await show('node', NODE_IP, NODE_PORT, `node -> ${NODE_IP}:${NODE_PORT} (NodePort)`)

  line('\n== tsproxy status')
  for (const l of sh('node dist/proxy/main.js status').trim().split('\n')) line(`   ${l}`)

  line(`\n== nginx-2 goes away: its EndpointSlice entry is removed from the manifest`)
  const from = daemon.logs.length
  manifests(pods.filter((p) => p.name !== 'nginx-2'))
  const sync = await daemon.waitLog((r) => r.msg === 'sync' || (r.msg === 'full sync' && r.ops?.ipvs > 0), { from })
  await until(() => !/10\.244\.0\.12:8080\s+Masq\s+1/.test(tool('ipvsadm', ['-Ln'])), { what: 'nginx-2 out of rotation' })
  line(`   the daemon saw the file change and synced ${sync.ports} service ports with ${sync.ops?.ipvs ?? 0} IPVS operations in ${sync.ms} ms`)
  await show('node', CLUSTER_IP, 80, `node -> ${CLUSTER_IP}:80`)
  await show('nginx-1', CLUSTER_IP, 80, `nginx-1 -> ${CLUSTER_IP}:80`)
  line('\n   ipvsadm -Ln -t ' + `${CLUSTER_IP}:80:`)
  for (const l of tool('ipvsadm', ['-Ln', '-t', `${CLUSTER_IP}:80`]).trim().split('\n').slice(2)) line(`     ${l}`)

  line('\n== metrics (kube-proxy names) from /metrics')
  for (const m of ['kubeproxy_sync_proxy_rules_duration_seconds_count', 'kubeproxy_sync_proxy_rules_endpoint_changes_total', 'tsproxy_kernel_operations_total{result="ok",subsystem="ipvs"}']) line(`   ${m} ${await daemon.metric(m)}`)
  line('\n== done: the daemon stops; kernel state stays until `tsproxy cleanup`')
} finally {
  await daemon?.stop()
  // The daemon's stderr is its JSON log, which startDaemon collects: pass on
  // whatever else it wrote there (a Node warning, a crash) instead of losing it.
  for (const r of daemon?.logs ?? []) if (r.level === 'raw') console.error(`tsproxy stderr: ${r.msg}`)
  await node?.destroy().catch((e) => console.error(e.message))
  rmSync(dir, { recursive: true, force: true })
}
