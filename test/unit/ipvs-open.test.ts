// On a kernel without IPVS (this project's host kernel), Ipvs.open() says so
// clearly instead of failing later with a bare errno.
import t from 'tap'
import { existsSync } from 'node:fs'
import { Ipvs, NetlinkError } from '../../dist/index.js'

t.test('open rejects with ENOENT and the module to load when the kernel has no IPVS', { skip: existsSync('/proc/net/ip_vs') && 'this kernel has IPVS (checked in the kernel box instead)' }, async (t) => {
  const err = await Ipvs.open().then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof NetlinkError)
  t.match(err, { errno: 2, code: 'ENOENT', op: 'ipvs.open', message: /no IPVS.*modprobe ip_vs/ })
})
