// lib/proxy/http.ts on a real socket (127.0.0.1, port 0): kube-proxy's /healthz
// and /livez (codes, JSON bodies, counters), /metrics and /proxyMode, 404s, and
// a failing route answered with a 500 and a log line while the server lives on.
import t, { type Test } from 'tap'
import { ProxyHealth } from '../../dist/proxy/health.js'
import { METRICS_CONTENT_TYPE, goTime, healthRoutes, metricsRoutes, startServer } from '../../dist/proxy/http.js'
import type { Route, RunningServer } from '../../dist/proxy/http.js'
import { Registry, kubeProxyMetrics } from '../../dist/proxy/metrics.js'
import type { LogLevel } from '../../dist/proxy/types.js'

const T0 = Date.UTC(2024, 10, 21, 19, 14, 7)

interface Logged {
  level: LogLevel
  msg: string
  fields?: Record<string, unknown>
}

async function serve(t: Test, routes: Record<string, Route>): Promise<{ server: RunningServer; get: (path: string) => Promise<Response>; logged: Logged[] }> {
  const logged: Logged[] = []
  const server = await startServer({ address: '127.0.0.1:0', routes, log: (level, msg, fields) => void logged.push({ level, msg, fields }) })
  t.teardown(() => server.close())
  return { server, get: (path) => fetch(`http://127.0.0.1:${server.port}${path}`), logged }
}

function setup() {
  let now = T0
  const health = new ProxyHealth({ healthTimeout: 60_000, now: () => now })
  const registry = new Registry()
  const m = kubeProxyMetrics(registry)
  return { health, registry, m, step: (ms: number) => void (now += ms) }
}

t.test('goTime: Go encoding/json times', async (t) => {
  t.equal(goTime(new Date(T0)), '2024-11-21T19:14:07Z')
  t.equal(goTime(new Date(T0 + 120)), '2024-11-21T19:14:07.12Z')
  t.equal(goTime(new Date(T0 + 5)), '2024-11-21T19:14:07.005Z')
  t.equal(goTime(undefined), '0001-01-01T00:00:00Z', "Go's zero time")
})

t.test('/healthz and /livez: healthy, late, synced again', async (t) => {
  const { health, m, step } = setup()
  const { server, get } = await serve(t, healthRoutes(health, m))
  t.ok(server.port > 0, 'a real port for port 0')

  let r = await get('/healthz')
  t.equal(r.status, 200)
  t.equal(r.headers.get('content-type'), 'application/json')
  t.equal(r.headers.get('x-content-type-options'), 'nosniff')
  t.equal(await r.text(), '{"lastUpdated":"2024-11-21T19:14:07Z","currentTime":"2024-11-21T19:14:07Z","nodeEligible":true,"healthy":true}')

  health.updated()
  step(1_000)
  health.queued()
  step(60_000)
  r = await get('/healthz')
  t.equal(r.status, 503)
  t.equal(await r.text(), '{"lastUpdated":"2024-11-21T19:14:07Z","currentTime":"2024-11-21T19:15:08Z","nodeEligible":true,"healthy":false}', 'the real lastUpdated when unhealthy')
  r = await get('/livez')
  t.equal(r.status, 503)
  t.equal(await r.text(), '{"lastUpdated":"2024-11-21T19:14:07Z","currentTime":"2024-11-21T19:15:08Z","healthy":false}', 'no nodeEligible on /livez')

  health.updated()
  step(500)
  r = await get('/livez')
  t.equal(r.status, 200)
  t.equal(await r.text(), '{"lastUpdated":"2024-11-21T19:15:08.5Z","currentTime":"2024-11-21T19:15:08.5Z","healthy":true}', 'healthy: lastUpdated is now')

  t.equal(m.proxyHealthzTotal.get({ code: 200 }), 1)
  t.equal(m.proxyHealthzTotal.get({ code: 503 }), 1)
  t.equal(m.proxyLivezTotal.get({ code: 200 }), 1)
  t.equal(m.proxyLivezTotal.get({ code: 503 }), 1)
})

t.test('an ineligible node fails /healthz, not /livez', async (t) => {
  const { health, m } = setup()
  const { get } = await serve(t, healthRoutes(health, m))
  health.updated()
  health.nodeEligible = false
  const h = await get('/healthz')
  t.equal(h.status, 503)
  t.equal(await h.text(), '{"lastUpdated":"2024-11-21T19:14:07Z","currentTime":"2024-11-21T19:14:07Z","nodeEligible":false,"healthy":true}', "healthy is the proxier's own verdict")
  const l = await get('/livez')
  t.equal(l.status, 200)
  t.equal(JSON.parse(await l.text()).healthy, true)
  t.equal(m.proxyHealthzTotal.get({ code: 503 }), 1)
  t.equal(m.proxyLivezTotal.get({ code: 200 }), 1)
})

