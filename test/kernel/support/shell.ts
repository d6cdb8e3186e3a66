// The smallest helpers of the kernel tests: a tool's output, its lines, a sysctl as text.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** `cmd ...args`'s stdout; throws (with its stderr) when it fails. */
export const run = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

/** The non-blank lines of a text, in order. */
export const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '')

/** A sysctl read from /proc/sys, as text. */
export const readKey = (key: string): string => readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim()
