// The daemon's two small HTTP servers, as kube-proxy runs them: the health
// server (healthzBindAddress: /healthz, /livez) and the metrics server
// (metricsBindAddress: /metrics, /proxyMode). Routes are plain functions of the
// request; a route that throws gets a 500 and a log line, never a crash.
//
// Every server of the daemon (these two and the service health checks) caps its
// connections and closes idle ones within seconds: a client holding connections
// open must not take the descriptors the rest of the process needs (the
// manifest source's reads, netlink sockets, the API watches).
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ValidationError } from '../errors.js'
import { splitHostPort } from '../address.js'
import type { ProxyHealth } from './health.js'
import type { KubeProxyMetrics, Registry } from './metrics.js'
import type { Log } from './types.js'

export interface Reply {
  status: number
  /** Content-Type (default text/plain; charset=utf-8). */
  type?: string
  body: string
}

export type Route = (req: IncomingMessage) => Reply | Promise<Reply>

export interface HttpLimits {
  /**
   * Open connections per server; past it a connection is closed as soon as
   * accepted. Probes (kubelet, load balancers, Prometheus) hold a few for
   * milliseconds: 64 is far above that, and 64 + 64 + 256 (every service health
   * check together) stays well under the 1024 descriptors a process is often
   * limited to.
   */
  maxConnections: number
  /** For all the service health-check servers together. */
  serviceHealthMaxConnections: number
  /** A connection must have sent its request headers within this (an idle new connection included). */
  headersTimeoutMs: number
  /** And its whole request within this. */
  requestTimeoutMs: number
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number
  /** A socket with no traffic this long (a client that stopped reading its answer) is closed. */
  idleTimeoutMs: number
  /** How often Node looks for connections past the headers and request timeouts. */
  checkIntervalMs: number
}

export const HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  maxConnections: 64,
  serviceHealthMaxConnections: 256,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  idleTimeoutMs: 10_000,
  checkIntervalMs: 1000,
})

/** Open connections counted against a cap; one shared by several servers caps them together. */
export interface ConnectionCap {
  readonly max: number
  open: number
}

/** An HTTP server with the daemon's timeouts, counting its connections against `cap`. */
export function limitedServer(handler: RequestListener | undefined, cap: ConnectionCap, limits: Readonly<HttpLimits> = HTTP_LIMITS): Server {
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  })
  if (handler) server.on('request', handler)
  // Without a 'timeout' listener, Node destroys the socket that timed out.
  server.setTimeout(limits.idleTimeoutMs)
  server.on('connection', (socket) => {
    if (cap.open >= cap.max) return void socket.destroy()
    cap.open++
    socket.once('close', () => void cap.open--)
  })
  return server
}

export interface ServerOptions {
  /** 'ip:port' or '[ipv6]:port'; port 0 picks a free one. */
  address: string
  /** By exact path; the query string is ignored. */
  routes: Record<string, Route>
  log: Log
  /** HTTP_LIMITS when not given (tests shorten them). */
  limits?: Partial<HttpLimits>
}

export interface RunningServer {
  /** The bound port (the real one when 0 was asked). */
  port: number
  /** Stops listening and ends idle connections; resolves when the server is closed. */
  close(): Promise<void>
}

