// The HTTP servers' limits (issue 11), on real sockets with shortened limits:
// connections past the cap are closed at once, a connection that sends no
// request (or sends its headers too slowly) is closed after headersTimeout, an
// idle keep-alive one after keepAliveTimeout, and the service health-check
// servers share one cap however many ports they serve.
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { HTTP_LIMITS, startServer, type HttpLimits } from '../../dist/proxy/http.js'
import { ServiceHealthServer } from '../../dist/proxy/servicehealth.js'

const quiet = () => undefined
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Conn {
  socket: Socket
  closed: boolean
  data: string
}

function open(t: Test, port: number): Promise<Conn> {
  return new Promise((resolve) => {
    const c: Conn = { socket: connect(port, '127.0.0.1'), closed: false, data: '' }
    c.socket.setEncoding('utf8')
    c.socket.on('data', (d: string) => void (c.data += d))
    c.socket.on('error', () => undefined)
    c.socket.on('close', () => void (c.closed = true))
    c.socket.once('connect', () => resolve(c))
    c.socket.once('close', () => resolve(c))
    t.teardown(() => c.socket.destroy())
  })
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await sleep(20)
  return cond()
}

async function serve(t: Test, limits: Partial<HttpLimits>) {
  const s = await startServer({ address: '127.0.0.1:0', routes: { '/healthz': () => ({ status: 200, body: 'ok' }) }, log: quiet, limits })
  t.teardown(() => s.close())
  return s
}

t.test('the defaults: a cap per server, timeouts of seconds', async (t) => {
  t.match(HTTP_LIMITS, { maxConnections: 64, serviceHealthMaxConnections: 256, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, idleTimeoutMs: 10_000, checkIntervalMs: 1000 })
  t.ok(HTTP_LIMITS.maxConnections * 2 + HTTP_LIMITS.serviceHealthMaxConnections < 1024 / 2, 'all servers together hold less than half of a 1024-descriptor limit')
})

t.test('connections past the cap are closed at once; those within it are served', async (t) => {
  const s = await serve(t, { maxConnections: 4 })
  const conns: Conn[] = []
  for (let i = 0; i < 10; i++) conns.push(await open(t, s.port))
  t.ok(await until(() => conns.filter((c) => c.closed).length === 6, 2000), 'six of ten closed by the server')
  t.equal(conns.slice(0, 4).filter((c) => c.closed).length, 0, 'the first four, within the cap, stay open')
  conns[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await until(() => conns[0]!.data.includes('\r\n\r\nok'), 2000), 'and answer')
  // A closed connection frees its place.
  conns[1]!.socket.destroy()
  await sleep(100)
  const again = await open(t, s.port)
  await sleep(200)
  t.equal(again.closed, false, 'a new connection fits once one has gone')
})

t.test('a connection that sends nothing, or its headers too slowly, is closed after headersTimeout', async (t) => {
  const s = await serve(t, { headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 100 })
  const idle = await open(t, s.port)
  const slow = await open(t, s.port)
  const started = Date.now()
  const drip = setInterval(() => slow.socket.write('X'), 50)
  slow.socket.write('GET /healthz HTTP/1.1\r\nX-Slow: ')
  t.teardown(() => clearInterval(drip))
  t.ok(await until(() => idle.closed && slow.closed, 3000), 'both closed')
  clearInterval(drip)
  t.ok(Date.now() - started >= 300, 'not before the timeout')
  t.match(idle.data, /^HTTP\/1\.1 408 /, 'both told 408 Request Timeout')
  t.match(slow.data, /^HTTP\/1\.1 408 /)
})

t.test('an idle keep-alive connection is closed after keepAliveTimeout', async (t) => {
  const s = await serve(t, { keepAliveTimeoutMs: 200 })
  const c = await open(t, s.port)
  c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
  t.ok(await until(() => c.data.includes('ok'), 2000), 'answered')
  t.notOk(c.closed, 'kept alive for a while')
  t.ok(await until(() => c.closed, 3000), 'then closed')
})

t.test('service health checks: one cap for every port', async (t) => {
  const shs = new ServiceHealthServer(quiet, '127.0.0.1', { serviceHealthMaxConnections: 4 })
  t.teardown(() => shs.close())
  // Two free ports: bind port 0 servers first to learn them.
  const probe = await startServer({ address: '127.0.0.1:0', routes: {}, log: quiet })
  const probe2 = await startServer({ address: '127.0.0.1:0', routes: {}, log: quiet })
  const [a, b] = [probe.port, probe2.port]
  await probe.close()
  await probe2.close()
  await shs.sync(
    new Map([
      [a, { namespace: 'default', name: 'a', localEndpoints: 1 }],
      [b, { namespace: 'default', name: 'b', localEndpoints: 0 }],
    ]),
  )
  t.same(shs.ports, [a, b].sort((x, y) => x - y))
  const conns: Conn[] = []
  for (let i = 0; i < 3; i++) conns.push(await open(t, a))
  for (let i = 0; i < 3; i++) conns.push(await open(t, b))
  t.ok(await until(() => conns.filter((c) => c.closed).length === 2, 2000), 'six connections over two ports, two closed')
  t.equal(conns.filter((c) => !c.closed).length, 4, 'four held: the shared cap')
  const held = conns.find((c) => !c.closed)!
  held.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await until(() => /^HTTP\/1\.1 (200|503) /.test(held.data), 2000), 'a held one is answered')
})
