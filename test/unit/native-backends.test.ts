// The addon built by both backends is the same addon: `npm run prebuilds:cmake-js`
// (prebuildify driving cmake-js and CMakeLists.txt) in a fresh checkout, offline,
// against build/Release/tsproxy.node from node-gyp and binding.gyp (`npm test`
// compiles it first). Both must export the same names, nested objects and class
// methods included, and agree on the kernel struct layouts they were compiled with;
// the cmake-js prebuild must hold the glibc floor, be what node-gyp-build picks on
// glibc, and load. About a minute of compiling; needs cmake (Debian's `cmake`),
// a visible skip without it outside CI and a failure in CI.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { MAX_VERSIONS, highestVersion, readVersionNeeds, versionsOverFloor } from '../support/elf.js'

t.setTimeout(600_000)

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const GYP_BUILD = join(ROOT, 'build/Release/tsproxy.node')

function run(cmd: string, args: string[], cwd: string, extra: Record<string, string> = {}): SpawnSyncReturns<string> {
  // npm_config_* from an enclosing `npm test` would leak into the nested npm run (and
  // npm_config_nodedir would hide a header download); none is needed.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(config|package|lifecycle)_/i.test(k)))
  return spawnSync(cmd, args, { cwd, env: { ...env, ...extra }, encoding: 'utf8', maxBuffer: 64 << 20 })
}
const out = (r: SpawnSyncReturns<string>): string => `exit ${r.status} ${r.error ?? ''}\n${r.stdout}\n${r.stderr}`.slice(-4000)

const hasCmake = run('cmake', ['--version'], ROOT).status === 0
if (!hasCmake && !process.env.CI) {
  t.skip('cmake is not installed (apt-get install cmake): the cmake-js build is not checked')
} else {
  t.test('cmake-js and node-gyp build the same addon', async (t) => {
    t.ok(hasCmake, 'cmake is installed (.ci/setup installs it)')
    t.ok(existsSync(GYP_BUILD), `${GYP_BUILD} exists (npm run compile builds it)`)
    if (!hasCmake || !existsSync(GYP_BUILD)) return

    // A fresh checkout: the tracked and untracked-but-not-ignored files, no build/ or prebuilds/.
    const scratch = mkdtempSync(join(tmpdir(), 'tsproxy-cmake-'))
    t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
    const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT)
    t.equal(files.status, 0, 'git ls-files (the test needs a git checkout)', { output: out(files) })
    const clone = join(scratch, 'clone')
    for (const f of files.stdout.split('\0').filter(Boolean)) {
      if (!existsSync(join(ROOT, f))) continue
      mkdirSync(dirname(join(clone, f)), { recursive: true })
      cpSync(join(ROOT, f), join(clone, f), { verbatimSymlinks: true })
    }
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'))

    // A header download would go to this mirror and fail: the build must not need one.
    const built = run('npm', ['run', 'prebuilds:cmake-js'], clone, { NVM_NODEJS_ORG_MIRROR: 'http://127.0.0.1:9/no-downloads' })
    t.equal(built.status, 0, 'npm run prebuilds:cmake-js succeeds offline', { output: out(built) })
    t.ok(existsSync(join(clone, 'build/CMakeCache.txt')), 'cmake built it (not node-gyp)')
    t.notOk(existsSync(join(clone, 'build/config.gypi')), 'node-gyp did not')
    const dir = join(clone, 'prebuilds/linux-x64')
    const names = existsSync(dir) ? readdirSync(dir) : []
    t.same(names, ['tsproxy.glibc.node'], 'prebuilds/linux-x64 holds the glibc-tagged addon')
    const cmakeBuild = join(dir, 'tsproxy.glibc.node')
    if (!existsSync(cmakeBuild)) return

    // Each addon in its own process: the shape of its exports, and the struct layouts.
    const probe = `
      const m = { exports: {} }; process.dlopen(m, process.argv[1])
      const shape = (v) => {
        if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return typeof v
        const o = { type: typeof v }
        for (const k of Object.keys(v).sort()) o[k] = shape(v[k])
        if (typeof v === 'function' && v.prototype) o.prototype = Object.getOwnPropertyNames(v.prototype).sort()
        return o
      }
      console.log(JSON.stringify({ shape: shape(m.exports), layout: m.exports.iptc.layout() }))`
    const read = (file: string): { shape: Record<string, unknown>; layout: Record<string, number> } | undefined => {
      const r = run(process.execPath, ['-e', probe, file], ROOT)
      t.equal(r.status, 0, `${file} loads`, { output: out(r) })
      return r.status === 0 ? JSON.parse(r.stdout) : undefined
    }
    const gyp = read(GYP_BUILD)
    const cmake = read(cmakeBuild)
    t.ok(gyp && Object.keys(gyp.shape).length > 3, 'the node-gyp addon exports something')
    t.same(cmake?.shape, gyp?.shape, 'the same exports, nested objects and class methods')
    t.same(cmake?.layout, gyp?.layout, 'the same kernel struct sizes and offsets')

    const needs = readVersionNeeds(cmakeBuild)
    for (const [prefix, max] of Object.entries(MAX_VERSIONS)) {
      t.same(versionsOverFloor(needs, prefix, max), [], `no symbol above ${prefix}${max} (highest: ${highestVersion(needs, prefix) ?? 'none'})`)
    }

    // What a user's require() gets: node-gyp-build picks the glibc prebuild (build/ ignored),
    // and refuses it on a musl system.
    const pick = `console.log(require('node-gyp-build').path(process.argv[1]))`
    const glibc = run(process.execPath, ['-e', pick, clone], ROOT, { PREBUILDS_ONLY: '1' })
    t.equal(glibc.stdout.trim(), cmakeBuild, 'node-gyp-build picks it on glibc', { output: out(glibc) })
    const musl = run(process.execPath, ['-e', pick, clone], ROOT, { PREBUILDS_ONLY: '1', LIBC: 'musl' })
    t.not(musl.status, 0, 'and finds no build for musl')
    t.match(musl.stderr, /No native build was found for .*libc=musl/, 'saying so')
    const load = run(process.execPath, ['-e', `console.log(Object.keys(require('node-gyp-build')(process.argv[1])).sort().join())`, clone],
      ROOT, { PREBUILDS_ONLY: '1' })
    t.equal(load.stdout.trim(), Object.keys(gyp?.shape ?? {}).filter((k) => k !== 'type').sort().join(), 'and it loads', { output: out(load) })
  })
}
