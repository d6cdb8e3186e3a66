// Issue 11: idle connections to the health port must not starve the daemon of
// descriptors. The daemon (on the in-memory kernel) runs in a child process
// with `ulimit -n 256`; 400 connections are opened to /healthz and left idle.
// The server accepts only up to its cap and closes the rest at once, so the
// manifest source still reads (a new file is programmed, nothing is removed),
// and the idle connections it accepted are closed within seconds.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { HTTP_LIMITS } from '../../dist/proxy/http.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LIMIT = 256
const CONNECTIONS = 400

const svc = (name: string, ip: string) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name} }\nspec: { clusterIP: ${ip}, ports: [{ port: 80 }] }\n`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function status(child: ChildProcess): Promise<{ services: string[]; fds: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no status answer within 10 s')), 10_000)
    child.once('message', (m) => {
      clearTimeout(timer)
      resolve(m as { services: string[]; fds: number })
    })
    child.send('status')
  })
}

t.test(`${CONNECTIONS} idle connections to the health port of a daemon limited to ${LIMIT} descriptors`, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsproxy-fd-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'web.yaml'), svc('web', '10.96.0.1'))

  const child = spawn('sh', ['-c', `ulimit -n ${LIMIT}; exec "$0" --import ./test/kernel/ts-register.mjs test/support/fd-daemon.ts "$1"`, process.execPath, dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  t.teardown(() => void child.kill('SIGKILL'))
  const logs: { level: string; msg: string; [k: string]: unknown }[] = []
  let partial = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop()!
    for (const l of lines) if (l) logs.push(l.startsWith('{') ? JSON.parse(l) : { level: 'raw', msg: l })
  })
  const ports = await new Promise<{ healthz: number }>((resolve, reject) => {
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!))
    })
    child.once('exit', (code) => reject(new Error(`the daemon exited (${code}): ${JSON.stringify(logs.slice(-5))}`)))
  })
  t.same((await status(child)).services, ['default/web 10.96.0.1:80'], 'web is programmed')

  // Idle connections: connected, then nothing sent.
  const sockets: Socket[] = []
  let closedByServer = 0
  for (let i = 0; i < CONNECTIONS; i++) {
    const s = connect(ports.healthz, '127.0.0.1')
    s.on('error', () => undefined)
    s.on('close', () => closedByServer++)
    s.resume() // reads, so the server's close is seen
    sockets.push(s)
  }
  t.teardown(() => sockets.forEach((s) => s.destroy()))
  await sleep(1500)
  const open = CONNECTIONS - closedByServer
  t.ok(open <= HTTP_LIMITS.maxConnections, `at most the cap (${HTTP_LIMITS.maxConnections}) stay open: ${open}`)

  // The source must still read: a new file is programmed, nothing is removed.
  await writeFile(join(dir, 'db.yaml'), svc('db', '10.96.0.2'))
  const deadline = Date.now() + 10_000
  let seen = await status(child)
  while (seen.services.length < 2 && Date.now() < deadline) {
    await sleep(200)
    seen = await status(child)
  }
  t.same(seen.services, ['default/db 10.96.0.2:80', 'default/web 10.96.0.1:80'], 'the new file is read and programmed; web stays')
  t.ok(seen.fds > 0 && seen.fds < LIMIT, `the daemon has descriptors to spare: ${seen.fds} open`)
  t.notOk(logs.some((l) => /EMFILE/.test(JSON.stringify(l))), 'no EMFILE anywhere in its log')
  t.notOk(logs.some((l) => l.msg === 'manifest file removed' || (l.msg === 'manifests reloaded' && Number(l.deleted) > 0)), 'nothing removed')

  // The idle ones it accepted are closed: headers must come within headersTimeout.
  const idleDeadline = Date.now() + HTTP_LIMITS.headersTimeoutMs + 5000
  while (closedByServer < CONNECTIONS && Date.now() < idleDeadline) await sleep(100)
  t.equal(closedByServer, CONNECTIONS, `every idle connection closed by the server within ${HTTP_LIMITS.headersTimeoutMs / 1000} s (+ the check interval)`)
  const r = await fetch(`http://127.0.0.1:${ports.healthz}/healthz`, { signal: AbortSignal.timeout(5000) })
  t.equal(r.status, 200, '/healthz answers again')
})
