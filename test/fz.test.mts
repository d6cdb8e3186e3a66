import { readFileSync } from 'node:fs'
import { yamlSegments } from '/work/main/lib/proxy/yaml-scan.ts'
import { yamlDocuments } from '/work/main/lib/proxy/yaml.ts'
const text = readFileSync('/tmp/tsproxy-fuzz-811766011-64.txt', 'utf8')
console.log(yamlSegments(text).map(s => [s.start, s.end, s.depth, s.line]))
const depth = (v: unknown): number => Array.isArray(v) ? 1 + Math.max(0, ...v.map(depth)) : v && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depth)) : 0
for (const d of yamlDocuments(text, { source: 'x' })) console.log(d.index, !!d.limit, !!d.error, depth(d.value), d.error ? String(d.error).slice(0,200): '')
