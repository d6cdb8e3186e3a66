// deploy/: the manifests as kubectl reads them (offline, no cluster), and what they
// promise checked on the objects themselves: the DaemonSet's privileges, the RBAC
// rules, the KubeProxyConfiguration (through tsproxy's own parser), and the init
// container's script (deploy/node-setup.mjs) against what the daemon would write.
//
// kubectl: $TSPROXY_KUBECTL, else /usr/bin/kubectl (Debian 12's package
// kubernetes-client, kubectl 1.20), else the first on PATH. Without one the kubectl
// tests are skipped, saying so; in CI (CI=true) that is a failure.
//
// Why not `kubectl apply --dry-run=client`: it is not offline. Every kubectl from 1.20
// to 1.32 asks the API server for discovery (to map kinds to resources) and, with
// validation on, for /openapi/v2, even in client dry-run; without a server it fails
// ("unable to recognize ...: connection refused"). The offline forms used here:
// - `kubectl label --local -o name -f deploy/x.yaml k=v`: reads every document (YAML
//   syntax, apiVersion, kind, metadata.name) and names each object as kubectl would
//   (kind -> resource.group/name). Objects stay unstructured: no field checks.
// - `kubectl set env --local -o json -f` (pod templates) and `kubectl set subject
//   --local -o json -f` (bindings): these decode into kubectl's compiled-in types, so
//   an apiVersion/kind kubectl does not know, or a field of the wrong type, is an
//   error; and since decoding drops fields the type does not have, comparing what
//   comes out with what went in catches misspelled and misplaced fields.
// kubectl runs with HOME and KUBECONFIG pointing at a scratch directory whose only
// cluster is https://127.0.0.1:1: anything that tried the network would fail.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { parseConfig } from '../../dist/proxy/config.js'
import { conntrackSettings } from '../../dist/proxy/conntrack-settings.js'
import { IpvsProxier } from '../../dist/proxy/ipvs/proxier.js'
import { FakeDataplane } from '../support/fake-dataplane.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url))
const FILES = readdirSync(DEPLOY)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => join(DEPLOY, f))
const CI = process.env.CI === 'true' || process.env.CI === '1'

/** Every object of deploy/*.yaml, with its file. */
const objects: { file: string; obj: Obj }[] = []
for (const file of FILES)
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (doc.errors.length > 0) throw doc.errors[0]
    const obj = doc.toJSON() as Obj | null
    if (obj) objects.push({ file, obj })
  }
const find = (kind: string, name = 'tsproxy'): Obj => {
  const o = objects.find((x) => x.obj.kind === kind && x.obj.metadata?.name === name)
  if (!o) throw new Error(`deploy/ has no ${kind} ${name}`)
  return o.obj
}

// The objects, as `kubectl ... -o name` names them.
const EXPECTED = [
  'serviceaccount/tsproxy',
  'clusterrole.rbac.authorization.k8s.io/tsproxy',
  'clusterrolebinding.rbac.authorization.k8s.io/tsproxy',
  'configmap/tsproxy',
  'daemonset.apps/tsproxy',
]

/** The capabilities the main container keeps, each for a documented reason (deploy/README.md). */
const CAPABILITIES = ['NET_ADMIN', 'NET_RAW']

function findKubectl(): string | undefined {
  const env = process.env.TSPROXY_KUBECTL
  if (env) return env
  if (existsSync('/usr/bin/kubectl')) return '/usr/bin/kubectl'
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, 'kubectl'))) return join(dir, 'kubectl')
  return undefined
}

