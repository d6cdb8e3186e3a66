// node --import ./test/kernel/ts-register.mjs file.ts: see ts-hooks.mjs.
// TSPROXY_TS_CACHE names the dir of precompiled modules (optional).
//
// A kernel test file (*.ktest.ts) flushes and rewrites the netfilter state of
// the network namespace it runs in (ipset destroyAll, nft flush ruleset, ...):
// test/kernel.test.ts runs each one under `unshare -n`, on the host and in the
// box. Started by hand in the machine's own namespace it would wipe the node's
// rules, so it stops here, saying how to run it.
import { readFileSync } from 'node:fs'
import { register } from 'node:module'

// A fresh namespace holds lo only (PID 1's namespace cannot be compared with
// ours: /proc/1/ns/net is not readable in every container, even as root).
if (/\.ktest\.ts$/.test(process.argv[1] ?? '')) {
  let links = []
  try {
    links = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean)
  } catch {
    // Not Linux: nothing to compare.
  }
  const others = links.filter((l) => l !== 'lo')
  if (others.length > 0) {
    process.stderr.write(`${process.argv[1]}: a kernel test rewrites the network namespace it runs in, and this one is not fresh (it has ${others.join(', ')}); run it in its own: unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh node --import ./test/kernel/ts-register.mjs ${process.argv[1]}  (or TSPROXY_KERNEL_TESTS=<name> npx tap test/kernel.test.ts)\n`)
    process.exit(2)
  }
}

register('./ts-hooks.mjs', import.meta.url, {
  data: { cacheDir: process.env.TSPROXY_TS_CACHE || null },
})
