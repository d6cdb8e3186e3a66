// tsproxy --help: every flag, with the setting it sets.
import { OPTION_FLAGS } from './flags.js'
import { SETTINGS } from './schema.js'

/** The --help text: every flag with what it sets. */
export function usage(): string {
  const lines = ['Usage: tsproxy [flags]', '', 'Flags (kube-proxy\'s, where kube-proxy has them):']
  const rows: [string, string][] = []
  for (const [name, o] of Object.entries(OPTION_FLAGS)) rows.push([`--${name}${o.kind === 'bool' ? '' : ' string'}`, o.help])
  for (const s of SETTINGS) {
    if (!s.flag) continue
    const arg = s.kind === 'bool' ? '' : s.kind === 'duration' ? ' duration' : s.kind === 'list' ? ' strings' : s.kind === 'map' ? ' mapStringBool' : s.kind === 'int' ? ' int' : s.kind === 'float' ? ' float' : ' string'
    rows.push([`${s.flag === 'v' ? '-v, --v' : `--${s.flag}`}${arg}`, `${s.help} [${s.path}]`])
  }
  rows.sort((a, b) => a[0].replace(/^-v, /, '').localeCompare(b[0].replace(/^-v, /, '')))
  const width = Math.max(...rows.map((r) => r[0].length)) + 2
  for (const [f, h] of rows) lines.push(`  ${f.padEnd(width)}${h}`)
  return `${lines.join('\n')}\n`
}

