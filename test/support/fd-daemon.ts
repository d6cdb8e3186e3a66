// The daemon on the in-memory kernel in a process of its own, for tests that
// need a process limit (ulimit -n) of its own:
//   node --import ./test/kernel/ts-register.mjs test/support/fd-daemon.ts DIR
// Its JSON log lines go to stderr; once started, one stdout line gives the
// ports ({ healthz, metrics }). Over the IPC channel (already open, so it needs
// no new descriptor), 'status' answers the programmed services and the count
// of open descriptors.
import { readdirSync } from 'node:fs'
import { Daemon } from '../../dist/proxy/daemon.js'
import { defaultConfig } from '../../dist/proxy/config.js'
import type { Log } from '../../dist/proxy/types.js'
import { FakeDataplane } from './fake-dataplane.js'

const dir = process.argv[2]!
const log: Log = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ level, msg, ...fields }, (_k, v: unknown) => (v instanceof Error ? v.message : v))}\n`)
}
const sysctl = new Map<string, number>()
const d = new Daemon({
  config: { ...defaultConfig(), mode: 'ipvs', healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0' },
  manifests: dir,
  log,
  dataplane: new FakeDataplane({ nodeAddresses: [{ link: 'eth0', address: '192.168.1.10', prefix: 24 }] }),
  nodeName: 'n1',
  sysctl: { get: async (k) => sysctl.get(k) ?? 0, set: async (k, v) => void sysctl.set(k, v) },
})
await d.start()
process.stdout.write(`${JSON.stringify(d.ports)}\n`)
process.on('message', (m) => {
  if (m !== 'status') return
  void d.status().then((entries) => {
    let fds = -1
    try {
      fds = readdirSync('/proc/self/fd').length
    } catch {
      // EMFILE: reading the directory needs a descriptor too.
    }
    process.send!({ services: entries.map((e) => `${e.service} ${e.vip}`), fds })
  })
})
process.on('SIGTERM', () => void d.stop().then(() => process.exit(0)))
