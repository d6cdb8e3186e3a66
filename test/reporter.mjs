// A compact tap reporter whose output ENDS with exactly one line
//   N passed, N failed[, N skipped]
// counting test points: every `ok`/`not ok` that has no test points under it
// (assertions, and empty or skipped subtests), at any depth, so the kernel
// box's files (replayed inside test/kernel.test.ts) count point by point, not
// as one file. A subtest that failed although nothing under it failed (a
// crash, a bad plan, a non-zero exit) counts as one failure too, so the count
// is 0 failed exactly when the run passed.
//
// Use: tap --reporter=./test/reporter.mjs  (tap pipes its TAP stream through
// an instance of the default export and sets the exit status itself).
// Also works as a filter: tap --reporter=tap | node test/reporter.mjs
// (then it sets the exit status: 1 if anything failed).
//
// One summary over several runs (CI runs the unit suite under other Node
// versions first, then `npm test`: .ci/run):
//   TSPROXY_REPORT_SAVE=<file>    this run also writes its counts and the names
//                                 of its failures there (JSON)
//   TSPROXY_REPORT_LABEL=<text>   names the run in that file ("node 22")
//   TSPROXY_REPORT_CARRY=<file>[,<file>...]
//                                 the final line adds those saved runs; a file
//                                 that is missing or unreadable (its run never
//                                 finished) counts as one failure. Their
//                                 failures are listed again by name; the details
//                                 are in the output of the run that saved them.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Transform } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { Parser } from 'tap-parser'

export default class CompactReporter extends Transform {
  passed = 0
  failed = 0
  skipped = 0
  failures = [] // [path, diag]
  skips = [] // lines
  done = false
  gotInput = false
  bailedOut = false

  constructor() {
    super({ decodeStrings: false })
    this.parser = new Parser()
    this.#attach(this.parser, [], null)
    this.parser.on('complete', (results) => this.#complete(results))
  }

  // node: { points, failed, parent } counts what is under one subtest.
  #attach(parser, path, node) {
    let pending = null // the child subtest whose closing point comes next
    parser.on('child', (child) => {
      pending = { points: 0, failed: 0, parent: node }
      this.#attach(child, [...path, child.name], pending)
    })
    parser.on('assert', (res) => {
      const sub = pending
      pending = null
      const here = [...path, res.name]
      if (sub && sub.points > 0) {
        if (!res.ok && !res.todo && !res.skip && sub.failed === 0) this.#fail(here, res.diag, node)
      } else if (res.skip || res.todo) {
        this.skipped++
        const why = typeof (res.skip || res.todo) === 'string' ? ` # ${res.skip || res.todo}` : ''
        this.skips.push(`${res.todo ? 'todo' : 'skip'}: ${here.join(' › ')}${why}`)
        this.#count(node, false)
      } else if (res.ok) {
        this.passed++
        this.#count(node, false)
      } else {
        this.#fail(here, res.diag, node)
      }
      if (path.length === 0) this.#fileLine(res)
    })
    // (a bail out is repeated by every parser above it: count the first)
    parser.on('bailout', (reason) => {
      if (!this.bailedOut) this.#fail([...path, `Bail out! ${reason}`], null, node)
      this.bailedOut = true
    })
  }

