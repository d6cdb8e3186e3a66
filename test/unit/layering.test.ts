// The rooms of lib/ and which way their doors open: no import cycle (type-only
// imports count: they are the contracts), no proxy mode reaching into another
// (a mode is a folder of lib/proxy with a proxier.ts; modes share only the
// root), and nothing below lib/proxy importing the daemon's layers. Reads the sources,
// not dist/, so it needs no build. LAYERING_LIB points it at another tree.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const LIB = resolve(process.env.LAYERING_LIB ?? join(dirname(fileURLToPath(import.meta.url)), '../../lib'))

function sources(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...sources(p))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p)
  }
  return out
}

// `import ... from 'x'`, `import 'x'`, `export ... from 'x'` (type-only too), `import('x')`.
const STATIC = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g

/** Relative imports of a source, as lib/-relative .ts paths. */
function importsOf(file: string, text: string): string[] {
  const found = new Set<string>()
  // Comments out first, so a commented-out import is not a door.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  for (const re of [STATIC, DYNAMIC]) for (const m of code.matchAll(re)) found.add(m[1]!)
  const out: string[] = []
  for (const spec of found) {
    if (!spec.startsWith('.')) continue
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts')
    out.push(rel(target))
  }
  return out
}

const rel = (p: string): string => relative(LIB, p).split(sep).join('/')

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>()
  for (const f of sources(LIB)) g.set(rel(f), importsOf(f, readFileSync(f, 'utf8')))
  return g
}

/** Strongly connected components with more than one file (or a file importing itself): the cycles. */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const on = new Set<string>()
  const out: string[][] = []
  const visit = (v: string): void => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!))
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        on.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort())
    }
  }
  for (const v of [...g.keys()].sort()) if (!idx.has(v)) visit(v)
  return out
}

/** The mode a file belongs to: 'proxy/<dir>' when that folder holds a proxier.ts. */
function modeOf(file: string, g: Map<string, string[]>): string | undefined {
  const m = /^proxy\/([^/]+)\//.exec(file)
  return m && g.has(`proxy/${m[1]}/proxier.ts`) ? `proxy/${m[1]}` : undefined
}

const g = graph()

t.test('lib/ is read: files and imports found', async (t) => {
  t.ok(g.size > 20, `${g.size} files under ${LIB}`)
  t.ok([...g.values()].some((l) => l.length > 0), 'some imports found')
})

t.test('no import cycle in lib/, type-only imports included', async (t) => {
  const found = cycles(g)
  t.same(found, [], found.map((c) => c.join(' <-> ')).join('; ') || 'none')
})

t.test('no proxy mode imports another mode', async (t) => {
  const modes = new Set([...g.keys()].map((f) => modeOf(f, g)).filter((m) => m !== undefined))
  t.ok(modes.size >= 2, `modes: ${[...modes].join(', ')}`)
  const bad: string[] = []
  for (const [f, imports] of g) {
    const mine = modeOf(f, g)
    if (!mine) continue
    for (const i of imports) {
      const theirs = modeOf(i, g)
      if (theirs && theirs !== mine) bad.push(`${f} -> ${i}`)
    }
  }
  t.same(bad, [], bad.join('; ') || 'none')
})

// lib/index.ts is the package's front door: it lists every room, the proxy's
// pure layers among them (`proxy` in the public API); no other file may.
t.test('nothing outside lib/proxy imports lib/proxy (the package index aside)', async (t) => {
  const bad: string[] = []
  for (const [f, imports] of g) {
    if (f.startsWith('proxy/') || f === 'index.ts') continue
    for (const i of imports) if (i.startsWith('proxy/')) bad.push(`${f} -> ${i}`)
  }
  t.same(bad, [], bad.join('; ') || 'none')
})
