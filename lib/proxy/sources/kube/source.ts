// The Kubernetes source: Services and EndpointSlices from the API server into
// the change trackers, and this node's Node object (its labels, for topology;
// whether it is being deleted). Three informers, as kube-proxy runs them:
// Services and EndpointSlices with the label selector kube-proxy uses (no
// service.kubernetes.io/headless label, no service.kubernetes.io/service-proxy-name
// label: objects carrying either are never seen, and an object gaining one is
// deleted by the server's watch), and Nodes with the field selector
// metadata.name=<this node>.
import type { ChangeSink } from '../../changes.js'
import { parseEndpointSlice, type EndpointSlice } from '../../model/endpointslice.js'
import { dns1123Subdomain, fail, object, optStr, stringMap, type Where } from '../../model/fields.js'
import { LABEL_HEADLESS, LABEL_SERVICE_PROXY_NAME, parseService, type ServiceObject } from '../../model/service.js'
import { stderrLog } from '../manifests.js'
import type { Log } from '../../types.js'
import type { KubeApi } from './client.js'
import { Informer, type BackoffOptions, type InformerCounters, type InformerError, type InformerStats } from './informer.js'

/** kube-proxy's label selector for Services and EndpointSlices (the keys in order, as labels.Selector prints them). */
export const PROXY_LABEL_SELECTOR = `!${LABEL_HEADLESS},!${LABEL_SERVICE_PROXY_NAME}`

export const SERVICES_PATH = '/api/v1/services'
export const ENDPOINTSLICES_PATH = '/apis/discovery.k8s.io/v1/endpointslices'
export const NODES_PATH = '/api/v1/nodes'

/**
 * A collection as an informer names it: its path, its name (the path's last
 * segment, 'services'), and the kind and apiVersion (the path's group/version,
 * 'discovery.k8s.io/v1') that lists leave out of their items.
 */
function collection(path: string, kind: string): { path: string; name: string; apiVersion: string; kind: string } {
  const parts = path.split('/') // '', 'api' or 'apis', [group,] version, resource
  return { path, name: parts.at(-1)!, apiVersion: parts.slice(2, -1).join('/'), kind }
}

/** The label holding a node's zone. */
export const LABEL_TOPOLOGY_ZONE = 'topology.kubernetes.io/zone'

/** This node as the proxy needs it. */
export interface NodeInfo {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  /** topology.kubernetes.io/zone, when set. */
  readonly zone?: string
  /** metadata.deletionTimestamp is set: the node is going away. */
  readonly deleting: boolean
  readonly resourceVersion?: string
}

/** A v1 Node from plain JSON: name, labels, deletion; throws a ValidationError naming the field. */
export function parseNode(value: unknown): NodeInfo {
  let at: Where = { op: 'Node' }
  const o = object(at, 'Node', value)
  const m = object(at, 'metadata', o.metadata)
  if (m.name === undefined || m.name === null || m.name === '') fail(at, 'metadata.name', m.name, 'is required')
  const name = dns1123Subdomain(at, 'metadata.name', m.name)
  at = { op: `Node ${name}` }
  const labels = stringMap(at, 'metadata.labels', m.labels)
  const deletion = optStr(at, 'metadata.deletionTimestamp', m.deletionTimestamp)
  const rv = optStr(at, 'metadata.resourceVersion', m.resourceVersion)
  const zone = labels[LABEL_TOPOLOGY_ZONE]
  return { name, labels, deleting: deletion !== undefined && deletion !== '', ...(zone ? { zone } : {}), ...(rv ? { resourceVersion: rv } : {}) }
}

/** The informers' counters summed (events: Services, EndpointSlices and Node changes), and what is held. */
export interface KubernetesSourceStats extends InformerCounters {
  services: number
  endpointSlices: number
}

export interface KubernetesSourceOptions {
  client: KubeApi
  /** Where events go (trackerSink(services, endpoints)). */
  sink: ChangeSink
  /** This node's name: its Node object is watched. */
  nodeName: string
  log?: Log
  /** Each refused object, failed list or watch, and handler failure: a counter. */
  onError?: (e: InformerError) => void
  /** An informer ('services', 'endpointslices', 'nodes') lists or watches again after failing. */
  onRecovered?: (resource: string) => void
  /** This node's object changed (appeared, its labels changed, it went away). */
  onNode?: (previous: NodeInfo | undefined, current: NodeInfo | undefined) => void
  backoff?: Partial<BackoffOptions>
  /** Items per list page (default 500). */
  pageSize?: number
  /** Asked of the server for each watch (default: 300-600 s at random). */
  watchTimeoutSeconds?: number
}

