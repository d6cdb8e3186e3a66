// The host side of the box benchmarks (run.js files): what machine ran them,
// how they were invoked, and their --help text (the file's leading comment).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { repoRoot } from '../../test/kernel/box.mjs'

export const rel = (p) => path.relative(repoRoot, p)

export function hostInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  return { cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model, cpus: os.cpus().length, kernel: os.release(), node: process.version }
}

/** The leading // comment of a script, as its --help. */
export function helpText(fileUrl) {
  const lines = fs.readFileSync(fileURLToPath(fileUrl), 'utf8').split('\n').slice(1)
  const end = lines.findIndex((l) => !l.startsWith('//'))
  return lines.slice(0, end < 0 ? lines.length : end).map((l) => l.replace(/^\/\/ ?/, '')).join('\n')
}

/** How this run was started, for the results file. */
export function commandLine(fileUrl) {
  const args = process.argv.slice(2)
  return process.env.npm_lifecycle_event
    ? `npm run ${process.env.npm_lifecycle_event}${args.length ? ' -- ' + args.join(' ') : ''}`
    : `node ${rel(fileURLToPath(fileUrl))} ${args.join(' ')}`.trim()
}