t.test('/metrics and /proxyMode', async (t) => {
  const registry = new Registry()
  registry.counter('things_total', 'Things').inc(undefined, 2)
  const { get } = await serve(t, metricsRoutes(registry, { proxyMode: 'ipvs' }))
  const r = await get('/metrics')
  t.equal(r.status, 200)
  t.equal(r.headers.get('content-type'), METRICS_CONTENT_TYPE)
  t.equal(METRICS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(await r.text(), '# HELP things_total Things\n# TYPE things_total counter\nthings_total 2\n')
  const p = await get('/proxyMode')
  t.equal(p.status, 200)
  t.equal(p.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(await p.text(), 'ipvs')
})

t.test('health counters show on /metrics', async (t) => {
  const { health, registry, m } = setup()
  const { get } = await serve(t, { ...healthRoutes(health, m), ...metricsRoutes(registry, { proxyMode: 'iptables' }) })
  await (await get('/healthz')).text()
  await (await get('/livez')).text()
  const text = await (await get('/metrics')).text()
  t.match(text, /^kubeproxy_proxy_healthz_total\{code="200"\} 1$/m)
  t.match(text, /^kubeproxy_proxy_livez_total\{code="200"\} 1$/m)
})

t.test('unknown paths are 404; the query string is ignored', async (t) => {
  const { health, m } = setup()
  const { get } = await serve(t, healthRoutes(health, m))
  for (const path of ['/', '/metrics', '/healthz/extra', '/__proto__', '/constructor', '/toString']) {
    const r = await get(path)
    t.equal(r.status, 404, path)
    t.equal(await r.text(), '404 page not found\n')
  }
  const q = await get('/healthz?verbose=1')
  t.equal(q.status, 200)
  await q.text()
})

t.test('a failing route: 500 and a log line, and the server lives on', async (t) => {
  const { get, logged } = await serve(t, {
    '/throws': () => {
      throw new Error('route bug')
    },
    '/rejects': async () => Promise.reject(new RangeError('async bug')),
    '/badstatus': () => ({ status: 1000, body: 'x' }),
    '/ok': () => ({ status: 200, body: 'fine' }),
  })
  for (const path of ['/throws', '/rejects']) {
    const r = await get(path)
    t.equal(r.status, 500, path)
    t.equal(await r.text(), 'Internal Server Error\n')
  }
  const bad = await get('/badstatus')
  t.equal(bad.status, 500, 'an invalid reply is a 500 too')
  await bad.text()
  const ok = await get('/ok')
  t.equal(ok.status, 200)
  t.equal(await ok.text(), 'fine')
  t.equal(logged.length, 3)
  t.match(logged[0], { level: 'error', msg: 'HTTP route failed', fields: { path: '/throws', method: 'GET' } })
  t.equal((logged[0]!.fields!.err as Error).message, 'route bug')
  t.match(logged[1], { level: 'error', fields: { path: '/rejects' } })
  t.ok(logged[1]!.fields!.err instanceof RangeError)
  t.match(logged[2], { level: 'error', msg: 'HTTP reply failed', fields: { path: '/badstatus' } })
})

t.test('start refusals: a bad address, a port in use', async (t) => {
  const log = () => {}
  for (const address of ['127.0.0.1', 'localhost:', ':80', '127.0.0.1:70000', '']) {
    await t.rejects(startServer({ address, routes: {}, log }), { name: 'ValidationError', field: 'address' }, JSON.stringify(address))
  }
  const first = await startServer({ address: '127.0.0.1:0', routes: {}, log })
  t.teardown(() => first.close())
  await t.rejects(startServer({ address: `127.0.0.1:${first.port}`, routes: {}, log }), { code: 'EADDRINUSE' })
})

t.test('close() stops listening', async (t) => {
  const server = await startServer({ address: '127.0.0.1:0', routes: { '/ok': () => ({ status: 200, body: 'fine' }) }, log: () => {} })
  const r = await fetch(`http://127.0.0.1:${server.port}/ok`)
  t.equal(await r.text(), 'fine')
  await server.close()
  await t.rejects(fetch(`http://127.0.0.1:${server.port}/ok`), 'no longer answers')
})
