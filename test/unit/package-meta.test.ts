// package.json and the files around it, as npm and a user read them (no build, no network).
import { readFileSync } from 'node:fs'
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
