// Service health checks, as kube-proxy serves them: a LoadBalancer service with
// externalTrafficPolicy Local gets an HTTP server on its healthCheckNodePort,
// answering 200 while this node has a local endpoint for it and 503 when not, so
// the cloud load balancer only sends traffic to nodes that can serve it locally.
import type { Server } from 'node:http'
import { HTTP_LIMITS, limitedServer, type ConnectionCap, type HttpLimits } from './http.js'
import type { Log } from './types.js'

export interface ServiceHealth {
  readonly namespace: string
  readonly name: string
  /** Ready endpoints of the service on this node. */
  readonly localEndpoints: number
}

export class ServiceHealthServer {
  readonly #log: Log
  readonly #host: string
  readonly #servers = new Map<number, { server: Server; health: ServiceHealth }>()
  readonly #limits: Readonly<HttpLimits>
  /** One cap for every port: a node may serve many of them. */
  readonly #cap: ConnectionCap

  /** `host`: where to listen (kube-proxy: every address of the node). */
  constructor(log: Log, host = '0.0.0.0', limits: Partial<HttpLimits> = {}) {
    this.#log = log
    this.#host = host
    this.#limits = { ...HTTP_LIMITS, ...limits }
    this.#cap = { max: this.#limits.serviceHealthMaxConnections, open: 0 }
  }

  /** The ports served now. */
  get ports(): number[] {
    return [...this.#servers.keys()].sort((a, b) => a - b)
  }

  /** Serves exactly these ports: new ones open, gone ones close, the rest answer the new counts. */
  async sync(wanted: ReadonlyMap<number, ServiceHealth>): Promise<void> {
    for (const [port, entry] of this.#servers) {
      if (wanted.has(port)) continue
      this.#servers.delete(port)
      await new Promise<void>((resolve) => entry.server.close(() => resolve()))
    }
    for (const [port, health] of wanted) {
      const have = this.#servers.get(port)
      if (have) {
        have.health = health
        continue
      }
      const entry = { server: limitedServer(undefined, this.#cap, this.#limits), health }
      entry.server.on('request', (_req, res) => {
        const h = entry.health
        const body = JSON.stringify({ service: { namespace: h.namespace, name: h.name }, localEndpoints: h.localEndpoints, serviceProxyHealthy: true })
        res.writeHead(h.localEndpoints > 0 ? 200 : 503, {
          'Content-Type': 'application/json',
          'X-Content-Type-Options': 'nosniff',
          'X-Load-Balancing-Endpoint-Weight': String(h.localEndpoints),
        })
        res.end(body)
      })
      try {
        await new Promise<void>((resolve, reject) => {
          entry.server.once('error', reject)
          entry.server.listen(port, this.#host, () => resolve())
        })
        this.#servers.set(port, entry)
      } catch (e) {
        // The port is taken or refused: log it and try again at the next sync.
        this.#log('error', 'cannot serve a service health check', { port, service: `${health.namespace}/${health.name}`, error: e })
      }
    }
  }

  async close(): Promise<void> {
    await this.sync(new Map())
  }
}
