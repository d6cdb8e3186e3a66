// test/kernel/ts-register.mjs refuses to start a kernel test file in a network
// namespace that is not fresh (the test would flush the node's own rules); a
// file that is not a kernel test loads as before.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const register = new URL('../kernel/ts-register.mjs', import.meta.url).pathname
const links = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean)
const fresh = links.every((l) => l === 'lo')

t.test('a *.ktest.ts file in a namespace with other links: exit 2, nothing of it run', { skip: fresh && 'this namespace holds lo only' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-guard-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'x.ktest.ts')
  writeFileSync(file, "process.stdout.write('ran')\n")
  const r = spawnSync(process.execPath, ['--import', register, file], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.equal(r.stdout, '', 'the file did not run')
  t.match(r.stderr, /not fresh .*unshare -n/)
  const other = join(dir, 'x.ts')
  writeFileSync(other, "process.stdout.write('ran')\n")
  const ok = spawnSync(process.execPath, ['--import', register, other], { encoding: 'utf8' })
  t.equal(ok.stdout, 'ran', 'any other file runs')
})
