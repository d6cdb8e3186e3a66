// Node module hooks that run TypeScript test files inside the box without
// loading the TypeScript compiler there (loading it costs ~4 s per file in the
// box, more than the test usually does). test/kernel.test.ts transpiles every
// .ts file of the repo on the host first (transpileTree) into a cache dir; in
// the box, ts-register.mjs installs these hooks, which serve .ts modules from
// that cache and only fall back to compiling on the spot for a file not in it.
// Type checking is not done here, just as with tap's own (ts-node
// transpile-only) loader: `tsc` does it in the build.
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

let cacheDir = null

// Same code on the host (transpileTree) and for cache misses in the box.
export function transpile(file, ts = createRequire(import.meta.url)('typescript')) {
  const out = ts.transpileModule(readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      inlineSourceMap: true, // stack traces (with --enable-source-maps) point into the .ts
    },
  })
  return out.outputText
}

const cached = (dir, file) => path.join(dir, file + '.mjs')

// Transpile every .ts/.mts under `root` (but not node_modules, dist, ...) into `dir`.
export function transpileTree(root, dir, ts) {
  const skip = new Set(['node_modules', 'dist', 'build', 'prebuilds', '.git', '.tap', 'coverage'])
  let n = 0
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) {
        if (!skip.has(e.name)) walk(p)
      } else if (/\.m?ts$/.test(e.name) && !/\.d\.m?ts$/.test(e.name)) {
        const out = cached(dir, p)
        mkdirSync(path.dirname(out), { recursive: true })
        writeFileSync(out, transpile(p, ts))
        n++
      }
    }
  }
  walk(root)
  return n
}

export function initialize(data) {
  cacheDir = data?.cacheDir ?? null
}

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (err) {
    // NodeNext-style TypeScript imports name the .js a .ts file compiles to.
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && /^\.\.?\/.*\.(m?)js$/.test(specifier)) {
      return next(specifier.replace(/js$/, 'ts'), context)
    }
    throw err
  }
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !/\.m?ts$/.test(url)) return next(url, context)
  const file = fileURLToPath(url)
  let source
  try {
    source = readFileSync(cached(cacheDir ?? '/nonexistent', file), 'utf8')
  } catch {
    source = transpile(file)
  }
  return { format: 'module', source, shortCircuit: true }
}