const KUBECTL = findKubectl()
const scratch = mkdtempSync(join(tmpdir(), 'tsproxy-deploy-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
mkdirSync(join(scratch, 'home'))
writeFileSync(
  join(scratch, 'kubeconfig'),
  [
    'apiVersion: v1',
    'kind: Config',
    'clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]',
    'users: [{name: none, user: {token: none}}]', // a user without credentials makes kubectl 1.20 prompt for a password
    'contexts: [{name: none, context: {cluster: none, user: none}}]',
    'current-context: none',
    '',
  ].join('\n'),
)

function kubectl(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(KUBECTL!, args, {
    encoding: 'utf8',
    input: '',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: join(scratch, 'home'), KUBECONFIG: join(scratch, 'kubeconfig') },
  })
  if (r.error) throw r.error
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Paths of `want` missing or different in `got` (a leaf of `want` must be there, equal). */
function notKept(want: unknown, got: unknown, at = ''): string[] {
  if (want === null || typeof want !== 'object') return Object.is(want, got) ? [] : [`${at || '.'}: ${JSON.stringify(want)} became ${JSON.stringify(got)}`]
  if (got === null || typeof got !== 'object' || Array.isArray(want) !== Array.isArray(got)) return [`${at || '.'}: dropped or retyped`]
  if (Array.isArray(want)) {
    const g = got as unknown[]
    if (g.length < want.length) return [`${at}: ${want.length} items became ${g.length}`]
    return want.flatMap((w, i) => notKept(w, g[i], `${at}[${i}]`))
  }
  return Object.entries(want as Obj).flatMap(([k, w]) => notKept(w, (got as Obj)[k], `${at}.${k}`))
}

t.test('kubectl reads the manifests offline', async (t) => {
  if (!KUBECTL) {
    const why = 'no kubectl (apt-get install kubernetes-client: /usr/bin/kubectl, or set TSPROXY_KUBECTL)'
    if (CI) t.fail(`${why}; CI must have it`)
    else t.skip(why)
    return
  }
  const version = kubectl(['version', '--client'])
  t.comment(`kubectl: ${KUBECTL}: ${(version.stdout.split('\n')[0] ?? '').slice(0, 120)}`)

  t.test('every document parses and names a known object', async (t) => {
    const named: string[] = []
    for (const file of FILES) {
      const r = kubectl(['label', '--local', '-o', 'name', '-f', file, 'tsproxy.io/validated=true'])
      t.equal(r.status, 0, `kubectl label --local -f ${file}`, { stderr: r.stderr })
      named.push(...r.stdout.split('\n').filter(Boolean))
    }
    t.same(named.sort(), [...EXPECTED].sort(), 'exactly the expected objects')
  })

  t.test('the DaemonSet decodes as apps/v1 DaemonSet, every field kept', async (t) => {
    const ds = find('DaemonSet')
    const file = join(scratch, 'daemonset.json')
    writeFileSync(file, JSON.stringify(ds))
    const r = kubectl(['set', 'env', '--local', '-o', 'json', '-f', file, '-c', 'tsproxy', 'TSPROXY_VALIDATE=1'])
    t.equal(r.status, 0, 'kubectl set env --local (typed decoding)', { stderr: r.stderr })
    if (r.status !== 0) return
    const out = JSON.parse(r.stdout) as Obj
    t.equal(out.kind, 'DaemonSet')
    const main = out.spec.template.spec.containers.find((c: Obj) => c.name === 'tsproxy')
    t.same(main.env.at(-1), { name: 'TSPROXY_VALIDATE', value: '1' }, 'kubectl changed what it was asked to')
    main.env.pop()
    t.same(notKept(ds, out), [], 'no field dropped or changed by decoding (misspelled or misplaced fields would be)')
  })

  t.test('the ClusterRoleBinding decodes as rbac/v1, every field kept', async (t) => {
    const crb = find('ClusterRoleBinding')
    const file = join(scratch, 'binding.json')
    writeFileSync(file, JSON.stringify(crb))
    const r = kubectl(['set', 'subject', '--local', '-o', 'json', '-f', file, '--serviceaccount=kube-system:tsproxy-validate'])
    t.equal(r.status, 0, 'kubectl set subject --local (typed decoding)', { stderr: r.stderr })
    if (r.status !== 0) return
    const out = JSON.parse(r.stdout) as Obj
    t.same(out.subjects.at(-1), { kind: 'ServiceAccount', name: 'tsproxy-validate', namespace: 'kube-system' })
    out.subjects.pop()
    t.same(notKept(crb, out), [], 'no field dropped or changed by decoding')
  })

  t.test('the checks see a broken manifest', async (t) => {
    // The typed decoding is what catches these; make sure it does with this kubectl.
    const ds = structuredClone(find('DaemonSet'))
    ds.spec.template.spec.hostNetwrk = true
    const typo = join(scratch, 'typo.json')
    writeFileSync(typo, JSON.stringify(ds))
    const r1 = kubectl(['set', 'env', '--local', '-o', 'json', '-f', typo, '-c', 'tsproxy', 'X=1'])
    t.equal(r1.status, 0)
    t.ok(notKept(ds, JSON.parse(r1.stdout)).some((p) => p.includes('hostNetwrk')), 'a misspelled field is dropped, so noticed')
    ds.spec.template.spec.hostNetwork = 'yes'
    delete ds.spec.template.spec.hostNetwrk
    writeFileSync(typo, JSON.stringify(ds))
    t.not(kubectl(['set', 'env', '--local', '-o', 'json', '-f', typo, '-c', 'tsproxy', 'X=1']).status, 0, 'a field of the wrong type is refused')
    ds.spec.template.spec.hostNetwork = true
    ds.apiVersion = 'apps/v2'
    writeFileSync(typo, JSON.stringify(ds))
    t.not(kubectl(['set', 'env', '--local', '-o', 'json', '-f', typo, '-c', 'tsproxy', 'X=1']).status, 0, 'an unknown apiVersion is refused')
  })
})

t.test('the DaemonSet', async (t) => {
  const ds = find('DaemonSet')
  t.equal(ds.metadata.namespace, 'kube-system')
  const pod = ds.spec.template.spec
  t.equal(pod.hostNetwork, true, 'hostNetwork')
  t.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet')
  t.equal(pod.priorityClassName, 'system-node-critical')
  t.equal(pod.serviceAccountName, 'tsproxy')
  t.same(pod.nodeSelector, { 'kubernetes.io/os': 'linux' })
  t.ok(pod.tolerations.some((x: Obj) => x.operator === 'Exists' && !x.key && !x.effect), 'tolerates every taint')
  t.same(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } })
  t.same(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels, 'the selector matches the pods')

  t.equal(pod.containers.length, 1)
  const main = pod.containers[0]
  t.equal(main.name, 'tsproxy')
  t.match(main.image, /^ghcr\.io\/tsproxy\/tsproxy:/)
  t.same(main.command, ['tsproxy', '--config=/var/lib/tsproxy/config.conf', '--hostname-override=$(NODE_NAME)'])
  t.same(main.env.find((e: Obj) => e.name === 'NODE_NAME'), { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } })
  t.same([main.livenessProbe.httpGet, main.readinessProbe.httpGet], [{ path: '/livez', port: 10256 }, { path: '/healthz', port: 10256 }])
  t.ok(main.resources.requests.cpu && main.resources.requests.memory, 'requests')

  const sc = main.securityContext
  t.equal(sc.privileged, false, 'the daemon is not privileged')
  t.equal(sc.allowPrivilegeEscalation, false)
  t.equal(sc.readOnlyRootFilesystem, true)
  t.same(sc.capabilities.drop, ['ALL'])
  t.same([...sc.capabilities.add].sort(), [...CAPABILITIES].sort(), `capabilities exactly ${CAPABILITIES.join(', ')}`)
  const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8')
  for (const c of CAPABILITIES) t.match(readme, new RegExp(`\\b${c}\\b`), `deploy/README.md explains ${c}`)

  const mounts = new Map<string, Obj>(main.volumeMounts.map((m: Obj) => [m.mountPath, m]))
  const volumes = new Map<string, Obj>(pod.volumes.map((v: Obj) => [v.name, v]))
  const lock = mounts.get('/run/xtables.lock')
  t.ok(lock && !lock.readOnly, 'the xtables lock is mounted writable')
  t.same(volumes.get(lock?.name)?.hostPath, { path: '/run/xtables.lock', type: 'FileOrCreate' })
  const own = mounts.get('/run/tsproxy.lock')
  t.ok(own && !own.readOnly, 'the instance lock is mounted writable (the root filesystem is read-only)')
  t.same(volumes.get(own?.name)?.hostPath, { path: '/run/tsproxy.lock', type: 'FileOrCreate' }, 'from the host: pods of one node share it')
  t.notOk(mounts.has('/lib/modules'), 'the daemon has no /lib/modules (it loads no module)')
  t.equal(mounts.get('/var/lib/tsproxy')?.readOnly, true)
  t.equal(volumes.get(mounts.get('/var/lib/tsproxy')?.name)?.configMap?.name, 'tsproxy')
  for (const v of volumes.values()) if (v.hostPath) t.not(v.hostPath.path, '/proc/sys', 'no writable /proc/sys by hostPath')

  // The init container: the one privileged part, with what it needs and no more.
  t.equal(pod.initContainers.length, 1)
  const init = pod.initContainers[0]
  t.equal(init.name, 'node-setup')
  t.equal(init.image, main.image, 'the same image')
  t.same(init.command, ['tsproxy', '--init-only', '--config=/var/lib/tsproxy/config.conf'], 'tsproxy --init-only, as kube-proxy --init-only')
  // The same configuration as the daemon: the same sysctls, written by the daemon's own code (proxier setup, conntrack section).
  t.same(init.command.filter((a: string) => a.startsWith('--config')), main.command.filter((a: string) => a.startsWith('--config')), 'the daemon\'s --config')
  t.same(init.command.filter((a: string) => a.startsWith('--') && a !== '--init-only' && !a.startsWith('--hostname-override')), main.command.filter((a: string) => a.startsWith('--') && !a.startsWith('--hostname-override')), 'and every flag of the daemon that can change a sysctl')
  t.equal(init.securityContext.privileged, true, 'privileged, for /proc/sys and modprobe')
  const initMounts = new Map<string, Obj>(init.volumeMounts.map((m: Obj) => [m.mountPath, m]))
  t.equal(initMounts.get('/lib/modules')?.readOnly, true, '/lib/modules read-only')
  t.same(volumes.get(initMounts.get('/lib/modules')?.name)?.hostPath, { path: '/lib/modules', type: 'Directory' })
})

