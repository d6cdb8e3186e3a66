// iptables-legacy and iptables-legacy-save as the independent oracle of the
// iptables kernel tests. (Tests may run the standard tools; the library never does.)
import { execFileSync, spawnSync } from 'node:child_process'

export type Fam = 'inet' | 'inet6'

const tool = (family: Fam, what: '' | '-save' | '-restore'): string => `${family === 'inet' ? 'iptables' : 'ip6tables'}-legacy${what}`

/** `iptables-legacy -w -t <table> ...args`; throws with the tool's stderr on failure. */
export function ipt(table: string, ...args: string[]): string {
  return run(tool('inet', ''), ['-w', '-t', table, ...args])
}

export function ip6t(table: string, ...args: string[]): string {
  return run(tool('inet6', ''), ['-w', '-t', table, ...args])
}

export function cli(family: Fam, table: string, ...args: string[]): string {
  return family === 'inet' ? ipt(table, ...args) : ip6t(table, ...args)
}

/** Runs the tool and returns its status and stderr instead of throwing. */
export function cliTry(family: Fam, table: string, ...args: string[]): { status: number; stderr: string } {
  const r = spawnSync(tool(family, ''), ['-w', '-t', table, ...args], { encoding: 'utf8' })
  return { status: r.status ?? -1, stderr: r.stderr.trim() }
}

export function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) })
  } catch (e) {
    const err = e as Error & { stderr?: string }
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`)
  }
}

/** The lines of `iptables-legacy-save -t table` without its comments and COMMIT. */
export function saved(table: string, family: Fam = 'inet', counters = false): string[] {
  return run(tool(family, '-save'), ['-t', table, ...(counters ? ['-c'] : [])])
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#') && l !== 'COMMIT' && !l.startsWith('*'))
}

/** The rules of one chain in iptables-save's words, without the "-A CHAIN " prefix. */
export function chainRules(table: string, chain: string, family: Fam = 'inet'): string[] {
  return rulesOf(saved(table, family), chain)
}

/** The rules of one chain among lines `saved` returned (one save for several chains). */
export function rulesOf(lines: string[], chain: string): string[] {
  const p = `-A ${chain} `
  return lines.filter((l) => l.startsWith(p) || l === `-A ${chain}`).map((l) => l.slice(p.length))
}

export function restore(table: string, lines: string[], family: Fam = 'inet'): void {
  run(tool(family, '-restore'), ['-w', '--noflush'], `*${table}\n${lines.join('\n')}\nCOMMIT\n`)
}

/**
 * iptables command words as one line of an iptables-restore file, quoted as
 * iptables-save quotes them. iptables-restore parses each line with the same
 * code as iptables-legacy, in one process instead of one per command.
 */
export function restoreLine(args: string[]): string {
  return args.map((a) => (a !== '' && /^[^\s"'\\]+$/.test(a) ? a : `"${a.replace(/["\\]/g, '\\$&')}"`)).join(' ')
}

/**
 * Empties every table of both families, policies ACCEPT, counters zero: one
 * restore per family, both from one spawn (in the box, forking node is most of
 * a tool's cost).
 */
export function resetAll(): void {
  const text = ['nat', 'filter', 'mangle', 'raw']
    .map((table) => [`*${table}`, ...builtins(table).map((c) => `:${c} ACCEPT [0:0]`), 'COMMIT'].join('\n'))
    .join('\n')
  run('sh', ['-c', `printf '%s\\n' "$1" | ${tool('inet', '-restore')} -w && printf '%s\\n' "$1" | ${tool('inet6', '-restore')} -w`, 'sh', text])
}

export function builtins(table: string): string[] {
  switch (table) {
    case 'nat': return ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']
    case 'filter': return ['INPUT', 'FORWARD', 'OUTPUT']
    case 'mangle': return ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']
    default: return ['PREROUTING', 'OUTPUT']
  }
}

/** Probability as the kernel keeps it: 31 bits. */
export const prob = (p: number): number => Math.round(p * 2 ** 31) / 2 ** 31
