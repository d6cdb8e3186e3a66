// package.json and the files around it, as npm and a user read them (no build, no network).
import { readdirSync, readFileSync } from 'node:fs'
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
