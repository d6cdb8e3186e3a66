// What one sync of the iptables proxier costs with N services (default 10 000,
// two endpoints each, every 10th a NodePort): the first full sync, a no-op
// full sync, and partial syncs of one endpoint change and one new service.
// Prints where the time goes: JS (recompute + plan) vs libiptc's commit
// (load/apply/commit of the whole table). Run in the box as root:
//   node test/kernel/box.mjs --timeout 600 -- node benchmarks/iptables/proxier-sync.mjs [N]
import { IptablesProxier } from '../../dist/proxy/iptables/proxier.js'
import { openIptablesDataplane } from '../../dist/proxy/iptables/dataplane.js'
import { EndpointsChangeTracker, ServiceChangeTracker, applyChanges } from '../../dist/proxy/changes.js'
import { parseEndpointSlice, parseService } from '../../dist/proxy/model/index.js'

const N = Number(process.argv[2] ?? 10000)
const real = await openIptablesDataplane()
const commits = []
const dp = {
  ...real,
  readFresh: real.readFresh,
  begin(table) {
    const tx = real.begin(table)
    return new Proxy(tx, {
      get(target, prop) {
        if (prop === 'commit') return async () => { const t0 = performance.now(); const info = await target.commit(); commits.push({ table, ms: performance.now() - t0, ...info }); return info }
        if (prop === 'readTable') return async () => { const t0 = performance.now(); const r = await target.readTable(); commits.push({ table, read: true, ms: performance.now() - t0 }); return r }
        const v = target[prop]
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
  },
}
const services = new ServiceChangeTracker()
const endpoints = new EndpointsChangeTracker({ nodeName: 'n1' })
const state = { ports: services.ports, endpoints: (k) => endpoints.endpoints(k) }
const proxier = new IptablesProxier(dp, { clusterCIDR: '10.244.0.0/16' })
const ip = (base, i) => `${base}.${(i >> 8) & 255}.${i & 255}`
const svc = (i) => parseService({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'bench' }, spec: { type: i % 10 === 0 ? 'NodePort' : 'ClusterIP', clusterIP: ip('10.96', i), ports: [{ name: 'http', port: 80, ...(i % 10 === 0 ? { nodePort: 30000 + (i / 10) } : {}) }] } })
const slice = (i, n = 2) => parseEndpointSlice({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${i}-x`, namespace: 'bench', labels: { 'kubernetes.io/service-name': `s${i}` } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: Array.from({ length: n }, (_, k) => ({ addresses: [ip(`10.${244 + k}`, i)], conditions: { ready: true }, nodeName: 'n2' })) })
const slices = []
for (let i = 0; i < N; i++) { services.update(undefined, svc(i)); const s = slice(i); slices.push(s); endpoints.update(undefined, s) }

async function run(label, full) {
  commits.length = 0
  const ch = applyChanges(services, endpoints)
  const t0 = performance.now()
  const r = await proxier.sync(state, ch.servicePorts, { full })
  const total = performance.now() - t0
  const ipt = commits.reduce((a, c) => a + c.ms, 0)
  console.log(`${label}: ${total.toFixed(0)} ms total, ${(total - ipt).toFixed(0)} ms JS (rules, plan, compare), ${ipt.toFixed(0)} ms libiptc; edits ${r.ops.iptables}, errors ${r.errors.length}`)
  for (const c of commits) console.log(c.read ? `   read ${c.table}: ${c.ms.toFixed(0)} ms` : `   commit ${c.table}: ${c.ms.toFixed(0)} ms (lock ${c.lockMs?.toFixed(1)}, load ${c.loadMs?.toFixed(0)}${c.snapshotReused ? ' reused' : ''}, apply ${c.applyMs?.toFixed(0)}, kernel replace ${c.commitMs?.toFixed(0)}; ${c.entries} entries, ${(c.bytes / 1048576).toFixed(1)} MiB)`)
}
await run(`first full sync, ${N} services`, true)
await run('no-op full sync', true)
endpoints.update(slices[5], (slices[5] = slice(5, 3)))
await run('partial: one endpoint added', false)
endpoints.update(slices[6], (slices[6] = slice(6, 3)))
await run('partial: another endpoint added', false)
services.update(undefined, svc(N)); endpoints.update(undefined, slice(N))
await run('partial: one new service', false)
const c = await proxier.cleanup()
console.log('cleanup', c)
await real.close()
