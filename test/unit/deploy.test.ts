// deploy/: the manifests as kubectl reads them (offline, no cluster), and what they
// promise checked on the objects themselves: the DaemonSet's privileges, the RBAC
// rules, the KubeProxyConfiguration (through tsproxy's own parser), the way to the API
// server (kubeadm's kube-proxy kubeconfig, mounted where config.conf says), and the
// Dockerfile's build context.
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
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { parseConfig } from '../../dist/proxy/config.js'
import { SERVICE_ACCOUNT_DIR } from '../../dist/proxy/sources/kube/connection.js'

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
  t.notOk(mounts.has('/lib/modules'), 'the daemon has no /lib/modules (the kernel loads modules with the node\'s modprobe)')
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
  t.equal(init.securityContext.privileged, true, 'privileged, for /proc/sys')
  // No modprobe runs in the pod: opening IPVS, ipset, conntrack or a table has the kernel
  // run the node's own modprobe (a usermode helper, in the host's namespaces).
  t.same(init.volumeMounts.map((m: Obj) => m.mountPath), ['/var/lib/tsproxy'], 'the init container mounts the configuration only')
  t.notOk([...volumes.values()].some((v) => v.hostPath?.path === '/lib/modules'), 'no /lib/modules from the host')
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

/** The kube-proxy ConfigMap as kubeadm makes it (test/fixtures/kubeadm/). */
function kubeadmConfigMap(): Obj {
  const file = fileURLToPath(new URL('../fixtures/kubeadm/kube-proxy-configmap.yaml', import.meta.url))
  return parseAllDocuments(readFileSync(file, 'utf8'))[0]!.toJSON() as Obj
}

/** The file a container sees at `path`: its mount (the longest prefix) and the ConfigMap key behind it, if any. */
function configMapFileAt(pod: Obj, container: Obj, path: string): { configMap: string; key: string } | undefined {
  const mount = (container.volumeMounts as Obj[])
    .filter((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
  if (!mount) return undefined
  const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)
  if (!volume?.configMap) return undefined
  const rest = posix.relative(mount.mountPath, path)
  const items = volume.configMap.items as Obj[] | undefined
  const key = items ? items.find((i) => i.path === rest)?.key : rest
  return key === undefined ? undefined : { configMap: volume.configMap.name, key }
}

t.test('the API server is reached through kubeadm\'s kube-proxy kubeconfig, not the Service IP', async (t) => {
  const cm = find('ConfigMap')
  const pod = find('DaemonSet').spec.template.spec
  const main = pod.containers[0]
  const { config } = parseConfig(cm.data['config.conf'], 'deploy ConfigMap')
  const kubeadm = kubeadmConfigMap()
  const kubeadmConfig = parseConfig(kubeadm.data['config.conf'], 'kubeadm kube-proxy ConfigMap').config

  // --config: the tsproxy ConfigMap's config.conf.
  const configFlag = (main.command as string[]).find((a) => a.startsWith('--config='))!.slice('--config='.length)
  t.same(configMapFileAt(pod, main, configFlag), { configMap: 'tsproxy', key: 'config.conf' }, `--config=${configFlag} is the ConfigMap's config.conf`)

  // clientConnection.kubeconfig: kubeadm's kubeconfig.conf, at the path kube-proxy reads it from.
  const kubeconfig = config.clientConnection.kubeconfig
  t.ok(posix.isAbsolute(kubeconfig), `clientConnection.kubeconfig is set, absolute (${kubeconfig})`)
  t.same(configMapFileAt(pod, main, kubeconfig), { configMap: 'kube-proxy', key: 'kubeconfig.conf' }, 'and mounted there from kube-proxy\'s ConfigMap')
  t.equal(kubeconfig, kubeadmConfig.clientConnection.kubeconfig, 'the same path as kubeadm\'s config.conf gives kube-proxy')
  t.ok('kubeconfig.conf' in kubeadm.data, 'a key kubeadm\'s ConfigMap has')
  const volume = (pod.volumes as Obj[]).find((v) => v.configMap?.name === 'kube-proxy')!
  t.same(volume.configMap.items.map((i: Obj) => i.key), ['kubeconfig.conf'], 'only the kubeconfig: kube-proxy\'s config.conf stays out of the pod')
  t.not(volume.configMap.optional, true, 'not optional: a cluster without it fails visibly at pod start')
  const mount = (main.volumeMounts as Obj[]).find((m) => m.name === volume.name)!
  t.equal(mount.readOnly, true)
  t.notOk(main.env?.some((e: Obj) => /^KUBERNETES_SERVICE_/.test(e.name)), 'no in-cluster address override left over')

  // The kubeconfig's credentials are the pod's own service account: mounted by the kubelet.
  const kc = parseAllDocuments(kubeadm.data['kubeconfig.conf'])[0]!.toJSON() as Obj
  t.same(
    [kc.users[0].user.tokenFile, kc.clusters[0].cluster['certificate-authority']],
    [`${SERVICE_ACCOUNT_DIR}/token`, `${SERVICE_ACCOUNT_DIR}/ca.crt`],
    'kubeadm\'s kubeconfig: the reading pod\'s service-account token and CA',
  )
  t.not(pod.automountServiceAccountToken, false, 'the service-account token is mounted')
  t.not(main.automountServiceAccountToken, false)
  t.notOk((main.volumeMounts as Obj[]).some((m) => SERVICE_ACCOUNT_DIR.startsWith(m.mountPath) || m.mountPath.startsWith(SERVICE_ACCOUNT_DIR)), 'nothing mounted over the service-account directory')
})

t.test('the Dockerfile copies only what its build context holds', async (t) => {
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8')
  const ignore = readFileSync(join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  t.equal(ignore[0], '*', 'everything excluded first')
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''))
  const root = dirname(DEPLOY.replace(/\/$/, ''))
  const copied: string[] = []
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
    const words = m[1]!.trim().split(/\s+/)
    copied.push(...words.slice(0, -1))
  }
  t.ok(copied.length > 0, 'COPY lines from the context')
  for (const src of copied) {
    t.ok(existsSync(join(root, src)), `${src} exists`)
    t.ok(allowed.includes(src.replace(/\/$/, '')), `${src} is in the build context (Dockerfile.dockerignore)`)
  }
  for (const a of allowed) t.ok(copied.some((c) => c.replace(/\/$/, '') === a), `${a}: the context holds nothing the Dockerfile does not copy`)
  t.notMatch(dockerfile, /node-setup/, 'no node-setup script')
})

t.test('the replace path applies all but the DaemonSet first, by label', async (t) => {
  // deploy/README.md step 2: `kubectl apply -l 'app.kubernetes.io/component!=proxy'` (a
  // `!=` selector also picks objects without the label).
  const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8')
  t.match(readme, /kubectl apply -f deploy\/tsproxy\.yaml -l 'app\.kubernetes\.io\/component!=proxy'/, 'the command is in deploy/README.md')
  const picked = objects.filter(({ obj }) => obj.metadata?.labels?.['app.kubernetes.io/component'] !== 'proxy').map(({ obj }) => obj.kind)
  t.same(picked.sort(), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'ServiceAccount'], 'everything but the DaemonSet')
  const ds = find('DaemonSet')
  t.notOk('app.kubernetes.io/component' in ds.spec.selector.matchLabels, 'the label is not part of the (immutable) selector')
})