export class KubernetesSource {
  readonly #services: Informer<ServiceObject>
  readonly #slices: Informer<EndpointSlice>
  readonly #nodes: Informer<NodeInfo>
  readonly #informers: Informer<unknown>[]
  readonly #log: Log
  readonly nodeName: string
  #node: NodeInfo | undefined
  #started = false

  constructor(options: KubernetesSourceOptions) {
    const log = (this.#log = options.log ?? stderrLog)
    this.nodeName = options.nodeName
    const common = {
      client: options.client,
      log,
      ...(options.onError ? { onError: options.onError } : {}),
      ...(options.onRecovered ? { onRecovered: options.onRecovered } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.pageSize ? { pageSize: options.pageSize } : {}),
      ...(options.watchTimeoutSeconds ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
    }
    const proxied = { ...common, labelSelector: PROXY_LABEL_SELECTOR }
    this.#services = new Informer<ServiceObject>({
      ...proxied,
      ...collection(SERVICES_PATH, 'Service'),
      parse: parseService,
      handler: (p, c) => options.sink.service(p, c),
    })
    this.#slices = new Informer<EndpointSlice>({
      ...proxied,
      ...collection(ENDPOINTSLICES_PATH, 'EndpointSlice'),
      parse: parseEndpointSlice,
      warnings: (s) => s.warnings,
      handler: (p, c) => options.sink.endpointSlice(p, c),
    })
    this.#nodes = new Informer<NodeInfo>({
      ...common,
      ...collection(NODES_PATH, 'Node'),
      fieldSelector: `metadata.name=${options.nodeName}`,
      parse: parseNode,
      handler: (p, c) => {
        // The field selector lets only this node through; a stray one is ignored.
        if ((c ?? p)!.name !== this.nodeName) return
        this.#node = c
        if (c?.deleting && !p?.deleting) log('warn', 'this node is being deleted', { node: c.name })
        options.onNode?.(p, c)
      },
    })
    this.#informers = [this.#services, this.#slices, this.#nodes] as Informer<unknown>[]
  }

  /** Starts the three informers (once). */
  start(): void {
    if (this.#started) return
    this.#started = true
    for (const i of this.#informers) i.start()
  }

  /** Resolves once the first list of each of the three is applied; rejects if stopped before. */
  async synced(): Promise<void> {
    await Promise.all(this.#informers.map((i) => i.synced()))
  }

  get hasSynced(): boolean {
    return this.#informers.every((i) => i.hasSynced)
  }

  /** Stops the informers; what was fed stays. */
  async stop(): Promise<void> {
    await Promise.all(this.#informers.map((i) => i.stop()))
  }

  /** This node's object, once seen (undefined if it does not exist). */
  get node(): NodeInfo | undefined {
    return this.#node
  }

  /** The resourceVersion each informer watches from. */
  get resourceVersions(): { services: string; endpointSlices: string; nodes: string } {
    return { services: this.#services.resourceVersion, endpointSlices: this.#slices.resourceVersion, nodes: this.#nodes.resourceVersion }
  }

  /** Per informer. */
  get informerStats(): { services: InformerStats; endpointSlices: InformerStats; nodes: InformerStats } {
    return { services: { ...this.#services.stats }, endpointSlices: { ...this.#slices.stats }, nodes: { ...this.#nodes.stats } }
  }

  /** Summed over the three informers. */
  get stats(): KubernetesSourceStats {
    const sum = (k: keyof InformerCounters): number => this.#informers.reduce((n, i) => n + i.stats[k], 0)
    return {
      events: sum('events'),
      relists: sum('relists'),
      errors: sum('errors'),
      reconnects: sum('reconnects'),
      refused: sum('refused'),
      partial: sum('partial'),
      services: this.#services.values().length,
      endpointSlices: this.#slices.values().length,
    }
  }
}
