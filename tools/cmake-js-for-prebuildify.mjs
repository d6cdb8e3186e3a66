#!/usr/bin/env node
// prebuildify runs node-gyp, or the command given as --node-gyp, with node-gyp's
// arguments (`rebuild --target=20.20.2 --devdir=... --arch=x64 --release`) and then
// takes build/Release/*.node. prebuildify 6 has no cmake-js backend (an unknown
// `--backend cmake-js` is ignored and node-gyp builds), so `npm run prebuilds:cmake-js`
// passes this file as --node-gyp: it runs the same build through cmake-js and
// CMakeLists.txt, which writes the same build/Release/tsproxy.node.
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { createRequire } from 'node:module'

const args = process.argv.slice(2)
const value = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
if (args[0] !== 'rebuild') {
  console.error(`cmake-js-for-prebuildify: expected node-gyp's "rebuild ...", got: ${args.join(' ')}`)
  process.exit(2)
}
const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js')
const forward = ['rebuild', '--runtime=node', `--parallel=${availableParallelism()}`]
if (value('target')) forward.push(`--runtime-version=${value('target')}`)
if (value('arch')) forward.push(`--arch=${value('arch')}`)
if (args.includes('--debug')) forward.push('--debug')
const r = spawnSync(process.execPath, [cmakeJs, ...forward], { stdio: 'inherit' })
process.exit(r.status ?? 1)
