// Runs the tsproxy daemon (dist/proxy/main.js) as a child process for kernel
// tests, benchmarks and the demo: collects its JSON log lines, waits for the
// lines or metric values a test cares about, reads /metrics and /status.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../../dist/proxy/main.js', import.meta.url))

export async function startDaemon({ manifests, args = [], healthz = '127.0.0.1:10256', metrics = '127.0.0.1:10249', echo = false, waitSynced = true, timeoutMs = 60_000, env }) {
  const argv = [MAIN, '--proxy-mode=ipvs', ...(manifests ? [`--manifests=${manifests}`] : []), `--healthz-bind-address=${healthz}`, `--metrics-bind-address=${metrics}`, ...args]
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) })
  const logs = []
  const waiters = new Set()
  let exited
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((exited = { code, signal }))))
  let partial = ''
  proc.stderr.setEncoding('utf8').on('data', (chunk) => {
    partial += chunk
    const lines = partial.split('\n')
    partial = lines.pop()
    for (const line of lines) {
      if (!line) continue
      let rec
      try {
        rec = JSON.parse(line)
      } catch {
        rec = { level: 'raw', msg: line }
      }
      logs.push(rec)
      if (echo) process.stderr.write(`  [tsproxy] ${line}\n`)
      for (const w of waiters) if (w.test(rec)) w.resolve(rec)
    }
  })

  /** Resolves with the first log record (from index `from` on) that `test` accepts. */
  function waitLog(test, { from = 0, timeoutMs: t = timeoutMs } = {}) {
    const seen = logs.slice(from).find(test)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const w = {
        test,
        resolve: (rec) => {
          clearTimeout(timer)
          waiters.delete(w)
          resolve(rec)
        },
      }
      const timer = setTimeout(() => {
        waiters.delete(w)
        reject(new Error(`no matching tsproxy log line within ${t} ms; last lines:\n${logs.slice(-8).map((l) => JSON.stringify(l)).join('\n')}`))
      }, t)
      waiters.add(w)
      exit.then(() => {
        if (!waiters.has(w)) return
        waiters.delete(w)
        clearTimeout(timer)
        reject(new Error(`tsproxy exited (${JSON.stringify(exited)}) before the awaited log line; last lines:\n${logs.slice(-8).map((l) => JSON.stringify(l)).join('\n')}`))
      })
    })
  }

  async function get(path, base = metrics) {
    const res = await fetch(`http://${base}${path}`)
    return { status: res.status, text: await res.text() }
  }

  /** The value of one metric sample ('name' or 'name{labels}' exactly as exposed), or undefined. */
  async function metric(sample) {
    const { text } = await get('/metrics')
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue
      const sp = line.lastIndexOf(' ')
      if (line.slice(0, sp) === sample) return Number(line.slice(sp + 1))
    }
    return undefined
  }

  async function stop(signal = 'SIGTERM') {
    if (!exited) proc.kill(signal)
    return exit
  }

  const d = { proc, logs, waitLog, get, metric, stop, exit, status: async () => JSON.parse((await get('/status')).text) }
  if (waitSynced) await waitLog((r) => r.msg === 'tsproxy running')
  return d
}

/** Polls `check` (sync or async, truthy = done) every `everyMs` until `timeoutMs`; resolves its last value or rejects. */
export async function until(check, { timeoutMs = 20_000, everyMs = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await check()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Writes `items` as one manifest file (a v1 List) into the daemon's --manifests directory. */
export function writeManifest(dir, file, items) {
  writeFileSync(join(dir, file), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 1))
}