  #count(node, failed) {
    for (let n = node; n; n = n.parent) {
      n.points++
      if (failed) n.failed++
    }
  }

  #fail(path, diag, node) {
    this.failed++
    this.failures.push([path, diag])
    this.#count(node, true)
  }

  // One line per test file as it finishes (the top-level points are files).
  #fileLine(res) {
    const mark = res.skip || res.todo ? '-' : res.ok ? '✓' : '✗'
    const time = res.time ? ` (${(res.time / 1000).toFixed(1)} s)` : ''
    const what = res.skip ? ` # SKIP ${res.skip === true ? '' : res.skip}` : ''
    this.push(`${mark} ${res.name}${time}${what}\n`)
  }

  #complete(results) {
    // a stream with failures that are not test points (bad TAP, missing plan, nothing run)
    if (!results.ok && this.failed === 0) {
      this.#fail(['(tap)', results.bailout ? `Bail out! ${results.bailout}` : 'the run failed'],
        { failures: results.failures?.map((f) => f.tapError || f.name) }, null)
    } else if (this.passed + this.failed + this.skipped === 0 && !this.gotInput) {
      this.#fail(['(tap)', 'no TAP at all'], null, null)
    }
    if (process.env.TSPROXY_REPORT_SAVE) this.#save(process.env.TSPROXY_REPORT_SAVE)
    const carried = this.#carry((process.env.TSPROXY_REPORT_CARRY ?? '').split(',').filter(Boolean))
    if (this.skips.length) this.push('\n' + this.skips.join('\n') + '\n')
    for (const [path, diag] of this.failures) {
      this.push(`\n✗ ${path.join(' › ')}\n${formatDiag(diag)}`)
    }
    const skipped = this.skipped ? `, ${this.skipped} skipped` : ''
    this.push(`\n${carried.map((l) => l + '\n').join('')}${this.passed} passed, ${this.failed} failed${skipped}\n`)
    this.done = true
  }

  // This run's counts, for a later run's TSPROXY_REPORT_CARRY (written whole or not at all).
  #save(file) {
    const label = process.env.TSPROXY_REPORT_LABEL || ''
    const failures = this.failures.map(([path]) => path)
    const json = JSON.stringify({ label, passed: this.passed, failed: this.failed, skipped: this.skipped, failures })
    writeFileSync(`${file}.tmp`, json + '\n')
    renameSync(`${file}.tmp`, file)
  }

  // Adds the saved runs to this one's counts; returns a summary line per run.
  #carry(files) {
    if (!files.length) return []
    const counts = (r) => `${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`
    const own = `this run: ${counts(this)}`
    const lines = []
    for (const file of files) {
      let run
      try {
        run = JSON.parse(readFileSync(file, 'utf8'))
        for (const k of ['passed', 'failed', 'skipped']) if (!Number.isSafeInteger(run[k]) || run[k] < 0) throw new Error(`no count "${k}"`)
        if (!Array.isArray(run.failures)) throw new Error('no failure list')
      } catch (e) {
        this.#fail([`(earlier run) ${file}`], { error: `no results: ${e.message}` }, null)
        lines.push(`earlier run ${file}: no results (it did not finish): 1 failed`)
        continue
      }
      const label = run.label || file
      this.passed += run.passed
      this.skipped += run.skipped
      this.failed += run.failed
      for (const path of run.failures) this.failures.push([[`[${label}]`, ...[].concat(path).map(String)], null])
      lines.push(`earlier run, ${label}: ${counts(run)}`)
    }
    lines.push(own, 'all runs together:')
    return lines
  }

  _transform(chunk, _enc, cb) {
    if (String(chunk).trim()) this.gotInput = true
    this.parser.write(chunk)
    cb()
  }

  _flush(cb) {
    this.parser.end()
    if (!this.done) this.#complete({ ok: false, failures: [{ tapError: 'TAP stream ended early' }] })
    cb()
  }
}

// The useful part of a failure's YAML diagnostics, indented.
function formatDiag(diag) {
  if (!diag || typeof diag !== 'object') return ''
  const out = []
  const at = diag.at
  if (at?.fileName) out.push(`at: ${at.fileName}:${at.lineNumber}:${at.columnNumber}`)
  for (const [k, v] of Object.entries(diag)) {
    if (k === 'at' || (k === 'stack' && at?.fileName) || v === undefined || v === null || v === '') continue
    if (typeof v === 'string' && v.includes('\n')) out.push(`${k}: |\n  ${v.trimEnd().split('\n').join('\n  ')}`)
    else {
      const s = typeof v === 'string' ? v : JSON.stringify(v)
      out.push(`${k}: ${s.length > 1000 ? s.slice(0, 1000) + '…' : s}`)
    }
  }
  return out.length ? '    ' + out.join('\n').split('\n').join('\n    ') + '\n' : ''
}

// As a filter: TAP on stdin.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const r = new CompactReporter()
  process.stdin.pipe(r).pipe(process.stdout)
  r.on('end', () => { process.exitCode = r.failed ? 1 : 0 })
}
