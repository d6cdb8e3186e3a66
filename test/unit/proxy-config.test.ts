// lib/proxy/config.ts: Go durations, KubeProxyConfiguration files (kube-proxy's
// defaults, YAML 1.1, refusals naming the field, warnings for unknown fields),
// kube-proxy's flags (pflag's syntax, refusals naming the flag) and flags over
// the file.
import t, { type Test } from 'tap'
import { isRefusal, thrown } from '../support/refusal.js'
import { ValidationError } from '../../dist/index.js'
import {
  applyFlags,
  clusterCIDRs,
  defaultConfig,
  formatGoDuration,
  ipvsScheduler,
  loadConfig,
  nodeName,
  parseConfig,
  parseFlags,
  parseGoDuration,
  usage,
  validateConfig,
} from '../../dist/proxy/config.js'
import { splitHostPort } from '../../dist/address.js'

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n'

function refused(t: Test, fn: () => unknown, field: string, reason?: RegExp): void {
  const e = thrown(fn)
  if (!isRefusal(t, e, field)) return
  t.equal(e.field, field, `field ${field}`)
  t.ok(e.message.includes(field), 'the message names it')
  if (reason) t.match(e.message, reason)
}

t.test('Go durations', async (t) => {
  const good: [string, number][] = [
    ['0', 0],
    ['-0', 0],
    ['+0', 0],
    ['5s', 5000],
    ['30s', 30000],
    ['1478s', 1478000],
    ['-5s', -5000],
    ['+5s', 5000],
    ['5.0s', 5000],
    ['5.6s', 5600],
    ['5.s', 5000],
    ['.5s', 500],
    ['1.004s', 1004],
    ['100.00100s', 100001],
    ['10ns', 0.00001],
    ['11us', 0.011],
    ['12µs', 0.012],
    ['12μs', 0.012],
    ['13ms', 13],
    ['500ms', 500],
    ['15m', 900000],
    ['16h', 57600000],
    ['1m30s', 90000],
    ['3h30m', 12600000],
    ['10.5s4m', 250500],
    ['-2m3.4s', -123400],
    ['1h2m3s4ms5us6ns', 3723004.005006],
    ['39h9m14.425s', 140954425],
    ['0.3333333333333333333h', 1200000],
    ['9223372036854775807ns', 9223372036854.775],
  ]
  for (const [text, ms] of good) t.equal(parseGoDuration(text), ms, text)
  const bad = ['', '3', '-', 's', '.', '-.', '.s', '+.s', '1d', '1.5', '5s3', '1h-2m', '9223372036854775808ns', '3000000h', '1 s', 'ten seconds']
  for (const text of bad) t.throws(() => parseGoDuration(text), { message: /duration/ }, JSON.stringify(text))

  const fmt: [number, string][] = [
    [0, '0s'],
    [500, '500ms'],
    [30000, '30s'],
    [90000, '1m30s'],
    [3600000, '1h0m0s'],
    [5400000, '1h30m0s'],
    [-120000, '-2m0s'],
    [1500, '1.5s'],
    [0.3, '300µs'],
    [0.00001, '10ns'],
  ]
  for (const [ms, text] of fmt) t.equal(formatGoDuration(ms), text, `${ms} ms`)
})

t.test('a configuration file: kube-proxy defaults for what it leaves out', async (t) => {
  const { config, warnings } = parseConfig(HEAD, 'kube-proxy.yaml')
  t.strictSame(config, defaultConfig())
  t.strictSame(warnings, [])
  t.equal(config.mode, 'iptables', "kube-proxy's default mode")
  t.equal(config.healthzBindAddress, '0.0.0.0:10256')
  t.equal(config.metricsBindAddress, '127.0.0.1:10249', 'metrics on localhost by default')
  t.equal(config.ipvs.syncPeriod, 30000)
  t.equal(config.ipvs.minSyncPeriod, 0)
  t.equal(config.iptables.minSyncPeriod, 1000)
  t.equal(config.iptables.masqueradeBit, 14)
  t.equal(config.conntrack.maxPerCore, 32768)
  t.equal(config.conntrack.min, 131072)
  t.equal(config.conntrack.tcpEstablishedTimeout, 24 * 3600_000)
  t.equal(config.conntrack.tcpCloseWaitTimeout, 3600_000)
  t.equal(config.configSyncPeriod, 15 * 60_000)
  t.equal(config.oomScoreAdj, -999)
  t.equal(ipvsScheduler(config), 'rr', 'blank scheduler is rr')
})