const TEXT = 'text/plain; charset=utf-8'
/** What Prometheus' Go client answers a text-format scrape with. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export function startServer(options: ServerOptions): Promise<RunningServer> {
  const where = splitHostPort(options.address)
  if (!where || where.port > 65535) {
    return Promise.reject(new ValidationError('http.startServer', 'address', options.address, "must be 'ip:port'"))
  }
  const { routes, log } = options
  // serve() handles its own errors; should logging itself fail, drop the connection, not the process.
  const limits = { ...HTTP_LIMITS, ...options.limits }
  const server = limitedServer((req, res) => void serve(req, res, routes, log).catch(() => res.destroy()), { max: limits.maxConnections, open: 0 }, limits)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(where.port, where.host, () => {
      server.off('error', reject)
      // After listening, a server error (not a request's) must not take the process down.
      server.on('error', (err) => log('error', 'HTTP server error', { address: options.address, err }))
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()))
            server.closeIdleConnections()
          }),
      })
    })
  })
}

async function serve(req: IncomingMessage, res: ServerResponse, routes: Record<string, Route>, log: Log): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!
  let reply: Reply
  // Own properties only: '/constructor' or '/__proto__' are not routes.
  const route = Object.hasOwn(routes, path) ? routes[path] : undefined
  if (!route) {
    reply = { status: 404, body: '404 page not found\n' }
  } else {
    try {
      reply = await route(req)
    } catch (err) {
      log('error', 'HTTP route failed', { path, method: req.method, err })
      reply = { status: 500, body: 'Internal Server Error\n' }
    }
  }
  try {
    res.writeHead(reply.status, {
      'Content-Type': reply.type ?? TEXT,
      'Content-Length': Buffer.byteLength(reply.body),
      'X-Content-Type-Options': 'nosniff',
    })
    res.end(reply.body)
  } catch (err) {
    // A reply the route built wrong (a bad status, a body that is not a string).
    log('error', 'HTTP reply failed', { path, err })
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': TEXT })
    res.end()
  }
}

/**
 * A time as Go's encoding/json writes it (RFC 3339, fraction without trailing
 * zeros), so probes that parse kube-proxy's body parse ours; Go's zero time
 * before the first sync.
 */
export function goTime(t: Date | undefined): string {
  if (!t) return '0001-01-01T00:00:00Z'
  return t.toISOString().replace(/\.?0+Z$/, 'Z')
}

/**
 * /healthz and /livez with kube-proxy's bodies and codes (200 or 503), counted in
 * kubeproxy_proxy_healthz_total / kubeproxy_proxy_livez_total by code. /livez
 * ignores node eligibility, and its body does not carry it.
 */
export function healthRoutes(health: ProxyHealth, metrics: Pick<KubeProxyMetrics, 'proxyHealthzTotal' | 'proxyLivezTotal'>): Record<string, Route> {
  const probe = (withNode: boolean): Reply => {
    const s = health.status()
    const nodeEligible = health.nodeEligible
    // /livez: only whether syncs keep up (node eligibility and unreadable sources are for /healthz)
    const healthy = withNode ? s.healthy && nodeEligible : s.syncing
    const status = healthy ? 200 : 503
    ;(withNode ? metrics.proxyHealthzTotal : metrics.proxyLivezTotal).inc({ code: status })
    // kube-proxy's compatibility rule: a healthy proxy reports lastUpdated as now,
    // as older releases did when every sync loop touched it.
    const body: Record<string, unknown> = { lastUpdated: goTime(healthy ? s.currentTime : s.lastUpdated), currentTime: goTime(s.currentTime) }
    if (withNode) body.nodeEligible = nodeEligible
    // The proxier's own verdict: an ineligible node gives 503 with healthy: true.
    body.healthy = withNode ? s.healthy : s.syncing
    // Not in kube-proxy's body: why, when a source cannot be read (unhealthy once it lasts the health timeout).
    if (s.sourceError) body.sourceError = `${s.sourceError.source}: ${s.sourceError.message} (since ${goTime(s.sourceError.since)})`
    return { status, type: 'application/json', body: JSON.stringify(body) }
  }
  return { '/healthz': () => probe(true), '/livez': () => probe(false) }
}

/** /metrics (the registry's scrape: its async hooks, then the exposition) and /proxyMode (the mode's name, bare, as kube-proxy answers). */
export function metricsRoutes(registry: Registry, info: { proxyMode: string }): Record<string, Route> {
  return {
    '/metrics': async () => ({ status: 200, type: METRICS_CONTENT_TYPE, body: await registry.scrape() }),
    '/proxyMode': () => ({ status: 200, body: info.proxyMode }),
  }
}
