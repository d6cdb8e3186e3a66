// The README's ```ts examples compile as written, against the package's published types
// (dist/*.d.ts, reached as `tsproxy` through the package's own exports, as a user's code
// would). Needs dist/ (`npm test` compiles first). Type checking only: nothing runs.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

const blocks: { line: number; code: string }[] = []
for (const m of readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
  blocks.push({ line: readme.slice(0, m.index).split('\n').length, code: m[1]! })
}

t.ok(blocks.length >= 4, `the README has its examples (${blocks.length} \`\`\`ts blocks)`)
t.ok(existsSync(join(ROOT, 'dist/index.d.ts')), 'dist/index.d.ts exists (npm run compile:ts)')

// Virtual files inside the repo, so `import ... from 'tsproxy'` is the package's self-reference.
const files = new Map(blocks.map((b, i) => [join(ROOT, `readme-example-${i}.mts`), b]))
const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true, noEmit: true, skipLibCheck: true, types: ['node'],
}
const host = ts.createCompilerHost(options)
const { fileExists, readFile, getSourceFile } = host
host.fileExists = (f) => files.has(f) || fileExists.call(host, f)
host.readFile = (f) => files.get(f)?.code ?? readFile.call(host, f)
host.getSourceFile = (f, lang, ...rest) => {
  const b = files.get(f)
  return b ? ts.createSourceFile(f, b.code, lang) : getSourceFile.call(host, f, lang, ...rest)
}
const program = ts.createProgram([...files.keys()], options, host)

for (const [file, b] of files) {
  const diags = ts.getPreEmitDiagnostics(program, program.getSourceFile(file))
  const text = diags.map((d) => {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1
    return `README.md:${b.line + 1 + at}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
  t.same(text, [], `the example at README.md:${b.line} type-checks`)
}
