// package.json and the files around it, as npm, prebuildify, node-gyp-build and a user
// read them (no build, no network).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))

t.test('no script is an accidental pre/post hook of another', async (t) => {
  // `npm run X` runs preX and postX first/after when they exist: a script named
  // `prebuild` made `npm run build` run prebuildify and then compile again.
  const scripts = Object.keys(pkg.scripts)
  const hooks = scripts.flatMap((s) => {
    const m = /^(pre|post)(.+)$/.exec(s)
    return m && scripts.includes(m[2]!) ? [`${s} (runs around ${m[2]})`] : []
  })
  t.same(hooks, [], 'no script named pre<script> or post<script>')
})

t.test('LICENSE is the license package.json names', async (t) => {
  t.equal(pkg.license, 'Apache-2.0')
  let text = ''
  try { text = readFileSync(join(ROOT, 'LICENSE'), 'utf8') } catch (e) { t.fail(`no LICENSE: ${e}`) }
  t.match(text, /^\s*Apache License\s+Version 2\.0, January 2004\s+http:\/\/www\.apache\.org\/licenses\//, 'Apache 2.0 header')
  t.match(text, /END OF TERMS AND CONDITIONS/, 'the full terms, not a pointer to them')
  t.match(text, /APPENDIX: How to apply the Apache License to your work/, 'with the appendix')
})

t.test('every package the code imports is declared', async (t) => {
  // A package only present as some dependency's dependency (tap-parser under tap) can vanish
  // or change major on any update of that dependency.
  const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})])
  const IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm
  const undeclared: string[] = []
  for (const dir of ['lib', 'test', 'benchmarks', 'deploy']) {
    for (const f of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (!/\.(ts|mts|mjs|js)$/.test(f) || f.split('/').includes('node_modules') || f.split('/').includes('results')) continue
      const code = readFileSync(join(ROOT, dir, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
      for (const m of code.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2]!
        if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || spec.includes('${')) continue
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
        if (!declared.has(name) && name !== pkg.name) undeclared.push(`${dir}/${f}: ${name}`)
      }
    }
  }
  t.same(undeclared, [], 'imports name only dependencies and devDependencies')
})

t.test('prebuilds: both builders, tagged with the C library, shipped in the package', async (t) => {
  t.equal(pkg.scripts.install, 'node-gyp-build', 'install loads a prebuild or builds binding.gyp from source')
  t.equal(pkg.scripts.prebuilds, 'prebuildify --napi --strip --tag-libc', 'npm run prebuilds: node-gyp, glibc/musl-tagged')
  // prebuildify 6 has no --backend option (it would be ignored and node-gyp would build):
  // cmake-js comes in through prebuildify's --node-gyp hook.
  t.equal(pkg.scripts['prebuilds:cmake-js'], 'prebuildify --napi --strip --tag-libc --node-gyp=./tools/cmake-js-for-prebuildify.mjs',
    'npm run prebuilds:cmake-js: the same through cmake-js')
  t.notMatch(Object.values(pkg.scripts).join('\n'), /--backend/, 'no --backend option prebuildify would ignore')
  const shim = statSync(join(ROOT, 'tools/cmake-js-for-prebuildify.mjs'))
  t.ok(shim.mode & 0o111, 'the --node-gyp command is executable (prebuildify spawns it without a shell)')
  t.ok(existsSync(join(ROOT, 'CMakeLists.txt')), 'CMakeLists.txt is there')
  t.ok(pkg.devDependencies['cmake-js'], 'cmake-js is a dev dependency')
  t.same(pkg.binary, { napi_versions: [8] }, 'binary.napi_versions: cmake-js takes Node-API headers from npm, downloads none')
  for (const f of ['dist', 'lib', 'native', 'binding.gyp', 'prebuilds']) t.ok(pkg.files.includes(f), `files ships ${f}`)
  const ignored = readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n')
  for (const d of ['build/', 'prebuilds/']) t.ok(ignored.includes(d), `.gitignore has ${d} (node-gyp's and cmake-js's build dir, the prebuilds)`)
})

t.test('node-gyp-build picks the glibc prebuild on glibc, and none on musl', async (t) => {
  // What prebuildify --tag-libc writes; node-gyp-build only resolves the path here (no load).
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-prebuilds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'prebuilds/linux-x64'), { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: pkg.name }))
  writeFileSync(join(dir, `prebuilds/linux-x64/${pkg.name}.glibc.node`), '')
  const pick = (env: Record<string, string>) => spawnSync(process.execPath,
    ['-e', `console.log(require('node-gyp-build').path(process.argv[1]))`, dir],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, LIBC: '', ...env } })
  const glibc = pick({ LIBC: 'glibc' })
  t.equal(glibc.stdout.trim(), join(dir, `prebuilds/linux-x64/${pkg.name}.glibc.node`), 'glibc: the .glibc.node prebuild', { stderr: glibc.stderr })
  const musl = pick({ LIBC: 'musl' })
  t.not(musl.status, 0, 'musl: no prebuild')
  t.match(musl.stderr, /No native build was found for .*libc=musl/)
  writeFileSync(join(dir, `prebuilds/linux-x64/${pkg.name}.musl.node`), '')
  t.equal(pick({ LIBC: 'musl' }).stdout.trim(), join(dir, `prebuilds/linux-x64/${pkg.name}.musl.node`), 'musl: a .musl.node prebuild when one ships')
  t.equal(pick({ LIBC: 'glibc' }).stdout.trim(), join(dir, `prebuilds/linux-x64/${pkg.name}.glibc.node`), 'glibc: still its own')
})