t.test('the ClusterRole grants what a service proxy reads, nothing else', async (t) => {
  const role = find('ClusterRole')
  const grants = new Set<string>()
  for (const r of role.rules as Obj[]) {
    t.notOk(r.resourceNames || r.nonResourceURLs, 'no resource names or URLs')
    for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) grants.add(`${g || 'core'}/${res}:${v}`)
  }
  t.same([...grants].sort(), [
    'core/events:create',
    'core/events:patch',
    'core/nodes:get',
    'core/nodes:list',
    'core/nodes:watch',
    'core/services:list',
    'core/services:watch',
    'discovery.k8s.io/endpointslices:list',
    'discovery.k8s.io/endpointslices:watch',
    'events.k8s.io/events:create',
    'events.k8s.io/events:patch',
  ].sort())
  const crb = find('ClusterRoleBinding')
  t.same(crb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'tsproxy' })
  t.same(crb.subjects, [{ kind: 'ServiceAccount', name: 'tsproxy', namespace: 'kube-system' }])
  t.equal(find('ServiceAccount').metadata.namespace, 'kube-system')
})

t.test('the ConfigMap holds a KubeProxyConfiguration tsproxy accepts', async (t) => {
  const cm = find('ConfigMap')
  t.equal(cm.metadata.namespace, 'kube-system')
  const { config, warnings } = parseConfig(cm.data['config.conf'], 'deploy ConfigMap')
  t.same(warnings, [], 'no unknown or ignored fields')
  t.equal(config.mode, 'ipvs')
  t.equal(config.ipvs.scheduler, 'rr')
  t.equal(config.metricsBindAddress, '127.0.0.1:10249')
  t.equal(config.healthzBindAddress, '0.0.0.0:10256')
  t.same(config.conntrack, { ...config.conntrack, maxPerCore: 32768, min: 131072, tcpEstablishedTimeout: 24 * 3600_000, tcpCloseWaitTimeout: 3600_000 })
  t.match(cm.data['config.conf'], /^\s*# clusterCIDR: /m, 'a commented clusterCIDR example')
  const ds = find('DaemonSet')
  const main = ds.spec.template.spec.containers[0]
  for (const e of main.env as Obj[]) {
    const ref = e.valueFrom?.configMapKeyRef
    if (ref) t.ok(ref.optional === true || ref.key in cm.data, `${e.name}: its key is there or optional`)
  }
})

t.test('node-setup.mjs writes what the daemon would', async (t) => {
  const cm = find('ConfigMap')
  const configFile = join(scratch, 'config.conf')
  const text = cm.data['config.conf'] as string
  const script = join(DEPLOY, 'node-setup.mjs')
  const run = (args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 30_000 })

  for (const strictARP of [false, true]) {
    writeFileSync(configFile, strictARP ? text.replace(/strictARP: false/, 'strictARP: true') : text)
    const { config } = parseConfig(readFileSync(configFile, 'utf8'))
    t.equal(config.ipvs.strictARP, strictARP)
    // The daemon's own list: IpvsProxier.setup() on a fake kernel, plus the conntrack section.
    const fake = new FakeDataplane()
    await new IpvsProxier(fake, { family: 'inet', strictARP }).setup()
    const want = new Map<string, number>(fake.sysctls)
    for (const s of conntrackSettings(config.conntrack, availableParallelism())) want.set(s.key, s.value)

    const dry = run([`--config=${configFile}`, '--dry-run'])
    t.equal(dry.status, 0, 'dry run', { stderr: dry.stderr })
    const planned = new Map<string, number>()
    for (const m of dry.stdout.matchAll(/^sysctl (\S+)=(\d+)/gm)) planned.set(m[1]!, Number(m[2]))
    t.same(Object.fromEntries(planned), Object.fromEntries(want), `the daemon's sysctls (strictARP ${strictARP})`)
    const modules = [...dry.stdout.matchAll(/^modprobe (\S+)$/gm)].map((m) => m[1])
    for (const m of ['ip_vs', 'ip_vs_rr', 'ip_set', 'nf_conntrack', 'nf_conntrack_netlink', 'iptable_nat', 'iptable_filter', 'xt_set', 'dummy']) t.ok(modules.includes(m), `loads ${m}`)

    // For real, on a scratch tree: writes what differs, raises nf_conntrack_max only.
    const root = join(scratch, `sys-${strictARP}`)
    for (const key of want.keys()) {
      const path = join(root, key.includes('/') ? key : key.replaceAll('.', '/'))
      mkdirSync(join(path, '..'), { recursive: true })
      writeFileSync(path, key.endsWith('nf_conntrack_max') ? '99999999\n' : '0\n')
    }
    const real = run([`--config=${configFile}`, '--no-modules', `--sysctl-root=${root}`])
    t.equal(real.status, 0, 'applied', { stderr: real.stderr })
    for (const [key, value] of want) {
      const got = Number(readFileSync(join(root, key.includes('/') ? key : key.replaceAll('.', '/')), 'utf8'))
      t.equal(got, key.endsWith('nf_conntrack_max') ? 99999999 : value, key)
    }
  }
})
