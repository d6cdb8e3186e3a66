// The package as a user gets it: `npm pack` of a fresh checkout (the tracked and
// untracked-but-not-ignored files of this tree, no dist/ or build/), installed into an
// empty folder, then the library imported and the `tsproxy` command run from there.
//
// Offline: the install folder gets a lockfile naming the dependencies at the versions
// and integrities of this repo's package-lock.json (what `npm ci` put in the npm cache),
// so `npm ci --offline` needs no registry metadata. The install script builds the addon
// from binding.gyp + native/ (node-gyp, ~30-45 s) unless prebuilds/ ships one.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

t.setTimeout(600_000)

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'))

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  // npm_config_* from an enclosing `npm test` would leak into the nested npm runs.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(config|package|lifecycle)_/i.test(k)))
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 })
}
const out = (r: SpawnSyncReturns<string>): string => `exit ${r.status}\n${r.stdout}\n${r.stderr}`.slice(-4000)

const scratch = mkdtempSync(join(tmpdir(), 'tsproxy-pack-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT)
if (files.status !== 0) throw new Error(`git ls-files failed (the test needs a git checkout): ${out(files)}`)
const clone = join(scratch, 'clone')
for (const f of files.stdout.split('\0').filter(Boolean)) {
  if (!existsSync(join(ROOT, f))) continue // deleted in the work tree, not yet in the index
  mkdirSync(dirname(join(clone, f)), { recursive: true })
  cpSync(join(ROOT, f), join(clone, f), { verbatimSymlinks: true })
}
// The dev dependencies prepack needs (tsc), as a fresh clone has them after `npm ci`.
symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'))

const tarball = join(scratch, `${pkg.name}-${pkg.version}.tgz`)

t.test('npm pack of a fresh checkout ships the built library', async (t) => {
  t.notOk(existsSync(join(clone, 'dist')), 'the checkout has no dist/')
  const packed = run('npm', ['pack', '--json', '--pack-destination', scratch], clone)
  t.equal(packed.status, 0, 'npm pack succeeds', { output: out(packed) })
  const json = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))
  const paths = new Set<string>(json[0].files.map((f: { path: string }) => f.path))
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/native.js', 'dist/proxy/main.js', 'binding.gyp', 'package.json', 'LICENSE']) {
    t.ok(paths.has(f), `the tarball has ${f}`)
  }
  t.ok([...paths].some((p) => p.startsWith('native/') && p.endsWith('.cc')), 'the tarball has the addon sources')
  t.notOk([...paths].some((p) => p.startsWith('test/')), 'no tests in the tarball')
  t.ok(existsSync(tarball), `npm pack wrote ${tarball}`)
})

t.test('the tarball installs into an empty folder; the library imports and tsproxy runs', async (t) => {
  const app = join(scratch, 'app')
  mkdirSync(app)
  const spec = `file:${tarball}`
  const packages: Record<string, unknown> = {
    '': { dependencies: { [pkg.name]: spec } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version, resolved: spec, hasInstallScript: true, dependencies: pkg.dependencies, bin: pkg.bin,
    },
  }
  for (const name of Object.keys(pkg.dependencies)) {
    const e = lock.packages[`node_modules/${name}`]
    t.ok(e, `package-lock.json has ${name}`)
    packages[`node_modules/${name}`] = { version: e.version, integrity: e.integrity, ...(e.bin ? { bin: e.bin } : {}) }
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ private: true, dependencies: { [pkg.name]: spec } }))
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ lockfileVersion: 3, requires: true, packages }))

  const inst = run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app)
  t.equal(inst.status, 0, 'npm ci --offline succeeds', { output: out(inst) })
  const installed = join(app, 'node_modules', pkg.name)
  t.ok(existsSync(join(installed, 'build/Release/tsproxy.node')) || existsSync(join(installed, 'prebuilds')),
    'the addon was built at install, or came from prebuilds/')

  // Stack traces and debuggers follow dist/*.js.map to its sources: they must be in the package.
  const missing: string[] = []
  const maps = readdirSync(join(installed, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js.map'))
  for (const m of maps) {
    const map = JSON.parse(readFileSync(join(installed, 'dist', m), 'utf8'))
    for (const src of map.sources as string[]) {
      const abs = resolve(dirname(join(installed, 'dist', m)), map.sourceRoot ?? '', src)
      if (!abs.startsWith(installed + sep) || !existsSync(abs)) missing.push(`${m} -> ${src}`)
    }
  }
  t.ok(maps.length > 0, `dist/ has source maps (${maps.length})`)
  t.same(missing.slice(0, 5), [], `every source map points at a file the package ships (${missing.length} do not)`)

  const probe = `import('${pkg.name}').then((m) => console.log(JSON.stringify({
    ipvs: typeof m.Ipvs, ipset: typeof m.IpSet, iptables: typeof m.Iptables, rtnl: typeof m.Rtnl,
    conntrack: typeof m.Conntrack, netlinkError: typeof m.NetlinkError, proxy: typeof m.proxy })))`
  const imp = run(process.execPath, ['-e', probe], app)
  t.equal(imp.status, 0, `import('${pkg.name}') works`, { output: out(imp) })
  t.same(imp.status === 0 ? JSON.parse(imp.stdout) : {}, {
    ipvs: 'function', ipset: 'function', iptables: 'function', rtnl: 'function',
    conntrack: 'function', netlinkError: 'function', proxy: 'object',
  }, 'the main exports are there')

  const bin = join(app, 'node_modules/.bin/tsproxy')
  t.ok(existsSync(bin), 'npm linked the tsproxy command')
  const help = run(bin, ['--help'], app)
  t.equal(help.status, 0, 'tsproxy --help exits 0', { output: out(help) })
  t.match(help.stdout, /^Usage: tsproxy/, 'and prints the usage')
  t.match(help.stdout, /--proxy-mode/, 'with the flags')
})
