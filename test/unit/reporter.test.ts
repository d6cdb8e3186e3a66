// test/reporter.mjs across runs: TSPROXY_REPORT_SAVE writes a run's counts,
// TSPROXY_REPORT_CARRY adds saved runs to the final line (how .ci/run counts the
// unit suite under other Node versions in the one "N passed, N failed" line).
// The reporter runs as a filter here: TAP on stdin, exit status 1 on failures.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const REPORTER = fileURLToPath(new URL('../reporter.mjs', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'tsproxy-reporter-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function report(tap: string, env: Record<string, string> = {}): { status: number | null; lines: string[]; out: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TSPROXY_REPORT_')))
  const r = spawnSync(process.execPath, [REPORTER], { input: tap, env: { ...clean, ...env }, encoding: 'utf8' })
  return { status: r.status, lines: r.stdout.trimEnd().split('\n'), out: r.stdout + r.stderr }
}

// Two files: a passes 2 points, b passes 1 and fails 1.
const TWO_FILES = `TAP version 14
# Subtest: a.test.ts
    ok 1 - one
    ok 2 - two
    1..2
ok 1 - a.test.ts
# Subtest: b.test.ts
    ok 1 - three
    not ok 2 - the bad one
    1..2
not ok 2 - b.test.ts
1..2
`
const ONE_PASS = `TAP version 14
# Subtest: c.test.ts
    ok 1 - four
    1..1
ok 1 - c.test.ts
1..1
`

t.test('without the variables: one run, one line, nothing saved', async (t) => {
  const r = report(ONE_PASS)
  t.equal(r.status, 0)
  t.equal(r.lines.at(-1), '1 passed, 0 failed')
  t.notMatch(r.out, /run/, 'no per-run lines')
})

t.test('TSPROXY_REPORT_SAVE writes the counts and failure names, with the label', async (t) => {
  const file = join(dir, 'save.json')
  const r = report(TWO_FILES, { TSPROXY_REPORT_SAVE: file, TSPROXY_REPORT_LABEL: 'node v22.1.0' })
  t.equal(r.status, 1, 'the run itself still fails')
  t.equal(r.lines.at(-1), '3 passed, 1 failed')
  t.same(JSON.parse(readFileSync(file, 'utf8')), {
    label: 'node v22.1.0', passed: 3, failed: 1, skipped: 0, failures: [['b.test.ts', 'the bad one']],
  })
})

t.test('TSPROXY_REPORT_CARRY adds saved runs to the final line, and their failures', async (t) => {
  const failing = join(dir, 'failing.json')
  const passing = join(dir, 'passing.json')
  writeFileSync(failing, JSON.stringify({ label: 'node v22.1.0', passed: 3, failed: 1, skipped: 0, failures: [['b.test.ts', 'the bad one']] }))
  writeFileSync(passing, JSON.stringify({ label: 'node v24.2.0', passed: 5, failed: 0, skipped: 2, failures: [] }))
  const r = report(ONE_PASS, { TSPROXY_REPORT_CARRY: `${failing},${passing}` })
  t.equal(r.status, 1, 'a carried failure fails the run')
  t.same(r.lines.slice(-5), [
    'earlier run, node v22.1.0: 3 passed, 1 failed',
    'earlier run, node v24.2.0: 5 passed, 0 failed, 2 skipped',
    'this run: 1 passed, 0 failed',
    'all runs together:',
    '9 passed, 1 failed, 2 skipped',
  ])
  t.match(r.out, /^✗ \[node v22\.1\.0\] › b\.test\.ts › the bad one$/m, 'the carried failure is listed by name')

  const ok = report(ONE_PASS, { TSPROXY_REPORT_CARRY: passing })
  t.equal(ok.status, 0, 'carried passes and skips do not fail the run')
  t.equal(ok.lines.at(-1), '6 passed, 0 failed, 2 skipped')
})

t.test('a carried run that left no results counts as a failure', async (t) => {
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, '{"label":"node v24.2.0","passed":3}')
  for (const [file, why] of [[join(dir, 'missing.json'), /ENOENT/], [bad, /no count "failed"/]] as const) {
    const r = report(ONE_PASS, { TSPROXY_REPORT_CARRY: file })
    t.equal(r.status, 1, `${file}: the run fails`)
    t.equal(r.lines.at(-1), '1 passed, 1 failed', `${file}: one failure more`)
    t.match(r.out, why, `${file}: the reason is shown`)
  }
})

t.test('the saved counts are this run\'s own, not what it carried', async (t) => {
  const carried = join(dir, 'carried.json')
  const file = join(dir, 'resaved.json')
  writeFileSync(carried, JSON.stringify({ label: 'x', passed: 7, failed: 0, skipped: 0, failures: [] }))
  report(ONE_PASS, { TSPROXY_REPORT_CARRY: carried, TSPROXY_REPORT_SAVE: file })
  t.match(JSON.parse(readFileSync(file, 'utf8')), { passed: 1, failed: 0 })
})