t.test('a configuration file: every field tsproxy reads', async (t) => {
  const { config, warnings } = parseConfig(
    `${HEAD}mode: ipvs
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
hostnameOverride: node-1
bindAddress: 0.0.0.0
healthzBindAddress: 0.0.0.0
metricsBindAddress: 0.0.0.0:10249
nodePortAddresses: [192.168.0.0/16, "fd00::/64"]
oomScoreAdj: -500
configSyncPeriod: 1m
featureGates: {TopologyAwareHints: yes, SomethingElse: off}
detectLocalMode: BridgeInterface
detectLocal: {bridgeInterface: cni0}
clientConnection: {kubeconfig: /var/lib/kube-proxy/kubeconfig.conf, qps: 20, burst: 40}
logging: {format: json, verbosity: 4}
iptables:
  masqueradeAll: true
  masqueradeBit: 15
  localhostNodePorts: false
  syncPeriod: 1m30s
  minSyncPeriod: 2s
ipvs:
  scheduler: wrr
  syncPeriod: 45s
  minSyncPeriod: 500ms
  strictARP: yes
  tcpTimeout: 900s
  tcpFinTimeout: 2m
  udpTimeout: 300ms
  excludeCIDRs: [10.10.0.0/16]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 2h
  tcpCloseWaitTimeout: 30m
  tcpBeLiberal: on
  udpTimeout: 30s
  udpStreamTimeout: 2m
winkernel: {networkName: x}
`,
    'full.yaml',
  )
  t.strictSame(warnings, ['winkernel: not used by tsproxy, ignored'])
  t.equal(config.mode, 'ipvs')
  t.strictSame(clusterCIDRs(config), ['10.244.0.0/16', 'fd00:10:244::/56'])
  t.equal(nodeName(config), 'node-1')
  t.equal(config.healthzBindAddress, '0.0.0.0:10256', 'a bare IP gets the default port')
  t.equal(config.metricsBindAddress, '0.0.0.0:10249')
  t.strictSame(config.nodePortAddresses, ['192.168.0.0/16', 'fd00::/64'])
  t.equal(config.oomScoreAdj, -500)
  t.equal(config.configSyncPeriod, 60000)
  t.strictSame(config.featureGates, { TopologyAwareHints: true, SomethingElse: false }, 'YAML 1.1 yes/off')
  t.equal(config.detectLocalMode, 'BridgeInterface')
  t.equal(config.detectLocal.bridgeInterface, 'cni0')
  t.strictSame(config.clientConnection, { kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf', acceptContentTypes: '', contentType: 'application/vnd.kubernetes.protobuf', qps: 20, burst: 40 })
  t.strictSame(config.logging, { format: 'json', verbosity: 4 })
  t.strictSame(config.iptables, { masqueradeAll: true, masqueradeBit: 15, localhostNodePorts: false, syncPeriod: 90000, minSyncPeriod: 2000 })
  t.strictSame(config.ipvs, { scheduler: 'wrr', syncPeriod: 45000, minSyncPeriod: 500, strictARP: true, tcpTimeout: 900000, tcpFinTimeout: 120000, udpTimeout: 300, excludeCIDRs: ['10.10.0.0/16'] })
  t.strictSame(config.conntrack, { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 7200000, tcpCloseWaitTimeout: 1800000, tcpBeLiberal: true, udpTimeout: 30000, udpStreamTimeout: 120000 }, 'explicit zeros kept where kube-proxy keeps them')
  validateConfig(config)
  t.pass('the whole validates')
})

t.test('a configuration file: YAML 1.1 booleans, zero means default, JSON, IPv6 bind address', async (t) => {
  for (const word of ['yes', 'Yes', 'YES', 'on', 'On', 'ON', 'true', 'True', 'y', 'Y']) t.equal(parseConfig(`${HEAD}ipvs: {strictARP: ${word}}`).config.ipvs.strictARP, true, `strictARP: ${word}`)
  for (const word of ['no', 'No', 'off', 'OFF', 'false', 'n', 'N']) t.equal(parseConfig(`${HEAD}ipvs: {strictARP: ${word}}`).config.ipvs.strictARP, false, `strictARP: ${word}`)
  const z = parseConfig(`${HEAD}mode: ""\nipvs: {syncPeriod: 0s}\niptables: {minSyncPeriod: "0"}\nclusterCIDR: null\n`).config
  t.equal(z.mode, 'iptables', 'blank mode is the default')
  t.equal(z.ipvs.syncPeriod, 30000, '0s sync period is the default')
  t.equal(z.iptables.minSyncPeriod, 1000, '0 min sync period is the default (kube-proxy defaults zero)')
  t.equal(z.clusterCIDR, '', 'null is unset')
  const json = parseConfig(JSON.stringify({ apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', mode: 'ipvs', ipvs: { scheduler: 'lc' } }), 'c.json').config
  t.equal(json.mode, 'ipvs')
  t.equal(json.ipvs.scheduler, 'lc')
  const v6 = parseConfig(`${HEAD}bindAddress: "::"\n`).config
  t.equal(v6.healthzBindAddress, '[::]:10256', 'an IPv6 bind address moves the defaults')
  t.equal(v6.metricsBindAddress, '[::1]:10249')
  t.equal(parseConfig(`${HEAD}healthzBindAddress: "fd00::1"\n`).config.healthzBindAddress, '[fd00::1]:10256')
})

t.test('a configuration file: unknown fields are warnings, with a guess', async (t) => {
  const { config, warnings } = parseConfig(`${HEAD}ipvs: {schedular: wrr}\nmasqueradeAll: true\nfoo: 1\n`)
  t.strictSame(warnings, ['unknown field "ipvs.schedular"; did you mean ipvs.scheduler?', 'unknown field "masqueradeAll"', 'unknown field "foo"'])
  t.equal(config.ipvs.scheduler, '', 'the misspelt field is not applied')
})

t.test('a configuration file: refusals name the field', async (t) => {
  const cases: [string, string, string, RegExp?][] = [
    ['wrong kind', 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n', 'kind'],
    ['wrong apiVersion', 'apiVersion: kubeproxy.config.k8s.io/v1beta1\nkind: KubeProxyConfiguration\n', 'apiVersion'],
    ['a list', '- 1\n', 'KubeProxyConfiguration'],
    ['unknown mode', `${HEAD}mode: userspace\n`, 'mode', /must be one of iptables, ipvs, nftables/],
    ['mode not a string', `${HEAD}mode: 1\n`, 'mode', /must be a string/],
    ['unknown scheduler', `${HEAD}ipvs: {scheduler: fastest}\n`, 'ipvs.scheduler'],
    ['a section not an object', `${HEAD}ipvs: fast\n`, 'ipvs', /must be an object/],
    ['a duration as a number', `${HEAD}ipvs: {syncPeriod: 30}\n`, 'ipvs.syncPeriod', /duration string/],
    ['a duration without unit', `${HEAD}ipvs: {syncPeriod: "30"}\n`, 'ipvs.syncPeriod', /missing unit/],
    ['a negative sync period', `${HEAD}ipvs: {syncPeriod: -1s}\n`, 'ipvs.syncPeriod', /greater than 0/],
    ['a negative min sync period', `${HEAD}iptables: {minSyncPeriod: -1s}\n`, 'iptables.minSyncPeriod', /greater than or equal to 0/],
    ['a negative IPVS timeout', `${HEAD}ipvs: {tcpTimeout: -5s}\n`, 'ipvs.tcpTimeout'],
    ['a quoted boolean', `${HEAD}ipvs: {strictARP: "true"}\n`, 'ipvs.strictARP', /true or false/],
    ['a masquerade bit out of range', `${HEAD}iptables: {masqueradeBit: 32}\n`, 'iptables.masqueradeBit', /\[0, 31\]/],
    ['a masquerade bit not an integer', `${HEAD}iptables: {masqueradeBit: 1.5}\n`, 'iptables.masqueradeBit', /integer/],
    ['a bad cluster CIDR', `${HEAD}clusterCIDR: 10.244.0.0\n`, 'clusterCIDR', /not a valid CIDR/],
    ['two cluster CIDRs of one family', `${HEAD}clusterCIDR: 10.244.0.0/16,10.245.0.0/16\n`, 'clusterCIDR', /different IP families/],
    ['three cluster CIDRs', `${HEAD}clusterCIDR: 10.0.0.0/8,fd00::/8,11.0.0.0/8\n`, 'clusterCIDR'],
    ['a bad node port address', `${HEAD}nodePortAddresses: [10.0.0.1]\n`, 'nodePortAddresses', /not a valid CIDR/],
    ['primary with others', `${HEAD}nodePortAddresses: [primary, 10.0.0.0/8]\n`, 'nodePortAddresses', /primary/],
    ['node port addresses not strings', `${HEAD}nodePortAddresses: [1]\n`, 'nodePortAddresses', /list of strings/],
    ['a bad exclude CIDR', `${HEAD}ipvs: {excludeCIDRs: [nope]}\n`, 'ipvs.excludeCIDRs'],
    ['a host name bind address', `${HEAD}healthzBindAddress: localhost:10256\n`, 'healthzBindAddress', /IP/],
    ['port 0', `${HEAD}metricsBindAddress: 127.0.0.1:0\n`, 'metricsBindAddress', /port/],
    ['a bad bind address', `${HEAD}bindAddress: 0.0.0\n`, 'bindAddress'],
    ['oomScoreAdj out of range', `${HEAD}oomScoreAdj: 1001\n`, 'oomScoreAdj'],
    ['a negative conntrack size', `${HEAD}conntrack: {maxPerCore: -1}\n`, 'conntrack.maxPerCore'],
    ['a feature gate not a boolean', `${HEAD}featureGates: {A: "yes"}\n`, 'featureGates'],
    ['a bad detectLocalMode', `${HEAD}detectLocalMode: PodCIDR\n`, 'detectLocalMode'],
    ['a bad log format', `${HEAD}logging: {format: xml}\n`, 'logging.format'],
  ]
  for (const [name, text, field, reason] of cases) t.test(name, async (t) => refused(t, () => parseConfig(text, 'x.yaml'), field, reason))
  t.throws(() => parseConfig(`${HEAD}ipvs: {scheduler: [\n`, 'x.yaml'), { name: 'SyntaxError', message: /^x\.yaml: YAML: / }, 'a YAML syntax error')
  t.throws(() => parseConfig(`${HEAD}---\n${HEAD}`, 'x.yaml'), { name: 'SyntaxError', message: /expected one document/ }, 'two documents')
})

t.test('validateConfig: the rules across fields', async (t) => {
  const base = defaultConfig()
  const ipvs = { ...base, mode: 'ipvs' as const, ipvs: { ...base.ipvs, syncPeriod: 1000, minSyncPeriod: 2000 } }
  refused(t, () => validateConfig(ipvs), 'ipvs.syncPeriod', /ipvs\.minSyncPeriod \(2s\)/)
  validateConfig({ ...ipvs, mode: 'iptables' })
  t.pass('the IPVS periods are checked in ipvs mode only')
  refused(t, () => validateConfig({ ...base, iptables: { ...base.iptables, syncPeriod: 500 } }), 'iptables.syncPeriod')
  refused(t, () => validateConfig({ ...base, detectLocalMode: 'InterfaceNamePrefix' }), 'detectLocal.interfaceNamePrefix')
  refused(t, () => validateConfig({ ...base, ipvs: { ...base.ipvs, scheduler: 'xyz' } }), 'ipvs.scheduler')
})

t.test('flags: pflag syntax', async (t) => {
  const cases: [string, string[], Record<string, unknown>, Record<string, unknown>?][] = [
    ['--name=value', ['--proxy-mode=ipvs'], { mode: 'ipvs' }],
    ['--name value', ['--proxy-mode', 'ipvs'], { mode: 'ipvs' }],
    ['a bare boolean', ['--masquerade-all'], { 'iptables.masqueradeAll': true, 'nftables.masqueradeAll': true }],
    ['a boolean =false', ['--ipvs-strict-arp=false'], { 'ipvs.strictARP': false }],
    ['a boolean =1', ['--ipvs-strict-arp=1'], { 'ipvs.strictARP': true }],
    ['a boolean does not take the next word', ['--masquerade-all', 'false'], { 'iptables.masqueradeAll': true, 'nftables.masqueradeAll': true }, { args: ['false'] }],
    ['-v 4', ['-v', '4'], { 'logging.verbosity': 4 }],
    ['-v=2', ['-v=2'], { 'logging.verbosity': 2 }],
    ['--v=3', ['--v=3'], { 'logging.verbosity': 3 }],
    ['-h', ['-h'], {}, { help: true }],
    ['a value that starts with a dash', ['--hostname-override', '-odd-'], { hostnameOverride: '-odd-' }],
    ['a duration', ['--ipvs-sync-period=1m30s', '--ipvs-min-sync-period', '500ms'], { 'ipvs.syncPeriod': 90000, 'ipvs.minSyncPeriod': 500 }],
    ['a list, repeated', ['--nodeport-addresses=10.0.0.0/8,fd00::/64', '--nodeport-addresses', '192.168.0.0/16'], { nodePortAddresses: ['10.0.0.0/8', 'fd00::/64', '192.168.0.0/16'] }],
    ['feature gates', ['--feature-gates=A=true,B=false'], { featureGates: { A: true, B: false } }],
    ['the last value wins', ['--proxy-mode=iptables', '--proxy-mode=ipvs'], { mode: 'ipvs' }],
    ['blank mode is iptables', ['--proxy-mode='], { mode: 'iptables' }],
    ['a bare bind IP gets its port', ['--metrics-bind-address=0.0.0.0'], { metricsBindAddress: '0.0.0.0:10249' }],
    ['an empty bind address disables', ['--healthz-bind-address='], { healthzBindAddress: '' }],
    ['the int flags', ['--iptables-masquerade-bit=15', '--oom-score-adj=-100', '--conntrack-max-per-core', '0'], { 'iptables.masqueradeBit': 15, oomScoreAdj: -100, 'conntrack.maxPerCore': 0 }],
    ['everything the daemon takes', ['--cluster-cidr=10.244.0.0/16', '--ipvs-scheduler=lc', '--kubeconfig=/k', '--metrics-bind-address=127.0.0.1:9999'], { clusterCIDR: '10.244.0.0/16', 'ipvs.scheduler': 'lc', 'clientConnection.kubeconfig': '/k', metricsBindAddress: '127.0.0.1:9999' }],
    [
      'options and subcommands',
      ['status', '--config', '/etc/kp.yaml', '--master=https://10.0.0.1:6443', '--manifests', '/srv/manifests', '--cleanup', '--version', '--', '--not-a-flag'],
      {},
      { config: '/etc/kp.yaml', master: 'https://10.0.0.1:6443', manifests: '/srv/manifests', cleanup: true, version: true, args: ['status', '--not-a-flag'] },
    ],
  ]
  for (const [name, argv, settings, options] of cases) {
    const r = parseFlags(argv)
    const got: Record<string, unknown> = {}
    for (const s of r.settings) got[s.path] = s.value
    t.strictSame(got, settings, `${name}: settings`)
    t.match(r.options, { cleanup: false, help: false, version: false, args: [], ...options }, `${name}: options`)
  }
})

t.test('flags: refusals name the flag', async (t) => {
  const cases: [string, string[], string, RegExp][] = [
    ['an unknown flag', ['--proxy-mod=ipvs'], '--proxy-mod', /not a flag tsproxy knows; did you mean --proxy-mode\?/],
    ['an unknown flag, no guess', ['--frobnicate'], '--frobnicate', /not a flag tsproxy knows; see --help/],
    ['one dash on a long flag', ['-proxy-mode=ipvs'], '-proxy-mode', /two dashes \(--proxy-mode\)/],
    ['an unknown shorthand', ['-x'], '-x', /not a flag/],
    ['a missing value', ['--hostname-override'], '--hostname-override', /needs a value/],
    ['a bad boolean', ['--masquerade-all=maybe'], '--masquerade-all', /true or false/],
    ['a bad int', ['--iptables-masquerade-bit=x'], '--iptables-masquerade-bit', /integer/],
    ['an int out of range', ['--iptables-masquerade-bit=40'], '--iptables-masquerade-bit', /\[0, 31\]/],
    ['a bad duration', ['--ipvs-sync-period=30'], '--ipvs-sync-period', /missing unit/],
    ['a negative sync period', ['--ipvs-sync-period=-1s'], '--ipvs-sync-period', /greater than 0/],
    ['a bad scheduler', ['--ipvs-scheduler=fastest'], '--ipvs-scheduler', /must be one of/],
    ['a bad mode', ['--proxy-mode=userspace'], '--proxy-mode', /must be one of/],
    ['a bad cluster CIDR', ['--cluster-cidr=10.0.0.0/33'], '--cluster-cidr', /CIDR/],
    ['a bad bind address', ['--healthz-bind-address=:10256'], '--healthz-bind-address', /IP/],
    ['bad feature gates', ['--feature-gates=A'], '--feature-gates', /name=true\|false/],
    ['a bad -v', ['-v', 'loud'], '--v', /integer/],
    ...['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'].flatMap((name): [string, string[], string, RegExp][] => [
      [`--${name}`, [`--${name}`], `--${name}`, /not a flag tsproxy knows/],
      [`-${name}`, [`-${name}`], `-${name}`, /two dashes/],
    ]),
  ]
  for (const [name, argv, field, reason] of cases) {
    t.test(name, async (t) => {
      refused(t, () => parseFlags(argv), field, reason)
      try {
        parseFlags(argv)
      } catch (e) {
        t.equal((e as ValidationError).op, 'flags')
      }
    })
  }
})

t.test('loadConfig: the file, then the flags over it, then validation', async (t) => {
  const files: Record<string, string> = {
    '/etc/kp.yaml': `${HEAD}mode: iptables\nipvs: {scheduler: wrr, minSyncPeriod: 10s}\nhostnameOverride: from-file\n`,
    '/etc/bad.yaml': `${HEAD}ipvs: {scheduler: nope}\n`,
  }
  const io = {
    readFile: async (p: string) => {
      const text = files[p]
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' })
      return text
    },
  }
  const r = await loadConfig(['--config=/etc/kp.yaml', '--proxy-mode=ipvs', '--ipvs-strict-arp', '--hostname-override=Node-7', '--manifests=/m'], io)
  t.equal(r.config.mode, 'ipvs', 'the flag wins over the file')
  t.equal(r.config.ipvs.scheduler, 'wrr', 'the file applies where no flag says otherwise')
  t.equal(r.config.ipvs.strictARP, true)
  t.equal(r.config.ipvs.minSyncPeriod, 10000)
  t.equal(nodeName(r.config), 'node-7', 'the node name is lowercased')
  t.equal(r.options.manifests, '/m')
  t.equal(r.options.config, '/etc/kp.yaml')
  t.strictSame(r.warnings, [
    '--proxy-mode="ipvs" overrides mode: "iptables" from /etc/kp.yaml',
    '--ipvs-strict-arp=true overrides ipvs.strictARP: false from /etc/kp.yaml',
    '--hostname-override="Node-7" overrides hostnameOverride: "from-file" from /etc/kp.yaml',
  ], 'each flag that changes the file\'s value is said, with both values')
  const same = await loadConfig(['--config=/etc/kp.yaml', '--proxy-mode=iptables', '--ipvs-min-sync-period=2s', '--ipvs-min-sync-period=10s'], io)
  t.strictSame(same.warnings, [], 'a flag that repeats the file\'s value changes nothing: no line')
  const period = await loadConfig(['--config=/etc/kp.yaml', '--ipvs-min-sync-period=5s'], io)
  t.strictSame(period.warnings, ['--ipvs-min-sync-period=5s overrides ipvs.minSyncPeriod: 10s from /etc/kp.yaml'], 'durations as Go writes them')
  t.strictSame((await loadConfig(['--proxy-mode=ipvs'], io)).warnings, [], 'without --config: nothing to override')

  const noFile = await loadConfig(['--proxy-mode=ipvs'], io)
  t.equal(noFile.config.ipvs.syncPeriod, 30000, 'without --config: the defaults')

  await t.rejects(loadConfig(['--config=/etc/kp.yaml', '--proxy-mode=ipvs', '--ipvs-sync-period=5s'], io), { name: 'ValidationError', field: 'ipvs.syncPeriod' }, 'a flag and the file together break a rule')
  await t.rejects(loadConfig(['--config=/etc/bad.yaml'], io), { name: 'ValidationError', field: 'ipvs.scheduler', message: /\/etc\/bad\.yaml/ }, 'the file is named')
  await t.rejects(loadConfig(['--config=/etc/missing.yaml'], io), { code: 'ENOENT' })
  await t.rejects(loadConfig(['--config='], io), { name: 'ValidationError', field: '--config' })
  await t.rejects(loadConfig(['--bogus'], io), { name: 'ValidationError', field: '--bogus' })
})

t.test('applyFlags copies', async (t) => {
  const base = defaultConfig()
  const out = applyFlags(base, [{ path: 'nodePortAddresses', flag: '--nodeport-addresses', value: ['10.0.0.0/8'] }])
  t.strictSame(out.nodePortAddresses, ['10.0.0.0/8'])
  t.strictSame(base.nodePortAddresses, [], 'the input is untouched')
})

t.test('helpers', async (t) => {
  t.equal(nodeName({ hostnameOverride: '  Worker-1 ' }), 'worker-1')
  t.equal(nodeName({ hostnameOverride: '' }, () => 'HOST-A'), 'host-a', 'the host name when not overridden')
  t.strictSame(clusterCIDRs({ clusterCIDR: '' }), [])
  t.strictSame(splitHostPort('127.0.0.1:10249'), { host: '127.0.0.1', port: 10249 })
  t.strictSame(splitHostPort('[::1]:10249'), { host: '::1', port: 10249 })
  t.equal(splitHostPort(''), undefined)
  t.equal(ipvsScheduler({ ipvs: { ...defaultConfig().ipvs, scheduler: 'sh' } }), 'sh')
  const help = usage()
  for (const flag of ['--proxy-mode', '--cluster-cidr', '--masquerade-all', '--ipvs-scheduler', '--ipvs-strict-arp', '--hostname-override', '--healthz-bind-address', '--metrics-bind-address', '--config', '--kubeconfig', '--master', '-v, --v', '--manifests'])
    t.ok(help.includes(`\n  ${flag} `) || help.includes(`\n  ${flag}\n`), `--help lists ${flag}`)
})
