#!/usr/bin/env node
// The privileged half of the tsproxy pod (the DaemonSet's init container): loads
// the kernel modules IPVS mode uses and writes the sysctls the daemon would write,
// from the same KubeProxyConfiguration, so that the unprivileged daemon finds them
// right and only reads them (it cannot write: /proc/sys is read-only in an
// unprivileged container).
//
//   node deploy/node-setup.mjs --config=FILE [kube-proxy flags] [--no-modules] [--sysctl-root=DIR] [--dry-run]
//
// The sysctls are those of IpvsProxier.setup() (lib/proxy/ipvs/proxier.ts) and of
// the `conntrack` section (lib/proxy/conntrack-settings.ts, nf_conntrack_max never
// lowered). The modules: a module that cannot be loaded is an error when the daemon
// cannot work without it (IPVS, ipset, conntrack, the iptables tables), a warning
// otherwise; modprobe succeeds for modules built into the kernel.
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { pathToFileURL } from 'node:url'
import { clusterCIDRs, ipvsScheduler, loadConfig } from '../dist/proxy/config.js'
import { conntrackSettings } from '../dist/proxy/conntrack-settings.js'
import { SYSCTL, ensureSysctl, getSysctl, setSysctl } from '../dist/sysctl.js'

/** Modules without which the daemon cannot start. */
const REQUIRED = ['ip_vs', 'nf_conntrack', 'nf_conntrack_netlink', 'ip_set', 'ip_tables', 'iptable_nat', 'iptable_filter']
/** Modules the rules and sets use (the kernel would usually load them on demand). */
const WANTED = [
  'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_sh',
  'ip_set_hash_ip', 'ip_set_hash_ip_port', 'ip_set_hash_ip_port_ip', 'ip_set_hash_ip_port_net', 'ip_set_hash_net', 'ip_set_bitmap_port',
  'nf_nat', 'xt_set', 'xt_comment', 'xt_mark', 'xt_addrtype', 'xt_conntrack', 'xt_MASQUERADE', 'xt_physdev', 'xt_tcpudp', 'ipt_REJECT',
  'dummy',
]
const IPV6 = ['ip6_tables', 'ip6table_nat', 'ip6table_filter', 'ip6t_REJECT']

/** The module list for a configuration. */
export function modulesFor(config) {
  const required = [...REQUIRED]
  const wanted = [...WANTED]
  const scheduler = `ip_vs_${ipvsScheduler(config)}`
  if (!wanted.includes(scheduler)) required.push(scheduler)
  else required.push(...wanted.splice(wanted.indexOf(scheduler), 1))
  const v6 = clusterCIDRs(config).some((c) => c.includes(':'))
  ;(v6 ? required : wanted).push(...IPV6)
  return { required, wanted }
}

/** The sysctls for a configuration, in the order the daemon applies them. */
export function sysctlsFor(config, cpus = availableParallelism()) {
  const out = conntrackSettings(config.conntrack, cpus).map((s) => ({ ...s }))
  out.push(
    { key: SYSCTL.ipvsConntrack, value: 1 },
    { key: SYSCTL.expireNodestConn, value: 1 },
    { key: SYSCTL.expireQuiescentTemplate, value: 1 },
    { key: SYSCTL.ipForward, value: 1 },
  )
  if (config.ipvs.strictARP) out.push({ key: SYSCTL.arpIgnore(), value: 1 }, { key: SYSCTL.arpAnnounce(), value: 2 })
  return out
}

function log(level, msg, fields = {}) {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, component: 'node-setup', ...fields })}\n`)
}

async function main(argv) {
  const own = { modules: true, root: undefined, dryRun: false }
  const rest = []
  for (const a of argv) {
    if (a === '--no-modules') own.modules = false
    else if (a === '--dry-run') own.dryRun = true
    else if (a.startsWith('--sysctl-root=')) own.root = a.slice('--sysctl-root='.length)
    else rest.push(a)
  }
  const { config, warnings } = await loadConfig(rest, { readFile: (p) => readFile(p, 'utf8') })
  for (const w of warnings) log('warn', w)
  let failed = false

  if (own.modules) {
    const { required, wanted } = modulesFor(config)
    for (const m of [...required, ...wanted]) {
      if (own.dryRun) {
        process.stdout.write(`modprobe ${m}\n`)
        continue
      }
      const r = spawnSync('modprobe', [m], { encoding: 'utf8' })
      if (r.status === 0) continue
      const why = (r.error?.message ?? r.stderr ?? '').trim()
      if (required.includes(m)) {
        log('error', 'cannot load a kernel module tsproxy needs', { module: m, error: why })
        failed = true
      } else {
        log('warn', 'cannot load a kernel module (the kernel may load it on demand)', { module: m, error: why })
      }
    }
  }

  const options = own.root ? { root: own.root } : undefined
  const changed = []
  for (const s of sysctlsFor(config)) {
    if (own.dryRun) {
      process.stdout.write(`sysctl ${s.key}=${s.value}${s.raiseOnly ? ' (raise only)' : ''}\n`)
      continue
    }
    try {
      if (s.raiseOnly) {
        if ((await getSysctl(s.key, options)) >= s.value) continue
        await setSysctl(s.key, s.value, options)
        changed.push(s.key)
      } else if (await ensureSysctl(s.key, s.value, options)) changed.push(s.key)
    } catch (e) {
      // As the daemon: a conntrack setting that cannot be written is a warning; the
      // IPVS keys are needed (the daemon would refuse to start without them).
      const conntrack = s.key.startsWith('net.netfilter.')
      log(conntrack ? 'warn' : 'error', 'cannot set a sysctl', { key: s.key, value: s.value, error: e.message })
      if (!conntrack) failed = true
    }
  }
  if (!own.dryRun) log(failed ? 'error' : 'info', failed ? 'node setup incomplete' : 'node ready', { sysctlsChanged: changed })
  return failed ? 1 : 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      log('error', 'node setup failed', { error: e.message })
      process.exit(2)
    },
  )
}
