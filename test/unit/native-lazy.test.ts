// The addon loads on first use, not at import: with loading made to fail (a
// child process preloading test/support/block-addon.cjs), the package and the
// pure layers (model, change trackers, config) import and work, and only a
// call that needs the kernel fails, naming the missing addon.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const block = fileURLToPath(new URL('../support/block-addon.cjs', import.meta.url))

const child = `
const lib = await import('./dist/index.js')
const model = await import('./dist/proxy/model/index.js')
const { ServiceChangeTracker, EndpointsChangeTracker, applyChanges } = await import('./dist/proxy/changes.js')
const { parseConfig, parseFlags } = await import('./dist/proxy/config.js')
const out = {}
const svc = model.parseService({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'ns' },
  spec: { type: 'ClusterIP', clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] } })
const services = new ServiceChangeTracker()
out.pending = services.update(undefined, svc)
out.ports = [...applyChanges(services, new EndpointsChangeTracker()).servicePorts]
out.mode = parseConfig('apiVersion: kubeproxy.config.k8s.io/v1alpha1\\nkind: KubeProxyConfiguration\\nmode: ipvs\\n').config.mode
out.flags = Object.keys(parseFlags(['--proxy-mode=iptables'])).length > 0
out.open = await lib.Ipvs.open().then(() => 'opened', (e) => e.message)
console.log(JSON.stringify(out))
`

t.test('without the addon: the package and the pure layers import and work; a kernel call names the missing addon', async (t) => {
  const text = execFileSync(process.execPath, ['--require', block, '--input-type=module', '-e', child], { cwd: root, encoding: 'utf8' })
  const out = JSON.parse(text) as Record<string, unknown>
  t.equal(out.pending, true, 'ServiceChangeTracker took a service')
  t.strictSame(out.ports, ['ns/a:http/TCP'], 'applyChanges named its port')
  t.equal(out.mode, 'ipvs', 'parseConfig read the configuration')
  t.equal(out.flags, true, 'parseFlags parsed a flag')
  t.match(out.open, /native addon is absent/, 'Ipvs.open() fails on the missing addon, at the call')
})
